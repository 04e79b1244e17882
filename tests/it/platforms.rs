//! Multi-platform images: `op builder base --platform` and `op builder create --platform`
//! publish image indexes (linux/amd64 and linux/arm64), checked by skopeo and crane, and the
//! arm64 images run under QEMU.

use std::fmt::Write as _;
use std::process::Command;

use crate::common::cnb::{arm64_busybox, crane, lifecycle_dir, reference_tools};
use crate::common::docker::{docker, require_engine};
use crate::common::registry::{Registry, which};
use crate::common::{TestContext, copy_dir, fixtures};

/// `skopeo inspect --raw` of `image`: the manifest or index as the registry serves it.
#[track_caller]
fn raw_manifest(image: &str) -> serde_json::Value {
    let skopeo = which("skopeo").expect("skopeo is installed (scripts/dev-env)");
    let out = Command::new(skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect --raw {image} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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

#[track_caller]
fn crane_validate(image: &str) {
    let out = Command::new(crane())
        .args(["validate", "--remote", image])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "crane validate --remote {image} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
        crane_validate(&child);
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

#[test]
fn base_images_and_builders_for_two_platforms_are_indexes_that_run_under_emulation() {
    require_engine();
    let registry = Registry::start();
    let addr = registry.addr();
    let busybox_arm64 = arm64_busybox();
    let context = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let (build, run) = (
        format!("{addr}/op/busybox-build:latest"),
        format!("{addr}/op/busybox-run:latest"),
    );
    context
        .op(&[
            "builder",
            "base",
            &build,
            &run,
            "--platform",
            "linux/amd64,linux/arm64",
            "--busybox",
            "/bin/busybox",
            "--busybox",
            &format!("linux/arm64={}", busybox_arm64.display()),
        ])
        .success();
    for image in [&build, &run] {
        let platforms = index_platforms(image);
        let names: Vec<&str> = platforms.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64"], "{image}");
    }
    let arm64_run = &index_platforms(&run)[1].1;
    assert_eq!(run_arm64(arm64_run, &["uname", "-m"]).trim(), "aarch64");

    // A builder with op-lifecycle (the lifecycle directory's linux-arm64/) and one with the real
    // lifecycle (the reference tools' lifecycle/linux-<arch>/), each an index of two builders.
    let real = reference_tools().join("lifecycle");
    for (name, uri, version) in [
        ("op-builder", None, "0.1.0"),
        ("real-builder", Some(real), "0.21.0"),
    ] {
        let dir = context.path().join(name);
        copy_dir(&fixtures().join("builders/busybox"), &dir);
        let toml_path = dir.join("builder.toml");
        let mut toml = fs_err::read_to_string(&toml_path)
            .unwrap()
            .replace("localhost:5001", &addr);
        if let Some(uri) = uri {
            let _ = write!(toml, "\n[lifecycle]\nuri = \"{}\"\n", uri.display());
        }
        fs_err::write(&toml_path, toml).unwrap();
        let builder = format!("{addr}/op/{name}:latest");
        let created = context.op(&[
            "builder",
            "create",
            &builder,
            "--config",
            toml_path.to_str().unwrap(),
            "--platform",
            "linux/amd64, linux/arm64",
        ]);
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

#[test]
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
