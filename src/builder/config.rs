//! `builder.toml`, pack's format, in the subset `docs/builders.md` documents: read, checked and
//! resolved into a [`BuilderSpec`] whose buildpacks, order and lifecycle are all known to exist.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use cnb_data::files::{BuildpackToml, Group, GroupEntry, OrderToml, RunImageRef};
use serde::Deserialize;

use super::{Error, elf};
use crate::config::Env;

/// `builder.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderToml {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackEntry>,
    #[serde(default)]
    pub order: Vec<OrderGroup>,
    #[serde(default)]
    pub stack: Option<StackSection>,
    #[serde(default)]
    pub build: Option<BuildSection>,
    #[serde(default)]
    pub run: Option<RunSection>,
    #[serde(default)]
    pub lifecycle: Option<LifecycleSection>,
}

/// `[[buildpacks]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildpackEntry {
    pub id: Option<String>,
    pub version: Option<String>,
    pub uri: Option<String>,
}

/// `[[order]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderGroup {
    #[serde(default)]
    pub group: Vec<OrderEntry>,
}

/// `[[order.group]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderEntry {
    pub id: String,
    pub version: Option<String>,
    #[serde(default)]
    pub optional: bool,
}

/// `[stack]` (deprecated by pack, still read).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StackSection {
    pub id: Option<String>,
    pub build_image: Option<String>,
    pub run_image: Option<String>,
    #[serde(default)]
    pub run_image_mirrors: Vec<String>,
}

/// `[build]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    pub image: Option<String>,
    #[serde(default)]
    pub env: Vec<BuildEnv>,
}

/// `[[build.env]]`: a variable of the operator's build configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildEnv {
    pub name: String,
    pub value: String,
    /// `override`, `default`, `prepend` or `append`.
    pub suffix: Option<String>,
    pub delim: Option<String>,
}

/// `[run]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    #[serde(default)]
    pub images: Vec<RunImage>,
}

/// `[[run.images]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunImage {
    pub image: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

/// `[lifecycle]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSection {
    pub uri: Option<String>,
    pub version: Option<String>,
}

/// A buildpack of the builder, read from its directory.
#[derive(Clone, Debug)]
pub struct Buildpack {
    pub dir: PathBuf,
    pub descriptor: BuildpackToml,
}

impl Buildpack {
    pub fn id(&self) -> &str {
        &self.descriptor.buildpack.id
    }

    pub fn version(&self) -> &str {
        &self.descriptor.buildpack.version
    }
}

/// The lifecycle executables that go into `/cnb/lifecycle`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleFiles {
    pub lifecycle: PathBuf,
    /// A separate launcher, else the multi-call `lifecycle` serves as launcher too.
    pub launcher: PathBuf,
}

/// A builder, resolved and checked.
#[derive(Clone, Debug)]
pub struct BuilderSpec {
    pub description: String,
    pub build_image: String,
    pub run_images: Vec<RunImageRef>,
    pub stack_id: Option<String>,
    pub buildpacks: Vec<Buildpack>,
    /// With every version filled in.
    pub order: OrderToml,
    pub build_env: Vec<BuildEnv>,
    /// The lifecycle for this machine's platform (any static one `[lifecycle] uri` names).
    pub lifecycle: LifecycleFiles,
    /// Where lifecycles for other platforms are looked for ([`BuilderSpec::lifecycle_for`]).
    pub lifecycle_search: LifecycleSearch,
}

/// Where the lifecycle is looked for: the file `[lifecycle] uri` names, or directories (that
/// uri, else `$OP_LIFECYCLE_DIR` and op's own directory), each holding `lifecycle` and, per
/// platform, `linux-<arch>/lifecycle`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleSearch {
    File(PathBuf),
    Dirs(Vec<PathBuf>),
}

impl LifecycleSearch {
    /// The paths to try, in order: with `arch`, its platform's directory first.
    fn candidates(&self, arch: &str) -> Vec<PathBuf> {
        match self {
            Self::File(file) => vec![file.clone()],
            Self::Dirs(dirs) => dirs
                .iter()
                .flat_map(|d| {
                    [
                        d.join(format!("linux-{arch}")).join("lifecycle"),
                        d.join("lifecycle"),
                    ]
                })
                .collect(),
        }
    }
}

impl BuilderSpec {
    /// The lifecycle for images of architecture `arch` (`amd64`, `arm64`): the first candidate
    /// of [`LifecycleSearch`] that is a static executable for it.
    pub fn lifecycle_for(&self, arch: &str) -> Result<LifecycleFiles, Error> {
        let searched = self.lifecycle_search.candidates(arch);
        let mut other = Vec::new();
        for candidate in searched.iter().filter(|c| c.is_file()) {
            // The ELF header says the architecture: no need to read the whole executable.
            let mut header = Vec::with_capacity(64);
            fs_err::File::open(candidate)
                .and_then(|file| std::io::Read::take(file, 64).read_to_end(&mut header))
                .map_err(|source| Error::Read { source })?;
            match elf::architecture(&header) {
                Ok(found) if found == arch => return lifecycle_files(candidate.clone()),
                Ok(found) => other.push(format!("`{}` is for {found}", candidate.display())),
                Err(problem) => other.push(format!("`{}`: {problem}", candidate.display())),
            }
        }
        Err(Error::LifecycleForPlatform {
            platform: format!("linux/{arch}"),
            searched,
            other,
        })
    }
}

/// Where op looks for its own lifecycle when `[lifecycle] uri` is not set.
pub const LIFECYCLE_DIR_ENV: &str = crate::config::op_settings::LIFECYCLE_DIR.var;

const ENV_SUFFIXES: [&str; 4] = ["override", "default", "prepend", "append"];

fn invalid(path: &Path, problem: impl Into<String>, hint: Option<&str>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        problem: problem.into(),
        hint: hint.map(str::to_string),
    }
}

/// Reads and resolves the `builder.toml` at `path`. Relative paths in it are relative to its
/// directory, as pack reads them.
pub fn load(path: &Path, env: &Env) -> Result<BuilderSpec, Error> {
    let text = fs_err::read_to_string(path).map_err(|source| Error::Read { source })?;
    let toml: BuilderToml = toml::from_str(&text).map_err(|e| {
        invalid(
            path,
            e.to_string().trim_end().to_string(),
            Some("docs/builders.md lists the keys op reads; pack's other keys are not supported"),
        )
    })?;
    resolve(path, toml, env)
}

/// Checks `toml` (read from `path`) and finds everything it names.
pub fn resolve(path: &Path, toml: BuilderToml, env: &Env) -> Result<BuilderSpec, Error> {
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let stack = toml.stack.unwrap_or_default();
    let build = toml.build.unwrap_or_default();
    let build_image = build.image.or(stack.build_image).ok_or_else(|| {
        invalid(
            path,
            "[build] image is required: the image the builder is made from",
            Some("make a busybox one with `op builder base <image>`"),
        )
    })?;
    let mut run_images: Vec<RunImageRef> = toml
        .run
        .unwrap_or_default()
        .images
        .into_iter()
        .map(|r| RunImageRef {
            image: r.image,
            mirrors: r.mirrors,
        })
        .collect();
    if run_images.is_empty()
        && let Some(image) = stack.run_image
    {
        run_images.push(RunImageRef {
            image,
            mirrors: stack.run_image_mirrors,
        });
    }
    if run_images.is_empty() {
        return Err(invalid(
            path,
            "[[run.images]] is required: at least one image the app images are made from",
            None,
        ));
    }
    for env_var in &build.env {
        check_build_env(path, env_var)?;
    }
    let buildpacks = read_buildpacks(path, &base, &toml.buildpacks)?;
    let order = resolve_order(path, &toml.order, &buildpacks)?;
    let (lifecycle, lifecycle_search) =
        find_lifecycle(path, &base, toml.lifecycle.unwrap_or_default(), env)?;
    Ok(BuilderSpec {
        description: toml.description,
        build_image,
        run_images,
        stack_id: stack.id,
        buildpacks,
        order,
        build_env: build.env,
        lifecycle,
        lifecycle_search,
    })
}

fn check_build_env(path: &Path, var: &BuildEnv) -> Result<(), Error> {
    if var.name.is_empty() || var.name.contains(['/', '=', '.']) {
        return Err(invalid(
            path,
            format!("[[build.env]] name `{}` is not a variable name", var.name),
            None,
        ));
    }
    if let Some(suffix) = var.suffix.as_deref().filter(|s| !ENV_SUFFIXES.contains(s)) {
        return Err(invalid(
            path,
            format!(
                "[[build.env]] `{}`: suffix `{suffix}` is not one of {}",
                var.name,
                ENV_SUFFIXES.join(", ")
            ),
            None,
        ));
    }
    Ok(())
}

/// Reads every `[[buildpacks]]` directory and checks it against its entry.
fn read_buildpacks(
    path: &Path,
    base: &Path,
    entries: &[BuildpackEntry],
) -> Result<Vec<Buildpack>, Error> {
    if entries.is_empty() {
        return Err(invalid(
            path,
            "[[buildpacks]] is empty: a builder needs at least one buildpack",
            None,
        ));
    }
    let mut buildpacks: Vec<Buildpack> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("buildpacks[{index}]");
        let uri = entry
            .uri
            .as_deref()
            .ok_or_else(|| invalid(path, format!("{at}: `uri` is required"), None))?;
        let local = uri.strip_prefix("file://").unwrap_or(uri);
        if local.contains("://") || local.starts_with("urn:") {
            return Err(invalid(
                path,
                format!("{at}: uri `{uri}` is not a local directory"),
                Some("op builds builders from buildpack directories on this machine only"),
            ));
        }
        let dir = base.join(local);
        if !dir.is_dir() {
            return Err(invalid(
                path,
                format!("{at}: `{}` is not a directory", dir.display()),
                None,
            ));
        }
        let toml_path = dir.join("buildpack.toml");
        let text = fs_err::read_to_string(&toml_path).map_err(|source| Error::Read { source })?;
        let descriptor: BuildpackToml = toml::from_str(&text)
            .map_err(|e| invalid(&toml_path, e.to_string().trim_end().to_string(), None))?;
        cnb_data::api::buildpack_api(&descriptor.buildpack.id, &descriptor.api)
            .map_err(|e| invalid(&toml_path, e.message, None))?;
        let found = (&descriptor.buildpack.id, &descriptor.buildpack.version);
        if let Some(id) = entry.id.as_ref().filter(|id| *id != found.0) {
            return Err(invalid(
                path,
                format!(
                    "{at}: id `{id}` does not match `{}` of {}",
                    found.0,
                    toml_path.display()
                ),
                None,
            ));
        }
        if let Some(version) = entry.version.as_ref().filter(|v| *v != found.1) {
            return Err(invalid(
                path,
                format!(
                    "{at}: version `{version}` of `{}` does not match `{}` of {}",
                    found.0,
                    found.1,
                    toml_path.display()
                ),
                None,
            ));
        }
        if found.0.is_empty() || found.1.is_empty() {
            return Err(invalid(
                &toml_path,
                "[buildpack] needs an `id` and a `version`",
                None,
            ));
        }
        if buildpacks
            .iter()
            .any(|b| b.id() == found.0 && b.version() == found.1)
        {
            return Err(invalid(
                path,
                format!("{at}: `{}@{}` is listed twice", found.0, found.1),
                None,
            ));
        }
        buildpacks.push(Buildpack { dir, descriptor });
    }
    Ok(buildpacks)
}

/// The order with versions filled in; every entry (and those of composite buildpacks) must name
/// a buildpack of the builder.
fn resolve_order(
    path: &Path,
    order: &[OrderGroup],
    buildpacks: &[Buildpack],
) -> Result<OrderToml, Error> {
    if order.is_empty() {
        return Err(invalid(
            path,
            "[[order]] is empty: a builder needs at least one group",
            None,
        ));
    }
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for bp in buildpacks {
        versions.entry(bp.id()).or_default().push(bp.version());
    }
    let pick = |at: &str, id: &str, version: Option<&str>| -> Result<String, Error> {
        let known = versions.get(id).cloned().unwrap_or_default();
        match (version, known.as_slice()) {
            (_, []) => Err(invalid(
                path,
                format!("{at}: no buildpack `{id}` in [[buildpacks]]"),
                None,
            )),
            (Some(v), known) if known.contains(&v) => Ok(v.to_string()),
            (Some(v), known) => Err(invalid(
                path,
                format!(
                    "{at}: buildpack `{id}` has no version `{v}` (it has {})",
                    known.join(", ")
                ),
                None,
            )),
            (None, [only]) => Ok((*only).to_string()),
            (None, known) => Err(invalid(
                path,
                format!(
                    "{at}: buildpack `{id}` has versions {}; set `version`",
                    known.join(", ")
                ),
                None,
            )),
        }
    };
    let mut groups = Vec::new();
    for (g, group) in order.iter().enumerate() {
        if group.group.is_empty() {
            return Err(invalid(path, format!("order[{g}] has no buildpacks"), None));
        }
        let mut entries = Vec::new();
        for (e, entry) in group.group.iter().enumerate() {
            let version = pick(
                &format!("order[{g}].group[{e}]"),
                &entry.id,
                entry.version.as_deref(),
            )?;
            entries.push(GroupEntry {
                id: entry.id.clone(),
                version,
                optional: entry.optional,
            });
        }
        groups.push(Group { group: entries });
    }
    for bp in buildpacks {
        for (g, group) in bp.descriptor.order.iter().enumerate() {
            for (e, entry) in group.group.iter().enumerate() {
                let version = Some(entry.version.as_str()).filter(|v| !v.is_empty());
                let at = format!(
                    "the order of composite buildpack `{}` (order[{g}].group[{e}])",
                    bp.id()
                );
                pick(&at, &entry.id, version)?;
            }
        }
    }
    Ok(OrderToml {
        order: groups,
        ..OrderToml::default()
    })
}

/// The lifecycle: `[lifecycle] uri` (a file, or a directory searched as below), else
/// `$OP_LIFECYCLE_DIR`, else the op executable's directory; in a directory,
/// `linux-<this machine's arch>/lifecycle`, else `lifecycle`. It must be a static executable:
/// builder images may have no libc.
fn find_lifecycle(
    path: &Path,
    base: &Path,
    section: LifecycleSection,
    env: &Env,
) -> Result<(LifecycleFiles, LifecycleSearch), Error> {
    if let Some(version) = section.version {
        return Err(invalid(
            path,
            format!("[lifecycle] version `{version}`: op does not download lifecycles"),
            Some(
                "set [lifecycle] uri to a static lifecycle executable, or leave [lifecycle] out to use op's own",
            ),
        ));
    }
    let search = if let Some(uri) = section.uri {
        let local = uri.strip_prefix("file://").unwrap_or(&uri).to_string();
        let path = base.join(local);
        if path.is_dir() {
            LifecycleSearch::Dirs(vec![path])
        } else {
            LifecycleSearch::File(path)
        }
    } else {
        let mut dirs = Vec::new();
        dirs.extend(crate::config::op_settings::lifecycle_dir(env));
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        LifecycleSearch::Dirs(dirs)
    };
    let searched = search.candidates(&op_oci::Platform::host().architecture);
    let Some(lifecycle) = searched.iter().find(|c| c.is_file()).cloned() else {
        return Err(Error::LifecycleNotFound { searched });
    };
    Ok((lifecycle_files(lifecycle)?, search))
}

/// `lifecycle` (static) and its launcher: `launcher` next to it, else itself.
fn lifecycle_files(lifecycle: PathBuf) -> Result<LifecycleFiles, Error> {
    check_static(&lifecycle)?;
    let sibling = lifecycle.with_file_name("launcher");
    let launcher = if sibling.is_file() {
        check_static(&sibling)?;
        sibling
    } else {
        lifecycle.clone()
    };
    Ok(LifecycleFiles {
        lifecycle,
        launcher,
    })
}

fn check_static(path: &Path) -> Result<(), Error> {
    let data = fs_err::read(path).map_err(|source| Error::Read { source })?;
    match elf::interpreter(&data) {
        Ok(None) => Ok(()),
        Ok(Some(interpreter)) => Err(Error::NotStatic {
            path: path.to_path_buf(),
            problem: format!("it needs {interpreter}"),
        }),
        Err(problem) => Err(Error::NotStatic {
            path: path.to_path_buf(),
            problem,
        }),
    }
}
