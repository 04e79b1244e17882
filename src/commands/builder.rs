//! `op builder create` and `op builder base`.

use anyhow::Context as _;

use crate::builder::{self, base, create};
use crate::cli::{BuilderBaseArgs, BuilderCommand, BuilderCreateArgs};
use crate::config::Env;
use crate::error::{ExitStatus, UsageError};
use crate::output::Printer;
use crate::reference::Reference;
use crate::registry::Registry;

pub(super) fn run(
    command: &BuilderCommand,
    env: &Env,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("Failed to start op's async runtime")?;
    match command {
        BuilderCommand::Create(args) => runtime.block_on(create_builder(args, env, printer)),
        BuilderCommand::Base(args) => runtime.block_on(create_base(args, env, printer)),
    }
}

/// Checks that every image name is a full reference op can publish to.
fn check_names(names: &[String]) -> anyhow::Result<()> {
    for name in names {
        Reference::parse(name).map_err(|e| UsageError {
            message: format!("`{name}` is not an image reference: {e}"),
            hint: Some("name the image as registry/repository:tag, e.g. localhost:5001/builders/web:latest".into()),
        })?;
    }
    Ok(())
}

async fn create_builder(
    args: &BuilderCreateArgs,
    env: &Env,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let names = vec![args.image.clone()];
    check_names(&names)?;
    let path = args
        .config
        .as_deref()
        .unwrap_or(std::path::Path::new("builder.toml"));
    let spec = builder::config::load(path, env).with_context(|| {
        format!(
            "Failed to read the builder configuration `{}`",
            path.display()
        )
    })?;
    for bp in &spec.buildpacks {
        printer.info(&format!(
            "Adding buildpack {}@{} from {}",
            bp.id(),
            bp.version(),
            bp.dir.display()
        ));
    }
    printer.info(&format!(
        "Using lifecycle {}",
        spec.lifecycle.lifecycle.display()
    ));
    let references: Vec<&str> = names
        .iter()
        .chain(std::iter::once(&spec.build_image))
        .map(String::as_str)
        .collect();
    let (registry, _) = Registry::connect(env, &references, &args.insecure_registries)?;
    let base = registry
        .image(&spec.build_image)
        .await
        .map_err(builder::Error::from)
        .with_context(|| format!("Failed to read the build image `{}`", spec.build_image))?;
    let (uid, gid) = create::build_user(&base)?;
    let layers = create::layers(&spec, uid, gid)?;
    let config = create::config(&base, &spec, &layers, uid, gid);
    printer.info(&format!(
        "Publishing {} (build user {uid}:{gid}, {} buildpacks)",
        args.image,
        spec.buildpacks.len()
    ));
    let written = create::publish(&registry, &names, &base, layers, &config)
        .await
        .with_context(|| format!("Failed to publish the builder `{}`", args.image))?;
    printer.result(&digest_reference(&args.image, &written.digest))?;
    Ok(ExitStatus::Success)
}

async fn create_base(
    args: &BuilderBaseArgs,
    env: &Env,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    check_names(&args.images)?;
    let busybox = base::read_busybox(&args.busybox)?;
    let options = base::BaseOptions {
        busybox: args.busybox.clone(),
        user: args.user.clone(),
        uid: args.uid,
        gid: args.gid,
        stack_id: args.stack_id.clone(),
    };
    let layer = base::layer(&options, &busybox)?;
    let config = base::config(&options, &busybox, &layer);
    printer.info(&format!(
        "Publishing busybox {} ({} applets, user {}={}:{})",
        busybox.version,
        busybox.applets.len(),
        args.user,
        args.uid,
        args.gid
    ));
    let references: Vec<&str> = args.images.iter().map(String::as_str).collect();
    let (registry, _) = Registry::connect(env, &references, &args.insecure_registries)?;
    let written = base::publish(&registry, &args.images, &layer, &config)
        .await
        .context("Failed to publish the base image")?;
    for name in &args.images {
        printer.result(&digest_reference(name, &written.digest))?;
    }
    Ok(ExitStatus::Success)
}

/// `repository@digest` for the image published as `name`.
fn digest_reference(name: &str, digest: &str) -> String {
    match Reference::parse(name) {
        Ok(reference) => format!("{}@{digest}", reference.name()),
        Err(_) => format!("{name}@{digest}"),
    }
}
