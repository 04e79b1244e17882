//! `op version`.

use crate::error::ExitStatus;
use crate::output::Printer;

pub(super) fn run(printer: &Printer) -> anyhow::Result<ExitStatus> {
    printer.result(&format!("op version {}", crate::VERSION))?;
    Ok(ExitStatus::Success)
}
