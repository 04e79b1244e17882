//! One artifact's build: volumes, the creator container, the uploads, the run, the result, and
//! the cleanup that follows whatever happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::creator_output::{LineBuffer, Phase, announced_digest, without_ansi};
use super::names::{
    LABEL_ARTIFACT, LABEL_BUILD_ID, LABEL_CACHE_FOR, LABEL_TARGET, cache_volume_for, network_for,
    slug,
};
use super::publish::published_digest;
use super::{Shared, chart, lock};
use crate::cnb::{self, app, builder::BuilderInfo, creator, project::ProjectDescriptor};
use crate::engine::runner::{self, Created, Exit};
use crate::engine::{self, ContainerSpec, LABEL_KIND, Output};
use crate::hint::Hint;
use crate::plan::{BuildpacksPlan, EnvVar, PlannedArtifact};
use crate::registry;
use op_oci::Platform;
use op_oci::Reference;

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
        }
    }
}

/// Why an artifact's build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{failure}{}", lifecycle_error(*.failure, .tail))]
    Creator {
        failure: cnb::exit::Failure,
        /// A registry its output says refused it.
        refused_by: Option<String>,
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
                .as_deref()
                .map(cnb::exit::refused_hint)
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

/// The variables the buildpacks of `b` see: its `buildpacks.env`, and `GITHUB_TOKEN` from op's
/// environment unless the artifact sets it (upstream forwards it, for private modules). They go
/// to `/platform/env`, which is neither printed nor part of the image.
fn platform_env(b: &BuildpacksPlan, env: &crate::config::Env) -> Vec<EnvVar> {
    let mut all = b.env.clone();
    if let Some(token) = env.get(GITHUB_TOKEN)
        && !all.iter().any(|v| v.name == GITHUB_TOKEN)
    {
        all.push(EnvVar {
            name: GITHUB_TOKEN.to_string(),
            value: token.to_string(),
        });
    }
    all
}

/// The variable upstream forwards to every build.
const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

/// A diagnostic (`-v`): how long into an artifact's build a step ended.
fn step(artifact: &str, what: &str, since: Instant) {
    tracing::debug!(artifact, ms = since.elapsed().as_millis(), "{what}");
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
    let _slot = shared
        .creator_slots
        .acquire()
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    let target = PlatformTarget {
        platform: platform.map(|(p, _)| p),
        variant: platform
            .filter(|(_, several)| *several)
            .map(|(p, _)| platform_slug(p)),
    };
    let cache = cache_volume_for(name, &artifact.target, target.variant.as_deref());
    let _lock = lock::acquire(&shared.env, &cache, || {
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
    let result = run(
        shared,
        (artifact, &target),
        b,
        builder,
        run_image,
        &cache,
        &mut resources,
    )
    .await;
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
    for (platform, result) in results {
        match result {
            Ok(built) => {
                creator_seconds = match (creator_seconds, built.creator_seconds) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
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
    let digest = shared.registry.platform_index(&names, &images).await?;
    let platforms: Vec<String> = images.iter().map(|(p, _)| p.to_string()).collect();
    shared.reporter.line(
        name,
        &format!(
            "Published the index of {} as {}@{digest}",
            platforms.join(", "),
            artifact.target
        ),
    );
    Ok(Built::published(artifact, digest, started, creator_seconds))
}

/// How the engine runs a creator for `platform`: natively, or under emulation.
fn how_it_runs(shared: &Shared, platform: &Platform) -> String {
    let engine = shared.engine.architecture();
    if platform.architecture == engine {
        "natively".to_string()
    } else {
        format!(
            "under emulation (the Docker Engine is {engine}; QEMU's binfmt_misc handler runs it)"
        )
    }
}

async fn cleanup(shared: &Shared, resources: &Created) {
    for warning in resources.remove(shared.engine.as_ref()).await {
        shared.reporter.note(&format!("warning: {warning}"));
    }
}

/// Starts tarring the creator's inputs (the app, the platform environment, the order of the
/// buildpacks the artifact chose) on a blocking thread, streamed as the upload reads them.
fn tar_inputs(
    shared: &Shared,
    artifact: &PlannedArtifact,
    b: &BuildpacksPlan,
    builder: &BuilderInfo,
) -> app::Streamed {
    let mut env = platform_env(b, &shared.env);
    if let Some(plan) = &b.chart {
        env.extend(chart::env(plan, &shared.insecure_registries));
    }
    let (context, descriptor, chart) = (
        artifact.context.clone(),
        b.project_descriptor.clone(),
        b.chart.is_some(),
    );
    let (builder, wanted) = (builder.clone(), b.buildpacks.clone());
    let (image, reporter) = (artifact.image.clone(), Arc::clone(&shared.reporter));
    let (uid, gid) = (builder.uid, builder.gid);
    app::stream(move |inputs| {
        let mut project = ProjectDescriptor::read(descriptor.as_deref())?;
        let order = project
            .order(&wanted, &builder)
            .map_err(|problem| cnb::Error::Buildpacks {
                image: image.clone(),
                problem,
                available: builder.buildpacks(),
            })?;
        for warning in &project.warnings {
            reporter.line(&image, &format!("warning: {warning}"));
        }
        let env = project.env_with(&env);
        inputs.app(&context, uid, gid, &project.filter)?;
        if chart {
            inputs.directory(chart::OUT_DIR, uid, gid)?;
        }
        if !env.is_empty() {
            inputs.platform_env(&env)?;
        }
        if let Some(order) = order {
            inputs.order(&order)?;
        }
        Ok(())
    })
}

/// The build itself; what it creates is recorded in `resources`. Returns what it published
/// (the target, or a chart artifact's chart), its digest and the creator's run time.
async fn run(
    shared: &Shared,
    (artifact, target): (&PlannedArtifact, &PlatformTarget<'_>),
    b: &BuildpacksPlan,
    builder: &BuilderInfo,
    run_image: &Reference,
    cache: &str,
    resources: &mut Created,
) -> Result<(String, String, Option<f64>), Error> {
    let started = Instant::now();
    let engine = &shared.engine;
    let name = &artifact.image;
    shared.reporter.phase(name, Phase::Preparing);
    let PlatformTarget { platform, variant } = target;
    let platform = *platform;
    // The inputs (app, environment, order) are tarred while the volumes and the container are
    // created.
    let inputs = tar_inputs(shared, artifact, b, builder);
    let base = per_build_name(shared, artifact, variant.as_deref());
    let labels = BTreeMap::from([
        (LABEL_KIND.to_string(), "build".to_string()),
        (LABEL_BUILD_ID.to_string(), shared.build_id.clone()),
        (LABEL_ARTIFACT.to_string(), name.clone()),
        (LABEL_TARGET.to_string(), artifact.target.to_string()),
    ]);
    let volumes = creator::Volumes {
        layers: format!("op-layers-{base}"),
        workspace: format!("op-workspace-{base}"),
        cache: cache.to_string(),
    };
    let cache_image = shared.options.cache_image.as_ref().map(|base| {
        let key = variant
            .as_ref()
            .map_or_else(|| name.clone(), |v| format!("{name}-{v}"));
        super::names::cache_image(base, &key)
    });
    prepare_volumes(
        shared,
        artifact,
        b.clear_cache,
        cache_image.is_none(),
        &volumes,
        &labels,
        resources,
    )
    .await?;
    step(name, "volumes", started);
    let spec = creator_spec(
        shared,
        artifact,
        b,
        builder,
        (run_image, cache_image.as_ref()),
        (&volumes, &base, platform),
        labels,
    )?;
    // One of several platforms says so in build_platforms.
    if let Some(platform) = platform
        && variant.is_none()
        && platform.architecture != shared.engine.architecture()
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

    let CreatorExit {
        code,
        tail,
        announced,
    } = run_creator(
        shared,
        (name, platform.filter(|_| variant.is_some())),
        &container,
    )
    .await?;
    step(name, "creator exited", started);
    let Some(code) = code else {
        return Err(Error::Interrupted);
    };
    if code == 0 {
        let published = published(
            shared,
            (artifact, b),
            variant.as_deref(),
            &container,
            announced,
        );
        let published = published.await?;
        step(name, "digest checked", started);
        return Ok(published);
    }
    Err(Error::Creator {
        failure: cnb::exit::Failure::from_code(code),
        refused_by: cnb::exit::refused_by(&tail),
        tail,
    })
}

/// After the creator succeeded: what it published (the target, or a chart artifact's chart),
/// the digest the registry serves, the creator's run time; the SBOMs copied meanwhile.
async fn published(
    shared: &Shared,
    (artifact, b): (&PlannedArtifact, &BuildpacksPlan),
    variant: Option<&str>,
    container: &str,
    announced: Option<String>,
) -> Result<(String, String, Option<f64>), Error> {
    let name = &artifact.image;
    let (run_time, digest, sboms) = tokio::join!(
        shared.engine.run_time(container),
        published_digest(shared, container, &artifact.target, announced),
        copy_sboms(shared, (name, variant), container)
    );
    let digest = digest?;
    sboms?;
    let seconds = run_time?.map(|d| d.as_secs_f64());
    match &b.chart {
        Some(plan) => {
            let (reference, digest) = chart::published(shared, name, plan, container).await?;
            Ok((reference, digest, seconds))
        }
        None => Ok((artifact.target.to_string(), digest, seconds)),
    }
}

/// With `--sbom-output DIR`: the SBOMs the lifecycle wrote (`/layers/sbom`: `launch/`,
/// `build/`, `cache/`, as `pack build --sbom-output-dir` copies them) copied to
/// `DIR/<artifact>/`, replacing what an earlier build left there. Nothing when the lifecycle
/// wrote none.
async fn copy_sboms(
    shared: &Shared,
    (name, variant): (&str, Option<&str>),
    container: &str,
) -> Result<(), Error> {
    let Some(dir) = &shared.options.sbom_output else {
        return Ok(());
    };
    let Some(tar) = shared
        .engine
        .download(container, &format!("{}/sbom", creator::LAYERS_DIR))
        .await?
    else {
        return Ok(());
    };
    let target = match variant {
        Some(variant) => dir.join(slug(name)).join(variant),
        None => dir.join(slug(name)),
    };
    let fail = |source: std::io::Error| Error::Sbom {
        dir: target.display().to_string(),
        source,
    };
    let (parent, destination) = (
        target
            .parent()
            .map_or_else(|| dir.clone(), std::path::Path::to_path_buf),
        target.clone(),
    );
    tokio::task::spawn_blocking(move || {
        fs_err::create_dir_all(&parent)?;
        let staging = tempfile::Builder::new()
            .prefix(".op-sbom-")
            .tempdir_in(&parent)?;
        op_oci::archive::extract(&tar, staging.path())?;
        if destination.exists() {
            fs_err::remove_dir_all(&destination)?;
        }
        fs_err::rename(staging.path().join("sbom"), &destination)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
    .map_err(fail)?;
    shared
        .reporter
        .line(name, &format!("Copied the SBOMs to {}", target.display()));
    Ok(())
}

/// The per-build volumes (recorded in `resources`) and, unless the cache is an image, the
/// artifact's cache volume.
async fn prepare_volumes(
    shared: &Shared,
    artifact: &PlannedArtifact,
    clear_cache: bool,
    cache_volume: bool,
    volumes: &creator::Volumes,
    labels: &BTreeMap<String, String>,
    resources: &mut Created,
) -> Result<(), Error> {
    let engine = &shared.engine;
    let cache = &volumes.cache;
    if clear_cache && cache_volume {
        shared.reporter.line(
            &artifact.image,
            &format!("Clearing cache volume {cache} (clearCache)"),
        );
        engine.remove_volume(cache).await?;
    }
    let repository = artifact.target.name();
    let cache_labels = BTreeMap::from([(LABEL_CACHE_FOR.to_string(), repository)]);
    let (layers, workspace, cached) = tokio::join!(
        engine.create_volume(&volumes.layers, labels),
        engine.create_volume(&volumes.workspace, labels),
        async {
            if cache_volume {
                engine.create_volume(cache, &cache_labels).await
            } else {
                Ok(())
            }
        },
    );
    for (volume, created) in [(&volumes.layers, &layers), (&volumes.workspace, &workspace)] {
        if created.is_ok() {
            resources.volumes.push(volume.clone());
        }
    }
    layers?;
    workspace?;
    cached?;
    Ok(())
}

/// The platform a build is for, when one is asked for, and its name part (`linux-arm64`) when
/// it is one of several (its container, volumes, cache and SBOMs are then named after it).
struct PlatformTarget<'a> {
    platform: Option<&'a Platform>,
    variant: Option<String>,
}

/// `<build id>-<artifact>[-<platform>]`, the name part of the per-build container and volumes.
fn per_build_name(shared: &Shared, artifact: &PlannedArtifact, variant: Option<&str>) -> String {
    match variant {
        Some(variant) => format!("{}-{}-{variant}", shared.build_id, slug(&artifact.image)),
        None => format!("{}-{}", shared.build_id, slug(&artifact.image)),
    }
}

/// `linux-arm64`, `linux-arm-v7`: a platform in names and tags (upstream's per-platform tag
/// suffix).
pub(super) fn platform_slug(platform: &Platform) -> String {
    platform.to_string().replace('/', "-")
}

/// The creator container of the artifact's build, on `run_image`, caching in `cache_image`
/// when there is one, with `volumes`, named after `base` (the per-build name), for `platform`
/// when one is asked for.
fn creator_spec(
    shared: &Shared,
    artifact: &PlannedArtifact,
    b: &BuildpacksPlan,
    builder: &BuilderInfo,
    (run_image, cache_image): (&Reference, Option<&Reference>),
    (volumes, base, platform): (&creator::Volumes, &str, Option<&Platform>),
    mut labels: BTreeMap<String, String>,
) -> Result<ContainerSpec, Error> {
    let platform_api = builder.platform_api()?;
    let default_run_images = builder.default_run_images();
    let mut involved: Vec<&Reference> = artifact.references().collect();
    involved.push(run_image);
    involved.extend(cache_image);
    let network = network_for(shared.options.network.as_deref(), &involved);
    // The builder's default run image comes with mirrors the lifecycle may read instead.
    if b.run_image.is_none() {
        involved.extend(&default_run_images);
    }
    let hosts: Vec<String> = involved.iter().map(|r| r.registry().to_string()).collect();
    let auth = shared.credentials.only(&hosts).cnb_registry_auth();
    let proxies: Vec<(String, String)> = creator::PROXY_VARIABLES
        .iter()
        .filter_map(|k| shared.env.get(k).map(|v| ((*k).to_string(), v.to_string())))
        .collect();
    let binds: Vec<String> = b
        .volumes
        .iter()
        .map(|m| {
            format!(
                "{}:{}{}",
                m.source,
                m.target,
                if m.read_only { ":ro" } else { "" }
            )
        })
        .collect();
    labels.insert(
        "io.octopilot.op.platform-api".into(),
        platform_api.to_string(),
    );
    let tags: Vec<String> = artifact
        .extra_tags
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(creator::container(&creator::CreatorInputs {
        builder,
        platform_api,
        image: &artifact.target.to_string(),
        tags: &tags,
        run_image: &run_image.to_string(),
        insecure_registries: &shared.insecure_registries,
        registry_auth: auth.as_deref(),
        volumes,
        extra_binds: &binds,
        network: network.as_deref(),
        skip_restore: b.clear_cache,
        cache_image: cache_image.map(ToString::to_string).as_deref(),
        debug: shared.options.debug,
        proxies: &proxies,
        labels: &labels,
        name: &format!("op-build-{base}"),
        platform: platform.map(ToString::to_string).as_deref(),
    }))
}

/// How the creator ended.
struct CreatorExit {
    /// Its exit code; `None` when op was interrupted.
    code: Option<i64>,
    /// Its last lines.
    tail: Vec<String>,
    /// The digest it announced publishing, if it did.
    announced: Option<String>,
}

/// Runs the creator (`engine::runner`): its output line by line to the reporter (phases read
/// from the banners, the announced digest and the last lines kept), its exit.
async fn run_creator(
    shared: &Shared,
    (name, platform): (&str, Option<&Platform>),
    container: &str,
) -> Result<CreatorExit, Error> {
    let engine = shared.engine.as_ref();
    let Some(started) = runner::start(engine, container, &shared.interrupt).await? else {
        return Ok(CreatorExit {
            code: None,
            tail: Vec::new(),
            announced: None,
        });
    };
    let (mut out, mut err) = (LineBuffer::default(), LineBuffer::default());
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut announced = None;
    let mut emit = |line: String| {
        if let Some(digest) = announced_digest(&line) {
            announced = Some(digest);
        }
        if let Some(phase) = Phase::from_banner(&line) {
            tracing::debug!(artifact = name, phase = phase.label(), "phase");
            shared.reporter.phase(name, phase);
        }
        match platform {
            Some(platform) => shared.reporter.line(name, &format!("({platform}) {line}")),
            None => shared.reporter.line(name, &line),
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        // The tail ends up in an error message: plain text.
        tail.push_back(without_ansi(&line).into_owned());
    };
    let ended = runner::wait(
        engine,
        started,
        &shared.interrupt,
        super::STOP_GRACE_SECONDS,
        &mut |chunk| match chunk {
            Output::Stdout(bytes) => out.push(&bytes).into_iter().for_each(&mut emit),
            Output::Stderr(bytes) => err.push(&bytes).into_iter().for_each(&mut emit),
        },
    )
    .await?;
    out.finish()
        .into_iter()
        .chain(err.finish())
        .for_each(&mut emit);
    Ok(CreatorExit {
        code: match ended {
            Exit::Code(code) => Some(code),
            Exit::Interrupted(_) => None,
        },
        tail: tail.into_iter().collect(),
        announced,
    })
}
