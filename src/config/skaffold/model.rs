//! The parts of a skaffold configuration op reads, as serde types.
//!
//! One model serves every `apiVersion`: the keys renamed over the schema's history are accepted
//! under both names (`imageName`/`image`, `workspace`/`context`, `buildpack`/`buildpacks`,
//! `dockerfilePath`/`dockerfile`). Artifacts and their `docker`/`buildpacks` sections refuse
//! unknown keys, as skaffold does, so that a typo is an error instead of a silently ignored
//! setting. Sections op does not use (`deploy`, `test`, …) are accepted and ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::config::yaml::{ScalarString, nullable};

/// Top-level keys of a skaffold configuration, across every schema version. A key starting with
/// `.` is accepted too: skaffold drops those, so they can hold YAML anchors.
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "requires",
    "build",
    "test",
    "manifests",
    "deploy",
    "portForward",
    "resourceSelector",
    "verify",
    "customActions",
    "profiles",
];

/// One YAML document of a skaffold file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Document {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) metadata: Metadata,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) requires: Vec<ConfigDependency>,
    #[serde(default)]
    pub(crate) build: Option<Build>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) profiles: Vec<Profile>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// An entry of `requires`: other configurations this one needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfigDependency {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) configs: Vec<String>,
    #[serde(default)]
    pub(crate) path: Option<String>,
    #[serde(default)]
    pub(crate) git: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) google_cloud_storage: Option<IgnoredAny>,
    #[serde(default, rename = "googleCloudBuildRepoV2")]
    pub(crate) google_cloud_build_repo_v2: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) active_profiles: Vec<ProfileDependency>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProfileDependency {
    pub(crate) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) activated_by: Vec<String>,
}

/// The `build` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Build {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) artifacts: Vec<Artifact>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) insecure_registries: Vec<String>,
    #[serde(default)]
    pub(crate) local: Option<Local>,
}

/// `build.local`: skaffold's local builder (the Docker Engine). op reads its `push`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Local {
    #[serde(default)]
    pub(crate) push: Option<bool>,
}

/// One entry of `build.artifacts`.
#[allow(
    dead_code,
    reason = "keys skaffold defines and op does not use are accepted, not read"
)]
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Artifact {
    #[serde(default, alias = "imageName")]
    pub(crate) image: Option<String>,
    #[serde(default, alias = "workspace")]
    pub(crate) context: Option<String>,
    #[serde(default)]
    pub(crate) docker: Option<Docker>,
    #[serde(default, alias = "buildpack")]
    pub(crate) buildpacks: Option<Buildpacks>,
    #[serde(default)]
    pub(crate) bazel: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) jib: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) jib_maven: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) jib_gradle: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) kaniko: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) custom: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) ko: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) plugin: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) requires: Vec<ArtifactDependency>,
    #[serde(default)]
    pub(crate) sync: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) hooks: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) platforms: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) runtime_type: Option<IgnoredAny>,
    /// skaffold/v1alpha1 kept the Dockerfile settings on the artifact itself.
    #[serde(default)]
    pub(crate) dockerfile_path: Option<String>,
    #[serde(default)]
    pub(crate) build_args: Option<BTreeMap<String, Option<ScalarString>>>,
}

/// An entry of an artifact's `requires`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactDependency {
    pub(crate) image: String,
    #[serde(default)]
    pub(crate) alias: Option<String>,
}

/// `docker:` of an artifact.
#[allow(
    dead_code,
    reason = "keys skaffold defines and op does not use are accepted, not read"
)]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Docker {
    #[serde(default, alias = "dockerfilePath")]
    pub(crate) dockerfile: Option<String>,
    #[serde(default)]
    pub(crate) target: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) build_args: BTreeMap<String, Option<ScalarString>>,
    #[serde(default)]
    pub(crate) network: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) add_host: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) cache_from: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) cli_flags: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) pull_parent: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) no_cache: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) squash: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) secrets: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) secret: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) ssh: Option<IgnoredAny>,
}

/// `buildpacks:` of an artifact.
#[allow(
    dead_code,
    reason = "keys skaffold defines and op does not use are accepted, not read"
)]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    clippy::struct_field_names,
    reason = "the fields are named after skaffold's keys"
)]
pub(crate) struct Buildpacks {
    #[serde(default)]
    pub(crate) builder: Option<String>,
    #[serde(default)]
    pub(crate) run_image: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) env: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) buildpacks: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) trust_builder: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) clear_cache: bool,
    #[serde(default)]
    pub(crate) project_descriptor: Option<String>,
    #[serde(default)]
    pub(crate) dependencies: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) volumes: Vec<Volume>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) build_args: Vec<String>,
    #[serde(default)]
    pub(crate) force_pull: Option<IgnoredAny>,
}

/// An entry of `buildpacks.volumes`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Volume {
    pub(crate) host: String,
    pub(crate) target: String,
    #[serde(default)]
    pub(crate) options: Option<String>,
}

/// An entry of `profiles`.
#[allow(
    dead_code,
    reason = "keys skaffold defines and op does not use are accepted, not read"
)]
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Profile {
    pub(crate) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) activation: Vec<Activation>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) requires_all_activations: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) patches: Vec<JsonPatch>,
    #[serde(default)]
    pub(crate) build: Option<Build>,
    #[serde(default)]
    pub(crate) test: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) manifests: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) deploy: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) port_forward: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) resource_selector: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) verify: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) custom_actions: Option<IgnoredAny>,
}

/// An entry of a profile's `activation`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Activation {
    #[serde(default)]
    pub(crate) env: Option<String>,
    #[serde(default)]
    pub(crate) kube_context: Option<String>,
    #[serde(default)]
    pub(crate) command: Option<String>,
}

/// An entry of a profile's `patches` (JSON patch, RFC 6902, with skaffold's extensions).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonPatch {
    #[serde(default)]
    pub(crate) op: Option<String>,
    pub(crate) path: String,
    #[serde(default)]
    pub(crate) from: Option<String>,
    #[serde(default)]
    pub(crate) value: Option<serde_yaml::Value>,
}
