//! The real Docker Engine, for the tests that need one, and small images made for them from
//! Debian's `busybox-static` (nothing is pulled from outside).
//!
//! The docker CLI is used here only to set tests up and to check, independently of op, what op
//! did; op itself never calls it.
//!
//! Two engines run (`scripts/dev-env`): the current one (moby v2, containerd's image store) on the
//! standard socket, and Debian's 20.10 (overlay2) on a socket of its own. A test runs on the
//! current engine unless [`Engine::run`] chose another for its thread: every docker command of
//! this module and every `op` run of a [`super::TestContext`] made on that thread then go there.

use std::cell::Cell;
use std::path::Path;
use std::process::Command;

use super::registry::which;

/// An engine the tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The current Docker Engine (moby v2, Docker 29's; containerd's image store), on
    /// `/var/run/docker.sock`.
    Current,
    /// Debian's Docker Engine 20.10 (API 1.41, the overlay2 graph driver), on its own socket.
    Docker20,
}

thread_local! {
    static ENGINE: Cell<Engine> = const { Cell::new(Engine::Current) };
}

impl Engine {
    /// The engine of this test (its thread).
    pub fn of_this_test() -> Self {
        ENGINE.with(Cell::get)
    }

    /// Runs `test` with this engine as the test's engine.
    pub fn run(self, test: impl FnOnce()) {
        struct Reset(Engine);
        impl Drop for Reset {
            fn drop(&mut self) {
                ENGINE.with(|e| e.set(self.0));
            }
        }
        let _reset = Reset(ENGINE.with(|e| e.replace(self)));
        require_engine();
        test();
    }

    /// Its address, as `DOCKER_HOST` takes it.
    pub fn host(self) -> String {
        match self {
            Engine::Current => "unix:///var/run/docker.sock".to_string(),
            Engine::Docker20 => std::env::var("OP_TEST_ENGINE_20_10")
                .unwrap_or_else(|_| "unix:///var/run/op-docker-20.10.sock".to_string()),
        }
    }

    /// How the tests name it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Current => "the current engine",
            Engine::Docker20 => "Debian's Docker Engine 20.10",
        }
    }

    /// Whether it keeps images in containerd's image store (its `docker info` says a
    /// `driver-type` of `io.containerd.snapshotter.v1`).
    pub fn containerd_store(self) -> bool {
        let format = "{{range .DriverStatus}}{{if eq (index . 0) \"driver-type\"}}{{index . 1}}{{end}}{{end}}";
        let out = Command::new("docker")
            .env("DOCKER_HOST", self.host())
            .args(["info", "--format", format])
            .output()
            .expect("docker runs");
        String::from_utf8_lossy(&out.stdout).starts_with("io.containerd.snapshotter")
    }

    /// What `op` needs in its environment to use it (nothing for the default engine).
    pub fn env(self) -> Option<(&'static str, String)> {
        (self != Engine::Current).then(|| ("DOCKER_HOST", self.host()))
    }
}

/// `docker`, talking to the test's engine.
pub fn docker_command() -> Command {
    let mut command = Command::new("docker");
    command.env("DOCKER_HOST", Engine::of_this_test().host());
    command
}

/// Fails the test, loudly, when the test's Docker Engine does not answer.
#[track_caller]
pub fn require_engine() {
    let engine = Engine::of_this_test();
    which("docker").unwrap_or_else(|| {
        panic!("the docker CLI is not installed, and this test needs the Docker Engine; run `scripts/dev-env` as root")
    });
    let info = docker_command()
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .expect("docker runs");
    assert!(
        info.status.success(),
        "{} does not answer at {}, and this test needs it; run `scripts/dev-env` as root to start it\n{}",
        engine.name(),
        engine.host(),
        String::from_utf8_lossy(&info.stderr)
    );
}

/// Runs `docker args…` on the test's engine and returns stdout; panics with stderr when it fails.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    let output = docker_command().args(args).output().expect("docker runs");
    assert!(
        output.status.success(),
        "docker {} failed on {}:\n{}",
        args.join(" "),
        Engine::of_this_test().name(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `Id` and `RepoDigests` the engine gives `image`.
pub fn id_and_repo_digests(image: &str) -> (String, Vec<String>) {
    let out = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{range .RepoDigests}}{{.}} {{end}}",
        image,
    ]);
    let mut words = out.split_whitespace().map(str::to_string);
    let id = words.next().unwrap_or_default();
    (id, words.collect())
}

/// An image in the engine, removed when dropped.
pub struct TestImage {
    pub name: String,
}

impl TestImage {
    /// An image holding busybox (with its applets `sh`, `httpd`, `echo`, `env`, `cat`, `sleep`),
    /// `files` (path → content), and `cmd` as its command.
    pub fn busybox(prefix: &str, cmd: &[&str], files: &[(&str, &str)]) -> Self {
        require_engine();
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "Debian's busybox-static is not installed; run `scripts/dev-env` as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs_err::create_dir_all(root.join("bin")).unwrap();
        fs_err::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "httpd", "echo", "env", "cat", "sleep"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        for (path, content) in files {
            let path = root.join(path.trim_start_matches('/'));
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, content).unwrap();
        }
        let tar = dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar failed");
        let name = format!("{}:latest", op::engine::unique_name(prefix));
        let cmd_json = serde_json::to_string(cmd).unwrap();
        docker(&[
            "import",
            "--change",
            &format!("CMD {cmd_json}"),
            tar.to_str().unwrap(),
            &name,
        ]);
        Self { name }
    }

    /// The name without the tag.
    pub fn repository(&self) -> &str {
        self.name.split(':').next().unwrap()
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = docker_command().args(["rmi", "-f", &self.name]).output();
    }
}

/// The ids of the containers (running or not) that have `label`.
pub fn containers_with_label(label: &str) -> Vec<String> {
    docker(&["ps", "-a", "-q", "--filter", &format!("label={label}")])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The containers with `label` made from `image`. A container removed between the listing and
/// its inspection (another test's: tests run in parallel) is not counted.
pub fn containers_of(label: &str, image: &str) -> Vec<String> {
    containers_with_label(label)
        .into_iter()
        .filter(|id| {
            docker_command()
                .args(["inspect", "--format", "{{.Config.Image}}", id])
                .output()
                .is_ok_and(|out| {
                    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == image
                })
        })
        .collect()
}

/// Removes every image of the test's engine in a repository of `registry`, by tag and by digest
/// (an image pulled by digest has no tag; with containerd's image store it is an image record of
/// its own).
pub fn remove_images_of(registry: &str) {
    let Ok(out) = docker_command()
        .args([
            "images",
            "--digests",
            "--format",
            "{{.Repository}}\t{{.Tag}}\t{{.Digest}}",
        ])
        .output()
    else {
        return;
    };
    let prefix = format!("{registry}/");
    let mut references = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split('\t');
        let (Some(repository), Some(tag), Some(digest)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !repository.starts_with(&prefix) {
            continue;
        }
        if tag != "<none>" {
            references.push(format!("{repository}:{tag}"));
        }
        if digest != "<none>" {
            references.push(format!("{repository}@{digest}"));
        }
    }
    for reference in references {
        let _ = docker_command().args(["rmi", "-f", &reference]).output();
    }
}

/// Removes, when dropped, every image of the engine in a repository of `registry` (what skaffold
/// and op leave in the engine for a test's registry).
pub struct ImagesOf(pub String);

impl Drop for ImagesOf {
    fn drop(&mut self) {
        remove_images_of(&self.0);
    }
}
