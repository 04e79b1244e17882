//! A snapshot of the process environment.
//!
//! Configuration code never reads `std::env` itself: it is handed an [`Env`], so that tests can
//! describe the environment they need without mutating the process (tests run in parallel).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a command runs in: the working directory and the environment, read from the process
/// once, at start-up (commands never read the process themselves).
#[derive(Clone, Debug)]
pub struct Invocation {
    pub cwd: PathBuf,
    pub env: Env,
}

impl Invocation {
    /// This process's working directory and environment.
    pub fn capture() -> std::io::Result<Self> {
        Ok(Self {
            cwd: std::env::current_dir()?,
            env: Env::from_process(),
        })
    }
}

/// Environment variables, captured once at start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Captures the environment of this process. Variables whose name or value is not valid
    /// UTF-8 are skipped: none of the variables op reads can hold such values meaningfully.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self { vars }
    }

    /// An environment holding exactly `pairs`.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `key`, even when it is empty.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The value of `key` when it is set to something other than the empty string (after
    /// trimming white space), which is how op treats every variable it reads for a setting.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Sets `key` (used by tests and by callers that build an environment step by step).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// All variables, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// op's cache directory: `$XDG_CACHE_HOME/op`, else `~/.cache/op`, else one in the
    /// temporary directory.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = self.get("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("op");
        }
        if let Some(home) = self.get("HOME") {
            return PathBuf::from(home).join(".cache").join("op");
        }
        std::env::temp_dir().join("op-cache")
    }

    /// Whether `GITHUB_ACTIONS` is `true`, which selects the `ci` registries of `.registry`.
    pub fn in_github_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_blank_values_count_as_unset() {
        let env = Env::from_pairs([("A", ""), ("B", "  "), ("C", " x ")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), Some("x"));
        assert_eq!(env.raw("A"), Some(""));
        assert_eq!(env.raw("Z"), None);
    }

    #[test]
    fn github_actions_needs_the_exact_value_true() {
        assert!(Env::from_pairs([("GITHUB_ACTIONS", "true")]).in_github_actions());
        assert!(!Env::from_pairs([("GITHUB_ACTIONS", "1")]).in_github_actions());
        assert!(!Env::default().in_github_actions());
    }
}
