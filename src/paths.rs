//! Path helpers.

use std::path::{Component, Path, PathBuf};

/// `path` with `.` and `..` resolved lexically (no file system access, symlinks untouched), as
/// Go's `filepath.Clean` does for the paths skaffold joins.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let popped =
                    matches!(out.components().next_back(), Some(Component::Normal(_))) && out.pop();
                if !popped && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `path` relative to `base` when it is inside it (`.` for `base` itself), else `path` as it is.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    match path.strip_prefix(base) {
        Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rel) => rel.to_path_buf(),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        let cases = [
            ("/repo/./api/../web/", "/repo/web"),
            ("/repo/..", "/"),
            ("/..", "/"),
            ("a/../../b", "../b"),
            ("./", "."),
            ("/repo/api", "/repo/api"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }

    #[test]
    fn relative_paths_inside_the_base() {
        let base = Path::new("/repo");
        assert_eq!(
            relative_to(Path::new("/repo/api"), base),
            PathBuf::from("api")
        );
        assert_eq!(relative_to(Path::new("/repo"), base), PathBuf::from("."));
        assert_eq!(
            relative_to(Path::new("/other"), base),
            PathBuf::from("/other")
        );
    }
}
