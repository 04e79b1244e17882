//! A CNB stack made for a test, from nothing but Debian's busybox-static and op-lifecycle: a
//! real registry, the busybox base images (`op builder base`), and the fixture builder
//! (`op builder create`), pulled into the real Docker Engine.
//!
//! The static lifecycle comes from `scripts/build-lifecycle` through `OP_LIFECYCLE_DIR`, which
//! `scripts/test` sets; a test fails, loudly, without it.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::docker::{docker, require_engine};
use super::registry::{Registry, TEST_PASSWORD, TEST_USER, http_get, which};
use super::{TestContext, copy_dir, fixtures};

/// What everything a test creates in the engine is labelled with (`scripts/test` checks that
/// none is left).
pub const TEST_LABEL: &str = "io.octopilot.op.kind=test";

/// The uid and gid of the CNB user of the busybox images.
pub const CNB_IDS: (u32, u32) = (1000, 1000);

/// The directory of the static lifecycle.
#[track_caller]
pub fn lifecycle_dir() -> String {
    let dir = std::env::var("OP_LIFECYCLE_DIR").unwrap_or_else(|_| {
        panic!(
            "OP_LIFECYCLE_DIR is not set, and this test needs the static op-lifecycle: \
             run `export OP_LIFECYCLE_DIR=\"$(scripts/build-lifecycle)\"` (scripts/test does)"
        )
    });
    assert!(
        Path::new(&dir).join("lifecycle").is_file(),
        "OP_LIFECYCLE_DIR={dir} holds no `lifecycle`; run scripts/build-lifecycle"
    );
    dir
}

/// A registry with the busybox base images and the fixture builder, which the engine has
/// pulled. The builder image is removed from the engine when dropped.
pub struct Stack {
    pub registry: Registry,
    /// `127.0.0.1:<port>/op/builder:latest`.
    pub builder: String,
    pub run_image: String,
    /// What `op builder create` printed on stdout: `<repository>@<digest>`.
    pub created: String,
}

impl Stack {
    pub fn start() -> Self {
        Self::start_with(Registry::start(), None)
    }

    /// A stack whose registry wants credentials; `home` (a test's `HOME`) gets a Docker
    /// configuration with them. The builder is not pulled: op pulls it with the credentials.
    pub fn start_authenticated(home: &Path) -> Self {
        let registry = Registry::start_with_auth();
        write_docker_config(home, &registry.addr());
        Self::start_with(registry, Some(home))
    }

    fn start_with(registry: Registry, home: Option<&Path>) -> Self {
        require_engine();
        let addr = registry.addr();
        let mut context = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
        if let Some(home) = home {
            context = context.env("HOME", &home.display().to_string());
        }
        let build_image = format!("{addr}/op/busybox-build:latest");
        let run_image = format!("{addr}/op/busybox-run:latest");
        context
            .op(&["builder", "base", &build_image, &run_image])
            .success();

        let builder_dir = context.path().join("builder");
        copy_dir(&fixtures().join("builders/busybox"), &builder_dir);
        let toml_path = builder_dir.join("builder.toml");
        let toml = fs_err::read_to_string(&toml_path).unwrap();
        fs_err::write(&toml_path, toml.replace("localhost:5001", &addr)).unwrap();
        let builder = format!("{addr}/op/builder:latest");
        let created = context.op(&[
            "builder",
            "create",
            &builder,
            "--config",
            "builder/builder.toml",
        ]);
        created.success();
        if home.is_none() {
            docker(&["pull", "-q", &builder]);
        }
        Self {
            registry,
            builder,
            run_image,
            created: created.stdout.clone(),
        }
    }

    /// `127.0.0.1:<port>/<path>`.
    pub fn image(&self, path: &str) -> String {
        format!("{}/{path}", self.registry.addr())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.builder])
            .output();
        // The cache volumes op keeps between builds, for this stack's registry.
        let listed = Command::new("docker")
            .args([
                "volume",
                "ls",
                "--filter",
                "label=io.octopilot.op.cache-for",
                "--format",
                "{{.Name}} {{.Label \"io.octopilot.op.cache-for\"}}",
            ])
            .output();
        let prefix = format!("{}/", self.registry.addr());
        let listed = listed.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        for line in listed.unwrap_or_default().lines() {
            if let Some((name, repository)) = line.split_once(' ')
                && repository.starts_with(&prefix)
            {
                let _ = Command::new("docker")
                    .args(["volume", "rm", "-f", name])
                    .output();
            }
        }
    }
}

/// The containers and volumes builds that publish to `registry` left behind (op labels them
/// `io.octopilot.op.kind=build` and `io.octopilot.op.target=<reference>`).
pub fn leftovers(registry: &str) -> Vec<String> {
    let label = "{{.Label \"io.octopilot.op.target\"}}";
    let filter = "label=io.octopilot.op.kind=build";
    let containers = docker(&[
        "ps",
        "-a",
        "--filter",
        filter,
        "--format",
        &format!("{{{{.ID}}}} {label}"),
    ]);
    let volumes = docker(&[
        "volume",
        "ls",
        "--filter",
        filter,
        "--format",
        &format!("{{{{.Name}}}} {label}"),
    ]);
    let prefix = format!("{registry}/");
    let mut found = Vec::new();
    for (kind, listing) in [("container", containers), ("volume", volumes)] {
        for line in listing.lines() {
            if let Some((id, target)) = line.split_once(' ')
                && target.starts_with(&prefix)
            {
                found.push(format!("{kind} {id}"));
            }
        }
    }
    found
}

/// Writes `<home>/.docker/config.json` with the test account for `registry`.
pub fn write_docker_config(home: &Path, registry: &str) {
    use base64::Engine as _;
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    fs_err::create_dir_all(home.join(".docker")).unwrap();
    let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
    fs_err::write(home.join(".docker/config.json"), config.to_string()).unwrap();
}

/// A named volume, removed when dropped.
pub struct Volume {
    pub name: String,
}

impl Volume {
    pub fn new(prefix: &str) -> Self {
        let name = op::engine::unique_name(&format!("op-test-{prefix}"));
        docker(&["volume", "create", "--label", TEST_LABEL, &name]);
        Self { name }
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.name])
            .output();
    }
}

/// A container, removed (with its anonymous volumes) when dropped.
pub struct Container {
    pub id: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.id])
            .output();
    }
}

/// The app directory `dir` as a tar whose every entry, the root `workspace` one included,
/// belongs to the CNB user: what a platform copies into `/workspace`.
pub fn app_tar(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut todo: Vec<(PathBuf, String)> = vec![(dir.to_path_buf(), "workspace".to_string())];
    while let Some((path, name)) = todo.pop() {
        let meta = fs_err::metadata(&path).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&meta);
        header.set_uid(u64::from(CNB_IDS.0));
        header.set_gid(u64::from(CNB_IDS.1));
        if meta.is_dir() {
            header.set_size(0);
            builder
                .append_data(&mut header, &name, std::io::empty())
                .unwrap();
            let mut children: Vec<_> = fs_err::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            children.sort();
            for child in children.into_iter().rev() {
                todo.push((
                    path.join(&child),
                    format!("{name}/{}", child.to_string_lossy()),
                ));
            }
        } else {
            let data = fs_err::read(&path).unwrap();
            builder
                .append_data(&mut header, &name, data.as_slice())
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

/// One creator run.
pub struct CreatorRun {
    pub code: i32,
    pub output: String,
    /// `report.toml`, when the creator wrote one.
    pub report: Option<toml::Table>,
}

impl CreatorRun {
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "the creator failed:\n{}", self.output);
        self
    }

    /// The digest of `report.toml`.
    #[track_caller]
    pub fn digest(&self) -> String {
        let report = self
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("no report.toml:\n{}", self.output));
        report["image"]["digest"]
            .as_str()
            .expect("report.toml has image.digest")
            .to_string()
    }
}

/// Runs the builder's creator as a platform does (docs/cnb-platform.md section 1): as root,
/// with fresh `/layers` and `/workspace` volumes, the app copied in as the CNB user, the cache
/// in `cache`, host networking to reach the loopback registry.
pub fn run_creator(
    stack: &Stack,
    app: &Path,
    image: &str,
    cache: &Volume,
    extra: &[&str],
) -> CreatorRun {
    let (layers, workspace) = (Volume::new("layers"), Volume::new("workspace"));
    let (uid, gid) = (CNB_IDS.0.to_string(), CNB_IDS.1.to_string());
    let mut args: Vec<String> = [
        "create",
        "--label",
        TEST_LABEL,
        "--user",
        "root",
        "--entrypoint",
        "",
        "--network",
        "host",
        "-e",
        "CNB_PLATFORM_API=0.12",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    for (volume, at) in [
        (&layers, "/layers"),
        (&workspace, "/workspace"),
        (cache, "/cache"),
    ] {
        args.push("-v".into());
        args.push(format!("{}:{at}", volume.name));
    }
    args.push(stack.builder.clone());
    for arg in [
        "/cnb/lifecycle/creator",
        "-app",
        "/workspace",
        "-cache-dir",
        "/cache",
        "-uid",
        &uid,
        "-gid",
        &gid,
        "-run-image",
        &stack.run_image,
    ] {
        args.push(arg.to_string());
    }
    args.extend(extra.iter().map(|s| (*s).to_string()));
    args.push(image.to_string());
    let container = Container {
        id: docker(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .trim()
            .to_string(),
    };

    let mut copy = Command::new("docker")
        .args(["cp", "-", &format!("{}:/", container.id)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    copy.stdin.take().unwrap().write_all(&app_tar(app)).unwrap();
    assert!(
        copy.wait().unwrap().success(),
        "docker cp of the app failed"
    );

    let run = Command::new("docker")
        .args(["start", "-a", &container.id])
        .output()
        .unwrap();
    let code: i32 = docker(&["inspect", "--format", "{{.State.ExitCode}}", &container.id])
        .trim()
        .parse()
        .unwrap();
    let mut output = String::from_utf8_lossy(&run.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&run.stderr));
    let report =
        copy_out(&container.id, "/layers/report.toml").map(|text| toml::from_str(&text).unwrap());
    CreatorRun {
        code,
        output,
        report,
    }
}

/// A file of a (stopped) container.
pub fn copy_out(container: &str, path: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["cp", &format!("{container}:{path}"), "-"])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let mut text = String::new();
    entry.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The digest the registry serves for `image`, as skopeo (an independent client) sees it.
#[track_caller]
pub fn skopeo_digest(image: &str) -> String {
    skopeo_digest_as(image, None)
}

/// [`skopeo_digest`] with `user:password` credentials.
#[track_caller]
pub fn skopeo_digest_as(image: &str, creds: Option<&str>) -> String {
    let skopeo = which("skopeo")
        .unwrap_or_else(|| panic!("skopeo is not installed; run `scripts/dev-env` as root"));
    let mut command = Command::new(skopeo);
    command.args(["inspect", "--tls-verify=false"]);
    if let Some(creds) = creds {
        command.args(["--creds", creds]);
    }
    let out = command.arg(format!("docker://{image}")).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {image} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["Digest"].as_str().unwrap().to_string()
}

/// Runs `image` detached with its port 8080 published on a loopback port, waits until it
/// answers `GET path`, and returns the body. The container is removed.
#[track_caller]
pub fn serve_and_get(image: &str, path: &str) -> String {
    let container = Container {
        id: docker(&[
            "run",
            "-d",
            "--label",
            TEST_LABEL,
            "-p",
            "127.0.0.1::8080",
            image,
        ])
        .trim()
        .to_string(),
    };
    let port = docker(&["port", &container.id, "8080/tcp"]);
    let addr: std::net::SocketAddr = port.lines().next().unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match http_get(addr, path) {
            Ok((200, body)) => return body,
            result if Instant::now() > deadline => {
                let logs = Command::new("docker")
                    .args(["logs", &container.id])
                    .output()
                    .unwrap();
                panic!(
                    "{image} did not serve {path}: {result:?}\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Runs `image` to completion with `args` after `docker run`, and returns its output.
#[track_caller]
pub fn run_to_end(args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--label", TEST_LABEL];
    all.extend(args);
    docker(&all)
}
