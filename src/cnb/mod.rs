//! The platform side of the Cloud Native Buildpacks contract, as plain values (no Docker, no
//! network), so that all of it is testable without an engine:
//!
//! - [`builder`]: what a builder image says about itself (build user, lifecycle APIs, run
//!   images, buildpacks), the Platform API op and the builder agree on, and which builders op
//!   trusts;
//! - [`creator`]: the creator container (user, entrypoint, flags, environment, volumes,
//!   network), as pack builds it (`docs/cnb-platform.md` sections 1 and 10);
//! - [`app`]: the tars uploaded before the creator starts (the app with the CNB user's
//!   ownership and `project.toml`'s include/exclude, `/platform/env`, `/layers/order.toml`);
//! - [`project`]: `project.toml` as pack reads it (files, environment, buildpacks);
//! - [`exit`]: what the lifecycle's exit codes mean to a user.

pub mod app;
pub mod builder;
pub mod creator;
pub mod exit;
pub mod project;

use crate::hint::Hint;

/// What makes a build impossible before it starts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Builder `{builder}` is not a CNB builder: {problem}")]
    NotABuilder { builder: String, problem: String },
    #[error(
        "Builder `{builder}` supports Platform API {builder_apis}, and op supports {op_apis}: none in common"
    )]
    NoCommonPlatformApi {
        builder: String,
        builder_apis: String,
        op_apis: String,
    },
    #[error(
        "Builder `{builder}` is not trusted, so op does not run its lifecycle with registry credentials"
    )]
    Untrusted { builder: String },
    #[error("Artifact `{image}`: {problem}")]
    Buildpacks {
        image: String,
        problem: String,
        available: Vec<String>,
    },
    #[error(
        "Builder `{builder}` names no run image, and artifact `{image}` sets no `buildpacks.runImage`"
    )]
    NoRunImage { builder: String, image: String },
    #[error("Failed to read `{}`", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a valid project descriptor: {problem}", path.display())]
    ProjectDescriptor {
        path: std::path::PathBuf,
        problem: String,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NotABuilder { .. } => Some(
                "a builder sets CNB_USER_ID, CNB_GROUP_ID and the io.buildpacks.builder.metadata label; \
                 `op builder create` makes one"
                    .into(),
            ),
            Error::NoCommonPlatformApi { .. } => {
                Some("use a builder with a newer lifecycle (0.17 or later supports Platform API 0.12)".into())
            }
            Error::Untrusted { .. } => Some(format!(
                "op runs the lifecycle of trusted builders only: its buildpacks would see the registry credentials. \
                 Trust it with --trust-builder or `trustBuilder: true` in skaffold.yaml (op trusts {} by default)",
                builder::TRUSTED_BUILDERS.join(", ")
            )),
            Error::Buildpacks { available, .. } => Some(format!(
                "name the builder's buildpacks by `id` or `id@version` (it has {}), a buildpack directory by its path, \
                 or write an inline buildpack (`script`) in project.toml",
                available.join(", ")
            )),
            Error::NoRunImage { .. } => Some("set `buildpacks.runImage` for the artifact".into()),
            Error::Read { .. } => None,
            Error::ProjectDescriptor { .. } => Some(
                "project.toml is read as pack reads it: `[_] schema-version` 0.1 (`[build]`) or 0.2/0.3 \
                 (`[io.buildpacks]`); docs/configuration.md lists what op uses"
                    .into(),
            ),
        }
    }
}
