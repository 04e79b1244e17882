//! What users read, as whole texts: the `--help` of every command, kept as insta snapshots
//! (`tests/it/snapshots/`). A change to one shows as a diff of its snapshot; accept it with
//! `INSTA_UPDATE=always cargo test --test it -- snapshots` (or `cargo insta review`) and commit
//! the file. On CI (`CI=true`) a missing or different snapshot fails.

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
