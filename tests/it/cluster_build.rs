//! `op build --push --engine kubernetes`: the buildpacks creators run as pods of the test
//! cluster's real node (`common::kube::TestCluster::start_with_kubelet`), with the builders and
//! registries of `common::cnb::Stack` (op-lifecycle's builder and the real lifecycle's, made by
//! pack).

use crate::build_push::apps;
use crate::common::TestContext;
use crate::common::cnb::{
    EngineCleanup, Lifecycle, Stack, apps_in, lifecycle_dir, serve_and_get, skopeo_copy,
    slow_greeting, two_platform_stack, verify_published, write_docker_config,
};
use crate::common::kube::{LIMITED_USER, TestCluster};
use crate::common::registry::Registry;

on_each_builder!(
    the_fixture_apps_build_in_pods_and_fail_as_they_fail_locally,
    each_platform_is_a_pod_on_a_node_of_its_own_platform,
);

/// The Role of docs/configuration.md ("The rights op needs"), in the namespace `default`.
const ROLE: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: op-build
  namespace: default
rules:
- apiGroups: [\"\"]
  resources: [pods]
  verbs: [create, get, watch, delete]
- apiGroups: [\"\"]
  resources: [pods/attach, pods/exec]
  verbs: [create, get]
- apiGroups: [\"\"]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [\"\"]
  resources: [secrets]
  verbs: [create, patch, delete]
";

/// The pods and secrets of op's builds in `cluster`, in every namespace (op labels them).
fn leftovers(cluster: &TestCluster) -> String {
    let out = cluster.kubectl(&[
        "get",
        "pods,secrets",
        "--all-namespaces",
        "-l",
        "io.octopilot.op.kind=build",
        "-o",
        "name",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `op build-push --repo <stack's registry> --engine kubernetes` with `kubeconfig`, and
/// `extra` arguments.
fn build_in(
    kubeconfig: &std::path::Path,
    stack: &Stack,
    context: &TestContext,
    extra: &[&str],
) -> crate::common::Run {
    let kubeconfig = kubeconfig.display().to_string();
    let repo = stack.registry.addr();
    let mut args = vec![
        "build-push",
        "--repo",
        &repo,
        "--engine",
        "kubernetes",
        "--kubeconfig",
        &kubeconfig,
    ];
    args.extend(extra);
    context.op(&args)
}

/// No Docker Engine answers op's cluster builds: the builders are read from the registry and
/// the nodes pull them.
const NO_ENGINE: &str = "unix:///nonexistent/op-test-no-engine.sock";

/// The fixture apps (three artifacts, one on another's image, which is built first in the same
/// graph) built by pods, with no Docker Engine: the creators' output shown as a local build's,
/// each image published with the digest op records, the app serving, the SBOMs copied, the
/// default cache image written and restored in another namespace (`--cache-image off`: cold),
/// an unchanged artifact reused without a pod, and no pod or secret left. A buildpack that fails, an app no buildpack detects and a builder
/// the node does not have with `--pull never` fail with op's messages, and leave nothing
/// either; so does Ctrl-C during a build. A builder in a private registry is pulled with the
/// build's pull Secret. An account that may not create pods is refused, named; with the Role
/// the docs print, it builds.
fn the_fixture_apps_build_in_pods_and_fail_as_they_fail_locally(lifecycle: Lifecycle) {
    let cluster = TestCluster::start_with_kubelet();
    let admin = cluster.admin_kubeconfig();
    let stack = Stack::start(lifecycle);
    let context = apps(&stack).env("DOCKER_HOST", NO_ENGINE);
    let run = build_in(
        &admin,
        &stack,
        &context,
        &["--concurrency", "2", "--sbom-output", "dist/sbom"],
    );
    run.success();
    // The SBOMs came out of the pods, and the cache went to the registry (the default cache
    // image with pods, which start empty; greeting's buildpack caches a layer).
    assert!(
        context.path().join("dist/sbom/static-site/launch").is_dir(),
        "{}",
        run.report()
    );
    let cache = format!("{}/op-cache", stack.registry.addr());
    verify_published(&format!("{cache}:greeting"));
    assert!(
        run.stderr
            .contains("Running the creator in pod default/op-build-")
            && run.stderr.contains("===> DETECTING")
            && run.stderr.contains("===> EXPORTING"),
        "{}",
        run.report()
    );
    let result: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(context.path().join("build_result.json")).unwrap(),
    )
    .unwrap();
    let builds = result["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 3, "{result}");
    for build in builds {
        let (reference, digest) = build["tag"].as_str().unwrap().split_once('@').unwrap();
        assert_eq!(verify_published(reference), digest, "{}", run.report());
    }
    let site = format!("{}/static-site@{}", stack.registry.addr(), {
        let tag = builds
            .iter()
            .find(|b| b["imageName"] == "static-site")
            .unwrap()["tag"]
            .as_str()
            .unwrap();
        tag.split_once('@').unwrap().1.to_string()
    });
    assert!(
        serve_and_get(&site, "/index.html").contains("Hello from the static-site fixture"),
        "{site}"
    );
    assert_eq!(leftovers(&cluster), "", "{}", run.report());
    cache_across_namespaces(&cluster, &stack, &context);
    reused_without_a_pod(&cluster, &stack, &context);

    // A buildpack that fails: the creator's exit code, op's message, the buildpack's line.
    context.write("procfile/Procfile", "not a process line: x\n");
    let failed = build_in(&admin, &stack, &context, &["--artifact", "procfile"]);
    failed.failure(1);
    for expected in [
        "- procfile: a buildpack failed (exit code 51)",
        "hint: see the buildpack's output above",
        "Procfile: 'not a process line' is not a process name",
    ] {
        assert!(
            failed.stderr.contains(expected),
            "{expected}\n{}",
            failed.report()
        );
    }

    rights(&cluster, &stack, &context);

    // Ctrl-C while a creator runs in its pod, with credentials for the registry (which takes
    // any): the pod and the Secret that holds them go.
    write_docker_config(&context.path().join(".home"), &stack.registry.addr());
    ctrl_c_deletes_the_pod(&cluster, &stack, &context);

    // No buildpack detects the app (greeting, on its image, is not built then either).
    fs_err::remove_dir_all(context.path().join("static-site/public")).unwrap();
    let undetected = build_in(&admin, &stack, &context, &["--artifact", "static-site"]);
    undetected.failure(1);
    assert!(
        undetected.stderr.contains(
            "- static-site: no buildpack detected the app in the artifact's context (exit code 20)"
        ),
        "{}",
        undetected.report()
    );
    assert_eq!(leftovers(&cluster), "", "{}", undetected.report());

    private_builder(&cluster, &stack, &context);
}

/// The builder in a registry that wants credentials, which op has (the Docker configuration):
/// with `--pull never` the node, which never pulled it, does not have it (`ErrImageNeverPull`,
/// named); else it pulls it with the build's pull Secret, and the build runs. Nothing is left.
fn private_builder(cluster: &TestCluster, stack: &Stack, context: &TestContext) {
    let admin = cluster.admin_kubeconfig();
    let private = Registry::start_with_auth();
    let builder = format!("{}/op/private-builder:latest", private.addr());
    skopeo_copy(&stack.builder, &builder, true);
    write_docker_config(&context.home(), &private.addr());
    // The site again (the undetected build took it away).
    context.write(
        "static-site/public/index.html",
        "<p>From a private builder</p>\n",
    );
    context.replace_in("skaffold.yaml", &[(stack.builder.as_str(), &builder)]);
    let args = ["--artifact", "static-site"];
    let never = build_in(
        &admin,
        stack,
        context,
        &[&args[..], &["--pull", "never"]].concat(),
    );
    never.failure(1);
    let named = format!(
        "cannot pull builder {}/op/private-builder@sha256:",
        private.addr()
    );
    for expected in [
        named.as_str(),
        "ErrImageNeverPull",
        "hint: the cluster's nodes must be able to pull the builder",
    ] {
        assert!(
            never.stderr.contains(expected),
            "{expected}\n{}",
            never.report()
        );
    }
    assert_eq!(leftovers(cluster), "", "{}", never.report());

    let pulled = build_in(&admin, stack, context, &args);
    pulled.success();
    assert!(
        pulled.stderr.contains(&format!(
            "Read builder {builder} from the registry: the nodes run {}/op/private-builder@sha256:",
            private.addr()
        )),
        "{}",
        pulled.report()
    );
    assert_eq!(leftovers(cluster), "", "{}", pulled.report());
}

/// The cache image of the first build is restored by a build in a namespace of its own (pods
/// start empty); with `--cache-image off` a build starts cold.
fn cache_across_namespaces(cluster: &TestCluster, stack: &Stack, context: &TestContext) {
    let admin = cluster.admin_kubeconfig();
    let made = cluster.kubectl(&["create", "namespace", "fresh"]);
    assert!(made.status.success(), "{made:?}");
    let args = ["--artifact", "greeting", "--namespace", "fresh"];
    let warm = build_in(&admin, stack, context, &args);
    warm.success();
    for line in [
        // Without --concurrency, what the node can take.
        "build pods at once: the CPUs of the 1 linux/amd64 node(s) that can take them",
        "Running the creator in pod fresh/op-build-",
        "Restoring data for \"op/greeting:counter\" from cache",
        "---> Greeting: build number 2",
    ] {
        assert!(warm.stderr.contains(line), "{line}\n{}", warm.report());
    }
    let cold = build_in(
        &admin,
        stack,
        context,
        &[&args[..], &["--cache-image", "off"]].concat(),
    );
    cold.success();
    assert!(
        cold.stderr.contains("---> Greeting: build number 1"),
        "{}",
        cold.report()
    );
    assert_eq!(leftovers(cluster), "", "{}", cold.report());
}

/// `--cache-artifacts` with pods: the first build's pod gets the inputs tarred for its key;
/// built again unchanged, no pod runs and the same image is published.
fn reused_without_a_pod(cluster: &TestCluster, stack: &Stack, context: &TestContext) {
    let admin = cluster.admin_kubeconfig();
    let args = ["--artifact", "procfile", "--cache-artifacts=true"];
    let first = build_in(&admin, stack, context, &args);
    first.success();
    assert!(
        first.stderr.contains("Running the creator in pod"),
        "{}",
        first.report()
    );
    let tag = |context: &TestContext| {
        crate::common::tag_of(&crate::common::build_result(context), "procfile").to_string()
    };
    let built = tag(context);
    let again = build_in(&admin, stack, context, &args);
    again.success();
    for (expected, present) in [
        ("Unchanged inputs: reused sha256:", true),
        ("Running the creator in pod", false),
        (
            "Built and published 1 artifact (1 unchanged and reused)",
            true,
        ),
    ] {
        assert_eq!(
            again.stderr.contains(expected),
            present,
            "{expected}\n{}",
            again.report()
        );
    }
    assert_eq!(tag(context), built);
    assert_eq!(leftovers(cluster), "", "{}", again.report());
}

/// An account that may not create pods: the API's 403, named; with the Role the docs print, it
/// builds `greeting`.
fn rights(cluster: &TestCluster, stack: &Stack, context: &TestContext) {
    // An account that may not create pods: the API's 403, named.
    let limited = cluster.limited_kubeconfig();
    let refused = build_in(&limited, stack, context, &["--artifact", "greeting"]);
    refused.failure(1);
    assert!(
        refused
            .stderr
            .contains("refused to create pod default/op-build-")
            && refused.stderr.contains("(403)"),
        "{}",
        refused.report()
    );

    // The Role docs/configuration.md prints is all it needs.
    cluster.apply(&format!(
        "{ROLE}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  \
         name: op-build\n  namespace: default\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  \
         kind: Role\n  name: op-build\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  \
         kind: User\n  name: {LIMITED_USER}\n"
    ));
    let allowed = build_in(&limited, stack, context, &["--artifact", "greeting"]);
    allowed.success();
    // A Role gives no nodes to size the builds with: op's default, said.
    assert!(
        allowed
            .stderr
            .contains("op may not list the cluster's nodes to size it"),
        "{}",
        allowed.report()
    );
}

/// Interrupts a slow build of `greeting` (its buildpack sleeps) once its pod runs the creator:
/// op exits with 130, and neither the pod nor its Secret is left.
fn ctrl_c_deletes_the_pod(cluster: &TestCluster, stack: &Stack, context: &TestContext) {
    slow_greeting(context);
    let kubeconfig = cluster.admin_kubeconfig().display().to_string();
    let repo = stack.registry.addr();
    let args = [
        "build-push",
        "--repo",
        &repo,
        "--artifact",
        "greeting",
        "--engine",
        "kubernetes",
        "--kubeconfig",
        &kubeconfig,
    ];
    let stopped = context.interrupted(&args, "---> Greeting: sleeping", || {
        let running = leftovers(cluster);
        assert!(
            running.contains("pod/op-build-") && running.contains("secret/op-build-"),
            "its pod runs, with its Secret: {running}"
        );
    });
    assert_eq!(
        stopped.code,
        Some(130),
        "{}{}",
        stopped.before,
        stopped.after
    );
    assert_eq!(leftovers(cluster), "", "nothing is left after Ctrl-C");
}

/// What op refuses before it reaches a cluster: a build that would not publish (the pods
/// publish straight to the registry), and an engine `OP_ENGINE` does not name.
#[test]
fn a_cluster_build_needs_push_and_a_known_engine() {
    let context = TestContext::new();
    apps_in(
        &context,
        "localhost:5001/op/builder:latest",
        "localhost:5001",
    );
    let run = context.op(&[
        "build",
        "--repo",
        "localhost:5001",
        "--engine",
        "kubernetes",
    ]);
    run.failure(1);
    assert!(
        run.stderr.contains(
            "error: --engine kubernetes builds in pods of a cluster, which publish straight to the registry: it needs --push"
        ) && run.stderr.contains("hint: add --push (or run op build-push)"),
        "{}",
        run.report()
    );
    let run = context
        .env("OP_ENGINE", "podman")
        .op(&["build-push", "--repo", "localhost:5001"]);
    run.failure(1);
    assert!(
        run.stderr
            .contains("error: OP_ENGINE=podman names no engine")
            && run
                .stderr
                .contains("hint: set it to `docker` (the default) or `kubernetes`"),
        "{}",
        run.report()
    );
}

/// Two platforms: a pod each, with the node selector of its platform. The test cluster's node is
/// linux/amd64, so the amd64 build runs and the arm64 one cannot be placed: the artifact fails,
/// naming the platform, and no index is published.
fn each_platform_is_a_pod_on_a_node_of_its_own_platform(lifecycle: Lifecycle) {
    let cluster = TestCluster::start_with_kubelet();
    let home = TestContext::new().env("OP_LIFECYCLE_DIR", &lifecycle_dir());
    let (registry, builder) = two_platform_stack(lifecycle, &home);
    let repo = registry.addr();
    let _cleanup = EngineCleanup(repo.clone());
    let context = TestContext::new().env("DOCKER_HOST", NO_ENGINE);
    apps_in(&context, &builder, &repo);
    let kubeconfig = cluster.admin_kubeconfig().display().to_string();
    let run = context.op(&[
        "build-push",
        "--repo",
        &repo,
        "--artifact",
        "static-site",
        "--platform",
        "linux/amd64,linux/arm64",
        "--engine",
        "kubernetes",
        "--kubeconfig",
        &kubeconfig,
    ]);
    run.failure(1);
    for expected in [
        "(linux/amd64) ===> EXPORTING",
        "- static-site: the build for linux/arm64 failed: its pod default/op-build-",
        "cannot be placed: no node of the cluster can take a linux/arm64 build",
        "hint: add a node of that platform",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected}\n{}",
            run.report()
        );
    }
    let (code, _) = registry.request("HEAD", "/v2/static-site/manifests/latest");
    assert_eq!(code, 404, "no index\n{}", run.report());
    assert_eq!(leftovers(&cluster), "", "{}", run.report());
}
