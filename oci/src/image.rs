//! The image model: descriptors, manifests, images (a manifest and its config), and the
//! platform multi-platform images are resolved for.

use serde_json::Value;

use crate::{DOCKER_MANIFEST, repository_of};

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }

    /// The layer descriptor with the media type of the same kind of layer in Docker's family
    /// (`docker`) or OCI's: a manifest names its layers in its own family, as the real
    /// lifecycle's imgutil writes them, and containers/image (skopeo, podman, CRI-O) refuses a
    /// Docker manifest with OCI layer types. A type with no counterpart (zstd has none in
    /// Docker's family) is kept.
    #[must_use]
    pub fn in_family(mut self, docker: bool) -> Self {
        if let Some((oci, dock)) = LAYER_TYPES
            .iter()
            .find(|(oci, dock)| self.media_type == *oci || self.media_type == *dock)
        {
            self.media_type = if docker { dock } else { oci }.to_string();
        }
        self
    }

    fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            media_type: value.get("mediaType")?.as_str()?.to_string(),
            digest: value.get("digest")?.as_str()?.to_string(),
            size: value.get("size")?.as_u64()?,
        })
    }
}

/// Layer media types, OCI's and Docker's for the same kind of layer.
const LAYER_TYPES: [(&str, &str); 3] = [
    (crate::OCI_LAYER, crate::DOCKER_LAYER),
    (
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar",
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ),
];

/// A manifest as the registry serves it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
    pub json: Value,
}

impl Manifest {
    /// The blobs of an image manifest a copy of it moves: its config and its layers, but not
    /// foreign (non-distributable) layers, which registries leave where their URLs say.
    pub fn blobs(&self) -> Vec<Descriptor> {
        let layers = self.json["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| {
                !l["mediaType"]
                    .as_str()
                    .is_some_and(|t| t.contains("foreign") || t.contains("nondistributable"))
            });
        self.json
            .get("config")
            .into_iter()
            .chain(layers)
            .filter_map(Descriptor::from_json)
            .collect()
    }
}

/// An image: its manifest and config.
#[derive(Clone, Debug)]
pub struct Image {
    /// The name the image was asked for (`reg/repo:tag`).
    pub reference: String,
    pub manifest: Manifest,
    pub config: Value,
    pub config_digest: String,
}

impl Image {
    /// `<repository>@<manifest digest>`.
    pub fn digest_reference(&self) -> String {
        format!(
            "{}@{}",
            repository_of(&self.reference),
            self.manifest.digest
        )
    }

    /// The `os` and `architecture` its config names (empty when it names none).
    pub fn platform(&self) -> (&str, &str) {
        let field = |name: &str| self.config.get(name).and_then(Value::as_str).unwrap_or("");
        (field("os"), field("architecture"))
    }

    /// Whether the image uses Docker's media types (else OCI's).
    pub fn is_docker(&self) -> bool {
        self.manifest.media_type == DOCKER_MANIFEST
    }

    /// The layers of the manifest.
    pub fn layers(&self) -> Vec<Descriptor> {
        self.manifest.json["layers"]
            .as_array()
            .map(|l| l.iter().filter_map(Descriptor::from_json).collect())
            .unwrap_or_default()
    }

    /// `rootfs.diff_ids` of the config.
    pub fn diff_ids(&self) -> Vec<String> {
        self.config["rootfs"]["diff_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A label of the config.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config["config"]["Labels"]
            .get(key)
            .and_then(Value::as_str)
    }

    /// A variable of the config's `Env`.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.config["config"]["Env"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == name).then_some(v)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OCI_MANIFEST;

    #[test]
    fn layer_types_follow_the_manifest_s_family() {
        let layer = |media_type: &str| Descriptor {
            media_type: media_type.into(),
            digest: "sha256:d".into(),
            size: 1,
        };
        for (oci, docker) in LAYER_TYPES {
            for from in [oci, docker] {
                assert_eq!(layer(from).in_family(true).media_type, docker);
                assert_eq!(layer(from).in_family(false).media_type, oci);
            }
        }
        let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
        assert_eq!(layer(zstd).in_family(true).media_type, zstd);
        assert_eq!(layer(zstd).in_family(false), layer(zstd));
    }

    #[test]
    fn digest_references_drop_the_tag() {
        let image = Image {
            reference: "127.0.0.1:5000/team/app:latest".into(),
            manifest: Manifest {
                bytes: Vec::new(),
                digest: "sha256:abc".into(),
                media_type: OCI_MANIFEST.into(),
                json: Value::Null,
            },
            config: serde_json::json!({"config": {"Env": ["A=1", "CNB_USER_ID=1000"], "Labels": {"l": "v"}}, "rootfs": {"diff_ids": ["sha256:d"]}}),
            config_digest: "sha256:c".into(),
        };
        assert_eq!(
            image.digest_reference(),
            "127.0.0.1:5000/team/app@sha256:abc"
        );
        assert_eq!(image.env("CNB_USER_ID"), Some("1000"));
        assert_eq!(image.label("l"), Some("v"));
        assert_eq!(image.diff_ids(), ["sha256:d"]);
    }
}
