//! `op watch-deployment`.

use std::path::Path;
use std::sync::Mutex;

use crate::build_result::BuildResult;
use crate::cli::{GlobalArgs, OutputFormat, WatchArgs};
use crate::config::Env;
use crate::failure::{Context as _, ExitStatus, Failure};
use crate::kubernetes::{Cluster, DeploymentState};
use crate::output::progress::{StatusLine, live_stderr};
use crate::output::{Printer, Verbosity};
use crate::promote::{self, Side};
use crate::watch::{self, Progress, Request, Rollout, Wanted};

pub(super) fn run(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    args: &WatchArgs,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    let in_actions = env.in_github_actions();
    let outcome = watch_deployment(cwd, env, global, args, printer);
    if let Err(failure) = &outcome
        && in_actions
    {
        // Upstream's Python wrote GitHub's error annotation too.
        printer.annotate_error(&failure.chain().join(": "));
    }
    outcome
}

fn watch_deployment(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    args: &WatchArgs,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    let config = super::load_config(cwd, env, global, printer)?;
    let repository = promote::repository(&config, Side::Watched, Some(&args.environment), None)?;
    let path = super::build_result_path(cwd, &args.build);
    let result = BuildResult::read(&path)?;
    let build = result.select(args.build.image_name.as_deref(), &path)?;
    let wanted = Wanted::of(&build.tag);
    printer.info(&format!(
        "Watching deployment {} in namespace {} (environment {}, repository {})",
        args.component, args.namespace, args.environment, repository.value
    ));
    printer.info(&format!("Waiting for image {}", wanted.reference));
    let request = Request {
        namespace: args.namespace.clone(),
        component: args.component.clone(),
        wanted,
        poll_timeout: args.poll_timeout,
        timeout: args.timeout,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("Failed to start op's async runtime")?;
    let progress = Lines::new(printer);
    let outcome = runtime.block_on(async {
        let cluster = Cluster::connect(
            config.env(),
            args.kubeconfig.as_deref(),
            args.context.as_deref(),
        )
        .await?;
        Ok::<_, Failure>(watch::run(&cluster, &request, &progress).await?)
    })?;
    match args.output {
        OutputFormat::Json => printer.result(&serde_json::to_string(&outcome)?)?,
        OutputFormat::Text => printer.result(&format!(
            "deployment {}/{} rolled out {} ({} of {} replicas available)",
            outcome.namespace,
            outcome.deployment,
            outcome.image.reference,
            outcome.available,
            outcome.replicas
        ))?,
    }
    Ok(ExitStatus::Success)
}

/// The watch's progress on stderr: each finding once; on a terminal, one live line with the
/// deployment's replicas, elsewhere (CI logs) a line whenever they change.
struct Lines<'a> {
    printer: &'a Printer,
    live: Option<StatusLine>,
    last: Mutex<String>,
}

impl<'a> Lines<'a> {
    fn new(printer: &'a Printer) -> Self {
        let live = (printer.verbosity() != Verbosity::Quiet && live_stderr())
            .then(|| StatusLine::new("waiting for the deployment"));
        Self {
            printer,
            live,
            last: Mutex::default(),
        }
    }
}

impl Progress for Lines<'_> {
    fn note(&self, text: &str) {
        match &self.live {
            Some(live) => live.println(text),
            None => self.printer.info(text),
        }
    }

    fn state(&self, state: &DeploymentState, rollout: &Rollout) {
        let line = watch::describe(state, rollout);
        if let Some(live) = &self.live {
            live.set(&line);
            return;
        }
        if let Ok(mut last) = self.last.lock()
            && *last != line
        {
            self.printer.info(&line);
            *last = line;
        }
    }
}
