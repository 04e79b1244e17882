//! `op run`: listing contexts, and running images on the real Docker Engine.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::TestContext;
use crate::common::docker::{TestImage, containers_of, require_engine};
use crate::common::registry::http_get;

/// `op run context list` shows each context with its image and the port op infers.
#[test]
fn context_list_shows_images_and_ports() {
    let run = TestContext::fixture("multi-config").op(&["run", "context", "list"]);
    run.success();
    assert_eq!(
        run.stdout,
        "Contexts (use: op run <context>):\n  \
         services/shared/base  shop-base  container port 8080 (default)\n  \
         services/api/src      shop-api   container port 7000 (from Procfile)\n  \
         web                   shop-web   container port 8088 (from nginx.conf)\n"
    );
}

/// An unknown context lists the known ones; two contexts are a usage error.
#[test]
fn unknown_contexts_are_errors_naming_the_known_ones() {
    let ctx = TestContext::fixture("buildpacks-only");
    let run = ctx.op(&["run", "web"]);
    run.failure(1);
    assert!(
        run.stderr.starts_with("error: Unknown context `web`\n"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains("hint: the contexts are `api`, `frontend`"),
        "{}",
        run.report()
    );
    ctx.op(&["run", "api", "frontend"]).failure(2);
    let bare = ctx.op(&["run"]);
    bare.failure(2);
    assert!(
        bare.stderr.contains("op run context list"),
        "the help shows the examples\n{}",
        bare.report()
    );
}

/// `--dry-run` shows the container as a `docker run` line: `.github/octopilot.yaml` ports,
/// environment and volumes, or a free port from 8080 and the inferred `PORT`.
#[test]
fn dry_run_shows_ports_env_and_volumes() {
    let ctx = TestContext::fixture("buildpacks-only");
    let api = ctx.op(&["run", "api", "--dry-run"]);
    api.success();
    assert_eq!(
        api.stdout,
        "docker run --rm -p 8081:8080 -e PORT=8080 -e LOG_LEVEL=debug localhost:5001/myapp-api:latest\n"
    );
    let frontend = ctx.op(&["run", "frontend", "--dry-run"]);
    frontend.success();
    let public = ctx.path().join("frontend/public").display().to_string();
    assert!(
        frontend
            .stdout
            .contains(&format!("-v {public}:/workspace/public ")),
        "{}",
        frontend.report()
    );
    assert!(
        frontend.stdout.contains(":8080 -e PORT=8080"),
        "{}",
        frontend.report()
    );
}

/// The image comes from `build_result.json` when it has the artifact, else from the default
/// repository and tag, with a warning when the file lacks the artifact.
#[test]
fn the_image_comes_from_build_result_json() {
    let ctx = TestContext::fixture("buildpacks-only");
    ctx.write(
        "build_result.json",
        r#"{"builds":[{"imageName":"myapp-api","tag":"ghcr.io/acme/myapp-api:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]}"#,
    );
    let api = ctx.op(&["run", "api", "--dry-run"]);
    api.success();
    assert!(api.stdout.ends_with(" ghcr.io/acme/myapp-api:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"), "{}", api.report());
    let frontend = ctx.op(&["run", "frontend", "--dry-run"]);
    frontend.success();
    assert!(
        frontend
            .stdout
            .ends_with(" localhost:5001/myapp-frontend:latest\n"),
        "{}",
        frontend.report()
    );
    assert!(
        frontend.stderr.contains(
            "warning: `build_result.json` has no entry for `myapp-frontend` (it has `myapp-api`)"
        ),
        "{}",
        frontend.report()
    );
    ctx.write("build_result.json", "{not json");
    let broken = ctx.op(&["run", "api", "--dry-run"]);
    broken.failure(1);
    assert!(
        broken.stderr.contains("is not a build result"),
        "{}",
        broken.report()
    );
}

/// Without an engine, `op run` says so, and how to get one.
#[test]
fn a_missing_engine_is_a_clear_error() {
    let ctx = TestContext::fixture("buildpacks-only")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let run = ctx.op(&["run", "api"]);
    run.failure(1);
    assert!(
        run.stderr
            .starts_with("error: No Docker Engine answers at `unix:///nonexistent/docker.sock`"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains("hint: is the engine DOCKER_HOST names running?"),
        "{}",
        run.report()
    );
}

/// A repository whose one context runs `image`.
pub(crate) fn repository_for(image: &TestImage, octopilot: Option<&str>) -> TestContext {
    let ctx = TestContext::new();
    ctx.write(
        "skaffold.yaml",
        &format!("apiVersion: skaffold/v4beta13\nkind: Config\nbuild:\n  artifacts:\n    - image: {}\n      context: web\n      buildpacks: {{}}\n", image.repository()),
    );
    ctx.write("web/Procfile", "web: httpd -f -p ${PORT:-8080}\n");
    ctx.write(
        "build_result.json",
        &format!(
            r#"{{"builds":[{{"imageName":"{}","tag":"{}"}}]}}"#,
            image.repository(),
            image.name
        ),
    );
    if let Some(octopilot) = octopilot {
        ctx.write(".github/octopilot.yaml", octopilot);
    }
    ctx
}

/// `op run` runs the image with the environment of `.github/octopilot.yaml`, shows its output,
/// and exits with the container's exit code; the container is removed.
#[test]
fn runs_the_container_and_passes_its_exit_code_through() {
    require_engine();
    let image = TestImage::busybox(
        "op-test-run-exit",
        &[
            "sh",
            "-c",
            "echo greeting=$GREETING port=$PORT; echo oops >&2; exit 3",
        ],
        &[],
    );
    let ctx = repository_for(
        &image,
        Some("contexts:\n  web:\n    env: {GREETING: hello}\n"),
    );
    let run = ctx.op(&["run", "web"]);
    run.failure(3);
    assert_eq!(run.stdout, "greeting=hello port=8080\n", "{}", run.report());
    assert!(run.stderr.contains("oops\n"), "{}", run.report());
    assert!(
        run.stderr
            .contains(&format!("Running {} as container op-run-", image.name)),
        "{}",
        run.report()
    );
    let label = "io.octopilot.op.context=web";
    let left = containers_of(label, &image.name);
    assert!(left.is_empty(), "op run left containers behind: {left:?}");
}

/// A server keeps running until Ctrl-C; op publishes its port on a free host port, says where,
/// and on SIGINT stops and removes the container and exits 130.
#[test]
fn serves_until_interrupted() {
    require_engine();
    let image = TestImage::busybox(
        "op-test-run-http",
        // As PID 1, httpd would ignore the SIGTERM op sends when it stops the container.
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
        ],
        &[("/www/index.html", "hello from op run\n")],
    );
    let ctx = repository_for(&image, None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_op"))
        .args(["run", "web"])
        .current_dir(ctx.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", ctx.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let port: u16 = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "op run never said where it listens; stderr so far:\n{}",
                    seen.join("\n")
                )
            });
        if let Some(rest) = line.strip_prefix("Mapped to http://localhost:") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        seen.push(line);
    };
    assert!((8080..8180).contains(&port), "{port}");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(response) = http_get(addr, "/index.html") {
            answer = Some(response);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = answer.expect("the container answers on the published port");
    assert_eq!((status, body.as_str()), (200, "hello from op run\n"));

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "op exits 130 after Ctrl-C");
    let left = containers_of("io.octopilot.op.kind=run", &image.name);
    assert!(left.is_empty(), "op run left containers behind: {left:?}");
    assert!(
        http_get(addr, "/").is_err(),
        "nothing listens once op stopped"
    );
}
