//! How op fails: exit statuses, hints, and the one place errors are rendered.
//!
//! Modules return their own `thiserror` enums whose messages never repeat their cause (the cause
//! is a `#[source]`, printed on its own `Caused by:` line). Commands add one level of context with
//! `anyhow`. `main` renders the chain with [`render`]:
//!
//! ```text
//! error: Failed to load `skaffold.yaml`
//!   Caused by: unknown apiVersion `skaffold/v9` in document 1
//!
//! hint: op reads skaffold/v1alpha1 … skaffold/v4beta14; check the first line of the file
//! ```
//!
//! Hints come from the [`Hint`] trait (`crate::hint`, a leaf), implemented by the domain errors
//! that know what the user can do about them; [`render`] collects them by walking the chain.
//! This module sits at the top of the module graph: it reads every module's errors, and only
//! `main` and `commands` use it.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::hint::Hint;
use crate::output::Styles;

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
}

/// The exit status for a failed command.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    if err.downcast_ref::<UsageError>().is_some() {
        ExitStatus::Usage
    } else if matches!(
        err.downcast_ref::<crate::execute::Error>(),
        Some(crate::execute::Error::Interrupted)
    ) {
        // 128 + SIGINT, as shells report an interrupted command.
        ExitStatus::Code(130)
    } else {
        ExitStatus::Failure
    }
}

/// The hint of one cause in a chain, if its type is one that knows hints.
pub(crate) fn hint_of(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = cause.downcast_ref::<crate::config::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::config::skaffold::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::plan::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::build_result::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::local_run::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::engine::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::builder::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::registry::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::execute::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::execute::ArtifactError>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::cnb::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::registry::auth::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::skaffold::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::promote::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<crate::platform::Error>() {
        return e.hint();
    }
    if let Some(e) = cause.downcast_ref::<UsageError>() {
        return e.hint();
    }
    None
}

/// Renders `err` as `error:`, one `Caused by:` line per cause, then the `hint:` lines, each
/// hint once. Multi-line messages keep their shape, indented under their label.
pub fn render(err: &anyhow::Error, styles: Styles) -> String {
    let mut out = String::new();
    let mut chain = err.chain();
    let top = chain.next().map(ToString::to_string).unwrap_or_default();
    let label = styles.error;
    let _ = writeln!(out, "{label}error{label:#}: {}", indent(&top, 7));
    for cause in chain {
        let _ = writeln!(out, "  Caused by: {}", indent(&cause.to_string(), 13));
    }
    let mut hints: Vec<String> = Vec::new();
    for cause in err.chain() {
        if let Some(hint) = hint_of(cause)
            && !hints.contains(&hint)
        {
            hints.push(hint);
        }
    }
    for hint in hints {
        let label = styles.hint;
        let _ = writeln!(out, "\n{label}hint{label:#}: {}", indent(&hint, 6));
    }
    out
}

/// Indents every line after the first by `width` spaces.
fn indent(text: &str, width: usize) -> String {
    let pad = " ".repeat(width);
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 || line.is_empty() {
                line.to_string()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `err` (or one of its causes) is a broken pipe on stdout, which means the reader went
/// away (`op … | head`): not worth an error message.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner problem")]
    struct Inner;

    #[test]
    fn renders_the_chain_without_repeating_causes() {
        let err = anyhow::Error::new(Inner).context("Failed to do the thing");
        let text = render(&err, Styles::plain());
        assert_eq!(
            text,
            "error: Failed to do the thing\n  Caused by: inner problem\n"
        );
    }

    #[test]
    fn renders_hints_of_domain_errors_once() {
        let inner = crate::plan::Error::ArtifactNotFound {
            name: "web".into(),
            available: vec!["api".into(), "base".into()],
        };
        let err = anyhow::Error::new(inner).context("Failed to plan the build");
        let text = render(&err, Styles::plain());
        assert!(
            text.starts_with("error: Failed to plan the build\n  Caused by: "),
            "{text}"
        );
        assert_eq!(text.matches("hint: ").count(), 1, "{text}");
    }

    #[test]
    fn indents_multi_line_messages_under_their_label() {
        let err = anyhow::anyhow!("first\nsecond");
        assert_eq!(
            render(&err, Styles::plain()),
            "error: first\n       second\n"
        );
    }
}
