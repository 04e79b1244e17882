//! `op watch-deployment` against a real control plane (etcd, the apiserver, the
//! controller-manager and the scheduler of `scripts/kube-tools`, a kwok node or a real one:
//! `common::kube::TestCluster`): rollouts seen to their end or failing as they fail, rights,
//! kubeconfig files; and what it refuses before it reaches a cluster, and what a cluster it
//! cannot use says.

use std::sync::Arc;

use crate::common::TestContext;
use crate::common::kube::{ADMIN_CONTEXT, TestCluster, kube_tools};
use crate::common::kubelet::busybox_image;
use crate::common::registry::Registry;
use crate::common::tls::{SigningKey, TestCa};
use crate::common::token::TokenServer;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A directory with a build result of one image, and the environment's repository set.
fn watching() -> TestContext {
    let context = TestContext::new().env("GOOGLE_GKE_IMAGE_REPOSITORY", "localhost:5001/dev");
    let entry = serde_json::json!({"imageName": "web", "tag": format!("localhost:5001/dev/web:v1@{DIGEST}")});
    context.write(
        "build_result.json",
        &serde_json::json!({ "builds": [entry] }).to_string(),
    );
    context
}

/// A kubeconfig of one cluster at `server`, trusting the PEM `ca`.
fn kubeconfig(context: &TestContext, server: &str, ca: &std::path::Path) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(fs_err::read(ca).unwrap());
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\nusers:\n- name: test\n  user:\n    token: not-a-real-token\n"
    );
    context.write("kubeconfig", &text);
    "kubeconfig".into()
}

const WATCH: [&str; 5] = [
    "watch-deployment",
    "--component",
    "web",
    "--environment",
    "dev",
];

/// Upstream's error when no repository is set for the environment; a missing build result; no
/// Kubernetes configuration at all: each a clear error with what to do.
#[test]
fn what_op_needs_before_a_cluster_is_asked_for_clearly() {
    let context = TestContext::new();
    let run = context.op(&WATCH);
    run.failure(1);
    assert!(
        run.stderr
            .contains("error: No destination repository is set for environment `dev`")
            && run.stderr.contains(
                "hint: set $GOOGLE_GKE_IMAGE_REPOSITORY or $WATCH_DESTINATION_REPOSITORY"
            ),
        "{}",
        run.report()
    );

    let context = TestContext::new().env("WATCH_DESTINATION_REPOSITORY", "localhost:5001/dev");
    let run = context.op(&WATCH);
    run.failure(1);
    assert!(run.stderr.contains("build_result.json"), "{}", run.report());

    // On GitHub Actions, GitHub's error annotation too, as upstream's Python wrote it.
    let run = TestContext::new().env("GITHUB_ACTIONS", "true").op(&WATCH);
    run.failure(1);
    assert!(
        run.stderr
            .contains("::error ::No destination repository is set for environment `dev`\n"),
        "{}",
        run.report()
    );

    let run = watching().op(&WATCH);
    run.failure(1);
    assert!(
        run.stderr.contains("error: No Kubernetes configuration")
            && run
                .stderr
                .contains("hint: give one with --kubeconfig or KUBECONFIG"),
        "{}",
        run.report()
    );
}

/// A cluster op cannot reach, and one whose certificate the kubeconfig's CA did not sign: each
/// names the server and says what to check, without waiting out the timeouts.
#[test]
fn an_unreachable_cluster_and_a_wrong_ca_are_clear_errors() {
    let context = watching();
    let ca = TestCa::new();
    let path = kubeconfig(&context, "https://127.0.0.1:1", &ca.cert());
    let run = context.op(&[&WATCH[..], &["--kubeconfig", &path]].concat());
    run.failure(1);
    assert!(
        run.stderr.contains("https://127.0.0.1:1")
            && run
                .stderr
                .contains("hint: check that https://127.0.0.1:1 is reachable"),
        "{}",
        run.report()
    );

    let run = context.op(&[&WATCH[..], &["--kubeconfig", &path, "--context", "prod"]].concat());
    run.failure(1);
    assert!(
        run.stderr
            .contains("error: The Kubernetes configuration `kubeconfig` has no context `prod`")
            && run.stderr.contains("hint: its contexts are: test"),
        "{}",
        run.report()
    );

    // An HTTPS server of another CA (a registry of the test's own) stands in for the cluster.
    let other = TestCa::new();
    let key = Arc::new(SigningKey::new());
    let issuer = TokenServer::start(Arc::clone(&key), &other.server("issuer"));
    let server = Registry::start_secure(&other.server("server"), &issuer, &key);
    let url = format!("https://{}", server.addr());
    let path = kubeconfig(&context, &url, &ca.cert());
    let run = context.op(&[&WATCH[..], &["--kubeconfig", &path]].concat());
    run.failure(1);
    assert!(
        run.stderr.contains(&url)
            && run
                .stderr
                .contains("certificate is not signed by the CA of the kubeconfig"),
        "{}",
        run.report()
    );
}

/// A Deployment named `web` of `replicas`, its pod template's containers `(name, image)`
/// (and `extra` lines of its spec, indented as spec fields).
fn deployment(replicas: u32, containers: &[(&str, &str)], extra: &str) -> String {
    use std::fmt::Write as _;
    let mut list = String::new();
    for (name, image) in containers {
        let _ = write!(list, "\n      - name: {name}\n        image: {image}");
    }
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: {replicas}\n{extra}  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:{list}\n"
    )
}

/// `kubectl rollout status` of `web` succeeds within a minute.
#[track_caller]
fn rolled_out(cluster: &TestCluster) {
    let out = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
}

/// op's watch of `web` in the background, with `extra` flags.
fn spawn_watch(
    context: &TestContext,
    kubeconfig: &std::path::Path,
    extra: &[&str],
) -> std::process::Child {
    let path = kubeconfig.display().to_string();
    let mut args = WATCH.to_vec();
    args.extend(["--kubeconfig", &path]);
    args.extend(extra);
    context
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The exit code, stdout and stderr of a spawned op.
fn finished(child: std::process::Child) -> (Option<i32>, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The build's digest reaches a Deployment of two containers (a sidecar first, as upstream only
/// looked at the first) while op watches: op sees it, waits for the rollout (kwok's node makes
/// the new pods ready) and ends with the outcome; with no Flux in the cluster it says so once. On
/// a terminal, the replicas are one live line.
#[test]
fn a_rollout_to_the_built_digest_is_watched_to_its_end() {
    let cluster = TestCluster::start();
    let context = watching();
    let old = "localhost:5001/dev/web:v0";
    let applied = cluster.apply(&deployment(
        2,
        &[("sidecar", "localhost:5001/proxy:1"), ("web", old)],
        "",
    ));
    assert!(applied.status.success(), "{applied:?}");
    rolled_out(&cluster);

    let watch = spawn_watch(
        &context,
        &cluster.admin_kubeconfig(),
        &["-o", "json", "--poll-timeout", "60s", "--timeout", "60s"],
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let image = format!("localhost:5001/dev/web:v1@{DIGEST}");
    let set = cluster.kubectl(&["set", "image", "deployment/web", &format!("web={image}")]);
    assert!(set.status.success(), "{set:?}");
    let (code, stdout, stderr) = finished(watch);
    assert_eq!(code, Some(0), "{stdout}{stderr}{}", cluster.logs());
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["image"]["digest"], DIGEST, "{outcome}");
    assert_eq!(outcome["available"], 2, "{outcome}");
    assert_eq!(outcome["reconciled"], false, "{outcome}");
    assert!(
        stderr.contains("Flux's HelmRelease is not installed in this cluster")
            && stderr.contains(&format!("deployment default/web runs {image}")),
        "{stderr}"
    );

    // On a terminal: one live line of the replicas, redrawn in place, the findings above it,
    // and the outcome; on a `dumb` one (an editor's shell), lines, as in a log.
    for term in ["xterm-256color", "dumb"] {
        let set = cluster.kubectl(&["set", "image", "deployment/web", &format!("web={old}")]);
        assert!(set.status.success(), "{set:?}");
        rolled_out(&cluster);
        let watch = spawn_watch_on_a_terminal(&context, &cluster.admin_kubeconfig(), term);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let set = cluster.kubectl(&["set", "image", "deployment/web", &format!("web={image}")]);
        assert!(set.status.success(), "{set:?}");
        let (code, terminal, _) = finished(watch);
        assert_eq!(code, Some(0), "{terminal}");
        assert!(
            terminal.contains(&format!("deployment default/web runs {image}"))
                && terminal.contains("Flux's HelmRelease is not installed in this cluster")
                && terminal.contains(&format!(
                    "deployment default/web rolled out {image} (2 of 2 replicas available)"
                )),
            "TERM={term}: {terminal:?}"
        );
        let live = terminal.contains("\r\u{1b}[2K");
        assert_eq!(live, term != "dumb", "TERM={term}: {terminal:?}");
        assert!(
            terminal.contains(" updated, ") && terminal.contains(" available: "),
            "TERM={term}: {terminal:?}"
        );
    }
}

/// op's watch of `web` with a terminal of type `term` for its output: what the terminal showed
/// is the child's stdout.
fn spawn_watch_on_a_terminal(
    context: &TestContext,
    kubeconfig: &std::path::Path,
    term: &str,
) -> std::process::Child {
    let path = kubeconfig.display().to_string();
    let mut args = WATCH.to_vec();
    args.extend(["--kubeconfig", &path, "--poll-timeout", "60s"]);
    context
        .terminal_command(&args, term)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The apiserver restarts while op waits (its watch is cut, its address refuses connections
/// for a while, and the restarted server's history starts after the version op watched from):
/// op says so, watches again with growing pauses, lists again when told the version expired
/// (410), and sees the rollout.
#[test]
fn a_watch_outlives_a_restart_of_the_apiserver() {
    let mut cluster = TestCluster::start();
    let context = watching();
    cluster.apply(&deployment(1, &[("web", "localhost:5001/dev/web:v0")], ""));
    rolled_out(&cluster);
    let watch = spawn_watch(
        &context,
        &cluster.admin_kubeconfig(),
        &["-v", "-o", "json", "--poll-timeout", "90s"],
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Writes after the version op watches from, which the restarted server's cache starts after.
    for n in 0..3 {
        let made = cluster.kubectl(&["create", "configmap", &format!("history-{n}")]);
        assert!(made.status.success(), "{made:?}");
    }
    cluster.restart_apiserver(std::time::Duration::from_secs(2));
    let image = format!("localhost:5001/dev/web:v1@{DIGEST}");
    let set = cluster.kubectl(&["set", "image", "deployment/web", &format!("web={image}")]);
    assert!(set.status.success(), "{set:?}");
    let (code, stdout, stderr) = finished(watch);
    assert_eq!(code, Some(0), "{stderr}{}", cluster.logs());
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["image"]["digest"], DIGEST, "{outcome}");
    assert!(
        stderr.contains("the watch of deployment default/web was interrupted (")
            && stderr.contains("watching again in 250 ms")
            && stderr.contains("expired (410): listing it again"),
        "{stderr}"
    );
}

/// A Deployment that never runs the image fails at --poll-timeout, saying what it runs; one
/// whose new pods cannot be placed fails when its progress deadline passes, naming it; one
/// deleted while op watches fails at once.
#[test]
fn rollouts_that_do_not_happen_fail_with_what_was_last_seen() {
    let cluster = TestCluster::start();
    let context = watching();
    let kubeconfig = cluster.admin_kubeconfig();
    let applied = cluster.apply(&deployment(1, &[("web", "localhost:5001/dev/web:v0")], ""));
    assert!(applied.status.success(), "{applied:?}");
    rolled_out(&cluster);
    let watch = spawn_watch(&context, &kubeconfig, &["--poll-timeout", "2s"]);
    let (code, _, stderr) = finished(watch);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: deployment default/web does not run localhost:5001/dev/web:v1@{DIGEST} after 2s (--poll-timeout); last seen: images localhost:5001/dev/web:v0")),
        "{stderr}"
    );

    // The new pods need a node of an architecture the cluster does not have.
    let stuck = deployment(
        1,
        &[("web", &format!("localhost:5001/dev/web:v1@{DIGEST}"))],
        "  progressDeadlineSeconds: 3\n",
    )
    .replace(
        "    spec:\n      containers:",
        "    spec:\n      nodeSelector:\n        kubernetes.io/arch: s390x\n      containers:",
    );
    let applied = cluster.apply(&stuck);
    assert!(applied.status.success(), "{applied:?}");
    let watch = spawn_watch(&context, &kubeconfig, &["--timeout", "60s"]);
    let (code, _, stderr) = finished(watch);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: deployment default/web exceeded its progress deadline (progressDeadlineSeconds 3s)"),
        "{stderr}"
    );

    // Back to another image; op sees it (waiting for the build's) before it goes.
    let deleted = cluster.kubectl(&["delete", "deployment", "web"]);
    assert!(deleted.status.success(), "{deleted:?}");
    let applied = cluster.apply(&deployment(1, &[("web", "localhost:5001/dev/web:v0")], ""));
    assert!(applied.status.success(), "{applied:?}");
    let watch = spawn_watch(&context, &kubeconfig, &["--poll-timeout", "60s"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let deleted = cluster.kubectl(&["delete", "deployment", "web", "--wait=false"]);
    assert!(deleted.status.success(), "{deleted:?}");
    let (code, _, stderr) = finished(watch);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: deployment default/web was deleted while op watched it"),
        "{stderr}"
    );
}

/// An account that may not read deployments is refused with the API's 403, named, and a hint
/// about the rights op needs; several kubeconfig files (KUBECONFIG) are merged as kubectl merges
/// them, and --context picks the admin's from the second; a build result without a digest is
/// matched by its tag.
#[test]
fn rights_kubeconfig_files_and_tags() {
    let cluster = TestCluster::start();
    let applied = cluster.apply(&deployment(1, &[("web", "localhost:5001/dev/web:v2")], ""));
    assert!(applied.status.success(), "{applied:?}");
    rolled_out(&cluster);
    let context = watching();
    context.write(
        "build_result.json",
        &serde_json::json!({"builds": [{"imageName": "web", "tag": "localhost:5001/dev/web:v2"}]})
            .to_string(),
    );
    let limited = cluster.limited_kubeconfig();
    let run = context.op(&[
        &WATCH[..],
        &["--kubeconfig", &limited.display().to_string()],
    ]
    .concat());
    run.failure(1);
    assert!(
        run.stderr
            .contains("refused to list deployment default/web")
            && run.stderr.contains("(403)")
            && run
                .stderr
                .contains("hint: the account of the kubeconfig may not do this"),
        "{}",
        run.report()
    );

    // A token the cluster does not know (an expired one, say): 401, and the hint to log in.
    let stale = context.path().join("stale-kubeconfig");
    let text = fs_err::read_to_string(&limited).unwrap();
    let without_certificate: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.trim_start().starts_with("client-certificate-data")
                && !l.trim_start().starts_with("client-key-data")
        })
        .collect();
    let without_certificate = without_certificate.join("\n") + "\n";
    let user = without_certificate.replace(
        "  user:\n",
        "  user:\n    token: expired-or-unknown-token\n",
    );
    fs_err::write(&stale, user).unwrap();
    let run = context.op(&[&WATCH[..], &["--kubeconfig", &stale.display().to_string()]].concat());
    run.failure(1);
    assert!(
        run.stderr.contains("(401)")
            && run
                .stderr
                .contains("hint: the cluster did not accept the credentials of the kubeconfig"),
        "{}",
        run.report()
    );

    let files = format!(
        "{}:{}",
        limited.display(),
        cluster.admin_kubeconfig().display()
    );
    let run = context
        .env("KUBECONFIG", &files)
        .op(&[&WATCH[..], &["--context", ADMIN_CONTEXT]].concat());
    run.success();
    assert_eq!(
        run.stdout,
        "deployment default/web rolled out localhost:5001/dev/web:v2 (1 of 1 replicas available)\n",
        "{}",
        run.report()
    );
}

/// Flux's `HelmRelease` CRD (scripts/kube-tools makes it from helm-controller's api module), in
/// `cluster`, and a `HelmRelease` `web` (suspended or not).
fn with_helm_release(cluster: &TestCluster, suspended: bool) {
    let crd = kube_tools().join("crds/helm.toolkit.fluxcd.io_helmreleases.yaml");
    let crd = fs_err::read_to_string(crd).unwrap();
    cluster.apply(&crd);
    let established = cluster.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout",
        "60s",
        "crd/helmreleases.helm.toolkit.fluxcd.io",
    ]);
    assert!(established.status.success(), "{established:?}");
    cluster.apply(&format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n  namespace: default\nspec:\n  interval: 5m\n  suspend: {suspended}\n  chart:\n    spec:\n      chart: web\n      sourceRef:\n        kind: HelmRepository\n        name: charts\n"
    ));
}

/// Plays helm-controller's part, the only simulated part of these tests: when the reconcile
/// annotation appears on `HelmRelease` `web`, it marks the request handled with the conditions
/// `conditions` (JSON), as helm-controller would after an upgrade. Returns the token it saw.
fn helm_controller(cluster: &TestCluster, conditions: &serde_json::Value) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let token = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "op asked for no reconcile"
        );
        let out = cluster.kubectl(&[
            "get",
            "helmrelease",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.reconcile\\.fluxcd\\.io/requestedAt}",
        ]);
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !token.is_empty() {
            break token;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let status = serde_json::json!({"status": {
        "lastHandledReconcileAt": token,
        "observedGeneration": 1,
        "conditions": conditions,
    }});
    let patched = cluster.kubectl(&[
        "patch",
        "helmrelease",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    assert!(patched.status.success(), "{patched:?}");
    token
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2026-12-07T00:00:00Z",
    })
}

/// With Flux in the cluster, op asks for a reconcile of the `HelmRelease` named after the
/// component (the annotation the flux CLI sets, an RFC 3339 token), waits until Flux handled it
/// and the release is Ready, then watches the rollout; a stalled release and a suspended one
/// fail, naming the release and what Flux said.
#[test]
fn a_helm_release_is_reconciled_before_the_rollout_is_watched() {
    let cluster = TestCluster::start();
    let context = watching();
    let kubeconfig = cluster.admin_kubeconfig();
    with_helm_release(&cluster, false);
    cluster.apply(&deployment(
        1,
        &[("web", &format!("localhost:5001/dev/web:v1@{DIGEST}"))],
        "",
    ));
    rolled_out(&cluster);

    let watch = spawn_watch(&context, &kubeconfig, &["-o", "json"]);
    let ready = [condition(
        "Ready",
        "True",
        "UpgradeSucceeded",
        "Helm upgrade succeeded",
    )];
    let token = helm_controller(&cluster, &serde_json::json!(ready));
    let (code, stdout, stderr) = finished(watch);
    assert_eq!(code, Some(0), "{stderr}");
    let rfc3339 = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$").unwrap();
    assert!(rfc3339.is_match(&token), "an RFC 3339 token: {token}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["reconciled"], true, "{outcome}");
    assert!(
        stderr.contains("asked Flux to reconcile helmrelease default/web")
            && stderr.contains("helmrelease default/web is ready"),
        "{stderr}"
    );

    let watch = spawn_watch(&context, &kubeconfig, &[]);
    let stalled = [
        condition("Ready", "False", "InstallFailed", "chart web not found"),
        condition("Stalled", "True", "InstallFailed", "chart web not found"),
    ];
    helm_controller(&cluster, &serde_json::json!(stalled));
    let (code, _, stderr) = finished(watch);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: helmrelease default/web is stalled: InstallFailed: chart web not found"
        ),
        "{stderr}"
    );

    with_helm_release(&cluster, true);
    let run = context.op(&[
        &WATCH[..],
        &["--kubeconfig", &kubeconfig.display().to_string()],
    ]
    .concat());
    run.failure(1);
    assert!(
        run.stderr
            .contains("error: helmrelease default/web is suspended")
            && run
                .stderr
                .contains("hint: resume it (`flux resume helmrelease web -n default`)"),
        "{}",
        run.report()
    );

    // Flux is installed, but no release is named after the component: nothing to reconcile,
    // said once, and the rollout is watched.
    let deleted = cluster.kubectl(&["delete", "helmrelease", "web"]);
    assert!(deleted.status.success(), "{deleted:?}");
    let run = context.op(&[
        &WATCH[..],
        &["--kubeconfig", &kubeconfig.display().to_string()],
    ]
    .concat());
    run.success();
    assert_eq!(
        run.stderr
            .matches("no helmrelease default/web: no reconcile asked for")
            .count(),
        1,
        "{}",
        run.report()
    );
}

/// A pod that runs this op (the test's binary and the machine's C library, mounted from the
/// host) as `op watch-deployment -o json` with the build result in `result_dir`, on the host's
/// network (the apiserver is on loopback: its address replaces the `kubernetes` service's,
/// which needs a kube-proxy the test cluster has not).
fn in_cluster_watcher(
    image: &str,
    apiserver_port: &str,
    repository: &str,
    result_dir: &std::path::Path,
) -> String {
    let op = env!("CARGO_BIN_EXE_op");
    let result_dir = result_dir.display();
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: watcher
  namespace: default
spec:
  restartPolicy: Never
  hostNetwork: true
  containers:
  - name: op
    image: {image}
    command: [/usr/local/bin/op, watch-deployment, --component, web, --environment, dev,
      --build-result, /result/build_result.json, -o, json, --timeout, 60s]
    env:
    - name: KUBERNETES_SERVICE_HOST
      value: 127.0.0.1
    - name: KUBERNETES_SERVICE_PORT
      value: \"{apiserver_port}\"
    - name: GOOGLE_GKE_IMAGE_REPOSITORY
      value: {repository}
    - name: HOME
      value: /home/op
    volumeMounts:
    - {{name: op, mountPath: /usr/local/bin/op, readOnly: true}}
    - {{name: libs, mountPath: /lib/x86_64-linux-gnu, readOnly: true}}
    - {{name: lib64, mountPath: /lib64, readOnly: true}}
    - {{name: result, mountPath: /result, readOnly: true}}
    - {{name: home, mountPath: /home/op}}
  volumes:
  - {{name: op, hostPath: {{path: {op}, type: File}}}}
  - {{name: libs, hostPath: {{path: /lib/x86_64-linux-gnu, type: Directory}}}}
  - {{name: lib64, hostPath: {{path: /lib64, type: Directory}}}}
  - {{name: result, hostPath: {{path: {result_dir}, type: Directory}}}}
  - {{name: home, emptyDir: {{}}}}
"
    )
}

/// Runs op in a pod of the cluster (`in_cluster_watcher`), configured by nothing but the pod's
/// service account (in-cluster: its token and CA, `KUBERNETES_SERVICE_HOST`/`PORT`), which a Role
/// allows to read deployments; the outcome it printed.
fn op_in_a_pod(
    cluster: &TestCluster,
    image: &str,
    repository: &str,
    result_dir: &std::path::Path,
) -> serde_json::Value {
    cluster.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: watch\n  \
         namespace: default\nrules:\n- apiGroups: [apps]\n  resources: [deployments]\n  \
         verbs: [get, list, watch]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: \
         RoleBinding\nmetadata:\n  name: watch\n  namespace: default\nroleRef:\n  \
         apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: watch\nsubjects:\n- kind: \
         ServiceAccount\n  name: default\n  namespace: default\n",
    );
    let port = cluster.server().rsplit(':').next().unwrap().to_string();
    cluster.apply(&in_cluster_watcher(image, &port, repository, result_dir));
    let done = cluster.kubectl(&[
        "wait",
        "pod/watcher",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=60s",
    ]);
    let logs = cluster.kubectl(&["logs", "watcher"]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        done.status.success(),
        "op in a pod: {}\n{logs}\n{}",
        String::from_utf8_lossy(&done.stderr),
        String::from_utf8_lossy(
            &cluster
                .kubectl(&["get", "pod", "watcher", "-o", "yaml"])
                .stdout
        )
    );
    // Its log holds both streams: the outcome (stdout) is the JSON line.
    let outcome = logs
        .lines()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON outcome in the pod's log:\n{logs}"));
    serde_json::from_str(outcome).unwrap()
}

/// Every pod of `web` that is not going away runs, ready, the image of `digest` in its `web`
/// container, which logged `log`.
#[track_caller]
fn pods_run(cluster: &TestCluster, digest: &str, log: &str) {
    let pods = cluster.kubectl(&["get", "pods", "-l", "app=web", "-o", "json"]);
    let pods: serde_json::Value = serde_json::from_slice(&pods.stdout).unwrap();
    let running: Vec<&serde_json::Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert_eq!(running.len(), 2, "{pods:#}");
    for pod in running {
        assert_eq!(pod["status"]["phase"], "Running", "{pod:#}");
        let web = pod["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|status| status["name"] == "web")
            .unwrap();
        assert!(
            web["imageID"].as_str().unwrap().ends_with(digest) && web["ready"] == true,
            "{web:#}"
        );
        let name = pod["metadata"]["name"].as_str().unwrap();
        let logs = cluster.kubectl(&["logs", name, "-c", "web"]);
        assert_eq!(String::from_utf8_lossy(&logs.stdout).trim(), log);
    }
}

/// On a real node (the kubelet, containerd, runc): the build's image (a build result entry of
/// its digest alone), pushed to the cluster's loopback registry, reaches a Deployment whose pods
/// have an init container, a sidecar and the app; op waits until the new pods really run it
/// (their image ids are the build's digest when op returns), and so does op in a pod of the
/// cluster (in-cluster configuration); a rollout whose pods never pass their readiness probe
/// fails at its progress deadline, named.
#[test]
fn on_a_real_node_the_pods_run_the_build_or_the_deadline_is_named() {
    let cluster = TestCluster::start_with_kubelet();
    let registry = cluster.registry().addr();
    let repository = format!("{registry}/dev");
    let app = |version: &str| {
        let image = format!("{repository}/web:{version}");
        let script = format!("echo web {version}; exec /bin/busybox sleep inf");
        let digest = busybox_image(
            cluster.dir(),
            &image,
            &["/bin/busybox", "sh", "-c", &script],
            &[],
        );
        (image, digest)
    };
    let (v1, _) = app("v1");
    let (sidecar, _) = app("sidecar");
    let (v2, digest) = app("v2");
    let with_init =
        "    spec:\n      initContainers:\n      - name: init\n        image: SIDECAR\n        \
                     command: [\"/bin/busybox\", \"true\"]\n      containers:"
            .replace("SIDECAR", &sidecar);
    cluster.apply(
        &deployment(2, &[("sidecar", &sidecar), ("web", &v1)], "")
            .replace("    spec:\n      containers:", &with_init),
    );
    rolled_out(&cluster);

    let context = TestContext::new().env("GOOGLE_GKE_IMAGE_REPOSITORY", &repository);
    // A build result entry of a digest alone; the Deployment names the tag and the digest.
    let built = format!("{v2}@{digest}");
    context.write(
        "build_result.json",
        &serde_json::json!({"builds": [{"imageName": "web", "tag": format!("{repository}/web@{digest}")}]})
            .to_string(),
    );
    let watch = spawn_watch(
        &context,
        &cluster.admin_kubeconfig(),
        &["-o", "json", "--poll-timeout", "60s", "--timeout", "120s"],
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    let set = cluster.kubectl(&["set", "image", "deployment/web", &format!("web={built}")]);
    assert!(set.status.success(), "{set:?}");
    let (code, stdout, stderr) = finished(watch);
    assert_eq!(code, Some(0), "{stdout}{stderr}{}", cluster.logs());
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["image"]["digest"], digest.as_str(), "{outcome}");
    assert_eq!(outcome["available"], 2, "{outcome}");
    // What op reported is what runs: every pod of the new revision runs the build's digest.
    pods_run(&cluster, &digest, "web v2");

    // And op in a pod of the cluster sees the same.
    assert_eq!(
        op_in_a_pod(&cluster, &sidecar, &repository, context.path())["image"]["digest"],
        digest.as_str()
    );

    // A new revision whose pods run but never become ready.
    let (v3, digest3) = app("v3");
    let never_ready = deployment(
        1,
        &[("web", &format!("{v3}@{digest3}"))],
        "  progressDeadlineSeconds: 5\n",
    )
    .replace(
        &format!("        image: {v3}@{digest3}"),
        &format!(
            "        image: {v3}@{digest3}\n        readinessProbe:\n          exec:\n            \
                 command: [\"/bin/busybox\", \"false\"]\n          periodSeconds: 1"
        ),
    );
    cluster.apply(&never_ready);
    context.write(
        "build_result.json",
        &serde_json::json!({"builds": [{"imageName": "web", "tag": format!("{v3}@{digest3}")}]})
            .to_string(),
    );
    let watch = spawn_watch(
        &context,
        &cluster.admin_kubeconfig(),
        &["--timeout", "120s"],
    );
    let (code, _, stderr) = finished(watch);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: deployment default/web exceeded its progress deadline (progressDeadlineSeconds 5s)"
        ),
        "{stderr}"
    );
}
