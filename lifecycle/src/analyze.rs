//! ANALYZING: the run image (and its target), and the previous image whose layers can be
//! reused, both read from the registry; the result is `<layers>/analyzed.toml`.

use std::path::Path;

use op_oci::{self as oci, Image, Registry};

use crate::exit::{self, Error};
use crate::files::{
    self, Analyzed, Distro, ImageIdentifier, LayersMetadata, RunImageInfo, RunImageRef, RunToml,
    TargetMetadata,
};
use crate::log;

/// The label of an app image that says where its layers came from.
pub const LIFECYCLE_METADATA_LABEL: &str = "io.buildpacks.lifecycle.metadata";

/// What analysis found.
#[derive(Debug)]
pub struct Analysis {
    pub analyzed: Analyzed,
    pub run_image: Image,
    /// The run image as named (`-run-image`, else from `run.toml`).
    pub run_image_name: String,
    /// The run image the app image records for rebasing (see [`RunImageChoice`]).
    pub run_image_for_export: RunImageRef,
    pub previous: Option<Image>,
}

/// The run image of a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunImageChoice {
    /// What the build runs on: `-run-image`, else the first image of `run.toml` (or its mirror
    /// on the output image's registry).
    pub image: String,
    /// What the app image records in `runImage` of its lifecycle metadata, for a rebase (the
    /// reference's `GetRunImageForExport`): the `run.toml` entry whose image or a mirror names
    /// the same image as [`RunImageChoice::image`] (digests aside, `:latest` implied), else the
    /// first entry; nothing without `run.toml`.
    pub for_export: RunImageRef,
}

/// The run image to use, and the one to record (see [`RunImageChoice`]).
pub fn choose_run_image(
    flag: Option<&str>,
    run_toml: &Path,
    output: &str,
) -> Result<RunImageChoice, Error> {
    let run: RunToml = files::read_toml(run_toml)
        .map_err(|e| Error::new(exit::INVALID_ARGS, e))?
        .unwrap_or_default();
    let image = match flag {
        Some(image) => image.to_string(),
        None => run
            .images
            .first()
            .ok_or_else(|| {
                Error::new(
                    exit::INVALID_ARGS,
                    "-run-image is required when there is no run metadata available",
                )
            })?
            .for_output(output, |r| op_oci::registry_of(r).ok())
            .to_string(),
    };
    let names_it = |entry: &RunImageRef| {
        std::iter::once(&entry.image)
            .chain(&entry.mirrors)
            .any(|candidate| same_image(candidate, &image))
    };
    let for_export = run
        .images
        .iter()
        .find(|entry| names_it(entry))
        .or(run.images.first())
        .cloned()
        .unwrap_or_default();
    Ok(RunImageChoice { image, for_export })
}

/// Whether `a` and `b` name the same image, digests aside, `:latest` implied.
fn same_image(a: &str, b: &str) -> bool {
    let name = |reference: &str| {
        let parsed = oci::parse(reference.split('@').next().unwrap_or(reference)).ok()?;
        Some((
            parsed.resolve_registry().to_string(),
            parsed.repository().to_string(),
            parsed.tag().unwrap_or("latest").to_string(),
        ))
    };
    matches!((name(a), name(b)), (Some(x), Some(y)) if x == y)
}

/// Reads the run image and the previous image from the registry.
pub async fn analyze(
    registry: &Registry,
    run_image: RunImageChoice,
    previous_image: &str,
    os_release: &Path,
) -> Result<Analysis, Error> {
    let fail = |e: oci::Error| {
        Error::new(
            exit::ANALYZE_ERROR,
            format!("failed to analyze: {}", chain(&e)),
        )
    };
    let RunImageChoice {
        image: run_image_name,
        for_export: run_image_for_export,
    } = run_image;
    let run = registry
        .image(&run_image_name)
        .await
        .map_err(fail)?
        .ok_or_else(|| {
            Error::new(
                exit::ANALYZE_ERROR,
                format!("failed to analyze: the run image `{run_image_name}` does not exist"),
            )
        })?;
    let target = target_of(&run, os_release);
    let previous = registry.image(previous_image).await.map_err(fail)?;
    let metadata = previous.as_ref().and_then(|p| {
        let label = p.label(LIFECYCLE_METADATA_LABEL)?;
        match serde_json::from_str::<LayersMetadata>(label) {
            Ok(metadata) => Some(metadata),
            Err(e) => {
                log::warn(&format!("the previous image's {LIFECYCLE_METADATA_LABEL} label is not readable ({e}); no layer is reused"));
                None
            }
        }
    });
    match &previous {
        Some(p) => log::debug(&format!("Previous image {} found", p.digest_reference())),
        None => log::debug(&format!("Previous image {previous_image} not found")),
    }
    let analyzed = Analyzed {
        image: previous.as_ref().map(|p| ImageIdentifier {
            reference: p.digest_reference(),
        }),
        metadata,
        run_image: RunImageInfo {
            reference: run.digest_reference(),
            image: run_image_name.clone(),
            target: Some(target),
        },
    };
    Ok(Analysis {
        analyzed,
        run_image: run,
        run_image_name,
        run_image_for_export,
        previous,
    })
}

/// The target of the run image: os and architecture from its config, the distribution from its
/// labels, else from `/etc/os-release` of the build container.
fn target_of(image: &Image, os_release: &Path) -> TargetMetadata {
    let config_field = |key: &str| {
        image
            .config
            .get(key)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let distro = match (
        image.label("io.buildpacks.base.distro.name"),
        image.label("io.buildpacks.base.distro.version"),
    ) {
        (Some(name), version) => Some(Distro {
            name: name.to_string(),
            version: version.unwrap_or("").to_string(),
        }),
        (None, _) => read_os_release(os_release),
    };
    TargetMetadata {
        id: image.label("io.buildpacks.base.id").map(str::to_string),
        os: config_field("os").unwrap_or_else(|| "linux".into()),
        arch: config_field("architecture").unwrap_or_else(|| oci::Platform::host().architecture),
        arch_variant: config_field("variant"),
        distro,
    }
}

fn read_os_release(path: &Path) -> Option<Distro> {
    let text = fs_err::read_to_string(path).ok()?;
    let field = |key: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix('=')
                .map(|v| v.trim_matches('"').to_string())
        })
    };
    Some(Distro {
        name: field("ID")?,
        version: field("VERSION_ID").unwrap_or_default(),
    })
}

/// An error and its causes on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_images_come_from_the_flag_or_run_toml() {
        let dir = tempfile::tempdir().unwrap();
        let run_toml = dir.path().join("run.toml");
        assert_eq!(
            choose_run_image(Some("reg/run:1"), &run_toml, "x/app").unwrap(),
            RunImageChoice {
                image: "reg/run:1".into(),
                for_export: RunImageRef::default()
            },
            "without run.toml nothing is recorded"
        );
        assert_eq!(
            choose_run_image(None, &run_toml, "x/app").unwrap_err().code,
            exit::INVALID_ARGS
        );
        fs_err::write(
            &run_toml,
            "[[images]]\nimage = \"ghcr.io/o/run:1\"\nmirrors = [\"127.0.0.1:5000/o/run:1\"]\n",
        )
        .unwrap();
        let entry = RunImageRef {
            image: "ghcr.io/o/run:1".into(),
            mirrors: vec!["127.0.0.1:5000/o/run:1".into()],
        };
        assert_eq!(
            choose_run_image(None, &run_toml, "ghcr.io/o/app").unwrap(),
            RunImageChoice {
                image: "ghcr.io/o/run:1".into(),
                for_export: entry.clone()
            }
        );
        assert_eq!(
            choose_run_image(None, &run_toml, "127.0.0.1:5000/o/app").unwrap(),
            RunImageChoice {
                image: "127.0.0.1:5000/o/run:1".into(),
                for_export: entry.clone()
            },
            "the mirror runs, the entry is recorded"
        );
    }

    #[test]
    fn the_run_image_recorded_for_rebase_is_a_run_toml_entry() {
        let dir = tempfile::tempdir().unwrap();
        let run_toml = dir.path().join("run.toml");
        fs_err::write(
            &run_toml,
            "[[images]]\nimage = \"reg/base\"\n[[images]]\nimage = \"reg/other:2\"\nmirrors = [\"mirror/other:2\"]\n",
        )
        .unwrap();
        let recorded = |flag: &str| {
            choose_run_image(Some(flag), &run_toml, "reg/app")
                .unwrap()
                .for_export
                .image
        };
        assert_eq!(recorded("reg/base:latest@sha256:abc"), "reg/base");
        assert_eq!(recorded("mirror/other:2"), "reg/other:2");
        assert_eq!(
            recorded("reg/built-app@sha256:abc"),
            "reg/base",
            "a run image run.toml does not name records the builder's first"
        );
    }

    #[test]
    fn os_release_gives_the_distribution() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("os-release");
        fs_err::write(
            &path,
            "NAME=\"BusyBox\"\nID=busybox\nVERSION_ID=\"1.35.0\"\n",
        )
        .unwrap();
        assert_eq!(
            read_os_release(&path),
            Some(Distro {
                name: "busybox".into(),
                version: "1.35.0".into()
            })
        );
        assert_eq!(read_os_release(&dir.path().join("none")), None);
    }
}
