//! `${VAR}` interpolation for `.registry` entries.
//!
//! Supported forms, as in the shell:
//!
//! | form | value |
//! | --- | --- |
//! | `${VAR:-default}` | `VAR` when it is set and not empty, else `default` |
//! | `${VAR}`, `$VAR` | `VAR`; an unset variable is an error (never a silent empty string) |
//! | `$$` | a literal `$` |
//!
//! A `$` followed by anything else is kept as it is.

use super::env::Env;

/// Why an entry could not be interpolated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("`${{{0}}}` is not set")]
    Unset(String),
    #[error("`${{` is not closed by `}}`")]
    Unterminated,
    #[error("`${{{0}}}` is not a variable name")]
    BadName(String),
}

/// Expands the variables in `text` from `env`.
pub fn interpolate(text: &str, env: &Env) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').ok_or(Error::Unterminated)?;
            let body = &after[..end];
            rest = &after[end + 1..];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if !is_name(name) {
                return Err(Error::BadName(body.to_string()));
            }
            match (env.raw(name), default) {
                (Some("") | None, Some(default)) => out.push_str(default),
                (Some(value), _) => out.push_str(value),
                (None, None) => return Err(Error::Unset(name.to_string())),
            }
        } else {
            let len = rest
                .char_indices()
                .take_while(|&(i, c)| {
                    c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                })
                .count();
            if len == 0 {
                out.push('$');
                continue;
            }
            let name = &rest[..len];
            rest = &rest[len..];
            out.push_str(
                env.raw(name)
                    .ok_or_else(|| Error::Unset(name.to_string()))?,
            );
        }
    }
    out.push_str(rest);
    Ok(out)
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

    fn env() -> Env {
        Env::from_pairs([("OWNER", "acme"), ("EMPTY", ""), ("PORT", "9999")])
    }

    #[test]
    fn expands_every_form() {
        let env = env();
        let cases = [
            ("ghcr.io/${OWNER}", "ghcr.io/acme"),
            ("ghcr.io/$OWNER/app", "ghcr.io/acme/app"),
            ("localhost:${PORT:-5001}", "localhost:9999"),
            ("localhost:${MISSING:-5001}", "localhost:5001"),
            ("ghcr.io/${EMPTY:-fallback}", "ghcr.io/fallback"),
            ("ghcr.io/${EMPTY}x", "ghcr.io/x"),
            ("cost$$", "cost$"),
            ("a$-b", "a$-b"),
            ("plain", "plain"),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn unset_variables_are_errors() {
        let env = env();
        assert_eq!(
            interpolate("x/${NOPE}", &env),
            Err(Error::Unset("NOPE".into()))
        );
        assert_eq!(
            interpolate("x/$NOPE", &env),
            Err(Error::Unset("NOPE".into()))
        );
        assert_eq!(interpolate("x/${OWNER", &env), Err(Error::Unterminated));
        assert_eq!(
            interpolate("x/${1A}", &env),
            Err(Error::BadName("1A".into()))
        );
    }
}
