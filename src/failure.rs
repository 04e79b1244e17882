//! How a command fails: [`Failure`], the error the commands return, and the [`ExitStatus`] op
//! ends with.
//!
//! Modules return their own `thiserror` enums, each of which implements [`Hint`]: it knows what
//! the user can do about it and which status it ends op with, and an error that wraps another
//! reads the other's. A `Failure` is made from such an error (`?` converts it) while its type is
//! still known, so its hints and status are read then, once; nothing later has to find out
//! which error types a chain of causes holds. Commands add what they were doing with
//! [`Context`]; `main` renders the failure with `error::render`.

use std::fmt;

pub use crate::hint::ExitStatus;
use crate::hint::Hint;

/// A command line that parses but does not make sense (exit status 2, like clap's errors).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
    pub hint: Option<String>,
}

impl Hint for UsageError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }

    fn status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

/// A message of a command's own (`Failure::msg`), with no cause.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// Why a command failed: what it was doing (outermost first), the error and its causes, the
/// hints of the error, and the exit status.
#[derive(Debug)]
pub struct Failure {
    contexts: Vec<String>,
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
    hint: Option<String>,
    status: ExitStatus,
}

impl<E: Hint + std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Self {
        Self {
            contexts: Vec::new(),
            hint: error.hint(),
            status: error.status(),
            error: Box::new(error),
        }
    }
}

impl Failure {
    /// A failure that is only a message (exit status 1, no hint).
    pub fn msg(message: impl Into<String>) -> Self {
        Message(message.into()).into()
    }

    /// The same failure, `context` (what was being done) in front of its message.
    #[must_use]
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.contexts.insert(0, context.into());
        self
    }

    /// The messages, outermost first: the contexts, the error, each of its causes.
    pub fn chain(&self) -> Vec<String> {
        let mut chain = self.contexts.clone();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self.error.as_ref());
        while let Some(error) = cause {
            chain.push(error.to_string());
            cause = error.source();
        }
        chain
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// Whether it is a broken pipe on stdout, which means the reader went away (`op … | head`):
    /// not worth an error message.
    pub fn is_broken_pipe(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self.error.as_ref());
        while let Some(error) = cause {
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

/// What a command was doing when a call failed, as `anyhow`'s `Context` says it, keeping the
/// error's hints and status.
pub trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T, Failure>;
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, Failure>;
}

impl<T, E: Into<Failure>> Context<T> for Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T, Failure> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, Failure> {
        self.map_err(|e| e.into().context(context()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::msg(context))
    }

    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::msg(context()))
    }
}

// Errors of other crates that reach the commands: no hint, exit status 1.
impl Hint for std::io::Error {
    fn hint(&self) -> Option<String> {
        None
    }
}

impl Hint for serde_json::Error {
    fn hint(&self) -> Option<String> {
        None
    }
}

impl Hint for op_oci::ReferenceError {
    fn hint(&self) -> Option<String> {
        Some(
            "a reference looks like `ghcr.io/my-org/app:1.2.3` (registry, lower-case path, tag or digest)"
                .into(),
        )
    }
}

impl Hint for Message {
    fn hint(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer problem")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner problem")]
    struct Inner;

    impl Hint for Outer {
        fn hint(&self) -> Option<String> {
            Some("do this".into())
        }
    }

    #[test]
    fn a_failure_keeps_the_chain_the_hint_and_the_status() {
        let failure: Failure = Err::<(), _>(Outer(Inner))
            .context("Failed to do the thing")
            .unwrap_err();
        assert_eq!(
            failure.chain(),
            ["Failed to do the thing", "outer problem", "inner problem"]
        );
        assert_eq!(failure.hint(), Some("do this"));
        assert_eq!(failure.status(), ExitStatus::Failure);
        let usage: Failure = UsageError {
            message: "no".into(),
            hint: None,
        }
        .into();
        assert_eq!(usage.status(), ExitStatus::Usage);
        assert_eq!(
            None::<u8>.context("nothing").unwrap_err().chain(),
            ["nothing"]
        );
    }

    #[test]
    fn a_broken_pipe_is_recognised_through_the_context() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(
            Failure::from(pipe)
                .context("Failed to print")
                .is_broken_pipe()
        );
        assert!(!Failure::msg("x").is_broken_pipe());
    }
}
