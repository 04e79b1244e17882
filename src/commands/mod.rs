//! One module per subcommand: each turns parsed flags into calls of the library modules and
//! prints the result. No Docker, registry or file-format knowledge lives here.

mod build;
mod builder;
mod completion;
mod promote;
mod rebase;
mod run;
mod version;
mod watch;

use crate::cli::{Cli, Command, PushDestination};
use crate::config::Destination;
use crate::config::env::Invocation;
use crate::failure::{Context as _, ExitStatus, Failure};
use crate::output::Printer;

/// Runs the command of `cli` in the current directory and environment.
pub fn run(cli: Cli, printer: &Printer) -> Result<ExitStatus, Failure> {
    let Invocation { cwd, env } =
        Invocation::capture().context("Failed to read the current directory")?;
    let global = &cli.global;
    match cli.command {
        Command::Build(args) => build::build(
            &cwd,
            env,
            global,
            &build::Request {
                command: crate::plan::Command::Build,
                push: args.push,
                dry_run: args.dry_run,
                common: &args.common,
                run: &args.run,
                delegate: Some(&args.delegate),
                upstream: &args.upstream,
                push_options: None,
            },
            printer,
        ),
        Command::BuildPush(args) => build::build(
            &cwd,
            env,
            global,
            &build::Request {
                command: crate::plan::Command::BuildPush,
                push: true,
                dry_run: args.dry_run,
                common: &args.common,
                run: &args.run,
                delegate: None,
                upstream: &args.upstream,
                push_options: None,
            },
            printer,
        ),
        Command::Push(args) => build::build(
            &cwd,
            env,
            global,
            &build::Request {
                command: crate::plan::Command::Push,
                push: true,
                dry_run: args.dry_run,
                common: &args.common,
                run: &args.run,
                delegate: Some(&args.delegate),
                upstream: &args.upstream,
                push_options: Some(build::PushOptions {
                    destination: match args.destination {
                        PushDestination::Local => Destination::Local,
                        PushDestination::Ci => Destination::Ci,
                        PushDestination::All => Destination::All,
                        PushDestination::Auto => Destination::Auto,
                    },
                    registry_file: args.registry_file.clone(),
                    push_all: args.push_all,
                    no_file_output: args.no_file_output,
                }),
            },
            printer,
        ),
        Command::Run(args) => run::run(&cwd, env, global, &args, printer),
        Command::PromoteImage(args) => promote::run(&cwd, env, global, &args, printer),
        Command::Rebase(args) => rebase::run(&cwd, env, global, &args, printer),
        Command::WatchDeployment(args) => watch::run(&cwd, env, global, &args, printer),
        Command::Builder(args) => builder::run(&args.command, &env, printer),
        Command::Version => version::run(&env, printer),
        Command::Completion(args) => completion::run(args.shell, printer),
    }
}

/// The configuration of `cwd` (settings files, the environment), its warnings printed.
fn load_config(
    cwd: &std::path::Path,
    env: crate::config::Env,
    global: &crate::cli::GlobalArgs,
    printer: &Printer,
) -> Result<crate::config::Config, Failure> {
    let config = crate::config::Config::load(cwd, env, global.config.as_deref())?;
    for warning in config.warnings() {
        printer.warn(warning);
    }
    Ok(config)
}

/// The build result a command reads: `--build-result FILE`, else `build_result.json` of
/// `--build-result-dir DIR`, else of `cwd`.
fn build_result_path(cwd: &std::path::Path, build: &crate::cli::SelectBuild) -> std::path::PathBuf {
    match (
        build.build_result.as_deref(),
        build.build_result_dir.as_deref(),
    ) {
        (Some(file), _) => cwd.join(file),
        (None, Some(dir)) => cwd.join(dir).join(crate::build_result::FILE_NAME),
        (None, None) => cwd.join(crate::build_result::FILE_NAME),
    }
}
