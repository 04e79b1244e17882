//! Every configuration mistake ends with exit code 1 and an `error:` that names the file, the
//! field or the value, with a `hint:` where there is something to do, and never a panic. The
//! whole message is the contract: each is kept as an insta snapshot (`tests/it/snapshots/`,
//! named `error-<test>-<n>`, the test directory written `[dir]`), beside the checks of its parts.

use std::cell::Cell;

use crate::common::{Run, TestContext};

thread_local! {
    /// How many errors the running test has checked (each test runs on a thread of its own).
    static ERRORS_CHECKED: Cell<usize> = const { Cell::new(0) };
}

/// The whole of what a failed run printed, as the snapshot `error-<test>-<n>` (the `n`th error
/// the test checks).
#[track_caller]
fn assert_error_snapshot(run: &Run) {
    let n = ERRORS_CHECKED.with(|count| {
        count.set(count.get() + 1);
        count.get()
    });
    let thread = std::thread::current();
    let test = thread
        .name()
        .and_then(|name| name.rsplit("::").next())
        .unwrap_or("unnamed");
    insta::assert_snapshot!(format!("error-{test}-{n}"), run.stderr_in_dir());
}

#[track_caller]
fn assert_error(run: &Run, message: &str, hint: Option<&str>) {
    run.failure(1);
    assert!(
        run.stdout.is_empty(),
        "errors print nothing on stdout\n{}",
        run.report()
    );
    assert!(run.stderr.starts_with("error: "), "{}", run.report());
    assert!(
        run.stderr.contains(message),
        "expected {message:?}\n{}",
        run.report()
    );
    match hint {
        Some(hint) => assert!(
            run.stderr.contains(&format!("hint: {hint}")),
            "expected hint {hint:?}\n{}",
            run.report()
        ),
        None => assert!(!run.stderr.contains("hint:"), "{}", run.report()),
    }
    assert_error_snapshot(run);
}

/// No skaffold.yaml where op runs.
#[test]
fn missing_skaffold_yaml() {
    let ctx = TestContext::new();
    let run = ctx.op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "`skaffold.yaml` does not exist (looked in `",
        Some("run op in the directory that holds skaffold.yaml"),
    );
    let run = ctx.op(&["build-push", "--dry-run", "-f", "deploy/skaffold.yaml"]);
    assert_error(
        &run,
        "`deploy/skaffold.yaml` does not exist",
        Some("check the path given with -f/--filename"),
    );
}

/// YAML that does not parse: the line and column, with the line itself.
#[test]
fn malformed_yaml() {
    let run = TestContext::fixture("invalid-malformed-yaml").op(&["build", "--dry-run"]);
    assert_error(&run, "Invalid `skaffold.yaml` at line 7, column 6:", None);
    assert!(
        run.stderr.contains("7 |      buildpacks:"),
        "{}",
        run.report()
    );
}

/// A schema version skaffold never published.
#[test]
fn unknown_api_version() {
    let run = TestContext::fixture("invalid-unknown-api-version").op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "`skaffold.yaml` has the unknown apiVersion `skaffold/v5beta1`",
        Some("op reads skaffold/v1alpha1 … skaffold/v4beta14"),
    );
}

/// An artifact without `image`.
#[test]
fn artifact_without_image() {
    let run = TestContext::fixture("invalid-artifact-without-image").op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "Invalid `skaffold.yaml`: `build.artifacts[1]` has no `image`",
        Some("every artifact names the image it builds"),
    );
}

/// A context directory that does not exist.
#[test]
fn missing_context_directory() {
    let run = TestContext::fixture("invalid-missing-context").op(&["build-push", "--dry-run"]);
    assert_error(
        &run,
        "The context of artifact `app` (`build.artifacts[0]` in `skaffold.yaml`) does not exist: `services/app`",
        Some("`context` is relative to the directory op runs in"),
    );
}

/// Two artifacts with the same image.
#[test]
fn duplicate_image() {
    let run = TestContext::fixture("invalid-duplicate-image").op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "Two artifacts build the image `app`: `build.artifacts[0]` in `skaffold.yaml` and `build.artifacts[1]` in `skaffold.yaml`",
        Some("every artifact must build a different image"),
    );
}

/// Artifacts that depend on each other in a circle (through `requires` and `runImage`).
#[test]
fn dependency_cycle() {
    let run = TestContext::fixture("invalid-dependency-cycle").op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "The artifacts depend on each other in a cycle: base → tools → app → base",
        Some("an artifact depends on another"),
    );
}

/// `--artifact` naming no artifact lists the artifacts.
#[test]
fn artifact_not_found() {
    let run = TestContext::fixture("hybrid").op(&["build", "--dry-run", "--artifact", "myapp-web"]);
    assert_error(
        &run,
        "--artifact `myapp-web` is not an artifact of skaffold.yaml",
        Some("the artifacts are `myapp-frontend`, `myapp-api`"),
    );
}

/// A `.registry` whose entries are not registries.
#[test]
fn malformed_registry_file() {
    let ctx = TestContext::fixture("invalid-malformed-registry");
    let run = ctx.op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "Invalid `.registry` at line 4, column 5: ci[1]: invalid type: integer `5001`",
        Some("`.registry` holds `local: <registry>`"),
    );
    // `.registry` is only read when nothing stronger names the repository.
    ctx.op(&["build", "--dry-run", "--repo", "ghcr.io/acme"])
        .success();
}

/// A malformed `.github/octopilot.yaml` (upstream's `op run` panicked on this).
#[test]
fn malformed_octopilot_yaml() {
    let run = TestContext::fixture("invalid-malformed-octopilot").op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "Invalid `.github/octopilot.yaml` at line 4, column 12: contexts.app.ports: invalid type: string \"8080:8080\", expected a sequence",
        Some("the file holds `default_repo`, `tag` and `contexts.<context>.{ports,env,volumes}`"),
    );
}

/// A properties file that does not exist, from the flag or from the environment.
#[test]
fn missing_properties_file() {
    let ctx = TestContext::fixture("hybrid");
    let run = ctx.op(&["build", "--dry-run", "--config", "ci/pipeline.properties"]);
    assert_error(
        &run,
        "The settings file `ci/pipeline.properties` (from --config) does not exist",
        Some("pass an existing file with --config"),
    );
    let ctx = ctx.env("OCTOPILOT_PIPELINE_PROPERTIES", "pipeline.properties");
    let run = ctx.op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "The settings file `pipeline.properties` (from $OCTOPILOT_PIPELINE_PROPERTIES) does not exist",
        Some("pass an existing file"),
    );
}

/// A profile no configuration defines.
#[test]
fn unknown_profile() {
    let ctx = TestContext::fixture("profiles");
    let run = ctx.op(&["build", "--dry-run", "-p", "staging"]);
    assert_error(
        &run,
        "No skaffold configuration has the profile `staging`",
        Some("the profiles are `prod`, `docker`, `ci`"),
    );
    let ctx = ctx.env("SKAFFOLD_PROFILE", "prod,qa");
    assert_error(
        &ctx.op(&["build", "--dry-run"]),
        "has the profile `qa`",
        Some("the profiles are"),
    );
}

/// A version variable that is not a valid tag (a pull-request ref).
#[test]
fn invalid_version_tag() {
    let ctx = TestContext::fixture("hybrid").env("DOCKER_METADATA_OUTPUT_VERSION", "71/merge");
    let run = ctx.op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "`71/merge` (from $DOCKER_METADATA_OUTPUT_VERSION) is not a valid image tag",
        Some("tags may hold letters"),
    );
}

/// The bad inputs of `op build` and `op push` (issue #9), on the real binary: each a clear error
/// naming the value and the fix, exit 1, nothing built and no build result written.
#[test]
fn bad_build_inputs_are_clear_errors_before_anything_is_built() {
    let ctx = TestContext::fixture("base-and-app").env("PATH", "/nonexistent");
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["build", "--push"],
            "Artifact `op-base` is built by skaffold, and `skaffold` is not on PATH",
            "install skaffold v2 (scripts/reference-tools builds the version op is tested with), or name the binary with --skaffold PATH or OP_SKAFFOLD=PATH",
        ),
        (
            &["build", "--push", "--skaffold", "/opt/none/skaffold"],
            "Artifact `op-base` is built by skaffold, and --skaffold names `/opt/none/skaffold`, which is not an executable file",
            "install skaffold v2",
        ),
        (
            &["build", "--push", "--run-image-override", "op-base"],
            "--run-image-override wants name=ref, got `op-base`",
            "name is a `buildpacks.runImage` value of skaffold.yaml",
        ),
        (
            &["build", "--push", "--from-build-result", "earlier.json"],
            "--from-build-result `earlier.json` cannot be used",
            "build first",
        ),
        (
            &["build", "--push", "--platform", "linux"],
            "`linux` is not a platform (os/arch or os/arch/variant, e.g. linux/amd64)",
            "separate platforms with commas",
        ),
        (
            &["build", "--push", "--ttl-uuid", "u1", "--artifact-key", "k"],
            "--artifact-key names one artifact, and 2 are built: `op-base`, `op`",
            "say which artifact the key is for with --artifact",
        ),
        (
            &["build", "--push", "--artifact", "api"],
            "--artifact `api` is not an artifact of skaffold.yaml",
            "the artifacts are `op-base`, `op`",
        ),
    ];
    for (args, message, hint) in cases {
        let run = ctx.op(args);
        assert_error(&run, message, Some(hint));
        assert!(
            !ctx.path().join("build_result.json").exists(),
            "{}",
            run.report()
        );
    }
    ctx.write("earlier.json", "{\"images\": []}");
    let run = ctx.op(&["build", "--push", "--from-build-result", "earlier.json"]);
    assert_error(
        &run,
        "earlier.json` is not a build result\n  Caused by: missing field `builds`",
        Some("the file holds {\"builds\":[{\"imageName\":…,\"tag\":…}]}"),
    );
    let run = ctx.op(&["build", "--artifact-key", "k"]);
    run.failure(2);
    assert!(
        run.stderr.contains("--ttl-uuid <UUID>"),
        "--artifact-key needs ttl mode\n{}",
        run.report()
    );
    assert_error_snapshot(&run);
}

/// A mirror that is not a registry, from the flag or the variable (op used to hand it on and
/// fail later, or rewrite references into ones no registry serves).
#[test]
fn invalid_image_registry() {
    let ctx = TestContext::fixture("base-and-app");
    let run = ctx.op(&[
        "build",
        "--dry-run",
        "--image-registry",
        "https://mirror.example",
    ]);
    assert_error(
        &run,
        "`https://mirror.example` (from --image-registry) is not a valid repository",
        Some("a repository looks like `localhost:5001`"),
    );
    let ctx = ctx.env("OP_IMAGE_REGISTRY", "Mirror.Example/Cache");
    let run = ctx.op(&["build", "--dry-run"]);
    assert_error(
        &run,
        "`Mirror.Example/Cache` (from $OP_IMAGE_REGISTRY) is not a valid repository",
        Some("a repository looks like `localhost:5001`"),
    );
}
