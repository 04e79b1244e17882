//! `op version`.

use crate::error::ExitStatus;
use crate::output::Printer;

pub(super) fn run(printer: &Printer) -> anyhow::Result<ExitStatus> {
    printer.result(&format!("op version {}", env!("CARGO_PKG_VERSION")))?;
    Ok(ExitStatus::Success)
}
