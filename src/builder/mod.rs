//! Builder images, made without a Docker daemon and written straight to a registry:
//!
//! - `op builder create` reads a `builder.toml` (pack's format; [`config`] holds the subset op
//!   reads) and lays the build image, op's lifecycle, the buildpacks and their order out as pack
//!   does ([`create`]);
//! - `op builder base` makes a minimal build and run base image from a static busybox
//!   ([`base`]), so that builds run end to end on machines that cannot pull a real one.
//!
//! `docs/builders.md` documents both.

pub mod base;
pub mod config;
pub mod create;
mod elf;

use std::path::PathBuf;

pub use config::{BuilderSpec, LIFECYCLE_DIR_ENV};

use crate::hint::Hint;

/// What went wrong making a builder or a base image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Read { source: std::io::Error },
    #[error("{}: {problem}", path.display())]
    Config {
        path: PathBuf,
        problem: String,
        hint: Option<String>,
    },
    #[error("op's lifecycle was not found (looked for {})", searched.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "))]
    LifecycleNotFound { searched: Vec<PathBuf> },
    #[error("op's lifecycle for {platform} was not found (looked for {}{})", searched.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "), if other.is_empty() { String::new() } else { format!("; {}", other.join(", ")) })]
    LifecycleForPlatform {
        platform: String,
        searched: Vec<PathBuf>,
        other: Vec<String>,
    },
    #[error("`{}` cannot run in a builder image: {problem}", path.display())]
    NotStatic { path: PathBuf, problem: String },
    #[error("Build image `{reference}` cannot make a builder: {problem}")]
    BuildImage { reference: String, problem: String },
    #[error("The build image `{reference}` is a {found} image, not an index with a {wanted} image")]
    BuildImagePlatform {
        reference: String,
        found: String,
        wanted: String,
        all: String,
    },
    #[error("`{}` cannot make a base image: {problem}", path.display())]
    Busybox { path: PathBuf, problem: String },
    #[error("Failed to write {what}")]
    Layer {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Config { hint, .. } => hint.clone(),
            Error::LifecycleNotFound { .. } => Some(format!(
                "build it with `scripts/build-lifecycle` and set {LIFECYCLE_DIR_ENV} to the directory it prints, \
                 or set [lifecycle] uri in builder.toml"
            )),
            Error::LifecycleForPlatform { .. } => Some(format!(
                "`scripts/build-lifecycle` builds op-lifecycle for linux/amd64 and linux/arm64 into \
                 linux-<arch>/ of the directory it prints (set {LIFECYCLE_DIR_ENV} to it), or set \
                 [lifecycle] uri to a directory with linux-<arch>/lifecycle"
            )),
            Error::NotStatic { .. } => Some(
                "builder images may have no C library; build a static lifecycle with `scripts/build-lifecycle`".into(),
            ),
            Error::BuildImage { .. } => Some(
                "a build image sets CNB_USER_ID and CNB_GROUP_ID; `op builder base <image>` makes one".into(),
            ),
            Error::BuildImagePlatform { all, .. } => Some(format!(
                "publish the build image for every platform first, e.g. `op builder base <image> --platform {all} --busybox …`"
            )),
            Error::Busybox { .. } => Some(
                "use a static busybox: Debian's `busybox-static` installs one at /bin/busybox".into(),
            ),
            Error::Registry(e) => e.hint(),
            Error::Read { .. } | Error::Layer { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
