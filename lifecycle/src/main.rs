//! The `lifecycle` multi-call binary: `creator` (also `lifecycle creator`) and `launcher`, chosen
//! by the name it runs as, like the reference lifecycle's symlinks in `/cnb/lifecycle`.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::ExitCode;

use op_lifecycle::exit::{self, Error};
use op_lifecycle::{creator, launcher, log};
use op_oci as oci;

/// The phases of the reference lifecycle that op-lifecycle does not provide separately.
const SEPARATE_PHASES: [&str; 7] = [
    "detector", "analyzer", "restorer", "builder", "exporter", "rebaser", "extender",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (phase, rest) = if name == "lifecycle" {
        match args.get(1).map(String::as_str) {
            Some("-version" | "--version" | "version") => {
                return finish(Err(Error::new(0, op_lifecycle::VERSION)));
            }
            Some(phase) => (phase.to_string(), &args[2..]),
            None => return finish(Err(Error::new(exit::USAGE, usage()))),
        }
    } else {
        (name, args.get(1..).unwrap_or_default())
    };
    let environ: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    match phase.as_str() {
        "creator" => {
            if let Err(error) = ensure_ca_roots(&args) {
                return finish(Err(error));
            }
            finish(creator::run(rest, environ))
        }
        p if SEPARATE_PHASES.contains(&p) => finish(Err(Error::new(
            exit::FAILED,
            format!(
                "the {p} phase is not provided on its own by op-lifecycle: \
                 run /cnb/lifecycle/creator, which runs every phase"
            ),
        ))),
        // `launcher`, and the `/cnb/process/<type>` symlinks to it.
        _ => launcher::main(),
    }
}

/// The creator talks to registries, and its registry client needs CA certificates even for
/// plain-HTTP registries. In an image that has none (a busybox one), it runs itself again with
/// `SSL_CERT_FILE` naming the Mozilla roots op-lifecycle carries.
fn ensure_ca_roots(args: &[String]) -> Result<(), Error> {
    if oci::has_system_roots() || std::env::var_os(oci::SSL_CERT_FILE).is_some() {
        return Ok(());
    }
    let roots = oci::write_builtin_roots().map_err(|e| {
        Error::new(
            exit::FAILED,
            format!("this image has no CA certificates, and writing op-lifecycle's failed: {e}"),
        )
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        Error::new(
            exit::FAILED,
            format!("failed to find the lifecycle executable: {e}"),
        )
    })?;
    let mut command = std::process::Command::new(exe);
    command.args(&args[1..]).env(oci::SSL_CERT_FILE, &roots);
    if let Some(argv0) = args.first() {
        command.arg0(argv0);
    }
    let error = command.exec();
    Err(Error::new(
        exit::FAILED,
        format!("failed to run the lifecycle again with CA certificates: {error}"),
    ))
}

fn usage() -> String {
    format!(
        "usage: lifecycle creator [flags] <image>\n       lifecycle -version\n\
         (the {} phases are not provided on their own)",
        SEPARATE_PHASES.join(", ")
    )
}

fn finish(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.code == 0 => {
            log::info(&error.message);
            ExitCode::SUCCESS
        }
        Err(error) => {
            log::error(&error.message);
            exit::code(error.code)
        }
    }
}
