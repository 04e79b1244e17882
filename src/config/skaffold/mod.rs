//! `skaffold.yaml`: what op builds.
//!
//! This module reads a skaffold configuration file the way skaffold does and hands back the
//! artifacts it defines, each with an absolute context and a build kind:
//!
//! - every schema version from `skaffold/v1alpha1` to `skaffold/v4beta14` ([`version`]);
//! - several YAML documents (configurations) in one file, optionally named (`metadata.name`);
//! - `requires`: other configuration files by path (a directory means its `skaffold.yaml`),
//!   optionally restricted to named configurations and with `activeProfiles`; paths in a required
//!   file are relative to that file's directory, while those of the main file are relative to the
//!   working directory (as in skaffold);
//! - profiles, named or auto-activated, applied by overlay and JSON patches ([`profile`]).
//!
//! It reads files and nothing else: no Docker, no network. Remote `requires` (git, Cloud
//! Storage) are refused with an error.

mod loader;
mod model;
mod patch;
mod profile;
pub mod version;

pub use patch::Error as PatchError;
pub use profile::Error as ProfileError;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Env;
use crate::config::yaml::Located;
use crate::hint::Hint;

/// The name of a skaffold configuration file when only a directory is given.
pub const DEFAULT_FILE: &str = "skaffold.yaml";

/// A skaffold configuration op cannot use.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{path}` does not exist (looked in `{dir}`)")]
    NotFound {
        path: String,
        dir: String,
        is_default: bool,
    },
    #[error("`{path}`, required by `{by}`, does not exist")]
    RequiredNotFound { path: String, by: String },
    #[error("Failed to read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Invalid `{path}`{doc} at {located}")]
    Yaml {
        path: String,
        doc: String,
        located: Located,
    },
    #[error("`{path}` holds no skaffold configuration")]
    Empty { path: String },
    #[error("`{path}`{doc} has no `apiVersion`")]
    MissingApiVersion { path: String, doc: String },
    #[error("`{path}`{doc} has the unknown apiVersion `{version}`")]
    UnknownApiVersion {
        path: String,
        doc: String,
        version: String,
    },
    #[error("`{path}`{doc} has `kind: {kind}`; a skaffold configuration has `kind: Config`")]
    WrongKind {
        path: String,
        doc: String,
        kind: String,
    },
    #[error("`{path}`{doc} has the unknown key `{key}`")]
    UnknownKey {
        path: String,
        doc: String,
        key: String,
    },
    #[error("Invalid `{path}`{doc}: {problem}")]
    Invalid {
        path: String,
        doc: String,
        problem: String,
        hint: Option<String>,
    },
    #[error("`{path}`{doc}: {source}")]
    Profile {
        path: String,
        doc: String,
        source: Box<profile::Error>,
    },
    #[error("Invalid `{path}`{doc} once profiles {profiles} are applied: {message}")]
    AfterProfiles {
        path: String,
        doc: String,
        profiles: String,
        message: String,
    },
    #[error("The configuration `{name}` is defined in both `{first}` and `{second}`")]
    DuplicateConfigName {
        name: String,
        first: String,
        second: String,
    },
    #[error("`{path}`{doc} is required with the profiles {first} and with {second}")]
    ProfileConflict {
        path: String,
        doc: String,
        first: String,
        second: String,
    },
    #[error("No skaffold configuration has the profile{} {}", plural(.names.len()), quoted(.names))]
    UnknownProfile {
        names: Vec<String>,
        available: Vec<String>,
    },
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NotFound { is_default: true, .. } => Some(
                "run op in the directory that holds skaffold.yaml, or name the file with -f/--filename".into(),
            ),
            Error::NotFound { .. } => Some("check the path given with -f/--filename".into()),
            Error::RequiredNotFound { .. } => {
                Some("a `requires` path is relative to the file that requires it".into())
            }
            Error::Empty { .. } | Error::MissingApiVersion { .. } => Some(format!(
                "a skaffold configuration starts with `apiVersion: {}` and `kind: Config`",
                version::LATEST
            )),
            Error::UnknownApiVersion { .. } => Some(format!(
                "op reads {} … {}; check for a typo, or upgrade the file with `skaffold fix`",
                version::OLDEST,
                version::LATEST
            )),
            Error::UnknownKey { .. } => Some(format!(
                "the top-level keys of a skaffold configuration are {}",
                model::TOP_LEVEL_KEYS.join(", ")
            )),
            Error::Invalid { hint, .. } => hint.clone(),
            Error::DuplicateConfigName { .. } => {
                Some("configuration names (`metadata.name`) must be unique across all files".into())
            }
            Error::ProfileConflict { .. } => Some(
                "require that configuration with the same `activeProfiles` everywhere".into(),
            ),
            Error::UnknownProfile { available, .. } if available.is_empty() => {
                Some("skaffold.yaml defines no profiles".into())
            }
            Error::UnknownProfile { available, .. } => Some(format!("the profiles are {}", quoted(available))),
            Error::Read { .. }
            | Error::Yaml { .. }
            | Error::WrongKind { .. }
            | Error::Profile { .. }
            | Error::AfterProfiles { .. } => None,
        }
    }
}

/// What to load.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions<'a> {
    /// The configuration file, relative to `cwd` unless absolute.
    pub file: &'a Path,
    /// The working directory: the base of the main file's relative paths.
    pub cwd: &'a Path,
    /// Named profiles (`-p`); `-name` deactivates an auto-activated one.
    pub profiles: &'a [String],
    /// For `env` profile activations and `KUBECONFIG`.
    pub env: &'a Env,
}

/// Everything a skaffold configuration file (and the files it requires) defines.
#[derive(Clone, Debug)]
pub struct Project {
    /// The main file, absolute.
    pub file: PathBuf,
    /// Every file read, main file first.
    pub files: Vec<PathBuf>,
    /// The configurations, in skaffold's order: required ones before those requiring them.
    pub configs: Vec<ConfigEntry>,
}

impl Project {
    /// Every artifact of every configuration, in order.
    pub fn artifacts(&self) -> impl Iterator<Item = &Artifact> {
        self.configs.iter().flat_map(|c| c.artifacts.iter())
    }

    /// The profiles applied anywhere, in the order first applied.
    pub fn applied_profiles(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for name in self.configs.iter().flat_map(|c| c.profiles.iter()) {
            if !all.contains(name) {
                all.push(name.clone());
            }
        }
        all
    }

    /// `build.insecureRegistries` of every configuration.
    pub fn insecure_registries(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for host in self
            .configs
            .iter()
            .flat_map(|c| c.insecure_registries.iter())
        {
            if !all.contains(host) {
                all.push(host.clone());
            }
        }
        all
    }
}

/// One configuration (one YAML document) after its profiles were applied.
#[derive(Clone, Debug)]
pub struct ConfigEntry {
    pub file: PathBuf,
    /// 0-based position of the document in its file.
    pub document: usize,
    pub name: Option<String>,
    /// The profiles applied to it, in order.
    pub profiles: Vec<String>,
    pub artifacts: Vec<Artifact>,
    pub insecure_registries: Vec<String>,
}

/// An artifact of `build.artifacts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// `image`, as written: the name op (and `build_result.json`) knows the artifact by.
    pub image: String,
    /// The absolute, normalised context directory (`context`, default `.`).
    pub context: PathBuf,
    /// The directory relative paths of this artifact are relative to.
    pub base_dir: PathBuf,
    pub kind: Kind,
    /// Other artifacts this one needs (`requires`).
    pub requires: Vec<Requirement>,
    /// Where it is defined, for messages: "`build.artifacts[0]` in `skaffold.yaml`".
    pub location: String,
    /// `build.local.push` of its configuration, when set: whether skaffold pushes it when not
    /// told (`op build` without `--push`).
    pub local_push: Option<bool>,
}

/// An entry of an artifact's `requires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub image: String,
    /// The name the dependency is known by in the build (a build argument, for docker);
    /// defaults to `image`.
    pub alias: String,
}

/// How an artifact is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Buildpacks(Buildpacks),
    Docker(Docker),
    /// A builder op does not support (`jib`, `ko`, `bazel`, `custom`, `kaniko`, …), by its key.
    Unsupported(&'static str),
}

impl Kind {
    /// The key of the kind in `skaffold.yaml`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Buildpacks(_) => "buildpacks",
            Kind::Docker(_) => "docker",
            Kind::Unsupported(name) => name,
        }
    }
}

/// `buildpacks:` of an artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buildpacks {
    pub builder: Option<String>,
    pub run_image: Option<String>,
    /// `KEY=VALUE` entries, as written (values may hold `{{.VAR}}` templates).
    pub env: Vec<String>,
    pub buildpacks: Vec<String>,
    pub trust_builder: bool,
    pub clear_cache: bool,
    pub project_descriptor: Option<String>,
    pub volumes: Vec<Volume>,
    /// `buildArgs`: flags skaffold passes to the `pack` CLI.
    pub pack_args: Vec<String>,
}

/// An entry of `buildpacks.volumes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub host: String,
    pub target: String,
    pub options: Option<String>,
}

/// `docker:` of an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Docker {
    /// Relative to the context unless absolute; defaults to `Dockerfile`.
    pub dockerfile: String,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, Option<String>>,
}

/// Loads the configuration file of `options` and everything it requires.
pub fn load(options: &LoadOptions<'_>) -> Result<Project, Error> {
    loader::load(options)
}

#[cfg(test)]
mod tests;
