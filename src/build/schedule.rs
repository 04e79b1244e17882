//! The builds of a plan: builders pulled once each, then every artifact as soon as the
//! artifacts it depends on are published, at most `concurrency` at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::artifact::{self, Built, Error as ArtifactError};
use super::scheduler::{self, Failed, Job};
use super::{Error, Failure, Phase, Reporter, Shared};
use crate::cnb::builder::BuilderInfo;
use crate::engine::{Containers, PullPolicy};
use crate::plan::PlannedArtifact;
use crate::registry::auth::Credentials;

/// Pulls every builder the artifacts use (once each, concurrently, with the credentials of
/// their registries) and reads what they are.
pub(super) async fn pull_builders(
    engine: &Arc<dyn Containers>,
    credentials: &Credentials,
    pull: PullPolicy,
    reporter: &Arc<dyn Reporter>,
    artifacts: &[&PlannedArtifact],
) -> Result<BTreeMap<String, BuilderInfo>, Error> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for artifact in artifacts {
        if let Some(b) = artifact.buildpacks() {
            users
                .entry(b.builder.clone())
                .or_default()
                .push(artifact.image.clone());
        }
    }
    let mut pulls = JoinSet::new();
    for (builder, images) in users {
        let (engine, reporter) = (Arc::clone(engine), Arc::clone(reporter));
        let host = crate::registry::host_of(&builder).unwrap_or_default();
        let auth = credentials.pull_auth(&host);
        pulls.spawn(async move {
            for image in &images {
                reporter.phase(image, Phase::Pulling);
            }
            let started = std::time::Instant::now();
            let mut announced = false;
            let mut progress = |line: &str| {
                if !announced {
                    reporter.note(&format!("Pulling builder {builder}"));
                    announced = true;
                }
                tracing::debug!(builder = %builder, "{line}");
            };
            let pulled = engine
                .ensure_image(&builder, pull, auth.as_ref(), &mut progress)
                .await?;
            if pulled {
                let seconds = started.elapsed().as_secs_f64();
                reporter.note(&format!("Pulled builder {builder} in {seconds:.1}s"));
            }
            let config = engine.image_config(&builder).await?;
            let info = BuilderInfo::from_config(&builder, &config.env, &config.labels)?;
            info.platform_api()?;
            for image in &images {
                reporter.phase(image, Phase::Waiting);
            }
            Ok::<_, Error>((builder, info))
        });
    }
    let mut builders = BTreeMap::new();
    while let Some(joined) = pulls.join_next().await {
        let (name, info) = joined.map_err(|e| Error::Task(e.to_string()))??;
        builders.insert(name, info);
    }
    Ok(builders)
}

/// The registries of the run images the lifecycle reads for `artifacts` that the plan did not
/// name: their builders' default run images, and those images' mirrors. They are known only
/// once the builders are read, and need credentials as much as the others.
pub(super) fn default_run_image_hosts(
    artifacts: &[&PlannedArtifact],
    builders: &BTreeMap<String, BuilderInfo>,
) -> Vec<String> {
    let mut hosts: Vec<String> = artifacts
        .iter()
        .filter_map(|a| a.buildpacks())
        .filter(|b| b.run_image.is_none())
        .filter_map(|b| builders.get(&b.builder))
        .flat_map(BuilderInfo::default_run_images)
        .filter_map(crate::registry::host_of)
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The run image of `artifact`: another artifact's published digest when it names one built
/// now, else what the plan says, else the builder's default.
pub(super) fn run_image(
    artifact: &PlannedArtifact,
    builder: &BuilderInfo,
    built: &BTreeMap<String, Built>,
) -> Result<(String, Option<String>), crate::cnb::Error> {
    let b = artifact.buildpacks();
    match b.and_then(|b| b.run_image.as_ref()) {
        Some(run) => match run.artifact.as_ref().and_then(|dep| built.get(dep)) {
            Some(dep) => {
                let note = format!(
                    "Resolving runImage {} to built artifact {}",
                    dep.image, dep.tag
                );
                Ok((dep.tag.clone(), Some(note)))
            }
            None => Ok((run.image.clone(), None)),
        },
        None => builder
            .run_image_for(&artifact.target)
            .map(|image| (image, None))
            .ok_or_else(|| crate::cnb::Error::NoRunImage {
                builder: builder.image.clone(),
                image: artifact.image.clone(),
            }),
    }
}

/// Builds `artifacts`, each as soon as the artifacts it depends on are published, at most
/// `concurrency` at a time (`scheduler`); returns what was built and what failed, failures in
/// plan order.
pub(super) async fn run_artifacts(
    shared: &Arc<Shared>,
    artifacts: &[&PlannedArtifact],
    builders: &BTreeMap<String, BuilderInfo>,
) -> (Vec<Built>, Vec<Failure>) {
    let jobs: Vec<Job> = artifacts
        .iter()
        .map(|a| Job {
            name: a.image.clone(),
            waits_for: a
                .depends_on
                .iter()
                .filter(|d| d.built)
                .map(|d| d.image.clone())
                .collect(),
        })
        .collect();
    let start = |name: &str, dependencies: BTreeMap<String, Built>| {
        let shared = Arc::clone(shared);
        let artifact = artifacts
            .iter()
            .find(|a| a.image == name)
            .map(|a| (*a).clone());
        let builder = artifact
            .as_ref()
            .and_then(|a| builders.get(&a.buildpacks()?.builder).cloned());
        async move {
            let (Some(artifact), Some(builder)) = (artifact, builder) else {
                return Err(ArtifactError::NoBuilder);
            };
            let result = build_one(&shared, &artifact, &builder, &dependencies).await;
            let phase = if result.is_ok() {
                Phase::Done
            } else {
                Phase::Failed
            };
            shared.reporter.phase(&artifact.image, phase);
            result
        }
    };
    let skipped = |name: &str, _dependency: &str| shared.reporter.phase(name, Phase::Failed);
    let outcomes = scheduler::run(
        &jobs,
        shared.options.concurrency,
        shared.interrupt.flag(),
        start,
        skipped,
    )
    .await;
    let mut built = Vec::new();
    let mut failures = Vec::new();
    // A job without an outcome never started (op was interrupted) or its task died.
    if shared.interrupt.signalled().is_none() {
        for job in &jobs {
            if !outcomes.iter().any(|(name, _)| *name == job.name) {
                failures.push(Failure {
                    artifact: job.name.clone(),
                    error: ArtifactError::Task("op was not interrupted".into()),
                });
            }
        }
    }
    for (artifact, outcome) in outcomes {
        match outcome {
            Ok(done) => built.push(done),
            Err(Failed::Ran(error)) => failures.push(Failure { artifact, error }),
            Err(Failed::Dependency(dependency)) => failures.push(Failure {
                artifact,
                error: ArtifactError::DependencyFailed { dependency },
            }),
        }
    }
    failures.sort_by_key(|f| jobs.iter().position(|j| j.name == f.artifact));
    (built, failures)
}

/// One artifact's build: its run image (a dependency's published digest when it names one),
/// then the build.
async fn build_one(
    shared: &Shared,
    artifact: &PlannedArtifact,
    builder: &BuilderInfo,
    dependencies: &BTreeMap<String, Built>,
) -> Result<Built, ArtifactError> {
    let plan = artifact.buildpacks().ok_or(ArtifactError::NotBuildpacks)?;
    let (run_image, note) = run_image(artifact, builder, dependencies)?;
    if let Some(note) = note {
        shared.reporter.line(&artifact.image, &note);
    }
    artifact::build(shared, artifact, plan, builder, &run_image).await
}
