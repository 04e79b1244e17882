//! Builds not made twice (`--cache-artifacts`, on by default): a buildpacks build whose inputs
//! were built before reuses what they made. The key of a build is a digest of everything that
//! can change its image (docs/configuration.md lists it); the registry keeps, in the target's
//! repository, a tag per key (`op-inputs-<key>`) on the image those inputs made, so that a
//! fresh CI runner finds it too, and a tag per key of the app's inputs alone (`op-app-<key>`,
//! the key without the run image): when only the run image changed, that image is rebased
//! (`registry::rebase`) instead of built. A tag found is never trusted blindly: the image must
//! be one a CNB lifecycle made (on the same run image, for `op-inputs-`: its config says so,
//! and its layers begin with the run image's; when the build's names all name it already,
//! nothing is published and its layers alone are checked), or it is ignored with a warning and
//! the build runs (its image then takes the tags).

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

/// What a build's names name now, read first when this machine recorded the image of its key.
struct Named {
    /// Each name's digest, or why the registry could not say it.
    digests: Vec<Result<Option<String>, crate::registry::Error>>,
    /// The manifest they all name, when it is the recorded image.
    recorded: Option<op_oci::Manifest>,
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
        let (key_tag, app_tag) = self.key_tags(&inputs, &run_image.manifest.digest);
        step(name, "inputs hashed", started);
        let names: Vec<&Reference> = self.artifact.references().collect();
        // What this machine published from these inputs, when its names name it still.
        let now = self.named_as_recorded(&key_tag, &names).await;
        if let Some(Named {
            recorded: Some(manifest),
            ..
        }) = &now
            && on_run_image(manifest, &run_image.manifest).is_ok()
        {
            let hit = Reuse::Hit {
                key_tag,
                found: Found::Manifest(Box::new(manifest.clone())),
                unnamed: Vec::new(),
            };
            return Ok((Some(hit), spooled));
        }
        // What the key's tag names, and what this build's names name (unless read above), at
        // once.
        let key = key_tag.to_string();
        let (found, current) = futures::future::join(shared.registry.manifest(&key), async {
            match now {
                Some(now) => now.digests,
                None => {
                    futures::future::join_all(names.iter().map(|n| shared.registry.digest(n))).await
                }
            }
        })
        .await;
        if let Some(manifest) = found? {
            // A name the registry could not say is written (and its error, if any, said then).
            let unnamed: Vec<String> = names
                .iter()
                .zip(current)
                .filter(|(_, digest)| !matches!(digest, Ok(Some(d)) if *d == manifest.digest))
                .map(|(name, _)| name.to_string())
                .collect();
            match self.checked(&key, manifest, &unnamed, &run_image).await? {
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

    /// The tags of this build's keys in its target's repository: that of everything that can
    /// change its image (`inputs`, the digest of the creator's inputs; the run image's digest
    /// `run_digest`), and that of the app's inputs alone (the same without the run image).
    fn key_tags(&self, inputs: &str, run_digest: &str) -> (Reference, Reference) {
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
        (tag(KEY_TAG_PREFIX, &key), app_tag)
    }

    /// With this machine's record of `key_tag` for this build's target (and no SBOMs to copy,
    /// which need the image's config): what the build's `names` name now, and the manifest
    /// they all name when it is the recorded image.
    async fn named_as_recorded(&self, key_tag: &Reference, names: &[&Reference]) -> Option<Named> {
        let shared = self.shared;
        if shared.options.sbom_output.is_some() {
            return None;
        }
        let known = recorded(&shared.env, &self.artifact.target, key_tag)?;
        let texts: Vec<String> = names.iter().map(ToString::to_string).collect();
        let manifests =
            futures::future::join_all(texts.iter().map(|n| shared.registry.manifest(n))).await;
        let recorded = match manifests.first() {
            Some(Ok(Some(first)))
                if manifests
                    .iter()
                    .all(|m| matches!(m, Ok(Some(m)) if m.digest == known)) =>
            {
                Some(first.clone())
            }
            _ => None,
        };
        let digests = manifests
            .into_iter()
            .map(|m| m.map(|m| m.map(|m| m.digest)))
            .collect();
        Some(Named { digests, recorded })
    }

    /// The check of `manifest`, which the key's tag `key` names, against `run_image`: its
    /// layers alone when the build's names all name it already (`unnamed` is empty) and no
    /// SBOMs are to be copied; else its config too (read: a CNB lifecycle made it, on that run
    /// image). Why it fails the check, if it does.
    async fn checked(
        &self,
        key: &str,
        manifest: op_oci::Manifest,
        unnamed: &[String],
        run_image: &op_oci::Image,
    ) -> Result<Result<Found, String>, Error> {
        let shared = self.shared;
        if unnamed.is_empty() && shared.options.sbom_output.is_none() {
            return Ok(on_run_image(&manifest, &run_image.manifest)
                .map(|()| Found::Manifest(manifest.into())));
        }
        if !manifest.json["config"]["digest"].is_string() {
            return Ok(Err("it is not an image".to_string()));
        }
        let image = shared.registry.image_of(key, manifest).await?;
        Ok(made_on(&image, Some(&run_image.manifest.digest))
            .and_then(|()| on_run_image(&image.manifest, &run_image.manifest))
            .map(|()| Found::Image(image.into())))
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
        record(&shared.env, &self.artifact.target, key_tag, digest);
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

    /// After a build or a rebase: its image takes the tags of its inputs' keys (`key_tag` and
    /// `app_tag`), and this machine's record. A registry that refuses them costs the next build
    /// its reuse, not this one its result.
    pub(super) async fn remember(&self, key_tag: &Reference, app_tag: &Reference, digest: &str) {
        let (shared, name) = (self.shared, self.name());
        record(&shared.env, &self.artifact.target, key_tag, digest);
        let source = format!("{}@{digest}", self.artifact.target.name());
        let tags: Vec<String> = [key_tag, app_tag].iter().map(ToString::to_string).collect();
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

/// Where this machine records the key a target was last published under and its image:
/// `<op's cache>/published/<digest of the target's name>`, which holds `<key tag> <digest>`
/// (one file per target, rewritten: as many as the targets built here). It saves the request
/// for the key's tag when the target names that image still (skaffold keeps its artifact
/// cache the same way); a fresh runner has none, and asks the registry.
fn record_path(env: &crate::config::Env, target: &Reference) -> std::path::PathBuf {
    let digest = op_oci::sha256(target.to_string().as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    env.cache_dir().join("published").join(&hex[..32])
}

/// The digest of the image this machine published as `target` from the inputs of `key_tag`,
/// if it did last.
fn recorded(env: &crate::config::Env, target: &Reference, key_tag: &Reference) -> Option<String> {
    let text = fs_err::read_to_string(record_path(env, target)).ok()?;
    let (tag, digest) = text.trim_end().split_once(' ')?;
    (*key_tag == tag && digest.starts_with("sha256:")).then(|| digest.to_string())
}

/// Records that `target` was published as `digest` from the inputs of `key_tag` (unless the
/// record says so already): written whole and renamed into place (another op publishing the
/// same target meanwhile leaves one of the two). A record that cannot be written costs the next
/// build a request, and is left unsaid.
fn record(env: &crate::config::Env, target: &Reference, key_tag: &Reference, digest: &str) {
    if recorded(env, target, key_tag).as_deref() == Some(digest) {
        return;
    }
    let path = record_path(env, target);
    let written = (|| {
        let dir = path.parent().unwrap_or(&path);
        fs_err::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut file, format!("{key_tag} {digest}\n").as_bytes())?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok::<_, std::io::Error>(())
    })();
    if let Err(e) = written {
        tracing::debug!(path = %path.display(), "no record of the published image: {e}");
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
    fn this_machine_records_the_key_each_target_was_published_under() {
        let home = tempfile::tempdir().unwrap();
        let env = crate::config::Env::from_pairs([("HOME", home.path().to_str().unwrap())]);
        let target = Reference::parse("localhost:5001/team/api:latest").unwrap();
        let key = |hex: &str| target.with_tag(&format!("{KEY_TAG_PREFIX}{hex}"));
        assert_eq!(recorded(&env, &target, &key("1")), None);
        record(&env, &target, &key("1"), "sha256:a");
        assert_eq!(recorded(&env, &target, &key("1")), Some("sha256:a".into()));
        assert_eq!(recorded(&env, &target, &key("2")), None, "another key");
        let other = Reference::parse("localhost:5001/team/web:latest").unwrap();
        assert_eq!(recorded(&env, &other, &key("1")), None, "another target");
        // Rewritten: one record per target.
        record(&env, &target, &key("2"), "sha256:b");
        assert_eq!(recorded(&env, &target, &key("1")), None);
        assert_eq!(recorded(&env, &target, &key("2")), Some("sha256:b".into()));
        let dir = home.path().join(".cache/op/published");
        assert_eq!(fs_err::read_dir(&dir).unwrap().count(), 1);
        // Not a record: ignored.
        let file = fs_err::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        fs_err::write(&file, "garbage").unwrap();
        assert_eq!(recorded(&env, &target, &key("2")), None);
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
