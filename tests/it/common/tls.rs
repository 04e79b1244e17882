//! Certificates made per test with the real `openssl` (Debian's): a CA of the test's own, server
//! certificates it signs for loopback registries, and the key and certificate a token issuer
//! signs its tokens with. Nothing is trusted system-wide: a test hands the CA to the program it
//! runs (`SSL_CERT_FILE`, `OP_REGISTRY_CA_PATH`, skopeo's `--cert-dir`, …).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::registry::which;

/// A test's own certificate authority, and what it signed.
pub struct TestCa {
    dir: tempfile::TempDir,
}

/// A server's certificate (signed by the test CA) and key, in PEM files, and in DER (the key as
/// PKCS #8) for servers of the test support code.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_der: PathBuf,
    pub key_der: PathBuf,
}

/// Runs Debian's `openssl args…` in `dir`, panicking with its stderr when it fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let binary = which("openssl").unwrap_or_else(|| {
        panic!("`openssl` is not installed; `scripts/dev-env` installs it (Debian's openssl)")
    });
    let output = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A new temporary directory (named with `prefix`) holding an RSA 2048 key `<name>.key` and a
/// certificate `<name>.crt` of `subject` it signs itself, valid for two days, with the `extra`
/// arguments of `openssl req`.
fn self_signed(prefix: &str, name: &str, subject: &str, extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory");
    let (key, cert) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &cert, "-days",
        "2", "-subj", subject,
    ];
    args.extend(extra);
    openssl(dir.path(), &args);
    dir
}

impl TestCa {
    /// A new CA (RSA 2048, valid for two days).
    pub fn new() -> Self {
        let dir = self_signed(
            "op-test-ca-",
            "ca",
            "/CN=op test CA",
            &[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Self { dir }
    }

    /// The CA's certificate (PEM): what a client must trust.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A server certificate named `name` for `127.0.0.1` and `localhost`, signed by the CA.
    pub fn server(&self, name: &str) -> ServerCert {
        self.server_for(name, "IP:127.0.0.1,DNS:localhost")
    }

    /// A server certificate named `name` for the subject alternative names `san`
    /// (`DNS:other.example`), signed by the CA.
    pub fn server_for(&self, name: &str, san: &str) -> ServerCert {
        self.sign(name, san, false)
    }

    /// A server certificate named `name` for `127.0.0.1` and `localhost`, signed by the CA,
    /// that expired years ago (valid in January 2020 only).
    pub fn expired_server(&self, name: &str) -> ServerCert {
        self.sign(name, "IP:127.0.0.1,DNS:localhost", true)
    }

    fn sign(&self, name: &str, san: &str, expired: bool) -> ServerCert {
        let dir = self.dir.path();
        let (key, csr, cert, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        fs_err::write(
            dir.join(&ext),
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=localhost",
            ],
        );
        if expired {
            sign_expired(dir, name, (&csr, &cert, &ext));
        } else {
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        let (cert_der, key_der) = (format!("{name}.crt.der"), format!("{name}.key.der"));
        openssl(
            dir,
            &["x509", "-in", &cert, "-outform", "DER", "-out", &cert_der],
        );
        openssl(
            dir,
            &[
                "pkcs8", "-topk8", "-nocrypt", "-in", &key, "-outform", "DER", "-out", &key_der,
            ],
        );
        ServerCert {
            cert: dir.join(cert),
            key: dir.join(key),
            cert_der: dir.join(cert_der),
            key_der: dir.join(key_der),
        }
    }
}

/// Signs `csr` with the CA of `dir` as `cert` (extensions of `ext`), valid in January 2020
/// only: `openssl x509 -req` (OpenSSL 3.0) cannot set a start date; `openssl ca` can, with a
/// configuration and a database of its own.
fn sign_expired(dir: &Path, name: &str, (csr, cert, ext): (&str, &str, &str)) {
    let db = format!("{name}-db");
    fs_err::create_dir_all(dir.join(&db)).unwrap();
    fs_err::write(dir.join(&db).join("index.txt"), "").unwrap();
    let config = format!("{name}-ca.cnf");
    fs_err::write(
        dir.join(&config),
        format!(
            "[ca]\ndefault_ca = test\n[test]\ndatabase = {db}/index.txt\n\
                 new_certs_dir = {db}\nserial = {db}/serial\ndefault_md = sha256\n\
                 policy = any\n[any]\ncommonName = supplied\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            &config,
            "-cert",
            "ca.crt",
            "-keyfile",
            "ca.key",
            "-in",
            csr,
            "-out",
            cert,
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-extfile",
            ext,
            "-rand_serial",
            "-notext",
        ],
    );
}

/// The key a token issuer signs with, and its self-signed certificate (which the registry is
/// told to trust: `auth.token.rootcertbundle`).
pub struct SigningKey {
    dir: tempfile::TempDir,
}

impl SigningKey {
    pub fn new() -> Self {
        let dir = self_signed(
            "op-test-token-key-",
            "token",
            "/CN=op test token issuer",
            &[],
        );
        openssl(
            dir.path(),
            &[
                "x509",
                "-in",
                "token.crt",
                "-outform",
                "DER",
                "-out",
                "token.der",
            ],
        );
        Self { dir }
    }

    /// The certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("token.crt")
    }

    /// The certificate (DER), for a token's `x5c` header.
    pub fn cert_der(&self) -> Vec<u8> {
        fs_err::read(self.dir.path().join("token.der")).unwrap()
    }

    /// The RS256 signature of `data` (RSASSA-PKCS1-v1_5 with SHA-256).
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let input = self.dir.path().join(format!(
            "input-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs_err::write(&input, data).unwrap();
        let binary = which("openssl").expect("openssl is installed");
        let output = Command::new(binary)
            .args(["dgst", "-sha256", "-sign", "token.key"])
            .arg(&input)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        let _ = fs_err::remove_file(&input);
        assert!(
            output.status.success(),
            "openssl dgst failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}
