//! `op build`, `op build-push`, `op push`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use op_oci::Platform;

use crate::build_result::{self, BuildResult};
use crate::cli::{
    BuildCommon, BuildRunArgs, DelegateArgs, EngineKind, GlobalArgs, OutputFormat, UpstreamArgs,
};
use crate::config::{Config, Destination, Env, op_settings};
use crate::execute::{self, Built, Made, Reporter};
use crate::failure::{Context as _, ExitStatus, Failure};
use crate::interrupt::Interrupt;
use crate::output::progress::{PlainReporter, QuietReporter, TerminalReporter, live_stderr};
use crate::output::{Printer, Verbosity};
use crate::plan::{BuildPlan, Command, PlanOptions, Ttl, Work};
use crate::skaffold::Skaffold;

/// The plan of a build command.
fn load_plan(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    request: &Request<'_>,
) -> Result<(Config, BuildPlan), Failure> {
    let args = request.common;
    let upstream = request.upstream;
    let mut config = Config::load(cwd, env, global.config.as_deref())?;
    if let Some(push) = &request.push_options {
        config.use_registry_file(&push.registry_file, push.destination);
    }
    let image_registry = config.image_registry(upstream.image_registry.as_deref())?;
    let ttl = upstream.ttl_uuid.as_ref().map(|uuid| Ttl {
        registry: config.ttl_registry(crate::plan::TTL_REGISTRY),
        uuid: uuid.trim().to_string(),
        tag: Some(upstream.ttl_tag.trim())
            .filter(|t| !t.is_empty())
            .unwrap_or("1h")
            .to_string(),
        key: upstream.artifact_key.clone(),
    });
    let options = PlanOptions {
        command: request.command,
        // ttl.sh is a registry: ttl mode publishes.
        push: request.push || ttl.is_some(),
        skaffold_file: args.skaffold.filename.clone(),
        profiles: args.skaffold.profiles.clone(),
        artifact: args.artifact.clone(),
        repo: args.repo.clone(),
        tag: args.tag.clone(),
        insecure_registries: args.insecure_registries.clone(),
        build_result: args.file_output.clone(),
        platforms: Platform::parse_list(&upstream.platform)?,
        ttl,
        run_images: crate::plan::given_run_images(
            cwd,
            &upstream.from_build_result,
            &upstream.run_image_override,
        )?,
        image_registry,
        default_profile: request.push_options.as_ref().map(|_| "push".to_string()),
    };
    let plan = BuildPlan::load(&config, &options)?;
    Ok((config, plan))
}

fn print_plan(
    plan: &BuildPlan,
    output: OutputFormat,
    cwd: &Path,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    match output {
        OutputFormat::Text => printer.result(&plan.render_text(cwd))?,
        OutputFormat::Json => printer.result(&serde_json::to_string_pretty(plan)?)?,
    }
    Ok(ExitStatus::Success)
}

/// What a build command was asked.
pub(super) struct Request<'a> {
    pub(super) command: Command,
    /// `--push` (always for `push` and `build-push`).
    pub(super) push: bool,
    pub(super) dry_run: bool,
    pub(super) common: &'a BuildCommon,
    pub(super) run: &'a BuildRunArgs,
    /// How to reach skaffold (`build`, `push`; `build-push` builds buildpacks artifacts only).
    pub(super) delegate: Option<&'a DelegateArgs>,
    pub(super) upstream: &'a UpstreamArgs,
    /// `op push`'s own flags.
    pub(super) push_options: Option<PushOptions>,
}

/// `op push`'s legacy flags.
pub(super) struct PushOptions {
    pub(super) destination: Destination,
    pub(super) registry_file: std::path::PathBuf,
    pub(super) push_all: bool,
    pub(super) no_file_output: bool,
}

/// `op build`, `op push`, `op build-push`: builds the plan's artifacts, then writes the build
/// result; with `--dry-run`, prints the plan.
pub(super) fn build(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    request: &Request<'_>,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    let args = request.common;
    let (config, plan) = load_plan(cwd, env, global, request)?;
    for warning in &plan.warnings {
        printer.warn(warning);
    }
    if request.upstream.sbom_output.is_some() && !plan.skaffold_runs.is_empty() {
        let delegated: Vec<String> = plan
            .skaffold_runs
            .iter()
            .flat_map(|r| r.artifacts.iter().map(|a| format!("`{a}`")))
            .collect();
        printer.warn(&format!(
            "--sbom-output: skaffold writes no SBOMs, so {} get none",
            delegated.join(", ")
        ));
    }
    if request.dry_run {
        return print_plan(&plan, args.output, cwd, printer);
    }
    for artifact in &plan.artifacts {
        if let Work::Skip { reason, .. } = &artifact.work {
            printer.info(&format!("Skipping {}: {reason}", artifact.image));
        }
    }
    let names: Vec<String> = plan
        .artifacts
        .iter()
        .filter(|a| !matches!(a.work, Work::Skip { .. }))
        .map(|a| a.image.clone())
        .collect();
    if names.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let options = build_options(&plan, &config, global, request)?;
    let reporter: Arc<dyn Reporter> = match printer.verbosity() {
        Verbosity::Quiet => Arc::new(QuietReporter),
        _ if live_stderr() => Arc::new(TerminalReporter::new(&names)),
        _ => Arc::new(PlainReporter::new(&names)),
    };
    let copy_to = push_all_registries(&plan, &config, request, printer)?;
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start op's async runtime")?;
    // From here on Ctrl-C and SIGTERM are op's: the builds stop and clean up.
    let interrupt = runtime
        .block_on(async { Interrupt::install() })
        .context("Failed to handle Ctrl-C and SIGTERM")?;
    let outcome = runtime.block_on(async {
        let built = execute::run(
            &plan,
            options,
            config.env(),
            Arc::clone(&reporter),
            &interrupt,
        )
        .await?;
        if !copy_to.is_empty() {
            execute::copy_to_registries(&plan, &built, &copy_to, config.env(), reporter.as_ref())
                .await?;
        }
        Ok::<_, execute::Error>(built)
    });
    drop(reporter);
    let built = match outcome {
        Ok(built) => built,
        Err(error) => {
            if printer.verbosity() == Verbosity::Quiet {
                print_tails(&error, printer);
            }
            return Err(error.into());
        }
    };
    report(&plan, &built, request, started, printer)?;
    print_results(&built, args.output, printer)?;
    Ok(ExitStatus::Success)
}

/// Writes the build result (unless `--no-file-output`) and says what was built.
fn report(
    plan: &BuildPlan,
    built: &[Built],
    request: &Request<'_>,
    started: std::time::Instant,
    printer: &Printer,
) -> Result<(), Failure> {
    let write = !request
        .push_options
        .as_ref()
        .is_some_and(|p| p.no_file_output);
    if write {
        let result = BuildResult {
            builds: built
                .iter()
                .map(|b| build_result::Build {
                    image_name: b.image.clone(),
                    tag: b.tag.clone(),
                })
                .collect(),
        };
        result.write(&plan.build_result)?;
    }
    let verb = if plan.push || plan.skaffold_runs.is_empty() {
        "Built and published"
    } else {
        "Built"
    };
    let written = if write {
        format!("; wrote {}", plan.build_result.display())
    } else {
        String::new()
    };
    printer.info(&format!(
        "{verb} {} in {:.1}s{written}",
        made_summary(built),
        started.elapsed().as_secs_f64(),
    ));
    Ok(())
}

/// `3 artifacts`, or `3 artifacts (1 built, 2 unchanged and reused)` when earlier builds were
/// reused or rebased.
fn made_summary(built: &[Built]) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let all = format!("{} artifact{}", built.len(), plural(built.len()));
    let count = |made: Made| built.iter().filter(|b| b.made == made).count();
    let (reused, rebased) = (count(Made::Reused), count(Made::Rebased));
    if reused + rebased == 0 {
        return all;
    }
    let parts: Vec<String> = [
        (count(Made::Built), "built"),
        (rebased, "rebased onto a new run image"),
        (reused, "unchanged and reused"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    format!("{all} ({})", parts.join(", "))
}

/// `op push --push-all`: the `ci` registries of the registry file other than the one the build
/// publishes to (none, with a warning, when there are none).
fn push_all_registries(
    plan: &BuildPlan,
    config: &Config,
    request: &Request<'_>,
    printer: &Printer,
) -> Result<Vec<String>, Failure> {
    if !request.push_options.as_ref().is_some_and(|p| p.push_all) {
        return Ok(Vec::new());
    }
    let others: Vec<String> = config
        .registry_file_repos(Destination::Ci, usize::MAX)?
        .into_iter()
        .map(|r| r.value)
        .filter(|r| *r != plan.default_repo.value)
        .collect();
    if others.is_empty() {
        printer.warn(&format!(
            "--push-all: the registry file lists no `ci` registry other than {}, so nothing is copied",
            plan.default_repo.value
        ));
    }
    Ok(others)
}

/// `--cache-image`, else `$OP_CACHE_IMAGE`, checked; `off` is none. With `--engine kubernetes`,
/// whose pods start empty, `<default repository>/op-cache` when neither names one.
fn cache_image(
    plan: &BuildPlan,
    run: &BuildRunArgs,
    config: &Config,
    cluster: bool,
) -> Result<Option<op_oci::Reference>, execute::Error> {
    let found = match config.cache_image(run.cache_image.as_deref()) {
        Some(found) if found.value == CACHE_OFF => return Ok(None),
        Some(found) => found,
        None if cluster => crate::config::Resolved {
            value: format!("{}/op-cache", plan.default_repo.value),
            origin: crate::config::Origin::Default,
        },
        None => return Ok(None),
    };
    execute::check_cache_image(&found.value)
        .map(Some)
        .map_err(|problem| execute::Error::CacheImage {
            problem,
            origin: found.origin.to_string(),
        })
}

/// The `--cache-image` (or `OP_CACHE_IMAGE`) that asks for no cache image.
const CACHE_OFF: &str = "off";

/// How the builds of `plan` run, skaffold found when the plan needs it.
fn build_options(
    plan: &BuildPlan,
    config: &Config,
    global: &GlobalArgs,
    request: &Request<'_>,
) -> Result<execute::Knobs, Failure> {
    let run = request.run;
    let skaffold = if plan.skaffold_runs.is_empty() {
        None
    } else {
        let delegated: Vec<String> = plan
            .skaffold_runs
            .iter()
            .flat_map(|r| r.artifacts.iter().cloned())
            .collect();
        let named = op_settings::skaffold_binary(
            request.delegate.and_then(|d| d.skaffold.as_deref()),
            config.env(),
        );
        Some(Skaffold::find(named, config.env(), &delegated)?)
    };
    let cluster = cluster_choice(plan, run, config)?;
    Ok(execute::Knobs {
        concurrency: run.concurrency.map(usize::from),
        pull: run.pull.into(),
        trust_builders: run.trust_builder,
        keep: run.keep,
        network: config.pack_network(run.network.as_deref()),
        debug: global.verbose >= 2,
        propagation_timeout: run.propagation_timeout,
        skaffold,
        sbom_output: request
            .upstream
            .sbom_output
            .as_ref()
            .map(|dir| plan.cwd.join(dir)),
        cache_image: cache_image(plan, run, config, cluster.is_some())?,
        cluster,
        cache_artifacts: cache_artifacts(run, config)?,
    })
}

/// `--cache-artifacts`, else `$OP_CACHE_ARTIFACTS`, else on.
fn cache_artifacts(run: &BuildRunArgs, config: &Config) -> Result<bool, Failure> {
    if let Some(given) = run.cache_artifacts {
        return Ok(given);
    }
    match config.env().get(CACHE_ARTIFACTS_VARIABLE) {
        None | Some("" | "true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(EngineError::NotABool(other.to_string()).into()),
    }
}

/// Whether builds reuse earlier ones, when --cache-artifacts does not say.
const CACHE_ARTIFACTS_VARIABLE: &str = "OP_CACHE_ARTIFACTS";

/// `--engine kubernetes` (else `$OP_ENGINE`): the cluster the creators run in.
fn cluster_choice(
    plan: &BuildPlan,
    run: &BuildRunArgs,
    config: &Config,
) -> Result<Option<execute::ClusterChoice>, Failure> {
    let engine = match run.engine {
        Some(engine) => engine,
        None => match config.env().get(ENGINE_VARIABLE) {
            None | Some("" | "docker") => EngineKind::Docker,
            Some("kubernetes") => EngineKind::Kubernetes,
            Some(other) => {
                return Err(EngineError::Unknown(other.to_string()).into());
            }
        },
    };
    if engine == EngineKind::Docker {
        return Ok(None);
    }
    if !plan.push {
        return Err(EngineError::NeedsPush.into());
    }
    Ok(Some(execute::ClusterChoice {
        kubeconfig: run.kubeconfig.clone(),
        context: run.context.clone(),
        namespace: run.namespace.clone(),
    }))
}

/// Where the creators run, when --engine does not say.
const ENGINE_VARIABLE: &str = "OP_ENGINE";

/// A choice of how to build op cannot follow.
#[derive(Debug, thiserror::Error)]
enum EngineError {
    #[error("{ENGINE_VARIABLE}={0} names no engine")]
    Unknown(String),
    #[error("{CACHE_ARTIFACTS_VARIABLE}={0} is neither true nor false")]
    NotABool(String),
    #[error(
        "--engine kubernetes builds in pods of a cluster, which publish straight to the registry: it needs --push"
    )]
    NeedsPush,
}

impl crate::hint::Hint for EngineError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            EngineError::Unknown(_) => "set it to `docker` (the default) or `kubernetes`".into(),
            EngineError::NotABool(_) => {
                "set it to `true` (the default: reuse earlier builds) or `false`".into()
            }
            EngineError::NeedsPush => {
                "add --push (or run op build-push); without it, build with the Docker Engine".into()
            }
        })
    }
}

/// The results on stdout: one reference per line, or JSON (the build result's shape, with
/// timings).
fn print_results(built: &[Built], output: OutputFormat, printer: &Printer) -> Result<(), Failure> {
    match output {
        OutputFormat::Text => {
            for b in built {
                printer.result(&b.tag)?;
            }
        }
        OutputFormat::Json => {
            #[derive(serde::Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Entry<'a> {
                image_name: &'a str,
                tag: &'a str,
                digest: &'a str,
                seconds: f64,
                creator_seconds: Option<f64>,
                made: Made,
            }
            #[derive(serde::Serialize)]
            struct Results<'a> {
                builds: Vec<Entry<'a>>,
            }
            let builds = built
                .iter()
                .map(|b| Entry {
                    image_name: &b.image,
                    tag: &b.tag,
                    digest: &b.digest,
                    seconds: b.seconds,
                    creator_seconds: b.creator_seconds,
                    made: b.made,
                })
                .collect();
            printer.result(&serde_json::to_string_pretty(&Results { builds })?)?;
        }
    }
    Ok(())
}

/// With `-q` nothing of the builds was shown: the last lines of each failed creator are.
fn print_tails(error: &execute::Error, printer: &Printer) {
    let execute::Error::Failed { failures, .. } = error else {
        return;
    };
    for failure in failures {
        let tail = failure.error.tail();
        if !tail.is_empty() {
            let lines = tail.iter().fold(String::new(), |mut text, line| {
                let _ = writeln!(text, "[{}] {line}", failure.artifact);
                text
            });
            printer.error(&lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(made: Made) -> Built {
        Built {
            image: "app".into(),
            tag: "r/app:t@sha256:a".into(),
            digest: "sha256:a".into(),
            seconds: 0.1,
            creator_seconds: None,
            made,
        }
    }

    #[test]
    fn the_summary_says_what_was_reused_and_rebased() {
        assert_eq!(made_summary(&[built(Made::Built)]), "1 artifact");
        assert_eq!(
            made_summary(&[built(Made::Built), built(Made::Built)]),
            "2 artifacts"
        );
        assert_eq!(
            made_summary(&[
                built(Made::Reused),
                built(Made::Built),
                built(Made::Reused),
                built(Made::Rebased)
            ]),
            "4 artifacts (1 built, 1 rebased onto a new run image, 2 unchanged and reused)"
        );
        assert_eq!(
            made_summary(&[built(Made::Reused)]),
            "1 artifact (1 unchanged and reused)"
        );
    }
}
