//! The test registry helper works against the real `docker-registry`.

use crate::common::registry::{Registry, http_get};

/// A registry starts on a loopback port, serves the distribution API, and is gone once dropped.
#[test]
fn a_test_registry_serves_the_distribution_api_and_stops() {
    let registry = Registry::start();
    let (status, body) = registry.get("/v2/");
    assert_eq!(status, 200, "{}", registry.log());
    assert_eq!(body.trim(), "{}");
    let (status, _) = registry.get("/v2/nothing/manifests/latest");
    assert_eq!(status, 404);
    let addr = registry.addr().parse().unwrap();
    drop(registry);
    assert!(
        http_get(addr, "/v2/").is_err(),
        "the registry stops with its test"
    );
}

/// Two tests' registries never share a port.
#[test]
fn registries_of_parallel_tests_are_independent() {
    let a = Registry::start();
    let b = Registry::start();
    assert_ne!(a.addr(), b.addr());
}

/// A registry as production has them (HTTPS with the test's own CA, the token flow) works with
/// real clients: crane (go-containerregistry) pushes and pulls through tokens that the registry
/// validates, scopes are enforced (a reader cannot push), and a wrong password or an untrusted
/// CA are refused.
#[test]
fn a_secure_test_registry_speaks_https_and_the_token_flow() {
    use std::process::Command;
    use std::sync::Arc;

    use crate::common::cnb::crane;
    use crate::common::registry::{TEST_PASSWORD, TEST_USER};
    use crate::common::tls::{SigningKey, TestCa};
    use crate::common::token::{READER, READER_PASSWORD, TokenServer};

    let ca = TestCa::new();
    let key = Arc::new(SigningKey::new());
    let issuer = TokenServer::start(Arc::clone(&key), &ca.server("issuer"));
    let registry = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let work = tempfile::tempdir().unwrap();
    // A layer of one file holding `text`.
    let layer = |text: &str| {
        let path = work.path().join(format!("{text}.tar"));
        crate::common::one_file_layer(&path, text);
        path.display().to_string()
    };
    let (first, second) = (layer("hello"), layer("other"));
    let image = format!("{}/test/app:1", registry.addr());
    // crane as `user`, trusting the test CA unless told not to.
    let crane_as = |user: &str, password: &str, trust: bool, args: &[&str]| {
        use base64::Engine as _;
        let config = work.path().join(format!("docker-{user}"));
        fs_err::create_dir_all(&config).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        fs_err::write(
            config.join("config.json"),
            serde_json::json!({"auths": {registry.addr(): {"auth": auth}}}).to_string(),
        )
        .unwrap();
        let mut command = Command::new(crane());
        command.args(args).env("DOCKER_CONFIG", &config);
        if trust {
            command.env("SSL_CERT_FILE", ca.cert());
        }
        command.output().unwrap()
    };
    let push = ["append", "--new_layer", &first, "--new_tag", &image];
    let out = crane_as(TEST_USER, TEST_PASSWORD, true, &push);
    assert!(
        out.status.success(),
        "the writer pushes: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        registry.log()
    );
    let pushed = crane_as(READER, READER_PASSWORD, true, &["digest", &image]);
    assert!(pushed.status.success(), "the reader pulls");
    let digest = String::from_utf8_lossy(&pushed.stdout).trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let push_other = ["append", "--new_layer", &second, "--new_tag", &image];
    let out = crane_as(READER, READER_PASSWORD, true, &push_other);
    assert!(!out.status.success(), "a pull-only token cannot push");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UNAUTHORIZED") || stderr.contains("DENIED"),
        "{stderr}"
    );
    let after = crane_as(READER, READER_PASSWORD, true, &["digest", &image]);
    assert_eq!(
        String::from_utf8_lossy(&after.stdout).trim(),
        digest,
        "the refused push changed nothing"
    );

    let out = crane_as(TEST_USER, "wrong", true, &["digest", &image]);
    assert!(!out.status.success(), "a wrong password is refused");
    let out = crane_as(TEST_USER, TEST_PASSWORD, false, &["digest", &image]);
    assert!(
        !out.status.success(),
        "the test CA is not trusted unless given"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        issuer.requests() >= 3,
        "the clients asked the issuer for tokens"
    );
}
