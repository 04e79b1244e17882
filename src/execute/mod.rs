//! Running the builds of a plan: op drives each buildpacks artifact's creator through the
//! Docker Engine API and the lifecycle publishes straight to the registry (`docs/architecture.md`,
//! "The flow of `op build-push`"); every other artifact is built by skaffold (`delegated`), in
//! the same dependency graph.
//!
//! - Every builder is pulled once, whatever the number of artifacts that use it.
//! - Every artifact builds as soon as the artifacts it depends on are published (at most
//!   `concurrency` creators at a time, `scheduler` and `Shared::creator_slots`; with
//!   `--cache-artifacts`, the registry is asked about earlier builds of more at once), so a
//!   `runImage` naming another artifact is resolved
//!   to the digest that artifact was just published with, and an unrelated slow build delays
//!   nothing.
//! - Each build has fresh `/layers` and `/workspace` volumes, removed afterwards with its
//!   container (also on failure and on Ctrl-C); the cache volume of an artifact stays, and a
//!   file lock keeps two op processes from using it at once.
//! - The digest of `report.toml` (or skaffold's) is checked against what the registry serves.
//! - Without `--push`, the buildpacks images are pulled into the engine by digest once
//!   everything built, so `docker run` and `op run` find them.

mod artifact;
mod chart;
mod copies;
mod creator_output;
mod delegated;
mod lock;
mod names;
mod publish;
mod schedule;
mod scheduler;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

pub use artifact::{Built, Error as ArtifactError, Made};
pub use copies::copy_to_registries;
pub use creator_output::Phase;
pub use delegated::Delegation;
pub use names::{
    LABEL_ARTIFACT, LABEL_BUILD_ID, LABEL_CACHE_FOR, LABEL_TARGET, cache_image, cache_volume,
    check_cache_image, network_for,
};

use crate::cnb;
use crate::config::Env;
use crate::engine::{self, Containers, Engine, PullPolicy};
use crate::hint::{ExitStatus, Hint};
use crate::interrupt::Interrupt;
use crate::plan::{BuildPlan, PlannedArtifact, Work};
use crate::registry::{self, Digests, Registry};
use op_oci::{Platform, Reference};

/// How many artifacts build at once unless told: the number of CPUs, and at least 4. A build
/// spends much of its time waiting (on registries, downloads and the engine), so more builds
/// than CPUs finish sooner on small machines (docs/benchmarks.md measures it).
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .max(4)
}

/// How the builds run: what the command line says that the plan does not hold (the plan holds
/// the artifacts, their references, the platforms, the mirror, the profiles, the skaffold
/// file).
#[derive(Clone, Debug)]
// Switches of the command line, each its own.
#[allow(clippy::struct_excessive_bools)]
pub struct Knobs {
    /// How many artifacts build at once (`--concurrency`); `None`: [`default_concurrency`], or
    /// with a cluster what its nodes can take.
    pub concurrency: Option<usize>,
    pub pull: PullPolicy,
    /// `--trust-builder`: run the creator of any builder.
    pub trust_builders: bool,
    /// `--keep`: leave each build's container and volumes behind.
    pub keep: bool,
    /// `--network` / `OP_PACK_NETWORK`; else `host` when a registry is on a loopback address.
    pub network: Option<String>,
    /// `-vv`: the lifecycle logs at debug level.
    pub debug: bool,
    /// How long a registry may take to serve a pushed image (`--propagation-timeout`).
    pub propagation_timeout: Duration,
    /// The skaffold binary, when the plan hands artifacts to skaffold.
    pub skaffold: Option<crate::skaffold::Skaffold>,
    /// `--sbom-output`: where each buildpacks artifact's SBOMs are copied (`<dir>/<artifact>/`).
    pub sbom_output: Option<std::path::PathBuf>,
    /// `--cache-image` / `$OP_CACHE_IMAGE`: the builds cache in images derived from it
    /// ([`cache_image`]) instead of cache volumes.
    pub cache_image: Option<Reference>,
    /// `--engine kubernetes`: the cluster the creators run in, as pods.
    pub cluster: Option<ClusterChoice>,
    /// `--cache-artifacts`: a buildpacks build whose inputs were built before reuses that
    /// image (`artifact::reuse`).
    pub cache_artifacts: bool,
}

/// The cluster of `--engine kubernetes`, found as `op watch-deployment` finds one.
#[derive(Clone, Debug)]
pub struct ClusterChoice {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub namespace: String,
}

/// What the builds tell whoever shows them.
pub trait Reporter: Send + Sync {
    /// An artifact entered `phase`.
    fn phase(&self, artifact: &str, phase: Phase);
    /// A line of an artifact's build output.
    fn line(&self, artifact: &str, line: &str);
    /// Something about the whole build.
    fn note(&self, text: &str);
}

/// A failed artifact.
#[derive(Debug)]
pub struct Failure {
    pub artifact: String,
    pub error: ArtifactError,
}

/// Why the builds did not all succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", failed_message(.failures, *.total))]
    Failed {
        failures: Vec<Failure>,
        total: usize,
    },
    #[error("Interrupted: the builds were stopped, and their containers and volumes removed")]
    Interrupted,
    #[error("A build task failed: {0}")]
    Task(String),
    #[error("The cache image {problem} ({origin})")]
    CacheImage { problem: String, origin: String },
    #[error("Builder `{builder}` is {builder_platform}, and --platform asks for {requested}")]
    Platform {
        builder: String,
        builder_platform: String,
        requested: String,
    },
    #[error(
        "The Docker Engine at `{engine}` runs on `{engine_machine}`, not on this machine (`{this_machine}`): its build containers cannot reach `{registry}`, which is on this machine's loopback"
    )]
    LoopbackOfAnotherMachine {
        engine: String,
        engine_machine: String,
        this_machine: String,
        registry: String,
    },
    #[error(transparent)]
    Cnb(#[from] cnb::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error(transparent)]
    Cluster(#[from] crate::kubernetes::Error),
}

fn failed_message(failures: &[Failure], total: usize) -> String {
    let mut text = format!(
        "{} of {total} artifact{} failed, so no build result was written:",
        failures.len(),
        if total == 1 { "" } else { "s" }
    );
    for failure in failures {
        let mut chain = vec![failure.error.to_string()];
        let mut cause = std::error::Error::source(&failure.error);
        while let Some(e) = cause {
            chain.push(e.to_string());
            cause = e.source();
        }
        let _ = write!(text, "\n  - {}: {}", failure.artifact, chain.join(": "));
    }
    text
}

impl Hint for Error {
    /// 130 (128 + SIGINT) when interrupted, as shells report an interrupted command.
    fn status(&self) -> ExitStatus {
        match self {
            Error::Interrupted => ExitStatus::Code(130),
            _ => ExitStatus::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Error::Failed { failures, .. } => {
                let mut hints: Vec<String> = Vec::new();
                for hint in failures.iter().filter_map(|f| f.error.hint()) {
                    if !hints.contains(&hint) {
                        hints.push(hint);
                    }
                }
                (!hints.is_empty()).then(|| hints.join("\n"))
            }
            Error::Interrupted | Error::Task(_) => None,
            Error::CacheImage { .. } => Some(
                "name a repository the builds may write, e.g. --cache-image ghcr.io/acme/app-cache (each artifact \
                 gets its own tag)"
                    .into(),
            ),
            Error::Platform { .. } => Some(
                "a buildpacks artifact builds on its builder's image for each platform: use a builder that is an \
                 index with every platform asked for (`op builder create --platform …` makes one), or ask for the \
                 platforms it has"
                    .into(),
            ),
            Error::LoopbackOfAnotherMachine { .. } => Some(
                "use a registry both machines reach (e.g. --repo registry.example.com/team), or run the build where the registry is; with --network you take the creator's network into your own hands"
                    .into(),
            ),
            Error::Cnb(e) => e.hint(),
            Error::Engine(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Cluster(e) => e.hint(),
        }
    }
}

/// The engine, and whether its build containers can reach the registries of `references` as
/// op will set their network up; none with `--engine kubernetes`: the nodes run the creators
/// (and skaffold finds the engine of the artifacts it builds itself).
async fn connect_engine(
    env: &Env,
    options: &Knobs,
    references: &[&Reference],
) -> Result<Option<Arc<dyn Containers>>, Error> {
    if options.cluster.is_some() {
        return Ok(None);
    }
    let engine = Engine::connect(env).await?;
    if options.network.is_none() {
        loopback_reachable(&engine, references, &engine::this_machine())?;
    }
    Ok(Some(Arc::new(engine)))
}

/// Every builder must be trusted (`--trust-builder`, the artifact's `trustBuilder`, or one of
/// the builders op trusts) before its creator runs.
fn check_trust(buildpacks: &[&PlannedArtifact], options: &Knobs) -> Result<(), Error> {
    for b in buildpacks.iter().filter_map(|a| a.buildpacks()) {
        if !cnb::builder::is_trusted(&b.builder, options.trust_builders || b.trust_builder) {
            return Err(cnb::Error::Untrusted {
                builder: b.builder.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// The registry client for `references` ([`Registry::connect`]), made on a blocking thread (it
/// asks the loopback registries whether they speak HTTPS, runs credential helpers, reads the CA
/// certificates) while op connects to the engine.
fn connect_registry(
    env: &Env,
    references: &[&Reference],
    insecure: &[String],
) -> tokio::task::JoinHandle<Result<(Registry, registry::auth::Credentials), registry::Error>> {
    let (env, insecure) = (env.clone(), insecure.to_vec());
    let owned: Vec<Reference> = references.iter().map(|r| (*r).clone()).collect();
    tokio::task::spawn_blocking(move || {
        let references: Vec<&Reference> = owned.iter().collect();
        Registry::connect(&env, &references, &insecure)
    })
}

/// The creator reaches a registry on a loopback address through the host's network (`host`), which
/// is this machine's only when the engine runs here: an engine on another machine (its name is
/// not this machine's: a remote engine, Docker Desktop's VM, an engine whose socket was mounted
/// into this container) would look for the registry on its own loopback.
fn loopback_reachable(
    engine: &Engine,
    references: &[&Reference],
    this_machine: &str,
) -> Result<(), Error> {
    let engine_machine = engine.machine();
    if engine_machine.is_empty() || this_machine.is_empty() || engine_machine == this_machine {
        return Ok(());
    }
    match names::loopback_registry(references) {
        Some(registry) => Err(Error::LoopbackOfAnotherMachine {
            engine: engine.host().to_string(),
            engine_machine: engine_machine.to_string(),
            this_machine: this_machine.to_string(),
            registry,
        }),
        None => Ok(()),
    }
}

/// `built` in plan (skaffold.yaml) order, whatever order the builds finished in.
fn in_plan_order(artifacts: &[&PlannedArtifact], built: Vec<Built>) -> Vec<Built> {
    let mut by_image: BTreeMap<String, Built> =
        built.into_iter().map(|b| (b.image.clone(), b)).collect();
    artifacts
        .iter()
        .filter_map(|a| by_image.remove(&a.image))
        .collect()
}

/// The cluster of `--engine kubernetes`, and its namespace.
async fn connect_cluster(
    env: &Env,
    choice: Option<&ClusterChoice>,
) -> Result<Option<(crate::kubernetes::Cluster, String)>, Error> {
    let Some(choice) = choice else {
        return Ok(None);
    };
    let cluster = crate::kubernetes::Cluster::connect(
        env,
        choice.kubeconfig.as_deref(),
        choice.context.as_deref(),
    )
    .await?;
    Ok(Some((cluster, choice.namespace.clone())))
}

/// What every artifact build shares.
pub(crate) struct Shared {
    /// The Docker Engine; none with `--engine kubernetes` (the cluster runs the creators, and
    /// skaffold reaches the engine itself).
    pub(crate) engine: Option<Arc<dyn Containers>>,
    pub(crate) registry: Arc<dyn Digests>,
    pub(crate) credentials: registry::auth::Credentials,
    pub(crate) options: Knobs,
    /// skaffold, and what the plan tells it, when the plan hands artifacts to it.
    pub(crate) delegation: Option<Delegation>,
    /// The plan's platforms (`--platform`): with one, the builders must be images of it; with
    /// several, indexes with an image of each, and every artifact is built once per platform
    /// and published as an index.
    pub(crate) platforms: Vec<Platform>,
    /// The plan's mirror of the builders' default run images (`--image-registry`).
    pub(crate) image_registry: Option<String>,
    /// With `$OP_REGISTRY_CA_PATH`: the CA certificates the creator trusts, as one PEM bundle
    /// (the system's and those of the file), uploaded with its inputs.
    pub(crate) ca_bundle: Option<Arc<str>>,
    pub(crate) env: Env,
    pub(crate) insecure_registries: Vec<String>,
    pub(crate) build_id: String,
    pub(crate) reporter: Arc<dyn Reporter>,
    /// Ctrl-C or SIGTERM: no build starts, and each running creator is stopped by its runner.
    pub(crate) interrupt: Interrupt,
    /// How many creators (and skaffold runs) run at once (`--concurrency`).
    pub(crate) concurrency: usize,
    /// One per creator that may run at once (`concurrency`): each build takes one (each
    /// platform of a multi-platform artifact, each skaffold run), once the registry said it
    /// was not built before ([`Shared::jobs_at_once`]).
    pub(crate) creator_slots: tokio::sync::Semaphore,
    /// `--engine kubernetes`: the cluster the creators run in, and the namespace of their pods.
    pub(crate) cluster: Option<(crate::kubernetes::Cluster, String)>,
    /// The run images read for the builds' keys (`--cache-artifacts`).
    pub(crate) run_images: RunImages,
}

/// The run images read for the builds' keys, each once per run (the artifacts of a monorepo
/// share a few): by reference and platform, the image the registry served, or `None` when it
/// has none. A failed read is not kept.
#[derive(Default)]
pub(crate) struct RunImages(std::sync::Mutex<BTreeMap<String, Arc<RunImage>>>);

type RunImage = tokio::sync::OnceCell<Option<op_oci::Image>>;

impl RunImages {
    /// The image of `reference` for `platform` (this machine's, when `None`).
    pub(crate) async fn get(
        &self,
        registry: &dyn Digests,
        reference: &str,
        platform: Option<&Platform>,
    ) -> Result<Option<op_oci::Image>, registry::Error> {
        let key = format!("{reference} {platform:?}");
        let cell = {
            let mut read = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(read.entry(key).or_default())
        };
        cell.get_or_try_init(|| registry.image(reference, platform))
            .await
            .cloned()
    }
}

/// How many jobs may be started at once when earlier builds are reused: a job whose image was
/// built before costs a few registry requests, made for that many artifacts at once, while
/// the jobs that do build wait for a creator slot.
const CHECKS_AT_ONCE: usize = 32;

impl Shared {
    /// How many jobs the scheduler starts at once: `concurrency`, or with `--cache-artifacts`
    /// [`CHECKS_AT_ONCE`] (the creators stay bounded by `creator_slots`).
    pub(crate) fn jobs_at_once(&self) -> usize {
        if self.options.cache_artifacts {
            self.concurrency.max(CHECKS_AT_ONCE)
        } else {
            self.concurrency
        }
    }

    /// One of the `concurrency` slots, for a creator or a skaffold run, once one is free; none
    /// once op was interrupted (a build that waited for it does not start then).
    pub(crate) async fn creator_slot(
        &self,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, ArtifactError> {
        let slot = self
            .creator_slots
            .acquire()
            .await
            .map_err(|e| ArtifactError::Task(e.to_string()))?;
        if self.interrupt.signalled().is_some() {
            return Err(ArtifactError::Interrupted);
        }
        Ok(slot)
    }

    /// The Docker Engine, for `what` (which only builds with it do).
    pub(crate) fn engine(&self, what: &'static str) -> Result<&Arc<dyn Containers>, engine::Error> {
        self.engine
            .as_ref()
            .ok_or(engine::Error::NotConnected(what))
    }
}

/// How long a creator gets to stop after an interrupt before it is killed.
const STOP_GRACE_SECONDS: i32 = 1;

/// Builds the artifacts of `plan`: the buildpacks artifacts with the lifecycle, the others
/// with skaffold (`options.skaffold`); returns what was built, in plan (skaffold.yaml) order.
/// `interrupt` (installed by the caller) stops the builds.
pub async fn run(
    plan: &BuildPlan,
    options: Knobs,
    env: &Env,
    reporter: Arc<dyn Reporter>,
    interrupt: &Interrupt,
) -> Result<Vec<Built>, Error> {
    let artifacts: Vec<&PlannedArtifact> = plan
        .artifacts
        .iter()
        .filter(|a| !matches!(a.work, Work::Skip { .. }))
        .collect();
    if artifacts.is_empty() {
        return Ok(Vec::new());
    }
    let delegation = delegation(plan, &options)?;
    let buildpacks: Vec<&PlannedArtifact> = artifacts
        .iter()
        .copied()
        .filter(|a| a.buildpacks().is_some())
        .collect();
    check_trust(&buildpacks, &options)?;
    let references = registry_references(&artifacts, options.cache_image.as_ref());
    let references: Vec<&Reference> = references.iter().collect();
    let cluster = connect_cluster(env, options.cluster.as_ref()).await?;
    let connecting = connect_registry(env, &references, &plan.insecure_registries);
    let engine = connect_engine(env, &options, &references).await?;
    let (registry, mut credentials) =
        connecting.await.map_err(|e| Error::Task(e.to_string()))??;
    let pulling = schedule::PullContext {
        engine: engine.as_ref(),
        registry: &registry,
        credentials: &credentials,
        pull: options.pull,
        reporter: &reporter,
    };
    let builders = tokio::select! {
        pulled = checked_then(
            check_registries(plan, &artifacts, &registry),
            schedule::pull_builders(&pulling, &buildpacks, &plan.platforms),
        ) => pulled?,
        _ = interrupt.wait() => return Err(Error::Interrupted),
    };
    let run_hosts: Vec<String> = schedule::default_run_image_hosts(&buildpacks, &builders.default)
        .into_iter()
        .filter(|host| credentials.get(host).is_none())
        .collect();
    credentials.extend(
        registry::auth::Credentials::resolve(env, &run_hosts).map_err(registry::Error::from)?,
    );
    let concurrency = concurrency(options.concurrency, cluster.as_ref(), plan, &*reporter).await;
    let ca_bundle = ca_bundle(registry.extra_roots(), chose_trust(env));
    let shared = Arc::new(Shared {
        engine,
        registry: Arc::new(registry),
        credentials,
        options,
        delegation,
        platforms: plan.platforms.clone(),
        image_registry: plan.image_registry.clone(),
        ca_bundle,
        env: env.clone(),
        insecure_registries: plan.insecure_registries.clone(),
        build_id: engine::unique_name("b")
            .trim_start_matches("b-")
            .to_string(),
        reporter: Arc::clone(&reporter),
        interrupt: interrupt.clone(),
        concurrency,
        creator_slots: tokio::sync::Semaphore::new(concurrency),
        cluster,
        run_images: RunImages::default(),
    });
    let stopping = {
        let (interrupt, reporter) = (interrupt.clone(), Arc::clone(&reporter));
        tokio::spawn(async move {
            interrupt.wait().await;
            reporter.note("Stopping the builds…");
        })
    };
    let outcome = schedule::run_all(&shared, &artifacts, &plan.skaffold_runs, &builders).await;
    stopping.abort();
    if interrupt.signalled().is_some() {
        return Err(Error::Interrupted);
    }
    let (built, failures) = outcome;
    if !failures.is_empty() {
        return Err(Error::Failed {
            failures,
            total: artifacts.len(),
        });
    }
    let built = in_plan_order(&artifacts, built);
    if !plan.push {
        tokio::select! {
            loaded = schedule::load_into_engine(&shared, &buildpacks, &built) => loaded?,
            _ = interrupt.wait() => return Err(Error::Interrupted),
        }
    }
    Ok(built)
}

/// `given` (`--concurrency`), else the default: with a cluster, the whole CPUs of the nodes
/// that can take the build's pods (Ready, schedulable, untainted, of its platforms), or op's
/// default when it may not list them (a namespace's Role gives no nodes); else
/// [`default_concurrency`].
async fn concurrency(
    given: Option<usize>,
    cluster: Option<&(crate::kubernetes::Cluster, String)>,
    plan: &BuildPlan,
    reporter: &dyn Reporter,
) -> usize {
    if let Some(given) = given {
        return given.max(1);
    }
    let Some((cluster, _)) = cluster else {
        return default_concurrency();
    };
    let platforms = if plan.platforms.is_empty() {
        vec![Platform::host()]
    } else {
        plan.platforms.clone()
    };
    let wanted: Vec<(String, String)> = platforms
        .iter()
        .map(|p| (p.os.clone(), p.architecture.clone()))
        .collect();
    let shown = platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match cluster.build_room(&wanted).await {
        Ok(room) if room.nodes > 0 => {
            reporter.note(&format!(
                "Up to {} build pods at once: the CPUs of the {} {shown} node(s) that can take them (--concurrency sets it)",
                room.cpus, room.nodes
            ));
            room.cpus.max(1)
        }
        Ok(_) => {
            reporter.note(&format!(
                "No node of the cluster can take a {shown} build now: one build pod at a time"
            ));
            1
        }
        Err(e) => {
            let default = default_concurrency();
            reporter.note(&format!(
                "Up to {default} build pods at once (op's default; --concurrency sets it): op may not list the cluster's nodes to size it ({e})"
            ));
            default
        }
    }
}

/// Whether op's own trust was chosen in its environment (`SSL_CERT_FILE` or `SSL_CERT_DIR`,
/// as OpenSSL and op's client read them), rather than being the system's store.
fn chose_trust(env: &Env) -> bool {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|name| env.get(name).is_some())
}

/// What the creator and skaffold are told to trust, when op's trust is not the system's store
/// alone: with CA certificates of `$OP_REGISTRY_CA_PATH` (`extra`, as op's client trusts them),
/// or `chosen` (op's own trust comes from `SSL_CERT_FILE`/`SSL_CERT_DIR`), op's CA
/// certificates and those, as one PEM bundle. Otherwise the creator keeps the builder image's
/// and skaffold the system's.
fn ca_bundle(extra: &[Vec<u8>], chosen: bool) -> Option<Arc<str>> {
    if extra.is_empty() && !chosen {
        return None;
    }
    let all = op_oci::system_roots()
        .iter()
        .chain(extra)
        .map(Vec::as_slice);
    Some(Arc::from(op_oci::pem_bundle(all)))
}

/// What skaffold is told, when the plan hands it artifacts (and then it must have been given).
fn delegation(plan: &BuildPlan, options: &Knobs) -> Result<Option<Delegation>, Error> {
    match (&options.skaffold, plan.skaffold_runs.is_empty()) {
        (_, true) => Ok(None),
        (Some(skaffold), false) => Ok(Some(Delegation::of(plan, skaffold.clone()))),
        (None, false) => Err(Error::Task(
            "no skaffold was given for the artifacts it builds".into(),
        )),
    }
}

/// Every registry reference the builds touch, for credentials and checks: the artifacts,
/// their builders and run images (the engine pulls them with the same credentials) and the
/// cache images derived from `cache_base`.
fn registry_references(
    artifacts: &[&PlannedArtifact],
    cache_base: Option<&Reference>,
) -> Vec<Reference> {
    let mut references = Vec::new();
    for artifact in artifacts {
        references.extend(artifact.references().cloned());
        if let Some(b) = artifact.buildpacks() {
            references.push(b.builder.clone());
            references.extend(b.run_image.as_ref().map(|run| run.image.clone()));
            references.extend(cache_base.map(|base| cache_image(base, &artifact.image)));
        }
    }
    references
}

/// The registries must answer before anything is built (the builders are read meanwhile:
/// [`checked_then`]). One that refuses op's credentials answers: the lifecycle (or skaffold)
/// may still be able to push.
async fn check_registries(
    plan: &BuildPlan,
    artifacts: &[&PlannedArtifact],
    registry: &Registry,
) -> Result<(), Error> {
    let mut checked: Vec<String> = Vec::new();
    for artifact in artifacts.iter().filter(|a| is_published(plan, a)) {
        let host = artifact.target.registry().to_string();
        if !checked.contains(&host) {
            match registry.digest(&artifact.target).await {
                Err(e) if !e.is_unauthorized() => return Err(e.into()),
                _ => checked.push(host),
            }
        }
    }
    Ok(())
}

/// `work` (the builders' reads) while `check` (the registries' check) runs: the check's error
/// first, whichever ends first (the work is dropped when the check fails), else the work's.
async fn checked_then<T>(
    check: impl Future<Output = Result<(), Error>>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::pin!(check, work);
    tokio::select! {
        checked = &mut check => {
            checked?;
            work.await
        }
        done = &mut work => {
            check.await?;
            done
        }
    }
}

/// Whether `artifact` goes to a registry: buildpacks artifacts always do, the others when their
/// skaffold run pushes.
fn is_published(plan: &BuildPlan, artifact: &PlannedArtifact) -> bool {
    match &artifact.work {
        Work::Buildpacks(_) => true,
        Work::Skaffold(_) => plan
            .skaffold_runs
            .iter()
            .any(|r| r.push && r.artifacts.contains(&artifact.image)),
        Work::Skip { .. } => false,
    }
}

#[cfg(test)]
mod tests;
