use std::path::{Path, PathBuf};

use super::config::{self, BuilderSpec};
use super::{Error, create};
use crate::config::Env;

fn fixture_builder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/builders/busybox/builder.toml")
}

/// A directory with a copy of the fixture builder, and a static "lifecycle" (busybox) for it.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(fixture_builder().parent().unwrap(), dir.path());
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "Debian's busybox-static is not installed; run scripts/dev-env"
        );
        fs_err::create_dir_all(dir.path().join("lifecycle")).unwrap();
        fs_err::copy(busybox, dir.path().join("lifecycle/lifecycle")).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn toml(&self) -> PathBuf {
        self.path().join("builder.toml")
    }

    fn env(&self) -> Env {
        Env::from_pairs([(
            config::LIFECYCLE_DIR_ENV,
            self.path().join("lifecycle").display().to_string(),
        )])
    }

    fn edit(&self, from: &str, to: &str) {
        let text = fs_err::read_to_string(self.toml()).unwrap();
        assert!(text.contains(from), "the fixture has `{from}`");
        fs_err::write(self.toml(), text.replacen(from, to, 1)).unwrap();
    }

    fn load(&self) -> Result<BuilderSpec, Error> {
        config::load(&self.toml(), &self.env())
    }

    fn problem(&self) -> String {
        match self.load() {
            Err(Error::Config { problem, .. }) => problem,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_fixture_builder_resolves() {
    let scratch = Scratch::new();
    let spec = scratch.load().unwrap();
    let ids: Vec<&str> = spec.buildpacks.iter().map(config::Buildpack::id).collect();
    assert_eq!(
        ids,
        [
            "op/greeting",
            "op/procfile",
            "op/deps",
            "op/static-site",
            "op/old-api-07",
            "op/old-api-08",
            "op/helm-chart"
        ]
    );
    assert_eq!(spec.build_image, "localhost:5001/op/busybox-build:latest");
    assert_eq!(
        spec.run_images[0].image,
        "localhost:5001/op/busybox-run:latest"
    );
    assert_eq!(spec.stack_id.as_deref(), Some("io.octopilot.busybox"));
    let first = &spec.order.order[0].group;
    assert_eq!(
        (
            first[0].id.as_str(),
            first[0].version.as_str(),
            first[0].optional
        ),
        ("op/greeting", "0.1.0", false)
    );
    assert!(first[1].optional, "optional is kept");
    assert_eq!(
        spec.lifecycle.lifecycle,
        scratch.path().join("lifecycle/lifecycle")
    );
    assert_eq!(
        spec.lifecycle.launcher, spec.lifecycle.lifecycle,
        "without a launcher, the lifecycle serves as one"
    );
}

#[test]
fn a_separate_launcher_next_to_the_lifecycle_is_used() {
    let scratch = Scratch::new();
    fs_err::copy("/bin/busybox", scratch.path().join("lifecycle/launcher")).unwrap();
    assert_eq!(
        scratch.load().unwrap().lifecycle.launcher,
        scratch.path().join("lifecycle/launcher")
    );
}

#[test]
fn mistakes_in_builder_toml_name_the_entry() {
    let scratch = Scratch::new();
    scratch.edit(
        "uri = \"buildpacks/procfile\"",
        "uri = \"buildpacks/missing\"",
    );
    assert!(
        scratch.problem().contains("buildpacks[1]: `"),
        "{}",
        scratch.problem()
    );
    assert!(
        scratch
            .problem()
            .ends_with("buildpacks/missing` is not a directory"),
        "{}",
        scratch.problem()
    );

    let scratch = Scratch::new();
    scratch.edit("version = \"0.1.0\"\nuri", "version = \"0.2.0\"\nuri");
    assert!(
        scratch
            .problem()
            .contains("buildpacks[3]: version `0.2.0` of `op/static-site` does not match `0.1.0`")
    );

    let scratch = Scratch::new();
    scratch.edit(
        "id = \"op/static-site\"\nversion",
        "id = \"op/static\"\nversion",
    );
    assert!(
        scratch
            .problem()
            .contains("buildpacks[3]: id `op/static` does not match `op/static-site`")
    );

    let scratch = Scratch::new();
    scratch.edit("id = \"op/procfile\"", "id = \"op/unknown\"");
    assert_eq!(
        scratch.problem(),
        "order[1].group[0]: no buildpack `op/unknown` in [[buildpacks]]"
    );

    let scratch = Scratch::new();
    scratch.edit("[build]", "[[extensions]]\nid = \"x\"\n\n[build]");
    assert!(
        scratch.problem().contains("unknown field `extensions`"),
        "{}",
        scratch.problem()
    );

    let scratch = Scratch::new();
    scratch.edit(
        "[[run.images]]\nimage = \"localhost:5001/op/busybox-run:latest\"",
        "",
    );
    assert!(scratch.problem().contains("[[run.images]] is required"));

    let scratch = Scratch::new();
    scratch.edit(
        "uri = \"buildpacks/greeting\"",
        "uri = \"docker://example/bp\"",
    );
    assert!(
        scratch
            .problem()
            .contains("buildpacks[0]: uri `docker://example/bp` is not a local directory")
    );
}

#[test]
fn bad_buildpack_descriptors_are_errors() {
    let scratch = Scratch::new();
    let descriptor = scratch.path().join("buildpacks/greeting/buildpack.toml");
    let text = fs_err::read_to_string(&descriptor).unwrap();
    fs_err::write(&descriptor, text.replace("api = \"0.10\"", "api = \"0.2\"")).unwrap();
    let problem = scratch.problem();
    assert!(
        problem.contains("buildpack API version '0.2' of buildpack 'op/greeting' is incompatible"),
        "{problem}"
    );

    fs_err::write(&descriptor, "api = \"0.10\"\n[buildpack\n").unwrap();
    match scratch.load() {
        Err(Error::Config { path, problem, .. }) => {
            assert_eq!(path, descriptor);
            assert!(problem.contains("TOML parse error"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_lifecycle_must_exist_and_be_static() {
    let scratch = Scratch::new();
    let env = Env::from_pairs([(
        config::LIFECYCLE_DIR_ENV,
        scratch.path().join("nowhere").display().to_string(),
    )]);
    match config::load(&scratch.toml(), &env) {
        Err(e @ Error::LifecycleNotFound { .. }) => {
            assert!(e.to_string().contains("nowhere/lifecycle"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // The headers of this (dynamic) test binary: all op reads of it, without a copy of its
    // hundreds of megabytes.
    let mut headers = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            fs_err::File::open(std::env::current_exe().unwrap()).unwrap(),
            64 << 10,
        ),
        &mut headers,
    )
    .unwrap();
    fs_err::write(scratch.path().join("lifecycle/lifecycle"), headers).unwrap();
    match scratch.load() {
        Err(Error::NotStatic { problem, .. }) => {
            assert!(problem.contains("it needs /"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    scratch.edit("[build]", "[lifecycle]\nversion = \"0.21.1\"\n\n[build]");
    assert!(
        scratch
            .problem()
            .contains("op does not download lifecycles")
    );
}

#[test]
fn the_layers_follow_pack_s_layout() {
    let scratch = Scratch::new();
    let mut spec = scratch.load().unwrap();
    spec.build_env.push(config::BuildEnv {
        name: "BP_LOG".into(),
        value: "debug".into(),
        suffix: Some("override".into()),
        delim: None,
    });
    let layers = create::layers(&spec, 1000, 1001).unwrap();
    let entries = |i: usize| -> Vec<(String, u64, u64, u32)> {
        tar::Archive::new(layers[i].layer.tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    };
    let dirs = entries(0);
    assert!(
        dirs.contains(&("/layers".into(), 1000, 1001, 0o755)),
        "{dirs:?}"
    );
    assert!(
        dirs.contains(&("/workspace".into(), 1000, 1001, 0o755)),
        "{dirs:?}"
    );
    let lifecycle: Vec<String> = entries(1).into_iter().map(|e| e.0).collect();
    for path in [
        "/cnb/lifecycle/creator",
        "/cnb/lifecycle/launcher",
        "/cnb/lifecycle/lifecycle",
        "/cnb/lifecycle/lifecycle.toml",
        "/lifecycle",
    ] {
        assert!(
            lifecycle.contains(&path.to_string()),
            "{path} in {lifecycle:?}"
        );
    }
    let greeting = entries(2);
    assert!(
        greeting.iter().all(|e| e.1 == 0 && e.2 == 0),
        "buildpacks are root-owned"
    );
    assert!(
        greeting.contains(&(
            "/cnb/buildpacks/op_greeting/0.1.0/bin/build".into(),
            0,
            0,
            0o755
        )),
        "{greeting:?}"
    );
    // A layer per buildpack (seven), then the order, run.toml and the build config.
    assert_eq!(
        entries(9).into_iter().map(|e| e.0).collect::<Vec<_>>(),
        ["/cnb", "/cnb/order.toml"]
    );
    assert!(entries(10).iter().any(|e| e.0 == "/cnb/run.toml"));
    assert!(
        entries(11)
            .iter()
            .any(|e| e.0 == "/cnb/build-config/env/BP_LOG.override")
    );
    assert_eq!(layers.len(), 12);

    let again = create::layers(&spec, 1000, 1001).unwrap();
    let ids = |l: &[create::NewLayer]| {
        l.iter()
            .map(|n| n.layer.diff_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&layers),
        ids(&again),
        "the same inputs give the same layers"
    );
}

#[test]
fn the_labels_describe_buildpacks_order_and_lifecycle() {
    let scratch = Scratch::new();
    let spec = scratch.load().unwrap();
    let layers = create::layers(&spec, 1000, 1000).unwrap();
    let labels = create::labels(&spec, &layers);
    let bp_layers: serde_json::Value =
        serde_json::from_str(&labels["io.buildpacks.buildpack.layers"]).unwrap();
    assert_eq!(
        bp_layers["op/procfile"]["0.1.0"]["layerDiffID"],
        layers[3].layer.diff_id.as_str()
    );
    let order: serde_json::Value =
        serde_json::from_str(&labels["io.buildpacks.buildpack.order"]).unwrap();
    assert_eq!(order[0]["group"][1]["optional"], true);
    let metadata: serde_json::Value =
        serde_json::from_str(&labels["io.buildpacks.builder.metadata"]).unwrap();
    assert_eq!(
        metadata["images"][0]["image"],
        "localhost:5001/op/busybox-run:latest"
    );
    assert_eq!(
        metadata["lifecycle"]["apis"]["platform"]["supported"][0],
        "0.12"
    );
    assert_eq!(labels["io.buildpacks.stack.id"], "io.octopilot.busybox");
}
