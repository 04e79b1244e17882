//! `op builder base`: a minimal build and run base image made from a static busybox (Debian's
//! `busybox-static`), for hermetic tests and machines that cannot pull a real base image.
//!
//! One layer holds `/bin/busybox` with a symlink per applet it lists, `/etc/passwd` and
//! `/etc/group` with root and the CNB user, its home, `/tmp`, and an `/etc/os-release` that
//! names busybox as the distribution. The config sets `CNB_USER_ID`, `CNB_GROUP_ID`, the user
//! and the `io.buildpacks.*` labels the lifecycle reads for targets. The same files give the
//! same image digest.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use op_oci::archive::{Layer, LayerBuilder};
use serde_json::{Value, json};

use super::{Error, create::CREATED, create::DEFAULT_PATH, elf};
use crate::registry::{LayerSource, Registry, Written};

/// What the base image is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseOptions {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub stack_id: String,
}

/// A static busybox and what it says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busybox {
    pub data: Vec<u8>,
    /// e.g. `1.35.0`.
    pub version: String,
    /// Absolute paths of the applets (`/bin/sh`, `/usr/sbin/httpd`, …).
    pub applets: Vec<String>,
    /// What it runs on, from its ELF header (`amd64`, `arm64`, …).
    pub architecture: &'static str,
}

fn busybox_error(path: &Path, problem: impl Into<String>) -> Error {
    Error::Busybox {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Reads the busybox at `path`: it must be static, and it is asked for its version and applets.
pub fn read_busybox(path: &Path) -> Result<Busybox, Error> {
    let data = fs_err::read(path).map_err(|source| Error::Read { source })?;
    match elf::interpreter(&data) {
        Ok(None) => {}
        Ok(Some(interpreter)) => {
            return Err(busybox_error(
                path,
                format!("it is linked dynamically (it needs {interpreter})"),
            ));
        }
        Err(problem) => return Err(busybox_error(path, problem)),
    }
    let architecture = elf::architecture(&data).map_err(|problem| busybox_error(path, problem))?;
    let does_not_run = |e: std::io::Error| {
        let emulation = if architecture == op_oci::Platform::host().architecture {
            String::new()
        } else {
            format!(
                " (it is a linux/{architecture} executable: this machine runs it only with QEMU's binfmt_misc handler, which scripts/dev-env registers)"
            )
        };
        busybox_error(path, format!("it does not run: {e}{emulation}"))
    };
    let run = |arg: &str| -> Result<String, Error> {
        let output = Command::new(path).arg(arg).output().map_err(does_not_run)?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Ok(text)
    };
    let banner = run("--help")?;
    let version = banner
        .split_whitespace()
        .find_map(|w| {
            w.strip_prefix('v')
                .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .ok_or_else(|| busybox_error(path, "it does not say which BusyBox version it is"))?
        .to_string();
    let listed = Command::new(path)
        .arg("--list-full")
        .output()
        .map_err(does_not_run)?;
    let mut applets: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(".."))
        .map(|l| format!("/{}", l.trim_start_matches('/')))
        .collect();
    applets.sort();
    applets.dedup();
    if !applets.iter().any(|a| a == "/bin/sh") {
        return Err(busybox_error(path, "it has no `sh` applet"));
    }
    Ok(Busybox {
        data,
        version,
        applets,
        architecture,
    })
}

/// The one layer of the base image.
pub fn layer(options: &BaseOptions, busybox: &Busybox) -> Result<Layer, Error> {
    let e = |source| Error::Layer {
        what: "the base layer".into(),
        source,
    };
    let (uid, gid) = (u64::from(options.uid), u64::from(options.gid));
    let home = format!("/home/{}", options.user);
    let mut dirs: BTreeSet<String> = [
        "/bin",
        "/etc",
        "/home",
        "/root",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/local",
        "/usr/local/bin",
        "/var",
        "/var/tmp",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    for applet in &busybox.applets {
        let mut parent = Path::new(applet).parent();
        while let Some(dir) = parent.filter(|d| *d != Path::new("/")) {
            dirs.insert(dir.display().to_string());
            parent = dir.parent();
        }
    }
    let mut layer = LayerBuilder::new();
    for dir in &dirs {
        let mode = match dir.as_str() {
            "/tmp" | "/var/tmp" => 0o1777,
            "/root" => 0o700,
            _ => 0o755,
        };
        layer.dir(dir, mode, 0, 0).map_err(e)?;
    }
    layer.dir(&home, 0o755, uid, gid).map_err(e)?;
    layer
        .file("/bin/busybox", &busybox.data, 0o755, 0, 0)
        .map_err(e)?;
    for applet in busybox.applets.iter().filter(|a| *a != "/bin/busybox") {
        layer
            .symlink(applet, "/bin/busybox", 0o777, 0, 0)
            .map_err(e)?;
    }
    let user = &options.user;
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\n{user}:x:{uid}:{gid}:{user}:{home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    );
    let group = format!("root:x:0:\n{user}:x:{gid}:\nnogroup:x:65534:\n");
    let os_release = format!(
        "NAME=\"BusyBox\"\nID=busybox\nVERSION_ID=\"{v}\"\nPRETTY_NAME=\"BusyBox {v} (op builder base)\"\n",
        v = busybox.version
    );
    layer
        .file("/etc/group", group.as_bytes(), 0o644, 0, 0)
        .map_err(e)?;
    layer
        .file("/etc/os-release", os_release.as_bytes(), 0o644, 0, 0)
        .map_err(e)?;
    layer
        .file("/etc/passwd", passwd.as_bytes(), 0o644, 0, 0)
        .map_err(e)?;
    layer.finish().map_err(e)
}

/// The image config of the base image.
pub fn config(options: &BaseOptions, busybox: &Busybox, layer: &Layer) -> Value {
    json!({
        "created": CREATED,
        "architecture": busybox.architecture,
        "os": "linux",
        "config": {
            "Env": [
                format!("PATH={DEFAULT_PATH}"),
                format!("CNB_USER_ID={}", options.uid),
                format!("CNB_GROUP_ID={}", options.gid),
                format!("CNB_STACK_ID={}", options.stack_id),
            ],
            "User": format!("{}:{}", options.uid, options.gid),
            "WorkingDir": "/",
            "Labels": {
                "io.buildpacks.stack.id": options.stack_id,
                "io.buildpacks.base.distro.name": "busybox",
                "io.buildpacks.base.distro.version": busybox.version,
                "io.buildpacks.base.id": options.stack_id,
            },
        },
        "rootfs": { "type": "layers", "diff_ids": [layer.diff_id] },
        "history": [{ "created": CREATED, "created_by": format!("op builder base: busybox {}", busybox.version) }],
    })
}

/// Writes the base image to `names` (by digest only, untagged, unless `tagged`: the image of
/// one platform of an index).
pub async fn publish(
    registry: &Registry,
    names: &[String],
    layer: &Layer,
    config: &Value,
    tagged: bool,
) -> Result<Written, Error> {
    let (gzip, digest) = layer.gzip().map_err(|source| Error::Layer {
        what: "the base layer".into(),
        source,
    })?;
    Ok(registry
        .write_image_as(
            names,
            vec![LayerSource::Upload { gzip, digest }],
            config,
            false,
            tagged,
        )
        .await?)
}
