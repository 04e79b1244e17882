//! The `op build --engine kubernetes` benchmark: the same four buildpacks artifacts built with
//! the local Docker Engine and as pods of a one-node cluster on the same machine (the test
//! cluster's real node: `tests/it/common/kubelet.rs`), on a builder of production's shape (the
//! real lifecycle, made by the real `pack`). Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! export OP_KUBE_TOOLS="$(scripts/kube-tools)"
//! cargo bench --bench cluster
//! ```
//!
//! Each of `OP_BENCH_ROUNDS` rounds (default 5) builds the four apps cold (a new repository, no
//! cache: `--cache-image off` for the pods) with `--concurrency 4`, once with the engine and once with the cluster, in alternating
//! order, and reports per round: the wall times and their ratio; and per artifact, how long
//! after op started it the creator had its inputs (`-v`'s step timings: the engine's container
//! created and uploaded into, against the pod created, scheduled, its builder's containers
//! started and its inputs streamed), which is the overhead of a pod. The report is printed as
//! Markdown (for docs/benchmarks.md) and written to `target/bench-cluster.md`.

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

/// The integration tests' helpers: the registry, the fixture builders, the test cluster.
#[path = "../tests/it/common/mod.rs"]
mod common;
/// What the benchmarks share: figures over rounds.
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::cnb::{Lifecycle, Stack};
use common::kube::TestCluster;
use support::{DEPS, Figure, buildpacks_skaffold, static_app};

/// How many artifacts a round builds.
const ARTIFACTS: usize = 4;

/// One `op build-push -v` of the project in `dir` to `repo`, with `extra` arguments: its wall
/// time and the milliseconds after which each artifact's creator had its inputs.
fn op_build(dir: &Path, repo: &str, extra: &[&str]) -> (f64, Vec<f64>) {
    let mut args = vec![
        "build-push",
        "--repo",
        repo,
        "-v",
        // The engine has the builder, and the node pulls it once (the first, uncounted build).
        "--pull",
        "if-not-present",
        "--concurrency",
        "4",
    ];
    args.extend(extra);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_op"))
        .args(&args)
        .env("OP_CACHE_ARTIFACTS", "false")
        .current_dir(dir)
        .env("HOME", dir.join(".home"))
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "op {} failed:\n{stderr}",
        args.join(" ")
    );
    // `DEBUG inputs uploaded artifact="app-1" ms=412` (engine), `DEBUG inputs sent …` (pod).
    let inputs: Vec<f64> = stderr
        .lines()
        .filter(|l| l.contains("inputs uploaded") || l.contains("inputs sent"))
        .filter_map(|l| l.rsplit("ms=").next()?.trim().parse().ok())
        .collect();
    assert_eq!(inputs.len(), ARTIFACTS, "{stderr}");
    (wall, inputs)
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let cluster = TestCluster::start_with_kubelet();
    let stack = Stack::start(Lifecycle::Reference);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=ARTIFACTS).map(|i| format!("app-{i}")).collect();
    for name in &names {
        static_app(dir.path(), name, DEPS);
    }
    let artifacts: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), None)).collect();
    buildpacks_skaffold(dir.path(), &stack.builder, &artifacts);
    let kubeconfig = cluster.admin_kubeconfig().display().to_string();
    // Cold as the engine's builds are: no cache image (the default with pods is one).
    let cluster_args = [
        "--engine",
        "kubernetes",
        "--kubeconfig",
        kubeconfig.as_str(),
        "--cache-image",
        "off",
    ];
    // The node pulls the builder once, as a runner's engine has it: a first build, not counted.
    let addr = stack.registry.addr();
    op_build(dir.path(), &format!("{addr}/warm"), &cluster_args);

    let (mut engine_wall, mut pod_wall, mut ratio) =
        (Figure::default(), Figure::default(), Figure::default());
    let (mut engine_inputs, mut pod_inputs) = (Figure::default(), Figure::default());
    for round in 0..rounds {
        let engine_repo = format!("{addr}/r{round}-engine");
        let pod_repo = format!("{addr}/r{round}-pods");
        let (engine, pods) = if round % 2 == 0 {
            let engine = op_build(dir.path(), &engine_repo, &[]);
            (engine, op_build(dir.path(), &pod_repo, &cluster_args))
        } else {
            let pods = op_build(dir.path(), &pod_repo, &cluster_args);
            (op_build(dir.path(), &engine_repo, &[]), pods)
        };
        // Each engine build leaves a cache volume per artifact: cold builds need them gone.
        common::cnb::remove_cache_volumes(&addr);
        engine_wall.push(engine.0);
        pod_wall.push(pods.0);
        ratio.push(pods.0 / engine.0);
        for ms in engine.1 {
            engine_inputs.push(ms / 1000.0);
        }
        for ms in pods.1 {
            pod_inputs.push(ms / 1000.0);
        }
        println!(
            "round {}: engine {:.2}s, pods {:.2}s",
            round + 1,
            engine.0,
            pods.0
        );
    }

    let mut report = String::new();
    let _ = writeln!(
        report,
        "| {ARTIFACTS} artifacts, cold, `--concurrency 4` ({rounds} rounds) | median (min – max) |\n| --- | --- |"
    );
    for (what, figure, unit) in [
        ("the Docker Engine: wall time", &engine_wall, "s"),
        ("pods of the one-node cluster: wall time", &pod_wall, "s"),
        ("pods ÷ engine, per round", &ratio, "×"),
        (
            "engine: the creator has its inputs after (container created, inputs uploaded)",
            &engine_inputs,
            "s",
        ),
        (
            "pods: the creator has its inputs after (pod created, scheduled, started, inputs streamed)",
            &pod_inputs,
            "s",
        ),
    ] {
        let _ = writeln!(report, "| {what} | {} |", figure.show(1.0, unit));
    }
    println!("\n{report}");
    fs_err::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cluster.md"),
        report,
    )
    .unwrap();
}
