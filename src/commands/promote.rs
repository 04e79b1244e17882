//! `op promote-image`.

use std::path::{Path, PathBuf};

use op_oci::Reference;

use crate::build_result::BuildResult;
use crate::cli::{GlobalArgs, OutputFormat, PromoteArgs};
use crate::config::Env;
use crate::failure::{Context as _, ExitStatus, Failure};
use crate::output::Printer;
use crate::promote::{self, Side};
use crate::registry::Registry;

pub(super) fn run(
    cwd: &Path,
    env: Env,
    global: &GlobalArgs,
    args: &PromoteArgs,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    let config = super::load_config(cwd, env, global, printer)?;
    let source_repo = promote::repository(
        &config,
        Side::Source,
        args.source.as_deref(),
        args.from.as_deref(),
    )?;
    let destination_repo = promote::repository(
        &config,
        Side::Destination,
        args.destination.as_deref(),
        args.to.as_deref(),
    )?;
    let path = super::build_result_path(cwd, &args.build);
    let result = BuildResult::read(&path)?;
    let build = result.select(args.build.image_name.as_deref(), &path)?;
    let (tagged, digest) = promote::split_reference(&build.tag)?;
    let destination =
        promote::destination_reference(&tagged, &source_repo.value, &destination_repo.value);
    let source = match &digest {
        Some(digest) => format!("{}@{digest}", Reference::parse(&tagged)?.name()),
        None => tagged.clone(),
    };
    printer.info(&format!("Promoting {}", build.tag));
    printer.info(&format!(
        "     -> {destination}{}",
        digest.as_ref().map(|d| format!("@{d}")).unwrap_or_default()
    ));
    tracing::debug!(source = %source_repo.value, from = %source_repo.origin, destination = %destination_repo.value, to = %destination_repo.origin, "repositories");
    let promotion = Promotion {
        source,
        destination,
        digest,
        tags: Vec::new(),
        dry_run: args.dry_run,
        build_result: path,
    };
    if args.dry_run {
        return print(&promotion, args.output, printer);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("Failed to start op's async runtime")?;
    let promotion = runtime.block_on(copy(promotion, args, config.env()))?;
    print(&promotion, args.output, printer)
}

/// What is promoted, and what was.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Promotion {
    /// `registry/repository@sha256:…` (or `:tag` for an entry without a digest).
    source: String,
    /// `registry/repository:tag` at the destination.
    destination: String,
    digest: Option<String>,
    /// The other tags copied (`--all-tags`).
    tags: Vec<String>,
    dry_run: bool,
    build_result: PathBuf,
}

/// Copies the image (its blobs, its manifests, then the tag), and with `--all-tags` the source
/// repository's other tags of it; checks the digest.
async fn copy(
    mut promotion: Promotion,
    args: &PromoteArgs,
    env: &Env,
) -> Result<Promotion, Failure> {
    let (source, destination) = (
        Reference::parse(&promotion.source)?,
        Reference::parse(&promotion.destination)?,
    );
    let (registry, _) =
        Registry::connect(env, &[&source, &destination], &args.insecure_registries)?;
    let copied = registry
        .copy(&promotion.source, &promotion.destination)
        .await
        .with_context(|| {
            format!(
                "Failed to promote `{}` to `{}`",
                promotion.source, promotion.destination
            )
        })?;
    if let Some(digest) = &promotion.digest
        && *digest != copied
    {
        return Err(Failure::msg(format!(
            "The destination `{}` has digest {copied}, not the source's {digest}",
            promotion.destination
        )));
    }
    promotion.digest = Some(copied.clone());
    if args.all_tags {
        let destination_repo = destination.name();
        let own = promotion
            .destination
            .rsplit_once(':')
            .map(|(_, t)| t.to_string())
            .unwrap_or_default();
        for tag in registry.tags(&promotion.source).await? {
            if tag == own || registry.digest(&source.with_tag(&tag)).await? != Some(copied.clone())
            {
                continue;
            }
            let alias = format!("{destination_repo}:{tag}");
            registry
                .copy(&source.with_digest(&copied).to_string(), &alias)
                .await
                .with_context(|| format!("Failed to tag `{alias}`"))?;
            promotion.tags.push(alias);
        }
    }
    Ok(promotion)
}

fn print(
    promotion: &Promotion,
    format: OutputFormat,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    match format {
        OutputFormat::Json => printer.result(&serde_json::to_string(promotion)?)?,
        OutputFormat::Text => {
            for tag in &promotion.tags {
                printer.info(&format!("Tagged {tag}"));
            }
            let digest = promotion
                .digest
                .as_ref()
                .map(|d| format!("@{d}"))
                .unwrap_or_default();
            printer.result(&format!("{}{digest}", promotion.destination))?;
        }
    }
    Ok(ExitStatus::Success)
}
