//! `op rebase` against the real lifecycle's `rebaser` (v0.21.0, in the pack-made builder): the
//! same app image, rebased by each onto the same new run image.

use crate::build_push::apps;
use crate::common::cnb::{Lifecycle, Stack, crane_out, verify_published};
use crate::common::docker::docker;

/// The manifest and config of `image`, the config's lifecycle metadata label parsed (its text
/// is Go's or serde's serialization of the same value).
fn read(image: &str) -> (serde_json::Value, serde_json::Value) {
    let manifest: serde_json::Value =
        serde_json::from_str(&crane_out(&["manifest", image])).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&crane_out(&["config", image])).unwrap();
    let labels = &mut config["config"]["Labels"];
    let label = labels["io.buildpacks.lifecycle.metadata"]
        .as_str()
        .unwrap()
        .to_string();
    labels["io.buildpacks.lifecycle.metadata"] = serde_json::from_str(&label).unwrap();
    (manifest, config)
}

/// The procfile app, built by the real lifecycle on the stack's run image; then the run image
/// gets a new layer under the same name, and two copies of the app are rebased onto it, one by
/// `op rebase`, one by the lifecycle's `rebaser` (in a container of the builder, as pack runs
/// it). The results are the same image: the configs (platform, rootfs, history, the app's
/// config, the labels, the metadata's `runImage`) equal, the manifests equal but for the
/// differences listed below. An image no lifecycle made is refused.
#[test]
fn op_rebase_writes_what_the_lifecycle_s_rebaser_writes() {
    let stack = Stack::start(Lifecycle::Reference);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    context
        .op(&["build-push", "--repo", &repo, "--artifact", "procfile"])
        .success();
    let app = format!("{repo}/procfile:latest");
    let before = verify_published(&app);
    let (ours, theirs) = (
        format!("{repo}/rebased-by-op:latest"),
        format!("{repo}/rebased-by-lifecycle:latest"),
    );
    crane_out(&["copy", &app, &ours]);
    crane_out(&["copy", &app, &theirs]);

    // The run image moves: one more layer, the same name.
    let new_run = stack.patch_run_image(context.path(), "patch");

    let rebased = context.op(&["rebase", &ours]);
    rebased.success();
    assert!(
        rebased.stderr.contains(&format!("Rebased {ours} onto ")),
        "{}",
        rebased.report()
    );
    assert!(rebased.stderr.contains(&new_run), "{}", rebased.report());

    let lifecycle = docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-e",
        "CNB_PLATFORM_API=0.12",
        "-e",
        "CNB_LAYERS_DIR=/tmp",
        "--entrypoint",
        "/cnb/lifecycle/rebaser",
        &stack.builder,
        &theirs,
    ]);
    let _ = lifecycle;

    // Equal, but for what docs/configuration.md ("op rebase") lists: the order of the keys of
    // the JSON (op's are sorted, Go writes its structs' field order: the config's bytes are a
    // permutation of the rebaser's, of the same size, with another digest), and the media type
    // of the run image's layers (op writes every layer in the manifest's family, Docker's; the
    // rebaser keeps an OCI run image's OCI layer types in its Docker manifest).
    let (ours_manifest, ours_config) = read(&ours);
    let (theirs_manifest, theirs_config) = read(&theirs);
    assert_eq!(ours_config, theirs_config, "the configs");
    let comparable = |manifest: &serde_json::Value| {
        let mut manifest = manifest.clone();
        manifest["config"]["digest"] = serde_json::Value::Null;
        for layer in manifest["layers"].as_array_mut().unwrap() {
            if layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" {
                layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
            }
        }
        manifest
    };
    assert_eq!(
        comparable(&ours_manifest),
        comparable(&theirs_manifest),
        "the manifests"
    );
    assert_ne!(verify_published(&ours), before);
    // An image no lifecycle made: refused, named, nothing written.
    let refused = context.op(&["rebase", &stack.run_image]);
    refused.failure(1);
    for expected in [
        "was not made by a CNB lifecycle: it has no `io.buildpacks.lifecycle.metadata` label",
        "hint: rebase images built with buildpacks",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected}\n{}",
            refused.report()
        );
    }
    assert_eq!(crane_out(&["digest", &stack.run_image]).trim(), new_run);
    let metadata = &ours_config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"];
    assert!(
        metadata["runImage"]["reference"]
            .as_str()
            .unwrap()
            .ends_with(&new_run),
        "{metadata}"
    );
}
