//! What op copies into the creator container before it starts, as tars extracted at `/`:
//!
//! - the app: the artifact's context under `workspace/`, every entry (the root one included)
//!   owned by the builder's `CNB_USER_ID:CNB_GROUP_ID`, so the lifecycle never has to chown it
//!   (`docs/cnb-platform.md` section 6.2); `project.toml`'s `include`/`exclude` (gitignore
//!   patterns) decide which files go;
//! - `platform/env/<NAME>`: `project.toml`'s build environment (`[[build.env]]`,
//!   `[[io.buildpacks.build.env]]`), then the artifact's `buildpacks.env`, which wins;
//! - `layers/order.toml`: the artifact's `buildpacks.buildpacks`, as one group.
//!
//! Symlinks are kept, special files (sockets, fifos) are left out. Modification times are kept,
//! as pack does: the lifecycle normalises them in the layers it exports.

use std::path::Path;

use op_lifecycle::files::{Group, GroupEntry, OrderToml, Report};
use op_oci::archive::{LayerBuilder, Owner, Select};
use regex::Regex;
use serde::Deserialize;

use super::Error;
use crate::plan::EnvVar;

/// Which files of the context go into the app.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    mode: Mode,
    patterns: Vec<Pattern>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Everything,
    Include,
    Exclude,
}

/// One gitignore-style pattern.
#[derive(Clone, Debug)]
struct Pattern {
    regex: Regex,
    negated: bool,
    dir_only: bool,
}

impl Pattern {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return None;
        }
        let (negated, text) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let dir_only = text.ends_with('/');
        let text = text.trim_end_matches('/');
        let anchored = text.starts_with('/') || text.contains('/');
        let text = text.trim_start_matches('/');
        let mut body = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        body.push_str("(?:.*/)?");
                    } else {
                        body.push_str(".*");
                    }
                }
                '*' => body.push_str("[^/]*"),
                '?' => body.push_str("[^/]"),
                c => body.push_str(&regex::escape(&c.to_string())),
            }
        }
        let full = if anchored {
            format!("^{body}$")
        } else {
            format!("^(?:.*/)?{body}$")
        };
        Some(Self {
            regex: Regex::new(&full).ok()?,
            negated,
            dir_only,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct Descriptor {
    /// Schema 0.1: `[build]`, with `include`/`exclude` and `[[build.env]]`.
    #[serde(default)]
    build: Option<Selection>,
    #[serde(default, rename = "io")]
    io: Option<IoSection>,
}

#[derive(Debug, Default, Deserialize)]
struct IoSection {
    /// Schema 0.2: `[io.buildpacks]`, with `include`/`exclude` and `[[io.buildpacks.build.env]]`.
    #[serde(default)]
    buildpacks: Option<IoBuildpacks>,
}

#[derive(Debug, Default, Deserialize)]
struct Selection {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    env: Vec<EnvEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct IoBuildpacks {
    #[serde(flatten)]
    selection: Selection,
    #[serde(default)]
    build: Option<IoBuild>,
}

#[derive(Debug, Default, Deserialize)]
struct IoBuild {
    #[serde(default)]
    env: Vec<EnvEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct EnvEntry {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

/// What op reads of a project descriptor (`project.toml`): which files go into the app, and the
/// build environment its buildpacks see (before the artifact's `buildpacks.env`, which wins, as
/// pack's `--env` wins over the descriptor's).
#[derive(Clone, Debug, Default)]
pub struct ProjectDescriptor {
    pub filter: Filter,
    pub env: Vec<EnvVar>,
}

impl ProjectDescriptor {
    /// Reads `path` (`[build]` of schema 0.1, `[io.buildpacks]` of 0.2, which wins where a file
    /// has both); nothing when there is none.
    pub fn read(path: Option<&Path>) -> Result<Self, Error> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let invalid = |problem: String| Error::ProjectDescriptor {
            path: path.to_path_buf(),
            problem,
        };
        let text = fs_err::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let descriptor: Descriptor =
            toml::from_str(&text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        let (selection, env, table) =
            match (descriptor.io.and_then(|io| io.buildpacks), descriptor.build) {
                (Some(io), _) => {
                    let env = io.build.map(|b| b.env).unwrap_or_default();
                    (io.selection, env, "io.buildpacks.build.env")
                }
                (None, Some(mut build)) => {
                    let env = std::mem::take(&mut build.env);
                    (build, env, "build.env")
                }
                (None, None) => (Selection::default(), Vec::new(), "build.env"),
            };
        let mut vars: Vec<EnvVar> = Vec::new();
        for (i, entry) in env.into_iter().enumerate() {
            let valid = !entry.name.is_empty()
                && entry
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
            if !valid {
                return Err(invalid(format!(
                    "[[{table}]] entry {} has the name `{}`: a name is letters, digits, `_`, `.` and `-` (e.g. `name = \"BP_WEB_SERVER\"`)",
                    i + 1,
                    entry.name
                )));
            }
            vars.retain(|v| v.name != entry.name);
            vars.push(EnvVar {
                name: entry.name,
                value: entry.value,
            });
        }
        let (mode, patterns) = match (selection.include.is_empty(), selection.exclude.is_empty()) {
            (true, true) => (Mode::Everything, Vec::new()),
            (false, false) => {
                return Err(invalid(
                    "it has both `include` and `exclude`; use one".into(),
                ));
            }
            (false, true) => (Mode::Include, selection.include),
            (true, false) => (Mode::Exclude, selection.exclude),
        };
        Ok(Self {
            filter: Filter {
                mode,
                patterns: patterns.iter().filter_map(|p| Pattern::parse(p)).collect(),
            },
            env: vars,
        })
    }

    /// The build environment of the artifact: this descriptor's, then `overrides` (the
    /// artifact's `buildpacks.env` and what op forwards), which win by name.
    pub fn env_with(&self, overrides: &[EnvVar]) -> Vec<EnvVar> {
        let mut all: Vec<EnvVar> = self
            .env
            .iter()
            .filter(|v| !overrides.iter().any(|o| o.name == v.name))
            .cloned()
            .collect();
        all.extend(overrides.iter().cloned());
        all
    }
}

impl Filter {
    /// Whether a pattern matches `path` (relative, `/`-separated) or one of its directories.
    fn matches(&self, path: &str, is_dir: bool) -> bool {
        let mut matched = false;
        let parts: Vec<&str> = path.split('/').collect();
        for end in 1..=parts.len() {
            let prefix = parts[..end].join("/");
            let prefix_is_dir = end < parts.len() || is_dir;
            for pattern in &self.patterns {
                if (!pattern.dir_only || prefix_is_dir) && pattern.regex.is_match(&prefix) {
                    matched = !pattern.negated;
                }
            }
            if matched && end < parts.len() {
                // A matched directory covers what is below it.
                return true;
            }
        }
        matched
    }

    /// Whether the file at `path` goes into the app.
    pub fn keeps(&self, path: &str, is_dir: bool) -> bool {
        match self.mode {
            Mode::Everything => true,
            Mode::Include => self.matches(path, is_dir),
            Mode::Exclude => !self.matches(path, is_dir),
        }
    }

    /// What the app's tar does with the entry at `path`: an excluded directory is left out with
    /// everything below it; in include mode, a directory no pattern names is still walked, and
    /// written only when something below it is kept.
    fn select(&self, path: &str, is_dir: bool) -> Select {
        match (self.keeps(path, is_dir), self.mode, is_dir) {
            (true, _, _) => Select::Keep,
            (false, Mode::Include, true) => Select::Skip,
            (false, _, _) => Select::Prune,
        }
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything copied into the creator container before it starts, as one tar (one call to the
/// engine), written by `op_oci::archive`.
pub struct Inputs {
    tar: LayerBuilder,
}

impl Default for Inputs {
    fn default() -> Self {
        Self::new()
    }
}

impl Inputs {
    pub fn new() -> Self {
        Self {
            tar: LayerBuilder::copy(),
        }
    }

    /// The app: `context` as `workspace/…`, owned by `uid:gid`.
    pub fn app(
        &mut self,
        context: &Path,
        uid: u32,
        gid: u32,
        filter: &Filter,
    ) -> Result<(), Error> {
        let owner = Owner::Fixed(u64::from(uid), u64::from(gid));
        self.tar
            .selected_tree(context, "workspace", owner, &|path, is_dir| {
                filter.select(path, is_dir)
            })
            .map_err(io_error(context))
    }

    /// `platform/env/<NAME>` files for `env` (root-owned, readable by the build user).
    pub fn platform_env(&mut self, env: &[EnvVar]) -> Result<(), Error> {
        let fail = io_error(Path::new("/platform/env"));
        for dir in ["platform", "platform/env"] {
            self.tar.dir(dir, 0o755, 0, 0).map_err(&fail)?;
        }
        for var in env {
            let path = format!("platform/env/{}", var.name);
            self.tar
                .file(&path, var.value.as_bytes(), 0o644, 0, 0)
                .map_err(&fail)?;
        }
        Ok(())
    }

    /// The order of `buildpacks` (`id`, `version`, resolved against the builder) as
    /// `layers/order.toml`, which the lifecycle prefers to the builder's.
    pub fn order(&mut self, buildpacks: &[(String, String)]) -> Result<(), Error> {
        let order = OrderToml {
            order: vec![Group {
                group: buildpacks
                    .iter()
                    .map(|(id, version)| GroupEntry {
                        id: id.clone(),
                        version: version.clone(),
                        optional: false,
                    })
                    .collect(),
            }],
            ..OrderToml::default()
        };
        let text = toml::to_string(&order).unwrap_or_default();
        self.tar
            .file("layers/order.toml", text.as_bytes(), 0o644, 0, 0)
            .map_err(io_error(Path::new("/layers/order.toml")))
    }

    /// The tar, to extract at `/`.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        self.tar
            .finish()
            .map(|layer| layer.tar)
            .map_err(io_error(Path::new("/")))
    }
}

/// `report.toml` out of the tar the engine returns for `/layers/report.toml`.
pub fn read_report(tar: &[u8]) -> Result<Report, String> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(tar);
    let mut entry = archive
        .entries()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("the archive is empty")?
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    entry.read_to_string(&mut text).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| format!("report.toml is not valid: {e}"))
}

#[cfg(test)]
mod tests;
