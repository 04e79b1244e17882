//! Image references: the registry a reference names (and whether it is a loopback one), its
//! repository, and parsing it as oci-client does, without oci-client's regular expression for
//! the usual forms.

use oci_client::Reference;

use crate::Error;

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

/// The registry host of `reference`.
pub fn registry_of(reference: &str) -> Result<String, Error> {
    Ok(parse(reference)?.resolve_registry().to_string())
}

/// Parses an image reference as oci-client does (`docker.io` and `library/` implied, `latest`
/// when there is neither tag nor digest).
pub fn parse(reference: &str) -> Result<Reference, Error> {
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
fn parse_common(reference: &str) -> Option<Reference> {
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
            Reference::with_tag_and_digest(registry, repository, tag, digest)
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or("latest".into())),
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
            let expected: Reference = reference.parse().unwrap();
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
            if let Ok(slow) = reference.parse::<Reference>() {
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
        let hosts = Registry::plain_http_hosts(
            ["127.0.0.1:5000/a:b", "ghcr.io/x/y"],
            &["insecure.example".into()],
        );
        assert_eq!(hosts, ["insecure.example", "127.0.0.1:5000"]);
    }
}
