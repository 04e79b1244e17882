//! The `.registry` file: where a repository pushes, locally and in CI.
//!
//! ```yaml
//! local: localhost:5001
//! ci:
//!   - ghcr.io/${GITHUB_REPOSITORY_OWNER:-my-org}
//!   - url: europe-west1-docker.pkg.dev/${GCP_PROJECT}/images
//!     name: gar
//! ```
//!
//! `destinations` is the legacy spelling of `ci`, read when `ci` is absent or empty. Entries are
//! strings or mappings with `url` (and an optional `name`); they are interpolated (see
//! [`super::interpolate`]) only when op actually uses them, so a variable that only CI sets does
//! not break local runs.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::env::Env;
use super::yaml::{Located, display_path};
use super::{Error, interpolate};

/// One registry of `.registry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The URL as written, before interpolation.
    pub url: String,
    /// The optional `name` of the mapping form.
    pub name: Option<String>,
}

/// Which registries of `.registry` a push goes to (`op push --destination`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Destination {
    Local,
    Ci,
    All,
    /// `ci` on GitHub Actions (`$GITHUB_ACTIONS` is `true`), else `local`.
    #[default]
    Auto,
}

/// A parsed `.registry` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryFile {
    pub path: PathBuf,
    pub local: Option<Entry>,
    pub ci: Vec<Entry>,
    pub destinations: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `local`, `ci` or `destinations`"
)]
struct Raw {
    local: Option<Entry>,
    ci: Option<Vec<Entry>>,
    destinations: Option<Vec<Entry>>,
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a registry (a string, or a mapping with `url` and an optional `name`)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
                Ok(Entry {
                    url: v.to_string(),
                    name: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let (mut url, mut name) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "url" => url = Some(map.next_value::<String>()?),
                        "name" => name = Some(map.next_value::<String>()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["url", "name"]));
                        }
                    }
                }
                let url = url.ok_or_else(|| de::Error::missing_field("url"))?;
                Ok(Entry { url, name })
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}

impl RegistryFile {
    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path, cwd: &Path) -> Result<Option<Self>, Error> {
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Read {
                    path: display_path(path, cwd),
                    source,
                });
            }
        };
        Self::parse(&text, path, cwd).map(Some)
    }

    /// Parses the text of a `.registry` file found at `path`.
    pub fn parse(text: &str, path: &Path, cwd: &Path) -> Result<Self, Error> {
        let raw: Option<Raw> = serde_yaml::from_str(text).map_err(|e| Error::Yaml {
            path: display_path(path, cwd),
            located: Located::new(&e, text),
            hint: Some(
                "`.registry` holds `local: <registry>` and `ci:` (a list of registries); \
                 see docs/configuration.md"
                    .into(),
            ),
        })?;
        let raw = raw.unwrap_or(Raw {
            local: None,
            ci: None,
            destinations: None,
        });
        Ok(Self {
            path: path.to_path_buf(),
            local: raw.local,
            ci: raw.ci.unwrap_or_default(),
            destinations: raw.destinations.unwrap_or_default(),
        })
    }

    /// The CI registries: `ci`, or the legacy `destinations` when `ci` is empty.
    pub fn ci_entries(&self) -> (&'static str, &[Entry]) {
        if self.ci.is_empty() && !self.destinations.is_empty() {
            ("destinations", &self.destinations)
        } else {
            ("ci", &self.ci)
        }
    }

    /// The entries `destination` selects, with their fields, in order, each once (`op push
    /// --destination`): `local`; the CI registries; both (local first); or, for `auto`, the CI
    /// registries when `in_ci`, else `local`.
    pub fn entries_for(&self, destination: Destination, in_ci: bool) -> Vec<(String, &Entry)> {
        let local = || {
            self.local
                .iter()
                .map(|e| ("local".to_string(), e))
                .collect::<Vec<_>>()
        };
        let ci = || {
            let (field, entries) = self.ci_entries();
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (format!("{field}[{i}]"), e))
                .collect::<Vec<_>>()
        };
        let mut all = match destination {
            Destination::Ci => ci(),
            Destination::All => local().into_iter().chain(ci()).collect(),
            Destination::Auto if in_ci => ci(),
            Destination::Local | Destination::Auto => local(),
        };
        let mut seen: Vec<&str> = Vec::new();
        all.retain(|(_, e)| {
            let new = !seen.contains(&e.url.as_str());
            seen.push(&e.url);
            new
        });
        all
    }

    /// Interpolates `entry` (found at `field`) into a registry URL without a trailing `/`.
    pub fn resolve(
        &self,
        field: &str,
        entry: &Entry,
        env: &Env,
        cwd: &Path,
    ) -> Result<String, Error> {
        let invalid = |problem: String, hint: Option<String>| Error::Invalid {
            path: display_path(&self.path, cwd),
            field: field.to_string(),
            problem,
            hint,
        };
        let value = interpolate::interpolate(entry.url.trim(), env).map_err(|e| {
            let hint = match &e {
                interpolate::Error::Unset(var) => Some(format!(
                    "set {var}, or give a default with `${{{var}:-<value>}}`"
                )),
                _ => None,
            };
            invalid(format!("`{}`: {e}", entry.url), hint)
        })?;
        let value = value.trim().trim_end_matches('/').to_string();
        if value.is_empty() {
            return Err(invalid(
                format!("`{}` is empty once interpolated", entry.url),
                None,
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RegistryFile, Error> {
        RegistryFile::parse(text, Path::new("/repo/.registry"), Path::new("/repo"))
    }

    /// The entry of the default repository (`--destination auto`).
    fn first(file: &RegistryFile, in_ci: bool) -> Option<(String, &Entry)> {
        file.entries_for(Destination::Auto, in_ci)
            .into_iter()
            .next()
    }

    #[test]
    fn destinations_select_local_ci_or_both_each_once() {
        let file = parse(
            "local: localhost:5001\nci:\n  - ghcr.io/acme\n  - localhost:5001\n  - gar.example/p/r\n",
        )
        .unwrap();
        let fields = |d, in_ci| -> Vec<String> {
            file.entries_for(d, in_ci)
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        assert_eq!(fields(Destination::Local, true), ["local"]);
        assert_eq!(fields(Destination::Ci, false), ["ci[0]", "ci[1]", "ci[2]"]);
        assert_eq!(
            fields(Destination::All, false),
            ["local", "ci[0]", "ci[2]"],
            "local first, then ci, each registry once"
        );
        assert_eq!(fields(Destination::Auto, true), ["ci[0]", "ci[1]", "ci[2]"]);
        assert_eq!(fields(Destination::Auto, false), ["local"]);
    }

    #[test]
    fn reads_strings_and_url_mappings() {
        let file = parse(
            "local: localhost:5001\nci:\n  - ghcr.io/${OWNER:-my-org}\n  - url: gar.example/p/r/\n    name: gar\n",
        )
        .unwrap();
        assert_eq!(file.local.as_ref().unwrap().url, "localhost:5001");
        assert_eq!(file.ci.len(), 2);
        assert_eq!(file.ci[1].name.as_deref(), Some("gar"));
        let env = Env::default();
        let (field, entry) = first(&file, true).unwrap();
        assert_eq!(field, "ci[0]");
        assert_eq!(
            file.resolve(&field, entry, &env, Path::new("/repo"))
                .unwrap(),
            "ghcr.io/my-org"
        );
        let second = &file.ci[1];
        assert_eq!(
            file.resolve("ci[1]", second, &env, Path::new("/repo"))
                .unwrap(),
            "gar.example/p/r"
        );
    }

    #[test]
    fn local_outside_ci_and_legacy_destinations_in_ci() {
        let file = parse("local: localhost:5001\ndestinations: [reg.example/a]\n").unwrap();
        assert_eq!(first(&file, false).unwrap().0, "local");
        let (field, entry) = first(&file, true).unwrap();
        assert_eq!(
            (field.as_str(), entry.url.as_str()),
            ("destinations[0]", "reg.example/a")
        );
        assert!(first(&parse("ci: []\n").unwrap(), true).is_none());
    }

    #[test]
    fn empty_file_has_no_entries() {
        let file = parse("# nothing yet\n").unwrap();
        assert!(first(&file, false).is_none());
        assert!(first(&file, true).is_none());
    }

    #[test]
    fn malformed_files_name_the_field() {
        let err = parse("local: localhost:5001\nci:\n  - 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ci[0]"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = parse("lcoal: x\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `lcoal`"), "{err}");
        let err = parse("- a\n- b\n").unwrap_err().to_string();
        assert!(err.contains("a mapping with `local`"), "{err}");
        let err = parse("ci:\n  - name: x\n").unwrap_err().to_string();
        assert!(err.contains("missing field `url`"), "{err}");
    }

    #[test]
    fn unset_variables_are_reported_with_the_field() {
        let file = parse("ci:\n  - ghcr.io/${OWNER}\n").unwrap();
        let (field, entry) = first(&file, true).unwrap();
        let err = file
            .resolve(&field, entry, &Env::default(), Path::new("/repo"))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ci[0]") && text.contains("OWNER"), "{text}");
    }
}
