//! Registries as users have them (issue #19): HTTPS with a CA of the company's own and the token
//! flow, here a CA made per test and the test token issuer (`common::tls`, `common::token`), in
//! front of the real distribution registry.

use std::process::Command;
use std::sync::Arc;

use crate::build_push::apps;
use crate::common::cnb::{Lifecycle, Stack, crane, leftovers, write_docker_config};
use crate::common::registry::Registry;
use crate::common::tls::{SigningKey, TestCa};
use crate::common::token::TokenServer;
use crate::common::{build_result, tag_of};

on_each_builder!(op_publishes_to_an_https_registry_of_a_private_ca_through_the_token_flow);

/// The build's image goes to an HTTPS registry on a loopback port whose certificate a CA of the
/// test's own signed, and which wants tokens: op trusts the CA of `OP_REGISTRY_CA_PATH` for its
/// own requests and hands it to the creator (both lifecycles push there, through tokens the
/// registry checks); the builder and run image come from a plain-HTTP registry in the same
/// build. What was published is read back by crane, which trusts the CA too.
fn op_publishes_to_an_https_registry_of_a_private_ca_through_the_token_flow(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let ca = TestCa::new();
    let key = Arc::new(SigningKey::new());
    let issuer = TokenServer::start(Arc::clone(&key), &ca.server("issuer"));
    let secure = Registry::start_secure(&ca.server("registry"), &issuer, &key);
    let repo = secure.addr();
    let home = tempfile::tempdir().unwrap();
    write_docker_config(home.path(), &repo);
    let context = apps(&stack)
        .env("HOME", &home.path().display().to_string())
        .env("OP_REGISTRY_CA_PATH", &ca.cert().display().to_string());
    let run = context.op(&["build-push", "--repo", &repo, "--artifact", "procfile"]);
    run.success();
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
    assert_eq!(leftovers(&stack.registry.addr()), Vec::<String>::new());
}
