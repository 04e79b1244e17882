//! The `op` binary: parse the command line, run the command, render any error.

use std::process::ExitCode;

use clap::Parser as _;
use op::cli::Cli;
use op::error;
use op::output::{self, Printer, Verbosity};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    output::init_tracing(cli.global.verbose);
    let printer = Printer::new(verbosity);
    match op::commands::run(cli, &printer) {
        Ok(status) => status.into(),
        Err(failure) if failure.is_broken_pipe() => ExitCode::SUCCESS,
        Err(failure) => {
            printer.error(&error::render(&failure, printer.styles()));
            failure.status().into()
        }
    }
}
