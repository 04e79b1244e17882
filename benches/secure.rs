//! What HTTPS and the token flow cost: the same promotion and the same one-artifact build against
//! plain-HTTP registries and against HTTPS registries of a private CA that want tokens (the real
//! distribution registry with `auth: token`, the test token issuer of `tests/it/common/token.rs`).
//! Run it with
//!
//! ```sh
//! export OP_LIFECYCLE_DIR="$(scripts/build-lifecycle)" OP_REFERENCE_TOOLS="$(scripts/reference-tools)"
//! cargo bench --bench secure
//! ```
//!
//! Every round:
//!
//! 1. promotes a two-platform index (op's busybox base, linux/amd64 and linux/arm64) from a
//!    source registry to a new one, with `op promote-image` and with `crane copy` (v0.22.1), both
//!    registries plain HTTP, then both HTTPS with tokens;
//! 2. builds one artifact (a static site) with `op build-push` into a new repository, with op's
//!    builder (op-lifecycle) and with pack's (the real lifecycle), to a plain-HTTP registry, then
//!    to an HTTPS one with tokens (the builder and run image stay in the plain registry).
//!
//! For each: the wall time, the requests the registries answered (their log's `response
//! completed` and `error authorizing context` lines: every request, the refused ones too) and the
//! tokens asked for. Figures are the median (min – max) of `OP_BENCH_ROUNDS` rounds (default 5),
//! after one warm-up round; ratios are taken within a round. The report is printed and written to
//! `target/bench-secure.md`.

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

/// The integration tests' helpers: registries, the test CA and token issuer, crane, builders.
#[path = "../tests/it/common/mod.rs"]
mod common;
/// What the benchmarks share: figures over rounds.
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use common::TestContext;
use common::cnb::{Lifecycle, Stack, crane, two_platform_bases};
use common::registry::Registry;
use common::tls::{SigningKey, TestCa};
use common::token::TokenServer;
use support::{Figure, buildpacks_skaffold, engine_line, static_app};

/// The requests a registry's log shows since `from` (its length then).
fn requests(registry: &Registry, from: usize) -> usize {
    registry.settled_log()[from..]
        .lines()
        .filter(|l| {
            l.contains("msg=\"response completed") || l.contains("msg=\"error authorizing context")
        })
        .count()
}

/// HTTPS registries of a private CA with the token flow, and what their clients need.
struct Secure {
    ca: TestCa,
    key: Arc<SigningKey>,
    issuer: TokenServer,
    /// A `HOME` whose Docker configuration has credentials for every registry of the bench.
    home: tempfile::TempDir,
    hosts: std::sync::Mutex<Vec<String>>,
}

impl Secure {
    fn new() -> Self {
        let ca = TestCa::new();
        let key = Arc::new(SigningKey::new());
        let issuer = TokenServer::start(Arc::clone(&key), &ca.server("issuer"));
        Self {
            ca,
            key,
            issuer,
            home: tempfile::tempdir().unwrap(),
            hosts: std::sync::Mutex::default(),
        }
    }

    /// A new registry: plain HTTP, or HTTPS with tokens; either way the bench's Docker
    /// configuration has credentials for it.
    fn registry(&self, secure: bool) -> Registry {
        let registry = if secure {
            Registry::start_secure(&self.ca.server("registry"), &self.issuer, &self.key)
        } else {
            Registry::start()
        };
        let mut hosts = self.hosts.lock().unwrap();
        hosts.push(registry.addr());
        let auths: serde_json::Map<String, serde_json::Value> = hosts
            .iter()
            .map(|h| {
                let basic = base64_basic();
                (h.clone(), serde_json::json!({ "auth": basic }))
            })
            .collect();
        fs_err::create_dir_all(self.home.path().join(".docker")).unwrap();
        fs_err::write(
            self.home.path().join(".docker/config.json"),
            serde_json::json!({ "auths": auths }).to_string(),
        )
        .unwrap();
        registry
    }

    /// `program args…` (op or crane) with the bench's credentials, and its CA when `https` (op's
    /// `OP_REGISTRY_CA_PATH`, crane's `SSL_CERT_FILE`); its wall time.
    fn run(&self, dir: &Path, program: &Path, args: &[&str], https: bool) -> f64 {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env("HOME", self.home.path())
            .env("OP_CACHE_ARTIFACTS", "false")
            .env("DOCKER_CONFIG", self.home.path().join(".docker"));
        if https {
            command
                .env("OP_REGISTRY_CA_PATH", self.ca.cert())
                .env("SSL_CERT_FILE", self.ca.cert());
        }
        let started = Instant::now();
        let output = command.output().unwrap();
        let wall = started.elapsed().as_secs_f64();
        assert!(
            output.status.success(),
            "{} {} failed:\n{}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        wall
    }
}

fn base64_basic() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        common::registry::TEST_USER,
        common::registry::TEST_PASSWORD
    ))
}

/// One case's figures: wall seconds, registry requests, token requests.
#[derive(Default)]
struct Case {
    seconds: Figure,
    requests: Figure,
    tokens: Figure,
}

#[derive(Default)]
struct Figures {
    cases: BTreeMap<(String, &'static str), Case>,
    /// HTTPS with tokens ÷ plain HTTP, wall time, per (what, who).
    ratios: BTreeMap<(String, &'static str), Figure>,
}

const TRANSPORTS: [(&str, bool); 2] = [("plain HTTP", false), ("HTTPS + tokens", true)];

/// Promotes `index` (in `sources`' registry of each transport) with op and crane.
fn promotions(
    secure: &Secure,
    sources: &[(Registry, String, String); 2],
    work: &Path,
    figures: Option<&mut Figures>,
) {
    let mut walls: BTreeMap<(&str, bool), f64> = BTreeMap::new();
    let mut measured = Vec::new();
    for (((transport, https), (source_registry, source, digest)), n) in
        TRANSPORTS.iter().zip(sources).zip(0..)
    {
        for tool in ["op", "crane"] {
            let destination = secure.registry(*https);
            let (source_mark, destination_mark) =
                (source_registry.log().len(), destination.log().len());
            let tokens_before = secure.issuer.requests();
            let wall = if tool == "op" {
                let dir = work.join(format!(
                    "promote-{n}-{}",
                    destination.addr().replace(':', "-")
                ));
                fs_err::create_dir_all(&dir).unwrap();
                let entry = serde_json::json!({"builds": [{"imageName": "busybox-run", "tag": format!("{source}@{digest}")}]});
                fs_err::write(dir.join("build_result.json"), entry.to_string()).unwrap();
                let from = source.rsplit_once('/').unwrap().0;
                let to = format!("{}/live", destination.addr());
                secure.run(
                    &dir,
                    Path::new(env!("CARGO_BIN_EXE_op")),
                    &["promote-image", "-q", "--from", from, "--to", &to],
                    *https,
                )
            } else {
                let to = format!("{}/live/busybox-run:latest", destination.addr());
                secure.run(work, &crane(), &["copy", source, &to], *https)
            };
            let count =
                requests(source_registry, source_mark) + requests(&destination, destination_mark);
            let tokens = secure.issuer.requests() - tokens_before;
            walls.insert((tool, *https), wall);
            measured.push((transport.to_string(), tool, wall, count, tokens));
        }
    }
    let Some(figures) = figures else { return };
    for (transport, tool, wall, count, tokens) in measured {
        let case = figures
            .cases
            .entry((format!("promote, {transport}"), tool))
            .or_default();
        case.seconds.push(wall);
        case.requests.push(float(count));
        case.tokens.push(float(tokens));
    }
    for tool in ["op", "crane"] {
        figures
            .ratios
            .entry(("promote".into(), tool))
            .or_default()
            .push(walls[&(tool, true)] / walls[&(tool, false)]);
    }
}

/// Builds the one-artifact project in `dir` with each builder, to a new repository of each
/// transport's `targets` registry.
fn builds(
    secure: &Secure,
    targets: &[Registry; 2],
    projects: &[(&'static str, std::path::PathBuf)],
    id: usize,
    figures: Option<&mut Figures>,
) {
    let mut walls: BTreeMap<(&str, bool), f64> = BTreeMap::new();
    let mut measured = Vec::new();
    for ((transport, https), target) in TRANSPORTS.iter().zip(targets) {
        for (who, dir) in projects {
            let mark = target.log().len();
            let tokens_before = secure.issuer.requests();
            let repo = format!("{}/r{id}-{}", target.addr(), who.replace(' ', "-"));
            let wall = secure.run(
                dir,
                Path::new(env!("CARGO_BIN_EXE_op")),
                &["build-push", "--repo", &repo, "-q", "--pull", "never"],
                *https,
            );
            let count = requests(target, mark);
            let tokens = secure.issuer.requests() - tokens_before;
            walls.insert((who, *https), wall);
            measured.push((transport.to_string(), *who, wall, count, tokens));
        }
    }
    let Some(figures) = figures else { return };
    for (transport, who, wall, count, tokens) in measured {
        let case = figures
            .cases
            .entry((format!("build, {transport}"), who))
            .or_default();
        case.seconds.push(wall);
        case.requests.push(float(count));
        case.tokens.push(float(tokens));
    }
    for (who, _) in projects {
        figures
            .ratios
            .entry(("build".into(), who))
            .or_default()
            .push(walls[&(*who, true)] / walls[&(*who, false)]);
    }
}

fn main() {
    let rounds: usize = std::env::var("OP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let stack = Stack::start(Lifecycle::Op);
    let reference = stack.another_builder(Lifecycle::Reference, "pack-builder", None);
    let secure = Secure::new();
    let work = tempfile::tempdir().unwrap();

    // The index to promote, in a plain source registry and in an HTTPS one.
    let setup = TestContext::new();
    let plain_source = secure.registry(false);
    let (_, index) = two_platform_bases(&setup, &format!("{}/src", plain_source.addr()));
    let https_source = secure.registry(true);
    let https_index = format!("{}/src/op/busybox-run:latest", https_source.addr());
    let copied = Command::new(crane())
        .args(["copy", &index, &https_index])
        .env("DOCKER_CONFIG", secure.home.path().join(".docker"))
        .env("SSL_CERT_FILE", secure.ca.cert())
        .output()
        .unwrap();
    assert!(copied.status.success(), "{copied:?}");
    let digest = String::from_utf8_lossy(
        &Command::new(crane())
            .args(["digest", &index])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let sources = [
        (plain_source, index, digest.clone()),
        (https_source, https_index, digest),
    ];

    // The one-artifact project, with each builder.
    let projects: Vec<(&'static str, std::path::PathBuf)> = [
        ("op-lifecycle", stack.builder.clone()),
        ("real lifecycle", reference),
    ]
    .into_iter()
    .map(|(who, builder)| {
        let dir = work.path().join(who.replace(' ', "-"));
        fs_err::create_dir_all(&dir).unwrap();
        static_app(&dir, "site", "");
        buildpacks_skaffold(&dir, &builder, &[("site", None)]);
        (who, dir)
    })
    .collect();
    let targets = [secure.registry(false), secure.registry(true)];
    // Whoever is first pays for the engine's and the registries' first use: a warm-up round.
    promotions(&secure, &sources, work.path(), None);
    builds(&secure, &targets, &projects, 0, None);
    let mut figures = Figures::default();
    for id in 1..=rounds {
        promotions(&secure, &sources, work.path(), Some(&mut figures));
        builds(&secure, &targets, &projects, id, Some(&mut figures));
        println!("round {id} of {rounds} done");
    }
    drop(stack);
    let report = report(&figures, rounds);
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-secure.md");
    fs_err::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}

fn report(f: &Figures, rounds: usize) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "{}. Medians (min – max) of {rounds} rounds; wall time in milliseconds.\n",
        engine_line()
    );
    let _ = writeln!(
        r,
        "| case | who | wall time | registry requests | token requests |"
    );
    let _ = writeln!(r, "| --- | --- | --- | --- | --- |");
    for ((case, who), figures) in &f.cases {
        let _ = writeln!(
            r,
            "| {case} | {who} | {} | {} | {} |",
            figures.seconds.show(1000.0, " ms"),
            whole(&figures.requests),
            whole(&figures.tokens),
        );
    }
    let _ = writeln!(
        r,
        "\n| what | who | HTTPS + tokens ÷ plain HTTP, wall time |\n| --- | --- | --- |"
    );
    for ((what, who), ratio) in &f.ratios {
        let _ = writeln!(r, "| {what} | {who} | {} |", ratio.show(1.0, "×"));
    }
    r
}

fn float(count: usize) -> f64 {
    u32::try_from(count).map_or(f64::NAN, f64::from)
}

/// A count's median, and its spread when it has one.
fn whole(figure: &Figure) -> String {
    let mut values = figure.0.clone();
    values.sort_by(f64::total_cmp);
    let (min, max) = (
        values.first().copied().unwrap_or(f64::NAN),
        values.last().copied().unwrap_or(f64::NAN),
    );
    if (min - max).abs() < f64::EPSILON {
        format!("{:.0}", figure.median())
    } else {
        format!("{:.0} ({min:.0} – {max:.0})", figure.median())
    }
}
