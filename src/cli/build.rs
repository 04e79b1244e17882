#![allow(clippy::doc_markdown, reason = "doc comments here are --help text")]

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Flags shared by `build`, `build-push` and `push`.
#[derive(Debug, Args)]
pub struct BuildCommon {
    /// The skaffold configuration file
    #[arg(
        short = 'f',
        long = "filename",
        visible_alias = "skaffold-file",
        value_name = "FILE",
        default_value = "skaffold.yaml"
    )]
    pub filename: PathBuf,

    /// Repository prefix of the images, e.g. ghcr.io/my-org (default: see docs/configuration.md)
    #[arg(long, visible_alias = "default-repo", value_name = "REPO")]
    pub repo: Option<String>,

    /// Tag of the images (default: a version variable such as DOCKER_METADATA_OUTPUT_VERSION,
    /// else `tag` in .github/octopilot.yaml, else latest)
    #[arg(short = 't', long, value_name = "TAG")]
    pub tag: Option<String>,

    /// Activate skaffold profiles (repeatable, or comma-separated; `-NAME` deactivates one)
    /// [env: SKAFFOLD_PROFILE]
    #[arg(
        short = 'p',
        long = "profile",
        value_name = "NAME",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub profiles: Vec<String>,

    /// Build only this artifact (its skaffold `image`) and the artifacts it depends on
    #[arg(long, value_name = "IMAGE")]
    pub artifact: Option<String>,

    /// Registry to reach over plain HTTP (repeatable, or comma-separated)
    /// [env: SKAFFOLD_INSECURE_REGISTRY, SKAFFOLD_INSECURE_REGISTRIES]
    #[arg(long = "insecure-registry", value_name = "HOST", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,

    /// Where to write the build result (skaffold's build-artifacts JSON)
    #[arg(long, value_name = "FILE", default_value = crate::build_result::FILE_NAME)]
    pub file_output: PathBuf,

    /// Print the build plan (what is built, from what, to which references, in which order)
    /// without building anything. Required for now: builds themselves are not part of this op
    /// release.
    #[arg(long, required = true)]
    pub dry_run: bool,

    /// Format of the plan on stdout
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people
    Text,
    /// For programs
    Json,
}

/// `op build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub common: BuildCommon,

    /// Publish the images (buildpacks artifacts are always published straight to the registry)
    #[arg(long)]
    pub push: bool,
}

/// `op build-push` and `op push`.
#[derive(Debug, Args)]
pub struct BuildPushArgs {
    #[command(flatten)]
    pub common: BuildCommon,
}
