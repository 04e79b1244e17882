use std::collections::BTreeMap;

use super::*;

fn read(text: &str) -> (tempfile::TempDir, Result<ProjectDescriptor, Error>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.toml");
    fs_err::write(&path, text).unwrap();
    let read = ProjectDescriptor::read(Some(&path));
    (dir, read)
}

#[track_caller]
fn error_of(text: &str) -> String {
    let (_dir, read) = read(text);
    read.unwrap_err().to_string()
}

fn env_of(descriptor: &ProjectDescriptor) -> Vec<(&str, &str)> {
    descriptor
        .env
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect()
}

/// A builder with `buildpacks` (`id@version`) and `order` (groups of `id@version`, `?` for
/// optional).
fn builder(buildpacks: &[&str], order: &[&[&str]]) -> BuilderInfo {
    let split = |b: &str| {
        let bare = b.trim_end_matches('?');
        let (id, version) = bare.split_once('@').unwrap_or((bare, ""));
        (id.to_string(), version.to_string())
    };
    let metadata = serde_json::json!({
        "lifecycle": {"version": "0.21.0", "api": {"buildpack": "0.10", "platform": "0.15"}},
        "buildpacks": buildpacks.iter().map(|b| {
            let (id, version) = split(b);
            serde_json::json!({"id": id, "version": version})
        }).collect::<Vec<_>>(),
    });
    let order = serde_json::Value::from(
        order
            .iter()
            .map(|g| {
                serde_json::json!({"group": g.iter().map(|b| {
                    let (id, version) = split(b);
                    serde_json::json!({"id": id, "version": version, "optional": b.ends_with('?')})
                }).collect::<Vec<_>>()})
            })
            .collect::<Vec<_>>(),
    );
    let labels = BTreeMap::from([
        (
            super::super::builder::METADATA_LABEL.to_string(),
            metadata.to_string(),
        ),
        (
            super::super::builder::ORDER_LABEL.to_string(),
            order.to_string(),
        ),
    ]);
    let env = ["CNB_USER_ID=1000".to_string(), "CNB_GROUP_ID=1000".into()];
    BuilderInfo::from_config("reg/builder:1", &env, &labels).unwrap()
}

fn groups(order: &Order) -> Vec<Vec<String>> {
    order
        .groups
        .iter()
        .map(|g| {
            g.group
                .iter()
                .map(|e| {
                    format!(
                        "{}@{}{}",
                        e.id,
                        e.version,
                        if e.optional { "?" } else { "" }
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_build_environment_of_both_schemas_is_read_and_buildpacks_env_wins() {
    // Schema 0.2, the seeds' static frontend.
    let (_d, v2) = read(
        "[_]\nschema-version = \"0.2\"\n\n[io.buildpacks]\nexclude = [\"node_modules\"]\n\n\
         [[io.buildpacks.build.env]]\nname = \"BP_WEB_SERVER\"\nvalue = \"nginx\"\n\n\
         [[io.buildpacks.build.env]]\nname = \"BP_WEB_SERVER_ROOT\"\nvalue = \"public\"\n",
    );
    let v2 = v2.unwrap();
    assert_eq!(
        env_of(&v2),
        [("BP_WEB_SERVER", "nginx"), ("BP_WEB_SERVER_ROOT", "public")]
    );
    assert!(!v2.filter.keeps("node_modules/x.js", false));
    assert!(v2.warnings.is_empty(), "{:?}", v2.warnings);
    // Schema 0.1 (legacy `[build]`); a name given twice keeps its last value.
    let (_d, v1) = read(
        "[_]\nschema-version = \"0.1\"\n[project]\nid = \"web\"\n\n[build]\ninclude = [\"public/\"]\n\n\
         [[build.env]]\nname = \"STYLE\"\nvalue = \"plain\"\n\n\
         [[build.env]]\nname = \"STYLE\"\nvalue = \"loud\"\n",
    );
    let v1 = v1.unwrap();
    assert_eq!(env_of(&v1), [("STYLE", "loud")]);
    assert!(v1.filter.keeps("public/index.html", false));
    // The deprecated [[io.buildpacks.env.build]] of 0.2, when build.env is absent.
    let (_d, old) = read(
        "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.env.build]]\nname = \"A\"\nvalue = \"1\"\n",
    );
    assert_eq!(env_of(&old.unwrap()), [("A", "1")]);
    // The artifact's buildpacks.env (and what op forwards) wins by name.
    let merged = v2.env_with(&[EnvVar {
        name: "BP_WEB_SERVER".into(),
        value: "httpd".into(),
    }]);
    let merged: Vec<(&str, &str)> = merged
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(
        merged,
        [("BP_WEB_SERVER_ROOT", "public"), ("BP_WEB_SERVER", "httpd")]
    );
}

#[test]
fn the_schema_is_the_declared_one_as_pack_reads_it() {
    // No schema-version: 0.1, so [io.buildpacks] is ignored, with a warning that says so.
    let (_d, none) = read("[[io.buildpacks.build.env]]\nname = \"A\"\nvalue = \"1\"\n");
    let none = none.unwrap();
    assert!(none.env.is_empty());
    assert!(
        none.warnings[0].contains("its `[io.buildpacks]` table is ignored"),
        "{:?}",
        none.warnings
    );
    let (_d, plain) = read("[build]\nexclude = [\"x\"]\n");
    assert!(plain.unwrap().warnings[0].contains("read as schema 0.1"));
    assert!(
        error_of("[_]\nschema-version = \"9\"\n").contains("`[_] schema-version` is `9`"),
        "unknown schema"
    );
}

#[test]
fn bad_descriptors_are_errors_naming_the_table_and_entry() {
    for (text, expected) in [
        (
            "[build]\ninclude = [\"a\"]\nexclude = [\"b\"]\n",
            "both `include` and `exclude`",
        ),
        ("[build\n", "line 1"),
        (
            "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.build.env]]\nvalue = \"nginx\"\n",
            "[[io.buildpacks.build.env]] entry 1 has the name ``",
        ),
        (
            "[[build.env]]\nname = \"A/B\"\nvalue = \"x\"\n",
            "[[build.env]] entry 1 has the name `A/B`",
        ),
        (
            "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nversion = \"1\"\n",
            "[[io.buildpacks.group]] entry 1: it has neither `id` nor `uri`",
        ),
        (
            "[[build.buildpacks]]\nid = \"a\"\n[[build.buildpacks]]\nuri = \"x\"\nversion = \"1\"\n",
            "[[build.buildpacks]] entry 2: it has both `uri` and `version`",
        ),
        (
            "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nid = \"me/inline\"\n\
             [io.buildpacks.group.script]\ninline = \"echo hi\"\n",
            "inline buildpack `me/inline` has no `script.api`",
        ),
        (
            "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nuri = \"docker://ghcr.io/x/bp:1\"\n",
            "does not fetch buildpacks",
        ),
        (
            "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nuri = \"urn:cnb:registry:x/y@1\"\n",
            "does not fetch buildpacks",
        ),
        (
            "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.pre.group]]\nuri = \"from=builder\"\n",
            "[[io.buildpacks.pre.group]] names `from=builder`",
        ),
    ] {
        let error = error_of(text);
        assert!(error.contains(expected), "{expected}:\n{error}");
        assert!(error.contains("project.toml"), "the file is named: {error}");
    }
}

#[test]
fn a_group_replaces_the_builder_s_order_and_skaffold_s_list_replaces_the_group() {
    let b = builder(
        &["op/a@1.0.0", "op/b@0.1.9", "op/b@0.1.13", "op/c@2.0.0"],
        &[&["op/a@1.0.0", "op/c@2.0.0?"], &["op/c@2.0.0"]],
    );
    let (_d, parsed) = read(
        "[_]\nschema-version = \"0.2\"\n\
         [[io.buildpacks.group]]\nid = \"op/c\"\n\
         [[io.buildpacks.group]]\nuri = \"urn:cnb:builder:op/b@0.1.13\"\n\
         [[io.buildpacks.post.group]]\nid = \"op/a\"\n",
    );
    let mut project = parsed.unwrap();
    let order = project.order(&[], &b).unwrap().unwrap();
    assert_eq!(groups(&order), [["op/c@2.0.0", "op/b@0.1.13"]]);
    assert!(order.added.is_empty());
    assert!(
        project.warnings.iter().any(|w| w.contains("pre and post")),
        "{:?}",
        project.warnings
    );
    // skaffold's buildpacks.buildpacks wins, with a warning.
    let order = project.order(&["op/a".into()], &b).unwrap().unwrap();
    assert_eq!(groups(&order), [["op/a@1.0.0"]]);
    assert!(project.warnings.iter().any(|w| w.contains("skaffold.yaml")));
    // An id with several versions on the builder must name one (pack's rule), and a missing
    // one names what the builder has.
    let error = project.order(&["op/b".into()], &b).unwrap_err();
    assert!(error.contains("0.1.9, 0.1.13"), "{error}");
    let error = project.order(&["op/z".into()], &b).unwrap_err();
    assert!(error.contains("`op/z` is not in builder"), "{error}");
}

#[test]
fn pre_post_and_from_builder_extend_every_group_of_the_builder_s_order() {
    // pack's order label has no version where builder.toml gave none: the builder's is used.
    let b = builder(
        &["op/a@1.0.0", "op/c@2.0.0", "op/p@1.0.0", "op/q@1.0.0"],
        &[&["op/a@1.0.0", "op/c@2.0.0?"], &["op/c"]],
    );
    let (_d, parsed) = read(
        "[_]\nschema-version = \"0.2\"\n\
         [[io.buildpacks.pre.group]]\nid = \"op/p\"\n\
         [[io.buildpacks.pre.group]]\nid = \"op/q\"\n\
         [[io.buildpacks.post.group]]\nid = \"op/a\"\n",
    );
    let order = parsed.unwrap().order(&[], &b).unwrap().unwrap();
    assert_eq!(
        groups(&order),
        [
            vec![
                "op/q@1.0.0",
                "op/p@1.0.0",
                "op/a@1.0.0",
                "op/c@2.0.0?",
                "op/a@1.0.0"
            ],
            vec!["op/q@1.0.0", "op/p@1.0.0", "op/c@2.0.0", "op/a@1.0.0"],
        ],
        "pack prepends pre buildpacks one by one: the last listed first"
    );
    let (_d, parsed) = read(
        "[_]\nschema-version = \"0.2\"\n\
         [[io.buildpacks.group]]\nid = \"op/p\"\n\
         [[io.buildpacks.group]]\nuri = \"from=builder\"\n\
         [[io.buildpacks.group]]\nid = \"op/q\"\n",
    );
    let order = parsed.unwrap().order(&[], &b).unwrap().unwrap();
    assert_eq!(
        groups(&order),
        [
            vec!["op/p@1.0.0", "op/a@1.0.0", "op/c@2.0.0?", "op/q@1.0.0"],
            vec!["op/p@1.0.0", "op/c@2.0.0", "op/q@1.0.0"],
        ]
    );
    let (_d, parsed) = read("[_]\nschema-version = \"0.2\"\n");
    assert_eq!(parsed.unwrap().order(&[], &b).unwrap(), None);
}

#[test]
fn local_directories_and_inline_scripts_are_added_to_the_build() {
    let b = builder(&["op/a@1.0.0"], &[&["op/a@1.0.0"]]);
    let (dir, _) = read("");
    let bp = dir.path().join("buildpacks/mine");
    fs_err::create_dir_all(bp.join("bin")).unwrap();
    fs_err::write(
        bp.join("buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"me/mine\"\nversion = \"0.3.0\"\n",
    )
    .unwrap();
    let path = dir.path().join("project.toml");
    fs_err::write(
        &path,
        "[_]\nschema-version = \"0.2\"\n\
         [[io.buildpacks.group]]\nuri = \"buildpacks/mine\"\n\
         [[io.buildpacks.group]]\nid = \"me/hello\"\n\
         [io.buildpacks.group.script]\napi = \"0.10\"\ninline = \"echo hello\"\n\
         [[io.buildpacks.group]]\nuri = \"op/a\"\n",
    )
    .unwrap();
    let order = ProjectDescriptor::read(Some(&path))
        .unwrap()
        .order(&[], &b)
        .unwrap()
        .unwrap();
    assert_eq!(
        groups(&order),
        [["me/mine@0.3.0", "me/hello@0.0.0", "op/a@1.0.0"]],
        "a bare uri that is no path is a builder's buildpack"
    );
    assert_eq!(
        order.added,
        [
            Added::Directory {
                path: bp,
                id: "me/mine".into(),
                version: "0.3.0".into()
            },
            Added::Inline(Inline {
                id: "me/hello".into(),
                version: "0.0.0".into(),
                api: "0.10".into(),
                inline: "echo hello".into(),
                shell: "/bin/sh".into()
            })
        ]
    );
}
