//! The artifacts op hands to skaffold: one `skaffold build` per run of the plan, its results
//! checked (a pushed image must be served by the registry under op's target with the digest
//! skaffold reported; an image left in the engine must be there), then the extra tags.

use std::path::PathBuf;
use std::time::Instant;

use op_oci::{Platform, Reference};

use super::artifact::{Built, Error, Made};
use super::{Phase, Shared, publish};
use crate::plan::{PlannedArtifact, SkaffoldRun};
use crate::skaffold::{self, Skaffold};

/// What every `skaffold build` of one op build shares: the binary, and what the plan tells it.
#[derive(Clone, Debug)]
pub struct Delegation {
    pub skaffold: Skaffold,
    /// The main skaffold.yaml, absolute.
    pub skaffold_file: PathBuf,
    /// The profiles op was asked for.
    pub profiles: Vec<String>,
    /// The tag skaffold tags with (op's first tag; the others are added by op); none when no
    /// version is set: skaffold.yaml's `tagPolicy` tags the images then (upstream's rule: op
    /// forces skaffold's tag only with a version).
    pub tag: Option<String>,
    /// `--platform` values.
    pub platforms: Vec<Platform>,
    /// Where op runs.
    pub cwd: PathBuf,
    /// The mirror (`--image-registry`), which skaffold sees as `$OP_IMAGE_REGISTRY`.
    pub image_registry: Option<String>,
}

impl Delegation {
    /// What `plan` tells skaffold, run with `skaffold`.
    pub fn of(plan: &crate::plan::BuildPlan, skaffold: Skaffold) -> Self {
        Self {
            skaffold,
            skaffold_file: plan.skaffold_file.clone(),
            profiles: plan.requested_profiles.value.clone(),
            // skaffold's tagPolicy tags them unless a version is set (upstream's CustomTag rule).
            tag: (plan.tags.origin != crate::config::Origin::Default)
                .then(|| plan.tags.value.first().cloned())
                .flatten(),
            platforms: plan.platforms.clone(),
            cwd: plan.cwd.clone(),
            image_registry: plan.image_registry.clone(),
        }
    }
}

/// Builds `run` (whose artifacts are `artifacts`, in its order) with skaffold; what it built.
pub(super) async fn build_run(
    shared: &Shared,
    delegation: &Delegation,
    run: &SkaffoldRun,
    artifacts: &[PlannedArtifact],
) -> Result<Vec<Built>, Error> {
    let _slot = shared.creator_slot().await?;
    let started = Instant::now();
    for image in &run.artifacts {
        shared.reporter.phase(image, Phase::Preparing);
        shared.reporter.phase(image, Phase::Building);
    }
    let cache_file = cache_file(&shared.env, &delegation.skaffold_file, &run.artifacts);
    if let Some(dir) = cache_file.parent() {
        fs_err::create_dir_all(dir).map_err(|e| Error::Skaffold(skaffold::Error::Files(e)))?;
    }
    let invocation = skaffold::Run {
        skaffold_file: &delegation.skaffold_file,
        profiles: &delegation.profiles,
        artifacts: &run.artifacts,
        default_repo: &run.default_repo,
        tag: delegation.tag.as_deref(),
        push: run.push,
        insecure_registries: &shared.insecure_registries,
        platforms: &delegation.platforms,
        image_registry: delegation.image_registry.as_deref(),
        concurrency: shared.concurrency,
        cwd: &delegation.cwd,
        cache_file: &cache_file,
        cache_artifacts: shared.options.cache_artifacts,
        ca_certificates: shared.ca_bundle.as_deref(),
    };
    let reporter = &shared.reporter;
    let results = delegation
        .skaffold
        .build(
            &invocation,
            &shared.env,
            |artifact, line| reporter.line(artifact, line),
            &shared.interrupt,
        )
        .await
        .map_err(|e| match e {
            skaffold::Error::Interrupted => Error::Interrupted,
            other => Error::Skaffold(other),
        })?;
    let mut built = Vec::new();
    for (result, artifact) in results.iter().zip(artifacts) {
        let (tag, digest) = if run.push {
            let repository = crate::plan::target_name(&run.default_repo, &artifact.image);
            let named = match &delegation.tag {
                Some(tag) => format!("{repository}:{tag}"),
                // The tag its tagPolicy gave, in op's repository.
                None => result
                    .tag
                    .split('@')
                    .next()
                    .filter(|name| is_tag_of(name, &repository))
                    .ok_or_else(|| Error::SkaffoldNaming {
                        reported: result.tag.clone(),
                        target: format!("{repository}:<tag>"),
                    })?
                    .to_string(),
            };
            let own_tag = delegation.tag.is_none();
            pushed(
                shared,
                artifact,
                (&named, &result.tag, own_tag),
                &delegation.platforms,
            )
            .await?
        } else {
            local(shared, artifact, &result.tag).await?
        };
        built.push(Built {
            image: artifact.image.clone(),
            tag,
            digest,
            seconds: started.elapsed().as_secs_f64(),
            creator_seconds: None,
            made: Made::Built,
        });
    }
    Ok(built)
}

/// The artifact cache of the run of `artifacts` of `skaffold_file`: one file per run in op's
/// cache directory (`skaffold/cache-<hash>`), so that concurrent runs do not overwrite each
/// other's entries and the next build of the same run finds them.
fn cache_file(
    env: &crate::config::Env,
    skaffold_file: &std::path::Path,
    artifacts: &[String],
) -> PathBuf {
    let key = format!("{}\n{}", skaffold_file.display(), artifacts.join("\n"));
    env.cache_dir()
        .join("skaffold")
        .join(format!("cache-{}", super::names::short_hash(&key, 8)))
}

/// skaffold pushed `artifact` as `named` and reported `tag`: it must be `named` with a digest
/// the registry serves for it. When `named` is not op's target (ttl mode), the image is copied
/// there; the extra tags are added in the registry. The reference and digest recorded. With
/// `own_tag` (skaffold's tagPolicy tagged it), `named` is what is recorded, and nothing is
/// copied.
async fn pushed(
    shared: &Shared,
    artifact: &PlannedArtifact,
    (named, tag, own_tag): (&str, &str, bool),
    platforms: &[Platform],
) -> Result<(String, String), Error> {
    let unexpected = || Error::SkaffoldNaming {
        reported: tag.to_string(),
        target: named.to_string(),
    };
    let (name, digest) = tag.split_once('@').ok_or_else(unexpected)?;
    if name != named || !digest.starts_with("sha256:") {
        return Err(unexpected());
    }
    let named_reference = Reference::parse(named).map_err(|_| unexpected())?;
    if let Some(served) = publish::served_digest(shared, &named_reference).await?
        && served != digest
    {
        return Err(Error::DigestMismatch {
            target: named.to_string(),
            reported: digest.to_string(),
            served,
        });
    }
    check_platforms(shared, artifact, named, platforms).await?;
    if own_tag {
        return Ok((tag.to_string(), digest.to_string()));
    }
    let by_digest = named_reference.with_digest(digest).to_string();
    for reference in artifact.references().filter(|r| **r != named_reference) {
        shared
            .registry
            .copy(&by_digest, &reference.to_string())
            .await?;
        shared
            .reporter
            .line(&artifact.image, &format!("Tagged {reference}"));
    }
    Ok((format!("{}@{digest}", artifact.target), digest.to_string()))
}

/// Whether `reference` is `<repository>:<some tag>`.
fn is_tag_of(reference: &str, repository: &str) -> bool {
    reference
        .strip_prefix(repository)
        .is_some_and(|rest| rest.starts_with(':'))
}

/// With several `platforms`, what skaffold pushed as `named` must be an index with an image of
/// each (skaffold itself accepts a single-platform image from a `custom` script, or from a
/// Dockerfile built without `BuildKit`).
async fn check_platforms(
    shared: &Shared,
    artifact: &PlannedArtifact,
    named: &str,
    platforms: &[Platform],
) -> Result<(), Error> {
    if platforms.len() < 2 {
        return Ok(());
    }
    let (index, found) = shared.registry.platforms_of(named).await?;
    let missing: Vec<&Platform> = platforms
        .iter()
        .filter(|wanted| !found.iter().any(|f| wanted.matches(&f.os, &f.architecture)))
        .collect();
    if index && missing.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
    Err(Error::SkaffoldPlatforms {
        artifact: artifact.image.clone(),
        pushed: named.to_string(),
        found: if index {
            format!("an index of {}", shown.join(", "))
        } else {
            format!("a single {} image", shown.join(", "))
        },
        wanted: platforms
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    })
}

/// skaffold left `artifact` in the engine and reported `tag` (`<target repository>:<image id>`):
/// the engine must have it; the extra tags are added there. The reference (skaffold's) and the
/// image id recorded.
async fn local(
    shared: &Shared,
    artifact: &PlannedArtifact,
    tag: &str,
) -> Result<(String, String), Error> {
    let repository = &artifact.target.name();
    if !is_tag_of(tag, repository) {
        return Err(Error::SkaffoldNaming {
            reported: tag.to_string(),
            target: artifact.target.to_string(),
        });
    }
    let engine = shared.engine("read what skaffold built")?;
    let config = engine.image_config(tag).await?;
    // containerd's image store names every image by its manifest digest under its repository,
    // pushed or not: say that this name is not a promise that the registry serves it.
    let named = format!("{repository}@");
    if let Some(listed) = config.repo_digests.iter().find(|d| d.starts_with(&named)) {
        shared.reporter.line(
            &artifact.image,
            &format!(
                "Left in the Docker Engine, not pushed: the engine lists it as {listed}, which the registry serves only if an earlier push put it there (`--push` publishes it)"
            ),
        );
    }
    for extra in &artifact.extra_tags {
        engine.tag(tag, &extra.to_string()).await?;
        shared
            .reporter
            .line(&artifact.image, &format!("Tagged {extra}"));
    }
    Ok((tag.to_string(), config.id))
}

#[cfg(test)]
mod tests {
    use super::cache_file;
    use crate::config::Env;
    use std::path::Path;

    #[test]
    fn each_run_has_its_own_stable_cache_file_in_op_s_cache_directory() {
        let env = Env::from_pairs([("XDG_CACHE_HOME", "/home/u/.cache")]);
        let file = Path::new("/repo/skaffold.yaml");
        let a = cache_file(&env, file, &["base".into()]);
        let b = cache_file(&env, file, &["web".into()]);
        assert_ne!(a, b, "concurrent runs must not share skaffold's cache file");
        assert_eq!(
            a,
            cache_file(&env, file, &["base".into()]),
            "the next build finds it"
        );
        assert!(
            a.to_string_lossy()
                .starts_with("/home/u/.cache/op/skaffold/cache-"),
            "{}",
            a.display()
        );
        assert_ne!(
            cache_file(&env, file, &["a".into(), "b".into()]),
            cache_file(&env, file, &["ab".into()])
        );
    }
}
