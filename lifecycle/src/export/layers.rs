//! The layers the exporter adds on top of the run image (`layers/*.go` of the reference
//! lifecycle), in order: buildpack launch layers, the SBOM, the app, the launcher, the launcher config,
//! the process types.

use std::path::Path;

use crate::files::Process;
use op_oci::archive::{Layer, LayerBuilder, Owner};

/// Characters a process type may not hold (it becomes a file name and a symlink).
const FORBIDDEN_IN_TYPES: &str = "/><:|&\\";

/// A directory layer: its parents as they are on disk, then the tree, owned by `uid:gid`.
pub(super) fn dir_layer(dir: &Path, uid: u64, gid: u64) -> std::io::Result<Layer> {
    let mut layer = LayerBuilder::new();
    layer.parents(dir)?;
    layer.tree(dir, &dir.display().to_string(), Owner::Fixed(uid, gid))?;
    layer.finish()
}

/// The app layer: the app directory, owned by `uid:gid`.
pub(super) fn app_layer(app_dir: &Path, uid: u64, gid: u64) -> std::io::Result<Layer> {
    let mut layer = LayerBuilder::new();
    layer.tree(
        app_dir,
        &app_dir.display().to_string(),
        Owner::Fixed(uid, gid),
    )?;
    layer.finish()
}

/// `/cnb/lifecycle/launcher`, root-owned.
pub(super) fn launcher_layer(launcher: &Path) -> std::io::Result<Layer> {
    let data = fs_err::read(launcher)?;
    let mut layer = LayerBuilder::new();
    layer.dir("/cnb", 0o755, 0, 0)?;
    layer.dir("/cnb/lifecycle", 0o755, 0, 0)?;
    layer.file("/cnb/lifecycle/launcher", &data, 0o755, 0, 0)?;
    layer.finish()
}

/// `/cnb/process/<type>` symlinks to the launcher, one per process.
pub(super) fn process_types_layer(processes: &[Process]) -> Result<Layer, String> {
    let io = |e: std::io::Error| e.to_string();
    let mut layer = LayerBuilder::new();
    layer.dir("/cnb", 0o755, 0, 0).map_err(io)?;
    layer.dir("/cnb/process", 0o755, 0, 0).map_err(io)?;
    for process in processes {
        if process.kind.contains(|c| FORBIDDEN_IN_TYPES.contains(c)) {
            return Err(format!(
                "invalid process type '{}': it may not contain '{FORBIDDEN_IN_TYPES}'",
                process.kind
            ));
        }
        layer
            .symlink(
                &format!("/cnb/process/{}", process.kind),
                "/cnb/lifecycle/launcher",
                0o755,
                0,
                0,
            )
            .map_err(io)?;
    }
    layer.finish().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(layer: &Layer) -> Vec<(String, u64, u64)> {
        tar::Archive::new(layer.tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                    e.header().gid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn process_types_become_symlinks_and_bad_names_are_refused() {
        let web = Process {
            kind: "web".into(),
            command: vec!["x".into()],
            ..Process::default()
        };
        let layer = process_types_layer(std::slice::from_ref(&web)).unwrap();
        let entries = names(&layer);
        assert_eq!(
            entries.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["/cnb", "/cnb/process", "/cnb/process/web"]
        );
        let bad = Process {
            kind: "a:b".into(),
            ..web
        };
        assert!(
            process_types_layer(&[bad])
                .unwrap_err()
                .contains("invalid process type")
        );
    }

    #[test]
    fn the_launcher_is_root_owned_and_app_files_belong_to_the_build_user() {
        let dir = tempfile::tempdir().unwrap();
        let launcher = dir.path().join("launcher");
        fs_err::write(&launcher, "binary").unwrap();
        assert!(
            names(&launcher_layer(&launcher).unwrap())
                .iter()
                .all(|(_, uid, gid)| (*uid, *gid) == (0, 0))
        );
        let app = dir.path().join("workspace");
        fs_err::create_dir_all(app.join("public")).unwrap();
        fs_err::write(app.join("public/index.html"), "hi").unwrap();
        let entries = names(&app_layer(&app, 1000, 1001).unwrap());
        assert_eq!(entries.len(), 3);
        assert!(
            entries
                .iter()
                .all(|(_, uid, gid)| (*uid, *gid) == (1000, 1001))
        );
    }
}
