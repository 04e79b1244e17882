//! The order of the builds: builders pulled once each, then the plan's levels one after the
//! other, the artifacts of a level at most `concurrency` at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::artifact::{self, Built, Error as ArtifactError};
use super::{Error, Failure, Phase, Reporter, Shared};
use crate::cnb::builder::BuilderInfo;
use crate::engine::{Engine, PullPolicy};
use crate::plan::{BuildPlan, PlannedArtifact};
use crate::registry::auth::Credentials;

/// Pulls every builder the artifacts use (once each, concurrently, with the credentials of
/// their registries) and reads what they are.
pub(super) async fn pull_builders(
    engine: &Engine,
    credentials: &Credentials,
    pull: PullPolicy,
    reporter: &Arc<dyn Reporter>,
    artifacts: &[&PlannedArtifact],
) -> Result<BTreeMap<String, BuilderInfo>, Error> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for artifact in artifacts {
        if let Some(b) = &artifact.buildpacks {
            users
                .entry(b.builder.clone())
                .or_default()
                .push(artifact.image.clone());
        }
    }
    let mut pulls = JoinSet::new();
    for (builder, images) in users {
        let (engine, reporter) = (engine.clone(), Arc::clone(reporter));
        let host = crate::registry::host_of(&builder).unwrap_or_default();
        let auth = credentials
            .get(&host)
            .map(|c| crate::engine::PullAuth::from_credential(&host, c));
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
        .filter_map(|a| a.buildpacks.as_ref())
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
    let b = artifact.buildpacks.as_ref();
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

/// Runs the levels of the plan; returns what was built and what failed.
pub(super) async fn run_levels(
    shared: &Arc<Shared>,
    plan: &BuildPlan,
    artifacts: &[&PlannedArtifact],
    builders: &BTreeMap<String, BuilderInfo>,
) -> (Vec<Built>, Vec<Failure>) {
    let semaphore = Arc::new(Semaphore::new(shared.options.concurrency.max(1)));
    let mut built: BTreeMap<String, Built> = BTreeMap::new();
    let mut failures: Vec<Failure> = Vec::new();
    for level in &plan.levels {
        let mut tasks = JoinSet::new();
        for name in level {
            let Some(artifact) = artifacts.iter().find(|a| &a.image == name) else {
                continue;
            };
            if shared.cancelled.load(Ordering::SeqCst) {
                break;
            }
            if let Some(dep) = artifact
                .depends_on
                .iter()
                .find(|d| d.built && !built.contains_key(&d.image))
            {
                shared.reporter.phase(name, Phase::Failed);
                failures.push(Failure {
                    artifact: name.clone(),
                    error: ArtifactError::DependencyFailed {
                        dependency: dep.image.clone(),
                    }
                    .into(),
                });
                continue;
            }
            let Some((plan, builder)) = artifact.buildpacks.clone().and_then(|b| {
                let builder = builders.get(&b.builder).cloned()?;
                Some((b, builder))
            }) else {
                continue;
            };
            let (run_image, note) = match run_image(artifact, &builder, &built) {
                Ok(found) => found,
                Err(e) => {
                    shared.reporter.phase(name, Phase::Failed);
                    failures.push(Failure {
                        artifact: name.clone(),
                        error: e.into(),
                    });
                    continue;
                }
            };
            if let Some(note) = note {
                shared.reporter.line(name, &note);
            }
            let (shared, semaphore, artifact) = (
                Arc::clone(shared),
                Arc::clone(&semaphore),
                (*artifact).clone(),
            );
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result = artifact::build(&shared, &artifact, &plan, &builder, &run_image).await;
                let phase = if result.is_ok() {
                    Phase::Done
                } else {
                    Phase::Failed
                };
                shared.reporter.phase(&artifact.image, phase);
                (artifact.image, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((name, Ok(done))) => {
                    built.insert(name, done);
                }
                Ok((name, Err(error))) => failures.push(Failure {
                    artifact: name,
                    error,
                }),
                Err(e) => failures.push(Failure {
                    artifact: "(a build task)".into(),
                    error: e.into(),
                }),
            }
        }
    }
    // Failures in plan order.
    failures.sort_by_key(|f| {
        artifacts
            .iter()
            .position(|a| a.image == f.artifact)
            .unwrap_or(usize::MAX)
    });
    (built.into_values().collect(), failures)
}
