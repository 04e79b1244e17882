//! The reuse benchmark (`--cache-artifacts`): what an unchanged artifact costs op when it reuses
//! the earlier build, against building it again and against skaffold's cached rebuild; what a
//! run-image-only change costs when op rebases, against a rebuild and `pack rebase`; and how
//! fast op tars and digests a large context. Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench reuse
//! ```
//!
//! On the pack-made builder (the real lifecycle), each of `OP_BENCH_ROUNDS` rounds (default 5)
//! measures, on projects of 1 and 32 static-site artifacts built once before by op and by
//! skaffold: `op build-push` with every artifact reused, the real `skaffold build --push` finding
//! them all in its cache (`Found Remotely`), and `op build-push --cache-artifacts=false` (a warm
//! build: cache volumes and the previous image there); then, on one artifact with a 96 MiB
//! dependency layer (the app of issue #22's measurement), after the run image got a new layer:
//! op's build (which rebases), `op rebase` and `pack rebase` of copies of the same image, and a
//! warm rebuild; the same on the 16 MiB app of the other benchmarks.
//! Last, op's tar and digest of a 1 GiB context (64 files of 16 MiB; the tar kept in a
//! temporary file, as a build that runs uploads it), against `sha256sum` of the same files.
//! The report is printed as Markdown and written to `target/bench-reuse.md`.

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

/// The integration tests' helpers: the registry, the fixture builders.
#[path = "../tests/it/common/mod.rs"]
mod common;
/// What the benchmarks share: figures over rounds.
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::cnb::{Lifecycle, Stack, crane, pack, skaffold};
use support::{DEPS, Figure, buildpacks_skaffold, static_app, verdict};

/// The app of issue #22's measurement: a 96 MiB dependency layer.
const DEPS_96: &str = "runtime 64 0.25\nframework 32 0.25\n";

/// `op build-push -q` of the project in `dir` to `repo`, reusing earlier builds or not; its
/// wall time and stderr.
fn op_build(dir: &Path, repo: &str, reuse: bool) -> (f64, String) {
    let args = ["build-push", "--repo", repo, "--pull", "never"];
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_op"))
        .args(args)
        .env("OP_CACHE_ARTIFACTS", if reuse { "true" } else { "false" })
        .current_dir(dir)
        .env("HOME", dir.join(".home"))
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "op {} failed:\n{stderr}",
        args.join(" ")
    );
    (wall, stderr)
}

/// The real `skaffold build --push` of the project in `dir` to `repo`, with `HOME` `home`
/// (skaffold's artifact cache lives there) and only `PATH` and `DOCKER_HOST` besides: its wall
/// time and output.
fn skaffold_build(dir: &Path, home: &Path, repo: &str) -> (f64, String) {
    let started = Instant::now();
    let output = Command::new(skaffold())
        .args([
            "build",
            "--push",
            &format!("--default-repo={repo}"),
            "--tag=latest",
            "--interactive=false",
            "--update-check=false",
        ])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "skaffold build failed:\n{text}");
    (wall, text)
}

/// `program args…`, timed; it must succeed.
fn timed(program: &Path, args: &[&str]) -> f64 {
    let started = Instant::now();
    let output = Command::new(program).args(args).output().unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    wall
}

/// A project of `n` static sites in a new directory, each with the dependencies `deps`, on
/// `builder`.
fn project(n: usize, builder: &str, deps: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=n).map(|i| format!("app-{i}")).collect();
    for name in &names {
        static_app(dir.path(), name, deps);
    }
    let artifacts: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), None)).collect();
    buildpacks_skaffold(dir.path(), builder, &artifacts);
    dir
}

/// op's tar and digest of a 1 GiB context (`app::spool`), and `sha256sum`'s of the same
/// files: seconds each.
fn hashing(dir: &Path) -> (f64, f64) {
    let context = dir.join("big");
    fs_err::create_dir_all(&context).unwrap();
    let mut files = Vec::new();
    for i in 0..64u64 {
        let path = context.join(format!("blob-{i}.bin"));
        if !path.exists() {
            let mut data = vec![0u8; 16 << 20];
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ i;
            for chunk in data.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            fs_err::write(&path, data).unwrap();
        }
        files.push(path.display().to_string());
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    let target = context.clone();
    let (_, spooled) = runtime
        .block_on(op::cnb::app::spool(
            move |inputs| inputs.app(&target, 1000, 1000, &op::cnb::app::Filter::default()),
            |_, _| false,
        ))
        .unwrap();
    assert!(spooled.on_disk());
    let op_seconds = started.elapsed().as_secs_f64();
    let mut args: Vec<&str> = vec![];
    args.extend(files.iter().map(String::as_str));
    let sum = timed(Path::new("sha256sum"), &args);
    (op_seconds, sum)
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let stack = Stack::start(Lifecycle::Reference);
    let mut report = String::new();
    let _ = writeln!(
        report,
        "| {rounds} rounds | median (min – max) |\n| --- | --- |"
    );
    unchanged(&mut report, &stack, rounds);
    rebase(&mut report, &stack, rounds, DEPS_96, "96 MiB app");
    rebase(&mut report, &stack, rounds, DEPS, "16 MiB app");
    hashing_rounds(&mut report, rounds);
    println!("\n{report}");
    fs_err::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-reuse.md"),
        report,
    )
    .unwrap();
}

/// 1 and 32 unchanged artifacts: reused by op, found in skaffold's cache, built again by op.
fn unchanged(report: &mut String, stack: &Stack, rounds: usize) {
    let addr = stack.registry.addr();
    for (n, target) in [(1, 1.0), (32, 0.5)] {
        let dir = project(n, &stack.builder, DEPS);
        let repo = format!("{addr}/unchanged-{n}");
        let skaffold_repo = format!("{addr}/skaffold-{n}");
        let skaffold_home = tempfile::tempdir().unwrap();
        op_build(dir.path(), &repo, true);
        skaffold_build(dir.path(), skaffold_home.path(), &skaffold_repo);
        let mut figures: [Figure; 5] = Default::default();
        for round in 0..rounds {
            let (hit, stderr) = op_build(dir.path(), &repo, true);
            assert_eq!(
                stderr.matches("Unchanged inputs: reused").count(),
                n,
                "{stderr}"
            );
            let (cached, output) = skaffold_build(dir.path(), skaffold_home.path(), &skaffold_repo);
            assert_eq!(output.matches("Found Remotely").count(), n, "{output}");
            let (warm, _) = op_build(dir.path(), &repo, false);
            for (figure, value) in
                figures
                    .iter_mut()
                    .zip([hit, cached, warm, hit / cached, hit / warm])
            {
                figure.push(value);
            }
            println!(
                "{n} unchanged, round {}: op reused {hit:.2}s, skaffold cached {cached:.2}s, op rebuilt {warm:.2}s",
                round + 1
            );
        }
        let [reused, cached, rebuilt, vs_skaffold, vs_rebuild] = figures;
        for (what, figure, unit) in [
            (
                format!("{n} unchanged artifact(s): op reuses them"),
                &reused,
                "s",
            ),
            (
                format!(
                    "{n} unchanged artifact(s): `skaffold build --push`, all in its cache (Found Remotely)"
                ),
                &cached,
                "s",
            ),
            (
                format!(
                    "{n} unchanged artifact(s): op builds them again (`--cache-artifacts=false`, warm)"
                ),
                &rebuilt,
                "s",
            ),
            (
                format!("{n} unchanged: op reused ÷ op rebuilt, per round"),
                &vs_rebuild,
                "×",
            ),
        ] {
            let _ = writeln!(report, "| {what} | {} |", figure.show(1.0, unit));
        }
        let _ = writeln!(
            report,
            "| {n} unchanged: op reused ÷ skaffold cached, per round (target ≤ {target}×: {}) | {} |",
            verdict(vs_skaffold.median(), target),
            vs_skaffold.show(1.0, "×")
        );
    }
}

/// A run image patched, on the app of `deps` (`app`, in the report): op's build (a rebase),
/// `op rebase` and `pack rebase`, a warm rebuild.
fn rebase(report: &mut String, stack: &Stack, rounds: usize, deps: &str, app: &str) {
    let addr = stack.registry.addr();
    let dir = project(1, &stack.builder, deps);
    let slug = app.replace(' ', "-").to_lowercase();
    let repo = format!("{addr}/rebase-{slug}");
    op_build(dir.path(), &repo, true);
    let (mut rebased, mut packed, mut rebuilt) =
        (Figure::default(), Figure::default(), Figure::default());
    let mut op_rebased = Figure::default();
    for round in 0..rounds {
        stack.patch_run_image(dir.path(), &format!("patch-{round}"));
        let app = format!("{repo}/app-1:latest");
        let copy = format!("{addr}/pack-{slug}-{round}/app-1:latest");
        let ours = format!("{addr}/op-{slug}-{round}/app-1:latest");
        timed(&crane(), &["copy", &app, &copy]);
        timed(&crane(), &["copy", &app, &ours]);
        let (rebase, stderr) = op_build(dir.path(), &repo, true);
        assert!(
            stderr.contains("Only the run image changed: rebased"),
            "{stderr}"
        );
        let pack_wall = timed(
            &pack(),
            &["rebase", &copy, "--publish", "--pull-policy", "never"],
        );
        let op_wall = timed(
            Path::new(env!("CARGO_BIN_EXE_op")),
            &["rebase", "-q", &ours],
        );
        let (warm, _) = op_build(dir.path(), &repo, false);
        rebased.push(rebase);
        op_rebased.push(op_wall);
        packed.push(pack_wall);
        rebuilt.push(warm);
        println!(
            "run image patched, round {}: op build-push {rebase:.2}s, op rebase {op_wall:.2}s, pack rebase {pack_wall:.2}s, warm rebuild {warm:.2}s",
            round + 1
        );
    }
    let per_round =
        |a: &Figure, b: &Figure| Figure(a.0.iter().zip(&b.0).map(|(x, y)| x / y).collect());
    let (vs_rebuild, vs_pack) = (
        per_round(&rebased, &rebuilt),
        per_round(&op_rebased, &packed),
    );
    for (what, figure, unit) in [
        ("op build-push (rebases)", &rebased, "s"),
        ("`op rebase` of the same image", &op_rebased, "s"),
        ("`pack rebase --publish` of the same image", &packed, "s"),
        ("warm rebuild (`--cache-artifacts=false`)", &rebuilt, "s"),
    ] {
        let _ = writeln!(
            report,
            "| run image patched, {app}: {what} | {} |",
            figure.show(1.0, unit)
        );
    }
    let _ = writeln!(
        report,
        "| {app}: op build-push's rebase ÷ warm rebuild, per round (target ≤ 0.2×: {}) | {} |",
        verdict(vs_rebuild.median(), 0.2),
        vs_rebuild.show(1.0, "×")
    );
    let _ = writeln!(
        report,
        "| {app}: `op rebase` ÷ `pack rebase`, per round (target ≤ 1.0×: {}) | {} |",
        verdict(vs_pack.median(), 1.0),
        vs_pack.show(1.0, "×")
    );
}

/// op's digest of a 1 GiB context against `sha256sum`'s, as throughput.
fn hashing_rounds(report: &mut String, rounds: usize) {
    let big = tempfile::tempdir().unwrap();
    let (mut ours, mut sums) = (Figure::default(), Figure::default());
    for _ in 0..rounds {
        let (op_seconds, sum) = hashing(big.path());
        ours.push(1.0 / op_seconds);
        sums.push(1.0 / sum);
    }
    let _ = writeln!(
        report,
        "| 1 GiB context: op's tar (kept for the upload) and digest of it | {} |",
        ours.show(1.0, " GiB/s")
    );
    let _ = writeln!(
        report,
        "| 1 GiB context: `sha256sum` of the same files | {} |",
        sums.show(1.0, " GiB/s")
    );
}
