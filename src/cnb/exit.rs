//! Why a creator failed, from its exit code (the lifecycle's named codes, `cnb_data::exit`,
//! and the spec's ranges: `docs/cnb-platform.md` section 1.7), and what to do about it.

use std::fmt;

use cnb_data::exit as code;

/// A creator's failure, by its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 2: the lifecycle did not understand op's flags.
    Usage,
    /// 3: it refused its inputs.
    InvalidArgs,
    /// 11: it does not support the Platform API op chose.
    PlatformApi,
    /// 12: a buildpack's API is not supported.
    BuildpackApi,
    /// 20: no buildpack detected the app.
    NothingDetected,
    /// 21: no buildpack detected the app, and one failed while trying.
    DetectErrored,
    /// 30–39: the run image or the previous image could not be read.
    Analyze(i64),
    /// 40–49: the cache could not be restored.
    Restore(i64),
    /// 51: a buildpack's `bin/build` failed.
    Buildpack,
    /// 60–69: the image could not be published.
    Export(i64),
    /// Another code (1, 22, 52, a signal's …).
    Other(i64),
}

impl Failure {
    pub fn from_code(exit: i64) -> Self {
        let named = |c: i32| i64::from(c);
        match exit {
            e if e == named(code::USAGE) => Self::Usage,
            e if e == named(code::INVALID_ARGS) => Self::InvalidArgs,
            e if e == named(code::INCOMPATIBLE_PLATFORM_API) => Self::PlatformApi,
            e if e == named(code::INCOMPATIBLE_BUILDPACK_API) => Self::BuildpackApi,
            e if e == named(code::FAILED_DETECT) => Self::NothingDetected,
            e if e == named(code::FAILED_DETECT_WITH_ERRORS) => Self::DetectErrored,
            e if e == named(code::FAILED_BUILD_WITH_ERRORS) => Self::Buildpack,
            30..=39 => Self::Analyze(exit),
            40..=49 => Self::Restore(exit),
            60..=69 => Self::Export(exit),
            other => Self::Other(other),
        }
    }

    /// The exit code.
    pub fn code(self) -> i64 {
        let named = |c: i32| i64::from(c);
        match self {
            Self::Usage => named(code::USAGE),
            Self::InvalidArgs => named(code::INVALID_ARGS),
            Self::PlatformApi => named(code::INCOMPATIBLE_PLATFORM_API),
            Self::BuildpackApi => named(code::INCOMPATIBLE_BUILDPACK_API),
            Self::NothingDetected => named(code::FAILED_DETECT),
            Self::DetectErrored => named(code::FAILED_DETECT_WITH_ERRORS),
            Self::Buildpack => named(code::FAILED_BUILD_WITH_ERRORS),
            Self::Analyze(c) | Self::Restore(c) | Self::Export(c) | Self::Other(c) => c,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Usage => "the lifecycle did not understand op's flags",
            Self::InvalidArgs => "the lifecycle refused its inputs (invalid arguments)",
            Self::PlatformApi => "the lifecycle does not support the Platform API op chose",
            Self::BuildpackApi => "a buildpack's API is not supported by the builder's lifecycle",
            Self::NothingDetected => "no buildpack detected the app in the artifact's context",
            Self::DetectErrored => {
                "no buildpack detected the app, and at least one failed while trying"
            }
            Self::Analyze(_) => "the lifecycle could not read the run image or the previous image",
            Self::Restore(_) => "the lifecycle could not restore the cache",
            Self::Buildpack => "a buildpack failed",
            Self::Export(_) => "the lifecycle could not publish the image",
            Self::Other(_) => "the lifecycle failed",
        }
    }

    /// What to do about it, when there is something to say.
    pub fn hint(self) -> Option<&'static str> {
        match self {
            Self::Usage => Some("the builder's lifecycle may be too old for op"),
            Self::InvalidArgs => Some("see the lifecycle's output above"),
            Self::PlatformApi => Some("use a builder with a newer lifecycle"),
            Self::BuildpackApi => Some("use buildpacks and a builder of the same generation"),
            Self::NothingDetected => Some(
                "check `context` in skaffold.yaml, and that the builder has buildpacks for this kind of app",
            ),
            Self::DetectErrored => Some("see the detection output above"),
            Self::Analyze(_) => Some(
                "the lifecycle's ERROR line says what failed; when it names a registry, check that the registry is \
                 reachable from the build container and the credentials allow reading",
            ),
            Self::Restore(_) => Some("rebuild with `clearCache: true` on the artifact"),
            Self::Buildpack => {
                Some("see the buildpack's output above, prefixed with the artifact's name")
            }
            Self::Export(_) => Some(
                "check that the registry is reachable from the build container and the credentials allow pushing",
            ),
            Self::Other(c)
                if c == i64::from(code::DETECT_ERROR) || c == i64::from(code::BUILD_ERROR) =>
            {
                Some("see the lifecycle's output above")
            }
            Self::Other(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (exit code {})", self.what(), self.code())
    }
}

/// The registry a line of the lifecycle's output says refused it (`401 Unauthorized`, `403
/// Forbidden`, `Not authorized`, `DENIED`): worth a hint of its own, whatever the exit code
/// (the reference lifecycle exits 1 when it happens as the analyzer starts, op-lifecycle 32).
pub fn refused_by(tail: &[String]) -> Option<String> {
    const REFUSALS: [&str; 9] = [
        "401 unauthorized",
        "403 forbidden",
        "not authorized",
        "unauthorized:",
        "denied:",
        // oci-client's, in op-lifecycle's errors: `code: 401, message: {"errors":[…]}`.
        "code: 401",
        "code: 403",
        "\"unauthorized\"",
        "\"denied\"",
    ];
    tail.iter().rev().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        if !REFUSALS.iter().any(|r| lower.contains(r)) {
            return None;
        }
        Some(line.split("://").nth(1)?.split('/').next()?.to_string())
    })
}

/// What to do about a registry that refused the lifecycle, which had credentials for it or not.
pub fn refused_hint(registry: &str, credentialed: bool) -> String {
    if credentialed {
        format!(
            "the registry `{registry}` refused the account op has for it (the ERROR line above): the \
             account may not push (or read) there, or its token service refused it; log in with one \
             that may (`docker login {registry}`), or have it granted the right"
        )
    } else {
        format!(
            "the registry `{registry}` refused the lifecycle (the ERROR line above): give op credentials for it \
             (`docker login {registry}`, or a credential helper in the Docker configuration)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_that_refused_the_lifecycle_is_found_in_its_last_lines() {
        let reference = [
            "===> ANALYZING".to_string(),
            "ERROR: failed to initialize analyzer: validating registry read access: failed to ensure registry read access to reg.example:5000/base/run:latest: HEAD http://reg.example:5000/v2/base/run/manifests/latest: unexpected status code 401 Unauthorized (HEAD responses have no body, use GET for details)".to_string(),
        ];
        assert_eq!(refused_by(&reference).as_deref(), Some("reg.example:5000"));
        let hint = refused_hint("reg.example:5000", false);
        assert!(
            hint.contains("`reg.example:5000` refused the lifecycle")
                && hint.contains("docker login reg.example:5000"),
            "{hint}"
        );
        let hint = refused_hint("reg.example:5000", true);
        assert!(
            hint.contains("refused the account op has for it") && hint.contains("may not push"),
            "{hint}"
        );
        let push_scope = [r#"ERROR: failed to export: Failed to copy blob sha256:e18f to `127.0.0.1:37635/procfile:latest`: Server error: url https://127.0.0.1:37635/v2/procfile/blobs/uploads/, code: 401, message: {"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string()];
        assert_eq!(refused_by(&push_scope).as_deref(), Some("127.0.0.1:37635"));
        let op_lifecycle = ["ERROR: failed to analyze: Failed to read the manifest of `127.0.0.1:5001/base/run:latest`: Not authorized: url http://127.0.0.1:5001/v2/base/run/manifests/latest".to_string()];
        assert_eq!(refused_by(&op_lifecycle).as_deref(), Some("127.0.0.1:5001"));
        assert_eq!(
            refused_by(&["ERROR: no space left on device".to_string()]),
            None
        );
    }

    #[test]
    fn codes_become_failures_with_sentences_and_hints() {
        assert_eq!(Failure::from_code(20), Failure::NothingDetected);
        assert_eq!(
            Failure::NothingDetected.to_string(),
            "no buildpack detected the app in the artifact's context (exit code 20)"
        );
        assert!(Failure::NothingDetected.hint().unwrap().contains("context"));
        assert!(Failure::from_code(51).hint().unwrap().contains("prefixed"));
        assert!(Failure::from_code(11).to_string().contains("Platform API"));
        assert!(
            Failure::from_code(12)
                .to_string()
                .contains("buildpack's API")
        );
        assert_eq!(Failure::from_code(62), Failure::Export(62));
        assert!(Failure::from_code(62).to_string().contains("publish"));
        assert_eq!(
            Failure::from_code(1).to_string(),
            "the lifecycle failed (exit code 1)"
        );
        assert_eq!(Failure::from_code(137).hint(), None);
        assert!(Failure::from_code(52).hint().is_some());
        for code in [2, 3, 11, 12, 20, 21, 22, 32, 42, 51, 52, 62, 137] {
            assert_eq!(Failure::from_code(code).code(), code, "the code is kept");
        }
    }
}
