//! A CNB stack made for a test, from nothing but Debian's busybox-static and a lifecycle: a real
//! registry, the busybox base images (`op builder base`), and the fixture builder, pulled into
//! the real Docker Engine. The builder is one of two ([`Lifecycle`]):
//!
//! - op's: `op builder create` with the static op-lifecycle inside (`OP_LIFECYCLE_DIR`, from
//!   `scripts/build-lifecycle`);
//! - production's shape: the real `pack builder create` with the real (Go) CNB lifecycle
//!   inside, pack-made labels and all (`OP_REFERENCE_TOOLS`, from `scripts/reference-tools`).
//!
//! `scripts/test` sets both variables; a test fails, loudly, without them.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::docker::{docker, docker_command, remove_images_of, require_engine};
use super::registry::{Registry, TEST_PASSWORD, TEST_USER, http_get, which};
use super::{TestContext, copy_dir, fixtures};

/// The repository op-lifecycle names as the source of its launcher (the launcher's
/// `source.git.repository` in `io.buildpacks.build.metadata`; the reference lifecycle writes
/// `github.com/buildpacks/lifecycle`).
pub const OP_LIFECYCLE_REPOSITORY: &str = "github.com/octopilot/op";

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

/// Debian's arm64 busybox-static, which `scripts/dev-env` unpacks (`$OP_BUSYBOX_ARM64`, else
/// its default place).
#[track_caller]
pub fn arm64_busybox() -> PathBuf {
    let path = std::env::var_os("OP_BUSYBOX_ARM64").map_or_else(
        || {
            let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
                PathBuf::from,
            );
            cache.join("op-dev/busybox-arm64/bin/busybox")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} is missing, and this test needs Debian's arm64 busybox-static; run `scripts/dev-env` \
         as root (or set OP_BUSYBOX_ARM64)",
        path.display()
    );
    path
}

/// The directory of the reference tools (`scripts/reference-tools`): `bin/pack`, `bin/crane`,
/// `bin/skaffold`,
/// `lifecycle.tgz` (the real lifecycle, as pack takes it) and `lifecycle/`.
#[track_caller]
pub fn reference_tools() -> PathBuf {
    let dir = std::env::var("OP_REFERENCE_TOOLS").unwrap_or_else(|_| {
        panic!(
            "OP_REFERENCE_TOOLS is not set, and this test needs the reference tools (the real \
             CNB lifecycle, pack and crane): run \
             `export OP_REFERENCE_TOOLS=\"$(scripts/reference-tools)\"` (scripts/test does)"
        )
    });
    let dir = PathBuf::from(dir);
    for needed in [
        "bin/pack",
        "bin/crane",
        "bin/skaffold",
        "lifecycle.tgz",
        "lifecycle/lifecycle.toml",
    ] {
        assert!(
            dir.join(needed).is_file(),
            "OP_REFERENCE_TOOLS={} holds no `{needed}`; run scripts/reference-tools",
            dir.display()
        );
    }
    dir
}

/// The real `pack`, `crane` and `skaffold`.
pub fn pack() -> PathBuf {
    reference_tools().join("bin/pack")
}

pub fn crane() -> PathBuf {
    reference_tools().join("bin/crane")
}

pub fn skaffold() -> PathBuf {
    reference_tools().join("bin/skaffold")
}

/// The lifecycle a builder carries, and who made the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// op-lifecycle, in the builder `op builder create` makes.
    Op,
    /// The real (Go) CNB lifecycle, in the builder the real `pack builder create` makes: the
    /// shape of `ghcr.io/octopilot/builder-jammy-base`.
    Reference,
}

impl Lifecycle {
    /// The repository path of its builder in a stack's registry.
    fn builder_path(self) -> &'static str {
        match self {
            Lifecycle::Op => "op/builder:latest",
            Lifecycle::Reference => "op/pack-builder:latest",
        }
    }
}

/// A registry with the busybox base images and a fixture builder, which the engine has pulled.
/// The builder image is removed from the engine when dropped.
pub struct Stack {
    pub registry: Registry,
    /// `127.0.0.1:<port>/op/builder:latest` (op's) or `…/op/pack-builder:latest` (pack's).
    pub builder: String,
    pub run_image: String,
    /// What the command that made the builder printed on stdout (`op builder create`:
    /// `<repository>@<digest>`).
    pub created: String,
    /// The `HOME` the stack's tools ran with (its Docker configuration, for registries with
    /// credentials).
    home: Option<PathBuf>,
    /// Builders made besides [`Stack::builder`], removed from the engine when dropped.
    others: std::cell::RefCell<Vec<String>>,
}

/// `crane <args>`'s stdout; it must succeed.
pub fn crane_out(args: &[&str]) -> String {
    let out = Command::new(crane()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "crane {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Stack {
    /// Gives the run image a new layer (`dir/<patch>.tar`, one file holding `patch`) under the
    /// same name, as a patched OS would; its new digest.
    pub fn patch_run_image(&self, dir: &Path, patch: &str) -> String {
        let layer = dir.join(format!("{patch}.tar"));
        super::one_file_layer(&layer, patch);
        let layer = layer.display().to_string();
        let run_image = self.run_image.as_str();
        crane_out(&["append", "-b", run_image, "-t", run_image, "-f", &layer]);
        crane_out(&["digest", run_image]).trim().to_string()
    }

    pub fn start(lifecycle: Lifecycle) -> Self {
        Self::start_with(Registry::start(), None, lifecycle)
    }

    /// A stack whose registry wants credentials; `home` (a test's `HOME`) gets a Docker
    /// configuration with them. The builder is not pulled: op pulls it with the credentials.
    pub fn start_authenticated(lifecycle: Lifecycle, home: &Path) -> Self {
        let registry = Registry::start_with_auth();
        write_docker_config(home, &registry.addr());
        Self::start_with(registry, Some(home), lifecycle)
    }

    fn start_with(registry: Registry, home: Option<&Path>, lifecycle: Lifecycle) -> Self {
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
        for image in [&build_image, &run_image] {
            verify_published_as(image, home);
        }
        let mut stack = Self {
            registry,
            builder: String::new(),
            run_image,
            created: String::new(),
            home: home.map(Path::to_path_buf),
            others: std::cell::RefCell::new(Vec::new()),
        };
        let (builder, created) =
            stack.create_builder(&context, lifecycle, lifecycle.builder_path(), None);
        if home.is_none() {
            docker(&["pull", "-q", &builder]);
        }
        stack.builder = builder;
        stack.created = created;
        stack
    }

    /// Makes the fixture builder with `lifecycle` in the stack's registry as `path` (op's with
    /// `op builder create`, pack's with `pack builder create`), with the stack's run image or
    /// `run_image`; returns its reference and what the command printed. The tools run with
    /// `context`'s `HOME`.
    fn create_builder(
        &self,
        context: &TestContext,
        lifecycle: Lifecycle,
        path: &str,
        run_image: Option<&str>,
    ) -> (String, String) {
        let addr = self.registry.addr();
        let builder_dir = context.path().join(format!("builder-{lifecycle:?}"));
        copy_dir(&fixtures().join("builders/busybox"), &builder_dir);
        let toml_path = builder_dir.join("builder.toml");
        let mut toml = fs_err::read_to_string(&toml_path)
            .unwrap()
            .replace("localhost:5001", &addr);
        if let Some(run_image) = run_image {
            toml = toml.replace(&self.run_image, run_image);
        }
        let builder = format!("{addr}/{path}");
        let created = match lifecycle {
            Lifecycle::Op => {
                fs_err::write(&toml_path, toml).unwrap();
                let run = context.op(&[
                    "builder",
                    "create",
                    &builder,
                    "--config",
                    toml_path.to_str().unwrap(),
                ]);
                run.success();
                verify_published_as(&builder, self.home.as_deref());
                run.stdout.clone()
            }
            Lifecycle::Reference => {
                let archive = reference_tools().join("lifecycle.tgz");
                toml = toml.replace("op-lifecycle", "the reference lifecycle");
                let _ = write!(toml, "\n[lifecycle]\nuri = \"{}\"\n", archive.display());
                fs_err::write(&toml_path, toml).unwrap();
                let home = context.home();
                let output = Command::new(pack())
                    .args(["builder", "create", &builder, "--config"])
                    .arg(&toml_path)
                    .args(["--publish", "--no-color"])
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("HOME", &home)
                    .envs(std::env::var_os("DOCKER_HOST").map(|h| ("DOCKER_HOST", h)))
                    .output()
                    .unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                assert!(
                    output.status.success(),
                    "pack builder create failed:\n{stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                stdout
            }
        };
        (builder, created)
    }

    /// Another fixture builder in the stack's registry, `op/<name>:latest`, with `lifecycle`
    /// and the stack's run image or `run_image` (in a registry whose credentials are in
    /// `home`), pulled into the engine (and removed from it when the stack is dropped).
    pub fn another_builder(
        &self,
        lifecycle: Lifecycle,
        name: &str,
        run_image: Option<(&str, &Path)>,
    ) -> String {
        let mut context = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
        if let Some(home) = run_image.map(|(_, home)| home).or(self.home.as_deref()) {
            context = context.env("HOME", &home.display().to_string());
        }
        let path = format!("op/{name}:latest");
        let (builder, _) = self.create_builder(
            &context,
            lifecycle,
            &path,
            run_image.map(|(image, _)| image),
        );
        if self.home.is_none() {
            docker(&["pull", "-q", &builder]);
        }
        self.others.borrow_mut().push(builder.clone());
        builder
    }

    /// `127.0.0.1:<port>/<path>`.
    pub fn image(&self, path: &str) -> String {
        format!("{}/{path}", self.registry.addr())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for builder in std::iter::once(&self.builder).chain(self.others.borrow().iter()) {
            let _ = docker_command().args(["rmi", "-f", builder]).output();
        }
        // Everything pulled from the stack's registry: builders by digest, results, run images.
        remove_images_of(&self.registry.addr());
        remove_cache_volumes(&self.registry.addr());
    }
}

/// A copy of `fixtures/apps` in `context`, built with `builder`, its other `localhost:5001`
/// references on `registry`.
pub fn apps_in(context: &TestContext, builder: &str, registry: &str) {
    copy_dir(&fixtures().join("apps"), context.path());
    context.replace_in(
        "skaffold.yaml",
        &[
            ("localhost:5001/op/builder:latest", builder),
            ("localhost:5001", registry),
        ],
    );
}

/// Makes the fixture apps' `greeting` slow (its buildpack sleeps a minute before it builds,
/// printing `---> Greeting: sleeping`), for the tests of Ctrl-C.
pub fn slow_greeting(context: &TestContext) {
    context.replace_in(
        "skaffold.yaml",
        &[(
            "- GREETING_STYLE=loud",
            "- GREETING_STYLE=loud\n          - GREETING_SLEEP=60",
        )],
    );
}

/// Removes the cache volumes op keeps between builds for the repositories of `registry`.
pub fn remove_cache_volumes(registry: &str) {
    let listed = docker_command()
        .args([
            "volume",
            "ls",
            "--filter",
            "label=io.octopilot.op.cache-for",
            "--format",
            "{{.Name}} {{.Label \"io.octopilot.op.cache-for\"}}",
        ])
        .output();
    let prefix = format!("{registry}/");
    let listed = listed.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    for line in listed.unwrap_or_default().lines() {
        if let Some((name, repository)) = line.split_once(' ')
            && repository.starts_with(&prefix)
        {
            let _ = docker_command().args(["volume", "rm", "-f", name]).output();
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
        let _ = docker_command()
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
        let _ = docker_command().args(["rm", "-f", "-v", &self.id]).output();
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

/// Runs the stack builder's creator as a platform does (docs/cnb-platform.md section 1): as
/// root, with fresh `/layers` and `/workspace` volumes, the app copied in as the CNB user, the
/// cache in `cache`, host networking to reach the loopback registry, Platform API 0.12.
pub fn run_creator(
    stack: &Stack,
    app: &Path,
    image: &str,
    cache: &Volume,
    extra: &[&str],
) -> CreatorRun {
    let platform = Platform {
        builder: &stack.builder,
        run_image: &stack.run_image,
        api: "0.12",
    };
    platform.run_creator(app, image, cache, extra)
}

/// How [`Platform::run_creator`] runs a creator: which builder, on which run image, with which
/// Platform API (from 0.15, `CNB_EXEC_ENV=production` too, as op and pack set it).
pub struct Platform<'a> {
    pub builder: &'a str,
    pub run_image: &'a str,
    pub api: &'a str,
}

impl Platform<'_> {
    /// See [`run_creator`].
    pub fn run_creator(
        &self,
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
            "CNB_NO_COLOR=true",
            "-e",
            &format!("CNB_PLATFORM_API={}", self.api),
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        if self.api == "0.15" {
            args.extend(["-e".to_string(), "CNB_EXEC_ENV=production".to_string()]);
        }
        for (volume, at) in [
            (&layers, "/layers"),
            (&workspace, "/workspace"),
            (cache, "/cache"),
        ] {
            args.push("-v".into());
            args.push(format!("{}:{at}", volume.name));
        }
        args.push(self.builder.to_string());
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
            self.run_image,
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

        let mut copy = docker_command()
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

        let run = docker_command()
            .args(["start", "-a", &container.id])
            .output()
            .unwrap();
        let code: i32 = docker(&["inspect", "--format", "{{.State.ExitCode}}", &container.id])
            .trim()
            .parse()
            .unwrap();
        let mut output = String::from_utf8_lossy(&run.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&run.stderr));
        let report = copy_out(&container.id, "/layers/report.toml")
            .map(|text| toml::from_str(&text).unwrap());
        CreatorRun {
            code,
            output,
            report,
        }
    }
}

/// A file of a (stopped) container.
pub fn copy_out(container: &str, path: &str) -> Option<String> {
    let out = docker_command()
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

/// The digest the registry serves for `image`, after two independent clients checked it:
/// `crane validate --remote` (go-containerregistry: the manifest, the config and every layer,
/// their digests and sizes) and `skopeo inspect` (containers/image).
#[track_caller]
pub fn verify_published(image: &str) -> String {
    verify_published_as(image, None)
}

/// [`verify_published`] for a registry whose credentials are in `home`'s Docker configuration.
#[track_caller]
pub fn verify_published_as(image: &str, home: Option<&Path>) -> String {
    crane_validate_as(image, home);
    let creds = home.map(|_| format!("{TEST_USER}:{TEST_PASSWORD}"));
    skopeo_digest_as(image, creds.as_deref())
}

/// `crane validate --remote image`: the manifest or index, every child, config and layer, their
/// digests and sizes, checked by go-containerregistry.
#[track_caller]
pub fn crane_validate(image: &str) {
    crane_validate_as(image, None);
}

/// [`crane_validate`] with the credentials of `home`'s Docker configuration.
#[track_caller]
fn crane_validate_as(image: &str, home: Option<&Path>) {
    let mut crane = Command::new(crane());
    crane.args(["validate", "--remote", image]);
    if let Some(home) = home {
        crane.env("HOME", home).env_remove("DOCKER_CONFIG");
    }
    let out = crane.output().unwrap();
    assert!(
        out.status.success(),
        "crane validate --remote {image} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `skopeo inspect --raw` of `image`: the manifest or index byte for byte as the registry serves
/// it, read by another client than op's.
#[track_caller]
pub fn skopeo_raw(image: &str) -> Vec<u8> {
    let skopeo = which("skopeo").expect("skopeo is installed (scripts/dev-env)");
    let out = Command::new(skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect --raw {image} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Copies `from` to `to` with skopeo (an independent client), over plain HTTP, with the test
/// registry's credentials for the destination when `to_private`.
#[track_caller]
pub fn skopeo_copy(from: &str, to: &str, to_private: bool) {
    let skopeo = which("skopeo").expect("skopeo is installed (scripts/dev-env)");
    let mut command = Command::new(skopeo);
    command.args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ]);
    if to_private {
        command.args(["--dest-creds", &format!("{TEST_USER}:{TEST_PASSWORD}")]);
    }
    let out = command
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy {from} {to} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The digest skopeo (an independent client) sees for `image`, with `user:password`
/// credentials.
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
                let logs = docker_command()
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

/// `op builder base` of `<addr>/op/busybox-build:latest` and `…/busybox-run:latest` for
/// linux/amd64 and linux/arm64 (Debian's two busyboxes): their references.
pub fn two_platform_bases(context: &TestContext, addr: &str) -> (String, String) {
    let (build, run) = (
        format!("{addr}/op/busybox-build:latest"),
        format!("{addr}/op/busybox-run:latest"),
    );
    context
        .op(&[
            "builder",
            "base",
            &build,
            &run,
            "--platform",
            "linux/amd64,linux/arm64",
            "--busybox",
            "/bin/busybox",
            "--busybox",
            &format!("linux/arm64={}", arm64_busybox().display()),
        ])
        .success();
    (build, run)
}

/// A registry with busybox build and run images for linux/amd64 and linux/arm64, and an index of
/// the fixture builder for both with `lifecycle` (op-lifecycle, or the real lifecycle built for
/// each architecture): `(registry, builder)`.
pub fn two_platform_stack(lifecycle: Lifecycle, context: &TestContext) -> (Registry, String) {
    require_engine();
    let registry = Registry::start();
    let addr = registry.addr();
    two_platform_bases(context, &addr);
    let (builder, created) = create_two_platform_builder(
        context,
        &addr,
        lifecycle,
        ("op/builder:latest", "linux/amd64,linux/arm64"),
    );
    created.success();
    (registry, builder)
}

/// `op builder create <addr>/<path> --platform <platforms>` of the fixture builder on the
/// two-platform base images of `addr`, with `lifecycle` (op-lifecycle from `OP_LIFECYCLE_DIR`,
/// or the real lifecycle of the reference tools, built for each architecture): the builder's
/// reference and the run.
pub fn create_two_platform_builder(
    context: &TestContext,
    addr: &str,
    lifecycle: Lifecycle,
    (path, platforms): (&str, &str),
) -> (String, super::Run) {
    let dir = context.path().join(format!("builder-{lifecycle:?}"));
    copy_dir(&fixtures().join("builders/busybox"), &dir);
    let toml_path = dir.join("builder.toml");
    let mut toml = fs_err::read_to_string(&toml_path)
        .unwrap()
        .replace("localhost:5001", addr);
    if lifecycle == Lifecycle::Reference {
        let real = reference_tools().join("lifecycle");
        let _ = write!(toml, "\n[lifecycle]\nuri = \"{}\"\n", real.display());
    }
    fs_err::write(&toml_path, toml).unwrap();
    let builder = format!("{addr}/{path}");
    let created = context.op(&[
        "builder",
        "create",
        &builder,
        "--config",
        toml_path.to_str().unwrap(),
        "--platform",
        platforms,
    ]);
    (builder, created)
}

/// Removes, when a test ends, the images of `registry` (`.0`) the engine pulled (the builders'
/// platform images, the apps) and the cache volumes op kept for it.
pub struct EngineCleanup(pub String);

impl Drop for EngineCleanup {
    fn drop(&mut self) {
        remove_images_of(&self.0);
        remove_cache_volumes(&self.0);
    }
}

/// An image of one layer per entry of `layers` (that many MiB of incompressible bytes each),
/// pushed as `image` by crane (an independent client) on the empty base; its digest, as crane
/// reads it.
pub fn random_image(dir: &Path, image: &str, layers: &[usize]) -> String {
    let mut args: Vec<String> = vec!["append".into(), "-t".into(), image.into()];
    for (i, megabytes) in layers.iter().enumerate() {
        let file = dir.join(format!("layer-{i}-{megabytes}.tar"));
        let mut data = vec![0u8; megabytes * 1024 * 1024];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ ((i as u64) << 32) ^ *megabytes as u64;
        for chunk in data.chunks_mut(8) {
            // xorshift: incompressible bytes without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let mut tar = tar::Builder::new(fs_err::File::create(&file).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("data-{i}.bin"), data.as_slice())
            .unwrap();
        tar.into_inner().unwrap().flush().unwrap();
        args.extend(["-f".into(), file.display().to_string()]);
    }
    let out = Command::new(crane()).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "crane append: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = Command::new(crane())
        .args(["digest", image])
        .output()
        .unwrap();
    String::from_utf8_lossy(&digest.stdout).trim().to_string()
}
