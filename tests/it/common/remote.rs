//! The test's engine reached as a remote one, as docker CLI users set them up:
//!
//! - over TCP with TLS: Debian's `stunnel4` terminates TLS on a loopback port (checking the
//!   client's certificate against the test's CA, as `dockerd --tlsverify` does) and carries the
//!   connection to the engine's socket; the CA, the server's and the client's certificates are
//!   made for the test by `openssl`;
//! - over ssh: Debian's `sshd` on a loopback port with a host key and an authorized key made for
//!   the test by `ssh-keygen`; the remote side's `docker system dial-stdio` reaches the engine.
//!
//! `ssh` reads the configuration of the user's passwd home, not `HOME`, so op's `ssh` is a
//! wrapper (first on op's `PATH`) that adds `-F <the test's ssh_config>`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::registry::{free_port, which};

/// Runs `program args…`, panicking with its output when it fails.
#[track_caller]
fn run(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run ({e}); run `scripts/dev-env` as root"));
    assert!(
        out.status.success(),
        "{program} {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The socket path of the test's engine.
fn engine_socket() -> String {
    super::docker::Engine::of_this_test()
        .host()
        .trim_start_matches("unix://")
        .to_string()
}

/// A CA and certificates it signed, in one directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// A CA (`<name>-ca.pem`), a server certificate for `127.0.0.1` and `localhost`
    /// (`server-cert.pem`, `server-key.pem`) and a client certificate laid out as
    /// `DOCKER_CERT_PATH` takes it (`client/{ca,cert,key}.pem`).
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("op-test-pki-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca_subject = format!("/CN={name} test CA");
        let mut args = vec!["req", "-x509", "-days", "1", "-subj", &ca_subject];
        args.extend(ec);
        args.extend(["-keyout", "ca-key.pem", "-out", "ca.pem"]);
        run("openssl", &args, d);
        let sign = |who: &str, ext: &str| {
            let key = format!("{who}-key.pem");
            let csr = format!("{who}.csr");
            let cert = format!("{who}-cert.pem");
            let ext_file = format!("{who}.ext");
            fs_err::write(d.join(&ext_file), ext).unwrap();
            let subject = format!("/CN={who}");
            let mut args = vec!["req", "-subj", &subject, "-keyout", &key, "-out", &csr];
            args.extend(ec);
            run("openssl", &args, d);
            run(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-days",
                    "1",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-extfile",
                    &ext_file,
                    "-out",
                    &cert,
                ],
                d,
            );
        };
        sign(
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        sign("client", "extendedKeyUsage=clientAuth\n");
        let client = d.join("client");
        fs_err::create_dir_all(&client).unwrap();
        fs_err::copy(d.join("ca.pem"), client.join("ca.pem")).unwrap();
        fs_err::copy(d.join("client-cert.pem"), client.join("cert.pem")).unwrap();
        fs_err::copy(d.join("client-key.pem"), client.join("key.pem")).unwrap();
        Self { dir }
    }

    /// The client's `DOCKER_CERT_PATH`.
    pub fn client(&self) -> PathBuf {
        self.dir.path().join("client")
    }
}

/// The test's engine behind TLS on a loopback port; stopped when dropped.
pub struct TlsEngine {
    pub pki: Pki,
    pub port: u16,
    child: Child,
}

impl TlsEngine {
    pub fn start() -> Self {
        let stunnel = which("stunnel4")
            .or_else(|| which("stunnel"))
            .expect("stunnel is not installed; run `scripts/dev-env` as root");
        let pki = Pki::new("engine");
        let port = free_port().port();
        let d = pki.dir.path();
        let config = d.join("stunnel.conf");
        fs_err::write(
            &config,
            format!(
                "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\nconnect = {}\n\
                 cert = {1}/server-cert.pem\nkey = {1}/server-key.pem\nCAfile = {1}/ca.pem\n\
                 verifyChain = yes\nrequireCert = yes\n",
                engine_socket(),
                d.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(stunnel)
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "stunnel");
        Self { pki, port, child }
    }

    /// `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// What a docker CLI user sets: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`.
    pub fn env(&self, cert_path: &Path) -> [(&'static str, String); 3] {
        [
            ("DOCKER_HOST", self.host()),
            ("DOCKER_TLS_VERIFY", "1".to_string()),
            ("DOCKER_CERT_PATH", cert_path.display().to_string()),
        ]
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's engine behind Debian's sshd on a loopback port; stopped when dropped.
pub struct SshEngine {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl SshEngine {
    pub fn start() -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.is_file(),
            "Debian's openssh-server is not installed; run `scripts/dev-env` as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("op-test-ssh-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key", "stranger_key"] {
            run(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", key],
                d,
            );
        }
        fs_err::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // Privilege separation needs its directory.
        fs_err::create_dir_all("/run/sshd").unwrap();
        let port = free_port().port();
        fs_err::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\n\
                 AuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n\
                 PermitRootLogin prohibit-password\nLogLevel ERROR\n",
                d.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "sshd");
        let host_key = fs_err::read_to_string(d.join("host_key.pub")).unwrap();
        let mut host_key = host_key.split_whitespace();
        fs_err::write(
            d.join("known_hosts"),
            format!(
                "[127.0.0.1]:{port} {} {}\n",
                host_key.next().unwrap(),
                host_key.next().unwrap()
            ),
        )
        .unwrap();
        fs_err::write(d.join("no_known_hosts"), "").unwrap();
        Self { dir, port, child }
    }

    /// `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", whoami(), self.port)
    }

    /// A directory holding an `ssh` that uses `identity` (a key file of this engine's
    /// directory: `client_key`, which the server accepts, or `stranger_key`) and `known_hosts`
    /// (`known_hosts`, which has the server's key, or `no_known_hosts`); put it first on op's
    /// `PATH`.
    pub fn ssh_wrapper(&self, identity: &str, known_hosts: &str) -> PathBuf {
        let d = self.dir.path();
        let name = format!("{identity}-{known_hosts}");
        let config = d.join(format!("{name}.config"));
        fs_err::write(
            &config,
            format!(
                "Host 127.0.0.1\n  IdentityFile {0}/{identity}\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {0}/{known_hosts}\n  GlobalKnownHostsFile /dev/null\n",
                d.display()
            ),
        )
        .unwrap();
        let bin = d.join(format!("bin-{name}"));
        fs_err::create_dir_all(&bin).unwrap();
        let wrapper = bin.join("ssh");
        fs_err::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                config.display()
            ),
        )
        .unwrap();
        let mut permissions = fs_err::metadata(&wrapper).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        fs_err::set_permissions(&wrapper, permissions).unwrap();
        bin
    }
}

impl Drop for SshEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `PATH` with `dir` first.
pub fn path_with(dir: &Path) -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", dir.display())
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
