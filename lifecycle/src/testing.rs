//! Helpers of the unit tests.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::buildpack::escape_id;

/// Writes buildpack `id` 1.0.0 of Buildpack API `api` in the store `store`, with
/// `bin/<executable>` running `script` under `/bin/sh`.
pub(crate) fn write_buildpack(store: &Path, id: &str, api: &str, executable: &str, script: &str) {
    let dir = store.join(escape_id(id)).join("1.0.0");
    fs_err::create_dir_all(dir.join("bin")).unwrap();
    fs_err::write(
        dir.join("buildpack.toml"),
        format!("api = \"{api}\"\n[buildpack]\nid = \"{id}\"\nversion = \"1.0.0\"\n"),
    )
    .unwrap();
    let path = dir.join("bin").join(executable);
    fs_err::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
