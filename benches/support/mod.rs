//! What the benchmarks share: a figure measured over rounds, reported as its median and spread;
//! the apps they build.

use std::fmt::Write as _;
use std::path::Path;

/// The median and the spread of a figure's rounds.
#[derive(Clone, Debug, Default)]
pub struct Figure(pub Vec<f64>);

impl Figure {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut values = self.0.clone();
        values.sort_by(f64::total_cmp);
        values
    }

    pub fn median(&self) -> f64 {
        let values = self.sorted();
        let n = values.len();
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => values[n / 2],
            _ => f64::midpoint(values[n / 2 - 1], values[n / 2]),
        }
    }

    /// `median (min – max)`, scaled.
    pub fn show(&self, scale: f64, unit: &str) -> String {
        let values = self.sorted();
        let (min, max) = (
            values.first().copied().unwrap_or(f64::NAN),
            values.last().copied().unwrap_or(f64::NAN),
        );
        format!(
            "{:.2}{unit} ({:.2} – {:.2})",
            self.median() * scale,
            min * scale,
            max * scale
        )
    }
}

/// `value` against `target` (at most).
pub fn verdict(value: f64, target: f64) -> &'static str {
    if value <= target { "met" } else { "**missed**" }
}

/// What an app "installs" with the fixture's `op/deps` buildpack (a launch and cache layer): two
/// dependencies of 8 MiB, each after a 0.25 s wait, as a real build downloads and writes its
/// dependencies (`npm ci`, `go mod download`).
pub const DEPS: &str = "runtime 8 0.25\nframework 8 0.25\n";

/// `dir/name`: a static site whose `deps.txt` lists `deps` (no file when empty).
pub fn static_app(dir: &Path, name: &str, deps: &str) {
    let app = dir.join(name);
    fs_err::create_dir_all(app.join("public")).unwrap();
    fs_err::write(app.join("public/index.html"), format!("<h1>{name}</h1>\n")).unwrap();
    if !deps.is_empty() {
        fs_err::write(app.join("deps.txt"), deps).unwrap();
    }
}

/// `dir/skaffold.yaml`: a buildpacks artifact built with `builder` for each `(name, run image)`,
/// its context the directory `name`.
pub fn buildpacks_skaffold(dir: &Path, builder: &str, artifacts: &[(&str, Option<&str>)]) {
    let mut yaml =
        String::from("apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n");
    for (name, run_image) in artifacts {
        let _ = writeln!(
            yaml,
            "    - image: {name}\n      context: {name}\n      buildpacks:\n        builder: {builder}\n        trustBuilder: true"
        );
        if let Some(run_image) = run_image {
            let _ = writeln!(yaml, "        runImage: {run_image}");
        }
    }
    fs_err::write(dir.join("skaffold.yaml"), yaml).unwrap();
}

/// What `docker` says of the engine the benches run on: version, image store and API.
pub fn engine_line() -> String {
    let format = "Docker Engine {{.ServerVersion}}, storage driver {{.Driver}}{{range .DriverStatus}}{{if eq (index . 0) \"driver-type\"}} ({{index . 1}}){{end}}{{end}}";
    let info = std::process::Command::new("docker")
        .args(["info", "--format", format])
        .output()
        .unwrap();
    let api = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    format!(
        "{}, API {}",
        String::from_utf8_lossy(&info.stdout).trim(),
        String::from_utf8_lossy(&api.stdout).trim()
    )
}

/// `program args…` run in `dir` with only `PATH`, `HOME` (`home`: skaffold's cache lives there),
/// `DOCKER_HOST` when set, and `env`; timed. It must succeed.
pub fn timed(
    dir: &Path,
    home: &Path,
    program: &Path,
    args: &[&str],
    env: &[(&str, std::path::PathBuf)],
) -> f64 {
    let started = std::time::Instant::now();
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        // The benches measure builds: op builds each time rather than reusing an earlier one.
        .env("OP_CACHE_ARTIFACTS", "false")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
        .output()
        .unwrap();
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
