//! EXPORTING: the app image, straight to the registry (`phase/exporter.go` of the reference
//! lifecycle, publish mode), and `report.toml`.
//!
//! The image is the run image plus the layers of [`layers`]. A layer whose diffID equals the one
//! the previous image recorded is reused (never uploaded again); run image layers are never
//! downloaded when they can be mounted within the registry. The config keeps everything of the
//! run image's and sets the environment, working directory, entrypoint, labels and history of
//! spec §4.2–4.4.

mod layers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::analyze::{Analysis, LIFECYCLE_METADATA_LABEL, chain};
use crate::api::Version;
use crate::build::read_layers;
use crate::buildpack::escape_id;
use crate::cache::VolumeCache;
use crate::exit::{self, Error};
use crate::files::{
    BuildMetadata, BuildMetadataLabel, BuildpackLayers, CacheMetadata, GitSource, GroupElement,
    ImageReport, LabelBuildpack, LabelProcess, LauncherInfo, LauncherSource, LayerMetadata,
    LayerSha, LayersMetadata, Report, RunImageForRebase, StackMetadata, StoreToml,
};
use crate::log;
use op_oci::archive::Layer;
use op_oci::{self as oci, ConfigEditor, Descriptor, LayerSource, Registry};

/// `data` of a layer in the lifecycle and cache metadata: `null` for a layer without
/// `[metadata]`, as the reference writes Go's nil.
fn layer_data(metadata: &crate::files::Metadata) -> Value {
    if metadata.is_empty() {
        return Value::Null;
    }
    serde_json::to_value(metadata).unwrap_or(Value::Null)
}

/// `created` of the image and of its history when `SOURCE_DATE_EPOCH` is not set.
pub const NORMALIZED_CREATED: &str = "1980-01-01T00:00:01Z";

/// What the exporter needs.
pub struct ExportInputs<'a> {
    pub registry: &'a Registry,
    pub analysis: &'a Analysis,
    pub layers_dir: &'a Path,
    pub app_dir: &'a Path,
    pub launcher: &'a Path,
    /// The image to write, then extra tags.
    pub image: &'a str,
    pub tags: &'a [String],
    pub uid: u64,
    pub gid: u64,
    pub platform_api: Version,
    pub group: &'a [GroupElement],
    pub metadata: &'a BuildMetadata,
    pub process_type: Option<&'a str>,
    /// `project-metadata.toml` as JSON.
    pub project_metadata: Value,
    pub exec_env: Option<&'a str>,
    /// `SOURCE_DATE_EPOCH`, as RFC 3339.
    pub created: Option<String>,
}

/// A layer of the new image.
struct Added {
    diff_id: String,
    created_by: String,
    /// The contents, for a layer that is not reused.
    layer: Option<Layer>,
    /// The previous image's descriptor, for a reused layer.
    reused: Option<Descriptor>,
}

/// The result of an export: the report, and the tars of the layers that were built (the cache
/// reuses those of `cache = true` layers).
pub struct Exported {
    pub report: Report,
    pub built: BTreeMap<PathBuf, Layer>,
}

impl ExportInputs<'_> {
    fn previous(&self) -> Option<&LayersMetadata> {
        self.analysis.analyzed.metadata.as_ref()
    }

    /// The descriptor of the previous image's layer `diff_id`.
    fn previous_descriptor(&self, diff_id: &str) -> Option<Descriptor> {
        let previous = self.analysis.previous.as_ref()?;
        let index = previous.diff_ids().iter().position(|d| d == diff_id)?;
        previous.layers().get(index).cloned()
    }

    /// Reuses `layer` when the previous image has the same diffID recorded as `previous_sha`.
    fn add_or_reuse(
        &self,
        layer: Layer,
        previous_sha: Option<&str>,
        created_by: String,
        id: &str,
    ) -> Added {
        if previous_sha == Some(layer.diff_id.as_str())
            && let Some(descriptor) = self.previous_descriptor(&layer.diff_id)
        {
            log::info(&format!("Reusing layer '{id}'"));
            log::debug(&format!("Layer '{id}' SHA: {}", layer.diff_id));
            return Added {
                diff_id: layer.diff_id,
                created_by,
                layer: None,
                reused: Some(descriptor),
            };
        }
        log::info(&format!("Adding layer '{id}'"));
        log::debug(&format!("Layer '{id}' SHA: {}", layer.diff_id));
        Added {
            diff_id: layer.diff_id.clone(),
            created_by,
            layer: Some(layer),
            reused: None,
        }
    }
}

fn export_error(what: impl std::fmt::Display) -> Error {
    Error::new(exit::EXPORT_ERROR, format!("failed to export: {what}"))
}

/// Exports the image and writes nothing else; the caller writes `report.toml`.
pub async fn export(inputs: &ExportInputs<'_>) -> Result<Exported, Error> {
    let mut added: Vec<Added> = Vec::new();
    let mut built: BTreeMap<PathBuf, Layer> = BTreeMap::new();
    let run = &inputs.analysis.run_image;
    let mut meta = LayersMetadata {
        run_image: RunImageForRebase {
            top_layer: run.diff_ids().last().cloned().unwrap_or_default(),
            reference: run.digest_reference(),
            image: inputs.analysis.run_image_for_export.image.clone(),
            mirrors: inputs.analysis.run_image_for_export.mirrors.clone(),
        },
        stack: Some(StackMetadata {
            run_image: inputs.analysis.run_image_for_export.clone(),
        }),
        ..LayersMetadata::default()
    };

    for bp in inputs.group {
        meta.buildpacks
            .push(buildpack_layers(inputs, bp, &mut added, &mut built)?);
    }
    lifecycle_layers(inputs, &mut meta, &mut added)?;

    let config = image_config(inputs, &meta, &added)?;
    let report = push(inputs, config, added).await?;
    Ok(Exported { report, built })
}

/// The launch layers of buildpack `bp`, added or reused, and their metadata.
fn buildpack_layers(
    inputs: &ExportInputs<'_>,
    bp: &GroupElement,
    added: &mut Vec<Added>,
    built: &mut BTreeMap<PathBuf, Layer>,
) -> Result<BuildpackLayers, Error> {
    let bp_dir = inputs.layers_dir.join(escape_id(&bp.id));
    let previous = inputs.previous().and_then(|p| p.buildpack(&bp.id));
    let store =
        crate::files::read_toml::<StoreToml>(&bp_dir.join("store.toml")).map_err(export_error)?;
    let mut bp_meta = BuildpackLayers {
        key: bp.id.clone(),
        version: bp.version.clone(),
        layers: BTreeMap::new(),
        store,
    };
    for (path, layer) in read_layers(&bp_dir).map_err(|e| export_error(e.message))? {
        let types = layer.types();
        if !types.launch {
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = format!("{}:{name}", bp.id);
        let created_by = format!(
            "Layer: '{name}', Created by buildpack: {}@{}",
            bp.id, bp.version
        );
        let previous_sha = previous
            .and_then(|p| p.layers.get(&name))
            .map(|l| l.sha.clone());
        let sha = if path.is_dir() {
            let tar = layers::dir_layer(&path, inputs.uid, inputs.gid)
                .map_err(|e| export_error(format!("{id}: {e}")))?;
            built.insert(path.clone(), tar.clone());
            let entry = inputs.add_or_reuse(tar, previous_sha.as_deref(), created_by, &id);
            let sha = entry.diff_id.clone();
            added.push(entry);
            sha
        } else {
            if types.cache {
                return Err(export_error(format!(
                    "layer '{id}' is cache=true but has no contents"
                )));
            }
            let sha = previous_sha.filter(|s| !s.is_empty()).ok_or_else(|| {
                export_error(format!(
                    "cannot reuse '{id}', previous image has no metadata for layer '{id}'"
                ))
            })?;
            let descriptor = inputs.previous_descriptor(&sha).ok_or_else(|| {
                export_error(format!(
                    "cannot reuse '{id}': the previous image lacks layer {sha}"
                ))
            })?;
            log::info(&format!("Reusing layer '{id}'"));
            added.push(Added {
                diff_id: sha.clone(),
                created_by,
                layer: None,
                reused: Some(descriptor),
            });
            sha
        };
        let data = layer_data(&layer.metadata);
        bp_meta.layers.insert(
            name,
            LayerMetadata {
                sha,
                data,
                build: types.build,
                launch: types.launch,
                cache: types.cache,
            },
        );
    }
    Ok(bp_meta)
}

/// The SBOM (`<layers>/sbom/launch`, when the build wrote it), app, launcher, launcher config
/// and process-types layers.
fn lifecycle_layers(
    inputs: &ExportInputs<'_>,
    meta: &mut LayersMetadata,
    added: &mut Vec<Added>,
) -> Result<(), Error> {
    let sbom_dir = inputs.layers_dir.join("sbom").join("launch");
    if sbom_dir.is_dir() {
        let sbom = layers::dir_layer(&sbom_dir, inputs.uid, inputs.gid)
            .map_err(|e| export_error(format!("SBOM layer: {e}")))?;
        let previous_sbom = inputs.previous().and_then(|p| p.sbom.as_ref());
        let entry = inputs.add_or_reuse(
            sbom,
            previous_sbom.map(|s| s.sha.as_str()),
            "Software Bill-of-Materials".into(),
            "buildpacksio/lifecycle:launch.sbom",
        );
        meta.sbom = Some(LayerSha {
            sha: entry.diff_id.clone(),
        });
        added.push(entry);
    }
    let app = layers::app_layer(inputs.app_dir, inputs.uid, inputs.gid)
        .map_err(|e| export_error(format!("app layer: {e}")))?;
    let previous_app = inputs
        .previous()
        .and_then(|p| p.app.iter().find(|a| a.sha == app.diff_id))
        .map(|a| a.sha.clone());
    let entry = inputs.add_or_reuse(
        app,
        previous_app.as_deref(),
        "Application Layer".into(),
        "app",
    );
    meta.app = vec![LayerSha {
        sha: entry.diff_id.clone(),
    }];
    log::info(if entry.reused.is_some() {
        "Reused 1/1 app layer(s)"
    } else {
        "Added 1/1 app layer(s)"
    });
    added.push(entry);

    let launcher = layers::launcher_layer(inputs.launcher)
        .map_err(|e| export_error(format!("launcher layer: {e}")))?;
    let previous_launcher = inputs.previous().map(|p| p.launcher.sha.clone());
    let entry = inputs.add_or_reuse(
        launcher,
        previous_launcher.as_deref(),
        "Buildpacks Application Launcher".into(),
        "buildpacksio/lifecycle:launcher",
    );
    meta.launcher = LayerSha {
        sha: entry.diff_id.clone(),
    };
    added.push(entry);

    let config = layers::dir_layer(&inputs.layers_dir.join("config"), inputs.uid, inputs.gid)
        .map_err(|e| export_error(format!("config layer: {e}")))?;
    let previous_config = inputs.previous().map(|p| p.config.sha.clone());
    let entry = inputs.add_or_reuse(
        config,
        previous_config.as_deref(),
        "Buildpacks Launcher Config".into(),
        "buildpacksio/lifecycle:config",
    );
    meta.config = LayerSha {
        sha: entry.diff_id.clone(),
    };
    added.push(entry);

    if !inputs.metadata.processes.is_empty() {
        let types =
            layers::process_types_layer(&inputs.metadata.processes).map_err(export_error)?;
        let previous_types = inputs.previous().map(|p| p.process_types.sha.clone());
        let entry = inputs.add_or_reuse(
            types,
            previous_types.as_deref(),
            "Buildpacks Process Types".into(),
            "buildpacksio/lifecycle:process-types",
        );
        meta.process_types = LayerSha {
            sha: entry.diff_id.clone(),
        };
        added.push(entry);
    }
    Ok(())
}

/// The app image's config: the run image's, with the lifecycle's settings.
fn image_config(
    inputs: &ExportInputs<'_>,
    meta: &LayersMetadata,
    added: &[Added],
) -> Result<Value, Error> {
    let created = inputs
        .created
        .clone()
        .unwrap_or_else(|| NORMALIZED_CREATED.to_string());
    let mut config = ConfigEditor::new(&inputs.analysis.run_image.config);
    let run_path = config.env("PATH").unwrap_or_default();
    config.set_env("CNB_LAYERS_DIR", &inputs.layers_dir.display().to_string());
    config.set_env("CNB_APP_DIR", &inputs.app_dir.display().to_string());
    config.set_env("CNB_PLATFORM_API", &inputs.platform_api.to_string());
    config.set_env("CNB_DEPRECATION_MODE", "quiet");
    let path = if run_path.is_empty() {
        "/cnb/process:/cnb/lifecycle".to_string()
    } else {
        format!("/cnb/process:/cnb/lifecycle:{run_path}")
    };
    config.set_env("PATH", &path);
    config.set("WorkingDir", json!(inputs.app_dir.display().to_string()));
    config.set("Entrypoint", json!([entrypoint(inputs)?]));
    config.set("Cmd", Value::Null);

    let mut labels: Vec<(String, String)> = vec![
        (
            LIFECYCLE_METADATA_LABEL.into(),
            serde_json::to_string(meta).map_err(export_error)?,
        ),
        (
            "io.buildpacks.build.metadata".into(),
            serde_json::to_string(&build_metadata_label(inputs)).map_err(export_error)?,
        ),
        (
            "io.buildpacks.project.metadata".into(),
            inputs.project_metadata.to_string(),
        ),
    ];
    labels.extend(
        inputs
            .metadata
            .labels
            .iter()
            .map(|l| (l.key.clone(), l.value.clone())),
    );
    if let (true, Some(exec_env)) = (
        inputs.platform_api.at_least(Version(0, 15)),
        inputs.exec_env,
    ) {
        labels.push(("io.buildpacks.exec-env".into(), exec_env.to_string()));
    }
    config.add_labels(labels);
    config.append_layers(
        &created,
        added
            .iter()
            .map(|l| (l.diff_id.as_str(), l.created_by.as_str())),
    );
    Ok(config.finish())
}

/// The `io.buildpacks.build.metadata` label: buildpacks, processes, launcher.
fn build_metadata_label(inputs: &ExportInputs<'_>) -> BuildMetadataLabel {
    BuildMetadataLabel {
        buildpacks: inputs
            .group
            .iter()
            .map(|b| LabelBuildpack {
                id: b.id.clone(),
                version: b.version.clone(),
                homepage: b.homepage.clone(),
            })
            .collect(),
        processes: inputs
            .metadata
            .processes
            .iter()
            .map(|p| LabelProcess {
                kind: p.kind.clone(),
                command: p.command.clone(),
                args: p.args.clone(),
                direct: p.direct,
                // As the reference: the default is `buildpack-default-process-type`.
                default: false,
                buildpack_id: p.buildpack_id.clone(),
                working_dir: p.working_dir.clone(),
                exec_env: p.exec_env.clone(),
            })
            .collect(),
        launcher: LauncherInfo {
            version: crate::VERSION.to_string(),
            source: LauncherSource {
                git: GitSource {
                    repository: crate::REPOSITORY.to_string(),
                    commit: String::new(),
                },
            },
        },
        default_process_type: inputs.metadata.default_process_type.clone(),
    }
}

/// The entrypoint: the chosen process, else the default one, else the bare launcher.
fn entrypoint(inputs: &ExportInputs<'_>) -> Result<String, Error> {
    let types: Vec<&str> = inputs
        .metadata
        .processes
        .iter()
        .map(|p| p.kind.as_str())
        .collect();
    if let Some(wanted) = inputs.process_type {
        if !types.contains(&wanted) {
            return Err(export_error(format!(
                "tried to set {wanted} to default but it doesn't exist"
            )));
        }
        return Ok(format!("/cnb/process/{wanted}"));
    }
    Ok(
        match inputs
            .metadata
            .default_process_type
            .as_deref()
            .filter(|t| types.contains(t))
        {
            Some(default) => format!("/cnb/process/{default}"),
            None => "/cnb/lifecycle/launcher".to_string(),
        },
    )
}

/// Uploads what the image needs and pushes its manifest to the image and its tags.
async fn push(
    inputs: &ExportInputs<'_>,
    config: Value,
    added: Vec<Added>,
) -> Result<Report, Error> {
    let fail = |e: oci::Error| export_error(chain(&e));
    let run = &inputs.analysis.run_image;
    let mut names = vec![inputs.image.to_string()];
    names.extend(inputs.tags.iter().cloned());
    let target_registry = oci::registry_of(inputs.image).map_err(fail)?;
    for name in &names {
        if oci::registry_of(name).map_err(fail)? != target_registry {
            return Err(export_error(format!(
                "tag `{name}` is not in the registry of `{}`",
                inputs.image
            )));
        }
    }
    let mut layers: Vec<LayerSource> = run
        .layers()
        .into_iter()
        .map(|descriptor| LayerSource::Blob {
            from: run.reference.clone(),
            descriptor,
        })
        .collect();
    let previous = inputs.analysis.previous.as_ref();
    for layer in added {
        layers.push(match (layer.layer, layer.reused, previous) {
            (_, Some(descriptor), Some(previous)) => LayerSource::Blob {
                from: previous.reference.clone(),
                descriptor,
            },
            (Some(tar), _, _) => {
                let (gzip, digest) = tar.gzip().map_err(export_error)?;
                LayerSource::Upload { gzip, digest }
            }
            _ => {
                return Err(export_error(format!(
                    "layer {} has neither contents nor a previous image",
                    layer.diff_id
                )));
            }
        });
    }
    let written = inputs
        .registry
        .write_image(&names, layers, &config, run.is_docker())
        .await
        .map_err(fail)?;
    // As the reference prints a registry export: the image's digest, its names, and at debug
    // level the digest and the manifest size again.
    log::info(&format!("*** Images ({}):", written.digest));
    for name in &names {
        log::info(&format!("      {name}"));
    }
    log::debug(&format!("*** Digest: {}", written.digest));
    log::debug(&format!("*** Manifest Size: {}", written.manifest_size));
    Ok(Report {
        image: ImageReport {
            tags: names,
            image_id: None,
            digest: Some(written.digest),
            manifest_size: Some(written.manifest_size),
        },
    })
}

/// Writes the volume cache: every `cache = true` layer of the group, with its metadata
/// (`phase/cache.go` of the reference lifecycle). Layers already tarred for the image are
/// not tarred again.
pub fn write_cache(
    cache: &VolumeCache,
    inputs: &ExportInputs<'_>,
    built: &BTreeMap<PathBuf, Layer>,
) -> Result<(), String> {
    let mut metadata = CacheMetadata::default();
    let mut tars: Vec<Layer> = Vec::new();
    for bp in inputs.group {
        let bp_dir = inputs.layers_dir.join(escape_id(&bp.id));
        let mut bp_meta = BuildpackLayers {
            key: bp.id.clone(),
            version: bp.version.clone(),
            ..BuildpackLayers::default()
        };
        for (path, layer) in read_layers(&bp_dir).map_err(|e| e.message)? {
            let types = layer.types();
            if !types.cache {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !path.is_dir() {
                return Err(format!(
                    "layer '{}:{name}' is cache=true but has no contents",
                    bp.id
                ));
            }
            let tar = match built.get(&path) {
                Some(tar) => tar.clone(),
                None => layers::dir_layer(&path, inputs.uid, inputs.gid)
                    .map_err(|e| format!("{}:{name}: {e}", bp.id))?,
            };
            log::info(&format!("Adding cache layer '{}:{name}'", bp.id));
            let data = layer_data(&layer.metadata);
            bp_meta.layers.insert(
                name,
                LayerMetadata {
                    sha: tar.diff_id.clone(),
                    data,
                    build: types.build,
                    launch: types.launch,
                    cache: true,
                },
            );
            tars.push(tar);
        }
        if !bp_meta.layers.is_empty() {
            metadata.buildpacks.push(bp_meta);
        }
    }
    cache
        .write(&tars.iter().collect::<Vec<_>>(), &metadata)
        .map_err(|e| e.to_string())
}
