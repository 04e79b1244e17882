//! A real one-node Kubernetes cluster per test, in a temporary directory, on free loopback ports:
//! etcd, kube-apiserver, kube-controller-manager and kube-scheduler as a cluster runs them, with
//! certificates made for the test by Debian's `openssl`, and kwok playing the kubelet of one fake
//! node (it marks the node Ready, and the pods bound to it Running and Ready, with kwok's default
//! stages; no container runs, no image is pulled). Every process stops when the [`TestCluster`]
//! is dropped.
//!
//! The binaries are `scripts/kube-tools`' (pinned, built from the Go module proxy): `OP_KUBE_TOOLS`
//! names the directory it prints. A test that needs a cluster fails, loudly, without them; it
//! never skips.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::kubelet::{KUBELET_NODE, Node, busybox_image};
use super::registry::{Registry, free_port};
use super::tls::openssl;

/// What a cluster runs, in `$OP_KUBE_TOOLS/bin`.
const BINARIES: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
];

/// kwok's default stages (a node's initialisation and heartbeat; a pod's ready, complete and
/// delete), which kwokctl hands to kwok and kwok alone needs with `--config`: `scripts/kube-tools`
/// writes them from the pinned kwok module.
const KWOK_STAGES: &str = "kwok/stages.yaml";

/// The fake node's name.
pub const NODE: &str = "op-test-node";

/// The annotation that makes a node kwok's (`--manage-nodes-with-annotation-selector`).
const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node=fake";

/// The context (and cluster) name of [`TestCluster::admin_kubeconfig`].
pub const ADMIN_CONTEXT: &str = "op-test";

/// The context name of [`TestCluster::limited_kubeconfig`] (same cluster, user `limited`).
pub const LIMITED_CONTEXT: &str = "op-test-limited";

/// The limited user's name (its certificate's CN; it has no group, so RBAC gives it nothing but
/// discovery).
pub const LIMITED_USER: &str = "limited";

/// How long the apiserver may take to answer `/readyz` (its first start after a build is slow).
const APISERVER_READY: Duration = Duration::from_secs(90);

/// How long the node may take to be Ready and the `default` service account to exist.
const NODE_READY: Duration = Duration::from_secs(60);

/// `OP_KUBE_TOOLS`, checked: the directory `scripts/kube-tools` prints.
pub fn kube_tools() -> PathBuf {
    let dir = std::env::var("OP_KUBE_TOOLS").unwrap_or_else(|_| {
        panic!(
            "OP_KUBE_TOOLS is not set, and this test needs a Kubernetes control plane (etcd, \
             kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok): run \
             `export OP_KUBE_TOOLS=\"$(scripts/kube-tools)\"` (scripts/test does)"
        )
    });
    let dir = PathBuf::from(dir);
    for binary in BINARIES {
        assert!(
            dir.join("bin").join(binary).is_file(),
            "OP_KUBE_TOOLS={} holds no `bin/{binary}`; run scripts/kube-tools",
            dir.display()
        );
    }
    assert!(
        dir.join(KWOK_STAGES).is_file(),
        "OP_KUBE_TOOLS={} holds no `{KWOK_STAGES}`; run scripts/kube-tools",
        dir.display()
    );
    dir
}

/// A running cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok,
/// with one fake node, [`NODE`] (labelled `kubernetes.io/os=linux`, `kubernetes.io/arch=amd64`),
/// on which Deployments roll out.
///
/// Two kubeconfigs, each with its certificates inline: [`admin_kubeconfig`](Self::admin_kubeconfig)
/// (context [`ADMIN_CONTEXT`], user `admin` of group `system:masters`) and
/// [`limited_kubeconfig`](Self::limited_kubeconfig) (context [`LIMITED_CONTEXT`], user
/// [`LIMITED_USER`], no group: RBAC refuses it everything but discovery).
///
/// Dropping it kills every process it started and removes its directory.
pub struct TestCluster {
    /// In the order they started; stopped in the reverse one.
    processes: Vec<Process>,
    tools: PathBuf,
    port: u16,
    /// The real node, when there is one (dropped after the processes are killed: it removes
    /// what they made on the machine).
    node: Option<Node>,
    /// The registry of the real node's pause image, which tests may push to.
    registry: Option<Registry>,
    dir: tempfile::TempDir,
}

/// Which node a cluster has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    /// kwok's [`NODE`]: pods are Running and Ready at once, and nothing runs.
    Kwok,
    /// A real kubelet's [`KUBELET_NODE`], with containerd and runc: pods run.
    Kubelet,
}

/// A process of the cluster, and its log (stdout and stderr).
struct Process {
    name: &'static str,
    args: Vec<String>,
    child: Child,
    log: PathBuf,
}

impl TestCluster {
    /// Starts a cluster, and waits until the apiserver is ready, the node is Ready and the
    /// `default` service account exists (pods can be created). Ports taken between their choice
    /// and their use are tried again, twice.
    pub fn start() -> Self {
        Self::start_kind(NodeKind::Kwok)
    }

    /// Starts a cluster whose node is real ([`KUBELET_NODE`]: the kubelet, containerd, runc;
    /// `tests/it/common/kubelet.rs`), with a registry of its own on loopback
    /// ([`registry`](Self::registry)) from which it pulls its pause image and the tests' images.
    pub fn start_with_kubelet() -> Self {
        Self::start_kind(NodeKind::Kubelet)
    }

    fn start_kind(kind: NodeKind) -> Self {
        let tools = kube_tools();
        let mut attempt = 1;
        loop {
            match Self::try_start(&tools, kind) {
                Ok(cluster) => return cluster,
                Err(failure) if attempt < 3 && failure.contains("address already in use") => {
                    attempt += 1;
                }
                Err(failure) => {
                    panic!("the test cluster did not come up (attempt {attempt} of 3): {failure}")
                }
            }
        }
    }

    fn try_start(tools: &Path, kind: NodeKind) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("op-test-kube-")
            .tempdir()
            .expect("a temporary directory");
        for sub in ["pki", "home", "tmp", "certs", "kwok"] {
            fs_err::create_dir_all(dir.path().join(sub)).expect("a directory of the cluster");
        }
        make_pki(&dir.path().join("pki"));
        let (etcd_client, etcd_peer) = (free_port().port(), free_port().port());
        let mut cluster = Self {
            processes: Vec::new(),
            tools: tools.to_path_buf(),
            port: free_port().port(),
            node: None,
            registry: None,
            dir,
        };
        cluster.write_kubeconfigs();

        let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let etcd_client_url = format!("http://127.0.0.1:{etcd_client}");
        cluster.spawn(
            "etcd",
            &[
                "--name=default".to_string(),
                format!("--data-dir={}", cluster.path("etcd")),
                format!("--listen-client-urls={etcd_client_url}"),
                format!("--advertise-client-urls={etcd_client_url}"),
                format!("--listen-peer-urls={etcd_peer_url}"),
                format!("--initial-advertise-peer-urls={etcd_peer_url}"),
                format!("--initial-cluster=default={etcd_peer_url}"),
                // A test's data need not survive a crash of the machine.
                "--unsafe-no-fsync".to_string(),
            ],
        );
        let apiserver = cluster.apiserver_args(&etcd_client_url);
        cluster.spawn("kube-apiserver", &apiserver);
        cluster.wait_for("the apiserver's /readyz", APISERVER_READY, |c| {
            output_result(&c.kubectl(&["get", "--raw", "/readyz"]))
        })?;

        let controller_manager = cluster.controller_manager_args();
        cluster.spawn("kube-controller-manager", &controller_manager);
        let scheduler = vec![
            format!("--kubeconfig={}", cluster.path("scheduler.kubeconfig")),
            "--bind-address=127.0.0.1".to_string(),
            // No serving port: nothing to collide with, and nothing a test needs.
            "--secure-port=0".to_string(),
            "--leader-elect=false".to_string(),
        ];
        cluster.spawn("kube-scheduler", &scheduler);
        match kind {
            NodeKind::Kwok => cluster.start_kwok(tools)?,
            NodeKind::Kubelet => cluster.start_kubelet(tools)?,
        }
        cluster.wait_for("the node to be Ready", NODE_READY, |c| {
            let out = c.kubectl(&[
                "get",
                "node",
                c.node_name(),
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            output_result(&out)?;
            match String::from_utf8_lossy(&out.stdout).trim() {
                "True" => Ok(()),
                other => Err(format!("Ready is `{other}`")),
            }
        })?;
        cluster.wait_for("the default service account", NODE_READY, |c| {
            output_result(&c.kubectl(&["get", "serviceaccount", "default", "-o", "name"]))
        })?;
        Ok(cluster)
    }

    fn start_kwok(&mut self, tools: &Path) -> Result<(), String> {
        let kwok = vec![
            format!("--kubeconfig={}", self.path("admin.kubeconfig")),
            format!("--config={}", tools.join(KWOK_STAGES).display()),
            "--manage-all-nodes=false".to_string(),
            format!("--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}"),
            "--node-ip=127.0.0.1".to_string(),
            "--cidr=10.244.0.0/16".to_string(),
        ];
        self.spawn("kwok", &kwok);

        let node = self.kubectl_stdin(&["apply", "-f", "-"], &node_manifest());
        output_result(&node).map_err(|e| format!("the node was not created: {e}"))?;
        Ok(())
    }

    /// The real node: a registry with its pause image (busybox sleeping), then containerd and
    /// the kubelet.
    fn start_kubelet(&mut self, tools: &Path) -> Result<(), String> {
        let registry = Registry::start();
        let pause = format!("{}/op/pause:test", registry.addr());
        busybox_image(
            self.dir.path(),
            &pause,
            &["/bin/busybox", "sleep", "inf"],
            &[],
        );
        self.registry = Some(registry);
        let node = Node::prepare(
            self.dir.path(),
            tools,
            &self.ca(),
            &self.dir.path().join("node.kubeconfig"),
            &pause,
        )?;
        let (containerd, kubelet) = (node.containerd_args(), node.kubelet_args());
        self.node = Some(node);
        self.spawn("containerd", &containerd);
        self.spawn("kubelet", &kubelet);
        Ok(())
    }

    /// Stops the apiserver (SIGKILL: its clients' connections are cut) and starts it again with
    /// the same arguments, on the same port, after `down`; returns once it is ready. Its log
    /// goes on in the same file.
    pub fn restart_apiserver(&mut self, down: Duration) {
        let index = self
            .processes
            .iter()
            .position(|p| p.name == "kube-apiserver")
            .expect("the cluster runs an apiserver");
        let old = self.processes.remove(index);
        let (mut child, args) = (old.child, old.args);
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(down);
        self.spawn("kube-apiserver", &args);
        let restarted = self.processes.pop().expect("the apiserver just started");
        self.processes.insert(index, restarted);
        let ready = self.wait_for("the restarted apiserver's /readyz", APISERVER_READY, |c| {
            output_result(&c.kubectl(&["get", "--raw", "/readyz"]))
        });
        if let Err(failure) = ready {
            panic!("{failure}");
        }
    }

    /// The name of the cluster's node: [`NODE`] (kwok's) or [`KUBELET_NODE`].
    pub fn node_name(&self) -> &'static str {
        if self.node.is_some() {
            KUBELET_NODE
        } else {
            NODE
        }
    }

    /// The registry of a cluster with a real node (its pause image is there; tests push their
    /// images to it, and the node pulls them over plain HTTP).
    pub fn registry(&self) -> &Registry {
        self.registry
            .as_ref()
            .expect("only a cluster with a real node (start_with_kubelet) has a registry")
    }

    /// The real node of [`start_with_kubelet`](Self::start_with_kubelet).
    pub fn node(&self) -> &Node {
        self.node
            .as_ref()
            .expect("only a cluster started with start_with_kubelet has a real node")
    }

    fn apiserver_args(&self, etcd: &str) -> Vec<String> {
        let pki = |name: &str| self.path(&format!("pki/{name}"));
        vec![
            format!("--etcd-servers={etcd}"),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={}", self.port),
            "--advertise-address=127.0.0.1".to_string(),
            // Else: `cannot use public IP 127.0.0.1 with endpoint reconciler … loopback`.
            "--endpoint-reconciler-type=none".to_string(),
            format!("--tls-cert-file={}", pki("apiserver.crt")),
            format!("--tls-private-key-file={}", pki("apiserver.key")),
            format!("--client-ca-file={}", pki("ca.crt")),
            format!("--service-account-key-file={}", pki("sa.pub")),
            format!("--service-account-signing-key-file={}", pki("sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc".to_string(),
            "--service-cluster-ip-range=10.96.0.0/16".to_string(),
            "--authorization-mode=Node,RBAC".to_string(),
            "--enable-admission-plugins=NodeRestriction".to_string(),
            "--allow-privileged=true".to_string(),
            // Else the node's name is resolved through the machine's DNS.
            "--kubelet-preferred-address-types=InternalIP".to_string(),
            format!(
                "--kubelet-client-certificate={}",
                pki("apiserver-kubelet-client.crt")
            ),
            format!(
                "--kubelet-client-key={}",
                pki("apiserver-kubelet-client.key")
            ),
            format!("--cert-dir={}", self.path("certs")),
        ]
    }

    fn controller_manager_args(&self) -> Vec<String> {
        let pki = |name: &str| self.path(&format!("pki/{name}"));
        vec![
            format!(
                "--kubeconfig={}",
                self.path("controller-manager.kubeconfig")
            ),
            "--bind-address=127.0.0.1".to_string(),
            "--secure-port=0".to_string(),
            format!("--service-account-private-key-file={}", pki("sa.key")),
            format!("--root-ca-file={}", pki("ca.crt")),
            "--use-service-account-credentials".to_string(),
            "--leader-elect=false".to_string(),
            // Certificate signing requests (a real kubelet's client certificate) signed by the CA.
            format!("--cluster-signing-cert-file={}", pki("ca.crt")),
            format!("--cluster-signing-key-file={}", pki("ca.key")),
            format!("--cert-dir={}", self.path("certs")),
        ]
    }

    /// The apiserver: `https://127.0.0.1:<port>`.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The cluster's CA certificate (PEM): what a client must trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("pki/ca.crt")
    }

    /// A kubeconfig of the cluster's administrator (`system:masters`), context
    /// [`ADMIN_CONTEXT`].
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    /// A kubeconfig of [`LIMITED_USER`], who may do nothing but discovery, context
    /// [`LIMITED_CONTEXT`].
    pub fn limited_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("limited.kubeconfig")
    }

    /// The cluster's directory (certificates, kubeconfigs, logs, etcd's data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process ids of the cluster's processes.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(|p| p.child.id()).collect()
    }

    /// Runs the cluster's `kubectl args…` as the administrator.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.admin_kubeconfig(), args)
    }

    /// Runs the cluster's `kubectl args…` with `kubeconfig`.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        self.kubectl_command(kubeconfig, args)
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs")
    }

    /// Runs the cluster's `kubectl args…` as the administrator, with `input` on its stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let mut child = self
            .kubectl_command(&self.admin_kubeconfig(), args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        // A kubectl that fails before reading it says why on stderr: that is what counts.
        let _ = child
            .stdin
            .take()
            .expect("kubectl's stdin")
            .write_all(input.as_bytes());
        child.wait_with_output().expect("kubectl runs")
    }

    /// `kubectl apply` of `manifest` (YAML) as the administrator; panics, with the cluster's
    /// logs, when it fails.
    #[track_caller]
    pub fn apply(&self, manifest: &str) -> Output {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], manifest);
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n--- manifest\n{manifest}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        out
    }

    fn kubectl_command(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(self.tools.join("bin/kubectl"));
        command
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // kubectl's discovery cache goes to $HOME/.kube/cache: the cluster's.
            .env("HOME", self.dir.path().join("home"));
        command
    }

    /// The last lines of each process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for process in &self.processes {
            let log = fs_err::read_to_string(&process.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            let _ = writeln!(
                out,
                "--- {} ({}), last {} lines:\n{}",
                process.name,
                process.log.display(),
                tail.len(),
                tail.join("\n")
            );
        }
        out
    }

    fn path(&self, relative: &str) -> String {
        self.dir.path().join(relative).display().to_string()
    }

    /// Starts the cluster's `name args…` in its directory, with a `HOME` and a `TMPDIR` of its
    /// own, its output to `<name>.log`.
    fn spawn(&mut self, name: &'static str, args: &[String]) {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("the log is created");
        // The tools first: containerd starts its runtime shim from PATH.
        let mut path = vec![self.tools.join("bin")];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let child = Command::new(self.tools.join("bin").join(name))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::join_paths(path).expect("a PATH"))
            .env("HOME", self.dir.path().join("home"))
            .env("TMPDIR", self.dir.path().join("tmp"))
            // kwok's work directory (else `~/.kwok`).
            .env("KWOK_WORKDIR", self.dir.path().join("kwok"))
            .stdin(Stdio::null())
            .stdout(
                file.try_clone()
                    .expect("the log can be shared")
                    .into_parts()
                    .0,
            )
            .stderr(file.into_parts().0)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start ({e}); run scripts/kube-tools"));
        self.processes.push(Process {
            name,
            args: args.to_vec(),
            child,
            log,
        });
    }

    /// Waits until `check` succeeds, at most `timeout`; fails with the logs when it does not, or
    /// when a process of the cluster exits.
    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match check(self) {
                Ok(()) => return Ok(()),
                Err(last) => last,
            };
            let exited = self.processes.iter_mut().find_map(|process| {
                let status = process.child.try_wait().ok().flatten()?;
                Some((process.name, status))
            });
            if let Some((name, status)) = exited {
                return Err(format!(
                    "{name} exited ({status}) while waiting for {what}\n{}",
                    self.logs()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no {what} within {timeout:?} (last: {last})\n{}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The kubeconfigs: the administrator's and the limited user's (for tests), the controller
    /// manager's and the scheduler's (their own identities, which RBAC's defaults know).
    fn write_kubeconfigs(&self) {
        for (file, context, user, cert) in [
            ("admin.kubeconfig", ADMIN_CONTEXT, "admin", "admin"),
            (
                "limited.kubeconfig",
                LIMITED_CONTEXT,
                LIMITED_USER,
                "limited",
            ),
            (
                "controller-manager.kubeconfig",
                ADMIN_CONTEXT,
                "system:kube-controller-manager",
                "controller-manager",
            ),
            (
                "scheduler.kubeconfig",
                ADMIN_CONTEXT,
                "system:kube-scheduler",
                "scheduler",
            ),
            (
                "node.kubeconfig",
                ADMIN_CONTEXT,
                &format!("system:node:{KUBELET_NODE}"),
                "node",
            ),
        ] {
            let pki = self.dir.path().join("pki");
            let inline = |name: String| {
                base64::engine::general_purpose::STANDARD
                    .encode(fs_err::read(pki.join(name)).expect("a file of the PKI"))
            };
            let text = format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: {ADMIN_CONTEXT}\n  cluster:\n    \
                 server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  \
                 user:\n    client-certificate-data: {crt}\n    client-key-data: {key}\n\
                 contexts:\n- name: {context}\n  context:\n    cluster: {ADMIN_CONTEXT}\n    \
                 user: {user}\ncurrent-context: {context}\n",
                server = self.server(),
                ca = inline("ca.crt".to_string()),
                crt = inline(format!("{cert}.crt")),
                key = inline(format!("{cert}.key")),
            );
            fs_err::write(self.dir.path().join(file), text).expect("a kubeconfig is written");
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for process in self.processes.iter_mut().rev() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// `Ok` when `out` is a success, else its stderr.
fn output_result(out: &Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The fake node: kwok's by its annotation, schedulable for ordinary Linux amd64 pods.
fn node_manifest() -> String {
    let (key, value) = KWOK_NODE_ANNOTATION
        .split_once('=')
        .expect("an annotation key=value");
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {NODE}\n  annotations:\n    \
         {key}: {value}\n  labels:\n    kubernetes.io/hostname: {NODE}\n    \
         kubernetes.io/os: linux\n    kubernetes.io/arch: amd64\n    type: kwok\n"
    )
}

/// The cluster's certificates, in `pki`: a CA (`ca`); the apiserver's serving certificate
/// (`apiserver`); client certificates for the administrator (`admin`, `system:masters`), the
/// limited user (`limited`, no group), the controller manager, the scheduler, the real node's
/// kubelet (`system:node:…`, `system:nodes`) and the apiserver's own client of kubelets; and the service accounts' RSA key pair (`sa.key`, `sa.pub`). EC P-256
/// keys for the certificates: fast to make.
fn make_pki(pki: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=op test kubernetes CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
    openssl(pki, &ca);
    let sign = |name: &str, subject: &str, ext: &str| {
        let (key, csr, crt, ext_file) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        fs_err::write(
            pki.join(&ext_file),
            format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{ext}\n"),
        )
        .expect("the extensions are written");
        let mut req = vec!["req", "-subj", subject, "-keyout", &key, "-out", &csr];
        req.extend(ec);
        openssl(pki, &req);
        openssl(
            pki,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                &ext_file,
                "-out",
                &crt,
            ],
        );
    };
    sign(
        "apiserver",
        "/CN=kube-apiserver",
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,\
         DNS:kubernetes,DNS:kubernetes.default,IP:10.96.0.1",
    );
    let node_subject = format!("/CN=system:node:{KUBELET_NODE}/O=system:nodes");
    for (name, subject) in [
        ("admin", "/CN=admin/O=system:masters"),
        ("limited", &format!("/CN={LIMITED_USER}")),
        ("controller-manager", "/CN=system:kube-controller-manager"),
        ("scheduler", "/CN=system:kube-scheduler"),
        ("node", &node_subject),
        (
            "apiserver-kubelet-client",
            "/CN=kube-apiserver-kubelet-client/O=system:masters",
        ),
    ] {
        sign(name, subject, "extendedKeyUsage=clientAuth");
    }
    openssl(
        pki,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "sa.key",
        ],
    );
    openssl(pki, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}
