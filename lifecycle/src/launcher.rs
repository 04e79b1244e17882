//! The launcher (`cmd/launcher` and `launch/*.go` of the reference lifecycle; spec
//! platform.md "launcher"): the entrypoint of every app image. It picks the process, builds
//! the launch environment from the buildpacks' layers and replaces itself with the process.
//!
//! Not supported (see `docs/lifecycle.md`): `exec.d`, exec-env filtering of processes and
//! Windows. Shell processes (a process of Buildpack API 0.8 or earlier with `direct = false`,
//! or a user command without `--`) run as the reference runs them (`launch/bash.go`): through
//! `/bin/bash -c`, which sources the `profile.d` scripts and the app's `.profile`; without
//! `/bin/bash` in the image they fail (`bash exec: no such file or directory`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::api::{self, Version};
use crate::buildpack::escape_id;
use crate::env::{Action, Env};
use crate::exit::{self, Error};
use crate::files::{self, BuildMetadata, Process};
use crate::log;

/// The shell of shell processes (hard-coded, as in the reference).
pub const SHELL: &str = "/bin/bash";

/// What the launcher will run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The process type, when the process is one of the image's.
    pub kind: Option<String>,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Whether `argv` is executed as is (else it is a shell command).
    pub direct: bool,
    pub working_dir: PathBuf,
    /// Where a shell process starts (its script changes to `working_dir`).
    pub app_dir: PathBuf,
}

/// The process type named by the launcher's own name (`/cnb/process/web` is a symlink).
pub fn process_type_of(argv0: &str, metadata: &BuildMetadata) -> Option<String> {
    let name = Path::new(argv0).file_name()?.to_string_lossy().into_owned();
    metadata
        .processes
        .iter()
        .any(|p| p.kind == name)
        .then_some(name)
}

/// Picks the process for the user's arguments `user_args` (`ProcessFor` of the reference).
pub fn process_for(
    default_type: Option<&str>,
    metadata: &BuildMetadata,
    user_args: &[String],
    app_dir: &Path,
) -> Result<Launch, Error> {
    let fail = |m: String| Error::new(exit::LAUNCH_ERROR, format!("determine start command: {m}"));
    let Some(kind) = default_type else {
        return match user_args {
            [] => Err(fail(
                "when there is no default process a command is required".into(),
            )),
            [dashes, command, args @ ..] if dashes == "--" => Ok(Launch {
                kind: None,
                argv: std::iter::once(command).chain(args).cloned().collect(),
                direct: true,
                working_dir: app_dir.to_path_buf(),
                app_dir: app_dir.to_path_buf(),
            }),
            args => Ok(Launch {
                kind: None,
                argv: args.to_vec(),
                direct: false,
                working_dir: app_dir.to_path_buf(),
                app_dir: app_dir.to_path_buf(),
            }),
        };
    };
    let process: &Process = metadata
        .processes
        .iter()
        .find(|p| p.kind == kind)
        .ok_or_else(|| fail(format!("process type {kind} was not found")))?;
    let [program, always @ ..] = process.command.as_slice() else {
        return Err(fail(format!("process type {kind} has no command")));
    };
    let bp_api = metadata
        .buildpacks
        .iter()
        .find(|b| b.id == process.buildpack_id)
        .and_then(|b| Version::parse(&b.api))
        .unwrap_or(Version(0, 9));
    let arguments: Vec<String> = if user_args.is_empty() {
        process.args.clone()
    } else if !always.is_empty() || bp_api.at_least(Version(0, 9)) {
        user_args.to_vec()
    } else {
        process.args.iter().chain(user_args).cloned().collect()
    };
    let working_dir = match process.working_dir.as_deref().filter(|w| !w.is_empty()) {
        Some(dir) => app_dir.join(dir),
        None => app_dir.to_path_buf(),
    };
    let argv = std::iter::once(program)
        .chain(always)
        .chain(&arguments)
        .cloned()
        .collect();
    Ok(Launch {
        kind: Some(kind.to_string()),
        argv,
        direct: process.direct,
        working_dir,
        app_dir: app_dir.to_path_buf(),
    })
}

/// The launch environment: `environ` minus the lifecycle's variables, with every layer of every
/// buildpack applied in order (`bin`, `lib`, `env/`, `env.launch/`, `env.launch/<type>/`).
pub fn launch_env(
    environ: impl IntoIterator<Item = (String, String)>,
    layers_dir: &Path,
    metadata: &BuildMetadata,
    kind: Option<&str>,
) -> std::io::Result<Env> {
    let mut env = Env::launch(environ);
    for layer in layer_dirs(layers_dir, metadata)? {
        env.add_root_dir(&layer);
        env.add_env_dir(&layer.join("env"), Action::Override)?;
        env.add_env_dir(&layer.join("env.launch"), Action::Override)?;
        if let Some(kind) = kind {
            env.add_env_dir(&layer.join("env.launch").join(kind), Action::Override)?;
        }
    }
    Ok(env)
}

/// The layer directories, buildpack by buildpack, each buildpack's in lexical order.
fn layer_dirs(layers_dir: &Path, metadata: &BuildMetadata) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for bp in &metadata.buildpacks {
        let bp_dir = layers_dir.join(escape_id(&bp.id));
        let entries = match fs_err::read_dir(&bp_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut layers: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        layers.sort();
        dirs.extend(layers);
    }
    Ok(dirs)
}

/// `profile.d` scripts a shell process sources: every layer's `profile.d/*`, then
/// `profile.d/<type>/*`, then `<app>/.profile`.
fn profile_scripts(
    layers_dir: &Path,
    metadata: &BuildMetadata,
    kind: Option<&str>,
    app_dir: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    let mut scripts = Vec::new();
    for layer in layer_dirs(layers_dir, metadata)? {
        let mut dirs = vec![layer.join("profile.d")];
        dirs.extend(kind.map(|k| layer.join("profile.d").join(k)));
        for dir in dirs {
            let Ok(entries) = fs_err::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            scripts.extend(files);
        }
    }
    // Relative, as the reference writes it: the shell starts in the app directory.
    if app_dir
        .join(".profile")
        .metadata()
        .is_ok_and(|m| !m.is_dir())
    {
        scripts.push(PathBuf::from(".profile"));
    }
    Ok(scripts)
}

/// The script `bash -c` runs for a shell process (`BashShell.Launch` of the reference): it
/// sources the profile scripts, changes to the working directory, then runs `command` as a bash
/// script when the process has no arguments, else the command and each argument as one word
/// each, after `eval echo` (variables and `$(…)` expanded, no word splitting).
pub fn bash_script(scripts: &[PathBuf], working_dir: &Path, args: usize) -> String {
    let mut script = String::new();
    for path in scripts {
        let _ = writeln!(script, "source \"{}\"", path.display());
    }
    let _ = writeln!(script, "cd \"{}\"", working_dir.display());
    if args == 0 {
        script.push_str(r#"exec bash -c "$@""#);
    } else {
        let mut tokens = String::from(r#""$(eval echo \"$0\")""#);
        for i in 1..=args {
            let _ = write!(tokens, r#" "$(eval echo \"${{{i}}}\")""#);
        }
        let _ = write!(script, r#"exec bash -c '{tokens}' "${{@:1}}""#);
    }
    script
}

/// Finds `program` in `path` (a `PATH` value) when it names no directory.
pub fn look_path(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs_err::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The command that replaces the launcher; `caller` is the launcher's own name, `$0` of the
/// profile scripts of a shell process.
pub fn command(
    launch: &Launch,
    env: &Env,
    scripts: &[PathBuf],
    caller: &str,
) -> Result<Command, Error> {
    command_with_shell(launch, env, scripts, caller, Path::new(SHELL))
}

fn command_with_shell(
    launch: &Launch,
    env: &Env,
    scripts: &[PathBuf],
    caller: &str,
    shell: &Path,
) -> Result<Command, Error> {
    let fail = |m: String| Error::new(exit::LAUNCH_ERROR, format!("failed to launch: {m}"));
    let mut command;
    if launch.direct {
        let [program, args @ ..] = launch.argv.as_slice() else {
            return Err(fail(format!(
                "no command provided for process type \"{}\"",
                launch.kind.as_deref().unwrap_or_default()
            )));
        };
        let found = look_path(program, env.get("PATH")).ok_or_else(|| {
            fail(format!(
                "path lookup: exec: \"{program}\": executable file not found in $PATH"
            ))
        })?;
        command = Command::new(found);
        command
            .arg0(program)
            .args(args)
            .current_dir(&launch.working_dir);
    } else {
        // The reference joins a command of several entries with spaces.
        let (shell_command, args) = match launch.argv.as_slice() {
            [] => (String::new(), &[][..]),
            [only] => (only.clone(), &[][..]),
            [first, rest @ ..] => (first.clone(), rest),
        };
        let script = bash_script(scripts, &launch.working_dir, args.len());
        command = Command::new(shell);
        command
            .arg0("bash")
            .arg("-c")
            .arg(script)
            .arg(caller)
            .arg(shell_command)
            .args(args)
            .current_dir(&launch.app_dir);
    }
    command.env_clear().envs(env.vars());
    Ok(command)
}

/// The failure of the exec that replaces the launcher, worded as the reference's (Go's errno
/// text).
pub fn exec_error(direct: bool, error: &std::io::Error) -> Error {
    let text = match error.raw_os_error() {
        Some(nix::libc::ENOENT) => "no such file or directory".to_string(),
        Some(nix::libc::EACCES) => "permission denied".to_string(),
        Some(nix::libc::ENOEXEC) => "exec format error".to_string(),
        Some(nix::libc::ENOTDIR) => "not a directory".to_string(),
        _ => error.to_string(),
    };
    let what = if direct { "direct exec" } else { "bash exec" };
    Error::new(
        exit::LAUNCH_ERROR,
        format!("failed to launch: {what}: {text}"),
    )
}

/// Runs the launcher: on success it never returns.
pub fn run(argv0: &str, user_args: &[String], environ: Vec<(String, String)>) -> Error {
    match prepare(argv0, user_args, environ) {
        Ok((mut command, direct)) => exec_error(direct, &command.exec()),
        Err(error) => error,
    }
}

/// The command that replaces the launcher, and whether it is direct.
fn prepare(
    argv0: &str,
    user_args: &[String],
    environ: Vec<(String, String)>,
) -> Result<(Command, bool), Error> {
    let vars: BTreeMap<String, String> = environ.iter().cloned().collect();
    api::platform_api(vars.get("CNB_PLATFORM_API").map(String::as_str))?;
    let dir = |name: &str, default: &str| {
        PathBuf::from(
            vars.get(name)
                .filter(|v| !v.is_empty())
                .map_or(default, String::as_str),
        )
    };
    let layers_dir = dir("CNB_LAYERS_DIR", "/layers");
    let app_dir = dir("CNB_APP_DIR", "/workspace");
    let metadata_path = layers_dir.join("config").join("metadata.toml");
    let metadata: BuildMetadata = files::read_toml(&metadata_path)
        .map_err(|e| Error::new(exit::LAUNCH_ERROR, format!("failed to read metadata: {e}")))?
        .unwrap_or_default();
    for bp in &metadata.buildpacks {
        api::buildpack_api(&bp.id, &bp.api)?;
    }
    if let Some(kind) = vars.get("CNB_PROCESS_TYPE").filter(|v| !v.is_empty()) {
        log::warn("CNB_PROCESS_TYPE is not supported in this Platform API");
        log::warn(&format!(
            "Run with ENTRYPOINT '/cnb/process/{kind}' to invoke the '{kind}' process type"
        ));
    }
    let default_type = process_type_of(argv0, &metadata);
    let launch = process_for(default_type.as_deref(), &metadata, user_args, &app_dir)?;
    let env = launch_env(environ, &layers_dir, &metadata, launch.kind.as_deref()).map_err(|e| {
        Error::new(
            exit::LAUNCH_ERROR,
            format!("failed to build the launch environment: {e}"),
        )
    })?;
    let scripts = if launch.direct {
        Vec::new()
    } else {
        profile_scripts(&layers_dir, &metadata, launch.kind.as_deref(), &app_dir).map_err(|e| {
            Error::new(
                exit::LAUNCH_ERROR,
                format!("failed to read profile scripts: {e}"),
            )
        })?
    };
    Ok((command(&launch, &env, &scripts, argv0)?, launch.direct))
}

/// The entry point of the `launcher` binary: runs the process, or returns the exit code of the
/// failure after printing it.
pub fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().map(|a: OsString| a.to_string_lossy().into_owned());
    let argv0 = args.next().unwrap_or_else(|| "launcher".into());
    let user_args: Vec<String> = args.collect();
    let environ: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let error = run(&argv0, &user_args, environ);
    log::error(&error.message);
    exit::code(error.code)
}

#[cfg(test)]
mod tests;
