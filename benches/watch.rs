//! The `op watch-deployment` benchmark: how soon op ends after a rollout, and how many API
//! requests a watch makes, on a real control plane (`tests/it/common/kube.rs`: etcd, the
//! apiserver, the controller-manager and the scheduler of `scripts/kube-tools`, a kwok node).
//! Run it with
//!
//! ```sh
//! export OP_KUBE_TOOLS="$(scripts/kube-tools)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench watch
//! ```
//!
//! Each of `OP_BENCH_ROUNDS` rounds (default 50): op starts watching the Deployment `web` for a
//! new image; after `wait` (0.5 s, or 5 s every fifth round) the image is set (`kubectl set
//! image`), and `kubectl rollout status` starts at the same moment, as the reference of when the
//! rollout is complete. Per round: op's exit after the update, kubectl's, and op's minus kubectl's
//! (what op adds to seeing the rollout), and the API requests op made (its `-o json` count). The
//! report is printed and written to `target/bench-watch.md`.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark harness reports and fails loudly"
)]
#![allow(
    dead_code,
    unreachable_pub,
    reason = "the integration tests' helpers are shared, not all used here"
)]

/// The integration tests' helpers: the test cluster.
#[path = "../tests/it/common/mod.rs"]
mod common;
/// What the benchmarks share: figures over rounds.
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kube::TestCluster;
use support::{Figure, verdict};

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

/// The `p`th percentile of `values` (nearest rank).
fn percentile(values: &[f64], p: usize) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let cluster = TestCluster::start();
    cluster.apply(&deployment("localhost:5001/dev/web:v0"));
    let rolled = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    assert!(rolled.status.success(), "{rolled:?}");
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.admin_kubeconfig();
    let (mut op_after, mut kubectl_after, mut added) = (Vec::new(), Vec::new(), Vec::new());
    let mut requests_short = Figure::default();
    let mut requests_long = Figure::default();
    for round in 1..=rounds {
        let image = format!("localhost:5001/dev/web:v{round}");
        let entry = serde_json::json!({"builds": [{"imageName": "web", "tag": image}]});
        fs_err::write(work.path().join("build_result.json"), entry.to_string()).unwrap();
        let watch = Command::new(env!("CARGO_BIN_EXE_op"))
            .args([
                "watch-deployment",
                "--component",
                "web",
                "--environment",
                "dev",
                "-q",
            ])
            .args(["-o", "json", "--kubeconfig"])
            .arg(&kubeconfig)
            .current_dir(work.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work.path())
            .env("GOOGLE_GKE_IMAGE_REPOSITORY", "localhost:5001/dev")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let long = round % 5 == 0;
        std::thread::sleep(Duration::from_millis(if long { 5000 } else { 500 }));
        // Each process is waited for on a thread of its own, which notes when it exited.
        let finished = |child: std::process::Child| {
            std::thread::spawn(move || {
                let out = child.wait_with_output().unwrap();
                (Instant::now(), out)
            })
        };
        let op = finished(watch);
        let set = cluster.kubectl(&["set", "image", "deployment/web", &format!("web={image}")]);
        let updated = Instant::now();
        assert!(set.status.success(), "{set:?}");
        let kubectl = finished(
            Command::new(common::kube::kube_tools().join("bin/kubectl"))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["rollout", "status", "deployment/web", "--timeout", "60s"])
                .env("HOME", work.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let (kubectl_exit, rollout) = kubectl.join().unwrap();
        assert!(rollout.status.success(), "{rollout:?}");
        let (op_exit, out) = op.join().unwrap();
        let kubectl_done = kubectl_exit.duration_since(updated).as_secs_f64();
        let op_done = op_exit.saturating_duration_since(updated).as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let requests = outcome["requests"].as_f64().unwrap();
        if long {
            requests_long.push(requests);
        } else {
            requests_short.push(requests);
        }
        op_after.push(op_done);
        kubectl_after.push(kubectl_done);
        added.push(op_done - kubectl_done);
    }
    let report = report(
        &op_after,
        &kubectl_after,
        &added,
        (&requests_short, &requests_long),
    );
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-watch.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}

fn report(op: &[f64], kubectl: &[f64], added: &[f64], requests: (&Figure, &Figure)) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "{} rollouts. Seconds from the Deployment's update (`kubectl set image`).\n",
        op.len()
    );
    let _ = writeln!(r, "| figure | median | p99 | max | target |");
    let _ = writeln!(r, "| --- | --- | --- | --- | --- |");
    for (name, values, target) in [
        ("op exits", op, Some(1.0)),
        ("`kubectl rollout status` exits", kubectl, None),
        ("op's exit after kubectl's", added, None),
    ] {
        let p99 = percentile(values, 99);
        let _ = writeln!(
            r,
            "| {name} | {:.3} | {p99:.3} | {:.3} | {} |",
            percentile(values, 50),
            percentile(values, 100),
            target.map_or_else(
                || "–".to_string(),
                |t| format!("p99 < {t} s: {}", verdict(p99, t))
            )
        );
    }
    let _ = writeln!(
        r,
        "\nAPI requests per watch: {} after a 0.5 s wait, {} after a 5 s wait (median (min – max)).",
        requests.0.show(1.0, ""),
        requests.1.show(1.0, "")
    );
    r
}
