//! The caches of the build.
//!
//! - The volume cache (`-cache-dir`), in the reference lifecycle's format
//!   (`cache/volume_cache.go`): `committed/` holds one uncompressed `<diffID>.tar` per cached
//!   layer and `io.buildpacks.lifecycle.cache.metadata` (JSON). A new cache is written to
//!   `staging/`, with unchanged layers hard-linked from `committed/`, then swapped in.
//! - The image cache (`-cache-image`), in the reference's format (`cache/image_cache.go`): an
//!   image whose layers are the cached layers, found by their diffIDs (`rootfs.diff_ids`), with
//!   the cache metadata in its `io.buildpacks.lifecycle.cache.metadata` label. It is pulled into
//!   a volume cache in a temporary directory before the restore, and that directory is published
//!   as the image after the export, so the phases know one cache.

use std::path::{Path, PathBuf};

use op_oci::archive::Layer;

use crate::files::CacheMetadata;

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

/// The image cache: a volume cache in a temporary directory, pulled from and pushed to an
/// image.
pub struct ImageCache {
    reference: String,
    local: VolumeCache,
    _dir: tempfile::TempDir,
}

impl ImageCache {
    /// Pulls `reference` (an empty cache when the registry has no such image).
    pub async fn pull(registry: &op_oci::Registry, reference: &str) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("cache-image-")
            .tempdir()
            .map_err(|e| format!("failed to make a directory for the cache image: {e}"))?;
        let local = VolumeCache::new(dir.path());
        let cache = Self {
            reference: reference.to_string(),
            local,
            _dir: dir,
        };
        let Some(image) = registry
            .image(reference)
            .await
            .map_err(|e| format!("failed to read cache image {reference}: {e}"))?
        else {
            return Ok(cache);
        };
        let metadata: CacheMetadata = match image.label(METADATA) {
            Some(json) => serde_json::from_str(json).map_err(|e| {
                format!("failed to parse the metadata of cache image {reference}: {e}")
            })?,
            None => CacheMetadata::default(),
        };
        let mut layers = Vec::new();
        for (descriptor, diff_id) in image.layers().iter().zip(image.diff_ids()) {
            let gzip = registry
                .blob(reference, &descriptor.digest)
                .await
                .map_err(|e| {
                    format!("failed to read layer {diff_id} of cache image {reference}: {e}")
                })?;
            let tar = op_oci::archive::gunzip(&gzip).map_err(|e| e.to_string())?;
            if op_oci::sha256(&tar) != diff_id {
                return Err(format!(
                    "layer {} of cache image {reference} does not have the diffID {diff_id}",
                    descriptor.digest
                ));
            }
            layers.push(Layer { tar, diff_id });
        }
        let refs: Vec<&Layer> = layers.iter().collect();
        cache
            .local
            .write(&refs, &metadata)
            .map_err(|e| format!("failed to keep cache image {reference}: {e}"))?;
        Ok(cache)
    }

    /// The cache as the phases read and write it.
    pub fn local(&self) -> &VolumeCache {
        &self.local
    }

    /// Publishes the local cache as the image: a layer per cached diffID, the metadata label.
    pub async fn push(&self, registry: &op_oci::Registry) -> Result<(), String> {
        let metadata = self.local.metadata()?;
        let mut diff_ids: Vec<String> = metadata
            .buildpacks
            .iter()
            .flat_map(|b| b.layers.values())
            .filter(|l| l.cache && !l.sha.is_empty())
            .map(|l| l.sha.clone())
            .collect();
        diff_ids.sort();
        diff_ids.dedup();
        let mut sources = Vec::new();
        for diff_id in &diff_ids {
            let tar = fs_err::read(self.local.layer_path(diff_id)).map_err(|e| e.to_string())?;
            let (gzip, digest) = Layer {
                tar,
                diff_id: diff_id.clone(),
            }
            .gzip()
            .map_err(|e| e.to_string())?;
            sources.push(op_oci::LayerSource::Upload { gzip, digest });
        }
        let op_oci::Platform {
            os, architecture, ..
        } = op_oci::Platform::host();
        let label = serde_json::to_string(&metadata).map_err(|e| e.to_string())?;
        let config = serde_json::json!({
            "architecture": architecture,
            "os": os,
            "config": {"Labels": {METADATA: label}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        registry
            .write_image(
                std::slice::from_ref(&self.reference),
                sources,
                &config,
                false,
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("failed to write cache image {}: {e}", self.reference))
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
