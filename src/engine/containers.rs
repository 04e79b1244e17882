//! The engine as the builds and `op run` use it: a narrow interface ([`Containers`]), which
//! [`Engine`] implements with the Docker Engine API and tests implement with a recording fake,
//! so that what happens around a container (ordering, cleanup, interrupts) is tested without
//! one. (pack's `DockerClient` interface and go-containerregistry's `daemon.Client` are the
//! models.)

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{
    Archive, ContainerSpec, Engine, Error, ImageConfig, OutputStream, PullAuth, PullPolicy,
};

/// What op does with the engine's images, containers and volumes.
pub trait Containers: Send + Sync {
    /// Makes sure the engine has `image`, pulling it as `policy` says; `progress` hears a line
    /// per pull status change. Whether it pulled.
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: Option<&'a PullAuth>,
        progress: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// [`Containers::ensure_image`], then the image's config: whether it pulled, and the config.
    fn ensure_image_config<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: Option<&'a PullAuth>,
        progress: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<(bool, ImageConfig), Error>> {
        Box::pin(async move {
            let pulled = self.ensure_image(image, policy, auth, progress).await?;
            Ok((pulled, self.image_config(image).await?))
        })
    }

    /// Pulls `image` for `platform` (`os/arch[/variant]`).
    fn pull_platform<'a>(
        &'a self,
        image: &'a str,
        platform: &'a str,
        auth: Option<&'a PullAuth>,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Whether images live in containerd's image store, which holds every platform of an index
    /// (a graph driver's store holds one platform per image).
    fn containerd_store(&self) -> bool;

    /// The engine's architecture as image configs name it (`amd64`, `arm64`).
    fn architecture(&self) -> &str;

    /// The config of `image` in the engine.
    fn image_config<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<ImageConfig, Error>>;

    /// Tags the engine's `image` as `reference`.
    fn tag<'a>(&'a self, image: &'a str, reference: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Creates a container; its id.
    fn create<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, Error>>;

    /// Extracts the tar `archive` at `path` in a created container, as its chunks come.
    fn upload<'a>(
        &'a self,
        id: &'a str,
        path: &'a str,
        archive: Archive,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// The output of a created container, from its start (attach before starting it).
    fn attach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<OutputStream, Error>>;

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Waits until the container stops; its exit code.
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64, Error>>;

    /// Stops a container (SIGTERM, then SIGKILL after `grace_seconds`).
    fn stop<'a>(&'a self, id: &'a str, grace_seconds: i32) -> BoxFuture<'a, Result<(), Error>>;

    /// Removes a container, running or not, with its anonymous volumes.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Creates a named volume (nothing happens when it exists).
    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), Error>>;

    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// The tar of `path` in a container; `None` when it does not exist.
    fn download<'a>(
        &'a self,
        id: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>>;

    /// How long a stopped container ran, as the engine recorded it.
    fn run_time<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Duration>, Error>>;

    /// The host ports published for a running container: `(container port, host port)`.
    fn published_ports<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<(u16, u16)>, Error>>;
}

impl Containers for Engine {
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: Option<&'a PullAuth>,
        progress: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(Engine::ensure_image(self, image, policy, auth, progress))
    }

    fn ensure_image_config<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: Option<&'a PullAuth>,
        progress: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<(bool, ImageConfig), Error>> {
        Box::pin(Engine::ensure_image_config(
            self, image, policy, auth, progress,
        ))
    }

    fn pull_platform<'a>(
        &'a self,
        image: &'a str,
        platform: &'a str,
        auth: Option<&'a PullAuth>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            Engine::pull_platform(self, image, Some(platform), auth, &mut |_| {}).await
        })
    }

    fn containerd_store(&self) -> bool {
        Engine::containerd_store(self)
    }

    fn architecture(&self) -> &str {
        Engine::architecture(self)
    }

    fn image_config<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<ImageConfig, Error>> {
        Box::pin(Engine::image_config(self, image))
    }

    fn tag<'a>(&'a self, image: &'a str, reference: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Engine::tag(self, image, reference))
    }

    fn create<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(Engine::create(self, spec))
    }

    fn upload<'a>(
        &'a self,
        id: &'a str,
        path: &'a str,
        archive: Archive,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Engine::upload(self, id, path, archive))
    }

    fn attach<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<OutputStream, Error>> {
        Box::pin(Engine::attach(self, id))
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Engine::start(self, id))
    }

    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64, Error>> {
        Box::pin(Engine::wait(self, id))
    }

    fn stop<'a>(&'a self, id: &'a str, grace_seconds: i32) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Engine::stop(self, id, grace_seconds))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Engine::remove(self, id))
    }

    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Engine::create_volume(self, name, labels))
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(Engine::remove_volume(self, name))
    }

    fn download<'a>(
        &'a self,
        id: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(Engine::download(self, id, path))
    }

    fn run_time<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        Box::pin(Engine::run_time(self, id))
    }

    fn published_ports<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<(u16, u16)>, Error>> {
        Box::pin(Engine::published_ports(self, id))
    }
}
