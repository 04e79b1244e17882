//! The builder image: the build image plus op's layers, as pack lays them out
//! (`docs/cnb-platform.md` section 3), written straight to a registry.
//!
//! | layer | holds |
//! | --- | --- |
//! | directories | `/workspace` and `/layers` (owned by `CNB_USER_ID:CNB_GROUP_ID`), `/cnb`, `/platform/env` |
//! | lifecycle | `/cnb/lifecycle/{lifecycle,launcher,creator,lifecycle.toml}`, `/lifecycle` → `/cnb/lifecycle` |
//! | one per buildpack | `/cnb/buildpacks/<id>/<version>/…`, root-owned |
//! | order | `/cnb/order.toml` |
//! | run images | `/cnb/run.toml`, `/cnb/stack.toml` |
//! | build configuration | `/cnb/build-config/env/*` (only with `[[build.env]]`) |

use std::collections::BTreeMap;

use cnb_data::files::{
    BuilderLifecycle, BuilderMetadata, BuilderStack, BuildpackLayerInfo, BuildpackLayersLabel,
    CreatedBy, LabelBuildpack, LifecycleToml, RunToml, StackToml, escape_id,
};
use op_oci::archive::{Layer, LayerBuilder, Owner};
use serde_json::{Value, json};

use super::Error;
use super::config::{BuilderSpec, Buildpack, LifecycleFiles};
use crate::registry::{ConfigEditor, Image, LayerSource, Registry, Written};

/// The version of the op-lifecycle op packages: it is built from this workspace, whose crates
/// share one version.
const LIFECYCLE_VERSION: &str = crate::VERSION;

/// The `created` time of the builder and its history (as pack writes it).
pub const CREATED: &str = "1980-01-01T00:00:01Z";

/// `PATH` when the build image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A layer of the builder and its history line.
pub struct NewLayer {
    pub layer: Layer,
    pub created_by: String,
}

/// The build user of the build image: `CNB_USER_ID` and `CNB_GROUP_ID` of its config.
pub fn build_user(image: &Image) -> Result<(u32, u32), Error> {
    let id = |name: &str| -> Result<u32, Error> {
        let value = image.env(name).ok_or_else(|| Error::BuildImage {
            reference: image.reference.clone(),
            problem: format!("it sets no {name}"),
        })?;
        value.parse().map_err(|_| Error::BuildImage {
            reference: image.reference.clone(),
            problem: format!("its {name} `{value}` is not a number"),
        })
    };
    Ok((id("CNB_USER_ID")?, id("CNB_GROUP_ID")?))
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Layer {
        what: what.to_string(),
        source,
    }
}

fn toml_text<T: serde::Serialize>(value: &T) -> Vec<u8> {
    toml::to_string(value).unwrap_or_default().into_bytes()
}

/// Every layer op adds to the build image, in order, with the lifecycle of this machine's
/// platform.
pub fn layers(spec: &BuilderSpec, uid: u32, gid: u32) -> Result<Vec<NewLayer>, Error> {
    layers_with(spec, &spec.lifecycle, uid, gid)
}

/// [`layers`] with `lifecycle` (that of the build image's platform).
pub fn layers_with(
    spec: &BuilderSpec,
    lifecycle: &LifecycleFiles,
    uid: u32,
    gid: u32,
) -> Result<Vec<NewLayer>, Error> {
    let (uid, gid) = (u64::from(uid), u64::from(gid));
    let mut layers = Vec::new();

    let mut dirs = LayerBuilder::new();
    let e = io("the directories layer");
    dirs.dir("/cnb", 0o755, 0, 0).map_err(&e)?;
    dirs.dir("/cnb/buildpacks", 0o755, 0, 0).map_err(&e)?;
    dirs.dir("/layers", 0o755, uid, gid).map_err(&e)?;
    dirs.dir("/platform", 0o755, 0, 0).map_err(&e)?;
    dirs.dir("/platform/env", 0o755, 0, 0).map_err(&e)?;
    dirs.dir("/workspace", 0o755, uid, gid).map_err(&e)?;
    layers.push(NewLayer {
        layer: dirs.finish().map_err(&e)?,
        created_by: "op builder: directories".into(),
    });

    layers.push(NewLayer {
        layer: lifecycle_layer(lifecycle)?,
        created_by: "op builder: lifecycle".into(),
    });

    for bp in &spec.buildpacks {
        layers.push(NewLayer {
            layer: buildpack_layer(bp)?,
            created_by: format!("op builder: buildpack {}@{}", bp.id(), bp.version()),
        });
    }

    let mut order = LayerBuilder::new();
    let e = io("the order layer");
    order.dir("/cnb", 0o755, 0, 0).map_err(&e)?;
    order
        .file("/cnb/order.toml", &toml_text(&spec.order), 0o644, 0, 0)
        .map_err(&e)?;
    layers.push(NewLayer {
        layer: order.finish().map_err(&e)?,
        created_by: "op builder: order.toml".into(),
    });

    let mut run = LayerBuilder::new();
    let e = io("the run images layer");
    let run_toml = RunToml {
        images: spec.run_images.clone(),
    };
    let stack_toml = StackToml {
        run_image: spec.run_images[0].clone(),
    };
    run.dir("/cnb", 0o755, 0, 0).map_err(&e)?;
    run.file("/cnb/run.toml", &toml_text(&run_toml), 0o644, 0, 0)
        .map_err(&e)?;
    run.file("/cnb/stack.toml", &toml_text(&stack_toml), 0o644, 0, 0)
        .map_err(&e)?;
    layers.push(NewLayer {
        layer: run.finish().map_err(&e)?,
        created_by: "op builder: run.toml".into(),
    });

    if !spec.build_env.is_empty() {
        layers.push(NewLayer {
            layer: build_config_layer(spec)?,
            created_by: "op builder: build configuration".into(),
        });
    }
    Ok(layers)
}

fn lifecycle_layer(files: &LifecycleFiles) -> Result<Layer, Error> {
    let read = |path: &std::path::Path| fs_err::read(path).map_err(|source| Error::Read { source });
    let lifecycle = read(&files.lifecycle)?;
    let launcher = read(&files.launcher)?;
    let descriptor = toml_text(&LifecycleToml::describing(LIFECYCLE_VERSION));
    let mut layer = LayerBuilder::new();
    let e = io("the lifecycle layer");
    layer.dir("/cnb", 0o755, 0, 0).map_err(&e)?;
    layer.dir("/cnb/lifecycle", 0o755, 0, 0).map_err(&e)?;
    layer
        .symlink("/cnb/lifecycle/creator", "lifecycle", 0o777, 0, 0)
        .map_err(&e)?;
    layer
        .file("/cnb/lifecycle/launcher", &launcher, 0o755, 0, 0)
        .map_err(&e)?;
    layer
        .file("/cnb/lifecycle/lifecycle", &lifecycle, 0o755, 0, 0)
        .map_err(&e)?;
    layer
        .file("/cnb/lifecycle/lifecycle.toml", &descriptor, 0o644, 0, 0)
        .map_err(&e)?;
    layer
        .symlink("/lifecycle", "/cnb/lifecycle", 0o777, 0, 0)
        .map_err(&e)?;
    layer.finish().map_err(&e)
}

fn buildpack_layer(bp: &Buildpack) -> Result<Layer, Error> {
    let escaped = escape_id(bp.id());
    let e = io("a buildpack layer");
    let mut layer = LayerBuilder::new();
    layer.dir("/cnb", 0o755, 0, 0).map_err(&e)?;
    layer.dir("/cnb/buildpacks", 0o755, 0, 0).map_err(&e)?;
    layer
        .dir(&format!("/cnb/buildpacks/{escaped}"), 0o755, 0, 0)
        .map_err(&e)?;
    layer
        .tree(
            &bp.dir,
            &format!("/cnb/buildpacks/{escaped}/{}", bp.version()),
            Owner::Fixed(0, 0),
        )
        .map_err(&e)?;
    layer.finish().map_err(&e)
}

fn build_config_layer(spec: &BuilderSpec) -> Result<Layer, Error> {
    let e = io("the build configuration layer");
    let mut layer = LayerBuilder::new();
    layer.dir("/cnb", 0o755, 0, 0).map_err(&e)?;
    layer.dir("/cnb/build-config", 0o755, 0, 0).map_err(&e)?;
    layer
        .dir("/cnb/build-config/env", 0o755, 0, 0)
        .map_err(&e)?;
    let mut files: BTreeMap<String, &str> = BTreeMap::new();
    for var in &spec.build_env {
        let name = match var.suffix.as_deref() {
            Some(suffix) => format!("{}.{suffix}", var.name),
            None => var.name.clone(),
        };
        files.insert(name, &var.value);
        if let Some(delim) = &var.delim {
            files.insert(format!("{}.delim", var.name), delim);
        }
    }
    for (name, value) in files {
        layer
            .file(
                &format!("/cnb/build-config/env/{name}"),
                value.as_bytes(),
                0o644,
                0,
                0,
            )
            .map_err(&e)?;
    }
    layer.finish().map_err(&e)
}

/// The labels op sets on the builder.
pub fn labels(spec: &BuilderSpec, layers: &[NewLayer]) -> BTreeMap<String, String> {
    let lifecycle = LifecycleToml::describing(LIFECYCLE_VERSION);
    let metadata = BuilderMetadata {
        description: spec.description.clone(),
        buildpacks: spec
            .buildpacks
            .iter()
            .map(|b| LabelBuildpack {
                id: b.id().to_string(),
                version: b.version().to_string(),
                homepage: b.descriptor.buildpack.homepage.clone(),
            })
            .collect(),
        stack: Some(BuilderStack {
            run_image: spec.run_images[0].clone(),
        }),
        images: spec.run_images.clone(),
        lifecycle: BuilderLifecycle {
            version: lifecycle.lifecycle.version.clone(),
            api: Some(lifecycle.api.clone()),
            apis: Some(lifecycle.apis.clone()),
        },
        created_by: Some(CreatedBy {
            name: "op".into(),
            version: crate::VERSION.to_string(),
        }),
    };
    let mut buildpack_layers = BuildpackLayersLabel::new();
    // The buildpack layers follow the directories and lifecycle layers, in spec order.
    for (bp, layer) in spec.buildpacks.iter().zip(layers.iter().skip(2)) {
        let d = &bp.descriptor;
        buildpack_layers
            .entry(bp.id().to_string())
            .or_default()
            .insert(
                bp.version().to_string(),
                BuildpackLayerInfo {
                    api: d.api.clone(),
                    layer_diff_id: layer.layer.diff_id.clone(),
                    stacks: d.stacks.clone(),
                    targets: d.targets.clone(),
                    order: d.order.clone(),
                    homepage: d.buildpack.homepage.clone(),
                    name: d.buildpack.name.clone(),
                },
            );
    }
    let mut labels = BTreeMap::new();
    labels.insert(
        "io.buildpacks.builder.metadata".to_string(),
        json(&metadata),
    );
    labels.insert(
        "io.buildpacks.buildpack.layers".to_string(),
        json(&buildpack_layers),
    );
    labels.insert(
        "io.buildpacks.buildpack.order".to_string(),
        json(&spec.order.order),
    );
    if let Some(stack_id) = &spec.stack_id {
        labels.insert("io.buildpacks.stack.id".to_string(), stack_id.clone());
    }
    labels
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The builder's config: the build image's, with op's environment, user, working directory,
/// labels, history and layers.
pub fn config(base: &Image, spec: &BuilderSpec, layers: &[NewLayer], uid: u32, gid: u32) -> Value {
    let mut config = ConfigEditor::new(&base.config);
    let stack_id = spec
        .stack_id
        .clone()
        .or_else(|| base.label("io.buildpacks.stack.id").map(str::to_string));
    let path = config
        .env("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    config.set_env("PATH", &path);
    config.set_env("CNB_USER_ID", &uid.to_string());
    config.set_env("CNB_GROUP_ID", &gid.to_string());
    let mut spec_labels = labels(spec, layers);
    if let Some(stack_id) = stack_id {
        config.set_env("CNB_STACK_ID", &stack_id);
        spec_labels.insert("io.buildpacks.stack.id".into(), stack_id);
    }
    config.set("User", json!(format!("{uid}:{gid}")));
    config.set("WorkingDir", json!("/layers"));
    config.add_labels(spec_labels);
    config.append_layers(
        CREATED,
        layers
            .iter()
            .map(|l| (l.layer.diff_id.as_str(), l.created_by.as_str())),
    );
    config.finish()
}

/// Writes the builder to `names`: the build image's layers (mounted, never downloaded when the
/// registry allows), then op's. Untagged (by digest only) unless `tagged`: the builder of one
/// platform of an index.
pub async fn publish(
    registry: &Registry,
    names: &[String],
    base: &Image,
    layers: Vec<NewLayer>,
    config: &Value,
    tagged: bool,
) -> Result<Written, Error> {
    let mut sources: Vec<LayerSource> = base
        .layers()
        .into_iter()
        .map(|descriptor| LayerSource::Blob {
            from: base.reference.clone(),
            descriptor,
        })
        .collect();
    for new in layers {
        let (gzip, digest) = new.layer.gzip().map_err(io("a layer"))?;
        sources.push(LayerSource::Upload { gzip, digest });
    }
    Ok(registry
        .write_image_as(names, sources, config, base.is_docker(), tagged)
        .await?)
}
