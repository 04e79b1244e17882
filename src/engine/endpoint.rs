//! Which Docker Engine op talks to, found as the docker CLI finds it:
//!
//! 1. `DOCKER_HOST` (`unix://`, `tcp://`, `ssh://[user@]host[:port]`), with TLS when
//!    `DOCKER_TLS_VERIFY` is set (to anything but the empty string): `ca.pem`, `cert.pem` and
//!    `key.pem` from `DOCKER_CERT_PATH`, else the docker configuration directory
//!    (`DOCKER_CONFIG`, else `~/.docker`);
//! 2. else a docker context: `DOCKER_CONTEXT`, else `currentContext` of the docker
//!    configuration's `config.json` (what `docker context use` writes); its endpoint and TLS
//!    material come from the context store (`contexts/meta/<sha256 of the name>/meta.json`,
//!    `contexts/tls/<sha256 of the name>/docker/`);
//! 3. else `unix:///var/run/docker.sock` (the `default` context).

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::config::Env;
use crate::hint::Hint;

/// Where op finds the engine when nothing says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// An engine's address and how to speak to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// As `DOCKER_HOST` takes it.
    pub host: String,
    /// Client certificate, key and the CA that signed the engine's certificate.
    pub tls: Option<Tls>,
    /// What named it.
    pub source: Source,
}

/// TLS material, as the docker CLI lays it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What named the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `DOCKER_HOST`.
    DockerHost,
    /// A docker context, and what chose it (`DOCKER_CONTEXT` or `config.json`).
    Context { name: String, chosen_by: String },
    /// Nothing: the default socket.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::DockerHost => f.write_str("DOCKER_HOST"),
            Source::Context { name, chosen_by } => {
                write!(f, "docker context `{name}` (from {chosen_by})")
            }
            Source::Default => f.write_str("the default socket"),
        }
    }
}

/// Why no endpoint could be worked out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read the docker configuration `{}`", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The docker configuration `{}` is not valid JSON", path.display())]
    ConfigJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("Docker context `{name}` (from {chosen_by}) does not exist in `{}`", store.display())]
    UnknownContext {
        name: String,
        chosen_by: String,
        store: PathBuf,
    },
    #[error("Docker context `{name}` has no Docker endpoint in `{}`", path.display())]
    NoEndpoint { name: String, path: PathBuf },
    #[error("DOCKER_TLS_VERIFY is set, but `{}` is missing", path.display())]
    MissingTlsFile { path: PathBuf, from: &'static str },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Config { .. } | Error::ConfigJson { .. } => Some(
                "fix or remove the file, or point DOCKER_CONFIG at a directory with a valid config.json".into(),
            ),
            Error::UnknownContext { .. } => Some(
                "`docker context ls` lists the contexts; `docker context use default` goes back to the local engine"
                    .into(),
            ),
            Error::NoEndpoint { .. } => {
                Some("recreate it with `docker context create NAME --docker host=…`".into())
            }
            Error::MissingTlsFile { from, .. } => Some(format!(
                "put ca.pem, cert.pem and key.pem in the directory {from} names, or unset DOCKER_TLS_VERIFY for an engine without TLS"
            )),
        }
    }
}

/// The docker configuration directory: `DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(env: &Env) -> Option<PathBuf> {
    env.get("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".docker")))
}

/// Works out the engine op talks to from `env`.
pub fn resolve(env: &Env) -> Result<Endpoint, Error> {
    if let Some(host) = env.get("DOCKER_HOST") {
        let tls = if env.get("DOCKER_TLS_VERIFY").is_some() {
            let (dir, from) = match env.get("DOCKER_CERT_PATH") {
                Some(dir) => (PathBuf::from(dir), "DOCKER_CERT_PATH"),
                None => (
                    config_dir(env).unwrap_or_default(),
                    "DOCKER_CERT_PATH (unset: the docker configuration directory)",
                ),
            };
            Some(tls_in(&dir, from)?)
        } else {
            None
        };
        return Ok(Endpoint {
            host: host.to_string(),
            tls,
            source: Source::DockerHost,
        });
    }
    let config = config_dir(env);
    let (name, chosen_by) = match env.get("DOCKER_CONTEXT") {
        Some(name) => (name.to_string(), "DOCKER_CONTEXT".to_string()),
        None => match config
            .as_deref()
            .map(current_context)
            .transpose()?
            .flatten()
        {
            Some((name, path)) => (name, format!("`{}`", path.display())),
            None => return Ok(default_endpoint()),
        },
    };
    if name == "default" {
        return Ok(default_endpoint());
    }
    let config = config.unwrap_or_default();
    context_endpoint(&config, name, chosen_by)
}

fn default_endpoint() -> Endpoint {
    Endpoint {
        host: DEFAULT_HOST.to_string(),
        tls: None,
        source: Source::Default,
    }
}

/// `currentContext` of `<dir>/config.json`, with the file's path.
fn current_context(dir: &Path) -> Result<Option<(String, PathBuf)>, Error> {
    let path = dir.join("config.json");
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Config { path, source }),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
            path: path.clone(),
            source,
        })?;
    Ok(json
        .get("currentContext")
        .and_then(serde_json::Value::as_str)
        .filter(|name| !name.is_empty())
        .map(|name| (name.to_string(), path)))
}

/// The endpoint of context `name` in the context store under `config`.
fn context_endpoint(config: &Path, name: String, chosen_by: String) -> Result<Endpoint, Error> {
    let id = format!("{:x}", Sha256::digest(name.as_bytes()));
    let store = config.join("contexts");
    let meta = store.join("meta").join(&id).join("meta.json");
    let text = match fs_err::read_to_string(&meta) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::UnknownContext {
                name,
                chosen_by,
                store,
            });
        }
        Err(source) => return Err(Error::Config { path: meta, source }),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| Error::ConfigJson {
            path: meta.clone(),
            source,
        })?;
    let Some(host) = json
        .pointer("/Endpoints/docker/Host")
        .and_then(serde_json::Value::as_str)
        .filter(|h| !h.is_empty())
    else {
        return Err(Error::NoEndpoint { name, path: meta });
    };
    let tls_dir = store.join("tls").join(&id).join("docker");
    let tls = tls_dir
        .join("ca.pem")
        .is_file()
        .then(|| tls_in(&tls_dir, "the context's TLS directory"))
        .transpose()?;
    Ok(Endpoint {
        host: host.to_string(),
        tls,
        source: Source::Context { name, chosen_by },
    })
}

fn tls_in(dir: &Path, from: &'static str) -> Result<Tls, Error> {
    let tls = Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for path in [&tls.ca, &tls.cert, &tls.key] {
        if !path.is_file() {
            return Err(Error::MissingTlsFile {
                path: path.clone(),
                from,
            });
        }
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    /// Writes a context as `docker context create NAME --docker host=HOST` does.
    fn write_context(config: &Path, name: &str, host: &str, tls: bool) {
        let id = format!("{:x}", Sha256::digest(name.as_bytes()));
        let meta = config.join("contexts/meta").join(&id);
        fs_err::create_dir_all(&meta).unwrap();
        fs_err::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
            ),
        )
        .unwrap();
        if tls {
            let dir = config.join("contexts/tls").join(&id).join("docker");
            fs_err::create_dir_all(&dir).unwrap();
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                fs_err::write(dir.join(file), "pem").unwrap();
            }
        }
    }

    #[test]
    fn nothing_set_is_the_default_socket() {
        let home = tempfile::tempdir().unwrap();
        let endpoint = resolve(&env(&[("HOME", home.path().to_str().unwrap())])).unwrap();
        assert_eq!(endpoint, default_endpoint());
    }

    #[test]
    fn docker_host_wins_over_every_context() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join(".docker");
        write_context(&config, "remote", "tcp://10.0.0.1:2376", false);
        fs_err::write(config.join("config.json"), r#"{"currentContext":"remote"}"#).unwrap();
        let endpoint = resolve(&env(&[
            ("HOME", home.path().to_str().unwrap()),
            ("DOCKER_CONTEXT", "remote"),
            ("DOCKER_HOST", "unix:///run/other.sock"),
        ]))
        .unwrap();
        assert_eq!(endpoint.host, "unix:///run/other.sock");
        assert_eq!(endpoint.source, Source::DockerHost);
    }

    #[test]
    fn tls_verify_takes_the_certificates_of_docker_cert_path_or_the_config_directory() {
        let certs = tempfile::tempdir().unwrap();
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            fs_err::write(certs.path().join(file), "pem").unwrap();
        }
        let dir = certs.path().to_str().unwrap();
        let endpoint = resolve(&env(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", dir),
        ]))
        .unwrap();
        assert_eq!(endpoint.tls.unwrap().cert, certs.path().join("cert.pem"));
        let by_config = resolve(&env(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CONFIG", dir),
        ]))
        .unwrap();
        assert_eq!(by_config.tls.unwrap().ca, certs.path().join("ca.pem"));
        let plain = resolve(&env(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:2375"),
            ("DOCKER_TLS_VERIFY", ""),
        ]))
        .unwrap();
        assert_eq!(plain.tls, None, "an empty DOCKER_TLS_VERIFY is unset");
    }

    #[test]
    fn a_missing_certificate_is_named() {
        let certs = tempfile::tempdir().unwrap();
        fs_err::write(certs.path().join("ca.pem"), "pem").unwrap();
        let err = resolve(&env(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", certs.path().to_str().unwrap()),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains(&certs.path().join("cert.pem").display().to_string()),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("DOCKER_CERT_PATH"));
    }

    #[test]
    fn the_current_context_of_config_json_and_docker_context_are_read_from_the_store() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join(".docker");
        write_context(&config, "remote", "tcp://10.0.0.1:2376", true);
        write_context(&config, "other", "ssh://op@10.0.0.2", false);
        fs_err::write(config.join("config.json"), r#"{"currentContext":"remote"}"#).unwrap();
        let h = home.path().to_str().unwrap();
        let current = resolve(&env(&[("HOME", h)])).unwrap();
        assert_eq!(current.host, "tcp://10.0.0.1:2376");
        assert!(current.tls.is_some(), "the context's TLS material is used");
        assert!(current.source.to_string().contains("config.json"));
        let chosen = resolve(&env(&[("HOME", h), ("DOCKER_CONTEXT", "other")])).unwrap();
        assert_eq!(chosen.host, "ssh://op@10.0.0.2");
        assert_eq!(chosen.tls, None);
        let default = resolve(&env(&[("HOME", h), ("DOCKER_CONTEXT", "default")])).unwrap();
        assert_eq!(default.host, DEFAULT_HOST);
    }

    #[test]
    fn an_unknown_context_is_a_clear_error() {
        let home = tempfile::tempdir().unwrap();
        let err = resolve(&env(&[
            ("HOME", home.path().to_str().unwrap()),
            ("DOCKER_CONTEXT", "nowhere"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Docker context `nowhere` (from DOCKER_CONTEXT) does not exist"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("docker context ls"));
    }
}
