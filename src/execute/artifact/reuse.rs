//! Builds not made twice (`--cache-artifacts`, on by default): a buildpacks build whose inputs
//! were built before reuses what they made. The key of a build is a digest of everything that
//! can change its image (docs/configuration.md lists it); the registry keeps, in the target's
//! repository, a tag per key (`op-inputs-<key>`) on the image those inputs made, so that a
//! fresh CI runner finds it too, and a tag per key of the app's inputs alone (`op-app-<key>`,
//! the key without the run image): when only the run image changed, that image is rebased
//! (`registry::rebase`) instead of built. A tag found is never trusted blindly: the image must
//! be one a CNB lifecycle made (on the same run image, for `op-inputs-`), or it is ignored with
//! a warning and the build runs (its image then takes the tags).

use std::time::Instant;

use cnb_data::files::LayersMetadata;
use op_oci::Reference;

use super::{Build, Error, step};
use crate::cnb::app;
use crate::registry::rebase::LIFECYCLE_METADATA;

/// The tag prefix of the input keys in a target repository.
const KEY_TAG_PREFIX: &str = "op-inputs-";
/// The tag prefix of the keys of the app's inputs alone (the key without the run image): the
/// newest image of those inputs, on whatever run image, which a new run image rebases.
const APP_TAG_PREFIX: &str = "op-app-";

/// What the artifact cache says of one build.
pub(super) enum Reuse {
    /// Built before: the image the key's tag names, checked, and the names of this build that
    /// do not name it yet.
    Hit {
        key_tag: Reference,
        found: Found,
        unnamed: Vec<String>,
    },
    /// The app's inputs were built before, on another run image: `previous` (the image
    /// `app_tag` names, checked) is to be rebased onto `run_image` (this build's, as read).
    Rebase {
        key_tag: Reference,
        app_tag: Reference,
        previous: Box<op_oci::Image>,
        run_image: Box<op_oci::Image>,
    },
    /// To build: then its image takes `key_tag` and `app_tag`.
    Miss {
        key_tag: Reference,
        app_tag: Reference,
    },
}

/// The image a key's tag names, as read to check it.
pub(super) enum Found {
    /// Its manifest alone: every name of the build names it already, so nothing is published,
    /// and its layers are checked (those of the build's run image, and more).
    Manifest(Box<op_oci::Manifest>),
    /// Its manifest and config: it is to be published (its config shows that a CNB lifecycle
    /// made it, on the build's run image), or its SBOMs copied.
    Image(Box<op_oci::Image>),
}

impl Found {
    pub(super) fn manifest(&self) -> &op_oci::Manifest {
        match self {
            Found::Manifest(manifest) => manifest,
            Found::Image(image) => &image.manifest,
        }
    }
}

impl Build<'_> {
    /// The key of this build and what the registry has for it (`None` when the build cannot
    /// be keyed: its run image has no digest in a registry), with the creator's inputs tarred
    /// for the key, for the build to upload if it runs.
    pub(super) async fn reuse(&self) -> Result<(Option<Reuse>, app::Spooled), Error> {
        let (shared, name, started) = (self.shared, self.name(), Instant::now());
        // The run image's image for this build's platform (an index's entry), as the lifecycle
        // records it, read while the inputs are tarred and digested.
        let run_image = self.run_image.to_string();
        let (run_image, spooled) = futures::future::join(
            shared
                .run_images
                .get(shared.registry.as_ref(), &run_image, self.platform),
            self.spool_inputs(),
        )
        .await;
        let (inputs, spooled) = spooled?;
        let Some(run_image) = run_image? else {
            shared.reporter.line(
                name,
                &format!(
                    "Not looking for an earlier build: run image {} has no digest in its registry",
                    self.run_image
                ),
            );
            return Ok((None, spooled));
        };
        let run_digest = run_image.manifest.digest.clone();
        let platform = self
            .platform
            .map_or_else(|| "the engine's".to_string(), ToString::to_string);
        let mut key = serde_json::json!({
            "op": env!("CARGO_PKG_VERSION"),
            "inputs": inputs,
            "builder": self.builder.identity,
            "lifecycle": self.builder.metadata.lifecycle.version,
            "platform": platform,
        });
        let tag = |prefix: &str, key: &serde_json::Value| {
            let digest = op_oci::sha256(key.to_string().as_bytes());
            let hex = digest.trim_start_matches("sha256:");
            self.artifact.target.with_tag(&format!("{prefix}{hex}"))
        };
        let app_tag = tag(APP_TAG_PREFIX, &key);
        key["runImage"] = format!("{}@{run_digest}", self.run_image.name()).into();
        let key_tag = tag(KEY_TAG_PREFIX, &key);
        step(name, "inputs hashed", started);
        // What the key's tag names, and what this build's names name, at once.
        let names: Vec<&Reference> = self.artifact.references().collect();
        let key = key_tag.to_string();
        let (found, current) = futures::future::join(
            shared.registry.manifest(&key),
            futures::future::join_all(names.iter().map(|n| shared.registry.digest(n))),
        )
        .await;
        if let Some(manifest) = found? {
            // A name the registry could not say is written (and its error, if any, said then).
            let unnamed: Vec<String> = names
                .iter()
                .zip(current)
                .filter(|(_, digest)| !matches!(digest, Ok(Some(d)) if *d == manifest.digest))
                .map(|(name, _)| name.to_string())
                .collect();
            let checked = if unnamed.is_empty() && shared.options.sbom_output.is_none() {
                on_run_image(&manifest, &run_image.manifest)
                    .map(|()| Found::Manifest(manifest.into()))
            } else if manifest.json["config"]["digest"].is_string() {
                let image = shared.registry.image_of(&key, manifest).await?;
                made_on(&image, Some(&run_digest))
                    .and_then(|()| on_run_image(&image.manifest, &run_image.manifest))
                    .map(|()| Found::Image(image.into()))
            } else {
                Err("it is not an image".to_string())
            };
            match checked {
                Ok(found) => {
                    let hit = Reuse::Hit {
                        key_tag,
                        found,
                        unnamed,
                    };
                    return Ok((Some(hit), spooled));
                }
                Err(problem) => shared.reporter.line(
                    name,
                    &format!("warning: ignoring {key_tag}: {problem}; building it again"),
                ),
            }
        } else if let Some(image) = shared.registry.image(&app_tag.to_string(), None).await? {
            match made_on(&image, None) {
                Ok(()) => {
                    let rebase = Reuse::Rebase {
                        key_tag,
                        app_tag,
                        previous: Box::new(image),
                        run_image: Box::new(run_image),
                    };
                    return Ok((Some(rebase), spooled));
                }
                Err(problem) => shared.reporter.line(
                    name,
                    &format!("warning: ignoring {app_tag}: {problem}; building it again"),
                ),
            }
        }
        Ok((Some(Reuse::Miss { key_tag, app_tag }), spooled))
    }

    /// Rebases `previous` (the image of the same app inputs on another run image, which
    /// `app_tag` names) onto `base` (this build's run image), as this build's target and extra
    /// tags; its digest, or `None` when the rebase is refused (said why: the build then runs).
    pub(super) async fn rebased(
        &self,
        app_tag: &Reference,
        previous: &op_oci::Image,
        base: &op_oci::Image,
    ) -> Result<Option<String>, Error> {
        let (shared, artifact, name) = (self.shared, self.artifact, self.name());
        let previous_digest = &previous.manifest.digest;
        let image = format!("{}@{previous_digest}", app_tag.name());
        let run_image = self.run_image.to_string();
        let names: Vec<String> = artifact.references().map(ToString::to_string).collect();
        let request = crate::registry::rebase::Request {
            image: &image,
            run_image: Some(&run_image),
            names: &names,
            force: false,
            platform: self.platform,
            // The run image is the one this build would use, whatever name the metadata
            // recorded (the builder's default run image, for an app on another artifact's).
            explicit: false,
            app: Some(previous),
            base: Some(base),
        };
        match shared.registry.rebase(&request).await {
            Ok(rebased) => {
                shared.reporter.line(
                    name,
                    &format!(
                        "Only the run image changed: rebased {previous_digest} onto {}: {}",
                        rebased.run_image, rebased.digest
                    ),
                );
                Ok(Some(rebased.digest))
            }
            Err(crate::registry::rebase::Error::Registry(e)) => Err(e.into()),
            Err(refused) => {
                shared.reporter.line(
                    name,
                    &format!("Only the run image changed, but no rebase: {refused}; building it"),
                );
                Ok(None)
            }
        }
    }

    /// Publishes what an earlier build of the same inputs made (`found`, which `key_tag`
    /// names) as those of this build's names (its target and extra tags; one of several
    /// platforms has its own tag alone) that do not name it yet (`unnamed`): manifests only,
    /// no layer moves. With `--sbom-output`, its SBOMs are those of the image.
    pub(super) async fn reused(
        &self,
        key_tag: &Reference,
        found: &Found,
        unnamed: &[String],
    ) -> Result<(), Error> {
        let (shared, name) = (self.shared, self.name());
        let manifest = found.manifest();
        let digest = &manifest.digest;
        if !unnamed.is_empty() {
            let source = format!("{}@{digest}", key_tag.name());
            shared
                .registry
                .tag(&source, Some(manifest), unnamed)
                .await?;
        }
        let tag = key_tag.tag.as_deref().unwrap_or_default();
        let short = &tag[..tag.len().min(KEY_TAG_PREFIX.len() + 12)];
        let published = if unnamed.is_empty() {
            ", published already"
        } else {
            ""
        };
        shared.reporter.line(
            name,
            &format!("Unchanged inputs: reused {digest} (tag {short}…){published}"),
        );
        if let (Some(dir), Found::Image(image)) = (&shared.options.sbom_output, found) {
            self.image_sboms(dir, key_tag, image).await?;
        }
        Ok(())
    }

    /// The SBOMs of `image` (its SBOM layer, `/layers/sbom/launch/…`) to this build's directory
    /// of `dir`: the launch SBOMs a build copies; a build's `build/` SBOMs are not in the image.
    async fn image_sboms(
        &self,
        dir: &std::path::Path,
        key_tag: &Reference,
        image: &op_oci::Image,
    ) -> Result<(), Error> {
        let name = self.name();
        let sbom = image
            .label(LIFECYCLE_METADATA)
            .and_then(|label| serde_json::from_str::<LayersMetadata>(label).ok())
            .and_then(|metadata| metadata.sbom)
            .map(|layer| layer.sha);
        let layer = sbom.and_then(|diff_id| {
            let at = image.diff_ids().iter().position(|d| *d == diff_id)?;
            image.layers().get(at).cloned()
        });
        let Some(layer) = layer else {
            self.shared
                .reporter
                .line(name, "The reused image has no SBOM layer: no SBOM copied");
            return Ok(());
        };
        let blob = self
            .shared
            .registry
            .blob(&key_tag.to_string(), &layer.digest)
            .await?;
        let tar = if layer.media_type.ends_with("gzip") {
            op_oci::archive::gunzip(&blob).map_err(|source| Error::Sbom {
                dir: dir.display().to_string(),
                source,
            })?
        } else {
            blob
        };
        let target = self.place_sboms(dir, tar, "layers/sbom").await?;
        self.shared.reporter.line(
            name,
            &format!(
                "Copied the SBOMs of the reused image to {} (its launch SBOMs: build SBOMs exist only in a build)",
                target.display()
            ),
        );
        Ok(())
    }

    /// After a build or a rebase: its image takes the tags of its inputs' keys. A registry
    /// that refuses them costs the next build its reuse, not this one its result.
    pub(super) async fn remember(&self, tags: &[&Reference], digest: &str) {
        let (shared, name) = (self.shared, self.name());
        let source = format!("{}@{digest}", self.artifact.target.name());
        let tags: Vec<String> = tags.iter().map(ToString::to_string).collect();
        if let Err(e) = shared.registry.tag(&source, None, &tags).await {
            shared.reporter.line(
                name,
                &format!(
                    "warning: could not tag {} for the next build to reuse: {e}",
                    tags.join(" and ")
                ),
            );
        }
    }
}

/// Whether the layers of `manifest`, an image manifest, are those of `run_image` (a run
/// image's manifest), in order, and more: a CNB lifecycle puts the run image's layers first, as
/// they are (so does a rebase), then the app's.
fn on_run_image(manifest: &op_oci::Manifest, run_image: &op_oci::Manifest) -> Result<(), String> {
    let layers = |m: &op_oci::Manifest| -> Option<Vec<String>> {
        m.json["layers"]
            .as_array()?
            .iter()
            .map(|l| l["digest"].as_str().map(str::to_string))
            .collect()
    };
    let (Some(layers), Some(base)) = (layers(manifest), layers(run_image)) else {
        return Err("it is not an image".to_string());
    };
    if layers.len() > base.len() && layers.starts_with(&base) {
        Ok(())
    } else {
        Err(format!(
            "its layers are not those of run image {} and the app's",
            run_image.digest
        ))
    }
}

/// Whether `image` is one a CNB lifecycle made (on the run image of digest `run_digest`, when
/// one is given).
fn made_on(image: &op_oci::Image, run_digest: Option<&str>) -> Result<(), String> {
    let label = image.label(LIFECYCLE_METADATA).ok_or_else(|| {
        format!("it has no `{LIFECYCLE_METADATA}` label: no CNB lifecycle made it")
    })?;
    let metadata: serde_json::Value = serde_json::from_str(label)
        .map_err(|e| format!("its `{LIFECYCLE_METADATA}` label is not readable: {e}"))?;
    let reference = metadata["runImage"]["reference"].as_str().unwrap_or("");
    match run_digest {
        Some(run_digest) if !reference.ends_with(run_digest) => Err(format!(
            "it was made on run image `{reference}`, not on {run_digest}"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(labels: &serde_json::Value) -> op_oci::Image {
        op_oci::Image {
            reference: "r/app:op-inputs-1".into(),
            manifest: op_oci::Manifest {
                bytes: Vec::new(),
                digest: "sha256:app".into(),
                media_type: String::new(),
                json: serde_json::Value::Null,
            },
            config: serde_json::json!({"config": {"Labels": labels.clone()}}),
            config_digest: "sha256:config".into(),
        }
    }

    fn manifest(digest: &str, layers: &[&str]) -> op_oci::Manifest {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|d| serde_json::json!({ "digest": d }))
            .collect();
        op_oci::Manifest {
            bytes: Vec::new(),
            digest: digest.into(),
            media_type: op_oci::OCI_MANIFEST.into(),
            json: serde_json::json!({ "layers": layers }),
        }
    }

    #[test]
    fn an_image_published_already_is_checked_by_its_layers() {
        let run = manifest("sha256:run", &["sha256:os", "sha256:patch"]);
        let app = |layers: &[&str]| on_run_image(&manifest("sha256:app", layers), &run);
        assert_eq!(app(&["sha256:os", "sha256:patch", "sha256:app"]), Ok(()));
        for wrong in [
            // The run image itself, another run image, its layers elsewhere.
            &["sha256:os", "sha256:patch"][..],
            &["sha256:os", "sha256:other", "sha256:app"],
            &["sha256:app", "sha256:os", "sha256:patch"],
        ] {
            assert_eq!(
                app(wrong),
                Err("its layers are not those of run image sha256:run and the app's".into()),
                "{wrong:?}"
            );
        }
        let mut index = manifest("sha256:index", &[]);
        index.json = serde_json::json!({ "manifests": [] });
        assert_eq!(on_run_image(&index, &run), Err("it is not an image".into()));
    }

    #[test]
    fn only_an_image_a_lifecycle_made_on_the_same_run_image_is_reused() {
        let made = serde_json::json!({
            LIFECYCLE_METADATA: r#"{"runImage":{"topLayer":"sha256:t","reference":"r/run@sha256:run"}}"#
        });
        assert_eq!(made_on(&image(&made), Some("sha256:run")), Ok(()));
        assert_eq!(made_on(&image(&made), None), Ok(()));
        assert!(
            made_on(&image(&made), Some("sha256:other"))
                .unwrap_err()
                .contains("not on sha256:other")
        );
        assert!(
            made_on(&image(&serde_json::json!({})), None)
                .unwrap_err()
                .contains("no CNB lifecycle made it")
        );
        assert!(
            made_on(
                &image(&serde_json::json!({ LIFECYCLE_METADATA: "{" })),
                Some("sha256:run")
            )
            .unwrap_err()
            .contains("not readable")
        );
    }
}
