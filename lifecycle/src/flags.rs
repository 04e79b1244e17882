//! Command-line flags parsed the way Go's `flag` package parses them, as the reference lifecycle
//! does: single-dash long names (`-app /workspace`, `-app=/workspace`; `--app` works too), boolean
//! flags without a value (or with `=true`/`=false`), repeatable flags, and parsing that stops at
//! the first positional argument. Unknown flags are usage errors (exit 2).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::exit::{self, Error};

/// How a flag takes values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `-flag value`; the last one given wins.
    Value,
    /// `-flag` or `-flag=true|false`.
    Bool,
    /// `-flag value`, any number of times.
    Repeated,
}

/// A flag a command defines.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    pub name: &'static str,
    pub kind: Kind,
    /// The environment variable that holds the value when the flag is not given.
    pub env: Option<&'static str>,
    pub usage: &'static str,
}

impl Flag {
    pub const fn value(name: &'static str, env: Option<&'static str>, usage: &'static str) -> Self {
        Self {
            name,
            kind: Kind::Value,
            env,
            usage,
        }
    }

    pub const fn boolean(
        name: &'static str,
        env: Option<&'static str>,
        usage: &'static str,
    ) -> Self {
        Self {
            name,
            kind: Kind::Bool,
            env,
            usage,
        }
    }

    pub const fn repeated(
        name: &'static str,
        env: Option<&'static str>,
        usage: &'static str,
    ) -> Self {
        Self {
            name,
            kind: Kind::Repeated,
            env,
            usage,
        }
    }
}

/// The parsed command line.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    values: BTreeMap<&'static str, Vec<String>>,
    /// The positional arguments.
    pub args: Vec<String>,
    /// Flag-like arguments after the first positional, which are not parsed as flags.
    pub warnings: Vec<String>,
}

impl Parsed {
    /// The last value of a value flag, if it was given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether a flag was given at all.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value of a boolean flag (false when not given).
    pub fn boolean(&self, name: &str) -> bool {
        self.value(name) == Some("true")
    }
}

/// Usage text for `flags`, Go style.
pub fn usage(command: &str, positional: &str, flags: &[Flag]) -> String {
    let mut out = format!("Usage: {command} [flags] {positional}\n");
    for flag in flags {
        let value = if flag.kind == Kind::Bool {
            ""
        } else {
            " <value>"
        };
        let env = flag.env.map(|e| format!(" (env: {e})")).unwrap_or_default();
        let _ = writeln!(out, "  -{}{value}\n    \t{}{env}", flag.name, flag.usage);
    }
    out
}

/// Parses `args` (without the program name). `-h`/`-help` give an [`Error`] with code 0 and
/// the usage as message; other mistakes give exit code 2.
pub fn parse(flags: &[Flag], args: &[String], usage_text: &str) -> Result<Parsed, Error> {
    let usage_error = |message: String| Error::new(exit::USAGE, format!("{message}\n{usage_text}"));
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(usage_error(format!("bad flag syntax: {arg}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Err(Error::new(0, usage_text.to_string()));
        }
        let flag = flags
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| usage_error(format!("flag provided but not defined: -{name}")))?;
        let value = match (flag.kind, inline) {
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Bool, Some(v)) => match v.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => "true".to_string(),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => "false".to_string(),
                _ => {
                    return Err(usage_error(format!(
                        "invalid boolean value \"{v}\" for -{name}"
                    )));
                }
            },
            (_, Some(v)) => v,
            (_, None) => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| usage_error(format!("flag needs an argument: -{name}")))?
            }
        };
        let slot = parsed.values.entry(flag.name).or_default();
        if flag.kind != Kind::Repeated {
            slot.clear();
        }
        slot.push(value);
        i += 1;
    }
    parsed.args = args[i.min(args.len())..].to_vec();
    for arg in &parsed.args {
        if arg.len() > 1 && arg.starts_with('-') {
            parsed.warnings.push(format!(
                "unconsumed flag-like positional arg: {arg} (it is not interpreted as a flag; flags go before the first positional argument)"
            ));
        }
    }
    Ok(parsed)
}

/// The value of a flag, else of its environment variable.
pub fn value_or_env(
    parsed: &Parsed,
    flag: &Flag,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    parsed
        .value(flag.name)
        .map(str::to_string)
        .or_else(|| flag.env.and_then(env).filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: [Flag; 4] = [
        Flag::value("app", Some("CNB_APP_DIR"), "app dir"),
        Flag::boolean("skip-restore", None, "skip"),
        Flag::repeated("tag", None, "tags"),
        Flag::value("uid", Some("CNB_USER_ID"), "uid"),
    ];

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    fn parse_args(list: &[&str]) -> Result<Parsed, Error> {
        parse(&FLAGS, &args(list), "usage")
    }

    #[test]
    fn parses_go_style_flags() {
        let p = parse_args(&[
            "-app",
            "/w",
            "--uid=1000",
            "-skip-restore",
            "-tag",
            "a",
            "-tag=b",
            "img",
        ])
        .unwrap();
        assert_eq!(p.value("app"), Some("/w"));
        assert_eq!(p.value("uid"), Some("1000"));
        assert!(p.boolean("skip-restore"));
        assert_eq!(p.values("tag"), ["a", "b"]);
        assert_eq!(p.args, ["img"]);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn values_may_start_with_a_dash_and_bools_take_explicit_values() {
        let p = parse_args(&["-app", "-weird", "-skip-restore=false", "img"]).unwrap();
        assert_eq!(p.value("app"), Some("-weird"));
        assert!(!p.boolean("skip-restore"));
        assert!(p.is_set("skip-restore"));
    }

    #[test]
    fn parsing_stops_at_the_first_positional() {
        let p = parse_args(&["img", "-app", "/w"]).unwrap();
        assert_eq!(p.args, ["img", "-app", "/w"]);
        assert_eq!(p.value("app"), None);
        assert_eq!(p.warnings.len(), 1);
        let p = parse_args(&["--", "-notaflag"]).unwrap();
        assert_eq!(p.args, ["-notaflag"]);
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for bad in [
            &["-daemonx"][..],
            &["-app"],
            &["-skip-restore=maybe"],
            &["---app", "x"],
            &["-=x"],
        ] {
            let err = parse_args(bad).unwrap_err();
            assert_eq!(err.code, exit::USAGE, "{bad:?}");
        }
        assert!(
            parse_args(&["-nope"])
                .unwrap_err()
                .message
                .starts_with("flag provided but not defined: -nope")
        );
        assert_eq!(parse_args(&["-help"]).unwrap_err().code, 0);
    }

    #[test]
    fn environment_variables_fill_in_for_missing_flags() {
        let p = parse_args(&["-app", "/flag"]).unwrap();
        let env = |k: &str| (k == "CNB_APP_DIR" || k == "CNB_USER_ID").then(|| format!("env-{k}"));
        assert_eq!(value_or_env(&p, &FLAGS[0], &env).as_deref(), Some("/flag"));
        assert_eq!(
            value_or_env(&p, &FLAGS[3], &env).as_deref(),
            Some("env-CNB_USER_ID")
        );
        assert_eq!(value_or_env(&p, &FLAGS[2], &env), None);
    }
}
