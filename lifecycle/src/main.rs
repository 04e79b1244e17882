//! The `lifecycle` multi-call binary: `creator` (also `lifecycle creator`) and `launcher`, chosen
//! by the name it runs as, like the reference lifecycle's symlinks in `/cnb/lifecycle`.

use std::path::Path;
use std::process::ExitCode;

use op_lifecycle::exit::{self, Error};
use op_lifecycle::{creator, launcher, log};

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
        "creator" => finish(creator::run(rest, environ)),
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
