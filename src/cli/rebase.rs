//! `op rebase`.

use clap::Args;

use super::OutputFormat;

/// `op rebase`.
#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The images to rebase (registry/repository:tag), each written back under its own name
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,

    /// The run image to put them on (default: the one each image's metadata names, as the
    /// registry serves it now)
    #[arg(long, value_name = "REF")]
    pub run_image: Option<String>,

    /// Rebase even what the lifecycle's checks refuse: an image a buildpack marked not
    /// rebasable, a run image of another platform, distribution or name
    #[arg(long)]
    pub force: bool,

    /// A registry reached without verifying its certificate, or over plain HTTP when it speaks
    /// no HTTPS (repeatable; a loopback registry is plain HTTP unless it speaks HTTPS)
    #[arg(long = "insecure-registry", value_name = "HOST", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,

    /// Format of the results on stdout
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}
