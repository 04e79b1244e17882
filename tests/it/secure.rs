//! Registries as users have them (issue #19): HTTPS with a CA of the company's own and the token
//! flow, here a CA made per test and the test token issuer (`common::tls`, `common::token`), in
//! front of the real distribution registry.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::build_push::apps;
use crate::common::cnb::{Lifecycle, Stack, crane, leftovers, lifecycle_dir, write_docker_config};
use crate::common::docker::ImagesOf;
use crate::common::registry::{Registry, TEST_PASSWORD, TEST_USER};
use crate::common::tls::{SigningKey, TestCa};
use crate::common::token::{READER, READER_PASSWORD, TokenServer, refresh_token_of};
use crate::common::{TestContext, build_result, copy_dir, one_file_layer, tag_of};

on_each_builder!(
    op_publishes_to_an_https_registry_of_a_private_ca_through_the_token_flow,
    a_build_publishes_to_an_insecure_https_registry_of_a_ca_nobody_was_given,
    a_build_whose_account_may_not_push_fails_naming_the_registry,
    an_identity_token_is_exchanged_for_access_tokens_by_op_and_the_creator,
    skaffold_publishes_the_delegated_artifacts_to_an_https_registry_of_a_private_ca,
);

/// A registry of a private CA that op was not told of is a clear error naming the registry,
/// with the hint to give the CA, before anything is built; so is a CA file without a
/// certificate.
#[test]
fn an_untrusted_ca_or_a_ca_file_without_certificates_is_a_clear_error_before_building() {
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = TestContext::fixture("hybrid").env("HOME", &home.path().display().to_string());
    let args = ["build-push", "--repo", repo.as_str(), "--pull", "never"];

    let run = context.op(&args);
    run.failure(1);
    assert!(
        run.stderr
            .contains(&format!("error: Registry `{repo}` failed"))
            && run.stderr.contains(&format!(
                "hint: {repo}'s certificate is not signed by a CA op trusts"
            ))
            && run.stderr.contains("set OP_REGISTRY_CA_PATH"),
        "{}",
        run.report()
    );
    assert!(!context.path().join("build_result.json").exists());

    context.write("not-a-ca.pem", "just text\n");
    let run = context.env("OP_REGISTRY_CA_PATH", "not-a-ca.pem").op(&args);
    run.failure(1);
    assert!(
        run.stderr
            .contains("error: `not-a-ca.pem` (from $OP_REGISTRY_CA_PATH) holds no PEM certificate")
            && run
                .stderr
                .contains("hint: OP_REGISTRY_CA_PATH names a PEM file"),
        "{}",
        run.report()
    );
}

/// A registry whose certificate (of a CA op trusts) has expired is a clear error naming the
/// registry and the validity problem, before anything is built.
#[test]
fn an_expired_certificate_is_a_clear_error_before_building() {
    let Secure { ca, key, issuer } = Secure::new();
    let expired = Registry::start_secure(&ca.expired_server("registry"), &issuer, &key);
    let repo = expired.addr();
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = TestContext::fixture("hybrid")
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    let run = context.op(&["build-push", "--repo", repo.as_str(), "--pull", "never"]);
    run.failure(1);
    assert!(
        run.stderr
            .contains(&format!("error: Registry `{repo}` failed"))
            && run.stderr.contains(&format!(
                "hint: {repo}'s certificate is out of its validity period"
            ))
            && run.stderr.contains("renew it"),
        "{}",
        run.report()
    );
    assert!(!context.path().join("build_result.json").exists());
}

/// The build's image goes to an HTTPS registry on a loopback port whose certificate a CA of the
/// test's own signed, and which wants tokens: op trusts the CA of `OP_REGISTRY_CA_PATH` for its
/// own requests and hands it to the creator (both lifecycles push there, through tokens the
/// registry checks); the builder and run image come from a plain-HTTP registry in the same
/// build. What was published is read back by crane, which trusts the CA too.
fn op_publishes_to_an_https_registry_of_a_private_ca_through_the_token_flow(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = apps(&stack)
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    // -vv: op's diagnostics and the lifecycle's debug output, where a leak would show. The build
    // caches in an image of that registry too.
    let cache = format!("{repo}/cache");
    let run = context.op(&[
        "build-push",
        "--repo",
        &repo,
        "--artifact",
        "procfile",
        "--cache-image",
        &cache,
        "--sbom-output",
        "dist/sbom",
        "-vv",
    ]);
    run.success();
    let cached = crane_in(
        &ca,
        home.path(),
        None,
        &["config", &format!("{cache}:procfile")],
    );
    assert!(
        cached.status.success(),
        "the lifecycle wrote the cache image: {}\n{}",
        String::from_utf8_lossy(&cached.stderr),
        run.report()
    );
    let result = build_result(&context);
    let tag = tag_of(&result, "procfile");
    let (reference, digest) = tag.split_once('@').unwrap();
    assert!(reference.starts_with(&repo), "{tag}");
    let served = Command::new(crane())
        .args(["digest", reference])
        .env("SSL_CERT_FILE", ca.cert())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .output()
        .unwrap();
    assert!(
        served.status.success(),
        "crane reads it: {}\n{}",
        String::from_utf8_lossy(&served.stderr),
        run.report()
    );
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), digest);
    assert!(issuer.requests() > 0, "tokens were asked for");

    // Nothing secret in what op printed, the build result, the published image's config or the
    // cache image's.
    let config = Command::new(crane())
        .args(["config", reference])
        .env("SSL_CERT_FILE", ca.cert())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .output()
        .unwrap();
    let mut written = vec![
        run.stdout.clone(),
        run.stderr.clone(),
        result.to_string(),
        String::from_utf8_lossy(&config.stdout).into_owned(),
        String::from_utf8_lossy(&cached.stdout).into_owned(),
    ];
    let sboms = files_under(&context.path().join("dist/sbom"));
    assert!(
        !sboms.is_empty(),
        "the SBOMs were copied out\n{}",
        run.report()
    );
    written.extend(
        sboms
            .iter()
            .map(|f| String::from_utf8_lossy(&fs_err::read(f).unwrap()).into_owned()),
    );
    let mut secrets = vec![
        TEST_PASSWORD.to_string(),
        STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}")),
    ];
    secrets.extend(issuer.issued());
    assert!(secrets.len() > 2, "the issuer issued tokens");
    for secret in &secrets {
        assert!(
            written.iter().all(|text| !text.contains(secret.as_str())),
            "a password or a token leaked\n{}",
            run.report()
        );
    }
    assert_eq!(leftovers(&stack.registry.addr()), Vec::<String>::new());
}

/// `--insecure-registry HOST` for an HTTPS registry of a CA neither op nor the creator was
/// given: both lifecycles publish there without verifying its certificate, and op checks the
/// digest the same way.
fn a_build_publishes_to_an_insecure_https_registry_of_a_ca_nobody_was_given(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = apps(&stack).env("HOME", &home.path().display().to_string());
    let run = context.op(&[
        "build-push",
        "--repo",
        &repo,
        "--artifact",
        "procfile",
        "--insecure-registry",
        &repo,
    ]);
    run.success();
    let result = build_result(&context);
    let (reference, digest) = tag_of(&result, "procfile").split_once('@').unwrap();
    let served = crane_in(&ca, home.path(), None, &["digest", reference]);
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), digest);
}

/// A build whose account may only pull from the target (its tokens lack the push scope) fails
/// with a clear error that names the registry and says what to do; nothing is published and
/// the creator is gone.
fn a_build_whose_account_may_not_push_fails_naming_the_registry(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let home = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(home.path().join(".docker")).unwrap();
    let reader = STANDARD.encode(format!("{READER}:{READER_PASSWORD}"));
    fs_err::write(
        home.path().join(".docker/config.json"),
        serde_json::json!({"auths": {repo.as_str(): {"auth": reader}}}).to_string(),
    )
    .unwrap();
    let context = apps(&stack)
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    let run = context.op(&["build-push", "--repo", &repo, "--artifact", "procfile"]);
    run.failure(1);
    assert!(
        run.stderr.contains(&format!(
            "hint: the registry `{repo}` refused the account op has for it"
        )) && run.stderr.contains("may not push"),
        "the error names the registry and the missing right\n{}",
        run.report()
    );
    assert!(!context.path().join("build_result.json").exists());
    let checker = tempfile::tempdir().unwrap();
    write_docker_config(checker.path(), &repo);
    assert_untagged(&ca, checker.path(), &format!("{repo}/procfile:latest"));
    assert_eq!(leftovers(&stack.registry.addr()), Vec::<String>::new());
}

/// With an identity token (`identitytoken`, what `docker login` keeps for registries that give
/// refresh tokens) as the only credential of the target, op's client (its checks and the digest
/// check) and the creator (`X-Identity` in `CNB_REGISTRY_AUTH`) exchange it for access tokens:
/// the build publishes, the digest is checked, and neither token is printed.
fn an_identity_token_is_exchanged_for_access_tokens_by_op_and_the_creator(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let home = tempfile::tempdir().unwrap();
    let refresh = refresh_token_of(TEST_USER);
    fs_err::create_dir_all(home.path().join(".docker")).unwrap();
    fs_err::write(
        home.path().join(".docker/config.json"),
        serde_json::json!({"auths": {repo.as_str(): {"identitytoken": refresh}}}).to_string(),
    )
    .unwrap();
    let context = apps(&stack)
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    let run = context.op(&[
        "build-push",
        "--repo",
        &repo,
        "--artifact",
        "procfile",
        "-vv",
    ]);
    run.success();
    assert!(
        !run.stderr.contains("is not checked"),
        "op's client read what the creator pushed\n{}",
        run.report()
    );
    let result = build_result(&context);
    let (reference, digest) = tag_of(&result, "procfile").split_once('@').unwrap();
    let served = crane_in(&ca, home.path(), None, &["digest", reference]);
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), digest);
    for secret in std::iter::once(refresh).chain(issuer.issued()) {
        assert!(
            !run.stdout.contains(&secret) && !run.stderr.contains(&secret),
            "a token leaked\n{}",
            run.report()
        );
    }
}

/// `op build --push` of the hybrid fixture with `--insecure-registry` for an HTTPS registry of a
/// CA nobody was given: skaffold (told the same list) and the engine that pushes for it reach it
/// without verifying its certificate, as op and the creator do.
#[test]
fn skaffold_publishes_to_an_insecure_https_registry_of_a_ca_nobody_was_given() {
    let stack = Stack::start(Lifecycle::Op);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let _images = ImagesOf(repo.clone());
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = crate::build::hybrid(&stack).env("HOME", &home.path().display().to_string());
    let run = context.op(&[
        "build",
        "--push",
        "--repo",
        &repo,
        "--insecure-registry",
        &repo,
    ]);
    run.success();
    hybrid_published(&ca, (home.path(), &repo), &context, &run);
}

/// The octopilot action passes the Docker configuration to op's container as the text of
/// `DOCKER_CONFIG_CONTENT` (credential files of the runner are not visible there): it is the
/// configuration of the whole build, op's client, the creator, and skaffold with what it runs
/// (the `custom` artifact's docker CLI pushes with it), with no config.json anywhere.
#[test]
fn the_action_s_docker_config_content_serves_the_whole_build() {
    let stack = Stack::start(Lifecycle::Op);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let _images = ImagesOf(repo.clone());
    let basic = STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    let configuration = serde_json::json!({"auths": {repo.as_str(): {"auth": basic}}}).to_string();
    let context = crate::build::hybrid(&stack)
        .env("DOCKER_CONFIG_CONTENT", &configuration)
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    assert!(!context.home().join(".docker/config.json").exists());
    let run = context.op(&["build", "--push", "--repo", &repo]);
    run.success();
    let checker = tempfile::tempdir().unwrap();
    write_docker_config(checker.path(), &repo);
    hybrid_published(&ca, (checker.path(), &repo), &context, &run);
}

/// A CA op trusts through `SSL_CERT_FILE` (its own trust chosen in its environment, no
/// `OP_REGISTRY_CA_PATH`) is trusted by the creator too: op hands it the same bundle.
#[test]
fn the_ca_of_ssl_cert_file_is_handed_to_the_creator() {
    let stack = Stack::start(Lifecycle::Reference);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = apps(&stack)
        .env("HOME", &home.path().display().to_string())
        .env("SSL_CERT_FILE", &ca.cert().display().to_string());
    let run = context.op(&["build-push", "--repo", &repo, "--artifact", "procfile"]);
    run.success();
    let result = build_result(&context);
    let (reference, digest) = tag_of(&result, "procfile").split_once('@').unwrap();
    let served = crane_in(&ca, home.path(), None, &["digest", reference]);
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), digest);
}

/// `op build --push` of upstream's shape (a Dockerfile base image that skaffold builds, the
/// buildpacks app on it, a `custom` artifact) to an HTTPS registry of a private CA with the
/// token flow: skaffold gets the CA op was given (its own registry requests) and the
/// credentials of the Docker configuration; op reads the base back from there as the app's run
/// image, through the same CA and tokens.
fn skaffold_publishes_the_delegated_artifacts_to_an_https_registry_of_a_private_ca(
    lifecycle: Lifecycle,
) {
    let stack = Stack::start(lifecycle);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let _images = ImagesOf(repo.clone());
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = crate::build::hybrid(&stack)
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    let run = context.op(&["build", "--push", "--repo", &repo, "-vv"]);
    run.success();
    hybrid_published(&ca, (home.path(), &repo), &context, &run);
    let secrets = [
        TEST_PASSWORD.to_string(),
        STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}")),
    ];
    for secret in secrets.iter().chain(&issuer.issued()) {
        assert!(
            !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
            "a password or a token leaked\n{}",
            run.report()
        );
    }
    assert_eq!(leftovers(&stack.registry.addr()), Vec::<String>::new());
}

/// `op promote-image` between two HTTPS registries of a private CA with the token flow: the
/// source's credential an identity token of the Docker configuration (`identitytoken`), the
/// destination's one a credential helper gives (`credHelpers`, `docker-credential-<name> get` on
/// PATH, which really runs) as an identity token too (the user name `<token>`); op exchanges
/// them for access tokens (the OAuth 2 form of the token flow). Digest and tag kept.
#[test]
fn op_promotes_between_https_registries_with_a_credential_helper() {
    use std::os::unix::fs::PermissionsExt as _;

    let Secure { ca, key, issuer } = Secure::new();
    let (dev, prod) = (
        Registry::start_secure(&ca.server("dev"), &issuer, &key),
        Registry::start_secure(&ca.server("prod"), &issuer, &key),
    );
    let context = TestContext::new();
    let home = context.path().join(".home");
    let bin = context.path().join("bin");
    fs_err::create_dir_all(home.join(".docker")).unwrap();
    fs_err::create_dir_all(&bin).unwrap();
    let calls = context.path().join("helper-calls");
    let helper = bin.join("docker-credential-optest");
    let refresh = refresh_token_of(TEST_USER);
    fs_err::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"<token>\",\"Secret\":\"{refresh}\"}}\\n' \"$server\"\n",
            calls.display()
        ),
    )
    .unwrap();
    fs_err::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    fs_err::write(
        home.join(".docker/config.json"),
        serde_json::json!({
            "auths": {dev.addr(): {"identitytoken": refresh}},
            "credHelpers": {prod.addr(): "optest"},
        })
        .to_string(),
    )
    .unwrap();

    // An image in dev, pushed by crane.
    let (_, digest) = publish_app(&context, &ca, (&home, Some(&bin)), &dev);
    let context = context
        .env("HOME", &home.display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string())
        .env(
            "PATH",
            &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        );
    let destination = format!("{}/live", prod.addr());
    let run = context.op(&[
        "promote-image",
        "--from",
        &format!("{}/team", dev.addr()),
        "--to",
        &destination,
    ]);
    run.success();
    assert_eq!(
        run.stdout,
        format!("{destination}/app:v1@{digest}\n"),
        "{}",
        run.report()
    );
    let promoted = crane_in(
        &ca,
        &home,
        Some(&bin),
        &["digest", &format!("{destination}/app:v1")],
    );
    assert_eq!(String::from_utf8_lossy(&promoted.stdout).trim(), digest);
    let asked = fs_err::read_to_string(&calls).unwrap_or_default();
    assert!(
        asked.contains(&prod.addr()),
        "op ran the credential helper for the destination: {asked:?}\n{}",
        run.report()
    );
}

/// What an HTTPS registry with the token flow refuses is a clear error that names the registry
/// and says what to do, nothing promoted, and no retry storm: a certificate for other names, a
/// token service that is down, an account that may only pull, a wrong password, a credential
/// helper that is not there.
#[test]
fn refusals_by_https_registries_are_clear_errors_and_few_requests() {
    let Secure { ca, key, issuer } = Secure::new();
    let dev = Registry::start_secure(&ca.server("dev"), &issuer, &key);
    let other_name =
        Registry::start_secure(&ca.server_for("other", "DNS:other.example"), &issuer, &key);
    let prod = Registry::start_secure(&ca.server("prod"), &issuer, &key);
    let dead = TokenServer::start(Arc::clone(&key), &ca.server("dead"));
    let no_issuer = Registry::start_secure(&ca.server("orphan"), &dead, &key);
    drop(dead);
    let context = TestContext::new();
    let home = context.path().join(".home");
    fs_err::create_dir_all(home.join(".docker")).unwrap();
    let auth = |user: &str, password: &str| STANDARD.encode(format!("{user}:{password}"));
    let config = |prod_entry: serde_json::Value| {
        let mut auths = serde_json::json!({
            dev.addr(): {"auth": auth(TEST_USER, TEST_PASSWORD)},
            other_name.addr(): {"auth": auth(TEST_USER, TEST_PASSWORD)},
            no_issuer.addr(): {"auth": auth(TEST_USER, TEST_PASSWORD)},
        });
        let mut config = serde_json::json!({});
        if let Some(helper) = prod_entry.get("helper") {
            config["credHelpers"] = serde_json::json!({prod.addr(): helper});
        } else {
            auths[prod.addr()] = prod_entry;
        }
        config["auths"] = auths;
        fs_err::write(home.join(".docker/config.json"), config.to_string()).unwrap();
    };
    config(serde_json::json!({"auth": auth(TEST_USER, TEST_PASSWORD)}));
    publish_app(&context, &ca, (&home, None), &dev);
    let checker = context.path().join(".checker");
    copy_dir(&home, &checker);
    let context = context
        .env("HOME", &home.display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    let promote = |to: &str| {
        context.op(&[
            "promote-image",
            "--from",
            &format!("{}/team", dev.addr()),
            "--to",
            &format!("{to}/live"),
        ])
    };
    let refused = |to: &str, message: &str, hint: &str| {
        let run = promote(to);
        run.failure(1);
        assert!(
            run.stderr.contains(message) && run.stderr.contains(&format!("hint: {hint}")),
            "expected {message:?} and {hint:?}\n{}",
            run.report()
        );
    };
    let (other, orphan) = (other_name.addr(), no_issuer.addr());
    refused(
        &other,
        &format!("Registry `{other}` failed"),
        &format!("{other}'s certificate is for other names than {other}"),
    );
    refused(
        &orphan,
        &format!("Registry `{orphan}` failed"),
        "the registry refused op's credentials",
    );
    let prod_host = prod.addr();
    for (entry, what) in [
        (
            serde_json::json!({"auth": auth(READER, READER_PASSWORD)}),
            "a reader",
        ),
        (
            serde_json::json!({"auth": auth(TEST_USER, "wrong")}),
            "a wrong password",
        ),
    ] {
        config(entry);
        let before = issuer.requests();
        refused(
            &prod_host,
            &format!("Registry `{prod_host}` failed"),
            "the registry refused op's credentials",
        );
        let asked = issuer.requests() - before;
        assert!(asked <= 8, "{what}: {asked} token requests");
    }
    config(serde_json::json!({"helper": "absent"}));
    refused(
        &prod_host,
        &format!("Credential helper `docker-credential-absent` failed for `{prod_host}`"),
        "check that `docker-credential-absent` is on PATH",
    );
    // Nothing was promoted to prod (read with credentials it takes; the other two registries
    // cannot be read past their certificate or their token service).
    assert_untagged(&ca, &checker, &format!("{prod_host}/live/app:v1"));
}

/// Credential helpers as the docker CLI runs them: the `credsStore` for every registry without a
/// `credHelpers` entry; its answer `credentials not found in native keychain` (exit 1) means
/// anonymous, which the registry then refuses (an error naming it); a helper that fails
/// otherwise is an error naming the helper, the registry and what it said. Nothing promoted.
#[test]
fn credential_stores_and_failing_helpers_are_run_as_the_docker_cli_runs_them() {
    use std::os::unix::fs::PermissionsExt as _;

    let Secure { ca, key, issuer } = Secure::new();
    let (dev, prod) = (
        Registry::start_secure(&ca.server("dev"), &issuer, &key),
        Registry::start_secure(&ca.server("prod"), &issuer, &key),
    );
    let context = TestContext::new();
    let home = context.path().join(".home");
    let bin = context.path().join("bin");
    fs_err::create_dir_all(home.join(".docker")).unwrap();
    fs_err::create_dir_all(&bin).unwrap();
    let helper = |name: &str, script: String| {
        let path = bin.join(format!("docker-credential-{name}"));
        fs_err::write(&path, script).unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // The store knows dev only.
    helper(
        "store",
        format!(
            "#!/bin/sh\nread server\nif [ \"$server\" = {} ]; then\n\
             printf '{{\"Username\":\"{TEST_USER}\",\"Secret\":\"{TEST_PASSWORD}\"}}\\n'\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
            dev.addr()
        ),
    );
    helper(
        "locked",
        "#!/bin/sh\necho 'the keyring is locked' >&2\nexit 1\n".into(),
    );
    let write_config = |config: serde_json::Value| {
        fs_err::write(home.join(".docker/config.json"), config.to_string()).unwrap();
    };
    write_config(serde_json::json!({"credsStore": "store"}));
    publish_app(&context, &ca, (&home, Some(&bin)), &dev);
    let context = context
        .env("HOME", &home.display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string())
        .env(
            "PATH",
            &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        );
    let to = prod.addr();
    let promote = || {
        context.op(&[
            "promote-image",
            "--from",
            &format!("{}/team", dev.addr()),
            "--to",
            &format!("{to}/live"),
        ])
    };
    let run = promote();
    run.failure(1);
    assert!(
        run.stderr
            .contains(&format!("Caused by: Registry `{to}` failed"))
            && run
                .stderr
                .contains("hint: the registry refused op's credentials"),
        "the store had none for prod: anonymous, which prod refuses\n{}",
        run.report()
    );

    write_config(
        serde_json::json!({"credsStore": "store", "credHelpers": {to.as_str(): "locked"}}),
    );
    let run = promote();
    run.failure(1);
    assert!(
        run.stderr.contains(&format!(
            "error: Credential helper `docker-credential-locked` failed for `{to}`: exit status: 1 (the keyring is locked)"
        )) && run
            .stderr
            .contains("hint: check that `docker-credential-locked` is on PATH and logged in"),
        "{}",
        run.report()
    );
    let basic = STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    write_config(serde_json::json!({"auths": {to.as_str(): {"auth": basic}}}));
    assert_untagged(&ca, &home, &format!("{to}/live/app:v1"));
}

/// `--insecure-registry HOST` for a registry that speaks HTTPS: op reaches it without
/// verifying its certificate (as docker and go-containerregistry mean the flag); without the
/// flag, the same certificate is refused.
#[test]
fn an_insecure_https_registry_is_reached_without_verifying_its_certificate() {
    let Secure { ca, key, issuer } = Secure::new();
    let (dev, prod) = (
        Registry::start_secure(&ca.server("dev"), &issuer, &key),
        Registry::start_secure(&ca.server("prod"), &issuer, &key),
    );
    let context = TestContext::new();
    let home = context.path().join(".home");
    let (from, to) = (dev.addr(), prod.addr());
    fs_err::create_dir_all(home.join(".docker")).unwrap();
    let basic = STANDARD.encode(format!("{TEST_USER}:{TEST_PASSWORD}"));
    fs_err::write(
        home.join(".docker/config.json"),
        serde_json::json!({"auths": {from.as_str(): {"auth": basic}, to.as_str(): {"auth": basic}}})
            .to_string(),
    )
    .unwrap();
    let (_, digest) = publish_app(&context, &ca, (&home, None), &dev);
    let context = context.env("HOME", &home.display().to_string());
    let (from_repo, to_repo) = (format!("{from}/team"), format!("{to}/live"));
    let promote = ["promote-image", "--from", &from_repo, "--to", &to_repo];
    let run = context.op(&promote);
    run.failure(1);
    assert!(
        run.stderr.contains("is not signed by a CA op trusts"),
        "{}",
        run.report()
    );
    let mut insecure = promote.to_vec();
    insecure.extend(["--insecure-registry", &from, "--insecure-registry", &to]);
    let run = context.op(&insecure);
    run.success();
    assert_eq!(
        run.stdout,
        format!("{to_repo}/app:v1@{digest}\n"),
        "{}",
        run.report()
    );
}

/// `op builder base` publishes to an HTTPS registry of a private CA through the token flow.
#[test]
fn op_makes_base_images_in_an_https_registry_of_a_private_ca() {
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &secure.addr());
    let image = format!("{}/base/busybox:1", secure.addr());
    let run = TestContext::new()
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string())
        .op(&["builder", "base", &image]);
    run.success();
    let served = crane_in(&ca, home.path(), None, &["digest", &image]);
    let digest = String::from_utf8_lossy(&served.stdout).trim().to_string();
    assert!(
        run.stdout.contains(&digest) && digest.starts_with("sha256:"),
        "{digest:?}\n{}",
        run.report()
    );
}

/// `op builder create` publishes a builder to an HTTPS registry of a private CA through the
/// token flow, its base images read from a plain-HTTP registry.
#[test]
fn op_creates_builders_in_an_https_registry_of_a_private_ca() {
    let stack = Stack::start(Lifecycle::Op);
    let Secure { ca, key, issuer } = Secure::new();
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &secure.addr());
    let context = TestContext::new()
        .env("OP_LIFECYCLE_DIR", &lifecycle_dir())
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    copy_dir(
        &crate::common::fixtures().join("builders/busybox"),
        &context.path().join("builder"),
    );
    let toml = context.path().join("builder/builder.toml");
    let text = fs_err::read_to_string(&toml)
        .unwrap()
        .replace("localhost:5001", &stack.registry.addr());
    fs_err::write(&toml, text).unwrap();
    let builder = format!("{}/op/builder:latest", secure.addr());
    let run = context.op(&[
        "builder",
        "create",
        &builder,
        "--config",
        toml.to_str().unwrap(),
    ]);
    run.success();
    let served = crane_in(&ca, home.path(), None, &["config", &builder]);
    let config = String::from_utf8_lossy(&served.stdout);
    assert!(
        served.status.success() && config.contains("io.buildpacks.builder.metadata"),
        "{served:?}\n{}",
        run.report()
    );
}

/// A CA of the test's own, the key its token issuer signs with, and the issuer (over HTTPS, with
/// a certificate of the CA): what the registries of a test are started with.
struct Secure {
    ca: TestCa,
    key: Arc<SigningKey>,
    issuer: TokenServer,
}

impl Secure {
    fn new() -> Self {
        let ca = TestCa::new();
        let key = Arc::new(SigningKey::new());
        let issuer = TokenServer::start(Arc::clone(&key), &ca.server("issuer"));
        Self { ca, key, issuer }
    }
}

/// crane, trusting the test CA, with the Docker configuration of `home` (and `path` first on
/// PATH, for credential helpers).
fn crane_in(ca: &TestCa, home: &Path, path: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(crane());
    command
        .args(args)
        .env("SSL_CERT_FILE", ca.cert())
        .env("DOCKER_CONFIG", home.join(".docker"));
    if let Some(dir) = path {
        command.env(
            "PATH",
            format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
        );
    }
    command.output().unwrap()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs_err::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Every artifact of the hybrid fixture is in the build result as a reference of the registry
/// op was given, and the registry serves it with that digest, as crane reads it with the
/// credentials of `home`.
#[track_caller]
fn hybrid_published(
    ca: &TestCa,
    (home, repo): (&Path, &str),
    context: &TestContext,
    run: &crate::common::Run,
) {
    let result = build_result(context);
    for name in ["op-base", "tool", "cli", "op"] {
        let tag = tag_of(&result, name);
        let (reference, digest) = tag.split_once('@').unwrap();
        assert!(reference.starts_with(&format!("{repo}/{name}:")), "{tag}");
        let served = crane_in(ca, home, None, &["digest", reference]);
        assert_eq!(
            String::from_utf8_lossy(&served.stdout).trim(),
            digest,
            "{name} is in the registry: {}\n{}",
            String::from_utf8_lossy(&served.stderr),
            run.report()
        );
    }
}

/// `reference` is not in its registry, as crane reads it with the credentials of `home`
/// (which the registry takes: a refusal would say nothing).
fn assert_untagged(ca: &TestCa, home: &Path, reference: &str) {
    let read = crane_in(ca, home, None, &["digest", reference]);
    assert!(
        String::from_utf8_lossy(&read.stderr).contains("MANIFEST_UNKNOWN"),
        "{reference} is not there: {read:?}"
    );
}

/// An image of one file pushed by crane to `registry` as `team/app:v1`, and a build result in
/// `context` that names it: its reference and digest.
fn publish_app(
    context: &TestContext,
    ca: &TestCa,
    (home, path): (&Path, Option<&Path>),
    registry: &Registry,
) -> (String, String) {
    let layer = context.path().join("layer.tar");
    one_file_layer(&layer, "hello");
    let source = format!("{}/team/app:v1", registry.addr());
    let push = [
        "append",
        "--new_layer",
        layer.to_str().unwrap(),
        "--new_tag",
        &source,
    ];
    let pushed = crane_in(ca, home, path, &push);
    assert!(pushed.status.success(), "{pushed:?}");
    let out = crane_in(ca, home, path, &["digest", &source]);
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let entry = serde_json::json!({"imageName": "app", "tag": format!("{source}@{digest}")});
    context.write(
        "build_result.json",
        &serde_json::json!({ "builds": [entry] }).to_string(),
    );
    (source, digest)
}
