use super::*;

/// A repository in a temporary directory.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(&path, text).unwrap();
        }
        Self { dir }
    }

    fn load_with(
        &self,
        file: &str,
        profiles: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Project, Error> {
        let profiles: Vec<String> = profiles.iter().map(|p| (*p).to_string()).collect();
        let env = Env::from_pairs(env.iter().copied());
        load(&LoadOptions {
            file: Path::new(file),
            cwd: self.dir.path(),
            profiles: &profiles,
            env: &env,
        })
    }

    fn load(&self) -> Result<Project, Error> {
        self.load_with("skaffold.yaml", &[], &[])
    }

    fn contexts(&self, project: &Project) -> Vec<String> {
        project
            .artifacts()
            .map(|a| {
                crate::paths::relative_to(&a.context, self.dir.path())
                    .display()
                    .to_string()
            })
            .collect()
    }
}

fn images(project: &Project) -> Vec<String> {
    project.artifacts().map(|a| a.image.clone()).collect()
}

fn error(repo: &Repo) -> String {
    repo.load().unwrap_err().to_string()
}

#[test]
fn reads_buildpacks_and_docker_artifacts_with_defaults() {
    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: app}
build:
  local: {}
  insecureRegistries: [reg.local:5000]
  artifacts:
    - image: app-api
      context: api
      buildpacks:
        builder: ghcr.io/octopilot/builder-jammy-base:latest
        runImage: app-base
        env: [A=1, 'B={{.HOME}}']
        trustBuilder: true
        volumes: [{host: ./cache, target: /cache-in, options: rw}]
    - image: app-base
      docker:
        dockerfile: base/Dockerfile
        target: prod
        buildArgs: {VERSION: 1, EMPTY: null}
    - image: app-web
      context: web/
deploy: {}
",
    )]);
    let project = repo.load().unwrap();
    assert_eq!(images(&project), ["app-api", "app-base", "app-web"]);
    assert_eq!(repo.contexts(&project), ["api", ".", "web"]);
    let artifacts: Vec<&Artifact> = project.artifacts().collect();
    let Kind::Buildpacks(bp) = &artifacts[0].kind else {
        panic!("buildpacks expected")
    };
    assert_eq!(
        bp.builder.as_deref(),
        Some("ghcr.io/octopilot/builder-jammy-base:latest")
    );
    assert_eq!(bp.run_image.as_deref(), Some("app-base"));
    assert_eq!(bp.env, ["A=1", "B={{.HOME}}"]);
    assert!(bp.trust_builder);
    assert_eq!(bp.volumes[0].options.as_deref(), Some("rw"));
    let Kind::Docker(docker) = &artifacts[1].kind else {
        panic!("docker expected")
    };
    assert_eq!(docker.dockerfile, "base/Dockerfile");
    assert_eq!(docker.target.as_deref(), Some("prod"));
    assert_eq!(docker.build_args["VERSION"].as_deref(), Some("1"));
    assert_eq!(docker.build_args["EMPTY"], None);
    let Kind::Docker(default) = &artifacts[2].kind else {
        panic!("docker is the default kind")
    };
    assert_eq!(default.dockerfile, "Dockerfile");
    assert_eq!(project.insecure_registries(), ["reg.local:5000"]);
    assert_eq!(
        artifacts[1].location,
        "`build.artifacts[1]` (config `app`) in `skaffold.yaml`"
    );
}

#[test]
fn reads_the_old_spellings_of_old_schema_versions() {
    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v1alpha2
kind: Config
build:
  artifacts:
    - imageName: old-docker
      workspace: legacy
      docker: {dockerfilePath: Dockerfile.old}
---
apiVersion: skaffold/v2beta4
kind: Config
build:
  artifacts:
    - image: old-buildpack
      buildpack: {builder: some/builder}
---
apiVersion: skaffold/v1alpha1
kind: Config
build:
  artifacts:
    - imageName: ancient
      workspace: .
      dockerfilePath: Dockerfile.ancient
      buildArgs: {A: b}
",
    )]);
    let project = repo.load().unwrap();
    assert_eq!(images(&project), ["old-docker", "old-buildpack", "ancient"]);
    let kinds: Vec<&Kind> = project.artifacts().map(|a| &a.kind).collect();
    assert!(matches!(kinds[0], Kind::Docker(d) if d.dockerfile == "Dockerfile.old"));
    assert!(
        matches!(kinds[1], Kind::Buildpacks(b) if b.builder.as_deref() == Some("some/builder"))
    );
    assert!(
        matches!(kinds[2], Kind::Docker(d) if d.dockerfile == "Dockerfile.ancient" && d.build_args["A"].as_deref() == Some("b"))
    );
}

#[test]
fn unsupported_builders_are_recognised() {
    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta13
kind: Config
build:
  artifacts:
    - {image: j, jib: {}}
    - {image: k, ko: {main: ./cmd}}
    - {image: b, bazel: {target: //:x.tar}}
    - {image: c, custom: {buildCommand: ./build.sh}}
    - {image: n, kaniko: {}}
",
    )]);
    let project = repo.load().unwrap();
    let kinds: Vec<&str> = project.artifacts().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, ["jib", "ko", "bazel", "custom", "kaniko"]);
}

#[test]
fn requires_loads_other_files_relative_to_themselves() {
    let repo = Repo::new(&[
        (
            "skaffold.yaml",
            "apiVersion: skaffold/v4beta13
kind: Config
requires:
  - path: services/api
  - path: services/shared.yaml
    configs: [base]
build:
  artifacts:
    - image: web
      context: web
",
        ),
        (
            "services/api/skaffold.yaml",
            "apiVersion: skaffold/v4beta13
kind: Config
build:
  artifacts:
    - image: api
      context: src
",
        ),
        (
            "services/shared.yaml",
            "apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: base}
build:
  artifacts: [{image: base, context: base}]
---
apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: unused}
build:
  artifacts: [{image: unused}]
",
        ),
    ]);
    let project = repo.load().unwrap();
    assert_eq!(images(&project), ["api", "base", "web"]);
    assert_eq!(
        repo.contexts(&project),
        ["services/api/src", "services/base", "web"]
    );
    assert_eq!(project.files.len(), 3);
}

#[test]
fn requires_in_the_same_file_and_cycles_are_loaded_once() {
    let repo = Repo::new(&[
        (
            "skaffold.yaml",
            "apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: app}
requires: [{configs: [lib]}, {path: other.yaml}]
build: {artifacts: [{image: app}]}
---
apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: lib}
build: {artifacts: [{image: lib}]}
",
        ),
        (
            "other.yaml",
            "apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: other}
requires: [{path: skaffold.yaml, configs: [app]}]
build: {artifacts: [{image: other}]}
",
        ),
    ]);
    let project = repo.load().unwrap();
    assert_eq!(images(&project), ["lib", "other", "app"]);
}

#[test]
fn profiles_replace_artifacts_and_patch_them() {
    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta13
kind: Config
build:
  artifacts:
    - image: app
      docker: {dockerfile: Dockerfile}
profiles:
  - name: prod
    patches:
      - op: replace
        path: /build/artifacts/0/docker/dockerfile
        value: Dockerfile.prod
  - name: pack
    build:
      artifacts:
        - image: app
          buildpacks: {builder: b}
  - name: ci
    activation: [{env: CI=true}]
    patches:
      - op: add
        path: /build/artifacts/-
        value: {image: ci-only}
",
    )]);
    let dockerfile = |project: &Project| match &project.artifacts().next().unwrap().kind {
        Kind::Docker(d) => d.dockerfile.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(dockerfile(&repo.load().unwrap()), "Dockerfile");
    let prod = repo.load_with("skaffold.yaml", &["prod"], &[]).unwrap();
    assert_eq!(dockerfile(&prod), "Dockerfile.prod");
    assert_eq!(prod.applied_profiles(), ["prod"]);
    let pack = repo.load_with("skaffold.yaml", &["pack"], &[]).unwrap();
    assert_eq!(pack.artifacts().next().unwrap().kind.name(), "buildpacks");
    let ci = repo
        .load_with("skaffold.yaml", &[], &[("CI", "true")])
        .unwrap();
    assert_eq!(images(&ci), ["app", "ci-only"]);
    let not_ci = repo
        .load_with("skaffold.yaml", &["-ci"], &[("CI", "true")])
        .unwrap();
    assert_eq!(images(&not_ci), ["app"]);
}

#[test]
fn active_profiles_of_requires_follow_the_parent() {
    let repo = Repo::new(&[
        (
            "skaffold.yaml",
            "apiVersion: skaffold/v4beta13
kind: Config
requires:
  - path: lib.yaml
    activeProfiles:
      - {name: lib-prod, activatedBy: [prod]}
build: {artifacts: [{image: app}]}
profiles: [{name: prod}]
",
        ),
        (
            "lib.yaml",
            "apiVersion: skaffold/v4beta13
kind: Config
build: {artifacts: [{image: lib}]}
profiles:
  - name: lib-prod
    patches: [{op: replace, path: /build/artifacts/0/image, value: lib-prod}]
",
        ),
    ]);
    assert_eq!(images(&repo.load().unwrap()), ["lib", "app"]);
    assert_eq!(
        images(&repo.load_with("skaffold.yaml", &["prod"], &[]).unwrap()),
        ["lib-prod", "app"]
    );
}

#[test]
fn unknown_profiles_list_the_available_ones() {
    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta13\nkind: Config\nprofiles: [{name: dev}, {name: prod}]\n",
    )]);
    let err = repo
        .load_with("skaffold.yaml", &["staging", "dev"], &[])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "No skaffold configuration has the profile `staging`"
    );
    assert_eq!(
        err.hint().as_deref(),
        Some("the profiles are `dev`, `prod`")
    );
}

#[test]
fn errors_name_the_file_the_document_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "apiVersion: skaffold/v4beta13\nkind: Config\nbuild:\n  artifacts:\n    - image: a\n      context: [x]\n",
            "Invalid `skaffold.yaml` at line 6, column 16: build.artifacts[0].context: invalid type: sequence, expected a string",
        ),
        (
            "apiVersion: skaffold/v4beta13\nbuild: {artifacts: [{image: a, contxt: x}]}\n",
            "unknown field `contxt`",
        ),
        (
            "apiVersion: skaffold/v9\nkind: Config\n",
            "`skaffold.yaml` has the unknown apiVersion `skaffold/v9`",
        ),
        ("kind: Config\n", "`skaffold.yaml` has no `apiVersion`"),
        (
            "apiVersion: skaffold/v4beta13\nkind: Deployment\n",
            "`skaffold.yaml` has `kind: Deployment`",
        ),
        (
            "apiVersion: skaffold/v4beta13\nbiuld: {}\n",
            "`skaffold.yaml` has the unknown key `biuld`",
        ),
        (
            "apiVersion: skaffold/v4beta13\nbuild: {artifacts: [{context: .}]}\n",
            "Invalid `skaffold.yaml`: `build.artifacts[0]` has no `image`",
        ),
        (
            "apiVersion: skaffold/v4beta13\nbuild: {artifacts: [{image: a, docker: {}, buildpacks: {}}]}\n",
            "artifact `a` sets both `docker` and `buildpacks`",
        ),
        (
            "apiVersion: skaffold/v4beta13\nrequires: [{git: {repo: x}}]\n",
            "`requires[0]` uses `git`",
        ),
        (
            "# nothing\n",
            "`skaffold.yaml` holds no skaffold configuration",
        ),
        (
            "apiVersion: skaffold/v4beta13\nbuild:\n  artifacts: [\n",
            "Invalid `skaffold.yaml` at line 4, column 1",
        ),
        (
            "apiVersion: skaffold/v4beta13\n---\napiVersion: skaffold/v0\n",
            "`skaffold.yaml` (document 2) has the unknown apiVersion `skaffold/v0`",
        ),
        (
            "apiVersion: skaffold/v4beta13\nprofiles: [{name: p}, {name: p}]\n",
            "two profiles are named `p`",
        ),
    ];
    for (text, want) in cases {
        let repo = Repo::new(&[("skaffold.yaml", text)]);
        let err = error(&repo);
        assert!(
            err.contains(want),
            "for {text:?}\n got: {err}\nwant: {want}"
        );
    }
}

#[test]
fn missing_files_explain_where_op_looked() {
    let repo = Repo::new(&[]);
    let err = repo.load().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`skaffold.yaml` does not exist (looked in `{}`)",
            repo.dir.path().display()
        )
    );
    assert!(err.hint().unwrap().contains("-f/--filename"));

    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta13\nrequires: [{path: nope}]\n",
    )]);
    assert_eq!(
        error(&repo),
        "`nope`, required by `skaffold.yaml`, does not exist"
    );
}

#[test]
fn yaml_anchors_and_dotted_keys_are_allowed() {
    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta13
kind: Config
.builder: &builder
  builder: ghcr.io/octopilot/builder-jammy-base:1
build:
  artifacts:
    - image: a
      buildpacks: *builder
    - image: b
      buildpacks: *builder
",
    )]);
    let project = repo.load().unwrap();
    assert_eq!(images(&project), ["a", "b"]);
}

#[test]
fn null_sections_are_empty() {
    let repo = Repo::new(&[(
        "skaffold.yaml",
        "apiVersion: skaffold/v4beta13\nkind: Config\nrequires:\nbuild:\n  artifacts:\n    - image: a\n      requires:\n      buildpacks:\n        env:\n",
    )]);
    let project = repo.load().unwrap();
    assert_eq!(images(&project), ["a"]);
    assert_eq!(
        project.artifacts().next().unwrap().kind.name(),
        "buildpacks"
    );
}
