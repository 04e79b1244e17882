//! The names and labels of what a build creates in the engine, and the creator's network.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use crate::reference::Reference;
use crate::registry;

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
pub fn cache_volume(image: &str, target: &str) -> String {
    let repository = Reference::parse(target).map_or_else(|_| target.to_string(), |r| r.name());
    let hex = short_hash(&format!("{repository}\n{image}"), 6);
    let short: String = slug(&repository)
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("op-cache-{}-{hex}", short.trim_start_matches('-'))
}

/// The network of the creator: the user's choice, else `host` when a registry it talks to is
/// on a loopback address (so `localhost:5001` means the same inside and out).
pub fn network_for(chosen: Option<&str>, references: &[&str]) -> Option<String> {
    if let Some(network) = chosen.filter(|n| !n.is_empty()) {
        return Some(network.to_string());
    }
    let loopback = references
        .iter()
        .any(|r| registry::host_of(r).is_some_and(|h| op_oci::is_loopback(&h)));
    loopback.then(|| "host".to_string())
}
