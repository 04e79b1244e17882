//! `op promote-image` against real registries: an image and a two-platform index copied between
//! two registries and within one (blobs mounted, none uploaded), digest and tag kept, checked by
//! crane and skopeo; `--all-tags`, `--dry-run`, `-o json`; every bad input.

use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::common::cnb::{
    arm64_busybox, crane, crane_validate, random_image, skopeo_raw, write_docker_config,
};
use crate::common::registry::Registry;
use crate::common::{Run, TestContext};

/// `crane digest` of `image`, after `crane validate --remote` (the manifest or index, every
/// child, config and layer).
#[track_caller]
fn validated_digest(image: &str) -> String {
    crane_validate(image);
    let digest = Command::new(crane())
        .args(["digest", image])
        .output()
        .unwrap();
    assert!(digest.status.success(), "crane digest {image}");
    let digest = String::from_utf8_lossy(&digest.stdout).trim().to_string();
    // skopeo (another client) reads the same bytes: the digest is theirs.
    assert_eq!(
        format!("sha256:{:x}", Sha256::digest(skopeo_raw(image))),
        digest,
        "skopeo reads the manifest crane does"
    );
    digest
}

/// Whether the registry serves `image`.
fn exists(image: &str) -> bool {
    Command::new(crane())
        .args(["digest", image])
        .output()
        .unwrap()
        .status
        .success()
}

/// A context whose `build_result.json` records `entries` (`imageName`, `tag`).
fn with_build_result(entries: &[(&str, &str)]) -> TestContext {
    let context = TestContext::new();
    let builds: Vec<serde_json::Value> = entries
        .iter()
        .map(|(name, tag)| serde_json::json!({"imageName": name, "tag": tag}))
        .collect();
    context.write(
        "build_result.json",
        &serde_json::json!({ "builds": builds }).to_string(),
    );
    context
}

/// Publishes a busybox image (`op builder base`) as `image`, for `platforms` when given; its
/// digest.
fn publish(context: &TestContext, image: &str, platforms: bool) -> String {
    let mut args = vec!["builder", "base", image];
    let arm64 = format!("linux/arm64={}", arm64_busybox().display());
    if platforms {
        args.extend([
            "--platform",
            "linux/amd64,linux/arm64",
            "--busybox",
            "/bin/busybox",
            "--busybox",
            &arm64,
        ]);
    }
    context.op(&args).success();
    validated_digest(image)
}

#[track_caller]
fn promoted(run: &Run, destination: &str, digest: &str) {
    run.success();
    assert_eq!(
        run.stdout,
        format!("{destination}@{digest}\n"),
        "{}",
        run.report()
    );
    assert_eq!(validated_digest(destination), digest, "{}", run.report());
}

#[test]
fn images_and_indexes_are_promoted_between_registries_digest_and_tag_kept() {
    let (dev, prod) = (Registry::start(), Registry::start());
    let (dev_repo, prod_repo) = (
        format!("{}/team", dev.addr()),
        format!("{}/live", prod.addr()),
    );
    let setup = TestContext::new();
    let app = publish(&setup, &format!("{dev_repo}/app:v1"), false);
    let base = publish(&setup, &format!("{dev_repo}/base:v2"), true);
    let context = with_build_result(&[
        ("app", &format!("{dev_repo}/app:v1@{app}")),
        ("base", &format!("{dev_repo}/base:v2@{base}")),
    ])
    .env("GOOGLE_GKE_IMAGE_REPOSITORY", &dev_repo)
    .env("GOOGLE_GKE_IMAGE_PROD_REPOSITORY", &prod_repo);

    // The last entry by default: the index, every platform.
    let before = prod.log().len();
    let run = context.op(&["promote-image", "--source", "dev", "--destination", "prod"]);
    promoted(&run, &format!("{prod_repo}/base:v2"), &base);
    // An open registry is asked once whether it needs authentication (`GET /v2/`), not before
    // every request of the copy (the checkers' requests follow op's in the log).
    let log = &prod.settled_log()[before..];
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("response completed")
                && (l.contains("useragent=oci-client") || l.contains("useragent=op-oci"))
        })
        .collect();
    let pings = requests
        .iter()
        .filter(|l| l.contains("http.request.uri=/v2/ "))
        .count();
    assert!(
        pings == 1 && requests.len() > 10,
        "{pings} pings among {} requests:\n{log}",
        requests.len()
    );
    assert!(
        run.stderr.contains(&format!(
            "Promoting {dev_repo}/base:v2@{base}\n     -> {prod_repo}/base:v2@{base}\n"
        )),
        "{}",
        run.report()
    );
    // The image by name; then again: everything is there, nothing to move, the same result.
    let by_name = [
        "promote-image",
        "--source",
        "dev",
        "--destination",
        "prod",
        "--image-name",
        "app",
    ];
    promoted(&context.op(&by_name), &format!("{prod_repo}/app:v1"), &app);
    promoted(&context.op(&by_name), &format!("{prod_repo}/app:v1"), &app);
}

#[test]
fn within_one_registry_blobs_are_mounted_and_version_aliases_follow() {
    let registry = Registry::start();
    let addr = registry.addr();
    let setup = TestContext::new();
    let digest = publish(&setup, &format!("{addr}/dev/app:v1.2.3"), true);
    // An alias of the same image, and an unrelated tag.
    let copy = Command::new(crane())
        .args([
            "copy",
            &format!("{addr}/dev/app:v1.2.3"),
            &format!("{addr}/dev/app:v1"),
        ])
        .output()
        .unwrap();
    assert!(copy.status.success());
    publish(&setup, &format!("{addr}/dev/app:other"), false);
    let context = with_build_result(&[("app", &format!("{addr}/dev/app:v1.2.3@{digest}"))]);
    let before = registry.log().len();

    let dry = context.op(&[
        "promote-image",
        "--from",
        &format!("{addr}/dev"),
        "--to",
        &format!("{addr}/pp"),
        "--dry-run",
        "-o",
        "json",
    ]);
    dry.success();
    let json = dry.json();
    assert_eq!(json["destination"], format!("{addr}/pp/app:v1.2.3"));
    assert_eq!(json["digest"], digest);
    assert_eq!(json["dryRun"], true);
    assert!(
        !exists(&format!("{addr}/pp/app:v1.2.3")),
        "--dry-run copies nothing"
    );

    let run = context.op(&[
        "promote-image",
        "--from",
        &format!("{addr}/dev"),
        "--to",
        &format!("{addr}/pp"),
        "--all-tags",
    ]);
    promoted(&run, &format!("{addr}/pp/app:v1.2.3"), &digest);
    assert!(
        run.stderr.contains(&format!("Tagged {addr}/pp/app:v1")),
        "{}",
        run.report()
    );
    assert_eq!(validated_digest(&format!("{addr}/pp/app:v1")), digest);
    assert!(
        !exists(&format!("{addr}/pp/app:other")),
        "only aliases of the image"
    );
    let log = &registry.settled_log()[before..];
    let uploads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/pp/app/blobs/uploads") && !l.contains("mount="))
        .collect();
    assert!(
        uploads.is_empty(),
        "within one registry, blobs are mounted, never uploaded:\n{}",
        uploads.join("\n")
    );
    assert!(log.contains("mount="), "the registry saw mounts:\n{log}");
}

#[test]
fn bad_inputs_are_clear_errors_that_leave_no_tag() {
    let (dev, locked) = (Registry::start(), Registry::start_with_auth());
    let dev_repo = format!("{}/team", dev.addr());
    let setup = TestContext::new();
    let app = publish(&setup, &format!("{dev_repo}/app:v1"), false);
    let pp_repo = format!("{}/pp", dev.addr());
    let cases: Vec<(TestContext, Vec<&str>, &str, &str)> = vec![
        (
            TestContext::new(),
            vec!["--from", &dev_repo, "--to", "reg.io/pp"],
            "build_result.json` does not exist",
            "build first",
        ),
        (
            with_build_result(&[("app", &format!("{dev_repo}/app:v1@{app}"))]),
            vec![
                "--from",
                &dev_repo,
                "--to",
                "reg.io/pp",
                "--image-name",
                "web",
            ],
            "Image `web` is not in",
            "the file has `app`",
        ),
        (
            with_build_result(&[("app", &format!("{dev_repo}/app:v1@{app}"))]),
            vec!["--source", "dev", "--destination", "pp"],
            "No source repository is set for environment `dev`",
            "set $GOOGLE_GKE_IMAGE_REPOSITORY or $PROMOTE_SOURCE_REPOSITORY",
        ),
        (
            with_build_result(&[(
                "gone",
                &format!("{dev_repo}/gone:v1@sha256:{}", "0".repeat(64)),
            )]),
            vec!["--from", &dev_repo, "--to", &pp_repo],
            "gone@sha256:0000",
            "publish the image there first",
        ),
    ];
    for (context, args, message, hint) in cases {
        let mut all = vec!["promote-image"];
        all.extend(args);
        let run = context.op(&all);
        run.failure(1);
        assert!(run.stderr.contains(message), "{message}\n{}", run.report());
        assert!(run.stderr.contains(hint), "{hint}\n{}", run.report());
        assert!(!run.stderr.contains("panicked"), "{}", run.report());
    }
    assert!(!exists(&format!("{}/pp/gone:v1", dev.addr())));

    // A destination that refuses: no credentials for it, then wrong ones.
    let locked_repo = format!("{}/live", locked.addr());
    let context = with_build_result(&[("app", &format!("{dev_repo}/app:v1@{app}"))]);
    let refused = context.op(&["promote-image", "--from", &dev_repo, "--to", &locked_repo]);
    refused.failure(1);
    assert!(
        refused.stderr.contains(&locked.addr()),
        "the error names the registry\n{}",
        refused.report()
    );
    // A destination that takes no writes (read-only maintenance).
    let frozen = Registry::start_read_only();
    let frozen_repo = format!("{}/live", frozen.addr());
    let refused = context.op(&["promote-image", "--from", &dev_repo, "--to", &frozen_repo]);
    refused.failure(1);
    assert!(
        refused
            .stderr
            .contains(&format!("Registry `{}` failed", frozen.addr()))
            && refused.stderr.contains("copy blob sha256:")
            && refused
                .stderr
                .contains(&format!("hint: {} takes no writes there", frozen.addr())),
        "the error names the registry, what it refused and why\n{}",
        refused.report()
    );
    assert!(!exists(&format!("{frozen_repo}/app:v1")));
    // With its credentials, the same promotion works, and it is the only tag there.
    let home = context.home();
    write_docker_config(&home, &locked.addr());
    let context = context.env("HOME", &home.display().to_string());
    let run = context.op(&["promote-image", "--from", &dev_repo, "--to", &locked_repo]);
    run.success();
    assert_eq!(
        run.stdout,
        format!("{locked_repo}/app:v1@{app}\n"),
        "{}",
        run.report()
    );
}

/// A source that lost a layer: the error names the blob and the source, and no tag is left.
#[test]
fn a_source_that_lost_a_layer_is_an_error_naming_the_blob() {
    let (dev, pp) = (Registry::start(), Registry::start());
    let (dev_repo, pp_repo) = (format!("{}/team", dev.addr()), format!("{}/pp", pp.addr()));
    let setup = TestContext::new();
    let holed = publish(&setup, &format!("{dev_repo}/holed:v1"), false);
    let manifest = Command::new(crane())
        .args(["manifest", &format!("{dev_repo}/holed:v1")])
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let (status, body) = dev.request("DELETE", &format!("/v2/team/holed/blobs/{layer}"));
    assert_eq!(status, 202, "{body}");
    let run = with_build_result(&[("holed", &format!("{dev_repo}/holed:v1@{holed}"))]).op(&[
        "promote-image",
        "--from",
        &dev_repo,
        "--to",
        &pp_repo,
    ]);
    run.failure(1);
    assert!(
        run.stderr
            .contains(&format!("read blob {layer} of `{dev_repo}/holed@{holed}`")),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains("hint: the registry answered without it"),
        "{}",
        run.report()
    );
    assert!(!exists(&format!("{pp_repo}/holed:v1")), "{}", run.report());
}

/// A promotion of a 96 MiB image from `dev` to `prod` that is under way: op runs, and the
/// destination has seen a blob upload begin (the manifests and the tag come after every blob).
struct UnderWay {
    context: TestContext,
    digest: String,
    dev_repo: String,
    prod_repo: String,
    op: std::process::Child,
}

fn promotion_under_way(dev: &Registry, prod: &Registry) -> UnderWay {
    let (dev_repo, prod_repo) = (
        format!("{}/team", dev.addr()),
        format!("{}/live", prod.addr()),
    );
    let setup = TestContext::new();
    let digest = random_image(setup.path(), &format!("{dev_repo}/big:v1"), &[96]);
    let context = with_build_result(&[("big", &format!("{dev_repo}/big:v1@{digest}"))]);
    let mut op = context
        .command(&["promote-image", "--from", &dev_repo, "--to", &prod_repo])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !prod.log().contains("/live/big/blobs/uploads") {
        assert!(
            std::time::Instant::now() < deadline,
            "no upload began:\n{}",
            prod.log()
        );
        assert!(
            op.try_wait().unwrap().is_none(),
            "op ended before its upload was seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    UnderWay {
        context,
        digest,
        dev_repo,
        prod_repo,
        op,
    }
}

/// A promotion killed while its blobs are on the way leaves no tag at the destination; the next
/// one completes it.
#[test]
fn a_promotion_killed_midway_leaves_no_tag() {
    let (dev, prod) = (Registry::start(), Registry::start());
    let mut promotion = promotion_under_way(&dev, &prod);
    promotion.op.kill().unwrap();
    promotion.op.wait().unwrap();
    let (dev_repo, prod_repo) = (&promotion.dev_repo, &promotion.prod_repo);
    assert!(
        !exists(&format!("{prod_repo}/big:v1")),
        "no tag after a cut-off promotion"
    );
    let run = promotion
        .context
        .op(&["promote-image", "--from", dev_repo, "--to", prod_repo]);
    promoted(&run, &format!("{prod_repo}/big:v1"), &promotion.digest);
}

/// A source registry that goes away while its blobs are on the way: the error names the source
/// and the blob, and the destination has no tag.
#[test]
fn a_source_lost_midway_is_an_error_that_leaves_no_tag() {
    let (mut dev, prod) = (Registry::start(), Registry::start());
    let promotion = promotion_under_way(&dev, &prod);
    dev.kill();
    let out = promotion.op.wait_with_output().unwrap();
    let (dev_repo, prod_repo, digest) =
        (&promotion.dev_repo, &promotion.prod_repo, &promotion.digest);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Failed to read blob sha256:")
            && stderr.contains(&format!("of `{dev_repo}/big@{digest}`")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Registry `{}` failed", dev.addr()))
            && stderr.contains(&format!("hint: is a registry running at {}?", dev.addr())),
        "the source is the registry that failed:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !exists(&format!("{prod_repo}/big:v1")),
        "no tag after a cut-off promotion"
    );
}
