//! Which port an application listens on, guessed from the files in its context, in the order
//! upstream op (Go) checks them:
//!
//! 1. `Procfile`: the `web:` process (else the first process) with `${PORT:-N}` or
//!    `--port N` / `-p N`; a Procfile without a port goes on to the next steps;
//! 2. `project.toml`: the buildpacks default, 8080;
//! 3. `Dockerfile`: the first `EXPOSE N`;
//! 4. `nginx.conf`: the first `listen N;`;
//! 5. otherwise 8080.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

/// The port buildpacks apps listen on unless told otherwise (`PORT`).
pub const DEFAULT_PORT: u16 = 8080;

static PORT_DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{PORT:-\s*(\d+)\}").expect("the Procfile port pattern is valid")
});
static PORT_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:--port|-p)\s+(\d+)").expect("the Procfile flag pattern is valid")
});
static EXPOSE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)EXPOSE\s+(\d+)").expect("the EXPOSE pattern is valid"));
static LISTEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"listen\s+(\d+)\s*;").expect("the nginx listen pattern is valid"));

/// The file a port was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Procfile,
    ProjectDescriptor,
    Dockerfile,
    NginxConf,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Procfile => "from Procfile",
            Source::ProjectDescriptor => "buildpacks default, project.toml",
            Source::Dockerfile => "from Dockerfile EXPOSE",
            Source::NginxConf => "from nginx.conf",
            Source::Default => "default",
        })
    }
}

/// The container port of an application, and where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inferred {
    pub port: u16,
    pub source: Source,
}

/// Guesses the port of the application in `dir`.
pub fn infer(dir: &Path) -> io::Result<Inferred> {
    let found = |port, source| Ok(Inferred { port, source });
    if let Some(text) = read(&dir.join("Procfile"))?
        && let Some(port) = procfile_port(&text)
    {
        return found(port, Source::Procfile);
    }
    if dir.join("project.toml").is_file() {
        return found(DEFAULT_PORT, Source::ProjectDescriptor);
    }
    if let Some(port) = read(&dir.join("Dockerfile"))?
        .as_deref()
        .and_then(|t| first_port(&EXPOSE, t))
    {
        return found(port, Source::Dockerfile);
    }
    if let Some(port) = read(&dir.join("nginx.conf"))?
        .as_deref()
        .and_then(|t| first_port(&LISTEN, t))
    {
        return found(port, Source::NginxConf);
    }
    found(DEFAULT_PORT, Source::Default)
}

/// The port of the `web` process (else the first process) of a Procfile.
fn procfile_port(text: &str) -> Option<u16> {
    let processes: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && l.contains(':'))
        .collect();
    let web = processes
        .iter()
        .find(|l| {
            l.split(':')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("web"))
        })
        .or(processes.first())?;
    first_port(&PORT_DEFAULT, web).or_else(|| first_port(&PORT_FLAG, web))
}

fn first_port(pattern: &Regex, text: &str) -> Option<u16> {
    pattern
        .captures_iter(text)
        .find_map(|c| c[1].parse::<u16>().ok().filter(|p| *p > 0))
}

fn read(path: &Path) -> io::Result<Option<String>> {
    match fs_err::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::IsADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer_files(files: &[(&str, &str)]) -> Inferred {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs_err::write(dir.path().join(name), text).unwrap();
        }
        infer(dir.path()).unwrap()
    }

    /// Files of a context, and the port and source expected from them.
    type Case = (&'static [(&'static str, &'static str)], u16, Source);

    #[test]
    fn follows_upstreams_order() {
        let cases: &[Case] = &[
            (
                &[("Procfile", "web: node app --port ${PORT:-3000}\n")],
                3000,
                Source::Procfile,
            ),
            (
                &[("Procfile", "web: serve --port 4000\n")],
                4000,
                Source::Procfile,
            ),
            (
                &[("Procfile", "web: serve -p 4100\n")],
                4100,
                Source::Procfile,
            ),
            (
                &[("Procfile", "# c\nworker: run --port 5555\n")],
                5555,
                Source::Procfile,
            ),
            (
                &[(
                    "Procfile",
                    "worker: w --port 1111\nWEB: uvicorn app --port ${PORT:-8081}\n",
                )],
                8081,
                Source::Procfile,
            ),
            (
                &[
                    ("Procfile", "web: node server.js\n"),
                    ("Dockerfile", "EXPOSE 9000\n"),
                ],
                9000,
                Source::Dockerfile,
            ),
            (
                &[("Procfile", "web: node server.js\n"), ("project.toml", "")],
                8080,
                Source::ProjectDescriptor,
            ),
            (
                &[("project.toml", ""), ("Dockerfile", "EXPOSE 9000\n")],
                8080,
                Source::ProjectDescriptor,
            ),
            (
                &[("Dockerfile", "FROM x\nexpose 9090\nEXPOSE 1\n")],
                9090,
                Source::Dockerfile,
            ),
            (
                &[
                    ("Dockerfile", "FROM x\n"),
                    ("nginx.conf", "server { listen 8888; }\n"),
                ],
                8888,
                Source::NginxConf,
            ),
            (&[("nginx.conf", "listen  80 ;")], 80, Source::NginxConf),
            (&[], 8080, Source::Default),
            (
                &[("Procfile", "web: x --port 99999\n")],
                8080,
                Source::Default,
            ),
        ];
        for (files, port, source) in cases {
            assert_eq!(
                infer_files(files),
                Inferred {
                    port: *port,
                    source: *source
                },
                "{files:?}"
            );
        }
    }

    #[test]
    fn a_missing_directory_gives_the_default() {
        assert_eq!(
            infer(Path::new("/nonexistent/dir")).unwrap().port,
            DEFAULT_PORT
        );
    }
}
