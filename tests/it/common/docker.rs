//! The real Docker Engine, for the tests that need one, and small images made for them from
//! Debian's `busybox-static` (nothing is pulled from outside).
//!
//! The docker CLI is used here only to set tests up and to check, independently of op, what op
//! did; op itself never calls it.

use std::path::Path;
use std::process::Command;

use super::registry::which;

/// Fails the test, loudly, when no Docker Engine answers.
#[track_caller]
pub fn require_engine() {
    let docker = which("docker").unwrap_or_else(|| {
        panic!("the docker CLI is not installed, and this test needs the Docker Engine; run `scripts/dev-env` as root")
    });
    let info = Command::new(docker)
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .expect("docker runs");
    assert!(
        info.status.success(),
        "no Docker Engine answers, and this test needs one; run `scripts/dev-env` as root to start it\n{}",
        String::from_utf8_lossy(&info.stderr)
    );
}

/// Runs `docker args…` and returns stdout; panics with stderr when it fails.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
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
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.name])
            .output();
    }
}

/// The ids of the containers (running or not) that have `label`.
pub fn containers_with_label(label: &str) -> Vec<String> {
    docker(&["ps", "-a", "-q", "--filter", &format!("label={label}")])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Removes, when dropped, every image of the engine in a repository of `registry` (what skaffold
/// and op leave in the engine for a test's registry).
pub struct ImagesOf(pub String);

impl Drop for ImagesOf {
    fn drop(&mut self) {
        let Ok(out) = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
        else {
            return;
        };
        let prefix = format!("{}/", self.0);
        let images: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        if !images.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&images)
                .output();
        }
    }
}
