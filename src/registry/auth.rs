//! Registry credentials, found as go-containerregistry's default keychain finds them (pack and
//! the reference lifecycle use it; the docker CLI agrees on everything but podman's files):
//!
//! 1. the Docker configuration: `$DOCKER_CONFIG_CONTENT` (its JSON text, as the octopilot
//!    action passes it to op's container), else `$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`; without one, podman's: `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`,
//!    else `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`;
//! 2. for each registry, under its key (its host, `https://index.docker.io/v1/` for Docker Hub):
//!    its `credHelpers` entry, else the `credsStore`, both run as `docker-credential-<name> get`
//!    (the key on stdin, `{"Username","Secret"}` on stdout); else its `auths` entry (`auth`,
//!    `username`/`password`, `identitytoken`, `registrytoken`), whose key may carry a scheme and
//!    a path;
//! 3. else anonymous.
//!
//! Only `docker.io` is another name of `index.docker.io` (go-containerregistry's rule): a
//! reference that names `registry-1.docker.io` is another registry to the keychain and to
//! `CNB_REGISTRY_AUTH`. Secrets never reach a log, an error or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::config::Env;
use crate::engine::PullAuth;
use crate::hint::Hint;

/// The key of Docker Hub in the Docker configuration.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// What failed while looking for credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read the Docker configuration `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The Docker configuration `{}` is not valid JSON: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("Credential helper `docker-credential-{helper}` failed for `{host}`: {message}")]
    Helper {
        helper: String,
        host: String,
        message: String,
    },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Invalid { path, .. } if path.as_os_str() == format!("${CONFIG_CONTENT}").as_str() => {
                Some(format!(
                    "{CONFIG_CONTENT} must hold a Docker configuration (the JSON of a config.json): fix it, or unset it to read DOCKER_CONFIG's file"
                ))
            }
            Error::Read { .. } | Error::Invalid { .. } => Some(
                "fix or remove the file, or point DOCKER_CONFIG at a directory with a valid config.json".into(),
            ),
            Error::Helper { helper, .. } => Some(format!(
                "check that `docker-credential-{helper}` is on PATH and logged in, or remove it from the Docker configuration"
            )),
        }
    }
}

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// A registry token (`registrytoken`), sent as a bearer token.
    Bearer(String),
    /// An identity (refresh) token, exchanged for a bearer token by the client.
    Identity(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credential::Identity(_) => f.write_str("Identity(<redacted>)"),
        }
    }
}

impl Credential {
    /// The value of `CNB_REGISTRY_AUTH` for it (the lifecycle's convention).
    fn header(&self) -> String {
        match self {
            Credential::Basic { username, password } => {
                let pair = format!("{username}:{password}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
            Credential::Bearer(token) => format!("Bearer {token}"),
            Credential::Identity(token) => format!("X-Identity {token}"),
        }
    }
}

/// The credentials of the registries of one command, by `CNB_REGISTRY_AUTH` key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    entries: BTreeMap<String, Credential>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

/// The key of `host` in `CNB_REGISTRY_AUTH`: its name as go-containerregistry's `RegistryStr`
/// gives it, which is what the lifecycle looks credentials up by.
pub fn cnb_key(host: &str) -> String {
    match host {
        "docker.io" => "index.docker.io".into(),
        other => other.to_string(),
    }
}

/// The key the Docker configuration and credential helpers know `host` by (also the server
/// address the Docker Engine takes with credentials).
pub fn server_address(host: &str) -> String {
    if cnb_key(host) == "index.docker.io" {
        DOCKER_HUB_SERVER.to_string()
    } else {
        host.to_string()
    }
}

/// `host` of a configuration key, which may carry a scheme and a path.
fn hostname_of(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    username: String,
    secret: String,
}

/// The variable whose value is the Docker configuration itself (its JSON text).
pub const CONFIG_CONTENT: &str = "DOCKER_CONFIG_CONTENT";

/// The Docker configuration op reads, if there is one: its text and where it comes from.
fn config_text(env: &Env) -> Result<Option<(String, PathBuf)>, Error> {
    if let Some(content) = env.get(CONFIG_CONTENT) {
        return Ok(Some((
            content.to_string(),
            PathBuf::from(format!("${CONFIG_CONTENT}")),
        )));
    }
    let Some(path) = config_path(env) else {
        return Ok(None);
    };
    let text = fs_err::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    Ok(Some((text, path)))
}

/// The Docker configuration file op reads, if there is one.
fn config_path(env: &Env) -> Option<PathBuf> {
    let home = env.get("HOME").map(PathBuf::from);
    let docker = match env.get("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => home.as_ref().map(|h| h.join(".docker").join("config.json")),
    };
    let podman_runtime = env
        .get("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("containers").join("auth.json"));
    let podman_config = env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".config")))
        .map(|d| d.join("containers").join("auth.json"));
    [
        docker,
        env.get("REGISTRY_AUTH_FILE").map(PathBuf::from),
        podman_runtime,
        podman_config,
    ]
    .into_iter()
    .flatten()
    .find(|path| path.is_file())
}

fn parse_config(text: &str, path: &Path) -> Result<DockerConfig, Error> {
    serde_json::from_str(text).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Credentials {
    /// The credentials of `hosts` (registry hosts), from the Docker configuration of `env`.
    /// Hosts without one are left out (anonymous).
    pub fn resolve(env: &Env, hosts: &[String]) -> Result<Self, Error> {
        let Some((text, path)) = config_text(env)? else {
            return Ok(Self::default());
        };
        let config = parse_config(&text, &path)?;
        let mut entries = BTreeMap::new();
        for host in hosts {
            let key = cnb_key(host);
            if entries.contains_key(&key) {
                continue;
            }
            let credential = match config
                .cred_helpers
                .get(&server_address(host))
                .or(config.creds_store.as_ref())
            {
                Some(helper) => run_helper(env, helper, host)?,
                None => from_auths(&config, host),
            };
            if let Some(credential) = credential {
                tracing::debug!(host, credential = ?credential, "registry credential found");
                entries.insert(key, credential);
            }
        }
        Ok(Self { entries })
    }

    /// Credentials from explicit entries (for tests and other callers that have them).
    pub fn from_entries(entries: impl IntoIterator<Item = (String, Credential)>) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|(host, c)| (cnb_key(&host), c))
                .collect(),
        }
    }

    /// The credentials of `hosts` only: a build's creator gets those of its own registries.
    #[must_use]
    pub fn only(&self, hosts: &[String]) -> Self {
        let keys: Vec<String> = hosts.iter().map(|h| cnb_key(h)).collect();
        Self {
            entries: self
                .entries
                .iter()
                .filter(|(k, _)| keys.contains(k))
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds the credentials of `other` (resolved for more registries).
    pub fn extend(&mut self, other: Self) {
        self.entries.extend(other.entries);
    }

    /// The credential of registry `host`, if it has one.
    pub fn get(&self, host: &str) -> Option<&Credential> {
        self.entries.get(&cnb_key(host))
    }

    /// The engine's form of the credential of `host` (to pull from it), if it has one.
    pub fn pull_auth(&self, host: &str) -> Option<PullAuth> {
        let server = server_address(host);
        Some(match self.get(host)? {
            Credential::Basic { username, password } => PullAuth {
                server,
                username: Some(username.clone()),
                password: Some(password.clone()),
                ..PullAuth::default()
            },
            Credential::Bearer(token) => PullAuth {
                server,
                registry_token: Some(token.clone()),
                ..PullAuth::default()
            },
            Credential::Identity(token) => PullAuth {
                server,
                identity_token: Some(token.clone()),
                ..PullAuth::default()
            },
        })
    }

    /// A Docker configuration (`.dockerconfigjson` of a Kubernetes pull Secret) with the
    /// credential of `host`, for a kubelet to pull from it; `None` when it has none, or a token
    /// (a kubelet's pull Secret takes a user name and password only). It holds secrets: never
    /// print it.
    pub fn docker_config_json(&self, host: &str) -> Option<String> {
        let Credential::Basic { username, password } = self.get(host)? else {
            return None;
        };
        let entry = serde_json::json!({
            "username": username,
            "password": password,
            "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
        });
        let config = serde_json::json!({ "auths": { server_address(host): entry } });
        Some(config.to_string())
    }

    /// The hosts that have a credential.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// `CNB_REGISTRY_AUTH`: `{"<registry>": "Basic …" | "Bearer …" | "X-Identity …"}`; `None`
    /// when every registry is anonymous. It holds secrets: never print it.
    pub fn cnb_registry_auth(&self) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        let map: BTreeMap<&str, String> = self
            .entries
            .iter()
            .map(|(k, c)| (k.as_str(), c.header()))
            .collect();
        serde_json::to_string(&map).ok()
    }
}

fn from_auths(config: &DockerConfig, host: &str) -> Option<Credential> {
    let server = server_address(host);
    let entry = config
        .auths
        .get(&server)
        .or_else(|| config.auths.get(host))
        .or_else(|| {
            config
                .auths
                .iter()
                .find(|(key, _)| hostname_of(key) == hostname_of(&server))
                .map(|(_, e)| e)
        })?;
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Some(Credential::Identity(token.clone()));
    }
    if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Some(Credential::Bearer(token.clone()));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        return Some(Credential::Basic {
            username: username.into(),
            password: password.into(),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => Some(Credential::Basic {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => None,
    }
}

/// Finds `docker-credential-<helper>` on the `PATH` of `env`.
fn helper_path(env: &Env, helper: &str) -> Option<PathBuf> {
    let name = format!("docker-credential-{helper}");
    std::env::split_paths(env.get("PATH")?)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
}

/// Runs `docker-credential-<helper> get` for `host`.
fn run_helper(env: &Env, helper: &str, host: &str) -> Result<Option<Credential>, Error> {
    let fail = |message: String| Error::Helper {
        helper: helper.to_string(),
        host: host.to_string(),
        message,
    };
    let program = helper_path(env, helper).ok_or_else(|| fail("it is not on PATH".into()))?;
    let mut child = Command::new(&program)
        .arg("get")
        .env_clear()
        .envs(env.iter())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("it does not run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that fails without reading what it was asked closes its input first: its
        // exit status and its message say why, not the broken pipe.
        match stdin.write_all(server_address(host).as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(fail(e.to_string()));
            }
            _ => {}
        }
    }
    let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // The helper protocol's "not found" is no credential, not an error (the docker CLI's
        // test: that message alone).
        if stdout.trim() == "credentials not found in native keychain" {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = if stdout.trim().is_empty() {
            stderr.trim().to_string()
        } else {
            stdout.trim().to_string()
        };
        return Err(fail(format!("{} ({detail})", output.status)));
    }
    let parsed: HelperOutput = serde_json::from_str(&stdout)
        .map_err(|e| fail(format!("its output is not the helper protocol's JSON: {e}")))?;
    Ok(match parsed.username.as_str() {
        "<token>" => Some(Credential::Identity(parsed.secret)),
        "" if parsed.secret.is_empty() => None,
        _ => Some(Credential::Basic {
            username: parsed.username,
            password: parsed.secret,
        }),
    })
}

#[cfg(test)]
mod tests;
