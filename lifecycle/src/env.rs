//! Environment variables for buildpacks (build time) and processes (launch time), by the rules of
//! the spec ("Environment") and `env/*.go` of the reference lifecycle:
//!
//! - the build environment starts from an include list of the lifecycle's own environment
//!   (`HOME`, `HOSTNAME`, proxies, `CNB_STACK_ID`) plus the POSIX path variables;
//! - `<layer>/bin`, `lib`, `include`, `pkgconfig` are prepended to `PATH`, `LD_LIBRARY_PATH` and
//!   `LIBRARY_PATH`, `CPATH`, `PKG_CONFIG_PATH`;
//! - env directories hold one file per variable: `NAME` or `NAME.override` sets, `.default` sets
//!   when empty, `.prepend` / `.append` join with the delimiter of `NAME.delim` (empty when there
//!   is none); contents are used verbatim;
//! - user variables (`<platform>/env/NAME`) apply to each buildpack on top of that (a path
//!   variable is prepended with `:`), unless the buildpack sets `clear-env`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Variables the build environment keeps from the lifecycle's environment.
pub const BUILD_INCLUDE_LIST: [&str; 9] = [
    "CNB_STACK_ID",
    "HOSTNAME",
    "HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Directories of a layer and the variables they are prepended to, at build time.
pub const BUILD_ROOT_DIRS: [(&str, &[&str]); 4] = [
    ("bin", &["PATH"]),
    ("lib", &["LD_LIBRARY_PATH", "LIBRARY_PATH"]),
    ("include", &["CPATH"]),
    ("pkgconfig", &["PKG_CONFIG_PATH"]),
];

/// At launch time.
pub const LAUNCH_ROOT_DIRS: [(&str, &[&str]); 2] =
    [("bin", &["PATH"]), ("lib", &["LD_LIBRARY_PATH"])];

/// What an env file without a suffix does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Override,
    Default,
}

/// A set of environment variables with the rules to change them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
    root_dirs: Vec<(&'static str, &'static [&'static str])>,
}

impl Env {
    /// The build environment derived from the lifecycle's own environment.
    pub fn build(environ: impl IntoIterator<Item = (String, String)>) -> Self {
        let path_vars: Vec<&str> = BUILD_ROOT_DIRS
            .iter()
            .flat_map(|(_, vars)| vars.iter().copied())
            .collect();
        let vars = environ
            .into_iter()
            .filter(|(k, _)| {
                BUILD_INCLUDE_LIST.contains(&k.as_str()) || path_vars.contains(&k.as_str())
            })
            .collect();
        Self {
            vars,
            root_dirs: BUILD_ROOT_DIRS.to_vec(),
        }
    }

    /// The launch environment: the container's, minus the lifecycle's own variables, with
    /// `/cnb/process` and `/cnb/lifecycle` removed from `PATH`.
    pub fn launch(environ: impl IntoIterator<Item = (String, String)>) -> Self {
        const DROPPED: [&str; 5] = [
            "CNB_LAYERS_DIR",
            "CNB_APP_DIR",
            "CNB_PROCESS_TYPE",
            "CNB_PLATFORM_API",
            "CNB_DEPRECATION_MODE",
        ];
        let mut vars: BTreeMap<String, String> = environ
            .into_iter()
            .filter(|(k, _)| !DROPPED.contains(&k.as_str()))
            .collect();
        if let Some(path) = vars.get_mut("PATH") {
            *path = path
                .split(':')
                .filter(|p| *p != "/cnb/process" && *p != "/cnb/lifecycle")
                .collect::<Vec<_>>()
                .join(":");
        }
        Self {
            vars,
            root_dirs: LAUNCH_ROOT_DIRS.to_vec(),
        }
    }

    pub fn get(&self, name: &str) -> &str {
        self.vars.get(name).map_or("", String::as_str)
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// All variables, sorted by name.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn is_path_var(&self, name: &str) -> bool {
        self.root_dirs.iter().any(|(_, vars)| vars.contains(&name))
    }

    /// Prepends the root directories of `layer` (`bin`, `lib`, …) that exist.
    pub fn add_root_dir(&mut self, layer: &Path) {
        for (dir, vars) in self.root_dirs.clone() {
            let child = layer.join(dir);
            if child.is_dir() {
                for var in vars {
                    let value = join(&child.display().to_string(), ":", self.get(var));
                    self.set(*var, value);
                }
            }
        }
    }

    /// Applies the env files of `dir`, where a file without a suffix does `default_action`.
    pub fn add_env_dir(&mut self, dir: &Path, default_action: Action) -> std::io::Result<()> {
        for (file, value) in env_files(dir)? {
            let (name, action) = match file.split_once('.') {
                Some((name, action)) => (name.to_string(), Some(action.to_string())),
                None => (file.clone(), None),
            };
            let delim =
                || fs_err::read_to_string(dir.join(format!("{name}.delim"))).unwrap_or_default();
            let current = self.get(&name).to_string();
            match action.as_deref() {
                Some("prepend") => {
                    let joined = join(&value, &delim(), &current);
                    self.set(name, joined);
                }
                Some("append") => {
                    let joined = join(&current, &delim(), &value);
                    self.set(name, joined);
                }
                Some("override") => self.set(name, value),
                Some("default") => {
                    if current.is_empty() {
                        self.set(name, value);
                    }
                }
                None => match default_action {
                    Action::Override => self.set(name, value),
                    Action::Default if current.is_empty() => self.set(name, value),
                    Action::Default => {}
                },
                // `.delim` files, and suffixes the spec does not define, change nothing.
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The variables a buildpack sees: this environment with the user's variables of
    /// `<platform>/env` on top (unless `platform` is `None`, for `clear-env` buildpacks), then the
    /// operator's `<build-config>/env` (suffix rules, `default` when there is none).
    pub fn with_overrides(
        &self,
        platform: Option<&Path>,
        build_config: Option<&Path>,
    ) -> std::io::Result<Vec<(String, String)>> {
        let mut env = self.clone();
        if let Some(platform) = platform {
            for (name, value) in env_files(&platform.join("env"))? {
                let new = if env.is_path_var(&name) {
                    join(&value, ":", env.get(&name))
                } else {
                    value
                };
                env.set(name, new);
            }
        }
        if let Some(build_config) = build_config {
            env.add_env_dir(&build_config.join("env"), Action::Default)?;
        }
        Ok(env.vars.into_iter().collect())
    }
}

/// `a + delim + b`, without the delimiter when either side is empty.
fn join(a: &str, delim: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_string(),
        (true, false) => b.to_string(),
        (false, false) => format!("{a}{delim}{b}"),
    }
}

/// The regular files of an env directory (symlinks followed), sorted by name.
fn env_files(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let entries = match fs_err::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if fs_err::metadata(&path)?.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, fs_err::read_to_string(&path)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        fs_err::create_dir_all(dir).unwrap();
        for (name, value) in files {
            fs_err::write(dir.join(name), value).unwrap();
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn the_build_env_keeps_only_the_include_list_and_path_variables() {
        let env = Env::build(pairs(&[
            ("HOME", "/home/cnb"),
            ("PATH", "/bin"),
            ("SECRET", "x"),
            ("CNB_REGISTRY_AUTH", "{}"),
        ]));
        let names: Vec<&str> = env.vars().map(|(k, _)| k).collect();
        assert_eq!(names, ["HOME", "PATH"]);
    }

    #[test]
    fn env_file_suffixes_follow_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let env_dir = dir.path().join("env");
        write(
            &env_dir,
            &[
                ("PLAIN", "plain"),
                ("OVER.override", "over"),
                ("DEF.default", "def"),
                ("KEPT.default", "ignored"),
                ("PRE.prepend", "pre"),
                ("PRE.delim", ":"),
                ("APP.append", "app"),
                ("NODELIM.append", "-tail"),
                ("EMPTY.prepend", "first"),
                ("UNKNOWN.frobnicate", "x"),
            ],
        );
        fs_err::create_dir_all(env_dir.join("SUBDIR")).unwrap();
        let mut env = Env::build(Vec::new());
        for (k, v) in [
            ("OVER", "old"),
            ("KEPT", "kept"),
            ("PRE", "base"),
            ("APP", "base"),
            ("NODELIM", "head"),
        ] {
            env.set(k, v);
        }
        env.add_env_dir(&env_dir, Action::Override).unwrap();
        let got = |k: &str| env.get(k).to_string();
        assert_eq!(got("PLAIN"), "plain");
        assert_eq!(got("OVER"), "over");
        assert_eq!(got("DEF"), "def");
        assert_eq!(got("KEPT"), "kept");
        assert_eq!(got("PRE"), "pre:base");
        assert_eq!(got("APP"), "baseapp", "no delim file: plain concatenation");
        assert_eq!(got("NODELIM"), "head-tail");
        assert_eq!(got("EMPTY"), "first");
        assert_eq!(got("UNKNOWN"), "");
        assert_eq!(got("SUBDIR"), "");
    }

    #[test]
    fn layer_root_dirs_prepend_to_path_variables() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs_err::create_dir_all(layer.join("bin")).unwrap();
        fs_err::create_dir_all(layer.join("lib")).unwrap();
        let mut env = Env::build(pairs(&[("PATH", "/usr/bin:/bin")]));
        env.add_root_dir(&layer);
        assert_eq!(
            env.get("PATH"),
            format!("{}/bin:/usr/bin:/bin", layer.display())
        );
        assert_eq!(
            env.get("LD_LIBRARY_PATH"),
            format!("{}/lib", layer.display())
        );
        assert_eq!(env.get("LIBRARY_PATH"), format!("{}/lib", layer.display()));
        assert_eq!(env.get("CPATH"), "");
    }

    #[test]
    fn user_variables_override_and_prepend_to_paths_unless_cleared() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("platform/env"),
            &[("GOFLAGS", "-mod=vendor"), ("PATH", "/opt/tools")],
        );
        write(
            &dir.path().join("config/env"),
            &[("OPERATOR", "set"), ("GOFLAGS.override", "-forced")],
        );
        let env = Env::build(pairs(&[("PATH", "/bin")]));
        let with = env
            .with_overrides(
                Some(&dir.path().join("platform")),
                Some(&dir.path().join("config")),
            )
            .unwrap();
        let map: BTreeMap<String, String> = with.into_iter().collect();
        assert_eq!(map["PATH"], "/opt/tools:/bin");
        assert_eq!(map["GOFLAGS"], "-forced");
        assert_eq!(map["OPERATOR"], "set");
        let cleared: BTreeMap<String, String> = env
            .with_overrides(None, None)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(cleared.get("GOFLAGS"), None);
    }

    #[test]
    fn the_launch_env_drops_lifecycle_variables_and_cnb_paths() {
        let env = Env::launch(pairs(&[
            ("PATH", "/cnb/process:/cnb/lifecycle:/usr/bin"),
            ("CNB_PLATFORM_API", "0.13"),
            ("CNB_APP_DIR", "/workspace"),
            ("PORT", "8080"),
        ]));
        assert_eq!(env.get("PATH"), "/usr/bin");
        assert_eq!(env.get("CNB_PLATFORM_API"), "");
        assert_eq!(env.get("PORT"), "8080");
    }
}
