//! `op builder create` and `op builder base`.

use op_oci::Platform;
use op_oci::Reference;

use crate::builder::{self, base, create};
use crate::cli::{BuilderBaseArgs, BuilderCommand, BuilderCreateArgs};
use crate::config::Env;
use crate::failure::{Context as _, ExitStatus, Failure, UsageError};
use crate::hint::Hint as _;
use crate::output::Printer;
use crate::registry::{IndexEntry, Registry};

pub(super) fn run(
    command: &BuilderCommand,
    env: &Env,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("Failed to start op's async runtime")?;
    match command {
        BuilderCommand::Create(args) => runtime.block_on(create_builder(args, env, printer)),
        BuilderCommand::Base(args) => runtime.block_on(create_base(args, env, printer)),
    }
}

/// `--platform` values; a bad one is a usage error.
fn parse_platforms<S: AsRef<str>>(values: &[S]) -> Result<Vec<Platform>, UsageError> {
    Platform::parse_list(values).map_err(|e| UsageError {
        message: e.to_string(),
        hint: e.hint(),
    })
}

/// Checks that every image name is a full reference op can publish to.
fn check_names(names: &[String]) -> Result<(), Failure> {
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
) -> Result<ExitStatus, Failure> {
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
    let platforms = parse_platforms(&args.platforms)?;
    let references = names
        .iter()
        .chain(std::iter::once(&spec.build_image))
        .map(|r| Reference::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let references: Vec<&Reference> = references.iter().collect();
    let (registry, _) = Registry::connect(env, &references, &args.insecure_registries)?;
    if platforms.len() <= 1 {
        let base = match platforms.first() {
            Some(platform) => registry.image_for(&spec.build_image, platform).await,
            None => registry.image(&spec.build_image).await,
        };
        let base = base
            .map_err(builder::Error::from)
            .with_context(|| format!("Failed to read the build image `{}`", spec.build_image))?;
        let lifecycle = lifecycle_of(&spec, &base)?;
        let written =
            publish_builder(&registry, (&spec, &lifecycle), &names, &base, true, printer).await?;
        printer.result(&digest_reference(&args.image, &written.digest))?;
        return Ok(ExitStatus::Success);
    }
    // Every platform's build image and lifecycle is found before anything is published.
    let mut bases = Vec::new();
    for platform in &platforms {
        let base = registry
            .image_for(&spec.build_image, platform)
            .await
            .map_err(builder::Error::from)
            .with_context(|| {
                format!(
                    "Failed to read the {platform} image of the build image `{}`",
                    spec.build_image
                )
            })?;
        let (os, architecture) = base.platform();
        if !platform.matches(os, architecture) {
            return Err(builder::Error::BuildImagePlatform {
                reference: spec.build_image.clone(),
                found: format!("{os}/{architecture}"),
                wanted: platform.to_string(),
                all: platforms
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            }
            .into());
        }
        let lifecycle = lifecycle_of(&spec, &base)?;
        bases.push((platform, base, lifecycle));
    }
    let mut entries = Vec::new();
    let mut docker = false;
    for (platform, base, lifecycle) in &bases {
        docker |= base.is_docker();
        let written =
            publish_builder(&registry, (&spec, lifecycle), &names, base, false, printer).await?;
        entries.push(index_entry(platform, written));
    }
    let written = registry
        .write_index(&names, &entries, docker)
        .await
        .with_context(|| format!("Failed to publish the builder index `{}`", args.image))?;
    printer.result(&digest_reference(&args.image, &written.digest))?;
    Ok(ExitStatus::Success)
}

/// The lifecycle for the platform of `base` (a linux build image).
fn lifecycle_of(
    spec: &builder::config::BuilderSpec,
    base: &crate::registry::Image,
) -> Result<builder::config::LifecycleFiles, Failure> {
    let (os, architecture) = base.platform();
    if os != "linux" {
        return Err(Failure::msg(format!(
            "The build image `{}` is a {os}/{architecture} image; builders are linux images",
            base.reference
        )));
    }
    Ok(spec.lifecycle_for(architecture)?)
}

/// Writes the builder made from `base` (one platform's build image) with `lifecycle` to
/// `names`.
async fn publish_builder(
    registry: &Registry,
    (spec, lifecycle): (
        &builder::config::BuilderSpec,
        &builder::config::LifecycleFiles,
    ),
    names: &[String],
    base: &crate::registry::Image,
    tagged: bool,
    printer: &Printer,
) -> Result<crate::registry::Written, Failure> {
    let architecture = base.platform().1;
    printer.info(&format!(
        "Using lifecycle {} for linux/{architecture}",
        lifecycle.lifecycle.display()
    ));
    let (uid, gid) = create::build_user(base)?;
    let layers = create::layers_with(spec, lifecycle, uid, gid)?;
    let config = create::config(base, spec, &layers, uid, gid);
    let name = names.first().map_or("", String::as_str);
    printer.info(&format!(
        "Publishing {name} for linux/{architecture} (build user {uid}:{gid}, {} buildpacks)",
        spec.buildpacks.len()
    ));
    create::publish(registry, names, base, layers, &config, tagged)
        .await
        .with_context(|| format!("Failed to publish the builder `{name}` for linux/{architecture}"))
}

/// The index entry of an image published for `platform`.
fn index_entry(platform: &Platform, written: crate::registry::Written) -> IndexEntry {
    IndexEntry {
        manifest: op_oci::Descriptor {
            media_type: written.media_type.clone(),
            digest: written.digest,
            size: written.manifest_size,
        },
        os: platform.os.clone(),
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone(),
    }
}

async fn create_base(
    args: &BuilderBaseArgs,
    env: &Env,
    printer: &Printer,
) -> Result<ExitStatus, Failure> {
    check_names(&args.images)?;
    let platforms = parse_platforms(&args.platforms)?;
    let busyboxes = base_busyboxes(&args.busybox, &platforms)?;
    let options = base::BaseOptions {
        user: args.user.clone(),
        uid: args.uid,
        gid: args.gid,
        stack_id: args.stack_id.clone(),
    };
    let references = args
        .images
        .iter()
        .map(|r| Reference::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let references: Vec<&Reference> = references.iter().collect();
    let (registry, _) = Registry::connect(env, &references, &args.insecure_registries)?;
    let index = busyboxes.len() > 1;
    let mut entries = Vec::new();
    let mut last = None;
    for (platform, busybox) in &busyboxes {
        let layer = base::layer(&options, busybox)?;
        let config = base::config(&options, busybox, &layer);
        printer.info(&format!(
            "Publishing busybox {} for {platform} ({} applets, user {}={}:{})",
            busybox.version,
            busybox.applets.len(),
            args.user,
            args.uid,
            args.gid
        ));
        let written = base::publish(&registry, &args.images, &layer, &config, !index)
            .await
            .with_context(|| format!("Failed to publish the base image for {platform}"))?;
        entries.push(index_entry(platform, written.clone()));
        last = Some(written);
    }
    let written = if index {
        registry
            .write_index(&args.images, &entries, false)
            .await
            .context("Failed to publish the base image index")?
    } else {
        last.context("no busybox was given")?
    };
    for name in &args.images {
        printer.result(&digest_reference(name, &written.digest))?;
    }
    Ok(ExitStatus::Success)
}

/// The busybox of each platform the base image is made for: `--busybox [PLATFORM=]FILE` values
/// (a FILE's platform is its ELF header's), all of them, or, with `--platform`, one for each
/// platform it lists.
fn base_busyboxes(
    values: &[String],
    platforms: &[Platform],
) -> Result<Vec<(Platform, base::Busybox)>, Failure> {
    let mut found: Vec<(Platform, base::Busybox)> = Vec::new();
    for value in values {
        let (named, path) = match value.split_once('=') {
            Some((platform, path)) => (
                Some(Platform::parse(platform).map_err(|e| UsageError {
                    message: format!("--busybox {value}: {e}"),
                    hint: e.hint(),
                })?),
                path,
            ),
            None => (None, value.as_str()),
        };
        let busybox = base::read_busybox(std::path::Path::new(path))?;
        let platform = Platform {
            os: "linux".into(),
            architecture: busybox.architecture.to_string(),
            variant: None,
        };
        if let Some(named) = named
            && !named.matches(&platform.os, &platform.architecture)
        {
            return Err(UsageError {
                message: format!(
                    "--busybox {value}: `{path}` is a {platform} executable, not {named}"
                ),
                hint: Some(format!(
                    "give the {named} busybox as --busybox {named}=FILE"
                )),
            }
            .into());
        }
        if found.iter().any(|(p, _)| *p == platform) {
            return Err(UsageError {
                message: format!("--busybox names two busyboxes for {platform}"),
                hint: Some("give one busybox per platform".into()),
            }
            .into());
        }
        found.push((platform, busybox));
    }
    if platforms.is_empty() {
        return Ok(found);
    }
    platforms
        .iter()
        .map(|wanted| {
            let at = found
                .iter()
                .position(|(p, _)| wanted.matches(&p.os, &p.architecture))
                .ok_or_else(|| UsageError {
                    message: format!("--platform {wanted}: no --busybox is a {wanted} executable"),
                    hint: Some(format!(
                        "add --busybox {wanted}=FILE (Debian's busybox-static:{arch}: `apt-get download busybox-static:{arch}`; scripts/dev-env unpacks the arm64 one)",
                        arch = wanted.architecture
                    )),
                })?;
            let (_, busybox) = found.remove(at);
            Ok((wanted.clone(), busybox))
        })
        .collect()
}

/// `repository@digest` for the image published as `name`.
fn digest_reference(name: &str, digest: &str) -> String {
    match Reference::parse(name) {
        Ok(reference) => format!("{}@{digest}", reference.name()),
        Err(_) => format!("{name}@{digest}"),
    }
}
