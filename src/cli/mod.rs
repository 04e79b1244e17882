//! The command line: clap types only. Turning flags into settings happens in `config` and
//! `plan`; running commands happens in `commands`.
//!
//! The doc comments of the flags are their `--help` text, so they are written for a terminal,
//! not for rustdoc.
#![allow(clippy::doc_markdown, reason = "doc comments here are --help text")]

mod build;
mod builder;
mod promote;
mod rebase;
mod run;
mod watch;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

pub use build::{
    BuildArgs, BuildCommon, BuildPushArgs, BuildRunArgs, DelegateArgs, EngineKind, OutputFormat,
    PushArgs, PushDestination, SkaffoldArgs, UpstreamArgs,
};
pub use builder::{BuilderArgs, BuilderBaseArgs, BuilderCommand, BuilderCreateArgs};
pub use promote::{PromoteArgs, SelectBuild};
pub use rebase::RebaseArgs;
pub use run::{Pull, RunArgs};
pub use watch::WatchArgs;

/// op takes a repository's skaffold.yaml and gets its images built, published, promoted and
/// run. Buildpacks artifacts are built by op itself through the Docker Engine API and published
/// straight to the registry; every other kind of artifact goes to `skaffold build`.
#[derive(Debug, Parser)]
#[command(
    name = "op",
    version,
    about = "Build, publish, promote and run the images of a repository's skaffold.yaml",
    propagate_version = true,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Settings file: a pipeline.properties (KEY=VALUE lines) or a YAML file shaped like
    /// .github/octopilot.yaml [env: OCTOPILOT_PIPELINE_PROPERTIES]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Say more on stderr (-vv: even more)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Print only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build every artifact of skaffold.yaml: buildpacks artifacts by op, every other kind
    /// (Dockerfile, jib, ko, bazel, custom, kaniko) by skaffold
    Build(BuildArgs),
    /// Build the buildpacks artifacts of skaffold.yaml and publish them (the other artifacts are
    /// skipped)
    BuildPush(BuildPushArgs),
    /// Build every artifact of skaffold.yaml and publish it (as `op build --push`)
    Push(PushArgs),
    /// Run the image built for a context of skaffold.yaml locally, or list the contexts
    Run(RunArgs),
    /// Copy a built image (from build_result.json) from one environment's registry to the
    /// next, digest kept and tag too
    PromoteImage(PromoteArgs),
    /// Put published buildpacks images on a new run image without building them (as `pack
    /// rebase`): their app layers kept, the run image's replaced, in the registry
    Rebase(RebaseArgs),
    /// Wait until an environment runs the image built (build_result.json) and has rolled it
    /// out: a Flux HelmRelease reconciled when there is one, then the Deployment watched
    WatchDeployment(WatchArgs),
    /// Make builder images (and busybox base images) and publish them to a registry
    Builder(BuilderArgs),
    /// Print op's version
    Version,
    /// Print a completion script for a shell (e.g. `op completion bash > /etc/bash_completion.d/op`)
    Completion(CompletionArgs),
}

/// `op completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
