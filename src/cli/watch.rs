//! `op watch-deployment`.

use std::path::PathBuf;

use clap::Args;

use super::OutputFormat;
use super::build::parse_duration;
use super::promote::SelectBuild;

/// `op watch-deployment`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The Deployment (and Flux HelmRelease) to watch
    #[arg(long, value_name = "NAME")]
    pub component: String,

    /// The environment (dev, pp, prod): its repository is $GOOGLE_GKE_IMAGE_REPOSITORY,
    /// $GOOGLE_GKE_IMAGE_PP_REPOSITORY or $GOOGLE_GKE_IMAGE_PROD_REPOSITORY, else
    /// $WATCH_DESTINATION_REPOSITORY (the environment, then the settings file)
    #[arg(long, value_name = "ENV")]
    pub environment: String,

    /// The namespace of the Deployment
    #[arg(long, short = 'n', value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// How long the rollout may take once the Deployment runs the image (e.g. 30m, 90s, 1h)
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    /// How long to wait for the Deployment to run the image (e.g. 10m)
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub poll_timeout: std::time::Duration,

    #[command(flatten)]
    pub build: SelectBuild,

    /// The kubeconfig file (default: $KUBECONFIG, several files separated by ':', else
    /// ~/.kube/config, else the pod's service account)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Format of the outcome on stdout
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}
