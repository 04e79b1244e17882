//! `--cache-artifacts` (on by default; the other tests turn it off, `OP_CACHE_ARTIFACTS=false`,
//! so that each of their builds builds): a buildpacks build whose inputs were built before
//! reuses that image, found through the `op-inputs-<key>` tag of the target repository.

use crate::build_push::{apps, labels_of};
use crate::common::cnb::{
    EngineCleanup, Lifecycle, Stack, apps_in, lifecycle_dir, skopeo_copy, two_platform_stack,
    verify_published,
};
use crate::common::{Run, TestContext, build_result, tag_of};

on_each_builder!(
    unchanged_inputs_reuse_the_image_and_any_change_builds_again,
    another_builder_builds_again,
    excluded_files_are_not_inputs_and_project_toml_is,
    each_platform_is_reused_and_the_index_stays,
    an_image_that_may_not_be_rebased_is_built_again,
);

/// The tags `op-inputs-…` of `repository` (`host/name`).
fn key_tags(stack: &Stack, name: &str) -> Vec<String> {
    let (code, body) = stack.registry.get(&format!("/v2/{name}/tags/list"));
    assert_eq!(code, 200, "{body}");
    let tags: serde_json::Value = serde_json::from_str(&body).unwrap();
    tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| t.starts_with("op-inputs-"))
        .map(String::from)
        .collect()
}

/// The files under `dir` (relative paths) and their contents.
fn files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut found = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = fs_err::read_dir(&at) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                found.insert(relative, fs_err::read(&path).unwrap());
            }
        }
    }
    found
}

/// Which of the fixture apps `run` reused (else built).
fn reused(run: &Run) -> Vec<&'static str> {
    apps_saying(run, "Unchanged inputs: reused sha256:")
}

/// Which of the fixture apps `run` rebased (only their run image changed).
fn rebased(run: &Run) -> Vec<&'static str> {
    apps_saying(run, "Only the run image changed: rebased sha256:")
}

/// The fixture apps with a line of `run` that holds `text`.
fn apps_saying(run: &Run, text: &str) -> Vec<&'static str> {
    ["static-site", "procfile", "greeting"]
        .into_iter()
        .filter(|app| {
            run.stderr
                .lines()
                .any(|line| line.starts_with(&format!("[{app}")) && line.contains(text))
        })
        .collect()
}

/// The digest of each app in the `build_result.json` of `context`.
fn digests(context: &TestContext) -> Vec<String> {
    build_result(context)["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let tag = b["tag"].as_str().unwrap();
            tag.split_once('@').unwrap().1.to_string()
        })
        .collect()
}

/// The fixture apps, built, then built again unchanged: nothing runs, the same digests are
/// published and recorded, also from another checkout of the same sources (a fresh runner:
/// the keys are in the registry). A touched file (its modification time) changes nothing; a
/// changed file builds its app and the app on its image (whose run image changed); a changed
/// `buildpacks.env` builds its app; `--cache-artifacts=false` builds them all. A key tag that
/// names an image no lifecycle made is ignored with a warning, and the build takes it back.
fn unchanged_inputs_reuse_the_image_and_any_change_builds_again(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let repo = stack.registry.addr();
    let context = apps(&stack).env("OP_CACHE_ARTIFACTS", "true");
    let build = |context: &TestContext, extra: &[&str]| {
        let run = context.op(&[&["build-push", "--repo", &repo][..], extra].concat());
        run.success();
        run
    };
    let first = build(&context, &[]);
    assert_eq!(reused(&first), Vec::<&str>::new(), "{}", first.report());
    let published = digests(&context);
    for app in ["static-site", "procfile", "greeting"] {
        assert_eq!(key_tags(&stack, app).len(), 1, "{app}\n{}", first.report());
    }

    let again = build(&context, &[]);
    assert_eq!(
        reused(&again),
        ["static-site", "procfile", "greeting"],
        "{}",
        again.report()
    );
    assert!(
        !again.stderr.contains("===> DETECTING"),
        "{}",
        again.report()
    );
    assert_eq!(digests(&context), published);
    assert!(
        again
            .stderr
            .contains("Built and published 3 artifacts (3 unchanged and reused)"),
        "{}",
        again.report()
    );
    // Their names named them already: nothing written.
    let nothing_written = apps_saying(&again, "published already");
    assert_eq!(nothing_written, reused(&again), "{}", again.report());
    let target = format!("{repo}/static-site:latest");
    assert_eq!(verify_published(&target), published[0]);

    a_moved_target_is_published_again(&stack, &context, &published[0]);

    // --sbom-output: a reused image's SBOMs are those its build copied (the launch SBOMs).
    build(
        &context,
        &["--cache-artifacts=false", "--sbom-output", "dist/built"],
    );
    let with_sboms = build(&context, &["--sbom-output", "dist/reused"]);
    assert_eq!(reused(&with_sboms).len(), 3, "{}", with_sboms.report());
    for app in ["static-site", "procfile", "greeting"] {
        let launch = |dir: &str| files(&context.path().join(dir).join(app).join("launch"));
        let copied = launch("dist/built");
        assert!(!copied.is_empty(), "{app}: {}", with_sboms.report());
        assert_eq!(launch("dist/reused"), copied, "{app}");
    }

    // Another checkout of the same sources, touched (new modification times), another HOME.
    let fresh = TestContext::new().env("OP_CACHE_ARTIFACTS", "true");
    apps_in(&fresh, &stack.builder, &repo);
    let elsewhere = build(&fresh, &[]);
    assert_eq!(reused(&elsewhere).len(), 3, "{}", elsewhere.report());
    assert_eq!(digests(&fresh), published);

    // A changed file: its app builds; the app on its image, whose own inputs did not change,
    // is rebased onto the new one.
    context.write("static-site/public/more.html", "<p>more</p>\n");
    let changed = build(&context, &[]);
    assert_eq!(reused(&changed), ["procfile"], "{}", changed.report());
    assert_eq!(rebased(&changed), ["greeting"], "{}", changed.report());
    let now = digests(&context);
    assert_ne!(now[0], published[0]);
    assert_ne!(now[2], published[2]);
    assert!(
        changed.stderr.contains(
            "Built and published 3 artifacts (1 built, 1 rebased onto a new run image, 1 unchanged and reused)"
        ),
        "{}",
        changed.report()
    );
    on_the_new_static_site(&repo, &now);

    // The build environment of one artifact.
    context.replace_in(
        "skaffold.yaml",
        &[("GREETING_STYLE=loud", "GREETING_STYLE=plain")],
    );
    let env_changed = build(&context, &["-o", "json"]);
    assert_eq!(
        reused(&env_changed),
        ["static-site", "procfile"],
        "{}",
        env_changed.report()
    );
    let results: serde_json::Value = serde_json::from_str(&env_changed.stdout).unwrap();
    let made: Vec<&str> = results["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["made"].as_str().unwrap())
        .collect();
    assert_eq!(
        made,
        ["reused", "reused", "built"],
        "{}",
        env_changed.report()
    );

    let off = build(&context, &["--cache-artifacts=false"]);
    assert_eq!(reused(&off), Vec::<&str>::new(), "{}", off.report());

    a_foreign_key_tag_is_ignored(&stack, &context);
}

/// The rebased greeting (of `digests`: static-site's, procfile's, greeting's) is on the new
/// static-site, and serves.
fn on_the_new_static_site(repo: &str, digests: &[String]) {
    let greeting = format!("{repo}/greeting@{}", digests[2]);
    let metadata = labels_of(&greeting)["io.buildpacks.lifecycle.metadata"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(metadata.contains(&digests[0]), "{metadata}");
    assert!(
        crate::common::cnb::serve_and_get(&greeting, "/")
            .contains("<h1>HELLO FROM THE GREETING FIXTURE</h1>")
    );
}

/// The target of static-site (whose image is `published`) moved elsewhere (to the run image):
/// the reused image is checked by its config and published there again.
fn a_moved_target_is_published_again(stack: &Stack, context: &TestContext, published: &str) {
    let repo = stack.registry.addr();
    let target = format!("{repo}/static-site:latest");
    skopeo_copy(&stack.run_image, &target, false);
    let moved = context.op(&["build-push", "--repo", &repo]);
    moved.success();
    assert_eq!(reused(&moved).len(), 3, "{}", moved.report());
    assert_eq!(
        apps_saying(&moved, "published already"),
        ["procfile", "greeting"],
        "{}",
        moved.report()
    );
    assert_eq!(verify_published(&target), published);
}

/// A key tag moved to an image no lifecycle made (the run image), read by a runner that did not
/// publish the image: ignored, and taken back.
fn a_foreign_key_tag_is_ignored(stack: &Stack, context: &TestContext) {
    let repo = stack.registry.addr();
    let build = |extra: &[&str]| {
        let run = context.op(&[&["build-push", "--repo", &repo][..], extra].concat());
        run.success();
        run
    };
    let key = key_tags(stack, "procfile");
    let key = key.last().unwrap();
    skopeo_copy(&stack.run_image, &format!("{repo}/procfile:{key}"), false);
    // As on a runner that did not publish it (op's record of what it published is in its
    // cache directory): the key's tag is read.
    let records = context.path().join(".home/.cache/op/published");
    assert!(records.is_dir(), "{}", records.display());
    fs_err::remove_dir_all(&records).unwrap();
    let foreign = build(&["--artifact", "procfile"]);
    assert!(
        foreign.stderr.contains(&format!(
            "warning: ignoring {repo}/procfile:{key}: it has no `io.buildpacks.lifecycle.metadata` label"
        )),
        "{}",
        foreign.report()
    );
    assert_eq!(reused(&foreign), Vec::<&str>::new());
    let taken_back = build(&["--artifact", "procfile"]);
    assert_eq!(reused(&taken_back), ["procfile"], "{}", taken_back.report());
}

/// Another builder (the same buildpacks, another default run image: other labels) builds the
/// apps on it again: neither reused nor rebased (the builder is part of the app's key too).
fn another_builder_builds_again(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let repo = stack.registry.addr();
    let context = apps(&stack).env("OP_CACHE_ARTIFACTS", "true");
    let args = ["build-push", "--repo", &repo, "--artifact", "procfile"];
    context.op(&args).success();
    let run_image = format!("{repo}/op/other-run:latest");
    skopeo_copy(&stack.run_image, &run_image, false);
    let home = tempfile::tempdir().unwrap();
    let other = stack.another_builder(lifecycle, "other-builder", Some((&run_image, home.path())));
    context.replace_in("skaffold.yaml", &[(stack.builder.as_str(), other.as_str())]);
    let again = context.op(&args);
    again.success();
    assert_eq!(reused(&again), Vec::<&str>::new(), "{}", again.report());
    assert_eq!(rebased(&again), Vec::<&str>::new(), "{}", again.report());
    assert!(
        again.stderr.contains("===> DETECTING"),
        "{}",
        again.report()
    );
}

/// Two platforms: each platform's image has its own key; built again unchanged, both are
/// reused and the index written from them is the same.
fn each_platform_is_reused_and_the_index_stays(lifecycle: Lifecycle) {
    let home = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let (registry, builder) = two_platform_stack(lifecycle, &home);
    let repo = registry.addr();
    let _cleanup = EngineCleanup(repo.clone());
    let context = TestContext::new().env("OP_CACHE_ARTIFACTS", "true");
    apps_in(&context, &builder, &repo);
    let args = [
        "build-push",
        "--repo",
        &repo,
        "--artifact",
        "static-site",
        "--platform",
        "linux/amd64,linux/arm64",
    ];
    context.op(&args).success();
    let index = digests(&context);
    let again = context.op(&args);
    again.success();
    let unchanged = again
        .stderr
        .lines()
        .filter(|l| l.contains("Unchanged inputs: reused sha256:"))
        .count();
    assert_eq!(unchanged, 2, "one per platform\n{}", again.report());
    assert!(
        !again.stderr.contains("===> DETECTING"),
        "{}",
        again.report()
    );
    assert_eq!(digests(&context), index, "the same index");
    assert!(
        again.stderr.contains(&format!(
            "Unchanged: the index of linux/amd64, linux/arm64 as {repo}/static-site:latest@{}",
            index[0]
        )),
        "not written again\n{}",
        again.report()
    );
}

/// A buildpack that asks its images not to be rebased (the launch label
/// `io.buildpacks.rebasable=false`): when only the run image changed, the app is built again,
/// op saying why, and its image is on the new run image.
fn an_image_that_may_not_be_rebased_is_built_again(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let repo = stack.registry.addr();
    let context = apps(&stack).env("OP_CACHE_ARTIFACTS", "true");
    context.write(
        "procfile/project.toml",
        r#"[_]
schema-version = "0.2"

[[io.buildpacks.group]]
id = "op/procfile"

[[io.buildpacks.group]]
id = "me/no-rebase"
[io.buildpacks.group.script]
api = "0.10"
inline = '''
printf '[[labels]]\nkey = "io.buildpacks.rebasable"\nvalue = "false"\n' > "$CNB_LAYERS_DIR/launch.toml"
'''
"#,
    );
    let args = ["build-push", "--repo", &repo, "--artifact", "procfile"];
    context.op(&args).success();
    let run_digest = stack.patch_run_image(context.path(), "patch");
    let again = context.op(&args);
    again.success();
    for expected in [
        "Only the run image changed, but no rebase:",
        "is not marked as rebasable (`io.buildpacks.rebasable=false`)",
        "===> DETECTING",
        "Built and published 1 artifact in",
    ] {
        assert!(
            again.stderr.contains(expected),
            "{expected}\n{}",
            again.report()
        );
    }
    assert_eq!(rebased(&again), Vec::<&str>::new(), "{}", again.report());
    let labels = labels_of(tag_of(&build_result(&context), "procfile"));
    assert_eq!(labels["io.buildpacks.rebasable"], "false", "{labels}");
    let metadata = labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap();
    assert!(metadata.contains(&run_digest), "{metadata}");
}

/// What project.toml excludes is not an input (a changed excluded file still reuses); a changed
/// project.toml (its build environment) builds again.
fn excluded_files_are_not_inputs_and_project_toml_is(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let repo = stack.registry.addr();
    let context = apps(&stack).env("OP_CACHE_ARTIFACTS", "true");
    let descriptor = "[_]\nschema-version = \"0.2\"\n\n[io.buildpacks]\nexclude = [\"*.md\"]\n";
    context.write("procfile/project.toml", descriptor);
    context.write("procfile/NOTES.md", "first\n");
    let args = ["build-push", "--repo", &repo, "--artifact", "procfile"];
    context.op(&args).success();
    context.write("procfile/NOTES.md", "second\n");
    let excluded = context.op(&args);
    excluded.success();
    assert_eq!(reused(&excluded), ["procfile"], "{}", excluded.report());
    context.write(
        "procfile/project.toml",
        &format!("{descriptor}\n[[io.buildpacks.build.env]]\nname = \"EXTRA\"\nvalue = \"1\"\n"),
    );
    let changed = context.op(&args);
    changed.success();
    assert_eq!(reused(&changed), Vec::<&str>::new(), "{}", changed.report());
    assert!(
        changed.stderr.contains("===> DETECTING"),
        "{}",
        changed.report()
    );
}
