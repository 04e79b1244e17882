//! Image references: one type, [`Reference`], checked against the grammar of the distribution
//! project (`github.com/distribution/reference`), which op makes where a reference enters (the
//! command line, skaffold.yaml, a build result, a label) and carries to the engine, skaffold and
//! the registry:
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
//! Inside this crate, a reference is also parsed as oci-client does ([`parse`]), for the client,
//! without oci-client's regular expression for the usual forms; and whether a registry is a
//! loopback one ([`is_loopback`]) is decided here.

use std::fmt;
use std::sync::LazyLock;

use oci_client::Reference as ClientReference;
use regex::Regex;

use crate::Error;

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
pub enum ReferenceError {
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

/// A parsed image reference. It is written (`Display`, and serialised) as it was given, less
/// nothing: `name[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                if !DIGEST.is_match(digest) {
                    return Err(ReferenceError::Digest(digest.to_string()));
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
                    return Err(ReferenceError::Tag(tag.to_string()));
                }
                (&rest[..colon], Some(tag.to_string()))
            }
            _ => (rest, None),
        };
        let (domain, path) = split_name(name, false)?;
        if path.is_empty() {
            return Err(ReferenceError::Empty);
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

    /// The registry op contacts for this reference, as oci-client resolves it: its domain, or
    /// `index.docker.io` for a Docker Hub name (no domain, `docker.io` or `index.docker.io`).
    pub fn registry(&self) -> &str {
        match self.domain.as_deref() {
            None | Some("docker.io" | "index.docker.io") => "index.docker.io",
            Some(domain) => domain,
        }
    }

    /// Whether the registry is a loopback one ([`is_loopback`]).
    pub fn is_loopback(&self) -> bool {
        is_loopback(self.registry())
    }

    /// The same repository with `tag` (and no digest).
    #[must_use]
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The image of the same repository that `digest` names (`name@digest`, no tag).
    #[must_use]
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

/// A reference equals the text it is written as.
impl PartialEq<str> for Reference {
    #[allow(
        clippy::cmp_owned,
        reason = "the text is what is compared; `*self == other` would come back here"
    )]
    fn eq(&self, other: &str) -> bool {
        self.to_string() == other
    }
}

impl PartialEq<&str> for Reference {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not an image reference: {e}"))
        })
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
fn split_name(name: &str, bare_domain: bool) -> Result<(Option<String>, String), ReferenceError> {
    if name.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(ReferenceError::TooLong(name.len()));
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
            return Err(ReferenceError::Domain(first.to_string()));
        }
        (Some(first.to_string()), rest.unwrap_or(""))
    } else {
        (None, name)
    };
    if !path.is_empty() {
        for component in path.split('/') {
            if !PATH_COMPONENT.is_match(component) {
                return Err(ReferenceError::Component(component.to_string()));
            }
        }
    }
    Ok((domain, path.to_string()))
}

/// Checks a repository prefix such as a default repository (`localhost:5001`, `ghcr.io/org`):
/// a name without tag or digest whose path may be empty.
pub fn validate_repository_prefix(text: &str) -> Result<(), ReferenceError> {
    split_name(text, true).map(|_| ())
}

/// Checks a tag.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    if TAG.is_match(tag) {
        Ok(())
    } else {
        Err(ReferenceError::Tag(tag.to_string()))
    }
}

/// Whether `text` has a tag or a digest (`app:1`, `app@sha256:…`), without checking the rest.
pub fn names_a_version(text: &str) -> bool {
    let last = text.rsplit('/').next().unwrap_or(text);
    last.contains([':', '@'])
}

/// Whether `host` (`name[:port]`) is a loopback registry, which is reached over plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let name = if host.starts_with('[') {
        host.trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name == "localhost" || name.ends_with(".localhost") || name == "::1" || name.starts_with("127.")
}

/// The registry host of `reference`, as oci-client resolves it.
pub fn registry_of(reference: &str) -> Result<String, Error> {
    Ok(parse(reference)?.resolve_registry().to_string())
}

/// Parses an image reference as oci-client does (`docker.io` and `library/` implied, `latest`
/// when there is neither tag nor digest).
pub fn parse(reference: &str) -> Result<ClientReference, Error> {
    // oci-client's parser compiles one large regular expression on first use: about 80 ms,
    // which every op process and every creator would pay. The forms op and the lifecycle meet
    // are parsed here, to the same value; anything else goes to oci-client.
    if let Some(parsed) = parse_common(reference) {
        return Ok(parsed);
    }
    reference.parse().map_err(|source| Error::BadReference {
        reference: reference.to_string(),
        source,
    })
}

/// `[domain/]path[:tag][@sha256:<64 hex>]`, checked against the distribution grammar, as
/// oci-client's `Reference`; `None` for anything else (IPv6 hosts, other digest algorithms,
/// upper-case hex, names too long), which oci-client then parses or refuses.
fn parse_common(reference: &str) -> Option<ClientReference> {
    if !reference.is_ascii() {
        return None;
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => {
            let hex = digest.strip_prefix("sha256:")?;
            let lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
            (hex.len() == 64 && hex.chars().all(lower_hex)).then_some(())?;
            (rest, Some(digest.to_string()))
        }
        None => (reference, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if !rest[colon..].contains('/') => {
            let tag = &rest[colon + 1..];
            let tag_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
            let first_ok = tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            (first_ok && tag.len() <= 128 && tag.chars().all(tag_char)).then_some(())?;
            (&rest[..colon], Some(tag.to_string()))
        }
        _ => (rest, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            is_domain(first).then_some(())?;
            (first, path)
        }
        _ => ("docker.io", name),
    };
    path.split('/').all(is_path_component).then_some(())?;
    let registry = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    if repository.len() > 255 {
        return None;
    }
    let registry = registry.to_string();
    Some(match (tag, digest) {
        (Some(tag), Some(digest)) => {
            ClientReference::with_tag_and_digest(registry, repository, tag, digest)
        }
        (None, Some(digest)) => ClientReference::with_digest(registry, repository, digest),
        (tag, None) => {
            ClientReference::with_tag(registry, repository, tag.unwrap_or("latest".into()))
        }
    })
}

/// `host[:port]`: dot-separated labels of letters, digits and inner `-`, and a numeric port.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `[a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*`.
fn is_path_component(component: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let separator = bytes[i..]
            .iter()
            .take_while(|b| matches!(b, b'.' | b'_' | b'-'))
            .count();
        let run = &component[i..i + separator];
        let allowed =
            matches!(run, "." | "_" | "__") || (!run.is_empty() && run.bytes().all(|b| b == b'-'));
        if !allowed {
            return false;
        }
        i += separator;
    }
}

/// `reference` without its tag and digest (`reg:5000/repo:tag@sha256:…` → `reg:5000/repo`).
pub fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
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
            Err(ReferenceError::Component("my_App".into()))
        );
        assert_eq!(
            Reference::parse("MyApp"),
            Err(ReferenceError::Component("MyApp".into()))
        );
        assert_eq!(
            Reference::parse("app:-x"),
            Err(ReferenceError::Tag("-x".into()))
        );
        assert_eq!(
            Reference::parse("app@sha256:xyz"),
            Err(ReferenceError::Digest("sha256:xyz".into()))
        );
        assert_eq!(
            Reference::parse("a//b"),
            Err(ReferenceError::Component(String::new()))
        );
        assert_eq!(
            Reference::parse("bad_host.io:x/app"),
            Err(ReferenceError::Domain("bad_host.io:x".into()))
        );
        assert!(matches!(
            Reference::parse(&"a".repeat(300)),
            Err(ReferenceError::TooLong(300))
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

    use crate::Registry;

    #[test]
    fn references_parse_as_oci_client_parses_them_without_its_regular_expression() {
        let digest = format!("sha256:{}", "ab12".repeat(16));
        let accepted = [
            "busybox".to_string(),
            "busybox:1.36".into(),
            "library/busybox".into(),
            "docker.io/busybox".into(),
            "index.docker.io/paketobuildpacks/run-jammy-base:latest".into(),
            "registry-1.docker.io/org/app".into(),
            "localhost/app".into(),
            "localhost:5001/op/builder:latest".into(),
            "localhost:5001".into(),
            "127.0.0.1:43211/static-site:latest".into(),
            "ghcr.io/octopilot/builder-jammy-base:0.3.1".into(),
            "Reg.Example.COM:443/a/b/c:v1_2.3-rc".into(),
            "europe-west1-docker.pkg.dev/proj/reg/my-app:v1".into(),
            "reg/a__b/c-d/e--f/g.h:_x".into(),
            format!("reg.example/app@{digest}"),
            format!("reg.example/app:v1@{digest}"),
            format!("app@{digest}"),
        ];
        for reference in &accepted {
            let expected: ClientReference = reference.parse().unwrap();
            assert_eq!(
                parse_common(reference).as_ref(),
                Some(&expected),
                "{reference}"
            );
        }
        let elsewhere = [
            "UPPER/app".to_string(),
            "app:".into(),
            "app:.hidden".into(),
            "a..b/app".into(),
            "reg.example/a___b".into(),
            "reg.example/a_-b".into(),
            "reg.example/-a".into(),
            "reg.example/a/".into(),
            "-reg.example/a".into(),
            "reg.example:port/a".into(),
            "[::1]:5000/app".into(),
            "app@sha512:abc".into(),
            format!("app@{}", digest.to_uppercase().replace("SHA256", "sha256")),
            format!("reg.example/{}", "a".repeat(256)),
            String::new(),
            "ünïcode/app".into(),
        ];
        for reference in &elsewhere {
            assert_eq!(parse_common(reference), None, "{reference}");
            // Either oci-client refuses it too, or it is parsed there (the slow way).
            if let Ok(slow) = reference.parse::<ClientReference>() {
                assert_eq!(parse(reference).unwrap(), slow, "{reference}");
            }
        }
    }

    #[test]
    fn repositories_lose_their_tag_and_digest_but_not_their_port() {
        assert_eq!(repository_of("reg:5000/a/b:1@sha256:abc"), "reg:5000/a/b");
        assert_eq!(repository_of("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(repository_of("app:latest"), "app");
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for host in [
            "localhost:5001",
            "127.0.0.1:5000",
            "localhost",
            "[::1]:5000",
            "registry.localhost:80",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["ghcr.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
        // Nothing listens there: plain HTTP, as before (their requests report the errors).
        let transports = Registry::transports(
            ["127.0.0.1:5000/a:b", "ghcr.io/x/y"],
            &["insecure.example".into()],
        );
        assert_eq!(
            transports.plain_http,
            ["insecure.example", "127.0.0.1:5000"]
        );
        assert!(transports.unverified.is_empty());
    }
}
