//! What users read, as whole texts: the `--help` of every command and the dry-run plan, kept as
//! insta snapshots (`tests/it/snapshots/`; the error messages are kept by `errors.rs`). A change
//! to one shows as a diff of its snapshot; accept it with `INSTA_UPDATE=always cargo test --test
//! it -- snapshots errors` (or `cargo insta review`) and commit the file. On CI (`CI=true`) a
//! missing or different snapshot fails.

use crate::common::TestContext;

#[test]
fn the_help_of_every_command() {
    let context = TestContext::new();
    for command in [
        "",
        "build",
        "build-push",
        "push",
        "run",
        "promote-image",
        "rebase",
        "watch-deployment",
        "builder",
        "builder create",
        "builder base",
        "version",
        "completion",
    ] {
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push("--help");
        let run = context.op(&args);
        run.success();
        let name = if command.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", command.replace(' ', "-"))
        };
        insta::assert_snapshot!(name, run.stdout);
    }
}

/// The dry-run plan of upstream's shape (a Dockerfile base, a buildpacks app on it), as text and
/// as JSON, the test directory written `[dir]`.
#[test]
fn the_dry_run_plan_as_text_and_json() {
    let context = TestContext::fixture("base-and-app");
    let dir = context.path().display().to_string();
    for (name, extra) in [("plan-text", None), ("plan-json", Some(["-o", "json"]))] {
        let mut args = vec![
            "build",
            "--push",
            "--dry-run",
            "--repo",
            "ghcr.io/octopilot",
        ];
        args.extend(extra.into_iter().flatten());
        let run = context.op(&args);
        run.success();
        insta::assert_snapshot!(name, run.stdout.replace(&dir, "[dir]"));
    }
}
