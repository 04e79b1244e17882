//! Small helpers shared by every YAML file op reads.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Where a YAML problem is, and the line it is on, ready to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The message, without the trailing "at line … column …" of `serde_yaml`.
    pub message: String,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// The offending line with a caret under the column, when known.
    pub snippet: Option<String>,
}

impl Located {
    /// Describes `err`, which came from parsing `text`.
    pub fn new(err: &serde_yaml::Error, text: &str) -> Self {
        let location = err.location().map(|l| (l.line(), l.column()));
        let mut message = err.to_string();
        if let Some((line, column)) = location {
            let suffix = format!(" at line {line} column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        let snippet = location.and_then(|(line, column)| snippet(text, line, column));
        Self {
            message,
            location,
            snippet,
        }
    }

    /// A message that does not come from the YAML parser (no location).
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            snippet: None,
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "line {line}, column {column}: {}", self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

/// Line `line` of `text` with a caret under `column`, in the style of rustc.
fn snippet(text: &str, line: usize, column: usize) -> Option<String> {
    let source = text.lines().nth(line.checked_sub(1)?)?;
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    let caret_at = source.chars().take(column.saturating_sub(1)).count();
    Some(format!(
        "{number} | {source}\n{gutter} | {}^",
        " ".repeat(caret_at)
    ))
}

/// How a file is named in messages: relative to the working directory when it is inside it.
pub(crate) fn display_path(path: &Path, cwd: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(relative) if !relative.as_os_str().is_empty() => relative.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// A string setting that YAML may have written as a number or a boolean (`PORT: 8080`).
/// Floating-point numbers are refused: YAML has already lost how they were written (`1.10`
/// would become `1.1`), so the user is asked to quote them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = ScalarString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ScalarString(v))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "the number {v} would lose how it is written; quote it (\"{v}\")"
                )))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl From<ScalarString> for String {
    fn from(value: ScalarString) -> Self {
        value.0
    }
}

/// Deserializes `null` as the default value, as skaffold's YAML library does (`requires:` with
/// nothing after it is an empty list, not an error). Use with `#[serde(default, deserialize_with
/// = "nullable")]`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The text of a scalar YAML value (string, number or boolean), or `None` for anything else.
pub(crate) fn scalar_text(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) if !n.is_f64() => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_syntax_errors_with_a_snippet() {
        let text = "a: 1\nb: c: d\n";
        let err = serde_yaml::from_str::<serde_yaml::Value>(text).unwrap_err();
        let located = Located::new(&err, text);
        assert_eq!(located.location, Some((2, 5)));
        assert!(!located.message.contains("at line"), "{}", located.message);
        assert_eq!(located.snippet.as_deref(), Some("2 | b: c: d\n  |     ^"));
    }

    #[test]
    fn scalar_strings_accept_numbers_and_booleans_but_not_floats() {
        let v: Vec<ScalarString> = serde_yaml::from_str("[a, 8080, true]").unwrap();
        assert_eq!(v, ["a", "8080", "true"].map(|s| ScalarString(s.into())));
        let err = serde_yaml::from_str::<ScalarString>("1.10").unwrap_err();
        assert!(err.to_string().contains("quote it"), "{err}");
    }

    #[test]
    fn paths_inside_the_working_directory_are_shown_relative() {
        let cwd = Path::new("/repo");
        assert_eq!(display_path(Path::new("/repo/a/b.yaml"), cwd), "a/b.yaml");
        assert_eq!(display_path(Path::new("/elsewhere/x"), cwd), "/elsewhere/x");
        assert_eq!(display_path(Path::new("/repo"), cwd), "/repo");
    }
}
