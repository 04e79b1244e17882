//! What the lifecycle's exit codes (`docs/cnb-platform.md` section 1.7) mean to someone who ran
//! `op build-push`.

/// The failure of a creator that exited with `code`: what happened, and what to do.
pub fn describe(code: i64) -> (String, Option<String>) {
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
    use super::*;

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
