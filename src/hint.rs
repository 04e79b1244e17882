//! What the user can do about an error, and the status op ends with: a leaf that every
//! module's errors implement, read once, when an error becomes a command's `failure::Failure`.

use std::process::ExitCode;

/// An error that can tell the user what to do about it, and which exit status it ends op
/// with. An error that wraps another answers with the other's.
pub trait Hint {
    /// One or more sentences, without the `hint:` prefix, or `None`.
    fn hint(&self) -> Option<String>;

    /// The exit status: 1 unless the error says otherwise.
    fn status(&self) -> ExitStatus {
        ExitStatus::Failure
    }
}

/// What the process exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what it was asked.
    Success,
    /// 1: bad input (configuration, flags with bad values) or a failed build.
    Failure,
    /// 2: the command line itself could not be understood (clap's usage errors).
    Usage,
    /// What a process op ran for the user exited with (`op run` passes its container's code).
    Code(u8),
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Usage => ExitCode::from(2),
            ExitStatus::Code(code) => ExitCode::from(code),
        }
    }
}

impl Hint for op_oci::PlatformError {
    fn hint(&self) -> Option<String> {
        Some(
            "separate platforms with commas: --platform linux/amd64,linux/arm64 (lower case, no spaces inside one)"
                .into(),
        )
    }
}
