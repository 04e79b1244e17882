//! What op copies into the creator container before it starts, as tars extracted at `/`:
//!
//! - the app: the artifact's context under `workspace/`, every entry (the root one included)
//!   owned by the builder's `CNB_USER_ID:CNB_GROUP_ID`, so the lifecycle never has to chown it
//!   (`docs/cnb-platform.md` section 6.2); `project.toml`'s `include`/`exclude` (gitignore
//!   patterns) decide which files go;
//! - `platform/env/<NAME>`: the artifact's `buildpacks.env`;
//! - `layers/order.toml`: the artifact's `buildpacks.buildpacks`, as one group.
//!
//! Symlinks are kept, special files (sockets, fifos) are left out. Modification times are kept,
//! as pack does: the lifecycle normalises them in the layers it exports.

use std::path::{Path, PathBuf};

use op_lifecycle::files::{Group, GroupEntry, OrderToml, Report};
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
    #[serde(default)]
    build: Option<Selection>,
    #[serde(default, rename = "io")]
    io: Option<IoSection>,
}

#[derive(Debug, Default, Deserialize)]
struct IoSection {
    #[serde(default)]
    buildpacks: Option<Selection>,
}

#[derive(Debug, Default, Deserialize)]
struct Selection {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

impl Filter {
    /// The filter of a project descriptor (`[build]` of schema 0.1, `[io.buildpacks]` of 0.2).
    pub fn from_project_descriptor(path: Option<&Path>) -> Result<Self, Error> {
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
        let selection = descriptor
            .io
            .and_then(|io| io.buildpacks)
            .or(descriptor.build)
            .unwrap_or_default();
        let (mode, patterns) = match (selection.include.is_empty(), selection.exclude.is_empty()) {
            (true, true) => return Ok(Self::default()),
            (false, false) => {
                return Err(invalid(
                    "it has both `include` and `exclude`; use one".into(),
                ));
            }
            (false, true) => (Mode::Include, selection.include),
            (true, false) => (Mode::Exclude, selection.exclude),
        };
        Ok(Self {
            mode,
            patterns: patterns.iter().filter_map(|p| Pattern::parse(p)).collect(),
        })
    }

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
}

fn header(
    kind: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(u64::from(uid));
    header.set_gid(u64::from(gid));
    header.set_size(size);
    header.set_mtime(mtime);
    header
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything copied into the creator container before it starts, as one tar (one call to the
/// engine).
pub struct Inputs {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Inputs {
    fn default() -> Self {
        Self::new()
    }
}

impl Inputs {
    pub fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
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
        append_app(&mut self.builder, context, uid, gid, filter)
    }

    /// `platform/env/<NAME>` files for `env` (root-owned, readable by the build user).
    pub fn platform_env(&mut self, env: &[EnvVar]) -> Result<(), Error> {
        let fail = |source| Error::Read {
            path: PathBuf::from("/platform/env"),
            source,
        };
        for dir in ["platform", "platform/env"] {
            let mut h = header(tar::EntryType::Directory, 0o755, 0, 0, 0, 0);
            self.builder
                .append_data(&mut h, dir, std::io::empty())
                .map_err(fail)?;
        }
        for var in env {
            let mut h = header(
                tar::EntryType::Regular,
                0o644,
                0,
                0,
                var.value.len() as u64,
                0,
            );
            self.builder
                .append_data(
                    &mut h,
                    format!("platform/env/{}", var.name),
                    var.value.as_bytes(),
                )
                .map_err(fail)?;
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
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, text.len() as u64, 0);
        self.builder
            .append_data(&mut h, "layers/order.toml", text.as_bytes())
            .map_err(|source| Error::Read {
                path: PathBuf::from("/layers/order.toml"),
                source,
            })
    }

    /// The tar, to extract at `/`.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        self.builder.into_inner().map_err(|source| Error::Read {
            path: PathBuf::from("/"),
            source,
        })
    }
}

fn append_app(
    builder: &mut tar::Builder<Vec<u8>>,
    context: &Path,
    uid: u32,
    gid: u32,
    filter: &Filter,
) -> Result<(), Error> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = fs_err::metadata(context).map_err(io_error(context))?;
    let mode = meta.permissions().mode() & 0o7777;
    let mut root = header(
        tar::EntryType::Directory,
        mode,
        uid,
        gid,
        0,
        u64::try_from(meta.mtime()).unwrap_or(0),
    );
    builder
        .append_data(&mut root, "workspace", std::io::empty())
        .map_err(io_error(context))?;

    // Files first collected, so that directories are only written when something in them is.
    let mut entries: Vec<(PathBuf, String, std::fs::Metadata)> = Vec::new();
    collect(context, "", filter, &mut entries)?;
    let mut written_dirs: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (path, relative, meta) in entries {
        let name = format!("workspace/{relative}");
        // Parents of a kept file (in include mode they may not match themselves).
        let parents: Vec<String> = Path::new(&relative)
            .ancestors()
            .skip(1)
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        for dir in parents.into_iter().rev() {
            if written_dirs.contains(&dir) {
                continue;
            }
            let dir_path = context.join(&dir);
            let dir_meta = fs_err::metadata(&dir_path).map_err(io_error(&dir_path))?;
            let mut h = header(
                tar::EntryType::Directory,
                dir_meta.permissions().mode() & 0o7777,
                uid,
                gid,
                0,
                u64::try_from(dir_meta.mtime()).unwrap_or(0),
            );
            builder
                .append_data(&mut h, format!("workspace/{dir}"), std::io::empty())
                .map_err(io_error(&dir_path))?;
            written_dirs.insert(dir);
        }
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        if kind.is_dir() {
            if written_dirs.insert(relative) {
                let mut h = header(tar::EntryType::Directory, mode, uid, gid, 0, mtime);
                builder
                    .append_data(&mut h, &name, std::io::empty())
                    .map_err(io_error(&path))?;
            }
        } else if kind.is_symlink() {
            let target = fs_err::read_link(&path).map_err(io_error(&path))?;
            let mut h = header(tar::EntryType::Symlink, 0o777, uid, gid, 0, mtime);
            builder
                .append_link(&mut h, &name, &target)
                .map_err(io_error(&path))?;
        } else {
            let file = fs_err::File::open(&path).map_err(io_error(&path))?;
            let mut h = header(tar::EntryType::Regular, mode, uid, gid, meta.len(), mtime);
            builder
                .append_data(&mut h, &name, file)
                .map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Every entry below `dir` that the filter keeps, in name order, depth first.
fn collect(
    dir: &Path,
    prefix: &str,
    filter: &Filter,
    out: &mut Vec<(PathBuf, String, std::fs::Metadata)>,
) -> Result<(), Error> {
    let mut names: Vec<_> = fs_err::read_dir(dir)
        .map_err(io_error(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_error(dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let relative = format!("{prefix}{}", name.to_string_lossy());
        let meta = fs_err::symlink_metadata(&path).map_err(io_error(&path))?;
        let kind = meta.file_type();
        if !(kind.is_dir() || kind.is_file() || kind.is_symlink()) {
            continue;
        }
        if kind.is_dir() {
            if filter.mode == Mode::Exclude && !filter.keeps(&relative, true) {
                continue;
            }
            if filter.keeps(&relative, true) {
                out.push((path.clone(), relative.clone(), meta));
            }
            collect(&path, &format!("{relative}/"), filter, out)?;
        } else if filter.keeps(&relative, false) {
            out.push((path, relative, meta));
        }
    }
    Ok(())
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
