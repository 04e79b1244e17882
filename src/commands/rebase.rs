//! `op rebase`.

use std::path::Path;

use op_oci::Reference;

use crate::cli::{GlobalArgs, OutputFormat, RebaseArgs};
use crate::config::Env;
use crate::failure::{Context as _, ExitStatus, Failure};
use crate::output::Printer;
use crate::registry::Registry;
use crate::registry::rebase::{self, Rebased, Request};

pub(super) fn run(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    args: &RebaseArgs,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    let config = super::load_config(cwd, env, global, printer)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("Failed to start op's async runtime")?;
    let mut results = Vec::new();
    for image in &args.images {
        let rebased = runtime.block_on(rebase_one(image, args, config.env()))?;
        printer.info(&format!(
            "Rebased {image} onto {}: {} (was {})",
            rebased.run_image, rebased.digest, rebased.previous
        ));
        results.push((image.clone(), rebased));
    }
    match args.output {
        OutputFormat::Text => {
            for (image, rebased) in &results {
                let name = Reference::parse(image)?.name();
                printer.result(&format!("{name}@{}", rebased.digest))?;
            }
        }
        OutputFormat::Json => {
            let entries: Vec<serde_json::Value> = results
                .iter()
                .map(|(image, r)| {
                    serde_json::json!({
                        "image": image,
                        "digest": r.digest,
                        "runImage": r.run_image,
                        "previousDigest": r.previous,
                    })
                })
                .collect();
            printer.result(&serde_json::to_string_pretty(&entries).unwrap_or_default())?;
        }
    }
    Ok(ExitStatus::Success)
}

/// Rebases `image` under its own name: connected to its registry, and to its run image's
/// (`--run-image`, else the one its metadata names, read first).
async fn rebase_one(image: &str, args: &RebaseArgs, env: &Env) -> Result<Rebased, Failure> {
    let app = Reference::parse(image)?;
    let (run_image, app_image, first) = if let Some(run_image) = &args.run_image {
        (run_image.clone(), None, None)
    } else {
        let (registry, _) = Registry::connect(env, &[&app], &args.insecure_registries)?;
        let (run_image, app_image) = rebase::named_run_image(&registry, image).await?;
        (run_image, Some(app_image), Some(registry))
    };
    let run = Reference::parse(&run_image)?;
    // The client of the app's registry serves a run image of the same registry too.
    let registry = match first {
        Some(registry) if run.registry() == app.registry() => registry,
        _ => Registry::connect(env, &[&app, &run], &args.insecure_registries)?.0,
    };
    let names = [image.to_string()];
    let request = Request {
        image,
        run_image: Some(&run_image),
        names: &names,
        force: args.force,
        platform: None,
        explicit: args.run_image.is_some(),
        // Read to find its run image: not read again.
        app: app_image.as_ref(),
        base: None,
    };
    rebase::rebase(&registry, &request)
        .await
        .with_context(|| format!("Failed to rebase `{image}`"))
}
