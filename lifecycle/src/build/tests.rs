use super::*;
use crate::files::{PlanEntry, Provider, Require};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["buildpacks", "app", "platform/env", "layers"] {
            fs_err::create_dir_all(dir.path().join(d)).unwrap();
        }
        Self { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A buildpack whose `bin/build` runs `script` (`$1` its layers dir, `$3` its plan).
    fn buildpack(&self, id: &str, script: &str) -> GroupElement {
        crate::testing::write_buildpack(
            &self.path("buildpacks"),
            id,
            "0.10",
            "build",
            &format!("set -e\n{script}"),
        );
        GroupElement {
            id: id.into(),
            version: "1.0.0".into(),
            api: "0.10".into(),
            homepage: None,
        }
    }

    fn build(&self, group: &[GroupElement], plan: &PlanToml) -> Result<BuildMetadata, Error> {
        let store = Store {
            dir: self.path("buildpacks"),
        };
        let (layers, app, platform) =
            (self.path("layers"), self.path("app"), self.path("platform"));
        let mut builder = Builder {
            store: &store,
            layers_dir: &layers,
            app_dir: &app,
            platform_dir: &platform,
            build_config_dir: None,
            target_env: &[],
            exec_env: None,
            env: Env::build(std::env::vars()),
        };
        builder.build(group, plan)
    }
}

const WRITE_LAYERS: &str = r#"
mkdir -p "$1/tools/bin" "$1/tools/env.build" "$1/runtime/env.launch" "$1/cache-only" "$1/scratch"
printf '#!/bin/sh\necho tool-output\n' > "$1/tools/bin/mytool"; chmod +x "$1/tools/bin/mytool"
printf 'from-tools' > "$1/tools/env.build/TOOLS_VAR"
printf '[types]\nbuild = true\n' > "$1/tools.toml"
printf 'hello' > "$1/runtime/env.launch/GREETING.default"
printf '[types]\nlaunch = true\n[metadata]\nversion = "1"\n' > "$1/runtime.toml"
printf '[types]\ncache = true\n' > "$1/cache-only.toml"
printf '[metadata]\nnote = "no types"\n' > "$1/scratch.toml"
cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "web"
command = ["httpd", "-f"]
args = ["-p", "8080"]
default = true
[[processes]]
type = "worker"
command = ["sh", "-c", "work"]
[[labels]]
key = "org.example.built-by"
value = "first"
TOML
"#;

#[test]
fn layers_processes_and_the_build_env_follow_the_spec() {
    let f = Fixture::new();
    let first = f.buildpack("example/first", WRITE_LAYERS);
    let second = f.buildpack(
        "example/second",
        r#"[ "$(mytool)" = tool-output ] || { echo "build layer bin not on PATH"; exit 1; }
[ "$TOOLS_VAR" = from-tools ] || { echo "env.build not applied"; exit 1; }
[ -z "$GREETING" ] || { echo "launch env leaked into build"; exit 1; }
printf '[[processes]]\ntype = "worker"\ncommand = ["second-worker"]\n' > "$1/launch.toml""#,
    );
    let metadata = f
        .build(&[first.clone(), second.clone()], &PlanToml::default())
        .unwrap();
    let layers = f.path("layers/example_first");
    assert!(layers.join("tools/bin/mytool").is_file());
    assert!(
        layers.join("scratch.ignore").is_dir(),
        "a layer without types is set aside"
    );
    assert!(!layers.join("scratch").exists());
    assert_eq!(metadata.buildpacks, [first, second]);
    assert_eq!(metadata.default_process_type.as_deref(), Some("web"));
    let types: Vec<(&str, &str)> = metadata
        .processes
        .iter()
        .map(|p| (p.kind.as_str(), p.buildpack_id.as_str()))
        .collect();
    assert_eq!(
        types,
        [("web", "example/first"), ("worker", "example/second")],
        "sorted, later buildpacks win"
    );
    assert!(metadata.processes.iter().all(|p| p.direct && !p.default));
    assert_eq!(metadata.labels[0].value, "first");
    let on_disk: BuildMetadata = files::read_toml(&f.path("layers/config/metadata.toml"))
        .unwrap()
        .unwrap();
    assert_eq!(on_disk, metadata);
}

#[test]
fn a_non_default_redefinition_clears_the_default() {
    let f = Fixture::new();
    let first = f.buildpack("a", "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"a\"]\\ndefault = true\\n' > \"$1/launch.toml\"");
    let second = f.buildpack(
        "b",
        "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"b\"]\\n' > \"$1/launch.toml\"",
    );
    let metadata = f.build(&[first, second], &PlanToml::default()).unwrap();
    assert_eq!(metadata.default_process_type, None);
    assert_eq!(metadata.processes[0].command, ["b"]);
}

#[test]
fn unmet_requirements_pass_to_the_next_provider() {
    let f = Fixture::new();
    let first = f.buildpack(
        "first",
        "grep -q 'name = \"node\"' \"$3\" || exit 7\nprintf '[[unmet]]\\nname = \"node\"\\n' > \"$1/build.toml\"",
    );
    let second = f.buildpack(
        "second",
        "grep -q 'name = \"node\"' \"$3\" || { echo 'node not passed on'; exit 8; }",
    );
    let provider = |id: &str| Provider {
        id: id.into(),
        version: "1.0.0".into(),
    };
    let plan = PlanToml {
        entries: vec![PlanEntry {
            providers: vec![provider("first"), provider("second")],
            requires: vec![Require {
                name: "node".into(),
                ..Require::default()
            }],
        }],
    };
    f.build(&[first, second], &plan).unwrap();
}

#[test]
fn failures_and_malformed_outputs_have_their_exit_codes() {
    let f = Fixture::new();
    let failing = f.buildpack("failing", "echo compiling; exit 4");
    assert_eq!(
        f.build(&[failing], &PlanToml::default()).unwrap_err().code,
        exit::FAILED_BUILD_WITH_ERRORS
    );

    let cases = [
        (
            "legacy",
            "printf 'launch = true\\n' > \"$1/l.toml\"",
            "types table",
        ),
        (
            "defaults",
            "printf '[[processes]]\\ntype = \"a\"\\ncommand = [\"x\"]\\ndefault = true\\n[[processes]]\\ntype = \"b\"\\ncommand = [\"y\"]\\ndefault = true\\n' > \"$1/launch.toml\"",
            "multiple default",
        ),
        (
            "badtype",
            "printf '[[processes]]\\ntype = \"a/b\"\\ncommand = [\"x\"]\\n' > \"$1/launch.toml\"",
            "invalid process type",
        ),
        (
            "unmet",
            "printf '[[unmet]]\\nname = \"nothing\"\\n' > \"$1/build.toml\"",
            "must match a requested dependency",
        ),
        (
            "direct",
            "printf '[[processes]]\\ntype = \"a\"\\ncommand = [\"x\"]\\ndirect = true\\n' > \"$1/launch.toml\"",
            "direct",
        ),
    ];
    for (id, script, message) in cases {
        let bp = f.buildpack(id, script);
        let err = f.build(&[bp], &PlanToml::default()).unwrap_err();
        assert_eq!(err.code, exit::BUILD_ERROR, "{id}: {err}");
        assert!(err.message.contains(message), "{id}: {err}");
    }
}
