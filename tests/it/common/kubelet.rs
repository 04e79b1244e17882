//! A real node for [`TestCluster`](super::kube::TestCluster): the kubelet of `scripts/kube-tools`
//! with containerd (its CRI plugin on a socket of the node's own) and runc, as
//! `scripts/engine-tools` builds them, and Debian's CNI plugins (`bridge`, `host-local`). Pods
//! really run: their images are pulled from loopback registries (containerd speaks plain HTTP to
//! `127.0.0.1`), their containers are runc's, their logs stream.
//!
//! Everything the node makes outside its directory is the test's and goes when it is dropped:
//! a bridge (`opk<pid>-<n>`, with the node's address, `10.213.<n>.1/24`, and the pods' network
//! behind it: the kubelet refuses a loopback node address, and the bridge gives it one that no
//! other host sees), a cgroup root of its own in every hierarchy (`/op-test-kube-<pid>-<n>`, the
//! kubelet's `cgroupRoot`), the pods' network namespaces (mounted under containerd's state
//! directory), the mounts of the pods' volumes and containers, and the runtime shims with their
//! sockets, and `/var/lib/kubelet` when the node made it (the kubelet's device manager listens
//! there whatever its root directory: one real node at a time). The kubelet makes no iptables rule (`makeIPTablesUtilChains: false`), and the bridge
//! masquerades nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The real node's name.
pub const KUBELET_NODE: &str = "op-test-kubelet";

/// Where Debian's `containernetworking-plugins` puts the CNI plugins.
const CNI_BIN: &str = "/usr/lib/cni";

/// What a node runs, in `$OP_KUBE_TOOLS/bin` (`scripts/kube-tools` links containerd's and runc
/// from `scripts/engine-tools`).
pub const NODE_BINARIES: [&str; 4] = ["kubelet", "containerd", "containerd-shim-runc-v2", "runc"];

/// The CRI namespace of containerd, where the kubelet's pods live.
const CRI_NAMESPACE: &str = "k8s.io";

static NODES: AtomicU32 = AtomicU32::new(0);

/// One real node at a time on a machine: the kubelet's device manager listens on a path no flag
/// moves (`/var/lib/kubelet/device-plugins/kubelet.sock`), which a second kubelet would take.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The kubelet's fixed directory ([`ONE_AT_A_TIME`]).
const KUBELET_FIXED_DIR: &str = "/var/lib/kubelet";

/// The node's configuration and what it made on the machine; [`Drop`] removes what it made, once
/// the cluster has killed containerd and the kubelet.
pub struct Node {
    /// `<cluster>/node`.
    dir: PathBuf,
    bridge: String,
    /// `10.213.<n>`.
    prefix: String,
    cgroup: String,
    /// The cgroup hierarchies the node's cgroup root was made in.
    cgroups: Vec<PathBuf>,
    kubelet_port: u16,
    /// Whether [`KUBELET_FIXED_DIR`] was there before the node (else it goes with the node).
    fixed_dir_was_there: bool,
    /// Released last, once the node is gone.
    _exclusive: MutexGuard<'static, ()>,
}

impl Node {
    /// Makes the node's directory, configuration files, bridge and cgroup root; `ca` is the
    /// cluster's CA (the kubelet's clients), `kubeconfig` the node's identity
    /// (`system:node:<name>`), `sandbox_image` the pods' pause image.
    pub fn prepare(
        cluster_dir: &Path,
        tools: &Path,
        ca: &Path,
        kubeconfig: &Path,
        sandbox_image: &str,
    ) -> Result<Self, String> {
        for binary in NODE_BINARIES {
            if !tools.join("bin").join(binary).is_file() {
                return Err(format!(
                    "OP_KUBE_TOOLS={} holds no `bin/{binary}`; run scripts/kube-tools",
                    tools.display()
                ));
            }
        }
        for plugin in ["bridge", "host-local", "loopback"] {
            if !Path::new(CNI_BIN).join(plugin).is_file() {
                return Err(format!(
                    "{CNI_BIN}/{plugin} is missing, and a real node needs Debian's CNI plugins: \
                     run scripts/dev-env (it installs containernetworking-plugins)"
                ));
            }
        }
        let exclusive = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let n = NODES.fetch_add(1, Ordering::Relaxed) % 256;
        let pid = std::process::id();
        let dir = cluster_dir.join("node");
        let mut node = Self {
            dir: dir.clone(),
            bridge: format!("opk{}-{n}", pid % 100_000),
            prefix: format!("10.213.{n}"),
            cgroup: format!("op-test-kube-{pid}-{n}"),
            cgroups: Vec::new(),
            kubelet_port: super::registry::free_port().port(),
            fixed_dir_was_there: Path::new(KUBELET_FIXED_DIR).exists(),
            _exclusive: exclusive,
        };
        for sub in ["cni", "containerd", "kubelet", "pod-logs", "ipam", "runc"] {
            fs_err::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        node.write_cni_config()?;
        node.write_containerd_config(tools, sandbox_image)?;
        node.write_kubelet_config(ca)?;
        fs_err::copy(kubeconfig, dir.join("kubelet.kubeconfig")).map_err(|e| e.to_string())?;
        node.make_bridge()?;
        node.make_cgroup_root()?;
        Ok(node)
    }

    /// The node's address (the kubelet's `--node-ip`, on its bridge).
    pub fn address(&self) -> String {
        format!("{}.1", self.prefix)
    }

    fn path(&self, relative: &str) -> String {
        self.dir.join(relative).display().to_string()
    }

    /// containerd's socket.
    fn socket(&self) -> String {
        self.path("containerd.sock")
    }

    pub fn containerd_args(&self) -> Vec<String> {
        vec![format!("--config={}", self.path("containerd.toml"))]
    }

    pub fn kubelet_args(&self) -> Vec<String> {
        vec![
            format!("--config={}", self.path("kubelet.yaml")),
            format!("--kubeconfig={}", self.path("kubelet.kubeconfig")),
            format!("--root-dir={}", self.path("kubelet")),
            format!("--cert-dir={}", self.path("kubelet/pki")),
            format!("--hostname-override={KUBELET_NODE}"),
            format!("--node-ip={}", self.address()),
            "--v=1".to_string(),
        ]
    }

    fn write_cni_config(&self) -> Result<(), String> {
        let config = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "op-test",
            "plugins": [{
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{
                        "subnet": format!("{}.0/24", self.prefix),
                        "gateway": self.address(),
                    }]],
                    "dataDir": self.path("ipam"),
                },
            }],
        });
        fs_err::write(
            self.dir.join("cni/10-op-test.conflist"),
            serde_json::to_string_pretty(&config).expect("JSON"),
        )
        .map_err(|e| e.to_string())
    }

    /// containerd with its state, sockets, runc root and network namespaces in the node's
    /// directory, and nothing of the machine's containerd touched.
    fn write_containerd_config(&self, tools: &Path, sandbox_image: &str) -> Result<(), String> {
        let config = format!(
            r#"version = 3
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "{opt}"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{sandbox_image}"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["{cni_bin}"]
  conf_dir = "{cni_conf}"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = "{runc}"
  Root = "{runc_root}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"#,
            root = self.path("containerd/root"),
            state = self.path("containerd/state"),
            socket = self.socket(),
            opt = self.path("containerd/opt"),
            cni_bin = CNI_BIN,
            cni_conf = self.path("cni"),
            runc = tools.join("bin/runc").display(),
            runc_root = self.path("runc"),
        );
        fs_err::write(self.dir.join("containerd.toml"), config).map_err(|e| e.to_string())
    }

    /// The kubelet as the issue's facts have it on these machines (cgroup v1, swap, no
    /// iptables rules), its server on a free port of the node's address, its clients the
    /// cluster's CA's, its pods' logs in the node's directory, and eviction thresholds a busy
    /// machine does not reach.
    fn write_kubelet_config(&self, ca: &Path) -> Result<(), String> {
        let config = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {address}
port: {port}
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://{socket}
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup}
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
makeIPTablesUtilChains: false
podLogsDir: {logs}
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
  imagefs.inodesFree: 1%
nodeStatusUpdateFrequency: 2s
",
            address = self.address(),
            port = self.kubelet_port,
            ca = ca.display(),
            socket = self.socket(),
            cgroup = self.cgroup,
            logs = self.path("pod-logs"),
        );
        fs_err::write(self.dir.join("kubelet.yaml"), config).map_err(|e| e.to_string())
    }

    /// The bridge the CNI plugin attaches the pods to, made here with the node's address (the
    /// plugin takes a bridge that exists).
    fn make_bridge(&self) -> Result<(), String> {
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.address()),
            "dev",
            &self.bridge,
        ])?;
        ip(&["link", "set", &self.bridge, "up"])
    }

    /// The kubelet's cgroup root, in each hierarchy (cgroup v1) or in the unified one (v2); a
    /// v1 cpuset gets its parent's CPUs and memory nodes, as a new cpuset must.
    fn make_cgroup_root(&mut self) -> Result<(), String> {
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies: Vec<PathBuf> = if root.join("cgroup.controllers").is_file() {
            vec![root.to_path_buf()]
        } else {
            fs_err::read_dir(root)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.join("cgroup.procs").is_file())
                .collect()
        };
        for hierarchy in hierarchies {
            let dir = hierarchy.join(&self.cgroup);
            fs_err::create_dir(&dir).map_err(|e| e.to_string())?;
            self.cgroups.push(hierarchy.clone());
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(value) = fs_err::read_to_string(hierarchy.join(file)) {
                    fs_err::write(dir.join(file), value.trim()).map_err(|e| e.to_string())?;
                }
            }
            if hierarchy == root {
                let controllers = fs_err::read_to_string(root.join("cgroup.subtree_control"))
                    .map_err(|e| e.to_string())?;
                let enable: Vec<String> = controllers
                    .split_whitespace()
                    .map(|c| format!("+{c}"))
                    .collect();
                fs_err::write(dir.join("cgroup.subtree_control"), enable.join(" "))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The processes of the node that outlive containerd and the kubelet: the runtime shims
    /// (their command line names containerd's socket) and whatever runs in the node's cgroups.
    fn leftover_processes(&self) -> Vec<u32> {
        let socket = self.socket();
        let marker = format!("/{}/", self.cgroup);
        let Ok(entries) = fs_err::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
                let cmdline = fs_err::read(entry.path().join("cmdline")).unwrap_or_default();
                let shim = cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg == socket.as_bytes());
                let cgroup = fs_err::read_to_string(entry.path().join("cgroup"))
                    .is_ok_and(|cgroups| cgroups.contains(&marker));
                (shim || cgroup).then_some(pid)
            })
            .collect()
    }

    fn kill_leftovers(&self) {
        let sockets = shim_sockets(&self.leftover_processes());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.leftover_processes();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                if let Some(pid) = i32::try_from(pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // A shim that is killed leaves its socket (in /run/containerd/s, named after a hash).
        for socket in sockets {
            let _ = fs_err::remove_file(socket);
        }
    }

    /// Unmounts everything mounted under the node's directory (containers' root file systems,
    /// pods' volumes, network namespaces), deepest first.
    fn unmount_all(&self) {
        let prefix = format!("{}/", self.dir.display());
        let mountinfo = fs_err::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(unescape_mount_point)
            .filter(|point| point.starts_with(&prefix))
            .collect();
        points.sort_by_key(|point| std::cmp::Reverse(point.len()));
        points.dedup();
        for point in points {
            let _ = Command::new("umount").args(["-l", &point]).output();
        }
    }

    fn remove_cgroups(&self) {
        for hierarchy in &self.cgroups {
            let deadline = Instant::now() + Duration::from_secs(10);
            while remove_cgroup_tree(&hierarchy.join(&self.cgroup)).is_err()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// What names the node's traces on the machine, to look for them once it is gone.
    pub fn traces(&self) -> Traces {
        Traces {
            dir: self.dir.clone(),
            bridge: self.bridge.clone(),
            cgroup: self.cgroup.clone(),
            hierarchies: self.cgroups.clone(),
            fixed_dir: (!self.fixed_dir_was_there).then(|| PathBuf::from(KUBELET_FIXED_DIR)),
        }
    }

    /// The runc containers of the node's pods, by runc's own listing.
    pub fn containers(&self, runc: &Path) -> Vec<String> {
        let out = Command::new(runc)
            .args([
                "--root",
                &self.path(&format!("runc/{CRI_NAMESPACE}")),
                "list",
                "-q",
            ])
            .output();
        match out {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The names of what a node makes on the machine.
#[derive(Clone, Debug)]
pub struct Traces {
    dir: PathBuf,
    bridge: String,
    cgroup: String,
    hierarchies: Vec<PathBuf>,
    /// The kubelet's fixed directory, when the node made it.
    fixed_dir: Option<PathBuf>,
}

impl Traces {
    /// What is left of the node on the machine: processes in its cgroups or naming its
    /// directory (the shims name containerd's socket), mounts under its directory, its bridge,
    /// its cgroups, its shims' sockets.
    pub fn leftovers(&self) -> Vec<String> {
        let needle = self.dir.display().to_string();
        let marker = format!("/{}/", self.cgroup);
        let mut found = Vec::new();
        for entry in fs_err::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = fs_err::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cgroup = fs_err::read_to_string(entry.path().join("cgroup"))
                .is_ok_and(|cgroups| cgroups.contains(&marker));
            if cgroup || cmdline.contains(&needle) {
                found.push(format!("process {pid}: {cmdline}"));
            }
        }
        let mountinfo = fs_err::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        found.extend(
            mountinfo
                .lines()
                .filter_map(|line| line.split(' ').nth(4))
                .map(unescape_mount_point)
                .filter(|point| point.starts_with(&needle))
                .map(|point| format!("mount {point}")),
        );
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            found.push(format!("bridge {}", self.bridge));
        }
        for hierarchy in &self.hierarchies {
            let dir = hierarchy.join(&self.cgroup);
            if dir.exists() {
                found.push(format!("cgroup {}", dir.display()));
            }
        }
        if let Some(dir) = self.fixed_dir.as_ref().filter(|dir| dir.exists()) {
            found.push(format!("directory {}", dir.display()));
        }
        found
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_leftovers();
        self.unmount_all();
        let _ = ip(&["link", "del", &self.bridge]);
        self.remove_cgroups();
        if !self.fixed_dir_was_there {
            let _ = fs_err::remove_dir_all(KUBELET_FIXED_DIR);
        }
    }
}

/// `ip args…`, its stderr as the error.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The paths of the unix sockets the processes `pids` listen on (`/proc/net/unix`, matched by
/// the sockets' inodes).
fn shim_sockets(pids: &[u32]) -> Vec<PathBuf> {
    let mut inodes = std::collections::HashSet::new();
    for pid in pids {
        let Ok(fds) = fs_err::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs_err::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|rest| rest.strip_suffix(']'))
                {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let table = fs_err::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (inode, path) = (fields.get(6)?, fields.get(7)?);
            (inodes.contains(*inode) && path.starts_with("/run/containerd/s/"))
                .then(|| PathBuf::from(path))
        })
        .collect()
}

/// Removes a cgroup and its children, deepest first.
fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs_err::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    fs_err::remove_dir(dir)
}

/// A mount point as `/proc/self/mountinfo` escapes it (`\040` for a space, and so on).
fn unescape_mount_point(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An image of Debian's static busybox alone (`/bin/busybox`), for linux/amd64, pushed by crane
/// as `image` with `entrypoint` and `env`: the node's pause image and the tests' apps. Its
/// digest.
pub fn busybox_image(dir: &Path, image: &str, entrypoint: &[&str], env: &[(&str, &str)]) -> String {
    let crane = super::cnb::crane();
    let layer = dir.join("busybox-layer.tar");
    if !layer.is_file() {
        let busybox = fs_err::read("/bin/busybox").expect("Debian's busybox-static, /bin/busybox");
        let mut tar = tar::Builder::new(fs_err::File::create(&layer).expect("a layer file"));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, "bin/", std::io::empty())
            .expect("the layer is written");
        let mut header = tar::Header::new_gnu();
        header.set_size(busybox.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, "bin/busybox", busybox.as_slice())
            .expect("the layer is written");
        tar.into_inner()
            .expect("the layer is written")
            .sync_all()
            .expect("the layer is written");
    }
    let run = |args: &[String]| {
        let out = Command::new(&crane)
            .args(args)
            .output()
            .expect("crane runs");
        assert!(
            out.status.success(),
            "crane {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let layer = layer.display().to_string();
    run(&[
        "append".into(),
        "-f".into(),
        layer,
        "-t".into(),
        image.into(),
    ]);
    let mut mutate: Vec<String> = vec![
        "mutate".into(),
        image.into(),
        "--set-platform".into(),
        "linux/amd64".into(),
        "--entrypoint".into(),
        entrypoint.join(","),
        "-t".into(),
        image.into(),
    ];
    for (key, value) in env {
        mutate.extend(["-e".into(), format!("{key}={value}")]);
    }
    run(&mutate);
    run(&["digest".into(), image.into()])
}
