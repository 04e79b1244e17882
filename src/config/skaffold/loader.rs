//! Reading skaffold files the way skaffold does (`pkg/skaffold/parser/config.go`): documents,
//! profiles, `requires`, and the artifacts of each configuration.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::Deserialize;
use serde_yaml::Value;

use super::{
    Artifact, Buildpacks, ConfigEntry, DEFAULT_FILE, Docker, Error, Kind, LoadOptions, Project,
    Requirement, Volume, model, profile, quoted,
};
use crate::config::yaml::{Located, display_path};
use crate::paths::normalize;

pub(super) fn load(options: &LoadOptions<'_>) -> Result<Project, Error> {
    let mut root = normalize(&options.cwd.join(options.file));
    if root.is_dir() {
        root.push(DEFAULT_FILE);
    }
    let mut loader = Loader {
        options,
        activator: profile::Activator::new(options.env, "build"),
        parsed: HashMap::new(),
        files: Vec::new(),
        all_profiles: Vec::new(),
        applied: HashMap::new(),
        config_names: HashMap::new(),
    };
    let configs = loader.configs(&root, &[], options.profiles, false, None)?;
    let unknown: Vec<String> = options
        .profiles
        .iter()
        .filter(|p| {
            !loader
                .all_profiles
                .iter()
                .any(|known| known == p.trim_start_matches('-'))
        })
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(Error::UnknownProfile {
            names: unknown,
            available: loader.all_profiles,
        });
    }
    Ok(Project {
        file: root,
        files: loader.files,
        configs,
    })
}

/// One parsed document.
struct Parsed {
    index: usize,
    /// " (document 2)", " (config `name`)" or "" for a file of one document.
    label: String,
    value: Value,
    doc: model::Document,
}

struct Loader<'a> {
    options: &'a LoadOptions<'a>,
    activator: profile::Activator<'a>,
    parsed: HashMap<PathBuf, Rc<Vec<Parsed>>>,
    files: Vec<PathBuf>,
    all_profiles: Vec<String>,
    /// The profiles each (file, document) was loaded with.
    applied: HashMap<(PathBuf, usize), Vec<String>>,
    /// Which file defines each configuration name.
    config_names: HashMap<String, PathBuf>,
}

impl Loader<'_> {
    fn show(&self, path: &Path) -> String {
        display_path(path, self.options.cwd)
    }

    /// The configurations of `file` (those named in `selection`, or all), each preceded by what
    /// it requires.
    fn configs(
        &mut self,
        file: &Path,
        selection: &[String],
        profiles: &[String],
        is_dependency: bool,
        required_by: Option<&Path>,
    ) -> Result<Vec<ConfigEntry>, Error> {
        let docs = self.parse(file, required_by)?;
        for name in selection {
            if !docs
                .iter()
                .any(|d| d.doc.metadata.name.as_ref() == Some(name))
            {
                return Err(Error::Invalid {
                    path: self.show(required_by.unwrap_or(file)),
                    doc: String::new(),
                    problem: format!(
                        "`requires` names the configuration `{name}`, which `{}` does not define",
                        self.show(file)
                    ),
                    hint: Some("configurations are named by `metadata.name`".into()),
                });
            }
        }
        let mut out = Vec::new();
        for parsed in docs.iter() {
            let name = parsed.doc.metadata.name.as_ref();
            if let Some(name) = name {
                self.claim_name(name, file)?;
            }
            if selection.is_empty() || name.is_some_and(|n| selection.contains(n)) {
                out.extend(self.config(file, parsed, profiles, is_dependency)?);
            }
        }
        Ok(out)
    }

    /// Records that `file` defines the configuration `name`; a name belongs to one file.
    fn claim_name(&mut self, name: &str, file: &Path) -> Result<(), Error> {
        match self.config_names.get(name) {
            Some(first) if first != file => Err(Error::DuplicateConfigName {
                name: name.to_string(),
                first: self.show(first),
                second: self.show(file),
            }),
            _ => {
                self.config_names
                    .insert(name.to_string(), file.to_path_buf());
                Ok(())
            }
        }
    }

    /// One configuration after its profiles, preceded by what it requires. Empty when it was
    /// already loaded with the same profiles.
    fn config(
        &mut self,
        file: &Path,
        parsed: &Parsed,
        profiles: &[String],
        is_dependency: bool,
    ) -> Result<Vec<ConfigEntry>, Error> {
        let (active, doc) = self.apply_profiles(file, parsed, profiles)?;
        if !self.first_visit(file, parsed, &active)? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (i, dependency) in doc.requires.iter().enumerate() {
            out.extend(self.required(
                file,
                parsed,
                i,
                dependency,
                &active,
                profiles,
                is_dependency,
            )?);
        }
        let base_dir = if is_dependency {
            file.parent().unwrap_or(self.options.cwd).to_path_buf()
        } else {
            self.options.cwd.to_path_buf()
        };
        let build = doc.build.as_ref();
        let artifacts = build
            .map(|b| {
                b.artifacts.iter().enumerate().map(|(i, a)| {
                    let push = b.local.as_ref().and_then(|l| l.push);
                    self.artifact(a, i, &base_dir, file, &parsed.label, push)
                })
            })
            .into_iter()
            .flatten()
            .collect::<Result<Vec<_>, _>>()?;
        out.push(ConfigEntry {
            file: file.to_path_buf(),
            document: parsed.index,
            name: parsed.doc.metadata.name.clone(),
            profiles: active,
            artifacts,
            insecure_registries: build
                .map(|b| b.insecure_registries.clone())
                .unwrap_or_default(),
        });
        Ok(out)
    }

    /// The active profiles of a configuration, and the configuration once they are applied.
    fn apply_profiles<'p>(
        &self,
        file: &Path,
        parsed: &'p Parsed,
        profiles: &[String],
    ) -> Result<(Vec<String>, Cow<'p, model::Document>), Error> {
        let profile_error = |source| Error::Profile {
            path: self.show(file),
            doc: parsed.label.clone(),
            source: Box::new(source),
        };
        let active = self
            .activator
            .active(&parsed.doc.profiles, profiles)
            .map_err(profile_error)?;
        if active.is_empty() {
            return Ok((active, Cow::Borrowed(&parsed.doc)));
        }
        let mut value = parsed.value.clone();
        for name in &active {
            let profile = parsed
                .doc
                .profiles
                .iter()
                .find(|p| &p.name == name)
                .expect("active profiles are defined");
            profile::apply(&mut value, name, profile).map_err(profile_error)?;
        }
        let doc = model::Document::deserialize(value).map_err(|e| Error::AfterProfiles {
            path: self.show(file),
            doc: parsed.label.clone(),
            profiles: quoted(&active),
            message: e.to_string(),
        })?;
        Ok((active, Cow::Owned(doc)))
    }

    /// Whether this is the first time the configuration is loaded. Loading it again with other
    /// profiles is an error, as in skaffold.
    fn first_visit(
        &mut self,
        file: &Path,
        parsed: &Parsed,
        active: &[String],
    ) -> Result<bool, Error> {
        let mut sorted = active.to_vec();
        sorted.sort();
        let key = (file.to_path_buf(), parsed.index);
        match self.applied.get(&key) {
            Some(previous) if *previous == sorted => Ok(false),
            Some(previous) => Err(Error::ProfileConflict {
                path: self.show(file),
                doc: parsed.label.clone(),
                first: describe_profiles(previous),
                second: describe_profiles(&sorted),
            }),
            None => {
                self.applied.insert(key, sorted);
                Ok(true)
            }
        }
    }

    /// The configurations required by entry `index` of `requires`.
    #[allow(
        clippy::too_many_arguments,
        reason = "the recursion carries skaffold's parser state"
    )]
    fn required(
        &mut self,
        file: &Path,
        parsed: &Parsed,
        index: usize,
        dependency: &model::ConfigDependency,
        active: &[String],
        profiles: &[String],
        is_dependency: bool,
    ) -> Result<Vec<ConfigEntry>, Error> {
        let remote = [
            ("git", dependency.git.is_some()),
            (
                "googleCloudStorage",
                dependency.google_cloud_storage.is_some(),
            ),
            (
                "googleCloudBuildRepoV2",
                dependency.google_cloud_build_repo_v2.is_some(),
            ),
        ];
        if let Some((kind, _)) = remote.iter().find(|(_, set)| *set) {
            return Err(Error::Invalid {
                path: self.show(file),
                doc: parsed.label.clone(),
                problem: format!("`requires[{index}]` uses `{kind}`, and op only reads configuration files by `path`"),
                hint: Some("check the required configuration out next to this one and require it by `path`".into()),
            });
        }
        // Profiles named in `activeProfiles` (when one of theirs activates them), and, as
        // skaffold propagates them by default, the profiles named on the command line.
        let mut dependency_profiles: Vec<String> = dependency
            .active_profiles
            .iter()
            .filter(|p| {
                p.activated_by.is_empty() || p.activated_by.iter().any(|a| active.contains(a))
            })
            .map(|p| p.name.clone())
            .collect();
        for named in profiles {
            if !dependency_profiles.contains(named) {
                dependency_profiles.push(named.clone());
            }
        }
        let required = match dependency.path.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => {
                let mut required = normalize(&file.parent().unwrap_or(self.options.cwd).join(p));
                if required.is_dir() {
                    required.push(DEFAULT_FILE);
                }
                required
            }
            None => file.to_path_buf(),
        };
        let required_is_dependency = is_dependency || required != file;
        self.configs(
            &required,
            &dependency.configs,
            &dependency_profiles,
            required_is_dependency,
            Some(file),
        )
    }

    fn artifact(
        &self,
        raw: &model::Artifact,
        index: usize,
        base_dir: &Path,
        file: &Path,
        label: &str,
        local_push: Option<bool>,
    ) -> Result<Artifact, Error> {
        let invalid = |problem: String, hint: Option<String>| Error::Invalid {
            path: self.show(file),
            doc: label.to_string(),
            problem,
            hint,
        };
        let image = raw
            .image
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                invalid(
                    format!("`build.artifacts[{index}]` has no `image`"),
                    Some("every artifact names the image it builds, e.g. `image: my-app`".into()),
                )
            })?;
        let context = raw
            .context
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or(".");
        Ok(Artifact {
            image: image.to_string(),
            context: normalize(&base_dir.join(context)),
            base_dir: base_dir.to_path_buf(),
            kind: kind(raw, image).map_err(|(problem, hint)| invalid(problem, Some(hint)))?,
            requires: raw
                .requires
                .iter()
                .map(|r| Requirement {
                    image: r.image.clone(),
                    alias: r
                        .alias
                        .clone()
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| r.image.clone()),
                })
                .collect(),
            location: format!("`build.artifacts[{index}]`{label} in `{}`", self.show(file)),
            local_push,
        })
    }

    /// Reads and checks every document of `file` (once per file).
    fn parse(&mut self, file: &Path, required_by: Option<&Path>) -> Result<Rc<Vec<Parsed>>, Error> {
        if let Some(parsed) = self.parsed.get(file) {
            return Ok(Rc::clone(parsed));
        }
        let path = self.show(file);
        let text = match fs_err::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || file.is_dir() => {
                return Err(match required_by {
                    Some(by) => Error::RequiredNotFound {
                        path,
                        by: self.show(by),
                    },
                    None => Error::NotFound {
                        path,
                        dir: file
                            .parent()
                            .unwrap_or(self.options.cwd)
                            .display()
                            .to_string(),
                        is_default: self.options.file == Path::new(DEFAULT_FILE),
                    },
                });
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        self.files.push(file.to_path_buf());
        let checked = check_documents(&text, &path)?;
        let parsed = read_documents(&text, &path, checked)?;
        for p in &parsed {
            for profile in &p.doc.profiles {
                if !self.all_profiles.contains(&profile.name) {
                    self.all_profiles.push(profile.name.clone());
                }
            }
        }
        let parsed = Rc::new(parsed);
        self.parsed.insert(file.to_path_buf(), Rc::clone(&parsed));
        Ok(parsed)
    }
}

/// The build kind of an artifact, or the problem and a hint.
fn kind(raw: &model::Artifact, image: &str) -> Result<Kind, (String, String)> {
    let legacy_docker = raw.dockerfile_path.is_some() || raw.build_args.is_some();
    let kinds: Vec<&'static str> = [
        ("docker", raw.docker.is_some() || legacy_docker),
        ("buildpacks", raw.buildpacks.is_some()),
        ("bazel", raw.bazel.is_some()),
        ("jib", raw.jib.is_some()),
        ("jibMaven", raw.jib_maven.is_some()),
        ("jibGradle", raw.jib_gradle.is_some()),
        ("kaniko", raw.kaniko.is_some()),
        ("custom", raw.custom.is_some()),
        ("ko", raw.ko.is_some()),
        ("plugin", raw.plugin.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if let [first, second, ..] = kinds.as_slice() {
        return Err((
            format!("artifact `{image}` sets both `{first}` and `{second}`"),
            "an artifact is built one way: keep one of them".into(),
        ));
    }
    Ok(match (kinds.first().copied(), raw.buildpacks.as_ref()) {
        (Some("buildpacks"), Some(b)) => Kind::Buildpacks(Buildpacks {
            builder: non_empty(b.builder.as_deref()),
            run_image: non_empty(b.run_image.as_deref()),
            env: b.env.clone(),
            buildpacks: b.buildpacks.clone(),
            trust_builder: b.trust_builder,
            clear_cache: b.clear_cache,
            project_descriptor: non_empty(b.project_descriptor.as_deref()),
            volumes: b
                .volumes
                .iter()
                .map(|v| Volume {
                    host: v.host.clone(),
                    target: v.target.clone(),
                    options: v.options.clone(),
                })
                .collect(),
            pack_args: b.build_args.clone(),
        }),
        (None | Some("docker"), _) => {
            // skaffold/v1alpha1 kept the Dockerfile settings on the artifact; docker is the
            // default kind.
            let d = raw.docker.as_ref();
            let dockerfile = d
                .and_then(|d| d.dockerfile.as_deref())
                .or(raw.dockerfile_path.as_deref());
            let build_args = d.map(|d| &d.build_args).or(raw.build_args.as_ref());
            Kind::Docker(Docker {
                dockerfile: non_empty(dockerfile).unwrap_or_else(|| "Dockerfile".to_string()),
                target: d.and_then(|d| non_empty(d.target.as_deref())),
                build_args: build_args
                    .map(|args| {
                        args.iter()
                            .map(|(k, v)| (k.clone(), v.clone().map(String::from)))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        }
        (Some(other), _) => Kind::Unsupported(other),
    })
}

/// First pass over a file: plain values, for syntax errors and the checks skaffold makes before
/// reading a document with its schema. Returns the non-empty documents with their labels.
fn check_documents(text: &str, path: &str) -> Result<Vec<(usize, String, Value)>, Error> {
    let mut values = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| Error::Yaml {
            path: path.to_string(),
            doc: String::new(),
            located: Located::new(&e, text),
        })?;
        if !value.is_null() {
            values.push((index, value));
        }
    }
    if values.is_empty() {
        return Err(Error::Empty {
            path: path.to_string(),
        });
    }
    let count = values.len();
    values
        .into_iter()
        .map(|(index, value)| {
            let name = value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str);
            let label = match name {
                Some(name) => format!(" (config `{name}`)"),
                None if count > 1 => format!(" (document {})", index + 1),
                None => String::new(),
            };
            check_document(&value, path, &label)?;
            Ok((index, label, value))
        })
        .collect()
}

/// Second pass: the schema, straight from the text so that errors have a location.
fn read_documents(
    text: &str,
    path: &str,
    checked: Vec<(usize, String, Value)>,
) -> Result<Vec<Parsed>, Error> {
    let mut documents = serde_yaml::Deserializer::from_str(text).enumerate();
    let mut parsed: Vec<Parsed> = Vec::new();
    for (index, label, value) in checked {
        let document = documents
            .by_ref()
            .find_map(|(i, d)| (i == index).then_some(d))
            .expect("the second pass sees the documents of the first");
        let doc = model::Document::deserialize(document).map_err(|e| Error::Yaml {
            path: path.to_string(),
            doc: label.clone(),
            located: Located::new(&e, text),
        })?;
        let invalid = |problem: String, hint: Option<&str>| Error::Invalid {
            path: path.to_string(),
            doc: label.clone(),
            problem,
            hint: hint.map(str::to_string),
        };
        for (i, profile) in doc.profiles.iter().enumerate() {
            if doc.profiles[..i].iter().any(|p| p.name == profile.name) {
                return Err(invalid(
                    format!("two profiles are named `{}`", profile.name),
                    None,
                ));
            }
        }
        if let Some(name) = &doc.metadata.name
            && parsed
                .iter()
                .any(|p| p.doc.metadata.name.as_ref() == Some(name))
        {
            return Err(invalid(
                format!("another configuration of the file is named `{name}` too"),
                Some("configuration names (`metadata.name`) must be unique"),
            ));
        }
        parsed.push(Parsed {
            index,
            label,
            value,
            doc,
        });
    }
    Ok(parsed)
}

/// The checks skaffold makes on a document before reading it with its schema.
fn check_document(value: &Value, path: &str, label: &str) -> Result<(), Error> {
    let (path, doc) = (path.to_string(), label.to_string());
    let Value::Mapping(map) = value else {
        return Err(Error::Invalid {
            path,
            doc,
            problem: "a configuration must be a mapping".into(),
            hint: None,
        });
    };
    let version = match map.get("apiVersion") {
        None | Some(Value::Null) => return Err(Error::MissingApiVersion { path, doc }),
        Some(v) => v.as_str().map_or_else(|| format!("{v:?}"), str::to_string),
    };
    if !super::version::is_known(&version) {
        return Err(Error::UnknownApiVersion { path, doc, version });
    }
    if let Some(kind) = map.get("kind").filter(|k| !k.is_null())
        && kind.as_str() != Some("Config")
    {
        let kind = kind
            .as_str()
            .map_or_else(|| format!("{kind:?}"), str::to_string);
        return Err(Error::WrongKind { path, doc, kind });
    }
    let unknown = map
        .keys()
        .map(|k| k.as_str().unwrap_or_default())
        .find(|key| {
            // skaffold drops top-level keys starting with `.`, so that they can hold YAML anchors.
            !key.starts_with('.') && !model::TOP_LEVEL_KEYS.contains(key)
        });
    match unknown {
        Some(key) => Err(Error::UnknownKey {
            path,
            doc,
            key: key.to_string(),
        }),
        None => Ok(()),
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn describe_profiles(profiles: &[String]) -> String {
    if profiles.is_empty() {
        "none".to_string()
    } else {
        quoted(profiles)
    }
}
