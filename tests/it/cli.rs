//! The command line itself: help, version, completion, usage errors.

use crate::common::TestContext;

/// `op --help` lists the commands; `op` alone shows the help as a usage error.
#[test]
fn help_lists_the_commands() {
    let ctx = TestContext::new();
    let help = ctx.op(&["--help"]);
    help.success();
    for command in ["build", "build-push", "push", "version", "completion"] {
        assert!(help.stdout.contains(command), "{}", help.report());
    }
    let bare = ctx.op(&[]);
    bare.failure(2);
    assert!(bare.stderr.contains("Usage: op"), "{}", bare.report());
}

/// Every command has its own help.
#[test]
fn every_command_has_help() {
    let ctx = TestContext::new();
    for command in ["build", "build-push", "push", "version", "completion"] {
        let run = ctx.op(&[command, "--help"]);
        run.success();
        assert!(run.stdout.contains("Usage: op"), "{}", run.report());
    }
    let build = ctx.op(&["build", "--help"]);
    for flag in [
        "--filename",
        "--repo",
        "--profile",
        "--artifact",
        "--tag",
        "--insecure-registry",
        "--file-output",
        "--dry-run",
        "--output",
        "--push",
    ] {
        assert!(
            build.stdout.contains(flag),
            "{flag} missing\n{}",
            build.report()
        );
    }
}

/// `op version` prints the version on stdout, as upstream did.
#[test]
fn version_prints_the_version() {
    let run = TestContext::new().op(&["version"]);
    run.success();
    assert_eq!(
        run.stdout,
        format!("op version {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(run.stderr.is_empty());
    let flag = TestContext::new().op(&["--version"]);
    flag.success();
    assert_eq!(flag.stdout, format!("op {}\n", env!("CARGO_PKG_VERSION")));
}

/// `op completion <shell>` prints a script for each shell clap supports.
#[test]
fn completion_scripts_for_every_shell() {
    let ctx = TestContext::new();
    for (shell, marker) in [
        ("bash", "_op()"),
        ("zsh", "#compdef op"),
        ("fish", "complete -c op"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion"),
    ] {
        let run = ctx.op(&["completion", shell]);
        run.success();
        assert!(run.stdout.contains(marker), "{shell}\n{}", run.report());
        assert!(
            run.stdout.contains("build-push"),
            "{shell} completes subcommands"
        );
    }
    ctx.op(&["completion", "tcsh"]).failure(2);
}

/// Usage errors exit 2 and say what is wrong.
#[test]
fn usage_errors_exit_two() {
    let ctx = TestContext::fixture("hybrid");
    let unknown = ctx.op(&["frobnicate"]);
    unknown.failure(2);
    assert!(
        unknown
            .stderr
            .contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        unknown.report()
    );
    let bad_format = ctx.op(&["build", "--dry-run", "--output", "yaml"]);
    bad_format.failure(2);
    assert!(
        bad_format.stderr.contains("invalid value 'yaml'"),
        "{}",
        bad_format.report()
    );
    ctx.op(&["build", "-q", "-v", "--dry-run"]).failure(2);
}
