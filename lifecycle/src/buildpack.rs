//! Buildpacks on disk: `<buildpacks dir>/<id with / as _>/<version>/buildpack.toml`, and how
//! their executables are run.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::api::{self, Version};
use crate::env::Env;
use crate::exit::{self, Error};
pub use crate::files::escape_id;
use crate::files::{self, BuildpackToml, TargetMetadata};

/// A buildpack found on disk.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub toml: BuildpackToml,
    /// Its directory (`CNB_BUILDPACK_DIR`).
    pub dir: PathBuf,
    pub api: Version,
}

impl Descriptor {
    pub fn id(&self) -> &str {
        &self.toml.buildpack.id
    }

    pub fn version(&self) -> &str {
        &self.toml.buildpack.version
    }

    /// Whether it only groups other buildpacks.
    pub fn is_composite(&self) -> bool {
        !self.toml.order.is_empty()
    }
}

/// The buildpacks of a builder.
#[derive(Clone, Debug)]
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    /// The buildpack `id` at `version` (or its only version when `version` is empty). `code` is
    /// the exit code for a buildpack that is missing or unreadable; an unsupported API exits 12.
    pub fn lookup(&self, id: &str, version: &str, code: i32) -> Result<Descriptor, Error> {
        let base = self.dir.join(escape_id(id));
        let version = if version.is_empty() {
            let mut versions: Vec<String> = fs_err::read_dir(&base)
                .map_err(|e| Error::new(code, format!("failed to find buildpack '{id}': {e}")))?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect();
            versions.sort();
            match versions.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(Error::new(
                        code,
                        format!(
                            "buildpack '{id}' has no version in the order, and not exactly one on disk"
                        ),
                    ));
                }
            }
        } else {
            version.to_string()
        };
        let dir = base.join(&version);
        let path = dir.join("buildpack.toml");
        let toml: BuildpackToml = files::read_toml(&path)
            .map_err(|e| Error::new(code, e))?
            .ok_or_else(|| {
                Error::new(
                    code,
                    format!(
                        "failed to find buildpack '{id}@{version}': {} does not exist",
                        path.display()
                    ),
                )
            })?;
        let api = api::buildpack_api(id, &toml.api)?;
        Ok(Descriptor { toml, dir, api })
    }
}

/// The `CNB_TARGET_*` variables for a run image target.
pub fn target_env(target: Option<&TargetMetadata>) -> Vec<(String, String)> {
    let Some(target) = target else {
        return Vec::new();
    };
    let mut env = vec![
        ("CNB_TARGET_OS".to_string(), target.os.clone()),
        ("CNB_TARGET_ARCH".to_string(), target.arch.clone()),
    ];
    if let Some(variant) = &target.arch_variant {
        env.push(("CNB_TARGET_ARCH_VARIANT".into(), variant.clone()));
    }
    if let Some(distro) = &target.distro {
        env.push(("CNB_TARGET_DISTRO_NAME".into(), distro.name.clone()));
        env.push(("CNB_TARGET_DISTRO_VERSION".into(), distro.version.clone()));
    }
    env
}

/// What a buildpack executable gets besides its arguments.
#[derive(Clone, Debug)]
pub struct ExecInputs<'a> {
    pub app_dir: &'a Path,
    pub platform_dir: &'a Path,
    pub build_config_dir: Option<&'a Path>,
    pub env: &'a Env,
    pub target_env: &'a [(String, String)],
    pub exec_env: Option<&'a str>,
}

impl ExecInputs<'_> {
    /// The command for `<buildpack>/bin/<name> args…`, with the environment of the spec:
    /// `CNB_BUILDPACK_DIR` always; `CNB_PLATFORM_DIR` and `extra_env` for Buildpack API 0.8
    /// and later; `CNB_TARGET_*` for 0.10 and later; `CNB_EXEC_ENV` for 0.12 and later.
    pub fn command(
        &self,
        bp: &Descriptor,
        name: &str,
        args: &[&Path],
        extra_env: &[(&str, String)],
    ) -> Result<Command, Error> {
        let platform = (!bp.toml.buildpack.clear_env).then_some(self.platform_dir);
        let vars = self
            .env
            .with_overrides(platform, self.build_config_dir)
            .map_err(|e| {
                Error::new(
                    exit::FAILED,
                    format!("failed to read environment files: {e}"),
                )
            })?;
        let mut command = Command::new(bp.dir.join("bin").join(name));
        command
            .args(args)
            .current_dir(self.app_dir)
            .env_clear()
            .envs(vars);
        command.env("CNB_BUILDPACK_DIR", &bp.dir);
        // Buildpacks of API 0.7 get their directories as arguments only.
        if bp.api.at_least(Version(0, 8)) {
            command.env("CNB_PLATFORM_DIR", self.platform_dir);
            for (key, value) in extra_env {
                command.env(key, value);
            }
        }
        if bp.api.at_least(Version(0, 10)) {
            command.envs(self.target_env.iter().cloned());
        }
        if let (true, Some(exec_env)) = (bp.api.at_least(Version(0, 12)), self.exec_env) {
            command.env("CNB_EXEC_ENV", exec_env);
        }
        Ok(command)
    }
}

/// Runs `command` with stdout and stderr captured together, in order; returns the exit code
/// (`None` when it could not start or was killed) and the output.
pub fn run_captured(mut command: Command) -> (Option<i32>, Vec<u8>, Option<String>) {
    let (mut reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => {
            return (
                None,
                Vec::new(),
                Some(format!("failed to create a pipe: {e}")),
            );
        }
    };
    let writer_for_stderr = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => {
            return (
                None,
                Vec::new(),
                Some(format!("failed to create a pipe: {e}")),
            );
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return (
                None,
                Vec::new(),
                Some(format!(
                    "failed to run {}: {e}",
                    command.get_program().display()
                )),
            );
        }
    };
    // The command holds the only writers now; dropping it lets the read end see EOF.
    drop(command);
    let mut output = Vec::new();
    let read = reader.read_to_end(&mut output);
    let status = child.wait();
    match (status, read) {
        (Ok(status), Ok(_)) => (status.code(), output, None),
        (Err(e), _) | (_, Err(e)) => (None, output, Some(e.to_string())),
    }
}
