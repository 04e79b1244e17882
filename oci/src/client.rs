//! The registry client (oci-client): manifests, configs and blobs, read and written as raw
//! bytes so that digests never change on the way.

use std::collections::HashMap;
use std::sync::Arc;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::Value;

use crate::error::not_found;
use crate::identity::{Exchange, Http};
use crate::{
    DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, Error, Image,
    Keychain, Manifest, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Platform, has_system_roots,
    is_loopback, parse, registry_of, repository_of, sha256, system_roots,
};

/// How op reaches the registries of one client: those over plain HTTP, and those over HTTPS
/// without verifying their certificate (insecure registries that speak HTTPS); every other
/// one over HTTPS, verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transports {
    pub plain_http: Vec<String>,
    pub unverified: Vec<String>,
}

/// The clients of one kind of TLS verification.
struct Clients {
    /// Manifest reads and tag lists, and every request to a registry that needs credentials.
    credentialed: Client,
    /// Every other request to a registry that needs no authentication, made on first use. It
    /// holds no credentials: oci-client asks a registry it holds credentials for `GET /v2/`
    /// before every request for which it has no token, and an open registry gives none, which
    /// would double the requests of a copy (go-containerregistry asks once).
    anonymous: tokio::sync::OnceCell<Client>,
    /// What their configuration is made of (oci-client's configuration is not `Clone`).
    plain_http: Vec<String>,
    roots: Arc<Vec<Vec<u8>>>,
    accept_invalid_certificates: bool,
}

impl Clients {
    fn new(
        plain_http: Vec<String>,
        roots: Arc<Vec<Vec<u8>>>,
        accept_invalid_certificates: bool,
    ) -> Result<Self, Error> {
        let config = Self::config_of(&plain_http, &roots, accept_invalid_certificates);
        Ok(Self {
            credentialed: Client::try_from(config).map_err(|source| Error::Client { source })?,
            anonymous: tokio::sync::OnceCell::new(),
            plain_http,
            roots,
            accept_invalid_certificates,
        })
    }

    fn config(&self) -> ClientConfig {
        Self::config_of(
            &self.plain_http,
            &self.roots,
            self.accept_invalid_certificates,
        )
    }

    fn config_of(
        plain_http: &[String],
        roots: &[Vec<u8>],
        accept_invalid_certificates: bool,
    ) -> ClientConfig {
        ClientConfig {
            accept_invalid_certificates,
            ..Registry::config(plain_http, roots)
        }
    }
}

/// A client for any number of registries.
pub struct Registry {
    verified: Clients,
    /// For the registries of `unverified`, made when there are some.
    unverified: Option<Clients>,
    unverified_hosts: Vec<String>,
    /// Whether each registry needs no authentication, found out once.
    open: std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<bool>>>>,
    keychain: Keychain,
    /// op-oci's own requests: pings, token exchanges.
    http: Http,
    /// Access tokens for the registries of identity tokens.
    identity: Exchange,
}

impl Registry {
    /// A client that reaches registries as `transports` says ([`Registry::transports`]), HTTPS
    /// verified elsewhere, trusting the system's CA certificates and `extra_roots` (DER).
    pub fn new(
        transports: Transports,
        keychain: Keychain,
        extra_roots: &[Vec<u8>],
    ) -> Result<Self, Error> {
        // oci-client always builds a default HTTP client too, which panics without CA
        // certificates: refuse first.
        if !has_system_roots() {
            return Err(Error::NoRoots);
        }
        let mut roots = system_roots().to_vec();
        roots.extend(extra_roots.iter().cloned());
        let roots = Arc::new(roots);
        let unverified = if transports.unverified.is_empty() {
            None
        } else {
            Some(Clients::new(
                transports.plain_http.clone(),
                Arc::clone(&roots),
                true,
            )?)
        };
        let http = Http::new(Arc::clone(&roots));
        Ok(Self {
            verified: Clients::new(transports.plain_http, roots, false)?,
            unverified,
            unverified_hosts: transports.unverified,
            open: std::sync::Mutex::default(),
            keychain,
            http,
            identity: Exchange::default(),
        })
    }

    /// The clients for `registry`.
    fn clients(&self, registry: &str) -> &Clients {
        match &self.unverified {
            Some(unverified) if self.unverified_hosts.iter().any(|h| h == registry) => unverified,
            _ => &self.verified,
        }
    }

    fn config(plain_http: &[String], roots: &[Vec<u8>]) -> ClientConfig {
        ClientConfig {
            protocol: if plain_http.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(plain_http.to_vec())
            },
            // One PUT per blob (as go-containerregistry streams one PATCH): chunked uploads
            // make the registry save and reload its hash state for every 4 MiB.
            use_monolithic_push: true,
            // The system's roots as op read them once (reqwest would read them again for each
            // client), and the caller's.
            tls_certs_only: roots
                .iter()
                .map(|der| Certificate {
                    encoding: CertificateEncoding::Der,
                    data: der.clone(),
                })
                .collect(),
            ..ClientConfig::default()
        }
    }

    /// How to reach the registries of `references` and those in `insecure`: a loopback one over
    /// plain HTTP unless it speaks HTTPS ([`speaks_https`]), then verified; an insecure one over
    /// plain HTTP unless it speaks HTTPS, then without verifying its certificate (as
    /// `--insecure-registry` means for docker and go-containerregistry); any other one over
    /// HTTPS, verified.
    pub fn transports<'a>(
        references: impl IntoIterator<Item = &'a str>,
        insecure: &[String],
    ) -> Transports {
        let mut transports = Transports::default();
        for host in insecure {
            if speaks_https(host) {
                transports.unverified.push(host.clone());
            } else {
                transports.plain_http.push(host.clone());
            }
        }
        // Each loopback host is asked once, however many references name it.
        let mut asked: Vec<String> = Vec::new();
        for reference in references {
            if let Ok(host) = registry_of(reference)
                && is_loopback(&host)
                && !insecure.contains(&host)
                && !asked.contains(&host)
            {
                asked.push(host.clone());
                if !speaks_https(&host) {
                    transports.plain_http.push(host);
                }
            }
        }
        transports
    }

    /// `scheme://host` of `registry`, and whether its certificate is verified.
    fn base_of(&self, registry: &str) -> (String, bool) {
        let scheme = if self
            .clients(registry)
            .plain_http
            .iter()
            .any(|h| h == registry)
        {
            "http"
        } else {
            "https"
        };
        let verify = !self.unverified_hosts.iter().any(|h| h == registry);
        (format!("{scheme}://{registry}"), verify)
    }

    /// The credentials for requests about `reference` (to pull, or to pull and push): the
    /// keychain's, or, for a registry of an identity token, the access token of the repository,
    /// which also goes into oci-client's token cache for the operations it serves.
    async fn auth(
        &self,
        reference: &Reference,
        push: bool,
    ) -> Result<RegistryAuth, OciDistributionError> {
        let registry = reference.resolve_registry();
        let Some(refresh) = self.keychain.identity_for(registry) else {
            return Ok(self.keychain.auth_for(registry));
        };
        let clients = self.clients(registry);
        let (base, verify) = self.base_of(registry);
        let token = self
            .identity
            .token(
                &self.http,
                (&base, verify),
                registry,
                reference.repository(),
                push,
                refresh,
            )
            .await?;
        let bearer = RegistryAuth::Bearer(token);
        let operations: &[RegistryOperation] = if push {
            &[RegistryOperation::Pull, RegistryOperation::Push]
        } else {
            &[RegistryOperation::Pull]
        };
        for operation in operations {
            clients
                .credentialed
                .auth(reference, &bearer, *operation)
                .await?;
        }
        Ok(bearer)
    }

    /// The client for a request to the registry of `reference` (other than a manifest read or
    /// a tag list, which take credentials with every call): the anonymous one when the registry
    /// asks for no credentials (oci-client's authentication finds no challenge), whether op has
    /// some for it or not, else the one that holds the credentials (given to it here; it gets a token
    /// per repository and operation on the first request that needs one and reuses it while it
    /// is valid).
    async fn client_for(
        &self,
        reference: &Reference,
        push: bool,
    ) -> Result<&Client, OciDistributionError> {
        let registry = reference.resolve_registry();
        let clients = self.clients(registry);
        let auth = self.auth(reference, push).await?;
        clients
            .credentialed
            .store_auth_if_needed(registry, &auth)
            .await;
        // An open registry gets no credentials, which would make oci-client ask `GET /v2/`
        // again before every request.
        if !self.is_open(registry).await {
            return Ok(&clients.credentialed);
        }
        clients
            .anonymous
            .get_or_try_init(|| async { Client::try_from(clients.config()) })
            .await
    }

    /// Whether `registry` is open (needs no authentication): asked once, with op's
    /// credentials or without, as go-containerregistry pings once.
    async fn is_open(&self, registry: &str) -> bool {
        let known = match self.open.lock() {
            Ok(mut open) => Arc::clone(open.entry(registry.to_string()).or_default()),
            Err(_) => Arc::default(),
        };
        *known
            .get_or_init(|| async {
                let (base, verify) = self.base_of(registry);
                self.http.is_open(&base, verify).await
            })
            .await
    }

    /// Finds out, for the registry of each reference at once, whether it needs authentication
    /// (and makes the anonymous client when one does not), so that the requests of a copy do
    /// not wait for it. Errors are left for the requests themselves to report.
    pub async fn prepare(&self, references: &[&str]) {
        let mut parsed: Vec<Reference> = Vec::new();
        for reference in references {
            if let Ok(reference) = parse(reference)
                && !parsed
                    .iter()
                    .any(|p| p.resolve_registry() == reference.resolve_registry())
            {
                parsed.push(reference);
            }
        }
        futures::future::join_all(parsed.iter().map(|r| self.client_for(r, false))).await;
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
            let accepted = [
                OCI_MANIFEST,
                DOCKER_MANIFEST,
                OCI_INDEX,
                DOCKER_MANIFEST_LIST,
            ];
            let registry = parsed.resolve_registry();
            // An open registry's without oci-client, which would ask `GET /v2/` first (as it
            // does when it holds no token: an open registry gives none).
            if self.is_open(registry).await {
                let (base, verify) = self.base_of(registry);
                return self
                    .http
                    .manifest((&base, verify), &parsed, &accepted)
                    .await;
            }
            let auth = self.auth(&parsed, false).await?;
            self.clients(registry)
                .credentialed
                .pull_manifest_raw(&parsed, &auth, &accepted)
                .await
                .map(|(bytes, digest)| (bytes.to_vec(), digest))
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
            bytes,
            digest,
            media_type,
            json,
        }))
    }

    /// The image `reference` names, resolved to this machine's platform when it is an index;
    /// `None` when the registry does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<Image>, Error> {
        self.image_for(reference, &Platform::host()).await
    }

    /// The image `reference` names, resolved to `platform` when it is an index (its os and
    /// architecture; an index without that platform is an error); `None` when the registry does
    /// not have it.
    pub async fn image_for(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<Image>, Error> {
        let (os, arch) = (&platform.os, &platform.architecture);
        let Some(mut manifest) = self.manifest(reference).await? else {
            return Ok(None);
        };
        if manifest.media_type == OCI_INDEX || manifest.media_type == DOCKER_MANIFEST_LIST {
            let child = manifest.json["manifests"]
                .as_array()
                .and_then(|list| {
                    list.iter().find(|m| {
                        m["platform"]["os"] == os.as_str()
                            && m["platform"]["architecture"] == arch.as_str()
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
        self.image_of(reference, manifest).await.map(Some)
    }

    /// The image of `manifest`, an image manifest read from `reference`: its config read.
    pub async fn image_of(&self, reference: &str, manifest: Manifest) -> Result<Image, Error> {
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
        Ok(Image {
            reference: reference.to_string(),
            manifest,
            config,
            config_digest,
        })
    }

    /// The blob `digest` of the repository of `reference`.
    pub async fn blob(&self, reference: &str, digest: &str) -> Result<Vec<u8>, Error> {
        let parsed = parse(reference)?;
        let mut data = Vec::new();
        let read = async {
            self.client_for(&parsed, false)
                .await?
                .pull_blob(&parsed, digest, &mut data)
                .await
        };
        read.await
            .map_err(|e| Self::fail(&format!("read blob {digest} of"), reference, e))?;
        Ok(data)
    }

    /// The tags of the repository of `reference` (every page of them).
    pub async fn tags(&self, reference: &str) -> Result<Vec<String>, Error> {
        let parsed = parse(reference)?;
        let auth = self
            .auth(&parsed, false)
            .await
            .map_err(|e| Self::fail("list the tags of", reference, e))?;
        let mut all: Vec<String> = Vec::new();
        loop {
            let list = async {
                self.clients(parsed.resolve_registry())
                    .credentialed
                    .list_tags(&parsed, &auth, Some(1000), all.last().map(String::as_str))
                    .await
            };
            let page = list
                .await
                .map_err(|e| Self::fail("list the tags of", reference, e))?;
            let before = all.len();
            for tag in page.tags {
                if !all.contains(&tag) {
                    all.push(tag);
                }
            }
            if all.len() - before < 1000 {
                return Ok(all);
            }
        }
    }

    /// Whether the repository of `reference` has the blob `digest`.
    pub async fn has_blob(&self, reference: &str, digest: &str) -> Result<bool, Error> {
        let parsed = parse(reference)?;
        let check = async {
            self.client_for(&parsed, false)
                .await?
                .blob_exists(&parsed, digest)
                .await
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
            self.client_for(&parsed, true)
                .await?
                .push_blob(&parsed, data, digest)
                .await
        };
        push.await
            .map_err(|e| Self::fail(&format!("upload blob {digest} to"), reference, e))?;
        Ok(true)
    }

    /// Makes the blob `blob` of `source`'s repository available in `target`'s: within one
    /// registry a cross-repository mount (which also answers when the blob is there already),
    /// else nothing when it is there, else a copy streamed from the source.
    pub async fn copy_blob(
        &self,
        source: &str,
        target: &str,
        blob: &Descriptor,
    ) -> Result<(), Error> {
        let (from, to) = (parse(source)?, parse(target)?);
        if from.resolve_registry() == to.resolve_registry() {
            let mount = async {
                self.client_for(&to, true)
                    .await?
                    .mount_blob(&to, &from, &blob.digest)
                    .await
            };
            // oci-client takes only 201 Created for a mount: the blob is there.
            if mount.await.is_ok() {
                return Ok(());
            }
        }
        if self.has_blob(target, &blob.digest).await? {
            return Ok(());
        }
        self.stream_blob(source, target, blob).await
    }

    /// Makes each blob of `copies` (its source reference, its target reference, the blob)
    /// available in its target's repository ([`Registry::copy_blob`]), [`BLOB_COPIES_AT_ONCE`]
    /// at a time.
    pub async fn copy_blobs(&self, copies: Vec<(String, String, Descriptor)>) -> Result<(), Error> {
        use futures::{StreamExt as _, TryStreamExt as _};
        futures::stream::iter(copies)
            .map(|(source, target, blob)| async move {
                self.copy_blob(&source, &target, &blob).await
            })
            .buffer_unordered(BLOB_COPIES_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Streams the blob `blob` of `source`'s repository into `target`'s, from one registry to
    /// another, as it arrives: memory does not grow with its size (oci-client checks the digest
    /// of what it reads), and the upload is opened while the download's answer is on its way.
    async fn stream_blob(
        &self,
        source: &str,
        target: &str,
        blob: &Descriptor,
    ) -> Result<(), Error> {
        use futures::{StreamExt as _, TryStreamExt as _};
        let (from, to) = (parse(source)?, parse(target)?);
        let digest = blob.digest.as_str();
        let read_failure = |e| Self::fail(&format!("read blob {digest} of"), source, e);
        let reader = self
            .client_for(&from, false)
            .await
            .map_err(read_failure)?
            .clone();
        // Why the download failed, if it did (before its first byte or midway): the upload then
        // fails too, and the error is the download's.
        let failed: Arc<std::sync::Mutex<Option<OciDistributionError>>> = Arc::default();
        let keep = |failed: &std::sync::Mutex<Option<OciDistributionError>>, e| {
            let problem = Some(format!("the download failed: {e}"));
            if let Ok(mut failed) = failed.lock() {
                failed.get_or_insert(e);
            }
            OciDistributionError::GenericError(problem)
        };
        // The download starts now, so that its answer is on its way while the upload is opened.
        let download = tokio::spawn({
            let (from, digest, failed) = (from.clone(), digest.to_string(), Arc::clone(&failed));
            async move {
                match reader.pull_blob_stream(&from, digest.as_str()).await {
                    Ok(pulled) => Ok(pulled
                        .stream
                        .map_err(move |e| keep(&failed, OciDistributionError::IoError(e)))),
                    Err(e) => Err(keep(&failed, e)),
                }
            }
        });
        // Stopped when the upload fails before it reads the download.
        let _stop = AbortOnDrop(download.abort_handle());
        let body = futures::stream::once(async move {
            download.await.unwrap_or_else(|stopped| {
                Err(OciDistributionError::GenericError(Some(format!(
                    "the download stopped: {stopped}"
                ))))
            })
        })
        .try_flatten()
        .boxed();
        let upload = async {
            self.client_for(&to, true)
                .await?
                .push_blob_stream(&to, body, digest, Some(blob.size))
                .await
        };
        let uploaded = upload.await;
        if let Some(e) = failed.lock().ok().and_then(|mut f| f.take()) {
            return Err(read_failure(e));
        }
        uploaded
            .map(|_| ())
            .map_err(|e| Self::fail(&format!("copy blob {digest} to"), target, e))
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
            self.client_for(&parsed, true)
                .await?
                .push_manifest_raw(&parsed, bytes, header)
                .await
        };
        push.await
            .map_err(|e| Self::fail("push the manifest of", reference, e))?;
        Ok(digest)
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
    /// The manifest's media type.
    pub media_type: String,
}

impl Registry {
    /// Writes an image to every reference of `names` (one registry, any repositories): its
    /// layers, its config, then the manifest. `docker` chooses Docker's media types (those of
    /// the base image, when it has them) over OCI's, for the manifest, the config and every
    /// layer, copied ones included ([`Descriptor::in_family`]).
    pub async fn write_image(
        &self,
        names: &[String],
        layers: Vec<LayerSource>,
        config: &Value,
        docker: bool,
    ) -> Result<Written, Error> {
        self.write_image_as(names, layers, config, docker, true)
            .await
    }

    /// [`Registry::write_image`], and with `tagged` false the manifest goes to each name's
    /// repository by digest only (an image an index will name), leaving the tags alone.
    pub async fn write_image_as(
        &self,
        names: &[String],
        layers: Vec<LayerSource>,
        config: &Value,
        docker: bool,
        tagged: bool,
    ) -> Result<Written, Error> {
        let (manifest_type, config_type, layer_type) = if docker {
            (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
        } else {
            (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
        };
        // The blobs of other repositories, each once per name, copied a few at a time: a blob
        // of the name's own repository (an app layer a rebase keeps) is there already, and is
        // not touched (a mount into the repository that holds it rewrites its link).
        let mut blobs: Vec<(String, String, Descriptor)> = Vec::new();
        for layer in &layers {
            if let LayerSource::Blob { from, descriptor } = layer {
                for name in names {
                    let copied = blobs
                        .iter()
                        .any(|(_, n, d)| n == name && d.digest == descriptor.digest);
                    if repository_of(from) != repository_of(name) && !copied {
                        blobs.push((from.clone(), name.clone(), descriptor.clone()));
                    }
                }
            }
        }
        self.copy_blobs(blobs).await?;
        let mut descriptors = Vec::with_capacity(layers.len());
        for layer in layers {
            let descriptor = match layer {
                LayerSource::Blob { descriptor, .. } => descriptor.in_family(docker),
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
            let target = if tagged {
                name.clone()
            } else {
                format!("{}@{digest}", repository_of(name))
            };
            digest = self
                .push_manifest(&target, bytes.clone(), manifest_type)
                .await?;
        }
        Ok(Written {
            digest,
            manifest_size,
            media_type: manifest_type.to_string(),
        })
    }

    /// Writes an index of `entries` (images already in each name's repository) to every
    /// reference of `names`: a Docker manifest list when `docker`, else an OCI image index.
    pub async fn write_index(
        &self,
        names: &[String],
        entries: &[IndexEntry],
        docker: bool,
    ) -> Result<Written, Error> {
        let index_type = if docker {
            DOCKER_MANIFEST_LIST
        } else {
            OCI_INDEX
        };
        let manifests: Vec<Value> = entries
            .iter()
            .map(|entry| {
                let mut platform = serde_json::json!({
                    "architecture": entry.architecture,
                    "os": entry.os,
                });
                if let Some(variant) = &entry.variant {
                    platform["variant"] = Value::from(variant.clone());
                }
                let mut json = entry.manifest.to_json();
                json["platform"] = platform;
                json
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": index_type,
            "manifests": manifests,
        });
        let bytes = index.to_string().into_bytes();
        let manifest_size = bytes.len() as u64;
        let mut digest = sha256(&bytes);
        for name in names {
            digest = self.push_manifest(name, bytes.clone(), index_type).await?;
        }
        Ok(Written {
            digest,
            manifest_size,
            media_type: index_type.to_string(),
        })
    }
}

/// How many blobs are copied from one repository to another at once.
const BLOB_COPIES_AT_ONCE: usize = 4;

/// One image of an index: its manifest and its platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub manifest: Descriptor,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Whether `host` (`name:port`), a loopback or insecure registry, is an HTTPS server: asked
/// `GET /v2/` in plain HTTP (no credentials), it answers as HTTPS servers answer plain HTTP (a
/// TLS alert, or `400` saying the request was plain HTTP). A registry that answers in HTTP, one
/// that does not answer, and a host without a port are taken as plain HTTP, as before (their
/// errors come from the requests themselves).
fn speaks_https(host: &str) -> bool {
    use std::io::{Read as _, Write as _};
    use std::net::ToSocketAddrs as _;
    use std::time::Duration;
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if !has_port {
        return false;
    }
    let Some(addr) = host.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    // One write: an HTTPS server closes the connection as soon as it has read the start of it,
    // and what arrived after that would reset the connection, losing its answer.
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // The whole answer (a TLS server closes the connection after it), at most 1 KiB.
    let mut answer = Vec::new();
    let _ = stream.take(1024).read_to_end(&mut answer);
    tls_answer(&answer)
}

/// Whether `answer`, a server's answer to a plain HTTP request, is an HTTPS server's.
fn tls_answer(answer: &[u8]) -> bool {
    // A TLS record (an alert, or a handshake message) instead of an HTTP status line.
    if matches!(answer.first(), Some(0x15 | 0x16)) {
        return true;
    }
    let text = String::from_utf8_lossy(answer).to_ascii_lowercase();
    let bad_request = text.starts_with("http/1.0 400") || text.starts_with("http/1.1 400");
    bad_request && text.contains("https")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_servers_are_told_from_their_answer_to_plain_http() {
        // Go's (the distribution registry's) and nginx's answers, and a TLS alert.
        assert!(tls_answer(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        ));
        assert!(tls_answer(
            b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n<center>The plain HTTP request was sent to HTTPS port</center>"
        ));
        assert!(tls_answer(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32]));
        // Plain HTTP registries, and nothing at all.
        assert!(!tls_answer(b"HTTP/1.0 200 OK\r\n\r\n{}"));
        assert!(!tls_answer(
            b"HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Bearer realm=\"https://auth\"\r\n\r\n"
        ));
        assert!(!tls_answer(b""));
        // A host without a port, or one nobody listens on, keeps plain HTTP.
        assert!(!speaks_https("localhost"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!speaks_https(&format!("127.0.0.1:{port}")));
    }
}
