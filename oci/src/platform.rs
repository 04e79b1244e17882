//! Platforms as `--platform` takes them (`os/arch[/variant]`, comma-separated), as image
//! configs and indexes name them, and as skaffold's `--platform` is given them: one type from
//! where a platform enters (a flag, an index, an image config) to where it leaves.

use std::fmt;

/// One platform: `linux/amd64`, `linux/arm64/v8`, …
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(into = "String")]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// A `--platform` value that is not one.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a platform (os/arch or os/arch/variant, e.g. linux/amd64)")]
pub struct Error {
    pub value: String,
}

impl Platform {
    /// `os`/`architecture` without a variant.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self {
            os: os.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// This machine's platform, as image configs name it (`linux/amd64`, `linux/arm64`): the
    /// one a multi-platform image is resolved for.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Self::new("linux", architecture)
    }

    /// `os/arch[/variant]`, trimmed.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = || Error {
            value: value.to_string(),
        };
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        let parts: Vec<&str> = value.trim().split('/').collect();
        match parts.as_slice() {
            [os, arch] if word(os) && word(arch) => Ok(Self {
                os: (*os).to_string(),
                architecture: (*arch).to_string(),
                variant: None,
            }),
            [os, arch, variant] if word(os) && word(arch) && word(variant) => Ok(Self {
                os: (*os).to_string(),
                architecture: (*arch).to_string(),
                variant: Some((*variant).to_string()),
            }),
            _ => Err(bad()),
        }
    }

    /// Every platform of `--platform` values (each may be a comma-separated list), in order,
    /// each once; empty entries are ignored.
    pub fn parse_list<S: AsRef<str>>(values: &[S]) -> Result<Vec<Self>, Error> {
        let mut all: Vec<Self> = Vec::new();
        for entry in values
            .iter()
            .flat_map(|v| v.as_ref().split(','))
            .filter(|e| !e.trim().is_empty())
        {
            let platform = Self::parse(entry)?;
            if !all.contains(&platform) {
                all.push(platform);
            }
        }
        Ok(all)
    }

    /// Whether an image config's `os` and `architecture` are this platform's (the variant is
    /// not compared: engines do not always record it).
    pub fn matches(&self, os: &str, architecture: &str) -> bool {
        self.os == os && self.architecture == architecture
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl From<Platform> for String {
    fn from(platform: Platform) -> Self {
        platform.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_trimmed_checked_and_listed_once() {
        let all = Platform::parse_list(&["linux/amd64, linux/arm64/v8", "linux/amd64,"]).unwrap();
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["linux/amd64", "linux/arm64/v8"]);
        assert!(all[0].matches("linux", "amd64"));
        for bad in [
            "linux",
            "linux/",
            "Linux/AMD64",
            "linux/amd64/v8/x",
            "linux amd64",
        ] {
            assert_eq!(
                Platform::parse(bad).unwrap_err().to_string(),
                format!("`{bad}` is not a platform (os/arch or os/arch/variant, e.g. linux/amd64)")
            );
        }
        assert!(Platform::parse_list::<&str>(&[]).unwrap().is_empty());
    }
}
