//! The build plan: which artifacts a command builds, from what, to which references, and in
//! which order.
//!
//! [`BuildPlan::new`] turns the repository's configuration ([`crate::config`]) and its
//! `skaffold.yaml` into plain data, without touching Docker or the network. `op build --dry-run`
//! prints it; the build commands execute it. Everything a build needs to know that can be known
//! up front is decided and checked here, so a mistake in the configuration stops op before it
//! pulls a builder.

mod artifact;
mod graph;
mod render;
pub mod template;

pub use artifact::mirrored;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::skaffold::{self, Artifact, Project};
use crate::config::{Config, Resolved};
use crate::hint::Hint;
use op_oci::{Platform, Reference};

/// The builder op uses when an artifact names none.
pub const DEFAULT_BUILDER: &str = "ghcr.io/octopilot/builder-jammy-base:latest";

/// The command a plan is made for; it decides what happens to each kind of artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// `op build`: buildpacks artifacts by op, every other kind by skaffold.
    Build,
    /// `op build-push`: buildpacks artifacts only (upstream's behaviour).
    BuildPush,
    /// `op push`: as `op build --push`.
    Push,
}

impl Command {
    /// The command as typed.
    pub fn name(self) -> &'static str {
        match self {
            Command::Build => "build",
            Command::BuildPush => "build-push",
            Command::Push => "push",
        }
    }
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub command: Command,
    /// Whether images are pushed (`op build` without `--push` has skaffold leave its artifacts in
    /// the engine; buildpacks artifacts are always published).
    pub push: bool,
    /// `-f/--filename`, relative to the working directory unless absolute.
    pub skaffold_file: PathBuf,
    /// `-p/--profile` values (comma-separated lists allowed).
    pub profiles: Vec<String>,
    /// `--artifact`: build only this artifact (and what it depends on).
    pub artifact: Option<String>,
    /// `--repo`.
    pub repo: Option<String>,
    /// `--tag`.
    pub tag: Option<String>,
    /// `--insecure-registry` values.
    pub insecure_registries: Vec<String>,
    /// `--file-output`, relative to the working directory unless absolute.
    pub build_result: PathBuf,
    /// `--platform`.
    pub platforms: Vec<Platform>,
    /// `--ttl-uuid`, `--ttl-tag`, `--artifact-key`: publish to ttl.sh.
    pub ttl: Option<Ttl>,
    /// Run images given for `buildpacks.runImage` values (`--from-build-result`,
    /// `--run-image-override`): a runImage naming one of them is that reference, and an artifact it
    /// names is not built for it.
    pub run_images: BTreeMap<String, String>,
    /// `--image-registry` / `$OP_IMAGE_REGISTRY`: the pull-through mirror of builders and run
    /// images.
    pub image_registry: Option<String>,
    /// The profile activated when none is requested, if the configuration defines it (`op push`:
    /// `push`, as upstream's).
    pub default_profile: Option<String>,
}

/// Ephemeral images on ttl.sh (upstream's ttl mode): every artifact is published as
/// `<registry>/<uuid>-<key>:<tag>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ttl {
    /// `ttl.sh`, or `$OP_TTL_REGISTRY` (a registry that expires images the same way).
    pub registry: String,
    pub uuid: String,
    /// How long ttl.sh keeps the images (its tag: `1h`, `1d`, …).
    pub tag: String,
    /// `--artifact-key`: the key of the artifact `--artifact` names (or of the only one built);
    /// the others are keyed by the last part of their `image`.
    pub key: Option<String>,
}

/// The run images given on the command line, by `buildpacks.runImage` value: the entries of
/// each `--from-build-result` file (by `imageName`), then each `--run-image-override NAME=REF`;
/// later ones win. Paths are relative to `cwd`.
pub fn given_run_images(
    cwd: &Path,
    from_build_results: &[PathBuf],
    overrides: &[String],
) -> Result<BTreeMap<String, String>, Error> {
    let mut given = BTreeMap::new();
    for file in from_build_results {
        let path = cwd.join(file);
        let result = crate::build_result::BuildResult::read(&path).map_err(|source| {
            Error::FromBuildResult {
                path: file.display().to_string(),
                source,
            }
        })?;
        for build in &result.builds {
            given.insert(build.name(), build.tag.clone());
        }
    }
    for value in overrides {
        match value.split_once('=') {
            Some((name, reference)) if !name.trim().is_empty() && !reference.trim().is_empty() => {
                given.insert(name.trim().to_string(), reference.trim().to_string());
            }
            _ => {
                return Err(Error::RunImageOverride {
                    value: value.clone(),
                });
            }
        }
    }
    Ok(given)
}

/// The registry ttl mode publishes to when `$OP_TTL_REGISTRY` does not name another.
pub const TTL_REGISTRY: &str = "ttl.sh";

/// A plan that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{file}` defines no artifacts")]
    NoArtifacts { file: String },
    #[error("--artifact `{name}` is not an artifact of skaffold.yaml")]
    ArtifactNotFound {
        name: String,
        available: Vec<String>,
    },
    #[error("Two artifacts build the image `{image}`: {first} and {second}")]
    DuplicateImage {
        image: String,
        first: String,
        second: String,
    },
    #[error("The artifacts depend on each other in a cycle: {}", .cycle.join(" → "))]
    Cycle { cycle: Vec<String> },
    #[error("Artifact `{image}` ({location}) requires `{required}`, which no artifact builds")]
    UnknownRequirement {
        image: String,
        location: String,
        required: String,
        available: Vec<String>,
    },
    #[error("The context of artifact `{image}` ({location}) does not exist: `{context}`")]
    MissingContext {
        image: String,
        location: String,
        context: String,
    },
    #[error("The context of artifact `{image}` ({location}) is not a directory: `{context}`")]
    ContextNotDirectory {
        image: String,
        location: String,
        context: String,
    },
    #[error("The Dockerfile of artifact `{image}` ({location}) does not exist: `{dockerfile}`")]
    MissingDockerfile {
        image: String,
        location: String,
        dockerfile: String,
    },
    #[error(
        "Artifact `{image}` ({location}) is built by skaffold ({kind}), but requires `{required}`, which op builds \
         with buildpacks"
    )]
    SkaffoldRequiresBuildpacks {
        image: String,
        location: String,
        kind: &'static str,
        required: String,
    },
    #[error(
        "skaffold cannot build `{image}` without `{other}`: its `--build-image` selects artifacts by substring, \
         and `{image}` is part of `{other}`"
    )]
    SkaffoldSelection {
        image: String,
        other: String,
        /// Why the other may not be built with it.
        why: String,
    },
    #[error("Artifact `{image}` ({location}) names a tag or digest in `image`")]
    ImageWithVersion { image: String, location: String },
    #[error("Artifact `{image}` ({location}): `{field}` is not a valid image reference: `{value}`")]
    InvalidReference {
        image: String,
        location: String,
        field: &'static str,
        value: String,
        #[source]
        source: op_oci::ReferenceError,
    },
    #[error("Artifact `{image}` ({location}): `{field}` {problem}")]
    InvalidField {
        image: String,
        location: String,
        field: String,
        problem: String,
        hint: Option<String>,
    },
    #[error("--artifact-key names one artifact, and {count} are built: {}", quoted(.artifacts))]
    ArtifactKeyAmbiguous {
        count: usize,
        artifacts: Vec<String>,
    },
    #[error("In ttl mode `{first}` and `{second}` would both be published as `{target}`")]
    TtlKeyCollision {
        first: String,
        second: String,
        target: String,
    },
    #[error("--run-image-override wants name=ref, got `{value}`")]
    RunImageOverride { value: String },
    #[error("--from-build-result `{path}` cannot be used")]
    FromBuildResult {
        path: String,
        #[source]
        source: crate::build_result::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Skaffold(#[from] skaffold::Error),
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NoArtifacts { .. } => Some("list what to build under `build.artifacts`".into()),
            Error::ArtifactNotFound { available, .. } | Error::UnknownRequirement { available, .. } => {
                Some(format!("the artifacts are {}", quoted(available)))
            }
            Error::DuplicateImage { .. } => Some("every artifact must build a different image; rename one".into()),
            Error::Cycle { .. } => Some(
                "an artifact depends on another through `requires` or a `buildpacks.runImage` naming it; break the cycle"
                    .into(),
            ),
            Error::MissingContext { .. } | Error::ContextNotDirectory { .. } => Some(
                "`context` is relative to the directory op runs in (for a required file, to that file's directory)".into(),
            ),
            Error::MissingDockerfile { .. } => Some("`docker.dockerfile` is relative to the artifact's context".into()),
            Error::SkaffoldRequiresBuildpacks { .. } => Some(
                "skaffold cannot be given an image op built; build the required artifact with skaffold's own \
                 builder, or make it a `runImage` of a buildpacks artifact instead"
                    .into(),
            ),
            Error::SkaffoldSelection { other, why, .. } => Some(format!(
                "`{other}` {why}; rename one of the two images so that neither name contains the other"
            )),
            Error::ImageWithVersion { .. } => Some(
                "write the image without a tag (`image: my-app`); op tags it (--tag, or a version variable)".into(),
            ),
            Error::InvalidReference { .. } => Some(
                "image names use lower-case letters, digits and `.`, `_`, `-` between them, e.g. `my-app`".into(),
            ),
            Error::InvalidField { hint, .. } => hint.clone(),
            Error::RunImageOverride { .. } => Some(
                "name is a `buildpacks.runImage` value of skaffold.yaml (e.g. an artifact's image), ref the image \
                 to run on instead: --run-image-override op-base=ghcr.io/acme/op-base@sha256:…"
                    .into(),
            ),
            Error::FromBuildResult { source, .. } => source.hint(),
            Error::ArtifactKeyAmbiguous { .. } => {
                Some("say which artifact the key is for with --artifact".into())
            }
            Error::TtlKeyCollision { .. } => Some(
                "ttl mode keys an artifact by the last part of its `image`; build one of them at a time with \
                 --artifact and --artifact-key"
                    .into(),
            ),
            Error::Config(e) => e.hint(),
            Error::Skaffold(e) => e.hint(),
        }
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What happens to an artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// op builds it with the CNB lifecycle and publishes it.
    Build,
    /// op hands it to `skaffold build`.
    Skaffold,
    /// This command does not build it (see the reason).
    Skip,
}

/// How an artifact depends on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Via {
    /// An entry of its `requires`.
    Requires,
    /// Its `buildpacks.runImage` names the other artifact.
    RunImage,
}

/// A dependency of one artifact on another of the same project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub image: String,
    pub via: Via,
    /// The `alias` of a `requires` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Whether this command builds the dependency too (else it must already be published).
    pub built: bool,
}

/// The run image of a buildpacks artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunImage {
    /// The reference handed to the lifecycle. For an artifact of the build, its target; the
    /// build replaces it with the pushed digest.
    pub image: Reference,
    /// The artifact it names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

/// A build-time environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// A volume mounted into the build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// An absolute host path, or the name of a volume.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// Other options (`volume-opt=…`), as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// How a buildpacks artifact is built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildpacksPlan {
    pub builder: Reference,
    /// `None`: the builder's default run image.
    pub run_image: Option<RunImage>,
    pub env: Vec<EnvVar>,
    pub buildpacks: Vec<String>,
    pub trust_builder: bool,
    pub clear_cache: bool,
    /// The project descriptor, when there is one.
    pub project_descriptor: Option<PathBuf>,
    pub volumes: Vec<Mount>,
    /// A chart artifact (its image ends in `-chart`, published with `--push`): the chart's
    /// buildpack pushes the chart, and `build_result.json` records the chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartPlan>,
}

/// The Helm chart a chart artifact publishes (upstream section 4.4): the builder's chart
/// buildpack pushes it as `<repository>/<name>:<version>` (`helm push` to
/// `oci://<repository>`), the repository being the artifact's target without its tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartPlan {
    /// `name` of its Chart.yaml.
    pub name: String,
    /// `version` of its Chart.yaml.
    pub version: String,
    /// `BP_HELM_OCI_REF`: the artifact's target without its tag.
    pub repository: Reference,
}

impl ChartPlan {
    /// Where `helm push` puts the chart: `<repository>/<name>:<version>` (`+` in the version
    /// becomes `_`, as OCI tags cannot hold it).
    pub fn reference(&self) -> Reference {
        Reference {
            path: format!("{}/{}", self.repository.path, self.name),
            tag: Some(self.version.replace('+', "_")),
            digest: None,
            ..self.repository.clone()
        }
    }
}

/// How a Dockerfile artifact is built (by skaffold).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerPlan {
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, Option<String>>,
}

/// How an artifact op hands to skaffold is built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkaffoldPlan {
    /// Its kind, as skaffold.yaml writes it (`docker`, `jib`, `ko`, `bazel`, `custom`, …).
    pub kind: &'static str,
    /// For a Dockerfile, what op checked of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerPlan>,
}

/// What this command does with an artifact, with what that needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// op builds it with the CNB lifecycle and publishes it.
    Buildpacks(Box<BuildpacksPlan>),
    /// op hands it to `skaffold build` (every kind but buildpacks).
    Skaffold(SkaffoldPlan),
    /// This command does not build it.
    Skip {
        /// The kind of artifact, as skaffold.yaml writes it (`docker`, `jib`, …).
        kind: &'static str,
        reason: String,
    },
}

impl Work {
    /// `buildpacks`, or the kind skaffold builds, or the skipped artifact's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Buildpacks(_) => "buildpacks",
            Work::Skaffold(s) => s.kind,
            Work::Skip { kind, .. } => kind,
        }
    }

    pub fn action(&self) -> Action {
        match self {
            Work::Buildpacks(_) => Action::Build,
            Work::Skaffold(_) => Action::Skaffold,
            Work::Skip { .. } => Action::Skip,
        }
    }
}

/// One `skaffold build` of the plan: artifacts op hands to skaffold that must build together
/// (one `requires` another, or skaffold's `--build-image`, which selects by substring, cannot
/// tell them apart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkaffoldRun {
    /// Its artifacts, in skaffold.yaml order; they are its `--build-image` values.
    pub artifacts: Vec<String>,
    /// Whether skaffold pushes them (`--push`): always with `op build --push` and `op push`;
    /// else when a buildpacks artifact of the build depends on one of them (the lifecycle reads
    /// images from the registry), else as `build.local.push` says (default: no).
    pub push: bool,
    /// The `--default-repo` skaffold is told: the plan's; in ttl mode `<registry>/<uuid>`, from
    /// which op copies each image to its ttl name.
    pub default_repo: String,
}

/// One artifact of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedArtifact {
    /// `image` of skaffold.yaml: the name in `build_result.json`.
    pub image: String,
    pub context: PathBuf,
    /// Where the artifact is defined.
    pub location: String,
    /// `<repo>/<image>:<tag>`: the reference recorded in `build_result.json` (with its digest).
    pub target: Reference,
    /// The other references pushed (one per extra tag).
    pub extra_tags: Vec<Reference>,
    pub depends_on: Vec<Dependency>,
    pub work: Work,
}

impl PlannedArtifact {
    /// How op builds it, when op builds it.
    pub fn buildpacks(&self) -> Option<&BuildpacksPlan> {
        match &self.work {
            Work::Buildpacks(b) => Some(b.as_ref()),
            _ => None,
        }
    }

    /// Every reference pushed: the target, then the extra tags.
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        std::iter::once(&self.target).chain(&self.extra_tags)
    }
}

/// `op build --dry-run -o json` shows an artifact with these fields (its `tags` are every
/// reference pushed, target first).
impl Serialize for PlannedArtifact {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Shown<'a> {
            image: &'a str,
            kind: &'static str,
            context: &'a PathBuf,
            location: &'a str,
            target: &'a Reference,
            tags: Vec<&'a Reference>,
            action: Action,
            #[serde(skip_serializing_if = "Option::is_none")]
            skip_reason: Option<&'a str>,
            depends_on: &'a [Dependency],
            #[serde(skip_serializing_if = "Option::is_none")]
            buildpacks: Option<&'a BuildpacksPlan>,
            #[serde(skip_serializing_if = "Option::is_none")]
            skaffold: Option<&'a SkaffoldPlan>,
        }
        Shown {
            image: &self.image,
            kind: self.work.kind(),
            context: &self.context,
            location: &self.location,
            target: &self.target,
            tags: self.references().collect(),
            action: self.work.action(),
            skip_reason: match &self.work {
                Work::Skip { reason, .. } => Some(reason),
                _ => None,
            },
            depends_on: &self.depends_on,
            buildpacks: self.buildpacks(),
            skaffold: match &self.work {
                Work::Skaffold(d) => Some(d),
                _ => None,
            },
        }
        .serialize(serializer)
    }
}

/// The whole plan.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildPlan {
    pub command: Command,
    pub push: bool,
    /// The skaffold files read, main file first.
    pub skaffold_files: Vec<PathBuf>,
    /// The main skaffold file, absolute (the first of `skaffold_files`).
    #[serde(skip)]
    pub skaffold_file: PathBuf,
    /// The settings files read (`--config`, `.github/octopilot.yaml`).
    pub settings_files: Vec<PathBuf>,
    /// The profiles requested, and where the request came from.
    pub requested_profiles: Resolved<Vec<String>>,
    /// The profiles applied (requested or auto-activated).
    pub applied_profiles: Vec<String>,
    pub default_repo: Resolved<String>,
    pub tags: Resolved<Vec<String>>,
    pub insecure_registries: Vec<String>,
    /// Where `build_result.json` goes.
    pub build_result: PathBuf,
    /// The directory op runs in (skaffold runs there too).
    #[serde(skip)]
    pub cwd: PathBuf,
    /// `--platform`; none: the engine's.
    pub platforms: Vec<Platform>,
    /// ttl mode, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    /// The pull-through mirror of builders and run images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<String>,
    /// The artifacts, in skaffold.yaml order: the selected ones and what they depend on (with
    /// `--artifact`, that artifact last, after its dependencies).
    pub artifacts: Vec<PlannedArtifact>,
    /// The order of the artifacts that are built: each level only depends on earlier ones, so
    /// the artifacts of one level can build in parallel.
    pub levels: Vec<Vec<String>>,
    /// The `skaffold build` runs of the artifacts op hands to skaffold.
    pub skaffold_runs: Vec<SkaffoldRun>,
    /// Things worth knowing that do not stop the build.
    pub warnings: Vec<String>,
}

impl BuildPlan {
    /// Loads `skaffold.yaml` and makes the plan for `options`.
    pub fn load(config: &Config, options: &PlanOptions) -> Result<Self, Error> {
        let mut requested_profiles = config.profiles(&options.profiles);
        let mut profile_warning = None;
        let load = |profiles: &[String]| {
            skaffold::load(&skaffold::LoadOptions {
                file: &options.skaffold_file,
                cwd: config.cwd(),
                profiles,
                env: config.env(),
            })
        };
        let project = match (
            &options.default_profile,
            requested_profiles.value.is_empty(),
        ) {
            (Some(default), true) => match load(std::slice::from_ref(default)) {
                Err(skaffold::Error::UnknownProfile { .. }) => {
                    profile_warning = Some(format!(
                        "`op {}` activates the profile `{default}` by default, and skaffold.yaml defines none; \
                         building without it",
                        options.command.name()
                    ));
                    load(&[])?
                }
                loaded => {
                    requested_profiles.value = vec![default.clone()];
                    loaded?
                }
            },
            _ => load(&requested_profiles.value)?,
        };
        let (default_repo, tags) = match &options.ttl {
            Some(ttl) => (
                Resolved {
                    value: ttl.registry.clone(),
                    origin: crate::config::Origin::Flag("--ttl-uuid".into()),
                },
                Resolved {
                    value: vec![ttl.tag.clone()],
                    origin: crate::config::Origin::Flag("--ttl-tag".into()),
                },
            ),
            None => (
                config.default_repo(options.repo.as_deref())?,
                config.tags(options.tag.as_deref())?,
            ),
        };
        let mut insecure = config.insecure_registries(&options.insecure_registries);
        for host in project.insecure_registries() {
            if !insecure.contains(&host) {
                insecure.push(host);
            }
        }
        let settings = Settings {
            config,
            options,
            default_repo,
            tags,
            requested_profiles,
            insecure_registries: insecure,
        };
        let mut plan = Self::new(&project, settings)?;
        plan.warnings.extend(profile_warning);
        Ok(plan)
    }

    fn new(project: &Project, settings: Settings<'_>) -> Result<Self, Error> {
        let Settings {
            config,
            options,
            default_repo,
            tags,
            requested_profiles,
            insecure_registries,
        } = settings;
        let all: Vec<&Artifact> = project.artifacts().collect();
        if all.is_empty() {
            return Err(Error::NoArtifacts {
                file: config.display(&project.file),
            });
        }
        let names: Vec<String> = all.iter().map(|a| a.image.clone()).collect();
        for (i, artifact) in all.iter().enumerate() {
            if let Some(first) = all[..i].iter().find(|a| a.image == artifact.image) {
                return Err(Error::DuplicateImage {
                    image: artifact.image.clone(),
                    first: first.location.clone(),
                    second: artifact.location.clone(),
                });
            }
        }

        let edges = graph::dependencies(&all, &options.run_images)?;
        graph::check_acyclic(&names, &edges)?;
        let selected = match &options.artifact {
            Some(name) => {
                let index = names.iter().position(|n| n == name).ok_or_else(|| {
                    Error::ArtifactNotFound {
                        name: name.clone(),
                        available: names.clone(),
                    }
                })?;
                graph::closure(index, &edges)
            }
            None => (0..all.len()).collect(),
        };

        let mut warnings = config.warnings().to_vec();
        let mut targets: Vec<Vec<Reference>> = all
            .iter()
            .map(|a| artifact::target_references(a, &default_repo.value, &tags.value))
            .collect::<Result<_, _>>()?;
        if let Some(ttl) = &options.ttl {
            let keyed = match &options.artifact {
                Some(name) => names.iter().position(|n| n == name),
                None => None,
            };
            for (i, target) in artifact::ttl_targets(&all, &selected, keyed, ttl)? {
                targets[i] = vec![target];
            }
        }
        warnings.extend(unused_run_images(&all, &options.run_images));
        let context = artifact::Context {
            push: options.push,
            all: &all,
            edges: &edges,
            targets: &targets,
            command: options.command,
            config,
            run_images: &options.run_images,
            image_registry: options.image_registry.as_deref(),
        };
        let artifacts = asked_last(&selected, &names, options.artifact.as_deref())
            .iter()
            .map(|&i| artifact::plan(&context, i, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        let levels = graph::levels(&artifacts);
        let skaffold_repo = match &options.ttl {
            Some(ttl) => format!("{}/{}", ttl.registry, ttl.uuid),
            None => default_repo.value.clone(),
        };
        let skaffold_runs = graph::skaffold_runs(&all, &artifacts, options.push, &skaffold_repo)?;
        if levels.is_empty() {
            warnings.push(format!(
                "`op {}` has nothing to build among the selected artifacts",
                options.command.name()
            ));
        }
        Ok(Self {
            command: options.command,
            push: options.push,
            skaffold_files: project.files.clone(),
            skaffold_file: project.file.clone(),
            settings_files: config.files().map(Path::to_path_buf).collect(),
            requested_profiles,
            applied_profiles: project.applied_profiles(),
            default_repo,
            tags,
            insecure_registries,
            build_result: crate::paths::normalize(&config.cwd().join(&options.build_result)),
            cwd: config.cwd().to_path_buf(),
            platforms: options.platforms.clone(),
            ttl: options.ttl.clone(),
            image_registry: options.image_registry.clone(),
            artifacts,
            levels,
            skaffold_runs,
            warnings,
        })
    }

    /// The artifact named `image`.
    pub fn artifact(&self, image: &str) -> Option<&PlannedArtifact> {
        self.artifacts.iter().find(|a| a.image == image)
    }
}

/// The indices of `selected` (skaffold.yaml order) with the artifact `--artifact` names last,
/// after what it depends on: the last entry of `build_result.json` is what the octopilot Action
/// reads.
fn asked_last(selected: &[usize], names: &[String], asked: Option<&str>) -> Vec<usize> {
    let mut order = selected.to_vec();
    if let Some(index) = asked.and_then(|name| names.iter().position(|n| n == name)) {
        order.retain(|&i| i != index);
        order.push(index);
    }
    order
}

/// A warning for each given run image no artifact's `runImage` names.
fn unused_run_images(all: &[&Artifact], given: &BTreeMap<String, String>) -> Vec<String> {
    given
        .keys()
        .filter(|name| {
            !all.iter().any(|a| {
                matches!(&a.kind, skaffold::Kind::Buildpacks(b) if b.run_image.as_deref() == Some(name.as_str()))
            })
        })
        .map(|name| {
            format!("no artifact has `runImage: {name}`, so the run image given for it is not used")
        })
        .collect()
}

/// The resolved settings a plan is made from.
struct Settings<'a> {
    config: &'a Config,
    options: &'a PlanOptions,
    default_repo: Resolved<String>,
    tags: Resolved<Vec<String>>,
    requested_profiles: Resolved<Vec<String>>,
    insecure_registries: Vec<String>,
}

/// The name an artifact is pushed under: skaffold's default-repo rule with multi-level
/// repositories, i.e. `<repo>/<image>`, unless `image` is already under `repo`.
pub fn target_name(repo: &str, image: &str) -> String {
    if image == repo || image.starts_with(&format!("{repo}/")) {
        image.to_string()
    } else {
        format!("{repo}/{image}")
    }
}

#[cfg(test)]
mod tests;
