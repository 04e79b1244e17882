//! `op build-push` end to end: the real Docker Engine, a real registry, `fixtures/apps` (three
//! buildpacks artifacts, one running on another), and each test twice: with op's builder
//! (op-lifecycle inside) and with a builder the real pack made (the real lifecycle inside, the
//! shape of production's). What op publishes is checked with crane and skopeo and run with
//! docker; what it leaves behind is checked after success, failure and Ctrl-C.

use std::time::Duration;

use base64::Engine as _;

use crate::common::cnb::{
    CNB_IDS, Lifecycle, OP_LIFECYCLE_REPOSITORY, Stack, apps_in, leftovers, run_to_end,
    serve_and_get, skopeo_copy, slow_greeting, verify_published, verify_published_as,
    write_docker_config,
};
use crate::common::docker::docker;
use crate::common::registry::{Registry, TEST_PASSWORD, TEST_USER};
use crate::common::{TestContext, build_result, copy_dir, fixtures, tag_of};

on_each_engine_and_builder!(
    every_artifact_is_built_published_and_recorded_in_skaffold_order,
    a_warm_rebuild_restores_the_cache_and_reuses_unchanged_layers,
    a_failed_buildpack_fails_the_build_writes_no_result_and_leaves_nothing,
    ctrl_c_stops_the_builds_and_removes_what_they_created,
    unreachable_registries_and_engines_and_untrusted_builders_are_clear_errors,
    dockerfile_artifacts_are_skipped_with_a_line,
    an_artifact_can_choose_among_the_builder_s_buildpacks,
    registry_credentials_reach_the_engine_the_lifecycle_and_op_but_no_output,
    the_builder_s_default_run_image_is_read_with_its_registry_s_credentials,
    a_registry_cache_survives_a_runner_that_starts_empty,
);

on_each_builder!(
    project_toml_s_build_environment_reaches_the_buildpacks_and_buildpacks_env_wins,
    project_toml_s_buildpacks_replace_or_extend_the_builder_s_order,
);
/// The labels of the image `reference` (crane reads its config).
pub(crate) fn labels_of(reference: &str) -> serde_json::Value {
    let config = std::process::Command::new(crate::common::cnb::crane())
        .args(["config", reference])
        .output()
        .unwrap();
    assert!(
        config.status.success(),
        "crane config {reference}: {config:?}"
    );
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    config["config"]["Labels"].clone()
}

/// `id@version` of the buildpacks the image `reference` was built with.
fn buildpacks_of(reference: &str) -> Vec<String> {
    let labels = labels_of(reference);
    let metadata: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.build.metadata"].as_str().unwrap()).unwrap();
    metadata["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{}@{}",
                b["id"].as_str().unwrap(),
                b["version"].as_str().unwrap()
            )
        })
        .collect()
}

/// An inline buildpack (`script`) of `table` that says which web server project.toml's build
/// environment names and keeps it in a launch layer.
fn inline_stamp(table: &str) -> String {
    format!(
        r#"[{table}.script]
api = "0.10"
inline = '''
echo "---> Inline: web server $BP_WEB_SERVER"
mkdir -p "$CNB_LAYERS_DIR/stamp"
echo "$BP_WEB_SERVER" > "$CNB_LAYERS_DIR/stamp/server"
printf '[types]\nlaunch = true\n' > "$CNB_LAYERS_DIR/stamp.toml"
'''
"#
    )
}

/// A buildpack directory `dir` of `context`: `me/hello@1.0.0`, which says hello.
fn write_hello_buildpack(context: &TestContext, dir: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    context.write(
        &format!("{dir}/buildpack.toml"),
        "api = \"0.10\"\n\n[buildpack]\nid = \"me/hello\"\nversion = \"1.0.0\"\n\n[[targets]]\nos = \"linux\"\n",
    );
    context.write(&format!("{dir}/bin/detect"), "#!/bin/sh\nexit 0\n");
    context.write(
        &format!("{dir}/bin/build"),
        "#!/bin/sh\necho \"---> Hello from a buildpack directory\"\n",
    );
    for script in ["detect", "build"] {
        let path = context.path().join(format!("{dir}/bin/{script}"));
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The seeds' static frontend (procfile.md §6–7: `public/`, `BP_WEB_SERVER` in project.toml),
/// with project.toml's buildpacks as pack reads them: a group of a local buildpack directory,
/// an inline buildpack and one of the builder's replaces the builder's order; then, without a
/// group, a `pre` group goes before every group of the builder's order. What each buildpack
/// made is in the image; the project metadata label is `{}`, as pack writes it.
fn project_toml_s_buildpacks_replace_or_extend_the_builder_s_order(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    write_hello_buildpack(&context, "static-site/buildpacks/hello");
    let header = "[_]\nschema-version = \"0.2\"\n\n[io.buildpacks]\nexclude = [\"buildpacks\"]\n\n\
                  [[io.buildpacks.build.env]]\nname = \"BP_WEB_SERVER\"\nvalue = \"nginx\"\n\n";
    context.write(
        "static-site/project.toml",
        &format!(
            "{header}[[io.buildpacks.group]]\nuri = \"buildpacks/hello\"\n\n\
             [[io.buildpacks.group]]\nid = \"me/stamp\"\n{}\n\
             [[io.buildpacks.group]]\nid = \"op/static-site\"\n",
            inline_stamp("io.buildpacks.group")
        ),
    );
    let args = ["build-push", "--repo", &repo, "--artifact", "static-site"];
    let run = context.op(&args);
    run.success();
    for line in [
        "---> Hello from a buildpack directory",
        "---> Inline: web server nginx",
        "---> Static site: serving 1 file(s)",
    ] {
        assert!(run.stderr.contains(line), "{line}\n{}", run.report());
    }
    let tag = build_result(&context)["builds"][0]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let (reference, digest) = tag.split_once('@').unwrap();
    assert_eq!(verify_published(reference), digest);
    assert_eq!(
        buildpacks_of(reference),
        ["me/hello@1.0.0", "me/stamp@0.0.0", "op/static-site@0.1.0"],
        "the group replaced the builder's order\n{}",
        run.report()
    );
    assert_eq!(
        labels_of(reference)["io.buildpacks.project.metadata"],
        "{}",
        "no project metadata, as pack (outside its experimental mode) writes it"
    );
    let server = run_to_end(&[
        "--entrypoint",
        "/bin/cat",
        &tag,
        "/layers/me_stamp/stamp/server",
    ]);
    assert_eq!(server, "nginx\n", "the inline buildpack's launch layer");
    assert!(serve_and_get(&tag, "/index.html").contains("Hello from the static-site fixture"));

    // Without a group: the pre buildpack goes before every group of the builder's order, and
    // detection picks the builder's static-site group.
    context.write(
        "static-site/project.toml",
        &format!(
            "{header}[[io.buildpacks.pre.group]]\nid = \"me/stamp\"\n{}",
            inline_stamp("io.buildpacks.pre.group")
        ),
    );
    let run = context.op(&args);
    run.success();
    let tag = build_result(&context)["builds"][0]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        buildpacks_of(tag.split_once('@').unwrap().0),
        ["me/stamp@0.0.0", "op/static-site@0.1.0"],
        "{}",
        run.report()
    );

    // A buildpack op does not fetch is refused, naming the file and the entry.
    context.write(
        "static-site/project.toml",
        "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nuri = \"docker://ghcr.io/example/bp:1\"\n",
    );
    let refused = context.op(&args);
    refused.failure(1);
    for expected in [
        "project.toml",
        "[[io.buildpacks.group]] entry 1",
        "does not fetch buildpacks",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected}\n{}",
            refused.report()
        );
    }
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// The seeds' shape (procfile.md §6–7): a `project.toml` of schema 0.2 whose
/// `[[io.buildpacks.build.env]]` sets what the buildpacks read; the artifact's `buildpacks.env`
/// wins over it, as pack's `--env` wins over the descriptor's.
fn project_toml_s_build_environment_reaches_the_buildpacks_and_buildpacks_env_wins(
    lifecycle: Lifecycle,
) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    let skaffold = context.path().join("skaffold.yaml");
    let with_env = fs_err::read_to_string(&skaffold).unwrap();
    let loud = "        env:\n          - GREETING_STYLE=loud\n";
    assert!(with_env.contains(loud));
    fs_err::write(&skaffold, with_env.replace(loud, "")).unwrap();
    context.write(
        "greeting/project.toml",
        "[_]\nschema-version = \"0.2\"\n\n[io.buildpacks]\nexclude = [\"*.md\"]\n\n\
         [[io.buildpacks.build.env]]\nname = \"GREETING_STYLE\"\nvalue = \"loud\"\n",
    );
    let args = ["build-push", "--repo", &repo, "--artifact", "greeting"];
    let from_descriptor = context.op(&args);
    from_descriptor.success();
    assert!(
        from_descriptor
            .stderr
            .contains("[greeting   ] ---> Greeting: rendering the page (loud)"),
        "project.toml's GREETING_STYLE reached the buildpack\n{}",
        from_descriptor.report()
    );
    fs_err::write(
        &skaffold,
        with_env.replace(loud, "        env:\n          - GREETING_STYLE=plain\n"),
    )
    .unwrap();
    let overridden = context.op(&args);
    overridden.success();
    assert!(
        overridden
            .stderr
            .contains("[greeting   ] ---> Greeting: rendering the page (plain)"),
        "buildpacks.env wins over project.toml\n{}",
        overridden.report()
    );
}

/// A team that switches builders: the same app and tag rebuilt with the other lifecycle, both
/// ways. Each rebuild reads the previous image the other lifecycle made and restores the cache
/// the other one kept. A `post` buildpack of project.toml (inline) adds a launch layer without
/// metadata, which the real lifecycle records as `"data":null`: op-lifecycle used to fail on
/// it (`failed to encode /layers/analyzed.toml: unsupported unit type`).
#[test]
fn a_rebuild_with_the_other_lifecycle_reads_the_previous_image() {
    let stack = Stack::start(Lifecycle::Op);
    let real = stack.another_builder(Lifecycle::Reference, "pack-builder", None);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    context.write(
        "greeting/project.toml",
        r#"[_]
schema-version = "0.2"

[[io.buildpacks.post.group]]
id = "me/plain-layer"

[io.buildpacks.post.group.script]
api = "0.10"
inline = '''
mkdir -p "$CNB_LAYERS_DIR/plain"
echo built > "$CNB_LAYERS_DIR/plain/stamp"
printf '[types]\nlaunch = true\n' > "$CNB_LAYERS_DIR/plain.toml"
'''
"#,
    );
    let skaffold = context.path().join("skaffold.yaml");
    let with_op = fs_err::read_to_string(&skaffold).unwrap();
    let with_real = with_op.replace(&stack.builder, &real);
    let args = ["build-push", "--repo", &repo, "--artifact", "greeting"];
    for (from, to, what) in [
        (
            &with_real,
            &with_op,
            "the real lifecycle, then op-lifecycle",
        ),
        (
            &with_op,
            &with_real,
            "op-lifecycle, then the real lifecycle",
        ),
    ] {
        fs_err::write(&skaffold, from).unwrap();
        let first = context.op(&args);
        first.success();
        if from == &with_real {
            let tag = first.stdout.lines().last().unwrap();
            let labels = labels_of(tag.split_once('@').unwrap().0);
            let metadata = labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap();
            assert!(
                metadata.contains(r#""plain":{"sha":"#) && metadata.contains(r#""data":null"#),
                "the real lifecycle records the layer without metadata as null: {metadata}"
            );
        }
        fs_err::write(&skaffold, to).unwrap();
        let rebuilt = context.op(&args);
        rebuilt.success();
        let tag = rebuilt.stdout.lines().last().unwrap().to_string();
        let (reference, digest) = tag.split_once('@').unwrap();
        assert_eq!(
            verify_published(reference),
            digest,
            "{what}\n{}",
            rebuilt.report()
        );
    }
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// A copy of `fixtures/apps` whose builder is the stack's.
pub(crate) fn apps(stack: &Stack) -> TestContext {
    let context = TestContext::new();
    apps_in(&context, &stack.builder, &stack.registry.addr());
    context
}

/// On a terminal, the artifact has a live line (its phase and time) with the creator's output
/// above it, prefixed; on a `dumb` terminal (an editor's shell), where no line can be redrawn,
/// the plain lines of a log: the creator's output is shown either way.
#[test]
fn the_build_s_output_reaches_a_terminal_live_or_dumb() {
    let stack = Stack::start(Lifecycle::Op);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    let args = ["build-push", "--repo", &repo, "--artifact", "static-site"];
    for term in ["xterm-256color", "dumb"] {
        let run = context.op_on_a_terminal(&args, term);
        run.success();
        let shown = &run.stdout;
        assert!(
            shown.contains("[static-site] ") && shown.contains("DETECTING"),
            "TERM={term}: {shown:?}"
        );
        assert_eq!(
            shown.contains("\r\u{1b}[2K"),
            term != "dumb",
            "TERM={term}: {shown:?}"
        );
        assert_eq!(
            shown.contains("[static-site] preparing the build"),
            term == "dumb",
            "TERM={term}: {shown:?}"
        );
    }
}

/// The phases `stderr` (of `op -v`) says `artifact` entered, in order.
fn phases_of(stderr: &str, artifact: &str) -> Vec<String> {
    let of_artifact = format!("artifact=\"{artifact}\"");
    stderr
        .lines()
        .filter(|l| l.contains(" phase ") && l.contains(&of_artifact))
        .filter_map(|l| l.split("phase=\"").nth(1)?.split('"').next())
        .map(str::to_string)
        .collect()
}

fn every_artifact_is_built_published_and_recorded_in_skaffold_order(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    let run = context.op(&["build-push", "--repo", &repo, "--concurrency", "2", "-v"]);
    run.success();
    assert_eq!(
        phases_of(&run.stderr, "procfile"),
        [
            "analyzing",
            "detecting",
            "restoring",
            "building",
            "exporting"
        ],
        "the display follows the lifecycle through every phase\n{}",
        run.report()
    );
    assert!(
        run.stderr.contains(&format!("[greeting   ] Resolving runImage static-site to built artifact {repo}/static-site:latest@sha256:")),
        "{}",
        run.report()
    );
    assert!(
        run.stderr.contains("[procfile   ] ===> BUILDING"),
        "output lines carry the artifact's name\n{}",
        run.report()
    );

    let result = build_result(&context);
    let builds = result["builds"].as_array().unwrap();
    let names: Vec<&str> = builds
        .iter()
        .map(|b| b["imageName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["static-site", "procfile", "greeting"],
        "skaffold.yaml order"
    );
    let stdout: Vec<&str> = run.stdout.lines().collect();
    for (build, printed) in builds.iter().zip(&stdout) {
        let tag = build["tag"].as_str().unwrap();
        assert_eq!(tag, *printed, "stdout has the results");
        let (reference, digest) = tag.split_once('@').unwrap();
        assert!(
            reference.starts_with(&format!("{repo}/")) && reference.ends_with(":latest"),
            "{tag}"
        );
        assert_eq!(
            verify_published(reference),
            digest,
            "the registry serves what build_result.json says"
        );
    }

    let greeting = builds[2]["tag"].as_str().unwrap();
    docker(&["pull", "-q", greeting]);
    assert!(
        serve_and_get(greeting, "/").contains("<h1>HELLO FROM THE GREETING FIXTURE</h1>"),
        "buildpacks.env reached the buildpack"
    );
    let owners = run_to_end(&[
        "--entrypoint",
        "/bin/stat",
        greeting,
        "-c",
        "%u:%g",
        "/workspace",
        "/workspace/greeting.txt",
    ]);
    assert_eq!(
        owners,
        format!("{0}:{1}\n{0}:{1}\n", CNB_IDS.0, CNB_IDS.1),
        "the app belongs to the CNB user"
    );
    let site = run_to_end(&[
        "--entrypoint",
        "/bin/cat",
        greeting,
        "/workspace/public/index.html",
    ]);
    assert!(
        site.contains("static-site fixture"),
        "greeting runs on the image static-site was published as"
    );
    let _ = docker(&["rmi", "-f", greeting]);
    assert_eq!(
        leftovers(&stack.registry.addr()),
        Vec::<String>::new(),
        "no container or per-build volume is left"
    );

    let again = context.op(&["build-push", "--repo", &repo, "-q", "-o", "json"]);
    again.success();
    assert_eq!(again.stderr, "", "-q prints nothing but errors");
    let json = again.json();
    assert_eq!(
        json["builds"][1]["tag"], builds[1]["tag"],
        "an unchanged app publishes the same image"
    );
    let seconds = json["builds"][1]["creatorSeconds"].as_f64();
    assert!(seconds.is_some_and(|s| s > 0.0), "{}", again.report());

    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

fn a_warm_rebuild_restores_the_cache_and_reuses_unchanged_layers(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    let cold = context.op(&["build-push", "--repo", &repo, "--artifact", "greeting"]);
    cold.success();
    assert!(
        cold.stderr
            .contains("[greeting   ] ---> Greeting: build number 1"),
        "{}",
        cold.report()
    );
    let warm = context.op(&["build-push", "--repo", &repo, "--artifact", "greeting"]);
    warm.success();
    for expected in [
        // The cache volume: the `counter` layer (cache only) is restored.
        "[greeting   ] Restoring data for \"op/greeting:counter\" from cache",
        "[greeting   ] ---> Greeting: build number 2",
        // The previous image: the unchanged `page` layer is reused, not uploaded again.
        "[greeting   ] ---> Greeting: greeting.txt and style are unchanged",
        "[greeting   ] Reusing layer 'op/greeting:page'",
    ] {
        assert!(
            warm.stderr.contains(expected),
            "{expected}\n{}",
            warm.report()
        );
    }
    let result = build_result(&context);
    let rebuilt = result["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["imageName"] == "greeting")
        .and_then(|b| b["tag"].as_str())
        .unwrap();
    let (reference, digest) = rebuilt.split_once('@').unwrap();
    assert_eq!(verify_published(reference), digest);
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

fn a_failed_buildpack_fails_the_build_writes_no_result_and_leaves_nothing(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    context.write("procfile/Procfile", "not a process line: x\n");
    let run = context.op(&["build-push", "--repo", &stack.registry.addr()]);
    run.failure(1);
    assert!(
        run.stderr
            .contains("1 of 3 artifacts failed, so no build result was written"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains("- procfile: a buildpack failed (exit code 51)"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains("hint: see the buildpack's output above"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains("[procfile   ] Procfile: 'not a process line' is not a process name"),
        "{}",
        run.report()
    );
    assert!(
        !context.path().join("build_result.json").exists(),
        "no partial build_result.json"
    );
    assert_eq!(leftovers(&stack.registry.addr()), Vec::<String>::new());

    let quiet = context.op(&[
        "build-push",
        "--repo",
        &stack.registry.addr(),
        "-q",
        "--artifact",
        "procfile",
    ]);
    quiet.failure(1);
    assert!(
        quiet
            .stderr
            .contains("[procfile] Procfile: 'not a process line' is not a process name"),
        "-q still shows why\n{}",
        quiet.report()
    );

    let kept = context.op(&[
        "build-push",
        "--repo",
        &stack.registry.addr(),
        "--artifact",
        "procfile",
        "--keep",
    ]);
    kept.failure(1);
    assert!(kept.stderr.contains("Kept container"), "{}", kept.report());
    let left = leftovers(&stack.registry.addr());
    assert_eq!(
        left.len(),
        3,
        "the container and two volumes are kept: {left:?}"
    );
    for item in left {
        let (kind, id) = item.split_once(' ').unwrap();
        let _ = docker(&[
            if kind == "container" { "rm" } else { "volume" },
            if kind == "container" { "-f" } else { "rm" },
            id,
        ]);
    }

    // No buildpack detects an app without a public/ directory: the lifecycle exits 20.
    fs_err::remove_dir_all(context.path().join("static-site/public")).unwrap();
    let undetected = context.op(&[
        "build-push",
        "--repo",
        &stack.registry.addr(),
        "--artifact",
        "static-site",
    ]);
    undetected.failure(1);
    for expected in [
        "- static-site: no buildpack detected the app in the artifact's context (exit code 20)",
        "hint: check `context` in skaffold.yaml",
    ] {
        assert!(
            undetected.stderr.contains(expected),
            "{expected}\n{}",
            undetected.report()
        );
    }
    assert_eq!(leftovers(&stack.registry.addr()), Vec::<String>::new());
}

fn ctrl_c_stops_the_builds_and_removes_what_they_created(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    slow_greeting(&context);
    let repo = stack.registry.addr();
    let args = ["build-push", "--repo", &repo, "--artifact", "greeting"];
    let stopped = context.interrupted(&args, "---> Greeting: sleeping", || {});
    assert!(
        stopped.stopped_in < Duration::from_secs(30),
        "op stopped promptly"
    );
    assert_eq!(
        stopped.code,
        Some(130),
        "{}{}",
        stopped.before,
        stopped.after
    );
    assert!(stopped.after.contains("Interrupted"), "{}", stopped.after);
    assert_eq!(
        leftovers(&stack.registry.addr()),
        Vec::<String>::new(),
        "nothing is left after Ctrl-C"
    );
    assert!(!context.path().join("build_result.json").exists());
}

fn unreachable_registries_and_engines_and_untrusted_builders_are_clear_errors(
    lifecycle: Lifecycle,
) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    let nowhere = context.op(&["build-push", "--repo", "127.0.0.1:1"]);
    nowhere.failure(1);
    assert!(
        nowhere.stderr.contains("Registry `127.0.0.1:1` failed"),
        "{}",
        nowhere.report()
    );
    assert!(
        nowhere
            .stderr
            .contains("hint: is a registry running at 127.0.0.1:1?"),
        "{}",
        nowhere.report()
    );

    let no_engine = context
        .command(&["build-push", "--repo", &stack.registry.addr()])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&no_engine.stderr);
    assert_eq!(no_engine.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No Docker Engine answers at `unix:///nonexistent/docker.sock`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");

    let skaffold = context.path().join("skaffold.yaml");
    let text = fs_err::read_to_string(&skaffold).unwrap();
    fs_err::write(
        &skaffold,
        text.replace("trustBuilder: true", "trustBuilder: false"),
    )
    .unwrap();
    let untrusted = context.op(&["build-push", "--repo", &stack.registry.addr()]);
    untrusted.failure(1);
    assert!(
        untrusted.stderr.contains("is not trusted"),
        "{}",
        untrusted.report()
    );
    assert!(
        untrusted.stderr.contains("--trust-builder"),
        "{}",
        untrusted.report()
    );
    context
        .op(&[
            "build-push",
            "--repo",
            &stack.registry.addr(),
            "--trust-builder",
            "--artifact",
            "procfile",
            "-q",
        ])
        .success();
}

fn dockerfile_artifacts_are_skipped_with_a_line(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    context.write("web/Dockerfile", "FROM scratch\n");
    let skaffold = context.path().join("skaffold.yaml");
    let text = fs_err::read_to_string(&skaffold).unwrap();
    fs_err::write(
        &skaffold,
        text.replace(
            "  artifacts:\n",
            "  artifacts:\n    - image: web\n      context: web\n      docker: {}\n",
        ),
    )
    .unwrap();
    let run = context.op(&[
        "build-push",
        "--repo",
        &stack.registry.addr(),
        "--artifact",
        "static-site",
    ]);
    run.success();
    let run = context.op(&["build-push", "--repo", &stack.registry.addr()]);
    run.success();
    assert!(
        run.stderr
            .contains("Skipping web: `op build-push` builds buildpacks artifacts only"),
        "{}",
        run.report()
    );
    let names: Vec<String> = build_result(&context)["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["imageName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["static-site", "procfile", "greeting"]);
}

fn an_artifact_can_choose_among_the_builder_s_buildpacks(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = apps(&stack);
    let skaffold = context.path().join("skaffold.yaml");
    let text = fs_err::read_to_string(&skaffold).unwrap();
    let chosen = text.replace(
        "        runImage: static-site\n",
        "        runImage: static-site\n        buildpacks: [\"op/greeting\"]\n",
    );
    fs_err::write(&skaffold, &chosen).unwrap();
    let repo = stack.registry.addr();
    let run = context.op(&["build-push", "--repo", &repo, "--artifact", "greeting"]);
    run.success();
    // The builder's order would try op/static-site (optional) too: "1 of 2 buildpacks participating".
    assert!(
        run.stderr.contains("[greeting   ] op/greeting 0.1.0")
            && !run.stderr.contains("buildpacks participating"),
        "the order is the artifact's\n{}",
        run.report()
    );

    fs_err::write(
        &skaffold,
        chosen.replace("[\"op/greeting\"]", "[\"op/nope@1.0.0\"]"),
    )
    .unwrap();
    let run = context.op(&["build-push", "--repo", &repo, "--artifact", "greeting"]);
    run.failure(1);
    assert!(
        run.stderr.contains("buildpack `op/nope` is not in builder"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr.contains("op/procfile@0.1.0"),
        "the hint lists the builder's buildpacks\n{}",
        run.report()
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

fn registry_credentials_reach_the_engine_the_lifecycle_and_op_but_no_output(lifecycle: Lifecycle) {
    let home = tempfile::tempdir().unwrap();
    let stack = Stack::start_authenticated(lifecycle, home.path());
    let repo = stack.registry.addr();
    let context = apps(&stack).env("HOME", &home.path().display().to_string());
    // -vv: op's diagnostics and the lifecycle's debug output, where a leak would show.
    let run = context.op(&[
        "build-push",
        "--repo",
        &repo,
        "--artifact",
        "procfile",
        "-vv",
    ]);
    run.success();
    assert!(
        run.stderr
            .contains(&format!("Pulling builder {}", stack.builder)),
        "op pulled the builder with the credentials\n{}",
        run.report()
    );
    let tag = build_result(&context)["builds"][0]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let (reference, digest) = tag.split_once('@').unwrap();
    let creds = format!("{TEST_USER}:{TEST_PASSWORD}");
    assert_eq!(verify_published_as(reference, Some(home.path())), digest);
    for secret in [
        TEST_PASSWORD.to_string(),
        base64::engine::general_purpose::STANDARD.encode(&creds),
    ] {
        assert!(
            !run.stderr.contains(&secret) && !run.stdout.contains(&secret),
            "the credentials leaked\n{}",
            run.report()
        );
    }
    assert!(
        run.stderr.contains("<redacted>"),
        "-vv shows the creator's environment, redacted\n{}",
        run.report()
    );

    fs_err::remove_file(home.path().join(".docker/config.json")).unwrap();
    let anonymous = context.op(&["build-push", "--repo", &repo, "--artifact", "procfile"]);
    anonymous.failure(1);
    assert!(
        anonymous.stderr.contains("- procfile: "),
        "{}",
        anonymous.report()
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// Production's builder is in one registry and its default run image in another (ghcr.io and
/// Docker Hub): the lifecycle reads the run image with that registry's credentials, which op
/// can only know once it has read the builder.
fn the_builder_s_default_run_image_is_read_with_its_registry_s_credentials(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let private = Registry::start_with_auth();
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &private.addr());
    let run_image = format!("{}/base/run:latest", private.addr());
    skopeo_copy(&stack.run_image, &run_image, true);
    let builder = stack.another_builder(lifecycle, "private-run", Some((&run_image, home.path())));
    let context = apps(&stack).env("HOME", &home.path().display().to_string());
    let skaffold = context.path().join("skaffold.yaml");
    let text = fs_err::read_to_string(&skaffold).unwrap();
    fs_err::write(&skaffold, text.replace(&stack.builder, &builder)).unwrap();
    let repo = stack.registry.addr();

    let run = context.op(&["build-push", "--repo", &repo, "--artifact", "procfile"]);
    run.success();
    let tag = build_result(&context)["builds"][0]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let (reference, digest) = tag.split_once('@').unwrap();
    assert_eq!(verify_published(reference), digest);
    let ran = docker(&["run", "--rm", "--entrypoint", "/bin/true", &tag]);
    assert_eq!(ran, "", "the result runs");
    let _ = docker(&["rmi", "-f", &tag]);
    let config = std::process::Command::new(crate::common::cnb::crane())
        .args(["config", reference])
        .output()
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    let metadata: serde_json::Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        metadata["runImage"]["reference"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/base/run@sha256:", private.addr())),
        "built on the private run image: {metadata}"
    );

    fs_err::remove_file(home.path().join(".docker/config.json")).unwrap();
    let anonymous = context.op(&["build-push", "--repo", &repo, "--artifact", "procfile"]);
    anonymous.failure(1);
    assert!(
        anonymous.stderr.contains(&format!(
            "hint: the registry `{}` refused the lifecycle",
            private.addr()
        )),
        "without the credentials the run image cannot be read, and op says which registry\n{}",
        anonymous.report()
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// `OP_CACHE_IMAGE`: the builds cache in the registry (one image per artifact) instead of cache
/// volumes, so a CI runner that starts with no volumes and no images (here: the builder and the
/// app images removed from the engine, no cache volume ever made) restores the cache from the
/// registry: the greeting buildpack's `counter` cache layer says `build number 2`.
fn a_registry_cache_survives_a_runner_that_starts_empty(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let repo = stack.registry.addr();
    let cache = format!("{repo}/op-cache");
    let context = apps(&stack).env("OP_CACHE_IMAGE", &cache);
    let build = || context.op(&["build-push", "--repo", &repo, "--artifact", "greeting"]);
    let first = build();
    first.success();
    assert!(
        first
            .stderr
            .contains("[greeting   ] ---> Greeting: build number 1"),
        "{}",
        first.report()
    );
    // (The reference lifecycle's cache image of an artifact without cache layers does not pass
    // `crane validate`, so only its presence is checked, with skopeo.)
    for artifact in ["static-site", "greeting"] {
        crate::common::cnb::skopeo_digest_as(&format!("{cache}:{artifact}"), None);
    }
    let volumes = docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.octopilot.op.cache-for={repo}/greeting"),
    ]);
    assert_eq!(volumes.trim(), "", "no cache volume is made");
    // A fresh runner: nothing of the first build in the engine.
    let _ = docker(&["rmi", "-f", &stack.builder]);
    let second = build();
    second.success();
    for line in [
        "[greeting   ] Restoring data for \"op/greeting:counter\" from cache",
        "[greeting   ] ---> Greeting: build number 2",
    ] {
        assert!(second.stderr.contains(line), "{line}\n{}", second.report());
    }
    assert_eq!(leftovers(&repo), Vec::<String>::new());

    let digest = format!("{cache}@sha256:{}", "a".repeat(64));
    let refused = apps(&stack).op(&["build-push", "--repo", &repo, "--cache-image", &digest]);
    refused.failure(1);
    assert!(
        refused.stderr.contains("names a digest")
            && refused
                .stderr
                .contains("hint: name a repository the builds may write"),
        "{}",
        refused.report()
    );
}

/// The seeds' per-artifact layout (procfile.md §7, `fixtures/two-contexts`): two contexts, each
/// with its own Procfile, and two builders (op's, with op-lifecycle, and the real pack's, with
/// the real lifecycle), in one `op build --push`. Each image has the processes of its own
/// Procfile, `web` the default: it serves its own page, and its other process runs by name.
#[test]
fn two_contexts_with_their_own_procfiles_and_builders_build_in_one_push() {
    let stack = Stack::start(Lifecycle::Op);
    let real = stack.another_builder(Lifecycle::Reference, "pack-builder", None);
    let repo = stack.registry.addr();
    let context = TestContext::new();
    copy_dir(&fixtures().join("two-contexts"), context.path());
    context.replace_in(
        "skaffold.yaml",
        &[
            ("localhost:5001/op/builder:latest", &stack.builder),
            ("localhost:5001/op/pack-builder:latest", &real),
        ],
    );
    let run = context.op(&["build", "--repo", &repo, "--push"]);
    run.success();
    let result = build_result(&context);
    for (image, page, other, says) in [
        (
            "api",
            "<h1>api</h1>",
            "worker",
            "api worker: draining the queue",
        ),
        (
            "admin",
            "<h1>admin</h1>",
            "report",
            "admin report: all green",
        ),
    ] {
        let tag = tag_of(&result, image).to_string();
        let (reference, digest) = tag.split_once('@').unwrap();
        assert_eq!(reference, format!("{repo}/{image}:latest"));
        assert_eq!(verify_published(reference), digest);
        let labels = labels_of(reference);
        let metadata: serde_json::Value =
            serde_json::from_str(labels["io.buildpacks.build.metadata"].as_str().unwrap()).unwrap();
        let mut types: Vec<&str> = metadata["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        types.sort_unstable();
        let mut expected = vec!["web", other];
        expected.sort_unstable();
        assert_eq!(types, expected, "{image}: its own Procfile's processes");
        assert!(
            serve_and_get(&tag, "/index.html").contains(page),
            "{image}: the default process is web, serving its own page"
        );
        let ran = run_to_end(&["--entrypoint", &format!("/cnb/process/{other}"), &tag]);
        assert_eq!(ran.trim(), says, "{image}: its {other} process");
    }
    let launchers: Vec<String> = ["api", "admin"]
        .iter()
        .map(|image| {
            let labels = labels_of(&format!("{repo}/{image}:latest"));
            let metadata: serde_json::Value =
                serde_json::from_str(labels["io.buildpacks.build.metadata"].as_str().unwrap())
                    .unwrap();
            metadata["launcher"]["source"]["git"]["repository"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        launchers,
        [OP_LIFECYCLE_REPOSITORY, "github.com/buildpacks/lifecycle"],
        "op-lifecycle made api, the real lifecycle admin"
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// A builder the engine lacks: `--pull never` refuses it before anything is created; the
/// default policy (`if-not-present`) pulls it, with one inspect of the image.
#[test]
fn pull_never_refuses_a_missing_builder_and_the_default_pulls_it() {
    let stack = Stack::start(Lifecycle::Op);
    let context = apps(&stack);
    let repo = stack.registry.addr();
    docker(&["rmi", "-f", &stack.builder]);
    let args = ["build-push", "--repo", &repo, "--artifact", "static-site"];
    let never = context.op(&[&args[..], &["--pull", "never"]].concat());
    never.failure(1);
    assert!(
        never.stderr.contains(&format!(
            "Image `{}` is not in the Docker Engine, and `--pull never` forbids pulling it",
            stack.builder
        )),
        "{}",
        never.report()
    );
    let pulled = context.op(&args);
    pulled.success();
    assert!(
        pulled
            .stderr
            .contains(&format!("Pulled builder {}", stack.builder)),
        "{}",
        pulled.report()
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}
