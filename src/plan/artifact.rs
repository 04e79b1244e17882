//! Planning one artifact: what happens to it, its references, and the details of its build.

use op_oci::reference::{self, Reference};

use super::graph::Edge;
use super::{
    BuildpacksPlan, Command, DEFAULT_BUILDER, Dependency, DockerPlan, EnvVar, Error, Mount,
    PlannedArtifact, RunImage, SkaffoldPlan, Via, Work, target_name, template,
};
use crate::config::skaffold::{self, Artifact, Kind};
use crate::config::{self as cfg, Config};
use crate::paths::normalize;

/// What planning one artifact needs to know about the others.
pub(super) struct Context<'a> {
    /// `--push`: chart artifacts are charts only then.
    pub(super) push: bool,
    /// Every artifact of the project, in order.
    pub(super) all: &'a [&'a Artifact],
    /// Their dependencies, by index.
    pub(super) edges: &'a [Vec<Edge>],
    /// Their target references, by index.
    pub(super) targets: &'a [Vec<Reference>],
    pub(super) command: Command,
    pub(super) config: &'a Config,
    /// `--from-build-result` and `--run-image-override`, by runImage value.
    pub(super) run_images: &'a std::collections::BTreeMap<String, String>,
    /// `--image-registry`.
    pub(super) image_registry: Option<&'a str>,
}

/// Plans artifact `i`; warnings that do not stop the build are added to `warnings`.
pub(super) fn plan(
    ctx: &Context<'_>,
    i: usize,
    warnings: &mut Vec<String>,
) -> Result<PlannedArtifact, Error> {
    let artifact = ctx.all[i];
    let depends_on = ctx.edges[i]
        .iter()
        .map(|edge| Dependency {
            image: ctx.all[edge.to].image.clone(),
            via: edge.via,
            alias: edge.alias.clone(),
            built: skip_reason(ctx.command, &ctx.all[edge.to].kind).is_none(),
        })
        .collect();
    // Nothing of a skipped artifact is used, so nothing of it is checked either.
    let work = match (&artifact.kind, skip_reason(ctx.command, &artifact.kind)) {
        (kind, Some(reason)) => Work::Skip {
            kind: kind.name(),
            reason,
        },
        (Kind::Unsupported(kind), None) => {
            check_context(artifact, ctx.config)?;
            check_skaffold_requirements(ctx, i)?;
            Work::Skaffold(SkaffoldPlan { kind, docker: None })
        }
        (Kind::Buildpacks(b), None) => {
            check_context(artifact, ctx.config)?;
            if !b.pack_args.is_empty() {
                warnings.push(format!(
                    "artifact `{}`: `buildpacks.buildArgs` are flags of the pack CLI; op runs the lifecycle itself \
                     and does not use them",
                    artifact.image
                ));
            }
            let mut plan = buildpacks_plan(ctx, i, b)?;
            plan.chart = chart_plan(ctx, i, warnings)?;
            Work::Buildpacks(Box::new(plan))
        }
        (Kind::Docker(d), None) => {
            check_context(artifact, ctx.config)?;
            check_skaffold_requirements(ctx, i)?;
            Work::Skaffold(SkaffoldPlan {
                kind: "docker",
                docker: Some(docker_plan(artifact, d)?),
            })
        }
    };
    let (target, extra_tags) = ctx.targets[i]
        .split_first()
        .map(|(target, extra)| (target.clone(), extra.to_vec()))
        .expect("every selected artifact has a target (one per tag, and there is always one)");
    Ok(PlannedArtifact {
        image: artifact.image.clone(),
        context: artifact.context.clone(),
        location: artifact.location.clone(),
        target,
        extra_tags,
        depends_on,
        work,
    })
}

/// Why `command` does not build an artifact of `kind`, when it does not.
fn skip_reason(command: Command, kind: &Kind) -> Option<String> {
    match (command, kind) {
        (Command::BuildPush, Kind::Docker(_)) => Some(
            "`op build-push` builds buildpacks artifacts only; `op build` hands Dockerfile artifacts to skaffold".into(),
        ),
        (Command::BuildPush, Kind::Unsupported(kind)) => {
            Some(format!("op does not build `{kind}` artifacts; `op build` hands them to skaffold"))
        }
        _ => None,
    }
}

/// skaffold builds artifact `i`, and can be told nothing of what op builds: it may not require
/// a buildpacks artifact (skaffold would build that one again, with its own buildpacks builder).
fn check_skaffold_requirements(ctx: &Context<'_>, i: usize) -> Result<(), Error> {
    let artifact = ctx.all[i];
    for edge in &ctx.edges[i] {
        let required = ctx.all[edge.to];
        if let Kind::Buildpacks(_) = required.kind {
            return Err(Error::SkaffoldRequiresBuildpacks {
                image: artifact.image.clone(),
                location: artifact.location.clone(),
                kind: artifact.kind.name(),
                required: required.image.clone(),
            });
        }
    }
    Ok(())
}

/// `<repo>/<image>:<tag>` for every tag, checked.
pub(super) fn target_references(
    artifact: &Artifact,
    repo: &str,
    tags: &[String],
) -> Result<Vec<Reference>, Error> {
    if reference::names_a_version(&artifact.image) {
        return Err(Error::ImageWithVersion {
            image: artifact.image.clone(),
            location: artifact.location.clone(),
        });
    }
    let invalid = |value: &str, source| Error::InvalidReference {
        image: artifact.image.clone(),
        location: artifact.location.clone(),
        field: "image",
        value: value.to_string(),
        source,
    };
    Reference::parse(&artifact.image).map_err(|e| invalid(&artifact.image, e))?;
    let name = target_name(repo, &artifact.image);
    tags.iter()
        .map(|tag| {
            let full = format!("{name}:{tag}");
            Reference::parse(&full).map_err(|e| invalid(&full, e))
        })
        .collect()
}

/// The ttl-mode target of each selected artifact: `<registry>/<uuid>-<key>:<tag>`, the key
/// being `--artifact-key` for `keyed` (or for the only artifact), else the last part of the
/// artifact's `image`.
pub(super) fn ttl_targets(
    all: &[&Artifact],
    selected: &[usize],
    keyed: Option<usize>,
    ttl: &super::Ttl,
) -> Result<Vec<(usize, Reference)>, Error> {
    let keyed = match (&ttl.key, keyed, selected) {
        (None, _, _) => None,
        (Some(_), Some(i), _) => Some(i),
        (Some(_), None, [only]) => Some(*only),
        (Some(_), None, _) => {
            return Err(Error::ArtifactKeyAmbiguous {
                count: selected.len(),
                artifacts: selected.iter().map(|&i| all[i].image.clone()).collect(),
            });
        }
    };
    let mut targets: Vec<(usize, Reference)> = Vec::new();
    for &i in selected {
        let artifact = all[i];
        let key = match (&ttl.key, keyed == Some(i)) {
            (Some(key), true) => key.clone(),
            _ => artifact
                .image
                .rsplit('/')
                .next()
                .unwrap_or(&artifact.image)
                .to_string(),
        };
        let target = format!("{}/{}-{key}:{}", ttl.registry, ttl.uuid, ttl.tag);
        let target = Reference::parse(&target).map_err(|source| Error::InvalidReference {
            image: artifact.image.clone(),
            location: artifact.location.clone(),
            field: "--ttl-uuid/--artifact-key",
            value: target.clone(),
            source,
        })?;
        if let Some((j, _)) = targets.iter().find(|(_, t)| *t == target) {
            return Err(Error::TtlKeyCollision {
                first: all[*j].image.clone(),
                second: artifact.image.clone(),
                target: target.to_string(),
            });
        }
        targets.push((i, target));
    }
    Ok(targets)
}

/// `reference` pulled through the mirror `registry`, keeping its repository path
/// (`ubuntu:jammy` → `<registry>/library/ubuntu:jammy`); references on a loopback registry,
/// `host.docker.internal` or ttl.sh are left alone.
pub fn mirrored(reference: &Reference, registry: Option<&str>) -> Reference {
    let Some(registry) = registry else {
        return reference.clone();
    };
    let parsed = reference;
    let host = reference.registry();
    let name = host.split(':').next().unwrap_or_default();
    if reference.is_loopback()
        || name == "host.docker.internal"
        || name == super::TTL_REGISTRY
        || host == registry
    {
        return reference.clone();
    }
    let path = if parsed.domain.is_none() && !parsed.path.contains('/') {
        format!("library/{}", parsed.path)
    } else {
        parsed.path.clone()
    };
    let mut out = format!("{}/{path}", registry.trim_end_matches('/'));
    if let Some(tag) = &parsed.tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = &parsed.digest {
        out.push('@');
        out.push_str(digest);
    }
    // The mirror is checked as a repository prefix when it is read, so this parses.
    Reference::parse(&out).unwrap_or_else(|_| reference.clone())
}

/// `value` checked as an image reference, with `:latest` added when it names no version.
fn checked_reference(
    artifact: &Artifact,
    field: &'static str,
    value: &str,
) -> Result<Reference, Error> {
    let parsed = Reference::parse(value).map_err(|source| Error::InvalidReference {
        image: artifact.image.clone(),
        location: artifact.location.clone(),
        field,
        value: value.to_string(),
        source,
    })?;
    Ok(if parsed.is_qualified() {
        parsed
    } else {
        Reference {
            tag: Some(cfg::DEFAULT_TAG.to_string()),
            ..parsed
        }
    })
}

fn check_context(artifact: &Artifact, config: &Config) -> Result<(), Error> {
    let context = config.display(&artifact.context);
    let (image, location) = (artifact.image.clone(), artifact.location.clone());
    if !artifact.context.exists() {
        return Err(Error::MissingContext {
            image,
            location,
            context,
        });
    }
    if !artifact.context.is_dir() {
        return Err(Error::ContextNotDirectory {
            image,
            location,
            context,
        });
    }
    Ok(())
}

/// An error about `field` of an artifact.
fn invalid(
    artifact: &Artifact,
    field: impl Into<String>,
    problem: String,
    hint: Option<&str>,
) -> Error {
    Error::InvalidField {
        image: artifact.image.clone(),
        location: artifact.location.clone(),
        field: field.into(),
        problem,
        hint: hint.map(str::to_string),
    }
}

fn buildpacks_plan(
    ctx: &Context<'_>,
    i: usize,
    b: &skaffold::Buildpacks,
) -> Result<BuildpacksPlan, Error> {
    let artifact = ctx.all[i];
    let builder = match &b.builder {
        Some(builder) => checked_reference(artifact, "buildpacks.builder", builder)?,
        None => Reference::parse(DEFAULT_BUILDER).expect("the default builder is a reference"),
    };
    let builder = mirrored(&builder, ctx.image_registry);
    let run_artifact = ctx.edges[i]
        .iter()
        .find(|e| e.via == Via::RunImage)
        .map(|e| e.to);
    let given = b
        .run_image
        .as_ref()
        .and_then(|name| ctx.run_images.get(name));
    let run_image = match (run_artifact, given, &b.run_image) {
        (Some(to), _, _) => Some(RunImage {
            image: ctx.targets[to][0].clone(),
            artifact: Some(ctx.all[to].image.clone()),
        }),
        (None, Some(given), _) => Some(RunImage {
            image: checked_reference(artifact, "--run-image-override", given)?,
            artifact: None,
        }),
        (None, None, Some(image)) => Some(RunImage {
            image: mirrored(
                &checked_reference(artifact, "buildpacks.runImage", image)?,
                ctx.image_registry,
            ),
            artifact: None,
        }),
        (None, None, None) => None,
    };
    let descriptor = b.project_descriptor.as_deref().unwrap_or("project.toml");
    let descriptor_path = normalize(&artifact.context.join(descriptor));
    let project_descriptor = if descriptor_path.is_file() {
        Some(descriptor_path)
    } else if b.project_descriptor.is_some() {
        return Err(invalid(
            artifact,
            "buildpacks.projectDescriptor",
            format!(
                "names `{}`, which does not exist",
                ctx.config.display(&descriptor_path)
            ),
            Some("the project descriptor is relative to the artifact's context"),
        ));
    } else {
        None
    };
    Ok(BuildpacksPlan {
        chart: None,
        builder,
        run_image,
        env: build_env(artifact, &b.env, ctx.config)?,
        buildpacks: b.buildpacks.clone(),
        trust_builder: b.trust_builder,
        clear_cache: b.clear_cache,
        project_descriptor,
        volumes: b
            .volumes
            .iter()
            .enumerate()
            .map(|(n, v)| mount(artifact, n, v))
            .collect::<Result<_, _>>()?,
    })
}

/// The image name that makes a buildpacks artifact a chart artifact (upstream section 4.4).
pub(super) const CHART_SUFFIX: &str = "-chart";

/// Artifact `i`'s chart, when it is a chart artifact built with `--push`: its context's
/// Chart.yaml must name the chart and its version. Without `--push` it builds as an image, as
/// upstream's non-push path does (with a warning).
fn chart_plan(
    ctx: &Context<'_>,
    i: usize,
    warnings: &mut Vec<String>,
) -> Result<Option<super::ChartPlan>, Error> {
    #[derive(serde::Deserialize)]
    struct ChartYaml {
        name: Option<String>,
        version: Option<serde_yaml::Value>,
    }
    let artifact = ctx.all[i];
    if !artifact.image.ends_with(CHART_SUFFIX) {
        return Ok(None);
    }
    if !ctx.push {
        warnings.push(format!(
            "artifact `{}` is a chart artifact (its image ends in `{CHART_SUFFIX}`): its chart is published with --push only; \
             without it, op builds it as an image",
            artifact.image
        ));
        return Ok(None);
    }
    let path = artifact.context.join("Chart.yaml");
    let shown = ctx.config.display(&path);
    let bad = |problem: String, hint: &str| invalid(artifact, "image", problem, Some(hint));
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(
                format!(
                    "ends in `{CHART_SUFFIX}`, so op publishes the artifact as a Helm chart, and `{shown}` does not exist"
                ),
                "a chart artifact's context is the chart (its Chart.yaml at the root); an image that is not a chart \
                 must not end in `-chart`",
            ));
        }
        Err(e) => {
            return Err(bad(
                format!("`{shown}` cannot be read: {e}"),
                "check its permissions",
            ));
        }
    };
    let chart: ChartYaml = serde_yaml::from_str(&text).map_err(|e| {
        bad(
            format!("`{shown}` is not valid YAML: {e}"),
            "Chart.yaml is a YAML mapping with at least `name` and `version`",
        )
    })?;
    let version = match chart.version {
        Some(serde_yaml::Value::String(v)) => Some(v),
        Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let (Some(name), Some(version)) = (chart.name.filter(|n| !n.is_empty()), version) else {
        return Err(bad(
            format!("`{shown}` does not name the chart and its version (`name`, `version`)"),
            "Helm needs both to push a chart: `name: my-chart` and `version: 0.1.0`",
        ));
    };
    let target = &ctx.targets[i][0];
    let repository = Reference {
        tag: None,
        digest: None,
        ..target.clone()
    };
    Ok(Some(super::ChartPlan {
        name,
        version,
        repository,
    }))
}

/// What upstream op always passes to buildpacks (Go modules of the octopilot organisation are
/// private); `buildpacks.env` can override it.
pub(super) const DEFAULT_BUILD_ENV: (&str, &str) = ("BP_GO_PRIVATE", "github.com/octopilot/*");

/// `buildpacks.env`: `KEY=VALUE` entries with their templates expanded, after
/// [`DEFAULT_BUILD_ENV`]; a later entry for the same name replaces the value of the earlier one.
fn build_env(
    artifact: &Artifact,
    entries: &[String],
    config: &Config,
) -> Result<Vec<EnvVar>, Error> {
    let mut env: Vec<EnvVar> = vec![EnvVar {
        name: DEFAULT_BUILD_ENV.0.to_string(),
        value: DEFAULT_BUILD_ENV.1.to_string(),
    }];
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("buildpacks.env[{i}]");
        let (name, value) = entry.split_once('=').ok_or_else(|| {
            invalid(
                artifact,
                &field,
                format!("is `{entry}`, not `KEY=VALUE`"),
                Some("write `env: [\"KEY=value\"]`"),
            )
        })?;
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
            return Err(invalid(
                artifact,
                &field,
                format!(
                    "names `{name}`, which cannot be a variable (it becomes a file of /platform/env)"
                ),
                None,
            ));
        }
        let value = template::expand(value, config.env())
            .map_err(|e| invalid(artifact, &field, e.to_string(), None))?;
        match env.iter_mut().find(|v| v.name == name) {
            Some(existing) => existing.value = value,
            None => env.push(EnvVar {
                name: name.to_string(),
                value,
            }),
        }
    }
    Ok(env)
}

/// An entry of `buildpacks.volumes`: a host path (made absolute) or a volume name, and a target.
fn mount(artifact: &Artifact, index: usize, volume: &skaffold::Volume) -> Result<Mount, Error> {
    let field = format!("buildpacks.volumes[{index}]");
    let host = volume.host.trim();
    if host.is_empty() || !volume.target.starts_with('/') {
        return Err(invalid(
            artifact,
            field,
            "needs a `host` and an absolute `target`".into(),
            Some("e.g. `{host: ./cache, target: /cache, options: rw}`"),
        ));
    }
    let source = if host.starts_with('/') || host.starts_with('.') || host.contains('/') {
        normalize(&artifact.base_dir.join(host))
            .display()
            .to_string()
    } else {
        host.to_string()
    };
    let mut read_only = true;
    let mut options = Vec::new();
    for option in volume
        .options
        .iter()
        .flat_map(|o| o.split(','))
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            other if other.starts_with("volume-opt=") => options.push(other.to_string()),
            other => {
                return Err(invalid(
                    artifact,
                    field,
                    format!("has the unknown option `{other}`"),
                    Some("options are `ro` (the default), `rw` and `volume-opt=<key>=<value>`"),
                ));
            }
        }
    }
    Ok(Mount {
        source,
        target: volume.target.clone(),
        read_only,
        options,
    })
}

fn docker_plan(artifact: &Artifact, d: &skaffold::Docker) -> Result<DockerPlan, Error> {
    let dockerfile = normalize(&artifact.context.join(&d.dockerfile));
    if !dockerfile.is_file() {
        return Err(Error::MissingDockerfile {
            image: artifact.image.clone(),
            location: artifact.location.clone(),
            dockerfile: dockerfile.display().to_string(),
        });
    }
    Ok(DockerPlan {
        dockerfile,
        target: d.target.clone(),
        build_args: d.build_args.clone(),
    })
}
