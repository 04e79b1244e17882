//! Editing an image config.

use std::collections::BTreeMap;

use serde_json::Value;

/// Edits an image config (the JSON the manifest's `config` names), keeping what it does not
/// touch: the exporter builds the app image's on the run image's, `op builder create` the
/// builder's on the build image's.
#[derive(Clone, Debug)]
pub struct ConfigEditor {
    config: Value,
}

impl ConfigEditor {
    /// Starts from `base` (a config with or without its `config` section).
    pub fn new(base: &Value) -> Self {
        let mut config = if base.is_object() {
            base.clone()
        } else {
            serde_json::json!({})
        };
        if !config.get("config").is_some_and(Value::is_object) {
            config["config"] = serde_json::json!({});
        }
        Self { config }
    }

    fn env_list(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A variable of `Env`.
    pub fn env(&self, name: &str) -> Option<String> {
        self.env_list()
            .into_iter()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    /// Sets a variable of `Env` (replacing it where it was, else at the end), as the reference
    /// lifecycle's image library does.
    pub fn set_env(&mut self, name: &str, value: &str) {
        let mut env = self.env_list();
        let entry = format!("{name}={value}");
        match env
            .iter_mut()
            .find(|kv| kv.split_once('=').map(|(k, _)| k) == Some(name))
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
        self.config["config"]["Env"] = serde_json::json!(env);
    }

    /// Sets a field of the `config` section (`User`, `WorkingDir`, `Entrypoint`, …).
    pub fn set(&mut self, field: &str, value: Value) {
        self.config["config"][field] = value;
    }

    /// Adds (or replaces) labels.
    pub fn add_labels<K: Into<String>, V: Into<String>>(
        &mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) {
        let mut all: BTreeMap<String, Value> = self.config["config"]["Labels"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        for (key, value) in labels {
            all.insert(key.into(), Value::String(value.into()));
        }
        self.config["config"]["Labels"] = serde_json::json!(all);
    }

    /// Appends layers (`diffID`, history line) and sets `created` for the image and its new
    /// history entries.
    pub fn append_layers<'a>(
        &mut self,
        created: &str,
        layers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut history: Vec<Value> = self.config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut diff_ids: Vec<Value> = self.config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (diff_id, created_by) in layers {
            history.push(serde_json::json!({ "created": created, "created_by": created_by }));
            diff_ids.push(serde_json::json!(diff_id));
        }
        self.config["history"] = serde_json::json!(history);
        self.config["rootfs"] = serde_json::json!({ "type": "layers", "diff_ids": diff_ids });
        self.config["created"] = serde_json::json!(created);
    }

    /// The edited config.
    pub fn finish(self) -> Value {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_edited_without_losing_what_is_not_touched() {
        let base = serde_json::json!({
            "architecture": "amd64",
            "config": {"Env": ["PATH=/bin", "A=1"], "Labels": {"keep": "me"}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created_by": "base"}],
        });
        let mut editor = ConfigEditor::new(&base);
        assert_eq!(editor.env("PATH").as_deref(), Some("/bin"));
        editor.set_env("PATH", "/cnb/process:/bin");
        editor.set_env("A", "2");
        editor.set_env("B", "3");
        editor.set("User", serde_json::json!("1000:1000"));
        editor.add_labels([("new", "label")]);
        editor.append_layers("1980-01-01T00:00:01Z", [("sha256:top", "op")]);
        let config = editor.finish();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(
            config["config"]["Env"],
            serde_json::json!(["PATH=/cnb/process:/bin", "A=2", "B=3"]),
            "a variable stays where it was"
        );
        assert_eq!(
            config["config"]["Labels"],
            serde_json::json!({"keep": "me", "new": "label"})
        );
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!(["sha256:base", "sha256:top"])
        );
        assert_eq!(config["history"][1]["created_by"], "op");
        assert_eq!(config["created"], "1980-01-01T00:00:01Z");
        assert!(ConfigEditor::new(&Value::Null).finish()["config"].is_object());
    }
}
