//! Everything op shows the user goes through here.
//!
//! Results (a build plan, a list of contexts, a version) go to **stdout** and nothing else does, so
//! that `op … | jq` works. Progress, warnings and errors go to **stderr**. `-q` silences progress
//! and warnings but never results or errors.

mod printer;
pub mod progress;
mod style;

pub use printer::{Printer, Verbosity};
pub use style::Styles;

/// Sends op's `tracing` diagnostics to stderr: nothing by default, debug with `-v`, trace with
/// `-vv`. Other crates' diagnostics only show at `-vvv`.
pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let (own, others) = match verbose {
        0 => (LevelFilter::OFF, LevelFilter::OFF),
        1 => (LevelFilter::DEBUG, LevelFilter::OFF),
        2 => (LevelFilter::TRACE, LevelFilter::OFF),
        _ => (LevelFilter::TRACE, LevelFilter::DEBUG),
    };
    let filter = Targets::new().with_target("op", own).with_default(others);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false);
    // A second initialisation (in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}
