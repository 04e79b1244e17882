//! The test cluster itself (`tests/it/common/kube.rs`): a real control plane on which a
//! Deployment rolls out on kwok's node, whose apiserver enforces RBAC, and which leaves nothing
//! behind when it is dropped.

use std::path::Path;

use crate::common::kube::{
    ADMIN_CONTEXT, LIMITED_CONTEXT, LIMITED_USER, NODE, TestCluster, kube_tools,
};
use crate::common::kubelet::{KUBELET_NODE, busybox_image};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels:
      app: hello
  template:
    metadata:
      labels:
        app: hello
    spec:
      containers:
      - name: hello
        image: 127.0.0.1:5001/op/hello:latest
";

/// `kubectl args…` as the administrator succeeds: its stdout.
#[track_caller]
fn kubectl_ok(cluster: &TestCluster, args: &[&str]) -> String {
    let out = cluster.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `hello` rolls out within `timeout` (`kubectl rollout status`; else the cluster's state and
/// logs): its two pods.
#[track_caller]
fn rolled_out(cluster: &TestCluster, timeout: &str) -> Vec<serde_json::Value> {
    let rollout = cluster.kubectl(&[
        "rollout",
        "status",
        "deployment/hello",
        &format!("--timeout={timeout}"),
    ]);
    assert!(
        rollout.status.success(),
        "the Deployment did not roll out within {timeout}:\n{}{}\n{}\n{}",
        String::from_utf8_lossy(&rollout.stdout),
        String::from_utf8_lossy(&rollout.stderr),
        kubectl_ok(
            cluster,
            &["get", "deployments,replicasets,pods,events", "-o", "wide"]
        ),
        cluster.logs()
    );
    let pods: serde_json::Value = serde_json::from_str(&kubectl_ok(
        cluster,
        &["get", "pods", "-l", "app=hello", "-o", "json"],
    ))
    .unwrap();
    let pods = pods["items"].as_array().unwrap().clone();
    assert_eq!(pods.len(), 2, "{pods:#?}");
    pods
}

/// The processes whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    fs_err::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| {
            let cmdline = fs_err::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(&needle)
                .then(|| format!("{}: {cmdline}", entry.file_name().to_string_lossy()))
        })
        .collect()
}

#[test]
fn a_deployment_rolls_out_rbac_holds_and_nothing_is_left() {
    let cluster = TestCluster::start();
    assert!(
        cluster.server().starts_with("https://127.0.0.1:"),
        "{}",
        cluster.server()
    );
    assert!(cluster.ca().is_file());
    for (kubeconfig, context) in [
        (cluster.admin_kubeconfig(), ADMIN_CONTEXT),
        (cluster.limited_kubeconfig(), LIMITED_CONTEXT),
    ] {
        let out = cluster.kubectl_as(&kubeconfig, &["config", "current-context"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), context);
    }
    let labels = kubectl_ok(
        &cluster,
        &["get", "node", NODE, "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(
        labels.contains("\"kubernetes.io/os\":\"linux\"")
            && labels.contains("\"kubernetes.io/arch\":\"amd64\""),
        "{labels}"
    );

    cluster.apply(DEPLOYMENT);
    let pods = rolled_out(&cluster, "60s");
    let pods = pods.as_slice();
    for pod in pods {
        assert_eq!(pod["spec"]["nodeName"], NODE, "{pod:#}");
        assert_eq!(pod["status"]["phase"], "Running", "{pod:#}");
    }

    // The limited user is authenticated, and RBAC refuses it: 403.
    let refused = cluster.kubectl_as(
        &cluster.limited_kubeconfig(),
        &["get", "deployments", "-v=6"],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("403 Forbidden")
            && stderr.contains(&format!(
                "User \"{LIMITED_USER}\" cannot list resource \"deployments\""
            )),
        "{stderr}"
    );

    let dir = cluster.dir().to_path_buf();
    let process_ids = cluster.pids();
    assert_eq!(
        process_ids.len(),
        5,
        "etcd, apiserver, controller manager, scheduler, kwok"
    );
    for pid in &process_ids {
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "{pid} runs");
    }
    drop(cluster);
    for pid in process_ids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} of the cluster is still there"
        );
    }
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert_eq!(processes_naming(&dir), Vec::<String>::new());
}

#[test]
fn a_real_node_runs_pods_of_a_loopback_registry_and_leaves_nothing() {
    let cluster = TestCluster::start_with_kubelet();
    let node = cluster.node_name();
    assert_eq!(node, KUBELET_NODE);
    let labels = kubectl_ok(
        &cluster,
        &["get", "node", node, "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(
        labels.contains("\"kubernetes.io/os\":\"linux\"")
            && labels.contains("\"kubernetes.io/arch\":\"amd64\""),
        "{labels}"
    );

    // An image pushed to the cluster's loopback registry, by digest: pulled, run, logging.
    let image = format!("{}/op/hello:v1", cluster.registry().addr());
    let digest = busybox_image(
        cluster.dir(),
        &image,
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "echo hello from version $VERSION; exec /bin/busybox sleep inf",
        ],
        &[("VERSION", "1")],
    );
    let by_digest = format!("{}/op/hello@{digest}", cluster.registry().addr());
    cluster.apply(&DEPLOYMENT.replace("127.0.0.1:5001/op/hello:latest", &by_digest));
    let pods = rolled_out(&cluster, "120s");
    let pods = pods.as_slice();
    for pod in pods {
        assert_eq!(pod["spec"]["nodeName"], KUBELET_NODE, "{pod:#}");
        assert_eq!(pod["status"]["phase"], "Running", "{pod:#}");
        let image_id = pod["status"]["containerStatuses"][0]["imageID"]
            .as_str()
            .unwrap_or_default();
        assert!(image_id.ends_with(&digest), "{image_id} is not {digest}");
        assert!(
            pod["status"]["podIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10.213.")),
            "{pod:#}"
        );
        // Logs come from the kubelet, through the apiserver.
        let name = pod["metadata"]["name"].as_str().unwrap();
        let logs = kubectl_ok(&cluster, &["logs", name]);
        assert_eq!(logs.trim(), "hello from version 1", "{name}");
    }
    let containers = cluster.node().containers(&kube_tools().join("bin/runc"));
    assert_eq!(
        containers.len(),
        4,
        "two pods, a sandbox and a container each: {containers:?}"
    );

    let traces = cluster.node().traces();
    let dir = cluster.dir().to_path_buf();
    drop(cluster);
    assert_eq!(traces.leftovers(), Vec::<String>::new());
    assert!(!dir.exists(), "{} is still there", dir.display());
}
