//! The files and labels of the CNB platform and buildpack contracts, as serde types.
//!
//! TOML files: `buildpack.toml`, `order.toml`, `group.toml`, the build plan a buildpack's
//! `bin/detect` writes, `plan.toml`, the buildpack plan `bin/build` reads, `analyzed.toml`,
//! `<layer>.toml`, `launch.toml`, `build.toml`, `store.toml`, `config/metadata.toml`,
//! `report.toml`, `run.toml`, `lifecycle.toml`. JSON labels: `io.buildpacks.lifecycle.metadata`,
//! `io.buildpacks.build.metadata`, `io.buildpacks.builder.metadata`,
//! `io.buildpacks.buildpack.layers`, and the cache metadata.
//!
//! Files written by buildpacks are read tolerantly (unknown keys are ignored) unless the spec
//! makes a key an error; op reads the labels of real builders with the same types.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Free-form TOML metadata (`[metadata]`).
pub type Metadata = toml::Table;

/// A buildpack's `id` as the name of its directory (under `/cnb/buildpacks` and `/layers`).
pub fn escape_id(id: &str) -> String {
    id.replace('/', "_")
}

/// Reads a TOML file; `Ok(None)` when it does not exist.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match fs_err::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| format!("failed to parse {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("failed to read {}: {e}", path.display())),
    }
}

/// Reads a JSON `null` as the default (empty) value. Go marshals a nil slice or map as `null`,
/// so the labels pack and the reference lifecycle write have them (`"mirrors":null`,
/// `"args":null`); every list and map of a label type reads through this.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `value` without its `null`s, in objects and arrays, at any depth. TOML has no null: the
/// labels the real lifecycle writes (Go) have `null` where a value is absent, and so do the
/// layer metadata they carry, so they lose them on their way into a TOML file.
pub fn without_nulls(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(without_nulls)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Writes `value`, which holds JSON values (a label's metadata), as TOML to `path`, its `null`s
/// left out ([`without_nulls`]).
pub fn write_json_as_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let json = serde_json::to_value(value)
        .map_err(|e| format!("failed to encode {}: {e}", path.display()))?;
    write_toml(path, &without_nulls(&json))
}

/// Writes `value` as TOML to `path`.
pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text =
        toml::to_string(value).map_err(|e| format!("failed to encode {}: {e}", path.display()))?;
    fs_err::write(path, text).map_err(|e| format!("failed to write {}: {e}", path.display()))
}

// ---- buildpack.toml -------------------------------------------------------------------------

/// `buildpack.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct BuildpackToml {
    pub api: String,
    pub buildpack: BuildpackInfo,
    /// A composite buildpack's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<Group>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<Stack>,
}

/// `[buildpack]` of `buildpack.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct BuildpackInfo {
    pub id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(
        default,
        rename = "clear-env",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub clear_env: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The media types of the SBOM files it writes.
    #[serde(
        default,
        rename = "sbom-formats",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sbom_formats: Vec<String>,
}

/// A target a buildpack supports (`[[targets]]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(
        default,
        alias = "arch-variant",
        skip_serializing_if = "Option::is_none"
    )]
    pub variant: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub distros: Vec<Distro>,
}

/// A distribution (`name`, `version`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Distro {
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// A deprecated `[[stacks]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Stack {
    pub id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mixins: Vec<String>,
}

// ---- order ------------------------------------------------------------------------------------

/// `order.toml` (`/cnb/order.toml`, `<layers>/order.toml`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OrderToml {
    #[serde(default)]
    pub order: Vec<Group>,
    /// Image extensions, which op-lifecycle does not run: read only to refuse them.
    #[serde(
        default,
        rename = "order-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub order_extensions: Vec<Group>,
}

/// A group of an order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Group {
    #[serde(default, deserialize_with = "nullable")]
    pub group: Vec<GroupEntry>,
}

/// A buildpack of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupEntry {
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// `group.toml`: the buildpacks that passed detection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupToml {
    #[serde(default)]
    pub group: Vec<GroupElement>,
}

/// A buildpack of `group.toml` (and of `config/metadata.toml`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupElement {
    pub id: String,
    pub version: String,
    pub api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

// ---- build plans ------------------------------------------------------------------------------

/// What `bin/detect` writes to the plan path.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct DetectPlan {
    #[serde(flatten)]
    pub sections: PlanSections,
    #[serde(default)]
    pub or: Vec<PlanSections>,
}

/// `provides` and `requires` of a build plan.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PlanSections {
    #[serde(default)]
    pub provides: Vec<Provide>,
    #[serde(default)]
    pub requires: Vec<Require>,
}

/// A dependency a buildpack provides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Provide {
    pub name: String,
}

/// A dependency a buildpack requires.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Require {
    pub name: String,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// Not allowed (use `metadata.version`); kept so that it can be refused.
    #[serde(default, skip_serializing)]
    pub version: Option<toml::Value>,
}

/// `plan.toml`: the resolved plan.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct PlanToml {
    #[serde(default)]
    pub entries: Vec<PlanEntry>,
}

/// An entry of `plan.toml`: who provides a dependency, and the requirements for it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct PlanEntry {
    pub providers: Vec<Provider>,
    pub requires: Vec<Require>,
}

/// A provider of a plan entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Provider {
    pub id: String,
    pub version: String,
}

/// The buildpack plan `bin/build` reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct BuildpackPlan {
    #[serde(default)]
    pub entries: Vec<BuildpackPlanEntry>,
}

/// An entry of a buildpack plan.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct BuildpackPlanEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

// ---- analyzed.toml ----------------------------------------------------------------------------

/// `analyzed.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Analyzed {
    /// The previous image, when it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageIdentifier>,
    /// Its `io.buildpacks.lifecycle.metadata` label (with the label's JSON key names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<LayersMetadata>,
    #[serde(rename = "run-image")]
    pub run_image: RunImageInfo,
}

/// An image by reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageIdentifier {
    pub reference: String,
}

/// `[run-image]` of `analyzed.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunImageInfo {
    /// The run image by digest.
    pub reference: String,
    /// The run image as named.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetMetadata>,
}

/// The target of the run image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TargetMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub os: String,
    pub arch: String,
    #[serde(
        default,
        rename = "arch-variant",
        skip_serializing_if = "Option::is_none"
    )]
    pub arch_variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
}

// ---- layers -----------------------------------------------------------------------------------

/// `<layer>.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct LayerToml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<LayerTypes>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl LayerToml {
    /// The layer's types (all false when `[types]` is absent).
    pub fn types(&self) -> LayerTypes {
        self.types.unwrap_or_default()
    }
}

/// `[types]` of `<layer>.toml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct LayerTypes {
    #[serde(default)]
    pub launch: bool,
    #[serde(default)]
    pub build: bool,
    #[serde(default)]
    pub cache: bool,
}

/// `launch.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct LaunchToml {
    /// The legacy BOM (deprecated, still read for every Buildpack API).
    #[serde(default)]
    pub bom: Vec<BomEntry>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub processes: Vec<ProcessEntry>,
    #[serde(default)]
    pub slices: Vec<Slice>,
}

/// A label a buildpack adds to the image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// A process of `launch.toml`, as written: `command` is a string and `direct` is allowed
/// (default false) below Buildpack API 0.9; from 0.9 `command` is a list and `direct` an error
/// (the build phase decodes it by the buildpack's API). Other keys are ignored, as the reference
/// lifecycle ignores them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ProcessEntry {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub command: Option<toml::Value>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub direct: Option<bool>,
    #[serde(default)]
    pub default: bool,
    #[serde(default, rename = "working-dir")]
    pub working_dir: Option<String>,
    #[serde(default, rename = "exec-env")]
    pub exec_env: Vec<String>,
}

/// An entry of the legacy BOM (`[[bom]]` of `launch.toml` and `build.toml`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct BomEntry {
    #[serde(default)]
    pub name: String,
    /// Not allowed: the build fails when it is set.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// `[[slices]]` of `launch.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Slice {
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `build.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct BuildToml {
    /// The legacy BOM of the build (deprecated, still read for every Buildpack API).
    #[serde(default)]
    pub bom: Vec<BomEntry>,
    #[serde(default)]
    pub unmet: Vec<Unmet>,
}

/// `[[unmet]]` of `build.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Unmet {
    #[serde(default)]
    pub name: String,
}

/// `store.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct StoreToml {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Metadata,
}

// ---- config/metadata.toml and the build metadata label ----------------------------------------

/// `config/metadata.toml`, which the launcher reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct BuildMetadata {
    #[serde(
        default,
        rename = "buildpack-default-process-type",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_process_type: Option<String>,
    #[serde(default)]
    pub buildpacks: Vec<GroupElement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<Process>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<Slice>,
}

/// A process of the image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Process {
    #[serde(rename = "type")]
    pub kind: String,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default)]
    pub direct: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(rename = "buildpack-id")]
    pub buildpack_id: String,
    #[serde(
        default,
        rename = "working-dir",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// The `io.buildpacks.build.metadata` label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMetadataLabel {
    #[serde(default, deserialize_with = "nullable")]
    pub buildpacks: Vec<LabelBuildpack>,
    #[serde(default, deserialize_with = "nullable")]
    pub processes: Vec<LabelProcess>,
    pub launcher: LauncherInfo,
    #[serde(
        rename = "buildpack-default-process-type",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_process_type: Option<String>,
}

/// A buildpack of the build metadata label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelBuildpack {
    pub id: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

/// A process of the build metadata label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelProcess {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub command: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<String>,
    pub direct: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub default: bool,
    #[serde(rename = "buildpackID")]
    pub buildpack_id: String,
    #[serde(rename = "working-dir", skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        rename = "exec-env",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exec_env: Vec<String>,
}

/// `launcher` of the build metadata label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LauncherInfo {
    pub version: String,
    pub source: LauncherSource,
}

/// Where the launcher comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LauncherSource {
    pub git: GitSource,
}

/// A git repository and commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    pub repository: String,
    pub commit: String,
}

// ---- the lifecycle metadata label and the cache metadata ---------------------------------------

/// The `io.buildpacks.lifecycle.metadata` label: where each layer of the image came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayersMetadata {
    #[serde(default, deserialize_with = "nullable")]
    pub app: Vec<LayerSha>,
    /// The SBOM layer (`<layers>/sbom/launch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<LayerSha>,
    #[serde(default, deserialize_with = "nullable")]
    pub buildpacks: Vec<BuildpackLayers>,
    #[serde(default)]
    pub config: LayerSha,
    #[serde(default)]
    pub launcher: LayerSha,
    #[serde(default, rename = "process-types")]
    pub process_types: LayerSha,
    #[serde(default, rename = "runImage")]
    pub run_image: RunImageForRebase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackMetadata>,
}

impl LayersMetadata {
    /// The layers of buildpack `id`.
    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayers> {
        self.buildpacks.iter().find(|b| b.key == id)
    }
}

/// A layer by its diffID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSha {
    #[serde(default)]
    pub sha: String,
}

/// A buildpack's layers in the lifecycle metadata label (and in the cache metadata).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayers {
    pub key: String,
    #[serde(default)]
    pub version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub layers: BTreeMap<String, LayerMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreToml>,
}

/// A layer in the lifecycle metadata label (and in the cache metadata).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerMetadata {
    #[serde(default)]
    pub sha: String,
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default)]
    pub build: bool,
    #[serde(default)]
    pub launch: bool,
    #[serde(default)]
    pub cache: bool,
}

/// `runImage` of the lifecycle metadata label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageForRebase {
    #[serde(default, rename = "topLayer")]
    pub top_layer: String,
    #[serde(default)]
    pub reference: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mirrors: Vec<String>,
}

/// The legacy `stack` of the lifecycle metadata label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackMetadata {
    #[serde(rename = "runImage")]
    pub run_image: RunImageRef,
}

/// A run image and its mirrors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageRef {
    pub image: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mirrors: Vec<String>,
}

impl RunImageRef {
    /// The image, or its mirror in the registry of `output` (pack's and the lifecycle's
    /// preference: the app image is published where its run image is), the registry of a
    /// reference being `registry_of`'s (`None` for a reference that does not parse).
    pub fn for_output(&self, output: &str, registry_of: impl Fn(&str) -> Option<String>) -> &str {
        let Some(registry) = registry_of(output) else {
            return &self.image;
        };
        std::iter::once(&self.image)
            .chain(&self.mirrors)
            .find(|candidate| registry_of(candidate).as_ref() == Some(&registry))
            .unwrap_or(&self.image)
    }
}

/// The metadata of a volume cache (`committed/io.buildpacks.lifecycle.cache.metadata`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    #[serde(default, deserialize_with = "nullable")]
    pub buildpacks: Vec<BuildpackLayers>,
}

impl CacheMetadata {
    /// The cached layers of buildpack `id`.
    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayers> {
        self.buildpacks.iter().find(|b| b.key == id)
    }
}

// ---- report.toml, run.toml, lifecycle.toml, project metadata -----------------------------------

/// `report.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Report {
    pub image: ImageReport,
}

/// `[image]` of `report.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageReport {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, rename = "image-id", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(
        default,
        rename = "manifest-size",
        skip_serializing_if = "Option::is_none"
    )]
    pub manifest_size: Option<u64>,
}

/// `run.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunToml {
    #[serde(default)]
    pub images: Vec<RunImageRef>,
}

/// `stack.toml` (legacy run image metadata, written for older platforms).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StackToml {
    #[serde(rename = "run-image")]
    pub run_image: RunImageRef,
}

/// `lifecycle.toml`, next to the lifecycle in `/cnb/lifecycle`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct LifecycleToml {
    pub apis: Apis,
    pub api: LegacyApis,
    pub lifecycle: LifecycleInfo,
}

/// `[apis]` of `lifecycle.toml` (and of the builder metadata label).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Apis {
    pub buildpack: ApiSet,
    pub platform: ApiSet,
}

/// Supported and deprecated API versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ApiSet {
    #[serde(default, deserialize_with = "nullable")]
    pub deprecated: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub supported: Vec<String>,
}

/// `[api]` of `lifecycle.toml`: the oldest version of each API (legacy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct LegacyApis {
    pub buildpack: String,
    pub platform: String,
}

/// `[lifecycle]` of `lifecycle.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct LifecycleInfo {
    pub version: String,
}

impl LifecycleToml {
    /// The descriptor of op-lifecycle at `version`, with the APIs it implements ([`crate::api`]).
    pub fn describing(version: &str) -> Self {
        let versions =
            |list: &[crate::api::Version]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        Self {
            apis: Apis {
                buildpack: ApiSet {
                    deprecated: Vec::new(),
                    supported: versions(&crate::api::BUILDPACK_APIS),
                },
                platform: ApiSet {
                    deprecated: Vec::new(),
                    supported: versions(&crate::api::PLATFORM_APIS),
                },
            },
            api: LegacyApis {
                buildpack: crate::api::BUILDPACK_APIS[0].to_string(),
                platform: crate::api::PLATFORM_APIS[0].to_string(),
            },
            lifecycle: LifecycleInfo {
                version: version.to_string(),
            },
        }
    }
}

// ---- builder labels -----------------------------------------------------------------------------

/// The `io.buildpacks.builder.metadata` label of a builder image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuilderMetadata {
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub buildpacks: Vec<LabelBuildpack>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<BuilderStack>,
    #[serde(default, deserialize_with = "nullable")]
    pub images: Vec<RunImageRef>,
    #[serde(default)]
    pub lifecycle: BuilderLifecycle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<CreatedBy>,
}

impl BuilderMetadata {
    /// The default run image: `images[0]`, else the legacy `stack.runImage`.
    pub fn run_image(&self) -> Option<&RunImageRef> {
        self.images
            .first()
            .or(self.stack.as_ref().map(|s| &s.run_image))
    }
}

/// `stack` of the builder metadata (legacy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderStack {
    #[serde(rename = "runImage")]
    pub run_image: RunImageRef,
}

/// `lifecycle` of the builder metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderLifecycle {
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<LegacyApis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apis: Option<Apis>,
}

/// Who made a builder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBy {
    pub name: String,
    pub version: String,
}

/// An entry of the `io.buildpacks.buildpack.layers` label: which layer holds a buildpack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildpackLayerInfo {
    pub api: String,
    #[serde(rename = "layerDiffID")]
    pub layer_diff_id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stacks: Vec<Stack>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub targets: Vec<Target>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub order: Vec<Group>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `io.buildpacks.buildpack.layers`: buildpack id → version → layer.
pub type BuildpackLayersLabel = BTreeMap<String, BTreeMap<String, BuildpackLayerInfo>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_toml_has_the_shape_platforms_read() {
        let report = Report {
            image: ImageReport {
                tags: vec!["reg/app:latest".into(), "reg/app:v1".into()],
                image_id: None,
                digest: Some("sha256:abc".into()),
                manifest_size: Some(1234),
            },
        };
        let text = toml::to_string(&report).unwrap();
        assert_eq!(
            text,
            "[image]\ntags = [\"reg/app:latest\", \"reg/app:v1\"]\ndigest = \"sha256:abc\"\nmanifest-size = 1234\n"
        );
        assert_eq!(toml::from_str::<Report>(&text).unwrap(), report);
    }

    #[test]
    fn launch_toml_reads_commands_of_every_api_and_the_legacy_bom() {
        let ok: LaunchToml = toml::from_str(
            "[[processes]]\ntype = \"web\"\ncommand = [\"httpd\", \"-f\"]\nargs = [\"-p\", \"8080\"]\ndefault = true\nworking-dir = \"/workspace/www\"\n[[labels]]\nkey = \"k\"\nvalue = \"v\"\n[[bom]]\nname = \"ruby\"\n",
        )
        .unwrap();
        assert_eq!(
            ok.processes[0].command,
            Some(toml::Value::Array(vec!["httpd".into(), "-f".into()]))
        );
        assert_eq!(
            ok.processes[0].working_dir.as_deref(),
            Some("/workspace/www")
        );
        assert_eq!(ok.bom[0].name, "ruby");
        // Buildpack API 0.8 and earlier: the build phase checks them by the buildpack's API.
        let old: LaunchToml =
            toml::from_str("[[processes]]\ntype = \"web\"\ncommand = \"httpd\"\ndirect = true\n")
                .unwrap();
        assert_eq!(old.processes[0].command, Some("httpd".into()));
        assert_eq!(old.processes[0].direct, Some(true));
    }

    #[test]
    fn detect_plans_read_sections_and_alternatives() {
        let plan: DetectPlan = toml::from_str(
            "[[provides]]\nname = \"node\"\n[[requires]]\nname = \"node\"\n[requires.metadata]\nversion = \"20\"\n[[or]]\n[[or.requires]]\nname = \"python\"\n",
        )
        .unwrap();
        assert_eq!(plan.sections.provides[0].name, "node");
        assert_eq!(
            plan.sections.requires[0].metadata["version"].as_str(),
            Some("20")
        );
        assert_eq!(plan.or[0].requires[0].name, "python");
    }

    /// The labels of an image the reference lifecycle (0.21.0) exported: Go writes nil lists as
    /// `null` (`"args":null`).
    fn reference_labels() -> BTreeMap<String, String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/labels/lifecycle-0.21.0-app.json"
        );
        serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn labels_the_reference_lifecycle_wrote_are_read_nulls_and_all() {
        let labels = reference_labels();
        let build = &labels["io.buildpacks.build.metadata"];
        assert!(build.contains(r#""args":null"#), "{build}");
        let build: BuildMetadataLabel = serde_json::from_str(build).unwrap();
        assert_eq!(build.default_process_type.as_deref(), Some("web"));
        assert_eq!(build.processes.len(), 2);
        assert!(build.processes.iter().all(|p| p.args.is_empty()));
        let layers: LayersMetadata =
            serde_json::from_str(&labels["io.buildpacks.lifecycle.metadata"]).unwrap();
        let page = &layers.buildpack("op/greeting").unwrap().layers["page"];
        assert!(page.launch && !page.cache && page.sha.starts_with("sha256:"));
        assert_eq!(page.data["checksum"].as_str().map(str::len), Some(64));
        assert_eq!(
            layers.run_image.image,
            "localhost:5001/op/busybox-run:latest"
        );
    }

    #[test]
    fn analyzed_toml_takes_the_reference_lifecycle_s_metadata_nulls_and_all() {
        // The real lifecycle writes a layer without metadata as `"data":null`, and Go's nil
        // maps and slices inside metadata as `null` too: TOML has no null.
        let labels = reference_labels();
        let mut json: serde_json::Value =
            serde_json::from_str(&labels["io.buildpacks.lifecycle.metadata"]).unwrap();
        let layers = &mut json["buildpacks"][0]["layers"];
        layers["bare"] = serde_json::json!({"sha": "sha256:b", "data": null, "launch": true});
        layers["page"]["data"]["extra"] = serde_json::json!({"none": null, "list": [null, 1]});
        let metadata: LayersMetadata = serde_json::from_value(json).unwrap();
        let analyzed = Analyzed {
            image: Some(ImageIdentifier {
                reference: "reg/app@sha256:p".into(),
            }),
            metadata: Some(metadata),
            run_image: RunImageInfo {
                reference: "reg/run@sha256:r".into(),
                image: "reg/run".into(),
                target: None,
            },
        };
        assert!(
            toml::to_string(&analyzed).is_err(),
            "written as it is, a null is refused"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("analyzed.toml");
        write_json_as_toml(&path, &analyzed).unwrap();
        let read: Analyzed = read_toml(&path).unwrap().unwrap();
        let layers = &read.metadata.as_ref().unwrap().buildpacks[0].layers;
        assert!(layers["bare"].launch && layers["bare"].data.is_null());
        assert_eq!(
            layers["page"].data["checksum"].as_str().map(str::len),
            Some(64),
            "what is not null is kept"
        );
        assert_eq!(
            layers["page"].data["extra"],
            serde_json::json!({"list": [1]})
        );
        assert_eq!(read.run_image, analyzed.run_image);
    }

    #[test]
    fn layer_metadata_labels_use_the_reference_json_keys() {
        let meta = LayersMetadata {
            run_image: RunImageForRebase {
                top_layer: "sha256:t".into(),
                reference: "r".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["runImage"]["topLayer"], "sha256:t");
        assert!(json.get("process-types").is_some());
    }
}
