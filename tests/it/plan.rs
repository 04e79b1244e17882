//! `op build --dry-run`: the plan of every valid fixture, as JSON and as text.

use serde_json::Value;

use crate::common::TestContext;

fn images(plan: &Value) -> Vec<String> {
    plan["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["image"].as_str().unwrap().to_string())
        .collect()
}

fn levels(plan: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(plan["levels"].clone()).unwrap()
}

fn artifact<'a>(plan: &'a Value, image: &str) -> &'a Value {
    plan["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["image"] == image)
        .unwrap_or_else(|| panic!("no {image} in {plan:#}"))
}

/// The buildpacks-only example of the user documentation, with its `.github/octopilot.yaml`.
#[test]
fn buildpacks_only() {
    let ctx = TestContext::fixture("buildpacks-only");
    let run = ctx.op(&["build", "--dry-run", "--output", "json"]);
    run.success();
    let plan = run.json();
    assert_eq!(images(&plan), ["myapp-api", "myapp-frontend"]);
    assert_eq!(levels(&plan), [vec!["myapp-api", "myapp-frontend"]]);
    assert_eq!(plan["defaultRepo"]["value"], "localhost:5001");
    assert_eq!(
        plan["defaultRepo"]["origin"],
        "`default_repo` in `.github/octopilot.yaml`"
    );
    let api = artifact(&plan, "myapp-api");
    assert_eq!(api["kind"], "buildpacks");
    assert_eq!(api["action"], "build");
    assert_eq!(api["context"], ctx.path().join("api").display().to_string());
    assert_eq!(api["target"], "localhost:5001/myapp-api:latest");
    assert_eq!(
        api["buildpacks"]["builder"],
        "ghcr.io/octopilot/builder-jammy-base:latest"
    );
    assert!(api["buildpacks"]["runImage"].is_null());
    let frontend = artifact(&plan, "myapp-frontend");
    assert_eq!(
        frontend["buildpacks"]["projectDescriptor"],
        ctx.path()
            .join("frontend/project.toml")
            .display()
            .to_string()
    );
    assert_eq!(
        plan["buildResult"],
        ctx.path().join("build_result.json").display().to_string()
    );
}

/// The hybrid example: `op build` hands the Dockerfile artifact to skaffold, `op build-push`
/// skips it, saying why.
#[test]
fn hybrid() {
    let ctx = TestContext::fixture("hybrid");
    let build = ctx.op(&["build", "--dry-run", "-o", "json"]);
    build.success();
    let plan = build.json();
    assert_eq!(artifact(&plan, "myapp-frontend")["action"], "skaffold");
    assert_eq!(
        artifact(&plan, "myapp-frontend")["skaffold"]["docker"]["dockerfile"],
        ctx.path().join("frontend/Dockerfile").display().to_string()
    );
    assert_eq!(levels(&plan), [vec!["myapp-frontend", "myapp-api"]]);
    assert_eq!(
        plan["skaffoldRuns"],
        serde_json::json!([{"artifacts": ["myapp-frontend"], "push": false, "defaultRepo": "localhost:5001"}])
    );

    let push = ctx.op(&["build-push", "--dry-run", "-o", "json"]);
    push.success();
    let plan = push.json();
    let frontend = artifact(&plan, "myapp-frontend");
    assert_eq!(frontend["action"], "skip");
    assert!(
        frontend["skipReason"]
            .as_str()
            .unwrap()
            .contains("buildpacks artifacts only")
    );
    assert_eq!(levels(&plan), [vec!["myapp-api"]]);
}

/// An artifact of another kind than buildpacks and docker (jib): `op build` hands it to
/// skaffold, `op build-push` skips it with a reason (upstream's `build-push` ignored them).
#[test]
fn other_kinds_go_to_skaffold_and_build_push_skips_them() {
    let ctx = TestContext::fixture("jib");
    let run = ctx.op(&["build", "--push", "--dry-run"]);
    run.success();
    assert!(
        run.stdout.contains("  svc (jib, built by skaffold)")
            && run
                .stdout
                .contains("skaffold builds (one `skaffold build` each)\n  tagged as skaffold.yaml's tagPolicy says")
            && run.stdout.contains("\n  svc (pushed)"),
        "{}",
        run.report()
    );
    let run = ctx.op(&["build-push", "--dry-run", "-o", "json"]);
    run.success();
    assert_eq!(
        run.json()["artifacts"][0]["skipReason"],
        "op does not build `jib` artifacts; `op build` hands them to skaffold"
    );
    assert!(
        run.stderr
            .contains("warning: `op build-push` has nothing to build"),
        "{}",
        run.report()
    );
}

/// Upstream's pattern: the base image first, then the application on it.
#[test]
fn base_and_app() {
    let ctx = TestContext::fixture("base-and-app");
    let run = ctx.op(&[
        "push",
        "--dry-run",
        "-o",
        "json",
        "--repo",
        "ghcr.io/octopilot/",
    ]);
    run.success();
    let plan = run.json();
    assert_eq!(levels(&plan), [vec!["op-base"], vec!["op"]]);
    let op = artifact(&plan, "op");
    assert_eq!(op["target"], "ghcr.io/octopilot/op:latest");
    assert_eq!(op["buildpacks"]["runImage"]["artifact"], "op-base");
    assert_eq!(
        op["buildpacks"]["runImage"]["image"],
        "ghcr.io/octopilot/op-base:latest"
    );
    assert_eq!(op["dependsOn"][0]["via"], "runImage");
    assert_eq!(op["buildpacks"]["env"][0]["name"], "BP_GO_PRIVATE");
    assert_eq!(op["buildpacks"]["env"][1]["name"], "GOFLAGS");
    assert_eq!(op["buildpacks"]["env"][1]["value"], "-buildvcs=false");
    // --artifact op brings its base along.
    let single = ctx.op(&["build", "--dry-run", "-o", "json", "--artifact", "op"]);
    single.success();
    assert_eq!(images(&single.json()), ["op-base", "op"]);
    let base_only = ctx.op(&["build", "--dry-run", "-o", "json", "--artifact", "op-base"]);
    assert_eq!(images(&base_only.json()), ["op-base"]);
}

/// A configuration that requires others, in other directories and documents.
#[test]
fn multi_config_with_requires() {
    let ctx = TestContext::fixture("multi-config");
    let run = ctx.op(&["build", "--dry-run", "-o", "json"]);
    run.success();
    let plan = run.json();
    assert_eq!(images(&plan), ["shop-base", "shop-api", "shop-web"]);
    assert_eq!(
        levels(&plan),
        [vec!["shop-base"], vec!["shop-api"], vec!["shop-web"]]
    );
    assert_eq!(
        artifact(&plan, "shop-api")["context"],
        ctx.path().join("services/api/src").display().to_string()
    );
    assert_eq!(
        artifact(&plan, "shop-base")["context"],
        ctx.path()
            .join("services/shared/base")
            .display()
            .to_string()
    );
    assert_eq!(plan["skaffoldFiles"].as_array().unwrap().len(), 3);
    assert_eq!(
        artifact(&plan, "shop-web")["dependsOn"][0]["via"],
        "requires"
    );
}

/// Profiles by flag, by environment variable, by settings file, auto-activated and negated.
#[test]
fn profiles() {
    let ctx = TestContext::fixture("profiles");
    let env_of =
        |plan: &Value| artifact(plan, "profiled-app")["buildpacks"]["env"][1]["value"].clone();

    let plain = ctx.op(&["build", "--dry-run", "-o", "json"]);
    assert_eq!(env_of(&plain.json()), "dev");

    let prod = ctx
        .op(&["build", "--dry-run", "-o", "json", "-p", "prod"])
        .json();
    assert_eq!(env_of(&prod), "prod");
    assert_eq!(
        artifact(&prod, "profiled-app")["buildpacks"]["trustBuilder"],
        true
    );
    assert_eq!(prod["appliedProfiles"], serde_json::json!(["prod"]));

    let docker = ctx
        .op(&["build", "--dry-run", "-o", "json", "--profile=docker"])
        .json();
    assert_eq!(artifact(&docker, "profiled-app")["kind"], "docker");

    let ctx = ctx.env("CI", "true");
    let ci = ctx.op(&["build", "--dry-run", "-o", "json"]).json();
    assert_eq!(images(&ci), ["profiled-app", "profiled-ci-tools"]);
    let not_ci = ctx
        .op(&["build", "--dry-run", "-o", "json", "-p", "-ci"])
        .json();
    assert_eq!(images(&not_ci), ["profiled-app"]);

    let ctx = ctx.env("SKAFFOLD_PROFILE", "prod");
    let from_env = ctx.op(&["build", "--dry-run", "-o", "json"]).json();
    assert_eq!(env_of(&from_env), "prod");
    assert_eq!(from_env["requestedProfiles"]["origin"], "$SKAFFOLD_PROFILE");

    let from_file = TestContext::fixture("profiles");
    from_file.write(".github/octopilot.yaml", "SKAFFOLD_PROFILE: prod\n");
    let file_plan = from_file.op(&["build", "--dry-run", "-o", "json"]).json();
    assert_eq!(env_of(&file_plan), "prod");
}

/// The default repository, its precedence, and tags from version variables.
#[test]
fn default_repository_and_tags() {
    let ctx = TestContext::fixture("hybrid");
    ctx.write(
        ".registry",
        "local: registry.local:5000\nci:\n  - ghcr.io/${GITHUB_REPOSITORY_OWNER:-acme}\n",
    );
    let repo = |ctx: &TestContext, args: &[&str]| {
        let mut all = vec!["build", "--dry-run", "-o", "json"];
        all.extend_from_slice(args);
        let plan = ctx.op(&all).json();
        (
            plan["defaultRepo"]["value"].as_str().unwrap().to_string(),
            artifact(&plan, "myapp-api")["target"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    assert_eq!(
        repo(&ctx, &[]),
        (
            "registry.local:5000".into(),
            "registry.local:5000/myapp-api:latest".into()
        )
    );
    let ctx = ctx
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY_OWNER", "octo");
    assert_eq!(repo(&ctx, &[]).0, "ghcr.io/octo");
    ctx.write(
        "pipeline.properties",
        "# CI settings\nSKAFFOLD_DEFAULT_REPO=europe-docker.pkg.dev/p/r\n",
    );
    assert_eq!(
        repo(&ctx, &["--config", "pipeline.properties"]).0,
        "europe-docker.pkg.dev/p/r"
    );
    let ctx = ctx.env("SKAFFOLD_DEFAULT_REPO", "env.example/team");
    assert_eq!(
        repo(&ctx, &["--config", "pipeline.properties"]).0,
        "env.example/team"
    );
    assert_eq!(
        repo(&ctx, &["--default-repo", "flag.example"]).0,
        "flag.example"
    );

    let versioned = TestContext::fixture("hybrid").env("DOCKER_METADATA_OUTPUT_VERSION", "v1.2.3");
    let plan = versioned
        .op(&["build-push", "--dry-run", "-o", "json"])
        .json();
    assert_eq!(
        artifact(&plan, "myapp-api")["tags"],
        serde_json::json!([
            "localhost:5001/myapp-api:v1.2.3",
            "localhost:5001/myapp-api:latest"
        ])
    );
    let tagged = versioned
        .op(&["build-push", "--dry-run", "-o", "json", "--tag", "rc1"])
        .json();
    assert_eq!(
        artifact(&tagged, "myapp-api")["tags"],
        serde_json::json!(["localhost:5001/myapp-api:rc1"])
    );
}

/// The text plan shows the same decisions for people, and says what it is.
#[test]
fn text_plan() {
    let ctx = TestContext::fixture("base-and-app");
    let run = ctx.op(&[
        "build",
        "--dry-run",
        "--insecure-registry",
        "localhost:5001",
    ]);
    run.success();
    let text = &run.stdout;
    for expected in [
        "Build plan for `op build` (dry run: nothing is built or pushed)",
        "default repo  localhost:5001 (op's default)",
        "insecure      localhost:5001",
        "  op-base (docker, built by skaffold)",
        "  op (buildpacks, built by op)",
        "run image     artifact `op-base` (localhost:5001/op-base:latest, by digest once built)",
        "depends on    op-base (runImage)",
        "  1. op-base\n  2. op\n",
    ] {
        assert!(
            text.contains(expected),
            "missing {expected:?}\n{}",
            run.report()
        );
    }
    assert!(run.stderr.is_empty(), "{}", run.report());
}

/// `-f` may name a directory: its skaffold.yaml is read, and contexts stay relative to where op
/// runs.
#[test]
fn filename_may_be_a_directory() {
    let ctx = TestContext::new();
    crate::common::copy_dir(
        &crate::common::fixtures().join("skaffold/hybrid"),
        &ctx.path().join("deploy"),
    );
    let run = ctx.op(&[
        "build",
        "--dry-run",
        "-o",
        "json",
        "-f",
        "deploy",
        "--artifact",
        "myapp-api",
    ]);
    run.failure(1);
    assert!(
        run.stderr.contains("does not exist: `api`"),
        "contexts are relative to the working directory\n{}",
        run.report()
    );
    let file = ctx.op(&[
        "build",
        "--dry-run",
        "-o",
        "json",
        "-f",
        "deploy/skaffold.yaml",
        "--artifact",
        "myapp-api",
    ]);
    file.failure(1);
    assert_eq!(
        file.stderr, run.stderr,
        "a directory means its skaffold.yaml"
    );
}

/// Every valid fixture has a plan, with every target a full reference.
#[test]
fn every_valid_fixture_has_a_plan() {
    let dir = crate::common::fixtures().join("skaffold");
    let mut count = 0;
    for entry in fs_err::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("invalid-") {
            continue;
        }
        count += 1;
        for command in ["build", "build-push", "push"] {
            let run = TestContext::fixture(&name).op(&[command, "--dry-run", "-o", "json"]);
            run.success();
            let plan = run.json();
            for a in plan["artifacts"].as_array().unwrap() {
                let target = a["target"].as_str().unwrap();
                assert!(
                    target.starts_with("localhost:5001/") && target.ends_with(":latest"),
                    "{name}: {target}"
                );
            }
            assert!(
                !plan["levels"].as_array().unwrap().is_empty() || command == "build-push",
                "{name}"
            );
        }
    }
    assert!(count >= 5, "the valid fixtures are found");
}
