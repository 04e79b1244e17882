//! `op version`; with `-v`, also the Docker Engine op finds: its version, API and image store.

use crate::config::Env;
use crate::engine::Engine;
use crate::failure::{Context as _, ExitStatus, Failure};
use crate::output::{Printer, Verbosity};

pub(super) fn run(env: &Env, printer: &Printer) -> Result<ExitStatus, Failure> {
    printer.result(&format!("op version {}", crate::VERSION))?;
    if printer.verbosity() != Verbosity::Verbose {
        return Ok(ExitStatus::Success);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("Failed to start op's async runtime")?;
    let described = runtime.block_on(async {
        Engine::connect(env)
            .await
            .map(|engine| engine.describe().clone())
    });
    match described {
        Ok(engine) => {
            printer.result(&format!(
                "engine: Docker Engine {} at {} ({}/{})",
                engine.version, engine.host, engine.os, engine.architecture
            ))?;
            printer.result(&format!(
                "engine API: {} (the engine speaks {} to {}; op needs {}.{} or newer)",
                engine.negotiated_api,
                engine.min_api,
                engine.api,
                crate::engine::MIN_API_MAJOR,
                crate::engine::MIN_API_MINOR
            ))?;
            printer.result(&format!("image store: {}", engine.image_store()))?;
        }
        // The version is still worth printing; what is wrong with the engine is said, and
        // `op version` does not fail for it.
        Err(error) => {
            let mut line = format!("engine: {error}");
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                line = format!("{line}: {inner}");
                cause = inner.source();
            }
            printer.result(&line)?;
            if let Some(hint) = crate::hint::Hint::hint(&error) {
                printer.result(&format!("hint: {hint}"))?;
            }
        }
    }
    Ok(ExitStatus::Success)
}
