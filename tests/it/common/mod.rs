//! Helpers shared by the integration tests.

pub mod cnb;
pub mod docker;
pub mod kube;
pub mod kubelet;
pub mod registry;
pub mod remote;
pub mod tls;
pub mod token;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's `fixtures/` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A test's own directory, optionally holding a copy of a fixture, and the environment `op`
/// runs with there: only `PATH`, and a `HOME` inside the test directory, plus what the test
/// adds, so that nothing of the machine's configuration leaks in. `op` runs on the test's
/// engine ([`docker::Engine::of_this_test`] when the context is made).
pub struct TestContext {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    engine: docker::Engine,
}

impl TestContext {
    /// An empty directory.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("op-test-")
            .tempdir()
            .expect("a temporary directory");
        fs_err::create_dir_all(dir.path().join(".home")).expect("a home directory");
        let engine = docker::Engine::of_this_test();
        Self {
            dir,
            env: engine
                .env()
                .map(|(k, v)| (k.to_string(), v))
                .into_iter()
                .collect(),
            engine,
        }
    }

    /// A copy of `fixtures/skaffold/<name>`.
    pub fn fixture(name: &str) -> Self {
        let context = Self::new();
        copy_dir(&fixtures().join("skaffold").join(name), context.path());
        context
    }

    /// The test directory (where `op` runs).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `relative` inside the test directory.
    pub fn write(&self, relative: &str, text: &str) -> &Self {
        let path = self.path().join(relative);
        fs_err::create_dir_all(path.parent().expect("a parent directory"))
            .expect("the parent directory is created");
        fs_err::write(path, text).expect("the file is written");
        self
    }

    /// Replaces, in the file `relative` of the test directory, each `(from, to)` in order.
    pub fn replace_in(&self, relative: &str, replacements: &[(&str, &str)]) -> &Self {
        let path = self.path().join(relative);
        let text = fs_err::read_to_string(&path).expect("the file is read");
        let text = replacements
            .iter()
            .fold(text, |text, (from, to)| text.replace(from, to));
        fs_err::write(path, text).expect("the file is written");
        self
    }

    /// The `HOME` of `op` runs: the test's, or the one it set.
    pub fn home(&self) -> PathBuf {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == "HOME")
            .map_or_else(|| self.path().join(".home"), |(_, v)| PathBuf::from(v))
    }

    /// Adds an environment variable for every later `op` run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The command `op args…` in the test directory, with the test's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_op"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path().join(".home"))
            // Each build builds (the tests of reuse, tests/it/reuse.rs, turn it on).
            .env("OP_CACHE_ARTIFACTS", "false")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `op args…` in the test directory.
    pub fn op(&self, args: &[&str]) -> Run {
        self.run(self.command(args), args)
    }

    /// Runs `op args…` in `dir`, a directory of the test directory.
    pub fn op_in(&self, dir: &str, args: &[&str]) -> Run {
        let mut command = self.command(args);
        command.current_dir(self.path().join(dir));
        self.run(command, args)
    }

    /// Runs `wrapper… op args…` in the test directory, with the test's environment (e.g. op in
    /// a namespace of its own).
    pub fn op_wrapped(&self, wrapper: &[&str], args: &[&str]) -> Run {
        let plain = self.command(args);
        let mut command = Command::new(wrapper[0]);
        command
            .args(&wrapper[1..])
            .arg(plain.get_program())
            .args(plain.get_args())
            .current_dir(self.path())
            .env_clear();
        for (key, value) in plain.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        self.run(command, args)
    }

    /// `op args…` with a terminal of type `term` (`TERM`) for its stdin, stdout and stderr,
    /// which util-linux's `script` gives it: what the terminal showed is the command's stdout.
    pub fn terminal_command(&self, args: &[&str], term: &str) -> Command {
        let plain = self.command(args);
        let line: Vec<String> = std::iter::once(plain.get_program())
            .chain(plain.get_args())
            .map(|arg| format!("'{}'", arg.to_string_lossy().replace('\'', "'\\''")))
            .collect();
        let mut command = Command::new("script");
        command
            .args(["-qfec", &line.join(" "), "/dev/null"])
            .current_dir(self.path())
            .env_clear();
        for (key, value) in plain.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        command.env("TERM", term).stdin(std::process::Stdio::null());
        command
    }

    /// Runs `op args…` on a terminal of type `term` ([`terminal_command`](Self::terminal_command)):
    /// the run's stdout is what the terminal showed, its stderr empty.
    pub fn op_on_a_terminal(&self, args: &[&str], term: &str) -> Run {
        self.run(self.terminal_command(args, term), args)
    }

    /// Runs `op args…` and, once its stderr has a line that contains `marker`, calls
    /// `meanwhile`, then interrupts op (SIGINT, as Ctrl-C does): what it printed, and how it
    /// ended.
    #[track_caller]
    pub fn interrupted(
        &self,
        args: &[&str],
        marker: &str,
        meanwhile: impl FnOnce(),
    ) -> Interrupted {
        use std::io::BufRead as _;
        let mut child = self
            .command(args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("op runs");
        let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut before = String::new();
        for line in lines.by_ref() {
            let line = line.expect("op's stderr is read");
            before.push_str(&line);
            before.push('\n');
            if line.contains(marker) {
                break;
            }
        }
        assert!(
            before.contains(marker),
            "op never printed `{marker}`:\n{before}"
        );
        meanwhile();
        let signalled = std::time::Instant::now();
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let after: Vec<String> = lines.map_while(Result::ok).collect();
        let code = child.wait().expect("op is waited for").code();
        Interrupted {
            before,
            after: after.join("\n"),
            code,
            stopped_in: signalled.elapsed(),
        }
    }

    fn run(&self, mut command: Command, args: &[&str]) -> Run {
        let output = command.output().expect("op runs");
        Run {
            engine: self.engine,
            args: args.iter().map(|a| (*a).to_string()).collect(),
            dir: self.path().to_path_buf(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What an interrupted `op` printed before and after the signal, and how it ended.
pub struct Interrupted {
    pub before: String,
    pub after: String,
    pub code: Option<i32>,
    /// From the signal to op's exit.
    pub stopped_in: std::time::Duration,
}

/// The outcome of one `op` run.
pub struct Run {
    engine: docker::Engine,
    args: Vec<String>,
    dir: PathBuf,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// A report of the run, for failing assertions: the command, its directory (with a listing),
    /// the exit code and both outputs.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "command: op {}", self.args.join(" "));
        let _ = writeln!(out, "dir: {}", self.dir.display());
        let _ = writeln!(
            out,
            "engine: {} ({})",
            self.engine.name(),
            self.engine.host()
        );
        for entry in walk(&self.dir) {
            let _ = writeln!(out, "  {}", entry.display());
        }
        let _ = writeln!(out, "exit code: {:?}", self.code);
        let _ = writeln!(out, "--- stdout\n{}", self.stdout);
        let _ = writeln!(out, "--- stderr\n{}", self.stderr);
        out
    }

    /// What op printed on stderr, the directory it ran in written `[dir]` (for snapshots).
    pub fn stderr_in_dir(&self) -> String {
        self.stderr
            .replace(&self.dir.display().to_string(), "[dir]")
    }

    /// Asserts that op exited 0, and returns the run.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "op failed\n{}", self.report());
        self
    }

    /// Asserts that op exited with `code` and no panic, and returns the run.
    #[track_caller]
    pub fn failure(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "op did not exit with {code}\n{}",
            self.report()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "op panicked\n{}",
            self.report()
        );
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.report()))
    }
}

/// Copies the tree at `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).expect("the target directory is created");
    for entry in fs_err::read_dir(from).expect("the fixture exists") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), target).expect("the file is copied");
        }
    }
}

/// Every path below `dir`, relative to it, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(current) = todo.pop() {
        let Ok(entries) = fs_err::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `build_result.json` op wrote in `dir` (a directory of the test directory, `.` for it).
pub fn build_result_in(context: &TestContext, dir: &str) -> serde_json::Value {
    let path = context.path().join(dir).join("build_result.json");
    serde_json::from_str(&fs_err::read_to_string(&path).unwrap()).unwrap()
}

/// The `build_result.json` op wrote in the test directory.
pub fn build_result(context: &TestContext) -> serde_json::Value {
    build_result_in(context, ".")
}

/// The `tag` `result` (a `build_result.json`) records for artifact `image`.
#[track_caller]
pub fn tag_of<'a>(result: &'a serde_json::Value, image: &str) -> &'a str {
    result["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["imageName"] == image)
        .and_then(|b| b["tag"].as_str())
        .unwrap_or_else(|| panic!("{image} is not in {result}"))
}

/// A layer tar at `path` of one file, `hello.txt`, holding `text` (for images pushed by crane).
pub fn one_file_layer(path: &Path, text: &str) {
    let mut tar = tar::Builder::new(fs_err::File::create(path).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", text.as_bytes())
        .unwrap();
    tar.finish().unwrap();
}
