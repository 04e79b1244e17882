//! Running as root only as long as needed (`priv/` of the reference lifecycle): the creator
//! starts as root, makes the layers and cache directories belong to the build user, then becomes
//! that user (supplementary groups, gid, uid) before any buildpack runs. `HOME` and `USER` come
//! from `/etc/passwd`, which must have the user.

use std::path::Path;

use nix::unistd::{Gid, Uid, geteuid, setgroups, setresgid, setresuid};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    geteuid().is_root()
}

/// Makes every existing path of `paths` (recursively) owned by `uid:gid`, unless that user can
/// already write to it (it owns it, or it is group-writable for `gid`, or world-writable).
pub fn ensure_owner(uid: u32, gid: u32, paths: &[&Path]) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    for path in paths {
        let meta = match fs_err::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let can_write = meta.uid() == uid
            || (meta.gid() == gid && meta.mode() & 0o020 != 0)
            || meta.mode() & 0o002 != 0;
        if !can_write {
            chown_recursive(path, uid, gid)?;
        }
    }
    Ok(())
}

fn chown_recursive(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if fs_err::symlink_metadata(path)?.is_dir() {
        for entry in fs_err::read_dir(path)? {
            chown_recursive(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Becomes `uid:gid` for good (no way back to root).
pub fn run_as(uid: u32, gid: u32) -> Result<(), String> {
    if Uid::current().as_raw() == uid && Gid::current().as_raw() == gid {
        return Ok(());
    }
    let gid = Gid::from_raw(gid);
    let uid = Uid::from_raw(uid);
    setgroups(&[gid]).map_err(|e| format!("failed to set the groups: {e}"))?;
    setresgid(gid, gid, gid).map_err(|e| format!("failed to set the group to {gid}: {e}"))?;
    setresuid(uid, uid, uid).map_err(|e| format!("failed to set the user to {uid}: {e}"))
}

/// The home directory and name of `uid`, from `passwd` (an `/etc/passwd` file).
pub fn user(uid: u32, passwd: &Path) -> Result<(String, String), String> {
    let text =
        fs_err::read_to_string(passwd).map_err(|e| format!("failed to look up user {uid}: {e}"))?;
    text.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 6 && fields[2].parse::<u32>().ok() == Some(uid))
                .then(|| (fields[5].to_string(), fields[0].to_string()))
        })
        .ok_or_else(|| {
            format!(
                "failed to look up user {uid}: {} has no such user",
                passwd.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_come_from_passwd() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        fs_err::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:CNB:/home/cnb:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(
            user(1000, &passwd).unwrap(),
            ("/home/cnb".to_string(), "cnb".to_string())
        );
        assert!(user(1001, &passwd).unwrap_err().contains("no such user"));
    }

    #[test]
    fn paths_the_user_can_write_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let current = (Uid::current().as_raw(), Gid::current().as_raw());
        // The owner may write: nothing to do (and no privilege needed).
        ensure_owner(
            current.0,
            current.1,
            &[dir.path(), &dir.path().join("missing")],
        )
        .unwrap();
    }
}
