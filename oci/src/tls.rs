//! CA certificates: the system's, or the Mozilla roots carried in the binary for images that
//! have none.

use base64::Engine as _;

use crate::sha256;

/// The variable that names a PEM file of CA certificates, for rustls as for OpenSSL.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// Whether the system has CA certificates (those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when they
/// are set). A busybox image, or a bare CI runner, has none.
pub fn has_system_roots() -> bool {
    !system_roots().is_empty()
}

/// The system's CA certificates (DER), each once, read once per process: the creator asks at
/// start-up and again when it makes its client, and the registry client trusts exactly these
/// (reading and parsing the bundle and the certificate directory is most of the CPU time of a
/// small registry copy).
pub fn system_roots() -> &'static [Vec<u8>] {
    static ROOTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        // Those rustls can use as roots (the registry client refuses a bundle with any other),
        // each once: Debian's bundle and its certificate directory hold the same certificates.
        let mut roots: Vec<Vec<u8>> = rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .filter(|der| webpki::anchor_from_trusted_cert(der).is_ok())
            .map(|der| der.to_vec())
            .collect();
        roots.sort_unstable();
        roots.dedup();
        roots
    })
}

/// Writes the Mozilla root certificates op-lifecycle carries to a PEM file in the temporary
/// directory (once: the name is derived from the contents) and returns its path, for a process
/// to run again with [`SSL_CERT_FILE`] naming it.
pub fn write_builtin_roots() -> std::io::Result<std::path::PathBuf> {
    let pem = pem_bundle(
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(AsRef::as_ref),
    );
    let digest = sha256(pem.as_bytes());
    let name = format!("op-lifecycle-ca-{}.pem", &digest["sha256:".len()..][..16]);
    let path = std::env::temp_dir().join(name);
    let readable = fs_err::metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt as _;
        m.permissions().mode() & 0o444 == 0o444
    });
    if !readable || fs_err::read(&path).ok().as_deref() != Some(pem.as_bytes()) {
        // Readable by the build user the creator becomes.
        let mut file = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(std::env::temp_dir())?;
        std::io::Write::write_all(&mut file, pem.as_bytes())?;
        file.persist(&path).map_err(|e| e.error)?;
    }
    Ok(path)
}

/// Certificates (DER) as one PEM bundle, each a `CERTIFICATE` block.
pub fn pem_bundle<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut pem = String::new();
    for der in ders {
        let encoded = base64::engine::general_purpose::STANDARD.encode(der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// The certificates (DER) of the `CERTIFICATE` blocks of a PEM text; `None` when it has none,
/// or one does not decode.
pub fn pem_certificates(text: &str) -> Option<Vec<Vec<u8>>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body.find("-----END CERTIFICATE-----")?;
        let encoded: String = body[..end].split_whitespace().collect();
        found.push(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?,
        );
        rest = &body[end..];
    }
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_roots_are_read_once_each_once_and_the_client_takes_them() {
        let roots = system_roots();
        assert!(
            has_system_roots(),
            "scripts/dev-env installs ca-certificates"
        );
        assert!(std::ptr::eq(roots, system_roots()), "read once");
        assert!(roots.windows(2).all(|pair| pair[0] < pair[1]), "each once");
        // The registry client trusts exactly these: it refuses a list with any it cannot use.
        crate::Registry::new(
            crate::Transports::default(),
            crate::Keychain::default(),
            &[],
        )
        .unwrap();
    }

    #[test]
    fn the_builtin_roots_are_a_pem_bundle_rustls_reads() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = write_builtin_roots().unwrap();
        let pem = fs_err::read_to_string(&path).unwrap();
        let decoded: Vec<Vec<u8>> = pem
            .split("-----BEGIN CERTIFICATE-----\n")
            .skip(1)
            .map(|block| {
                let body: String = block.split("-----END").next().unwrap().lines().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap()
            })
            .collect();
        let expected: Vec<Vec<u8>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|d| d.to_vec())
            .collect();
        assert_eq!(decoded, expected);
        assert_eq!(pem_certificates(&pem), Some(expected), "and read back");
        assert_eq!(pem_certificates("no certificate"), None);
        assert_eq!(write_builtin_roots().unwrap(), path, "written once");
        assert_eq!(
            fs_err::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
