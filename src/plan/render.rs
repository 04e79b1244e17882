//! The plan as text, for `--dry-run` without `--output json`.

use std::fmt::Write as _;
use std::path::Path;

use super::{Action, BuildPlan, PlannedArtifact, Via, Work};
use crate::config::Origin;
use crate::config::yaml::display_path;

impl BuildPlan {
    /// A human-readable rendering; paths are shown relative to `cwd`.
    pub fn render_text(&self, cwd: &Path) -> String {
        let show = |p: &Path| display_path(p, cwd);
        let mut out = String::new();
        let push = if self.command == super::Command::Build && self.push {
            " --push"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "Build plan for `op {}{push}` (dry run: nothing is built or pushed)\n",
            self.command.name()
        );
        let files: Vec<String> = self.skaffold_files.iter().map(|p| show(p)).collect();
        row(&mut out, "skaffold", &files.join(", "));
        if !self.settings_files.is_empty() {
            let files: Vec<String> = self.settings_files.iter().map(|p| show(p)).collect();
            row(&mut out, "settings", &files.join(", "));
        }
        let profiles = if self.applied_profiles.is_empty() {
            "none".to_string()
        } else if self.requested_profiles.origin == Origin::Default {
            format!("{} (auto-activated)", self.applied_profiles.join(", "))
        } else {
            format!(
                "{} (requested by {})",
                self.applied_profiles.join(", "),
                self.requested_profiles.origin
            )
        };
        row(&mut out, "profiles", &profiles);
        row(
            &mut out,
            "default repo",
            &format!(
                "{} ({})",
                self.default_repo.value,
                from(&self.default_repo.origin)
            ),
        );
        row(
            &mut out,
            "tags",
            &format!(
                "{} ({})",
                self.tags.value.join(", "),
                from(&self.tags.origin)
            ),
        );
        if !self.insecure_registries.is_empty() {
            row(&mut out, "insecure", &self.insecure_registries.join(", "));
        }
        row(&mut out, "build result", &show(&self.build_result));

        let _ = writeln!(out, "\nArtifacts");
        for artifact in &self.artifacts {
            render_artifact(&mut out, artifact, &show);
        }

        let _ = writeln!(
            out,
            "\nOrder (the artifacts of one level can build in parallel)"
        );
        if self.levels.is_empty() {
            let _ = writeln!(out, "  nothing to build");
        }
        for (i, level) in self.levels.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, level.join(", "));
        }
        if !self.skaffold_runs.is_empty() {
            let _ = writeln!(out, "\nskaffold builds (one `skaffold build` each)");
            if self.tags.origin == Origin::Default {
                let _ = writeln!(
                    out,
                    "  tagged as skaffold.yaml's tagPolicy says (no version is set; default gitCommit, `latest` outside git)"
                );
            }
            for run in &self.skaffold_runs {
                let push = if run.push {
                    "pushed"
                } else {
                    "left in the local Docker Engine"
                };
                let _ = writeln!(out, "  {} ({push})", run.artifacts.join(", "));
            }
        }
        out
    }
}

/// "from <origin>", or just "op's default".
fn from(origin: &Origin) -> String {
    match origin {
        Origin::Default => origin.to_string(),
        other => format!("from {other}"),
    }
}

fn row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:<13} {value}");
}

fn detail(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "      {label:<13} {value}");
}

fn render_artifact(out: &mut String, a: &PlannedArtifact, show: &dyn Fn(&Path) -> String) {
    let action = match a.work.action() {
        Action::Build => "built by op",
        Action::Skaffold => "built by skaffold",
        Action::Skip => "skipped",
    };
    let _ = writeln!(out, "  {} ({}, {action})", a.image, a.work.kind());
    detail(out, "context", &show(&a.context));
    if let Work::Skip { reason, .. } = &a.work {
        detail(out, "why skipped", reason);
        return;
    }
    detail(out, "target", &a.target.to_string());
    for extra in &a.extra_tags {
        detail(out, "also tagged", &extra.to_string());
    }
    if let Some(b) = a.buildpacks() {
        detail(out, "builder", &b.builder.to_string());
        let run_image = match &b.run_image {
            None => "the builder's default".to_string(),
            Some(r) => match &r.artifact {
                Some(artifact) => {
                    format!("artifact `{artifact}` ({}, by digest once built)", r.image)
                }
                None => r.image.to_string(),
            },
        };
        detail(out, "run image", &run_image);
        if !b.buildpacks.is_empty() {
            detail(out, "buildpacks", &b.buildpacks.join(", "));
        }
        for (i, var) in b.env.iter().enumerate() {
            detail(
                out,
                if i == 0 { "env" } else { "" },
                &format!("{}={}", var.name, var.value),
            );
        }
        for (i, m) in b.volumes.iter().enumerate() {
            let mode = if m.read_only { "ro" } else { "rw" };
            detail(
                out,
                if i == 0 { "volumes" } else { "" },
                &format!("{}:{}:{mode}", m.source, m.target),
            );
        }
        if let Some(descriptor) = &b.project_descriptor {
            detail(out, "descriptor", &show(descriptor));
        }
        let mut flags = Vec::new();
        if b.trust_builder {
            flags.push("trustBuilder");
        }
        if b.clear_cache {
            flags.push("clearCache");
        }
        if !flags.is_empty() {
            detail(out, "options", &flags.join(", "));
        }
    }
    if let Work::Skaffold(super::SkaffoldPlan {
        docker: Some(d), ..
    }) = &a.work
    {
        detail(out, "dockerfile", &show(&d.dockerfile));
        if let Some(target) = &d.target {
            detail(out, "stage", target);
        }
        for (i, (k, v)) in d.build_args.iter().enumerate() {
            let arg = match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            };
            detail(out, if i == 0 { "build args" } else { "" }, &arg);
        }
    }
    if !a.depends_on.is_empty() {
        let deps: Vec<String> = a
            .depends_on
            .iter()
            .map(|d| {
                let via = match d.via {
                    Via::RunImage => "runImage".to_string(),
                    Via::Requires => match &d.alias {
                        Some(alias) if *alias != d.image => format!("requires, as {alias}"),
                        _ => "requires".to_string(),
                    },
                };
                let built = if d.built {
                    ""
                } else {
                    ", not built by this command"
                };
                format!("{} ({via}{built})", d.image)
            })
            .collect();
        detail(out, "depends on", &deps.join(", "));
    }
}
