#![allow(clippy::doc_markdown, reason = "doc comments here are --help text")]

use clap::{Args, ValueEnum};

/// `op run`.
#[derive(Debug, Args)]
#[command(
    arg_required_else_help = true,
    after_help = "Examples:\n  op run context list     list the contexts of skaffold.yaml, with their images and ports\n  op run api              run the image built for the context `api`"
)]
pub struct RunArgs {
    /// The context to run: its directory as `op run context list` shows it (or its artifact's
    /// image); `context list` lists them
    #[arg(value_name = "CONTEXT", num_args = 1..=2, required = true)]
    pub target: Vec<String>,

    #[command(flatten)]
    pub skaffold: super::SkaffoldArgs,

    /// When to pull the image
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Pull::IfNotPresent)]
    pub pull: Pull,

    /// Print the container op would run (as a `docker run` command line) and exit
    #[arg(long)]
    pub dry_run: bool,
}

/// When to pull an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Pull {
    /// Always
    Always,
    /// When the Docker Engine does not have it
    #[value(alias = "missing")]
    IfNotPresent,
    /// Never
    Never,
}

impl From<Pull> for crate::engine::PullPolicy {
    fn from(pull: Pull) -> Self {
        match pull {
            Pull::Always => Self::Always,
            Pull::IfNotPresent => Self::Missing,
            Pull::Never => Self::Never,
        }
    }
}
