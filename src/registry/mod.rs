//! Container registries, over the OCI distribution API. This is the only module of op that talks
//! to registries; it builds on the client of `op-oci` (over oci-client), which op-lifecycle uses
//! too, so op and the lifecycle in its builders read and write images the same way:
//!
//! - registries on a loopback address, and those named insecure, are reached over plain HTTP
//!   (as go-containerregistry does), every other one over HTTPS;
//! - blobs already in the target repository are not uploaded again, blobs of another repository
//!   of the same registry are mounted.

pub mod auth;
pub mod rebase;

use op_oci as oci;
use op_oci::Reference;

pub use op_oci::{ConfigEditor, Image, IndexEntry, LayerSource, Written};

use crate::hint::Hint;

/// What went wrong with a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{reference}` is not in its registry")]
    NotFound { reference: String },
    #[error(transparent)]
    Auth(#[from] auth::Error),
    #[error(transparent)]
    Ca(#[from] crate::config::Error),
    #[error("Unusable registry credentials: {0}")]
    Credentials(String),
    #[error("Failed to set up op's registry client")]
    Client {
        #[source]
        source: Box<oci::Error>,
    },
    #[error("Registry `{host}` failed")]
    Registry {
        host: String,
        #[source]
        source: Box<oci::Error>,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NotFound { .. } => {
                Some("check the reference, or publish the image there first".into())
            }
            Error::Auth(e) => e.hint(),
            Error::Ca(e) => e.hint(),
            Error::Client { .. } | Error::Credentials(_) => None,
            Error::Registry { host, source } if source.is_untrusted_certificate() => Some(
                certificate_hint(host, &source.certificate_problem().unwrap_or_default()),
            ),
            Error::Registry { source, .. } if source.is_unauthorized() => Some(
                "the registry refused op's credentials (or their absence); log in to it with an \
                 account that may read (and, to publish, push) there, and check that its token \
                 service answers"
                    .into(),
            ),
            Error::Registry { source, .. } if source.is_not_found() => Some(
                "the registry answered without it: the image there is incomplete (a blob deleted \
                 or garbage-collected); publish it again"
                    .into(),
            ),
            Error::Registry { host, source } if source.is_write_refused() => Some(format!(
                "{host} takes no writes there (read-only, in maintenance, or an immutable \
                 repository); choose a repository it accepts images in"
            )),
            Error::Registry { source, .. } if source.registry_answered() => None,
            Error::Registry { host, .. } if oci::is_loopback(host) => Some(format!(
                "is a registry running at {host}? `scripts/dev-env` starts one on localhost:5001"
            )),
            Error::Registry { host, .. } => Some(format!(
                "check that {host} is reachable over HTTPS; a registry that only speaks plain HTTP \
                 must be named with --insecure-registry {host}"
            )),
        }
    }
}

/// What to do about a certificate the TLS handshake refused for `problem` (rustls's reason).
fn certificate_hint(host: &str, problem: &str) -> String {
    if problem.contains("not valid for name") || problem.starts_with("NotValidForName") {
        format!(
            "{host}'s certificate is for other names than {host}: reach the registry by a name its \
             certificate holds, or have it issued for this one"
        )
    } else if ["xpired", "not valid yet", "NotValidYet"]
        .iter()
        .any(|p| problem.contains(p))
    {
        format!(
            "{host}'s certificate is out of its validity period ({problem}): renew it (or check this \
             machine's clock)"
        )
    } else {
        format!(
            "{host}'s certificate is not signed by a CA op trusts ({problem}): set \
             OP_REGISTRY_CA_PATH to a PEM file of the CA that signed it (or add the CA to the \
             system's store)"
        )
    }
}

impl Error {
    /// Whether the registry answered, but refused op's credentials (or their absence).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Registry { source, .. } if source.is_unauthorized())
    }
}

/// A client for the registries of one command.
pub struct Registry {
    client: oci::Registry,
    /// The CA certificates (DER) it trusts besides the system's.
    ca: Vec<Vec<u8>>,
}

impl Registry {
    /// A client for `references`: loopback registries and those in `insecure` over plain HTTP,
    /// unless they speak HTTPS (an insecure one then without verifying its certificate);
    /// trusting the system's CA certificates and `ca`.
    pub fn new<'a>(
        references: impl IntoIterator<Item = &'a str>,
        insecure: &[String],
        credentials: &auth::Credentials,
        ca: &[Vec<u8>],
    ) -> Result<Self, Error> {
        let transports = oci::Registry::transports(references, insecure);
        let keychain = match credentials.cnb_registry_auth() {
            Some(json) => {
                oci::Keychain::from_cnb_registry_auth(&json).map_err(Error::Credentials)?
            }
            None => oci::Keychain::default(),
        };
        let client =
            oci::Registry::new(transports, keychain, ca).map_err(|source| Error::Client {
                source: Box::new(source),
            })?;
        Ok(Self {
            client,
            ca: ca.to_vec(),
        })
    }

    /// The CA certificates (DER) it trusts besides the system's (`$OP_REGISTRY_CA_PATH`'s).
    pub fn extra_roots(&self) -> &[Vec<u8>] {
        &self.ca
    }

    /// A client for `references`, with the credentials the Docker configuration of `env` has
    /// for their registries (returned too, for the lifecycle), trusting the CA certificates of
    /// `$OP_REGISTRY_CA_PATH` too.
    pub fn connect(
        env: &crate::config::Env,
        references: &[&Reference],
        insecure: &[String],
    ) -> Result<(Self, auth::Credentials), Error> {
        let mut hosts: Vec<String> = references
            .iter()
            .map(|r| r.registry().to_string())
            .collect();
        hosts.sort();
        hosts.dedup();
        let credentials = auth::Credentials::resolve(env, &hosts)?;
        let texts: Vec<String> = references.iter().map(ToString::to_string).collect();
        let ca = crate::config::op_settings::registry_ca(env)?
            .map(|ca| ca.certificates)
            .unwrap_or_default();
        let registry = Self::new(
            texts.iter().map(String::as_str),
            insecure,
            &credentials,
            &ca,
        )?;
        Ok((registry, credentials))
    }

    /// A failure of a request about `reference`, or about what the error itself names (a copy
    /// reads from one registry and writes to another).
    fn fail(reference: &str, source: oci::Error) -> Error {
        let reference = source.reference().unwrap_or(reference);
        let host = oci::registry_of(reference).unwrap_or_else(|_| reference.to_string());
        Error::Registry {
            host,
            source: Box::new(source),
        }
    }

    /// The image `reference` names (resolved to this machine's platform when it is an index).
    pub async fn image(&self, reference: &str) -> Result<Image, Error> {
        self.client
            .image(reference)
            .await
            .map_err(|e| Self::fail(reference, e))?
            .ok_or_else(|| Error::NotFound {
                reference: reference.to_string(),
            })
    }

    /// The image `reference` names for `platform` (an index resolved to it; an index without
    /// it is an error).
    pub async fn image_for(
        &self,
        reference: &str,
        platform: &op_oci::Platform,
    ) -> Result<Image, Error> {
        self.client
            .image_for(reference, platform)
            .await
            .map_err(|e| Self::fail(reference, e))?
            .ok_or_else(|| Error::NotFound {
                reference: reference.to_string(),
            })
    }

    /// The manifest the registry serves for `reference` (an image's or an index's); `None`
    /// when it does not have it.
    pub async fn manifest(&self, reference: &str) -> Result<Option<oci::Manifest>, Error> {
        self.client
            .manifest(reference)
            .await
            .map_err(|e| Self::fail(reference, e))
    }

    /// The image of `manifest`, an image manifest read from `reference`: its config read.
    pub async fn image_of(&self, reference: &str, manifest: oci::Manifest) -> Result<Image, Error> {
        self.client
            .image_of(reference, manifest)
            .await
            .map_err(|e| Self::fail(reference, e))
    }

    /// The digest the registry serves for `reference` (its manifest or index); `None` when it
    /// does not have it.
    pub async fn digest(&self, reference: &Reference) -> Result<Option<String>, Error> {
        let manifest = self.manifest(&reference.to_string()).await?;
        Ok(manifest.map(|m| m.digest))
    }

    /// Copies what `source` names (an image, or an index with every image it lists) to `target`,
    /// in the same registry or another: the blobs the target repository lacks, each once
    /// (mounted within a registry, else streamed), then the manifests byte for byte, children
    /// first, `target` last, so the digest stays and an interrupted copy leaves no tag; within
    /// one repository, the manifest alone. Returns the digest.
    pub async fn copy(&self, source: &str, target: &str) -> Result<String, Error> {
        let (manifest, ()) = futures::future::join(
            self.existing_manifest(source),
            self.client.prepare(&[source, target]),
        )
        .await;
        let manifest = manifest?;
        let (from, to) = (oci::repository_of(source), oci::repository_of(target));
        // Within one repository (a new tag of what it has) every blob and child manifest is
        // there already, and none is touched: a mount of a blob into the repository that holds
        // it rewrites its link, which the distribution registry may not serve whole meanwhile
        // (a manifest pushed at once is refused, its blob "unknown", as two platforms' reused
        // images, which share a layer, were).
        if from == to {
            return self.push_manifest(target, manifest).await;
        }
        let children: Vec<String> = manifest.json["manifests"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|m| m["digest"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let reads = children.into_iter().map(|digest: String| async move {
            let child = self.existing_manifest(&format!("{from}@{digest}")).await?;
            Ok::<_, Error>((digest, child))
        });
        let children: Vec<(String, oci::Manifest)> = futures::future::join_all(reads)
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        // Every blob once: the images of an index share some, and a registry may fail two
        // uploads of one blob to one repository at once.
        let mut blobs: Vec<oci::Descriptor> = Vec::new();
        for image in children.iter().map(|(_, m)| m).chain([&manifest]) {
            for blob in image.blobs() {
                if !blobs.iter().any(|b| b.digest == blob.digest) {
                    blobs.push(blob);
                }
            }
        }
        self.copy_blobs(&blobs, source, target).await?;
        let pushes = children.into_iter().map(|(digest, child)| async move {
            self.push_manifest(&format!("{to}@{digest}"), child).await
        });
        for pushed in futures::future::join_all(pushes).await {
            pushed?;
        }
        self.push_manifest(target, manifest).await
    }

    /// What `source` names, under every reference of `targets` at once: within its
    /// repository, its manifest (`manifest`, when read already, else read once) pushed to
    /// each; elsewhere, [`copy`](Self::copy)'d. Returns the digest.
    pub async fn tag(
        &self,
        source: &str,
        manifest: Option<&oci::Manifest>,
        targets: &[String],
    ) -> Result<String, Error> {
        let manifest = match manifest {
            Some(manifest) => manifest.clone(),
            None => self.existing_manifest(source).await?,
        };
        let from = oci::repository_of(source);
        let pushes = targets.iter().map(|target| {
            let manifest = manifest.clone();
            async move {
                if oci::repository_of(target) == from {
                    self.push_manifest(target, manifest).await
                } else {
                    self.copy(source, target).await
                }
            }
        });
        for pushed in futures::future::join_all(pushes).await {
            pushed?;
        }
        Ok(manifest.digest)
    }

    async fn existing_manifest(&self, reference: &str) -> Result<oci::Manifest, Error> {
        self.manifest(reference)
            .await?
            .ok_or_else(|| Error::NotFound {
                reference: reference.to_string(),
            })
    }

    /// The blobs `blobs` of `source`'s repository, made available in `target`'s
    /// ([`oci::Registry::copy_blobs`]): each one the target lacks is mounted within a registry,
    /// else streamed from the source.
    async fn copy_blobs(
        &self,
        blobs: &[oci::Descriptor],
        source: &str,
        target: &str,
    ) -> Result<(), Error> {
        let copies = blobs
            .iter()
            .map(|blob| (source.to_string(), target.to_string(), blob.clone()))
            .collect();
        self.client
            .copy_blobs(copies)
            .await
            .map_err(|e| Self::fail(target, e))
    }

    /// The tags of the repository of `reference`.
    pub async fn tags(&self, reference: &str) -> Result<Vec<String>, Error> {
        self.client
            .tags(reference)
            .await
            .map_err(|e| Self::fail(reference, e))
    }

    async fn push_manifest(&self, target: &str, manifest: oci::Manifest) -> Result<String, Error> {
        self.client
            .push_manifest(target, manifest.bytes, &manifest.media_type)
            .await
            .map_err(|e| Self::fail(target, e))
    }

    /// Writes an image to every reference of `names` (by digest only, untagged, when `tagged`
    /// is false: the image of one platform of an index); see
    /// [`oci::Registry::write_image_as`].
    pub async fn write_image_as(
        &self,
        names: &[String],
        layers: Vec<LayerSource>,
        config: &serde_json::Value,
        docker: bool,
        tagged: bool,
    ) -> Result<Written, Error> {
        let first = names.first().map_or("", String::as_str);
        self.client
            .write_image_as(names, layers, config, docker, tagged)
            .await
            .map_err(|e| Self::fail(first, e))
    }

    /// Writes an index of `entries` to every reference of `names`; see
    /// [`oci::Registry::write_index`].
    pub async fn write_index(
        &self,
        names: &[String],
        entries: &[IndexEntry],
        docker: bool,
    ) -> Result<Written, Error> {
        let first = names.first().map_or("", String::as_str);
        self.client
            .write_index(names, entries, docker)
            .await
            .map_err(|e| Self::fail(first, e))
    }
}

impl Registry {
    /// The images of the index `reference` names, with their platforms (`repository@digest`);
    /// `None` when it is a single image (or the registry does not have it).
    pub async fn index_images(
        &self,
        reference: &str,
    ) -> Result<Option<Vec<(op_oci::Platform, String)>>, Error> {
        let Some(manifest) = self
            .client
            .manifest(reference)
            .await
            .map_err(|e| Self::fail(reference, e))?
        else {
            return Ok(None);
        };
        let Some(list) = manifest.json["manifests"].as_array() else {
            return Ok(None);
        };
        let repository = oci::repository_of(reference);
        Ok(Some(
            list.iter()
                .filter_map(|m| {
                    let platform = op_oci::Platform {
                        os: m["platform"]["os"].as_str()?.to_string(),
                        architecture: m["platform"]["architecture"].as_str()?.to_string(),
                        variant: m["platform"]["variant"].as_str().map(str::to_string),
                    };
                    Some((platform, format!("{repository}@{}", m["digest"].as_str()?)))
                })
                .collect(),
        ))
    }

    /// The platforms of what `reference` names: `(true, each entry's)` for an index,
    /// `(false, [its config's])` for a single image.
    pub async fn platforms_of(
        &self,
        reference: &str,
    ) -> Result<(bool, Vec<op_oci::Platform>), Error> {
        if let Some(images) = self.index_images(reference).await? {
            return Ok((true, images.into_iter().map(|(p, _)| p).collect()));
        }
        let image = self.image(reference).await?;
        let (os, architecture) = image.platform();
        Ok((
            false,
            vec![op_oci::Platform {
                os: os.to_string(),
                architecture: architecture.to_string(),
                variant: None,
            }],
        ))
    }

    /// Publishes an index of `images` (`(platform, reference by digest)`, each already in the
    /// repository of every name) under every reference of `names`: a Docker manifest list when
    /// every image is a Docker manifest, else an OCI image index, each entry with its
    /// platform. With `keep_current`, a name that holds that very index already is not
    /// written again (nothing is, when every name does).
    pub async fn platform_index(
        &self,
        names: &[String],
        images: &[(op_oci::Platform, String)],
        keep_current: bool,
    ) -> Result<Index, Error> {
        let mut entries = Vec::with_capacity(images.len());
        let mut docker = true;
        for (platform, reference) in images {
            let manifest = self.existing_manifest(reference).await?;
            docker &= manifest.media_type == oci::DOCKER_MANIFEST;
            entries.push(IndexEntry {
                manifest: oci::Descriptor {
                    media_type: manifest.media_type.clone(),
                    digest: manifest.digest.clone(),
                    size: manifest.bytes.len() as u64,
                },
                os: platform.os.clone(),
                architecture: platform.architecture.clone(),
                variant: platform.variant.clone(),
            });
        }
        // Written under no name: its digest alone.
        let digest = self.write_index(&[], &entries, docker).await?.digest;
        let mut stale = names.to_vec();
        if keep_current {
            let current =
                futures::future::join_all(names.iter().map(|name| self.client.manifest(name)))
                    .await;
            stale = names
                .iter()
                .zip(current)
                .filter(|(_, current)| {
                    !matches!(current, Ok(Some(manifest)) if manifest.digest == digest)
                })
                .map(|(name, _)| name.clone())
                .collect();
        }
        if !stale.is_empty() {
            self.write_index(&stale, &entries, docker).await?;
        }
        Ok(Index {
            digest,
            written: !stale.is_empty(),
        })
    }
}

/// An index of the images of several platforms, published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub digest: String,
    /// Whether any of its names was written (else each held it already).
    pub written: bool,
}

/// What the builds ask of a registry once an image is published: the digest it serves for a
/// reference (`None` when it has none), a copy of it under another name, and an index of the
/// images of several platforms. [`Registry`] answers; tests use a fake.
pub trait Digests: Send + Sync {
    fn digest<'a>(
        &'a self,
        reference: &'a Reference,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, Error>>;

    /// See [`Registry::copy`].
    fn copy<'a>(
        &'a self,
        source: &'a str,
        target: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<String, Error>>;

    /// See [`Registry::tag`].
    fn tag<'a>(
        &'a self,
        source: &'a str,
        manifest: Option<&'a op_oci::Manifest>,
        targets: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<String, Error>>;

    /// See [`Registry::platform_index`].
    fn platform_index<'a>(
        &'a self,
        names: &'a [String],
        images: &'a [(op_oci::Platform, String)],
        keep_current: bool,
    ) -> futures::future::BoxFuture<'a, Result<Index, Error>>;

    /// See [`Registry::platforms_of`].
    fn platforms_of<'a>(
        &'a self,
        reference: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(bool, Vec<op_oci::Platform>), Error>>;

    /// See [`Registry::image`] (an index resolved to this machine's platform) and
    /// [`Registry::image_for`] (to `platform`); `None` when the registry does not have it.
    fn image<'a>(
        &'a self,
        reference: &'a str,
        platform: Option<&'a op_oci::Platform>,
    ) -> futures::future::BoxFuture<'a, Result<Option<Image>, Error>>;

    /// See [`Registry::manifest`].
    fn manifest<'a>(
        &'a self,
        reference: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<op_oci::Manifest>, Error>>;

    /// See [`Registry::image_of`].
    fn image_of<'a>(
        &'a self,
        reference: &'a str,
        manifest: op_oci::Manifest,
    ) -> futures::future::BoxFuture<'a, Result<Image, Error>>;

    /// The blob `digest` of `reference`'s repository.
    fn blob<'a>(
        &'a self,
        reference: &'a str,
        digest: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<u8>, Error>>;

    /// See [`rebase::rebase`].
    fn rebase<'a>(
        &'a self,
        request: &'a rebase::Request<'a>,
    ) -> futures::future::BoxFuture<'a, Result<rebase::Rebased, rebase::Error>>;
}

impl Digests for Registry {
    fn digest<'a>(
        &'a self,
        reference: &'a Reference,
    ) -> futures::future::BoxFuture<'a, Result<Option<String>, Error>> {
        Box::pin(Registry::digest(self, reference))
    }

    fn copy<'a>(
        &'a self,
        source: &'a str,
        target: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<String, Error>> {
        Box::pin(Registry::copy(self, source, target))
    }

    fn tag<'a>(
        &'a self,
        source: &'a str,
        manifest: Option<&'a op_oci::Manifest>,
        targets: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<String, Error>> {
        Box::pin(Registry::tag(self, source, manifest, targets))
    }

    fn platform_index<'a>(
        &'a self,
        names: &'a [String],
        images: &'a [(op_oci::Platform, String)],
        keep_current: bool,
    ) -> futures::future::BoxFuture<'a, Result<Index, Error>> {
        Box::pin(Registry::platform_index(self, names, images, keep_current))
    }

    fn platforms_of<'a>(
        &'a self,
        reference: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(bool, Vec<op_oci::Platform>), Error>> {
        Box::pin(Registry::platforms_of(self, reference))
    }

    fn image<'a>(
        &'a self,
        reference: &'a str,
        platform: Option<&'a op_oci::Platform>,
    ) -> futures::future::BoxFuture<'a, Result<Option<Image>, Error>> {
        Box::pin(async move {
            let image = match platform {
                Some(platform) => Registry::image_for(self, reference, platform).await,
                None => Registry::image(self, reference).await,
            };
            match image {
                Ok(image) => Ok(Some(image)),
                Err(Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn manifest<'a>(
        &'a self,
        reference: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<op_oci::Manifest>, Error>> {
        Box::pin(Registry::manifest(self, reference))
    }

    fn image_of<'a>(
        &'a self,
        reference: &'a str,
        manifest: op_oci::Manifest,
    ) -> futures::future::BoxFuture<'a, Result<Image, Error>> {
        Box::pin(Registry::image_of(self, reference, manifest))
    }

    fn blob<'a>(
        &'a self,
        reference: &'a str,
        digest: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move {
            self.client
                .blob(reference, digest)
                .await
                .map_err(|e| Self::fail(reference, e))
        })
    }

    fn rebase<'a>(
        &'a self,
        request: &'a rebase::Request<'a>,
    ) -> futures::future::BoxFuture<'a, Result<rebase::Rebased, rebase::Error>> {
        Box::pin(rebase::rebase(self, request))
    }
}
