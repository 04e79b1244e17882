//! The promotion benchmark: `op promote-image` against `skopeo copy` (Debian's) and `crane copy`
//! (the reference tools'), on real registries, between two and within one. Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench promote
//! ```
//!
//! Two images: a 3-layer image of 99 MiB (3 × 33 MiB of incompressible bytes, pushed by crane),
//! and a two-platform index (op's busybox base for linux/amd64 and linux/arm64). Every round
//! copies each, with each tool, to a new registry (across) and within a new registry that holds
//! it (within; put there first, untimed), and measures the wall time and the peak memory (GNU
//! time's maximum resident set size) of each copy, and within one registry the blob uploads the
//! registry logged (a mount is not one).
//! Figures are the median (min – max) of `OP_BENCH_ROUNDS` rounds (default 3); the ratios are
//! taken within a round. The report is printed and written to `target/bench-promote.md`.

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

/// The integration tests' helpers: the registry, crane, the busyboxes.
#[path = "../tests/it/common/mod.rs"]
mod common;
/// What the benchmarks share: figures over rounds.
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::TestContext;
use common::cnb::{crane, random_image, two_platform_bases};
use common::registry::{Registry, which};
use support::{Figure, verdict};

const TOOLS: [&str; 3] = ["op", "skopeo", "crane"];

/// One measured copy: seconds (wall time around GNU time, which adds the same to every tool)
/// and peak memory in MiB (GNU time's maximum resident set).
fn timed(command: &Command) -> (f64, f64) {
    let time = which("time")
        .filter(|t| t.starts_with("/usr/bin"))
        .unwrap_or_else(|| "/usr/bin/time".into());
    let report = tempfile::NamedTempFile::new().unwrap();
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut timed = Command::new(time);
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(program)
        .args(args);
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    // GNU time reports wall time in hundredths: too coarse for copies of 60 ms.
    let start = std::time::Instant::now();
    let out = timed.output().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}{}",
        timed,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs_err::read_to_string(report.path()).unwrap();
    let kib: f64 = text.trim().parse().unwrap();
    (seconds, kib / 1024.0)
}

/// `tool` copying `source` (`repo/name:tag`, digest `digest`) to `destination`.
fn copy(tool: &str, work: &Path, source: &str, digest: &str, destination: &str) -> (f64, f64) {
    match tool {
        "op" => {
            let (from, name) = source.rsplit_once('/').unwrap();
            let (to, _) = destination.rsplit_once('/').unwrap();
            let dir = work.join(format!("op-{}", to.replace(['/', ':'], "-")));
            fs_err::create_dir_all(&dir).unwrap();
            let entry = serde_json::json!({"builds": [{"imageName": name.split(':').next().unwrap(), "tag": format!("{source}@{digest}")}]});
            fs_err::write(dir.join("build_result.json"), entry.to_string()).unwrap();
            let mut command = Command::new(env!("CARGO_BIN_EXE_op"));
            command
                .args(["promote-image", "-q", "--from", from, "--to", to])
                .current_dir(&dir);
            timed(&command)
        }
        "skopeo" => {
            let mut command = Command::new(which("skopeo").expect("skopeo (scripts/dev-env)"));
            command.args([
                "copy",
                "--all",
                "--preserve-digests",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{source}"),
                &format!("docker://{destination}"),
            ]);
            timed(&command)
        }
        _ => {
            let mut command = Command::new(crane());
            command.args(["copy", source, destination]);
            timed(&command)
        }
    }
}

#[track_caller]
fn digest_of(image: &str) -> String {
    let out = Command::new(crane())
        .args(["digest", image])
        .output()
        .unwrap();
    assert!(out.status.success(), "crane digest {image}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Blob uploads (not mounts) the registry logged for repositories under `prefix/`.
fn uploads(log: &str, prefix: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("/v2/{prefix}/")) && l.contains("/blobs/uploads"))
        .filter(|l| !l.contains("mount="))
        .filter(|l| l.contains("method=PUT") || l.contains("method=PATCH"))
        .count()
}

#[derive(Default)]
struct Figures {
    seconds: BTreeMap<(String, &'static str), Figure>,
    memory: BTreeMap<(String, &'static str), Figure>,
    uploads: BTreeMap<(String, &'static str), Figure>,
    op_ratio: BTreeMap<String, Figure>,
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let a = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let setup = TestContext::new();
    let big = format!("{}/src/big:v1", a.addr());
    let big_digest = random_image(work.path(), &big, &[33, 33, 33]);
    let (_, index) = two_platform_bases(&setup, &format!("{}/src", a.addr()));
    let index_digest = digest_of(&index);
    let images = [
        ("image", &big, &big_digest),
        ("index", &index, &index_digest),
    ];
    let mut figures = Figures::default();
    for round in 0..=rounds {
        let mut seconds: BTreeMap<(String, &str), f64> = BTreeMap::new();
        for (kind, source, digest) in &images {
            for place in ["across", "within"] {
                for tool in TOOLS {
                    // A registry of its own for every copy, so that no tool finds the blobs in
                    // another repository of the destination (skopeo would mount them from
                    // there); within one registry, the image is put there first, untimed.
                    let registry = Registry::start();
                    let name = source.rsplit_once('/').unwrap().1;
                    let source = if place == "within" {
                        let seeded = format!("{}/src/{name}", registry.addr());
                        let out = Command::new(crane())
                            .args(["copy", source, &seeded])
                            .output()
                            .unwrap();
                        assert!(out.status.success(), "crane copy {source} {seeded}");
                        seeded
                    } else {
                        (*source).clone()
                    };
                    let prefix = format!("{tool}-{kind}");
                    let destination = format!("{}/{prefix}/{name}", registry.addr());
                    let before = registry.log().len();
                    let (s, mib) = copy(tool, work.path(), &source, digest, &destination);
                    assert_eq!(&digest_of(&destination), *digest, "{tool} kept the digest");
                    if round == 0 {
                        continue; // warm-up
                    }
                    let case = format!("{kind}, {place}");
                    seconds.insert((case.clone(), tool), s);
                    figures
                        .seconds
                        .entry((case.clone(), tool))
                        .or_default()
                        .push(s);
                    figures
                        .memory
                        .entry((case.clone(), tool))
                        .or_default()
                        .push(mib);
                    if place == "within" {
                        let count = uploads(&registry.log()[before..], &prefix);
                        figures
                            .uploads
                            .entry((case, tool))
                            .or_default()
                            .push(u32::try_from(count).map_or(f64::NAN, f64::from));
                    }
                }
            }
        }
        for (kind, _, _) in &images {
            for place in ["across", "within"] {
                let case = format!("{kind}, {place}");
                let op = seconds.get(&(case.clone(), "op"));
                let skopeo = seconds.get(&(case.clone(), "skopeo"));
                let crane = seconds.get(&(case.clone(), "crane"));
                if let (Some(op), Some(skopeo), Some(crane)) = (op, skopeo, crane) {
                    let base = if place == "within" {
                        *skopeo
                    } else {
                        skopeo.min(*crane)
                    };
                    figures.op_ratio.entry(case).or_default().push(op / base);
                }
            }
        }
        if round > 0 {
            println!("round {round} of {rounds} done");
        }
    }
    let report = report(&figures, rounds);
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-promote.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}

fn report(f: &Figures, rounds: usize) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "Medians (min – max) of {rounds} rounds. Wall time in milliseconds; peak memory (maximum resident set) in MiB.\n"
    );
    let _ = writeln!(
        r,
        "| case | op | skopeo copy | crane copy | op ÷ {{faster across, skopeo within}} | target | peak memory op / skopeo / crane | blob uploads within (op / skopeo / crane) |"
    );
    let _ = writeln!(r, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    for kind in ["image", "index"] {
        for place in ["across", "within"] {
            let case = format!("{kind}, {place}");
            let get = |map: &BTreeMap<(String, &'static str), Figure>, tool: &'static str| {
                map.get(&(case.clone(), tool)).cloned().unwrap_or_default()
            };
            let ratio = f.op_ratio.get(&case).cloned().unwrap_or_default();
            let target = if place == "within" { 0.5 } else { 1.0 };
            let uploads = if place == "within" {
                TOOLS
                    .iter()
                    .map(|t| format!("{:.0}", get(&f.uploads, t).median()))
                    .collect::<Vec<_>>()
                    .join(" / ")
            } else {
                "–".into()
            };
            let memory = TOOLS
                .iter()
                .map(|t| format!("{:.0}", get(&f.memory, t).median()))
                .collect::<Vec<_>>()
                .join(" / ");
            let _ = writeln!(
                r,
                "| {case} | {} | {} | {} | {} | ≤ {target}: {} | {memory} | {uploads} |",
                get(&f.seconds, "op").show(1000.0, " ms"),
                get(&f.seconds, "skopeo").show(1000.0, " ms"),
                get(&f.seconds, "crane").show(1000.0, " ms"),
                ratio.show(1.0, "×"),
                verdict(ratio.median(), target)
            );
        }
    }
    r
}
