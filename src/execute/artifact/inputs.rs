//! What is uploaded into the creator container before it starts: the app, the platform
//! environment, the order of the buildpacks the artifact chose.

use std::sync::Arc;

use super::Build;
use crate::cnb::{self, app, project::ProjectDescriptor};
use crate::execute::chart;
use crate::plan::{BuildpacksPlan, EnvVar};

impl Build<'_> {
    /// The creator's inputs (the app, the platform environment, the order of the buildpacks
    /// the artifact chose) as the upload reads them: `spooled` when they were tarred for the
    /// build's key already, else tarred now on a blocking thread, streamed as the upload reads
    /// them.
    pub(super) fn tar_inputs(&self, spooled: Option<app::Spooled>) -> app::Streamed {
        if let Some(spooled) = spooled {
            return spooled.streamed();
        }
        let contents = self.contents();
        app::stream(move |inputs| contents.write(inputs))
    }

    /// The creator's inputs tarred once for the build's key, kept for its upload, and their
    /// digest ([`app::spool`]): that of every entry but the CA certificates (whom the
    /// lifecycle trusts) and `GITHUB_TOKEN` (a credential, new on every CI run).
    pub(super) async fn spool_inputs(&self) -> Result<(String, app::Spooled), cnb::Error> {
        let contents = self.contents();
        app::spool(move |inputs| contents.write(inputs), not_an_input).await
    }

    fn contents(&self) -> Contents {
        let (shared, artifact, b) = (self.shared, self.artifact, self.plan);
        let mut env = platform_env(b, &shared.env);
        if let Some(plan) = &b.chart {
            env.extend(chart::env(plan, &shared.insecure_registries));
        }
        Contents {
            context: artifact.context.clone(),
            descriptor: b.project_descriptor.clone(),
            chart: b.chart.is_some(),
            builder: self.builder.clone(),
            wanted: b.buildpacks.clone(),
            image: artifact.image.clone(),
            reporter: Arc::clone(&shared.reporter),
            env,
            ca_bundle: shared.ca_bundle.clone(),
        }
    }
}

/// The entries of the creator's inputs that do not change its image (by path, and whether it
/// is a directory): the CA bundle op hands the lifecycle, `GITHUB_TOKEN`, and the directories
/// made for them alone.
fn not_an_input(path: &str, is_dir: bool) -> bool {
    let ca_file = app::CA_FILE.trim_start_matches('/');
    let token = format!("platform/env/{GITHUB_TOKEN}");
    if is_dir {
        ["platform", "platform/env"].contains(&path) || ca_file.starts_with(&format!("{path}/"))
    } else {
        path == ca_file || path == token
    }
}

/// What goes into the creator before it starts, read on a blocking thread.
struct Contents {
    context: std::path::PathBuf,
    descriptor: Option<std::path::PathBuf>,
    chart: bool,
    builder: cnb::builder::BuilderInfo,
    wanted: Vec<String>,
    image: String,
    /// Where project.toml's warnings go.
    reporter: Arc<dyn crate::execute::Reporter>,
    env: Vec<EnvVar>,
    ca_bundle: Option<Arc<str>>,
}

impl Contents {
    fn write<W: std::io::Write>(&self, inputs: &mut app::Inputs<W>) -> Result<(), cnb::Error> {
        let (builder, image) = (&self.builder, &self.image);
        let mut project = ProjectDescriptor::read(self.descriptor.as_deref())?;
        let order =
            project
                .order(&self.wanted, builder)
                .map_err(|problem| cnb::Error::Buildpacks {
                    image: image.clone(),
                    problem,
                    available: builder.buildpacks(),
                })?;
        for warning in &project.warnings {
            self.reporter.line(image, &format!("warning: {warning}"));
        }
        let env = project.env_with(&self.env);
        let (uid, gid) = (builder.uid, builder.gid);
        inputs.app(&self.context, uid, gid, &project.filter)?;
        if self.chart {
            inputs.directory(chart::OUT_DIR, uid, gid)?;
        }
        if !env.is_empty() {
            inputs.platform_env(&env)?;
        }
        if let Some(order) = order {
            inputs.order(&order)?;
        }
        if let Some(pem) = &self.ca_bundle {
            inputs.ca_certificates(pem)?;
        }
        Ok(())
    }
}

/// The variables the buildpacks of `b` see: its `buildpacks.env`, and `GITHUB_TOKEN` from op's
/// environment unless the artifact sets it (upstream forwards it, for private modules). They go
/// to `/platform/env`, which is neither printed nor part of the image.
fn platform_env(b: &BuildpacksPlan, env: &crate::config::Env) -> Vec<EnvVar> {
    let mut all = b.env.clone();
    if let Some(token) = env.get(GITHUB_TOKEN)
        && !all.iter().any(|v| v.name == GITHUB_TOKEN)
    {
        all.push(EnvVar {
            name: GITHUB_TOKEN.to_string(),
            value: token.to_string(),
        });
    }
    all
}

/// The variable upstream forwards to every build.
const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

#[cfg(test)]
mod tests {
    use super::not_an_input;

    #[test]
    fn the_ca_bundle_and_github_token_are_not_inputs_and_the_rest_is() {
        for (path, is_dir) in [
            ("etc", true),
            ("etc/op", true),
            ("etc/op/ca-certificates.pem", false),
            ("platform", true),
            ("platform/env", true),
            ("platform/env/GITHUB_TOKEN", false),
        ] {
            assert!(not_an_input(path, is_dir), "{path}");
        }
        for (path, is_dir) in [
            ("platform/env/BP_NODE_VERSION", false),
            ("workspace", true),
            ("workspace/etc/op/ca-certificates.pem", false),
            ("layers/order.toml", false),
            ("et", true),
        ] {
            assert!(!not_an_input(path, is_dir), "{path}");
        }
    }
}
