//! What the lifecycle's exit codes (`docs/cnb-platform.md` section 1.7) mean to someone who ran
//! `op build-push`.

/// The failure of a creator that exited with `code` after printing `tail` (its last lines):
/// what happened, and what to do. A registry that refused the lifecycle gets a hint naming it,
/// whatever the code: the reference lifecycle exits 1 when it happens as the analyzer starts,
/// op-lifecycle 32.
pub fn describe(code: i64, tail: &[String]) -> (String, Option<String>) {
    let (what, hint) = describe_code(code);
    (what, refused_by(tail).or(hint))
}

/// The registry a line of the lifecycle's output says refused it (`401 Unauthorized`, `403
/// Forbidden`, `Not authorized`, `DENIED`), and what to do.
fn refused_by(tail: &[String]) -> Option<String> {
    const REFUSALS: [&str; 5] = [
        "401 unauthorized",
        "403 forbidden",
        "not authorized",
        "unauthorized:",
        "denied:",
    ];
    tail.iter().rev().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        if !REFUSALS.iter().any(|r| lower.contains(r)) {
            return None;
        }
        let host = line.split("://").nth(1)?.split('/').next()?;
        Some(format!(
            "the registry `{host}` refused the lifecycle (the ERROR line above): give op credentials for it \
             (`docker login {host}`, or a credential helper in the Docker configuration)"
        ))
    })
}

fn describe_code(code: i64) -> (String, Option<String>) {
    let (what, hint): (&str, Option<&str>) = match code {
        2 => (
            "the lifecycle did not understand op's flags",
            Some("the builder's lifecycle may be too old for op"),
        ),
        3 => (
            "the lifecycle refused its inputs (invalid arguments)",
            Some("see the lifecycle's output above"),
        ),
        11 => (
            "the lifecycle does not support the Platform API op chose",
            Some("use a builder with a newer lifecycle"),
        ),
        12 => (
            "a buildpack's API is not supported by the builder's lifecycle",
            Some("use buildpacks and a builder of the same generation"),
        ),
        20 => (
            "no buildpack detected the app in the artifact's context",
            Some(
                "check `context` in skaffold.yaml, and that the builder has buildpacks for this kind of app",
            ),
        ),
        21 => (
            "no buildpack detected the app, and at least one failed while trying",
            Some("see the detection output above"),
        ),
        22 | 52 => (
            "the lifecycle failed",
            Some("see the lifecycle's output above"),
        ),
        30..=39 => (
            "the lifecycle could not read the run image or the previous image",
            Some(
                "check that the registry is reachable from the build container and the credentials allow reading",
            ),
        ),
        40..=49 => (
            "the lifecycle could not restore the cache",
            Some("rebuild with `clearCache: true` on the artifact"),
        ),
        51 => (
            "a buildpack failed",
            Some("see the buildpack's output above, prefixed with the artifact's name"),
        ),
        60..=69 => (
            "the lifecycle could not publish the image",
            Some(
                "check that the registry is reachable from the build container and the credentials allow pushing",
            ),
        ),
        _ => ("the lifecycle failed", None),
    };
    (
        format!("{what} (exit code {code})"),
        hint.map(str::to_string),
    )
}

#[cfg(test)]
mod tests {
    /// What a code means without any output to go by.
    fn describe(code: i64) -> (String, Option<String>) {
        super::describe(code, &[])
    }

    #[test]
    fn a_registry_that_refused_the_lifecycle_is_named_whatever_the_code() {
        let reference = [
            "===> ANALYZING".to_string(),
            "ERROR: failed to initialize analyzer: validating registry read access: failed to ensure registry read access to reg.example:5000/base/run:latest: HEAD http://reg.example:5000/v2/base/run/manifests/latest: unexpected status code 401 Unauthorized (HEAD responses have no body, use GET for details)".to_string(),
        ];
        let (what, hint) = super::describe(1, &reference);
        assert_eq!(what, "the lifecycle failed (exit code 1)");
        assert!(
            hint.as_deref()
                .is_some_and(|h| h.contains("`reg.example:5000` refused")
                    && h.contains("docker login reg.example:5000")),
            "{hint:?}"
        );
        let op_lifecycle = ["ERROR: failed to analyze: Failed to read the manifest of `127.0.0.1:5001/base/run:latest`: Not authorized: url http://127.0.0.1:5001/v2/base/run/manifests/latest".to_string()];
        assert!(
            super::describe(32, &op_lifecycle)
                .1
                .unwrap()
                .contains("`127.0.0.1:5001` refused")
        );
        let unrelated = ["ERROR: no space left on device".to_string()];
        assert_eq!(super::describe(62, &unrelated).1, describe(62).1);
    }

    #[test]
    fn codes_become_sentences_with_hints() {
        let (what, hint) = describe(20);
        assert_eq!(
            what,
            "no buildpack detected the app in the artifact's context (exit code 20)"
        );
        assert!(hint.unwrap().contains("context"));
        assert!(describe(51).1.unwrap().contains("prefixed"));
        assert!(describe(11).0.contains("Platform API"));
        assert!(describe(12).0.contains("buildpack's API"));
        assert!(describe(62).0.contains("publish"));
        assert_eq!(describe(137).1, None);
    }
}
