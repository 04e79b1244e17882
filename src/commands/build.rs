//! `op build`, `op build-push`, `op push`.

use std::path::Path;

use crate::cli::{BuildCommon, GlobalArgs, OutputFormat};
use crate::config::{Config, Env};
use crate::error::ExitStatus;
use crate::output::Printer;
use crate::plan::{BuildPlan, Command, PlanOptions};

pub(super) fn run(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    args: &BuildCommon,
    command: Command,
    push: bool,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let config = Config::load(cwd, env, global.config.as_deref())?;
    let options = PlanOptions {
        command,
        push,
        skaffold_file: args.filename.clone(),
        profiles: args.profiles.clone(),
        artifact: args.artifact.clone(),
        repo: args.repo.clone(),
        tag: args.tag.clone(),
        insecure_registries: args.insecure_registries.clone(),
        build_result: args.file_output.clone(),
    };
    let plan = BuildPlan::load(&config, &options)?;
    for warning in &plan.warnings {
        printer.warn(warning);
    }
    debug_assert!(args.dry_run, "clap requires --dry-run");
    match args.output {
        OutputFormat::Text => printer.result(&plan.render_text(cwd))?,
        OutputFormat::Json => printer.result(&serde_json::to_string_pretty(&plan)?)?,
    }
    Ok(ExitStatus::Success)
}
