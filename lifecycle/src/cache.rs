//! The volume cache (`-cache-dir`), in the reference lifecycle's format
//! (`cache/volume_cache.go`): `committed/` holds one uncompressed `<diffID>.tar` per cached layer
//! and `io.buildpacks.lifecycle.cache.metadata` (JSON). A new cache is written to `staging/`,
//! with unchanged layers hard-linked from `committed/`, then swapped in.

use std::path::{Path, PathBuf};

use crate::files::CacheMetadata;
use op_oci::archive::Layer;

const METADATA: &str = "io.buildpacks.lifecycle.cache.metadata";

/// A cache directory.
#[derive(Clone, Debug)]
pub struct VolumeCache {
    dir: PathBuf,
}

impl VolumeCache {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn committed(&self) -> PathBuf {
        self.dir.join("committed")
    }

    /// The metadata of the committed cache (empty when there is none).
    pub fn metadata(&self) -> Result<CacheMetadata, String> {
        let path = self.committed().join(METADATA);
        match fs_err::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("failed to parse {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CacheMetadata::default()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The tar of the committed layer `diff_id`.
    pub fn layer_path(&self, diff_id: &str) -> PathBuf {
        self.committed().join(format!("{diff_id}.tar"))
    }

    /// Replaces the cache with `layers` and `metadata`.
    pub fn write(&self, layers: &[&Layer], metadata: &CacheMetadata) -> std::io::Result<()> {
        let staging = self.dir.join("staging");
        if staging.exists() {
            fs_err::remove_dir_all(&staging)?;
        }
        fs_err::create_dir_all(&staging)?;
        for layer in layers {
            let target = staging.join(format!("{}.tar", layer.diff_id));
            if target.exists() {
                continue;
            }
            let committed = self.layer_path(&layer.diff_id);
            if !(committed.is_file() && fs_err::hard_link(&committed, &target).is_ok()) {
                fs_err::write(&target, &layer.tar)?;
            }
        }
        let json = serde_json::to_vec(metadata).map_err(std::io::Error::other)?;
        fs_err::write(staging.join(METADATA), json)?;
        let backup = self.dir.join("committed-backup");
        if backup.exists() {
            fs_err::remove_dir_all(&backup)?;
        }
        if self.committed().exists() {
            fs_err::rename(self.committed(), &backup)?;
        }
        fs_err::rename(&staging, self.committed())?;
        if backup.exists() {
            fs_err::remove_dir_all(&backup)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{BuildpackLayers, LayerMetadata};
    use op_oci::archive::LayerBuilder;

    fn layer(content: &str) -> Layer {
        let mut builder = LayerBuilder::new();
        builder.file("f", content.as_bytes(), 0o644, 0, 0).unwrap();
        builder.finish().unwrap()
    }

    #[test]
    fn caches_are_written_then_read_back_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VolumeCache::new(dir.path());
        assert_eq!(cache.metadata().unwrap(), CacheMetadata::default());
        let (a, b) = (layer("a"), layer("b"));
        let mut metadata = CacheMetadata::default();
        metadata.buildpacks.push(BuildpackLayers {
            key: "bp".into(),
            ..BuildpackLayers::default()
        });
        metadata.buildpacks[0].layers.insert(
            "deps".into(),
            LayerMetadata {
                sha: a.diff_id.clone(),
                cache: true,
                ..LayerMetadata::default()
            },
        );
        cache.write(&[&a], &metadata).unwrap();
        assert_eq!(cache.metadata().unwrap(), metadata);
        assert_eq!(fs_err::read(cache.layer_path(&a.diff_id)).unwrap(), a.tar);
        cache.write(&[&a, &b], &CacheMetadata::default()).unwrap();
        assert!(cache.layer_path(&b.diff_id).is_file());
        cache.write(&[&b], &CacheMetadata::default()).unwrap();
        assert!(
            !cache.layer_path(&a.diff_id).exists(),
            "layers no longer cached are dropped"
        );
        assert!(
            !dir.path().join("staging").exists() && !dir.path().join("committed-backup").exists()
        );
    }
}
