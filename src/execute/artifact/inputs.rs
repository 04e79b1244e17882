//! What is uploaded into the creator container before it starts: the app, the platform
//! environment, the order of the buildpacks the artifact chose.

use std::sync::Arc;

use super::Build;
use crate::cnb::{self, app, project::ProjectDescriptor};
use crate::execute::chart;
use crate::plan::{BuildpacksPlan, EnvVar};

impl Build<'_> {
    /// Starts tarring the creator's inputs (the app, the platform environment, the order of the
    /// buildpacks the artifact chose) on a blocking thread, streamed as the upload reads them.
    pub(super) fn tar_inputs(&self) -> app::Streamed {
        let contents = self.contents(false);
        app::stream(move |inputs| contents.write(inputs))
    }

    /// The digest of the inputs that make the image ([`app::digest`]): those of
    /// [`tar_inputs`](Self::tar_inputs) but the CA certificates (whom the lifecycle trusts) and
    /// `GITHUB_TOKEN` (a credential, new on every CI run).
    pub(super) async fn inputs_digest(&self) -> Result<String, cnb::Error> {
        let contents = self.contents(true);
        app::digest(move |inputs| contents.write(inputs)).await
    }

    fn contents(&self, for_digest: bool) -> Contents {
        let (shared, artifact, b) = (self.shared, self.artifact, self.plan);
        let mut env = platform_env(b, &shared.env);
        if for_digest {
            env.retain(|var| var.name != GITHUB_TOKEN);
        }
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
            // The digest is taken before the build: its warnings are the build's to give.
            reporter: (!for_digest).then(|| Arc::clone(&shared.reporter)),
            env,
            ca_bundle: if for_digest {
                None
            } else {
                shared.ca_bundle.clone()
            },
        }
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
    /// Where project.toml's warnings go, if anywhere.
    reporter: Option<Arc<dyn crate::execute::Reporter>>,
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
        if let Some(reporter) = &self.reporter {
            for warning in &project.warnings {
                reporter.line(image, &format!("warning: {warning}"));
            }
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
