//! Registries, over the OCI distribution API (oci-client): manifests, configs and blobs, read and
//! written as raw bytes so that digests never change on the way.
//!
//! - Credentials come from a [`Keychain`]: the `CNB_REGISTRY_AUTH` JSON (`{"host": "Basic …"}`),
//!   which platforms build on the host.
//! - Registries on a loopback address (`localhost`, `127.0.0.0/8`, `::1`) and those named
//!   insecure are reached over plain HTTP, as go-containerregistry does for the reference
//!   lifecycle; everything else over HTTPS.
//! - Blobs already in the target repository are not uploaded again; blobs of another repository
//!   of the same registry are mounted, and only copied (streamed through) when the registry
//!   refuses the mount or they live in another registry. New blobs go up in one request.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What went wrong with a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{reference}` is not an image reference")]
    BadReference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },
    #[error("Failed to {action} `{reference}`")]
    Registry {
        action: String,
        reference: String,
        #[source]
        source: OciDistributionError,
    },
    #[error("This system has no CA certificates, which the registry client needs")]
    NoRoots,
    #[error("Failed to set up a registry client")]
    Client {
        #[source]
        source: OciDistributionError,
    },
    #[error("`{reference}` is not a usable image: {problem}")]
    Invalid { reference: String, problem: String },
}

impl Error {
    /// Whether the registry refused the credentials (or their absence).
    pub fn is_unauthorized(&self) -> bool {
        match self {
            Error::Registry { source, .. } => match source {
                OciDistributionError::UnauthorizedError { .. }
                | OciDistributionError::AuthenticationFailure(_) => true,
                OciDistributionError::RegistryError { envelope, .. } => envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
                _ => false,
            },
            _ => false,
        }
    }
}

fn not_found(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
            )
        }),
        _ => false,
    }
}

/// Credentials by registry host.
#[derive(Clone, Default)]
pub struct Keychain {
    entries: BTreeMap<String, RegistryAuth>,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets themselves.
        f.debug_struct("Keychain")
            .field("registries", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keychain {
    /// Parses `CNB_REGISTRY_AUTH`: a JSON object of registry → `Authorization` value
    /// (`Basic <base64 user:pass>` or `Bearer <token>`). Keys may carry a scheme and a path,
    /// which are ignored.
    pub fn from_cnb_registry_auth(json: &str) -> Result<Self, String> {
        let map: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| format!("CNB_REGISTRY_AUTH is not a JSON object of strings: {e}"))?;
        let mut entries = BTreeMap::new();
        for (key, header) in map {
            let host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or(host).to_string();
            let (scheme, value) = header.split_once(' ').unwrap_or((header.as_str(), ""));
            let auth = match scheme {
                "Basic" => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(value.trim())
                        .ok()
                        .and_then(|d| String::from_utf8(d).ok())
                        .ok_or_else(|| format!("CNB_REGISTRY_AUTH: the Basic credentials of `{host}` are not base64 `user:password`"))?;
                    let (user, password) =
                        decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
                    RegistryAuth::Basic(user.to_string(), password.to_string())
                }
                "Bearer" => RegistryAuth::Bearer(value.trim().to_string()),
                other => {
                    return Err(format!(
                        "CNB_REGISTRY_AUTH: the `{other}` credentials of `{host}` are not supported (use Basic or Bearer)"
                    ));
                }
            };
            entries.insert(host, auth);
        }
        Ok(Self { entries })
    }

    /// The credentials for `registry` (anonymous when there are none). Docker Hub's names are
    /// treated as one.
    pub fn auth_for(&self, registry: &str) -> RegistryAuth {
        let hub = ["index.docker.io", "docker.io", "registry-1.docker.io"];
        let candidates: Vec<&str> = if hub.contains(&registry) {
            hub.to_vec()
        } else {
            vec![registry]
        };
        candidates
            .iter()
            .find_map(|r| self.entries.get(*r).cloned())
            .unwrap_or(RegistryAuth::Anonymous)
    }
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

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

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

    fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            media_type: value.get("mediaType")?.as_str()?.to_string(),
            digest: value.get("digest")?.as_str()?.to_string(),
            size: value.get("size")?.as_u64()?,
        })
    }
}

/// A manifest as the registry serves it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
    pub json: Value,
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

/// Edits an image config (the JSON the manifest's `config` names), keeping what it does not
/// touch: the exporter builds the app image's on the run image's, `op builder create` the
/// builder's on the build image's.
#[derive(Clone, Debug)]
pub struct ConfigEditor {
    config: Value,
}

impl ConfigEditor {
    /// Starts from `base` (a config with or without its `config` section).
    pub fn new(base: &Value) -> Self {
        let mut config = if base.is_object() {
            base.clone()
        } else {
            serde_json::json!({})
        };
        if !config.get("config").is_some_and(Value::is_object) {
            config["config"] = serde_json::json!({});
        }
        Self { config }
    }

    fn env_list(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A variable of `Env`.
    pub fn env(&self, name: &str) -> Option<String> {
        self.env_list()
            .into_iter()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    /// Sets a variable of `Env` (replacing it where it was, else at the end), as the reference
    /// lifecycle's image library does.
    pub fn set_env(&mut self, name: &str, value: &str) {
        let mut env = self.env_list();
        let entry = format!("{name}={value}");
        match env
            .iter_mut()
            .find(|kv| kv.split_once('=').map(|(k, _)| k) == Some(name))
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
        self.config["config"]["Env"] = serde_json::json!(env);
    }

    /// Sets a field of the `config` section (`User`, `WorkingDir`, `Entrypoint`, …).
    pub fn set(&mut self, field: &str, value: Value) {
        self.config["config"][field] = value;
    }

    /// Adds (or replaces) labels.
    pub fn add_labels<K: Into<String>, V: Into<String>>(
        &mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) {
        let mut all: BTreeMap<String, Value> = self.config["config"]["Labels"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        for (key, value) in labels {
            all.insert(key.into(), Value::String(value.into()));
        }
        self.config["config"]["Labels"] = serde_json::json!(all);
    }

    /// Appends layers (`diffID`, history line) and sets `created` for the image and its new
    /// history entries.
    pub fn append_layers<'a>(
        &mut self,
        created: &str,
        layers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut history: Vec<Value> = self.config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut diff_ids: Vec<Value> = self.config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (diff_id, created_by) in layers {
            history.push(serde_json::json!({ "created": created, "created_by": created_by }));
            diff_ids.push(serde_json::json!(diff_id));
        }
        self.config["history"] = serde_json::json!(history);
        self.config["rootfs"] = serde_json::json!({ "type": "layers", "diff_ids": diff_ids });
        self.config["created"] = serde_json::json!(created);
    }

    /// The edited config.
    pub fn finish(self) -> Value {
        self.config
    }
}

/// The platform a multi-platform image is resolved for: this machine's.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    };
    ("linux", arch)
}

/// The variable that names a PEM file of CA certificates, for rustls as for OpenSSL.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// Whether the system has CA certificates (those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when they
/// are set). A busybox image, or a bare CI runner, has none.
/// The bundle is read once per process: the creator asks at start-up and again when it makes
/// its client.
pub fn has_system_roots() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty())
}

/// Writes the Mozilla root certificates op-lifecycle carries to a PEM file in the temporary
/// directory (once: the name is derived from the contents) and returns its path, for a process
/// to run again with [`SSL_CERT_FILE`] naming it.
pub fn write_builtin_roots() -> std::io::Result<std::path::PathBuf> {
    let mut pem = String::new();
    for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let encoded = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let digest = sha256(pem.as_bytes());
    let name = format!("op-lifecycle-ca-{}.pem", &digest["sha256:".len()..][..16]);
    let path = std::env::temp_dir().join(name);
    let readable = fs_err::metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt as _;
        m.permissions().mode() & 0o444 == 0o444
    });
    if !readable || fs_err::read(&path).ok().as_deref() != Some(pem.as_bytes()) {
        // Readable by the build user the creator becomes.
        let mut file = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(std::env::temp_dir())?;
        std::io::Write::write_all(&mut file, pem.as_bytes())?;
        file.persist(&path).map_err(|e| e.error)?;
    }
    Ok(path)
}

/// A client for any number of registries.
pub struct Registry {
    client: Client,
    keychain: Keychain,
}

impl Registry {
    /// A client that uses plain HTTP for the hosts in `plain_http` (add [`is_loopback`] hosts and
    /// insecure registries there) and HTTPS elsewhere.
    pub fn new(plain_http: Vec<String>, keychain: Keychain) -> Result<Self, Error> {
        // oci-client always builds a default HTTP client too, which panics without CA
        // certificates: refuse first.
        if !has_system_roots() {
            return Err(Error::NoRoots);
        }
        let config = ClientConfig {
            protocol: if plain_http.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(plain_http)
            },
            // One PUT per blob (as go-containerregistry streams one PATCH): chunked uploads
            // make the registry save and reload its hash state for every 4 MiB.
            use_monolithic_push: true,
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|source| Error::Client { source })?;
        Ok(Self { client, keychain })
    }

    /// The hosts of `references` that must be reached over plain HTTP: loopback ones, and those
    /// in `insecure`.
    pub fn plain_http_hosts<'a>(
        references: impl IntoIterator<Item = &'a str>,
        insecure: &[String],
    ) -> Vec<String> {
        let mut hosts: Vec<String> = insecure.to_vec();
        for reference in references {
            if let Ok(host) = registry_of(reference)
                && is_loopback(&host)
                && !hosts.contains(&host)
            {
                hosts.push(host);
            }
        }
        hosts
    }

    async fn login(
        &self,
        reference: &Reference,
        operation: RegistryOperation,
    ) -> Result<(), OciDistributionError> {
        let auth = self.keychain.auth_for(reference.resolve_registry());
        self.client
            .auth(reference, &auth, operation)
            .await
            .map(|_| ())
    }

    fn fail(action: &str, reference: &str, source: OciDistributionError) -> Error {
        Error::Registry {
            action: action.to_string(),
            reference: reference.to_string(),
            source,
        }
    }

    /// The manifest of `reference`, or `None` when the registry does not have it.
    pub async fn manifest(&self, reference: &str) -> Result<Option<Manifest>, Error> {
        let parsed = parse(reference)?;
        let read = async {
            self.login(&parsed, RegistryOperation::Pull).await?;
            let accepted = [
                OCI_MANIFEST,
                DOCKER_MANIFEST,
                OCI_INDEX,
                DOCKER_MANIFEST_LIST,
            ];
            let auth = self.keychain.auth_for(parsed.resolve_registry());
            self.client
                .pull_manifest_raw(&parsed, &auth, &accepted)
                .await
        };
        let (bytes, digest) = match read.await {
            Ok(found) => found,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(Self::fail("read the manifest of", reference, e)),
        };
        let json: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Invalid {
            reference: reference.to_string(),
            problem: format!("its manifest is not JSON: {e}"),
        })?;
        let media_type = match json.get("mediaType").and_then(Value::as_str) {
            Some(t) => t.to_string(),
            None if json.get("manifests").is_some() => OCI_INDEX.to_string(),
            None => OCI_MANIFEST.to_string(),
        };
        Ok(Some(Manifest {
            bytes: bytes.to_vec(),
            digest,
            media_type,
            json,
        }))
    }

    /// The image `reference` names, resolved to this machine's platform when it is an index;
    /// `None` when the registry does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<Image>, Error> {
        let Some(mut manifest) = self.manifest(reference).await? else {
            return Ok(None);
        };
        if manifest.media_type == OCI_INDEX || manifest.media_type == DOCKER_MANIFEST_LIST {
            let (os, arch) = host_platform();
            let child = manifest.json["manifests"]
                .as_array()
                .and_then(|list| {
                    list.iter().find(|m| {
                        m["platform"]["os"] == os && m["platform"]["architecture"] == arch
                    })
                })
                .and_then(|m| m["digest"].as_str().map(str::to_string))
                .ok_or_else(|| Error::Invalid {
                    reference: reference.to_string(),
                    problem: format!("its index has no {os}/{arch} image"),
                })?;
            let name = repository_of(reference);
            manifest = self
                .manifest(&format!("{name}@{child}"))
                .await?
                .ok_or_else(|| Error::Invalid {
                    reference: reference.to_string(),
                    problem: format!(
                        "the registry lacks the {os}/{arch} image {child} its index names"
                    ),
                })?;
        }
        let config_digest = manifest.json["config"]["digest"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Invalid {
                reference: reference.to_string(),
                problem: "its manifest has no config".into(),
            })?;
        let config_bytes = self.blob(reference, &config_digest).await?;
        let config = serde_json::from_slice(&config_bytes).map_err(|e| Error::Invalid {
            reference: reference.to_string(),
            problem: format!("its config is not JSON: {e}"),
        })?;
        Ok(Some(Image {
            reference: reference.to_string(),
            manifest,
            config,
            config_digest,
        }))
    }

    /// The blob `digest` of the repository of `reference`.
    pub async fn blob(&self, reference: &str, digest: &str) -> Result<Vec<u8>, Error> {
        let parsed = parse(reference)?;
        let mut data = Vec::new();
        let read = async {
            self.login(&parsed, RegistryOperation::Pull).await?;
            self.client.pull_blob(&parsed, digest, &mut data).await
        };
        read.await
            .map_err(|e| Self::fail(&format!("read blob {digest} of"), reference, e))?;
        Ok(data)
    }

    /// Whether the repository of `reference` has the blob `digest`.
    pub async fn has_blob(&self, reference: &str, digest: &str) -> Result<bool, Error> {
        let parsed = parse(reference)?;
        let check = async {
            self.login(&parsed, RegistryOperation::Pull).await?;
            self.client.blob_exists(&parsed, digest).await
        };
        check
            .await
            .map_err(|e| Self::fail(&format!("look for blob {digest} in"), reference, e))
    }

    /// Uploads `data` (whose digest is `digest`) to the repository of `reference`, unless the
    /// blob is there already. Returns whether it uploaded.
    pub async fn push_blob(
        &self,
        reference: &str,
        digest: &str,
        data: Vec<u8>,
    ) -> Result<bool, Error> {
        if self.has_blob(reference, digest).await? {
            return Ok(false);
        }
        let parsed = parse(reference)?;
        let push = async {
            self.login(&parsed, RegistryOperation::Push).await?;
            self.client.push_blob(&parsed, data, digest).await
        };
        push.await
            .map_err(|e| Self::fail(&format!("upload blob {digest} to"), reference, e))?;
        Ok(true)
    }

    /// Makes the blob of `source`'s repository available in `target`'s: nothing when it is there,
    /// a cross-repository mount within one registry, else a copy.
    pub async fn copy_blob(&self, source: &str, target: &str, digest: &str) -> Result<(), Error> {
        if self.has_blob(target, digest).await? {
            return Ok(());
        }
        let (from, to) = (parse(source)?, parse(target)?);
        if from.resolve_registry() == to.resolve_registry() {
            let mount = async {
                self.login(&to, RegistryOperation::Push).await?;
                self.client.mount_blob(&to, &from, digest).await
            };
            if mount.await.is_ok() && self.has_blob(target, digest).await? {
                return Ok(());
            }
        }
        let data = self.blob(source, digest).await?;
        self.push_blob(target, digest, data).await.map(|_| ())
    }

    /// Pushes a manifest to `reference` (a tag); returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &str,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<String, Error> {
        let parsed = parse(reference)?;
        let digest = sha256(&bytes);
        let header = media_type.parse().map_err(|_| Error::Invalid {
            reference: reference.to_string(),
            problem: format!("`{media_type}` is not a media type"),
        })?;
        let push = async {
            self.login(&parsed, RegistryOperation::Push).await?;
            self.client.push_manifest_raw(&parsed, bytes, header).await
        };
        push.await
            .map_err(|e| Self::fail("push the manifest of", reference, e))?;
        Ok(digest)
    }
}

/// Where a layer of an image being written comes from.
#[derive(Clone, Debug)]
pub enum LayerSource {
    /// A blob of the repository of `from` (the base image, the previous image): mounted or
    /// copied, never downloaded when a mount works.
    Blob {
        from: String,
        descriptor: Descriptor,
    },
    /// A new gzip-compressed layer, with the digest of `gzip`.
    Upload { gzip: Vec<u8>, digest: String },
}

/// An image that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The manifest digest.
    pub digest: String,
    pub manifest_size: u64,
}

impl Registry {
    /// Writes an image to every reference of `names` (one registry, any repositories): its
    /// layers, its config, then the manifest. `docker` chooses Docker's media types (those of
    /// the base image, when it has them) over OCI's.
    pub async fn write_image(
        &self,
        names: &[String],
        layers: Vec<LayerSource>,
        config: &Value,
        docker: bool,
    ) -> Result<Written, Error> {
        let (manifest_type, config_type, layer_type) = if docker {
            (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
        } else {
            (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
        };
        let mut descriptors = Vec::with_capacity(layers.len());
        for layer in layers {
            let descriptor = match layer {
                LayerSource::Blob { from, descriptor } => {
                    for name in names {
                        self.copy_blob(&from, name, &descriptor.digest).await?;
                    }
                    descriptor
                }
                LayerSource::Upload { gzip, digest } => {
                    let size = gzip.len() as u64;
                    for name in names {
                        self.push_blob(name, &digest, gzip.clone()).await?;
                    }
                    Descriptor {
                        media_type: layer_type.to_string(),
                        digest,
                        size,
                    }
                }
            };
            descriptors.push(descriptor);
        }
        let config_bytes = serde_json::to_vec(config).map_err(|e| Error::Invalid {
            reference: names.first().cloned().unwrap_or_default(),
            problem: format!("its config cannot be encoded: {e}"),
        })?;
        let config = Descriptor {
            media_type: config_type.to_string(),
            digest: sha256(&config_bytes),
            size: config_bytes.len() as u64,
        };
        for name in names {
            self.push_blob(name, &config.digest, config_bytes.clone())
                .await?;
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config.to_json(),
            "layers": descriptors.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        let bytes = manifest.to_string().into_bytes();
        let manifest_size = bytes.len() as u64;
        let mut digest = sha256(&bytes);
        for name in names {
            digest = self
                .push_manifest(name, bytes.clone(), manifest_type)
                .await?;
        }
        Ok(Written {
            digest,
            manifest_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_roots_are_a_pem_bundle_rustls_reads() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = write_builtin_roots().unwrap();
        let pem = fs_err::read_to_string(&path).unwrap();
        let decoded: Vec<Vec<u8>> = pem
            .split("-----BEGIN CERTIFICATE-----\n")
            .skip(1)
            .map(|block| {
                let body: String = block.split("-----END").next().unwrap().lines().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap()
            })
            .collect();
        let expected: Vec<Vec<u8>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|d| d.to_vec())
            .collect();
        assert_eq!(decoded, expected);
        assert_eq!(write_builtin_roots().unwrap(), path, "written once");
        assert_eq!(
            fs_err::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

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
    fn configs_are_edited_without_losing_what_is_not_touched() {
        let base = serde_json::json!({
            "architecture": "amd64",
            "config": {"Env": ["PATH=/bin", "A=1"], "Labels": {"keep": "me"}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created_by": "base"}],
        });
        let mut editor = ConfigEditor::new(&base);
        assert_eq!(editor.env("PATH").as_deref(), Some("/bin"));
        editor.set_env("PATH", "/cnb/process:/bin");
        editor.set_env("A", "2");
        editor.set_env("B", "3");
        editor.set("User", serde_json::json!("1000:1000"));
        editor.add_labels([("new", "label")]);
        editor.append_layers("1980-01-01T00:00:01Z", [("sha256:top", "op")]);
        let config = editor.finish();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(
            config["config"]["Env"],
            serde_json::json!(["PATH=/cnb/process:/bin", "A=2", "B=3"]),
            "a variable stays where it was"
        );
        assert_eq!(
            config["config"]["Labels"],
            serde_json::json!({"keep": "me", "new": "label"})
        );
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!(["sha256:base", "sha256:top"])
        );
        assert_eq!(config["history"][1]["created_by"], "op");
        assert_eq!(config["created"], "1980-01-01T00:00:01Z");
        assert!(ConfigEditor::new(&Value::Null).finish()["config"].is_object());
    }

    #[test]
    fn repositories_lose_their_tag_and_digest_but_not_their_port() {
        assert_eq!(repository_of("reg:5000/a/b:1@sha256:abc"), "reg:5000/a/b");
        assert_eq!(repository_of("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(repository_of("app:latest"), "app");
    }

    #[test]
    fn keychains_read_cnb_registry_auth() {
        let keychain = Keychain::from_cnb_registry_auth(
            r#"{"https://ghcr.io/v2/": "Basic dXNlcjpwYXNz", "reg.example:5000": "Bearer tok", "index.docker.io": "Basic YTpi"}"#,
        )
        .unwrap();
        assert!(
            matches!(keychain.auth_for("ghcr.io"), RegistryAuth::Basic(u, p) if u == "user" && p == "pass")
        );
        assert!(
            matches!(keychain.auth_for("reg.example:5000"), RegistryAuth::Bearer(t) if t == "tok")
        );
        assert!(matches!(keychain.auth_for("docker.io"), RegistryAuth::Basic(u, _) if u == "a"));
        assert!(matches!(
            keychain.auth_for("other.example"),
            RegistryAuth::Anonymous
        ));
        assert!(
            !format!("{keychain:?}").contains("dXNlcjpwYXNz"),
            "secrets are not printed"
        );
        assert!(Keychain::from_cnb_registry_auth("[]").is_err());
        assert!(
            Keychain::from_cnb_registry_auth(r#"{"r": "X-Identity t"}"#)
                .unwrap_err()
                .contains("X-Identity")
        );
        assert!(Keychain::from_cnb_registry_auth(r#"{"r": "Basic !!!"}"#).is_err());
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
