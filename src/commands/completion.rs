//! `op completion <shell>`.

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::failure::{ExitStatus, Failure};
use crate::output::Printer;

pub(super) fn run(shell: clap_complete::Shell, printer: &Printer) -> Result<ExitStatus, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "op", &mut script);
    printer.result(&String::from_utf8_lossy(&script))?;
    Ok(ExitStatus::Success)
}
