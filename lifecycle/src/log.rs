//! What the lifecycle prints: phase banners (`===> DETECTING`), information on stdout, warnings
//! and errors on stderr, and debug lines when `-log-level debug` (or `CNB_LOG_LEVEL`) asks.

use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Log levels, from the most verbose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    /// Parses `-log-level`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" => Some(Self::Warn),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// Sets the level for the rest of the process.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// `===> NAME`, the banner of a phase.
pub fn phase(name: &str) {
    if enabled(Level::Info) {
        out(&format!("===> {name}"));
    }
}

pub fn debug(text: &str) {
    if enabled(Level::Debug) {
        out(text);
    }
}

pub fn info(text: &str) {
    if enabled(Level::Info) {
        out(text);
    }
}

pub fn warn(text: &str) {
    if enabled(Level::Warn) {
        err(&format!("Warning: {text}"));
    }
}

pub fn error(text: &str) {
    err(&format!("ERROR: {text}"));
}
