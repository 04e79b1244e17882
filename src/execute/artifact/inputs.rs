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
        let (shared, artifact, b, builder) = (self.shared, self.artifact, self.plan, self.builder);
        let mut env = platform_env(b, &shared.env);
        if let Some(plan) = &b.chart {
            env.extend(chart::env(plan, &shared.insecure_registries));
        }
        let (context, descriptor, chart) = (
            artifact.context.clone(),
            b.project_descriptor.clone(),
            b.chart.is_some(),
        );
        let (builder, wanted) = (builder.clone(), b.buildpacks.clone());
        let (image, reporter) = (artifact.image.clone(), Arc::clone(&shared.reporter));
        let (uid, gid) = (builder.uid, builder.gid);
        let ca_bundle = shared.ca_bundle.clone();
        app::stream(move |inputs| {
            let mut project = ProjectDescriptor::read(descriptor.as_deref())?;
            let order =
                project
                    .order(&wanted, &builder)
                    .map_err(|problem| cnb::Error::Buildpacks {
                        image: image.clone(),
                        problem,
                        available: builder.buildpacks(),
                    })?;
            for warning in &project.warnings {
                reporter.line(&image, &format!("warning: {warning}"));
            }
            let env = project.env_with(&env);
            inputs.app(&context, uid, gid, &project.filter)?;
            if chart {
                inputs.directory(chart::OUT_DIR, uid, gid)?;
            }
            if !env.is_empty() {
                inputs.platform_env(&env)?;
            }
            if let Some(order) = order {
                inputs.order(&order)?;
            }
            if let Some(pem) = &ca_bundle {
                inputs.ca_certificates(pem)?;
            }
            Ok(())
        })
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
