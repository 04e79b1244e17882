//! Remote engines, as docker CLI users set them (`tests/it/common/remote.rs`): `DOCKER_HOST=tcp://`
//! with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`, `DOCKER_HOST=ssh://user@host:port`, and docker
//! contexts (`docker context create` / `use`, `DOCKER_CONTEXT`). On each: a build, a run, and the
//! failures users meet, each a clear error that leaves nothing behind.

use crate::common::TestContext;
use crate::common::cnb::{Lifecycle, Stack, leftovers, verify_published};
use crate::common::docker::{TestImage, docker_command};
use crate::common::remote::{Pki, SshEngine, TlsEngine, path_with};

/// `op build-push` of the `procfile` app with `env`: it publishes what `build_result.json` says.
fn build_on(stack: &Stack, env: &[(&str, String)]) {
    let mut context = crate::build_push::apps(stack);
    for (key, value) in env {
        context = context.env(key, value);
    }
    let repo = stack.registry.addr();
    let run = context.op(&["build-push", "--repo", &repo, "--artifact", "procfile"]);
    run.success();
    let tag = run.stdout.trim().to_string();
    let (reference, digest) = tag.split_once('@').unwrap();
    assert_eq!(verify_published(reference), digest, "{}", run.report());
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

/// `op run` of a busybox image that exits 3 with `env`: the exit code comes through.
fn run_on(env: &[(&str, String)]) {
    let image = TestImage::busybox(
        "op-test-remote-run",
        &["sh", "-c", "echo remote; exit 3"],
        &[],
    );
    let mut context = crate::run::repository_for(&image, None);
    for (key, value) in env {
        context = context.env(key, value);
    }
    let run = context.op(&["run", "web"]);
    run.failure(3);
    assert_eq!(run.stdout, "remote\n", "{}", run.report());
}

/// `op run` with `env` fails before it creates anything: the error starts with `error`, and the
/// hint has `hint`.
fn fails_clearly(env: &[(&str, String)], error: &str, hint: &str) {
    let image = TestImage::busybox("op-test-remote-fail", &["true"], &[]);
    let mut context = crate::run::repository_for(&image, None);
    for (key, value) in env {
        context = context.env(key, value);
    }
    let run = context.op(&["run", "web"]);
    run.failure(1);
    assert!(
        run.stderr.starts_with(&format!("error: {error}")),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .lines()
            .any(|line| line.starts_with("hint: ") && line.contains(hint)),
        "the hint says `{hint}`\n{}",
        run.report()
    );
    let created =
        crate::common::docker::containers_of("io.octopilot.op.context=web", &image.name).len();
    assert_eq!(created, 0, "nothing was created\n{}", run.report());
}

/// TLS: a build and a run; then a client certificate of another CA (the engine refuses it), an
/// engine certificate op does not trust, and a port where nothing listens.
#[test]
fn an_engine_over_tls_builds_runs_and_fails_clearly() {
    let engine = TlsEngine::start();
    let env = engine.env(&engine.pki.client());
    let stack = Stack::start(Lifecycle::Op);
    build_on(&stack, &env);
    run_on(&env);
    let version = TestContext::new()
        .env("DOCKER_HOST", &engine.host())
        .env("DOCKER_TLS_VERIFY", "1")
        .env(
            "DOCKER_CERT_PATH",
            &engine.pki.client().display().to_string(),
        )
        .op(&["version", "-v"]);
    version.success();
    assert!(
        version.stdout.contains(&format!("at {}", engine.host())),
        "{}",
        version.report()
    );

    let stranger = Pki::new("stranger");
    // The stranger's CA does not know the engine's certificate, and the engine does not know
    // the stranger's client certificate.
    fails_clearly(
        &engine.env(&stranger.client()),
        &format!(
            "No Docker Engine answers at `{}` (DOCKER_HOST)",
            engine.host()
        ),
        "the TLS handshake failed",
    );
    // The right CA, a client certificate the engine does not accept.
    let mixed = tempfile::tempdir().unwrap();
    fs_err::copy(
        engine.pki.client().join("ca.pem"),
        mixed.path().join("ca.pem"),
    )
    .unwrap();
    for file in ["cert.pem", "key.pem"] {
        fs_err::copy(stranger.client().join(file), mixed.path().join(file)).unwrap();
    }
    fails_clearly(
        &engine.env(mixed.path()),
        &format!("No Docker Engine answers at `{}`", engine.host()),
        "the engine must accept cert.pem and key.pem",
    );
    let missing = tempfile::tempdir().unwrap();
    fails_clearly(
        &engine.env(missing.path()),
        &format!(
            "DOCKER_TLS_VERIFY is set, but `{}` is missing",
            missing.path().join("ca.pem").display()
        ),
        "put ca.pem, cert.pem and key.pem in the directory DOCKER_CERT_PATH names",
    );
    // Port 1 (tcpmux): nothing listens there, and no other test can take it.
    let mut refused = engine.env(&engine.pki.client());
    refused[0].1 = "tcp://127.0.0.1:1".to_string();
    fails_clearly(
        &refused,
        "No Docker Engine answers at `tcp://127.0.0.1:1` (DOCKER_HOST)",
        "is the engine DOCKER_HOST names running?",
    );
}

/// ssh: a build and a run through `docker system dial-stdio`; then an unknown host key, a key
/// the server does not accept, and a port where nothing listens.
#[test]
fn an_engine_over_ssh_builds_runs_and_fails_clearly() {
    let engine = SshEngine::start();
    let good = [
        ("DOCKER_HOST", engine.host()),
        (
            "PATH",
            path_with(&engine.ssh_wrapper("client_key", "known_hosts")),
        ),
    ];
    let stack = Stack::start(Lifecycle::Op);
    build_on(&stack, &good);
    run_on(&good);

    fails_clearly(
        &[
            ("DOCKER_HOST", engine.host()),
            (
                "PATH",
                path_with(&engine.ssh_wrapper("client_key", "no_known_hosts")),
            ),
        ],
        &format!(
            "Failed to reach the Docker Engine at `{}` over ssh: ",
            engine.host()
        ),
        "op never accepts a host key it does not know",
    );
    fails_clearly(
        &[
            ("DOCKER_HOST", engine.host()),
            (
                "PATH",
                path_with(&engine.ssh_wrapper("stranger_key", "known_hosts")),
            ),
        ],
        "Failed to reach the Docker Engine at ",
        "authorized_keys",
    );
    // Port 1 (tcpmux): nothing listens there, and no other test can take it.
    let refused = "ssh://root@127.0.0.1:1".to_string();
    fails_clearly(
        &[
            ("DOCKER_HOST", refused.clone()),
            (
                "PATH",
                path_with(&engine.ssh_wrapper("client_key", "known_hosts")),
            ),
        ],
        &format!("Failed to reach the Docker Engine at `{refused}` over ssh: "),
        "is sshd running there",
    );
}

/// Docker contexts: `docker context create` with the TLS engine's endpoint and certificates,
/// `docker context use` (config.json's currentContext), then `DOCKER_CONTEXT`; an unknown
/// context is a clear error, and `DOCKER_HOST` wins over a context, as for the docker CLI.
#[test]
fn docker_contexts_choose_the_engine() {
    let engine = TlsEngine::start();
    let client = engine.pki.client();
    let context = TestContext::new();
    let config = context.home().join(".docker");
    let docker_cli = |args: &[&str]| {
        let out = docker_command()
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", &config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    docker_cli(&[
        "context",
        "create",
        "remote",
        "--docker",
        &format!(
            "host={},ca={},cert={},key={}",
            engine.host(),
            client.join("ca.pem").display(),
            client.join("cert.pem").display(),
            client.join("key.pem").display()
        ),
    ]);
    docker_cli(&["context", "use", "remote"]);
    let version = context.op(&["version", "-v"]);
    version.success();
    assert!(
        version.stdout.contains(&format!("at {}", engine.host())),
        "the context docker context use chose\n{}",
        version.report()
    );
    let stack = Stack::start(Lifecycle::Op);
    let home = context.home().display().to_string();
    build_on(&stack, &[("HOME", home.clone())]);

    docker_cli(&["context", "use", "default"]);
    run_on(&[("HOME", home.clone()), ("DOCKER_CONTEXT", "remote".into())]);
    fails_clearly(
        &[("HOME", home.clone()), ("DOCKER_CONTEXT", "nowhere".into())],
        "Docker context `nowhere` (from DOCKER_CONTEXT) does not exist",
        "`docker context ls` lists the contexts",
    );
    fails_clearly(
        &[
            ("HOME", home),
            ("DOCKER_CONTEXT", "remote".into()),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock".into()),
        ],
        "No Docker Engine answers at `unix:///nonexistent/docker.sock` (DOCKER_HOST)",
        "is the engine DOCKER_HOST names running?",
    );
}

/// An engine on another machine (here: op in a UTS namespace whose host name is not the
/// engine's) cannot reach a registry on op's loopback: op says so before building anything;
/// with `--network` the user takes the creator's network into their own hands, and op builds.
#[test]
fn a_loopback_registry_with_an_engine_elsewhere_is_refused_before_building() {
    let stack = Stack::start(Lifecycle::Op);
    let context = crate::build_push::apps(&stack);
    let repo = stack.registry.addr();
    let elsewhere = [
        "unshare",
        "--uts",
        "--",
        "sh",
        "-c",
        "hostname op-test-elsewhere && exec \"$0\" \"$@\"",
    ];
    let args = ["build-push", "--repo", &repo, "--artifact", "procfile"];
    let refused = context.op_wrapped(&elsewhere, &args);
    refused.failure(1);
    assert!(
        refused.stderr.starts_with(&format!(
            "error: The Docker Engine at `unix:///var/run/docker.sock` runs on `{}`, not on this machine (`op-test-elsewhere`): its build containers cannot reach `{repo}`, which is on this machine's loopback",
            this_machine()
        )),
        "{}",
        refused.report()
    );
    assert!(
        refused
            .stderr
            .contains("hint: use a registry both machines reach")
    );
    assert!(!context.path().join("build_result.json").exists());
    assert_eq!(leftovers(&repo), Vec::<String>::new());
    assert_eq!(
        stack.registry.get("/v2/procfile/tags/list").0,
        404,
        "nothing was built"
    );
    let mut with_network = args.to_vec();
    with_network.extend(["--network", "host"]);
    context.op_wrapped(&elsewhere, &with_network).success();
}

fn this_machine() -> String {
    let out = std::process::Command::new("uname")
        .arg("-n")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
