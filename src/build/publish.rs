//! After a creator exited 0: the digest it published, checked against what the registry serves.

use std::time::Instant;

use super::Shared;
use super::artifact::Error;
use crate::cnb::{app, creator};

/// The digest the image was published with, checked against what the registry serves for
/// `target`. The lifecycle announces it (`*** Images (sha256:…):`); when the registry serves
/// that digest, the copy of `report.toml` out of the container (about 60 ms on Docker 20.10)
/// is spared. Otherwise, or without an announcement, `report.toml`, the platform contract,
/// decides.
pub(super) async fn published_digest(
    shared: &Shared,
    container: &str,
    target: &str,
    announced: Option<String>,
) -> Result<String, Error> {
    let from_report = || report_digest(shared, container);
    let (mut digest, mut checked_report) = match announced {
        Some(digest) => (digest, false),
        None => (from_report().await?, true),
    };
    // Some registries serve a pushed image only after a while (upstream's propagation wait).
    let started = Instant::now();
    let mut waiting = false;
    loop {
        let served = match shared.registry.digest(target).await {
            Ok(served) => served,
            Err(e) if e.is_unauthorized() => {
                shared.reporter.note(&format!(
                    "warning: the registry refuses op's credentials for `{target}`, so the digest of report.toml is not checked"
                ));
                return if checked_report {
                    Ok(digest)
                } else {
                    from_report().await
                };
            }
            Err(e) => return Err(e.into()),
        };
        match served {
            Some(served) if served == digest => return Ok(digest),
            Some(_) if !checked_report => {
                digest = from_report().await?;
                checked_report = true;
            }
            Some(served) => {
                return Err(Error::DigestMismatch {
                    target: target.to_string(),
                    reported: digest,
                    served,
                });
            }
            None if started.elapsed() >= shared.options.propagation_timeout => {
                return Err(Error::NotPublished {
                    target: target.to_string(),
                });
            }
            None => {
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
async fn report_digest(shared: &Shared, container: &str) -> Result<String, Error> {
    let tar = shared
        .engine
        .download(container, &format!("{}/report.toml", creator::LAYERS_DIR))
        .await?
        .ok_or(Error::NoReport)?;
    let report = app::read_report(&tar).map_err(Error::BadReport)?;
    report
        .image
        .digest
        .ok_or_else(|| Error::BadReport("it has no image.digest".into()))
}
