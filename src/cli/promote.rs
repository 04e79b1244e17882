//! `op promote-image`.

use std::path::PathBuf;

use clap::Args;

use super::OutputFormat;

/// `op promote-image`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment the image is promoted from (dev, pp, prod): its repository is
    /// $GOOGLE_GKE_IMAGE_REPOSITORY, $GOOGLE_GKE_IMAGE_PP_REPOSITORY or
    /// $GOOGLE_GKE_IMAGE_PROD_REPOSITORY, else $PROMOTE_SOURCE_REPOSITORY (the environment, then
    /// the settings file)
    #[arg(long, value_name = "ENV", required_unless_present = "from")]
    pub source: Option<String>,

    /// The environment the image is promoted to (pp, prod): its repository as for --source, else
    /// $PROMOTE_DESTINATION_REPOSITORY
    #[arg(long, value_name = "ENV", required_unless_present = "to")]
    pub destination: Option<String>,

    /// The source repository, instead of the one of --source (e.g. ghcr.io/acme)
    #[arg(long, value_name = "REPO")]
    pub from: Option<String>,

    /// The destination repository, instead of the one of --destination
    #[arg(long, value_name = "REPO")]
    pub to: Option<String>,

    #[command(flatten)]
    pub build: SelectBuild,

    /// Also copy the source repository's other tags of the same image (version aliases)
    #[arg(long)]
    pub all_tags: bool,

    /// Resolve and print what would be copied, copy nothing
    #[arg(long)]
    pub dry_run: bool,

    /// A registry reached without verifying its certificate, or over plain HTTP when it speaks
    /// no HTTPS (repeatable; a loopback registry is plain HTTP unless it speaks HTTPS)
    #[arg(long = "insecure-registry", value_name = "HOST", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,

    /// Format of the result on stdout
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Which build of which build result a command takes (`op promote-image`,
/// `op watch-deployment`).
#[derive(Debug, Args)]
pub struct SelectBuild {
    /// The directory that holds build_result.json
    #[arg(long, value_name = "DIR", conflicts_with = "build_result")]
    pub build_result_dir: Option<PathBuf>,

    /// The build result file
    #[arg(long, value_name = "FILE")]
    pub build_result: Option<PathBuf>,

    /// The entry of the build result (its imageName); default: the last one
    #[arg(long, value_name = "NAME")]
    pub image_name: Option<String>,
}
