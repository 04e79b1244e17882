//! `op run context list` and `op run <context>`.

use std::fmt::Write as _;
use std::path::Path;

use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{GlobalArgs, Pull, RunArgs};
use crate::config::skaffold;
use crate::config::{Config, Env};
use crate::engine::{self, ContainerSpec, Engine, Output, PullPolicy};
use crate::error::{ExitStatus, UsageError};
use crate::local_run::{self, RunContext, RunOptions};
use crate::output::{Printer, Verbosity};

/// How long a stopped container gets to exit before it is killed.
const STOP_GRACE_SECONDS: i32 = 10;

/// How many host ports `op run` tries when the one it chose is taken before it is published.
const MAX_PORT_RETRIES: usize = 10;

fn is_port_taken(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<engine::Error>(),
        Some(engine::Error::PortTaken { .. })
    )
}

pub(super) fn run(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    args: &RunArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let config = Config::load(cwd, env, global.config.as_deref())?;
    for warning in config.warnings() {
        printer.warn(warning);
    }
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
            // A host port op chose may be taken between choosing and publishing it (another
            // `op run`, say): then the next free one is tried.
            let mut taken = Vec::new();
            loop {
                let options = local_run::run_options(context, &config, &taken)?;
                match runtime.block_on(run_container(
                    &config, context, &image, &options, args.pull, printer,
                )) {
                    Err(e)
                        if options.ports_chosen
                            && is_port_taken(&e)
                            && taken.len() < MAX_PORT_RETRIES =>
                    {
                        let ports: Vec<u16> =
                            options.ports.iter().filter_map(|p| p.host_port).collect();
                        printer.info(&format!(
                            "Host port {ports:?} was taken meanwhile; trying the next free one"
                        ));
                        taken.extend(ports);
                    }
                    outcome => return outcome,
                }
            }
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
fn list(contexts: &[RunContext], printer: &Printer) -> anyhow::Result<ExitStatus> {
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

/// Pulls the image if needed, runs the container with its output on ours, and stops it on
/// Ctrl-C or SIGTERM. Returns the container's exit code (130 or 143 when op stopped it).
async fn run_container(
    config: &Config,
    context: &RunContext,
    image: &str,
    options: &RunOptions,
    pull: Pull,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    // Installed first: from here on Ctrl-C and SIGTERM are op's to handle, so that a container
    // is never left running because a signal came early.
    let mut signals = Signals::new()?;
    let engine = Engine::connect(config.env()).await?;
    let policy = match pull {
        Pull::Always => PullPolicy::Always,
        Pull::IfNotPresent => PullPolicy::Missing,
        Pull::Never => PullPolicy::Never,
    };
    let verbose = printer.verbosity() >= Verbosity::Verbose;
    let mut announced = false;
    let mut progress = |line: &str| {
        if !announced {
            printer.info(&format!("Pulling {image}"));
            announced = true;
        }
        if verbose {
            printer.info(&format!("  {line}"));
        }
    };
    let host = crate::registry::host_of(image).unwrap_or_default();
    let credentials =
        crate::registry::auth::Credentials::resolve(config.env(), std::slice::from_ref(&host))?;
    let auth = credentials
        .get(&host)
        .map(|c| engine::PullAuth::from_credential(&host, c));
    tokio::select! {
        pulled = engine.ensure_image(image, policy, auth.as_ref(), &mut progress) => { pulled?; }
        code = signals.next() => return Ok(ExitStatus::Code(code)),
    }

    let mut spec = ContainerSpec {
        name: Some(engine::unique_name(&format!("op-run-{}", context.image))),
        image: image.to_string(),
        env: options.env.clone(),
        ports: options.ports.clone(),
        binds: options.binds.clone(),
        ..ContainerSpec::default()
    };
    spec.labels.insert(engine::LABEL_KIND.into(), "run".into());
    spec.labels
        .insert("io.octopilot.op.context".into(), context.name.clone());
    let id = engine.create(&spec).await?;
    let name = spec.name.unwrap_or_default();
    let outcome = attach_and_wait(&engine, &id, &name, image, &mut signals, printer).await;
    // Removed by op rather than by the engine (`--rm`), so that the exit code is read first.
    if let Err(e) = engine.remove(&id).await {
        printer.warn(&format!("could not remove container `{name}`: {e}"));
    }
    outcome
}

async fn attach_and_wait(
    engine: &Engine,
    id: &str,
    name: &str,
    image: &str,
    signals: &mut Signals,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let mut output = engine.attach(id).await?;
    let pump = tokio::spawn(async move {
        let (mut stdout, mut stderr) = (tokio::io::stdout(), tokio::io::stderr());
        while let Some(Ok(chunk)) = output.next().await {
            // A closed stdout or stderr must not stop the container: keep draining.
            let _ = match chunk {
                Output::Stdout(bytes) => stdout.write_all(&bytes).await.and(stdout.flush().await),
                Output::Stderr(bytes) => stderr.write_all(&bytes).await.and(stderr.flush().await),
            };
        }
    });
    engine.start(id).await?;
    printer.info(&format!(
        "Running {image} as container {name} (Ctrl-C stops it)"
    ));
    for (container_port, host_port) in engine.published_ports(id).await? {
        printer.info(&format!(
            "Mapped to http://localhost:{host_port} (container port {container_port})"
        ));
    }
    let status = tokio::select! {
        code = engine.wait(id) => ExitStatus::Code(u8::try_from(code?.clamp(0, 255)).unwrap_or(1)),
        code = signals.next() => stop(engine, id, name, printer, code).await?,
    };
    let _ = pump.await;
    Ok(status)
}

/// SIGINT (Ctrl-C) and SIGTERM, once installed.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next signal; returns the exit code it stands for (130, 143).
    async fn next(&mut self) -> u8 {
        tokio::select! {
            _ = self.interrupt.recv() => 130,
            _ = self.terminate.recv() => 143,
        }
    }
}

async fn stop(
    engine: &Engine,
    id: &str,
    name: &str,
    printer: &Printer,
    code: u8,
) -> anyhow::Result<ExitStatus> {
    printer.info(&format!("Stopping container {name}"));
    engine.stop(id, STOP_GRACE_SECONDS).await?;
    engine.wait(id).await?;
    Ok(ExitStatus::Code(code))
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
