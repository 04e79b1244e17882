//! A creator run as a pod, laid out as kpack and the Tekton buildpacks task lay theirs out: the
//! builder image's lifecycle in an init container, emptyDir volumes for `/layers`, `/workspace`,
//! `/platform` (and the other directories of the creator's inputs), the CNB user and group of
//! the builder as `runAsUser`/`runAsGroup`/`fsGroup`, no privilege escalation, no capability,
//! seccomp `RuntimeDefault`, and a node of the build's platform.
//!
//! The pod's containers, in order:
//! 1. `inputs` (init, the builder image): `tar -x` of its stdin at `/`, which op attaches to and
//!    streams the creator's inputs into (the app, the platform environment, the order, the CA
//!    bundle), as skaffold streams a kaniko build's context into its init container;
//! 2. `creator` (init, the builder image): `/cnb/lifecycle/creator`, its registry credentials
//!    from a Secret of the build's own (`CNB_REGISTRY_AUTH`), which the pod owns;
//! 3. `outputs` (the builder image): waits, so that op can read what the creator wrote
//!    (`report.toml`, the SBOMs, a chart's reference) with `tar -c` through `exec`, then deletes
//!    the pod.
//!
//! The pod's `activeDeadlineSeconds` bounds it when op is gone (crashed, killed): its
//! containers stop then, and the pod and its Secret are left for `kubectl delete` by op's
//! labels (nothing of them runs or holds a node).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerState, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    LocalObjectReference, Node, Pod, PodSecurityContext, PodSpec, SeccompProfile, Secret,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, AttachParams, DeleteParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Cluster, Error};

/// The init container that receives the inputs.
pub const INPUTS: &str = "inputs";
/// The init container that runs the creator.
pub const CREATOR: &str = "creator";
/// The container that keeps the outputs readable.
pub const OUTPUTS: &str = "outputs";

/// The key of the build Secret that holds `CNB_REGISTRY_AUTH`.
const AUTH_KEY: &str = "cnb-registry-auth";
/// The key of a pull Secret (`kubernetes.io/dockerconfigjson`).
const PULL_KEY: &str = ".dockerconfigjson";

/// A creator's pod, in op's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildPod {
    /// The pod's name (and its Secret's): DNS-1123, at most 63 characters.
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The builder image (by digest, so that every node runs the same).
    pub image: String,
    /// The CNB user and group of the builder.
    pub uid: i64,
    pub gid: i64,
    /// The creator's command line.
    pub command: Vec<String>,
    /// The creator's environment, without its registry credentials.
    pub env: Vec<(String, String)>,
    /// `CNB_REGISTRY_AUTH`, for the build's Secret.
    pub registry_auth: Option<String>,
    /// The credential the nodes pull the builder with (a Docker configuration), for the build's
    /// Secret, which is then also the pod's `imagePullSecret`.
    pub pull_auth: Option<String>,
    /// `imagePullPolicy` (`Always`, `IfNotPresent`, `Never`).
    pub pull_policy: String,
    /// The directories the creator's inputs and outputs live in: one emptyDir each.
    pub directories: Vec<String>,
    /// `kubernetes.io/os`, `kubernetes.io/arch` (and `kubernetes.io/arch` variants are not
    /// labels: a variant is the image's business).
    pub os: String,
    pub architecture: String,
    /// The pod on its node's network (a registry on the node's loopback).
    pub host_network: bool,
    /// `activeDeadlineSeconds`.
    pub deadline: Duration,
}

/// The volume name of a directory (`/layers` → `layers`, `/etc/op` → `etc-op`).
fn volume_name(directory: &str) -> String {
    directory.trim_matches('/').replace('/', "-")
}

impl BuildPod {
    /// The pod's init containers (`inputs`, `creator`) and its container (`outputs`).
    fn containers(&self) -> (Vec<Container>, Container) {
        let mounts: Vec<VolumeMount> = self
            .directories
            .iter()
            .map(|dir| VolumeMount {
                name: volume_name(dir),
                mount_path: dir.clone(),
                ..VolumeMount::default()
            })
            .collect();
        let security = SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        };
        let container = |name: &str, command: Vec<String>| Container {
            name: name.into(),
            image: Some(self.image.clone()),
            image_pull_policy: Some(self.pull_policy.clone()),
            command: Some(command),
            volume_mounts: Some(mounts.clone()),
            security_context: Some(security.clone()),
            ..Container::default()
        };
        let mut inputs = container(
            INPUTS,
            ["tar", "-x", "-f", "-", "-C", "/"]
                .map(String::from)
                .to_vec(),
        );
        inputs.stdin = Some(true);
        inputs.stdin_once = Some(true);
        let mut env: Vec<EnvVar> = self
            .env
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                ..EnvVar::default()
            })
            .collect();
        if self.registry_auth.is_some() {
            env.push(EnvVar {
                name: crate::cnb::creator::REGISTRY_AUTH_ENV.into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: self.name.clone(),
                        key: AUTH_KEY.into(),
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            });
        }
        let mut creator = container(CREATOR, self.command.clone());
        creator.env = Some(env);
        // Waits for op to read the outputs; the deadline ends it when op does not.
        let outputs = container(
            OUTPUTS,
            ["sh", "-c", "exec sleep 2147483647"]
                .map(String::from)
                .to_vec(),
        );
        (vec![inputs, creator], outputs)
    }

    /// The Pod, as the API takes it.
    pub fn manifest(&self) -> Pod {
        let (init_containers, container) = self.containers();
        let volumes: Vec<Volume> = self
            .directories
            .iter()
            .map(|dir| Volume {
                name: volume_name(dir),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            })
            .collect();
        Pod {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                annotations: Some(self.annotations.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                init_containers: Some(init_containers),
                containers: vec![container],
                volumes: Some(volumes),
                restart_policy: Some("Never".into()),
                active_deadline_seconds: Some(
                    i64::try_from(self.deadline.as_secs()).unwrap_or(i64::MAX),
                ),
                automount_service_account_token: Some(false),
                image_pull_secrets: self.pull_auth.is_some().then(|| {
                    vec![LocalObjectReference {
                        name: self.name.clone(),
                    }]
                }),
                enable_service_links: Some(false),
                host_network: self.host_network.then_some(true),
                dns_policy: self
                    .host_network
                    .then(|| "ClusterFirstWithHostNet".to_string()),
                termination_grace_period_seconds: Some(1),
                node_selector: Some(BTreeMap::from([
                    ("kubernetes.io/os".to_string(), self.os.clone()),
                    ("kubernetes.io/arch".to_string(), self.architecture.clone()),
                ])),
                security_context: Some(PodSecurityContext {
                    run_as_user: Some(self.uid),
                    run_as_group: Some(self.gid),
                    fs_group: Some(self.gid),
                    run_as_non_root: Some(true),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "RuntimeDefault".into(),
                        ..SeccompProfile::default()
                    }),
                    ..PodSecurityContext::default()
                }),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    /// The build's Secret, when it has credentials: `CNB_REGISTRY_AUTH` for the creator and,
    /// when the builder's registry needs one, the nodes' pull credential (the Secret is then of
    /// the type `imagePullSecrets` take).
    fn secret(&self) -> Option<Secret> {
        let mut data = BTreeMap::new();
        if let Some(auth) = &self.registry_auth {
            data.insert(AUTH_KEY.to_string(), auth.clone());
        }
        if let Some(config) = &self.pull_auth {
            data.insert(PULL_KEY.to_string(), config.clone());
        }
        if data.is_empty() {
            return None;
        }
        let type_ = if self.pull_auth.is_some() {
            "kubernetes.io/dockerconfigjson"
        } else {
            "Opaque"
        };
        Some(Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                ..ObjectMeta::default()
            },
            string_data: Some(data),
            type_: Some(type_.into()),
            ..Secret::default()
        })
    }
}

/// Where a build pod's container is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Not placed on a node: the scheduler's message.
    Unschedulable(String),
    /// Waiting to start: the kubelet's reason and message (`ErrImagePull`, …).
    Waiting(String, String),
    Running,
    /// Ended, with the container's exit code, reason (`Completed`, `Error`, `OOMKilled`) and
    /// how long it ran.
    Terminated {
        code: i32,
        reason: String,
        message: String,
        ran: Option<Duration>,
    },
    /// The pod failed as a whole: its reason (`DeadlineExceeded`, `Evicted`) and message.
    PodFailed(String, String),
}

/// The stage of container `name` in `pod`.
fn stage(pod: &Pod, name: &str) -> Stage {
    let Some(status) = &pod.status else {
        return Stage::Waiting("Pending".into(), String::new());
    };
    if status.phase.as_deref() == Some("Failed")
        && let Some(reason) = status.reason.clone()
    {
        return Stage::PodFailed(reason, status.message.clone().unwrap_or_default());
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        return Stage::Unschedulable(condition.message.clone().unwrap_or_default());
    }
    let container = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|c| c.name == name);
    let Some(ContainerState {
        running,
        terminated,
        waiting,
    }) = container.and_then(|c| c.state.clone())
    else {
        return Stage::Waiting("Pending".into(), String::new());
    };
    if let Some(t) = terminated {
        let ran = match (&t.started_at, &t.finished_at) {
            (Some(start), Some(end)) => {
                let seconds = end.0.as_second() - start.0.as_second();
                u64::try_from(seconds).ok().map(Duration::from_secs)
            }
            _ => None,
        };
        return Stage::Terminated {
            code: t.exit_code,
            reason: t.reason.unwrap_or_default(),
            message: t.message.unwrap_or_default(),
            ran,
        };
    }
    if running.is_some() {
        return Stage::Running;
    }
    let waiting = waiting.unwrap_or_default();
    Stage::Waiting(
        waiting.reason.unwrap_or_default(),
        waiting.message.unwrap_or_default(),
    )
}

/// A build pod that was created: what op does with it until it deletes it.
pub struct PodRun {
    cluster: Cluster,
    api: Api<Pod>,
    name: String,
    namespace: String,
    /// The stage the `outputs` container reached, once it was waited for.
    outputs: tokio::sync::OnceCell<Stage>,
}

impl Cluster {
    /// Creates `pod`'s Secret (when it has credentials), then `pod`, then makes the pod the
    /// Secret's owner (deleted with it), and returns the run. The Secret comes first so that
    /// the node never pulls the builder without its pull credential.
    pub async fn start_build_pod(&self, pod: &BuildPod) -> Result<PodRun, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &pod.namespace);
        let run = PodRun {
            cluster: self.clone(),
            api: api.clone(),
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            outputs: tokio::sync::OnceCell::new(),
        };
        let secret = pod.secret();
        if let Some(secret) = &secret {
            self.count();
            secrets
                .create(&PostParams::default(), secret)
                .await
                .map_err(|e| self.fail(&format!("create secret {}", run.name()), e))?;
        }
        self.count();
        let created = match api.create(&PostParams::default(), &pod.manifest()).await {
            Ok(created) => created,
            Err(e) => {
                run.delete().await;
                return Err(self.fail(&format!("create pod {}", run.name()), e));
            }
        };
        if secret.is_some() {
            let owner = OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod.name.clone(),
                uid: created.metadata.uid.unwrap_or_default(),
                ..OwnerReference::default()
            };
            let patch = serde_json::json!({ "metadata": { "ownerReferences": [owner] } });
            self.count();
            if let Err(e) = secrets
                .patch(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                run.delete().await;
                return Err(self.fail(&format!("patch secret {}", run.name()), e));
            }
        }
        Ok(run)
    }
}

/// What the cluster's nodes can take of builds of some platforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// The nodes that can run them: Ready, schedulable, without a `NoSchedule` or `NoExecute`
    /// taint, of one of the platforms.
    pub nodes: usize,
    /// The whole CPUs those nodes can give pods (`status.allocatable.cpu`, rounded down, at
    /// least one a node).
    pub cpus: usize,
}

impl Cluster {
    /// The room of the cluster's nodes for build pods of `platforms` (`(os, architecture)`).
    pub async fn build_room(&self, platforms: &[(String, String)]) -> Result<Room, Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        self.count();
        let nodes = api
            .list(&kube::api::ListParams::default())
            .await
            .map_err(|e| self.fail("list nodes", e))?;
        Ok(room(&nodes.items, platforms))
    }
}

fn room(nodes: &[Node], platforms: &[(String, String)]) -> Room {
    let mut room = Room { nodes: 0, cpus: 0 };
    for node in nodes {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let label = |key: &str| labels.get(key).map_or("", String::as_str);
        let (os, arch) = (label("kubernetes.io/os"), label("kubernetes.io/arch"));
        let spec = node.spec.clone().unwrap_or_default();
        let tainted = spec
            .taints
            .iter()
            .flatten()
            .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
        let status = node.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready
            || spec.unschedulable == Some(true)
            || tainted
            || !platforms.iter().any(|(o, a)| o == os && a == arch)
        {
            continue;
        }
        let cpus = status
            .allocatable
            .as_ref()
            .and_then(|a| a.get("cpu"))
            .and_then(|q| cpu_cores(&q.0))
            .unwrap_or(1);
        room.nodes += 1;
        room.cpus += cpus.max(1);
    }
    room
}

/// The whole cores of a CPU quantity (`2`, `1500m`, `0.5`); `None` when it is not one.
fn cpu_cores(quantity: &str) -> Option<usize> {
    let millis = if let Some(millis) = quantity.strip_suffix('m') {
        millis.parse::<u64>().ok()?
    } else {
        let cores = quantity.parse::<f64>().ok()?;
        if !cores.is_finite() || cores < 0.0 {
            return None;
        }
        // Whole millicores: a node has far fewer than 2^53 of them.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let millis = (cores * 1000.0).round() as u64;
        millis
    };
    usize::try_from(millis / 1000).ok()
}

impl PodRun {
    /// `<namespace>/<name>`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Waits until `container` is past `Waiting` (running or ended: `ended` false), or has ended
    /// (`ended` true), or the pod cannot get there; `waiting` hears each new stage on the way
    /// (`ContainerCreating`, `ErrImagePull`, unschedulable, running), and ends the wait with that
    /// stage when it answers `false`.
    pub async fn until(
        &self,
        container: &str,
        ended: bool,
        waiting: &mut (dyn FnMut(&Stage) -> bool + Send),
    ) -> Result<Stage, Error> {
        let action = format!("watch pod {}", self.name());
        let selector = format!("metadata.name={}", self.name);
        let mut last = None;
        loop {
            self.cluster.count();
            let pod = self
                .api
                .get(&self.name)
                .await
                .map_err(|e| self.cluster.fail(&action, e))?;
            let version = pod.metadata.resource_version.clone().unwrap_or_default();
            if let Some(done) = reached(&pod, container, ended, &mut last, waiting) {
                return Ok(done);
            }
            self.cluster.count();
            let mut events = self
                .api
                .watch(
                    &WatchParams::default().fields(&selector).timeout(290),
                    &version,
                )
                .await
                .map_err(|e| self.cluster.fail(&action, e))?
                .boxed();
            while let Some(event) = events.next().await {
                match event.map_err(|e| self.cluster.fail(&action, e))? {
                    WatchEvent::Added(pod) | WatchEvent::Modified(pod) => {
                        if let Some(done) = reached(&pod, container, ended, &mut last, waiting) {
                            return Ok(done);
                        }
                    }
                    WatchEvent::Deleted(_) => {
                        return Ok(Stage::PodFailed(
                            "Deleted".into(),
                            "the pod was deleted".into(),
                        ));
                    }
                    // Expired or ended: read the pod again and watch from there.
                    WatchEvent::Bookmark(_) | WatchEvent::Error(_) => break,
                }
            }
        }
    }

    /// Streams `body` (its chunks) into the `inputs` container's stdin (attached), then closes
    /// it: `tar` ends there, and the creator starts. An error of `body` is returned as it is.
    pub async fn send_inputs<E>(
        &self,
        mut body: futures::stream::BoxStream<'static, Result<Vec<u8>, E>>,
    ) -> Result<Result<(), E>, Error> {
        let action = format!("attach to container {INPUTS} of pod {}", self.name());
        let params = AttachParams::default()
            .container(INPUTS)
            .stdin(true)
            .stdout(false)
            .stderr(false);
        self.cluster.count();
        let mut attached = self
            .api
            .attach(&self.name, &params)
            .await
            .map_err(|e| self.cluster.fail(&action, e))?;
        let broken = |source: std::io::Error| Error::Stream {
            server: self.cluster.server.clone(),
            action: action.clone(),
            source,
        };
        let mut stdin = attached
            .stdin()
            .ok_or_else(|| broken(std::io::Error::other("no stdin")))?;
        let mut outcome = Ok(());
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => stdin.write_all(&chunk).await.map_err(broken)?,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        stdin.shutdown().await.map_err(broken)?;
        drop(stdin);
        // The status the server sends at the end needs its receiver alive until then.
        let status = attached.take_status();
        attached
            .join()
            .await
            .map_err(|e| broken(std::io::Error::other(e.to_string())))?;
        drop(status);
        Ok(outcome)
    }

    /// Follows the output of `container` from its start, a chunk at a time to `output`, until
    /// it ends.
    pub async fn follow(
        &self,
        container: &str,
        output: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), Error> {
        let action = format!(
            "read the log of container {container} of pod {}",
            self.name()
        );
        let params = LogParams {
            container: Some(container.into()),
            follow: true,
            ..LogParams::default()
        };
        self.cluster.count();
        let reader = self
            .api
            .log_stream(&self.name, &params)
            .await
            .map_err(|e| self.cluster.fail(&action, e))?;
        let mut lines = reader.lines();
        while let Some(line) = lines.next().await {
            let line = line.map_err(|e| Error::Stream {
                server: self.cluster.server.clone(),
                action: action.clone(),
                source: e,
            })?;
            output(&line);
        }
        Ok(())
    }

    /// What `container`'s state is now.
    pub async fn stage(&self, container: &str) -> Result<Stage, Error> {
        self.cluster.count();
        let pod = self
            .api
            .get(&self.name)
            .await
            .map_err(|e| self.cluster.fail(&format!("get pod {}", self.name()), e))?;
        Ok(stage(&pod, container))
    }

    /// `path` (absolute) of the `outputs` container as a tar whose root is its last component,
    /// as the Docker Engine's archive endpoint gives it; `None` when it does not exist. Waits
    /// for the container to run, the first time: a build that reads nothing (the digest the
    /// creator announced is the registry's) does not wait for it at all.
    pub async fn download(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let action = format!("read {path} in pod {}", self.name());
        let outputs = self
            .outputs
            .get_or_try_init(|| async {
                let stage = self.until(OUTPUTS, false, &mut |_| true).await?;
                Ok::<_, Error>(stage)
            })
            .await?;
        if *outputs != Stage::Running {
            return Err(Error::Stream {
                server: self.cluster.server.clone(),
                action,
                source: std::io::Error::other(format!(
                    "its container {OUTPUTS} does not run: {outputs:?}"
                )),
            });
        }
        let (parent, base) = match path.trim_end_matches('/').rsplit_once('/') {
            Some(("", base)) => ("/", base),
            Some((parent, base)) => (parent, base),
            None => ("/", path),
        };
        let script =
            format!("cd '{parent}' && [ -e '{base}' ] || exit 3; exec tar -c -f - '{base}'");
        let params = AttachParams::default()
            .container(OUTPUTS)
            .stdin(false)
            .stdout(true)
            .stderr(true);
        self.cluster.count();
        let mut process = self
            .api
            .exec(&self.name, ["sh", "-c", script.as_str()], &params)
            .await
            .map_err(|e| self.cluster.fail(&action, e))?;
        let broken = |source: std::io::Error| Error::Stream {
            server: self.cluster.server.clone(),
            action: action.clone(),
            source,
        };
        let (Some(mut stdout), Some(mut stderr)) = (process.stdout(), process.stderr()) else {
            return Err(broken(std::io::Error::other("no output")));
        };
        let status = process.take_status();
        let (mut tar, mut errors) = (Vec::new(), Vec::new());
        let (read, _) = tokio::join!(
            stdout.read_to_end(&mut tar),
            stderr.read_to_end(&mut errors)
        );
        read.map_err(broken)?;
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        let _ = process.join().await;
        match status {
            Some(status) if status.status.as_deref() == Some("Failure") => {
                let missing = status
                    .details
                    .as_ref()
                    .and_then(|d| d.causes.as_ref())
                    .is_some_and(|causes| {
                        causes.iter().any(|c| {
                            c.reason.as_deref() == Some("ExitCode")
                                && c.message.as_deref() == Some("3")
                        })
                    });
                if missing {
                    return Ok(None);
                }
                Err(broken(std::io::Error::other(format!(
                    "{} {}",
                    status.message.unwrap_or_default(),
                    String::from_utf8_lossy(&errors).trim()
                ))))
            }
            _ => Ok(Some(tar)),
        }
    }

    /// Deletes the pod at once, and its Secret (which the garbage collector would delete with
    /// the pod, later); a failure is a warning's text.
    pub async fn delete(&self) -> Option<String> {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let secrets: Api<Secret> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
        self.cluster.count();
        self.cluster.count();
        let (pod, secret) = tokio::join!(
            self.api.delete(&self.name, &params),
            secrets.delete(&self.name, &params)
        );
        let mut problems = Vec::new();
        for (what, outcome) in [("pod", pod.map(|_| ())), ("secret", secret.map(|_| ()))] {
            match outcome {
                Ok(()) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => problems.push(format!("could not delete {what} {}: {e}", self.name())),
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// `Some` once `container` of `pod` is past waiting (or has ended, with `ended`), or can never
/// get there; each new stage on the way goes to `waiting`.
fn reached(
    pod: &Pod,
    container: &str,
    ended: bool,
    last: &mut Option<Stage>,
    waiting: &mut (dyn FnMut(&Stage) -> bool + Send),
) -> Option<Stage> {
    let now = stage(pod, container);
    let on_the_way = match &now {
        Stage::Waiting(..) | Stage::Unschedulable(_) => true,
        Stage::Running => ended,
        Stage::Terminated { .. } | Stage::PodFailed(..) => false,
    };
    if !on_the_way {
        return Some(now);
    }
    if last.as_ref() != Some(&now) {
        if !waiting(&now) {
            return Some(now);
        }
        *last = Some(now);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> BuildPod {
        BuildPod {
            name: "op-build-1a2b-web".into(),
            namespace: "builds".into(),
            labels: BTreeMap::from([("io.octopilot.op.kind".into(), "build".into())]),
            annotations: BTreeMap::new(),
            image: "registry.example/builder@sha256:abc".into(),
            uid: 1001,
            gid: 1000,
            command: vec!["/cnb/lifecycle/creator".into(), "app:v1".into()],
            env: vec![("CNB_PLATFORM_API".into(), "0.15".into())],
            registry_auth: Some("{\"registry.example\":\"Basic eDp5\"}".into()),
            pull_auth: None,
            pull_policy: "IfNotPresent".into(),
            directories: vec!["/layers".into(), "/workspace".into(), "/etc/op".into()],
            os: "linux".into(),
            architecture: "arm64".into(),
            host_network: false,
            deadline: Duration::from_secs(3600),
        }
    }

    #[test]
    fn the_pod_runs_the_inputs_then_the_creator_as_the_cnb_user_on_a_node_of_its_platform() {
        let manifest = serde_json::to_value(pod().manifest()).unwrap();
        let spec = &manifest["spec"];
        let init: Vec<&str> = spec["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(init, [INPUTS, CREATOR]);
        assert_eq!(spec["containers"][0]["name"], OUTPUTS);
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["activeDeadlineSeconds"], 3600);
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["nodeSelector"]["kubernetes.io/arch"], "arm64");
        assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux");
        let security = &spec["securityContext"];
        assert_eq!(security["runAsUser"], 1001);
        assert_eq!(security["runAsGroup"], 1000);
        assert_eq!(security["fsGroup"], 1000);
        assert_eq!(security["runAsNonRoot"], true);
        assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
        let volumes: Vec<&str> = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                assert!(v["emptyDir"].is_object(), "{v}");
                v["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(volumes, ["layers", "workspace", "etc-op"]);
        let inputs = &spec["initContainers"][0];
        assert_eq!(inputs["stdin"], true);
        assert_eq!(inputs["stdinOnce"], true);
        let creator = &spec["initContainers"][1];
        for container in [inputs, creator, &spec["containers"][0]] {
            assert_eq!(container["image"], "registry.example/builder@sha256:abc");
            let security = &container["securityContext"];
            assert_eq!(security["allowPrivilegeEscalation"], false);
            assert_eq!(security["capabilities"]["drop"][0], "ALL");
            assert_eq!(container["volumeMounts"][2]["mountPath"], "/etc/op");
        }
        assert_eq!(creator["command"][0], "/cnb/lifecycle/creator");
        // The credentials are the Secret's, never the pod's.
        let text = manifest.to_string();
        assert!(!text.contains("eDp5"), "{text}");
        let auth = &creator["env"][1];
        assert_eq!(auth["name"], "CNB_REGISTRY_AUTH");
        assert_eq!(
            auth["valueFrom"]["secretKeyRef"]["name"],
            "op-build-1a2b-web"
        );
    }

    #[test]
    fn the_secret_holds_the_credentials_and_pulls_the_builder_when_it_must() {
        let secret = serde_json::to_value(pod().secret()).unwrap();
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(
            secret["stringData"][AUTH_KEY],
            "{\"registry.example\":\"Basic eDp5\"}"
        );
        assert!(
            serde_json::to_value(pod().manifest()).unwrap()["spec"]["imagePullSecrets"].is_null()
        );

        let private = BuildPod {
            pull_auth: Some("{\"auths\":{}}".into()),
            pull_policy: "Always".into(),
            ..pod()
        };
        let secret = serde_json::to_value(private.secret()).unwrap();
        assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(secret["stringData"][PULL_KEY], "{\"auths\":{}}");
        let spec = &serde_json::to_value(private.manifest()).unwrap()["spec"];
        assert_eq!(spec["imagePullSecrets"][0]["name"], "op-build-1a2b-web");
        assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "Always");

        let anonymous = BuildPod {
            registry_auth: None,
            ..pod()
        };
        assert!(anonymous.secret().is_none());
    }

    #[test]
    fn the_room_counts_the_cpus_of_the_nodes_that_can_take_the_builds() {
        let node = |arch: &str, cpu: &str, extra: serde_json::Value| -> Node {
            let mut json = serde_json::json!({
                "metadata": {"name": "n", "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}},
                "spec": {},
                "status": {"allocatable": {"cpu": cpu},
                           "conditions": [{"type": "Ready", "status": "True"}]}
            });
            if let (Some(json), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
                for (key, value) in extra {
                    json.insert(key.clone(), value.clone());
                }
            }
            serde_json::from_value(json).unwrap()
        };
        let nodes = [
            node("amd64", "4", serde_json::json!({})),
            node("amd64", "1500m", serde_json::json!({})),
            node("amd64", "250m", serde_json::json!({})),
            node("arm64", "8", serde_json::json!({})),
            node(
                "amd64",
                "16",
                serde_json::json!({"spec": {"unschedulable": true}}),
            ),
            node(
                "amd64",
                "16",
                serde_json::json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
            ),
            node(
                "amd64",
                "16",
                serde_json::json!({"status": {"allocatable": {"cpu": "16"},
                    "conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
        ];
        let amd64 = [("linux".to_string(), "amd64".to_string())];
        assert_eq!(room(&nodes, &amd64), Room { nodes: 3, cpus: 6 });
        let both = [amd64[0].clone(), ("linux".to_string(), "arm64".to_string())];
        assert_eq!(room(&nodes, &both), Room { nodes: 4, cpus: 14 });
        let s390x = [("linux".to_string(), "s390x".to_string())];
        assert_eq!(room(&nodes, &s390x), Room { nodes: 0, cpus: 0 });
        assert_eq!(cpu_cores("2"), Some(2));
        assert_eq!(cpu_cores("0.5"), Some(0));
        assert_eq!(cpu_cores("lots"), None);
    }

    #[test]
    fn stages_are_read_from_the_pod_s_status() {
        let pod = |status: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status}))
                .unwrap()
        };
        let unschedulable = pod(serde_json::json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}]}));
        assert!(
            matches!(stage(&unschedulable, CREATOR), Stage::Unschedulable(m) if m.contains("selector"))
        );
        let pulling = pod(
            serde_json::json!({"phase": "Pending", "initContainerStatuses": [
            {"name": INPUTS, "ready": false, "restartCount": 0, "image": "b", "imageID": "",
             "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}),
        );
        assert_eq!(
            stage(&pulling, INPUTS),
            Stage::Waiting("ErrImagePull".into(), "not found".into())
        );
        let failed = pod(
            serde_json::json!({"phase": "Failed", "initContainerStatuses": [
            {"name": CREATOR, "ready": false, "restartCount": 0, "image": "b", "imageID": "",
             "state": {"terminated": {"exitCode": 51, "reason": "Error",
               "startedAt": "2026-12-07T10:00:00Z", "finishedAt": "2026-12-07T10:00:07Z"}}}]}),
        );
        assert_eq!(
            stage(&failed, CREATOR),
            Stage::Terminated {
                code: 51,
                reason: "Error".into(),
                message: String::new(),
                ran: Some(Duration::from_secs(7)),
            }
        );
        let deadline = pod(
            serde_json::json!({"phase": "Failed", "reason": "DeadlineExceeded",
            "message": "Pod was active on the node longer than the specified deadline"}),
        );
        assert!(
            matches!(stage(&deadline, CREATOR), Stage::PodFailed(r, _) if r == "DeadlineExceeded")
        );
    }
}
