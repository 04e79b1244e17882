//! Running the image of a context: pulled if needed (with its registry's credentials), run in
//! a container with the context's ports, environment and volumes (`engine::runner`: attached
//! before start, stopped on Ctrl-C or SIGTERM), removed after its exit code is read.

use super::{Error, RunContext, run_options};
use crate::config::Config;
use crate::engine::runner::{self, Created, Exit};
use crate::engine::{self, ContainerSpec, Containers, Output, PullPolicy};
use crate::interrupt::Interrupt;
use crate::registry;

/// How long a stopped container gets to exit before it is killed.
const STOP_GRACE_SECONDS: i32 = 10;

/// How many host ports op tries when the one it chose is taken before it is published.
const MAX_PORT_RETRIES: usize = 10;

/// What a run tells whoever shows it.
pub trait Monitor: Send + Sync {
    /// A line about what op does: pulling, running, the ports it published.
    fn info(&self, line: &str);
    /// A line of the pull's progress (shown with `-v`).
    fn progress(&self, line: &str);
    /// A chunk of the container's output, for op's stdout or stderr.
    fn output(&self, chunk: Output);
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub context: &'a RunContext,
    pub image: &'a str,
    pub pull: PullPolicy,
}

/// Runs `request` until its container exits or op is interrupted; returns the exit code for op:
/// the container's, or 130 (Ctrl-C) or 143 (SIGTERM) when op stopped it.
pub async fn run(
    engine: &dyn Containers,
    config: &Config,
    request: Request<'_>,
    interrupt: &Interrupt,
    monitor: &dyn Monitor,
) -> Result<u8, Error> {
    let image = request.image;
    let host = op_oci::Reference::parse(image)
        .map(|r| r.registry().to_string())
        .unwrap_or_default();
    let credentials =
        registry::auth::Credentials::resolve(config.env(), std::slice::from_ref(&host))?;
    let auth = credentials.pull_auth(&host);
    let mut announced = false;
    let mut progress = |line: &str| {
        if !announced {
            monitor.info(&format!("Pulling {image}"));
            announced = true;
        }
        monitor.progress(line);
    };
    tokio::select! {
        pulled = engine.ensure_image(image, request.pull, auth.as_ref(), &mut progress) => { pulled?; }
        code = interrupt.wait() => return Ok(code),
    }
    // A host port op chose may be taken between choosing and publishing it (another `op run`,
    // say): then the next free one is tried.
    let mut taken: Vec<u16> = Vec::new();
    loop {
        let options = run_options(request.context, config, &taken)?;
        let chosen: Vec<u16> = options.ports.iter().filter_map(|p| p.host_port).collect();
        let mut spec = ContainerSpec {
            name: Some(engine::unique_name(&format!(
                "op-run-{}",
                request.context.image
            ))),
            image: image.to_string(),
            env: options.env.clone(),
            ports: options.ports.clone(),
            binds: options.binds.clone(),
            ..ContainerSpec::default()
        };
        spec.labels.insert(engine::LABEL_KIND.into(), "run".into());
        spec.labels.insert(
            "io.octopilot.op.context".into(),
            request.context.name.clone(),
        );
        let id = engine.create(&spec).await?;
        let name = spec.name.unwrap_or_default();
        let created = Created {
            container: Some(id.clone()),
            volumes: Vec::new(),
        };
        let outcome = run_created(engine, &id, &name, image, interrupt, monitor).await;
        // Removed by op rather than by the engine (`--rm`), so that the exit code is read first.
        for warning in created.remove(engine).await {
            monitor.info(&format!("warning: {warning}"));
        }
        match outcome {
            Err(engine::Error::PortTaken { .. })
                if options.ports_chosen && taken.len() < MAX_PORT_RETRIES =>
            {
                monitor.info(&format!(
                    "Host port {chosen:?} was taken meanwhile; trying the next free one"
                ));
                taken.extend(chosen);
            }
            Err(engine::Error::PortTaken { .. }) if options.ports_chosen => {
                return Err(Error::PortsTaken {
                    tries: taken.len(),
                    ports: taken,
                });
            }
            outcome => {
                return Ok(match outcome? {
                    Exit::Code(code) => u8::try_from(code.clamp(0, 255)).unwrap_or(1),
                    Exit::Interrupted(signal) => signal,
                });
            }
        }
    }
}

async fn run_created(
    engine: &dyn Containers,
    id: &str,
    name: &str,
    image: &str,
    interrupt: &Interrupt,
    monitor: &dyn Monitor,
) -> Result<Exit, engine::Error> {
    let Some(started) = runner::start(engine, id, interrupt).await? else {
        return Ok(Exit::Interrupted(interrupt.signalled().unwrap_or_default()));
    };
    monitor.info(&format!(
        "Running {image} as container {name} (Ctrl-C stops it)"
    ));
    for (container_port, host_port) in engine.published_ports(id).await? {
        monitor.info(&format!(
            "Mapped to http://localhost:{host_port} (container port {container_port})"
        ));
    }
    let mut on_output = |chunk| monitor.output(chunk);
    let exit = runner::wait(
        engine,
        started,
        interrupt,
        STOP_GRACE_SECONDS,
        &mut on_output,
    );
    tokio::pin!(exit);
    tokio::select! {
        // First: when the interrupt and the exit it causes are both ready, the line comes.
        biased;
        _ = interrupt.wait() => monitor.info(&format!("Stopping container {name}")),
        exit = &mut exit => return exit,
    }
    exit.await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::Env;
    use crate::engine::fake::{Fake, Script};

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Monitor for Seen {
        fn info(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
        fn progress(&self, _: &str) {}
        fn output(&self, chunk: Output) {
            let text = match chunk {
                Output::Stdout(b) | Output::Stderr(b) => String::from_utf8_lossy(&b).into_owned(),
            };
            self.0
                .lock()
                .unwrap()
                .push(format!("output: {}", text.trim_end()));
        }
    }

    struct Repo {
        /// Kept for its lifetime: the repository's files.
        _dir: tempfile::TempDir,
        config: Config,
        context: RunContext,
    }

    fn repo() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("web/public")).unwrap();
        fs_err::write(dir.path().join("web/public/index.html"), "hi").unwrap();
        let env = Env::from_pairs([("HOME", dir.path().join("home").display().to_string())]);
        let config = Config::load(dir.path(), env, None).unwrap();
        let context = RunContext {
            name: "web".into(),
            image: "web".into(),
            dir: dir.path().join("web"),
        };
        Repo {
            _dir: dir,
            config,
            context,
        }
    }

    async fn run_with(
        engine: &Fake,
        repo: &Repo,
        interrupt: &Interrupt,
    ) -> (Result<u8, Error>, Vec<String>) {
        let seen = Seen::default();
        let request = Request {
            context: &repo.context,
            image: "localhost:5001/web:latest",
            pull: PullPolicy::Never,
        };
        let code = run(engine, &repo.config, request, interrupt, &seen).await;
        (code, seen.0.into_inner().unwrap())
    }

    #[tokio::test]
    async fn the_container_s_exit_code_is_op_s_and_the_container_is_removed() {
        let engine = Fake::new(|_| Script::printing(&["hello"], 3));
        let repo = repo();
        let (code, seen) = run_with(&engine, &repo, &Interrupt::new()).await;
        assert_eq!(code.unwrap(), 3);
        assert!(seen.contains(&"output: hello".to_string()), "{seen:?}");
        assert!(
            seen.iter().any(
                |l| l.starts_with("Running localhost:5001/web:latest as container op-run-web-")
            )
        );
        assert_eq!(engine.calls_of("remove"), ["c1"]);
        let spec = engine.spec("c1").unwrap();
        assert_eq!(spec.labels["io.octopilot.op.context"], "web");
        assert_eq!(spec.env[0].0, "PORT");
    }

    #[tokio::test]
    async fn ctrl_c_stops_the_container_and_exits_130() {
        let engine = Fake::new(|_| Script {
            until_stopped: true,
            ..Script::printing(&["serving"], 0)
        });
        let repo = repo();
        let interrupt = Interrupt::new();
        let trigger = interrupt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            trigger.trigger(crate::interrupt::SIGINT_CODE);
        });
        let (code, seen) = run_with(&engine, &repo, &interrupt).await;
        assert_eq!(code.unwrap(), 130);
        assert_eq!(engine.calls_of("stop"), ["c1 10s"]);
        assert_eq!(engine.calls_of("remove"), ["c1"]);
        assert!(
            seen.iter()
                .any(|l| l.starts_with("Stopping container op-run-web-")),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_host_port_taken_meanwhile_is_retried_with_another() {
        let engine = Fake::new(|_| Script::printing(&[], 0));
        engine.fail_times("start", 1);
        let repo = repo();
        let (code, seen) = run_with(&engine, &repo, &Interrupt::new()).await;
        assert_eq!(code.unwrap(), 0);
        assert_eq!(engine.calls_of("create").len(), 2);
        assert_eq!(
            engine.calls_of("remove"),
            ["c1", "c2"],
            "the first container is removed too"
        );
        let port = |id: &str| engine.spec(id).unwrap().ports[0].host_port;
        assert_ne!(port("c1"), port("c2"));
        assert!(
            seen.iter().any(|l| l.contains("was taken meanwhile")),
            "{seen:?}"
        );
    }
}
