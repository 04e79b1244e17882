//! Everything op reads from a repository and its environment, and the precedence between them.
//!
//! Sources, strongest first (the table lives in `docs/configuration.md`):
//!
//! 1. command-line flags;
//! 2. environment variables;
//! 3. the settings file given with `--config` or `OCTOPILOT_PIPELINE_PROPERTIES` (a
//!    `pipeline.properties` or a YAML file);
//! 4. `.github/octopilot.yaml` (or `.github/octopilot.yml`, or `octopilot.yaml`);
//! 5. `.registry`, for the default repository only;
//! 6. op's defaults.
//!
//! `skaffold.yaml` has its own module ([`skaffold`]): it says *what* to build, this module says
//! *where to* and *how*. Nothing here talks to Docker or the network.

pub mod env;
pub mod interpolate;
pub mod op_settings;
pub mod registry_file;
pub mod settings_file;
pub mod skaffold;
pub(crate) mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use env::Env;
pub use registry_file::{Destination, RegistryFile};
pub use settings_file::{ContextOptions, Setting, SettingsFile};

use crate::hint::Hint;
use op_oci::reference;
use yaml::{Located, display_path};

/// The repository images go to when nothing else says where: the local registry that
/// `scripts/dev-env` starts.
pub const DEFAULT_REPO: &str = "localhost:5001";

/// The tag op gives images when nothing else names one.
pub const DEFAULT_TAG: &str = "latest";

/// Where op looks for the repository's settings file, in order.
pub const OCTOPILOT_FILES: [&str; 3] = [
    ".github/octopilot.yaml",
    ".github/octopilot.yml",
    "octopilot.yaml",
];

/// Environment variables that carry a version to tag images with, strongest first (upstream op
/// reads the same list; GitHub's `docker/metadata-action` sets the first).
pub const VERSION_VARIABLES: [&str; 5] = [
    "DOCKER_METADATA_OUTPUT_VERSION",
    "SKAFFOLD_TAG",
    "VERSION",
    "TAG",
    "IMAGE_TAG",
];

/// Configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Invalid `{path}` at {located}")]
    Yaml {
        path: String,
        located: Located,
        hint: Option<String>,
    },
    #[error("Invalid `{path}`: {field} {problem}")]
    Invalid {
        path: String,
        field: String,
        problem: String,
        hint: Option<String>,
    },
    #[error("Invalid `{path}`: line {line} is not a `KEY=VALUE` setting: `{text}`")]
    Properties {
        path: String,
        line: usize,
        text: String,
    },
    #[error("The settings file `{path}` (from {origin}) does not exist")]
    SettingsFileNotFound { path: String, origin: Origin },
    #[error("`{path}` (from $OP_REGISTRY_CA_PATH) holds no PEM certificate")]
    RegistryCa { path: String },
    #[error("`{value}` (from {origin}) is not a valid image tag")]
    InvalidTag {
        value: String,
        origin: Origin,
        #[source]
        source: op_oci::ReferenceError,
    },
    #[error("`{value}` (from {origin}) is not a valid repository")]
    InvalidRepository {
        value: String,
        origin: Origin,
        #[source]
        source: op_oci::ReferenceError,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Yaml { hint, .. } | Error::Invalid { hint, .. } => hint.clone(),
            Error::Properties { .. } => {
                Some("a properties file holds one `KEY=VALUE` per line; `#` starts a comment".into())
            }
            Error::RegistryCa { .. } => Some(
                "OP_REGISTRY_CA_PATH names a PEM file of the CA certificates that signed your registries' \
                 certificates (blocks of -----BEGIN CERTIFICATE-----)"
                    .into(),
            ),
            Error::SettingsFileNotFound { .. } => Some(
                "pass an existing file with --config (or OCTOPILOT_PIPELINE_PROPERTIES), relative to \
                 the current directory"
                    .into(),
            ),
            Error::InvalidTag { origin, .. } => Some(match origin {
                Origin::Env(_) => "tags may hold letters, digits, `_`, `.` and `-`; replace anything else \
                                   with `-` before handing the version to op (for example a PR ref `71/merge`)"
                    .into(),
                _ => "tags may hold letters, digits, `_`, `.` and `-` (at most 128)".into(),
            }),
            Error::InvalidRepository { .. } => {
                Some("a repository looks like `localhost:5001` or `ghcr.io/my-org` (lower-case path)".into())
            }
            Error::Read { .. } => None,
        }
    }
}

/// Where a setting came from, for messages and for the build plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--repo`.
    Flag(String),
    /// An environment variable.
    Env(String),
    /// A key of a settings file.
    File { path: String, key: String },
    /// An entry of `.registry`.
    RegistryFile { path: String, field: String },
    /// op's built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(var) => write!(f, "${var}"),
            Origin::File { path, key } => write!(f, "`{key}` in `{path}`"),
            Origin::RegistryFile { path, field } => write!(f, "`{field}` in `{path}`"),
            Origin::Default => f.write_str("op's default"),
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A setting with its origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved<T> {
    pub value: T,
    pub origin: Origin,
}

/// The repository's settings, loaded once per command.
#[derive(Clone, Debug)]
pub struct Config {
    cwd: PathBuf,
    env: Env,
    /// The file of `--config` / `OCTOPILOT_PIPELINE_PROPERTIES`.
    explicit: Option<SettingsFile>,
    /// `.github/octopilot.yaml` or one of its alternatives.
    octopilot: Option<SettingsFile>,
    warnings: Vec<String>,
    /// `.registry` (or `op push --registry-file`), and which of its registries are used.
    registry_file: (PathBuf, Destination),
}

impl Config {
    /// Loads the settings files of the repository in `cwd`. `config_flag` is the value of
    /// `--config`; without it `OCTOPILOT_PIPELINE_PROPERTIES` is read from `env`. `.registry` is
    /// read later, and only when the precedence reaches it.
    pub fn load(cwd: &Path, env: Env, config_flag: Option<&Path>) -> Result<Self, Error> {
        let explicit = match config_flag {
            Some(path) => Some((path.to_path_buf(), Origin::Flag("--config".into()))),
            None => env.get("OCTOPILOT_PIPELINE_PROPERTIES").map(|p| {
                (
                    PathBuf::from(p),
                    Origin::Env("OCTOPILOT_PIPELINE_PROPERTIES".into()),
                )
            }),
        };
        let explicit = match explicit {
            Some((path, origin)) => {
                let path = cwd.join(path);
                if !path.is_file() {
                    return Err(Error::SettingsFileNotFound {
                        path: display_path(&path, cwd),
                        origin,
                    });
                }
                Some(SettingsFile::load(&path, cwd)?)
            }
            None => None,
        };
        let octopilot_path = OCTOPILOT_FILES
            .iter()
            .map(|f| cwd.join(f))
            .find(|p| p.is_file());
        let octopilot = match octopilot_path {
            Some(path) if explicit.as_ref().is_none_or(|e| e.path != path) => {
                Some(SettingsFile::load(&path, cwd)?)
            }
            _ => None,
        };
        let mut warnings: Vec<String> = explicit
            .iter()
            .chain(octopilot.iter())
            .flat_map(|f| f.warnings.iter().cloned())
            .collect();
        if octopilot.is_none() && cwd.join(".run.yaml").is_file() {
            warnings.push(
                "op no longer reads `.run.yaml`; move it to `.github/octopilot.yaml` (same content)".into(),
            );
        }
        Ok(Self {
            cwd: cwd.to_path_buf(),
            env,
            explicit,
            octopilot,
            warnings,
            registry_file: (cwd.join(".registry"), Destination::Auto),
        })
    }

    /// The directory op runs in: relative paths in flags and settings are relative to it.
    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// The environment op was started with.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Things found while loading that do not stop op.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The settings files that were read, strongest first.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.explicit
            .iter()
            .chain(self.octopilot.iter())
            .map(|f| f.path.as_path())
    }

    /// How `path` is named in messages.
    pub fn display(&self, path: &Path) -> String {
        display_path(path, &self.cwd)
    }

    /// The first of `keys` (upper case) that a settings file has, strongest file first.
    fn file_value_of(&self, keys: &[&str]) -> Option<Resolved<String>> {
        self.explicit
            .iter()
            .chain(self.octopilot.iter())
            .find_map(|file| {
                keys.iter()
                    .find_map(|key| file.get(key))
                    .map(|setting| Resolved {
                        value: setting.value.trim().to_string(),
                        origin: Origin::File {
                            path: display_path(&file.path, &self.cwd),
                            key: setting.key.clone(),
                        },
                    })
            })
    }

    /// `key` (upper case) from the settings files only.
    pub fn file_value(&self, key: &str) -> Option<Resolved<String>> {
        self.file_value_of(&[key])
    }

    /// `key` from the environment, else from the settings files.
    pub fn setting(&self, key: &str) -> Option<Resolved<String>> {
        match self.env.get(key) {
            Some(value) => Some(Resolved {
                value: value.to_string(),
                origin: Origin::Env(key.to_string()),
            }),
            None => self.file_value(key),
        }
    }

    /// The default repository: `--repo` > `$SKAFFOLD_DEFAULT_REPO` > `$DEFAULT_REPO` > the
    /// settings files > `.registry` > `localhost:5001`. The value is trimmed, loses any trailing
    /// `/`, and is checked.
    pub fn default_repo(&self, flag: Option<&str>) -> Result<Resolved<String>, Error> {
        let found = flag
            .map(|v| Resolved {
                value: v.to_string(),
                origin: Origin::Flag("--repo".into()),
            })
            .or_else(|| {
                ["SKAFFOLD_DEFAULT_REPO", "DEFAULT_REPO"]
                    .iter()
                    .find_map(|var| {
                        self.env.get(var).map(|v| Resolved {
                            value: v.to_string(),
                            origin: Origin::Env((*var).to_string()),
                        })
                    })
            })
            .or_else(|| self.file_value_of(&["SKAFFOLD_DEFAULT_REPO", "DEFAULT_REPO"]));
        let found = match found {
            Some(found) => found,
            None => match self.registry_file_repo()? {
                Some(found) => found,
                None => Resolved {
                    value: DEFAULT_REPO.to_string(),
                    origin: Origin::Default,
                },
            },
        };
        let value = found.value.trim().trim_end_matches('/').to_string();
        reference::validate_repository_prefix(&value).map_err(|source| {
            Error::InvalidRepository {
                value: value.clone(),
                origin: found.origin.clone(),
                source,
            }
        })?;
        Ok(Resolved {
            value,
            origin: found.origin,
        })
    }

    /// The repository `.registry` names: its first CI registry under GitHub Actions, else
    /// `local`.
    fn registry_file_repo(&self) -> Result<Option<Resolved<String>>, Error> {
        Ok(self
            .registry_file_repos(self.registry_file.1, 1)?
            .into_iter()
            .next())
    }

    /// Reads the registries of another file than `.registry` (relative to the working
    /// directory), selected by `destination` (`op push --registry-file`, `--destination`).
    pub fn use_registry_file(&mut self, path: &Path, destination: Destination) {
        self.registry_file = (self.cwd.join(path), destination);
    }

    /// The first `limit` registries `destination` selects in the registry file, resolved (only
    /// those: an entry not used is not interpolated), with where each came from. With the
    /// file's own destination, the first is the default repository when nothing before it in
    /// the precedence names one. None without the file.
    pub fn registry_file_repos(
        &self,
        destination: Destination,
        limit: usize,
    ) -> Result<Vec<Resolved<String>>, Error> {
        let path = &self.registry_file.0;
        let Some(file) = RegistryFile::load(path, &self.cwd)? else {
            return Ok(Vec::new());
        };
        file.entries_for(destination, self.env.in_github_actions())
            .into_iter()
            .take(limit)
            .map(|(field, entry)| {
                let value = file.resolve(&field, entry, &self.env, &self.cwd)?;
                Ok(Resolved {
                    value,
                    origin: Origin::RegistryFile {
                        path: display_path(path, &self.cwd),
                        field,
                    },
                })
            })
            .collect()
    }

    /// The skaffold profiles to activate: `--profile` > `$SKAFFOLD_PROFILE` > `SKAFFOLD_PROFILE`
    /// in a settings file. Every source may hold a comma-separated list.
    pub fn profiles(&self, flag: &[String]) -> Resolved<Vec<String>> {
        let split = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        let from_flag: Vec<String> = flag.iter().flat_map(|p| split(p)).collect();
        if !from_flag.is_empty() {
            return Resolved {
                value: from_flag,
                origin: Origin::Flag("--profile".into()),
            };
        }
        match self.setting("SKAFFOLD_PROFILE") {
            Some(found) => Resolved {
                value: split(&found.value),
                origin: found.origin,
            },
            None => Resolved {
                value: Vec::new(),
                origin: Origin::Default,
            },
        }
    }

    /// The tags to give images, the first being the one recorded in `build_result.json`:
    /// `--tag` > a version variable (then `latest` is pushed too) > `tag` in a settings file >
    /// `latest`.
    pub fn tags(&self, flag: Option<&str>) -> Result<Resolved<Vec<String>>, Error> {
        let check = |value: &str, origin: Origin| -> Result<Resolved<String>, Error> {
            match reference::validate_tag(value) {
                Ok(()) => Ok(Resolved {
                    value: value.to_string(),
                    origin,
                }),
                Err(source) => Err(Error::InvalidTag {
                    value: value.to_string(),
                    origin,
                    source,
                }),
            }
        };
        if let Some(tag) = flag {
            let tag = check(tag.trim(), Origin::Flag("--tag".into()))?;
            return Ok(Resolved {
                value: vec![tag.value],
                origin: tag.origin,
            });
        }
        if let Some(var) = VERSION_VARIABLES.iter().find(|v| self.env.get(v).is_some()) {
            let value = self.env.get(var).unwrap_or_default();
            let version = check(value, Origin::Env((*var).to_string()))?;
            let mut tags = vec![version.value];
            if tags[0] != DEFAULT_TAG {
                tags.push(DEFAULT_TAG.to_string());
            }
            return Ok(Resolved {
                value: tags,
                origin: version.origin,
            });
        }
        let found = match self.file_value("TAG") {
            Some(found) => check(&found.value, found.origin)?,
            None => Resolved {
                value: DEFAULT_TAG.to_string(),
                origin: Origin::Default,
            },
        };
        Ok(Resolved {
            value: vec![found.value],
            origin: found.origin,
        })
    }

    /// Registries reached over plain HTTP (and without TLS verification):
    /// `$SKAFFOLD_INSECURE_REGISTRY`, `$SKAFFOLD_INSECURE_REGISTRIES` and `--insecure-registry`,
    /// each a comma-separated list, trimmed and without duplicates.
    pub fn insecure_registries(&self, flag: &[String]) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let from_env = ["SKAFFOLD_INSECURE_REGISTRY", "SKAFFOLD_INSECURE_REGISTRIES"]
            .iter()
            .filter_map(|var| self.env.get(var));
        for list in from_env.chain(flag.iter().map(String::as_str)) {
            for host in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                if !all.iter().any(|h| h == host) {
                    all.push(host.to_string());
                }
            }
        }
        all
    }

    /// The `contexts.<name>` settings of `op run`, with the file they come from.
    pub fn context_options(&self, name: &str) -> Option<(&ContextOptions, &Path)> {
        self.explicit
            .iter()
            .chain(self.octopilot.iter())
            .find_map(|file| file.contexts.get(name).map(|c| (c, file.path.as_path())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, text).unwrap();
        }
        dir
    }

    fn config(dir: &tempfile::TempDir, env: &[(&str, &str)], flag: Option<&str>) -> Config {
        Config::load(
            dir.path(),
            Env::from_pairs(env.iter().copied()),
            flag.map(Path::new),
        )
        .unwrap()
    }

    #[test]
    fn default_repo_follows_the_documented_precedence() {
        let dir = repo_dir(&[
            (
                ".registry",
                "local: reg.local:5000/\nci:\n  - ghcr.io/${OWNER:-acme}\n",
            ),
            (
                ".github/octopilot.yaml",
                "default_repo: yaml.example/team\n",
            ),
            (
                "pipeline.properties",
                "SKAFFOLD_DEFAULT_REPO=props.example\n",
            ),
        ]);
        let repo = |env: &[(&str, &str)], config_flag: Option<&str>, flag: Option<&str>| {
            let c = config(&dir, env, config_flag);
            let r = c.default_repo(flag).unwrap();
            (r.value, r.origin.to_string())
        };
        let props = Some("pipeline.properties");
        let all_env = [
            ("SKAFFOLD_DEFAULT_REPO", "env.example"),
            ("DEFAULT_REPO", "env2.example"),
        ];
        assert_eq!(
            repo(&all_env, props, Some("flag.example/")),
            ("flag.example".into(), "--repo".into())
        );
        assert_eq!(
            repo(&all_env, props, None),
            ("env.example".into(), "$SKAFFOLD_DEFAULT_REPO".into())
        );
        assert_eq!(
            repo(&all_env[1..], props, None),
            ("env2.example".into(), "$DEFAULT_REPO".into())
        );
        assert_eq!(
            repo(&[], props, None),
            (
                "props.example".into(),
                "`SKAFFOLD_DEFAULT_REPO` in `pipeline.properties`".into()
            )
        );
        assert_eq!(
            repo(&[], None, None),
            (
                "yaml.example/team".into(),
                "`default_repo` in `.github/octopilot.yaml`".into()
            )
        );
        fs_err::remove_file(dir.path().join(".github/octopilot.yaml")).unwrap();
        assert_eq!(
            repo(&[], None, None),
            ("reg.local:5000".into(), "`local` in `.registry`".into())
        );
        assert_eq!(
            repo(&[("GITHUB_ACTIONS", "true")], None, None),
            ("ghcr.io/acme".into(), "`ci[0]` in `.registry`".into())
        );
        fs_err::remove_file(dir.path().join(".registry")).unwrap();
        assert_eq!(
            repo(&[], None, None),
            ("localhost:5001".into(), "op's default".into())
        );
    }

    #[test]
    fn the_properties_file_can_come_from_the_environment() {
        let dir = repo_dir(&[(
            "ci/pipeline.properties",
            "SKAFFOLD_DEFAULT_REPO=props.example\n",
        )]);
        let c = config(
            &dir,
            &[("OCTOPILOT_PIPELINE_PROPERTIES", "ci/pipeline.properties")],
            None,
        );
        assert_eq!(c.default_repo(None).unwrap().value, "props.example");
        let err = Config::load(
            dir.path(),
            Env::from_pairs([("OCTOPILOT_PIPELINE_PROPERTIES", "nope.properties")]),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "The settings file `nope.properties` (from $OCTOPILOT_PIPELINE_PROPERTIES) does not exist"
        );
    }

    #[test]
    fn invalid_repositories_name_their_origin() {
        let dir = repo_dir(&[]);
        let err = config(&dir, &[("SKAFFOLD_DEFAULT_REPO", "ghcr.io/My-Org")], None)
            .default_repo(None)
            .unwrap_err();
        assert!(err.to_string().contains("$SKAFFOLD_DEFAULT_REPO"), "{err}");
    }

    #[test]
    fn profiles_come_from_the_flag_then_the_environment_then_files() {
        let dir = repo_dir(&[(".github/octopilot.yaml", "SKAFFOLD_PROFILE: from-file\n")]);
        let c = config(&dir, &[("SKAFFOLD_PROFILE", "a, b")], None);
        assert_eq!(
            c.profiles(&["x,y".into(), "z".into()]).value,
            ["x", "y", "z"]
        );
        assert_eq!(c.profiles(&[]).value, ["a", "b"]);
        assert_eq!(config(&dir, &[], None).profiles(&[]).value, ["from-file"]);
    }

    #[test]
    fn tags_prefer_the_flag_then_a_version_then_the_settings_file() {
        let dir = repo_dir(&[(".github/octopilot.yaml", "tag: dev\n")]);
        let c = config(
            &dir,
            &[
                ("VERSION", "1.2.3"),
                ("DOCKER_METADATA_OUTPUT_VERSION", "v2.0.0"),
            ],
            None,
        );
        assert_eq!(c.tags(Some("x")).unwrap().value, ["x"]);
        let versioned = c.tags(None).unwrap();
        assert_eq!(versioned.value, ["v2.0.0", "latest"]);
        assert_eq!(
            versioned.origin.to_string(),
            "$DOCKER_METADATA_OUTPUT_VERSION"
        );
        assert_eq!(config(&dir, &[], None).tags(None).unwrap().value, ["dev"]);
        let err = config(&dir, &[("TAG", "71/merge")], None)
            .tags(None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`71/merge` (from $TAG) is not a valid image tag"
        );
    }

    #[test]
    fn insecure_registries_merge_env_and_flags_without_duplicates() {
        let dir = repo_dir(&[]);
        let c = config(
            &dir,
            &[
                ("SKAFFOLD_INSECURE_REGISTRY", "a:5000, b"),
                ("SKAFFOLD_INSECURE_REGISTRIES", "b,c"),
            ],
            None,
        );
        assert_eq!(
            c.insecure_registries(&["c,d".into()]),
            ["a:5000", "b", "c", "d"]
        );
    }

    #[test]
    fn a_stale_run_yaml_is_pointed_out() {
        let dir = repo_dir(&[(".run.yaml", "default_repo: x\n")]);
        assert_eq!(config(&dir, &[], None).warnings().len(), 1);
    }
}
