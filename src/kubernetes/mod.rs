//! The Kubernetes API, through kube-rs: the only module that uses `kube` and `k8s-openapi`.
//!
//! - [`Cluster::connect`] finds the cluster as kubectl does: `--kubeconfig`, else `KUBECONFIG`
//!   (several files, merged by kubectl's rules: the first to set a value wins), else
//!   `~/.kube/config`; `--context` picks a context (else the current one); without any file, the
//!   in-cluster configuration of a pod (its service account's token and CA).
//! - [`Watch`] follows one object by name: a list, then a watch from the listed
//!   `resourceVersion`, re-established when it ends or is cut (with a pause that grows) and
//!   re-listed when the server says the version expired (410), never a poll.
//! - What op reads of a Deployment ([`DeploymentState`]) and of a Flux `HelmRelease`
//!   ([`HelmReleaseState`]) are op's own types; nothing of kube-rs leaves this module.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt as _, stream::BoxStream};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::config::Env;
use crate::hint::Hint;

mod pods;
pub use pods::{BuildPod, CREATOR, INPUTS, OUTPUTS, PodRun, Room, Stage};

/// Flux's `HelmRelease`, as its CRD serves it.
const HELM_RELEASE_GROUP: &str = "helm.toolkit.fluxcd.io";
const HELM_RELEASE_VERSION: &str = "v2";
/// The annotation the flux CLI sets to ask for a reconciliation.
pub const RECONCILE_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// What failed talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No Kubernetes configuration: {0}")]
    NoConfig(String),
    #[error("The Kubernetes configuration {source_name} cannot be used")]
    Config {
        source_name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("The Kubernetes configuration {files} has no context `{name}`")]
    NoContext {
        name: String,
        files: String,
        known: String,
    },
    #[error("The Kubernetes API at {server} refused to {action}: {message} ({code})")]
    Refused {
        server: String,
        action: String,
        code: u16,
        message: String,
    },
    #[error("The Kubernetes API at {server} broke off while op was to {action}")]
    Stream {
        server: String,
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("The Kubernetes API at {server} could not be asked to {action}")]
    Unreachable {
        server: String,
        action: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Whether a TLS certificate was refused on the way.
    fn certificate_problem(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            let text = error.to_string().to_ascii_lowercase();
            if text.contains("certificate") || text.contains("unknownissuer") {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NoConfig(_) => "give one with --kubeconfig or KUBECONFIG (kubectl's files), or run op \
                                   in a pod with a service account"
                .into(),
            Error::Config { .. } => "check the file with `kubectl config view`; --context picks one of its \
                                     contexts"
                .into(),
            Error::NoContext { known, .. } if known.is_empty() => {
                "it has no contexts at all: check the file, or KUBECONFIG".into()
            }
            Error::NoContext { known, .. } => format!("its contexts are: {known}"),
            Error::Refused { code: 401, .. } => "the cluster did not accept the credentials of the \
                                                 kubeconfig (an expired token or certificate?): log in again"
                .into(),
            Error::Refused { code: 403, .. } => "the account of the kubeconfig may not do this: it needs to get, \
                                                 list and watch deployments (and patch helmreleases, with \
                                                 Flux) in the namespace"
                .into(),
            Error::Refused { .. } => return None,
            Error::Stream { server, .. } => {
                format!("check that {server} and the node of the pod are reachable, and try again")
            }
            error @ Error::Unreachable { server, .. } if error.certificate_problem() => format!(
                "{server}'s certificate is not signed by the CA of the kubeconfig \
                 (certificate-authority-data): fix the kubeconfig's cluster entry"
            ),
            Error::Unreachable { server, .. } => {
                format!("check that {server} is reachable from here and the cluster is running")
            }
        })
    }
}

/// A connection to one cluster, and how many API requests it made.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    server: String,
    requests: Arc<AtomicUsize>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Where the configuration came from, for messages.
fn kubeconfig_files(env: &Env, explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_path_buf()];
    }
    if let Some(list) = env.get("KUBECONFIG") {
        return std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    env.get("HOME")
        .map(|home| Path::new(home).join(".kube").join("config"))
        .filter(|p| p.is_file())
        .into_iter()
        .collect()
}

impl Cluster {
    /// Connects as kubectl would, with `kubeconfig` (`--kubeconfig`) and `context`
    /// (`--context`).
    pub async fn connect(
        env: &Env,
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Self, Error> {
        let files = kubeconfig_files(env, kubeconfig);
        let config = if files.is_empty() {
            let in_cluster = env.get("KUBERNETES_SERVICE_HOST").is_some();
            if !in_cluster {
                return Err(Error::NoConfig(
                    "no --kubeconfig, no KUBECONFIG, no ~/.kube/config, and not in a pod".into(),
                ));
            }
            kube::Config::incluster().map_err(|e| Error::Config {
                source_name: "of this pod (its service account)".into(),
                source: Box::new(e),
            })?
        } else {
            let names = files
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ");
            let config_error = |e: kube::config::KubeconfigError| Error::Config {
                source_name: names.clone(),
                source: Box::new(e),
            };
            let mut merged = Kubeconfig::default();
            for file in &files {
                let read = Kubeconfig::read_from(file).map_err(config_error)?;
                merged = merged.merge(read).map_err(config_error)?;
            }
            if let Some(wanted) = context
                && !merged.contexts.iter().any(|c| c.name == wanted)
            {
                let known: Vec<&str> = merged.contexts.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::NoContext {
                    name: wanted.to_string(),
                    files: names,
                    known: known.join(", "),
                });
            }
            let options = KubeConfigOptions {
                context: context.map(str::to_string),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(merged, &options)
                .await
                .map_err(config_error)?
        };
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let client = kube::Client::try_from(config).map_err(|e| Error::Config {
            source_name: format!("of {server}"),
            source: Box::new(e),
        })?;
        Ok(Self {
            client,
            server,
            requests: Arc::default(),
        })
    }

    /// The API server's address.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// How many API requests this connection made (a watch is one).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, action: &str, error: kube::Error) -> Error {
        match error {
            kube::Error::Api(status) => Error::Refused {
                server: self.server.clone(),
                action: action.to_string(),
                code: status.code,
                message: status.message.clone(),
            },
            other => Error::Unreachable {
                server: self.server.clone(),
                action: action.to_string(),
                source: other,
            },
        }
    }

    /// Follows the Deployment `name` of `namespace`.
    pub fn deployment(&self, namespace: &str, name: &str) -> Watch<DeploymentState> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        Watch::new(
            self.clone(),
            Source::Deployment(api),
            format!("deployment {namespace}/{name}"),
            name,
        )
    }

    fn helm_releases(&self, namespace: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(HELM_RELEASE_GROUP, HELM_RELEASE_VERSION, "HelmRelease");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "helmreleases");
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    /// Whether the cluster serves Flux's `HelmRelease` (its CRD is installed).
    pub async fn serves_helm_releases(&self) -> Result<bool, Error> {
        self.count();
        let version = format!("{HELM_RELEASE_GROUP}/{HELM_RELEASE_VERSION}");
        match self.client.list_api_group_resources(&version).await {
            Ok(list) => Ok(list.resources.iter().any(|r| r.name == "helmreleases")),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(self.fail(&format!("list the resources of {version}"), e)),
        }
    }

    /// The `HelmRelease` `name` of `namespace`, if there is one.
    pub async fn helm_release(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<HelmReleaseState>, Error> {
        self.count();
        self.helm_releases(namespace)
            .get_opt(name)
            .await
            .map(|found| found.map(|o| HelmReleaseState::of(&o)))
            .map_err(|e| self.fail(&format!("get helmrelease {namespace}/{name}"), e))
    }

    /// Asks Flux to reconcile the `HelmRelease` `name` as the flux CLI does: the annotation
    /// [`RECONCILE_ANNOTATION`] set to `token` with a merge patch.
    pub async fn request_reconcile(
        &self,
        namespace: &str,
        name: &str,
        token: &str,
    ) -> Result<(), Error> {
        self.count();
        let patch = serde_json::json!({
            "metadata": {"annotations": {RECONCILE_ANNOTATION: token}}
        });
        self.helm_releases(namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&format!("annotate helmrelease {namespace}/{name}"), e))
    }

    /// Follows the `HelmRelease` `name` of `namespace`.
    pub fn helm_release_watch(&self, namespace: &str, name: &str) -> Watch<HelmReleaseState> {
        Watch::new(
            self.clone(),
            Source::HelmRelease(self.helm_releases(namespace)),
            format!("helmrelease {namespace}/{name}"),
            name,
        )
    }
}

/// A fresh reconcile token, as the flux CLI makes them: now, RFC 3339 with nanoseconds, UTC.
pub fn reconcile_token() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// What op reads of a Deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentState {
    pub generation: i64,
    pub observed_generation: i64,
    /// `spec.replicas` (1 when unset, as the API defaults it).
    pub desired: i32,
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// The images of every container and init container of its pod template.
    pub images: Vec<String>,
    /// `spec.progressDeadlineSeconds`.
    pub progress_deadline_seconds: Option<i32>,
    /// The `Progressing` condition's reason and message, when it has one.
    pub progressing: Option<(String, String)>,
}

impl DeploymentState {
    fn of(deployment: &Deployment) -> Self {
        let spec = &deployment.spec;
        let status = deployment.status.as_ref();
        let template = spec.template.spec.as_ref();
        let images = template
            .map(|pod| {
                pod.init_containers
                    .iter()
                    .flatten()
                    .chain(&pod.containers)
                    .filter_map(|c| c.image.clone())
                    .collect()
            })
            .unwrap_or_default();
        let progressing = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|conditions| {
                conditions
                    .iter()
                    .find(|c| c.type_.as_deref() == Some("Progressing"))
            })
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            });
        Self {
            generation: deployment.metadata.generation.unwrap_or_default(),
            observed_generation: status
                .and_then(|s| s.observed_generation)
                .unwrap_or_default(),
            desired: spec.replicas.unwrap_or(1),
            replicas: status.and_then(|s| s.replicas).unwrap_or_default(),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or_default(),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or_default(),
            available: status
                .and_then(|s| s.available_replicas)
                .unwrap_or_default(),
            images,
            progress_deadline_seconds: spec.progress_deadline_seconds,
            progressing,
        }
    }
}

/// A condition of a Flux object: its status (`True`, `False`, `Unknown`), reason and message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// What op reads of a Flux `HelmRelease`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelmReleaseState {
    pub generation: i64,
    pub observed_generation: i64,
    pub suspended: bool,
    /// `status.lastHandledReconcileAt`: the last reconcile request the controller handled.
    pub last_handled_reconcile_at: Option<String>,
    pub ready: Option<Condition>,
    pub stalled: Option<Condition>,
}

impl HelmReleaseState {
    fn of(object: &DynamicObject) -> Self {
        let data = &object.data;
        let condition = |kind: &str| {
            data["status"]["conditions"]
                .as_array()
                .and_then(|all| all.iter().find(|c| c["type"] == kind))
                .map(|c| Condition {
                    status: text(&c["status"]),
                    reason: text(&c["reason"]),
                    message: text(&c["message"]),
                })
        };
        Self {
            generation: object.metadata.generation.unwrap_or_default(),
            observed_generation: data["status"]["observedGeneration"]
                .as_i64()
                .unwrap_or_default(),
            suspended: data["spec"]["suspend"].as_bool().unwrap_or(false),
            last_handled_reconcile_at: data["status"]["lastHandledReconcileAt"]
                .as_str()
                .map(str::to_string),
            ready: condition("Ready"),
            stalled: condition("Stalled"),
        }
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The API a [`Watch`] reads.
enum Source {
    Deployment(Api<Deployment>),
    HelmRelease(Api<DynamicObject>),
}

/// An event of a watch, as op's type `T`.
enum Event<T> {
    /// Added or modified, with its resource version.
    Present(T, Option<String>),
    Deleted(Option<String>),
    Bookmark(String),
    /// The version the watch started from is gone: list again.
    Expired,
    /// Another error the server sent in the stream.
    Failed(u16, String),
}

/// What a [`Watch`] can follow: op's reading of the objects it lists and watches.
pub trait Observed: Sized {
    fn from_deployment(_: &Deployment) -> Option<Self> {
        None
    }
    fn from_dynamic(_: &DynamicObject) -> Option<Self> {
        None
    }
}

impl Observed for DeploymentState {
    fn from_deployment(deployment: &Deployment) -> Option<Self> {
        Some(Self::of(deployment))
    }
}

impl Observed for HelmReleaseState {
    fn from_dynamic(object: &DynamicObject) -> Option<Self> {
        Some(Self::of(object))
    }
}

/// One object followed by name: each call of [`Watch::next`] gives its next state (`None`: it
/// does not exist, or was deleted).
pub struct Watch<T> {
    cluster: Cluster,
    source: Source,
    what: String,
    name: String,
    version: Option<String>,
    stream: Option<BoxStream<'static, Result<Event<T>, kube::Error>>>,
    /// Whether a list succeeded (interruptions are borne only after one).
    listed: bool,
    /// Interruptions in a row, since the last event.
    interruptions: u32,
}

impl<T: Observed + Send + 'static> Watch<T> {
    fn new(cluster: Cluster, source: Source, what: String, name: &str) -> Self {
        Self {
            cluster,
            source,
            what,
            name: name.to_string(),
            version: None,
            stream: None,
            listed: false,
            interruptions: 0,
        }
    }

    fn selector(&self) -> String {
        format!("metadata.name={}", self.name)
    }

    /// Lists the object: its state and the list's resource version.
    async fn list(&mut self) -> Result<Option<T>, Error> {
        self.cluster.count();
        let params = ListParams::default().fields(&self.selector());
        let action = format!("list {}", self.what);
        let (found, version) = match &self.source {
            Source::Deployment(api) => {
                let list = api
                    .list(&params)
                    .await
                    .map_err(|e| self.cluster.fail(&action, e))?;
                (
                    list.items.first().and_then(T::from_deployment),
                    list.metadata.resource_version,
                )
            }
            Source::HelmRelease(api) => {
                let list = api
                    .list(&params)
                    .await
                    .map_err(|e| self.cluster.fail(&action, e))?;
                (
                    list.items.first().and_then(T::from_dynamic),
                    list.metadata.resource_version,
                )
            }
        };
        self.version = version;
        Ok(found)
    }

    /// Starts a watch from the last version seen.
    async fn watch(&mut self) -> Result<(), Error> {
        self.cluster.count();
        // The server ends a watch after this long at most; it is then started again.
        let params = WatchParams::default().fields(&self.selector()).timeout(290);
        let version = self.version.clone().unwrap_or_else(|| "0".into());
        let action = format!("watch {}", self.what);
        let stream = match &self.source {
            Source::Deployment(api) => api
                .watch(&params, &version)
                .await
                .map_err(|e| self.cluster.fail(&action, e))?
                .map(|event| event.map(|e| convert(e, T::from_deployment)))
                .boxed(),
            Source::HelmRelease(api) => api
                .watch(&params, &version)
                .await
                .map_err(|e| self.cluster.fail(&action, e))?
                .map(|event| event.map(|e| convert(e, T::from_dynamic)))
                .boxed(),
        };
        self.stream = Some(stream);
        Ok(())
    }

    /// The object's next state: first what a list gives, then each change the watch reports.
    ///
    /// Once the first list succeeded, a watch that is cut (the connection lost, the apiserver
    /// restarting or overloaded: no answer, 429, 5xx) is started again from the last version
    /// seen, after a pause that doubles from a quarter of a second to four seconds, and `note`
    /// says so; after [`MAX_INTERRUPTIONS`] in a row without an event, the last failure is the
    /// error. A refusal (401, 403, 404, …) fails at once. The caller's deadlines bound it all.
    pub async fn next(&mut self, note: &dyn Fn(&str)) -> Result<Option<T>, Error> {
        loop {
            match self.step().await {
                Ok(Step::Next(state)) => {
                    self.interruptions = 0;
                    return Ok(state);
                }
                Ok(Step::Again) => {}
                Err(error) if self.listed && transient(&error) => {
                    self.stream = None;
                    self.interruptions += 1;
                    if self.interruptions > MAX_INTERRUPTIONS {
                        return Err(error);
                    }
                    let pause =
                        Duration::from_millis(250) * 2u32.pow((self.interruptions - 1).min(4));
                    note(&format!(
                        "the watch of {} was interrupted ({}); watching again in {} ms",
                        self.what,
                        innermost(&error),
                        pause.as_millis(),
                    ));
                    tokio::time::sleep(pause).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One step: a list when there is no version to watch from, else a watch started when
    /// there is none, else its next event.
    async fn step(&mut self) -> Result<Step<T>, Error> {
        if self.version.is_none() {
            let found = self.list().await?;
            self.listed = true;
            return Ok(Step::Next(found));
        }
        if self.stream.is_none() {
            self.watch().await?;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(Step::Again);
        };
        match stream.next().await {
            // The server ended the watch (its timeout): start another.
            None => {
                self.stream = None;
                Ok(Step::Again)
            }
            Some(Err(e)) => {
                self.stream = None;
                let action = format!("watch {}", self.what);
                Err(self.cluster.fail(&action, e))
            }
            Some(Ok(Event::Present(state, version))) => {
                self.version = version.or(self.version.take());
                Ok(Step::Next(Some(state)))
            }
            Some(Ok(Event::Deleted(version))) => {
                self.version = version.or(self.version.take());
                Ok(Step::Next(None))
            }
            Some(Ok(Event::Bookmark(version))) => {
                self.version = Some(version);
                Ok(Step::Again)
            }
            // The version is gone from the server's history: list again.
            Some(Ok(Event::Expired)) => {
                tracing::debug!(
                    "the version {:?} of {} expired (410): listing it again",
                    self.version,
                    self.what
                );
                self.stream = None;
                self.version = None;
                Ok(Step::Again)
            }
            Some(Ok(Event::Failed(code, message))) => {
                self.stream = None;
                Err(Error::Refused {
                    server: self.cluster.server.clone(),
                    action: format!("watch {}", self.what),
                    code,
                    message,
                })
            }
        }
    }
}

/// How many interruptions of a watch in a row are borne (about 25 s of pauses).
const MAX_INTERRUPTIONS: u32 = 8;

/// What [`Watch::step`] came to.
enum Step<T> {
    /// The object's next state.
    Next(Option<T>),
    /// Nothing yet: step again.
    Again,
}

/// Whether a failure may pass: the cluster did not answer, or said it is overloaded or failing
/// (429, 5xx), as kubectl's and client-go's watchers retry them.
fn transient(error: &Error) -> bool {
    match error {
        Error::Unreachable { .. } => !error.certificate_problem(),
        Error::Refused { code, .. } => *code == 429 || *code >= 500,
        _ => false,
    }
}

/// The innermost cause of `error`, for a one-line note.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn convert<K: kube::Resource, T>(event: WatchEvent<K>, read: impl Fn(&K) -> Option<T>) -> Event<T> {
    let version = |object: &K| object.meta().resource_version.clone();
    match event {
        WatchEvent::Added(object) | WatchEvent::Modified(object) => match read(&object) {
            Some(state) => Event::Present(state, version(&object)),
            None => Event::Failed(0, "an object of an unexpected kind".into()),
        },
        WatchEvent::Deleted(object) => Event::Deleted(version(&object)),
        WatchEvent::Bookmark(bookmark) => Event::Bookmark(bookmark.metadata.resource_version),
        WatchEvent::Error(status) if status.code == 410 => Event::Expired,
        WatchEvent::Error(status) => Event::Failed(status.code, status.message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_is_read_with_every_container_and_init_container() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {
                "replicas": 2,
                "progressDeadlineSeconds": 60,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {
                    "initContainers": [{"name": "migrate", "image": "ghcr.io/acme/migrate:v1"}],
                    "containers": [
                        {"name": "proxy", "image": "ghcr.io/acme/proxy:2"},
                        {"name": "web", "image": "ghcr.io/acme/web:v1"},
                    ],
                }},
            },
            "status": {
                "observedGeneration": 3, "replicas": 3, "updatedReplicas": 2,
                "readyReplicas": 2, "availableReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False",
                    "reason": "ProgressDeadlineExceeded", "message": "timed out"}],
            },
        }))
        .unwrap();
        let state = DeploymentState::of(&deployment);
        assert_eq!(
            state.images,
            [
                "ghcr.io/acme/migrate:v1",
                "ghcr.io/acme/proxy:2",
                "ghcr.io/acme/web:v1"
            ]
        );
        assert_eq!(
            (state.generation, state.observed_generation, state.desired),
            (3, 3, 2)
        );
        assert_eq!(
            (state.replicas, state.updated, state.ready, state.available),
            (3, 2, 2, 1)
        );
        assert_eq!(state.progress_deadline_seconds, Some(60));
        assert_eq!(
            state.progressing,
            Some(("ProgressDeadlineExceeded".into(), "timed out".into()))
        );
    }

    #[test]
    fn reconcile_tokens_are_rfc3339_in_utc() {
        let token = reconcile_token();
        assert!(
            token.ends_with('Z') && token.len() >= "2026-12-07T00:00:00Z".len(),
            "{token}"
        );
        assert!(
            token.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
            "{token}"
        );
    }
}
