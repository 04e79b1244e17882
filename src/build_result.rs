//! `build_result.json`: the hand-off from building to deploying.
//!
//! The shape is skaffold's `--file-output` (`skaffold deploy --build-artifacts` reads it):
//!
//! ```json
//! {"builds":[{"imageName":"op-base","tag":"ghcr.io/o/op-base:latest@sha256:…"},{"imageName":"op","tag":"…"}]}
//! ```
//!
//! `imageName` is the artifact's `image` in skaffold.yaml; `tag` is the full reference with its
//! digest. Entries are in skaffold.yaml order, so the application usually comes last, and
//! readers default to the last entry. The file is written atomically (a temporary file in the
//! same directory, then a rename), so a reader never sees half of it and a failed build never
//! leaves a partial one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hint::Hint;

/// The name of the file when no other is given.
pub const FILE_NAME: &str = "build_result.json";

/// One built image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    /// The artifact's `image` in skaffold.yaml. Files written by the Python version of op may
    /// lack it; those entries are found by the last path segment of `tag`.
    #[serde(default)]
    pub image_name: String,
    /// `registry/repository:tag@sha256:…`.
    pub tag: String,
}

/// The content of `build_result.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildResult {
    pub builds: Vec<Build>,
}

/// A `build_result.json` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{path}` does not exist")]
    NotFound { path: String },
    #[error("Failed to read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a build result")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{path}` lists no builds")]
    NoBuilds { path: String },
    #[error("Image `{name}` is not in `{path}`")]
    ImageNotFound {
        path: String,
        name: String,
        available: Vec<String>,
    },
    #[error("Failed to write `{path}`")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NotFound { .. } => {
                Some("build first (`op build-push`), or point op at the directory that holds the file".into())
            }
            Error::Parse { .. } => Some(
                "the file holds {\"builds\":[{\"imageName\":…,\"tag\":…}]}, as written by op or `skaffold build --file-output`"
                    .into(),
            ),
            Error::NoBuilds { .. } => Some("the build that wrote it built nothing; build again".into()),
            Error::ImageNotFound { available, .. } => Some(format!(
                "the file has {}",
                available.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            )),
            Error::Read { .. } | Error::Write { .. } => None,
        }
    }
}

impl BuildResult {
    /// Reads `path`. A file without builds is an error: nothing could be selected from it.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { path: shown });
            }
            Err(source) => {
                return Err(Error::Read {
                    path: shown,
                    source,
                });
            }
        };
        let result: Self = serde_json::from_str(&text).map_err(|source| Error::Parse {
            path: shown.clone(),
            source,
        })?;
        if result.builds.is_empty() {
            return Err(Error::NoBuilds { path: shown });
        }
        Ok(result)
    }

    /// The entry of `name`, or the last entry when no name is given.
    pub fn select(&self, name: Option<&str>, path: &Path) -> Result<&Build, Error> {
        let Some(name) = name else {
            return self.builds.last().ok_or_else(|| Error::NoBuilds {
                path: path.display().to_string(),
            });
        };
        self.find(name).ok_or_else(|| Error::ImageNotFound {
            path: path.display().to_string(),
            name: name.to_string(),
            available: self.builds.iter().map(Build::name).collect(),
        })
    }

    /// The entry whose `imageName` is `name` (or, for entries without one, whose repository
    /// ends in `/name`).
    pub fn find(&self, name: &str) -> Option<&Build> {
        self.builds
            .iter()
            .find(|b| b.image_name == name)
            .or_else(|| {
                self.builds.iter().find(|b| {
                    b.image_name.is_empty() && b.name() == name.rsplit('/').next().unwrap_or(name)
                })
            })
    }

    /// Writes the result to `path` atomically: compact JSON and a final newline.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let shown = path.display().to_string();
        let wrap = |source: std::io::Error| Error::Write {
            path: shown.clone(),
            source,
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut json = serde_json::to_vec(self).map_err(|e| wrap(e.into()))?;
        json.push(b'\n');
        let mut builder = tempfile::Builder::new();
        builder.prefix(".build_result.").suffix(".tmp");
        #[cfg(unix)]
        {
            // Like any file op creates (subject to the umask), not tempfile's private 0600.
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let mut file = builder.tempfile_in(&dir).map_err(wrap)?;
        file.write_all(&json).map_err(wrap)?;
        file.as_file().sync_all().map_err(wrap)?;
        file.persist(path).map_err(|e| wrap(e.error))?;
        Ok(())
    }
}

impl Build {
    /// The name the entry is known by: `imageName`, or the last path segment of the repository.
    pub fn name(&self) -> String {
        if !self.image_name.is_empty() {
            return self.image_name.clone();
        }
        let without_digest = self.tag.split('@').next().unwrap_or(&self.tag);
        let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
        last.split(':').next().unwrap_or(last).to_string()
    }

    /// The tag part of the reference (`v1.0.0` of `reg/app:v1.0.0@sha256:…`), as upstream's
    /// `watch-deployment` matches deployments by it.
    pub fn version_tag(&self) -> &str {
        let without_digest = self.tag.split('@').next().unwrap_or(&self.tag);
        match without_digest.rfind(':') {
            Some(i) if !without_digest[i..].contains('/') => &without_digest[i + 1..],
            _ => without_digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn result() -> BuildResult {
        BuildResult {
            builds: vec![
                Build {
                    image_name: "op-base".into(),
                    tag: format!("ghcr.io/o/op-base:latest@{DIGEST}"),
                },
                Build {
                    image_name: "op".into(),
                    tag: format!("ghcr.io/o/op:v1@{DIGEST}"),
                },
            ],
        }
    }

    #[test]
    fn writes_skaffolds_compact_shape_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        result().write(&path).unwrap();
        let text = fs_err::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"builds\":[{{\"imageName\":\"op-base\",\"tag\":\"ghcr.io/o/op-base:latest@{DIGEST}\"}},{{\"imageName\":\"op\",\"tag\":\"ghcr.io/o/op:v1@{DIGEST}\"}}]}}\n"
            )
        );
        assert_eq!(BuildResult::read(&path).unwrap(), result());
        let leftovers: Vec<_> = fs_err::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn selects_by_name_or_the_last_entry() {
        let r = result();
        let path = Path::new(FILE_NAME);
        assert_eq!(r.select(None, path).unwrap().image_name, "op");
        assert_eq!(
            r.select(Some("op-base"), path).unwrap().image_name,
            "op-base"
        );
        let err = r.select(Some("web"), path).unwrap_err();
        assert_eq!(err.to_string(), "Image `web` is not in `build_result.json`");
        assert_eq!(err.hint().as_deref(), Some("the file has `op-base`, `op`"));
    }

    #[test]
    fn reading_reports_missing_empty_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert!(matches!(
            BuildResult::read(&path),
            Err(Error::NotFound { .. })
        ));
        fs_err::write(&path, "{\"builds\":[]}").unwrap();
        assert!(matches!(
            BuildResult::read(&path),
            Err(Error::NoBuilds { .. })
        ));
        fs_err::write(&path, "{\"builds\":[{\"imageName\":1}]}").unwrap();
        let err = BuildResult::read(&path).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }));
        assert!(
            std::error::Error::source(&err)
                .unwrap()
                .to_string()
                .contains("line 1")
        );
    }

    #[test]
    fn entries_without_image_names_are_found_by_repository() {
        let r: BuildResult =
            serde_json::from_str("{\"builds\":[{\"tag\":\"localhost:5001/myapp-api:1.2\"}]}")
                .unwrap();
        assert_eq!(
            r.find("myapp-api").unwrap().tag,
            "localhost:5001/myapp-api:1.2"
        );
        assert!(r.find("other").is_none());
    }

    #[test]
    fn version_tags_ignore_digests_and_registry_ports() {
        let tag = |t: &str| {
            Build {
                image_name: String::new(),
                tag: t.into(),
            }
            .version_tag()
            .to_string()
        };
        assert_eq!(tag(&format!("ghcr.io/org/op:v1.0.0@{DIGEST}")), "v1.0.0");
        assert_eq!(tag("myrepo/image:latest"), "latest");
        assert_eq!(tag("nocolon"), "nocolon");
        assert_eq!(tag("a:b:c@sha256:xyz"), "c");
        assert_eq!(tag("localhost:5001/app"), "localhost:5001/app");
    }
}
