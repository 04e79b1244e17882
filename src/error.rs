//! The one place errors are rendered.
//!
//! Modules return their own `thiserror` enums whose messages never repeat their cause (the cause
//! is a `#[source]`, printed on its own `Caused by:` line); commands return a
//! [`Failure`](crate::failure::Failure), which carries what they were doing, the chain, the hint
//! and the exit status. `main` renders it with [`render`]:
//!
//! ```text
//! error: Failed to load `skaffold.yaml`
//!   Caused by: unknown apiVersion `skaffold/v9` in document 1
//!
//! hint: op reads skaffold/v1alpha1 … skaffold/v4beta14; check the first line of the file
//! ```
//!
//! This module only renders: it knows no module's errors.

use std::fmt::Write as _;

use crate::failure::Failure;
use crate::output::Styles;

/// Renders `failure` as `error:`, one `Caused by:` line per cause, then the `hint:` lines.
/// Multi-line messages keep their shape, indented under their label.
pub fn render(failure: &Failure, styles: Styles) -> String {
    let mut out = String::new();
    let chain = failure.chain();
    let mut chain = chain.iter();
    let top = chain.next().map(String::as_str).unwrap_or_default();
    let label = styles.error;
    let _ = writeln!(out, "{label}error{label:#}: {}", indent(top, 7));
    for cause in chain {
        let _ = writeln!(out, "  Caused by: {}", indent(cause, 13));
    }
    if let Some(hint) = failure.hint() {
        let label = styles.hint;
        let _ = writeln!(out, "\n{label}hint{label:#}: {}", indent(hint, 6));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Context as _;

    #[derive(Debug, thiserror::Error)]
    #[error("inner problem")]
    struct Inner;

    impl crate::hint::Hint for Inner {
        fn hint(&self) -> Option<String> {
            None
        }
    }

    #[test]
    fn renders_the_chain_without_repeating_causes() {
        let err = Err::<(), _>(Inner)
            .context("Failed to do the thing")
            .unwrap_err();
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
        let err = Err::<(), _>(inner)
            .context("Failed to plan the build")
            .unwrap_err();
        let text = render(&err, Styles::plain());
        assert!(
            text.starts_with("error: Failed to plan the build\n  Caused by: "),
            "{text}"
        );
        assert_eq!(text.matches("hint: ").count(), 1, "{text}");
    }

    #[test]
    fn indents_multi_line_messages_under_their_label() {
        let err = Failure::msg("first\nsecond");
        assert_eq!(
            render(&err, Styles::plain()),
            "error: first\n       second\n"
        );
    }
}
