use std::path::PathBuf;

use super::*;
use crate::env::Env;
use crate::files::GroupEntry;

/// A builder's buildpacks in a temporary directory, and an app.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["buildpacks", "app", "platform/env"] {
            fs_err::create_dir_all(dir.path().join(d)).unwrap();
        }
        Self { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A buildpack whose `bin/detect` runs `script` (with `$2` the plan path).
    fn buildpack(&self, id: &str, api: &str, script: &str) -> &Self {
        crate::testing::write_buildpack(&self.path("buildpacks"), id, api, "detect", script);
        self
    }

    /// A composite buildpack with `order`.
    fn composite(&self, id: &str, order: &str) -> &Self {
        let dir = self
            .path("buildpacks")
            .join(buildpack::escape_id(id))
            .join("1.0.0");
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(
            dir.join("buildpack.toml"),
            format!("api = \"0.10\"\n[buildpack]\nid = \"{id}\"\nversion = \"1.0.0\"\n{order}"),
        )
        .unwrap();
        self
    }

    fn detect(&self, order: &[&[(&str, bool)]]) -> Result<Detected, Error> {
        let order: Vec<Group> = order
            .iter()
            .map(|g| Group {
                group: g
                    .iter()
                    .map(|(id, optional)| GroupEntry {
                        id: (*id).into(),
                        version: "1.0.0".into(),
                        optional: *optional,
                    })
                    .collect(),
            })
            .collect();
        let store = Store {
            dir: self.path("buildpacks"),
        };
        let env = Env::build(std::env::vars());
        let app = self.path("app");
        let platform = self.path("platform");
        let exec = ExecInputs {
            app_dir: &app,
            platform_dir: &platform,
            build_config_dir: None,
            env: &env,
            target_env: &[],
            exec_env: None,
        };
        Detector::new(&store, exec, Version(0, 13), None).detect(&order)
    }
}

fn ids(detected: &Detected) -> Vec<&str> {
    detected.group.iter().map(|g| g.id.as_str()).collect()
}

#[test]
fn the_first_group_that_passes_wins() {
    let f = Fixture::new();
    f.buildpack("a", "0.10", "exit 100")
        .buildpack("b", "0.10", "exit 0")
        .buildpack("c", "0.10", "exit 0");
    let detected = f
        .detect(&[&[("a", false)], &[("b", false), ("c", false)]])
        .unwrap();
    assert_eq!(ids(&detected), ["b", "c"]);
    assert_eq!(detected.group[0].api, "0.10");
}

#[test]
fn optional_buildpacks_may_fail() {
    let f = Fixture::new();
    f.buildpack("a", "0.10", "exit 100")
        .buildpack("b", "0.10", "exit 0");
    assert_eq!(
        ids(&f.detect(&[&[("a", true), ("b", false)]]).unwrap()),
        ["b"]
    );
    let err = f.detect(&[&[("a", false), ("b", false)]]).unwrap_err();
    assert_eq!(err.code, exit::FAILED_DETECT);
}

#[test]
fn a_group_of_only_failed_optional_buildpacks_fails() {
    let f = Fixture::new();
    f.buildpack("a", "0.10", "exit 100");
    assert_eq!(
        f.detect(&[&[("a", true)]]).unwrap_err().code,
        exit::FAILED_DETECT
    );
}

#[test]
fn errors_are_reported_with_their_own_exit_code() {
    let f = Fixture::new();
    f.buildpack("a", "0.10", "echo broken; exit 3");
    let err = f.detect(&[&[("a", false)]]).unwrap_err();
    assert_eq!(err.code, exit::FAILED_DETECT_WITH_ERRORS);
}

#[test]
fn requirements_must_be_provided_by_the_same_or_an_earlier_buildpack() {
    let f = Fixture::new();
    f.buildpack("provider", "0.10", "printf '[[provides]]\\nname = \"node\"\\n' > \"$2\"")
        .buildpack("user", "0.10", "printf '[[requires]]\\nname = \"node\"\\n[requires.metadata]\\nversion = \"20\"\\n' > \"$2\"")
        .buildpack("greedy", "0.10", "printf '[[requires]]\\nname = \"python\"\\n' > \"$2\"")
        .buildpack("lonely", "0.10", "printf '[[provides]]\\nname = \"ruby\"\\n' > \"$2\"");
    let detected = f
        .detect(&[&[("provider", false), ("user", false)]])
        .unwrap();
    assert_eq!(ids(&detected), ["provider", "user"]);
    let entry = &detected.plan.entries[0];
    assert_eq!(
        entry.providers,
        [Provider {
            id: "provider".into(),
            version: "1.0.0".into()
        }]
    );
    assert_eq!(entry.requires[0].name, "node");
    assert_eq!(entry.requires[0].metadata["version"].as_str(), Some("20"));
    // A requirement nobody provides fails the group, a provision nobody requires too…
    assert_eq!(
        f.detect(&[&[("greedy", false)]]).unwrap_err().code,
        exit::FAILED_DETECT
    );
    assert_eq!(
        f.detect(&[&[("lonely", false)]]).unwrap_err().code,
        exit::FAILED_DETECT
    );
    // …unless the buildpack is optional: then it is dropped.
    let detected = f
        .detect(&[&[("lonely", true), ("provider", false), ("user", false)]])
        .unwrap();
    assert_eq!(ids(&detected), ["provider", "user"]);
    // The order matters: a requirement before its provider fails.
    assert!(
        f.detect(&[&[("user", false), ("provider", false)]])
            .is_err()
    );
}

#[test]
fn or_alternatives_are_tried_in_order() {
    let f = Fixture::new();
    f.buildpack(
        "flexible",
        "0.10",
        "printf '[[requires]]\\nname = \"python\"\\n[[or]]\\n[[or.provides]]\\nname = \"node\"\\n[[or.requires]]\\nname = \"node\"\\n' > \"$2\"",
    );
    let detected = f.detect(&[&[("flexible", false)]]).unwrap();
    assert_eq!(detected.plan.entries[0].requires[0].name, "node");
}

#[test]
fn composite_buildpacks_expand_to_their_order() {
    let f = Fixture::new();
    f.buildpack("a", "0.10", "exit 100")
        .buildpack("b", "0.10", "exit 0")
        .buildpack("after", "0.10", "exit 0");
    f.composite(
        "meta",
        "[[order]]\n[[order.group]]\nid = \"a\"\nversion = \"1.0.0\"\n[[order]]\n[[order.group]]\nid = \"b\"\nversion = \"1.0.0\"\n",
    );
    assert_eq!(
        ids(&f.detect(&[&[("meta", false), ("after", false)]]).unwrap()),
        ["b", "after"]
    );
}

#[test]
fn unsupported_buildpack_apis_exit_12() {
    let f = Fixture::new();
    f.buildpack("old", "0.6", "exit 0");
    assert_eq!(
        f.detect(&[&[("old", false)]]).unwrap_err().code,
        exit::INCOMPATIBLE_BUILDPACK_API
    );
}

#[test]
fn top_level_versions_in_plans_are_errors() {
    let f = Fixture::new();
    f.buildpack("v", "0.10", "printf '[[provides]]\\nname = \"x\"\\n[[requires]]\\nname = \"x\"\\nversion = \"1\"\\n' > \"$2\"");
    assert_eq!(
        f.detect(&[&[("v", false)]]).unwrap_err().code,
        exit::FAILED_DETECT_WITH_ERRORS
    );
}

#[test]
fn detect_runs_in_the_app_directory_with_the_spec_environment() {
    let f = Fixture::new();
    fs_err::write(f.path("app/marker"), "").unwrap();
    fs_err::write(f.path("platform/env/USER_VAR"), "from-platform").unwrap();
    f.buildpack(
        "env",
        "0.10",
        "test -f marker || exit 1\n[ \"$USER_VAR\" = from-platform ] || exit 2\n[ -n \"$CNB_BUILDPACK_DIR\" ] || exit 3\n[ \"$CNB_BUILD_PLAN_PATH\" = \"$2\" ] || exit 4\n[ \"$CNB_PLATFORM_DIR\" = \"$1\" ] || exit 5\nexit 0",
    );
    assert_eq!(ids(&f.detect(&[&[("env", false)]]).unwrap()), ["env"]);
}

#[test]
fn buildpacks_of_api_0_7_get_no_platform_or_plan_variables() {
    let f = Fixture::new();
    let unset = "[ -z \"${CNB_PLATFORM_DIR+x}${CNB_BUILD_PLAN_PATH+x}\" ] || exit 1\n[ -n \"$CNB_BUILDPACK_DIR\" ] || exit 2\nexit 0";
    f.buildpack("old", "0.7", unset);
    assert_eq!(ids(&f.detect(&[&[("old", false)]]).unwrap()), ["old"]);
    let set = "[ \"$CNB_BUILD_PLAN_PATH\" = \"$2\" ] || exit 1\n[ \"$CNB_PLATFORM_DIR\" = \"$1\" ] || exit 2\n[ -z \"${CNB_TARGET_OS+x}\" ] || exit 3\nexit 0";
    f.buildpack("eight", "0.8", set);
    assert_eq!(ids(&f.detect(&[&[("eight", false)]]).unwrap()), ["eight"]);
}

/// A buildpack `id` of `api` whose `buildpack.toml` ends with `extra`, passing detection.
fn buildpack_with(f: &Fixture, id: &str, api: &str, extra: &str) {
    f.buildpack(id, api, "exit 0");
    let path = f.path(&format!("buildpacks/{id}/1.0.0/buildpack.toml"));
    let mut text = fs_err::read_to_string(&path).unwrap();
    text.push_str(extra);
    fs_err::write(&path, text).unwrap();
}

fn detect_on(f: &Fixture, target: &TargetMetadata, ids: &[&str]) -> Result<Detected, Error> {
    let order = vec![Group {
        group: ids
            .iter()
            .map(|id| GroupEntry {
                id: (*id).into(),
                version: "1.0.0".into(),
                optional: false,
            })
            .collect(),
    }];
    let store = Store {
        dir: f.path("buildpacks"),
    };
    let env = Env::build(std::env::vars());
    let (app, platform) = (f.path("app"), f.path("platform"));
    let exec = ExecInputs {
        app_dir: &app,
        platform_dir: &platform,
        build_config_dir: None,
        env: &env,
        target_env: &[],
        exec_env: None,
    };
    Detector::new(&store, exec, Version(0, 13), Some(target)).detect(&order)
}

#[test]
fn stacks_of_old_buildpacks_become_targets() {
    let busybox = TargetMetadata {
        os: "linux".into(),
        arch: "amd64".into(),
        ..TargetMetadata::default()
    };
    let bionic = TargetMetadata {
        distro: Some(Distro {
            name: "ubuntu".into(),
            version: "18.04".into(),
        }),
        ..busybox.clone()
    };
    let f = Fixture::new();
    let only_bionic = "[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"\n";
    let bionic_and_more = "[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"\n[[stacks]]\nid = \"io.buildpacks.stacks.jammy\"\n";
    buildpack_with(&f, "seven-bionic", "0.7", only_bionic);
    buildpack_with(&f, "seven-bionic-jammy", "0.7", bionic_and_more);
    buildpack_with(&f, "ten-bionic-jammy", "0.10", bionic_and_more);
    buildpack_with(&f, "any", "0.8", "[[stacks]]\nid = \"*\"\n");
    buildpack_with(
        &f,
        "other-stack",
        "0.8",
        "[[stacks]]\nid = \"io.example.stack\"\nmixins = [\"curl\"]\n",
    );

    // The only stack, bionic: Ubuntu 18.04 on amd64, which a busybox run image is not.
    assert_eq!(
        detect_on(&f, &busybox, &["seven-bionic"]).unwrap_err().code,
        exit::FAILED_DETECT_WITH_ERRORS
    );
    assert!(detect_on(&f, &bionic, &["seven-bionic"]).is_ok());
    let arm = TargetMetadata {
        arch: "arm64".into(),
        ..bionic.clone()
    };
    assert!(detect_on(&f, &arm, &["seven-bionic"]).is_err());
    // Bionic among others, below 0.10: no target from it, so no constraint.
    assert!(detect_on(&f, &busybox, &["seven-bionic-jammy"]).is_ok());
    // From 0.10 bionic always counts.
    assert!(detect_on(&f, &busybox, &["ten-bionic-jammy"]).is_err());
    assert!(detect_on(&f, &busybox, &["any", "other-stack"]).is_ok());

    let store = Store {
        dir: f.path("buildpacks"),
    };
    let seven = store.lookup("seven-bionic", "1.0.0", 1).unwrap();
    assert_eq!(
        targets_json(&targets(&seven)),
        r#"[{"os":"linux","arch":"amd64","distros":[{"name":"ubuntu","version":"18.04"}]}]"#
    );
}

#[test]
fn an_empty_target_field_matches_anything_on_either_side() {
    let f = Fixture::new();
    buildpack_with(
        &f,
        "distro",
        "0.10",
        "[[targets]]\nos = \"linux\"\n[[targets.distros]]\nname = \"ubuntu\"\n",
    );
    let run = |distro: Option<(&str, &str)>| TargetMetadata {
        os: "linux".into(),
        arch: "amd64".into(),
        distro: distro.map(|(name, version)| Distro {
            name: name.into(),
            version: version.into(),
        }),
        ..TargetMetadata::default()
    };
    assert!(detect_on(&f, &run(Some(("ubuntu", "22.04"))), &["distro"]).is_ok());
    assert!(detect_on(&f, &run(Some(("", "22.04"))), &["distro"]).is_ok());
    assert!(detect_on(&f, &run(Some(("alpine", "3"))), &["distro"]).is_err());
    assert!(detect_on(&f, &run(None), &["distro"]).is_err());
}
