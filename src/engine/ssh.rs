//! Engines at `ssh://[user@]host[:port]`, reached as the docker CLI reaches them: for every
//! connection the system's `ssh` runs `docker system dial-stdio` on the remote host, whose
//! standard input and output carry the Engine API. op listens on a socket in a private
//! temporary directory and hands bollard that socket, so the rest of op talks to a unix socket.
//!
//! `ssh` runs with `BatchMode=yes`: it never prompts, so an unknown host key, a key the remote
//! user does not accept or a refused connection end the connection, and what `ssh` said on its
//! standard error is kept for the error op reports. The user's own ssh configuration (keys,
//! agent, `~/.ssh/config`, `known_hosts`) applies, as for the docker CLI.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};

/// Where `ssh://[user@]host[:port]` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) user: Option<String>,
    pub(super) host: String,
    pub(super) port: Option<u16>,
}

impl Target {
    /// Parses `ssh://[user@]host[:port]`; `None` when `address` is not one.
    pub(super) fn parse(address: &str) -> Option<Self> {
        let rest = address.strip_prefix("ssh://")?.trim_end_matches('/');
        let (user, host_port) = match rest.rsplit_once('@') {
            Some((user, rest)) => (Some(user.to_string()), rest),
            None => (None, rest),
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            (host.to_string(), port)
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host.to_string(), Some(port.parse().ok()?)),
                None => (host_port.to_string(), None),
            }
        };
        if host.is_empty() || host.contains('/') || user.as_deref() == Some("") {
            return None;
        }
        Some(Self { user, host, port })
    }

    /// The arguments of `ssh` that run `docker system dial-stdio` there (the docker CLI's, plus
    /// `BatchMode`).
    fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"]
            .map(String::from)
            .to_vec();
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(String::from));
        args
    }
}

/// A listening socket whose every connection is a `docker system dial-stdio` over `ssh`. It stops
/// listening, and its directory goes, when dropped.
#[derive(Debug)]
pub(super) struct Tunnel {
    dir: tempfile::TempDir,
    last_error: Arc<Mutex<Option<String>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Tunnel {
    /// Starts listening (on the current tokio runtime).
    pub(super) fn open(target: &Target) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("op-ssh-").tempdir()?;
        let listener = UnixListener::bind(dir.path().join("docker.sock"))?;
        let last_error = Arc::new(Mutex::new(None));
        let args = target.ssh_args();
        let errors = Arc::clone(&last_error);
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(carry(stream, args.clone(), Arc::clone(&errors)));
            }
        });
        Ok(Self {
            dir,
            last_error,
            accepting,
        })
    }

    /// The socket, as `DOCKER_HOST` takes it.
    pub(super) fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// What `ssh` said when a connection last failed, waiting up to `wait` for it (a connection
    /// can be seen to close before `ssh` has finished saying why).
    pub(super) async fn last_error(&self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(message) = self.last_error.lock().ok().and_then(|m| m.clone()) {
                return Some(message);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Carries one connection over a fresh `ssh … docker system dial-stdio`.
async fn carry(stream: UnixStream, args: Vec<String>, last_error: Arc<Mutex<Option<String>>>) {
    let record = |message: String| {
        if let Ok(mut slot) = last_error.lock() {
            *slot = Some(message);
        }
    };
    let spawned = tokio::process::Command::new("ssh")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            record(format!("could not run `ssh`: {e}"));
            return;
        }
    };
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    let said = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let (mut from_client, mut to_client) = stream.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
        drop(stdin);
    };
    let down = async {
        let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    // The remote end closing ends the connection; the client closing closes ssh's input, after
    // which dial-stdio ends and so does the remote end.
    tokio::select! {
        () = down => {}
        () = async { up.await; std::future::pending::<()>().await } => {}
    }
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    if status.is_err() {
        // ssh outlived its connection: stop it, so that its standard error ends too.
        let _ = child.start_kill();
    }
    let said = said.await.unwrap_or_default();
    let failed = !matches!(status, Ok(Ok(s)) if s.success());
    let said = said.trim();
    if failed && !said.is_empty() {
        record(said.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_the_docker_cli_takes_them() {
        assert_eq!(
            Target::parse("ssh://op@build-1:2222"),
            Some(Target {
                user: Some("op".into()),
                host: "build-1".into(),
                port: Some(2222)
            })
        );
        assert_eq!(
            Target::parse("ssh://build-1"),
            Some(Target {
                user: None,
                host: "build-1".into(),
                port: None
            })
        );
        assert_eq!(
            Target::parse("ssh://root@[::1]:22"),
            Some(Target {
                user: Some("root".into()),
                host: "::1".into(),
                port: Some(22)
            })
        );
        for bad in [
            "ssh://",
            "ssh://op@",
            "ssh://host:port",
            "ssh://@host",
            "tcp://host",
        ] {
            assert_eq!(Target::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ssh_never_prompts_and_runs_dial_stdio() {
        let args = Target::parse("ssh://op@build-1:2222").unwrap().ssh_args();
        assert_eq!(
            args.join(" "),
            "-o BatchMode=yes -o ConnectTimeout=30 -T -l op -p 2222 -- build-1 docker system dial-stdio"
        );
    }
}
