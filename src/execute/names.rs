//! The names and labels of what a build creates in the engine, and the creator's network.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use op_oci::Reference;

/// Labels every per-build container and volume carries, besides [`LABEL_KIND`] = `build`.
pub const LABEL_BUILD_ID: &str = "io.octopilot.op.build-id";
pub const LABEL_ARTIFACT: &str = "io.octopilot.op.artifact";
/// The reference the build publishes.
pub const LABEL_TARGET: &str = "io.octopilot.op.target";
/// The label of cache volumes (which stay): the repository they cache for.
pub const LABEL_CACHE_FOR: &str = "io.octopilot.op.cache-for";

/// A name part made of what the engine accepts in names.
pub(super) fn slug(text: &str) -> String {
    let slug: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// The cache image of artifact `image` when builds cache in a registry (`--cache-image BASE`):
/// `BASE`'s repository, tagged with the artifact (`<BASE's tag>-<artifact>` when `BASE` has a
/// tag), so that the artifacts of one build do not overwrite each other's cache. `BASE` is
/// checked by [`check_cache_image`].
pub fn cache_image(base: &Reference, image: &str) -> Reference {
    let artifact = slug(image);
    let tag = match &base.tag {
        Some(tag) => format!("{tag}-{artifact}"),
        None => artifact,
    };
    let tag: String = tag.chars().take(128).collect();
    base.with_tag(&tag)
}

/// `--cache-image` must name a repository (and may name a tag), not a digest: the builds write
/// it. The reference, parsed.
pub fn check_cache_image(base: &str) -> Result<Reference, String> {
    match Reference::parse(base) {
        Ok(parsed) if parsed.digest.is_some() => Err(format!(
            "`{base}` names a digest; the cache image is written, so it needs a repository (and maybe a tag)"
        )),
        Ok(parsed) => Ok(parsed),
        Err(e) => Err(format!("`{base}` is not an image reference: {e}")),
    }
}

/// The first `bytes` bytes of the SHA-256 of `text`, in hex.
pub(super) fn short_hash(text: &str, bytes: usize) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(bytes)
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The cache volume of artifact `image` published to `target`: stable across runs, one per
/// artifact and target repository (as pack's `pack-cache-<name>-<hash>.build`).
pub fn cache_volume(image: &str, target: &Reference) -> String {
    cache_volume_for(image, target, None)
}

/// [`cache_volume`] for one platform of a multi-platform build (`variant`, e.g.
/// `linux-arm64`): each platform's layers are its own.
pub(super) fn cache_volume_for(image: &str, target: &Reference, variant: Option<&str>) -> String {
    let repository = target.name();
    let hex = match variant {
        Some(variant) => short_hash(&format!("{repository}\n{image}\n{variant}"), 6),
        None => short_hash(&format!("{repository}\n{image}"), 6),
    };
    let short: String = slug(&repository)
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let short = short.trim_start_matches('-');
    match variant {
        Some(variant) => format!("op-cache-{short}-{variant}-{hex}"),
        None => format!("op-cache-{short}-{hex}"),
    }
}

/// The network of the creator: the user's choice, else `host` when a registry it talks to is
/// on a loopback address (so `localhost:5001` means the same inside and out).
pub fn network_for(chosen: Option<&str>, references: &[&Reference]) -> Option<String> {
    if let Some(network) = chosen.filter(|n| !n.is_empty()) {
        return Some(network.to_string());
    }
    loopback_registry(references).map(|_| "host".to_string())
}

/// The first registry of `references` on a loopback address.
pub(super) fn loopback_registry(references: &[&Reference]) -> Option<String> {
    references
        .iter()
        .find(|r| r.is_loopback())
        .map(|r| r.registry().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_artifact_has_its_own_cache_image_and_a_digest_is_refused() {
        assert_eq!(
            cache_image(&Reference::parse("ghcr.io/acme/cache").unwrap(), "api"),
            "ghcr.io/acme/cache:api"
        );
        assert_eq!(
            cache_image(
                &Reference::parse("127.0.0.1:5000/cache:ci").unwrap(),
                "ghcr.io/acme/Web"
            ),
            "127.0.0.1:5000/cache:ci-ghcr-io-acme-web"
        );
        assert!(check_cache_image("ghcr.io/acme/cache:ci").is_ok());
        let digest = format!("ghcr.io/acme/cache@sha256:{}", "a".repeat(64));
        assert!(
            check_cache_image(&digest)
                .unwrap_err()
                .contains("names a digest")
        );
        assert!(check_cache_image("Not A Ref").is_err());
    }
}
