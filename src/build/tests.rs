use std::collections::BTreeMap;
use std::path::PathBuf;

use op_lifecycle::files::{BuilderMetadata, RunImageRef};

use super::artifact::{LineBuffer, announced_digest, slug, without_ansi};
use super::schedule::run_image;
use super::*;
use crate::cnb::builder::BuilderInfo;
use crate::plan::{BuildpacksPlan, Dependency, RunImage, Via};

#[test]
fn cache_volumes_are_stable_per_artifact_and_repository() {
    let a = cache_volume("api", "localhost:5001/team/api:latest");
    assert!(a.starts_with("op-cache-localhost-5001-team-api-"), "{a}");
    assert_eq!(
        a,
        cache_volume("api", "localhost:5001/team/api:v2"),
        "the tag does not matter"
    );
    assert_ne!(
        a,
        cache_volume("api", "ghcr.io/team/api:latest"),
        "another repository is another cache"
    );
    assert_ne!(a, cache_volume("web", "localhost:5001/team/api:latest"));
    assert!(a.len() < 64, "{a}");
    assert_eq!(slug("ghcr.io/Org/My_App"), "ghcr-io-org-my-app");
}

#[test]
fn loopback_registries_get_host_networking_unless_told_otherwise() {
    assert_eq!(
        network_for(None, &["localhost:5001/a:latest"]).as_deref(),
        Some("host")
    );
    assert_eq!(
        network_for(None, &["ghcr.io/a:latest", "127.0.0.1:5000/run"]).as_deref(),
        Some("host")
    );
    assert_eq!(network_for(None, &["ghcr.io/a:latest"]), None);
    assert_eq!(
        network_for(Some("ci-net"), &["localhost:5001/a"]).as_deref(),
        Some("ci-net")
    );
    assert_eq!(network_for(Some(""), &["ghcr.io/a"]), None);
}

#[test]
fn output_is_split_into_lines_across_chunks() {
    let mut buffer = LineBuffer::default();
    assert!(buffer.push(b"===> DETEC").is_empty());
    assert_eq!(buffer.push(b"TING\r\nfoo\nba"), ["===> DETECTING", "foo"]);
    assert_eq!(buffer.finish().as_deref(), Some("ba"));
    assert_eq!(buffer.finish(), None);
    assert_eq!(Phase::from_banner("===> DETECTING"), Some(Phase::Detecting));
    assert_eq!(Phase::from_banner("===> EXPORTING"), Some(Phase::Exporting));
    assert_eq!(Phase::from_banner("---> Greeting"), None);
}

#[test]
fn the_digest_the_lifecycle_announces_is_read_from_its_line() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    assert_eq!(
        announced_digest(&format!("*** Images ({digest}):")),
        Some(digest.clone())
    );
    assert_eq!(
        announced_digest(&format!("\x1b[0m*** Images ({digest}):\x1b[0m")),
        Some(digest.clone()),
        "coloured"
    );
    for other in [
        "*** Images (0123456789ab):".to_string(),
        "*** Images (sha256:abc):".into(),
        format!("*** Digest: {digest}"),
        format!("      reg/app:latest ({digest})"),
    ] {
        assert_eq!(announced_digest(&other), None, "{other}");
    }
}

#[test]
fn coloured_banners_start_their_phase_too() {
    // As the reference lifecycle 0.21 prints them without -no-color.
    assert_eq!(
        Phase::from_banner("\x1b[36m===> ANALYZING\x1b[0m"),
        Some(Phase::Analyzing)
    );
    assert_eq!(
        without_ansi("\x1b[33;1mWarning: \x1b[0mDid not find SBOM"),
        "Warning: Did not find SBOM"
    );
    assert_eq!(
        without_ansi("\x1b]8;;https://x\x1b\\link\x1b]8;;\x07 done"),
        "link done"
    );
    assert!(matches!(
        without_ansi("plain"),
        std::borrow::Cow::Borrowed("plain")
    ));
}

fn builder_info() -> BuilderInfo {
    BuilderInfo {
        image: "localhost:5001/op/builder:latest".into(),
        uid: 1000,
        gid: 1000,
        metadata: BuilderMetadata {
            images: vec![RunImageRef {
                image: "localhost:5001/op/busybox-run:latest".into(),
                mirrors: vec![],
            }],
            ..BuilderMetadata::default()
        },
        platform_apis: vec![op_lifecycle::api::Version(0, 12)],
    }
}

fn artifact(image: &str, run: Option<RunImage>) -> PlannedArtifact {
    PlannedArtifact {
        image: image.into(),
        kind: "buildpacks",
        context: PathBuf::from("/src"),
        location: "build.artifacts[0]".into(),
        target: format!("localhost:5001/{image}:latest"),
        tags: vec![format!("localhost:5001/{image}:latest")],
        action: Action::Build,
        skip_reason: None,
        depends_on: run
            .as_ref()
            .and_then(|r| r.artifact.clone())
            .map(|dep| Dependency {
                image: dep,
                via: Via::RunImage,
                alias: None,
                built: true,
            })
            .into_iter()
            .collect(),
        buildpacks: Some(BuildpacksPlan {
            builder: "localhost:5001/op/builder:latest".into(),
            run_image: run,
            env: vec![],
            buildpacks: vec![],
            trust_builder: true,
            clear_cache: false,
            project_descriptor: None,
            volumes: vec![],
        }),
        docker: None,
    }
}

#[test]
fn run_images_come_from_built_artifacts_then_the_plan_then_the_builder() {
    let builder = builder_info();
    let base = Built {
        image: "base".into(),
        tag: "localhost:5001/base:latest@sha256:aaa".into(),
        digest: "sha256:aaa".into(),
        seconds: 1.0,
        creator_seconds: None,
    };
    let built = BTreeMap::from([("base".to_string(), base)]);
    let app = artifact(
        "app",
        Some(RunImage {
            image: "localhost:5001/base:latest".into(),
            artifact: Some("base".into()),
        }),
    );
    let (image, note) = run_image(&app, &builder, &built).unwrap();
    assert_eq!(image, "localhost:5001/base:latest@sha256:aaa");
    assert_eq!(
        note.as_deref(),
        Some("Resolving runImage base to built artifact localhost:5001/base:latest@sha256:aaa")
    );

    let (image, note) = run_image(&app, &builder, &BTreeMap::new()).unwrap();
    assert_eq!(
        (image.as_str(), note),
        ("localhost:5001/base:latest", None),
        "a dependency not built now is used as named"
    );

    let plain = artifact("plain", None);
    assert_eq!(
        run_image(&plain, &builder, &built).unwrap().0,
        "localhost:5001/op/busybox-run:latest"
    );
    let mut without_run = builder.clone();
    without_run.metadata.images.clear();
    assert!(matches!(
        run_image(&plain, &without_run, &built),
        Err(cnb::Error::NoRunImage { .. })
    ));
}

#[test]
fn default_run_images_and_their_mirrors_are_registries_that_need_credentials() {
    let mut builder = builder_info();
    builder.metadata.images = vec![RunImageRef {
        image: "index.docker.io/paketobuildpacks/run-jammy-base:latest".into(),
        mirrors: vec![
            "gcr.io/paketo-buildpacks/run-jammy-base:latest".into(),
            "docker.io/paketobuildpacks/run-jammy-base:latest".into(),
        ],
    }];
    let builders = BTreeMap::from([(builder.image.clone(), builder)]);
    let plain = artifact("plain", None);
    assert_eq!(
        schedule::default_run_image_hosts(&[&plain], &builders),
        ["gcr.io", "index.docker.io"]
    );
    let named = artifact(
        "named",
        Some(RunImage {
            image: "localhost:5001/base:latest".into(),
            artifact: None,
        }),
    );
    assert!(
        schedule::default_run_image_hosts(&[&named], &builders).is_empty(),
        "a run image the plan names is resolved with the plan's references"
    );
}

#[test]
fn failures_are_listed_with_their_causes_and_hints() {
    let error = Error::Failed {
        failures: vec![
            Failure {
                artifact: "api".into(),
                error: ArtifactError::Creator {
                    message: "a buildpack failed (exit code 51)".into(),
                    hint: Some("see above".into()),
                    tail: vec![],
                },
            },
            Failure {
                artifact: "web".into(),
                error: ArtifactError::DependencyFailed {
                    dependency: "api".into(),
                },
            },
        ],
        total: 3,
    };
    assert_eq!(
        error.to_string(),
        "2 of 3 artifacts failed, so no build result was written:\n  - api: a buildpack failed (exit code 51)\n  - web: not built: it depends on `api`, which failed"
    );
    assert_eq!(error.hint().as_deref(), Some("see above"));
}
