//! Images that end up in the engine: `op build` (no `--push`: op publishes, then pulls by
//! digest) against `pack build` exporting to the engine (the daemon export of pack#2272), on
//! whatever image store the engine has, and `op build --push` against `pack build --publish`.
//! One app with a 100 MiB dependency layer, the pack-made builder with the real lifecycle.
//! Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench daemon            # DOCKER_HOST=… for another engine, OP_BENCH_ROUNDS=N
//! ```
//!
//! Every round, in new repositories (empty caches): op cold, pack cold, then each again (warm:
//! nothing changed), then `op build --push` (op's build already published) and `pack build
//! --publish` warm (its second publish: the first has no previous image in the registry). Figures are ratios
//! within a round, as median and spread over `OP_BENCH_ROUNDS` rounds (default 5); the report
//! names the engine, its API and its image store, and is written to `target/bench-daemon.md`.

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

#[path = "../tests/it/common/mod.rs"]
mod common;
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::cnb::{Lifecycle, Stack};
use support::{Figure, buildpacks_skaffold, engine_line, static_app, timed, verdict};

/// The app's dependencies: 100 MiB in one layer, no wait.
const BIG_DEPS: &str = "runtime 100 0\n";

#[derive(Default)]
struct Figures {
    op_cold: Figure,
    pack_cold: Figure,
    op_warm: Figure,
    pack_warm: Figure,
    op_push_warm: Figure,
    pack_publish_warm: Figure,
    cold: Figure,
    warm: Figure,
    publish: Figure,
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let stack = Stack::start(Lifecycle::Op);
    let builder = stack.another_builder(Lifecycle::Reference, "pack-builder", None);
    let addr = stack.registry.addr();
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    static_app(work.path(), "app", BIG_DEPS);
    buildpacks_skaffold(work.path(), &builder, &[("app", None)]);
    let op = Path::new(env!("CARGO_BIN_EXE_op"));
    let pack = common::cnb::pack();
    let app = work.path().join("app").display().to_string();
    let mut figures = Figures::default();
    let mut images = Vec::new();
    // Round 0 warms the engine and the registry and is not counted.
    for id in 0..=rounds {
        let op_repo = format!("{addr}/op-{id}");
        let pack_image = format!("{addr}/pack-{id}/app:latest");
        let op_build = ["build", "--repo", &op_repo, "-q", "--pull", "never"];
        let op_push = [
            "build", "--push", "--repo", &op_repo, "-q", "--pull", "never",
        ];
        let pack_build = [
            "build",
            &pack_image,
            "--builder",
            &builder,
            "--path",
            &app,
            "--trust-builder",
            "--pull-policy",
            "if-not-present",
            "--network",
            "host",
            "--docker-host",
            "inherit",
            "--quiet",
        ];
        let mut pack_publish = pack_build.to_vec();
        pack_publish.push("--publish");
        let op_cold = timed(work.path(), home.path(), op, &op_build, &[]);
        let pack_cold = timed(work.path(), home.path(), &pack, &pack_build, &[]);
        let op_warm = timed(work.path(), home.path(), op, &op_build, &[]);
        let pack_warm = timed(work.path(), home.path(), &pack, &pack_build, &[]);
        let op_push_warm = timed(work.path(), home.path(), op, &op_push, &[]);
        // pack's first publish has no previous image in the registry: it is not warm.
        timed(work.path(), home.path(), &pack, &pack_publish, &[]);
        let pack_publish_warm = timed(work.path(), home.path(), &pack, &pack_publish, &[]);
        images.push(format!("{op_repo}/app:latest"));
        images.push(pack_image);
        if id == 0 {
            continue;
        }
        figures.op_cold.push(op_cold);
        figures.pack_cold.push(pack_cold);
        figures.op_warm.push(op_warm);
        figures.pack_warm.push(pack_warm);
        figures.op_push_warm.push(op_push_warm);
        figures.pack_publish_warm.push(pack_publish_warm);
        figures.cold.push(op_cold / pack_cold);
        figures.warm.push(op_warm / pack_warm);
        figures.publish.push(op_push_warm / pack_publish_warm);
        println!("round {id} of {rounds} done");
    }
    clean_up(&images, &addr);
    let report = report(&figures, rounds);
    println!("\n{report}");
    fs_err::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-daemon.md"),
        &report,
    )
    .unwrap();
}

/// Removes the images and pack's cache volumes of the bench.
fn clean_up(images: &[String], addr: &str) {
    let _ = Command::new("docker")
        .arg("rmi")
        .arg("-f")
        .args(images)
        .output();
    common::docker::remove_images_of(addr);
    let pack_caches = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", "name=pack-cache-"])
        .output()
        .unwrap();
    for volume in String::from_utf8_lossy(&pack_caches.stdout).lines() {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", volume])
            .output();
    }
}

/// The Markdown report of `figures`.
fn report(figures: &Figures, rounds: usize) -> String {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Engine: {}. {rounds} rounds; one app with a 100 MiB dependency layer, the pack-made builder (real lifecycle).\n",
        engine_line()
    );
    let _ = writeln!(report, "| | op | pack | op / pack | target |");
    let _ = writeln!(report, "| --- | --- | --- | --- | --- |");
    for (what, op, pack, ratio, target) in [
        (
            "cold: `op build` / `pack build` (daemon export)",
            &figures.op_cold,
            &figures.pack_cold,
            &figures.cold,
            0.8,
        ),
        (
            "warm: `op build` / `pack build` (daemon export)",
            &figures.op_warm,
            &figures.pack_warm,
            &figures.warm,
            0.5,
        ),
        (
            "warm: `op build --push` / `pack build --publish`",
            &figures.op_push_warm,
            &figures.pack_publish_warm,
            &figures.publish,
            0.8,
        ),
    ] {
        let _ = writeln!(
            report,
            "| {what} | {} | {} | {} | ≤ {target} {} |",
            op.show(1.0, " s"),
            pack.show(1.0, " s"),
            ratio.show(1.0, "×"),
            verdict(ratio.median(), target)
        );
    }
    report
}
