//! A recording [`Containers`] for tests: every call is written down, containers play a
//! [`Script`] (output, an exit code, or running until stopped), and any call can be made to fail.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{
    Archive, ContainerSpec, Containers, Error, ImageConfig, Output, OutputStream, PullAuth,
    PullPolicy,
};

/// What a container does once started.
#[derive(Clone, Debug, Default)]
pub(crate) struct Script {
    pub(crate) output: Vec<Output>,
    pub(crate) code: i64,
    /// It runs until stopped (then exits 143), after its output.
    pub(crate) until_stopped: bool,
    /// How long it runs before exiting on its own.
    pub(crate) seconds: u64,
}

impl Script {
    pub(crate) fn printing(lines: &[&str], code: i64) -> Self {
        Self {
            output: lines
                .iter()
                .map(|l| Output::Stdout(format!("{l}\n").into_bytes()))
                .collect(),
            code,
            ..Self::default()
        }
    }
}

#[derive(Default)]
struct State {
    calls: Vec<String>,
    next_id: u32,
    specs: BTreeMap<String, ContainerSpec>,
    stopped: BTreeMap<String, watch::Sender<bool>>,
    files: BTreeMap<(String, String), Vec<u8>>,
}

type ScriptFor = dyn Fn(&ContainerSpec) -> Script + Send + Sync;

/// The fake engine.
pub(crate) struct Fake {
    state: Mutex<State>,
    script: Box<ScriptFor>,
    /// Calls (by name: `create`, `upload`, `start`, …) that fail, and how many more times
    /// (`None`: always); a failing `start` fails as a taken host port.
    failing: Mutex<Vec<(String, Option<usize>)>>,
}

impl Fake {
    /// Containers play what `script` says for their spec.
    pub(crate) fn new(script: impl Fn(&ContainerSpec) -> Script + Send + Sync + 'static) -> Self {
        Self {
            state: Mutex::new(State::default()),
            script: Box::new(script),
            failing: Mutex::new(Vec::new()),
        }
    }

    /// Calls named `call` fail from now on.
    pub(crate) fn fail(&self, call: &str) {
        self.failing.lock().unwrap().push((call.to_string(), None));
    }

    /// The next `times` calls named `call` fail.
    pub(crate) fn fail_times(&self, call: &str, times: usize) {
        self.failing
            .lock()
            .unwrap()
            .push((call.to_string(), Some(times)));
    }

    /// A file `download` finds in container `id`.
    pub(crate) fn put_file(&self, id: &str, path: &str, tar: Vec<u8>) {
        let mut state = self.state.lock().unwrap();
        state.files.insert((id.to_string(), path.to_string()), tar);
    }

    /// Every call so far, as `<call> <argument>`.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls named `call`, their arguments.
    pub(crate) fn calls_of(&self, call: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| c.strip_prefix(&format!("{call} ")).map(str::to_string))
            .collect()
    }

    /// The spec container `id` was created from.
    pub(crate) fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.state.lock().unwrap().specs.get(id).cloned()
    }

    fn record(&self, call: &str, argument: &str) -> Result<(), Error> {
        self.state
            .lock()
            .unwrap()
            .calls
            .push(format!("{call} {argument}"));
        let mut failing = self.failing.lock().unwrap();
        let Some((_, times)) = failing
            .iter_mut()
            .find(|(c, times)| c == call && *times != Some(0))
        else {
            return Ok(());
        };
        if let Some(left) = times {
            *left -= 1;
        }
        let source = bollard::errors::Error::DockerStreamError {
            error: "the fake engine was told to fail".into(),
        };
        Err(if call == "start" {
            Error::PortTaken {
                container: argument.to_string(),
                source,
            }
        } else {
            Error::Api {
                action: format!("{call} {argument}"),
                source,
            }
        })
    }

    fn script_of(&self, id: &str) -> Script {
        let spec = self.spec(id).unwrap_or_default();
        (self.script)(&spec)
    }

    fn stopped_of(&self, id: &str) -> watch::Receiver<bool> {
        let mut state = self.state.lock().unwrap();
        state
            .stopped
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }
}

/// Waits until `stopped` is set.
async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow_and_update() {
        if stopped.changed().await.is_err() {
            return;
        }
    }
}

impl Containers for Fake {
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        _policy: PullPolicy,
        _auth: Option<&'a PullAuth>,
        _progress: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move { self.record("ensure_image", image).map(|()| false) })
    }

    fn pull_platform<'a>(
        &'a self,
        image: &'a str,
        platform: &'a str,
        _auth: Option<&'a PullAuth>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.record("pull_platform", &format!("{image} {platform}")) })
    }

    fn containerd_store(&self) -> bool {
        false
    }

    fn architecture(&self) -> &'static str {
        "amd64"
    }

    fn image_config<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<ImageConfig, Error>> {
        Box::pin(async move {
            self.record("image_config", image)?;
            Ok(ImageConfig::default())
        })
    }

    fn tag<'a>(&'a self, image: &'a str, reference: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.record("tag", &format!("{image} {reference}")) })
    }

    fn create<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(async move {
            self.record("create", spec.name.as_deref().unwrap_or(&spec.image))?;
            let mut state = self.state.lock().unwrap();
            state.next_id += 1;
            let id = format!("c{}", state.next_id);
            state.specs.insert(id.clone(), spec.clone());
            Ok(id)
        })
    }

    fn upload<'a>(
        &'a self,
        id: &'a str,
        path: &'a str,
        mut archive: Archive,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.record("upload", &format!("{id}:{path}"))?;
            // The engine reads the whole archive, and fails on one that ends in an error.
            while let Some(chunk) = archive.next().await {
                if let Err(err) = chunk {
                    return Err(Error::Api {
                        action: format!("upload {id}:{path}"),
                        source: bollard::errors::Error::IOError { err },
                    });
                }
            }
            Ok(())
        })
    }

    fn attach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<OutputStream, Error>> {
        Box::pin(async move {
            self.record("attach", id)?;
            let script = self.script_of(id);
            let stopped = self.stopped_of(id);
            let output = futures::stream::iter(script.output.into_iter().map(Ok));
            let end = futures::stream::once(async move {
                if script.until_stopped {
                    until_stopped(stopped).await;
                } else {
                    tokio::time::sleep(Duration::from_secs(script.seconds)).await;
                }
            })
            .filter_map(|()| async { None });
            let stream: OutputStream = Box::pin(output.chain(end));
            Ok(stream)
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.record("start", id) })
    }

    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64, Error>> {
        Box::pin(async move {
            self.record("wait", id)?;
            let script = self.script_of(id);
            if script.until_stopped {
                until_stopped(self.stopped_of(id)).await;
                return Ok(143);
            }
            Ok(script.code)
        })
    }

    fn stop<'a>(&'a self, id: &'a str, grace_seconds: i32) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.record("stop", &format!("{id} {grace_seconds}s"))?;
            let mut state = self.state.lock().unwrap();
            state
                .stopped
                .entry(id.to_string())
                .or_insert_with(|| watch::channel(false).0)
                .send_replace(true);
            Ok(())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.record("remove", id) })
    }

    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        _labels: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.record("create_volume", name) })
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.record("remove_volume", name) })
    }

    fn download<'a>(
        &'a self,
        id: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            self.record("download", &format!("{id}:{path}"))?;
            let state = self.state.lock().unwrap();
            Ok(state
                .files
                .get(&(id.to_string(), path.to_string()))
                .cloned())
        })
    }

    fn run_time<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        Box::pin(async move {
            self.record("run_time", id)?;
            Ok(Some(Duration::from_secs(1)))
        })
    }

    fn published_ports<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<(u16, u16)>, Error>> {
        Box::pin(async move {
            self.record("published_ports", id)?;
            let spec = self.spec(id).unwrap_or_default();
            Ok(spec
                .ports
                .iter()
                .map(|p| (p.container_port, p.host_port.unwrap_or(32768)))
                .collect())
        })
    }
}
