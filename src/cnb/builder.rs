//! What op needs to know about a builder image, read from its config (`docs/cnb-platform.md`
//! section 3): the build user, the lifecycle's Platform APIs, the run images and the buildpacks.

use std::collections::BTreeMap;

use cnb_data::api::Version;
use cnb_data::files::{BuilderMetadata, Group};
use op_oci::Reference;

use super::Error;

/// The Platform APIs op drives, oldest first (as the production builder's lifecycle 0.21).
pub const PLATFORM_APIS: [Version; 9] = [
    Version(0, 7),
    Version(0, 8),
    Version(0, 9),
    Version(0, 10),
    Version(0, 11),
    Version(0, 12),
    Version(0, 13),
    Version(0, 14),
    Version(0, 15),
];

/// Builders op trusts without being told (any tag or digest of them).
pub const TRUSTED_BUILDERS: [&str; 1] = ["ghcr.io/octopilot/builder-jammy-base"];

/// The label of a builder's metadata.
pub const METADATA_LABEL: &str = "io.buildpacks.builder.metadata";

/// The label of a builder's order.
pub const ORDER_LABEL: &str = "io.buildpacks.buildpack.order";

/// A builder image, as its config describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuilderInfo {
    pub image: String,
    pub uid: u32,
    pub gid: u32,
    pub metadata: BuilderMetadata,
    /// The Platform APIs its lifecycle supports (supported and deprecated).
    pub platform_apis: Vec<Version>,
    /// Its order (empty when it has no order label).
    pub order: Vec<Group>,
    /// What makes it this builder: a digest of its environment, labels and, once
    /// [`with_layers`](Self::with_layers) is given them, its layers (the same on every engine and
    /// in the registry, unlike an engine's image id).
    pub identity: String,
}

impl BuilderInfo {
    /// Reads the config of builder `image`: its `Env` and labels.
    pub fn from_config(
        image: &str,
        env: &[String],
        labels: &BTreeMap<String, String>,
    ) -> Result<Self, Error> {
        let problem = |p: String| Error::NotABuilder {
            builder: image.to_string(),
            problem: p,
        };
        let var = |name: &str| {
            env.iter()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        let id = |name: &str| -> Result<u32, Error> {
            let value = var(name).ok_or_else(|| problem(format!("it sets no {name}")))?;
            value
                .trim()
                .parse()
                .map_err(|_| problem(format!("its {name} `{value}` is not a number")))
        };
        let (uid, gid) = (id("CNB_USER_ID")?, id("CNB_GROUP_ID")?);
        let label = labels
            .get(METADATA_LABEL)
            .ok_or_else(|| problem(format!("it has no `{METADATA_LABEL}` label")))?;
        let metadata: BuilderMetadata = serde_json::from_str(label)
            .map_err(|e| problem(format!("its `{METADATA_LABEL}` label is not readable: {e}")))?;
        let lifecycle = &metadata.lifecycle;
        let mut listed: Vec<&str> = Vec::new();
        if let Some(apis) = &lifecycle.apis {
            listed.extend(apis.platform.supported.iter().map(String::as_str));
            listed.extend(apis.platform.deprecated.iter().map(String::as_str));
        }
        if listed.is_empty() {
            listed.extend(lifecycle.api.as_ref().map(|a| a.platform.as_str()));
        }
        let mut platform_apis: Vec<Version> =
            listed.iter().filter_map(|v| Version::parse(v)).collect();
        platform_apis.sort_unstable();
        platform_apis.dedup();
        if platform_apis.is_empty() {
            return Err(problem("its metadata names no Platform API".into()));
        }
        let order = match labels.get(ORDER_LABEL) {
            Some(label) => serde_json::from_str(label)
                .map_err(|e| problem(format!("its `{ORDER_LABEL}` label is not readable: {e}")))?,
            None => Vec::new(),
        };
        let identity = op_oci::sha256(serde_json::json!([env, labels]).to_string().as_bytes());
        Ok(Self {
            image: image.to_string(),
            uid,
            gid,
            metadata,
            platform_apis,
            order,
            identity,
        })
    }

    /// The builder, its [`identity`](Self::identity) covering its `layers` (their diff ids) too.
    #[must_use]
    pub fn with_layers(mut self, layers: &[String]) -> Self {
        let text = serde_json::json!([self.identity, layers]).to_string();
        self.identity = op_oci::sha256(text.as_bytes());
        self
    }

    /// The highest Platform API both op and the lifecycle support (pack's `FindLatestSupported`).
    pub fn platform_api(&self) -> Result<Version, Error> {
        self.platform_apis
            .iter()
            .rev()
            .copied()
            .find(|v| PLATFORM_APIS.contains(v))
            .ok_or_else(|| {
                let list = |vs: &[Version]| {
                    vs.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                Error::NoCommonPlatformApi {
                    builder: self.image.clone(),
                    builder_apis: list(&self.platform_apis),
                    op_apis: list(&PLATFORM_APIS),
                }
            })
    }

    /// The default run image for an image published to `target`: the builder's first run image,
    /// or its mirror in the registry of `target` (pack's preference), as op names it.
    pub fn run_image_for(&self, target: &Reference) -> Option<Reference> {
        let registry_of = |r: &str| Reference::parse(r).ok().map(|r| r.registry().to_string());
        let image = self
            .metadata
            .run_image()?
            .for_output(&target.to_string(), registry_of);
        Reference::parse(image).ok()
    }

    /// The builder's default run image and its mirrors: what the lifecycle may read for an
    /// artifact that names no run image.
    /// (Those the builder's label names that are not references are left out: the lifecycle
    /// cannot read them either.)
    pub fn default_run_images(&self) -> Vec<Reference> {
        self.metadata
            .run_image()
            .map(|run| {
                std::iter::once(&run.image)
                    .chain(&run.mirrors)
                    .filter_map(|r| Reference::parse(r).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// skaffold's `buildpacks.buildpacks` entries (`id`, `id@version`,
    /// `urn:cnb:builder:id[@version]`) as the builder's buildpacks (`id`, `version`).
    pub fn resolve_buildpacks(&self, wanted: &[String]) -> Result<Vec<(String, String)>, String> {
        wanted
            .iter()
            .map(|entry| {
                let (id, version) = buildpack_id(entry);
                self.resolve_buildpack(id, version)
            })
            .collect()
    }

    /// The builder's buildpack `id`, of `version` or, without one, the only version the builder
    /// has (pack's rule: with several, the version must be named).
    pub fn resolve_buildpack(
        &self,
        id: &str,
        version: Option<&str>,
    ) -> Result<(String, String), String> {
        let versions: Vec<&str> = self
            .metadata
            .buildpacks
            .iter()
            .filter(|b| b.id == id)
            .map(|b| b.version.as_str())
            .collect();
        match (version, versions.as_slice()) {
            (_, []) => Err(format!(
                "buildpack `{id}` is not in builder `{}`",
                self.image
            )),
            (Some(wanted), _) if versions.contains(&wanted) => {
                Ok((id.to_string(), wanted.to_string()))
            }
            (Some(wanted), _) => Err(format!(
                "builder `{}` has buildpack `{id}` in version {}, not `{wanted}`",
                self.image,
                versions.join(", ")
            )),
            (None, [only]) => Ok((id.to_string(), (*only).to_string())),
            (None, several) => Err(format!(
                "builder `{}` has buildpack `{id}` in versions {}: name one (`{id}@<version>`), as pack asks",
                self.image,
                several.join(", ")
            )),
        }
    }

    /// `id@version` of the builder's buildpacks.
    pub fn buildpacks(&self) -> Vec<String> {
        self.metadata
            .buildpacks
            .iter()
            .map(|b| format!("{}@{}", b.id, b.version))
            .collect()
    }
}

/// The id and version a builder's buildpack is named by: `id`, `id@version`, either after
/// `urn:cnb:builder:` or `from=builder:` (pack's forms).
pub fn buildpack_id(entry: &str) -> (&str, Option<&str>) {
    let bare = entry
        .strip_prefix("urn:cnb:builder:")
        .or_else(|| entry.strip_prefix("from=builder:"))
        .unwrap_or(entry);
    match bare.split_once('@') {
        Some((id, version)) => (id, Some(version)),
        None => (bare, None),
    }
}

/// Whether op runs `builder`'s creator: it is one of [`TRUSTED_BUILDERS`] or the user trusts it.
pub fn is_trusted(builder: &Reference, trusted_by_user: bool) -> bool {
    if trusted_by_user {
        return true;
    }
    TRUSTED_BUILDERS.contains(&builder.name().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }
    use cnb_data::files::LabelBuildpack;

    fn labels(metadata: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(METADATA_LABEL.to_string(), metadata.to_string())])
    }

    fn env() -> Vec<String> {
        vec![
            "PATH=/bin".into(),
            "CNB_USER_ID=1001".into(),
            "CNB_GROUP_ID=1002".into(),
        ]
    }

    const JAMMY: &str = r#"{"lifecycle":{"version":"0.21.1","api":{"buildpack":"0.7","platform":"0.7"},
        "apis":{"buildpack":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11"]},
                "platform":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12","0.13","0.14","0.15","0.16"]}}},
        "images":[{"image":"ghcr.io/octopilot/run-jammy-base:latest","mirrors":["mirror.example/run:latest"]}],
        "buildpacks":[{"id":"paketo-buildpacks/go","version":"4.1.0"}]}"#;

    #[test]
    fn the_highest_common_platform_api_wins() {
        let builder = BuilderInfo::from_config("b", &env(), &labels(JAMMY)).unwrap();
        assert_eq!((builder.uid, builder.gid), (1001, 1002));
        assert_eq!(
            builder.platform_api().unwrap(),
            Version(0, 15),
            "0.16 is the builder's, not op's"
        );
        assert_eq!(builder.buildpacks(), ["paketo-buildpacks/go@4.1.0"]);

        let legacy = BuilderInfo::from_config(
            "b",
            &env(),
            &labels(
                r#"{"lifecycle":{"version":"0.9.0","api":{"buildpack":"0.2","platform":"0.3"}}}"#,
            ),
        )
        .unwrap();
        let error = legacy.platform_api().unwrap_err();
        assert!(
            error
                .to_string()
                .contains("supports Platform API 0.3, and op supports 0.7"),
            "{error}"
        );
    }

    /// The labels of a builder made by the real `pack builder create` (pack 0.40.3, lifecycle
    /// 0.21.0): Go writes nil lists as `null` (`"mirrors":null`, `"extensions":null`).
    fn pack_made_labels() -> BTreeMap<String, String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/labels/pack-0.40.3-builder.json"
        );
        serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn builders_made_by_pack_are_read_nulls_and_all() {
        let labels = pack_made_labels();
        assert!(labels[METADATA_LABEL].contains(r#""mirrors":null"#));
        let builder = BuilderInfo::from_config("pack-made", &env(), &labels).unwrap();
        assert_eq!(builder.platform_api().unwrap(), Version(0, 15));
        assert_eq!(builder.metadata.lifecycle.version, "0.21.0");
        let run = builder.metadata.run_image().unwrap();
        assert_eq!(run.image, "localhost:5001/op/busybox-run:latest");
        assert!(run.mirrors.is_empty(), "null mirrors are none");
        assert_eq!(
            builder.buildpacks(),
            [
                "op/greeting@0.1.0",
                "op/procfile@0.1.0",
                "op/deps@0.1.0",
                "op/static-site@0.1.0"
            ]
        );
        assert_eq!(
            builder
                .metadata
                .created_by
                .as_ref()
                .map(|c| c.name.as_str()),
            Some("Pack CLI")
        );
    }

    #[test]
    fn images_that_are_not_builders_are_refused_with_the_reason() {
        let error =
            BuilderInfo::from_config("b", &["PATH=/bin".into()], &labels(JAMMY)).unwrap_err();
        assert!(
            error.to_string().ends_with("it sets no CNB_USER_ID"),
            "{error}"
        );
        let error = BuilderInfo::from_config("b", &env(), &BTreeMap::new()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no `io.buildpacks.builder.metadata` label"),
            "{error}"
        );
        let error = BuilderInfo::from_config("b", &env(), &labels("{")).unwrap_err();
        assert!(error.to_string().contains("not readable"), "{error}");
    }

    #[test]
    fn the_run_image_mirror_in_the_target_registry_is_preferred() {
        let builder = BuilderInfo::from_config("b", &env(), &labels(JAMMY)).unwrap();
        assert_eq!(
            builder.run_image_for(&r("mirror.example/app:1")),
            Some(r("mirror.example/run:latest"))
        );
        assert_eq!(
            builder.run_image_for(&r("localhost:5001/app:1")),
            Some(r("ghcr.io/octopilot/run-jammy-base:latest"))
        );
    }

    #[test]
    fn buildpacks_are_resolved_against_the_builder() {
        let mut builder = BuilderInfo::from_config("b", &env(), &labels(JAMMY)).unwrap();
        builder.metadata.buildpacks = [
            ("op/procfile", "0.1.0"),
            ("op/procfile", "0.2.0"),
            ("op/greeting", "0.1.0"),
        ]
        .map(|(id, version)| LabelBuildpack {
            id: id.into(),
            version: version.into(),
            homepage: None,
        })
        .to_vec();
        let wanted = [
            "op/greeting".to_string(),
            "urn:cnb:builder:op/procfile@0.1.0".to_string(),
        ];
        assert_eq!(
            builder.resolve_buildpacks(&wanted).unwrap(),
            [
                ("op/greeting".to_string(), "0.1.0".to_string()),
                ("op/procfile".to_string(), "0.1.0".to_string())
            ]
        );
        let several = builder
            .resolve_buildpacks(&["op/procfile".to_string()])
            .unwrap_err();
        assert!(
            several.contains("in versions 0.1.0, 0.2.0: name one"),
            "{several}"
        );
        let missing = builder
            .resolve_buildpacks(&["docker://x/bp".to_string()])
            .unwrap_err();
        assert!(
            missing.contains("`docker://x/bp` is not in builder"),
            "{missing}"
        );
        let version = builder
            .resolve_buildpacks(&["op/greeting@9".to_string()])
            .unwrap_err();
        assert!(version.contains("in version 0.1.0, not `9`"), "{version}");
    }

    #[test]
    fn op_trusts_its_own_builder_in_any_version_and_others_when_told() {
        assert!(is_trusted(
            &r("ghcr.io/octopilot/builder-jammy-base"),
            false
        ));
        assert!(is_trusted(
            &r("ghcr.io/octopilot/builder-jammy-base:0.3.1"),
            false
        ));
        assert!(is_trusted(
            &r(&format!(
                "ghcr.io/octopilot/builder-jammy-base@sha256:{}",
                "a".repeat(64)
            )),
            false
        ));
        assert!(!is_trusted(
            &r("ghcr.io/octopilot/builder-jammy-base-evil:latest"),
            false
        ));
        assert!(!is_trusted(&r("localhost:5001/op/builder:latest"), false));
        assert!(is_trusted(&r("localhost:5001/op/builder:latest"), true));
    }
}
