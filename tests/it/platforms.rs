//! Multi-platform images: `op builder base --platform` and `op builder create --platform`
//! publish image indexes (linux/amd64 and linux/arm64), `op build --platform` builds and
//! publishes an index per artifact, all checked by skopeo and crane; the arm64 images run under
//! QEMU.

use std::process::Command;

use crate::common::cnb::{
    EngineCleanup, Lifecycle, apps_in, crane, crane_validate, create_two_platform_builder,
    leftovers, lifecycle_dir, serve_and_get, skaffold, skopeo_raw, two_platform_bases,
    two_platform_stack, verify_published,
};
use crate::common::docker::{docker, docker_command, require_engine};
use crate::common::registry::{Registry, which};
use crate::common::{TestContext, copy_dir, fixtures};

/// `skopeo inspect --raw` of `image`: the manifest or index as the registry serves it.
#[track_caller]
fn raw_manifest(image: &str) -> serde_json::Value {
    serde_json::from_slice(&skopeo_raw(image)).unwrap()
}

/// Whether the registry has `image` (skopeo, another client).
fn exists(image: &str) -> bool {
    let skopeo = which("skopeo").expect("skopeo is installed (scripts/dev-env)");
    Command::new(skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()
        .unwrap()
        .status
        .success()
}

/// The index `image` is: its entries' `os/arch` and digests, checked to be an index whose
/// entries' configs name the same platform.
#[track_caller]
fn index_platforms(image: &str) -> Vec<(String, String)> {
    crane_validate(image);
    let index = raw_manifest(image);
    let media_type = index["mediaType"].as_str().unwrap_or_default();
    assert!(
        media_type == "application/vnd.oci.image.index.v1+json"
            || media_type == "application/vnd.docker.distribution.manifest.list.v2+json",
        "{image} is not an index: {index}"
    );
    let repository = image.rsplit_once(':').unwrap().0;
    let mut platforms = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        let platform = format!(
            "{}/{}",
            entry["platform"]["os"].as_str().unwrap(),
            entry["platform"]["architecture"].as_str().unwrap()
        );
        let digest = entry["digest"].as_str().unwrap().to_string();
        let child = format!("{repository}@{digest}");
        assert_eq!(
            verify_published(&child),
            digest,
            "skopeo and crane read {child}"
        );
        let out = Command::new(crane())
            .args(["config", &child])
            .output()
            .unwrap();
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            format!(
                "{}/{}",
                config["os"].as_str().unwrap(),
                config["architecture"].as_str().unwrap()
            ),
            platform,
            "the config of {child} names the platform its index entry does"
        );
        platforms.push((platform, child));
    }
    platforms
}

/// Runs `args` in `image` (an arm64 image, by digest) and returns its output.
#[track_caller]
fn run_arm64(image: &str, args: &[&str]) -> String {
    docker(&["pull", "-q", "--platform", "linux/arm64", image]);
    let mut all = vec![
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "--network",
        "none",
        "--user",
        "0",
        "--entrypoint",
        args[0],
        image,
    ];
    all.extend(&args[1..]);
    let out = docker(&all);
    docker(&["rmi", image]);
    out
}

fn base_images_and_builders_for_two_platforms_are_indexes_that_run_under_emulation() {
    require_engine();
    let registry = Registry::start();
    let addr = registry.addr();
    let context = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let (build, run) = two_platform_bases(&context, &addr);
    for image in [&build, &run] {
        let platforms = index_platforms(image);
        let names: Vec<&str> = platforms.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64"], "{image}");
    }
    let arm64_run = &index_platforms(&run)[1].1;
    assert_eq!(run_arm64(arm64_run, &["uname", "-m"]).trim(), "aarch64");

    // A builder with op-lifecycle (the lifecycle directory's linux-arm64/) and one with the real
    // lifecycle (the reference tools' lifecycle/linux-<arch>/), each an index of two builders.
    for (name, lifecycle, version) in [
        ("op-builder", Lifecycle::Op, "0.1.0"),
        ("real-builder", Lifecycle::Reference, "0.21.0"),
    ] {
        let (builder, created) = create_two_platform_builder(
            &context,
            &addr,
            lifecycle,
            (&format!("op/{name}:latest"), "linux/amd64, linux/arm64"),
        );
        created.success();
        assert!(
            created.stderr.contains("for linux/arm64"),
            "{}",
            created.report()
        );
        let platforms = index_platforms(&builder);
        assert_eq!(
            platforms
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm64"]
        );
        let arm64 = &platforms[1].1;
        let said = run_arm64(arm64, &["/cnb/lifecycle/lifecycle", "-version"]);
        assert_eq!(said.trim(), version, "the arm64 lifecycle of {name} runs");
        let uname = run_arm64(arm64, &["uname", "-m"]);
        assert_eq!(uname.trim(), "aarch64");
    }
}

fn missing_platforms_and_bad_platform_strings_are_clear_errors_and_publish_nothing() {
    require_engine();
    let registry = Registry::start();
    let addr = registry.addr();
    let context = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let base = format!("{addr}/op/base:latest");

    let bad = context.op(&[
        "builder",
        "base",
        &base,
        "--platform",
        "linux/amd64,Linux/ARM64",
    ]);
    bad.failure(2);
    assert!(
        bad.stderr.contains("`Linux/ARM64` is not a platform"),
        "{}",
        bad.report()
    );

    let no_arm64 = context.op(&[
        "builder",
        "base",
        &base,
        "--platform",
        "linux/amd64,linux/arm64",
    ]);
    no_arm64.failure(2);
    assert!(
        no_arm64
            .stderr
            .contains("--platform linux/arm64: no --busybox is a linux/arm64 executable"),
        "{}",
        no_arm64.report()
    );
    assert!(no_arm64.stderr.contains("hint:"), "{}", no_arm64.report());

    let wrong = context.op(&[
        "builder",
        "base",
        &base,
        "--busybox",
        "linux/arm64=/bin/busybox",
    ]);
    wrong.failure(2);
    assert!(
        wrong
            .stderr
            .contains("is a linux/amd64 executable, not linux/arm64"),
        "{}",
        wrong.report()
    );
    assert!(!exists(&base), "nothing was published");

    // A build image for amd64 only: a builder for arm64 too is refused before anything is
    // published.
    context.op(&["builder", "base", &base]).success();
    let dir = context.path().join("builder");
    copy_dir(&fixtures().join("builders/busybox"), &dir);
    let toml_path = dir.join("builder.toml");
    let toml = fs_err::read_to_string(&toml_path)
        .unwrap()
        .replace("localhost:5001/op/busybox-build:latest", &base)
        .replace("localhost:5001", &addr);
    fs_err::write(&toml_path, toml).unwrap();
    let builder = format!("{addr}/op/builder:latest");
    let missing = context.op(&[
        "builder",
        "create",
        &builder,
        "--config",
        toml_path.to_str().unwrap(),
        "--platform",
        "linux/amd64,linux/arm64",
    ]);
    missing.failure(1);
    assert!(
        missing.stderr.contains("linux/arm64"),
        "the error names the platform\n{}",
        missing.report()
    );
    assert!(!exists(&builder), "no builder index was published");
}

on_each_engine_and_builder!(the_action_s_two_platform_build_publishes_an_index_per_artifact);
on_each_engine!(
    base_images_and_builders_for_two_platforms_are_indexes_that_run_under_emulation,
    missing_platforms_and_bad_platform_strings_are_clear_errors_and_publish_nothing,
    skaffold_s_single_platform_image_for_two_platforms_is_an_error,
    a_failure_on_one_platform_fails_the_artifact_and_names_the_platform,
);

/// The Action's command line with two platforms and an SBOM directory
/// (`op build --repo R --platform linux/amd64,linux/arm64 --push --sbom-output S`, its
/// environment) on `fixtures/apps`: every artifact is an index of both platforms under the
/// version and `latest`, whose entries carry the platform their configs name; `greeting` runs on
/// `static-site`'s index; the arm64 image runs under QEMU, serves, and says `aarch64`; the SBOMs
/// are there per artifact and platform. Then a platform the builder lacks: a clear error, nothing
/// published.
fn the_action_s_two_platform_build_publishes_an_index_per_artifact(lifecycle: Lifecycle) {
    let home = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let (registry, builder) = two_platform_stack(lifecycle, &home);
    let repo = registry.addr();
    let _cleanup = EngineCleanup(repo.clone());
    let context = TestContext::new()
        .env("DOCKER_METADATA_OUTPUT_VERSION", "1.2.3")
        .env("GITHUB_ACTIONS", "true")
        .env("CI", "true");
    apps_in(&context, &builder, &repo);
    let run = context.op(&[
        "build",
        "--repo",
        &repo,
        "--platform",
        "linux/amd64,linux/arm64",
        "--push",
        "--sbom-output",
        "dist/sbom",
    ]);
    run.success();
    assert!(
        run.stderr
            .contains("Building for linux/arm64 under emulation"),
        "op says which platform runs under QEMU\n{}",
        run.report()
    );
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            run.stderr.contains(&format!(
                "[greeting   ] ({platform}) ---> Greeting: build number 1"
            )),
            "each platform has its own cache (a first build for each)\n{}",
            run.report()
        );
    }
    every_artifact_is_an_index_of_both_platforms(&context, &repo, &run);

    // greeting, for arm64, by the digest its index names: it runs under QEMU and serves.
    let greeting = index_platforms(&format!("{repo}/greeting:1.2.3"));
    let arm64 = &greeting[1].1;
    assert_eq!(run_arm64(arm64, &["uname", "-m"]).trim(), "aarch64");
    docker(&["pull", "-q", "--platform", "linux/arm64", arm64]);
    let page = serve_and_get(arm64, "/");
    assert!(page.contains("HELLO"), "{page}");
    docker(&["rmi", arm64]);

    one_platform_publishes_the_image_and_a_missing_one_nothing(&context, &repo, &builder);
}

/// `build_result.json` and the registry after the two-platform build: every artifact an index
/// of both platforms under the version and `latest`, recorded by its digest, with its
/// per-platform tags and SBOMs.
fn every_artifact_is_an_index_of_both_platforms(
    context: &TestContext,
    repo: &str,
    run: &crate::common::Run,
) {
    let result: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(context.path().join("build_result.json")).unwrap(),
    )
    .unwrap();
    let builds = result["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 3, "{result}");
    for build in builds {
        let image = build["imageName"].as_str().unwrap();
        let tag = build["tag"].as_str().unwrap();
        let (name, digest) = tag.split_once('@').unwrap();
        assert_eq!(name, format!("{repo}/{image}:1.2.3"), "{result}");
        for reference in [
            format!("{repo}/{image}:1.2.3"),
            format!("{repo}/{image}:latest"),
        ] {
            let platforms = index_platforms(&reference);
            assert_eq!(
                platforms
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect::<Vec<_>>(),
                ["linux/amd64", "linux/arm64"],
                "{reference}"
            );
            let served = Command::new(crane())
                .args(["digest", &reference])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&served.stdout).trim(),
                digest,
                "build_result.json records the index digest of {reference}"
            );
        }
        for platform in ["linux-amd64", "linux-arm64"] {
            assert!(
                exists(&format!("{repo}/{image}:1.2.3-{platform}")),
                "the per-platform tag of {image} for {platform}"
            );
            assert!(
                context
                    .path()
                    .join(format!("dist/sbom/{image}/{platform}/launch"))
                    .is_dir(),
                "the SBOMs of {image} for {platform}\n{}",
                run.report()
            );
        }
    }
    let page = context
        .path()
        .join("dist/sbom/greeting/linux-arm64/launch/op_greeting/page/sbom.cdx.json");
    assert!(page.is_file(), "{}", run.report());
}

/// `--platform linux/arm64` alone publishes the arm64 image itself; a platform the builder
/// lacks is an error that publishes nothing.
fn one_platform_publishes_the_image_and_a_missing_one_nothing(
    context: &TestContext,
    repo: &str,
    builder: &str,
) {
    let repo = repo.to_string();
    // One platform of the index, not the engine's: the image itself is published, for it.
    let arm64_only = context.op(&[
        "build",
        "--repo",
        &repo,
        "--artifact",
        "static-site",
        "--platform",
        "linux/arm64",
        "--push",
    ]);
    arm64_only.success();
    assert!(
        arm64_only
            .stderr
            .contains("Building for linux/arm64 under emulation"),
        "{}",
        arm64_only.report()
    );
    let single = format!("{repo}/static-site:1.2.3");
    crane_validate(&single);
    let manifest = raw_manifest(&single);
    assert!(
        manifest.get("manifests").is_none(),
        "not an index: {manifest}"
    );
    let config = Command::new(crane())
        .args(["config", &single])
        .output()
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(config["architecture"], "arm64", "{config}");

    // A platform the builder lacks: an error naming it, before anything is built or pushed.
    let before = Command::new(crane())
        .args(["digest", &format!("{repo}/greeting:1.2.3")])
        .output()
        .unwrap()
        .stdout;
    let missing = context.op(&[
        "build",
        "--repo",
        &repo,
        "--platform",
        "linux/amd64,linux/s390x",
        "--push",
    ]);
    missing.failure(1);
    assert!(
        missing.stderr.contains(&format!(
            "Builder `{builder}` is an index of linux/amd64, linux/arm64, and --platform asks for linux/amd64,linux/s390x"
        )),
        "{}",
        missing.report()
    );
    assert!(missing.stderr.contains("hint:"), "{}", missing.report());
    assert!(!exists(&format!("{repo}/greeting:1.2.3-linux-s390x")));
    let after = Command::new(crane())
        .args(["digest", &format!("{repo}/greeting:1.2.3")])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(before, after, "the version tag is untouched");
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// With two platforms, a `custom` artifact whose script pushes a single-platform image (which
/// skaffold accepts) fails the build, naming what skaffold pushed; no result is written.
fn skaffold_s_single_platform_image_for_two_platforms_is_an_error() {
    require_engine();
    let registry = Registry::start();
    let addr = registry.addr();
    let _cleanup = EngineCleanup(addr.clone());
    let context = TestContext::new()
        .env("OP_SKAFFOLD", &skaffold().display().to_string())
        .env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    context
        .op(&["builder", "base", &format!("{addr}/op/busybox-run:latest")])
        .success();
    copy_dir(
        &fixtures().join("hybrid/tool"),
        &context.path().join("tool"),
    );
    let dockerfile = context.path().join("tool/Dockerfile");
    let text = fs_err::read_to_string(&dockerfile).unwrap();
    fs_err::write(&dockerfile, text.replace("localhost:5001", &addr)).unwrap();
    context.write(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n    - image: tool\n      context: tool\n      custom:\n        buildCommand: ./build.sh\n",
    );
    let run = context.op(&[
        "build",
        "--push",
        "--repo",
        &addr,
        "--platform",
        "linux/amd64,linux/arm64",
    ]);
    run.failure(1);
    assert!(
        run.stderr.contains(&format!(
            "tool: skaffold published `{addr}/tool:latest` as a single linux/amd64 image, and --platform asks for linux/amd64,linux/arm64"
        )),
        "{}",
        run.report()
    );
    assert!(run.stderr.contains("$PLATFORMS"), "{}", run.report());
    assert!(!context.path().join("build_result.json").exists());
    let _ = docker_command()
        .args(["rmi", "-f", &format!("{addr}/tool:latest")])
        .output();
}

/// A build that fails on one platform fails its artifact, naming the platform: no index, no
/// result, nothing left behind.
fn a_failure_on_one_platform_fails_the_artifact_and_names_the_platform() {
    let home = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let (registry, builder) = two_platform_stack(Lifecycle::Op, &home);
    let repo = registry.addr();
    let _cleanup = EngineCleanup(repo.clone());
    let context = TestContext::new();
    apps_in(&context, &builder, &repo);
    let skaffold_yaml = context.path().join("skaffold.yaml");
    let text = fs_err::read_to_string(&skaffold_yaml).unwrap().replace(
        "          - GREETING_STYLE=loud",
        "          - GREETING_STYLE=loud\n          - GREETING_FAIL_ON_ARCH=aarch64",
    );
    fs_err::write(&skaffold_yaml, text).unwrap();
    let run = context.op(&[
        "build",
        "--push",
        "--repo",
        &repo,
        "--artifact",
        "greeting",
        "--platform",
        "linux/amd64,linux/arm64",
    ]);
    run.failure(1);
    assert!(
        run.stderr
            .contains("greeting: the build for linux/arm64 failed: a buildpack failed"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr.contains("refusing to build on aarch64"),
        "the failed platform's last lines are shown\n{}",
        run.report()
    );
    assert!(!context.path().join("build_result.json").exists());
    assert!(
        !exists(&format!("{repo}/greeting:latest")),
        "no index is published"
    );
    assert!(exists(&format!("{repo}/greeting:latest-linux-amd64")));
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}
