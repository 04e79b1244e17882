//! The `op build-push` benchmark: real builds against the local Docker Engine and a real
//! registry, with the fixture builder (op-lifecycle inside). Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)"
//! cargo bench --bench build
//! ```
//!
//! It measures, in one run (ratios of the same run, since the machines are shared and noisy):
//!
//! 1. N = 1, 2, 4 artifacts built with the default concurrency against `--concurrency 1`;
//! 2. op's own time per artifact: op's wall time for it minus the run time of its creator
//!    container as the engine recorded it (in the `--concurrency 1` runs, where no other build
//!    competes for the CPUs);
//! 3. a cold build (new repository, empty cache) against a warm rebuild with no change.
//!
//! Every measurement is the median of `OP_BENCH_ROUNDS` (default 3) rounds. The report is
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

/// The integration tests' helpers: the registry, the fixture builder, the engine checks.
#[path = "../tests/it/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A kind of app the benchmark builds. Each "installs" dependencies with the fixture's
/// `op/deps` buildpack: MiB of random bytes in a launch and cache layer, as a real app installs
/// its dependencies, optionally after waiting as a download does.
struct Workload {
    name: &'static str,
    /// `deps.txt`.
    deps: &'static str,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "CPU-bound: 2 × 8 MiB, no waiting",
        deps: "runtime 8\nframework 8\n",
    },
    Workload {
        name: "with downloads: 2 × 8 MiB, each after a 0.25 s wait",
        deps: "runtime 8 0.25\nframework 8 0.25\n",
    },
];

fn op(dir: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_op"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "op {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A repository with `count` apps: a static site with the workload's dependencies.
fn project(dir: &Path, count: usize, builder: &str, workload: &Workload) {
    let mut yaml =
        String::from("apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n");
    for i in 1..=count {
        let app = dir.join(format!("app-{i}"));
        fs_err::create_dir_all(app.join("public")).unwrap();
        fs_err::write(app.join("public/index.html"), format!("<h1>app {i}</h1>\n")).unwrap();
        fs_err::write(app.join("deps.txt"), workload.deps).unwrap();
        let _ = writeln!(
            yaml,
            "    - image: app-{i}\n      context: app-{i}\n      buildpacks:\n        builder: {builder}\n        trustBuilder: true"
        );
    }
    fs_err::write(dir.join("skaffold.yaml"), yaml).unwrap();
}

/// One `op build-push`: wall time, and per artifact (op's seconds, the creator's seconds).
struct Run {
    wall: f64,
    artifacts: Vec<(f64, f64)>,
}

fn build(dir: &Path, repo: &str, extra: &[&str]) -> Run {
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
    let output = op(dir, &args);
    let wall = started.elapsed().as_secs_f64();
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
    Run { wall, artifacts }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// The figures of one workload.
struct Figures {
    ratio_of_4: f64,
    overheads: Vec<f64>,
    cold: f64,
    warm: f64,
}

/// Measures `workload`; appends its table to `report`. `round_id` numbers the repositories,
/// so that every cold build starts from nothing.
fn measure(
    workload: &Workload,
    work: &Path,
    addr: &str,
    builder: &str,
    rounds: usize,
    round_id: &mut usize,
    report: &mut String,
) -> Figures {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let _ = writeln!(report, "### {}\n", workload.name);
    let _ = writeln!(
        report,
        "| artifacts | default concurrency ({cpus}) | `--concurrency 1` | ratio |\n| --- | --- | --- | --- |"
    );
    let mut overheads: Vec<f64> = Vec::new();
    let mut ratio_of_4 = 0.0;
    let slug: String = workload
        .name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    for n in [1usize, 2, 4] {
        let dir = work.join(format!("{slug}-n{n}"));
        project(&dir, n, builder, workload);
        let (mut parallel, mut sequential) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for (times, extra) in [
                (&mut parallel, &[][..]),
                (&mut sequential, &["--concurrency", "1"][..]),
            ] {
                *round_id += 1;
                let run = build(&dir, &format!("{addr}/r{round_id}"), extra);
                if !extra.is_empty() {
                    // op's own time, where no other build competes for the CPUs.
                    overheads.extend(run.artifacts.iter().map(|(op, creator)| op - creator));
                }
                times.push(run.wall);
            }
        }
        let (p, s) = (median(parallel), median(sequential));
        if n == 4 {
            ratio_of_4 = p / s;
        }
        let _ = writeln!(report, "| {n} | {p:.2} s | {s:.2} s | {:.2} |", p / s);
    }
    // Cold (a new repository, an empty cache) against a warm rebuild with no change.
    let dir = work.join(format!("{slug}-n1"));
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        *round_id += 1;
        let repo = format!("{addr}/r{round_id}");
        cold.push(build(&dir, &repo, &[]).wall);
        warm.push(build(&dir, &repo, &[]).wall);
    }
    let (cold, warm) = (median(cold), median(warm));
    let _ = writeln!(
        report,
        "\nOne artifact: {cold:.2} s cold, {warm:.2} s warm (ratio {:.2}); op's own time per artifact {:.0} ms (median of {}).\n",
        warm / cold,
        median(overheads.clone()) * 1000.0,
        overheads.len()
    );
    Figures {
        ratio_of_4,
        overheads,
        cold,
        warm,
    }
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // A registry, the busybox base images and the fixture builder, pulled into the engine; the
    // cache volumes of the builds are removed when it goes.
    let stack = common::cnb::Stack::start(common::cnb::Lifecycle::Op);
    let addr = stack.registry.addr();
    let work = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Machine: {cpus} CPUs; {rounds} rounds per figure (medians).\n"
    );
    let mut round_id = 0;
    let figures: Vec<Figures> = WORKLOADS
        .iter()
        .map(|w| {
            measure(
                w,
                work.path(),
                &addr,
                &stack.builder,
                rounds,
                &mut round_id,
                &mut report,
            )
        })
        .collect();

    let _ = writeln!(
        report,
        "### Against the targets\n\n| figure | {} | {} | target |\n| --- | --- | --- | --- |",
        WORKLOADS[0].name, WORKLOADS[1].name
    );
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let row = |f: &dyn Fn(&Figures) -> (f64, bool), unit: &str, scale: f64| -> String {
        figures
            .iter()
            .map(|fig| {
                let (value, ok) = f(fig);
                format!("{:.2}{unit} ({})", value * scale, verdict(ok))
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let _ = writeln!(
        report,
        "| 4 artifacts, parallel / sequential | {} | ≤ 0.60 |",
        row(&|f| (f.ratio_of_4, f.ratio_of_4 <= 0.6), "", 1.0)
    );
    let _ = writeln!(
        report,
        "| op's own time per artifact (median) | {} | < 250 ms |",
        row(
            &|f| {
                let m = median(f.overheads.clone());
                (m, m < 0.25)
            },
            " s",
            1.0
        )
    );
    let _ = writeln!(
        report,
        "| warm rebuild / cold build | {} | ≤ 0.80 |",
        row(&|f| (f.warm / f.cold, f.warm / f.cold <= 0.8), "", 1.0)
    );
    println!("{report}");
    let out = root.join("target/bench-build.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}
