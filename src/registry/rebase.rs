//! Rebase: an app image a CNB lifecycle made, put on another run image without building it
//! again, as the lifecycle's `rebaser` does (lifecycle v0.21, imgutil's `Rebase`,
//! go-containerregistry's `mutate.Rebase`), through the registry alone: the layers of the old
//! run image in the app image are replaced by the new run image's, the app's layers kept, and a
//! new manifest and config written; no layer is downloaded.
//!
//! The result is what the rebaser writes (docs/configuration.md, "Rebase", lists where op
//! differs): Docker media types; the app's `config` (environment, entrypoint, labels, …); the
//! new run image's `os`, `architecture` and `os.version`; `created` and every history entry
//! `1980-01-01T00:00:01Z`, one entry per layer; `io.buildpacks.lifecycle.metadata`'s
//! `runImage.topLayer` and `runImage.reference` those of the new run image, and the app's
//! `io.buildpacks.stack.*` and `io.buildpacks.base.*` labels replaced by the new run image's.

use cnb_data::files::LayersMetadata;
use op_oci::Platform;
use serde_json::{Value, json};

use crate::hint::Hint;
use crate::registry::{self, Image, LayerSource, Registry};

/// The label in which a CNB lifecycle records how it made an image.
pub const LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
/// The label by which buildpacks say an image must not be rebased (`false`).
const REBASABLE: &str = "io.buildpacks.rebasable";
/// The time the lifecycle gives every image it writes.
const NORMALIZED_TIME: &str = "1980-01-01T00:00:01Z";
/// The labels that describe the run image, which follow it.
const BASE_PREFIXES: [&str; 2] = ["io.buildpacks.stack.", "io.buildpacks.base."];

/// Why an image cannot be rebased.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error("`{image}` was not made by a CNB lifecycle: it has no `{LIFECYCLE_METADATA}` label")]
    NotCnb { image: String },
    #[error("`{image}`'s `{LIFECYCLE_METADATA}` label is not readable: {problem}")]
    Metadata { image: String, problem: String },
    #[error("`{image}` names no run image in its metadata, and --run-image does not either")]
    NoRunImage { image: String },
    #[error("`{image}` is not marked as rebasable (`{REBASABLE}=false`): a buildpack asked not to")]
    NotRebasable { image: String },
    #[error(
        "run image `{run_image}` ({new}) cannot take `{image}`, which was made on {old}: {problem}"
    )]
    Incompatible {
        image: String,
        run_image: String,
        new: String,
        old: String,
        problem: String,
    },
    #[error(
        "`{image}` does not hold the top layer of its run image ({top_layer}): it was changed after its build"
    )]
    TopLayerMissing { image: String, top_layer: String },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Registry(e) => e.hint(),
            Error::NotCnb { .. } | Error::Metadata { .. } | Error::TopLayerMissing { .. } => Some(
                "rebase images built with buildpacks (pack, op, kpack), as they were published"
                    .into(),
            ),
            Error::NoRunImage { .. } => Some("name the new run image with --run-image".into()),
            Error::NotRebasable { .. } | Error::Incompatible { .. } => Some(
                "build the image again on that run image; --force rebases anyway, at your own risk"
                    .into(),
            ),
        }
    }
}

/// An image rebased.
#[derive(Clone, Debug)]
pub struct Rebased {
    /// The digest of the rebased image.
    pub digest: String,
    /// The run image it is now on, `repository@digest`.
    pub run_image: String,
    /// The digest of the image before.
    pub previous: String,
}

/// What a rebase is asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    /// The app image (a tag or a digest; an index is resolved to `platform`).
    pub image: &'a str,
    /// The new run image; else the one the image's metadata names (its first mirror the
    /// registry has, the image's own registry first).
    pub run_image: Option<&'a str>,
    /// Where the rebased image is written (its tags); at least one.
    pub names: &'a [String],
    /// Rebase what the checks would refuse (not rebasable, another platform or distribution,
    /// a run image the metadata does not name).
    pub force: bool,
    pub platform: Option<&'a Platform>,
    /// The run image was named by the user (`--run-image`), not read from the metadata: it must
    /// be one the metadata names (or `force`).
    pub explicit: bool,
    /// The app image, when the caller read it already: not read again.
    pub app: Option<&'a Image>,
    /// The run image's image for the app's platform, when the caller read it already.
    pub base: Option<&'a Image>,
}

/// Rebases `request.image` onto its new run image and writes the result to `request.names`.
pub async fn rebase(registry: &Registry, request: &Request<'_>) -> Result<Rebased, Error> {
    let read_app;
    let app = match (request.app, request.platform) {
        (Some(app), _) => app,
        (None, Some(platform)) => {
            read_app = registry.image_for(request.image, platform).await?;
            &read_app
        }
        (None, None) => {
            read_app = registry.image(request.image).await?;
            &read_app
        }
    };
    let run_image = match request.run_image {
        Some(run_image) => run_image.to_string(),
        None => pick_run_image(registry, app, request.image).await?,
    };
    let read_base;
    let base = if let Some(base) = request.base {
        base
    } else {
        let (os, architecture) = app.platform();
        let platform = Platform::new(os, architecture);
        read_base = registry.image_for(&run_image, &platform).await?;
        &read_base
    };
    write(registry, request, app, base, &run_image).await
}

/// `app` on `base` (whose name was asked as `run_image`), written to `request.names`.
async fn write(
    registry: &Registry,
    request: &Request<'_>,
    app: &Image,
    base: &Image,
    run_image: &str,
) -> Result<Rebased, Error> {
    let (config, layers) = rebased(request, app, base, run_image)?;
    let written = registry
        .write_image_as(request.names, layers, &config, true, true)
        .await?;
    Ok(Rebased {
        digest: written.digest,
        run_image: base_reference(base),
        previous: app.manifest.digest.clone(),
    })
}

/// The run image the metadata of `image` names ([`pick_run_image`]), and the image as read.
pub async fn named_run_image(registry: &Registry, image: &str) -> Result<(String, Image), Error> {
    let app = registry.image(image).await?;
    let run_image = pick_run_image(registry, &app, image).await?;
    Ok((run_image, app))
}

/// The run image the metadata of `app` names, for platform API 0.12 and later (`runImage`),
/// else its stack's: the first of it and its mirrors the registry has, those of the app's own
/// registry first (as the lifecycle picks a mirror).
async fn pick_run_image(registry: &Registry, app: &Image, image: &str) -> Result<String, Error> {
    let metadata = metadata(app, image)?;
    let run = &metadata.run_image;
    let (first, mirrors) = if run.image.is_empty() {
        match &metadata.stack {
            Some(stack) => (
                stack.run_image.image.clone(),
                stack.run_image.mirrors.clone(),
            ),
            None => (String::new(), Vec::new()),
        }
    } else {
        (run.image.clone(), run.mirrors.clone())
    };
    if first.is_empty() {
        return Err(Error::NoRunImage {
            image: image.to_string(),
        });
    }
    let own = op_oci::registry_of(image).unwrap_or_default();
    let mut candidates: Vec<String> = std::iter::once(first).chain(mirrors).collect();
    candidates.sort_by_key(|c| op_oci::registry_of(c).unwrap_or_default() != own);
    for candidate in &candidates {
        if registry.digest(&parse(candidate)?).await?.is_some() {
            return Ok(candidate.clone());
        }
    }
    Err(Error::NoRunImage {
        image: image.to_string(),
    })
}

fn parse(reference: &str) -> Result<op_oci::Reference, Error> {
    op_oci::Reference::parse(reference).map_err(|e| {
        Error::Registry(registry::Error::NotFound {
            reference: format!("{reference} ({e})"),
        })
    })
}

fn metadata(app: &Image, image: &str) -> Result<LayersMetadata, Error> {
    let label = app.label(LIFECYCLE_METADATA).ok_or_else(|| Error::NotCnb {
        image: image.to_string(),
    })?;
    serde_json::from_str(label).map_err(|e| Error::Metadata {
        image: image.to_string(),
        problem: e.to_string(),
    })
}

/// `repository@digest` of the run image `base`, as the lifecycle records it.
fn base_reference(base: &Image) -> String {
    format!(
        "{}@{}",
        op_oci::repository_of(&base.reference),
        base.manifest.digest
    )
}

/// The config and layers of `app` on `base` (whose name was asked as `run_image`), after the
/// lifecycle's checks.
fn rebased(
    request: &Request<'_>,
    app: &Image,
    base: &Image,
    run_image: &str,
) -> Result<(Value, Vec<LayerSource>), Error> {
    let image = request.image;
    let mut metadata = metadata(app, image)?;
    check(request, app, base, run_image)?;
    let top = &metadata.run_image.top_layer;
    let app_ids = app.diff_ids();
    let Some(at) = app_ids.iter().position(|d| d == top) else {
        return Err(Error::TopLayerMissing {
            image: image.to_string(),
            top_layer: top.clone(),
        });
    };
    let app_layers = app.layers();
    let base_ids = base.diff_ids();
    let diff_ids: Vec<String> = base_ids.iter().chain(&app_ids[at + 1..]).cloned().collect();
    let layers: Vec<LayerSource> = base
        .layers()
        .into_iter()
        .map(|descriptor| LayerSource::Blob {
            from: base.reference.clone(),
            descriptor,
        })
        .chain(
            app_layers
                .into_iter()
                .skip(at + 1)
                .map(|descriptor| LayerSource::Blob {
                    from: app.reference.clone(),
                    descriptor,
                }),
        )
        .collect();

    metadata.run_image.top_layer = base_ids.last().cloned().unwrap_or_default();
    metadata.run_image.reference = base_reference(base);
    if request.force && !names(&metadata).iter().any(|n| same_name(n, run_image)) {
        metadata.run_image.image = run_image.to_string();
        metadata.run_image.mirrors = Vec::new();
    }
    let mut labels: serde_json::Map<String, Value> = app.config["config"]["Labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.retain(|key, _| !BASE_PREFIXES.iter().any(|p| key.starts_with(p)));
    if let Some(base_labels) = base.config["config"]["Labels"].as_object() {
        for (key, value) in base_labels {
            if BASE_PREFIXES.iter().any(|p| key.starts_with(p)) {
                labels.insert(key.clone(), value.clone());
            }
        }
    }
    let text = serde_json::to_string(&metadata).map_err(|e| Error::Metadata {
        image: image.to_string(),
        problem: e.to_string(),
    })?;
    labels.insert(LIFECYCLE_METADATA.to_string(), Value::String(text));

    let mut container = app.config["config"].clone();
    container["Labels"] = Value::Object(labels);
    let mut config = json!({
        "architecture": base.config["architecture"],
        "created": NORMALIZED_TIME,
        "history": vec![json!({ "created": NORMALIZED_TIME }); diff_ids.len()],
        "os": base.config["os"],
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "config": container,
    });
    if let Some(version) = base.config.get("os.version").filter(|v| !v.is_null()) {
        config["os.version"] = version.clone();
    }
    Ok((config, layers))
}

/// The run image names the metadata knows: its run image and mirrors, and its stack's.
fn names(metadata: &LayersMetadata) -> Vec<String> {
    let run = &metadata.run_image;
    let mut all: Vec<String> = std::iter::once(run.image.clone())
        .chain(run.mirrors.iter().cloned())
        .collect();
    if let Some(stack) = &metadata.stack {
        all.push(stack.run_image.image.clone());
        all.extend(stack.run_image.mirrors.iter().cloned());
    }
    all.retain(|n| !n.is_empty());
    all
}

/// Whether two references name the same repository and tag (a digest aside; no tag is
/// `latest`), as the lifecycle compares run image names.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |r: &str| {
        op_oci::Reference::parse(r).map(|r| {
            (
                r.name(),
                r.tag
                    .unwrap_or_else(|| crate::config::DEFAULT_TAG.to_string()),
            )
        })
    };
    matches!((norm(a), norm(b)), (Ok(x), Ok(y)) if x == y)
}

/// The lifecycle's checks: the image must be rebasable and the new run image must fit it (its
/// platform and distribution; before platform API 0.12, its stack), and be one the metadata
/// names; `--force` turns each refusal into a rebase.
fn check(request: &Request<'_>, app: &Image, base: &Image, run_image: &str) -> Result<(), Error> {
    if request.force {
        return Ok(());
    }
    let image = request.image;
    if app.label(REBASABLE) == Some("false") {
        return Err(Error::NotRebasable {
            image: image.to_string(),
        });
    }
    let incompatible = |problem: String| Error::Incompatible {
        image: image.to_string(),
        run_image: run_image.to_string(),
        new: describe(base),
        old: describe(app),
        problem,
    };
    let (app_os, app_arch) = app.platform();
    let (base_os, base_arch) = base.platform();
    if app_os != base_os || app_arch != base_arch {
        return Err(incompatible("another platform".into()));
    }
    let variant = |i: &Image| i.config["variant"].as_str().unwrap_or("").to_string();
    let (app_variant, base_variant) = (variant(app), variant(base));
    if !app_variant.is_empty() && !base_variant.is_empty() && app_variant != base_variant {
        return Err(incompatible("another variant".into()));
    }
    for key in [
        "io.buildpacks.base.distro.name",
        "io.buildpacks.base.distro.version",
    ] {
        if let Some(wanted) = base.label(key).filter(|v| !v.is_empty())
            && app.label(key) != Some(wanted)
        {
            return Err(incompatible(format!("another distribution ({key})")));
        }
    }
    let api = app.env("CNB_PLATFORM_API").unwrap_or("");
    let old_api =
        cnb_data::api::Version::parse(api).is_none_or(|v| v < cnb_data::api::Version(0, 12));
    if old_api {
        let stack = |i: &Image| i.label("io.buildpacks.stack.id").unwrap_or("").to_string();
        if stack(app).is_empty() || stack(app) != stack(base) {
            return Err(incompatible(format!(
                "stack `{}` is not stack `{}`",
                stack(base),
                stack(app)
            )));
        }
    }
    let metadata = metadata(app, image)?;
    let known = names(&metadata);
    if request.explicit && !known.iter().any(|n| same_name(n, run_image)) {
        return Err(incompatible(format!(
            "the image's metadata names {} as its run image, not it",
            if known.is_empty() {
                "nothing".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    Ok(())
}

/// `os/arch` and the distribution of `image`, for messages.
fn describe(image: &Image) -> String {
    let (os, arch) = image.platform();
    match (
        image.label("io.buildpacks.base.distro.name"),
        image.label("io.buildpacks.base.distro.version"),
    ) {
        (Some(name), Some(version)) => format!("{os}/{arch}, {name} {version}"),
        _ => format!("{os}/{arch}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str, layers: &[&str], config: Value) -> Image {
        let descriptors: Vec<Value> = layers
            .iter()
            .map(|l| json!({"mediaType": op_oci::DOCKER_LAYER, "digest": format!("sha256:gz-{l}"), "size": 1}))
            .collect();
        Image {
            reference: reference.into(),
            manifest: op_oci::Manifest {
                bytes: Vec::new(),
                digest: format!("sha256:{}", layers.join("-")),
                media_type: op_oci::DOCKER_MANIFEST.into(),
                json: json!({ "layers": descriptors }),
            },
            config,
            config_digest: "sha256:c".into(),
        }
    }

    fn app(labels: &Value) -> Image {
        let metadata = json!({
            "runImage": {"topLayer": "sha256:run-2", "reference": "r/run@sha256:old", "image": "r/run:1"},
        });
        let mut all = labels.clone();
        all[LIFECYCLE_METADATA] = metadata.to_string().into();
        image(
            "r/app:1",
            &["run-1", "run-2", "app-1"],
            json!({
                "os": "linux", "architecture": "amd64",
                "rootfs": {"type": "layers", "diff_ids": ["sha256:run-1", "sha256:run-2", "sha256:app-1"]},
                "config": {"Env": ["CNB_PLATFORM_API=0.12"], "Entrypoint": ["/cnb/process/web"], "Labels": all},
            }),
        )
    }

    fn base(arch: &str) -> Image {
        image(
            "r/run:1",
            &["new-1"],
            json!({
                "os": "linux", "architecture": arch,
                "rootfs": {"type": "layers", "diff_ids": ["sha256:new-1"]},
                "config": {"Env": ["PATH=/bin"], "Labels": {"io.buildpacks.base.distro.name": "busybox", "other": "x"}},
            }),
        )
    }

    fn request(names: &[String]) -> Request<'_> {
        Request {
            image: "r/app:1",
            names,
            ..Request::default()
        }
    }

    #[test]
    fn the_app_layers_go_on_the_new_run_image_with_the_lifecycle_s_config() {
        let names = ["r/app:1".to_string()];
        let app = app(
            &json!({"io.buildpacks.base.distro.name": "busybox", "io.buildpacks.stack.id": "old"}),
        );
        let (config, layers) = rebased(&request(&names), &app, &base("amd64"), "r/run:1").unwrap();
        let digests: Vec<String> = layers
            .iter()
            .map(|l| match l {
                LayerSource::Blob { descriptor, .. } => descriptor.digest.clone(),
                LayerSource::Upload { digest, .. } => digest.clone(),
            })
            .collect();
        assert_eq!(digests, ["sha256:gz-new-1", "sha256:gz-app-1"]);
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!(["sha256:new-1", "sha256:app-1"])
        );
        assert_eq!(config["created"], NORMALIZED_TIME);
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        assert_eq!(config["config"]["Entrypoint"], json!(["/cnb/process/web"]));
        let labels = &config["config"]["Labels"];
        // The base's labels follow the run image; others of the base do not come.
        assert_eq!(labels["io.buildpacks.base.distro.name"], "busybox");
        assert!(labels.get("io.buildpacks.stack.id").is_none());
        assert!(labels.get("other").is_none());
        let metadata: Value =
            serde_json::from_str(labels[LIFECYCLE_METADATA].as_str().unwrap()).unwrap();
        assert_eq!(metadata["runImage"]["topLayer"], "sha256:new-1");
        assert_eq!(metadata["runImage"]["reference"], "r/run@sha256:new-1");
        assert_eq!(metadata["runImage"]["image"], "r/run:1");
    }

    #[test]
    fn what_the_lifecycle_refuses_is_refused_unless_forced() {
        let names = ["r/app:1".to_string()];
        let distro = json!({"io.buildpacks.base.distro.name": "busybox"});
        let refused = |app: &Image, base: &Image, request: &Request<'_>| {
            rebased(request, app, base, "r/run:1")
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let not_rebasable =
            app(&json!({"io.buildpacks.base.distro.name": "busybox", REBASABLE: "false"}));
        assert!(
            refused(&not_rebasable, &base("amd64"), &request(&names))
                .contains("not marked as rebasable")
        );
        assert!(
            refused(&app(&distro), &base("arm64"), &request(&names)).contains("another platform")
        );
        assert!(
            refused(&app(&json!({})), &base("amd64"), &request(&names))
                .contains("another distribution")
        );
        let elsewhere = Request {
            run_image: Some("r/other:1"),
            explicit: true,
            ..request(&names)
        };
        assert!(
            rebased(&elsewhere, &app(&distro), &base("amd64"), "r/other:1")
                .map(|_| ())
                .unwrap_err()
                .to_string()
                .contains("names r/run:1 as its run image")
        );
        let forced = Request {
            force: true,
            ..request(&names)
        };
        assert!(rebased(&forced, &not_rebasable, &base("arm64"), "r/run:1").is_ok());
        let mut moved = app(&distro);
        moved.config["rootfs"]["diff_ids"] = json!(["sha256:x", "sha256:y"]);
        assert!(
            refused(&moved, &base("amd64"), &request(&names))
                .contains("does not hold the top layer")
        );
        let foreign = image("r/app:1", &["a"], json!({"config": {"Labels": {}}}));
        assert!(
            refused(&foreign, &base("amd64"), &request(&names))
                .contains("not made by a CNB lifecycle")
        );
    }

    #[test]
    fn run_image_names_compare_without_digest_and_with_latest_by_default() {
        assert!(same_name("r/run", "r/run:latest"));
        assert!(same_name("r/run:1", "r/run:1"));
        assert!(!same_name("r/run:1", "r/run:2"));
        assert!(!same_name("r/run:1", "q/run:1"));
    }
}
