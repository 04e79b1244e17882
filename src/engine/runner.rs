//! Running a created container, the one way op does it (the creator of a build, the image of
//! `op run`): attached before it starts, so that nothing of its output is lost; its output
//! handed over chunk by chunk as it comes; waited for; stopped when op is interrupted. What a
//! run created (the container, its volumes) is removed by [`Created::remove`], on every path,
//! unless the user keeps it.

use futures::StreamExt as _;

use super::{Containers, Error, Output, OutputStream};
use crate::interrupt::Interrupt;

/// How a container's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i64),
    /// op was interrupted (the signal's exit code, 130 or 143), and stopped it (or never
    /// started it).
    Interrupted(u8),
}

/// A started container whose output is not read yet.
pub struct Started {
    id: String,
    output: OutputStream,
}

impl Started {
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Attaches to created container `id` and starts it; `None` when op was interrupted first (the
/// container is not started).
pub async fn start(
    engine: &dyn Containers,
    id: &str,
    interrupt: &Interrupt,
) -> Result<Option<Started>, Error> {
    if interrupt.signalled().is_some() {
        return Ok(None);
    }
    let output = engine.attach(id).await?;
    engine.start(id).await?;
    Ok(Some(Started {
        id: id.to_string(),
        output,
    }))
}

/// Reads the output of `started` into `on_output` until it ends, then waits for its exit code.
/// When op is interrupted meanwhile, the container is stopped (SIGTERM, SIGKILL after
/// `grace_seconds`) and its output read to the end.
pub async fn wait(
    engine: &dyn Containers,
    started: Started,
    interrupt: &Interrupt,
    grace_seconds: i32,
    on_output: &mut (dyn FnMut(Output) + Send),
) -> Result<Exit, Error> {
    let Started { id, mut output } = started;
    let mut interrupted = None;
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(chunk)) => on_output(chunk),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, container = %id, "the output stream ended early");
                    break;
                }
                None => break,
            },
            code = interrupt.wait(), if interrupted.is_none() => {
                interrupted = Some(code);
                engine.stop(&id, grace_seconds).await?;
            }
        }
    }
    let code = engine.wait(&id).await?;
    Ok(match interrupted.or(interrupt.signalled()) {
        Some(signal) => Exit::Interrupted(signal),
        None => Exit::Code(code),
    })
}

/// What a run created, to remove afterwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Created {
    pub container: Option<String>,
    pub volumes: Vec<String>,
}

impl Created {
    /// Removes the container, then the volumes (concurrently); a removal that fails is a
    /// warning (returned), and the others still happen.
    pub async fn remove(&self, engine: &dyn Containers) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(id) = &self.container
            && let Err(e) = engine.remove(id).await
        {
            warnings.push(format!("failed to remove container {id}: {e}"));
        }
        let removals = self.volumes.iter().map(|volume| async move {
            engine
                .remove_volume(volume)
                .await
                .err()
                .map(|e| format!("failed to remove volume {volume}: {e}"))
        });
        warnings.extend(
            futures::future::join_all(removals)
                .await
                .into_iter()
                .flatten(),
        );
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ContainerSpec;
    use crate::engine::fake::{Fake, Script};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: Some("op-test".into()),
            image: "busybox".into(),
            ..ContainerSpec::default()
        }
    }

    async fn run(engine: &Fake, interrupt: &Interrupt) -> (Result<Exit, Error>, Vec<Output>) {
        let id = engine.create(&spec()).await.unwrap();
        let mut seen = Vec::new();
        let exit = match start(engine, &id, interrupt).await {
            Ok(Some(started)) => {
                wait(engine, started, interrupt, 1, &mut |chunk| seen.push(chunk)).await
            }
            Ok(None) => Ok(Exit::Interrupted(interrupt.signalled().unwrap_or(0))),
            Err(e) => Err(e),
        };
        (exit, seen)
    }

    #[tokio::test]
    async fn it_attaches_before_starting_and_hands_over_all_output() {
        let engine = Fake::new(|_| Script::printing(&["one", "two"], 3));
        let (exit, seen) = run(&engine, &Interrupt::new()).await;
        assert_eq!(exit.unwrap(), Exit::Code(3));
        assert_eq!(
            seen,
            [
                Output::Stdout(b"one\n".to_vec()),
                Output::Stdout(b"two\n".to_vec())
            ]
        );
        assert_eq!(
            engine.calls(),
            ["create op-test", "attach c1", "start c1", "wait c1"],
            "attach comes before start, nothing is removed by the runner"
        );
    }

    #[tokio::test]
    async fn an_interrupt_stops_the_container() {
        let engine = Fake::new(|_| Script {
            until_stopped: true,
            ..Script::printing(&["serving"], 0)
        });
        let interrupt = Interrupt::new();
        let trigger = interrupt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            trigger.trigger(crate::interrupt::SIGINT_CODE);
        });
        let (exit, seen) = run(&engine, &interrupt).await;
        assert_eq!(exit.unwrap(), Exit::Interrupted(130));
        assert_eq!(seen.len(), 1);
        assert_eq!(engine.calls_of("stop"), ["c1 1s"]);
    }

    #[tokio::test]
    async fn nothing_starts_once_interrupted() {
        let engine = Fake::new(|_| Script::default());
        let interrupt = Interrupt::new();
        interrupt.trigger(crate::interrupt::SIGTERM_CODE);
        let (exit, _) = run(&engine, &interrupt).await;
        assert_eq!(exit.unwrap(), Exit::Interrupted(143));
        assert!(engine.calls_of("start").is_empty());
    }

    #[tokio::test]
    async fn everything_created_is_removed_even_when_a_removal_fails() {
        let engine = Fake::new(|_| Script::default());
        engine.fail("remove");
        let created = Created {
            container: Some("c9".into()),
            volumes: vec!["layers".into(), "workspace".into()],
        };
        let warnings = created.remove(&engine).await;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("failed to remove container c9"));
        let mut removed = engine.calls_of("remove_volume");
        removed.sort();
        assert_eq!(removed, ["layers", "workspace"]);
    }
}
