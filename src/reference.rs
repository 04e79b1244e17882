//! Image references, checked against the grammar of the distribution project
//! (`github.com/distribution/reference`):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component ( "/" path-component )*
//! domain     := host [ ":" port ]      (a first component with "." or ":", or "localhost")
//! path-comp. := [a-z0-9]+ ( ( [_.] | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" hex      (sha256: 64 lower-case hex digits)
//! ```
//!
//! op checks every name it forms before anything talks to a registry, so a typo in
//! `skaffold.yaml` is reported against the artifact that has it, not as a registry error later.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

static PATH_COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*$")
        .expect("the path-component pattern is valid")
});
static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$",
    )
    .expect("the domain pattern is valid")
});
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("the tag pattern is valid")
});
static DIGEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
        .expect("the digest pattern is valid")
});

/// The longest repository name registries accept.
pub const MAX_NAME_LENGTH: usize = 255;

/// Why a reference is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("it is empty")]
    Empty,
    #[error("`{0}` is not a valid registry host")]
    Domain(String),
    #[error(
        "`{0}` is not a valid path component (lower-case letters, digits and `.`, `_`, `__`, `-` between them)"
    )]
    Component(String),
    #[error(
        "`{0}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`)"
    )]
    Tag(String),
    #[error("`{0}` is not a valid digest")]
    Digest(String),
    #[error("it is {0} characters long; registries accept at most 255")]
    TooLong(usize),
}

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The registry host (and port), when the name has one.
    pub domain: Option<String>,
    /// The repository path inside the registry.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `text` as `name[:tag][@digest]`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                if !DIGEST.is_match(digest) {
                    return Err(Error::Digest(digest.to_string()));
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag is what follows the last ':' when that ':' comes after the last '/', so that the
        // port of a registry (`localhost:5001/app`) is not mistaken for one.
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if rest[colon..].find('/').is_none() => {
                let tag = &rest[colon + 1..];
                if !TAG.is_match(tag) {
                    return Err(Error::Tag(tag.to_string()));
                }
                (&rest[..colon], Some(tag.to_string()))
            }
            _ => (rest, None),
        };
        let (domain, path) = split_name(name, false)?;
        if path.is_empty() {
            return Err(Error::Empty);
        }
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `domain/path`, without tag or digest.
    pub fn name(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// Whether a tag or digest is part of the reference.
    pub fn is_qualified(&self) -> bool {
        self.tag.is_some() || self.digest.is_some()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits `name` into its registry host (if the first component is one) and its path, checking
/// both. As in docker, the first of several components is a host when it has a `.` or a `:`, is
/// `localhost`, or has upper-case letters. A name of one component is a host only when
/// `bare_domain` allows it (a default repository may be a bare registry, `localhost:5001`).
fn split_name(name: &str, bare_domain: bool) -> Result<(Option<String>, String), Error> {
    if name.is_empty() {
        return Err(Error::Empty);
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(Error::TooLong(name.len()));
    }
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let looks_like_domain = first.contains(['.', ':']) || first == "localhost";
    let is_domain = match rest {
        Some(_) => looks_like_domain || first.chars().any(|c| c.is_ascii_uppercase()),
        None => bare_domain && looks_like_domain,
    };
    let (domain, path) = if is_domain {
        if !DOMAIN.is_match(first) {
            return Err(Error::Domain(first.to_string()));
        }
        (Some(first.to_string()), rest.unwrap_or(""))
    } else {
        (None, name)
    };
    if !path.is_empty() {
        for component in path.split('/') {
            if !PATH_COMPONENT.is_match(component) {
                return Err(Error::Component(component.to_string()));
            }
        }
    }
    Ok((domain, path.to_string()))
}

/// Checks a repository prefix such as a default repository (`localhost:5001`, `ghcr.io/org`):
/// a name without tag or digest whose path may be empty.
pub fn validate_repository_prefix(text: &str) -> Result<(), Error> {
    split_name(text, true).map(|_| ())
}

/// Checks a tag.
pub fn validate_tag(tag: &str) -> Result<(), Error> {
    if TAG.is_match(tag) {
        Ok(())
    } else {
        Err(Error::Tag(tag.to_string()))
    }
}

/// Whether `text` has a tag or a digest (`app:1`, `app@sha256:…`), without checking the rest.
pub fn names_a_version(text: &str) -> bool {
    let last = text.rsplit('/').next().unwrap_or(text);
    last.contains([':', '@'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_ports_tags_and_digests() {
        let r = Reference::parse("localhost:5001/team/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(r.domain.as_deref(), Some("localhost:5001"));
        assert_eq!(r.path, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert!(r.digest.is_some());
        let r = Reference::parse("localhost:5001/app").unwrap();
        assert_eq!((r.domain.as_deref(), r.tag), (Some("localhost:5001"), None));
        let r = Reference::parse("busybox").unwrap();
        assert_eq!((r.domain, r.path.as_str()), (None, "busybox"));
        assert_eq!(
            Reference::parse("ghcr.io/o/b:latest").unwrap().to_string(),
            "ghcr.io/o/b:latest"
        );
    }

    #[test]
    fn rejects_what_registries_reject() {
        assert_eq!(
            Reference::parse("my_App"),
            Err(Error::Component("my_App".into()))
        );
        assert_eq!(
            Reference::parse("MyApp"),
            Err(Error::Component("MyApp".into()))
        );
        assert_eq!(Reference::parse("app:-x"), Err(Error::Tag("-x".into())));
        assert_eq!(
            Reference::parse("app@sha256:xyz"),
            Err(Error::Digest("sha256:xyz".into()))
        );
        assert_eq!(
            Reference::parse("a//b"),
            Err(Error::Component(String::new()))
        );
        assert_eq!(
            Reference::parse("bad_host.io:x/app"),
            Err(Error::Domain("bad_host.io:x".into()))
        );
        assert!(matches!(
            Reference::parse(&"a".repeat(300)),
            Err(Error::TooLong(300))
        ));
    }

    #[test]
    fn repository_prefixes_may_be_bare_registries() {
        for ok in [
            "localhost:5001",
            "ghcr.io/octopilot",
            "127.0.0.1:5001/a/b",
            "myorg",
            "[::1]:5000",
        ] {
            assert_eq!(validate_repository_prefix(ok), Ok(()), "{ok}");
        }
        assert!(validate_repository_prefix("ghcr.io/Org").is_err());
        assert!(validate_repository_prefix("").is_err());
    }

    #[test]
    fn recognises_versions_after_the_last_slash_only() {
        assert!(names_a_version("app:1"));
        assert!(names_a_version("a/app@sha256:x"));
        assert!(!names_a_version("localhost:5001/app"));
        assert!(validate_tag("v1.2.3_x").is_ok());
        assert!(validate_tag("71/merge").is_err());
    }
}
