//! `op build` and `op push` end to end: op builds the buildpacks artifacts, the real skaffold
//! (`scripts/reference-tools`) every other one, against the real Docker Engine and a real
//! registry. `fixtures/hybrid` is upstream op's own shape: `op-base` (a Dockerfile), `op`
//! (buildpacks, running on `op-base`), plus `tool` (a `custom` artifact: a build script) and
//! `cli` (a Dockerfile that `requires` `op-base`, so skaffold builds the two together).

use crate::common::cnb::{Lifecycle, Stack, leftovers, run_to_end, skaffold, verify_published};
use crate::common::docker::{Engine, ImagesOf, docker, docker_command, id_and_repo_digests};
use crate::common::registry::Registry;
use crate::common::{Run, TestContext, build_result, copy_dir, fixtures, tag_of};

on_each_engine_and_builder!(
    op_build_push_builds_every_artifact_and_the_app_runs_on_the_dockerfile_base
);
on_each_engine!(
    op_build_without_push_leaves_the_images_in_the_engine,
    skaffold_s_tag_policy_tags_what_it_builds_unless_a_version_is_set,
    a_failing_skaffold_build_is_reported_with_its_output_and_writes_no_result,
    the_action_s_command_lines_work_as_it_runs_them,
    op_push_publishes_to_the_ci_registries_of_the_registry_file,
    ctrl_c_stops_skaffold_and_the_build_script_it_runs,
);

/// A stack, and a copy of `fixtures/hybrid` on its registry and builder; the images the builds
/// leave in the engine are removed when it is dropped.
struct Hybrid {
    stack: Stack,
    /// The stack's registry, where the images go.
    repo: String,
    context: TestContext,
    _images: ImagesOf,
}

impl Hybrid {
    fn start(lifecycle: Lifecycle) -> Self {
        let stack = Stack::start(lifecycle);
        let repo = stack.registry.addr();
        let context = hybrid(&stack);
        Self {
            _images: ImagesOf(repo.clone()),
            stack,
            repo,
            context,
        }
    }
}

/// A copy of `fixtures/hybrid` on the stack's registry and builder, with the real skaffold.
pub(crate) fn hybrid(stack: &Stack) -> TestContext {
    let context = TestContext::new().env("OP_SKAFFOLD", &skaffold().display().to_string());
    copy_dir(&fixtures().join("hybrid"), context.path());
    for file in ["skaffold.yaml", "base/Dockerfile", "tool/Dockerfile"] {
        let path = context.path().join(file);
        let text = fs_err::read_to_string(&path).unwrap();
        fs_err::write(
            &path,
            text.replace("localhost:5001/op/builder:latest", &stack.builder)
                .replace("localhost:5001", &stack.registry.addr()),
        )
        .unwrap();
    }
    context
}

fn names(result: &serde_json::Value) -> Vec<&str> {
    result["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["imageName"].as_str().unwrap())
        .collect()
}

fn op_build_push_builds_every_artifact_and_the_app_runs_on_the_dockerfile_base(
    lifecycle: Lifecycle,
) {
    let Hybrid {
        stack: _stack,
        repo,
        context,
        _images,
    } = Hybrid::start(lifecycle);
    let token = "ghp_op-test-token-0123456789";
    let context = context.env("GITHUB_TOKEN", token);
    let run = context.op(&[
        "build",
        "--push",
        "--repo",
        &repo,
        "-vv",
        "--sbom-output",
        "dist/sbom",
    ]);
    run.success();
    sboms_are_copied_out(&context, &run);
    assert!(
        run.stderr
            .contains("[op     ] ---> Greeting: a GITHUB_TOKEN of 28 characters is set"),
        "GITHUB_TOKEN reaches the buildpacks\n{}",
        run.report()
    );
    assert!(
        !run.stderr.contains(token) && !run.stdout.contains(token),
        "GITHUB_TOKEN is never printed\n{}",
        run.report()
    );
    for line in [
        "[op-base] Building [op-base]...".to_string(),
        "[tool   ] Build [tool] succeeded".to_string(),
        "[tool   ] BUILDX_NO_DEFAULT_ATTESTATIONS=1".to_string(),
        format!(
            "[op     ] Resolving runImage op-base to built artifact {repo}/op-base:latest@sha256:"
        ),
    ] {
        assert!(
            run.stderr.contains(&line),
            "skaffold's lines carry their artifact's name, and `op` runs on op-base's digest: {line}\n{}",
            run.report()
        );
    }
    let result = build_result(&context);
    assert_eq!(
        names(&result),
        ["op-base", "tool", "cli", "op"],
        "skaffold.yaml order"
    );
    let printed: Vec<&str> = run.stdout.lines().collect();
    for (build, printed) in result["builds"].as_array().unwrap().iter().zip(printed) {
        let tag = build["tag"].as_str().unwrap();
        assert_eq!(tag, printed, "stdout has the results");
        let (reference, digest) = tag.split_once('@').unwrap();
        assert_eq!(
            reference,
            format!("{repo}/{}:latest", build["imageName"].as_str().unwrap())
        );
        assert_eq!(
            verify_published(reference),
            digest,
            "the registry serves what build_result.json says"
        );
    }
    let app = tag_of(&result, "op");
    docker(&["pull", "-q", app]);
    assert!(
        !docker(&["image", "inspect", app]).contains(token),
        "GITHUB_TOKEN is not in the image"
    );
    let release = run_to_end(&["--entrypoint", "/bin/cat", app, "/etc/op-base-release"]);
    assert_eq!(
        release, "op-base: built by skaffold from a Dockerfile\n",
        "the buildpacks image runs on the Dockerfile base skaffold built"
    );
    let cli = tag_of(&result, "cli");
    docker(&["pull", "-q", cli]);
    assert_eq!(
        run_to_end(&[
            "--entrypoint",
            "/bin/cat",
            cli,
            "/etc/op-base-release",
            "/etc/cli-release"
        ]),
        "op-base: built by skaffold from a Dockerfile\ncli: built by skaffold on op-base\n",
        "skaffold's `requires` works: cli is built on the op-base of the same build"
    );
    let tool = tag_of(&result, "tool");
    docker(&["pull", "-q", tool]);
    assert_eq!(
        run_to_end(&["--entrypoint", "/bin/cat", tool, "/tool.txt"]),
        "built by a custom build script\n",
        "the custom artifact is what its script built"
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// `--sbom-output dist/sbom`: the SBOMs the lifecycle wrote, in pack's `--sbom-output-dir`
/// layout, per artifact: the greeting buildpack's `CycloneDX` SBOM of its `page` launch layer, and
/// the legacy SBOMs; the artifacts skaffold builds are named as having none.
fn sboms_are_copied_out(context: &TestContext, run: &Run) {
    let sboms = context.path().join("dist/sbom/op");
    let page = fs_err::read_to_string(sboms.join("launch/op_greeting/page/sbom.cdx.json"))
        .unwrap_or_else(|e| panic!("{e}\n{}", run.report()));
    assert!(page.contains("\"bomFormat\":\"CycloneDX\""), "{page}");
    for legacy in ["launch/sbom.legacy.json", "build/sbom.legacy.json"] {
        assert!(sboms.join(legacy).is_file(), "{legacy}\n{}", run.report());
    }
    assert!(
        run.stderr.contains(
            "warning: --sbom-output: skaffold writes no SBOMs, so `op-base`, `cli`, `tool` get none"
        ),
        "{}",
        run.report()
    );
}

/// Without `--push`: skaffold leaves `tool` in the engine and publishes nothing of it; `op-base`
/// is published all the same, because `op` (built by op) runs on it; `op` is published, as
/// buildpacks artifacts always are, and pulled into the engine.
fn op_build_without_push_leaves_the_images_in_the_engine() {
    let Hybrid {
        stack,
        repo,
        context,
        _images,
    } = Hybrid::start(Lifecycle::Op);
    // A version: the images are tagged with it, and with `latest` by op.
    let context = context.env("VERSION", "3.1.4");
    let plan = context.op(&["build", "--repo", &repo, "--dry-run"]);
    plan.success();
    assert!(
        plan.stdout.contains(
            "skaffold builds (one `skaffold build` each)\n  op-base, cli (pushed)\n  tool (left in the local Docker Engine)"
        ),
        "{}",
        plan.report()
    );
    let run = context.op(&["build", "--repo", &repo]);
    run.success();
    let result = build_result(&context);
    let tool = tag_of(&result, "tool");
    let (repository, image_id) = tool.split_once("/tool:").unwrap();
    assert_eq!(repository, repo);
    assert_eq!(
        image_id.len(),
        64,
        "skaffold's local tag is the image id: {tool}"
    );
    assert_eq!(
        stack.registry.get("/v2/tool/tags/list").0,
        404,
        "nothing of tool is pushed"
    );
    what_the_engine_lists_is_the_result(&stack, &result, &run);
    for image in ["tool", "op"] {
        let ids: Vec<String> = ["3.1.4", "latest"]
            .iter()
            .map(|tag| {
                docker(&[
                    "image",
                    "inspect",
                    "--format",
                    "{{.Id}}",
                    &format!("{repo}/{image}:{tag}"),
                ])
            })
            .collect();
        assert_eq!(
            ids[0], ids[1],
            "{image}: both tags are one image in the engine"
        );
    }
    assert!(
        run.stderr.contains(&format!(
            "Loaded {} into the Docker Engine",
            tag_of(&result, "op")
        )),
        "{}",
        run.report()
    );
    assert_eq!(
        run_to_end(&[
            "--entrypoint",
            "/bin/cat",
            &format!("{repo}/op:latest"),
            "/etc/op-base-release"
        ]),
        "op-base: built by skaffold from a Dockerfile\n"
    );
    assert!(
        run.stderr.contains("Built 4 artifacts in"),
        "{}",
        run.report()
    );
}

/// What the engine says of each image of a build without `--push` is what `build_result.json`
/// says: the images op pulled and the one skaffold pushed under their registry digest, which
/// the registry serves; `tool` under skaffold's tag (its image id) and, with containerd's store, a
/// registry digest the registry does not serve, which op says.
fn what_the_engine_lists_is_the_result(stack: &Stack, result: &serde_json::Value, run: &Run) {
    let repo = stack.registry.addr();
    let tool = tag_of(result, "tool");
    let image_id = tool.split_once("/tool:").unwrap().1;
    let containerd_store = Engine::of_this_test().containerd_store();
    for image in ["op", "op-base"] {
        let tag = tag_of(result, image);
        let (reference, digest) = tag.split_once('@').unwrap();
        let (id, repo_digests) = id_and_repo_digests(reference);
        let named = format!("{repo}/{image}@{digest}");
        assert!(
            repo_digests.contains(&named),
            "{image}: the engine lists {repo_digests:?}, not {named}\n{}",
            run.report()
        );
        assert_eq!(
            verify_published(reference),
            digest,
            "the registry serves it"
        );
        if containerd_store {
            assert_eq!(
                id, digest,
                "containerd's store names an image by its manifest digest"
            );
        }
    }
    let (id, repo_digests) = id_and_repo_digests(tool);
    assert_eq!(id, format!("sha256:{image_id}"), "{}", run.report());
    let listed: Vec<&String> = repo_digests
        .iter()
        .filter(|d| d.starts_with(&format!("{repo}/tool@")))
        .collect();
    assert_eq!(
        !listed.is_empty(),
        containerd_store,
        "a registry digest for an image never pushed: {repo_digests:?}"
    );
    for listed in listed {
        assert!(
            run.stderr.contains(&format!(
                "Left in the Docker Engine, not pushed: the engine lists it as {listed}, which the registry serves only if an earlier push put it there"
            )),
            "{}",
            run.report()
        );
        let (_, digest) = listed.split_once('@').unwrap();
        assert_eq!(
            stack
                .registry
                .get(&format!("/v2/tool/manifests/{digest}"))
                .0,
            404,
            "the registry does not serve {listed}"
        );
    }
}

/// A Dockerfile that fails: skaffold's output is shown with the artifact's name, the artifact
/// that runs on it is not built, the independent one is, and no build result is written.
/// The containers of failed Dockerfile steps whose command holds these words, removed when
/// dropped.
struct FailedStep(String);

impl Drop for FailedStep {
    fn drop(&mut self) {
        let listed = docker_command()
            .args(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for line in listed.lines().filter(|l| l.contains(&self.0)) {
            if let Some((id, _)) = line.split_once(' ') {
                let _ = docker_command().args(["rm", "-f", id]).output();
            }
        }
    }
}

fn a_failing_skaffold_build_is_reported_with_its_output_and_writes_no_result() {
    let Hybrid {
        stack: _stack,
        repo,
        context,
        _images,
    } = Hybrid::start(Lifecycle::Op);
    let dockerfile = context.path().join("base/Dockerfile");
    let text = fs_err::read_to_string(&dockerfile).unwrap();
    // The engine's classic builder keeps the container of a failed step: it goes when the test
    // ends, found by the step's own words.
    let failed_step = FailedStep(op::engine::unique_name("broken"));
    fs_err::write(
        &dockerfile,
        format!(
            "{text}RUN echo the base is broken {} && exit 3\n",
            failed_step.0
        ),
    )
    .unwrap();
    let run = context.op(&["build", "--push", "--repo", &repo]);
    run.failure(1);
    for expected in [
        "[op-base] the base is broken",
        "error: 3 of 4 artifacts failed, so no build result was written:",
        "  - op-base: skaffold failed (exit code 1)",
        "  - cli: not built: it builds in the same `skaffold build` as `op-base`, which failed",
        "  - op: not built: it depends on `op-base`, which failed",
        "hint: skaffold's output is above, each line prefixed with its artifact",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected}\n{}",
            run.report()
        );
    }
    assert!(run.stderr.contains("[tool   ] Build [tool] succeeded"));
    assert!(!context.path().join("build_result.json").exists());
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// The octopilot Action's command lines (bypass mode, upstream-op.md Appendix A), with its
/// environment, and what it reads afterwards: `jq -r '.builds[-1].tag' build_result.json` and
/// the digest after `@`.
fn the_action_s_command_lines_work_as_it_runs_them() {
    let Hybrid {
        stack: _stack,
        repo,
        context,
        _images,
    } = Hybrid::start(Lifecycle::Op);
    let context = context
        .env("DOCKER_METADATA_OUTPUT_VERSION", "1.2.3")
        .env("GITHUB_ACTIONS", "true")
        .env("CI", "true");
    let action_output = |context: &TestContext| {
        let result = build_result(context);
        let tag = result["builds"].as_array().unwrap().last().unwrap()["tag"]
            .as_str()
            .unwrap()
            .to_string();
        let digest = tag.split_once('@').unwrap().1.to_string();
        (tag, digest)
    };

    // op build --repo R [--artifact A] --platform P --push --sbom-output S
    let run = context.op(&[
        "build",
        "--repo",
        &repo,
        "--platform",
        "linux/amd64",
        "--push",
        "--sbom-output",
        "dist/sbom",
    ]);
    run.success();
    let (tag, digest) = action_output(&context);
    assert!(
        tag.starts_with(&format!("{repo}/op:1.2.3@sha256:")),
        "{tag}"
    );
    for image in ["op-base", "tool", "cli", "op"] {
        let version = verify_published(&format!("{repo}/{image}:1.2.3"));
        assert_eq!(
            verify_published(&format!("{repo}/{image}:latest")),
            version,
            "{image}: the version tag and `latest` are one image"
        );
    }
    assert_eq!(verify_published(&format!("{repo}/op:1.2.3")), digest);
    assert!(
        context
            .path()
            .join("dist/sbom/op/launch/op_greeting/page/sbom.cdx.json")
            .is_file(),
        "the Action tars the SBOM directory: it holds op's SBOMs\n{}",
        run.report()
    );

    // An artifact that already starts with the registry: no --repo; the registry comes from
    // `.registry` (its `ci` entry, as GITHUB_ACTIONS is true).
    context.write(
        ".registry",
        &format!("local: localhost:5999\nci:\n  - {repo}\n"),
    );
    fs_err::remove_file(context.path().join("build_result.json")).unwrap();
    let run = context.op(&[
        "build",
        "--artifact",
        "op",
        "--platform",
        "linux/amd64",
        "--push",
        "--sbom-output",
        "dist/sbom",
    ]);
    run.success();
    assert_eq!(
        names(&build_result(&context)),
        ["op-base", "op"],
        "the artifact and what it runs on"
    );
    let (tag, digest) = action_output(&context);
    assert_eq!(tag, format!("{repo}/op:1.2.3@{digest}"));

    the_ttl_line(context, &repo);
}

/// The Action's ttl line: `op build --ttl-uuid U --ttl-tag T [--artifact A] --platform P
/// --push --sbom-output S`, on a registry of the test instead of ttl.sh.
fn the_ttl_line(context: TestContext, repo: &str) {
    let ttl = context.env("OP_TTL_REGISTRY", repo);
    let run = ttl.op(&[
        "build",
        "--ttl-uuid",
        "3f2a",
        "--ttl-tag",
        "2h",
        "--artifact",
        "op",
        "--artifact-key",
        "app",
        "--platform",
        "linux/amd64",
        "--push",
        "--sbom-output",
        "dist/sbom",
    ]);
    run.success();
    let result = build_result(&ttl);
    let (tag, digest) = action_output(&ttl);
    assert_eq!(tag, format!("{repo}/3f2a-app:2h@{digest}"));
    assert_eq!(verify_published(&format!("{repo}/3f2a-app:2h")), digest);
    let base = tag_of(&result, "op-base");
    let (reference, base_digest) = base.split_once('@').unwrap();
    assert_eq!(reference, format!("{repo}/3f2a-op-base:2h"));
    assert_eq!(
        verify_published(reference),
        base_digest,
        "skaffold's image, copied to its ttl name, digest kept"
    );
    assert!(
        run.stderr.contains(&format!(
            "[op     ] Resolving runImage op-base to built artifact {repo}/3f2a-op-base:2h@sha256:"
        )),
        "{}",
        run.report()
    );
}

/// What the Action reads: `jq -r '.builds[-1].tag' build_result.json` and the digest after `@`.
fn action_output(context: &TestContext) -> (String, String) {
    let result = build_result(context);
    let tag = result["builds"].as_array().unwrap().last().unwrap()["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let digest = tag.split_once('@').unwrap().1.to_string();
    (tag, digest)
}

/// `op push`, upstream's legacy interface: the registries of `.registry` (`--destination ci`:
/// the first `ci` entry is where the build publishes), `--push-all` (a copy in every other `ci`
/// registry, digest kept), the `push` profile by default (warned about when skaffold.yaml has
/// none), `--no-file-output`.
fn op_push_publishes_to_the_ci_registries_of_the_registry_file() {
    let Hybrid {
        stack: _stack,
        repo: first,
        context,
        _images,
    } = Hybrid::start(Lifecycle::Op);
    let second = Registry::start();
    context.write(
        ".registry",
        &format!(
            "local: localhost:5999\nci:\n  - {first}\n  - url: {}\n    name: mirror\n",
            second.addr()
        ),
    );
    let run = context.op(&["push", "--destination", "ci", "--push-all"]);
    run.success();
    assert!(
        run.stderr.contains(
            "warning: `op push` activates the profile `push` by default, and skaffold.yaml defines none; building without it"
        ),
        "{}",
        run.report()
    );
    let result = build_result(&context);
    assert_eq!(names(&result), ["op-base", "tool", "cli", "op"]);
    for build in result["builds"].as_array().unwrap() {
        let image = build["imageName"].as_str().unwrap();
        let (reference, digest) = build["tag"].as_str().unwrap().split_once('@').unwrap();
        assert_eq!(reference, format!("{first}/{image}:latest"));
        assert_eq!(verify_published(reference), digest);
        let copy = format!("{}/{image}:latest", second.addr());
        assert_eq!(
            verify_published(&copy),
            digest,
            "--push-all copies {image} with its digest"
        );
        assert!(
            run.stderr
                .contains(&format!("Copied {first}/{image}@{digest} to {copy}")),
            "{}",
            run.report()
        );
    }

    fs_err::remove_file(context.path().join("build_result.json")).unwrap();
    let again = context.op(&["push", "--destination", "ci", "--no-file-output", "-q"]);
    again.success();
    assert!(!context.path().join("build_result.json").exists());
    assert_eq!(
        again.stdout.lines().count(),
        4,
        "the results are printed all the same"
    );
}

/// Ctrl-C while skaffold runs a `custom` artifact's build script: op stops skaffold and what
/// it started (the script's own commands too), exits 130 and writes nothing.
fn ctrl_c_stops_skaffold_and_the_build_script_it_runs() {
    let registry = Registry::start();
    let context = TestContext::new().env("OP_SKAFFOLD", &skaffold().display().to_string());
    context.write(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n    - image: slow\n      custom:\n        buildCommand: ./build.sh\n",
    );
    context.write(
        "build.sh",
        "#!/bin/sh\nsleep 300 &\necho $! > \"$BUILD_CONTEXT/sleep.pid\"\nwait\n",
    );
    let script = context.path().join("build.sh");
    let mut permissions = fs_err::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    fs_err::set_permissions(&script, permissions).unwrap();
    let child = context
        .command(&["build", "--push", "--repo", &registry.addr()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = context.path().join("sleep.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pid_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the build script did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let sleep_pid = fs_err::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "op stopped promptly"
    );
    assert!(stderr.contains("Interrupted"), "{stderr}");
    let proc = std::path::Path::new("/proc").join(&sleep_pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proc.exists()
        && !fs_err::read_to_string(proc.join("stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the build script's `sleep` ({sleep_pid}) is still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!context.path().join("build_result.json").exists());
}

/// Without a version, skaffold.yaml's `tagPolicy` tags what skaffold builds (upstream's rule:
/// op forces skaffold's tag only with a version); buildpacks artifacts keep op's `latest`, and
/// the app still runs on the base by digest. With a version, every artifact gets it.
fn skaffold_s_tag_policy_tags_what_it_builds_unless_a_version_is_set() {
    let Hybrid {
        stack: _stack,
        repo,
        context,
        _images,
    } = Hybrid::start(Lifecycle::Op);
    let skaffold = context.path().join("skaffold.yaml");
    let text = fs_err::read_to_string(&skaffold).unwrap();
    fs_err::write(
        &skaffold,
        text.replace(
            "build:\n  local:",
            "build:\n  tagPolicy:\n    envTemplate:\n      template: \"{{.HYBRID_TAG}}\"\n  local:",
        ),
    )
    .unwrap();
    let context = context.env("HYBRID_TAG", "policy-7");
    let plan = context.op(&["build", "--repo", &repo, "--push", "--dry-run"]);
    plan.success();
    assert!(
        plan.stdout
            .contains("tagged as skaffold.yaml's tagPolicy says")
            || plan
                .stderr
                .contains("tagged as skaffold.yaml's tagPolicy says"),
        "{}",
        plan.report()
    );
    let run = context.op(&["build", "--repo", &repo, "--push"]);
    run.success();
    let result = build_result(&context);
    for image in ["op-base", "tool", "cli"] {
        let tag = tag_of(&result, image);
        let (reference, digest) = tag.split_once('@').unwrap();
        assert_eq!(
            reference,
            format!("{repo}/{image}:policy-7"),
            "{}",
            run.report()
        );
        assert_eq!(verify_published(reference), digest);
    }
    let app = tag_of(&result, "op");
    assert!(
        app.starts_with(&format!("{repo}/op:latest@sha256:")),
        "{app}"
    );
    assert!(
        run.stderr.contains(&format!(
            "Resolving runImage op-base to built artifact {}",
            tag_of(&result, "op-base")
        )),
        "{}",
        run.report()
    );

    let versioned = context.env("DOCKER_METADATA_OUTPUT_VERSION", "2.0.0");
    let run = versioned.op(&["build", "--repo", &repo, "--push"]);
    run.success();
    let result = build_result(&versioned);
    for image in ["op-base", "tool", "cli", "op"] {
        let tag = tag_of(&result, image);
        assert!(
            tag.starts_with(&format!("{repo}/{image}:2.0.0@sha256:")),
            "{image}: {tag}\n{}",
            run.report()
        );
    }
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}
