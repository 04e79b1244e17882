//! A real CNCF distribution registry (`docker-registry` from Debian, the code `registry:2`
//! runs) on a free loopback port: one process per test, stopped when the test ends.
//!
//! A test that needs a registry fails, loudly, when `docker-registry` is not installed
//! (`scripts/dev-env` installs it); it never skips.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry.
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// What a test registry asks of its clients.
#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Open,
    Auth,
    ReadOnly,
    /// HTTPS with `cert` and `key`, and the token flow: tokens from `realm`, signed by the key
    /// whose certificate is `bundle`.
    Secure {
        cert: PathBuf,
        key: PathBuf,
        realm: String,
        bundle: PathBuf,
    },
}

/// The account of registries started with [`Registry::start_with_auth`].
pub const TEST_USER: &str = "op";
pub const TEST_PASSWORD: &str = "op-test-password";
/// The bcrypt hash of [`TEST_PASSWORD`] (cost 4), for the registry's htpasswd file.
const TEST_PASSWORD_BCRYPT: &str = "$2b$04$F5YcjFGSMjWsD1.DndNzCuuFQR4/NJRuNMJuAilHKC/.X/vmQWCSi";

impl Registry {
    /// Starts a registry and waits until it answers `GET /v2/`.
    pub fn start() -> Self {
        Self::start_with(&Kind::Open)
    }

    /// Starts a registry that wants HTTP basic credentials: [`TEST_USER`], [`TEST_PASSWORD`].
    pub fn start_with_auth() -> Self {
        Self::start_with(&Kind::Auth)
    }

    /// Starts a registry in read-only maintenance mode: it serves, and refuses every write.
    pub fn start_read_only() -> Self {
        Self::start_with(&Kind::ReadOnly)
    }

    /// Starts a registry as production has them: HTTPS with a certificate of the test's CA
    /// (`server`), and the token flow, its tokens issued by `issuer` and signed with `key`
    /// (`super::token`).
    pub fn start_secure(
        server: &super::tls::ServerCert,
        issuer: &super::token::TokenServer,
        key: &super::tls::SigningKey,
    ) -> Self {
        Self::start_with(&Kind::Secure {
            cert: server.cert.clone(),
            key: server.key.clone(),
            realm: issuer.realm(),
            bundle: key.cert(),
        })
    }

    fn start_with(kind: &Kind) -> Self {
        let binary = which("docker-registry").unwrap_or_else(|| {
            panic!(
                "`docker-registry` is not installed, and this test needs a real registry. \
                 Run `scripts/dev-env` as root (it installs Debian's docker-registry), or `scripts/test`."
            )
        });
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("op-test-registry-")
                .tempdir()
                .expect("a temporary directory");
            let addr = free_port();
            let config = dir.path().join("config.yml");
            let data = dir.path().join("data");
            let maintenance = if *kind == Kind::ReadOnly {
                "  maintenance:\n    readonly:\n      enabled: true\n"
            } else {
                ""
            };
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{maintenance}http:\n  addr: {addr}\n",
                data.display()
            );
            if let Kind::Secure {
                cert,
                key,
                realm,
                bundle,
            } = kind
            {
                let _ = write!(
                    yaml,
                    "  tls:\n    certificate: {}\n    key: {}\nauth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    cert.display(),
                    key.display(),
                    super::token::SERVICE,
                    super::token::ISSUER,
                    bundle.display()
                );
            }
            if *kind == Kind::Auth {
                let htpasswd = dir.path().join("htpasswd");
                fs_err::write(&htpasswd, format!("{TEST_USER}:{TEST_PASSWORD_BCRYPT}\n"))
                    .expect("the htpasswd file is written");
                let _ = write!(
                    yaml,
                    "auth:\n  htpasswd:\n    realm: op-test\n    path: {}\n",
                    htpasswd.display()
                );
            }
            fs_err::write(&config, yaml).expect("the registry configuration is written");
            let log = dir.path().join("registry.log");
            let log_file = fs_err::File::create(&log).expect("the registry log is created");
            let child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(
                    log_file
                        .try_clone()
                        .expect("the log can be shared")
                        .into_parts()
                        .0,
                )
                .stderr(log_file.into_parts().0)
                .spawn()
                .expect("docker-registry starts");
            let mut registry = Self {
                child,
                addr,
                log,
                _dir: dir,
            };
            match registry.wait_ready(Duration::from_secs(15)) {
                Ok(()) => return registry,
                Err(log) => last_log = log,
            }
        }
        panic!(
            "docker-registry did not come up on a loopback port (3 attempts); its last log:\n{last_log}"
        );
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// `GET path` over plain HTTP: the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
            .unwrap_or_else(|e| panic!("GET {path} from the registry failed: {e}\n{}", self.log()))
    }

    /// `method path` over plain HTTP (no body): the status code and the body.
    pub fn request(&self, method: &str, path: &str) -> (u16, String) {
        http_request(self.addr, method, path).unwrap_or_else(|e| {
            panic!(
                "{method} {path} to the registry failed: {e}\n{}",
                self.log()
            )
        })
    }

    /// Stops the registry at once, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        fs_err::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its log once it has stopped growing (the registry notes a request after answering it).
    pub fn settled_log(&self) -> String {
        let mut log = self.log();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let again = self.log();
            if again.len() == log.len() {
                return again;
            }
            log = again;
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            // 401: a registry that wants credentials answers too; 400: one that speaks HTTPS
            // only (Go's answer to plain HTTP on a TLS port).
            if let Ok((200 | 400 | 401, _)) = http_get(self.addr, "/v2/") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("(exited with {status})\n{}", self.log()));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("(no answer within {timeout:?})\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The cache volumes op kept for this registry's repositories go with it: nothing of a
        // test is left in the engine.
        super::cnb::remove_cache_volumes(&self.addr());
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("the port's address")
}

/// A minimal HTTP/1.1 GET (the registry answers `/v2/` with a small body and `Content-Length`).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path)
}

/// A minimal HTTP/1.1 request without a body, read until the server closes the connection.
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The path of `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}
