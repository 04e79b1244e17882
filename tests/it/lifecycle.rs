//! op-lifecycle end to end, with the real Docker Engine and a real registry: `op builder base`
//! and `op builder create` make the fixture builder, its creator runs in a container as a
//! platform runs it, and what it publishes is checked with skopeo and run with docker.

use crate::common::cnb::{
    CNB_IDS, Lifecycle, Stack, Volume, run_creator, run_to_end, serve_and_get, verify_published,
};
use crate::common::fixtures;

#[test]
fn the_builder_image_has_the_layout_and_labels_of_a_pack_builder() {
    let stack = Stack::start(Lifecycle::Op);
    let listing = run_to_end(&[
        "--entrypoint",
        "/bin/ls",
        &stack.builder,
        "-ln",
        "/cnb/lifecycle",
        "/layers",
        "/workspace",
        "/cnb/buildpacks/op_greeting/0.1.0/bin",
    ]);
    for expected in [
        "creator -> lifecycle",
        "launcher",
        "lifecycle.toml",
        " build",
        " detect",
    ] {
        assert!(listing.contains(expected), "{expected} in:\n{listing}");
    }
    let owners = run_to_end(&[
        "--entrypoint",
        "/bin/stat",
        &stack.builder,
        "-c",
        "%n %u:%g",
        "/layers",
        "/workspace",
        "/cnb/order.toml",
    ]);
    assert_eq!(
        owners,
        "/layers 1000:1000\n/workspace 1000:1000\n/cnb/order.toml 0:0\n"
    );
    let labels = crate::common::docker::docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &stack.builder,
    ]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    for key in [
        "io.buildpacks.builder.metadata",
        "io.buildpacks.buildpack.layers",
        "io.buildpacks.buildpack.order",
        "io.buildpacks.stack.id",
    ] {
        assert!(labels.get(key).is_some(), "label {key} in {labels}");
    }
    let printed = stack
        .created
        .trim()
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap();
    assert_eq!(
        verify_published(&stack.builder),
        printed,
        "op builder create prints what it published"
    );
}

#[test]
fn a_static_site_builds_publishes_and_serves() {
    let stack = Stack::start(Lifecycle::Op);
    let cache = Volume::new("cache");
    let image = stack.image("op/apps/static-site:latest");
    let build = run_creator(
        &stack,
        &fixtures().join("apps/static-site"),
        &image,
        &cache,
        &[],
    );
    build.success();
    for phase in [
        "===> ANALYZING",
        "===> DETECTING",
        "===> RESTORING",
        "===> BUILDING",
        "===> EXPORTING",
    ] {
        assert!(
            build.output.contains(phase),
            "{phase} in:\n{}",
            build.output
        );
    }
    assert!(
        build.output.contains("---> Static site: serving 1 file(s)"),
        "{}",
        build.output
    );
    let digest = build.digest();
    assert_eq!(
        verify_published(&image),
        digest,
        "report.toml has the digest the registry serves"
    );
    let pulled = format!("{}@{digest}", image.trim_end_matches(":latest"));
    crate::common::docker::docker(&["pull", "-q", &pulled]);
    let body = serve_and_get(&pulled, "/index.html");
    assert!(
        body.contains("Hello from the static-site fixture"),
        "{body}"
    );
    let owner = run_to_end(&[
        "--entrypoint",
        "/bin/stat",
        &pulled,
        "-c",
        "%u:%g",
        "/workspace",
        "/workspace/public/index.html",
    ]);
    assert_eq!(
        owner,
        format!("{0}:{1}\n{0}:{1}\n", CNB_IDS.0, CNB_IDS.1),
        "the app belongs to the CNB user"
    );
    let _ = crate::common::docker::docker(&["rmi", "-f", &pulled]);
}

#[test]
fn a_rebuild_reuses_unchanged_layers_and_restores_the_cache() {
    let stack = Stack::start(Lifecycle::Op);
    let cache = Volume::new("cache");
    let app = fixtures().join("apps/greeting");
    let image = stack.image("op/apps/greeting:latest");
    let first = run_creator(&stack, &app, &image, &cache, &[]);
    first.success();
    assert!(
        first.output.contains("---> Greeting: build number 1"),
        "{}",
        first.output
    );
    assert!(
        first
            .output
            .contains("---> Greeting: rendering the page (plain)"),
        "{}",
        first.output
    );
    assert!(
        first.output.contains("Adding layer 'op/greeting:page'"),
        "{}",
        first.output
    );
    assert!(
        !first.output.contains("op/greeting:tools'"),
        "build-only layers are not exported:\n{}",
        first.output
    );

    let second = run_creator(&stack, &app, &image, &cache, &[]);
    second.success();
    for expected in [
        "Restoring data for \"op/greeting:counter\" from cache",
        "---> Greeting: build number 2",
        "are unchanged, keeping the page of the previous image",
        "Reusing layer 'op/greeting:page'",
        "Reused 1/1 app layer(s)",
        "Reusing layer 'buildpacksio/lifecycle:launcher'",
    ] {
        assert!(
            second.output.contains(expected),
            "{expected} in:\n{}",
            second.output
        );
    }
    assert_eq!(
        second.digest(),
        first.digest(),
        "nothing in the image changed, so neither did its digest"
    );
    assert_eq!(verify_published(&image), second.digest());

    let pulled = format!("{}@{}", image.trim_end_matches(":latest"), second.digest());
    crate::common::docker::docker(&["pull", "-q", &pulled]);
    assert!(serve_and_get(&pulled, "/").contains("<h1>Hello from the greeting fixture</h1>"));
    let hello = run_to_end(&["--entrypoint", "/cnb/process/hello", &pulled]);
    assert_eq!(
        hello, "Hello from the greeting fixture (role: none)\n",
        "env.launch applies, env.launch/web does not"
    );
    let direct = run_to_end(&[
        "--entrypoint",
        "/cnb/lifecycle/launcher",
        &pulled,
        "--",
        "env",
    ]);
    for expected in [
        "GREETING=Hello from the greeting fixture\n",
        "PAGE_DIR=/layers/op_greeting/page/public\n",
    ] {
        assert!(
            direct.contains(expected),
            "{expected} in the launch environment:\n{direct}"
        );
    }
    assert!(
        !direct.contains("CNB_LAYERS_DIR") && !direct.contains("ROLE="),
        "{direct}"
    );
    let _ = crate::common::docker::docker(&["rmi", "-f", &pulled]);
}

#[test]
fn procfile_processes_become_image_processes() {
    let stack = Stack::start(Lifecycle::Op);
    let cache = Volume::new("cache");
    let image = stack.image("op/apps/procfile:latest");
    let build = run_creator(
        &stack,
        &fixtures().join("apps/procfile"),
        &image,
        &cache,
        &["-tag", &stack.image("op/apps/procfile:v1")],
    );
    build.success();
    assert_eq!(
        verify_published(&stack.image("op/apps/procfile:v1")),
        build.digest(),
        "-tag writes the same image"
    );
    let pulled = format!("{}@{}", image.trim_end_matches(":latest"), build.digest());
    crate::common::docker::docker(&["pull", "-q", &pulled]);
    assert!(serve_and_get(&pulled, "/index.html").contains("Hello from the procfile fixture"));
    let worker = run_to_end(&["--entrypoint", "/cnb/process/worker", &pulled]);
    assert!(
        worker.starts_with("worker: ") && worker.ends_with(" is a fine year\n"),
        "{worker}"
    );
    let _ = crate::common::docker::docker(&["rmi", "-f", &pulled]);
}

#[test]
fn failures_exit_with_the_lifecycle_codes() {
    let stack = Stack::start(Lifecycle::Op);
    let cache = Volume::new("cache");
    let empty = tempfile::tempdir().unwrap();
    let nothing = run_creator(
        &stack,
        empty.path(),
        &stack.image("op/apps/empty:latest"),
        &cache,
        &[],
    );
    assert_eq!(
        nothing.code, 20,
        "no group passed detection:\n{}",
        nothing.output
    );
    assert!(nothing.report.is_none());

    let broken = tempfile::tempdir().unwrap();
    fs_err::write(
        broken.path().join("Procfile"),
        "not a process line with spaces: x\n",
    )
    .unwrap();
    let failed = run_creator(
        &stack,
        broken.path(),
        &stack.image("op/apps/broken:latest"),
        &cache,
        &[],
    );
    assert_eq!(failed.code, 51, "a buildpack failed:\n{}", failed.output);
    assert!(
        failed.output.contains("is not a process name"),
        "{}",
        failed.output
    );

    let unknown = run_creator(
        &stack,
        empty.path(),
        &stack.image("op/apps/x:latest"),
        &cache,
        &["-no-such-flag"],
    );
    assert_eq!(unknown.code, 2, "{}", unknown.output);
    let daemon = run_creator(
        &stack,
        empty.path(),
        &stack.image("op/apps/x:latest"),
        &cache,
        &["-daemon"],
    );
    assert_eq!(daemon.code, 3, "{}", daemon.output);
    assert!(
        daemon
            .output
            .contains("-daemon is not supported by op-lifecycle"),
        "{}",
        daemon.output
    );
}
