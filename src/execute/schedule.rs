//! The builds of a plan: builders pulled once each, then every buildpacks artifact and every
//! skaffold run as soon as what it depends on is built, at most `Shared::jobs_at_once` at a time
//! (each creator and skaffold run then takes one of `concurrency` slots).

use std::collections::BTreeMap;
use std::sync::Arc;

use op_oci::{Platform, Reference};

use super::artifact::{self, Built, Error as ArtifactError};
use super::scheduler::{self, Failed, Job};
use super::{Error, Failure, Phase, Reporter, Shared, delegated};
use crate::cnb::builder::BuilderInfo;
use crate::engine::{Containers, PullPolicy};
use crate::plan::{PlannedArtifact, SkaffoldRun, mirrored};
use crate::registry::auth::Credentials;

/// The builders of the build, read.
#[derive(Clone, Debug, Default)]
pub(super) struct Builders {
    /// Each builder (by its reference in the plan) as the engine pulled it: for the one
    /// platform of the build, or the first of several.
    pub(super) default: BTreeMap<String, BuilderInfo>,
    /// With `--platform` and a builder that is an index (which several platforms need): its
    /// image for each platform, in `--platform` order.
    pub(super) platforms: BTreeMap<String, Vec<(Platform, BuilderInfo)>>,
}

/// Reads every builder the artifacts use (once each, concurrently, with the credentials of
/// their registries): pulled into the engine, or, with `--engine kubernetes` (no engine), its
/// config read from the registry, the nodes pulling the image. With `platforms`, a builder that
/// is an index is read by the digest of its image for each (several platforms need an index).
pub(super) async fn pull_builders(
    shared: &PullContext<'_>,
    artifacts: &[&PlannedArtifact],
    platforms: &[Platform],
) -> Result<Builders, Error> {
    let mut users: BTreeMap<Reference, Vec<String>> = BTreeMap::new();
    for artifact in artifacts {
        if let Some(b) = artifact.buildpacks() {
            users
                .entry(b.builder.clone())
                .or_default()
                .push(artifact.image.clone());
        }
    }
    let reads = users.into_iter().map(|(reference, images)| async move {
        let builder = reference.to_string();
        // With platforms asked for and a builder that is an index, its image for each.
        let per_platform = if platforms.is_empty() {
            None
        } else {
            builder_images(shared.registry, &builder, platforms).await?
        };
        for image in &images {
            shared.reporter.phase(image, Phase::Pulling);
        }
        let read = match per_platform {
            None => (
                read_one(shared, &builder, reference.registry(), platforms.first()).await?,
                Vec::new(),
            ),
            Some(per_platform) => {
                let mut all = Vec::new();
                for (platform, image) in per_platform {
                    let info =
                        read_one(shared, &image, reference.registry(), Some(&platform)).await?;
                    all.push((platform, info));
                }
                (all[0].1.clone(), all)
            }
        };
        for image in &images {
            shared.reporter.phase(image, Phase::Waiting);
        }
        Ok::<_, Error>((builder, read))
    });
    let mut builders = Builders::default();
    for (name, (info, per_platform)) in futures::future::try_join_all(reads).await? {
        if !per_platform.is_empty() {
            builders.platforms.insert(name.clone(), per_platform);
        }
        builders.default.insert(name, info);
    }
    Ok(builders)
}

/// Reads one builder image (`reference`: a tag, or one platform's image by digest, of registry
/// `host`), pulled into the engine or from the registry; it must be `platform`'s when one is asked for.
async fn read_one(
    shared: &PullContext<'_>,
    reference: &str,
    host: &str,
    platform: Option<&Platform>,
) -> Result<BuilderInfo, Error> {
    let Some(engine) = shared.engine else {
        return from_registry(shared, reference, platform).await;
    };
    let auth = shared.credentials.pull_auth(host);
    pull_one(
        engine,
        reference,
        shared.pull,
        auth.as_ref(),
        shared.reporter,
        platform,
    )
    .await
}

/// The builder `reference` as the registry serves it (an index resolved to `platform`, else
/// to op's machine's), named by its digest, which the pods then run: what was read is what runs.
async fn from_registry(
    shared: &PullContext<'_>,
    reference: &str,
    platform: Option<&Platform>,
) -> Result<BuilderInfo, Error> {
    let image = match platform {
        Some(platform) => shared.registry.image_for(reference, platform).await?,
        None => shared.registry.image(reference).await?,
    };
    let config = &image.config["config"];
    let env: Vec<String> = config["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let labels: BTreeMap<String, String> = config["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let pinned = image.digest_reference();
    let built_for = image.platform();
    let info = builder_info(
        (&pinned, reference),
        platform,
        built_for,
        (&env, &labels, &image.diff_ids()),
    )?;
    shared.reporter.note(&format!(
        "Read builder {reference} from the registry: the nodes run {pinned}"
    ));
    Ok(info)
}

/// What pulling the builders needs.
pub(super) struct PullContext<'a> {
    /// None with `--engine kubernetes`: the builders are read from the registry.
    pub(super) engine: Option<&'a Arc<dyn Containers>>,
    pub(super) registry: &'a crate::registry::Registry,
    pub(super) credentials: &'a Credentials,
    pub(super) pull: PullPolicy,
    pub(super) reporter: &'a Arc<dyn Reporter>,
}

/// The image of `builder`, an index, for each of `platforms`, by digest; `None` when it is a
/// single image (or the registry does not have it) and one platform is asked for: the engine
/// pulls it and its config must say that platform. Several platforms need an index.
async fn builder_images(
    registry: &crate::registry::Registry,
    builder: &str,
    platforms: &[Platform],
) -> Result<Option<Vec<(Platform, String)>>, Error> {
    let listed = registry.index_images(builder).await?;
    let shown = |images: &[(Platform, String)]| {
        let names: Vec<String> = images.iter().map(|(p, _)| p.to_string()).collect();
        format!("an index of {}", names.join(", "))
    };
    let Some(images) = listed else {
        if platforms.len() == 1 {
            return Ok(None);
        }
        return Err(Error::Platform {
            builder: builder.to_string(),
            builder_platform: "a single-platform image".into(),
            requested: platforms_text(platforms),
        });
    };
    platforms
        .iter()
        .map(|wanted| {
            images
                .iter()
                .find(|(p, _)| {
                    wanted.matches(&p.os, &p.architecture)
                        && (wanted.variant.is_none() || wanted.variant == p.variant)
                })
                .map(|(_, reference)| (wanted.clone(), reference.clone()))
                .ok_or_else(|| Error::Platform {
                    builder: builder.to_string(),
                    builder_platform: shown(&images),
                    requested: platforms_text(platforms),
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn platforms_text(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Pulls one builder image (`reference`: a tag, or one platform's image by digest) and reads
/// it; it must be `platform`'s when one is asked for.
async fn pull_one(
    engine: &Arc<dyn Containers>,
    reference: &str,
    pull: PullPolicy,
    auth: Option<&crate::engine::PullAuth>,
    reporter: &Arc<dyn Reporter>,
    platform: Option<&Platform>,
) -> Result<BuilderInfo, Error> {
    let started = std::time::Instant::now();
    let mut announced = false;
    let mut progress = |line: &str| {
        if !announced {
            reporter.note(&format!("Pulling builder {reference}"));
            announced = true;
        }
        tracing::debug!(builder = %reference, "{line}");
    };
    let (pulled, config) = engine
        .ensure_image_config(reference, pull, auth, &mut progress)
        .await?;
    if pulled {
        let seconds = started.elapsed().as_secs_f64();
        reporter.note(&format!("Pulled builder {reference} in {seconds:.1}s"));
    }
    builder_info(
        (reference, reference),
        platform,
        (&config.os, &config.architecture),
        (&config.env, &config.labels, &config.layers),
    )
}

/// The builder `image` (asked for as `asked`), of platform `(os, architecture)`, from its
/// config's environment, labels and layers; it must be `platform`'s when one is asked for, and
/// its lifecycle must speak a Platform API op does.
fn builder_info(
    (image, asked): (&str, &str),
    platform: Option<&Platform>,
    (os, architecture): (&str, &str),
    (env, labels, layers): (&[String], &BTreeMap<String, String>, &[String]),
) -> Result<BuilderInfo, Error> {
    if let Some(platform) = platform
        && !platform.matches(os, architecture)
    {
        return Err(Error::Platform {
            builder: asked.to_string(),
            builder_platform: format!("a {os}/{architecture} image"),
            requested: platform.to_string(),
        });
    }
    let info = BuilderInfo::from_config(image, env, labels)?.with_layers(layers);
    info.platform_api()?;
    Ok(info)
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
        .filter_map(|b| builders.get(&b.builder.to_string()))
        .flat_map(BuilderInfo::default_run_images)
        .map(|r| r.registry().to_string())
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
    image_registry: Option<&str>,
) -> Result<(Reference, Option<String>), crate::cnb::Error> {
    let b = artifact.buildpacks();
    match b.and_then(|b| b.run_image.as_ref()) {
        Some(run) => match run.artifact.as_ref().and_then(|dep| built.get(dep)) {
            Some(dep) => {
                let note = format!(
                    "Resolving runImage {} to built artifact {}",
                    dep.image, dep.tag
                );
                // What it was published as: its target (the run image the plan names), with
                // the digest.
                let published = Reference {
                    digest: Some(dep.digest.clone()),
                    ..run.image.clone()
                };
                Ok((published, Some(note)))
            }
            None => Ok((run.image.clone(), None)),
        },
        None => builder
            .run_image_for(&artifact.target)
            .map(|image| (mirrored(&image, image_registry), None))
            .ok_or_else(|| crate::cnb::Error::NoRunImage {
                builder: builder.image.clone(),
                image: artifact.image.clone(),
            }),
    }
}

/// The job that builds `image`: its skaffold run's (named by the run's first artifact), or its
/// own.
fn job_of<'a>(image: &'a str, runs: &'a [SkaffoldRun]) -> &'a str {
    runs.iter()
        .find(|r| r.artifacts.iter().any(|a| a == image))
        .and_then(|r| r.artifacts.first())
        .map_or(image, String::as_str)
}

/// Builds `artifacts`: each buildpacks artifact and each skaffold run is a job that starts as
/// soon as the jobs it depends on are done, at most [`Shared::jobs_at_once`] at a time
/// (`scheduler`), each creator and skaffold run taking one of `concurrency` slots.
/// Returns what was built and what failed, failures in plan order.
pub(super) async fn run_all(
    shared: &Arc<Shared>,
    artifacts: &[&PlannedArtifact],
    runs: &[SkaffoldRun],
    builders: &Builders,
) -> (Vec<Built>, Vec<Failure>) {
    let mut jobs: Vec<Job> = Vec::new();
    for artifact in artifacts {
        let job = job_of(&artifact.image, runs);
        if jobs.iter().any(|j| j.name == job) {
            continue;
        }
        let mut waits_for: Vec<String> = Vec::new();
        if job == artifact.image && artifact.buildpacks().is_some() {
            for dependency in artifact.depends_on.iter().filter(|d| d.built) {
                let on = job_of(&dependency.image, runs).to_string();
                if !waits_for.contains(&on) {
                    waits_for.push(on);
                }
            }
        }
        jobs.push(Job {
            name: job.to_string(),
            waits_for,
        });
    }
    let start = |name: &str, dependencies: BTreeMap<String, Vec<Built>>| {
        let shared = Arc::clone(shared);
        let run = runs
            .iter()
            .find(|r| r.artifacts.first().is_some_and(|a| a == name))
            .cloned();
        let members: Vec<PlannedArtifact> = match &run {
            Some(run) => run
                .artifacts
                .iter()
                .filter_map(|image| artifacts.iter().find(|a| a.image == *image))
                .map(|a| (*a).clone())
                .collect(),
            None => artifacts
                .iter()
                .filter(|a| a.image == name)
                .map(|a| (*a).clone())
                .collect(),
        };
        let builder_name = members
            .first()
            .and_then(|a| Some(a.buildpacks()?.builder.to_string()));
        let builder = builder_name
            .as_ref()
            .and_then(|b| builders.default.get(b).cloned());
        let per_platform = builder_name
            .as_ref()
            .and_then(|b| builders.platforms.get(b).cloned())
            .unwrap_or_default();
        async move {
            let result = match (&run, members.first(), &shared.delegation) {
                (Some(run), _, Some(delegation)) => {
                    delegated::build_run(&shared, delegation, run, &members).await
                }
                (Some(_), _, None) => Err(ArtifactError::Task("no skaffold".into())),
                (None, Some(artifact), _) => {
                    let built: BTreeMap<String, Built> = dependencies
                        .into_values()
                        .flatten()
                        .map(|b| (b.image.clone(), b))
                        .collect();
                    match &builder {
                        Some(builder) => Box::pin(build_one(
                            &shared,
                            artifact,
                            (builder, &per_platform),
                            &built,
                        ))
                        .await
                        .map(|b| vec![b]),
                        None => Err(ArtifactError::NoBuilder),
                    }
                }
                (None, None, _) => Err(ArtifactError::Task("an unknown job".into())),
            };
            let phase = if result.is_ok() {
                Phase::Done
            } else {
                Phase::Failed
            };
            for artifact in &members {
                shared.reporter.phase(&artifact.image, phase);
            }
            result
        }
    };
    let skipped = |name: &str, _dependency: &str| shared.reporter.phase(name, Phase::Failed);
    let outcomes = scheduler::run(
        &jobs,
        shared.jobs_at_once(),
        shared.interrupt.flag(),
        start,
        skipped,
    )
    .await;
    collect(shared, &jobs, outcomes, artifacts, runs)
}

/// How a job ended: what it built, or why it did not.
type Outcome = Result<Vec<Built>, Failed<ArtifactError>>;

/// What was built and what failed (a failed skaffold run fails each of its artifacts), failures
/// in plan order.
fn collect(
    shared: &Shared,
    jobs: &[Job],
    outcomes: Vec<(String, Outcome)>,
    artifacts: &[&PlannedArtifact],
    runs: &[SkaffoldRun],
) -> (Vec<Built>, Vec<Failure>) {
    let members = |job: &str| -> Vec<String> {
        runs.iter()
            .find(|r| r.artifacts.first().is_some_and(|a| a == job))
            .map_or_else(|| vec![job.to_string()], |r| r.artifacts.clone())
    };
    let mut built = Vec::new();
    let mut failures = Vec::new();
    // A job without an outcome never started (op was interrupted) or its task died.
    if shared.interrupt.signalled().is_none() {
        for job in jobs {
            if !outcomes.iter().any(|(name, _)| *name == job.name) {
                for artifact in members(&job.name) {
                    failures.push(Failure {
                        artifact,
                        error: ArtifactError::Task("op was not interrupted".into()),
                    });
                }
            }
        }
    }
    for (job, outcome) in outcomes {
        match outcome {
            Ok(done) => built.extend(done),
            Err(Failed::Ran(error)) => {
                let mut names = members(&job).into_iter();
                if let Some(first) = names.next() {
                    failures.push(Failure {
                        artifact: first.clone(),
                        error,
                    });
                    for artifact in names {
                        failures.push(Failure {
                            artifact,
                            error: ArtifactError::SameSkaffoldRun {
                                artifact: first.clone(),
                            },
                        });
                    }
                }
            }
            Err(Failed::Dependency(failed_job)) => {
                // The dependency the artifact names, not the job that built it.
                let dependency = artifacts
                    .iter()
                    .find(|a| a.image == job)
                    .and_then(|a| {
                        a.depends_on
                            .iter()
                            .find(|d| job_of(&d.image, runs) == failed_job)
                    })
                    .map_or(failed_job, |d| d.image.clone());
                failures.push(Failure {
                    artifact: job,
                    error: ArtifactError::DependencyFailed { dependency },
                });
            }
        }
    }
    failures.sort_by_key(|f| artifacts.iter().position(|a| a.image == f.artifact));
    (built, failures)
}

/// Without `--push`, the buildpacks images (published, as always) are pulled into the engine by
/// digest and tagged with every reference of their artifact, as a local build would leave them.
/// With several platforms, an engine with containerd's image store gets every platform of the
/// index (one pull each); a graph driver's store holds one platform per image, so it gets the
/// engine's own, and op says where the others are.
pub(super) async fn load_into_engine(
    shared: &Shared,
    buildpacks: &[&PlannedArtifact],
    built: &[Built],
) -> Result<(), Error> {
    let platforms = &shared.platforms;
    let engine = shared.engine("load the images")?;
    for artifact in buildpacks {
        let Some(b) = built.iter().find(|b| b.image == artifact.image) else {
            continue;
        };
        let auth = shared.credentials.pull_auth(artifact.target.registry());
        let mut loaded = String::new();
        if platforms.len() > 1 && engine.containerd_store() {
            for platform in platforms {
                let platform = platform.to_string();
                engine
                    .pull_platform(&b.tag, &platform, auth.as_ref())
                    .await?;
            }
            loaded = format!(
                "; every platform ({}): containerd's image store holds the whole index",
                platforms_text(platforms)
            );
        } else {
            engine
                .ensure_image(&b.tag, PullPolicy::Missing, auth.as_ref(), &mut |_| {})
                .await?;
            if platforms.len() > 1 {
                let config = engine.image_config(&b.tag).await?;
                loaded = format!(
                    "; {}/{} only: this engine's image store holds one platform per image, and the index of {} is in the registry",
                    config.os,
                    config.architecture,
                    platforms_text(platforms)
                );
            }
        }
        let references: Vec<String> = artifact.references().map(ToString::to_string).collect();
        for reference in &references {
            engine.tag(&b.tag, reference).await?;
        }
        shared.reporter.note(&format!(
            "Loaded {} into the Docker Engine as {}{loaded}",
            b.tag,
            references.join(", ")
        ));
    }
    Ok(())
}

/// One artifact's build: its run image (a dependency's published digest when it names one),
/// then the build, once per platform of `per_platform` when there are several.
async fn build_one(
    shared: &Shared,
    artifact: &PlannedArtifact,
    (builder, per_platform): (&BuilderInfo, &[(Platform, BuilderInfo)]),
    dependencies: &BTreeMap<String, Built>,
) -> Result<Built, ArtifactError> {
    let plan = artifact.buildpacks().ok_or(ArtifactError::NotBuildpacks)?;
    let (run_image, note) = run_image(
        artifact,
        builder,
        dependencies,
        shared.image_registry.as_deref(),
    )?;
    if let Some(note) = note {
        shared.reporter.line(&artifact.image, &note);
    }
    let per_platform = match (&plan.chart, per_platform.first()) {
        (Some(_), Some((first, _))) => {
            shared.reporter.line(
                &artifact.image,
                &format!("A chart has no platform: it is built once, with the builder for {first}"),
            );
            &[]
        }
        _ => per_platform,
    };
    match per_platform {
        [] => artifact::build(shared, artifact, plan, builder, &run_image, None).await,
        // One platform of an index: that platform's builder, published as the image itself.
        [(platform, builder)] => {
            let one = Some((platform, false));
            artifact::build(shared, artifact, plan, builder, &run_image, one).await
        }
        several => artifact::build_platforms(shared, artifact, plan, several, &run_image).await,
    }
}
