//! `op run`: the contexts of a repository, and running the image built for one of them.
//!
//! A context is named by its artifact's `context` directory, relative to the working directory
//! (`api`, `.`), as in skaffold.yaml and in `contexts.<name>` of `.github/octopilot.yaml`. An
//! artifact's image name is accepted too, which is the only way to choose between two artifacts
//! that share a context.

pub mod infer;
mod options;
mod run;

use std::path::{Path, PathBuf};

pub use options::{FIRST_HOST_PORT, RunOptions, resolve_image, run_options};
pub use run::{Monitor, Request, run};

use crate::config::skaffold::Project;
use crate::hint::Hint;
use crate::paths::relative_to;
use crate::{build_result, config, engine, registry};

/// An artifact seen as something to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunContext {
    /// The context, relative to the working directory.
    pub name: String,
    /// The artifact's `image`.
    pub image: String,
    /// The absolute context directory.
    pub dir: PathBuf,
}

/// A context that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Unknown context `{name}`")]
    UnknownContext {
        name: String,
        available: Vec<String>,
    },
    #[error("Context `{name}` holds {} artifacts: {}", .images.len(), .images.join(", "))]
    AmbiguousContext { name: String, images: Vec<String> },
    #[error("`contexts.{context}.ports` of `{file}`: {message}")]
    BadPort {
        context: String,
        file: String,
        message: String,
    },
    #[error(
        "`contexts.{context}.volumes` of `{file}`: `{spec}` is not a volume (`source:target[:options]`)"
    )]
    BadVolume {
        context: String,
        file: String,
        spec: String,
    },
    #[error("No free host port between {first} and {last}")]
    NoFreePort { first: u16, last: u16 },
    #[error("Failed to read the files of `{}` to infer its port", dir.display())]
    Infer {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Host ports stayed taken after {tries} tries: {ports:?}")]
    PortsTaken { tries: usize, ports: Vec<u16> },
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error(transparent)]
    BuildResult(#[from] build_result::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    Credentials(#[from] registry::auth::Error),
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::UnknownContext { available, .. } if available.is_empty() => {
                Some("skaffold.yaml defines no artifacts".into())
            }
            Error::UnknownContext { available, .. } => Some(format!(
                "the contexts are {}; `op run context list` shows them with their images",
                available
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Error::AmbiguousContext { images, .. } => Some(format!(
                "name the artifact instead: {}",
                images
                    .iter()
                    .map(|i| format!("`op run {i}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            Error::BadPort { .. } => {
                Some("ports are `docker run -p` specs, e.g. \"8081:8080\"".into())
            }
            Error::BadVolume { .. } => {
                Some("volumes are `docker run -v` specs, e.g. \"./public:/app/public\"".into())
            }
            Error::NoFreePort { .. } | Error::PortsTaken { .. } => {
                Some("set `ports` for the context in .github/octopilot.yaml".into())
            }
            Error::Infer { .. } => None,
            Error::Config(e) => e.hint(),
            Error::BuildResult(e) => e.hint(),
            Error::Engine(e) => e.hint(),
            Error::Credentials(e) => e.hint(),
        }
    }
}

/// The runnable contexts of `project`, in skaffold.yaml order.
pub fn contexts(project: &Project, cwd: &Path) -> Vec<RunContext> {
    project
        .artifacts()
        .map(|a| RunContext {
            name: relative_to(&a.context, cwd).display().to_string(),
            image: a.image.clone(),
            dir: a.context.clone(),
        })
        .collect()
}

/// The context called `name` (a context directory, or an artifact's image).
pub fn find<'a>(contexts: &'a [RunContext], name: &str) -> Result<&'a RunContext, Error> {
    let wanted = name.trim_end_matches('/');
    let wanted = wanted
        .strip_prefix("./")
        .filter(|w| !w.is_empty())
        .unwrap_or(wanted);
    let by_context: Vec<&RunContext> = contexts.iter().filter(|c| c.name == wanted).collect();
    match by_context.as_slice() {
        [one] => return Ok(one),
        [] => {}
        many => {
            return Err(Error::AmbiguousContext {
                name: name.to_string(),
                images: many.iter().map(|c| c.image.clone()).collect(),
            });
        }
    }
    contexts.iter().find(|c| c.image == name).ok_or_else(|| {
        let mut available: Vec<String> = Vec::new();
        for c in contexts {
            if !available.contains(&c.name) {
                available.push(c.name.clone());
            }
        }
        Error::UnknownContext {
            name: name.to_string(),
            available,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str, image: &str) -> RunContext {
        RunContext {
            name: name.into(),
            image: image.into(),
            dir: PathBuf::from("/r").join(name),
        }
    }

    #[test]
    fn finds_contexts_by_directory_or_image() {
        let all = [
            ctx("api", "app-api"),
            ctx(".", "root-a"),
            ctx(".", "root-b"),
        ];
        assert_eq!(find(&all, "api").unwrap().image, "app-api");
        assert_eq!(find(&all, "./api/").unwrap().image, "app-api");
        assert_eq!(find(&all, "root-b").unwrap().image, "root-b");
        let err = find(&all, ".").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Context `.` holds 2 artifacts: root-a, root-b"
        );
        let err = find(&all, "web").unwrap_err();
        assert_eq!(err.to_string(), "Unknown context `web`");
        assert!(err.hint().unwrap().contains("`api`, `.`"));
    }
}
