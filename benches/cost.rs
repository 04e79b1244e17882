//! How op's cost grows: with the number of artifacts of one `op build-push`, and with the size
//! of an artifact's context. Real builds on the local Docker Engine and a registry of the
//! bench's own, with op's own builder (the fixture buildpacks, op-lifecycle inside). Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench cost               # OP_BENCH_ROUNDS=N for more rounds (default 3)
//! ```
//!
//! Every op run is the release `op build-push -q -o json --pull never`, in a new repository
//! (cold: empty caches), started through this same binary as a measuring parent, which reads
//! op's `/proc/<pid>/io` once op has exited (before reaping it) and its peak resident set from
//! `getrusage(RUSAGE_CHILDREN)` (op is its only child). op talks to the engine through a
//! counting proxy (`cost/proxy.rs`), which notes each request and when the bytes of a body
//! went through; the registry's log has a line per request.
//!
//! 1. **Artifacts**: 1, 4, 16 and 64 independent static sites (a page each, nothing to
//!    install) in one `op build-push`, at op's default concurrency. Per artifact: op's own time
//!    (its wall time for the artifact, from starting it to having cleaned up, minus its creator
//!    container's run time as the engine recorded it; the median over the run's artifacts),
//!    op's CPU time, op's wall time; op's peak RSS; requests to the registry and to the engine.
//!    The same builds again with `--concurrency 1` (no build competes with another for the
//!    CPUs) for op's own time alone.
//! 2. **Context**: one static site with 1 MiB, 100 MiB and 1 GiB of random (incompressible)
//!    bytes beside its page, in 16 files. From op's start: the first byte of the app at the
//!    engine (through the proxy) and the creator's start (the engine's `start` event); the
//!    bytes op read (`rchar`: every `read` op made, files and sockets) against the context's
//!    size; op's peak RSS.
//!
//! Figures are medians (min – max) over `OP_BENCH_ROUNDS` rounds (default 3) after a warm-up
//! round (the artifacts and the smallest context) that is discarded; ratios are taken within a
//! round. The report is printed as Markdown and written to `target/bench-cost.md`; the curves
//! are drawn in `docs/benchmarks/cost-artifacts.svg` and `docs/benchmarks/cost-context.svg`.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::exit,
    reason = "a benchmark harness reports and fails loudly"
)]
#![allow(
    dead_code,
    unreachable_pub,
    reason = "the integration tests' helpers are shared, not all used here"
)]

/// Curves as SVG.
#[path = "cost/chart.rs"]
mod chart;
/// The integration tests' helpers: the registry, the fixture builders, the engine checks.
#[path = "../tests/it/common/mod.rs"]
mod common;
/// The counting proxy in front of the engine.
#[path = "cost/proxy.rs"]
mod proxy;
/// What the benchmarks share: figures over rounds.
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chart::{Panel, Series, Target};
use common::cnb::{Lifecycle, Stack, remove_cache_volumes};
use common::docker::{Engine, docker_command};
use common::registry::Registry;
use support::{Figure, buildpacks_skaffold, static_app};

/// How many artifacts one build has.
const COUNTS: [usize; 4] = [1, 4, 16, 64];
/// The sizes of the context.
const SIZES: [(&str, u64); 3] = [
    ("1 MiB", 1 << 20),
    ("100 MiB", 100 << 20),
    ("1 GiB", 1 << 30),
];
/// The files the context's bytes are split into.
const FILES: u64 = 16;
/// Set in the environment of this binary when it runs as op's measuring parent: where it writes
/// what it measured.
const MEASURE: &str = "OP_BENCH_COST_MEASURE";
const MIB: f64 = 1024.0 * 1024.0;

/// What the measuring parent saw of one op process.
struct Usage {
    start: SystemTime,
    wall: f64,
    max_rss_mib: f64,
    cpu: f64,
    rchar: u64,
    read_bytes: u64,
}

/// This binary as op's parent: runs the command of its arguments (op's stdin, stdout and
/// stderr are its own), waits for it to exit without reaping it, reads its `/proc/<pid>/io`
/// (the totals of a process that has exited), reaps it, and writes what it measured to the
/// file `out` names. Exits with op's status.
fn measure(out: &Path) -> ! {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let mut args = std::env::args_os().skip(1);
    let program = args.next().expect("a program to measure");
    let start = SystemTime::now();
    let clock = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_remove(MEASURE)
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT).unwrap();
    let wall = clock.elapsed().as_secs_f64();
    let io = fs_err::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let status = child.wait().unwrap();
    // op is the only child this process ever had, so the children's peak is op's.
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let field = |name: &str| -> u64 {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let seconds = |t: nix::sys::time::TimeVal| {
        f64::from(i32::try_from(t.tv_sec()).unwrap())
            + f64::from(i32::try_from(t.tv_usec()).unwrap()) / 1e6
    };
    let json = serde_json::json!({
        "start_ns": start.duration_since(UNIX_EPOCH).unwrap().as_nanos().to_string(),
        "wall": wall,
        // ru_maxrss is in KiB on Linux.
        "max_rss_kib": usage.max_rss(),
        "cpu": seconds(usage.user_time()) + seconds(usage.system_time()),
        "rchar": field("rchar:"),
        "read_bytes": field("read_bytes:"),
    });
    fs_err::write(out, json.to_string()).unwrap();
    std::process::exit(status.code().unwrap_or(1));
}

fn read_usage(path: &Path) -> Usage {
    let json: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap();
    let nanos: u64 = json["start_ns"].as_str().unwrap().parse().unwrap();
    #[allow(clippy::cast_precision_loss, reason = "KiB of a process")]
    let max_rss_mib = json["max_rss_kib"].as_i64().unwrap() as f64 / 1024.0;
    Usage {
        start: UNIX_EPOCH + Duration::from_nanos(nanos),
        wall: json["wall"].as_f64().unwrap(),
        max_rss_mib,
        cpu: json["cpu"].as_f64().unwrap(),
        rchar: json["rchar"].as_u64().unwrap(),
        read_bytes: json["read_bytes"].as_u64().unwrap(),
    }
}

/// One request the registry logged: its method and what it asked for.
fn registry_requests(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("msg=\"response completed"))
        .map(|l| {
            let value = |key: &str| {
                l.split_once(key)
                    .map(|(_, rest)| {
                        let rest = rest.trim_start_matches('"');
                        rest.split(['"', ' '])
                            .next()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .unwrap_or_default()
            };
            let uri = value("http.request.uri=");
            let what = if uri == "/v2/" || uri == "/v2" {
                "/v2/"
            } else if uri.contains("/manifests/") {
                "manifests"
            } else if uri.contains("/blobs/uploads") {
                "blobs/uploads"
            } else if uri.contains("/blobs/") {
                "blobs"
            } else {
                "other"
            };
            format!("{} {what}", value("http.request.method="))
        })
        .collect()
}

/// Everything a measured run needs.
struct Bench {
    stack: Stack,
    proxy: proxy::EngineProxy,
    work: tempfile::TempDir,
}

/// One measured `op build-push`.
struct OpRun {
    usage: Usage,
    /// Per artifact: op's seconds for it, its creator's.
    builds: Vec<(f64, f64)>,
    engine: Vec<proxy::Request>,
    registry: Vec<String>,
}

impl Bench {
    fn registry(&self) -> &Registry {
        &self.stack.registry
    }

    /// The registry's log, once it has stopped growing (it writes a request's line as it
    /// answers it, so op can exit just before the last one is written).
    fn settled_log(&self) -> String {
        self.registry().settled_log()
    }

    fn op(&self, dir: &Path, repo: &str, extra: &[&str]) -> OpRun {
        let measured = self.work.path().join("measured.json");
        let (engine_mark, registry_mark) = (self.proxy.mark(), self.settled_log().len());
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
        let output = Command::new(std::env::current_exe().unwrap())
            .arg(env!("CARGO_BIN_EXE_op"))
            .args(&args)
            .env("OP_CACHE_ARTIFACTS", "false")
            .current_dir(dir)
            .env(MEASURE, &measured)
            .env("DOCKER_HOST", self.proxy.host())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "op {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let builds = json["builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["seconds"].as_f64().unwrap(),
                    b["creatorSeconds"].as_f64().unwrap(),
                )
            })
            .collect();
        let log = self.settled_log();
        OpRun {
            usage: read_usage(&measured),
            builds,
            engine: self.proxy.since(engine_mark),
            registry: registry_requests(&log[registry_mark..]),
        }
    }
}

/// `dir` with `count` static sites (`app-1`…), nothing to install, built with `builder`.
fn artifacts_project(dir: &Path, count: usize, builder: &str) {
    let names: Vec<String> = (1..=count).map(|i| format!("app-{i}")).collect();
    for name in &names {
        static_app(dir, name, "");
    }
    let artifacts: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), None)).collect();
    buildpacks_skaffold(dir, builder, &artifacts);
}

/// `dir` with one static site, `app`, with `size` random bytes in [`FILES`] files under
/// `app/blob/`.
fn context_project(dir: &Path, size: u64, builder: &str) {
    static_app(dir, "app", "");
    let blob = dir.join("app/blob");
    fs_err::create_dir_all(&blob).unwrap();
    let mut state = size;
    let mut buffer = vec![0u8; 1 << 20];
    for i in 0..FILES {
        let mut file = fs_err::File::create(blob.join(format!("part-{i:02}"))).unwrap();
        let mut left = size / FILES;
        while left > 0 {
            // splitmix64: incompressible, and fast enough for a GiB.
            for word in buffer.chunks_exact_mut(8) {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
            }
            let n = usize::try_from(left.min(buffer.len() as u64)).unwrap();
            file.write_all(&buffer[..n]).unwrap();
            left -= n as u64;
        }
    }
    buildpacks_skaffold(dir, builder, &[("app", None)]);
}

/// The engine's `start` events of the creator containers of the builds publishing to `repo`,
/// watched from before op starts (the engine keeps only its last 256 events, and other builds
/// may share it).
struct CreatorStarts {
    repo: String,
    watch: std::process::Child,
}

impl CreatorStarts {
    fn watch(repo: &str) -> Self {
        let watch = docker_command()
            .args([
                "events",
                "--filter",
                "type=container",
                "--filter",
                "event=start",
                "--filter",
                "label=io.octopilot.op.kind=build",
                "--format",
                "{{.TimeNano}} {{index .Actor.Attributes \"io.octopilot.op.target\"}}",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // `docker events` subscribes once it has reached the engine.
        std::thread::sleep(Duration::from_millis(500));
        Self {
            repo: repo.to_string(),
            watch,
        }
    }

    /// When they started.
    fn stop(mut self) -> Vec<SystemTime> {
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.watch.kill();
        let output = self.watch.wait_with_output().unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, target)| target.starts_with(&format!("{}/", self.repo)))
            .map(|(nanos, _)| UNIX_EPOCH + Duration::from_nanos(nanos.parse().unwrap()))
            .collect()
    }
}

fn seconds_between(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from)
        .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64())
}

/// The figures of one number of artifacts.
#[derive(Default)]
struct ArtifactFigures {
    own_ms: Figure,
    own_ratio: Figure,
    /// With `--concurrency 1`: no build competes with another for the CPUs.
    alone_ms: Figure,
    alone_ratio: Figure,
    cpu_ms: Figure,
    wall_ms: Figure,
    creator_ms: Figure,
    rss_mib: Figure,
    registry: Figure,
    engine: Figure,
    /// Requests per artifact by route (engine) and by kind (registry).
    engine_routes: BTreeMap<String, Figure>,
    registry_kinds: BTreeMap<String, Figure>,
}

/// The figures of one size of context.
#[derive(Default)]
struct ContextFigures {
    first_byte: Figure,
    creator_start: Figure,
    upload: Figure,
    read_ratio: Figure,
    read_mib: Figure,
    /// What op read besides the context's bytes.
    beyond_mib: Figure,
    storage_mib: Figure,
    rss_mib: Figure,
    wall: Figure,
}

#[derive(Default)]
struct Figures {
    artifacts: Vec<ArtifactFigures>,
    context: Vec<ContextFigures>,
}

fn count_by<'a>(items: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item.to_string()).or_insert(0) += 1;
    }
    counts
}

#[allow(
    clippy::cast_precision_loss,
    reason = "counts of requests and artifacts"
)]
fn artifacts_round(bench: &Bench, figures: &mut [ArtifactFigures], id: usize) {
    let addr = bench.registry().addr();
    let (mut own_at_one, mut alone_at_one) = (None, None);
    for (i, count) in COUNTS.into_iter().enumerate() {
        let dir = bench.work.path().join(format!("artifacts-{count}"));
        let run = bench.op(&dir, &format!("{addr}/r{id}-n{count}"), &[]);
        assert_eq!(run.builds.len(), count);
        let own = Figure(run.builds.iter().map(|(op, c)| op - c).collect()).median();
        let creator = Figure(run.builds.iter().map(|(_, c)| *c).collect()).median();
        let own_at_one = *own_at_one.get_or_insert(own);
        let n = count as f64;
        let f = &mut figures[i];
        f.own_ms.push(own * 1000.0);
        f.own_ratio.push(own / own_at_one);
        f.cpu_ms.push(run.usage.cpu / n * 1000.0);
        f.wall_ms.push(run.usage.wall / n * 1000.0);
        f.creator_ms.push(creator * 1000.0);
        f.rss_mib.push(run.usage.max_rss_mib);
        f.registry.push(run.registry.len() as f64 / n);
        f.engine.push(run.engine.len() as f64 / n);
        let routes = count_by(
            run.engine
                .iter()
                .map(|r| format!("{} {}", r.method, r.route))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        );
        for (route, c) in routes {
            f.engine_routes.entry(route).or_default().push(c as f64 / n);
        }
        for (kind, c) in count_by(run.registry.iter().map(String::as_str)) {
            f.registry_kinds.entry(kind).or_default().push(c as f64 / n);
        }
        let alone = bench.op(
            &dir,
            &format!("{addr}/r{id}-one-at-a-time-{count}"),
            &["--concurrency", "1"],
        );
        let alone = Figure(alone.builds.iter().map(|(op, c)| op - c).collect()).median();
        let alone_at_one = *alone_at_one.get_or_insert(alone);
        f.alone_ms.push(alone * 1000.0);
        f.alone_ratio.push(alone / alone_at_one);
    }
    // Each build keeps a cache volume per artifact: 170 a round.
    remove_cache_volumes(&addr);
}

#[allow(clippy::cast_precision_loss, reason = "sizes of a few GiB")]
fn context_round(bench: &Bench, figures: &mut [ContextFigures], id: usize, sizes: usize) {
    let addr = bench.registry().addr();
    for (i, (label, size)) in SIZES.into_iter().enumerate().take(sizes) {
        let dir = bench.work.path().join(format!("context-{i}"));
        let repo = format!("{addr}/r{id}-c{i}");
        let watch = CreatorStarts::watch(&repo);
        let run = bench.op(&dir, &repo, &[]);
        let starts = watch.stop();
        assert_eq!(
            starts.len(),
            1,
            "one creator started for the {label} context"
        );
        let upload = run
            .engine
            .iter()
            .find(|r| r.method == "PUT" && r.route == "/containers/{}/archive")
            .expect("the app's upload");
        let (first, last) = (upload.first_byte.unwrap(), upload.last_byte.unwrap());
        let f = &mut figures[i];
        f.first_byte.push(seconds_between(run.usage.start, first));
        f.creator_start
            .push(seconds_between(run.usage.start, starts[0]));
        f.upload.push(seconds_between(first, last));
        f.read_ratio.push(run.usage.rchar as f64 / size as f64);
        f.read_mib.push(run.usage.rchar as f64 / MIB);
        f.beyond_mib
            .push((run.usage.rchar as f64 - size as f64) / MIB);
        f.storage_mib.push(run.usage.read_bytes as f64 / MIB);
        f.rss_mib.push(run.usage.max_rss_mib);
        f.wall.push(run.usage.wall);
    }
    remove_cache_volumes(&addr);
}

fn today() -> String {
    let out = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The requests per artifact, by route or kind, for each number of artifacts.
fn breakdown(
    r: &mut String,
    what: &str,
    figures: &[ArtifactFigures],
    of: impl Fn(&ArtifactFigures) -> &BTreeMap<String, Figure>,
) {
    let keys: std::collections::BTreeSet<&String> =
        figures.iter().flat_map(|f| of(f).keys()).collect();
    let _ = write!(r, "\n| {what} per artifact |");
    for count in COUNTS {
        let _ = write!(r, " {count} |");
    }
    let _ = write!(r, "\n| --- |{}\n", " --- |".repeat(COUNTS.len()));
    for key in keys {
        let _ = write!(r, "| `{key}` |");
        for f in figures {
            let value = of(f).get(key).map_or(0.0, Figure::median);
            let _ = write!(r, " {} |", chart::short(value));
        }
        r.push('\n');
    }
}

fn report(f: &Figures, rounds: usize, engine: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let concurrency = op::execute::default_concurrency();
    let mut r = String::new();
    let _ = writeln!(
        r,
        "{}, the machine: {cpus} CPUs; {engine}. op's own builder (op-lifecycle). op's default concurrency ({concurrency}). {rounds} rounds; every figure is the median (min – max) of its rounds, every ratio taken within a round.\n",
        today()
    );
    let _ = writeln!(
        r,
        "### Artifacts in one `op build-push`\n\n| artifacts | op's own time per artifact | ÷ one artifact's (target 0.8 – 1.2) | with `--concurrency 1` | ÷ one artifact's | op's CPU per artifact | op's wall ÷ artifacts | creator run (median) | op's peak RSS (target < 100 MiB at 64) | registry requests per artifact | engine requests per artifact |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (count, a) in COUNTS.iter().zip(&f.artifacts) {
        let ratio = a.own_ratio.median();
        let verdict = if (0.8..=1.2).contains(&ratio) {
            "met"
        } else {
            "**missed**"
        };
        let _ = writeln!(
            r,
            "| {count} | {} | {} ({verdict}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            a.own_ms.show(1.0, " ms"),
            a.own_ratio.show(1.0, ""),
            a.alone_ms.show(1.0, " ms"),
            a.alone_ratio.show(1.0, ""),
            a.cpu_ms.show(1.0, " ms"),
            a.wall_ms.show(1.0, " ms"),
            a.creator_ms.show(1.0, " ms"),
            a.rss_mib.show(1.0, " MiB"),
            a.registry.show(1.0, ""),
            a.engine.show(1.0, ""),
        );
    }
    breakdown(&mut r, "engine requests", &f.artifacts, |a| {
        &a.engine_routes
    });
    breakdown(&mut r, "registry requests", &f.artifacts, |a| {
        &a.registry_kinds
    });
    let _ = writeln!(
        r,
        "\n### The app's context\n\n| context | op's start → first byte of the app at the engine | → the creator's start | the upload, first byte to last | bytes read by op (`rchar`) | ÷ the context's size | besides the context | of them from storage (`read_bytes`) | op's peak RSS (target < 100 MiB) | op's wall time |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for ((label, _), c) in SIZES.iter().zip(&f.context) {
        let _ = writeln!(
            r,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.first_byte.show(1.0, " s"),
            c.creator_start.show(1.0, " s"),
            c.upload.show(1.0, " s"),
            c.read_mib.show(1.0, " MiB"),
            c.read_ratio.show(1.0, ""),
            c.beyond_mib.show(1.0, " MiB"),
            c.storage_mib.show(1.0, " MiB"),
            c.rss_mib.show(1.0, " MiB"),
            c.wall.show(1.0, " s"),
        );
    }
    r
}

/// The curves of the artifacts, as SVG.
fn artifacts_chart(f: &Figures, subtitle: [&str; 2]) -> String {
    let own_at_one = f.artifacts[0].own_ms.median();
    let labels: Vec<String> = COUNTS.iter().map(ToString::to_string).collect();
    #[allow(clippy::cast_precision_loss, reason = "a few artifacts")]
    let counts: Vec<(&str, f64)> = labels
        .iter()
        .zip(COUNTS)
        .map(|(label, count)| (label.as_str(), (count as f64).log2()))
        .collect();
    let series =
        |name: &str, color: &'static str, of: &dyn Fn(&ArtifactFigures) -> Figure| Series {
            name: name.to_string(),
            color,
            points: f.artifacts.iter().map(of).collect(),
        };
    chart::svg(
        "How op's cost grows with the artifacts of one op build-push",
        subtitle,
        "artifacts in the build (log scale)",
        &counts,
        &[
            Panel {
                title: "op's own time per artifact (ms)".into(),
                series: vec![
                    series("default concurrency", "#2e86c1", &|a| a.own_ms.clone()),
                    series("--concurrency 1", "#d35400", &|a| a.alone_ms.clone()),
                ],
                target: Some((
                    Target::Within(own_at_one * 0.8, own_at_one * 1.2),
                    "one artifact's ±20 %".into(),
                )),
            },
            Panel {
                title: "op's peak RSS (MiB)".into(),
                series: vec![series("RSS", "#8e44ad", &|a| a.rss_mib.clone())],
                target: Some((Target::AtMost(100.0), "target < 100 MiB".into())),
            },
            Panel {
                title: "requests per artifact".into(),
                series: vec![
                    series("engine", "#2e86c1", &|a| a.engine.clone()),
                    series("registry", "#d35400", &|a| a.registry.clone()),
                ],
                target: None,
            },
            Panel {
                title: "op's time per artifact (ms)".into(),
                series: vec![
                    series("wall ÷ artifacts", "#16a085", &|a| a.wall_ms.clone()),
                    series("CPU", "#7f8c8d", &|a| a.cpu_ms.clone()),
                ],
                target: None,
            },
        ],
    )
}

/// The curves of the context, as SVG.
fn context_chart(f: &Figures, subtitle: [&str; 2]) -> String {
    #[allow(clippy::cast_precision_loss, reason = "sizes of a few GiB")]
    let sizes: Vec<(&str, f64)> = SIZES
        .iter()
        .map(|(label, size)| (*label, (*size as f64).log2()))
        .collect();
    let context =
        |name: &str, color: &'static str, of: &dyn Fn(&ContextFigures) -> Figure| Series {
            name: name.to_string(),
            color,
            points: f.context.iter().map(of).collect(),
        };
    chart::svg(
        "How op's cost grows with the app's context",
        subtitle,
        "the context's size (log scale)",
        &sizes,
        &[
            Panel {
                title: "from op's start (s)".into(),
                series: vec![
                    context("first byte at the engine", "#d35400", &|c| {
                        c.first_byte.clone()
                    }),
                    context("creator starts", "#2e86c1", &|c| c.creator_start.clone()),
                ],
                target: None,
            },
            Panel {
                title: "op's peak RSS (MiB)".into(),
                series: vec![context("RSS", "#8e44ad", &|c| c.rss_mib.clone())],
                target: Some((Target::AtMost(100.0), "target < 100 MiB".into())),
            },
            Panel {
                title: "bytes op read ÷ the context's size".into(),
                series: vec![context("rchar", "#16a085", &|c| c.read_ratio.clone())],
                target: None,
            },
            Panel {
                title: "MiB op read besides the context".into(),
                series: vec![context("rchar", "#7f8c8d", &|c| c.beyond_mib.clone())],
                target: None,
            },
        ],
    )
}

/// Both pictures, in `docs/benchmarks/`.
fn charts(f: &Figures, rounds: usize, engine: &str) {
    let first = format!("{}; {engine}", today());
    let second = format!(
        "op's builder (op-lifecycle); {rounds} rounds: the median, whiskers from min to max"
    );
    let subtitle = [first.as_str(), second.as_str()];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks");
    fs_err::create_dir_all(&dir).unwrap();
    for (name, svg) in [
        ("cost-artifacts.svg", artifacts_chart(f, subtitle)),
        ("cost-context.svg", context_chart(f, subtitle)),
    ] {
        fs_err::write(dir.join(name), svg).unwrap();
        println!("(drawn in docs/benchmarks/{name})");
    }
}

fn run(engine: Engine) {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // A registry, the busybox base images and op's builder (op-lifecycle), pulled into the
    // engine; the cache volumes go with the stack.
    let stack = Stack::start(Lifecycle::Op);
    let upstream = PathBuf::from(engine.host().trim_start_matches("unix://"));
    let bench = Bench {
        proxy: proxy::EngineProxy::start(&upstream),
        work: tempfile::tempdir().unwrap(),
        stack,
    };
    for count in COUNTS {
        artifacts_project(
            &bench.work.path().join(format!("artifacts-{count}")),
            count,
            &bench.stack.builder,
        );
    }
    for (i, (_, size)) in SIZES.into_iter().enumerate() {
        context_project(
            &bench.work.path().join(format!("context-{i}")),
            size,
            &bench.stack.builder,
        );
    }
    let mut warm_up = Figures::default();
    warm_up
        .artifacts
        .resize_with(COUNTS.len(), Default::default);
    warm_up.context.resize_with(SIZES.len(), Default::default);
    artifacts_round(&bench, &mut warm_up.artifacts, 0);
    context_round(&bench, &mut warm_up.context, 0, 1);
    let mut figures = Figures::default();
    figures
        .artifacts
        .resize_with(COUNTS.len(), Default::default);
    figures.context.resize_with(SIZES.len(), Default::default);
    for id in 1..=rounds {
        artifacts_round(&bench, &mut figures.artifacts, id);
        context_round(&bench, &mut figures.context, id, SIZES.len());
        println!("round {id} of {rounds} done");
    }
    let engine_line = support::engine_line();
    let report = report(&figures, rounds, &engine_line);
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cost.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to target/bench-cost.md)");
    charts(&figures, rounds, &engine_line);
}

fn main() {
    if let Some(out) = std::env::var_os(MEASURE) {
        measure(Path::new(&out));
    }
    let engine = match std::env::var("DOCKER_HOST") {
        Ok(host) if host == Engine::Docker20.host() => Engine::Docker20,
        Ok(host) if host != Engine::Current.host() => {
            panic!(
                "the cost benchmark runs on the current engine or on Docker 20.10 (OP_TEST_ENGINE_20_10), not on {host}"
            )
        }
        _ => Engine::Current,
    };
    engine.run(|| run(engine));
}
