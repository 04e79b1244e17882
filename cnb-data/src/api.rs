//! Platform and Buildpack API versions.

use std::fmt;

use crate::exit::{self, Error};

/// The Platform API versions this lifecycle implements.
pub const PLATFORM_APIS: [Version; 4] = [
    Version(0, 12),
    Version(0, 13),
    Version(0, 14),
    Version(0, 15),
];

/// The Buildpack API versions this lifecycle implements.
pub const BUILDPACK_APIS: [Version; 6] = [
    Version(0, 7),
    Version(0, 8),
    Version(0, 9),
    Version(0, 10),
    Version(0, 11),
    Version(0, 12),
];

/// An API version `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32);

impl Version {
    /// Parses `0.12` (a `v` prefix is accepted, as the spec allows).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let (major, minor) = text.split_once('.')?;
        Some(Self(major.parse().ok()?, minor.parse().ok()?))
    }

    /// Whether this version is `other` or newer.
    pub fn at_least(self, other: Version) -> bool {
        self >= other
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn list(versions: &[Version]) -> String {
    versions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Platform API of `CNB_PLATFORM_API`, which must be set and supported (exit 11 otherwise).
pub fn platform_api(value: Option<&str>) -> Result<Version, Error> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::new(
                exit::INCOMPATIBLE_PLATFORM_API,
                format!(
                    "CNB_PLATFORM_API is not set; this lifecycle supports Platform API {}",
                    list(&PLATFORM_APIS)
                ),
            )
        })?;
    match Version::parse(value) {
        Some(v) if PLATFORM_APIS.contains(&v) => Ok(v),
        _ => Err(Error::new(
            exit::INCOMPATIBLE_PLATFORM_API,
            format!(
                "platform API version '{value}' is incompatible with the lifecycle; it supports {}",
                list(&PLATFORM_APIS)
            ),
        )),
    }
}

/// The Buildpack API a buildpack declares, which must be supported (exit 12 otherwise).
pub fn buildpack_api(id: &str, value: &str) -> Result<Version, Error> {
    match Version::parse(value) {
        Some(v) if BUILDPACK_APIS.contains(&v) => Ok(v),
        _ => Err(Error::new(
            exit::INCOMPATIBLE_BUILDPACK_API,
            format!(
                "buildpack API version '{value}' of buildpack '{id}' is incompatible with the lifecycle; it supports {}",
                list(&BUILDPACK_APIS)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_api_must_be_set_and_supported() {
        assert_eq!(platform_api(Some("0.13")).unwrap(), Version(0, 13));
        assert_eq!(platform_api(Some("v0.15")).unwrap(), Version(0, 15));
        assert_eq!(
            platform_api(None).unwrap_err().code,
            exit::INCOMPATIBLE_PLATFORM_API
        );
        assert_eq!(
            platform_api(Some("")).unwrap_err().code,
            exit::INCOMPATIBLE_PLATFORM_API
        );
        assert_eq!(
            platform_api(Some("0.7")).unwrap_err().code,
            exit::INCOMPATIBLE_PLATFORM_API
        );
        assert_eq!(
            platform_api(Some("banana")).unwrap_err().code,
            exit::INCOMPATIBLE_PLATFORM_API
        );
    }

    #[test]
    fn buildpack_api_must_be_supported() {
        assert_eq!(buildpack_api("a", "0.10").unwrap(), Version(0, 10));
        assert_eq!(buildpack_api("a", "0.7").unwrap(), Version(0, 7));
        assert_eq!(buildpack_api("a", "0.8").unwrap(), Version(0, 8));
        let err = buildpack_api("a", "0.6").unwrap_err();
        assert_eq!(err.code, exit::INCOMPATIBLE_BUILDPACK_API);
        assert!(err.message.contains("'a'"));
        assert!(Version(0, 12).at_least(Version(0, 9)));
        assert!(!Version(0, 9).at_least(Version(0, 10)));
    }
}
