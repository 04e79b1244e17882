//! `project.toml`, the project descriptor, as pack reads it. Its schema is chosen by
//! `[_] schema-version`: none or `0.1` reads `[build]`, `0.2` and `0.3` read `[io.buildpacks]`
//! (pack's rule: a file without `schema-version` is 0.1, and its `[io.buildpacks]` is ignored,
//! with a warning). op reads:
//!
//! - which files go into the app (`include`/`exclude`, gitignore patterns);
//! - the build environment (`[[build.env]]`, `[[io.buildpacks.build.env]]`, or the deprecated
//!   `[[io.buildpacks.env.build]]`), before the artifact's `buildpacks.env`, which wins;
//! - the buildpacks: a group (`[[build.buildpacks]]`, `[[io.buildpacks.group]]`) replaces the
//!   builder's order with one group (`from=builder` splices the builder's groups in where it
//!   stands); without a group, `pre` and `post` groups go before and after every group of the
//!   builder's order. skaffold's `buildpacks.buildpacks` replaces all of it (pack's `--buildpack`
//!   rule, and skaffold's). Entries are the builder's buildpacks (`id`, `version`,
//!   `urn:cnb:builder:`), local buildpack directories (`uri`, relative to project.toml) and
//!   inline buildpacks (`script`); op fetches no buildpack (`docker://`, `urn:cnb:registry:`,
//!   URLs are refused with a hint).
//!
//! `[_]`/`[project]` metadata goes nowhere: pack (outside its experimental mode), skaffold and
//! upstream op write no project metadata either, so the image's `io.buildpacks.project.metadata`
//! label is `{}` with either lifecycle.

use std::path::{Path, PathBuf};

use cnb_data::files::{Group, GroupEntry};
use serde::Deserialize;

use super::Error;
use super::app::Filter;
use super::builder::BuilderInfo;
use crate::plan::EnvVar;

#[derive(Debug, Default, Deserialize)]
struct Raw {
    #[serde(default, rename = "_")]
    underscore: Option<Underscore>,
    #[serde(default)]
    build: Option<Build01>,
    #[serde(default)]
    io: Option<Io>,
}

#[derive(Debug, Default, Deserialize)]
struct Underscore {
    #[serde(default, rename = "schema-version")]
    schema_version: Option<String>,
}

/// Schema 0.1's `[build]`.
#[derive(Debug, Default, Deserialize)]
struct Build01 {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    env: Vec<EnvEntry>,
    #[serde(default)]
    buildpacks: Vec<Entry>,
    #[serde(default)]
    pre: Option<GroupList>,
    #[serde(default)]
    post: Option<GroupList>,
}

#[derive(Debug, Default, Deserialize)]
struct Io {
    #[serde(default)]
    buildpacks: Option<Io02>,
}

/// Schema 0.2's (and 0.3's) `[io.buildpacks]`.
#[derive(Debug, Default, Deserialize)]
struct Io02 {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    group: Vec<Entry>,
    #[serde(default)]
    build: Option<EnvList>,
    /// The deprecated `[[io.buildpacks.env.build]]`, read when `build.env` is absent.
    #[serde(default)]
    env: Option<EnvBuild>,
    #[serde(default)]
    pre: Option<GroupList>,
    #[serde(default)]
    post: Option<GroupList>,
}

#[derive(Debug, Default, Deserialize)]
struct GroupList {
    #[serde(default)]
    group: Vec<Entry>,
}

#[derive(Debug, Default, Deserialize)]
struct EnvList {
    #[serde(default)]
    env: Option<Vec<EnvEntry>>,
}

#[derive(Debug, Default, Deserialize)]
struct EnvBuild {
    #[serde(default)]
    build: Vec<EnvEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct EnvEntry {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

/// A buildpack entry of a group, as written.
#[derive(Debug, Default, Deserialize)]
struct Entry {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    script: Option<Script>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
struct Script {
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    inline: Option<String>,
    #[serde(default)]
    shell: Option<String>,
}

/// A buildpack project.toml names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Buildpack {
    /// One of the builder's (`id`, `id@version`, `urn:cnb:builder:id[@version]`).
    Builder { id: String, version: Option<String> },
    /// Every group of the builder's order, at this place (`from=builder`).
    FromBuilder,
    /// A buildpack directory (a `uri` that is a path, relative to project.toml, or `file://`).
    Directory(PathBuf),
    /// An inline buildpack.
    Inline(Inline),
}

/// An inline buildpack (`script`): `bin/build` is the script, `bin/detect` passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inline {
    pub id: String,
    pub version: String,
    /// Its Buildpack API.
    pub api: String,
    /// The script.
    pub inline: String,
    /// Its interpreter (`/bin/sh` unless told).
    pub shell: String,
}

/// What op reads of a project descriptor.
#[derive(Clone, Debug, Default)]
pub struct ProjectDescriptor {
    pub filter: Filter,
    pub env: Vec<EnvVar>,
    pub group: Vec<Buildpack>,
    pub pre: Vec<Buildpack>,
    pub post: Vec<Buildpack>,
    /// What the user should know (pack's warnings, and what op ignores).
    pub warnings: Vec<String>,
}

/// A buildpack op adds to the builder's for one build (copied into `/cnb/buildpacks`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    Directory {
        path: PathBuf,
        id: String,
        version: String,
    },
    Inline(Inline),
}

/// The order of one build, when it is not the builder's own: its groups (`id`, `version`,
/// `optional`) and the buildpacks it adds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Order {
    pub groups: Vec<Group>,
    pub added: Vec<Added>,
}

impl ProjectDescriptor {
    /// Reads `path`; nothing when there is none.
    pub fn read(path: Option<&Path>) -> Result<Self, Error> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = fs_err::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let invalid = |problem: String| Error::ProjectDescriptor {
            path: path.to_path_buf(),
            problem,
        };
        let raw: Raw =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut warnings = Vec::new();
        let Sections {
            include,
            exclude,
            env,
            group,
            pre,
            post,
            tables,
        } = sections(raw, &mut warnings).map_err(&invalid)?;
        let env = build_env(env, tables[0]).map_err(&invalid)?;
        let entries = |list: Vec<Entry>, table: &str| -> Result<Vec<Buildpack>, Error> {
            list.into_iter()
                .enumerate()
                .map(|(i, e)| {
                    buildpack(e, base)
                        .map_err(|p| invalid(format!("[[{table}]] entry {}: {p}", i + 1)))
                })
                .collect()
        };
        let (group, pre, post) = (
            entries(group, tables[1])?,
            entries(pre, tables[2])?,
            entries(post, tables[3])?,
        );
        for (table, list) in [(tables[2], &pre), (tables[3], &post)] {
            if list.contains(&Buildpack::FromBuilder) {
                return Err(invalid(format!(
                    "[[{table}]] names `from=builder`, which only a group may"
                )));
            }
        }
        if group
            .iter()
            .filter(|b| **b == Buildpack::FromBuilder)
            .count()
            > 1
        {
            return Err(invalid(format!(
                "[[{}]] names `from=builder` twice",
                tables[1]
            )));
        }
        let filter = Filter::from_patterns(include, exclude)
            .ok_or_else(|| invalid("it has both `include` and `exclude`; use one".into()))?;
        Ok(Self {
            filter,
            env,
            group,
            pre,
            post,
            warnings,
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

    /// The order of the build with `builder`: skaffold's `buildpacks.buildpacks` (`skaffold`)
    /// when it names any, else this descriptor's group, else the builder's order with the
    /// `pre` and `post` buildpacks around each group; `None` for the builder's own order. What
    /// is set aside is added to [`ProjectDescriptor::warnings`].
    pub fn order(
        &mut self,
        skaffold: &[String],
        builder: &BuilderInfo,
    ) -> Result<Option<Order>, String> {
        if !skaffold.is_empty() {
            if !self.group.is_empty() || !self.pre.is_empty() || !self.post.is_empty() {
                self.warnings.push(
                    "project.toml's buildpacks are not used: skaffold.yaml's `buildpacks.buildpacks` replaces them"
                        .into(),
                );
            }
            let group = builder
                .resolve_buildpacks(skaffold)?
                .into_iter()
                .map(|(id, version)| entry(id, version))
                .collect();
            return Ok(Some(Order {
                groups: vec![Group { group }],
                added: Vec::new(),
            }));
        }
        let mut added = Vec::new();
        if !self.group.is_empty() {
            if !self.pre.is_empty() || !self.post.is_empty() {
                self.warnings.push(
                    "project.toml's pre and post groups are not used: its group replaces the builder's order (pack's rule)"
                        .into(),
                );
            }
            let at = self.group.iter().position(|b| *b == Buildpack::FromBuilder);
            let (before, after) = match at {
                Some(at) => (&self.group[..at], &self.group[at + 1..]),
                None => (&self.group[..], &[][..]),
            };
            let before = resolve(before, builder, &mut added)?;
            let after = resolve(after, builder, &mut added)?;
            let groups = match at {
                Some(_) => around(builder_order(builder)?, &before, &after),
                None => vec![Group { group: before }],
            };
            return Ok(Some(Order { groups, added }));
        }
        if self.pre.is_empty() && self.post.is_empty() {
            return Ok(None);
        }
        // pack prepends the pre buildpacks one by one: the last listed comes first.
        let mut pre = resolve(&self.pre, builder, &mut added)?;
        pre.reverse();
        let post = resolve(&self.post, builder, &mut added)?;
        Ok(Some(Order {
            groups: around(builder_order(builder)?, &pre, &post),
            added,
        }))
    }
}

/// The tables of the declared schema.
struct Sections {
    include: Vec<String>,
    exclude: Vec<String>,
    env: Vec<EnvEntry>,
    group: Vec<Entry>,
    pre: Vec<Entry>,
    post: Vec<Entry>,
    /// The names of the env, group, pre and post tables, for messages.
    tables: [&'static str; 4],
}

/// The tables of `raw` its `[_] schema-version` says to read (pack's rule).
fn sections(raw: Raw, warnings: &mut Vec<String>) -> Result<Sections, String> {
    let schema = raw
        .underscore
        .as_ref()
        .and_then(|u| u.schema_version.clone());
    match schema.as_deref() {
        None | Some("0.1") => {
            if schema.is_none() {
                warnings.push(if raw.io.as_ref().is_some_and(|io| io.buildpacks.is_some()) {
                    "project.toml declares no `[_] schema-version`, so it is read as schema 0.1 (pack's rule) and its \
                     `[io.buildpacks]` table is ignored: add `[_]` with `schema-version = \"0.2\"`"
                        .to_string()
                } else {
                    "project.toml declares no `[_] schema-version`: read as schema 0.1 (pack's rule)".to_string()
                });
            }
            let b = raw.build.unwrap_or_default();
            Ok(Sections {
                include: b.include,
                exclude: b.exclude,
                env: b.env,
                group: b.buildpacks,
                pre: b.pre.map(|g| g.group).unwrap_or_default(),
                post: b.post.map(|g| g.group).unwrap_or_default(),
                tables: [
                    "build.env",
                    "build.buildpacks",
                    "build.pre.group",
                    "build.post.group",
                ],
            })
        }
        Some("0.2" | "0.3") => {
            let io = raw.io.and_then(|io| io.buildpacks).unwrap_or_default();
            let env = match io.build.and_then(|b| b.env) {
                Some(env) => env,
                None => io.env.map(|e| e.build).unwrap_or_default(),
            };
            Ok(Sections {
                include: io.include,
                exclude: io.exclude,
                env,
                group: io.group,
                pre: io.pre.map(|g| g.group).unwrap_or_default(),
                post: io.post.map(|g| g.group).unwrap_or_default(),
                tables: [
                    "io.buildpacks.build.env",
                    "io.buildpacks.group",
                    "io.buildpacks.pre.group",
                    "io.buildpacks.post.group",
                ],
            })
        }
        Some(other) => Err(format!(
            "`[_] schema-version` is `{other}`; pack and op read 0.1, 0.2 and 0.3"
        )),
    }
}

fn entry(id: String, version: String) -> GroupEntry {
    GroupEntry {
        id,
        version,
        optional: false,
    }
}

/// The builder's order, which `from=builder`, `pre` and `post` need.
fn builder_order(builder: &BuilderInfo) -> Result<Vec<Group>, String> {
    if builder.order.is_empty() {
        return Err(format!(
            "builder `{}` has no order (its `io.buildpacks.buildpack.order` label), which `from=builder`, `pre` and `post` \
             extend",
            builder.image
        ));
    }
    // pack's order label leaves out the versions builder.toml left out; the lifecycle needs
    // them (it reads `/cnb/buildpacks/<id>/<version>`).
    builder
        .order
        .iter()
        .map(|g| {
            let group = g
                .group
                .iter()
                .map(|e| {
                    let version = if e.version.is_empty() {
                        builder.resolve_buildpack(&e.id, None)?.1
                    } else {
                        e.version.clone()
                    };
                    Ok(GroupEntry {
                        version,
                        ..e.clone()
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Group { group })
        })
        .collect()
}

/// Every group of `order` with `before` first and `after` last.
fn around(order: Vec<Group>, before: &[GroupEntry], after: &[GroupEntry]) -> Vec<Group> {
    order
        .into_iter()
        .map(|g| Group {
            group: before
                .iter()
                .cloned()
                .chain(g.group)
                .chain(after.iter().cloned())
                .collect(),
        })
        .collect()
}

/// The group entries of `buildpacks`; directories and inline buildpacks go to `added`.
fn resolve(
    buildpacks: &[Buildpack],
    builder: &BuilderInfo,
    added: &mut Vec<Added>,
) -> Result<Vec<GroupEntry>, String> {
    let mut group = Vec::new();
    for buildpack in buildpacks {
        match buildpack {
            Buildpack::Builder { id, version } => {
                let (id, version) = builder.resolve_buildpack(id, version.as_deref())?;
                group.push(entry(id, version));
            }
            Buildpack::FromBuilder => {}
            Buildpack::Directory(path) => {
                let (id, version) = read_descriptor(path)?;
                group.push(entry(id.clone(), version.clone()));
                added.push(Added::Directory {
                    path: path.clone(),
                    id,
                    version,
                });
            }
            Buildpack::Inline(inline) => {
                group.push(entry(inline.id.clone(), inline.version.clone()));
                added.push(Added::Inline(inline.clone()));
            }
        }
    }
    Ok(group)
}

/// `[buildpack] id` and `version` of the buildpack directory `dir`.
fn read_descriptor(dir: &Path) -> Result<(String, String), String> {
    #[derive(Deserialize)]
    struct Descriptor {
        buildpack: Info,
    }
    #[derive(Deserialize)]
    struct Info {
        id: String,
        version: String,
    }
    let path = dir.join("buildpack.toml");
    let text = fs_err::read_to_string(&path)
        .map_err(|e| format!("buildpack directory `{}`: {e}", dir.display()))?;
    let d: Descriptor = toml::from_str(&text)
        .map_err(|e| format!("`{}` is not a buildpack descriptor: {e}", path.display()))?;
    Ok((d.buildpack.id, d.buildpack.version))
}

/// The build environment entries, checked: later entries replace earlier ones by name.
fn build_env(entries: Vec<EnvEntry>, table: &str) -> Result<Vec<EnvVar>, String> {
    let mut vars: Vec<EnvVar> = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let valid = !entry.name.is_empty()
            && entry
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !valid {
            return Err(format!(
                "[[{table}]] entry {} has the name `{}`: a name is letters, digits, `_`, `.` and `-` (e.g. `name = \"BP_WEB_SERVER\"`)",
                i + 1,
                entry.name
            ));
        }
        vars.retain(|v| v.name != entry.name);
        vars.push(EnvVar {
            name: entry.name,
            value: entry.value,
        });
    }
    Ok(vars)
}

/// One group entry as pack reads it (`getBuildpackLocator`): an inline buildpack, a `uri`, or
/// an `id` with an optional `version`.
fn buildpack(e: Entry, base: &Path) -> Result<Buildpack, String> {
    if e.uri.is_some() && e.version.is_some() {
        return Err("it has both `uri` and `version`; a uri names one version already".into());
    }
    if let (Some(id), Some(script), None) = (&e.id, &e.script, &e.uri)
        && let Some(inline) = &script.inline
    {
        let api = script.api.clone().filter(|a| !a.is_empty()).ok_or_else(|| {
            format!("inline buildpack `{id}` has no `script.api` (the Buildpack API of the script, e.g. \"0.10\")")
        })?;
        return Ok(Buildpack::Inline(Inline {
            id: id.clone(),
            version: e.version.clone().unwrap_or_else(|| "0.0.0".into()),
            api,
            inline: inline.clone(),
            shell: script.shell.clone().unwrap_or_else(|| "/bin/sh".into()),
        }));
    }
    if let Some(uri) = e.uri {
        return locate(&uri, base);
    }
    let Some(id) = e.id.filter(|id| !id.is_empty()) else {
        return Err("it has neither `id` nor `uri`".into());
    };
    if id == "from=builder" {
        return Ok(Buildpack::FromBuilder);
    }
    Ok(Buildpack::Builder {
        id,
        version: e.version,
    })
}

/// A `uri`, as pack locates it: `from=builder`, a builder's buildpack, a local directory, or
/// something op does not fetch.
fn locate(uri: &str, base: &Path) -> Result<Buildpack, String> {
    if uri == "from=builder" {
        return Ok(Buildpack::FromBuilder);
    }
    if uri.starts_with("urn:cnb:builder:") || uri.starts_with("from=builder:") {
        return Ok(builder_buildpack(uri));
    }
    let local = match uri.strip_prefix("file://") {
        Some(path) => Some(PathBuf::from(path)),
        None if !has_scheme(uri) => Some(base.join(uri)),
        None => None,
    };
    if let Some(path) = local {
        if path.is_dir() {
            return Ok(Buildpack::Directory(path));
        }
        if path.exists() {
            return Err(format!(
                "`{uri}` is a file: op copies buildpack directories, not archives; unpack it, or add it to the builder"
            ));
        }
        if uri.starts_with("file://") {
            return Err(format!("`{uri}` does not exist"));
        }
        // A bare name that is no path: a buildpack of the builder, as pack tries next.
        return Ok(builder_buildpack(uri));
    }
    Err(format!(
        "`{uri}`: op builds with the builder's buildpacks, local buildpack directories and inline scripts, and does not \
         fetch buildpacks (docker://, urn:cnb:registry:, http(s)://); add it to the builder (`op builder create`, \
         `pack builder create`) and name it by `id`"
    ))
}

/// The builder's buildpack `entry` names ([`super::builder::buildpack_id`]).
fn builder_buildpack(entry: &str) -> Buildpack {
    let (id, version) = super::builder::buildpack_id(entry);
    Buildpack::Builder {
        id: id.to_string(),
        version: version.map(str::to_string),
    }
}

/// Whether `uri` starts with a scheme (`docker://`, `https://`, `urn:cnb:registry:`).
fn has_scheme(uri: &str) -> bool {
    uri.starts_with("urn:")
        || uri.split_once(':').is_some_and(|(scheme, rest)| {
            rest.starts_with('/')
                && !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        })
}

#[cfg(test)]
mod tests;
