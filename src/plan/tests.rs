use super::*;
use crate::config::Env;

fn r(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// A repository with `skaffold.yaml` and these files; every context directory named in
    /// `dirs` is created.
    fn new(skaffold: &str, dirs: &[&str], files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("skaffold.yaml"), skaffold).unwrap();
        for d in dirs {
            fs_err::create_dir_all(dir.path().join(d)).unwrap();
        }
        for (name, text) in files {
            let path = dir.path().join(name);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, text).unwrap();
        }
        Self { dir }
    }

    fn plan_with(
        &self,
        command: Command,
        artifact: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<BuildPlan, Error> {
        let config = Config::load(self.dir.path(), Env::from_pairs(env.iter().copied()), None)?;
        BuildPlan::load(&config, &options(command, true, artifact))
    }

    fn config(&self) -> Config {
        Config::load(
            self.dir.path(),
            Env::from_pairs::<[(&str, &str); 0], _, _>([]),
            None,
        )
        .unwrap()
    }

    fn plan(&self, command: Command) -> Result<BuildPlan, Error> {
        self.plan_with(command, None, &[])
    }
}

fn options(command: Command, push: bool, artifact: Option<&str>) -> PlanOptions {
    PlanOptions {
        command,
        push,
        skaffold_file: "skaffold.yaml".into(),
        profiles: Vec::new(),
        artifact: artifact.map(str::to_string),
        repo: None,
        tag: None,
        insecure_registries: Vec::new(),
        build_result: crate::build_result::FILE_NAME.into(),
        platforms: Vec::new(),
        ttl: None,
        run_images: BTreeMap::new(),
        image_registry: None,
        default_profile: None,
    }
}

fn plan_error(result: Result<BuildPlan, Error>) -> Error {
    result.unwrap_err()
}

const HEADER: &str = "apiVersion: skaffold/v4beta13\nkind: Config\n";

/// The upstream pattern: a Dockerfile base image and a buildpacks app whose run image is the
/// base, plus an independent buildpacks artifact.
fn two_level() -> Repo {
    Repo::new(
        &format!(
            "{HEADER}build:
  artifacts:
    - image: web
      context: web
      buildpacks: {{builder: 'ghcr.io/octopilot/builder-jammy-base:0.1.198'}}
    - image: app
      context: app
      buildpacks:
        runImage: app-base
        env: [GOFLAGS=-buildvcs=false, 'PROXY={{{{.HTTP_PROXY | default \"none\"}}}}']
    - image: app-base
      context: base
      docker: {{dockerfile: Dockerfile}}
"
        ),
        &["web", "app"],
        &[
            ("base/Dockerfile", "FROM scratch\n"),
            ("app/project.toml", ""),
        ],
    )
}

#[test]
fn plans_every_artifact_with_its_target_and_level() {
    let repo = two_level();
    let plan = repo.plan(Command::Build).unwrap();
    let images: Vec<&str> = plan.artifacts.iter().map(|a| a.image.as_str()).collect();
    assert_eq!(images, ["web", "app", "app-base"]);
    assert_eq!(plan.levels, [vec!["web", "app-base"], vec!["app"]]);
    let app = plan.artifact("app").unwrap();
    assert_eq!(app.target, "localhost:5001/app:latest");
    assert_eq!(app.work.action(), Action::Build);
    let bp = app.buildpacks().unwrap();
    assert_eq!(bp.builder, DEFAULT_BUILDER);
    assert_eq!(
        bp.run_image,
        Some(RunImage {
            image: r("localhost:5001/app-base:latest"),
            artifact: Some("app-base".into())
        })
    );
    assert_eq!(
        bp.env[0],
        EnvVar {
            name: "BP_GO_PRIVATE".into(),
            value: "github.com/octopilot/*".into()
        },
        "upstream's default comes first"
    );
    assert_eq!(
        bp.env[2],
        EnvVar {
            name: "PROXY".into(),
            value: "none".into()
        }
    );
    assert_eq!(
        bp.project_descriptor.as_deref(),
        Some(repo.dir.path().join("app/project.toml").as_path())
    );
    assert_eq!(
        app.depends_on[0],
        Dependency {
            image: "app-base".into(),
            via: Via::RunImage,
            alias: None,
            built: true
        }
    );
    let base = plan.artifact("app-base").unwrap();
    assert_eq!(base.work.action(), Action::Skaffold);
    assert_eq!(
        docker_of(base).dockerfile,
        repo.dir.path().join("base/Dockerfile")
    );
    assert_eq!(plan.default_repo.origin, crate::config::Origin::Default);
}

#[test]
fn build_push_skips_dockerfile_artifacts_but_still_names_them() {
    let plan = two_level().plan(Command::BuildPush).unwrap();
    let base = plan.artifact("app-base").unwrap();
    assert_eq!(base.work.action(), Action::Skip);
    assert!(skip_reason(base).unwrap().contains("op build"));
    assert!(!plan.artifact("app").unwrap().depends_on[0].built);
    assert_eq!(
        plan.levels,
        [vec!["web", "app"]],
        "a skipped dependency delays nothing"
    );
}

#[test]
fn selecting_an_artifact_brings_its_dependencies() {
    let repo = two_level();
    let plan = repo.plan_with(Command::Build, Some("app"), &[]).unwrap();
    let images: Vec<&str> = plan.artifacts.iter().map(|a| a.image.as_str()).collect();
    assert_eq!(
        images,
        ["app-base", "app"],
        "the artifact asked for is last (what the octopilot Action reads), after what it \
         depends on, which skaffold.yaml lists after it"
    );
    let all = repo.plan_with(Command::Build, None, &[]).unwrap();
    let images: Vec<&str> = all.artifacts.iter().map(|a| a.image.as_str()).collect();
    assert_eq!(images, ["web", "app", "app-base"], "skaffold.yaml order");
    let err = plan_error(repo.plan_with(Command::Build, Some("nope"), &[]));
    assert_eq!(
        err.to_string(),
        "--artifact `nope` is not an artifact of skaffold.yaml"
    );
    assert_eq!(
        err.hint().as_deref(),
        Some("the artifacts are `web`, `app`, `app-base`")
    );
}

#[test]
fn versions_from_the_environment_tag_every_artifact_twice() {
    let plan = two_level()
        .plan_with(
            Command::Build,
            None,
            &[("DOCKER_METADATA_OUTPUT_VERSION", "1.4.0")],
        )
        .unwrap();
    let web = plan.artifact("web").unwrap();
    assert_eq!(
        web.references()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["localhost:5001/web:1.4.0", "localhost:5001/web:latest"]
    );
    assert_eq!(web.target, "localhost:5001/web:1.4.0");
    assert_eq!(web.extra_tags, ["localhost:5001/web:latest"]);
}

#[test]
fn names_already_under_the_repository_are_kept() {
    assert_eq!(target_name("ghcr.io/o", "ghcr.io/o/app"), "ghcr.io/o/app");
    assert_eq!(
        target_name("ghcr.io/o", "ghcr.io/other/app"),
        "ghcr.io/o/ghcr.io/other/app"
    );
    assert_eq!(
        target_name("localhost:5001", "team/app"),
        "localhost:5001/team/app"
    );
    assert_eq!(target_name("myrepo", "myrepo-x"), "myrepo/myrepo-x");
}

#[test]
fn requires_dependencies_order_the_build() {
    let repo = Repo::new(
        &format!(
            "{HEADER}build:
  artifacts:
    - {{image: c, requires: [{{image: b, alias: B}}], buildpacks: {{}}}}
    - {{image: b, requires: [{{image: a}}], buildpacks: {{}}}}
    - {{image: a, buildpacks: {{}}}}
    - {{image: d, buildpacks: {{}}}}
"
        ),
        &[],
        &[],
    );
    let plan = repo.plan(Command::Build).unwrap();
    assert_eq!(plan.levels, [vec!["a", "d"], vec!["b"], vec!["c"]]);
    let c = plan.artifact("c").unwrap();
    assert_eq!(c.depends_on[0].alias.as_deref(), Some("B"));
}

#[test]
fn configuration_mistakes_are_plan_errors() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "build: {artifacts: [{image: a, buildpacks: {}}, {image: a, context: x, buildpacks: {}}]}",
            &["x"],
            "Two artifacts build the image `a`: `build.artifacts[0]` in `skaffold.yaml` and `build.artifacts[1]` in `skaffold.yaml`",
        ),
        (
            "build: {artifacts: [{image: a, requires: [{image: b}], buildpacks: {}}, {image: b, buildpacks: {runImage: a}}]}",
            &[],
            "The artifacts depend on each other in a cycle: a → b → a",
        ),
        (
            "build: {artifacts: [{image: a, requires: [{image: zz}], buildpacks: {}}]}",
            &[],
            "Artifact `a` (`build.artifacts[0]` in `skaffold.yaml`) requires `zz`, which no artifact builds",
        ),
        (
            "build: {artifacts: [{image: a, context: missing, buildpacks: {}}]}",
            &[],
            "The context of artifact `a` (`build.artifacts[0]` in `skaffold.yaml`) does not exist: `missing`",
        ),
        (
            "build: {artifacts: [{image: a, docker: {dockerfile: Nope}}]}",
            &[],
            "The Dockerfile of artifact `a` (`build.artifacts[0]` in `skaffold.yaml`) does not exist",
        ),
        (
            "build: {artifacts: [{image: a, jib: {}, requires: [{image: b}]}, {image: b, context: x, buildpacks: {}}]}",
            &["x"],
            "Artifact `a` (`build.artifacts[0]` in `skaffold.yaml`) is built by skaffold (jib), but requires `b`, which op builds with buildpacks",
        ),
        (
            "build: {artifacts: [{image: api, custom: {buildCommand: b}}, {image: api-gateway, buildpacks: {}}]}",
            &[],
            "skaffold cannot build `api` without `api-gateway`: its `--build-image` selects artifacts by substring, and `api` is part of `api-gateway`",
        ),
        (
            "build: {artifacts: [{image: a, context: missing, custom: {buildCommand: ./build.sh}}]}",
            &[],
            "The context of artifact `a` (`build.artifacts[0]` in `skaffold.yaml`) does not exist: `missing`",
        ),
        (
            "build: {artifacts: [{image: 'a:1', buildpacks: {}}]}",
            &[],
            "names a tag or digest in `image`",
        ),
        (
            "build: {artifacts: [{image: My_App, buildpacks: {}}]}",
            &[],
            "`image` is not a valid image reference: `My_App`",
        ),
        (
            "build: {artifacts: [{image: a, buildpacks: {env: [NOEQUALS]}}]}",
            &[],
            "`buildpacks.env[0]` is `NOEQUALS`, not `KEY=VALUE`",
        ),
        (
            "build: {artifacts: [{image: a, buildpacks: {env: ['A={{.UNSET_VAR}}']}}]}",
            &[],
            "refers to `UNSET_VAR`, which is not set",
        ),
        (
            "build: {artifacts: [{image: a, buildpacks: {builder: 'Bad Builder'}}]}",
            &[],
            "`buildpacks.builder` is not a valid image reference",
        ),
        (
            "build: {artifacts: [{image: a, buildpacks: {projectDescriptor: nope.toml}}]}",
            &[],
            "names `nope.toml`, which does not exist",
        ),
        (
            "build: {artifacts: [{image: a, buildpacks: {volumes: [{host: x, target: rel}]}}]}",
            &[],
            "needs a `host` and an absolute `target`",
        ),
        (
            "build: {artifacts: [{image: a, buildpacks: {volumes: [{host: /x, target: /y, options: fast}]}}]}",
            &[],
            "unknown option `fast`",
        ),
        (
            "build: {artifacts: []}",
            &[],
            "`skaffold.yaml` defines no artifacts",
        ),
    ];
    for (build, dirs, want) in cases {
        let repo = Repo::new(&format!("{HEADER}{build}\n"), dirs, &[]);
        let err = plan_error(repo.plan(Command::Build));
        assert!(
            err.to_string().contains(want),
            "for {build}\n got: {err}\nwant: {want}"
        );
        assert!(
            err.hint().is_some() || matches!(err, Error::InvalidField { .. }),
            "{err} has a hint"
        );
    }
}

#[test]
fn build_push_skips_unsupported_artifacts_instead_of_failing() {
    let repo = Repo::new(
        &format!(
            "{HEADER}build: {{artifacts: [{{image: j, jib: {{}}}}, {{image: a, buildpacks: {{}}}}]}}\n"
        ),
        &[],
        &[],
    );
    let plan = repo.plan(Command::BuildPush).unwrap();
    assert_eq!(
        skip_reason(plan.artifact("j").unwrap()),
        Some("op does not build `jib` artifacts; `op build` hands them to skaffold")
    );
    assert_eq!(plan.levels, [vec!["a"]]);
}

#[test]
fn op_build_hands_every_other_kind_to_skaffold_in_runs_that_build_together() {
    let repo = Repo::new(
        &format!(
            "{HEADER}build:\n  local: {{push: false}}\n  artifacts:\n  \
             - {{image: base, context: base, docker: {{dockerfile: Dockerfile}}}}\n  \
             - {{image: tool, custom: {{buildCommand: ./build.sh}}}}\n  \
             - {{image: web, jib: {{}}, requires: [{{image: tool, alias: TOOL}}]}}\n  \
             - {{image: base-extra, ko: {{}}}}\n  \
             - {{image: app, buildpacks: {{runImage: base}}}}\n  \
             - {{image: lone, bazel: {{target: //:x.tar}}}}\n"
        ),
        &["base"],
        &[("base/Dockerfile", "FROM scratch\n")],
    );
    let plan = repo.plan_with(Command::Build, None, &[]).unwrap();
    let kinds: Vec<(&str, Action)> = plan
        .artifacts
        .iter()
        .map(|a| (a.work.kind(), a.work.action()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("docker", Action::Skaffold),
            ("custom", Action::Skaffold),
            ("jib", Action::Skaffold),
            ("ko", Action::Skaffold),
            ("buildpacks", Action::Build),
            ("bazel", Action::Skaffold),
        ]
    );
    let runs: Vec<Vec<&str>> = plan
        .skaffold_runs
        .iter()
        .map(|r| r.artifacts.iter().map(String::as_str).collect())
        .collect();
    // `web` requires `tool`; `-b base` would select `base-extra` too; `lone` is alone.
    assert_eq!(
        runs,
        [
            vec!["base", "base-extra"],
            vec!["tool", "web"],
            vec!["lone"]
        ]
    );
    assert!(plan.skaffold_runs.iter().all(|r| r.push), "op build --push");

    let config = repo.config();
    let mut options = options(Command::Build, false, None);
    let plan = BuildPlan::load(&config, &options).unwrap();
    let pushed: Vec<bool> = plan.skaffold_runs.iter().map(|r| r.push).collect();
    // Without --push only what a buildpacks artifact runs on is pushed (`build.local.push` is
    // false).
    assert_eq!(pushed, [true, false, false]);
    assert!(plan.render_text(repo.dir.path()).contains(
        "skaffold builds (one `skaffold build` each)\n  tagged as skaffold.yaml's tagPolicy says (no version is set; default gitCommit, `latest` outside git)\n  base, base-extra (pushed)\n  tool, web (left in the local Docker Engine)"
    ));

    // `build-push` skips them all, as upstream's did.
    options.command = Command::BuildPush;
    let plan = BuildPlan::load(&config, &options).unwrap();
    assert!(plan.skaffold_runs.is_empty());
    assert_eq!(plan.levels, [vec!["app"]]);
}

#[test]
fn build_local_push_decides_for_skaffold_without_push() {
    let repo = Repo::new(
        &format!(
            "{HEADER}build: {{local: {{push: true}}, artifacts: [{{image: a, docker: {{}}}}]}}\n"
        ),
        &[],
        &[("Dockerfile", "FROM scratch\n")],
    );
    let config = repo.config();
    let options = options(Command::Build, false, None);
    let plan = BuildPlan::load(&config, &options).unwrap();
    assert!(plan.skaffold_runs[0].push);
}

#[test]
fn volumes_resolve_host_paths_and_keep_volume_names() {
    let repo = Repo::new(
        &format!(
            "{HEADER}build: {{artifacts: [{{image: a, buildpacks: {{volumes: [{{host: ./cache, target: /c, options: rw}}, {{host: named, target: /n}}]}}}}]}}\n"
        ),
        &[],
        &[],
    );
    let plan = repo.plan(Command::Build).unwrap();
    let volumes = &plan.artifacts[0].buildpacks().unwrap().volumes;
    assert_eq!(
        volumes[0].source,
        repo.dir.path().join("cache").display().to_string()
    );
    assert!(!volumes[0].read_only);
    assert_eq!(
        (volumes[1].source.as_str(), volumes[1].read_only),
        ("named", true)
    );
}

#[test]
fn plans_serialize_to_json_for_machines() {
    let plan = two_level().plan(Command::Build).unwrap();
    let json: serde_json::Value = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["command"], "build");
    assert_eq!(json["defaultRepo"]["value"], "localhost:5001");
    assert_eq!(json["defaultRepo"]["origin"], "op's default");
    assert_eq!(
        json["artifacts"][1]["buildpacks"]["runImage"]["artifact"],
        "app-base"
    );
    assert_eq!(json["artifacts"][2]["action"], "skaffold");
    assert_eq!(json["levels"][1][0], "app");
}

fn skip_reason(artifact: &PlannedArtifact) -> Option<&str> {
    match &artifact.work {
        Work::Skip { reason, .. } => Some(reason),
        _ => None,
    }
}

fn docker_of(artifact: &PlannedArtifact) -> &DockerPlan {
    match &artifact.work {
        Work::Skaffold(SkaffoldPlan {
            docker: Some(d), ..
        }) => d,
        other => panic!("not a Dockerfile artifact: {other:?}"),
    }
}

/// A Dockerfile base and a buildpacks app on it.
fn base_and_app() -> Repo {
    Repo::new(
        &format!(
            "{HEADER}build:\n  artifacts:\n  \
             - {{image: app-base, context: base, docker: {{dockerfile: Dockerfile}}}}\n  \
             - {{image: app, context: app, buildpacks: {{runImage: app-base}}}}\n"
        ),
        &["app"],
        &[("base/Dockerfile", "FROM scratch\n")],
    )
}

fn ttl(key: Option<&str>) -> Ttl {
    Ttl {
        registry: TTL_REGISTRY.into(),
        uuid: "f00d".into(),
        tag: "2h".into(),
        key: key.map(str::to_string),
    }
}

#[test]
fn ttl_mode_names_images_by_uuid_and_key_and_skaffold_builds_under_the_uuid() {
    let repo = base_and_app();
    let config = repo.config();
    let mut options = options(Command::Build, true, None);
    options.ttl = Some(ttl(None));
    let plan = BuildPlan::load(&config, &options).unwrap();
    let targets: Vec<String> = plan
        .artifacts
        .iter()
        .map(|a| a.target.to_string())
        .collect();
    assert_eq!(targets, ["ttl.sh/f00d-app-base:2h", "ttl.sh/f00d-app:2h"]);
    assert!(plan.artifacts.iter().all(|a| a.extra_tags.is_empty()));
    assert_eq!(plan.skaffold_runs[0].default_repo, "ttl.sh/f00d");

    options.ttl = Some(ttl(Some("svc")));
    options.artifact = Some("app".into());
    let plan = BuildPlan::load(&config, &options).unwrap();
    let targets: Vec<String> = plan
        .artifacts
        .iter()
        .map(|a| a.target.to_string())
        .collect();
    assert_eq!(targets, ["ttl.sh/f00d-app-base:2h", "ttl.sh/f00d-svc:2h"]);

    options.artifact = None;
    let error = plan_error(BuildPlan::load(&config, &options));
    assert_eq!(
        error.to_string(),
        "--artifact-key names one artifact, and 2 are built: `app-base`, `app`"
    );
    assert_eq!(
        error.hint().unwrap(),
        "say which artifact the key is for with --artifact"
    );
}

#[test]
fn given_run_images_replace_the_artifact_they_name_which_is_then_not_built() {
    let repo = base_and_app();
    fs_err::write(
        repo.dir.path().join("base.json"),
        r#"{"builds":[{"imageName":"app-base","tag":"ghcr.io/acme/app-base:1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}"#,
    )
    .unwrap();
    let given = given_run_images(repo.dir.path(), &["base.json".into()], &[]).unwrap();
    let mut options = options(Command::Build, true, Some("app"));
    options.run_images = given;
    let plan = BuildPlan::load(&repo.config(), &options).unwrap();
    let images: Vec<&str> = plan.artifacts.iter().map(|a| a.image.as_str()).collect();
    assert_eq!(images, ["app"], "app-base is not built again");
    let run = plan.artifacts[0]
        .buildpacks()
        .unwrap()
        .run_image
        .clone()
        .unwrap();
    assert_eq!(
        run.image,
        "ghcr.io/acme/app-base:1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    );
    assert_eq!(run.artifact, None);

    let overridden = given_run_images(
        repo.dir.path(),
        &["base.json".into()],
        &["app-base=registry.test/base:2".into()],
    )
    .unwrap();
    assert_eq!(
        overridden["app-base"], "registry.test/base:2",
        "overrides come last"
    );

    for bad in ["app-base", "=x", "app-base="] {
        let error = given_run_images(repo.dir.path(), &[], &[bad.into()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("--run-image-override wants name=ref, got `{bad}`")
        );
    }
    let error = given_run_images(repo.dir.path(), &["missing.json".into()], &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "--from-build-result `missing.json` cannot be used"
    );
    fs_err::write(repo.dir.path().join("bad.json"), r#"{"images":[]}"#).unwrap();
    let error = given_run_images(repo.dir.path(), &["bad.json".into()], &[]).unwrap_err();
    assert!(
        error
            .hint()
            .unwrap()
            .contains("{\"builds\":[{\"imageName\"")
    );
}

#[test]
fn the_mirror_serves_builders_and_run_images_but_never_the_build_s_own() {
    assert_eq!(
        mirrored(&r("ubuntu:jammy"), Some("mirror.test")),
        "mirror.test/library/ubuntu:jammy"
    );
    assert_eq!(
        mirrored(
            &r("ghcr.io/octopilot/builder-jammy-base:latest"),
            Some("mirror.test/")
        ),
        "mirror.test/octopilot/builder-jammy-base:latest"
    );
    for kept in [
        "localhost:5001/op/builder:latest",
        "127.0.0.1:5000/x@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "host.docker.internal:5001/x:1",
        "ttl.sh/abc-app:1h",
    ] {
        assert_eq!(mirrored(&r(kept), Some("mirror.test")), kept);
    }
    assert_eq!(mirrored(&r("ubuntu:jammy"), None), "ubuntu:jammy");

    let repo = Repo::new(
        &format!(
            "{HEADER}build: {{artifacts: [{{image: a, buildpacks: {{builder: 'paketobuildpacks/builder:base', runImage: 'paketobuildpacks/run:base'}}}}]}}\n"
        ),
        &[],
        &[],
    );
    let mut options = options(Command::Build, true, None);
    options.image_registry = Some("mirror.test".into());
    let plan = BuildPlan::load(&repo.config(), &options).unwrap();
    let b = plan.artifacts[0].buildpacks().unwrap();
    assert_eq!(b.builder, "mirror.test/paketobuildpacks/builder:base");
    assert_eq!(
        b.run_image.as_ref().unwrap().image,
        "mirror.test/paketobuildpacks/run:base"
    );
}

#[test]
fn several_platforms_are_kept_in_order_for_every_artifact() {
    let repo = base_and_app();
    let mut options = options(Command::Build, true, None);
    options.platforms = Platform::parse_list(&["linux/amd64,linux/arm64"]).unwrap();
    let plan = BuildPlan::load(&repo.config(), &options).unwrap();
    let shown: Vec<String> = plan.platforms.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn a_default_profile_applies_when_defined_and_is_skipped_with_a_warning_when_not() {
    let with = Repo::new(
        &format!(
            "{HEADER}build: {{artifacts: [{{image: a, buildpacks: {{}}}}]}}\nprofiles:\n  - name: push\n    build: {{tagPolicy: {{sha256: {{}}}}}}\n"
        ),
        &[],
        &[],
    );
    let mut options = options(Command::Push, true, None);
    options.default_profile = Some("push".into());
    let plan = BuildPlan::load(&with.config(), &options).unwrap();
    assert_eq!(plan.applied_profiles, ["push"]);
    assert_eq!(plan.requested_profiles.value, ["push"]);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    let without = Repo::new(
        &format!("{HEADER}build: {{artifacts: [{{image: a, buildpacks: {{}}}}]}}\n"),
        &[],
        &[],
    );
    let plan = BuildPlan::load(&without.config(), &options).unwrap();
    assert!(plan.applied_profiles.is_empty());
    assert_eq!(
        plan.warnings,
        [
            "`op push` activates the profile `push` by default, and skaffold.yaml defines none; building without it"
        ]
    );
}
