//! op-lifecycle against the reference lifecycle, differentially: the fixture apps built by
//! both, with the same buildpacks (one fixture made into a builder by `op builder create` and by
//! the real `pack builder create`), the same run image and the same platform inputs (Platform API
//! 0.15, as op negotiates with both). What each publishes is read back from the registry with
//! skopeo and compared: the image config, the labels (their JSON parsed), every layer (its
//! diffID and its entries: path, type, mode, owner, link target, content digest), the processes
//! and what they do when run, and `report.toml`.
//!
//! The differences that remain are deliberate and listed in docs/lifecycle.md ("Against the
//! reference lifecycle"); [`Known`] names each, and nothing else may differ.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::common::cnb::{
    Lifecycle, OP_LIFECYCLE_REPOSITORY, Platform, Stack, Volume, run_to_end, skopeo_raw,
    verify_published,
};
use crate::common::docker::docker_command;
use crate::common::fixtures;
use crate::common::registry::which;

/// The differences docs/lifecycle.md lists, where they show.
struct Known;

impl Known {
    /// The launcher is op-lifecycle's own binary: its layer, its `sha` in the lifecycle metadata
    /// label and the `launcher` of the build metadata label differ.
    const LAUNCHER: &str = "/cnb/lifecycle/launcher";
    /// `config/metadata.toml` is the same document, written by another TOML library: its bytes,
    /// its layer and that layer's `sha` differ.
    const LAUNCHER_CONFIG: &str = "/layers/config/metadata.toml";
}

/// One entry of a layer.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    path: String,
    kind: char,
    mode: u32,
    owner: (u64, u64),
    link: String,
    /// `sha256` of a file's content.
    content: String,
}

/// An image as the registry serves it.
struct Published {
    config: Value,
    /// Per layer: its diffID and entries.
    layers: Vec<(String, Vec<Entry>)>,
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// Reads `image` with skopeo (an independent client): its config and every layer.
fn read_published(image: &str) -> Published {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dir.path().display()))
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo copy {image} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blob = |digest: &Value| {
        let hex = digest.as_str().unwrap().trim_start_matches("sha256:");
        fs_err::read(dir.path().join(hex)).unwrap()
    };
    let manifest: Value =
        serde_json::from_slice(&fs_err::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let config: Value = serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let compressed = blob(&layer["digest"]);
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(compressed.as_slice())
                .read_to_end(&mut tar)
                .unwrap();
            (sha256(&tar), entries(&tar))
        })
        .collect();
    Published { config, layers }
}

fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            Entry {
                path: entry.path().unwrap().display().to_string(),
                kind: char::from(header.entry_type().as_byte()),
                mode: header.mode().unwrap(),
                owner: (header.uid().unwrap(), header.gid().unwrap()),
                link: header
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default(),
                content: if header.entry_type().is_file() {
                    sha256(&data)
                } else {
                    String::new()
                },
            }
        })
        .collect()
}

/// `value` with the lists Go leaves `null` and the empty ones alike: both removed.
fn without_empty_lists(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
                .map(|(k, v)| (k.clone(), without_empty_lists(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_empty_lists).collect()),
        other => other.clone(),
    }
}

/// The labels of `config`, JSON ones parsed.
fn labels(config: &Value) -> BTreeMap<String, Value> {
    config["config"]["Labels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| {
            let text = value.as_str().unwrap();
            let parsed = if text.starts_with('{') || text.starts_with('[') {
                without_empty_lists(&serde_json::from_str(text).unwrap())
            } else {
                value.clone()
            };
            (key.clone(), parsed)
        })
        .collect()
}

/// One lifecycle's build of an app.
struct Build {
    app: &'static str,
    /// `<registry>/<repository>/<app>:latest`.
    image: String,
    /// `<registry>/<repository>/<app>@<digest>`, pulled into the engine.
    pulled: String,
    /// `report.toml`.
    report: toml::Table,
    published: Published,
    labels: BTreeMap<String, Value>,
}

impl Build {
    /// Builds `app` with `builder` as `<repository>/<app>`, as op runs the creator.
    fn new(stack: &Stack, builder: &str, repository: &str, app: &'static str) -> Self {
        Self::on(stack, builder, &stack.run_image, repository, app)
    }

    /// [`Build::new`] on `run_image`.
    fn on(
        stack: &Stack,
        builder: &str,
        run_image: &str,
        repository: &str,
        app: &'static str,
    ) -> Self {
        let cache = Volume::new("cache");
        let image = stack.image(&format!("{repository}/{app}:latest"));
        let platform = Platform {
            builder,
            run_image,
            api: "0.15",
        };
        let run = platform.run_creator(&fixtures().join("apps").join(app), &image, &cache, &[]);
        run.success();
        let digest = run.digest();
        assert_eq!(verify_published(&image), digest);
        let pulled = format!("{}@{digest}", image.trim_end_matches(":latest"));
        crate::common::docker::docker(&["pull", "-q", &pulled]);
        let published = read_published(&image);
        let labels = labels(&published.config);
        Self {
            app,
            image,
            pulled,
            report: run.report.clone().unwrap(),
            published,
            labels,
        }
    }

    fn run(&self, entrypoint: &str, args: &[&str]) -> String {
        let mut all = vec!["--entrypoint", entrypoint, self.pulled.as_str()];
        all.extend(args);
        run_to_end(&all)
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        let _ = docker_command().args(["rmi", "-f", &self.pulled]).output();
    }
}

/// The image configs: everything the runtime and a rebase use.
fn same_config(op: &Build, reference: &Build) {
    let app = op.app;
    let (o, r) = (&op.published.config, &reference.published.config);
    for field in [
        "Entrypoint",
        "Cmd",
        "Env",
        "WorkingDir",
        "User",
        "ExposedPorts",
    ] {
        assert_eq!(
            o["config"][field], r["config"][field],
            "{app}: config.{field}"
        );
    }
    for field in ["os", "architecture", "variant", "created"] {
        assert_eq!(o[field], r[field], "{app}: {field}");
    }
    let history = |c: &Value| -> Vec<Value> {
        c["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["created_by"].clone())
            .collect()
    };
    assert_eq!(history(o), history(r), "{app}: history");
}

/// The layers: every entry, and every diffID but those of the launcher and its config; the
/// launcher's config is the same TOML document.
fn same_layers(op: &Build, reference: &Build) {
    let app = op.app;
    let (o, r) = (&op.published.layers, &reference.published.layers);
    assert_eq!(o.len(), r.len(), "{app}: layer count");
    for (i, ((op_id, op_entries), (reference_id, reference_entries))) in o.iter().zip(r).enumerate()
    {
        let paths = |entries: &[Entry]| entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
        assert_eq!(
            paths(op_entries),
            paths(reference_entries),
            "{app}: the entries of layer {i}"
        );
        let mut known = false;
        for (o, r) in op_entries.iter().zip(reference_entries) {
            if [Known::LAUNCHER, Known::LAUNCHER_CONFIG].contains(&o.path.as_str()) {
                known = true;
                assert_eq!(
                    (o.kind, o.mode, o.owner, &o.link),
                    (r.kind, r.mode, r.owner, &r.link),
                    "{app}: {}",
                    o.path
                );
            } else {
                assert_eq!(o, r, "{app}: layer {i}");
            }
        }
        if !known {
            assert_eq!(op_id, reference_id, "{app}: the diffID of layer {i}");
        }
    }
    let launcher_config = |build: &Build| -> toml::Value {
        toml::from_str(&build.run("/bin/cat", &[Known::LAUNCHER_CONFIG])).unwrap()
    };
    assert_eq!(
        launcher_config(op),
        launcher_config(reference),
        "{app}: {}",
        Known::LAUNCHER_CONFIG
    );
}

/// The labels, their JSON parsed; the launcher's entries aside.
fn same_labels(op: &Build, reference: &Build) {
    let app = op.app;
    assert_eq!(
        op.labels.keys().collect::<Vec<_>>(),
        reference.labels.keys().collect::<Vec<_>>(),
        "{app}: label keys"
    );
    for (key, value) in &op.labels {
        let mut op_value = value.clone();
        let mut reference_value = reference.labels[key].clone();
        match key.as_str() {
            "io.buildpacks.lifecycle.metadata" => {
                for layer in ["launcher", "config"] {
                    assert!(op_value[layer]["sha"].is_string(), "{app}: {key}.{layer}");
                    op_value[layer] = Value::Null;
                    reference_value[layer] = Value::Null;
                }
            }
            "io.buildpacks.build.metadata" => {
                assert_eq!(
                    op_value["launcher"]["source"]["git"]["repository"],
                    OP_LIFECYCLE_REPOSITORY
                );
                op_value["launcher"] = Value::Null;
                reference_value["launcher"] = Value::Null;
            }
            _ => {}
        }
        assert_eq!(op_value, reference_value, "{app}: label {key}");
    }
}

/// `report.toml`: the same keys and tags.
fn same_report(op: &Build, reference: &Build) {
    let app = op.app;
    let keys = |b: &Build| -> Vec<String> {
        b.report["image"]
            .as_table()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(keys(op), keys(reference), "{app}: report.toml");
    let tags = |b: &Build| -> Vec<String> {
        b.report["image"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().replace(&b.image, "<image>"))
            .collect()
    };
    assert_eq!(tags(op), tags(reference), "{app}: report.toml tags");
}

/// What each launcher does: the launch environment, and every process but the server.
fn same_launch(op: &Build, reference: &Build) {
    let app = op.app;
    let environment = |build: &Build| {
        build
            .run(Known::LAUNCHER, &["--", "env"])
            .lines()
            .filter(|l| !l.starts_with("HOSTNAME="))
            .map(str::to_string)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        environment(op),
        environment(reference),
        "{app}: the launch environment"
    );
    let processes = op.labels["io.buildpacks.build.metadata"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["type"].as_str())
        .filter(|p| *p != "web");
    for process in processes {
        let entrypoint = format!("/cnb/process/{process}");
        assert_eq!(
            op.run(&entrypoint, &[]),
            reference.run(&entrypoint, &[]),
            "{app}: what process {process} prints"
        );
    }
}

#[test]
fn op_lifecycle_publishes_what_the_reference_lifecycle_publishes() {
    let stack = Stack::start(Lifecycle::Op);
    let reference_builder = stack.another_builder(Lifecycle::Reference, "pack-builder", None);
    for app in ["static-site", "procfile", "greeting"] {
        let op = Build::new(&stack, &stack.builder, "op-lifecycle", app);
        let reference = Build::new(&stack, &reference_builder, "reference", app);
        same_config(&op, &reference);
        same_layers(&op, &reference);
        same_labels(&op, &reference);
        same_report(&op, &reference);
        same_launch(&op, &reference);
    }
}

/// The media types of `image`'s manifest, config and layers, as the registry serves them.
fn media_types(image: &str) -> (String, String, Vec<String>) {
    let manifest: Value = serde_json::from_slice(&skopeo_raw(image)).unwrap();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        text(&manifest["mediaType"]),
        text(&manifest["config"]["mediaType"]),
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| text(&l["mediaType"]))
            .collect(),
    )
}

/// `image`'s manifest, config and every layer are in Docker's media types.
#[track_caller]
fn docker_typed(image: &str, what: &str) {
    let (manifest, config, layers) = media_types(image);
    assert_eq!(manifest, op_oci::DOCKER_MANIFEST, "{what}: {image}");
    assert_eq!(config, op_oci::DOCKER_CONFIG, "{what}: {image}");
    for layer in layers {
        assert_eq!(layer, op_oci::DOCKER_LAYER, "{what}: a layer of {image}");
    }
}

/// A run image in Docker's media types (as `docker push` of Docker 20.10 makes them, here by
/// `skopeo copy --format v2s2` of the stack's OCI run image): both lifecycles publish a Docker
/// image whose every layer is Docker-typed (skopeo refuses a Docker manifest with OCI layer
/// types), the same image otherwise. A rebuild on it of an image op-lifecycle first published
/// on the OCI run image reuses that image's (OCI-typed) layers under Docker's types.
#[test]
fn on_a_docker_typed_run_image_every_layer_is_docker_typed() {
    let stack = Stack::start(Lifecycle::Op);
    let docker_run = stack.image("op/busybox-run-docker:latest");
    let copy = Command::new(which("skopeo").expect("skopeo is installed (scripts/dev-env)"))
        .args([
            "copy",
            "--quiet",
            "--format",
            "v2s2",
            "--src-tls-verify=false",
        ])
        .args(["--dest-tls-verify=false"])
        .arg(format!("docker://{}", stack.run_image))
        .arg(format!("docker://{docker_run}"))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{copy:?}");
    docker_typed(&docker_run, "the run image");
    let home = tempfile::tempdir().unwrap();
    let op_builder = stack.another_builder(
        Lifecycle::Op,
        "builder-docker-run",
        Some((&docker_run, home.path())),
    );
    let reference_builder = stack.another_builder(
        Lifecycle::Reference,
        "pack-builder-docker-run",
        Some((&docker_run, home.path())),
    );
    for app in ["static-site", "procfile"] {
        let op = Build::on(&stack, &op_builder, &docker_run, "op-lifecycle", app);
        let reference = Build::on(&stack, &reference_builder, &docker_run, "reference", app);
        docker_typed(&op.image, "op-lifecycle");
        docker_typed(&reference.image, "the reference lifecycle");
        same_config(&op, &reference);
        same_layers(&op, &reference);
        same_labels(&op, &reference);
        same_launch(&op, &reference);
    }

    let image = stack.image("switched/procfile:latest");
    let cache = Volume::new("cache");
    let app = fixtures().join("apps/procfile");
    for (builder, run_image) in [
        (stack.builder.as_str(), stack.run_image.as_str()),
        (op_builder.as_str(), docker_run.as_str()),
    ] {
        let platform = Platform {
            builder,
            run_image,
            api: "0.15",
        };
        let run = platform.run_creator(&app, &image, &cache, &[]);
        run.success();
        assert_eq!(verify_published(&image), run.digest());
    }
    docker_typed(&image, "the rebuild on the Docker-typed run image");
}

/// `stack`'s run image with a static bash as `/bin/bash` (Debian's `bash-static`, installed by
/// scripts/dev-env), appended as a layer by `crane append`: the launchers of both lifecycles run
/// shell processes with `/bin/bash`, which busybox has not.
fn run_image_with_bash(stack: &Stack) -> String {
    let bash =
        fs_err::read("/bin/bash-static").expect("bash-static is installed (scripts/dev-env)");
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("bash.tar");
    let mut builder = tar::Builder::new(fs_err::File::create(&layer).unwrap());
    let mut header = tar::Header::new_ustar();
    header.set_size(bash.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    builder
        .append_data(&mut header, "bin/bash", bash.as_slice())
        .unwrap();
    builder.into_inner().unwrap().sync_all().unwrap();
    let image = stack.image("op/busybox-run-bash:latest");
    let append = Command::new(crate::common::cnb::crane())
        .args([
            "append",
            "--insecure",
            "--base",
            &stack.run_image,
            "--new_layer",
        ])
        .arg(&layer)
        .args(["--new_tag", &image])
        .output()
        .unwrap();
    assert!(append.status.success(), "{append:?}");
    image
}

/// `/cnb/process/<process> args…` of `build`'s image in a container with `options` (`docker run`
/// options): its exit code, stdout and stderr, whether it fails or not.
fn run_process(
    build: &Build,
    options: &[&str],
    process: &str,
    args: &[&str],
) -> (i32, String, String) {
    let output = docker_command()
        .args(["run", "--rm"])
        .args(options)
        .args([
            "--entrypoint",
            &format!("/cnb/process/{process}"),
            &build.pulled,
        ])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Buildpacks of Buildpack API 0.7 and 0.8 (fixtures/builders/busybox/buildpacks/old-api-0*),
/// the `old-api` app built by both lifecycles on the run image with bash: the same image (the
/// legacy BOM in the SBOM layer, string commands in the metadata, `direct` as written), the same
/// environments for the buildpacks (what they saw is in their layers), and the same processes:
/// direct ones, shell ones in bash script and token modes with profile scripts, user arguments
/// appended. Without bash, both launchers fail a shell process alike.
#[test]
fn buildpacks_of_api_0_7_and_0_8_build_and_launch_as_with_the_reference_lifecycle() {
    let stack = Stack::start(Lifecycle::Op);
    let bash_run = run_image_with_bash(&stack);
    let home = tempfile::tempdir().unwrap();
    let op_builder = stack.another_builder(
        Lifecycle::Op,
        "builder-bash-run",
        Some((&bash_run, home.path())),
    );
    let reference_builder = stack.another_builder(
        Lifecycle::Reference,
        "pack-builder-bash-run",
        Some((&bash_run, home.path())),
    );
    let op = Build::on(&stack, &op_builder, &bash_run, "op-lifecycle", "old-api");
    let reference = Build::on(
        &stack,
        &reference_builder,
        &bash_run,
        "reference",
        "old-api",
    );
    same_config(&op, &reference);
    same_layers(&op, &reference);
    same_labels(&op, &reference);
    same_report(&op, &reference);
    same_launch(&op, &reference);
    old_api_image(&op);
    old_api_processes(&op, &reference);
}

/// What op-lifecycle's image of the `old-api` app holds (the reference's is the same).
fn old_api_image(op: &Build) {
    // What the buildpacks saw: 0.7 gets its directories as arguments only, neither gets targets.
    assert_eq!(
        op.run("/bin/cat", &["/layers/op_old-api-07/runtime/seen.txt"]),
        "detect 0.7: CNB_PLATFORM_DIR=unset CNB_BUILD_PLAN_PATH=unset CNB_BUILDPACK_DIR=set\n\
         build 0.7: CNB_LAYERS_DIR=unset CNB_PLATFORM_DIR=unset CNB_BP_PLAN_PATH=unset CNB_BUILDPACK_DIR=set CNB_TARGET_OS=unset\n"
    );
    assert_eq!(
        op.run("/bin/cat", &["/layers/op_old-api-08/seen/seen.txt"]),
        "detect 0.8: CNB_PLATFORM_DIR=/platform CNB_BUILDPACK_DIR=set CNB_TARGET_OS=unset\n\
         build 0.8: CNB_PLATFORM_DIR=/platform CNB_BUILDPACK_DIR=set CNB_TARGET_OS=unset\n"
    );
    let legacy = op.run("/bin/cat", &["/layers/sbom/launch/sbom.legacy.json"]);
    assert!(
        legacy.starts_with(
            r#"[{"name":"old-runtime","metadata":{"license":"MIT \u0026 \u003cnone\u003e","#
        ),
        "{legacy}"
    );
    let processes = &op.labels["io.buildpacks.build.metadata"]["processes"];
    let process = |kind: &str| {
        processes
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(process("script")["direct"], false);
    assert_eq!(process("script")["command"].as_array().unwrap().len(), 1);
    assert_eq!(process("hello")["direct"], true);
    assert!(process("ignored-dir").get("working-dir").is_none());
    assert_eq!(process("in-dir")["working-dir"], "www");
}

/// The processes of the `old-api` app with user arguments, and a shell process without bash.
fn old_api_processes(op: &Build, reference: &Build) {
    let outputs = |build: &Build| {
        [
            ("hello", vec!["extra"]),
            ("script", vec![]),
            ("tokens", vec!["$HOME"]),
            ("in-dir", vec![]),
            ("ignored-dir", vec![]),
        ]
        .map(|(process, args)| run_process(build, &[], process, &args))
    };
    let op_outputs = outputs(op);
    assert_eq!(
        op_outputs,
        outputs(reference),
        "processes with user arguments"
    );
    assert_eq!(
        op_outputs.map(|(code, stdout, _)| (code, stdout)),
        [
            (0, "old-hello from 0.7 extra (OLD_API=0.7, PROFILE_GREETING=unset)\n".to_string()),
            (
                0,
                "hello from profile.d, OLD_API=0.7\nold-hello in a script (OLD_API=0.7, PROFILE_GREETING=hello from profile.d)\n/workspace\n"
                    .to_string()
            ),
            (0, "0.7|two words|hello from profile.d|/home/cnb|".to_string()),
            (0, "/workspace/www\n".to_string()),
            (0, "/workspace\n".to_string()),
        ]
    );

    // No bash (an empty /bin): the same failure of both launchers (the reference's launcher
    // prints it on stdout in color, op-lifecycle's on stderr: log lines, docs/lifecycle.md).
    let failure = |build: &Build| {
        let (code, stdout, stderr) = run_process(build, &["--tmpfs", "/bin"], "script", &[]);
        let text = format!("{stdout}{stderr}")
            .replace("\u{1b}[31;1m", "")
            .replace("\u{1b}[0m", "");
        (code, text)
    };
    let op_failure = failure(op);
    assert_eq!(op_failure, failure(reference));
    assert_eq!(
        op_failure,
        (
            82,
            "ERROR: failed to launch: bash exec: no such file or directory\n".to_string()
        )
    );
}
