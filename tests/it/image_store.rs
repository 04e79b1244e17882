//! containerd's image store (Docker 29's default, the current engine's), deliberately: what lands
//! in the engine when nothing is pushed, side by side with what pack's daemon export and
//! skaffold's buildpacks builder leave there, and what several platforms become.

use std::process::Command;

use crate::build_push::apps;
use crate::common::TestContext;
use crate::common::cnb::{
    Lifecycle, Stack, apps_in, lifecycle_dir, pack, skaffold, verify_published,
};
use crate::common::docker::{Engine, ImagesOf, docker, docker_command, id_and_repo_digests};

on_each_engine!(
    several_platforms_without_push_land_in_the_engine_as_its_store_can_hold_them,
    op_version_v_names_the_engine_its_api_and_its_image_store,
);

/// `op version -v`: the engine op finds, the API they agreed on, and its image store; without an
/// engine it says so (and still exits 0: the version is what was asked for).
fn op_version_v_names_the_engine_its_api_and_its_image_store() {
    let engine = Engine::of_this_test();
    let run = TestContext::new().op(&["version", "-v"]);
    run.success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("op version "), "{}", run.report());
    assert!(
        lines[1].starts_with("engine: Docker Engine ")
            && lines[1].ends_with(&format!(" at {} (linux/amd64)", engine.host())),
        "{}",
        run.report()
    );
    let (api, store) = if engine.containerd_store() {
        (
            "engine API: 1.5",
            "image store: containerd (snapshotter overlayfs)",
        )
    } else {
        (
            "engine API: 1.41 (the engine speaks 1.12 to 1.41; op needs 1.41 or newer)",
            "image store: graph driver overlay2",
        )
    };
    assert!(lines[2].starts_with(api), "{}", run.report());
    assert_eq!(lines[3], store, "{}", run.report());
    let without = TestContext::new()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .op(&["version", "-v"]);
    without.success();
    assert!(
        without.stdout.contains(
            "engine: No Docker Engine answers at `unix:///nonexistent/docker.sock` (DOCKER_HOST)"
        ),
        "{}",
        without.report()
    );
}

/// `imageName`'s `tag` in the `build_result.json` of `context`.
fn result_tag(context: &TestContext, image: &str) -> String {
    let text = fs_err::read_to_string(context.path().join("build_result.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["imageName"] == image)
        .and_then(|b| b["tag"].as_str())
        .unwrap()
        .to_string()
}

/// `docker pull reference`: whether it worked, and what it said.
fn pull(reference: &str) -> (bool, String) {
    let out = docker_command()
        .args(["pull", "-q", reference])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The same app (`procfile`, the pack-made builder with the real lifecycle), three ways, none
/// pushing, on containerd's store: `pack build` (daemon export) and `skaffold build` (its
/// buildpacks builder, pack's library) leave an image whose `RepoDigests` names the registry,
/// although the registry never got it (`docker pull` of that name fails); `op build` publishes
/// and pulls, so every name the engine lists is served, and it is `build_result.json`'s.
#[test]
fn on_containerd_s_store_only_op_leaves_repo_digests_the_registry_serves() {
    assert!(
        Engine::Current.containerd_store(),
        "the current engine must keep images in containerd's image store (scripts/dev-env)"
    );
    let stack = Stack::start(Lifecycle::Reference);
    let repo = stack.registry.addr();
    let _images = ImagesOf(repo.clone());
    let context = apps(&stack).env("OP_SKAFFOLD", &skaffold().display().to_string());

    // op
    let run = context.op(&["build", "--repo", &repo, "--artifact", "procfile"]);
    run.success();
    let tag = result_tag(&context, "procfile");
    let (reference, digest) = tag.split_once('@').unwrap();
    let (id, repo_digests) = id_and_repo_digests(reference);
    assert_eq!(id, digest, "{}", run.report());
    assert_eq!(repo_digests, [format!("{repo}/procfile@{digest}")]);
    assert_eq!(verify_published(reference), digest);
    let (pulled, said) = pull(&repo_digests[0]);
    assert!(pulled, "op's name is served: {said}");

    // pack build, exporting to the engine
    let packed = format!("{repo}/pack-procfile:latest");
    let out = Command::new(pack())
        .args([
            "build",
            &packed,
            "--builder",
            &stack.builder,
            "--path",
            &context.path().join("procfile").display().to_string(),
            "--docker-host",
            "inherit",
            "--pull-policy",
            "if-not-present",
            "--trust-builder",
        ])
        .env("DOCKER_HOST", Engine::Current.host())
        .output()
        .unwrap();
    let pack_said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "pack build failed:\n{pack_said}");
    assert!(
        pack_said
            .contains("daemon uses containerd storage; performance may be significantly degraded"),
        "pack warns about pack#2272:\n{pack_said}"
    );
    let (pack_id, pack_digests) = id_and_repo_digests(&packed);
    assert_eq!(
        pack_digests,
        [format!("{repo}/pack-procfile@{pack_id}")],
        "the engine names pack's image under the registry"
    );
    assert_eq!(
        stack.registry.get("/v2/pack-procfile/tags/list").0,
        404,
        "pack pushed nothing"
    );
    let (pulled, said) = pull(&pack_digests[0]);
    assert!(
        !pulled && said.contains("not found"),
        "the name the engine gives pack's image is not served: {said}"
    );

    // skaffold build, not pushing (its buildpacks builder exports to the engine as pack does)
    let out = Command::new(skaffold())
        .args([
            "build",
            "--default-repo",
            &format!("{repo}/sk"),
            "-b",
            "procfile",
            "--push=false",
            "--cache-artifacts=false",
            "--file-output",
            "skaffold-result.json",
        ])
        .current_dir(context.path())
        .env("DOCKER_HOST", Engine::Current.host())
        .env("SKAFFOLD_COLLECT_METRICS", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skaffold build failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(context.path().join("skaffold-result.json")).unwrap(),
    )
    .unwrap();
    let skaffold_tag = recorded["builds"][0]["tag"].as_str().unwrap().to_string();
    let (sk_id, sk_digests) = id_and_repo_digests(&skaffold_tag);
    assert_eq!(
        sk_digests,
        [format!("{repo}/sk/procfile@{sk_id}")],
        "skaffold's image too is named under the registry"
    );
    let (pulled, said) = pull(&sk_digests[0]);
    assert!(
        !pulled && said.contains("not found"),
        "the name the engine gives skaffold's image is not served: {said}"
    );
}

/// `op build --platform linux/amd64,linux/arm64` without `--push`: the index is published, and
/// the engine gets what its store can hold. containerd's store holds the index with both
/// platforms (the arm64 one runs from the engine without pulling, under QEMU); a graph driver's
/// holds the engine's platform only, and op says where the index is.
fn several_platforms_without_push_land_in_the_engine_as_its_store_can_hold_them() {
    let context = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let (registry, builder) = crate::common::cnb::two_platform_stack(Lifecycle::Op, &context);
    let repo = registry.addr();
    let _images = ImagesOf(repo.clone());
    apps_in(&context, &builder, &repo);
    let run = context.op(&[
        "build",
        "--repo",
        &repo,
        "--platform",
        "linux/amd64,linux/arm64",
        "--artifact",
        "procfile",
    ]);
    run.success();
    let tag = result_tag(&context, "procfile");
    let (reference, digest) = tag.split_once('@').unwrap();
    assert_eq!(
        verify_published(reference),
        digest,
        "the index is published"
    );
    let (id, repo_digests) = id_and_repo_digests(reference);
    assert!(
        repo_digests.contains(&format!("{repo}/procfile@{digest}")),
        "{repo_digests:?}\n{}",
        run.report()
    );
    let arch_of = |platform: &str| {
        docker_command()
            .args([
                "run",
                "--rm",
                "--pull",
                "never",
                "--platform",
                platform,
                "--entrypoint",
                "/bin/busybox",
                reference,
                "uname",
                "-m",
            ])
            .output()
            .unwrap()
    };
    let amd64 = arch_of("linux/amd64");
    assert_eq!(String::from_utf8_lossy(&amd64.stdout), "x86_64\n");
    let arm64 = arch_of("linux/arm64");
    if Engine::of_this_test().containerd_store() {
        assert_eq!(id, digest, "the engine holds the index itself");
        assert!(
            run.stderr.contains(
                "every platform (linux/amd64,linux/arm64): containerd's image store holds the whole index"
            ),
            "{}",
            run.report()
        );
        assert_eq!(
            String::from_utf8_lossy(&arm64.stdout),
            "aarch64\n",
            "the arm64 image is in the engine: {}",
            String::from_utf8_lossy(&arm64.stderr)
        );
    } else {
        assert!(
            run.stderr.contains(
                "linux/amd64 only: this engine's image store holds one platform per image, and the index of linux/amd64,linux/arm64 is in the registry"
            ),
            "{}",
            run.report()
        );
        assert!(
            !arm64.status.success(),
            "a graph driver's store has no arm64 image"
        );
    }
    let _ = docker(&["rmi", "-f", reference]);
}
