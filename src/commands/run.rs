//! `op run context list` and `op run <context>`.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::{GlobalArgs, RunArgs};
use crate::config::Env;
use crate::config::skaffold;
use crate::engine::{Engine, Output};
use crate::failure::{ExitStatus, Failure, UsageError};
use crate::interrupt::Interrupt;
use crate::local_run::{self, RunContext, RunOptions};
use crate::output::{Printer, Verbosity};

pub(super) fn run(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    args: &RunArgs,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    let config = super::load_config(cwd, env, global, printer)?;
    let profiles = config.profiles(&args.skaffold.profiles);
    let project = skaffold::load(&skaffold::LoadOptions {
        file: &args.skaffold.filename,
        cwd,
        profiles: &profiles.value,
        env: config.env(),
    })?;
    let contexts = local_run::contexts(&project, cwd);
    match args.target.as_slice() {
        [first, second] if first == "context" && second == "list" => list(&contexts, printer),
        [name] => {
            let context = local_run::find(&contexts, name)?;
            let (image, note) = local_run::resolve_image(context, &config)?;
            if let Some(note) = note {
                printer.warn(&note);
            }
            if args.dry_run {
                let options = local_run::run_options(context, &config, &[])?;
                printer.result(&docker_run_line(&image, &options))?;
                return Ok(ExitStatus::Success);
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let request = local_run::Request {
                context,
                image: &image,
                pull: args.pull.into(),
            };
            let monitor = Shown { printer };
            let code = runtime.block_on(async {
                // From here on Ctrl-C and SIGTERM are op's: a container is never left running
                // because a signal came early.
                let interrupt = Interrupt::install()?;
                let engine = Engine::connect(config.env()).await?;
                Ok::<_, Failure>(
                    local_run::run(&engine, &config, request, &interrupt, &monitor).await?,
                )
            })?;
            Ok(ExitStatus::Code(code))
        }
        _ => Err(UsageError {
            message: format!(
                "`op run {}` names more than one context",
                args.target.join(" ")
            ),
            hint: Some(
                "run one context (`op run api`), or list them with `op run context list`".into(),
            ),
        }
        .into()),
    }
}

/// `op run context list`: the contexts with their images and container ports.
fn list(contexts: &[RunContext], printer: &Printer) -> Result<ExitStatus, Failure> {
    let name_width = contexts.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let image_width = contexts.iter().map(|c| c.image.len()).max().unwrap_or(0);
    let mut out = String::from("Contexts (use: op run <context>):\n");
    for context in contexts {
        let inferred = local_run::infer::infer(&context.dir)?;
        let _ = writeln!(
            out,
            "  {:<name_width$}  {:<image_width$}  container port {} ({})",
            context.name, context.image, inferred.port, inferred.source
        );
    }
    if contexts.is_empty() {
        out.push_str("  none: skaffold.yaml defines no artifacts\n");
    }
    printer.result(&out)?;
    Ok(ExitStatus::Success)
}

/// The `docker run` command line that does what `op run` does, for `--dry-run`.
fn docker_run_line(image: &str, options: &RunOptions) -> String {
    let mut words = vec!["docker".to_string(), "run".into(), "--rm".into()];
    for port in &options.ports {
        words.extend(["-p".into(), port.to_string()]);
    }
    for (key, value) in &options.env {
        words.extend(["-e".into(), format!("{key}={value}")]);
    }
    for bind in &options.binds {
        words.extend(["-v".into(), bind.clone()]);
    }
    words.push(image.to_string());
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How `op run` shows a run: op's lines on stderr, the pull's progress with `-v`, the
/// container's output on op's stdout and stderr as it comes.
struct Shown<'a> {
    printer: &'a Printer,
}

impl local_run::Monitor for Shown<'_> {
    fn info(&self, line: &str) {
        self.printer.info(line);
    }

    fn progress(&self, line: &str) {
        if self.printer.verbosity() >= Verbosity::Verbose {
            self.printer.info(&format!("  {line}"));
        }
    }

    fn output(&self, chunk: Output) {
        use std::io::Write as _;
        // A closed stdout or stderr must not stop the container: write errors are dropped.
        let _ = match chunk {
            Output::Stdout(bytes) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes).and_then(|()| out.flush())
            }
            Output::Stderr(bytes) => {
                let mut err = std::io::stderr().lock();
                err.write_all(&bytes).and_then(|()| err.flush())
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PortMapping;
    use crate::local_run::infer::{Inferred, Source};

    #[test]
    fn dry_runs_print_an_equivalent_docker_command() {
        let options = RunOptions {
            inferred: Inferred {
                port: 8080,
                source: Source::Default,
            },
            ports: vec![PortMapping::parse("8081:8080").unwrap()],
            ports_chosen: false,
            env: vec![
                ("PORT".into(), "8080".into()),
                ("GREETING".into(), "hello world".into()),
            ],
            binds: vec!["/r/public:/app/public".into()],
        };
        assert_eq!(
            docker_run_line("localhost:5001/api:latest", &options),
            "docker run --rm -p 8081:8080 -e PORT=8080 -e 'GREETING=hello world' -v /r/public:/app/public localhost:5001/api:latest"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
