//! op: takes a repository's `skaffold.yaml` and gets its images built, published, promoted and
//! run.
//!
//! The binary (`src/main.rs`) only parses the command line and renders errors; everything else
//! lives in this library, laid out as `docs/architecture.md` describes:
//!
//! - [`cli`], the command line (clap types only);
//! - [`commands`], one module per subcommand;
//! - [`config`], everything read from a repository (`skaffold.yaml`, `.registry`, settings
//!   files, the environment) and the precedence between them;
//! - [`plan`], the build plan derived from it;
//! - [`execute`], running the builds of a plan (`op build`, `op build-push`, `op push`);
//! - [`build_result`], the `build_result.json` file;
//! - [`local_run`], the contexts `op run` knows and how it runs them;
//! - [`engine`], the Docker Engine API (the only module that imports bollard);
//! - [`registry`], container registries (the only module that talks to them);
//! - [`watch`], `op watch-deployment`'s wait for a rollout, and [`kubernetes`], the Kubernetes
//!   API (the only module that imports kube-rs);
//! - [`builder`], builder images (`op builder create`) and busybox base images;
//! - [`cnb`], the platform side of the buildpacks contract (builder metadata, the creator
//!   container, the tars it gets), as plain values;
//! - [`error`] and [`output`], how op fails and what it prints.

pub mod build_result;
pub mod builder;
pub mod cli;
pub mod cnb;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod execute;
pub mod failure;
pub mod hint;
pub mod interrupt;
pub mod kubernetes;
pub mod local_run;
pub mod output;
pub mod paths;
pub mod plan;
pub mod promote;
pub mod registry;
pub mod skaffold;
pub mod watch;

/// The version of op.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
