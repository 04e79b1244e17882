//! `op watch-deployment`'s work: wait until an environment runs the image a build made and has
//! rolled it out. Upstream shells out to `flux reconcile helmrelease` and `kubectl get` /
//! `rollout status` in a 10-second poll; op asks the Kubernetes API itself
//! ([`crate::kubernetes`]) and watches instead of polling:
//!
//! 1. Flux: when the cluster serves `HelmReleases` and one is named after the component, a
//!    reconcile is requested as the flux CLI requests it, and waited for (`lastHandledReconcileAt`
//!    takes the request's token, then `Ready`; `Stalled` or a suspended release fail);
//! 2. the image: the Deployment is watched until one of its containers or init containers runs
//!    the build's image ([`Wanted::matches`]), within `--poll-timeout`;
//! 3. the rollout: watched until kubectl's rollout-status rules say it is complete
//!    ([`rollout`]), within `--timeout`.

use std::time::{Duration, Instant};

use crate::hint::Hint;
use crate::kubernetes::{self, Cluster, DeploymentState, HelmReleaseState};

#[cfg(test)]
mod tests;

/// What op waits for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Wanted {
    /// The build's reference (`<repo>/<image>:<tag>@sha256:…`).
    pub reference: String,
    /// Its repository's last path component (the image's name).
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Wanted {
    /// What the build result's `tag` (`<repo>/<image>:<tag>[@sha256:…]`) names.
    pub fn of(reference: &str) -> Self {
        let (named, digest) = match reference.split_once('@') {
            Some((named, digest)) => (named, Some(digest.to_string())),
            None => (reference, None),
        };
        let last = named.rsplit('/').next().unwrap_or(named);
        let (name, tag) = match last.split_once(':') {
            Some((name, tag)) => (name.to_string(), Some(tag.to_string())),
            None => (last.to_string(), None),
        };
        Self {
            reference: reference.to_string(),
            name,
            tag,
            digest,
        }
    }

    /// Whether a container's `image` is this one: by digest when the container names one (it
    /// must be the build's), else by the image's name and tag, exactly. Upstream matched any
    /// image that *contains* the tag, so that `latest` matched anything.
    pub fn matches(&self, image: &str) -> bool {
        let (named, digest) = match image.split_once('@') {
            Some((named, digest)) => (named, Some(digest)),
            None => (image, None),
        };
        if let Some(digest) = digest {
            return self.digest.as_deref() == Some(digest);
        }
        let last = named.rsplit('/').next().unwrap_or(named);
        // A reference without a tag means `latest`.
        let (name, tag) = last.split_once(':').unwrap_or((last, "latest"));
        name == self.name && Some(tag) == self.tag.as_deref()
    }
}

/// Where a rollout stands, by kubectl's `rollout status` rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// The controller has not seen the latest spec yet.
    SpecNotObserved,
    Waiting(String),
    Done,
    /// `Progressing` is `False` with `ProgressDeadlineExceeded`.
    DeadlineExceeded(String),
}

/// kubectl's rules (`DeploymentStatusViewer`): once the controller observed the latest
/// generation, a `ProgressDeadlineExceeded` reason fails; fewer updated replicas than wanted,
/// old replicas still there, or fewer available than updated wait; otherwise it is done.
pub fn rollout(state: &DeploymentState) -> Rollout {
    if state.generation > state.observed_generation {
        return Rollout::SpecNotObserved;
    }
    if let Some((reason, message)) = &state.progressing
        && reason == "ProgressDeadlineExceeded"
    {
        return Rollout::DeadlineExceeded(message.clone());
    }
    if state.updated < state.desired {
        return Rollout::Waiting(format!(
            "{} out of {} new replicas have been updated",
            state.updated, state.desired
        ));
    }
    if state.replicas > state.updated {
        return Rollout::Waiting(format!(
            "{} old replicas are pending termination",
            state.replicas - state.updated
        ));
    }
    if state.available < state.updated {
        return Rollout::Waiting(format!(
            "{} of {} updated replicas are available",
            state.available, state.updated
        ));
    }
    Rollout::Done
}

/// Why the watch failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::Error),
    #[error(
        "deployment {namespace}/{name} does not run {wanted} after {waited} (--poll-timeout); last seen: {seen}"
    )]
    ImageTimeout {
        namespace: String,
        name: String,
        wanted: String,
        waited: String,
        seen: String,
    },
    #[error(
        "the rollout of deployment {namespace}/{name} did not finish within {waited} (--timeout); last seen: {seen}"
    )]
    RolloutTimeout {
        namespace: String,
        name: String,
        waited: String,
        seen: String,
    },
    #[error("deployment {namespace}/{name} exceeded its progress deadline ({deadline}): {message}")]
    DeadlineExceeded {
        namespace: String,
        name: String,
        deadline: String,
        message: String,
    },
    #[error("deployment {namespace}/{name} was deleted while op watched it")]
    Deleted { namespace: String, name: String },
    #[error("helmrelease {namespace}/{name} is suspended, so Flux will not reconcile it")]
    Suspended { namespace: String, name: String },
    #[error("helmrelease {namespace}/{name} is stalled: {reason}: {message}")]
    Stalled {
        namespace: String,
        name: String,
        reason: String,
        message: String,
    },
    #[error(
        "helmrelease {namespace}/{name} did not handle the reconcile op asked for within {waited} (--poll-timeout); last seen: {seen}"
    )]
    ReconcileTimeout {
        namespace: String,
        name: String,
        waited: String,
        seen: String,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Kubernetes(e) => return e.hint(),
            Error::ImageTimeout { .. } => {
                "the deployment still runs another image: check that the \
                 environment's configuration (its HelmRelease values, or the manifest) was updated \
                 to this build, or wait longer with --poll-timeout"
                    .into()
            }
            Error::RolloutTimeout { .. } => {
                "`kubectl describe deployment` and its pods' events say \
                 what holds the new pods back; wait longer with --timeout"
                    .into()
            }
            Error::DeadlineExceeded { .. } => "the new pods did not become available in time \
                 (failing readiness probes, crashes, unschedulable): see `kubectl describe` of the \
                 deployment's new ReplicaSet and its pods"
                .into(),
            Error::Deleted { .. } => "something deleted the deployment: check the environment's \
                 HelmRelease or manifests"
                .into(),
            Error::Suspended { name, namespace } => format!(
                "resume it (`flux resume helmrelease {name} -n {namespace}`), or deploy without Flux"
            ),
            Error::Stalled { .. } => "Flux gave up on this release until its spec changes: fix \
                 what its Ready condition reports, then push a change"
                .into(),
            Error::ReconcileTimeout { .. } => "is Flux's helm-controller running, and does it \
                 watch this namespace?"
                .into(),
        })
    }
}

/// What the watch saw happen, for whoever shows it.
pub trait Progress {
    /// A step or a finding, said once.
    fn note(&self, text: &str);
    /// The deployment's state changed.
    fn state(&self, state: &DeploymentState, rollout: &Rollout);
}

/// The watch's parameters.
#[derive(Clone, Debug)]
pub struct Request {
    pub namespace: String,
    pub component: String,
    pub wanted: Wanted,
    /// For the image to appear (and Flux's reconcile).
    pub poll_timeout: Duration,
    /// For the rollout.
    pub timeout: Duration,
}

/// What the watch ended with.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub namespace: String,
    pub deployment: String,
    pub image: Wanted,
    /// Whether a `HelmRelease` was reconciled on the way.
    pub reconciled: bool,
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// Seconds from op's start to the end of the rollout.
    pub seconds: f64,
    /// Kubernetes API requests op made.
    pub requests: usize,
}

/// `seconds` as `90s`, `12m`, `1h30m`.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match (seconds / 3600, (seconds % 3600) / 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Waits, as the module says, on `cluster`.
pub async fn run(
    cluster: &Cluster,
    request: &Request,
    progress: &dyn Progress,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let (namespace, name) = (&request.namespace, &request.component);
    let reconciled = reconcile(cluster, request, progress).await?;

    // The image, within --poll-timeout (from op's start: a reconcile counts).
    let mut deployment = cluster.deployment(namespace, name);
    let image_deadline = started + request.poll_timeout;
    let mut seen = "nothing yet".to_string();
    // Waited for while it does not exist (Flux may create it); deleted once seen, it fails.
    let mut existed = false;
    let mut state = loop {
        let next = tokio::time::timeout_at(
            image_deadline.into(),
            deployment.next(&|text| progress.note(text)),
        )
        .await;
        let Ok(next) = next else {
            return Err(Error::ImageTimeout {
                namespace: namespace.clone(),
                name: name.clone(),
                wanted: request.wanted.reference.clone(),
                waited: human(request.poll_timeout),
                seen,
            });
        };
        match next? {
            Some(state) if state.images.iter().any(|i| request.wanted.matches(i)) => {
                progress.note(&format!(
                    "deployment {namespace}/{name} runs {}",
                    request.wanted.reference
                ));
                break state;
            }
            Some(state) => {
                existed = true;
                seen = format!("images {}", state.images.join(", "));
            }
            None if existed => {
                return Err(Error::Deleted {
                    namespace: namespace.clone(),
                    name: name.clone(),
                });
            }
            None => {
                seen = "no such deployment".into();
            }
        }
    };

    // The rollout, within --timeout from when the image was seen.
    let rollout_deadline = Instant::now() + request.timeout;
    loop {
        let status = rollout(&state);
        progress.state(&state, &status);
        match status {
            Rollout::Done => break,
            Rollout::DeadlineExceeded(message) => {
                return Err(Error::DeadlineExceeded {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    deadline: state.progress_deadline_seconds.map_or_else(
                        || "progressDeadlineSeconds".into(),
                        |s| format!("progressDeadlineSeconds {s}s"),
                    ),
                    message,
                });
            }
            Rollout::Waiting(_) | Rollout::SpecNotObserved => {}
        }
        let next = tokio::time::timeout_at(
            rollout_deadline.into(),
            deployment.next(&|text| progress.note(text)),
        )
        .await;
        let Ok(next) = next else {
            return Err(Error::RolloutTimeout {
                namespace: namespace.clone(),
                name: name.clone(),
                waited: human(request.timeout),
                seen: describe(&state, &rollout(&state)),
            });
        };
        state = next?.ok_or_else(|| Error::Deleted {
            namespace: namespace.clone(),
            name: name.clone(),
        })?;
    }
    Ok(Outcome {
        namespace: namespace.clone(),
        deployment: name.clone(),
        image: request.wanted.clone(),
        reconciled,
        replicas: state.replicas,
        updated: state.updated,
        ready: state.ready,
        available: state.available,
        seconds: started.elapsed().as_secs_f64(),
        requests: cluster.requests(),
    })
}

/// A deployment's state in one line.
pub fn describe(state: &DeploymentState, rollout: &Rollout) -> String {
    let what = match rollout {
        Rollout::SpecNotObserved => "waiting for the controller to observe the new spec".into(),
        Rollout::Waiting(why) => why.clone(),
        Rollout::Done => "rolled out".into(),
        Rollout::DeadlineExceeded(message) => message.clone(),
    };
    format!(
        "{}/{} updated, {} ready, {} available: {what}",
        state.updated, state.desired, state.ready, state.available
    )
}

/// Flux's part: whether a `HelmRelease` was reconciled.
async fn reconcile(
    cluster: &Cluster,
    request: &Request,
    progress: &dyn Progress,
) -> Result<bool, Error> {
    let (namespace, name) = (&request.namespace, &request.component);
    if !cluster.serves_helm_releases().await? {
        progress
            .note("Flux's HelmRelease is not installed in this cluster: no reconcile asked for");
        return Ok(false);
    }
    let Some(release) = cluster.helm_release(namespace, name).await? else {
        progress.note(&format!(
            "no helmrelease {namespace}/{name}: no reconcile asked for"
        ));
        return Ok(false);
    };
    if release.suspended {
        return Err(Error::Suspended {
            namespace: namespace.clone(),
            name: name.clone(),
        });
    }
    let token = kubernetes::reconcile_token();
    cluster.request_reconcile(namespace, name, &token).await?;
    progress.note(&format!(
        "asked Flux to reconcile helmrelease {namespace}/{name}"
    ));
    let deadline = Instant::now() + request.poll_timeout;
    let mut watch = cluster.helm_release_watch(namespace, name);
    let mut seen = String::from("nothing yet");
    loop {
        let next =
            tokio::time::timeout_at(deadline.into(), watch.next(&|text| progress.note(text))).await;
        let Ok(next) = next else {
            return Err(Error::ReconcileTimeout {
                namespace: namespace.clone(),
                name: name.clone(),
                waited: human(request.poll_timeout),
                seen,
            });
        };
        let Some(state) = next? else {
            seen = "no such helmrelease".into();
            continue;
        };
        match released(&state, &token) {
            Released::Yes => {
                progress.note(&format!("helmrelease {namespace}/{name} is ready"));
                return Ok(true);
            }
            Released::Stalled(condition) => {
                return Err(Error::Stalled {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    reason: condition.reason,
                    message: condition.message,
                });
            }
            Released::Suspended => {
                return Err(Error::Suspended {
                    namespace: namespace.clone(),
                    name: name.clone(),
                });
            }
            Released::NotYet(why) => seen = why,
        }
    }
}

/// Where a `HelmRelease` stands after a reconcile request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released {
    Yes,
    NotYet(String),
    Stalled(kubernetes::Condition),
    Suspended,
}

/// kstatus's rules for a reconcile request `token`: handled (`lastHandledReconcileAt`), the
/// latest generation observed, `Ready=True`; `Stalled=True` fails.
pub fn released(state: &HelmReleaseState, token: &str) -> Released {
    if state.suspended {
        return Released::Suspended;
    }
    if let Some(stalled) = &state.stalled
        && stalled.status == "True"
    {
        return Released::Stalled(stalled.clone());
    }
    if state.last_handled_reconcile_at.as_deref() != Some(token) {
        return Released::NotYet("the reconcile request is not handled yet".into());
    }
    if state.observed_generation < state.generation {
        return Released::NotYet("the latest generation is not observed yet".into());
    }
    match &state.ready {
        Some(ready) if ready.status == "True" => Released::Yes,
        Some(ready) => Released::NotYet(format!("Ready={}: {}", ready.status, ready.message)),
        None => Released::NotYet("no Ready condition yet".into()),
    }
}
