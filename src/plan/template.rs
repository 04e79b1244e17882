//! The `{{.VAR}}` templates skaffold allows in `buildpacks.env` values.
//!
//! skaffold evaluates these with Go's `text/template` against the environment. op supports the
//! forms people use, and refuses anything else with a clear error instead of passing it through:
//!
//! | template | value |
//! | --- | --- |
//! | `{{.VAR}}` | `VAR`; an error when it is not set |
//! | `{{.VAR \| default "x"}}`, `{{default "x" .VAR}}` | `VAR` when set and not empty, else `x` |

use crate::config::Env;

/// Why a template could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("`{{{{.{0}}}}}` refers to `{0}`, which is not set")]
    Unset(String),
    #[error(
        "`{{{{{0}}}}}` is not a template op can expand (it expands `{{{{.VAR}}}}` and `{{{{.VAR | default \"value\"}}}}`)"
    )]
    Unsupported(String),
    #[error("a `{{{{` is not closed by `}}}}`")]
    Unterminated,
}

/// Expands every `{{…}}` of `text`.
pub fn expand(text: &str, env: &Env) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(Error::Unterminated)?;
        out.push_str(&action(after[..end].trim(), env)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One `{{ … }}` action.
fn action(body: &str, env: &Env) -> Result<String, Error> {
    let unsupported = || Error::Unsupported(body.to_string());
    let (variable, default) = if let Some((left, right)) = body.split_once('|') {
        let default = right
            .trim()
            .strip_prefix("default")
            .ok_or_else(unsupported)?;
        (
            left.trim(),
            Some(literal(default.trim()).ok_or_else(unsupported)?),
        )
    } else if let Some(args) = body.strip_prefix("default") {
        let args = args.trim();
        let (lit, var) = args
            .rsplit_once(char::is_whitespace)
            .ok_or_else(unsupported)?;
        (
            var.trim(),
            Some(literal(lit.trim()).ok_or_else(unsupported)?),
        )
    } else {
        (body, None)
    };
    let name = variable
        .strip_prefix('.')
        .filter(|n| is_name(n))
        .ok_or_else(unsupported)?;
    match (env.raw(name), default) {
        (Some("") | None, Some(default)) => Ok(default),
        (Some(value), _) => Ok(value.to_string()),
        (None, None) => Err(Error::Unset(name.to_string())),
    }
}

/// A Go string literal in double quotes (no escapes beyond `\"` and `\\`).
fn literal(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_supported_forms() {
        let env = Env::from_pairs([("GOPROXY", "https://proxy"), ("EMPTY", "")]);
        let cases = [
            ("plain", "plain"),
            ("{{.GOPROXY}}", "https://proxy"),
            ("x={{ .GOPROXY }}/y", "x=https://proxy/y"),
            ("{{.MISSING | default \"d\"}}", "d"),
            ("{{.EMPTY | default \"d\"}}", "d"),
            ("{{default \"d v\" .MISSING}}", "d v"),
            ("{{.GOPROXY | default \"d\"}}", "https://proxy"),
        ];
        for (text, want) in cases {
            assert_eq!(expand(text, &env).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_expand() {
        let env = Env::default();
        assert_eq!(expand("{{.NOPE}}", &env), Err(Error::Unset("NOPE".into())));
        assert_eq!(
            expand("{{cmd \"date\"}}", &env),
            Err(Error::Unsupported("cmd \"date\"".into()))
        );
        assert_eq!(
            expand("{{.A | upper}}", &env),
            Err(Error::Unsupported(".A | upper".into()))
        );
        assert_eq!(expand("{{.A", &env), Err(Error::Unterminated));
        assert_eq!(
            Error::Unset("X".into()).to_string(),
            "`{{.X}}` refers to `X`, which is not set"
        );
    }
}
