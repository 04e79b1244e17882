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
