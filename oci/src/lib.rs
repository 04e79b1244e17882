//! op-oci: the OCI layer op and op-lifecycle share, and the only code that uses oci-client:
//! registries over the OCI distribution API (manifests, configs and blobs, read and written as
//! raw bytes so that digests never change on the way), image references and platforms (the one
//! type of each that op and the lifecycle use), the image model, the
//! config editor, credentials, CA certificates and deterministic tar layers.
//!
//! - Credentials come from a [`Keychain`]: the `CNB_REGISTRY_AUTH` JSON (`{"host": "Basic …"}`,
//!   `Bearer …`, `X-Identity …`), which platforms build on the host.
//! - Registries on a loopback address (`localhost`, `127.0.0.0/8`, `::1`) and those named
//!   insecure are reached over plain HTTP, as go-containerregistry does for the reference
//!   lifecycle; everything else over HTTPS.
//! - Blobs already in the target repository are not uploaded again; blobs of another repository
//!   of the same registry are mounted (one request), and only copied when the registry refuses
//!   the mount or they live in another registry: streamed from one registry to the other as
//!   they arrive, so memory does not grow with their size. New blobs go up in one request.
//! - Credentials are handed to oci-client once per registry; it gets a token per repository and
//!   operation on the first request that needs one and reuses it while it is valid. A registry
//!   that asks for no credentials (whether op has some for it or not) is asked `GET /v2/` once,
//!   as go-containerregistry does; its blob and manifest writes then go through a second client
//!   that holds no credentials (oci-client would ask again before each of them). Identity
//!   tokens are exchanged for access tokens by op-oci itself (the `identity` module).
//! - The system's CA certificates are read once per process ([`system_roots`]).
//! - Indexes of platforms are written with a `platform` per entry ([`IndexEntry`]).
//! - Layers are deterministic tars ([`archive`]), byte for byte as the reference lifecycle
//!   writes them.

pub mod archive;
mod client;
mod config;
mod error;
mod identity;
mod image;
mod keychain;
mod platform;
pub mod reference;
mod tls;

use sha2::{Digest as _, Sha256};

pub use client::{IndexEntry, LayerSource, Registry, Transports, Written};
pub use config::ConfigEditor;
pub use error::Error;
pub use image::{Descriptor, Image, Manifest};
pub use keychain::Keychain;
pub use platform::{Error as PlatformError, Platform};
pub use reference::{Reference, ReferenceError, is_loopback, parse, registry_of, repository_of};
pub use tls::{
    SSL_CERT_FILE, has_system_roots, pem_bundle, pem_certificates, system_roots,
    write_builtin_roots,
};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}
