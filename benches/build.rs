//! The `op build-push` benchmark: real builds against the local Docker Engine and a real
//! registry, side by side in one run with the real `pack`, on a builder of production's shape
//! (the fixture buildpacks assembled by the real `pack builder create`, the real lifecycle
//! inside). Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench build
//! ```
//!
//! Every round measures, on the same apps and registry (each cold build in a new repository,
//! with an empty cache):
//!
//! 1. one artifact, cold then warm (no change): `op build-push` against
//!    `pack build --publish --trust-builder`;
//! 2. four independent artifacts: op (default concurrency) against four `pack build` one after
//!    the other, and against four `pack build` at once (how users script pack in CI), whose
//!    failures are counted; and op's default concurrency against as many builds as CPUs;
//! 3. op with op-lifecycle (op's builder) against op with the real lifecycle, the same apps;
//! 4. a slow artifact beside a chain (`base`, and `app` on `base`'s image): the wall time
//!    against the longer of the two built alone, which is what building each artifact as soon
//!    as its own dependencies are done should give;
//! 5. op's own time per artifact (op's wall time for it minus its creator container's run time,
//!    as the engine recorded it, with `--concurrency 1`) against a bare `docker run --rm` of the
//!    builder image.
//!
//! Figures are ratios taken within a round (the machines are shared and noisy), reported as the
//! median and the spread (min – max) of `OP_BENCH_ROUNDS` rounds (default 5). The report is
//! printed as Markdown (for docs/benchmarks.md) and written to `target/bench-build.md`.

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
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::cnb::{Lifecycle, Stack};
use support::{DEPS, Figure, buildpacks_skaffold, static_app, verdict};

/// A repository of `count` apps (static sites with [`DEPS`]) built with `builder`.
fn project(dir: &Path, count: usize, builder: &str) {
    let names: Vec<String> = (1..=count).map(|i| format!("app-{i}")).collect();
    for name in &names {
        static_app(dir, name, DEPS);
    }
    let artifacts: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), None)).collect();
    buildpacks_skaffold(dir, builder, &artifacts);
}

/// A repository where a slow artifact (its dependencies take 3 s to "download") sits beside a
/// chain: `base`, and `app` whose run image is `base`.
fn chain_project(dir: &Path, builder: &str) {
    static_app(dir, "slow", "runtime 8 3\n");
    static_app(dir, "base", "");
    static_app(dir, "app", DEPS);
    buildpacks_skaffold(
        dir,
        builder,
        &[("slow", None), ("base", None), ("app", Some("base"))],
    );
}

/// One `op build-push`: its wall time, and per artifact op's seconds and the creator's.
struct OpRun {
    wall: f64,
    artifacts: Vec<(f64, f64)>,
}

fn op_build(dir: &Path, repo: &str, extra: &[&str]) -> OpRun {
    let mut args = vec![
        "build-push",
        "--repo",
        repo,
        "-q",
        "-o",
        "json",
        "--pull",
        "never",
    ];
    args.extend(extra);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_op"))
        .args(&args)
        .env("OP_CACHE_ARTIFACTS", "false")
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
    let artifacts = json["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["seconds"].as_f64().unwrap(),
                b["creatorSeconds"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    OpRun { wall, artifacts }
}

/// The real `pack`, with a `HOME` of its own.
struct Pack {
    binary: PathBuf,
    home: tempfile::TempDir,
    builder: String,
}

impl Pack {
    /// `pack build <image> --publish --trust-builder` of `app`, started.
    fn spawn(&self, app: &Path, image: &str) -> Child {
        Command::new(&self.binary)
            .args(["build", image, "--builder", &self.builder, "--path"])
            .arg(app)
            .args([
                "--publish",
                "--trust-builder",
                "--pull-policy",
                "if-not-present",
                // The registry is on a loopback address, as op's creator reaches it.
                "--network",
                "host",
                "--quiet",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for `child`; the first line of its error when it failed.
    fn wait(child: Child) -> Result<(), String> {
        let output = child.wait_with_output().unwrap();
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(stderr
            .lines()
            .find(|l| l.contains("ERROR") || l.contains("rror"))
            .unwrap_or(stderr.lines().last().unwrap_or("no output"))
            .trim()
            .to_string())
    }

    /// One build, timed; it must succeed.
    fn build(&self, app: &Path, image: &str) -> f64 {
        let started = Instant::now();
        let result = Self::wait(self.spawn(app, image));
        let wall = started.elapsed().as_secs_f64();
        if let Err(e) = result {
            panic!("pack build {image} failed: {e}");
        }
        wall
    }

    /// The builds of `apps` at once: the wall time and the errors of those that failed.
    fn build_at_once(&self, apps: &[(PathBuf, String)]) -> (f64, Vec<String>) {
        let started = Instant::now();
        let children: Vec<Child> = apps
            .iter()
            .map(|(app, image)| self.spawn(app, image))
            .collect();
        let errors: Vec<String> = children
            .into_iter()
            .filter_map(|c| Self::wait(c).err())
            .collect();
        (started.elapsed().as_secs_f64(), errors)
    }
}

/// The names of the volumes pack made for its caches (`pack-cache-…`).
fn pack_volumes() -> Vec<String> {
    let out = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", "name=pack-cache-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A bare `docker run --rm` of `image` (a command that does nothing), timed.
fn docker_run(image: &str) -> f64 {
    let started = Instant::now();
    let status = Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "/bin/true", image])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker run --rm {image} failed");
    started.elapsed().as_secs_f64()
}

/// Everything one run measures.
#[derive(Default)]
struct Figures {
    op_cold: Figure,
    pack_cold: Figure,
    op_warm: Figure,
    pack_warm: Figure,
    cold_ratio: Figure,
    warm_ratio: Figure,
    op_four: Figure,
    op_four_at_cpus: Figure,
    default_over_cpus: Figure,
    pack_sequential: Figure,
    pack_at_once: Figure,
    sequential_ratio: Figure,
    at_once_ratio: Figure,
    pack_failures: Vec<String>,
    own_lifecycle_cold: Figure,
    own_lifecycle_warm: Figure,
    own_lifecycle_four: Figure,
    own_cold_ratio: Figure,
    own_warm_ratio: Figure,
    own_four_ratio: Figure,
    op_own_time: Figure,
    docker_run: Figure,
    own_time_ratio: Figure,
    chain_all: Figure,
    chain_longest_alone: Figure,
    chain_ratio: Figure,
}

/// One round: every comparison once, in new repositories.
fn round(figures: &mut Figures, work: &Path, addr: &str, reference: &str, pack: &Pack, id: usize) {
    let repo = |what: &str| format!("{addr}/r{id}-{what}");

    // 1. One artifact, cold then warm: op against pack, on production's builder.
    let one = work.join("one-reference");
    let pack_app = one.join("app-1");
    let op_run = op_build(&one, &repo("op"), &[]);
    let pack_image = format!("{}/app-1:latest", repo("pack"));
    let pack_cold = pack.build(&pack_app, &pack_image);
    let op_warm = op_build(&one, &repo("op"), &[]).wall;
    let pack_warm = pack.build(&pack_app, &pack_image);
    figures.op_cold.push(op_run.wall);
    figures.pack_cold.push(pack_cold);
    figures.op_warm.push(op_warm);
    figures.pack_warm.push(pack_warm);
    figures.cold_ratio.push(op_run.wall / pack_cold);
    figures.warm_ratio.push(op_warm / pack_warm);

    // 2. Four artifacts: op against four packs one after the other, and at once.
    let four = work.join("four-reference");
    let op_four = op_build(&four, &repo("op4"), &[]).wall;
    let apps = |what: &str| -> Vec<(PathBuf, String)> {
        (1..=4)
            .map(|i| {
                (
                    four.join(format!("app-{i}")),
                    format!("{}/app-{i}:latest", repo(what)),
                )
            })
            .collect()
    };
    let sequential: f64 = apps("pack4seq")
        .iter()
        .map(|(app, image)| pack.build(app, image))
        .sum();
    let (at_once, errors) = pack.build_at_once(&apps("pack4par"));
    let cpus = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .to_string();
    let at_cpus = op_build(&four, &repo("op4cpus"), &["--concurrency", &cpus]).wall;
    figures.op_four.push(op_four);
    figures.op_four_at_cpus.push(at_cpus);
    figures.default_over_cpus.push(op_four / at_cpus);
    figures.pack_sequential.push(sequential);
    figures.pack_at_once.push(at_once);
    figures.sequential_ratio.push(op_four / sequential);
    figures.at_once_ratio.push(op_four / at_once);
    figures.pack_failures.extend(errors);

    // 3. op with op-lifecycle against op with the real lifecycle.
    let one_own = work.join("one-op");
    let four_own = work.join("four-op");
    let own_cold = op_build(&one_own, &repo("own"), &[]).wall;
    let own_warm = op_build(&one_own, &repo("own"), &[]).wall;
    let own_four = op_build(&four_own, &repo("own4"), &[]).wall;
    figures.own_lifecycle_cold.push(own_cold);
    figures.own_lifecycle_warm.push(own_warm);
    figures.own_lifecycle_four.push(own_four);
    figures.own_cold_ratio.push(own_cold / op_run.wall);
    figures.own_warm_ratio.push(own_warm / op_warm);
    figures.own_four_ratio.push(own_four / op_four);

    // 4. A slow artifact beside a chain: all at once against the longer built alone.
    let chain = work.join("chain");
    let all = op_build(&chain, &repo("chain"), &[]).wall;
    let slow = op_build(&chain, &repo("chain-slow"), &["--artifact", "slow"]).wall;
    let app = op_build(&chain, &repo("chain-app"), &["--artifact", "app"]).wall;
    figures.chain_all.push(all);
    figures.chain_longest_alone.push(slow.max(app));
    figures.chain_ratio.push(all / slow.max(app));

    // 5. op's own time per artifact, where no other build competes, against a bare docker run.
    let single = op_build(&four, &repo("op4seq"), &["--concurrency", "1"]);
    let own: Vec<f64> = single.artifacts.iter().map(|(op, c)| op - c).collect();
    let bare = docker_run(reference);
    let own_median = Figure(own).median();
    figures.op_own_time.push(own_median);
    figures.docker_run.push(bare);
    figures.own_time_ratio.push(own_median / bare);
}

/// op-lifecycle against the real lifecycle, and op's own time.
fn lifecycle_tables(f: &Figures, r: &mut String) {
    let _ = writeln!(
        r,
        "### op with op-lifecycle against op with the real lifecycle\n\n| | op-lifecycle | real lifecycle | ratio |\n| --- | --- | --- | --- |"
    );
    for (what, own, real, ratio) in [
        (
            "one artifact, cold",
            &f.own_lifecycle_cold,
            &f.op_cold,
            &f.own_cold_ratio,
        ),
        (
            "one artifact, warm",
            &f.own_lifecycle_warm,
            &f.op_warm,
            &f.own_warm_ratio,
        ),
        (
            "four artifacts",
            &f.own_lifecycle_four,
            &f.op_four,
            &f.own_four_ratio,
        ),
    ] {
        let _ = writeln!(
            r,
            "| {what} | {} | {} | {} |",
            own.show(1.0, " s"),
            real.show(1.0, " s"),
            ratio.show(1.0, "")
        );
    }
    let _ = writeln!(
        r,
        "\n### op's own time per artifact\n\n| op's own time (median per round) | a bare `docker run --rm` of the builder | ratio | target |\n| --- | --- | --- | --- |\n| {} | {} | {} | ≤ 1.0: {} |",
        f.op_own_time.show(1000.0, " ms"),
        f.docker_run.show(1000.0, " ms"),
        f.own_time_ratio.show(1.0, ""),
        verdict(f.own_time_ratio.median(), 1.0)
    );
}

fn report(f: &Figures, rounds: usize) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut r = String::new();
    let _ = writeln!(
        r,
        "Machine: {cpus} CPUs. {rounds} rounds; every figure is the median (min – max) of its rounds, every ratio taken within a round.\n"
    );
    let _ = writeln!(
        r,
        "### op against pack, on production's builder (the real lifecycle)\n\n| | op | pack | op / pack | target |\n| --- | --- | --- | --- | --- |"
    );
    let target = |ratio: &Figure, at_most: f64| {
        format!("≤ {at_most:.2}: {}", verdict(ratio.median(), at_most))
    };
    let pack_rows = [
        (
            "one artifact, cold",
            &f.op_cold,
            &f.pack_cold,
            &f.cold_ratio,
            String::new(),
        ),
        (
            "one artifact, warm",
            &f.op_warm,
            &f.pack_warm,
            &f.warm_ratio,
            target(&f.warm_ratio, 0.8),
        ),
        (
            "four artifacts, pack one after the other",
            &f.op_four,
            &f.pack_sequential,
            &f.sequential_ratio,
            target(&f.sequential_ratio, 0.5),
        ),
        (
            "four artifacts, four packs at once",
            &f.op_four,
            &f.pack_at_once,
            &f.at_once_ratio,
            format!(
                "no failure where packs fail: met ({} pack failures)",
                f.pack_failures.len()
            ),
        ),
    ];
    for (what, op, pack, ratio, target) in pack_rows {
        let _ = writeln!(
            r,
            "| {what} | {} | {} | {} | {target} |",
            op.show(1.0, " s"),
            pack.show(1.0, " s"),
            ratio.show(1.0, "")
        );
    }
    let _ = writeln!(
        r,
        "\nop's default concurrency ({}) against `--concurrency {cpus}` (the number of CPUs), four artifacts: {} against {}, ratio {}.",
        op::execute::default_concurrency(),
        f.op_four.show(1.0, " s"),
        f.op_four_at_cpus.show(1.0, " s"),
        f.default_over_cpus.show(1.0, "")
    );
    let _ = writeln!(
        r,
        "\nA slow artifact beside a chain (`base`, then `app` on its image), all at once: {} against {} for the longer of the two alone (slow, or base and app), ratio {}.",
        f.chain_all.show(1.0, " s"),
        f.chain_longest_alone.show(1.0, " s"),
        f.chain_ratio.show(1.0, "")
    );
    let _ = writeln!(
        r,
        "\nFour packs at once: {} of {} builds failed{}; op failed none (a failure stops the benchmark).\n",
        f.pack_failures.len(),
        rounds * 4,
        f.pack_failures
            .first()
            .map(|e| format!(" (first: `{e}`)"))
            .unwrap_or_default()
    );
    lifecycle_tables(f, &mut r);
    r
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // A registry, the busybox base images and both fixture builders (op's, and pack's with the
    // real lifecycle), pulled into the engine; op's cache volumes go with the stack.
    let stack = Stack::start(Lifecycle::Op);
    let reference = stack.another_builder(Lifecycle::Reference, "pack-builder", None);
    let addr = stack.registry.addr();
    let work = tempfile::tempdir().unwrap();
    for (name, count, builder) in [
        ("one-reference", 1, reference.as_str()),
        ("four-reference", 4, reference.as_str()),
        ("one-op", 1, stack.builder.as_str()),
        ("four-op", 4, stack.builder.as_str()),
    ] {
        project(&work.path().join(name), count, builder);
    }
    chain_project(&work.path().join("chain"), &reference);
    let pack = Pack {
        binary: common::cnb::pack(),
        home: tempfile::tempdir().unwrap(),
        builder: reference.clone(),
    };
    let volumes_before = pack_volumes();
    // Warm the engine and the registry once, so that the first round is not the odd one out.
    round(
        &mut Figures::default(),
        work.path(),
        &addr,
        &reference,
        &pack,
        0,
    );
    let mut figures = Figures::default();
    for id in 1..=rounds {
        round(&mut figures, work.path(), &addr, &reference, &pack, id);
        println!("round {id} of {rounds} done");
    }
    for volume in pack_volumes() {
        if !volumes_before.contains(&volume) {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &volume])
                .output();
        }
    }
    let report = report(&figures, rounds);
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-build.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}
