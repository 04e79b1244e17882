//! BUILDING: each buildpack of the group runs `bin/build <layers>/<id> <platform> <plan>` in the
//! app directory (`buildpack/build.go` and `phase/builder.go` of the reference lifecycle).
//!
//! After each buildpack: layers whose `[types]` are all false are renamed `<layer>.ignore`; the
//! `build = true` layers change the environment of the buildpacks after it (`bin`, `lib`, …,
//! `env/`, `env.build/`); `build.toml` `[[unmet]]` entries stay in the plan for later providers;
//! `launch.toml` contributes processes (a later buildpack's process type replaces an earlier
//! one's), labels and slices. The result is `<layers>/config/metadata.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::api::Version;
use crate::buildpack::{self, Descriptor, ExecInputs, Store};
use crate::env::{Action, Env};
use crate::exit::{self, Context as _, Error};
use crate::files::{
    self, BuildMetadata, BuildToml, BuildpackPlan, BuildpackPlanEntry, GroupElement, Label,
    LaunchToml, LayerToml, PlanToml, Process, Slice,
};
use crate::log;

mod sbom;

/// Names of files in a buildpack's layers directory that are not layers.
const NOT_LAYERS: [&str; 3] = ["launch", "build", "store"];

/// The legacy BOM (`[[bom]]` of `launch.toml` and `build.toml`, every Buildpack API) as the
/// reference lifecycle writes it for Platform API 0.9 and later: `sbom/launch/sbom.legacy.json`
/// and `sbom/build/sbom.legacy.json`, Go's JSON of the entries of every buildpack in group
/// order (`null` when there are none). The exporter makes the image's SBOM layer of
/// `sbom/launch`.
fn write_legacy_sboms(
    sbom_dir: &Path,
    launch: &[LegacyBomEntry],
    build: &[LegacyBomEntry],
) -> Result<(), Error> {
    for (kind, entries) in [("launch", launch), ("build", build)] {
        let dir = sbom_dir.join(kind);
        fs_err::create_dir_all(&dir)
            .and_then(|()| fs_err::write(dir.join("sbom.legacy.json"), go_json(entries)))
            .context(exit::BUILD_ERROR, || {
                format!("failed to write the {kind} SBOM")
            })?;
    }
    Ok(())
}

/// An entry of the legacy BOM, with the buildpack that wrote it, in the field order of the
/// reference's `BOMEntry` (`name`, `metadata`, `buildpack`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
struct LegacyBomEntry {
    name: String,
    metadata: serde_json::Value,
    buildpack: BomBuildpack,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
struct BomBuildpack {
    id: String,
    version: String,
}

/// TOML as the JSON Go makes of what `BurntSushi/toml` decodes: tables are maps (keys sorted
/// on output), date-times are strings.
fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => J::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// `entries` as Go's `json.NewEncoder(f).Encode` writes them: compact, `<`, `>`, `&`, U+2028
/// and U+2029 escaped, a newline at the end, `null` for none.
fn go_json(entries: &[LegacyBomEntry]) -> String {
    let text = if entries.is_empty() {
        "null".to_string()
    } else {
        serde_json::to_string(entries).unwrap_or_else(|_| "null".into())
    };
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// Checks a buildpack's legacy BOM (`bom.go` of the reference): a top-level `version` is an
/// error; entries without any `<layer>.sbom.*.json` of the buildpack get the deprecation
/// warning. Returns the entries tagged with the buildpack.
fn legacy_bom(
    descriptor: &Descriptor,
    layers_dir: &Path,
    bom: &[files::BomEntry],
) -> Result<Vec<LegacyBomEntry>, Error> {
    if !bom.is_empty() && !has_sbom_files(layers_dir) {
        log::warn(
            "BOM table is deprecated in this buildpack api version, though it remains supported for backwards compatibility. Buildpack authors should write BOM information to <layer>.sbom.<ext>, launch.sbom.<ext>, or build.sbom.<ext>.",
        );
    }
    if let Some(entry) = bom
        .iter()
        .find(|e| e.version.as_deref().is_some_and(|v| !v.is_empty()))
    {
        return Err(Error::new(
            exit::BUILD_ERROR,
            format!(
                "bom entry '{}' has a top level version which is not allowed. The buildpack should instead set metadata.version",
                entry.name
            ),
        ));
    }
    Ok(bom
        .iter()
        .map(|e| LegacyBomEntry {
            name: e.name.clone(),
            metadata: e.metadata.as_ref().map_or(serde_json::Value::Null, |m| {
                toml_to_json(&toml::Value::Table(m.clone()))
            }),
            buildpack: BomBuildpack {
                id: descriptor.id().to_string(),
                version: descriptor.version().to_string(),
            },
        })
        .collect())
}

/// Whether the buildpack wrote an SBOM file (`<layers>/<id>/*.sbom.*.json`).
fn has_sbom_files(layers_dir: &Path) -> bool {
    fs_err::read_dir(layers_dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json")
                .is_some_and(|stem| stem.contains(".sbom."))
        })
    })
}

/// The name of a TOML value's type as Go's TOML decoder names it.
fn go_type(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "string",
        toml::Value::Integer(_) => "int64",
        toml::Value::Float(_) => "float64",
        toml::Value::Boolean(_) => "bool",
        toml::Value::Datetime(_) => "time.Time",
        toml::Value::Array(_) => "[]interface {}",
        toml::Value::Table(_) => "map[string]interface {}",
    }
}

/// A process of `launch.toml` decoded by the Buildpack API of the buildpack that wrote it
/// (`DecodeLaunchTOML` and `ToLaunchProcess` of the reference): below 0.9 `command` is one
/// string, the only entry of the command, and `direct` defaults to false; from 0.9 `command` is
/// a list and the process is direct. Below 0.8 `working-dir` is ignored, with a warning.
fn decode_process(
    entry: &files::ProcessEntry,
    api: Version,
    buildpack_id: &str,
) -> Result<Process, String> {
    let incompatible = |value: &toml::Value, destination: &str| {
        format!(
            "toml: incompatible types: TOML value has type {}; destination has type {destination}",
            go_type(value)
        )
    };
    let (command, direct) = if api.at_least(Version(0, 9)) {
        if entry.direct.is_some() {
            return Err("process.direct is not supported on this buildpack version".into());
        }
        let command = match &entry.command {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(incompatible(other, "string")),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(incompatible(other, "slice")),
        };
        (command, true)
    } else {
        let command = match &entry.command {
            None => Vec::new(),
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(other) => return Err(incompatible(other, "string")),
        };
        (command, entry.direct.unwrap_or(false))
    };
    let mut working_dir = entry.working_dir.clone().filter(|w| !w.is_empty());
    if working_dir.is_some() && !api.at_least(Version(0, 8)) {
        log::warn(&format!(
            "Warning: process working directory isn't supported in this buildpack api version. Ignoring working directory for process '{}'",
            entry.kind
        ));
        working_dir = None;
    }
    Ok(Process {
        kind: entry.kind.clone(),
        command,
        args: entry.args.clone(),
        direct,
        default: entry.default,
        buildpack_id: buildpack_id.to_string(),
        working_dir,
        exec_env: entry.exec_env.clone(),
    })
}

/// What the build phase needs.
pub struct Builder<'a> {
    pub store: &'a Store,
    pub layers_dir: &'a Path,
    pub app_dir: &'a Path,
    pub platform_dir: &'a Path,
    pub build_config_dir: Option<&'a Path>,
    pub target_env: &'a [(String, String)],
    pub exec_env: Option<&'a str>,
    /// The build environment, which `build = true` layers change as buildpacks run.
    pub env: Env,
}

impl Builder<'_> {
    /// Builds with `group` and `plan`, writes `config/metadata.toml`, and returns it.
    pub fn build(
        &mut self,
        group: &[GroupElement],
        plan: &PlanToml,
    ) -> Result<BuildMetadata, Error> {
        let sbom_dir = self.layers_dir.join("sbom");
        if sbom_dir.exists() {
            fs_err::remove_dir_all(&sbom_dir).context(exit::BUILD_ERROR, || {
                "failed to clean the layers SBOM directory".into()
            })?;
        }
        let mut plan = plan.clone();
        let mut processes: BTreeMap<String, Process> = BTreeMap::new();
        let mut default_type: Option<String> = None;
        let mut labels: Vec<Label> = Vec::new();
        let mut slices: Vec<Slice> = Vec::new();
        let mut sbom_files: Vec<sbom::File> = Vec::new();
        let (mut launch_bom, mut build_bom) = (Vec::new(), Vec::new());
        for element in group {
            let descriptor = self
                .store
                .lookup(&element.id, &element.version, exit::BUILD_ERROR)?;
            let outputs = self.build_one(&descriptor, &plan)?;
            plan = filter_plan(&plan, &outputs.met);
            sbom_files.extend(outputs.sbom_files);
            launch_bom.extend(outputs.launch_bom);
            build_bom.extend(outputs.build_bom);
            labels.extend(outputs.launch.labels);
            slices.extend(outputs.launch.slices);
            for mut process in outputs.processes {
                if process.default {
                    default_type = Some(process.kind.clone());
                } else if default_type.as_deref() == Some(process.kind.as_str()) {
                    default_type = None;
                    log::warn(&format!(
                        "redefining the following default process type with a process not marked as default: {}",
                        process.kind
                    ));
                }
                process.default = false;
                processes.insert(process.kind.clone(), process);
            }
        }
        let metadata = BuildMetadata {
            default_process_type: default_type,
            buildpacks: group.to_vec(),
            processes: processes.into_values().collect(),
            labels,
            slices,
        };
        let config_dir = self.layers_dir.join("config");
        fs_err::create_dir_all(&config_dir).context(exit::BUILD_ERROR, || {
            "failed to create the config directory".into()
        })?;
        files::write_toml(&config_dir.join("metadata.toml"), &metadata)
            .map_err(|e| Error::new(exit::BUILD_ERROR, e))?;
        sbom::copy(self.layers_dir, &sbom_files)?;
        write_legacy_sboms(&sbom_dir, &launch_bom, &build_bom)?;
        Ok(metadata)
    }

    fn build_one(&mut self, descriptor: &Descriptor, plan: &PlanToml) -> Result<Outputs, Error> {
        let fail = |what: String| Error::new(exit::BUILD_ERROR, what);
        let bp_plan = find_plan(plan, descriptor.id());
        let layers_dir = self.layers_dir.join(buildpack::escape_id(descriptor.id()));
        fs_err::create_dir_all(&layers_dir)
            .map_err(|e| fail(format!("failed to create the layers directory: {e}")))?;
        let plan_dir = tempfile::Builder::new()
            .prefix(&format!("{}-", buildpack::escape_id(descriptor.id())))
            .tempdir()
            .map_err(|e| fail(format!("failed to create a plan directory: {e}")))?;
        let plan_path = plan_dir.path().join("plan.toml");
        files::write_toml(&plan_path, &bp_plan).map_err(fail)?;

        let exec = ExecInputs {
            app_dir: self.app_dir,
            platform_dir: self.platform_dir,
            build_config_dir: self.build_config_dir,
            env: &self.env,
            target_env: self.target_env,
            exec_env: self.exec_env,
        };
        let mut command = exec.command(
            descriptor,
            "build",
            &[&layers_dir, self.platform_dir, &plan_path],
            &[
                ("CNB_BP_PLAN_PATH", plan_path.display().to_string()),
                ("CNB_LAYERS_DIR", layers_dir.display().to_string()),
            ],
        )?;
        // Buildpack output goes where the lifecycle's goes, as it comes.
        command.stdin(Stdio::null());
        let status = command.status().map_err(|e| {
            Error::new(
                exit::FAILED_BUILD_WITH_ERRORS,
                format!("failed to run the build of {}: {e}", descriptor.id()),
            )
        })?;
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| format!("exit status {c}"));
            return Err(Error::new(
                exit::FAILED_BUILD_WITH_ERRORS,
                format!(
                    "failed to build: buildpack {}@{} failed with {code}",
                    descriptor.id(),
                    descriptor.version()
                ),
            ));
        }

        let sbom_files = sbom::find(
            descriptor.id(),
            &layers_dir,
            &read_layers(&layers_dir)?,
            &descriptor.toml.buildpack.sbom_formats,
        )?;
        self.apply_layers(&layers_dir)?;
        let mut outputs = outputs(descriptor, &bp_plan, &layers_dir)?;
        outputs.sbom_files = sbom_files;
        Ok(outputs)
    }

    /// Sets aside layers without types (`<layer>.ignore`) and adds build layers to the
    /// environment of the next buildpacks.
    fn apply_layers(&mut self, layers_dir: &Path) -> Result<(), Error> {
        let fail = |what: String| Error::new(exit::BUILD_ERROR, what);
        let layers = read_layers(layers_dir)?;
        for (path, layer) in &layers {
            let types = layer.types();
            if !types.launch && !types.build && !types.cache && path.is_dir() {
                let ignored = PathBuf::from(format!("{}.ignore", path.display()));
                fs_err::rename(path, ignored)
                    .map_err(|e| fail(format!("failed to set a layer aside: {e}")))?;
            }
        }
        for (path, layer) in &layers {
            if layer.types().build {
                self.env.add_root_dir(path);
                for dir in ["env", "env.build"] {
                    self.env
                        .add_env_dir(&path.join(dir), Action::Override)
                        .map_err(|e| {
                            fail(format!("failed to apply {}: {e}", path.join(dir).display()))
                        })?;
                }
            }
        }

        Ok(())
    }
}

struct Outputs {
    met: Vec<String>,
    /// `launch.toml`, its processes decoded into `processes`.
    launch: LaunchToml,
    processes: Vec<Process>,
    launch_bom: Vec<LegacyBomEntry>,
    build_bom: Vec<LegacyBomEntry>,
    /// The SBOM files it wrote (copied to `<layers>/sbom` once every buildpack built).
    sbom_files: Vec<sbom::File>,
}

/// The layers of a buildpack: every `<name>.toml` but `launch`, `build` and `store`, in name
/// order, with the path of the layer directory.
pub fn read_layers(layers_dir: &Path) -> Result<Vec<(PathBuf, LayerToml)>, Error> {
    let fail = |what: String| Error::new(exit::BUILD_ERROR, what);
    let mut names: Vec<String> = match fs_err::read_dir(layers_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".toml"))
                    .map(str::to_string)
            })
            .filter(|n| !NOT_LAYERS.contains(&n.as_str()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(fail(e.to_string())),
    };
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let toml_path = layers_dir.join(format!("{name}.toml"));
            let text = fs_err::read_to_string(&toml_path).map_err(|e| fail(e.to_string()))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| fail(format!("failed to parse {}: {e}", toml_path.display())))?;
            if ["launch", "build", "cache"]
                .iter()
                .any(|k| table.contains_key(*k))
            {
                return Err(fail(format!(
                    "the launch, cache and build flags should be in the types table of {}",
                    toml_path.display()
                )));
            }
            let layer: LayerToml = toml::from_str(&text)
                .map_err(|e| fail(format!("failed to parse {}: {e}", toml_path.display())))?;
            Ok((layers_dir.join(name), layer))
        })
        .collect()
}

/// The buildpack plan of `id`: the requirements of the entries it provides.
fn find_plan(plan: &PlanToml, id: &str) -> BuildpackPlan {
    BuildpackPlan {
        entries: plan
            .entries
            .iter()
            .filter(|e| e.providers.iter().any(|p| p.id == id))
            .flat_map(|e| e.requires.iter())
            .map(|r| BuildpackPlanEntry {
                name: r.name.clone(),
                metadata: r.metadata.clone(),
            })
            .collect(),
    }
}

/// The plan without the entries whose requirements were met.
fn filter_plan(plan: &PlanToml, met: &[String]) -> PlanToml {
    PlanToml {
        entries: plan
            .entries
            .iter()
            .filter(|e| !e.requires.iter().any(|r| met.contains(&r.name)))
            .cloned()
            .collect(),
    }
}

/// What a buildpack's `bin/build` declared: the plan entries it met (`build.toml` `unmet`
/// removed), its legacy BOMs, and `launch.toml`, checked, with its processes decoded by the
/// buildpack's API (in the order of `readOutputFilesBp` of the reference).
fn outputs(
    descriptor: &Descriptor,
    bp_plan: &BuildpackPlan,
    layers_dir: &Path,
) -> Result<Outputs, Error> {
    let fail = |what: String| Error::new(exit::BUILD_ERROR, what);
    let build_toml: BuildToml = files::read_toml(&layers_dir.join("build.toml"))
        .map_err(fail)?
        .unwrap_or_default();
    // The reference checks the build BOM twice, so its warning may show twice.
    legacy_bom(descriptor, layers_dir, &build_toml.bom)?;
    let build_bom = legacy_bom(descriptor, layers_dir, &build_toml.bom)?;
    for unmet in &build_toml.unmet {
        if unmet.name.is_empty() {
            return Err(fail("unmet.name is required".into()));
        }
        if !bp_plan.entries.iter().any(|e| e.name == unmet.name) {
            return Err(fail(format!(
                "unmet.name '{}' must match a requested dependency",
                unmet.name
            )));
        }
    }
    let met = bp_plan
        .entries
        .iter()
        .filter(|e| !build_toml.unmet.iter().any(|u| u.name == e.name))
        .map(|e| e.name.clone())
        .collect();
    let launch: LaunchToml = files::read_toml(&layers_dir.join("launch.toml"))
        .map_err(fail)?
        .unwrap_or_default();
    let processes = launch
        .processes
        .iter()
        .map(|entry| decode_process(entry, descriptor.api, descriptor.id()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let launch_bom = legacy_bom(descriptor, layers_dir, &launch.bom)?;
    if processes.iter().filter(|p| p.default).count() > 1 {
        return Err(fail("multiple default process types aren't allowed".into()));
    }
    for process in &processes {
        if process.kind.is_empty()
            || !process
                .kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(fail(format!(
                "invalid process type '{}': use letters, digits, '.', '_' and '-'",
                process.kind
            )));
        }
        if process.command.is_empty() {
            return Err(fail(format!(
                "process '{}' has an empty command",
                process.kind
            )));
        }
    }
    Ok(Outputs {
        met,
        launch,
        processes,
        launch_bom,
        build_bom,
        sbom_files: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
