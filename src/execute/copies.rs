//! `op push --push-all`: every published image copied to other registries under the same
//! repository path and tags, digest kept (upstream's `crane copy` to each other `ci` registry).

use op_oci::Reference;

use super::{Built, Error, Reporter};
use crate::config::Env;
use crate::plan::{BuildPlan, target_name};
use crate::registry::Registry;

/// Copies each of `built` (published under `plan`'s default repository) to each of
/// `registries`: `<registry>/<image>:<tag>` for every tag of the plan. Returns the references
/// written.
pub async fn copy_to_registries(
    plan: &BuildPlan,
    built: &[Built],
    registries: &[String],
    env: &Env,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, Error> {
    let copies: Vec<(String, String)> = built
        .iter()
        .flat_map(|b| {
            // What was published, by digest (`<repository>@<digest>`).
            let source = Reference::parse(&b.tag)
                .map_or_else(|_| b.tag.clone(), |r| r.with_digest(&b.digest).to_string());
            registries.iter().flat_map(move |other| {
                let name = target_name(other, &b.image);
                let source = source.clone();
                plan.tags
                    .value
                    .iter()
                    .map(move |tag| (source.clone(), format!("{name}:{tag}")))
            })
        })
        .collect();
    let references: Vec<Reference> = copies
        .iter()
        .flat_map(|(s, t)| [s, t])
        .filter_map(|r| Reference::parse(r).ok())
        .collect();
    let references: Vec<&Reference> = references.iter().collect();
    let (registry, _) = Registry::connect(env, &references, &plan.insecure_registries)?;
    let mut written = Vec::new();
    for (source, target) in &copies {
        registry.copy(source, target).await?;
        reporter.note(&format!("Copied {source} to {target}"));
        written.push(target.clone());
    }
    Ok(written)
}
