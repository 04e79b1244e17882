//! After a build: the digest it published, checked against what the registry serves.

use std::time::Instant;

use op_oci::Reference;

use super::Shared;
use super::artifact::Error;
use crate::cnb::{app, creator};
use crate::kubernetes::PodRun;

/// Where the files of a creator that ended are read: its container in the engine, or the
/// `outputs` container of its pod (`--engine kubernetes`), with how long its creator ran as
/// the pod's status says. The rest of the build does not know which.
pub(crate) enum Finished<'a> {
    Container(&'a str),
    Pod(&'a PodRun, Option<std::time::Duration>),
}

impl Finished<'_> {
    /// `path` as a tar whose root is its last component (as the Docker Engine's archive
    /// endpoint gives it); `None` when it does not exist.
    pub(crate) async fn download(
        &self,
        shared: &Shared,
        path: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Finished::Container(id) => Ok(shared
                .engine("read a container")?
                .download(id, path)
                .await?),
            Finished::Pod(pod, _) => pod.download(path).await.map_err(Error::Cluster),
        }
    }
}

/// The digest the image was published with, checked against what the registry serves for
/// `target`. The lifecycle announces it (`*** Images (sha256:…):`); when the registry serves
/// that digest, the copy of `report.toml` out of the container (about 60 ms on Docker 20.10)
/// is spared. Otherwise, or without an announcement, `report.toml`, the platform contract,
/// decides.
pub(super) async fn published_digest(
    shared: &Shared,
    finished: &Finished<'_>,
    target: &Reference,
    announced: Option<String>,
) -> Result<String, Error> {
    let from_report = || report_digest(shared, finished);
    let (digest, checked_report) = match announced {
        Some(digest) => (digest, false),
        None => (from_report().await?, true),
    };
    let Some(served) = served_digest(shared, target).await? else {
        return if checked_report {
            Ok(digest)
        } else {
            from_report().await
        };
    };
    let digest = if served == digest || checked_report {
        digest
    } else {
        from_report().await?
    };
    if served == digest {
        Ok(digest)
    } else {
        Err(Error::DigestMismatch {
            target: target.to_string(),
            reported: digest,
            served,
        })
    }
}

/// The digest the registry serves for `target`, once it serves one: some registries serve a
/// pushed image only after a while (upstream's propagation wait), so op asks every 3 seconds
/// for up to `--propagation-timeout`. `None` when the registry refuses op's credentials (with a
/// warning: the digest cannot be checked).
pub(super) async fn served_digest(
    shared: &Shared,
    target: &Reference,
) -> Result<Option<String>, Error> {
    let started = Instant::now();
    let mut waiting = false;
    loop {
        match shared.registry.digest(target).await {
            Ok(Some(served)) => return Ok(Some(served)),
            Err(e) if e.is_unauthorized() => {
                shared.reporter.note(&format!(
                    "warning: the registry refuses op's credentials for `{target}`, so the digest published is not checked"
                ));
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
            Ok(None) if started.elapsed() >= shared.options.propagation_timeout => {
                return Err(Error::NotPublished {
                    target: target.to_string(),
                });
            }
            Ok(None) => {
                if !waiting {
                    let timeout = shared.options.propagation_timeout.as_secs_f64();
                    shared.reporter.note(&format!(
                        "Waiting for image propagation: {target} (timeout: {timeout:.0}s)"
                    ));
                    waiting = true;
                }
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            }
        }
    }
}

/// The digest of the `report.toml` the creator wrote.
async fn report_digest(shared: &Shared, finished: &Finished<'_>) -> Result<String, Error> {
    let tar = finished
        .download(shared, &format!("{}/report.toml", creator::LAYERS_DIR))
        .await?
        .ok_or(Error::NoReport)?;
    let report = app::read_report(&tar).map_err(Error::BadReport)?;
    report
        .image
        .digest
        .ok_or_else(|| Error::BadReport("it has no image.digest".into()))
}
