//! DETECTING: which group of the order builds the app, and the build plan between its buildpacks
//! (spec buildpack.md "Order Resolution", `phase/detector.go` of the reference lifecycle).
//!
//! Groups are tried in order. Composite buildpacks expand to their own order, depth first; an
//! optional element is tried with and without. In a group every non-optional buildpack must pass
//! `bin/detect` (exit 0; 100 fails, anything else is an error), and at least one must pass. Then
//! trials pick, for each passing buildpack, its primary plan sections or one of its `or`
//! alternatives: a trial holds when every requirement is provided by the same or an earlier
//! buildpack and every provision is required by the same or a later one; optional buildpacks that
//! break this are dropped. The first group with a trial that holds wins.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::api::Version;
use crate::buildpack::{self, Descriptor, ExecInputs, Store};
use crate::exit::{self, Error};
use crate::files::{
    self, DetectPlan, Distro, Group, GroupElement, PlanEntry, PlanSections, PlanToml, Provider,
    Require, Target, TargetMetadata,
};
use crate::log;

/// Exit code of `bin/detect` for "passes".
const PASS: i32 = 0;
/// Exit code of `bin/detect` for "does not apply".
const FAIL: i32 = 100;

/// The result of a detection: the group and the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    pub group: Vec<GroupElement>,
    pub plan: PlanToml,
}

/// What detection needs.
pub struct Detector<'a> {
    pub store: &'a Store,
    pub exec: ExecInputs<'a>,
    pub platform_api: Version,
    /// The run image's target, for buildpacks that declare `[[targets]]`.
    pub target: Option<&'a TargetMetadata>,
    runs: HashMap<String, Run>,
}

#[derive(Clone, Debug)]
struct El {
    id: String,
    version: String,
    optional: bool,
    api: String,
    homepage: Option<String>,
}

impl El {
    fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

#[derive(Clone, Debug, Default)]
struct Run {
    /// The exit code, or -1 for an error of the lifecycle's own.
    code: i32,
    output: Vec<u8>,
    error: Option<String>,
    plan: DetectPlan,
}

enum Outcome {
    Found(Vec<El>, Vec<PlanEntry>),
    Failed,
    Errored,
}

impl<'a> Detector<'a> {
    pub fn new(
        store: &'a Store,
        exec: ExecInputs<'a>,
        platform_api: Version,
        target: Option<&'a TargetMetadata>,
    ) -> Self {
        Self {
            store,
            exec,
            platform_api,
            target,
            runs: HashMap::new(),
        }
    }

    /// Resolves `order`: exit 20 when no group passes, 21 when one failed with errors.
    pub fn detect(&mut self, order: &[Group]) -> Result<Detected, Error> {
        match self.detect_order(order, &[], &[], false)? {
            Outcome::Found(els, entries) => Ok(Detected {
                group: els
                    .into_iter()
                    .map(|e| GroupElement {
                        id: e.id,
                        version: e.version,
                        api: e.api,
                        homepage: e.homepage,
                    })
                    .collect(),
                plan: PlanToml { entries },
            }),
            Outcome::Failed => Err(Error::new(
                exit::FAILED_DETECT,
                "No buildpack groups passed detection.",
            )),
            Outcome::Errored => Err(Error::new(
                exit::FAILED_DETECT_WITH_ERRORS,
                "No buildpack groups passed detection: buildpack(s) failed with errors",
            )),
        }
    }

    fn detect_order(
        &mut self,
        order: &[Group],
        done: &[El],
        next: &[El],
        optional: bool,
    ) -> Result<Outcome, Error> {
        let mut errored = false;
        for group in order {
            let mut els: Vec<El> = group
                .group
                .iter()
                .map(|g| El {
                    id: g.id.clone(),
                    version: g.version.clone(),
                    optional: g.optional,
                    api: String::new(),
                    homepage: None,
                })
                .collect();
            els.extend_from_slice(next);
            match self.detect_group(&els, done.to_vec())? {
                found @ Outcome::Found(..) => return Ok(found),
                Outcome::Errored => errored = true,
                Outcome::Failed => {}
            }
        }
        if optional {
            return self.detect_group(next, done.to_vec());
        }
        Ok(if errored {
            Outcome::Errored
        } else {
            Outcome::Failed
        })
    }

    fn detect_group(&mut self, group: &[El], mut done: Vec<El>) -> Result<Outcome, Error> {
        for (i, el) in group.iter().enumerate() {
            if done.iter().any(|d| d.id == el.id) {
                continue;
            }
            let descriptor = self.store.lookup(&el.id, &el.version, exit::DETECT_ERROR)?;
            if descriptor.is_composite() {
                let order = descriptor.toml.order.clone();
                return self.detect_order(&order, &done, &group[i + 1..], el.optional);
            }
            let el = El {
                version: descriptor.version().to_string(),
                api: descriptor.toml.api.clone(),
                homepage: descriptor.toml.buildpack.homepage.clone(),
                ..el.clone()
            };
            done.push(el.clone());
            if self.platform_api.at_least(Version(0, 12))
                && !el.optional
                && !self.target_matches(&descriptor)
            {
                let error = format!(
                    "unable to satisfy target os/arch constraints; run image: {}, buildpack: {}",
                    self.target
                        .and_then(|t| serde_json::to_string(t).ok())
                        .unwrap_or_else(|| "null".into()),
                    targets_json(&targets(&descriptor))
                );
                self.runs.insert(
                    el.key(),
                    Run {
                        code: -1,
                        error: Some(error),
                        ..Run::default()
                    },
                );
                continue;
            }
            if !self.runs.contains_key(&el.key()) {
                let run = self.run_detect(&descriptor);
                self.runs.insert(el.key(), run);
            }
        }
        Ok(self.resolve(&done))
    }

    /// Whether a target of the buildpack ([`targets`]) is the run image's
    /// (`TargetSatisfiedForBuild` of the reference): an empty field on either side matches;
    /// distributions are checked only when the target names some.
    fn target_matches(&self, descriptor: &Descriptor) -> bool {
        let Some(run) = self.target else {
            return true;
        };
        let matches = |a: &str, b: &str| a.is_empty() || b.is_empty() || a == b;
        let targets = targets(descriptor);
        targets.is_empty()
            || targets.iter().any(|t| {
                matches(t.os.as_deref().unwrap_or(""), &run.os)
                    && matches(t.arch.as_deref().unwrap_or(""), &run.arch)
                    && matches(
                        t.variant.as_deref().unwrap_or(""),
                        run.arch_variant.as_deref().unwrap_or(""),
                    )
                    && (t.distros.is_empty()
                        || run.distro.as_ref().is_some_and(|d| {
                            t.distros.iter().any(|td| {
                                matches(&td.name, &d.name) && matches(&td.version, &d.version)
                            })
                        }))
            })
    }

    fn run_detect(&self, descriptor: &Descriptor) -> Run {
        let plan_dir = match tempfile::Builder::new().prefix("plan.").tempdir() {
            Ok(dir) => dir,
            Err(e) => {
                return Run {
                    code: -1,
                    error: Some(format!("failed to create a plan directory: {e}")),
                    ..Run::default()
                };
            }
        };
        let plan_path = plan_dir.path().join("plan.toml");
        if let Err(e) = fs_err::write(&plan_path, "") {
            return Run {
                code: -1,
                error: Some(e.to_string()),
                ..Run::default()
            };
        }
        let command = match self.exec.command(
            descriptor,
            "detect",
            &[self.exec.platform_dir, &plan_path],
            &[("CNB_BUILD_PLAN_PATH", plan_path.display().to_string())],
        ) {
            Ok(command) => command,
            Err(e) => {
                return Run {
                    code: -1,
                    error: Some(e.message),
                    ..Run::default()
                };
            }
        };
        let (code, output, error) = buildpack::run_captured(command);
        let Some(code) = code else {
            return Run {
                code: -1,
                output,
                error,
                plan: DetectPlan::default(),
            };
        };
        if code != PASS {
            return Run {
                code,
                output,
                error,
                plan: DetectPlan::default(),
            };
        }
        match read_plan(&plan_path, descriptor.id()) {
            Ok(plan) => Run {
                code,
                output,
                error: None,
                plan,
            },
            Err(e) => Run {
                code: -1,
                output,
                error: Some(e),
                plan: DetectPlan::default(),
            },
        }
    }

    fn resolve(&self, done: &[El]) -> Outcome {
        let mut results: Vec<(El, DetectPlan)> = Vec::new();
        let (mut detected, mut any_passed, mut errored) = (true, false, false);
        for el in done {
            let run = self.runs.get(&el.key()).cloned().unwrap_or_default();
            let show: fn(&str) = if run.code == PASS || run.code == FAIL {
                log::debug
            } else {
                log::info
            };
            if !run.output.is_empty() {
                show(&format!("======== Output: {} ========", el.key()));
                show(String::from_utf8_lossy(&run.output).trim_end());
            }
            if let Some(error) = &run.error {
                show(&format!("======== Error: {} ========", el.key()));
                show(error);
            }
            match run.code {
                PASS => {
                    log::debug(&format!("pass: {}", el.key()));
                    results.push((el.clone(), run.plan));
                    any_passed = true;
                }
                FAIL => {
                    log::debug(&format!(
                        "{}: {}",
                        if el.optional { "skip" } else { "fail" },
                        el.key()
                    ));
                    detected &= el.optional;
                }
                code => {
                    log::info(&if code == -1 {
                        format!("err:  {}", el.key())
                    } else {
                        format!("err:  {} ({code})", el.key())
                    });
                    errored = true;
                    detected &= el.optional;
                }
            }
        }
        if !detected {
            return if errored {
                Outcome::Errored
            } else {
                Outcome::Failed
            };
        }
        if !any_passed {
            log::debug("fail: no viable buildpacks in group");
            return Outcome::Failed;
        }
        let Some((trial, entries)) = run_trials(&results, &mut Vec::new()) else {
            return Outcome::Failed;
        };
        if trial.len() != done.len() {
            log::info(&format!(
                "{} of {} buildpacks participating",
                trial.len(),
                done.len()
            ));
        }
        let width = trial.iter().map(|o| o.el.id.len()).max().unwrap_or(0);
        for option in &trial {
            log::info(&format!("{:<width$} {}", option.el.id, option.el.version));
        }
        Outcome::Found(trial.into_iter().map(|o| o.el).collect(), entries)
    }
}

/// The targets of a buildpack as the reference reads them (`ReadBpDescriptor`): its
/// `[[targets]]`; else those of its deprecated `[[stacks]]`: `io.buildpacks.stacks.bionic` is
/// linux/amd64 Ubuntu 18.04 when the buildpack's API is 0.10 or later or it is the only stack,
/// `*` is any target, other stacks are nothing; else linux when it has a `bin/build`.
pub fn targets(descriptor: &Descriptor) -> Vec<Target> {
    let toml = &descriptor.toml;
    if !toml.targets.is_empty() {
        return toml.targets.clone();
    }
    let mut targets = Vec::new();
    for stack in &toml.stacks {
        if stack.id == "io.buildpacks.stacks.bionic" {
            if descriptor.api.at_least(Version(0, 10)) || toml.stacks.len() == 1 {
                targets.push(Target {
                    os: Some("linux".into()),
                    arch: Some("amd64".into()),
                    variant: None,
                    distros: vec![Distro {
                        name: "ubuntu".into(),
                        version: "18.04".into(),
                    }],
                });
            }
        } else if stack.id == "*" {
            targets.push(Target::default());
        }
    }
    if targets.is_empty() && descriptor.dir.join("bin").join("build").exists() {
        targets.push(Target {
            os: Some("linux".into()),
            ..Target::default()
        });
    }
    targets
}

/// Targets as Go's JSON of the reference's `[]buildpack.TargetMetadata`.
fn targets_json(targets: &[Target]) -> String {
    #[derive(serde::Serialize)]
    struct GoTarget<'a> {
        os: &'a str,
        arch: &'a str,
        #[serde(rename = "arch-variant", skip_serializing_if = "str::is_empty")]
        arch_variant: &'a str,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        distros: &'a [Distro],
    }
    let list: Vec<GoTarget<'_>> = targets
        .iter()
        .map(|t| GoTarget {
            os: t.os.as_deref().unwrap_or(""),
            arch: t.arch.as_deref().unwrap_or(""),
            arch_variant: t.variant.as_deref().unwrap_or(""),
            distros: &t.distros,
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_default()
}

fn read_plan(path: &Path, id: &str) -> Result<DetectPlan, String> {
    let plan: DetectPlan = files::read_toml(path)?.unwrap_or_default();
    let sections = std::iter::once(&plan.sections).chain(plan.or.iter());
    if sections
        .flat_map(|s| s.requires.iter())
        .any(|r| r.version.is_some())
    {
        return Err(format!(
            "buildpack {id} has a \"version\" key which is not supported. \"metadata.version\" should be used instead"
        ));
    }
    Ok(plan)
}

#[derive(Clone, Debug)]
struct TrialOption {
    el: El,
    sections: PlanSections,
}

/// Tries the combinations of plan alternatives in order; the first that resolves wins.
fn run_trials(
    results: &[(El, DetectPlan)],
    prefix: &mut Vec<TrialOption>,
) -> Option<(Vec<TrialOption>, Vec<PlanEntry>)> {
    let Some(((el, plan), rest)) = results.split_first() else {
        return run_trial(prefix.clone());
    };
    let alternatives: Vec<&PlanSections> = std::iter::once(&plan.sections)
        .chain(plan.or.iter())
        .collect();
    let last = alternatives.len() - 1;
    for (i, sections) in alternatives.into_iter().enumerate() {
        // Only the last alternative of an optional buildpack may be dropped.
        let option = TrialOption {
            el: El {
                optional: el.optional && i == last,
                ..el.clone()
            },
            sections: sections.clone(),
        };
        prefix.push(option);
        let found = run_trials(rest, prefix);
        prefix.pop();
        if found.is_some() {
            return found;
        }
    }
    None
}

#[derive(Default)]
struct Dep {
    providers: Vec<El>,
    requires: Vec<Require>,
    early_requires: Vec<El>,
    extra_provides: Vec<El>,
}

fn run_trial(mut trial: Vec<TrialOption>) -> Option<(Vec<TrialOption>, Vec<PlanEntry>)> {
    loop {
        let mut deps: BTreeMap<String, Dep> = BTreeMap::new();
        for option in &trial {
            for provide in &option.sections.provides {
                deps.entry(provide.name.clone())
                    .or_default()
                    .extra_provides
                    .push(option.el.clone());
            }
            for require in &option.sections.requires {
                let dep = deps.entry(require.name.clone()).or_default();
                let extra = std::mem::take(&mut dep.extra_provides);
                dep.providers.extend(extra);
                if dep.providers.is_empty() {
                    dep.early_requires.push(option.el.clone());
                } else {
                    dep.requires.push(require.clone());
                }
            }
        }
        let unmet: Vec<(&String, &El, &str)> = deps
            .iter()
            .flat_map(|(name, dep)| {
                dep.early_requires
                    .iter()
                    .map(move |el| (name, el, "requires"))
            })
            .chain(deps.iter().flat_map(|(name, dep)| {
                dep.extra_provides
                    .iter()
                    .map(move |el| (name, el, "provides unused"))
            }))
            .collect();
        if unmet.is_empty() {
            if trial.is_empty() {
                return None;
            }
            let entries = deps
                .into_values()
                .filter(|d| !d.providers.is_empty())
                .map(|d| PlanEntry {
                    providers: d
                        .providers
                        .iter()
                        .map(|p| Provider {
                            id: p.id.clone(),
                            version: p.version.clone(),
                        })
                        .collect(),
                    requires: d.requires,
                })
                .collect();
            return Some((trial, entries));
        }
        for (name, el, what) in &unmet {
            if !el.optional {
                log::debug(&format!("fail: {} {what} {name}", el.key()));
                return None;
            }
            log::debug(&format!("skip: {} {what} {name}", el.key()));
        }
        let dropped: Vec<String> = unmet.iter().map(|(_, el, _)| el.key()).collect();
        trial.retain(|o| !dropped.contains(&o.el.key()));
    }
}

#[cfg(test)]
mod tests;
