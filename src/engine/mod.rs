//! The Docker Engine API. This is the only module that imports bollard: the rest of op speaks in
//! [`ContainerSpec`]s, image references and exit codes.
//!
//! The engine is found as the docker CLI finds it ([`endpoint`]): `DOCKER_HOST` (`unix://`,
//! `tcp://` with TLS when `DOCKER_TLS_VERIFY` is set, `ssh://user@host`, which runs the system's
//! `ssh`), else a docker context (`DOCKER_CONTEXT`, `docker context use`), else
//! `unix:///var/run/docker.sock`. The API version is negotiated down to what the engine speaks,
//! so older engines (Debian's 20.10, API 1.41) work; an engine below API 1.41 is refused.
//! Nothing is bind-mounted from op's host, so a remote engine works the same.

mod containers;
pub mod endpoint;
#[cfg(test)]
pub(crate) mod fake;
pub mod runner;
mod spec;
mod ssh;

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, VolumeCreateRequest};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, InspectContainerOptions, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder, TagImageOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptions,
};
use futures::{Stream, StreamExt as _, TryStreamExt as _};

pub use containers::Containers;
pub use spec::{ContainerSpec, PortMapping, PullAuth};

use crate::config::Env;
use crate::hint::Hint;
use op_oci::Reference;

/// The oldest Engine API op speaks (Docker Engine 20.10's): creating a container for a platform
/// needs it.
pub const MIN_API_MAJOR: usize = 1;
/// See [`MIN_API_MAJOR`].
pub const MIN_API_MINOR: usize = 41;

pub use endpoint::DEFAULT_HOST;

/// A tar on its way into a container, chunk by chunk, as it is made; an error ends it unfinished,
/// and the upload fails.
pub type Archive = futures::stream::BoxStream<'static, std::io::Result<Vec<u8>>>;

/// Every container and volume op creates carries this label; its value says what for (`run`,
/// `build`), so that whatever op leaves behind can be found.
pub const LABEL_KIND: &str = "io.octopilot.op.kind";

/// `<prefix>-<8 hex digits>`: a fresh name, with what the engine refuses in names replaced by
/// `-`.
pub fn unique_name(prefix: &str) -> String {
    use std::hash::BuildHasher as _;
    let random = std::collections::hash_map::RandomState::new().hash_one((
        std::process::id(),
        std::time::SystemTime::now(),
        prefix,
    ));
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{clean}-{:08x}", random & 0xffff_ffff)
}

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{host}` is not a Docker Engine address op can use")]
    BadHost {
        host: String,
        #[source]
        source: BollardError,
    },
    #[error(transparent)]
    Endpoint(Box<endpoint::Error>),
    #[error("Failed to reach the Docker Engine at `{host}` over ssh: {message}")]
    Ssh { host: String, message: String },
    #[error("Failed to open a tunnel to the Docker Engine at `{host}`")]
    Tunnel {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("No Docker Engine answers at `{host}` ({source_of_host})")]
    Unreachable {
        host: String,
        source_of_host: Box<endpoint::Source>,
        /// The TLS handshake failed over a certificate (either side's).
        tls_refused: bool,
        #[source]
        source: BollardError,
    },
    #[error(
        "The Docker Engine at `{host}` speaks API {api} at most; op needs API {MIN_API_MAJOR}.{MIN_API_MINOR} (Docker Engine 20.10) or newer"
    )]
    TooOld { host: String, api: String },
    #[error("The Docker Engine failed to {action}")]
    Api {
        action: String,
        #[source]
        source: BollardError,
    },
    #[error("Failed to pull `{image}`: {message}")]
    Pull { image: String, message: String },
    /// With `--engine kubernetes` op connects to no Docker Engine.
    #[error(
        "op has no Docker Engine to {0}: the creators run on the cluster (--engine kubernetes)"
    )]
    NotConnected(&'static str),
    #[error("Image `{image}` is not in the Docker Engine, and `--pull never` forbids pulling it")]
    NotPulled { image: String },
    #[error("The Docker Engine cannot publish a port of container `{container}`: it is taken")]
    PortTaken {
        container: String,
        #[source]
        source: BollardError,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::BadHost { .. } => {
                Some("DOCKER_HOST takes unix:///path/to/docker.sock, tcp://host:port or ssh://user@host".into())
            }
            Error::Endpoint(e) => e.hint(),
            Error::Ssh { message, .. } => Some(ssh_hint(message)),
            Error::Tunnel { .. } => Some("op needs a temporary directory it can write to (TMPDIR)".into()),
            Error::Unreachable {
                tls_refused: true, ..
            } => Some(
                "the TLS handshake failed: the ca.pem op uses must be the CA that signed the engine's certificate, and the engine must accept cert.pem and key.pem (a client certificate signed by the CA it trusts)"
                    .into(),
            ),
            Error::Unreachable { source_of_host, .. } => Some(
                match **source_of_host {
                    endpoint::Source::DockerHost => {
                        "is the engine DOCKER_HOST names running? Unset DOCKER_HOST to use /var/run/docker.sock"
                    }
                    endpoint::Source::Context { .. } => {
                        "is the engine of that docker context running? `docker context use default` goes back to /var/run/docker.sock"
                    }
                    endpoint::Source::Default => {
                        "start the Docker Engine (scripts/dev-env does, on Debian), or point DOCKER_HOST at one"
                    }
                }
                .into(),
            ),
            Error::Pull { .. } => Some(
                "check the reference and that the registry is reachable from the engine; a registry on \
                 localhost must be plain HTTP or trusted by the engine"
                    .into(),
            ),
            Error::NotPulled { .. } => Some("pull it, or use `--pull if-not-present`".into()),
            Error::PortTaken { .. } => Some("choose another host port, or stop what uses it".into()),
            Error::TooOld { .. } => Some(
                "upgrade the engine, or point DOCKER_HOST at a newer one (`op version -v` shows what op finds)".into(),
            ),
            Error::Api { .. } | Error::NotConnected(_) => None,
        }
    }
}

/// The name of the machine op runs on (its host name, as the engine's `Name` is its machine's);
/// empty when it cannot be read.
pub fn this_machine() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The `driver-type` of an engine's storage (`io.containerd.snapshotter.v1` with containerd's
/// image store; absent with a graph driver).
fn driver_type(info: &bollard::models::SystemInfo) -> Option<String> {
    info.driver_status
        .iter()
        .flatten()
        .find(|pair| pair.first().map(String::as_str) == Some("driver-type"))
        .and_then(|pair| pair.get(1).cloned())
}

/// Whether `error` (or one of its causes) is a TLS handshake that failed over a certificate:
/// rustls' own verdict on the engine's, or the engine's alert about op's.
fn is_certificate_failure(error: &BollardError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        let text = e.to_string();
        if [
            "certificate",
            "UnknownCA",
            "BadCertificate",
            "UnknownIssuer",
            "CertificateRequired",
        ]
        .iter()
        .any(|needle| text.contains(needle))
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// What to do about what `ssh` said.
fn ssh_hint(said: &str) -> String {
    if said.contains("Host key verification failed") || said.contains("REMOTE HOST IDENTIFICATION")
    {
        "the host's key is not in known_hosts (or changed): check it and add it, e.g. by running `ssh` to it once by hand; op never accepts a host key it does not know"
            .into()
    } else if said.contains("Permission denied") {
        "op runs ssh without prompting (BatchMode): use a key the remote user's authorized_keys accepts, through ~/.ssh/config or an ssh agent"
            .into()
    } else if said.contains("Connection refused") || said.contains("timed out") {
        "is sshd running there, on that port? DOCKER_HOST takes ssh://user@host:port".into()
    } else if said.contains("not found") || said.contains("dial-stdio") {
        "the remote host needs the docker CLI on its PATH: op runs `docker system dial-stdio` there, as the docker CLI does"
            .into()
    } else {
        "DOCKER_HOST=ssh://user@host[:port] runs `ssh user@host docker system dial-stdio`; try that command by hand"
            .into()
    }
}

/// When to pull an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull even when the engine has the image.
    Always,
    /// Pull only when the engine does not have it.
    Missing,
    /// Never pull.
    Never,
}

/// What op reads of an image's config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub id: String,
    /// `repository@sha256:…` names the engine gives the image (with containerd's image store,
    /// also for images that were never pushed: see docs/configuration.md).
    pub repo_digests: Vec<String>,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub os: String,
    pub architecture: String,
    /// The diff ids of its layers (`RootFS.Layers`).
    pub layers: Vec<String>,
}

/// What an engine says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// Where op found it.
    pub host: String,
    /// Its version (`29.1.0`, `20.10.24+dfsg1`).
    pub version: String,
    /// The newest API it speaks.
    pub api: String,
    /// The oldest API it speaks.
    pub min_api: String,
    /// The API op and the engine agreed on.
    pub negotiated_api: String,
    pub os: String,
    pub architecture: String,
    /// `overlay2` (a graph driver) or, with containerd's image store, the snapshotter
    /// (`overlayfs`).
    pub storage_driver: String,
    /// `io.containerd.snapshotter.v1` with containerd's image store.
    pub driver_type: Option<String>,
    /// Whether images live in containerd's image store (Docker 29's default, which holds
    /// indexes, every platform of one image) rather than a graph driver's (one platform per
    /// image).
    pub containerd_store: bool,
    /// The name of the machine it runs on (`docker info`'s `Name`: its host name).
    pub machine: String,
}

impl Description {
    /// The image store, as a user reads it.
    pub fn image_store(&self) -> String {
        if self.containerd_store {
            format!("containerd (snapshotter {})", self.storage_driver)
        } else {
            format!("graph driver {}", self.storage_driver)
        }
    }
}

/// A chunk of a container's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// A container's output, as it comes.
pub type OutputStream = Pin<Box<dyn Stream<Item = Result<Output, Error>> + Send>>;

/// A connected Docker Engine.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: Docker,
    host: String,
    /// What it said of itself when op connected.
    description: Description,
    /// For an `ssh://` engine, the tunnel bollard's socket leads through; it lives as long as
    /// the last clone of the engine.
    _tunnel: Option<std::sync::Arc<ssh::Tunnel>>,
}

impl Engine {
    /// Connects to the engine the environment names as the docker CLI finds it ([`endpoint`]:
    /// `DOCKER_HOST` with its TLS settings, else the docker context, else the default socket),
    /// checks that it answers, and negotiates the API version.
    pub async fn connect(env: &Env) -> Result<Self, Error> {
        let endpoint = endpoint::resolve(env).map_err(|e| Error::Endpoint(Box::new(e)))?;
        let host = endpoint.host.clone();
        let tunnel = match ssh::Target::parse(&host) {
            Some(target) => Some(std::sync::Arc::new(ssh::Tunnel::open(&target).map_err(
                |source| Error::Tunnel {
                    host: host.clone(),
                    source,
                },
            )?)),
            None if host.starts_with("ssh://") => {
                return Err(Error::BadHost {
                    host: host.clone(),
                    source: BollardError::UnsupportedURISchemeError { uri: host.clone() },
                });
            }
            None => None,
        };
        let connected = match (&tunnel, &endpoint.tls) {
            (Some(tunnel), _) => {
                Docker::connect_with_unix(&tunnel.host(), 120, bollard::API_DEFAULT_VERSION)
            }
            (None, Some(tls)) => Docker::connect_with_ssl(
                &host,
                &tls.key,
                &tls.cert,
                &tls.ca,
                120,
                bollard::API_DEFAULT_VERSION,
            ),
            (None, None) => Docker::connect_with_host(&host),
        };
        let docker = connected.map_err(|source| match source {
            BollardError::SocketNotFoundError(_) => Error::Unreachable {
                host: host.clone(),
                source_of_host: Box::new(endpoint.source.clone()),
                tls_refused: false,
                source,
            },
            source => Error::BadHost {
                host: host.clone(),
                source,
            },
        })?;
        if let Err(source) = docker.ping().await {
            if let Some(tunnel) = &tunnel
                && let Some(message) = tunnel.last_error(std::time::Duration::from_secs(3)).await
            {
                return Err(Error::Ssh { host, message });
            }
            return Err(Error::Unreachable {
                host,
                source_of_host: Box::new(endpoint.source),
                tls_refused: endpoint.tls.is_some() && is_certificate_failure(&source),
                source,
            });
        }
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|source| api("tell its API version", source))?;
        let negotiated = docker.client_version();
        if (negotiated.major_version, negotiated.minor_version) < (MIN_API_MAJOR, MIN_API_MINOR) {
            return Err(Error::TooOld {
                host,
                api: negotiated.to_string(),
            });
        }
        // One look at what the engine is, kept: the builds need its architecture, store and
        // machine, `op version -v` all of it. Both asked at once.
        let (version, info) = futures::future::join(docker.version(), docker.info()).await;
        let version = version.map_err(|source| api("tell its version", source))?;
        let info = info.map_err(|source| api("describe itself", source))?;
        let driver_type = driver_type(&info);
        let description = Description {
            host: host.clone(),
            version: version.version.unwrap_or_default(),
            api: version.api_version.unwrap_or_default(),
            min_api: version.min_api_version.unwrap_or_default(),
            negotiated_api: negotiated.to_string(),
            os: version.os.unwrap_or_default(),
            architecture: version.arch.unwrap_or_default(),
            storage_driver: info.driver.unwrap_or_default(),
            containerd_store: driver_type
                .as_deref()
                .is_some_and(|t| t.starts_with("io.containerd.snapshotter")),
            driver_type,
            machine: info.name.unwrap_or_default(),
        };
        tracing::debug!(host, version = %negotiated, architecture = description.architecture, "connected to the Docker Engine");
        Ok(Self {
            docker,
            host,
            description,
            _tunnel: tunnel,
        })
    }

    /// What the engine is: its version, API and image store (as it said when op connected).
    pub fn describe(&self) -> &Description {
        &self.description
    }

    /// The name of the machine the engine runs on (its host name), as it says.
    pub fn machine(&self) -> &str {
        &self.description.machine
    }

    /// Whether images live in containerd's image store, which holds every platform of an index.
    pub fn containerd_store(&self) -> bool {
        self.description.containerd_store
    }

    /// The engine's architecture as image configs name it (`amd64`, `arm64`).
    pub fn architecture(&self) -> &str {
        &self.description.architecture
    }

    /// The address of the engine.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The config of `image` when the engine has it.
    async fn inspected(&self, image: &str) -> Result<Option<ImageConfig>, Error> {
        match self.docker.inspect_image(image).await {
            Ok(inspected) => Ok(Some(image_config_of(inspected))),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(source) => Err(api(&format!("inspect image `{image}`"), source)),
        }
    }

    /// Makes sure the engine has `image`, pulling it as `policy` says. `progress` receives a line
    /// per pull status change. Returns whether it pulled.
    pub async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&PullAuth>,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<bool, Error> {
        let (pulled, _) = self.ensure(image, policy, auth, progress).await?;
        Ok(pulled)
    }

    /// [`Engine::ensure_image`], then the image's config, with one inspect when the engine has
    /// the image (containerd's image store takes about 50 ms for each).
    pub async fn ensure_image_config(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&PullAuth>,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(bool, ImageConfig), Error> {
        match self.ensure(image, policy, auth, progress).await? {
            (pulled, Some(config)) => Ok((pulled, config)),
            (pulled, None) => Ok((pulled, self.image_config(image).await?)),
        }
    }

    /// The pull policy, once: whether it pulled, and the image's config when the inspect that
    /// found it present gave it.
    async fn ensure(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&PullAuth>,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(bool, Option<ImageConfig>), Error> {
        let present = match policy {
            PullPolicy::Always => None,
            PullPolicy::Missing | PullPolicy::Never => self.inspected(image).await?,
        };
        match (present, policy) {
            (Some(config), _) => Ok((false, Some(config))),
            (None, PullPolicy::Never) => Err(Error::NotPulled {
                image: image.to_string(),
            }),
            (None, _) => self
                .pull(image, auth, progress)
                .await
                .map(|()| (true, None)),
        }
    }

    /// Pulls `image` (a tag, a digest, or both: a digest wins), with `auth` when the registry
    /// needs credentials.
    pub async fn pull(
        &self,
        image: &str,
        auth: Option<&PullAuth>,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), Error> {
        self.pull_platform(image, None, auth, progress).await
    }

    /// Pulls `image` as [`Engine::pull`] does, for `platform` (`os/arch[/variant]`) when given:
    /// with containerd's image store, each platform of an index pulled this way is kept.
    pub async fn pull_platform(
        &self,
        image: &str,
        platform: Option<&str>,
        auth: Option<&PullAuth>,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), Error> {
        let pull_error = |message: String| Error::Pull {
            image: image.to_string(),
            message,
        };
        let reference = Reference::parse(image).map_err(|e| pull_error(e.to_string()))?;
        let (name, version) = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => (reference.name(), digest.clone()),
            (None, Some(tag)) => (reference.name(), tag.clone()),
            (None, None) => (reference.name(), crate::config::DEFAULT_TAG.to_string()),
        };
        let mut options = CreateImageOptionsBuilder::default()
            .from_image(&name)
            .tag(&version);
        if let Some(platform) = platform {
            options = options.platform(platform);
        }
        let options = options.build();
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: a.username.clone(),
            password: a.password.clone(),
            serveraddress: Some(a.server.clone()),
            identitytoken: a.identity_token.clone(),
            registrytoken: a.registry_token.clone(),
            ..bollard::auth::DockerCredentials::default()
        });
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        let mut last = String::new();
        while let Some(event) = stream.next().await {
            let info = event.map_err(|e| match e {
                BollardError::DockerStreamError { error } => pull_error(error),
                BollardError::DockerResponseServerError { message, .. } => pull_error(message),
                other => pull_error(other.to_string()),
            })?;
            let line = match (&info.id, &info.status) {
                (Some(id), Some(status)) => format!("{id}: {status}"),
                (None, Some(status)) => status.clone(),
                _ => continue,
            };
            if line != last {
                progress(&line);
                last = line;
            }
        }
        Ok(())
    }

    /// Creates a container; returns its id.
    pub async fn create(&self, spec: &ContainerSpec) -> Result<String, Error> {
        let mut exposed: Vec<String> = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for port in &spec.ports {
            let key = format!("{}/{}", port.container_port, port.protocol);
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: port.host_ip.clone(),
                    host_port: Some(port.host_port.map(|p| p.to_string()).unwrap_or_default()),
                });
        }
        let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                binds: non_empty(&spec.binds),
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                network_mode: spec.network_mode.clone(),
                security_opt: non_empty(&spec.security_opt),
                auto_remove: Some(spec.auto_remove),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = (spec.name.is_some() || spec.platform.is_some()).then(|| {
            let mut options = CreateContainerOptionsBuilder::default();
            if let Some(name) = &spec.name {
                options = options.name(name);
            }
            if let Some(platform) = &spec.platform {
                options = options.platform(platform);
            }
            options.build()
        });
        let created = self
            .docker
            .create_container(options, body)
            .await
            .map_err(|source| api(&format!("create a container from `{}`", spec.image), source))?;
        Ok(created.id)
    }

    /// Attaches to the output of a created container. Attach before starting it, so that no
    /// output is lost: the engine subscribes to the container's streams before it answers the
    /// attach request. Without `logs`: with it, the engine replays the log file after
    /// subscribing, and what the container writes while it does arrives twice.
    pub async fn attach(&self, id: &str) -> Result<OutputStream, Error> {
        let options = AttachContainerOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|source| api(&format!("attach to container `{}`", short(id)), source))?;
        let output = attached.output.filter_map(|chunk| async move {
            match chunk {
                Ok(
                    bollard::container::LogOutput::StdOut { message }
                    | bollard::container::LogOutput::Console { message },
                ) => Some(Ok(Output::Stdout(message.to_vec()))),
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    Some(Ok(Output::Stderr(message.to_vec())))
                }
                Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                Err(source) => Some(Err(api("stream container output", source))),
            }
        });
        Ok(Box::pin(output))
    }

    /// Starts a created container. A host port that something else holds is
    /// [`Error::PortTaken`].
    pub async fn start(&self, id: &str) -> Result<(), Error> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|source| match &source {
                BollardError::DockerResponseServerError { message, .. }
                    if message.contains("port is already allocated")
                        || message.contains("address already in use") =>
                {
                    Error::PortTaken {
                        container: short(id).to_string(),
                        source,
                    }
                }
                _ => api(&format!("start container `{}`", short(id)), source),
            })
    }

    /// Waits until the container stops; returns its exit code. A non-zero exit is a result, not
    /// an error.
    pub async fn wait(&self, id: &str) -> Result<i64, Error> {
        let mut stream = self.docker.wait_container(id, None::<WaitContainerOptions>);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(source)) => Err(api(&format!("wait for container `{}`", short(id)), source)),
            None => Err(Error::Api {
                action: format!("wait for container `{}`", short(id)),
                source: BollardError::DockerStreamError {
                    error: "the engine closed the wait without a status".into(),
                },
            }),
        }
    }

    /// Stops a container (SIGTERM, then SIGKILL after `grace_seconds`). A container that is
    /// already stopped or gone is fine.
    pub async fn stop(&self, id: &str, grace_seconds: i32) -> Result<(), Error> {
        let options = StopContainerOptionsBuilder::default()
            .t(grace_seconds)
            .build();
        match self.docker.stop_container(id, Some(options)).await {
            Err(e) if !matches!(status(&e), Some(304 | 404)) => {
                Err(api(&format!("stop container `{}`", short(id)), e))
            }
            _ => Ok(()),
        }
    }

    /// Removes a container (forcefully: it may still run). A container that is gone is fine.
    pub async fn remove(&self, id: &str) -> Result<(), Error> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Err(e) if !matches!(status(&e), Some(404 | 409)) => {
                Err(api(&format!("remove container `{}`", short(id)), e))
            }
            _ => Ok(()),
        }
    }

    /// The config of `image` in the engine: its id, environment, labels and platform.
    pub async fn image_config(&self, image: &str) -> Result<ImageConfig, Error> {
        let inspected = self
            .docker
            .inspect_image(image)
            .await
            .map_err(|source| api(&format!("inspect image `{image}`"), source))?;
        Ok(image_config_of(inspected))
    }

    /// Tags the engine's `image` as `reference` (`repository:tag`).
    pub async fn tag(&self, image: &str, reference: &str) -> Result<(), Error> {
        let parsed = Reference::parse(reference).map_err(|e| Error::Pull {
            image: reference.to_string(),
            message: e.to_string(),
        })?;
        let tag = parsed
            .tag
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_TAG.to_string());
        let options = TagImageOptionsBuilder::default()
            .repo(&parsed.name())
            .tag(&tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(|source| api(&format!("tag image `{image}` as `{reference}`"), source))
    }

    /// Creates the named volume `name` with `labels` (nothing happens when it exists).
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..VolumeCreateRequest::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|source| api(&format!("create volume `{name}`"), source))
    }

    /// Removes the volume `name`; one that is gone is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match self.docker.remove_volume(name, Some(options)).await {
            Err(e) if status(&e) != Some(404) => Err(api(&format!("remove volume `{name}`"), e)),
            _ => Ok(()),
        }
    }

    /// Extracts the tar `archive` at `path` in a (created, not necessarily started) container,
    /// streaming its chunks as they come. The ownership in the tar's headers is kept.
    pub async fn upload(&self, id: &str, path: &str, archive: Archive) -> Result<(), Error> {
        let options = UploadToContainerOptionsBuilder::default()
            .path(path)
            .build();
        let body = bollard::body_try_stream(archive.map_ok(Into::into));
        self.docker
            .upload_to_container(id, Some(options), body)
            .await
            .map_err(|source| {
                api(
                    &format!("copy files into container `{}`", short(id)),
                    source,
                )
            })
    }

    /// The tar of `path` in a container (which may have stopped); `None` when it does not exist.
    pub async fn download(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(e) if status(&e) == Some(404) => return Ok(None),
                Err(source) => {
                    return Err(api(
                        &format!("copy `{path}` out of container `{}`", short(id)),
                        source,
                    ));
                }
            }
        }
        Ok(Some(data))
    }

    /// How long a stopped container ran, as the engine recorded it.
    pub async fn run_time(&self, id: &str) -> Result<Option<std::time::Duration>, Error> {
        // Asked right after the wait: an engine may not have recorded the end yet (a state
        // still running, or no `FinishedAt`); it is asked again, briefly.
        for attempt in 0..5 {
            let inspected = self
                .docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
                .map_err(|source| api(&format!("inspect container `{}`", short(id)), source))?;
            let state = inspected.state.unwrap_or_default();
            let seconds = |t: Option<&str>| t.and_then(rfc3339_seconds);
            let (start, end) = (
                seconds(state.started_at.as_deref()),
                seconds(state.finished_at.as_deref()),
            );
            match (start, end) {
                (Some(start), Some(end)) if end >= start && state.running != Some(true) => {
                    return Ok(Some(std::time::Duration::from_secs_f64(end - start)));
                }
                _ if attempt < 4 => {
                    tracing::debug!(container = %short(id), started = ?state.started_at, finished = ?state.finished_at, running = ?state.running, "the engine has not recorded the end yet");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The host ports the engine published for a running container: `(container port, host
    /// port)` pairs.
    pub async fn published_ports(&self, id: &str) -> Result<Vec<(u16, u16)>, Error> {
        let inspected = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|source| api(&format!("inspect container `{}`", short(id)), source))?;
        let ports = inspected
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        let mut out: Vec<(u16, u16)> = ports
            .iter()
            .filter_map(|(key, bindings)| {
                let container = key.split('/').next()?.parse().ok()?;
                let host = bindings
                    .as_ref()?
                    .iter()
                    .find_map(|b| b.host_port.as_deref()?.parse().ok())?;
                Some((container, host))
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

fn api(action: &str, source: BollardError) -> Error {
    Error::Api {
        action: action.to_string(),
        source,
    }
}

/// The HTTP status of an engine error, when it is one.
fn status(error: &BollardError) -> Option<u16> {
    match error {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Seconds since the epoch of an RFC 3339 time as the engine writes it
/// (`2026-11-21T13:30:00.123456789Z`, or with an offset).
fn rfc3339_seconds(text: &str) -> Option<f64> {
    let (date, rest) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let mut hms = time.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: f64 = hms.next()?.parse().ok()?;
    let offset = match zone.chars().next() {
        Some(sign @ ('+' | '-')) => {
            let (h, m) = zone[1..].split_once(':')?;
            let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
            if sign == '+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => 0,
    };
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    #[allow(
        clippy::cast_precision_loss,
        reason = "seconds since 1970 fit an f64 exactly"
    )]
    let whole = (days * 86_400 + hour * 3600 + minute * 60 - offset) as f64;
    Some(whole + second)
}

/// The short form of a container id, as `docker ps` shows it.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// What op reads of an inspected image.
fn image_config_of(inspected: bollard::models::ImageInspect) -> ImageConfig {
    let config = inspected.config.unwrap_or_default();
    ImageConfig {
        id: inspected.id.unwrap_or_default(),
        repo_digests: inspected.repo_digests.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        os: inspected.os.unwrap_or_default(),
        architecture: inspected.architecture.unwrap_or_default(),
        layers: inspected
            .root_fs
            .and_then(|root| root.layers)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_times_are_read_to_the_nanosecond() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        let a = rfc3339_seconds("2026-11-21T13:30:00.25Z").unwrap();
        let b = rfc3339_seconds("2026-11-21T13:30:02.75Z").unwrap();
        assert!((b - a - 2.5).abs() < 1e-6);
        assert_eq!(
            rfc3339_seconds("2024-02-29T23:59:59Z"),
            Some(1_709_251_199.0)
        );
        assert_eq!(
            rfc3339_seconds("2024-03-01T01:00:00+01:00"),
            Some(1_709_251_200.0)
        );
        assert_eq!(
            rfc3339_seconds("0001-01-01T00:00:00Z").map(|s| s < 0.0),
            Some(true),
            "the engine's zero time"
        );
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }
}
