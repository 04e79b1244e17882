//! The real skaffold, to which op hands every artifact that is not buildpacks (`op build`,
//! `op push`). This is the only module that starts it.
//!
//! One [`Run`] is one `skaffold build` of a group of artifacts the plan made
//! ([`crate::plan::SkaffoldRun`]): the same skaffold.yaml and profiles as op read, only those
//! artifacts selected (`--build-image`), with op's default repository, tag, push decision,
//! insecure registries and platforms. skaffold writes its results to a `--file-output` file op
//! reads; its output is streamed, line by line, to whoever shows it. op gives skaffold a global
//! configuration of its own (`--config`) so the machine's `~/.skaffold/config` cannot change
//! what is built or where it goes: multi-level repositories on (skaffold then names images as op
//! does), no update check, no survey prompt, no metrics.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::config::{Env, Origin};
use crate::hint::Hint;
use crate::interrupt::Interrupt;

/// The mirror op was given, as skaffold sees it (op's decision: `--image-registry` wins over
/// the variable op itself was started with).
const IMAGE_REGISTRY_VAR: &str = crate::config::op_settings::IMAGE_REGISTRY.var;

/// How many of skaffold's last lines a failure keeps.
const TAIL_LINES: usize = 30;

/// The variable that turns docker buildx's default attestations off.
const NO_ATTESTATIONS: &str = "BUILDX_NO_DEFAULT_ATTESTATIONS";

/// Variables skaffold reads as flags that op sets itself (or must not leak into its build): they
/// are removed from skaffold's environment.
const DECIDED_BY_OP: &[&str] = &[
    IMAGE_REGISTRY_VAR,
    "SKAFFOLD_BUILD_CONCURRENCY",
    "SKAFFOLD_BUILD_IMAGE",
    "SKAFFOLD_CONFIG",
    "SKAFFOLD_DEFAULT_REPO",
    "SKAFFOLD_FILENAME",
    "SKAFFOLD_FILE_OUTPUT",
    "SKAFFOLD_INSECURE_REGISTRIES",
    "SKAFFOLD_INSECURE_REGISTRY",
    "SKAFFOLD_INTERACTIVE",
    "SKAFFOLD_MODULE",
    "SKAFFOLD_PLATFORM",
    "SKAFFOLD_PROFILE",
    "SKAFFOLD_PUSH",
    "SKAFFOLD_TAG",
    "SKAFFOLD_UPDATE_CHECK",
];

/// What skaffold's own global configuration holds for op's runs.
const GLOBAL_CONFIG: &str = "\
# Written by op for one `skaffold build`: op decides the repository, tags and pushes.
global:
  multi-level-repo: true
  update-check: false
  collect-metrics: false
  survey:
    disable-prompt: true
kubeContexts: []
";

/// What went wrong with skaffold.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} built by skaffold, and {problem}", artifacts_phrase(.artifacts))]
    NotFound {
        artifacts: Vec<String>,
        problem: String,
    },
    #[error("Failed to start skaffold (`{binary}`)")]
    Start {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("skaffold failed ({status})")]
    Failed {
        status: String,
        /// Its last lines.
        tail: Vec<String>,
    },
    #[error("skaffold's --file-output `{path}` is not a build result: {problem}")]
    Output { path: String, problem: String },
    #[error("skaffold succeeded but did not report `{image}`")]
    NotReported { image: String },
    #[error("interrupted")]
    Interrupted,
    #[error("Failed to prepare skaffold's files")]
    Files(#[source] std::io::Error),
}

fn artifacts_phrase(artifacts: &[String]) -> String {
    let names: Vec<String> = artifacts.iter().map(|a| format!("`{a}`")).collect();
    match names.as_slice() {
        [one] => format!("Artifact {one} is"),
        _ => format!("Artifacts {} are", names.join(", ")),
    }
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NotFound { .. } => Some(format!(
                "install skaffold v2 (scripts/reference-tools builds the version op is tested with), \
                 or name the binary with --skaffold PATH or {}=PATH; `op build-push` builds \
                 the buildpacks artifacts alone, without skaffold",
                crate::config::op_settings::SKAFFOLD.var
            )),
            Error::Failed { .. } => {
                Some("skaffold's output is above, each line prefixed with its artifact".into())
            }
            _ => None,
        }
    }
}

impl Error {
    /// The last lines of skaffold's output, for a failed skaffold.
    pub fn tail(&self) -> &[String] {
        match self {
            Error::Failed { tail, .. } => tail,
            _ => &[],
        }
    }
}

/// The skaffold binary op runs.
#[derive(Clone, Debug)]
pub struct Skaffold {
    binary: PathBuf,
}

impl Skaffold {
    /// The binary `named` (by `--skaffold` or `$OP_SKAFFOLD`, as `config::op_settings` resolves
    /// them), else `skaffold` on `PATH`; checked to exist. `artifacts` (those that need it) are
    /// named when it does not.
    pub fn find(
        named: Option<(PathBuf, Origin)>,
        env: &Env,
        artifacts: &[String],
    ) -> Result<Self, Error> {
        let not_found = |problem: String| Error::NotFound {
            artifacts: artifacts.to_vec(),
            problem,
        };
        if let Some((path, origin)) = named {
            let from = match origin {
                Origin::Env(var) => var,
                other => other.to_string(),
            };
            // A bare name is looked up on PATH, as a shell would.
            let found = if path.components().count() == 1 {
                on_path(&path, env)
            } else {
                path.is_file().then(|| path.clone())
            };
            return found.map(|binary| Self { binary }).ok_or_else(|| {
                not_found(format!(
                    "{from} names `{}`, which is not an executable file",
                    path.display()
                ))
            });
        }
        on_path(Path::new("skaffold"), env)
            .map(|binary| Self { binary })
            .ok_or_else(|| not_found("`skaffold` is not on PATH".into()))
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The arguments of `skaffold build` for `run`.
    pub fn arguments(run: &Run<'_>, file_output: &Path, global_config: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["build".into()];
        let mut flag = |name: &str, value: &str| args.push(format!("--{name}={value}").into());
        flag("filename", &run.skaffold_file.display().to_string());
        for profile in run.profiles {
            flag("profile", profile);
        }
        for image in run.artifacts {
            flag("build-image", image);
        }
        flag("default-repo", run.default_repo);
        if let Some(tag) = run.tag {
            flag("tag", tag);
        }
        flag("push", if run.push { "true" } else { "false" });
        for host in run.insecure_registries {
            flag("insecure-registry", host);
        }
        if !run.platforms.is_empty() {
            let platforms: Vec<String> = run.platforms.iter().map(ToString::to_string).collect();
            flag("platform", &platforms.join(","));
        }
        flag("build-concurrency", &run.concurrency.to_string());
        flag("file-output", &file_output.display().to_string());
        flag(
            "cache-artifacts",
            if run.cache_artifacts { "true" } else { "false" },
        );
        flag("cache-file", &run.cache_file.display().to_string());
        flag("config", &global_config.display().to_string());
        flag("interactive", "false");
        flag("update-check", "false");
        flag("detect-minikube", "false");
        args
    }

    /// Runs `skaffold build` for `run` in `run.cwd`, with `env` (less the variables op decides);
    /// each line of its output goes to `line(artifact, text)`, attributed to the artifact
    /// skaffold says it is building. Returns skaffold's results, in `run.artifacts` order.
    /// `interrupt` stops it.
    pub async fn build(
        &self,
        run: &Run<'_>,
        env: &Env,
        mut line: impl FnMut(&str, &str),
        interrupt: &Interrupt,
    ) -> Result<Vec<Built>, Error> {
        let files = RunFiles::write(run, env)?;
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args(Self::arguments(run, &files.output, &files.global_config))
            .current_dir(run.cwd)
            .env_clear()
            .envs(env.iter().filter(|(k, _)| !DECIDED_BY_OP.contains(k)))
            .envs(run.image_registry.map(|r| (IMAGE_REGISTRY_VAR, r)))
            .envs(files.ca.as_ref().map(|path| (op_oci::SSL_CERT_FILE, path)))
            .envs(
                files
                    .docker_config
                    .as_ref()
                    .map(|dir| ("DOCKER_CONFIG", dir)),
            )
            // No provenance attestations from the docker builds skaffold starts, unless the
            // user asks: docker buildx would make every image an index with an attestation
            // manifest, which breaks such an image as a run image (upstream §11.3).
            .envs(
                env.raw(NO_ATTESTATIONS)
                    .is_none()
                    .then_some((NO_ATTESTATIONS, "1")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping it reaches what it runs (a custom
            // artifact's build script and the commands of that script).
            .process_group(0)
            .kill_on_drop(true);
        tracing::debug!(binary = %self.binary.display(), args = ?command.as_std().get_args().collect::<Vec<_>>(), "skaffold");
        let mut child = command.spawn().map_err(|source| Error::Start {
            binary: self.binary.display().to_string(),
            source,
        })?;
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(text)) = lines.next_line().await {
                    if sender.send(text).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut attribution = Attribution::new(run.artifacts);
        let mut tail: VecDeque<String> = VecDeque::new();
        loop {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some(text) => {
                        let artifact = attribution.of(&text);
                        line(artifact, &text);
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(text);
                    }
                    None => break,
                },
                _ = interrupt.wait() => {
                    stop(&mut child).await;
                    return Err(Error::Interrupted);
                }
            }
        }
        let status = tokio::select! {
            status = child.wait() => status.map_err(|source| Error::Start {
                binary: self.binary.display().to_string(),
                source,
            })?,
            _ = interrupt.wait() => {
                stop(&mut child).await;
                return Err(Error::Interrupted);
            }
        };
        if !status.success() {
            return Err(Error::Failed {
                status: match status.code() {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".into(),
                },
                tail: tail.into(),
            });
        }
        read_results(&files.output, run.artifacts)
    }
}

/// How long skaffold gets to stop its builds after an interrupt before its process group is
/// killed.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Stops skaffold and everything it started: SIGINT to its process group (skaffold cancels its
/// builds, as on Ctrl-C), then, after [`STOP_GRACE`] or once skaffold exited, SIGKILL to what is
/// left of the group.
/// The files of one `skaffold build`, in a temporary directory removed with them.
struct RunFiles {
    _dir: tempfile::TempDir,
    /// `--file-output`, which skaffold writes.
    output: PathBuf,
    /// `--config`: [`GLOBAL_CONFIG`].
    global_config: PathBuf,
    /// `SSL_CERT_FILE`, when the run has CA certificates.
    ca: Option<PathBuf>,
    /// `DOCKER_CONFIG`, when the Docker configuration is `$DOCKER_CONFIG_CONTENT`'s text: a
    /// directory of the run with it as `config.json` (readable by op's user only), for skaffold
    /// and what it runs (the docker CLI of a `custom` artifact).
    docker_config: Option<PathBuf>,
}

impl RunFiles {
    fn write(run: &Run<'_>, env: &Env) -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("op-skaffold-")
            .tempdir()
            .map_err(Error::Files)?;
        let global_config = dir.path().join("config");
        fs_err::write(&global_config, GLOBAL_CONFIG).map_err(Error::Files)?;
        let ca = match run.ca_certificates {
            Some(pem) => {
                let path = dir.path().join("ca-certificates.pem");
                fs_err::write(&path, pem).map_err(Error::Files)?;
                Some(path)
            }
            None => None,
        };
        let docker_config = match env.get(crate::registry::auth::CONFIG_CONTENT) {
            Some(content) => {
                use std::os::unix::fs::PermissionsExt as _;
                let docker = dir.path().join("docker");
                fs_err::create_dir(&docker).map_err(Error::Files)?;
                let file = docker.join("config.json");
                fs_err::write(&file, content).map_err(Error::Files)?;
                fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(Error::Files)?;
                Some(docker)
            }
            None => None,
        };
        Ok(Self {
            output: dir.path().join("build_result.json"),
            global_config,
            ca,
            docker_config,
            _dir: dir,
        })
    }
}

async fn stop(child: &mut tokio::process::Child) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    if let Some(group) = group {
        let _ = kill_process_group(group, Signal::INT);
        let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
        let _ = kill_process_group(group, Signal::KILL);
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// `name` in the directories of `PATH`, when it is a file there.
fn on_path(name: &Path, env: &Env) -> Option<PathBuf> {
    let path = env.get("PATH")?;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// One `skaffold build`.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    /// The main skaffold.yaml, absolute.
    pub skaffold_file: &'a Path,
    /// The profiles op was asked for (`-NAME` deactivates one, as for op).
    pub profiles: &'a [String],
    /// The artifacts to build (their images).
    pub artifacts: &'a [String],
    pub default_repo: &'a str,
    /// `--tag`: none lets skaffold.yaml's `tagPolicy` tag the images.
    pub tag: Option<&'a str>,
    pub push: bool,
    pub insecure_registries: &'a [String],
    /// `--platform` values; none: skaffold's default (the engine's platform).
    pub platforms: &'a [op_oci::Platform],
    /// The mirror of builders and base images, for skaffold.yaml's templates
    /// (`$OP_IMAGE_REGISTRY`).
    pub image_registry: Option<&'a str>,
    /// How many of them skaffold builds at once.
    pub concurrency: usize,
    /// Where skaffold runs (where op runs).
    pub cwd: &'a Path,
    /// skaffold's artifact cache (`--cache-file`): one per run, since skaffold rewrites the whole
    /// file and two runs sharing one would lose each other's entries.
    pub cache_file: &'a Path,
    /// `--cache-artifacts`: whether skaffold may reuse what it built before.
    pub cache_artifacts: bool,
    /// The CA certificates skaffold trusts for its own registry requests (a PEM bundle: the
    /// system's and `$OP_REGISTRY_CA_PATH`'s), when op was given some; written next to its
    /// other files and named by `SSL_CERT_FILE`.
    pub ca_certificates: Option<&'a str>,
}

/// What skaffold says it built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The artifact's `image`.
    pub image: String,
    /// skaffold's `tag`: `<repo>/<image>:<tag>@sha256:…` (pushed: the manifest digest; left in
    /// the engine: the image ID).
    pub tag: String,
}

/// skaffold's `--file-output`; a failed build writes `{"builds":null}`.
#[derive(Deserialize)]
struct FileOutput {
    builds: Option<Vec<FileOutputBuild>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileOutputBuild {
    image_name: String,
    tag: String,
}

/// skaffold's results for `artifacts`, in that order.
fn read_results(path: &Path, artifacts: &[String]) -> Result<Vec<Built>, Error> {
    let shown = path.display().to_string();
    let text = fs_err::read_to_string(path).map_err(|e| Error::Output {
        path: shown.clone(),
        problem: e.to_string(),
    })?;
    let output: FileOutput = serde_json::from_str(&text).map_err(|e| Error::Output {
        path: shown,
        problem: e.to_string(),
    })?;
    let builds = output.builds.unwrap_or_default();
    artifacts
        .iter()
        .map(|image| {
            builds
                .iter()
                .find(|b| b.image_name == *image)
                .map(|b| Built {
                    image: image.clone(),
                    tag: b.tag.clone(),
                })
                .ok_or_else(|| Error::NotReported {
                    image: image.clone(),
                })
        })
        .collect()
}

/// Which artifact a line of skaffold's output is about: skaffold announces each build
/// (`Building [NAME]...`) and each tag (` - NAME -> REF`); other lines belong to the build last
/// announced (skaffold prints the output of concurrent builds one build after another).
struct Attribution<'a> {
    artifacts: &'a [String],
    current: usize,
}

impl<'a> Attribution<'a> {
    fn new(artifacts: &'a [String]) -> Self {
        Self {
            artifacts,
            current: 0,
        }
    }

    fn of(&mut self, line: &str) -> &'a str {
        let index = |name: &str| self.artifacts.iter().position(|a| a == name);
        if let Some(name) = line
            .strip_prefix("Building [")
            .and_then(|rest| rest.strip_suffix("]..."))
            && let Some(i) = index(name)
        {
            self.current = i;
        }
        if let Some(name) = line
            .strip_prefix(" - ")
            .and_then(|rest| rest.split(" -> ").next())
            && let Some(i) = index(name)
        {
            return self.artifacts[i].as_str();
        }
        self.artifacts
            .get(self.current)
            .map_or("skaffold", String::as_str)
    }
}

#[cfg(test)]
mod tests;
