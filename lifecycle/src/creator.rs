//! The creator: every phase in one process (`cmd/lifecycle/creator.go` of the reference
//! lifecycle). As root it prepares the directories, then it becomes the build user and runs
//! ANALYZING, DETECTING, RESTORING, BUILDING and EXPORTING, and writes the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analyze;
use crate::api::{self, Version};
use crate::build::Builder;
use crate::buildpack::{self, ExecInputs, Store};
use crate::cache::{ImageCache, VolumeCache};
use crate::detect::Detector;
use crate::env::Env;
use crate::exit::{self, Error};
use crate::export::{self, ExportInputs};
use crate::files::{self, GroupToml, OrderToml};
use crate::flags::{self, Flag};
use crate::log;
use crate::privileges;
use crate::restore;
use op_oci::{Keychain, Registry};

/// The flags of the creator (spec platform.md "creator"; lifecycle 0.21).
pub const FLAGS: &[Flag] = &[
    Flag::value("app", Some("CNB_APP_DIR"), "application directory"),
    Flag::value(
        "buildpacks",
        Some("CNB_BUILDPACKS_DIR"),
        "directory of the buildpacks",
    ),
    Flag::value(
        "build-config",
        Some("CNB_BUILD_CONFIG_DIR"),
        "directory of the operator's build configuration",
    ),
    Flag::value(
        "cache-dir",
        Some("CNB_CACHE_DIR"),
        "directory of the volume cache",
    ),
    Flag::value(
        "cache-image",
        Some("CNB_CACHE_IMAGE"),
        "cache image (instead of -cache-dir)",
    ),
    Flag::boolean(
        "daemon",
        Some("CNB_USE_DAEMON"),
        "export to the Docker daemon (not supported)",
    ),
    Flag::value("gid", Some("CNB_GROUP_ID"), "GID of the build user"),
    Flag::value("uid", Some("CNB_USER_ID"), "UID of the build user"),
    Flag::repeated(
        "insecure-registry",
        Some("CNB_INSECURE_REGISTRIES"),
        "registry to reach without TLS (Platform API 0.13+)",
    ),
    Flag::value(
        "launch-cache",
        Some("CNB_LAUNCH_CACHE_DIR"),
        "launch cache (daemon only; ignored)",
    ),
    Flag::value("launcher", None, "launcher to put in the image"),
    Flag::value(
        "launcher-sbom",
        None,
        "launcher SBOM directory (SBOMs are not supported; ignored)",
    ),
    Flag::value("layers", Some("CNB_LAYERS_DIR"), "layers directory"),
    Flag::boolean(
        "layout",
        Some("CNB_USE_LAYOUT"),
        "export to an OCI layout (not supported)",
    ),
    Flag::value(
        "layout-dir",
        Some("CNB_LAYOUT_DIR"),
        "OCI layout directory (not supported)",
    ),
    Flag::value(
        "log-level",
        Some("CNB_LOG_LEVEL"),
        "debug, info, warn or error",
    ),
    Flag::boolean(
        "no-color",
        Some("CNB_NO_COLOR"),
        "no colours (there are none)",
    ),
    Flag::value("order", Some("CNB_ORDER_PATH"), "order.toml"),
    Flag::boolean(
        "parallel",
        Some("CNB_PARALLEL_EXPORT"),
        "export image and cache in parallel (not supported)",
    ),
    Flag::value("platform", Some("CNB_PLATFORM_DIR"), "platform directory"),
    Flag::value(
        "previous-image",
        Some("CNB_PREVIOUS_IMAGE"),
        "image to reuse layers from",
    ),
    Flag::value(
        "process-type",
        Some("CNB_PROCESS_TYPE"),
        "default process type",
    ),
    Flag::value(
        "project-metadata",
        Some("CNB_PROJECT_METADATA_PATH"),
        "project-metadata.toml",
    ),
    Flag::value("report", Some("CNB_REPORT_PATH"), "report.toml"),
    Flag::value("run", Some("CNB_RUN_PATH"), "run.toml"),
    Flag::value("run-image", Some("CNB_RUN_IMAGE"), "run image"),
    Flag::boolean(
        "skip-restore",
        Some("CNB_SKIP_RESTORE"),
        "do not restore layers",
    ),
    Flag::value(
        "stack",
        Some("CNB_STACK_PATH"),
        "stack.toml (deprecated; not supported)",
    ),
    Flag::value(
        "system",
        Some("CNB_SYSTEM_PATH"),
        "system.toml (not supported)",
    ),
    Flag::repeated("tag", None, "additional tag"),
    Flag::boolean("version", None, "print the version"),
];

/// The creator's settings, from flags, environment and defaults.
#[derive(Clone, Debug)]
pub struct Options {
    pub platform_api: Version,
    pub image: String,
    pub tags: Vec<String>,
    pub app: PathBuf,
    pub buildpacks: PathBuf,
    pub build_config: PathBuf,
    pub cache_dir: Option<PathBuf>,
    /// `-cache-image`: the cache is this image (`-cache-dir` is then not used).
    pub cache_image: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub insecure_registries: Vec<String>,
    pub launcher: PathBuf,
    pub layers: PathBuf,
    pub order: PathBuf,
    pub platform: PathBuf,
    pub previous_image: String,
    pub process_type: Option<String>,
    pub project_metadata: PathBuf,
    pub report: PathBuf,
    pub run: PathBuf,
    pub run_image: Option<String>,
    pub skip_restore: bool,
    pub exec_env: Option<String>,
    pub source_date_epoch: Option<String>,
}

/// The parsed command line with the environment behind it.
struct Settings<'a> {
    defined: Vec<Flag>,
    parsed: flags::Parsed,
    environ: &'a BTreeMap<String, String>,
}

impl Settings<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.environ.get(name).cloned()
    }

    /// The flag's value, else its environment variable's.
    fn value(&self, name: &str) -> Option<String> {
        let flag = self.defined.iter().find(|f| f.name == name)?;
        flags::value_or_env(&self.parsed, flag, &|k| self.env(k))
    }

    fn is_on(&self, name: &str) -> bool {
        self.parsed.boolean(name)
            || (!self.parsed.is_set(name)
                && self.value(name).is_some_and(|v| v == "true" || v == "1"))
    }

    fn path(&self, name: &str, default: &str) -> PathBuf {
        PathBuf::from(self.value(name).unwrap_or_else(|| default.to_string()))
    }

    fn id(&self, name: &str) -> Result<u32, Error> {
        let Some(value) = self.value(name) else {
            return Ok(0);
        };
        value.parse::<u32>().map_err(|_| {
            Error::new(
                exit::USAGE,
                format!("invalid value \"{value}\" for flag -{name}: parse error"),
            )
        })
    }

    /// Refuses the modes op-lifecycle does not implement, naming the flag.
    fn refuse_unsupported(&self) -> Result<(), Error> {
        let refuse = |flag: &str, why: &str| {
            Err(Error::new(
                exit::INVALID_ARGS,
                format!("-{flag} is not supported by op-lifecycle: it {why}"),
            ))
        };
        for (flag, why) in [
            ("daemon", "exports to registries only"),
            ("layout", "exports to registries only"),
            ("parallel", "exports the image, then the cache"),
        ] {
            if self.is_on(flag) {
                return refuse(flag, why);
            }
        }
        for (flag, why) in [
            ("layout-dir", "exports to registries only"),
            (
                "stack",
                "reads run images from run.toml (Platform API 0.12+)",
            ),
            ("system", "does not support system buildpacks"),
        ] {
            if self.value(flag).is_some() {
                return refuse(flag, why);
            }
        }
        if self.value("launch-cache").is_some() {
            log::warn("Ignoring -launch-cache, only intended for use with -daemon");
        }
        Ok(())
    }

    /// `-insecure-registry` (repeated), else `CNB_INSECURE_REGISTRIES` (comma-separated).
    fn insecure_registries(&self) -> Vec<String> {
        let flags = self.parsed.values("insecure-registry");
        if !flags.is_empty() {
            return flags.to_vec();
        }
        self.env("CNB_INSECURE_REGISTRIES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parses the command line and the environment into [`Options`].
pub fn options(args: &[String], environ: &BTreeMap<String, String>) -> Result<Options, Error> {
    let platform_api = api::platform_api(environ.get("CNB_PLATFORM_API").map(String::as_str))?;
    let defined: Vec<Flag> = FLAGS
        .iter()
        .copied()
        .filter(|f| f.name != "insecure-registry" || platform_api.at_least(Version(0, 13)))
        .collect();
    let usage = flags::usage("creator", "<image>", &defined);
    let parsed = flags::parse(&defined, args, &usage)?;
    for warning in &parsed.warnings {
        log::warn(warning);
    }
    if parsed.boolean("version") {
        return Err(Error::new(0, crate::VERSION));
    }
    let settings = Settings {
        defined,
        parsed,
        environ,
    };
    settings.refuse_unsupported()?;
    if let Some(level) = settings.value("log-level") {
        log::set_level(log::Level::parse(&level).ok_or_else(|| {
            Error::new(
                exit::INVALID_ARGS,
                format!("-log-level: unknown level '{level}'"),
            )
        })?);
    }
    let [image] = settings.parsed.args.as_slice() else {
        return Err(Error::new(
            exit::INVALID_ARGS,
            format!(
                "failed to parse arguments: received {} arguments, but expected 1\n{usage}",
                settings.parsed.args.len()
            ),
        ));
    };
    let layers = settings.path("layers", "/layers");
    let in_layers = |flag: &str, file: &str| {
        settings
            .value(flag)
            .map_or_else(|| layers.join(file), PathBuf::from)
    };
    let order = match settings.value("order") {
        Some(order) => PathBuf::from(order),
        None if layers.join("order.toml").is_file() => layers.join("order.toml"),
        None => PathBuf::from("/cnb/order.toml"),
    };
    let exec_env = platform_api.at_least(Version(0, 15)).then(|| {
        settings
            .env("CNB_EXEC_ENV")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "production".into())
    });
    Ok(Options {
        platform_api,
        image: image.clone(),
        tags: settings.parsed.values("tag").to_vec(),
        app: settings.path("app", "/workspace"),
        buildpacks: settings.path("buildpacks", "/cnb/buildpacks"),
        build_config: settings.path("build-config", "/cnb/build-config"),
        cache_dir: settings.value("cache-dir").map(PathBuf::from),
        cache_image: settings.value("cache-image").filter(|v| !v.is_empty()),
        uid: settings.id("uid")?,
        gid: settings.id("gid")?,
        insecure_registries: settings.insecure_registries(),
        launcher: settings.path("launcher", "/cnb/lifecycle/launcher"),
        project_metadata: in_layers("project-metadata", "project-metadata.toml"),
        report: in_layers("report", "report.toml"),
        order,
        platform: settings.path("platform", "/platform"),
        previous_image: settings
            .value("previous-image")
            .unwrap_or_else(|| image.clone()),
        process_type: settings.value("process-type"),
        run: settings.path("run", "/cnb/run.toml"),
        run_image: settings.value("run-image"),
        skip_restore: settings.is_on("skip-restore"),
        exec_env,
        source_date_epoch: settings.env("SOURCE_DATE_EPOCH").filter(|v| !v.is_empty()),
        layers,
    })
}

/// Runs the creator with `args` (after the program name) in the environment `environ`.
pub fn run(args: &[String], environ: Vec<(String, String)>) -> Result<(), Error> {
    let mut environ: BTreeMap<String, String> = environ.into_iter().collect();
    let options = options(args, &environ)?;
    let keychain = match environ.get("CNB_REGISTRY_AUTH").filter(|v| !v.is_empty()) {
        Some(json) => {
            Keychain::from_cnb_registry_auth(json).map_err(|e| Error::new(exit::FAILED, e))?
        }
        None => Keychain::default(),
    };

    become_build_user(&options, &mut environ)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(exit::FAILED, format!("failed to start: {e}")))?;

    let (registry, analysis) = analyze_phase(&options, keychain, &runtime)?;

    log::phase("DETECTING");
    let order = read_order(&options.order)?;
    let store = Store {
        dir: options.buildpacks.clone(),
    };
    let target = analysis.analyzed.run_image.target.as_ref();
    let target_env = buildpack::target_env(target);
    let build_env = Env::build(environ.clone());
    let build_config = options
        .build_config
        .is_dir()
        .then_some(options.build_config.as_path());
    let exec = ExecInputs {
        app_dir: &options.app,
        platform_dir: &options.platform,
        build_config_dir: build_config,
        env: &build_env,
        target_env: &target_env,
        exec_env: options.exec_env.as_deref(),
    };
    let detected =
        Detector::new(&store, exec, options.platform_api, target).detect(&order.order)?;
    write(
        &options.layers.join("group.toml"),
        &GroupToml {
            group: detected.group.clone(),
        },
        exit::DETECT_ERROR,
    )?;
    write(
        &options.layers.join("plan.toml"),
        &detected.plan,
        exit::DETECT_ERROR,
    )?;

    log::phase("RESTORING");
    let image_cache = pull_image_cache(&options, &registry, &runtime)?;
    let volume_cache = match &image_cache {
        Some(_) => None,
        None => options.cache_dir.as_deref().map(VolumeCache::new),
    };
    let cache = image_cache
        .as_ref()
        .map(ImageCache::local)
        .or(volume_cache.as_ref());
    let cache_metadata = cache
        .map(|cache| {
            cache
                .metadata()
                .map_err(|e| Error::new(exit::RESTORE_ERROR, e))
        })
        .transpose()?;
    restore::restore(
        &options.layers,
        &detected.group,
        analysis.analyzed.metadata.as_ref(),
        cache.zip(cache_metadata.as_ref()),
        options.skip_restore,
    )?;

    log::phase("BUILDING");
    let metadata = Builder {
        store: &store,
        layers_dir: &options.layers,
        app_dir: &options.app,
        platform_dir: &options.platform,
        build_config_dir: build_config,
        target_env: &target_env,
        exec_env: options.exec_env.as_deref(),
        env: build_env.clone(),
    }
    .build(&detected.group, &detected.plan)?;

    export_phase(
        &options,
        &registry,
        &analysis,
        &runtime,
        cache,
        &detected.group,
        &metadata,
    )?;
    if let Some(image_cache) = &image_cache {
        // As in the reference lifecycle, a cache that cannot be written is only a warning.
        if let Err(e) = runtime.block_on(image_cache.push(&registry)) {
            log::warn(&format!("Failed to export cache: {e}"));
        }
    }
    Ok(())
}

/// With `-cache-image`: pulls the cache image into a local directory the restore reads.
fn pull_image_cache(
    options: &Options,
    registry: &Registry,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<ImageCache>, Error> {
    options
        .cache_image
        .as_ref()
        .map(|reference| {
            runtime
                .block_on(ImageCache::pull(registry, reference))
                .map_err(|e| Error::new(exit::RESTORE_ERROR, e))
        })
        .transpose()
}

/// As root: gives the layers and cache directories to the build user, then becomes it.
/// Sets `HOME` and `USER` from `/etc/passwd`.
fn become_build_user(
    options: &Options,
    environ: &mut BTreeMap<String, String>,
) -> Result<(), Error> {
    if privileges::is_root() {
        let mut owned: Vec<&Path> = vec![&options.layers];
        owned.extend(options.cache_dir.as_deref());
        privileges::ensure_owner(options.uid, options.gid, &owned).map_err(|e| {
            Error::new(
                exit::FAILED,
                format!("failed to chown the layers and cache directories: {e}"),
            )
        })?;
        privileges::run_as(options.uid, options.gid).map_err(|e| Error::new(exit::FAILED, e))?;
    }
    let (home, user) = privileges::user(options.uid, Path::new("/etc/passwd"))
        .map_err(|e| Error::new(exit::FAILED, e))?;
    environ.insert("HOME".into(), home);
    environ.insert("USER".into(), user);
    Ok(())
}

/// ANALYZING: the run image, the previous image, `analyzed.toml`.
fn analyze_phase(
    options: &Options,
    keychain: Keychain,
    runtime: &tokio::runtime::Runtime,
) -> Result<(Registry, analyze::Analysis), Error> {
    log::phase("ANALYZING");
    let run_image =
        analyze::choose_run_image(options.run_image.as_deref(), &options.run, &options.image)?;
    let mut references: Vec<&str> = vec![&options.image, &run_image.image, &options.previous_image];
    references.extend(options.tags.iter().map(String::as_str));
    references.extend(options.cache_image.as_deref());
    // Its CA certificates are the system's: the platform adds its own with SSL_CERT_FILE.
    let registry = Registry::new(
        Registry::transports(references, &options.insecure_registries),
        keychain,
        &[],
    )
    .map_err(|e| Error::new(exit::ANALYZE_ERROR, analyze::chain(&e)))?;
    let analysis = runtime.block_on(analyze::analyze(
        &registry,
        run_image,
        &options.previous_image,
        Path::new("/etc/os-release"),
    ))?;
    // The previous image's metadata may come from the real lifecycle, with Go's `null`s.
    let analyzed = options.layers.join("analyzed.toml");
    files::write_json_as_toml(&analyzed, &analysis.analyzed)
        .map_err(|e| Error::new(exit::ANALYZE_ERROR, e))?;
    Ok((registry, analysis))
}

/// EXPORTING, then the cache.
fn export_phase(
    options: &Options,
    registry: &Registry,
    analysis: &analyze::Analysis,
    runtime: &tokio::runtime::Runtime,
    cache: Option<&VolumeCache>,
    group: &[files::GroupElement],
    metadata: &files::BuildMetadata,
) -> Result<(), Error> {
    log::phase("EXPORTING");
    let project_metadata = match files::read_toml::<toml::Table>(&options.project_metadata) {
        Ok(Some(table)) => serde_json::to_value(table).unwrap_or_else(|_| serde_json::json!({})),
        _ => serde_json::json!({}),
    };
    let inputs = ExportInputs {
        registry,
        analysis,
        layers_dir: &options.layers,
        app_dir: &options.app,
        launcher: &options.launcher,
        image: &options.image,
        tags: &options.tags,
        uid: u64::from(options.uid),
        gid: u64::from(options.gid),
        platform_api: options.platform_api,
        group,
        metadata,
        process_type: options.process_type.as_deref(),
        project_metadata,
        exec_env: options.exec_env.as_deref(),
        created: options
            .source_date_epoch
            .as_deref()
            .map(epoch_to_rfc3339)
            .transpose()?,
    };
    let exported = runtime.block_on(export::export(&inputs))?;
    write(&options.report, &exported.report, exit::EXPORT_ERROR)?;
    if let Some(cache) = cache {
        // As in the reference lifecycle, a cache that cannot be written is only a warning.
        if let Err(e) = export::write_cache(cache, &inputs, &exported.built) {
            log::warn(&format!("Failed to export cache: {e}"));
        }
    }
    Ok(())
}

/// The order to detect with; image extensions in it are refused.
fn read_order(path: &Path) -> Result<OrderToml, Error> {
    let order: OrderToml = files::read_toml(path)
        .map_err(|e| Error::new(exit::DETECT_ERROR, e))?
        .ok_or_else(|| {
            Error::new(
                exit::DETECT_ERROR,
                format!("failed to read order: {} does not exist", path.display()),
            )
        })?;
    if !order.order_extensions.is_empty() {
        return Err(Error::new(
            exit::INVALID_ARGS,
            format!(
                "{} has [[order-extensions]]: image extensions are not supported by op-lifecycle",
                path.display()
            ),
        ));
    }
    Ok(order)
}

fn write<T: serde::Serialize>(path: &Path, value: &T, code: i32) -> Result<(), Error> {
    files::write_toml(path, value).map_err(|e| Error::new(code, e))
}

/// `SOURCE_DATE_EPOCH` (seconds) as an RFC 3339 time.
fn epoch_to_rfc3339(epoch: &str) -> Result<String, Error> {
    let seconds: i64 = epoch.trim().parse().map_err(|_| {
        Error::new(
            exit::INVALID_ARGS,
            format!("SOURCE_DATE_EPOCH '{epoch}' is not a number of seconds"),
        )
    })?;
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

#[cfg(test)]
mod tests;
