//! The multi-platform and registry-cache benchmark: real builds against the local Docker Engine,
//! a real registry and QEMU, on both fixture builders made for linux/amd64 and linux/arm64 (op's
//! with op-lifecycle, and one with the real lifecycle built for each architecture). Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench platforms
//! ```
//!
//! Every round measures, on each builder, for one app (a static site with dependencies the
//! fixture's `op/deps` buildpack "downloads"), each build in a new repository:
//!
//! 1. how much emulation costs: `op build --push` cold for `linux/amd64` (this machine's),
//!    for `linux/arm64` alone (its creator under QEMU) and for both at once (one index);
//! 2. a hermetic CI runner's rebuild (no cache volume, a changed page, the same dependencies:
//!    32 MiB after a 2 s "download"): with `OP_CACHE_IMAGE`, whose cache image an earlier build
//!    wrote, against no cache at all.
//!
//! Figures are ratios taken within a round (the machines are shared and noisy), reported as the
//! median and the spread (min – max) of `OP_BENCH_ROUNDS` rounds (default 3). The report is
//! printed as Markdown (for docs/benchmarks.md) and written to `target/bench-platforms.md`.

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

/// The integration tests' helpers: the registry, the fixture builders, the engine checks.
#[path = "../tests/it/common/mod.rs"]
mod common;
/// What the benchmarks share: figures over rounds.
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::TestContext;
use common::cnb::{EngineCleanup, Lifecycle, lifecycle_dir, remove_cache_volumes};
use support::{DEPS, Figure, buildpacks_skaffold, static_app, verdict};

/// The dependencies of the cache app: 32 MiB, after a 2 s wait (a download of 32 MiB at 16 MiB/s).
const DEPS_32: &str = "dependencies 32 2\n";

/// A repository with one app, `app`, built with `builder`, that "installs" `deps`.
fn project(dir: &Path, builder: &str, deps: &str) {
    static_app(dir, "app", deps);
    buildpacks_skaffold(dir, builder, &[("app", None)]);
}

/// A new commit: the page changes, the dependencies do not.
fn touch(dir: &Path, round: usize, step: &str) {
    fs_err::write(
        dir.join("app/public/index.html"),
        format!("<h1>app, round {round}, {step}</h1>\n"),
    )
    .unwrap();
}

/// `op build --push` of `dir` to `repo` with `extra` arguments and `env`: its wall time, and
/// the creator's run time the engine recorded (the longest of the platforms').
fn op_build(dir: &Path, repo: &str, extra: &[&str], env: &[(&str, &str)]) -> (f64, f64) {
    let mut args = vec!["build", "--push", "--repo", repo, "-q", "-o", "json"];
    args.extend(extra);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_op"))
        .args(&args)
        .env("OP_CACHE_ARTIFACTS", "false")
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "op {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let creator = json["builds"][0]["creatorSeconds"].as_f64().unwrap_or(0.0);
    (wall, creator)
}

#[derive(Default)]
struct Figures {
    amd64: Figure,
    arm64: Figure,
    both: Figure,
    amd64_creator: Figure,
    arm64_creator: Figure,
    arm64_ratio: Figure,
    both_ratio: Figure,
    with_cache: Figure,
    without_cache: Figure,
    cache_ratio: Figure,
}

/// One builder's figures.
struct Builder {
    name: &'static str,
    addr: String,
    figures: Figures,
}

fn round(b: &mut Builder, work: &Path, id: usize) {
    let repo = |what: &str| format!("{}/{}-r{id}-{what}", b.addr, b.name);
    let f = &mut b.figures;

    // 1. Emulation: one platform natively, the other under QEMU, both at once.
    let app = work.join(format!("{}-emulation", b.name));
    let (amd64, amd64_creator) =
        op_build(&app, &repo("amd64"), &["--platform", "linux/amd64"], &[]);
    let (arm64, arm64_creator) =
        op_build(&app, &repo("arm64"), &["--platform", "linux/arm64"], &[]);
    let (both, _) = op_build(
        &app,
        &repo("both"),
        &["--platform", "linux/amd64,linux/arm64"],
        &[],
    );
    f.amd64.push(amd64);
    f.arm64.push(arm64);
    f.both.push(both);
    f.amd64_creator.push(amd64_creator);
    f.arm64_creator.push(arm64_creator);
    f.arm64_ratio.push(arm64 / amd64);
    f.both_ratio.push(both / amd64);

    // 2. A fresh runner's rebuild: the cache image an earlier build wrote, against no cache.
    let app = work.join(format!("{}-cache", b.name));
    let target = repo("cache");
    let cache = format!("{}/{}-r{id}-cache-image", b.addr, b.name);
    let with_env = [("OP_CACHE_IMAGE", cache.as_str())];
    touch(&app, id, "first");
    op_build(&app, &target, &[], &with_env);
    touch(&app, id, "with the cache image");
    remove_cache_volumes(&b.addr);
    let (with_cache, _) = op_build(&app, &target, &[], &with_env);
    touch(&app, id, "without a cache");
    remove_cache_volumes(&b.addr);
    let (without_cache, _) = op_build(&app, &target, &[], &[]);
    remove_cache_volumes(&b.addr);
    f.with_cache.push(with_cache);
    f.without_cache.push(without_cache);
    f.cache_ratio.push(with_cache / without_cache);
}

fn report(builders: &[Builder], rounds: usize) -> String {
    let mut r = String::new();
    let s = |f: &Figure| f.show(1.0, " s");
    let x = |f: &Figure| f.show(1.0, "×");
    let _ = writeln!(
        r,
        "Medians (min – max) of {rounds} rounds; one app, `op build --push`, each build in a new repository.\n"
    );
    let _ = writeln!(r, "#### Two platforms against one (cold builds)\n");
    let _ = writeln!(
        r,
        "| builder | linux/amd64 (native) | linux/arm64 (QEMU) | both, one index | arm64 ÷ amd64 | both ÷ amd64 | creator amd64 | creator arm64 |"
    );
    let _ = writeln!(r, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    for b in builders {
        let f = &b.figures;
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            b.name,
            s(&f.amd64),
            s(&f.arm64),
            s(&f.both),
            x(&f.arm64_ratio),
            x(&f.both_ratio),
            s(&f.amd64_creator),
            s(&f.arm64_creator)
        );
    }
    let _ = writeln!(
        r,
        "\n#### A fresh runner's rebuild: `OP_CACHE_IMAGE` against no cache (32 MiB of dependencies)\n"
    );
    let _ = writeln!(
        r,
        "| builder | with the cache image | without a cache | ratio | target ≤ 0.6× |"
    );
    let _ = writeln!(r, "| --- | --- | --- | --- | --- |");
    for b in builders {
        let f = &b.figures;
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} |",
            b.name,
            s(&f.with_cache),
            s(&f.without_cache),
            x(&f.cache_ratio),
            verdict(f.cache_ratio.median(), 0.6)
        );
    }
    r
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().unwrap();
    let mut stacks = Vec::new();
    let mut builders = Vec::new();
    for (name, lifecycle) in [
        ("op-lifecycle", Lifecycle::Op),
        ("real-lifecycle", Lifecycle::Reference),
    ] {
        let context = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
        let (registry, builder) = common::cnb::two_platform_stack(lifecycle, &context);
        let addr = registry.addr();
        project(
            &work.path().join(format!("{name}-emulation")),
            &builder,
            DEPS,
        );
        project(
            &work.path().join(format!("{name}-cache")),
            &builder,
            DEPS_32,
        );
        builders.push(Builder {
            name,
            addr: addr.clone(),
            figures: Figures::default(),
        });
        stacks.push((registry, EngineCleanup(addr), context));
    }
    // Pull the builders' platform images and warm the registry once: the first round is not
    // the odd one out.
    for b in &mut builders {
        round(b, work.path(), 0);
        b.figures = Figures::default();
    }
    for id in 1..=rounds {
        for b in &mut builders {
            round(b, work.path(), id);
        }
        println!("round {id} of {rounds} done");
    }
    let report = report(&builders, rounds);
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-platforms.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}
