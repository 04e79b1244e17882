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
        self.buildpack_of(id, "0.10", script)
    }

    /// [`Fixture::buildpack`] of Buildpack API `api`.
    fn buildpack_of(&self, id: &str, api: &str, script: &str) -> GroupElement {
        crate::testing::write_buildpack(
            &self.path("buildpacks"),
            id,
            api,
            "build",
            &format!("set -e\n{script}"),
        );
        GroupElement {
            id: id.into(),
            version: "1.0.0".into(),
            api: api.into(),
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

#[test]
fn processes_of_apis_below_0_9_have_a_string_command_and_may_be_shell_processes() {
    let f = Fixture::new();
    let seven = f.buildpack_of(
        "old/seven",
        "0.7",
        r#"cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "script"
command = "echo $GREETING && echo done"
working-dir = "sub"
[[processes]]
type = "hello"
command = "echo"
args = ["hello", "world"]
direct = true
default = true
TOML"#,
    );
    let eight = f.buildpack_of(
        "old/eight",
        "0.8",
        r#"cat > "$1/launch.toml" <<'TOML'
[[processes]]
type = "wd"
command = "pwd"
direct = false
working-dir = "sub"
unknown-key = "ignored"
TOML"#,
    );
    let metadata = f.build(&[seven, eight], &PlanToml::default()).unwrap();
    let process = |kind: &str| {
        metadata
            .processes
            .iter()
            .find(|p| p.kind == kind)
            .unwrap()
            .clone()
    };
    let script = process("script");
    assert_eq!(script.command, ["echo $GREETING && echo done"]);
    assert!(!script.direct, "direct defaults to false below 0.9");
    assert_eq!(script.working_dir, None, "working-dir is ignored below 0.8");
    let hello = process("hello");
    assert_eq!(
        (hello.command.as_slice(), hello.direct),
        (&["echo".to_string()][..], true)
    );
    assert_eq!(hello.args, ["hello", "world"]);
    assert!(!hello.default);
    assert_eq!(metadata.default_process_type.as_deref(), Some("hello"));
    let wd = process("wd");
    assert_eq!(wd.working_dir.as_deref(), Some("sub"), "kept from 0.8");
    assert_eq!(wd.buildpack_id, "old/eight");
    let text = fs_err::read_to_string(f.path("layers/config/metadata.toml")).unwrap();
    assert!(
        text.contains("command = [\"echo $GREETING && echo done\"]"),
        "{text}"
    );
    assert!(text.contains("direct = false"), "{text}");
}

#[test]
fn command_and_direct_are_checked_by_the_buildpack_api() {
    let f = Fixture::new();
    let cases = [
        (
            "list-on-0.8",
            "0.8",
            "command = [\"x\"]",
            "incompatible types",
        ),
        (
            "string-on-0.9",
            "0.9",
            "command = \"x\"",
            "incompatible types",
        ),
        (
            "direct-on-0.9",
            "0.9",
            "command = [\"x\"]\ndirect = false",
            "process.direct is not supported on this buildpack version",
        ),
    ];
    for (id, api, process, message) in cases {
        let bp = f.buildpack_of(
            id,
            api,
            &format!(
                "printf '[[processes]]\\ntype = \"a\"\\n{}\\n' > \"$1/launch.toml\"",
                process.replace('\n', "\\n")
            ),
        );
        let err = f.build(&[bp], &PlanToml::default()).unwrap_err();
        assert_eq!(err.code, exit::BUILD_ERROR, "{id}: {err}");
        assert!(err.message.contains(message), "{id}: {err}");
    }
}

#[test]
fn buildpacks_of_api_0_7_get_no_layers_platform_or_plan_variables() {
    let f = Fixture::new();
    let seven = f.buildpack_of(
        "seven",
        "0.7",
        r#"[ -z "${CNB_LAYERS_DIR+x}${CNB_BP_PLAN_PATH+x}${CNB_PLATFORM_DIR+x}" ] || exit 9
[ -n "$CNB_BUILDPACK_DIR" ] || exit 8"#,
    );
    let eight = f.buildpack_of(
        "eight",
        "0.8",
        r#"[ "$CNB_LAYERS_DIR" = "$1" ] || exit 9
[ "$CNB_PLATFORM_DIR" = "$2" ] || exit 8
[ "$CNB_BP_PLAN_PATH" = "$3" ] || exit 7"#,
    );
    f.build(&[seven, eight], &PlanToml::default()).unwrap();
}

#[test]
fn the_legacy_bom_goes_to_sbom_legacy_json() {
    let f = Fixture::new();
    let first = f.buildpack_of(
        "old/first",
        "0.7",
        r#"cat > "$1/launch.toml" <<'TOML'
[[bom]]
name = "ruby"
[bom.metadata]
version = "3.1"
zeta = 1
alpha = { nested = "<&>" }
[[bom]]
name = "bare"
TOML
cat > "$1/build.toml" <<'TOML'
[[bom]]
name = "compiler"
[bom.metadata]
version = "12"
TOML"#,
    );
    let second = f.buildpack(
        "second",
        "printf '[[bom]]\\nname = \"late\"\\n' > \"$1/launch.toml\"",
    );
    f.build(&[first, second], &PlanToml::default()).unwrap();
    assert_eq!(
        fs_err::read_to_string(f.path("layers/sbom/launch/sbom.legacy.json")).unwrap(),
        concat!(
            r#"[{"name":"ruby","metadata":{"alpha":{"nested":"\u003c\u0026\u003e"},"version":"3.1","zeta":1},"buildpack":{"id":"old/first","version":"1.0.0"}},"#,
            r#"{"name":"bare","metadata":null,"buildpack":{"id":"old/first","version":"1.0.0"}},"#,
            r#"{"name":"late","metadata":null,"buildpack":{"id":"second","version":"1.0.0"}}]"#,
            "\n"
        )
    );
    assert_eq!(
        fs_err::read_to_string(f.path("layers/sbom/build/sbom.legacy.json")).unwrap(),
        "[{\"name\":\"compiler\",\"metadata\":{\"version\":\"12\"},\"buildpack\":{\"id\":\"old/first\",\"version\":\"1.0.0\"}}]\n"
    );

    let g = Fixture::new();
    let none = g.buildpack("none", "true");
    g.build(&[none], &PlanToml::default()).unwrap();
    assert_eq!(
        fs_err::read_to_string(g.path("layers/sbom/launch/sbom.legacy.json")).unwrap(),
        "null\n"
    );
    let versioned = g.buildpack(
        "versioned",
        "printf '[[bom]]\\nname = \"x\"\\nversion = \"1\"\\n' > \"$1/launch.toml\"",
    );
    let err = g.build(&[versioned], &PlanToml::default()).unwrap_err();
    assert_eq!(err.code, exit::BUILD_ERROR);
    assert!(
        err.message
            .contains("bom entry 'x' has a top level version which is not allowed"),
        "{err}"
    );
}
