//! Exit codes of the lifecycle (`platform/exit.go` of the reference lifecycle, and the spec's
//! tables), and the error type every phase returns.

use std::fmt;

/// Generic failure.
pub const FAILED: i32 = 1;
/// A flag the lifecycle does not define, or a malformed flag (Go's `flag` package).
pub const USAGE: i32 = 2;
/// Wrong number of positional arguments, or inputs that cannot be resolved.
pub const INVALID_ARGS: i32 = 3;
/// `CNB_PLATFORM_API` unset or not supported.
pub const INCOMPATIBLE_PLATFORM_API: i32 = 11;
/// A buildpack's API is not supported.
pub const INCOMPATIBLE_BUILDPACK_API: i32 = 12;
/// No group of buildpacks passed detection.
pub const FAILED_DETECT: i32 = 20;
/// No group passed, and at least one buildpack errored.
pub const FAILED_DETECT_WITH_ERRORS: i32 = 21;
/// Detection failed for another reason.
pub const DETECT_ERROR: i32 = 22;
pub const ANALYZE_ERROR: i32 = 32;
pub const RESTORE_ERROR: i32 = 42;
/// A buildpack's `bin/build` failed.
pub const FAILED_BUILD_WITH_ERRORS: i32 = 51;
pub const BUILD_ERROR: i32 = 52;
pub const EXPORT_ERROR: i32 = 62;
pub const LAUNCH_ERROR: i32 = 82;

/// A failure with the exit code it stands for.
#[derive(Debug)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl Error {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `code` as the exit code of the process (codes beyond 255 become 1).
pub fn code(code: i32) -> std::process::ExitCode {
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

pub type Result<T> = std::result::Result<T, Error>;

/// Turns any error into an [`Error`] with `code` and a message that says what was being done.
pub trait Context<T> {
    fn context(self, code: i32, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, code: i32, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(code, format!("{}: {e}", what())))
    }
}
