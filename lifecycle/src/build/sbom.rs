//! Buildpack SBOMs (Platform API 0.8 and later): a buildpack writes `<layer>.sbom.<format>.json`
//! beside a layer's `<layer>.toml`, or `launch.sbom.<format>.json` / `build.sbom.<format>.json`
//! for the image or the build as a whole, in `CycloneDX` (`cdx`), SPDX (`spdx`) or Syft (`syft`)
//! JSON, of the media types its `buildpack.toml` declares in `[buildpack] sbom-formats`. Once
//! every buildpack built, each file is copied to
//! `<layers>/sbom/<launch|build|cache>/<buildpack id, / as _>/[<layer>/]sbom.<format>.json`:
//! a launch layer's to `launch`, any other layer's to `build`, and a cache layer's to `cache`
//! as well (`buildpack/bomfile.go` and `phase/builder.go` of the reference). The exporter makes
//! the image's SBOM layer of `<layers>/sbom/launch`.

use std::path::{Path, PathBuf};

use crate::buildpack::escape_id;
use crate::exit::{self, Error};
use crate::files::LayerToml;

/// Where an SBOM file is copied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Build,
    Cache,
    Launch,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Cache => "cache",
            Kind::Launch => "launch",
        }
    }
}

/// An SBOM file a buildpack wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct File {
    buildpack: String,
    /// Empty for `launch.sbom.*` and `build.sbom.*`.
    layer: String,
    kind: Kind,
    path: PathBuf,
}

/// The formats, by file name suffix and media type.
const FORMATS: [(&str, &str); 3] = [
    ("sbom.cdx.json", "application/vnd.cyclonedx+json"),
    ("sbom.spdx.json", "application/spdx+json"),
    ("sbom.syft.json", "application/vnd.syft+json"),
];

/// The media type and the name in `<layers>/sbom` of an SBOM file, by its name.
fn format_of(path: &Path) -> Option<(&'static str, &'static str)> {
    let name = path.file_name()?.to_str()?;
    FORMATS
        .iter()
        .find(|(suffix, _)| name.ends_with(&format!(".{suffix}")))
        .map(|(suffix, media_type)| (*media_type, *suffix))
}

/// The SBOM files buildpack `id` wrote in `layers_dir` (whose layers are `layers`), in name
/// order, checked against the media types it declared (`declared`, media types that may carry
/// parameters).
pub(super) fn find(
    id: &str,
    layers_dir: &Path,
    layers: &[(PathBuf, LayerToml)],
    declared: &[String],
) -> Result<Vec<File>, Error> {
    let fail = |what: String| Error::new(exit::BUILD_ERROR, what);
    let mut paths: Vec<PathBuf> = match fs_err::read_dir(layers_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(matches_glob)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(fail(e.to_string())),
    };
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let layer = name.split('.').next().unwrap_or_default().to_string();
        let file = |layer: &str, kind| File {
            buildpack: id.to_string(),
            layer: layer.to_string(),
            kind,
            path: path.clone(),
        };
        match layer.as_str() {
            "launch" => files.push(file("", Kind::Launch)),
            "build" => files.push(file("", Kind::Build)),
            _ => {
                let Some((_, toml)) = layers.iter().find(|(p, _)| *p == layers_dir.join(&layer))
                else {
                    continue;
                };
                let types = toml.types();
                files.push(file(
                    &layer,
                    if types.launch {
                        Kind::Launch
                    } else {
                        Kind::Build
                    },
                ));
                if types.cache {
                    files.push(file(&layer, Kind::Cache));
                }
            }
        }
    }
    for file in &files {
        let Some((media_type, _)) = format_of(&file.path) else {
            return Err(fail(format!(
                "unsupported SBOM file format: '{}'",
                file.path.display()
            )));
        };
        let is_declared = declared
            .iter()
            .any(|d| d.split(';').next().unwrap_or_default().trim() == media_type);
        if !is_declared {
            return Err(fail(format!(
                "validating SBOM file '{}' for buildpack: '{id}': undeclared SBOM media type: '{media_type}'",
                file.path.display()
            )));
        }
    }
    Ok(files)
}

/// Whether a file name matches the reference's glob `*.sbom.*.json`.
fn matches_glob(name: &str) -> bool {
    name.strip_suffix(".json")
        .and_then(|rest| rest.find(".sbom.").map(|i| (rest, i)))
        .is_some_and(|(rest, i)| i + ".sbom.".len() <= rest.len())
}

/// Copies `files` into `<layers>/sbom/…`.
pub(super) fn copy(layers_dir: &Path, files: &[File]) -> Result<(), Error> {
    let fail = |what: String| Error::new(exit::BUILD_ERROR, what);
    for file in files {
        let (_, name) = format_of(&file.path).ok_or_else(|| {
            fail(format!(
                "unsupported SBOM format: '{}'",
                file.path.display()
            ))
        })?;
        let mut dir = layers_dir
            .join("sbom")
            .join(file.kind.dir())
            .join(escape_id(&file.buildpack));
        if !file.layer.is_empty() {
            dir.push(&file.layer);
        }
        fs_err::create_dir_all(&dir)
            .and_then(|()| fs_err::copy(&file.path, dir.join(name)).map(|_| ()))
            .map_err(|e| fail(format!("failed to copy an SBOM file: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(types: &str) -> LayerToml {
        toml::from_str(&format!("[types]\n{types}\n")).unwrap()
    }

    #[test]
    fn sbom_files_go_where_their_layer_s_types_say_and_must_be_declared() {
        let dir = tempfile::tempdir().unwrap();
        let bp = dir.path().join("my_bp");
        fs_err::create_dir_all(&bp).unwrap();
        for name in [
            "deps.sbom.cdx.json",
            "tools.sbom.spdx.json",
            "launch.sbom.cdx.json",
            "gone.sbom.cdx.json",
            "notes.json",
        ] {
            fs_err::write(bp.join(name), name).unwrap();
        }
        let layers = vec![
            (bp.join("deps"), layer("launch = true\ncache = true")),
            (bp.join("tools"), layer("build = true")),
        ];
        let declared = vec![
            "application/vnd.cyclonedx+json".to_string(),
            "application/spdx+json; version=2.3".to_string(),
        ];
        let files = find("my/bp", &bp, &layers, &declared).unwrap();
        let kinds: Vec<(&str, Kind)> = files.iter().map(|f| (f.layer.as_str(), f.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("deps", Kind::Launch),
                ("deps", Kind::Cache),
                ("", Kind::Launch),
                ("tools", Kind::Build)
            ],
            "a file of no layer (`gone`) is left out"
        );
        copy(dir.path(), &files).unwrap();
        for (path, content) in [
            ("sbom/launch/my_bp/deps/sbom.cdx.json", "deps.sbom.cdx.json"),
            ("sbom/cache/my_bp/deps/sbom.cdx.json", "deps.sbom.cdx.json"),
            ("sbom/launch/my_bp/sbom.cdx.json", "launch.sbom.cdx.json"),
            (
                "sbom/build/my_bp/tools/sbom.spdx.json",
                "tools.sbom.spdx.json",
            ),
        ] {
            assert_eq!(
                fs_err::read_to_string(dir.path().join(path)).unwrap(),
                content
            );
        }

        let error = find("my/bp", &bp, &layers, &declared[..1]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("undeclared SBOM media type: 'application/spdx+json'"),
            "{error}"
        );
        fs_err::write(bp.join("deps.sbom.xml.json"), "x").unwrap();
        let error = find("my/bp", &bp, &layers, &declared).unwrap_err();
        assert!(
            error.to_string().contains("unsupported SBOM file format"),
            "{error}"
        );
    }
}
