//! The creator as a pod of a cluster (`--engine kubernetes`): the same inputs, creator command
//! and environment as the engine's container (`container.rs`), laid out by
//! `kubernetes::BuildPod`; the same output lines and result (`outputs.rs`). The pod is deleted
//! whatever happens (its Secret with it), unless `--keep`.

use std::time::Instant;

use super::{Build, Error, step};
use crate::cnb::{self, creator};
use crate::engine::{ContainerSpec, PullPolicy};
use crate::execute::chart;
use crate::execute::creator_output::Phase;
use crate::execute::names::{LABEL_ARTIFACT, LABEL_BUILD_ID, LABEL_TARGET, slug};
use crate::execute::publish::Finished;
use crate::kubernetes::{BuildPod, CREATOR, Cluster, INPUTS, PodRun, Stage};

/// Where the creator's platform environment goes.
const PLATFORM_DIR: &str = "/platform";

/// The longest a build pod lives when op is not there to delete it.
const POD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

impl Build<'_> {
    /// The build, its creator a pod of `cluster`: what it published, its digest, the creator's
    /// run time.
    pub(super) async fn run_in_cluster(
        &self,
        cluster: &Cluster,
        namespace: &str,
        spooled: Option<cnb::app::Spooled>,
    ) -> Result<(String, String, Option<f64>), Error> {
        let started = Instant::now();
        let (shared, name) = (self.shared, self.name());
        shared.reporter.phase(name, Phase::Preparing);
        let spec = self.creator_spec()?;
        let pod = self.pod(&spec, namespace)?;
        let inputs = self.tar_inputs(spooled);
        let run = cluster
            .start_build_pod(&pod)
            .await
            .map_err(Error::Cluster)?;
        step(name, "pod created", started);
        shared
            .reporter
            .line(name, &format!("Running the creator in pod {}", run.name()));
        let result = tokio::select! {
            result = self.in_pod(&run, inputs, started) => result,
            _ = shared.interrupt.wait() => Err(Error::Interrupted),
        };
        if shared.options.keep {
            shared.reporter.line(
                name,
                &format!(
                    "Kept pod {} (--keep); remove it with kubectl delete pod",
                    run.name()
                ),
            );
        } else if let Some(warning) = run.delete().await {
            shared.reporter.note(&format!("warning: {warning}"));
        }
        result
    }

    /// The pod of `spec` (the creator container the engine would run).
    fn pod(&self, spec: &ContainerSpec, namespace: &str) -> Result<BuildPod, Error> {
        let (shared, b) = (self.shared, self.plan);
        if !b.volumes.is_empty() {
            return Err(Error::NotOnCluster(
                "its buildpacks volumes (host directories) cannot be mounted into a pod".into(),
            ));
        }
        let mut env = spec.env.clone();
        let registry_auth = env
            .iter()
            .position(|(key, _)| key == creator::REGISTRY_AUTH_ENV)
            .map(|at| env.remove(at).1);
        let mut directories: Vec<String> = [creator::LAYERS_DIR, creator::APP_DIR, PLATFORM_DIR]
            .map(String::from)
            .to_vec();
        if self.cache_image.is_none() {
            directories.push(creator::CACHE_DIR.into());
        }
        if shared.ca_bundle.is_some()
            && let Some((dir, _)) = cnb::app::CA_FILE.rsplit_once('/')
        {
            directories.push(dir.into());
        }
        if b.chart.is_some() {
            directories.push(chart::OUT_DIR.into());
        }
        // Without --platform, op's machine's (as the builder was read for it).
        let host = op_oci::Platform::host();
        let platform = self.platform.unwrap_or(&host);
        let (os, architecture) = (platform.os.clone(), platform.architecture.clone());
        let labels = [LABEL_BUILD_ID, LABEL_ARTIFACT, crate::engine::LABEL_KIND]
            .into_iter()
            .filter_map(|key| {
                let value = self.labels.get(key)?;
                Some((key.to_string(), label_value(value)))
            })
            .collect();
        let annotations = self
            .labels
            .iter()
            .filter(|(key, _)| key.as_str() == LABEL_TARGET || key.as_str() == LABEL_ARTIFACT)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(BuildPod {
            name: pod_name(&self.base),
            namespace: namespace.to_string(),
            labels,
            annotations,
            image: spec.image.clone(),
            uid: i64::from(self.builder.uid),
            gid: i64::from(self.builder.gid),
            command: spec.cmd.clone().unwrap_or_default(),
            env,
            registry_auth,
            pull_auth: op_oci::registry_of(&self.builder.image)
                .ok()
                .and_then(|host| shared.credentials.docker_config_json(&host)),
            pull_policy: match shared.options.pull {
                PullPolicy::Always => "Always",
                PullPolicy::Missing => "IfNotPresent",
                PullPolicy::Never => "Never",
            }
            .into(),
            directories,
            os,
            architecture,
            host_network: spec.network_mode.as_deref() == Some("host"),
            deadline: POD_DEADLINE,
        })
    }

    /// The pod's life: the inputs in, the creator's output out, the result read.
    async fn in_pod(
        &self,
        run: &PodRun,
        inputs: cnb::app::Streamed,
        started: Instant,
    ) -> Result<(String, String, Option<f64>), Error> {
        let (shared, name) = (self.shared, self.name());
        let mut waiting = |stage: &Stage| self.waiting(run, stage);
        let stage = run
            .until(INPUTS, false, &mut waiting)
            .await
            .map_err(Error::Cluster)?;
        if stage == Stage::Running {
            let sent = run
                .send_inputs(inputs.archive)
                .await
                .map_err(Error::Cluster)?;
            // A tar that failed (a file op cannot read) is why its stream failed.
            inputs
                .tarred
                .await
                .map_err(|e| Error::Task(e.to_string()))?
                .map_err(Error::App)?;
            sent.map_err(|e| Error::Task(format!("the inputs could not be read: {e}")))?;
            step(name, "inputs sent", started);
        }
        match run
            .until(INPUTS, true, &mut waiting)
            .await
            .map_err(Error::Cluster)?
        {
            Stage::Terminated { code: 0, .. } => {}
            Stage::Terminated { code, message, .. } => {
                return Err(pod_error(
                    run,
                    format!(
                        "could not unpack the creator's inputs (tar, exit code {code}): {message}"
                    ),
                    "the builder image needs `tar` on its PATH for a build on a cluster, as pack's \
                     and Paketo's builders have",
                ));
            }
            other => return Err(self.stage_error(run, &other)),
        }
        match run
            .until(CREATOR, false, &mut waiting)
            .await
            .map_err(Error::Cluster)?
        {
            Stage::Running | Stage::Terminated { .. } => {}
            other => return Err(self.stage_error(run, &other)),
        }
        let mut lines = self.creator_lines();
        run.follow(CREATOR, &mut |line| lines.emit(line))
            .await
            .map_err(Error::Cluster)?;
        let ended = run
            .until(CREATOR, true, &mut waiting)
            .await
            .map_err(Error::Cluster)?;
        step(name, "creator exited", started);
        let ran = match ended {
            Stage::Terminated { code: 0, ran, .. } => ran,
            Stage::Terminated { reason, .. } if reason == "OOMKilled" => {
                return Err(pod_error(
                    run,
                    "ran out of memory: the node killed the creator (OOMKilled)".into(),
                    "give the namespace's pods more memory (a LimitRange's default limit), or build fewer \
                     artifacts at once (--concurrency)",
                ));
            }
            Stage::Terminated { code, .. } => {
                let exit = lines.exit(Some(i64::from(code)));
                return Err(Error::Creator {
                    failure: cnb::exit::Failure::from_code(i64::from(code)),
                    refused_by: cnb::exit::refused_by(&exit.tail).map(|registry| {
                        let credentialed = shared.credentials.get(&registry).is_some();
                        (registry, credentialed)
                    }),
                    tail: exit.tail,
                });
            }
            other => return Err(self.stage_error(run, &other)),
        };
        let announced = lines.exit(Some(0)).announced;
        let published = self.published(&Finished::Pod(run, ran), announced).await?;
        step(name, "digest checked", started);
        Ok(published)
    }

    /// Whether to go on waiting at `stage`: a line the first time the pod waits for something
    /// worth saying; no for what will not pass (an image the node cannot pull, a Secret that
    /// is not there).
    fn waiting(&self, run: &PodRun, stage: &Stage) -> bool {
        let (shared, name) = (self.shared, self.name());
        match stage {
            Stage::Waiting(reason, _)
                if matches!(
                    reason.as_str(),
                    "ErrImagePull"
                        | "ImagePullBackOff"
                        | "ErrImageNeverPull"
                        | "InvalidImageName"
                        | "CreateContainerConfigError"
                        | "CreateContainerError"
                ) =>
            {
                false
            }
            Stage::Unschedulable(message) => {
                // The scheduler may yet find a node (one being added); --timeout does not
                // exist here, so an unschedulable build pod fails at once, saying why.
                tracing::debug!(artifact = name, pod = %run.name(), message, "unschedulable");
                false
            }
            Stage::Waiting(reason, _) if reason == "ContainerCreating" => {
                shared
                    .reporter
                    .line(name, "Waiting for the pod's containers");
                true
            }
            _ => true,
        }
    }

    /// The error of a pod stopped at `stage`.
    fn stage_error(&self, run: &PodRun, stage: &Stage) -> Error {
        let platform = self
            .platform
            .map_or_else(|| "this build's platform".to_string(), ToString::to_string);
        match stage {
            Stage::Unschedulable(message) => pod_error(
                run,
                format!(
                    "cannot be placed: no node of the cluster can take a {platform} build ({message})"
                ),
                "add a node of that platform (labelled kubernetes.io/os and kubernetes.io/arch), or build \
                 for the platforms the cluster's nodes have (--platform)",
            ),
            Stage::Waiting(reason, message) if reason.contains("Image") => pod_error(
                run,
                format!(
                    "cannot pull builder {}: {reason}: {message}",
                    self.builder.image
                ),
                "the cluster's nodes must be able to pull the builder: a registry they reach, and an \
                 imagePullSecret of the namespace's default service account when it is private",
            ),
            Stage::Waiting(reason, message) => pod_error(
                run,
                format!("cannot start: {reason}: {message}"),
                "see `kubectl describe pod`",
            ),
            Stage::PodFailed(reason, message) if reason == "DeadlineExceeded" => pod_error(
                run,
                format!(
                    "ran past its deadline ({}s): {message}",
                    POD_DEADLINE.as_secs()
                ),
                "a build this long needs a faster node or a warm cache (--cache-image)",
            ),
            Stage::PodFailed(reason, message) if reason == "Evicted" => pod_error(
                run,
                format!("was evicted from its node: {message}"),
                "the node ran short of memory or disk: build again, or give the builds nodes with room",
            ),
            Stage::PodFailed(reason, message) => pod_error(
                run,
                format!("failed: {reason}: {message}"),
                "see `kubectl describe pod`",
            ),
            Stage::Running | Stage::Terminated { .. } => pod_error(
                run,
                "stopped where op did not expect it".into(),
                "see `kubectl describe pod`",
            ),
        }
    }
}

fn pod_error(run: &PodRun, problem: String, hint: &str) -> Error {
    Error::Pod {
        pod: run.name(),
        problem,
        hint: hint.to_string(),
    }
}

/// A pod's name for a build's name part: `op-build-<base>` as names go ([`slug`]), at most 63
/// characters (a DNS label).
fn pod_name(base: &str) -> String {
    let mut name = format!("op-build-{}", slug(base));
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// A label value for `value`: `[A-Za-z0-9._-]`, at most 63 characters, alphanumeric at both
/// ends (the full values are the pod's annotations).
fn label_value(value: &str) -> String {
    let mut text: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    text.truncate(63);
    text.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_and_label_values_are_what_the_api_takes() {
        assert_eq!(pod_name("1a2b-Web_App"), "op-build-1a2b-web-app");
        let long = pod_name(&"x".repeat(80));
        assert_eq!(long.len(), 63);
        assert_eq!(label_value("team/api"), "team_api");
        assert_eq!(
            label_value("127.0.0.1:5001/app:v1"),
            "127.0.0.1_5001_app_v1"
        );
        assert_eq!(label_value("-a-"), "a");
    }
}
