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
    Capabilities, Container, ContainerState, EmptyDirVolumeSource, EnvVar, EnvVarSource, Pod,
    PodSecurityContext, PodSpec, SeccompProfile, Secret, SecretKeySelector, SecurityContext,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, AttachParams, DeleteParams, LogParams, PostParams, WatchEvent, WatchParams};
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
            image_pull_policy: Some("IfNotPresent".into()),
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

    /// The build's Secret, owned by its pod (`uid`): deleted with it.
    fn secret(&self, pod_uid: &str, auth: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: self.name.clone(),
                    uid: pod_uid.into(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            string_data: Some(BTreeMap::from([(AUTH_KEY.to_string(), auth.to_string())])),
            type_: Some("Opaque".into()),
            ..Secret::default()
        }
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
    /// Creates `pod`, then its Secret (owned by it), and returns the run. The creator waits for
    /// its Secret (the kubelet retries), and for its inputs.
    pub async fn start_build_pod(&self, pod: &BuildPod) -> Result<PodRun, Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let action = format!("create pod {}/{}", pod.namespace, pod.name);
        self.count();
        let created = api
            .create(&PostParams::default(), &pod.manifest())
            .await
            .map_err(|e| self.fail(&action, e))?;
        let run = PodRun {
            cluster: self.clone(),
            api,
            name: pod.name.clone(),
            namespace: pod.namespace.clone(),
            outputs: tokio::sync::OnceCell::new(),
        };
        if let Some(auth) = &pod.registry_auth {
            let uid = created.metadata.uid.unwrap_or_default();
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &pod.namespace);
            self.count();
            if let Err(e) = secrets
                .create(&PostParams::default(), &pod.secret(&uid, auth))
                .await
            {
                run.delete().await;
                return Err(self.fail(&format!("create secret {}/{}", pod.namespace, pod.name), e));
            }
        }
        Ok(run)
    }
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
    fn the_secret_holds_the_credentials_and_belongs_to_the_pod() {
        let secret = serde_json::to_value(pod().secret("uid-1", "{}")).unwrap();
        assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "Pod");
        assert_eq!(secret["stringData"][AUTH_KEY], "{}");
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
