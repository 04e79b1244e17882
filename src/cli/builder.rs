//! `op builder`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `op builder`.
#[derive(Debug, Args)]
pub struct BuilderArgs {
    #[command(subcommand)]
    pub command: BuilderCommand,
}

/// The `op builder` commands.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Make a builder image from a builder.toml and publish it straight to a registry (no Docker
    /// daemon needed)
    #[command(
        after_help = "Examples:\n  op builder create localhost:5001/builders/busybox:latest --config fixtures/builders/busybox/builder.toml\n\nThe format of builder.toml (a subset of pack's) is in docs/builders.md."
    )]
    Create(BuilderCreateArgs),
    /// Make a minimal build and run base image from a static busybox and publish it straight to
    /// a registry
    #[command(
        after_help = "Examples:\n  op builder base localhost:5001/bases/busybox:build localhost:5001/bases/busybox:run"
    )]
    Base(BuilderBaseArgs),
}

/// `op builder create`.
#[derive(Debug, Args)]
pub struct BuilderCreateArgs {
    /// The image to publish, e.g. registry.example/builders/web:1
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// The builder.toml (for this command, --config names it, as with `pack builder create`)
    #[arg(short = 'c', long = "config", value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,

    /// Publish an image index with one builder per platform (comma-separated or repeated, e.g.
    /// linux/amd64,linux/arm64): the build image's image for each, and the lifecycle for each
    /// (linux-<arch>/lifecycle of the lifecycle directory)
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<String>,

    /// A registry reached without verifying its certificate, or over plain HTTP when it speaks
    /// no HTTPS (repeatable; a loopback registry is plain HTTP unless it speaks HTTPS)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

/// `op builder base`.
#[derive(Debug, Args)]
pub struct BuilderBaseArgs {
    /// The images to publish (the same image under each name)
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,

    /// The static busybox to put in the image: FILE, or PLATFORM=FILE (repeat it for each
    /// platform of --platform; a FILE's platform is read from its ELF header)
    #[arg(long, value_name = "[PLATFORM=]FILE", default_value = "/bin/busybox")]
    pub busybox: Vec<String>,

    /// Publish an image index with one image per platform (comma-separated or repeated, e.g.
    /// linux/amd64,linux/arm64), each from the --busybox of that platform
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<String>,

    /// The name of the CNB user
    #[arg(long, value_name = "NAME", default_value = "cnb")]
    pub user: String,

    /// The uid of the CNB user (CNB_USER_ID)
    #[arg(long, value_name = "UID", default_value_t = 1000)]
    pub uid: u32,

    /// The gid of the CNB user (CNB_GROUP_ID)
    #[arg(long, value_name = "GID", default_value_t = 1000)]
    pub gid: u32,

    /// The stack id (io.buildpacks.stack.id)
    #[arg(long, value_name = "ID", default_value = "io.octopilot.busybox")]
    pub stack_id: String,

    /// A registry reached without verifying its certificate, or over plain HTTP when it speaks
    /// no HTTPS (repeatable; a loopback registry is plain HTTP unless it speaks HTTPS)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}
