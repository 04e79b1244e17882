//! RESTORING: `store.toml` and layer metadata from the previous image, and cached layers from the
//! volume cache (spec buildpack.md "Layer Types").
//!
//! | layer | restored |
//! | --- | --- |
//! | `launch = true`, `cache = false` | `<layer>.toml` (metadata only) from the previous image |
//! | `cache = true` | `<layer>.toml` (metadata only) and the contents, from the cache |
//! | `build = true`, `cache = false` | nothing |
//!
//! Restored `<layer>.toml` files hold no `[types]`: a buildpack keeps a layer by setting them
//! again. `store.toml` is restored even with `-skip-restore`.

use std::path::Path;

use crate::buildpack::escape_id;
use crate::cache::VolumeCache;
use crate::exit::{self, Error};
use crate::files::{self, CacheMetadata, GroupElement, LayerMetadata, LayerToml, LayersMetadata};
use crate::log;
use op_oci::archive;

/// Restores for every buildpack of `group`.
pub fn restore(
    layers_dir: &Path,
    group: &[GroupElement],
    previous: Option<&LayersMetadata>,
    cache: Option<(&VolumeCache, &CacheMetadata)>,
    skip_restore: bool,
) -> Result<(), Error> {
    let fail = |what: String| Error::new(exit::RESTORE_ERROR, what);
    for element in group {
        let bp_dir = layers_dir.join(escape_id(&element.id));
        fs_err::create_dir_all(&bp_dir).map_err(|e| fail(e.to_string()))?;
        let previous_layers = previous.and_then(|p| p.buildpack(&element.id));
        if let Some(store) = previous_layers.and_then(|p| p.store.as_ref()) {
            files::write_toml(&bp_dir.join("store.toml"), store).map_err(fail)?;
        }
        if skip_restore {
            continue;
        }
        for (name, layer) in previous_layers.iter().flat_map(|p| p.layers.iter()) {
            if layer.launch && !layer.cache {
                write_layer_metadata(&bp_dir, name, layer).map_err(fail)?;
            }
        }
        let Some((cache, metadata)) = cache else {
            continue;
        };
        for (name, layer) in metadata
            .buildpack(&element.id)
            .iter()
            .flat_map(|b| b.layers.iter())
        {
            if !layer.cache {
                continue;
            }
            let tar = cache.layer_path(&layer.sha);
            let Ok(data) = fs_err::read(&tar) else {
                log::warn(&format!(
                    "Skipping restore for layer {}:{name}: {} is missing from the cache",
                    element.id, layer.sha
                ));
                continue;
            };
            log::info(&format!(
                "Restoring data for \"{}:{name}\" from cache",
                element.id
            ));
            archive::extract(&data, Path::new("/"))
                .map_err(|e| fail(format!("failed to restore {}:{name}: {e}", element.id)))?;
            write_layer_metadata(&bp_dir, name, layer).map_err(fail)?;
        }
    }
    Ok(())
}

fn write_layer_metadata(bp_dir: &Path, name: &str, layer: &LayerMetadata) -> Result<(), String> {
    let metadata = match toml::Value::try_from(files::without_nulls(&layer.data)) {
        Ok(toml::Value::Table(table)) => table,
        _ => toml::Table::new(),
    };
    files::write_toml(
        &bp_dir.join(format!("{name}.toml")),
        &LayerToml {
            types: None,
            metadata,
        },
    )?;
    fs_err::write(bp_dir.join(format!("{name}.sha")), &layer.sha).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{BuildpackLayers, StoreToml};
    use op_oci::archive::{LayerBuilder, Owner};

    struct Fixture {
        _dir: tempfile::TempDir,
        layers: std::path::PathBuf,
        cache: VolumeCache,
        previous: LayersMetadata,
        group: [GroupElement; 1],
    }

    fn layer_metadata(sha: &str, build: bool, launch: bool, cache: bool) -> LayerMetadata {
        LayerMetadata {
            sha: sha.into(),
            data: serde_json::json!({"version": "1.2"}),
            build,
            launch,
            cache,
        }
    }

    /// A cache with the layer `deps` and a previous image with `runtime` (launch) and `tools`
    /// (build) of buildpack `example/bp`.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layers = dir.path().join("layers");
        let deps = layers.join("example_bp/deps");
        fs_err::create_dir_all(&deps).unwrap();
        fs_err::write(deps.join("lib.so"), "cached bytes").unwrap();
        let mut builder = LayerBuilder::new();
        builder
            .tree(&deps, &deps.display().to_string(), Owner::AsOnDisk)
            .unwrap();
        let cached = builder.finish().unwrap();
        fs_err::remove_dir_all(&layers).unwrap();

        let cache = VolumeCache::new(&dir.path().join("cache"));
        let mut bp = BuildpackLayers {
            key: "example/bp".into(),
            ..BuildpackLayers::default()
        };
        bp.layers.insert(
            "deps".into(),
            layer_metadata(&cached.diff_id, false, false, true),
        );
        cache
            .write(
                &[&cached],
                &CacheMetadata {
                    buildpacks: vec![bp],
                },
            )
            .unwrap();

        let mut prev_bp = BuildpackLayers {
            key: "example/bp".into(),
            ..BuildpackLayers::default()
        };
        prev_bp.store = Some(StoreToml {
            metadata: toml::from_str("builds = 3").unwrap(),
        });
        prev_bp.layers.insert(
            "runtime".into(),
            layer_metadata("sha256:r", false, true, false),
        );
        prev_bp.layers.insert(
            "tools".into(),
            layer_metadata("sha256:t", true, false, false),
        );
        let previous = LayersMetadata {
            buildpacks: vec![prev_bp],
            ..LayersMetadata::default()
        };
        let group = [GroupElement {
            id: "example/bp".into(),
            version: "1".into(),
            api: "0.10".into(),
            homepage: None,
        }];
        Fixture {
            _dir: dir,
            layers,
            cache,
            previous,
            group,
        }
    }

    #[test]
    fn restores_store_metadata_and_cached_contents() {
        let f = fixture();
        let cache_meta = f.cache.metadata().unwrap();
        restore(
            &f.layers,
            &f.group,
            Some(&f.previous),
            Some((&f.cache, &cache_meta)),
            false,
        )
        .unwrap();
        let bp_dir = f.layers.join("example_bp");
        assert_eq!(
            fs_err::read_to_string(bp_dir.join("deps/lib.so")).unwrap(),
            "cached bytes"
        );
        let deps: LayerToml = files::read_toml(&bp_dir.join("deps.toml"))
            .unwrap()
            .unwrap();
        assert_eq!(deps.types, None, "restored metadata holds no types");
        assert_eq!(deps.metadata["version"].as_str(), Some("1.2"));
        assert_eq!(
            fs_err::read_to_string(bp_dir.join("deps.sha")).unwrap(),
            cache_meta.buildpacks[0].layers["deps"].sha
        );
        assert!(
            bp_dir.join("runtime.toml").is_file(),
            "launch-only metadata comes from the previous image"
        );
        assert!(!bp_dir.join("runtime").exists(), "but not its contents");
        assert!(
            !bp_dir.join("tools.toml").exists(),
            "build-only layers are not restored"
        );
        assert!(
            fs_err::read_to_string(bp_dir.join("store.toml"))
                .unwrap()
                .contains("builds = 3")
        );
    }

    #[test]
    fn skip_restore_keeps_only_the_store() {
        let f = fixture();
        let cache_meta = f.cache.metadata().unwrap();
        restore(
            &f.layers,
            &f.group,
            Some(&f.previous),
            Some((&f.cache, &cache_meta)),
            true,
        )
        .unwrap();
        let bp_dir = f.layers.join("example_bp");
        assert!(
            bp_dir.join("store.toml").is_file(),
            "store.toml even with -skip-restore"
        );
        assert!(!bp_dir.join("deps").exists() && !bp_dir.join("runtime.toml").exists());
    }
}
