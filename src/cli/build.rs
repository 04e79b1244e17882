#![allow(clippy::doc_markdown, reason = "doc comments here are --help text")]

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::run::Pull;

/// Which skaffold configuration, with which profiles (every command that reads skaffold.yaml).
#[derive(Debug, Args)]
pub struct SkaffoldArgs {
    /// The skaffold configuration file
    #[arg(
        short = 'f',
        long = "filename",
        visible_alias = "skaffold-file",
        value_name = "FILE",
        default_value = crate::config::skaffold::DEFAULT_FILE
    )]
    pub filename: PathBuf,

    /// Activate skaffold profiles (repeatable, or comma-separated; `-NAME` deactivates one)
    /// [env: SKAFFOLD_PROFILE]
    #[arg(
        short = 'p',
        long = "profile",
        value_name = "NAME",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub profiles: Vec<String>,
}

/// Flags shared by `build`, `build-push` and `push`.
#[derive(Debug, Args)]
pub struct BuildCommon {
    #[command(flatten)]
    pub skaffold: SkaffoldArgs,

    /// Repository prefix of the images, e.g. ghcr.io/my-org (default: see docs/configuration.md)
    #[arg(long, visible_alias = "default-repo", value_name = "REPO")]
    pub repo: Option<String>,

    /// Tag of the images (default: a version variable such as DOCKER_METADATA_OUTPUT_VERSION,
    /// else `tag` in .github/octopilot.yaml, else latest)
    #[arg(short = 't', long, value_name = "TAG")]
    pub tag: Option<String>,

    /// Build only this artifact (its skaffold `image`) and the artifacts it depends on
    #[arg(long, value_name = "IMAGE")]
    pub artifact: Option<String>,

    /// Registry reached without verifying its certificate, or over plain HTTP when it speaks no
    /// HTTPS (repeatable, or comma-separated)
    /// [env: SKAFFOLD_INSECURE_REGISTRY, SKAFFOLD_INSECURE_REGISTRIES]
    #[arg(long = "insecure-registry", value_name = "HOST", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,

    /// Where to write the build result (skaffold's build-artifacts JSON)
    #[arg(long, value_name = "FILE", default_value = crate::build_result::FILE_NAME)]
    pub file_output: PathBuf,

    /// Format of the results (with --dry-run, of the plan) on stdout
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `op push --destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PushDestination {
    Local,
    Ci,
    All,
    Auto,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people
    Text,
    /// For programs
    Json,
}

/// `op build`.
#[derive(Debug, Args)]
#[command(
    after_help = "Buildpacks artifacts are built by op and always published (op has no daemon export); without \
--push they are then pulled into the Docker Engine. Every other artifact is built by skaffold, left in the \
engine without --push.\n\nExamples:\n  op build --push                        build and publish every artifact\n  \
op build                               build; images end up in the local Docker Engine\n  \
op build --repo ghcr.io/acme --push    publish under ghcr.io/acme\n  \
op build --dry-run                     the plan: which engine builds what, where it goes"
)]
pub struct BuildArgs {
    #[command(flatten)]
    pub common: BuildCommon,

    #[command(flatten)]
    pub run: BuildRunArgs,

    #[command(flatten)]
    pub delegate: DelegateArgs,

    #[command(flatten)]
    pub upstream: UpstreamArgs,

    /// Publish every image (buildpacks artifacts are always published straight to the registry)
    #[arg(long)]
    pub push: bool,

    /// Print the build plan (what is built, by which engine, from what, to which references, in
    /// which order) without building anything
    #[arg(long)]
    pub dry_run: bool,
}

/// `op push`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without --profile, the skaffold profile `push` is activated when skaffold.yaml defines it.\n\n\
Examples:\n  op push                                build and publish every artifact\n  \
op push --destination ci --push-all    publish to the first `ci` registry of .registry, copy to the others\n  \
op push --dry-run                      the plan"
)]
pub struct PushArgs {
    #[command(flatten)]
    pub common: BuildCommon,

    #[command(flatten)]
    pub run: BuildRunArgs,

    #[command(flatten)]
    pub delegate: DelegateArgs,

    #[command(flatten)]
    pub upstream: UpstreamArgs,

    /// Which registries of the registry file the push goes to: the first is the default
    /// repository (unless --repo or a variable names one); `auto` is `ci` on GitHub Actions,
    /// else `local`
    #[arg(long, value_enum, value_name = "WHERE", default_value_t = PushDestination::Auto)]
    pub destination: PushDestination,

    /// The registry file (the `local` and `ci` registries)
    #[arg(long, value_name = "FILE", default_value = ".registry")]
    pub registry_file: PathBuf,

    /// Also copy every image to each other `ci` registry of the registry file (same name, tags
    /// and digest)
    #[arg(long)]
    pub push_all: bool,

    /// Do not write the build result file (the results are still printed on stdout)
    #[arg(long)]
    pub no_file_output: bool,

    /// Print the build plan without building anything
    #[arg(long)]
    pub dry_run: bool,
}

/// upstream op's build flags, as the octopilot GitHub Action passes them (`build`, `push`,
/// `build-push`).
#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// Platforms to build for, comma-separated (e.g. linux/amd64,linux/arm64): with several, each
    /// artifact is one index of an image per platform (default: the engine's)
    #[arg(long, value_name = "PLATFORMS")]
    pub platform: Vec<String>,

    /// Directory for the SBOMs of the buildpacks artifacts: DIR/<artifact>/{launch,build,cache},
    /// as the lifecycle wrote them
    #[arg(long, value_name = "DIR")]
    pub sbom_output: Option<PathBuf>,

    /// Publish ephemeral images to ttl.sh, as ttl.sh/<UUID>-<key>:<TTL-TAG> (the key: --artifact-key,
    /// else the last part of the artifact's image) [env: OP_TTL_REGISTRY names another registry]
    #[arg(long, value_name = "UUID")]
    pub ttl_uuid: Option<String>,

    /// How long ttl.sh keeps the images (the tag of ttl mode)
    #[arg(long, value_name = "TAG", default_value = "1h")]
    pub ttl_tag: String,

    /// The key of the artifact --artifact names (or of the only one built) in ttl mode
    #[arg(long, value_name = "KEY", requires = "ttl_uuid")]
    pub artifact_key: Option<String>,

    /// A build_result.json of an earlier build whose images are the run images of the artifacts
    /// whose `buildpacks.runImage` names them (repeatable); those are not built again
    #[arg(long, value_name = "FILE")]
    pub from_build_result: Vec<PathBuf>,

    /// The run image of the artifacts whose `buildpacks.runImage` is NAME (repeatable)
    #[arg(long, value_name = "NAME=REF")]
    pub run_image_override: Vec<String>,

    /// A pull-through mirror for builders and run images (never for the build's own images,
    /// loopback registries or ttl.sh); skaffold sees it as $OP_IMAGE_REGISTRY
    /// [env: OP_IMAGE_REGISTRY]
    #[arg(long, value_name = "REGISTRY")]
    pub image_registry: Option<String>,
}

/// How op hands artifacts to skaffold (`build`, `push`).
#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// The skaffold binary that builds the artifacts that are not buildpacks (default: `skaffold`
    /// on PATH) [env: OP_SKAFFOLD]
    #[arg(long, value_name = "PATH")]
    pub skaffold: Option<PathBuf>,
}

/// `op build-push`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  op build-push                          build and publish every buildpacks artifact\n  op build-push --artifact api           only `api` (and what it depends on)\n  op build-push --dry-run -o json        the plan, for programs\n  op build-push -o json | jq .builds     the results, for programs"
)]
pub struct BuildPushArgs {
    #[command(flatten)]
    pub common: BuildCommon,

    #[command(flatten)]
    pub run: BuildRunArgs,

    #[command(flatten)]
    pub upstream: UpstreamArgs,

    /// Print the build plan (what is built, from what, to which references, in which order)
    /// without building anything
    #[arg(long)]
    pub dry_run: bool,
}

/// How builds run.
#[derive(Debug, Args)]
pub struct BuildRunArgs {
    /// How many artifacts build at once (default: the number of CPUs, at least 4)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,

    /// When to pull the builders
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Pull::IfNotPresent)]
    pub pull: Pull,

    /// Run the lifecycle of builders op does not trust by default (it trusts
    /// ghcr.io/octopilot/builder-jammy-base); their buildpacks see the registry credentials
    #[arg(long)]
    pub trust_builder: bool,

    /// Keep each build's container and volumes, to look into a failed build
    #[arg(long)]
    pub keep: bool,

    /// Network of the build containers (default: host when a registry is on localhost, else the
    /// engine's default) [env: OP_PACK_NETWORK]
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,

    /// Cache the buildpacks builds in a registry instead of cache volumes (for CI runners that
    /// start empty): REF's repository, tagged per artifact; `off` for none. With --engine
    /// kubernetes the default is <repo>/op-cache [env: OP_CACHE_IMAGE]
    #[arg(long, value_name = "REF")]
    pub cache_image: Option<String>,

    /// Reuse the image an earlier build of the same inputs made instead of building again
    /// (buildpacks artifacts, found through a tag in the target repository; the key:
    /// docs/configuration.md); --cache-artifacts=false builds every time
    /// [env: OP_CACHE_ARTIFACTS] [default: true]
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub cache_artifacts: Option<bool>,

    /// How long to wait for a registry to serve a pushed image (e.g. 3m, 90s, 1m30s)
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = parse_duration)]
    pub propagation_timeout: std::time::Duration,

    /// Where the buildpacks creators run: containers of the Docker Engine, or pods of a
    /// Kubernetes cluster (with --push; other artifacts build with the engine)
    /// [env: OP_ENGINE] [default: docker]
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,

    /// The namespace of the build pods (--engine kubernetes)
    #[arg(long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// The kubeconfig file (--engine kubernetes; default: $KUBECONFIG, several files separated
    /// by ':', else ~/.kube/config, else the pod's service account when op runs in a pod)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context (--engine kubernetes; default: its current context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Where the buildpacks creators run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// Containers of the Docker Engine (DOCKER_HOST, the docker context)
    Docker,
    /// Pods of a Kubernetes cluster
    Kubernetes,
}

/// A duration as Go writes them (`3m0s`, `90s`, `1h`, `500ms`), as upstream's flag takes it.
pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{text}` is not a duration (e.g. 3m, 90s, 1m30s, 500ms)");
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    if text.trim().is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_are_read_as_go_writes_them() {
        assert_eq!(parse_duration("3m0s"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h1m1s"), Ok(Duration::from_secs(3661)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "3", "m", "3x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
