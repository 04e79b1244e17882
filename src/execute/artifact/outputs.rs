//! What a build published, once its creator succeeded: the digest the registry serves (or a
//! chart artifact's chart), and the SBOMs copied out of the container.

use super::{Build, Error};
use crate::cnb::creator;
use crate::execute::chart;
use crate::execute::names::slug;
use crate::execute::publish::{Finished, published_digest};

impl Build<'_> {
    /// After the creator succeeded: what it published (the target, or a chart artifact's chart),
    /// the digest the registry serves, the creator's run time; the SBOMs copied meanwhile.
    pub(super) async fn published(
        &self,
        finished: &Finished<'_>,
        announced: Option<String>,
    ) -> Result<(String, String, Option<f64>), Error> {
        let (shared, artifact, b) = (self.shared, self.artifact, self.plan);
        let name = &artifact.image;
        let run_time = async {
            match finished {
                Finished::Container(id) => {
                    let engine = shared.engine("read a container")?;
                    engine.run_time(id).await.map_err(Error::from)
                }
                Finished::Pod(_, ran) => Ok(*ran),
            }
        };
        let (run_time, digest, sboms) = tokio::join!(
            run_time,
            published_digest(shared, finished, &artifact.target, announced),
            self.copy_sboms(finished)
        );
        let digest = digest?;
        sboms?;
        let seconds = run_time?.map(|d| d.as_secs_f64());
        match &b.chart {
            Some(plan) => {
                let (reference, digest) = chart::published(shared, name, plan, finished).await?;
                Ok((reference, digest, seconds))
            }
            None => Ok((artifact.target.to_string(), digest, seconds)),
        }
    }

    /// With `--sbom-output DIR`: the SBOMs the lifecycle wrote (`/layers/sbom`: `launch/`,
    /// `build/`, `cache/`, as `pack build --sbom-output-dir` copies them) copied to
    /// `DIR/<artifact>/`, replacing what an earlier build left there. Nothing when the lifecycle
    /// wrote none.
    async fn copy_sboms(&self, finished: &Finished<'_>) -> Result<(), Error> {
        let (shared, name) = (self.shared, self.name());
        let Some(dir) = &shared.options.sbom_output else {
            return Ok(());
        };
        let Some(tar) = finished
            .download(shared, &format!("{}/sbom", creator::LAYERS_DIR))
            .await?
        else {
            return Ok(());
        };
        let target = self.place_sboms(dir, tar, "sbom").await?;
        shared
            .reporter
            .line(name, &format!("Copied the SBOMs to {}", target.display()));
        Ok(())
    }

    /// Extracts `tar` and moves its directory `root` (the SBOMs) to this build's directory of
    /// `dir` (`<dir>/<artifact>[/<platform>]`), in place of what was there; returns it.
    pub(super) async fn place_sboms(
        &self,
        dir: &std::path::Path,
        tar: Vec<u8>,
        root: &'static str,
    ) -> Result<std::path::PathBuf, Error> {
        let (name, variant) = (self.name(), self.variant.as_deref());
        let target = match variant {
            Some(variant) => dir.join(slug(name)).join(variant),
            None => dir.join(slug(name)),
        };
        let fail = |source: std::io::Error| Error::Sbom {
            dir: target.display().to_string(),
            source,
        };
        let (parent, destination) = (
            target
                .parent()
                .map_or_else(|| dir.to_path_buf(), std::path::Path::to_path_buf),
            target.clone(),
        );
        tokio::task::spawn_blocking(move || {
            fs_err::create_dir_all(&parent)?;
            let staging = tempfile::Builder::new()
                .prefix(".op-sbom-")
                .tempdir_in(&parent)?;
            op_oci::archive::extract(&tar, staging.path())?;
            if destination.exists() {
                fs_err::remove_dir_all(&destination)?;
            }
            fs_err::rename(staging.path().join(root), &destination)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(fail)?;
        Ok(target)
    }
}
