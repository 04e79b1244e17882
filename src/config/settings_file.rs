//! The two kinds of settings file: `pipeline.properties` (`KEY=VALUE` lines) and YAML files in the
//! shape of `.github/octopilot.yaml`.
//!
//! Both produce the same thing, a [`SettingsFile`]: upper-case keys with string values, plus the
//! `contexts` section that `op run` reads. Keys are case-insensitive (upstream read them through
//! Viper), so `default_repo` and `DEFAULT_REPO` are the same key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Error;
use super::yaml::{Located, ScalarString, display_path, nullable, scalar_text};

/// The top-level keys op reads from a YAML settings file, in their canonical (upper-case) form.
pub const KNOWN_KEYS: &[&str] = &[
    "DEFAULT_REPO",
    "TAG",
    "CONTEXTS",
    "SKAFFOLD_DEFAULT_REPO",
    "SKAFFOLD_PROFILE",
    "SKAFFOLD_LABEL",
    "SKAFFOLD_NAMESPACE",
    "GOOGLE_GKE_IMAGE_REPOSITORY",
    "GOOGLE_GKE_IMAGE_PP_REPOSITORY",
    "GOOGLE_GKE_IMAGE_PROD_REPOSITORY",
    "WATCH_DESTINATION_REPOSITORY",
    "PROMOTE_SOURCE_REPOSITORY",
    "PROMOTE_DESTINATION_REPOSITORY",
];

/// How `op run` starts the container of one context.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextOptions {
    /// `docker run -p` specs, used as written (`"8081:8080"`).
    #[serde(default, deserialize_with = "nullable")]
    pub ports: Vec<ScalarString>,
    /// Environment of the container; overrides what op infers (`PORT`).
    #[serde(default, deserialize_with = "nullable")]
    pub env: BTreeMap<String, ScalarString>,
    /// `docker run -v` specs (`"./public:/app/public"`).
    #[serde(default, deserialize_with = "nullable")]
    pub volumes: Vec<String>,
}

/// One setting, with the key as the file spells it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

/// What a settings file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsFile {
    pub path: PathBuf,
    /// Upper-case key → setting.
    pub values: BTreeMap<String, Setting>,
    /// `contexts.<name>` of a YAML file (always empty for properties files).
    pub contexts: BTreeMap<String, ContextOptions>,
    /// Things worth telling the user that do not stop op (unknown keys).
    pub warnings: Vec<String>,
}

impl SettingsFile {
    /// The non-empty value of `key` (upper case), if the file has it.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.values.get(key).filter(|s| !s.value.trim().is_empty())
    }

    /// Reads a settings file, choosing the format by extension: `.yaml`/`.yml` are YAML, anything
    /// else is a properties file.
    pub fn load(path: &Path, cwd: &Path) -> Result<Self, Error> {
        let text = fs_err::read_to_string(path).map_err(|source| Error::Read {
            path: display_path(path, cwd),
            source,
        })?;
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"));
        if is_yaml {
            Self::parse_yaml(&text, path, cwd)
        } else {
            Self::parse_properties(&text, path, cwd)
        }
    }

    /// Parses `KEY=VALUE` lines (`KEY: VALUE` is accepted too). Blank lines and lines starting with
    /// `#` or `!` are comments. The key and the value are trimmed; the value keeps any `=` or `:`
    /// after the first separator.
    pub fn parse_properties(text: &str, path: &Path, cwd: &Path) -> Result<Self, Error> {
        let mut values = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let separator = line.find(['=', ':']);
            let (key, value) = match separator {
                Some(at) if at > 0 => (line[..at].trim(), line[at + 1..].trim()),
                _ => {
                    return Err(Error::Properties {
                        path: display_path(path, cwd),
                        line: index + 1,
                        text: line.to_string(),
                    });
                }
            };
            let setting = Setting {
                key: key.to_string(),
                value: value.to_string(),
            };
            values.insert(key.to_ascii_uppercase(), setting);
        }
        Ok(Self {
            path: path.to_path_buf(),
            values,
            contexts: BTreeMap::new(),
            warnings: Vec::new(),
        })
    }

    /// Parses a YAML settings file (`.github/octopilot.yaml`).
    pub fn parse_yaml(text: &str, path: &Path, cwd: &Path) -> Result<Self, Error> {
        let shown = display_path(path, cwd);
        let yaml_error = |e: &serde_yaml::Error| {
            Error::Yaml {
            path: shown.clone(),
            located: Located::new(e, text),
            hint: Some(
                "the file holds `default_repo`, `tag` and `contexts.<context>.{ports,env,volumes}`; \
                 see docs/configuration.md"
                    .into(),
            ),
        }
        };
        let top: Option<serde_yaml::Value> =
            serde_yaml::from_str(text).map_err(|e| yaml_error(&e))?;
        let mut file = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        let Some(top) = top else { return Ok(file) };
        let serde_yaml::Value::Mapping(top) = top else {
            return Err(Error::Invalid {
                path: shown,
                field: "the top level".into(),
                problem: "must be a mapping of settings".into(),
                hint: Some("start with `default_repo: <registry>` or `contexts:`".into()),
            });
        };
        for (key, value) in &top {
            let Some(key) = key.as_str() else {
                return Err(Error::Invalid {
                    path: shown,
                    field: "the top level".into(),
                    problem: format!("has a key that is not a string: `{}`", yaml_inline(key)),
                    hint: None,
                });
            };
            let canonical = key.to_ascii_uppercase();
            if !KNOWN_KEYS.contains(&canonical.as_str()) {
                file.warnings.push(format!(
                    "`{shown}`: op does not read the key `{key}` (it reads default_repo, tag, contexts \
                     and the upper-case pipeline keys listed in docs/configuration.md)"
                ));
                continue;
            }
            if canonical == "CONTEXTS" {
                continue;
            }
            match scalar_text(value) {
                Some(value) => {
                    let key = key.to_string();
                    file.values.insert(canonical, Setting { key, value });
                }
                None if value.is_null() => {}
                None => {
                    return Err(Error::Invalid {
                        path: shown,
                        field: key.to_string(),
                        problem: format!("must be a string, not `{}`", yaml_inline(value)),
                        hint: Some(format!("write it as `{key}: \"<value>\"`")),
                    });
                }
            }
        }

        // The contexts go through serde straight from the text, so that a mistake inside them is
        // reported with its line and column.
        let contexts: Contexts = serde_yaml::from_str(text).map_err(|e| yaml_error(&e))?;
        file.contexts = contexts
            .contexts
            .unwrap_or_default()
            .into_iter()
            .map(|(name, options)| (name, options.unwrap_or_default()))
            .collect();
        Ok(file)
    }
}

/// The `contexts` of a YAML settings file (the other keys are read as plain values).
#[derive(Deserialize)]
struct Contexts {
    #[serde(default)]
    contexts: Option<BTreeMap<String, Option<ContextOptions>>>,
}

/// A short, one-line rendering of a YAML value for messages.
fn yaml_inline(value: &serde_yaml::Value) -> String {
    let text = serde_yaml::to_string(value).unwrap_or_default();
    let text = text.trim().replace('\n', " ");
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<SettingsFile, Error> {
        SettingsFile::parse_yaml(
            text,
            Path::new("/r/.github/octopilot.yaml"),
            Path::new("/r"),
        )
    }

    #[test]
    fn properties_files_skip_comments_and_keep_separators_in_values() {
        let file = SettingsFile::parse_properties(
            "# comment\n! also\n\nSKAFFOLD_DEFAULT_REPO = localhost:5001\nskaffold_profile: dev,ci\nURL=http://x?a=b\n",
            Path::new("/r/pipeline.properties"),
            Path::new("/r"),
        )
        .unwrap();
        assert_eq!(file.values["SKAFFOLD_DEFAULT_REPO"].value, "localhost:5001");
        assert_eq!(file.values["SKAFFOLD_PROFILE"].value, "dev,ci");
        assert_eq!(file.values["SKAFFOLD_PROFILE"].key, "skaffold_profile");
        assert_eq!(file.values["URL"].value, "http://x?a=b");
    }

    #[test]
    fn properties_lines_without_separator_are_errors() {
        let err = SettingsFile::parse_properties(
            "A=1\njust words\n",
            Path::new("/r/p.properties"),
            Path::new("/r"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("p.properties") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn yaml_files_read_known_keys_case_insensitively_and_contexts() {
        let file = yaml(
            "default_repo: localhost:5001\ntag: 7\nSKAFFOLD_PROFILE: dev\ncontexts:\n  api:\n    ports: [\"8081:8080\", 9000]\n    env: {PORT: 8080, DEBUG: true}\n  web:\n",
        )
        .unwrap();
        assert_eq!(file.values["DEFAULT_REPO"].value, "localhost:5001");
        assert_eq!(file.values["DEFAULT_REPO"].key, "default_repo");
        assert_eq!(file.values["TAG"].value, "7");
        assert_eq!(file.values["SKAFFOLD_PROFILE"].value, "dev");
        let api = &file.contexts["api"];
        assert_eq!(
            api.ports,
            [
                ScalarString("8081:8080".into()),
                ScalarString("9000".into())
            ]
        );
        assert_eq!(api.env["PORT"].0, "8080");
        assert_eq!(api.env["DEBUG"].0, "true");
        assert_eq!(file.contexts["web"], ContextOptions::default());
        assert!(file.warnings.is_empty());
    }

    #[test]
    fn unknown_keys_are_warnings_not_errors() {
        let file = yaml("default_repo: x\nsomething_else: 1\n").unwrap();
        assert_eq!(file.warnings.len(), 1);
        assert!(file.warnings[0].contains("something_else"));
    }

    #[test]
    fn malformed_files_are_errors_with_locations() {
        let err = yaml("contexts:\n  api:\n    ports: 8080\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = yaml("contexts:\n  api:\n    prots: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `prots`"), "{err}");
        let err = yaml("default_repo: [a, b]\n").unwrap_err().to_string();
        assert!(
            err.contains("default_repo") && err.contains("must be a string"),
            "{err}"
        );
        let err = yaml("- a\n").unwrap_err().to_string();
        assert!(err.contains("mapping"), "{err}");
        let err = yaml("contexts: {api: {ports: [1.5]}}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("quote it"), "{err}");
        let err = yaml("a: b: c\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn empty_files_are_empty_settings() {
        assert_eq!(yaml("").unwrap().values.len(), 0);
        assert_eq!(yaml("# only a comment\n").unwrap().contexts.len(), 0);
    }
}
