//! One artifact's build: volumes, the creator container, the uploads, the run, the result, and
//! the cleanup that follows whatever happened.
//!
//! A build of one artifact for one platform is a [`Build`]: what it reads (the artifact, its
//! buildpacks plan, the builder, the run image, the platform) and the names it makes (container,
//! volumes, cache, cache image, labels), made once and read by each step, each in the file of
//! its concern: the inputs uploaded (`inputs.rs`), the volumes and the creator container
//! (`container.rs`), what was published (`outputs.rs`).

mod container;
mod inputs;
mod outputs;
mod pod;
mod reuse;

use std::collections::BTreeMap;
use std::time::Instant;

use op_oci::{Platform, Reference};

use super::creator_output::Phase;
use super::names::{
    LABEL_ARTIFACT, LABEL_BUILD_ID, LABEL_TARGET, cache_image, cache_volume_for, slug,
};
use super::publish::Finished;
use super::{Shared, lock};
use crate::cnb::{self, app, builder::BuilderInfo, creator};
use crate::engine::runner::Created;
use crate::engine::{self, LABEL_KIND};
use crate::hint::Hint;
use crate::plan::{BuildpacksPlan, PlannedArtifact};
use crate::registry;

/// How many of the last lines of a failed build are kept for its error.
const TAIL_LINES: usize = 30;

/// A published artifact.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    /// `image` of skaffold.yaml.
    pub image: String,
    /// `<repo>/<image>:<tag>@sha256:…`.
    pub tag: String,
    pub digest: String,
    /// op's wall time for the artifact.
    pub seconds: f64,
    /// How long the creator container ran, as the engine recorded it.
    pub creator_seconds: Option<f64>,
    /// Whether it was built, or an earlier build's image reused or rebased.
    pub made: Made,
}

/// How an artifact's image came to be (`--cache-artifacts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Made {
    /// Built now (by a creator, or by skaffold).
    Built,
    /// An earlier build of the same inputs, published again.
    Reused,
    /// An earlier build of the same app, rebased onto a new run image (and, for an index,
    /// the other platforms reused).
    Rebased,
}

impl Made {
    /// How an index of images made so came to be: reused when all were, built when any was.
    fn of_all(made: impl IntoIterator<Item = Made>) -> Made {
        made.into_iter()
            .fold(Made::Reused, |all, one| match (all, one) {
                (Made::Built, _) | (_, Made::Built) => Made::Built,
                (Made::Rebased, _) | (_, Made::Rebased) => Made::Rebased,
                _ => Made::Reused,
            })
    }
}

impl Built {
    /// `artifact`, published to its target with `digest`, its build started at `started`.
    fn published(
        artifact: &PlannedArtifact,
        digest: String,
        started: Instant,
        creator_seconds: Option<f64>,
    ) -> Self {
        Self::published_as(artifact, &artifact.target, digest, started, creator_seconds)
    }

    /// `artifact`, published as `reference` (its target, or a chart artifact's chart) with
    /// `digest`.
    fn published_as(
        artifact: &PlannedArtifact,
        reference: &impl std::fmt::Display,
        digest: String,
        started: Instant,
        creator_seconds: Option<f64>,
    ) -> Self {
        Self {
            image: artifact.image.clone(),
            tag: format!("{reference}@{digest}"),
            digest,
            seconds: started.elapsed().as_secs_f64(),
            creator_seconds,
            made: Made::Built,
        }
    }

    /// The same, made as `made` says.
    fn made(self, made: Made) -> Self {
        Self { made, ..self }
    }
}

/// Why an artifact's build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{failure}{}", lifecycle_error(*.failure, .tail))]
    Creator {
        failure: cnb::exit::Failure,
        /// A registry its output says refused it, and whether op gave it credentials for it.
        refused_by: Option<(String, bool)>,
        /// Its last lines.
        tail: Vec<String>,
    },
    #[error("the creator wrote no report.toml (exit code 0)")]
    NoReport,
    #[error("the build succeeded, but no buildpack wrote the chart's reference to /out/ref")]
    NoChartRef,
    #[error("the chart's reference in /out/ref: {0}")]
    BadChartRef(String),
    #[error("report.toml: {0}")]
    BadReport(String),
    #[error("the registry serves {served} for `{target}`, but the lifecycle reported {reported}")]
    DigestMismatch {
        target: String,
        reported: String,
        served: String,
    },
    #[error(
        "the registry does not serve `{target}` after the build (within --propagation-timeout)"
    )]
    NotPublished { target: String },
    #[error("not built: it depends on `{dependency}`, which failed")]
    DependencyFailed { dependency: String },
    #[error(transparent)]
    Skaffold(crate::skaffold::Error),
    #[error("not built: it builds in the same `skaffold build` as `{artifact}`, which failed")]
    SameSkaffoldRun { artifact: String },
    #[error("skaffold published `{pushed}` as {found}, and --platform asks for {wanted}")]
    SkaffoldPlatforms {
        artifact: String,
        pushed: String,
        found: String,
        wanted: String,
    },
    #[error("skaffold reported `{reported}`, which is not op's target `{target}`")]
    SkaffoldNaming { reported: String, target: String },
    #[error("interrupted")]
    Interrupted,
    #[error("the build for {platform} failed: {source}")]
    OnPlatform {
        platform: String,
        source: Box<Error>,
    },
    #[error("failed to take the lock of cache volume `{volume}`")]
    Lock {
        volume: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to copy the app")]
    App(#[source] cnb::Error),
    #[error("failed to copy its SBOMs to `{dir}`")]
    Sbom {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no builder was read for it")]
    NoBuilder,
    #[error("it is not a buildpacks artifact")]
    NotBuildpacks,
    #[error("its build stopped without a result: {0}")]
    Task(String),
    #[error(transparent)]
    Cnb(#[from] cnb::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error(transparent)]
    Cluster(crate::kubernetes::Error),
    #[error("its pod {pod} {problem}")]
    Pod {
        pod: String,
        problem: String,
        hint: String,
    },
    #[error("it cannot build on a cluster: {0}")]
    NotOnCluster(String),
}

/// `: <the lifecycle's own ERROR line>` for a failure of the lifecycle itself (not of a
/// buildpack, whose output is shown above), so that the message names what went wrong in that
/// phase rather than guessing.
fn lifecycle_error(failure: cnb::exit::Failure, tail: &[String]) -> String {
    use cnb::exit::Failure;
    if !matches!(
        failure,
        Failure::Analyze(_)
            | Failure::Restore(_)
            | Failure::Export(_)
            | Failure::Other(_)
            | Failure::InvalidArgs
    ) {
        return String::new();
    }
    tail.iter()
        .rev()
        .find_map(|line| line.trim().strip_prefix("ERROR: "))
        .map(|error| format!(": {error}"))
        .unwrap_or_default()
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Creator {
                failure,
                refused_by,
                ..
            } => refused_by
                .as_ref()
                .map(|(registry, credentialed)| cnb::exit::refused_hint(registry, *credentialed))
                .or_else(|| failure.hint().map(str::to_string)),
            Error::DigestMismatch { .. } => {
                Some("another push to the same tag raced this one; build again".into())
            }
            Error::NoChartRef => Some(
                "a chart artifact needs a builder with a chart buildpack (octopilot/helm) that detects the chart, pushes \
                 it to $BP_HELM_OCI_REF and writes what it pushed to $BP_HELM_OCI_OUTPUT/ref; an image that is not a \
                 chart must not end in `-chart`"
                    .into(),
            ),
            Error::App(e) | Error::Cnb(e) => e.hint(),
            Error::OnPlatform { source, .. } => source.hint(),
            Error::Skaffold(e) => e.hint(),
            Error::SkaffoldNaming { .. } => Some(
                "a `~/.skaffold/config` or a profile may rename images; op gives skaffold its own global \
                 configuration, so check the artifact's `image` and the profiles"
                    .into(),
            ),
            Error::SkaffoldPlatforms { .. } => Some(
                "skaffold builds a Dockerfile for several platforms with BuildKit (`useBuildkit: true`, docker buildx \
                 and QEMU on the engine); a custom script is given them in $PLATFORMS and must push an index"
                    .into(),
            ),
            Error::Engine(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Cluster(e) => e.hint(),
            Error::Pod { hint, .. } => Some(hint.clone()),
            Error::NotOnCluster(_) => Some(
                "build it with the local engine (without --engine kubernetes), or drop what a pod cannot have".into(),
            ),
            _ => None,
        }
    }
}

impl Error {
    /// The last lines of the creator's output, for a failed creator.
    pub fn tail(&self) -> &[String] {
        match self {
            Error::Creator { tail, .. } => tail,
            Error::Skaffold(e) => e.tail(),
            Error::OnPlatform { source, .. } => source.tail(),
            _ => &[],
        }
    }
}

/// A diagnostic (`-v`): how long into an artifact's build a step ended.
fn step(artifact: &str, what: &str, since: Instant) {
    tracing::debug!(artifact, ms = since.elapsed().as_millis(), "{what}");
}

/// One artifact's build for one platform (or for the engine's, when none is asked for): what it
/// reads, and the names of what it creates.
pub(super) struct Build<'a> {
    shared: &'a Shared,
    artifact: &'a PlannedArtifact,
    plan: &'a BuildpacksPlan,
    builder: &'a BuilderInfo,
    run_image: &'a Reference,
    /// The platform asked for, if one is.
    platform: Option<&'a Platform>,
    /// The platform's name part (`linux-arm64`) when it is one of several: the container,
    /// volumes, cache and SBOMs are then named after it.
    variant: Option<String>,
    /// `<build id>-<artifact>[-<variant>]`: the name part of the container and volumes.
    base: String,
    volumes: creator::Volumes,
    /// The image the build caches in (`--cache-image`), instead of the cache volume.
    cache_image: Option<Reference>,
    /// The labels of the container and the per-build volumes.
    labels: BTreeMap<String, String>,
}

impl<'a> Build<'a> {
    /// The build of `artifact` with `builder` on `run_image`; for `platform` when one is asked
    /// for (`(platform, true)` for one of several).
    fn new(
        shared: &'a Shared,
        (artifact, plan): (&'a PlannedArtifact, &'a BuildpacksPlan),
        (builder, run_image): (&'a BuilderInfo, &'a Reference),
        platform: Option<(&'a Platform, bool)>,
    ) -> Self {
        let name = &artifact.image;
        let variant = platform
            .filter(|(_, several)| *several)
            .map(|(p, _)| platform_slug(p));
        let base = match &variant {
            Some(variant) => format!("{}-{}-{variant}", shared.build_id, slug(name)),
            None => format!("{}-{}", shared.build_id, slug(name)),
        };
        let volumes = creator::Volumes {
            layers: format!("op-layers-{base}"),
            workspace: format!("op-workspace-{base}"),
            cache: cache_volume_for(name, &artifact.target, variant.as_deref()),
        };
        let cache_image = shared.options.cache_image.as_ref().map(|base| {
            let key = variant
                .as_ref()
                .map_or_else(|| name.clone(), |v| format!("{name}-{v}"));
            cache_image(base, &key)
        });
        let labels = BTreeMap::from([
            (LABEL_KIND.to_string(), "build".to_string()),
            (LABEL_BUILD_ID.to_string(), shared.build_id.clone()),
            (LABEL_ARTIFACT.to_string(), name.clone()),
            (LABEL_TARGET.to_string(), artifact.target.to_string()),
        ]);
        Self {
            shared,
            artifact,
            plan,
            builder,
            run_image,
            platform: platform.map(|(p, _)| p),
            variant,
            base,
            volumes,
            cache_image,
            labels,
        }
    }

    fn name(&self) -> &str {
        &self.artifact.image
    }

    /// The build itself; what it creates is recorded in `resources`. Returns what it published
    /// (the target, or a chart artifact's chart), its digest and the creator's run time.
    async fn run(
        &self,
        resources: &mut Created,
        spooled: Option<app::Spooled>,
    ) -> Result<(String, String, Option<f64>), Error> {
        let started = Instant::now();
        let (shared, name) = (self.shared, self.name());
        let engine = shared.engine("run a creator")?;
        shared.reporter.phase(name, Phase::Preparing);
        // The inputs (app, environment, order), unless tarred for the key already, are tarred
        // while the volumes and the container are created.
        let inputs = self.tar_inputs(spooled);
        self.prepare_volumes(resources).await?;
        step(name, "volumes", started);
        let spec = self.creator_spec()?;
        // One of several platforms says so in build_platforms.
        if let Some(platform) = self.platform
            && self.variant.is_none()
            && platform.architecture != engine.architecture()
        {
            let how = how_it_runs(shared, platform);
            shared
                .reporter
                .line(name, &format!("Building for {platform} {how}"));
        }
        tracing::debug!(artifact = %name, spec = ?creator::redacted(&spec), "creator container");
        let container = engine.create(&spec).await?;
        resources.container = Some(container.clone());
        step(name, "container created", started);
        let uploaded = engine.upload(&container, "/", inputs.archive).await;
        // A tar that failed (a file op cannot read) is why its upload failed.
        inputs
            .tarred
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(Error::App)?;
        uploaded?;
        step(name, "inputs uploaded", started);

        let container::CreatorExit {
            code,
            tail,
            announced,
        } = self.run_creator(&container).await?;
        step(name, "creator exited", started);
        let Some(code) = code else {
            return Err(Error::Interrupted);
        };
        if code == 0 {
            let published = self
                .published(&Finished::Container(&container), announced)
                .await?;
            step(name, "digest checked", started);
            return Ok(published);
        }
        Err(Error::Creator {
            failure: cnb::exit::Failure::from_code(code),
            refused_by: cnb::exit::refused_by(&tail).map(|registry| {
                let credentialed = self.shared.credentials.get(&registry).is_some();
                (registry, credentialed)
            }),
            tail,
        })
    }
}

/// Builds `artifact` with `builder`, on `run_image`; for `platform` when one is asked for
/// (`(platform, true)` for one of several: its `target` is then the platform's tag, and its
/// container, volumes, cache image and SBOMs are named after the platform).
pub(super) async fn build(
    shared: &Shared,
    artifact: &PlannedArtifact,
    b: &BuildpacksPlan,
    builder: &BuilderInfo,
    run_image: &Reference,
    platform: Option<(&Platform, bool)>,
) -> Result<Built, Error> {
    let started = Instant::now();
    let reporter = &shared.reporter;
    let name = &artifact.image;
    let job = Build::new(shared, (artifact, b), (builder, run_image), platform);
    // A chart is published by its buildpack, not as the image.
    let (reuse, spooled) = if shared.options.cache_artifacts && b.chart.is_none() {
        let (reuse, spooled) = Box::pin(job.reuse()).await?;
        (reuse, Some(spooled))
    } else {
        (None, None)
    };
    match &reuse {
        Some(reuse::Reuse::Hit {
            key_tag,
            found,
            unnamed,
        }) => {
            Box::pin(job.reused(key_tag, found, unnamed)).await?;
            let digest = found.manifest().digest.clone();
            return Ok(Built::published(artifact, digest, started, None).made(Made::Reused));
        }
        Some(reuse::Reuse::Rebase {
            key_tag,
            app_tag,
            previous,
            run_image,
        }) => {
            if let Some(digest) = Box::pin(job.rebased(app_tag, previous, run_image)).await? {
                job.remember(key_tag, app_tag, &digest).await;
                return Ok(Built::published(artifact, digest, started, None).made(Made::Rebased));
            }
        }
        _ => {}
    }
    // The checks above are registry requests, made for many artifacts at once; a build takes
    // one of the `--concurrency` creator slots.
    let _slot = shared.creator_slot().await?;
    let cache = &job.volumes.cache;
    let _lock = lock::acquire(&shared.env, cache, || {
        reporter.line(
            name,
            &format!("Waiting for cache volume {cache}: another op build uses it"),
        );
    })
    .await
    .map_err(|source| Error::Lock {
        volume: cache.clone(),
        source,
    })?;

    let mut resources = Created::default();
    let result = match &shared.cluster {
        Some((cluster, namespace)) => job.run_in_cluster(cluster, namespace, spooled).await,
        None => job.run(&mut resources, spooled).await,
    };
    if shared.options.keep {
        reporter.line(
            name,
            &format!(
                "Kept container {} and volumes {} (--keep); remove them with docker rm -f / docker volume rm",
                resources.container.as_deref().unwrap_or("(none)"),
                resources.volumes.join(", ")
            ),
        );
    } else {
        cleanup(shared, &resources).await;
        step(name, "cleaned up", started);
    }
    let (reference, digest, creator_seconds) = result?;
    if let Some(
        reuse::Reuse::Miss { key_tag, app_tag }
        | reuse::Reuse::Rebase {
            key_tag, app_tag, ..
        },
    ) = &reuse
    {
        job.remember(key_tag, app_tag, &digest).await;
    }
    Ok(Built::published_as(
        artifact,
        &reference,
        digest,
        started,
        creator_seconds,
    ))
}

/// Builds `artifact` once per platform of `builders` (each the builder's image for it), at
/// once: each published as `<target>-<os>-<arch>` (upstream's per-platform tags, kept), then
/// one index of them, with a `platform` per entry, under the target and every extra tag. A
/// failure on any platform fails the artifact, naming the platform; the index is then not
/// published.
pub(super) async fn build_platforms(
    shared: &Shared,
    artifact: &PlannedArtifact,
    b: &BuildpacksPlan,
    builders: &[(Platform, BuilderInfo)],
    run_image: &Reference,
) -> Result<Built, Error> {
    let started = Instant::now();
    let name = &artifact.image;
    let builds = builders.iter().map(|(platform, builder)| {
        let mut one = artifact.clone();
        let tag = artifact
            .target
            .tag
            .as_deref()
            .unwrap_or(crate::config::DEFAULT_TAG);
        one.target = artifact
            .target
            .with_tag(&format!("{tag}-{}", platform_slug(platform)));
        one.extra_tags = Vec::new();
        let how = how_it_runs(shared, platform);
        shared.reporter.line(
            name,
            &format!("Building for {platform} {how}, as {}", one.target),
        );
        async move {
            let built = build(shared, &one, b, builder, run_image, Some((platform, true))).await;
            (platform, built)
        }
    });
    let results = futures::future::join_all(builds).await;
    let mut images = Vec::new();
    let mut failed = None;
    let mut creator_seconds: Option<f64> = None;
    let mut made = Vec::new();
    for (platform, result) in results {
        match result {
            Ok(built) => {
                creator_seconds = match (creator_seconds, built.creator_seconds) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                made.push(built.made);
                images.push((platform.clone(), built.tag));
            }
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) if failed.is_none() => {
                failed = Some(Error::OnPlatform {
                    platform: platform.to_string(),
                    source: Box::new(e),
                });
            }
            Err(e) => shared.reporter.line(
                name,
                &format!("error: the build for {platform} failed too: {e}"),
            ),
        }
    }
    if let Some(failed) = failed {
        return Err(failed);
    }
    let names: Vec<String> = artifact.references().map(ToString::to_string).collect();
    let made = Made::of_all(made);
    // Every member reused: the index its names hold already is left as it is.
    let index = shared
        .registry
        .platform_index(&names, &images, made == Made::Reused)
        .await?;
    let platforms: Vec<String> = images.iter().map(|(p, _)| p.to_string()).collect();
    let what = if index.written {
        "Published the index of"
    } else {
        "Unchanged: the index of"
    };
    let digest = index.digest;
    shared.reporter.line(
        name,
        &format!(
            "{what} {} as {}@{digest}",
            platforms.join(", "),
            artifact.target
        ),
    );
    Ok(Built::published(artifact, digest, started, creator_seconds).made(made))
}

/// How a creator for `platform` runs: natively or under emulation on the engine, or on a node
/// of the cluster.
fn how_it_runs(shared: &Shared, platform: &Platform) -> String {
    let Some(engine) = &shared.engine else {
        return format!("on a {platform} node of the cluster");
    };
    let engine = engine.architecture();
    if platform.architecture == engine {
        "natively".to_string()
    } else {
        format!(
            "under emulation (the Docker Engine is {engine}; QEMU's binfmt_misc handler runs it)"
        )
    }
}

async fn cleanup(shared: &Shared, resources: &Created) {
    let Some(engine) = &shared.engine else {
        return;
    };
    for warning in resources.remove(engine.as_ref()).await {
        shared.reporter.note(&format!("warning: {warning}"));
    }
}

/// `linux-arm64`, `linux-arm-v7`: a platform in names and tags (upstream's per-platform tag
/// suffix).
pub(super) fn platform_slug(platform: &Platform) -> String {
    platform.to_string().replace('/', "-")
}

#[cfg(test)]
mod tests {
    use super::Made;

    #[test]
    fn an_index_is_reused_only_when_every_member_was() {
        assert_eq!(Made::of_all([Made::Reused, Made::Reused]), Made::Reused);
        assert_eq!(Made::of_all([Made::Reused, Made::Rebased]), Made::Rebased);
        assert_eq!(
            Made::of_all([Made::Rebased, Made::Built, Made::Reused]),
            Made::Built
        );
    }
}
