//! The build's containers and volumes: the per-build volumes and the cache volume, the creator
//! container's spec (network, credentials, binds, labels), and running the creator.

use std::collections::BTreeMap;

use op_oci::Reference;

use super::{Build, Error, TAIL_LINES};
use crate::cnb::creator;
use crate::engine::runner::{self, Created, Exit};
use crate::engine::{ContainerSpec, Output};
use crate::execute::creator_output::{LineBuffer, Phase, announced_digest, without_ansi};
use crate::execute::names::{LABEL_CACHE_FOR, network_for};

/// How the creator ended.
pub(super) struct CreatorExit {
    /// Its exit code; `None` when op was interrupted.
    pub(super) code: Option<i64>,
    /// Its last lines.
    pub(super) tail: Vec<String>,
    /// The digest it announced publishing, if it did.
    pub(super) announced: Option<String>,
}

impl Build<'_> {
    /// The per-build volumes (recorded in `resources`) and, unless the cache is an image, the
    /// artifact's cache volume.
    pub(super) async fn prepare_volumes(&self, resources: &mut Created) -> Result<(), Error> {
        let (shared, artifact, volumes, labels) =
            (self.shared, self.artifact, &self.volumes, &self.labels);
        let (clear_cache, cache_volume) = (self.plan.clear_cache, self.cache_image.is_none());
        let engine = shared.engine("make volumes")?;
        let cache = &volumes.cache;
        if clear_cache && cache_volume {
            shared.reporter.line(
                &artifact.image,
                &format!("Clearing cache volume {cache} (clearCache)"),
            );
            engine.remove_volume(cache).await?;
        }
        let repository = artifact.target.name();
        let cache_labels = BTreeMap::from([(LABEL_CACHE_FOR.to_string(), repository)]);
        let (layers, workspace, cached) = tokio::join!(
            engine.create_volume(&volumes.layers, labels),
            engine.create_volume(&volumes.workspace, labels),
            async {
                if cache_volume {
                    engine.create_volume(cache, &cache_labels).await
                } else {
                    Ok(())
                }
            },
        );
        for (volume, created) in [(&volumes.layers, &layers), (&volumes.workspace, &workspace)] {
            if created.is_ok() {
                resources.volumes.push(volume.clone());
            }
        }
        layers?;
        workspace?;
        cached?;
        Ok(())
    }

    /// The creator container of the build: on its run image, caching in its cache image when
    /// there is one, with its volumes, named after its per-build name, for its platform when one
    /// is asked for; the registry credentials of the registries it talks to, and no others.
    pub(super) fn creator_spec(&self) -> Result<ContainerSpec, Error> {
        let (shared, artifact, b, builder) = (self.shared, self.artifact, self.plan, self.builder);
        let (run_image, cache_image) = (self.run_image, self.cache_image.as_ref());
        let (volumes, base, platform) = (&self.volumes, &self.base, self.platform);
        let mut labels = self.labels.clone();
        let platform_api = builder.platform_api()?;
        let default_run_images = builder.default_run_images();
        let mut involved: Vec<&Reference> = artifact.references().collect();
        involved.push(run_image);
        involved.extend(cache_image);
        let network = network_for(shared.options.network.as_deref(), &involved);
        // The builder's default run image comes with mirrors the lifecycle may read instead.
        if b.run_image.is_none() {
            involved.extend(&default_run_images);
        }
        let hosts: Vec<String> = involved.iter().map(|r| r.registry().to_string()).collect();
        let auth = shared.credentials.only(&hosts).cnb_registry_auth();
        let proxies: Vec<(String, String)> = creator::PROXY_VARIABLES
            .iter()
            .filter_map(|k| shared.env.get(k).map(|v| ((*k).to_string(), v.to_string())))
            .collect();
        let binds: Vec<String> = b
            .volumes
            .iter()
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.target,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect();
        labels.insert(
            "io.octopilot.op.platform-api".into(),
            platform_api.to_string(),
        );
        let tags: Vec<String> = artifact
            .extra_tags
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(creator::container(&creator::CreatorInputs {
            builder,
            platform_api,
            image: &artifact.target.to_string(),
            tags: &tags,
            run_image: &run_image.to_string(),
            insecure_registries: &shared.insecure_registries,
            registry_auth: auth.as_deref(),
            volumes,
            extra_binds: &binds,
            network: network.as_deref(),
            skip_restore: b.clear_cache,
            cache_image: cache_image.map(ToString::to_string).as_deref(),
            debug: shared.options.debug,
            proxies: &proxies,
            ca_certificates: shared.ca_bundle.is_some(),
            labels: &labels,
            name: &format!("op-build-{base}"),
            platform: platform.map(ToString::to_string).as_deref(),
        }))
    }

    /// Runs the creator (`engine::runner`): its output line by line to the reporter (phases read
    /// from the banners, the announced digest and the last lines kept), its exit.
    pub(super) async fn run_creator(&self, container: &str) -> Result<CreatorExit, Error> {
        let shared = self.shared;
        let engine = shared.engine("run a creator")?.as_ref();
        let Some(started) = runner::start(engine, container, &shared.interrupt).await? else {
            return Ok(CreatorExit {
                code: None,
                tail: Vec::new(),
                announced: None,
            });
        };
        let (mut out, mut err) = (LineBuffer::default(), LineBuffer::default());
        let mut lines = self.creator_lines();
        let ended = runner::wait(
            engine,
            started,
            &shared.interrupt,
            crate::execute::STOP_GRACE_SECONDS,
            &mut |chunk| match chunk {
                Output::Stdout(bytes) => out.push(&bytes).into_iter().for_each(|l| lines.emit(&l)),
                Output::Stderr(bytes) => err.push(&bytes).into_iter().for_each(|l| lines.emit(&l)),
            },
        )
        .await?;
        out.finish()
            .into_iter()
            .chain(err.finish())
            .for_each(|l| lines.emit(&l));
        Ok(lines.exit(match ended {
            Exit::Code(code) => Some(code),
            Exit::Interrupted(_) => None,
        }))
    }

    /// What shows and keeps the creator's lines, wherever it runs.
    pub(super) fn creator_lines(&self) -> CreatorLines<'_> {
        CreatorLines {
            reporter: self.shared.reporter.as_ref(),
            name: self.name(),
            // The lines of one of several platforms say which.
            platform: self.platform.filter(|_| self.variant.is_some()),
            tail: std::collections::VecDeque::new(),
            announced: None,
        }
    }
}

/// The creator's output, a line at a time: shown to the reporter (prefixed with the platform
/// when it is one of several), its phases read from the banners, the digest it announces and
/// its last lines kept.
pub(super) struct CreatorLines<'a> {
    reporter: &'a dyn crate::execute::Reporter,
    name: &'a str,
    platform: Option<&'a op_oci::Platform>,
    tail: std::collections::VecDeque<String>,
    announced: Option<String>,
}

impl CreatorLines<'_> {
    pub(super) fn emit(&mut self, line: &str) {
        let name = self.name;
        if let Some(digest) = announced_digest(line) {
            self.announced = Some(digest);
        }
        if let Some(phase) = Phase::from_banner(line) {
            tracing::debug!(artifact = name, phase = phase.label(), "phase");
            self.reporter.phase(name, phase);
        }
        match self.platform {
            Some(platform) => self.reporter.line(name, &format!("({platform}) {line}")),
            None => self.reporter.line(name, line),
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        // The tail ends up in an error message: plain text.
        self.tail.push_back(without_ansi(line).into_owned());
    }

    /// How the creator ended, with `code` (`None`: op was interrupted).
    pub(super) fn exit(self, code: Option<i64>) -> CreatorExit {
        CreatorExit {
            code,
            tail: self.tail.into_iter().collect(),
            announced: self.announced,
        }
    }
}
