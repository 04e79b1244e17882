//! skaffold profiles: which ones are active, and what applying one does to a configuration.
//!
//! A profile is active when it is named (`-p`, `$SKAFFOLD_PROFILE`) or when its `activation`
//! triggers: one of its entries (all of them with `requiresAllActivations`) matches, an entry
//! matching when its `env` (`KEY=pattern`, `!` negates), `kubeContext` and `command` all do.
//! Naming `-name` deactivates a profile that would otherwise be active. Patterns match when they
//! equal the value or when the regular expression is found in it, as in skaffold.
//!
//! Applying a profile overlays its pipeline sections on the configuration, field by field (a list
//! in the profile replaces the configuration's list when it is not empty; among `local`,
//! `googleCloudBuild` and `cluster` the profile's choice replaces the others), and then applies
//! its JSON `patches` in order.

use std::cell::OnceCell;
use std::path::PathBuf;

use regex::Regex;
use serde_yaml::{Mapping, Value};

use super::model::{Activation, Profile};
use super::patch;
use crate::config::Env;

/// Pipeline sections a profile may override.
const PIPELINE_KEYS: [&str; 8] = [
    "build",
    "test",
    "manifests",
    "deploy",
    "portForward",
    "resourceSelector",
    "verify",
    "customActions",
];

/// Why profiles could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("profile `{profile}`: activation `env: {env}` is not `KEY=pattern`")]
    ActivationEnv { profile: String, env: String },
    #[error("profile `{profile}`: patch {index} (`{op}` at `{path}`) {source}")]
    Patch {
        profile: String,
        index: usize,
        op: String,
        path: String,
        source: patch::Error,
    },
}

/// What activation criteria are evaluated against.
pub(crate) struct Activator<'a> {
    env: &'a Env,
    /// The skaffold command op stands for (`build`).
    command: &'a str,
    kube_context: OnceCell<Option<String>>,
}

impl<'a> Activator<'a> {
    pub(crate) fn new(env: &'a Env, command: &'a str) -> Self {
        Self {
            env,
            command,
            kube_context: OnceCell::new(),
        }
    }

    /// The profiles of one configuration to apply, in order: the auto-activated ones, then the
    /// named ones this configuration has, without those named `-<name>`.
    pub(crate) fn active(
        &self,
        profiles: &[Profile],
        named: &[String],
    ) -> Result<Vec<String>, Error> {
        let mut active = Vec::new();
        for profile in profiles {
            if self.triggers(profile)? {
                active.push(profile.name.clone());
            }
        }
        for name in named {
            if let Some(negated) = name.strip_prefix('-') {
                active.retain(|a| a != negated);
            } else if profiles.iter().any(|p| &p.name == name) && !active.contains(name) {
                active.push(name.clone());
            }
        }
        Ok(active)
    }

    fn triggers(&self, profile: &Profile) -> Result<bool, Error> {
        if profile.activation.is_empty() {
            return Ok(false);
        }
        for activation in &profile.activation {
            let triggered = self.matches(profile, activation)?;
            if triggered != profile.requires_all_activations {
                // Any: the first match activates. All: the first miss does not.
                return Ok(triggered);
            }
        }
        Ok(profile.requires_all_activations)
    }

    fn matches(&self, profile: &Profile, activation: &Activation) -> Result<bool, Error> {
        let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        if let Some(command) = non_empty(&activation.command)
            && !regex_equal(&command, self.command)
        {
            return Ok(false);
        }
        if let Some(env) = non_empty(&activation.env) {
            let (key, pattern) = env.split_once('=').ok_or_else(|| Error::ActivationEnv {
                profile: profile.name.clone(),
                env: env.clone(),
            })?;
            let value = self.env.raw(key).unwrap_or("");
            let matched = if pattern.is_empty() {
                value.is_empty()
            } else {
                regex_equal(pattern, value)
            };
            if !matched {
                return Ok(false);
            }
        }
        if let Some(context) = non_empty(&activation.kube_context) {
            let current = self
                .kube_context
                .get_or_init(|| current_kube_context(self.env));
            if !current.as_deref().is_some_and(|c| regex_equal(&context, c)) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// skaffold's pattern match: equal, or the regular expression is found in the value; a leading
/// `!` negates. A pattern that is not a valid regular expression only matches itself.
fn regex_equal(pattern: &str, value: &str) -> bool {
    if let Some(negated) = pattern.strip_prefix('!') {
        return !regex_equal(negated, value);
    }
    value == pattern || Regex::new(pattern).is_ok_and(|re| re.is_match(value))
}

/// The `current-context` of the kubeconfig: the first file of `$KUBECONFIG` that sets one, else
/// `~/.kube/config`. `None` when there is no kubeconfig or it names no context.
fn current_kube_context(env: &Env) -> Option<String> {
    let files: Vec<PathBuf> = match env.get("KUBECONFIG") {
        Some(list) => list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect(),
        None => vec![PathBuf::from(env.get("HOME")?).join(".kube/config")],
    };
    files.iter().find_map(|file| {
        let text = fs_err::read_to_string(file).ok()?;
        let value: Value = serde_yaml::from_str(&text).ok()?;
        value
            .get("current-context")?
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    })
}

/// Applies the profile named `name` of the configuration `doc` (its YAML value) in place.
pub(crate) fn apply(doc: &mut Value, name: &str, profile: &Profile) -> Result<(), Error> {
    let overlay = doc
        .get("profiles")
        .and_then(Value::as_sequence)
        .and_then(|profiles| {
            profiles
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        })
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    if let Value::Mapping(config) = doc {
        for key in PIPELINE_KEYS {
            let Some(over) = overlay.get(key) else {
                continue;
            };
            if is_zero(over) {
                continue;
            }
            let base = config
                .entry(Value::String(key.to_string()))
                .or_insert(Value::Null);
            if key == "build" {
                overlay_build(base, over);
            } else {
                overlay_value(base, over);
            }
        }
    }
    for (index, p) in profile.patches.iter().enumerate() {
        let op = p.op.clone().unwrap_or_else(|| "replace".to_string());
        patch::apply(doc, &op, &p.path, p.from.as_deref(), p.value.as_ref()).map_err(|source| {
            Error::Patch {
                profile: name.to_string(),
                index,
                op: op.clone(),
                path: p.path.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Whether a value is what skaffold's typed overlay treats as "not set".
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Sequence(items) => items.is_empty(),
        Value::Mapping(map) => map.values().all(is_zero),
        Value::Tagged(_) => false,
    }
}

/// Overlays `over` on `base` field by field: mappings recurse, anything else that is set
/// replaces.
fn overlay_value(base: &mut Value, over: &Value) {
    if is_zero(over) {
        return;
    }
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => overlay_mapping(base, over),
        (base, over) => *base = over.clone(),
    }
}

fn overlay_mapping(base: &mut Mapping, over: &Mapping) {
    for (key, value) in over {
        if is_zero(value) {
            continue;
        }
        overlay_value(base.entry(key.clone()).or_insert(Value::Null), value);
    }
}

/// The `build` section: as [`overlay_value`], except that `tagPolicy` is replaced as a whole and
/// the build environments (`local`, `googleCloudBuild`, `cluster`) exclude each other.
fn overlay_build(base: &mut Value, over: &Value) {
    const ENVIRONMENTS: [&str; 3] = ["local", "googleCloudBuild", "cluster"];
    let (Value::Mapping(base_map), Value::Mapping(over)) = (&mut *base, over) else {
        overlay_value(base, over);
        return;
    };
    for (key, value) in over {
        if is_zero(value) && !ENVIRONMENTS.contains(&key.as_str().unwrap_or_default()) {
            continue;
        }
        match key.as_str() {
            Some("tagPolicy") => {
                base_map.insert(key.clone(), value.clone());
            }
            Some(env) if ENVIRONMENTS.contains(&env) && !value.is_null() => {
                for other in ENVIRONMENTS {
                    base_map.remove(other);
                }
                base_map.insert(key.clone(), value.clone());
            }
            _ => overlay_value(base_map.entry(key.clone()).or_insert(Value::Null), value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::skaffold::model::Document;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    fn profiles(text: &str) -> Vec<Profile> {
        serde_yaml::from_str::<Document>(text).unwrap().profiles
    }

    const PROFILES: &str = "
profiles:
  - name: ci
    activation: [{env: CI=true}]
  - name: not-prod
    activation: [{env: 'STAGE=!prod'}]
  - name: both
    requiresAllActivations: true
    activation: [{env: A=1}, {command: build}]
  - name: unset
    activation: [{env: 'EMPTY='}]
  - name: regex
    activation: [{env: 'BRANCH=^release-'}]
  - name: plain
  - name: kube
    activation: [{kubeContext: 'kind-.*'}]
";

    fn active(env: &[(&str, &str)], named: &[&str]) -> Vec<String> {
        let env = Env::from_pairs(env.iter().copied());
        let named: Vec<String> = named.iter().map(|s| (*s).to_string()).collect();
        Activator::new(&env, "build")
            .active(&profiles(PROFILES), &named)
            .unwrap()
    }

    #[test]
    fn auto_activation_follows_skaffold() {
        assert_eq!(
            active(&[("STAGE", "prod")], &[]),
            ["unset"],
            "an empty pattern matches an unset variable"
        );
        assert_eq!(
            active(&[("STAGE", "prod"), ("EMPTY", "x")], &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            active(&[("CI", "true"), ("STAGE", "prod"), ("EMPTY", "x")], &[]),
            ["ci"]
        );
        assert_eq!(
            active(&[("STAGE", "dev"), ("EMPTY", "x")], &[]),
            ["not-prod"]
        );
        assert_eq!(
            active(&[("STAGE", "prod"), ("A", "1"), ("EMPTY", "x")], &[]),
            ["both"]
        );
        assert_eq!(
            active(
                &[("STAGE", "prod"), ("EMPTY", "x"), ("BRANCH", "release-1.2")],
                &[]
            ),
            ["regex"]
        );
    }

    #[test]
    fn named_profiles_add_and_negated_names_remove() {
        assert_eq!(
            active(
                &[("CI", "true"), ("STAGE", "prod"), ("EMPTY", "x")],
                &["plain", "-ci", "nope"]
            ),
            ["plain"]
        );
    }

    #[test]
    fn kube_context_activation_reads_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("config");
        fs_err::write(&kubeconfig, "current-context: kind-dev\n").unwrap();
        let path = kubeconfig.to_str().unwrap();
        assert_eq!(
            active(
                &[("KUBECONFIG", path), ("STAGE", "prod"), ("EMPTY", "x")],
                &[]
            ),
            ["kube"]
        );
        assert_eq!(
            active(
                &[
                    ("KUBECONFIG", "/nonexistent"),
                    ("STAGE", "prod"),
                    ("EMPTY", "x")
                ],
                &[]
            )
            .len(),
            0
        );
    }

    #[test]
    fn an_env_activation_without_equals_is_an_error() {
        let env = Env::default();
        let err = Activator::new(&env, "build")
            .active(
                &profiles("profiles: [{name: p, activation: [{env: NOEQUALS}]}]"),
                &[],
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "profile `p`: activation `env: NOEQUALS` is not `KEY=pattern`"
        );
    }

    #[test]
    fn overlay_replaces_lists_and_exclusive_build_environments() {
        let text = "
build:
  local: {push: false}
  insecureRegistries: [a]
  artifacts: [{image: base}]
profiles:
  - name: p
    build:
      cluster: {}
      insecureRegistries: []
      artifacts: [{image: other}]
    patches:
      - op: add
        path: /build/artifacts/0/context
        value: src
";
        let mut doc = yaml(text);
        let profile = &profiles(text)[0];
        apply(&mut doc, "p", profile).unwrap();
        assert_eq!(
            doc["build"]["artifacts"],
            yaml("[{image: other, context: src}]")
        );
        assert_eq!(
            doc["build"]["insecureRegistries"],
            yaml("[a]"),
            "an empty list does not override"
        );
        assert!(
            doc["build"].get("local").is_none(),
            "cluster replaces local"
        );
        assert!(doc["build"].get("cluster").is_some());
    }

    #[test]
    fn patch_failures_name_the_profile_and_patch() {
        let text = "profiles: [{name: p, patches: [{path: /build/artifacts/3/image, value: x}]}]\nbuild: {artifacts: []}\n";
        let mut doc = yaml(text);
        let err = apply(&mut doc, "p", &profiles(text)[0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "profile `p`: patch 0 (`replace` at `/build/artifacts/3/image`) names a path that does not exist in the configuration"
        );
    }
}
