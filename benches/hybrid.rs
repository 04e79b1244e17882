//! The `op build --push` benchmark: a hybrid repository (two Dockerfile artifacts, two
//! buildpacks artifacts, one of those on a Dockerfile base) built by op (buildpacks itself,
//! Dockerfiles through the real skaffold) against skaffold's way of building it, on the same
//! pack-made builder with the real lifecycle inside. Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench hybrid
//! ```
//!
//! The benchmark first runs the real `skaffold build --push` of all four. Where it works (the
//! current engine), op is compared with it, at skaffold's default concurrency for local builds
//! (1) and with `--build-concurrency 0`. skaffold builds buildpacks artifacts with pack's
//! daemon export, which the real lifecycle (v0.21, moby client 0.2: Docker API 1.44 at least)
//! cannot do on an engine older than Docker 25; there the comparison runs skaffold's schedule
//! with the tools that work: skaffold builds the Dockerfiles, and `pack build --publish` (what skaffold's
//! buildpacks builder runs, less the daemon export and the push after it, so skaffold's side is
//! if anything favoured) the buildpacks artifacts, one after the other as skaffold's default
//! concurrency for local builds (1) does, or all at once as `--build-concurrency 0` does (`app`
//! after the base it requires).
//!
//! Every round builds, cold (a new repository, new caches, Dockerfiles changed so the engine's
//! build cache misses) and then warm (the same command again, nothing changed): `op build
//! --push`, then skaffold's schedule at its default concurrency, then unbounded. Figures are
//! ratios taken within a round, reported as the median and the spread of `OP_BENCH_ROUNDS`
//! rounds (default 3). The report is printed as Markdown (for docs/benchmarks.md) and written
//! to `target/bench-hybrid.md`.

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
use std::process::Command;
use std::time::Instant;

use common::cnb::{Lifecycle, Stack, skaffold};
use support::{DEPS, Figure, engine_line, static_app, timed, verdict};

/// A Dockerfile that takes a while, as a compile step does: 1.5 s and 8 MiB written. `nonce`
/// changes it, so that a cold build misses the engine's build cache.
fn dockerfile(run_image: &str, nonce: &str) -> String {
    format!(
        "FROM {run_image}\nUSER root\nRUN echo {nonce} > /etc/build-nonce && sleep 1.5 && \
         dd if=/dev/zero of=/payload bs=1M count=8 2>/dev/null\nUSER 1000:1000\n"
    )
}

/// The repository: `web-base` and `worker` (Dockerfiles), `app` (buildpacks on `web-base`,
/// which it `requires` so that skaffold resolves the run image too) and `api` (buildpacks).
fn project(dir: &Path, builder: &str, run_image: &str) {
    for name in ["web-base", "worker"] {
        fs_err::create_dir_all(dir.join(name)).unwrap();
    }
    for name in ["app", "api"] {
        static_app(dir, name, DEPS);
    }
    let yaml = format!(
        "apiVersion: skaffold/v4beta11
kind: Config
build:
  local:
    push: true
  artifacts:
    - image: web-base
      context: web-base
      docker: {{dockerfile: Dockerfile}}
    - image: worker
      context: worker
      docker: {{dockerfile: Dockerfile}}
    - image: app
      context: app
      requires: [{{image: web-base, alias: web-base}}]
      buildpacks: {{builder: {builder}, runImage: web-base, trustBuilder: true}}
    - image: api
      context: api
      buildpacks: {{builder: {builder}, trustBuilder: true}}
"
    );
    fs_err::write(dir.join("skaffold.yaml"), yaml).unwrap();
    change_dockerfiles(dir, run_image, "initial");
}

/// New Dockerfiles (a cold build for the engine's cache).
fn change_dockerfiles(dir: &Path, run_image: &str, nonce: &str) {
    for name in ["web-base", "worker"] {
        fs_err::write(
            dir.join(name).join("Dockerfile"),
            dockerfile(run_image, &format!("{name}-{nonce}")),
        )
        .unwrap();
    }
}

/// A command in `dir` with a `HOME` of its own, started.
fn spawn(dir: &Path, home: &Path, program: &Path, args: &[String]) -> std::process::Child {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("OP_CACHE_ARTIFACTS", "false")
        .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child`, which must succeed.
fn finish(child: std::process::Child, what: &str) {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// skaffold's schedule with the tools that work here: skaffold builds the Dockerfiles, and
/// `pack build --publish --trust-builder` (what skaffold's buildpacks builder runs, less the
/// daemon export and the push after it) builds the buildpacks artifacts. `unbounded`: as
/// `--build-concurrency 0` (everything at once, `app` after `web-base`, which it requires);
/// else as skaffold's default for local builds, one artifact after the other in skaffold.yaml
/// order. Returns the wall time.
fn skaffold_schedule(dir: &Path, home: &Path, repo: &str, builder: &str, unbounded: bool) -> f64 {
    let result = home.join("result.json");
    let concurrency = if unbounded { "0" } else { "1" };
    let skaffold_args: Vec<String> = [
        "build",
        "--push",
        "--build-image=web-base",
        "--build-image=worker",
        &format!("--default-repo={repo}"),
        "--tag=latest",
        &format!("--build-concurrency={concurrency}"),
        &format!("--file-output={}", result.display()),
        "--interactive=false",
        "--update-check=false",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let pack_args = |app: &str, run_image: Option<&str>| -> Vec<String> {
        let mut args: Vec<String> = [
            "build",
            &format!("{repo}/{app}:latest"),
            "--builder",
            builder,
            "--path",
            app,
            "--publish",
            "--trust-builder",
            "--pull-policy",
            "if-not-present",
            "--network",
            "host",
            "--quiet",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        if let Some(run_image) = run_image {
            args.extend(["--run-image".to_string(), run_image.to_string()]);
        }
        args
    };
    let web_base = || -> String {
        let json: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&result).unwrap()).unwrap();
        json["builds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["imageName"] == "web-base")
            .unwrap()["tag"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (skaffold, pack) = (skaffold(), common::cnb::pack());
    let started = Instant::now();
    if unbounded {
        let dockerfiles = spawn(dir, home, &skaffold, &skaffold_args);
        let api = spawn(dir, home, &pack, &pack_args("api", None));
        finish(dockerfiles, "skaffold build");
        let app = spawn(dir, home, &pack, &pack_args("app", Some(&web_base())));
        finish(api, "pack build api");
        finish(app, "pack build app");
    } else {
        finish(
            spawn(dir, home, &skaffold, &skaffold_args),
            "skaffold build",
        );
        finish(
            spawn(dir, home, &pack, &pack_args("app", Some(&web_base()))),
            "pack build app",
        );
        finish(
            spawn(dir, home, &pack, &pack_args("api", None)),
            "pack build api",
        );
    }
    started.elapsed().as_secs_f64()
}

/// The real `skaffold build --push` of all four (its own buildpacks builder included), with
/// `HOME` `home` (skaffold's cache lives there): its wall time, or the first error it printed.
/// `unbounded`: `--build-concurrency 0`; else skaffold's default for local builds (1).
fn skaffold_real(dir: &Path, home: &Path, repo: &str, unbounded: bool) -> Result<f64, String> {
    let args: Vec<String> = [
        "build",
        "--push",
        &format!("--default-repo={repo}"),
        "--tag=latest",
        &format!("--build-concurrency={}", if unbounded { "0" } else { "1" }),
        "--interactive=false",
        "--update-check=false",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let started = Instant::now();
    let output = spawn(dir, home, &skaffold(), &args)
        .wait_with_output()
        .unwrap();
    if output.status.success() {
        return Ok(started.elapsed().as_secs_f64());
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Err(text
        .lines()
        .find(|l| l.contains("ERROR"))
        .or_else(|| text.lines().last())
        .unwrap_or("no output")
        .replace("\u{1b}[31;1m", "")
        .replace("\u{1b}[0m", "")
        .trim()
        .to_string())
}

#[derive(Default)]
struct Figures {
    op_cold: Figure,
    op_warm: Figure,
    skaffold_cold: Figure,
    skaffold_warm: Figure,
    unbounded_cold: Figure,
    unbounded_warm: Figure,
    cold_ratio: Figure,
    warm_ratio: Figure,
    unbounded_cold_ratio: Figure,
    unbounded_warm_ratio: Figure,
}

/// One round. `real`: the real `skaffold build --push` works on this engine, and is what op is
/// compared with; else skaffold's schedule with the tools that work (`skaffold_schedule`).
fn round(figures: &mut Figures, dir: &Path, addr: &str, stack: &Stack, id: usize, real: bool) {
    let repo = |what: &str| format!("{addr}/h{id}-{what}");
    let op = PathBuf::from(env!("CARGO_BIN_EXE_op"));
    let op_repo = repo("op");
    change_dockerfiles(dir, &stack.run_image, &format!("op-{id}"));
    let home = tempfile::tempdir().unwrap();
    let op_args = [
        "build", "--push", "--repo", &op_repo, "-q", "--pull", "never",
    ];
    let op_env = [("OP_SKAFFOLD", skaffold())];
    let op_cold = timed(dir, home.path(), &op, &op_args, &op_env);
    let op_warm = timed(dir, home.path(), &op, &op_args, &op_env);
    let schedule = |what: &str, unbounded: bool| {
        change_dockerfiles(dir, &stack.run_image, &format!("{what}-{id}"));
        let home = tempfile::tempdir().unwrap();
        let repo = repo(what);
        let once = || {
            if real {
                skaffold_real(dir, home.path(), &repo, unbounded)
                    .unwrap_or_else(|e| panic!("skaffold build --push failed: {e}"))
            } else {
                skaffold_schedule(dir, home.path(), &repo, &stack.builder, unbounded)
            }
        };
        let cold = once();
        let warm = once();
        (cold, warm)
    };
    let (default_cold, default_warm) = schedule("sk", false);
    let (unbounded_cold, unbounded_warm) = schedule("sk0", true);
    figures.op_cold.push(op_cold);
    figures.op_warm.push(op_warm);
    figures.skaffold_cold.push(default_cold);
    figures.skaffold_warm.push(default_warm);
    figures.unbounded_cold.push(unbounded_cold);
    figures.unbounded_warm.push(unbounded_warm);
    figures.cold_ratio.push(op_cold / default_cold);
    figures.warm_ratio.push(op_warm / default_warm);
    figures.unbounded_cold_ratio.push(op_cold / unbounded_cold);
    figures.unbounded_warm_ratio.push(op_warm / unbounded_warm);
}

fn report(f: &Figures, rounds: usize, alone: &Result<f64, String>, engine: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut r = String::new();
    let _ = writeln!(
        r,
        "Machine: {cpus} CPUs; engine: {engine}. {rounds} rounds; every figure is the median (min – max) of its rounds, every ratio taken within a round.\n"
    );
    let _ = writeln!(
        r,
        "| | op | skaffold | op / skaffold | target |\n| --- | --- | --- | --- | --- |"
    );
    let rows = [
        (
            "cold, skaffold's default concurrency",
            &f.op_cold,
            &f.skaffold_cold,
            &f.cold_ratio,
            0.5,
        ),
        (
            "warm, skaffold's default concurrency",
            &f.op_warm,
            &f.skaffold_warm,
            &f.warm_ratio,
            0.5,
        ),
        (
            "cold, skaffold `--build-concurrency 0`",
            &f.op_cold,
            &f.unbounded_cold,
            &f.unbounded_cold_ratio,
            0.8,
        ),
        (
            "warm, skaffold `--build-concurrency 0`",
            &f.op_warm,
            &f.unbounded_warm,
            &f.unbounded_warm_ratio,
            0.8,
        ),
    ];
    for (what, op, skaffold, ratio, target) in rows {
        let _ = writeln!(
            r,
            "| {what} | {} | {} | {} | ≤ {target:.2}: {} |",
            op.show(1.0, " s"),
            skaffold.show(1.0, " s"),
            ratio.show(1.0, ""),
            verdict(ratio.median(), target)
        );
    }
    let _ = match alone {
        Ok(_) => writeln!(
            r,
            "\nskaffold is the real `skaffold build --push` of all four, its own buildpacks builder included."
        ),
        Err(error) => writeln!(
            r,
            "\nThe real `skaffold build --push` of all four (its own buildpacks builder) fails on this engine: `{error}`; skaffold's side is its schedule with the tools that work (skaffold for the Dockerfiles, `pack build --publish` for the buildpacks artifacts)."
        ),
    };
    r
}

/// The volumes pack made for its caches (`pack-cache-…`).
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

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // A registry, the busybox base images and the pack-made builder (the real lifecycle),
    // pulled into the engine.
    let stack = Stack::start(Lifecycle::Reference);
    let addr = stack.registry.addr();
    let _images = common::docker::ImagesOf(addr.clone());
    let work = tempfile::tempdir().unwrap();
    project(work.path(), &stack.builder, &stack.run_image);
    let volumes_before = pack_volumes();
    let probe_home = tempfile::tempdir().unwrap();
    let alone = skaffold_real(
        work.path(),
        probe_home.path(),
        &format!("{addr}/alone"),
        false,
    );
    let real = alone.is_ok();
    // Warm the engine and the registry once, so that the first round is not the odd one out.
    round(&mut Figures::default(), work.path(), &addr, &stack, 0, real);
    let mut figures = Figures::default();
    for id in 1..=rounds {
        round(&mut figures, work.path(), &addr, &stack, id, real);
        println!("round {id} of {rounds} done");
    }
    for volume in pack_volumes() {
        if !volumes_before.contains(&volume) {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &volume])
                .output();
        }
    }
    let report = report(&figures, rounds, &alone, &engine_line());
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-hybrid.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}
