//! Deterministic tar layers: the same files always give the same bytes, hence the same diffID,
//! which is what lets an unchanged layer be reused instead of uploaded again.
//!
//! The entries are those the reference lifecycle (Go's `archive/tar`) writes: POSIX ustar
//! headers (a GNU long name only for a path ustar cannot hold, where Go writes a PAX record),
//! absolute paths, the modification time 1980-01-01T00:00:01Z, empty user and group names, and
//! the owner the caller chooses. Directories are walked in name order. The same files give the
//! same bytes as the reference's, so op-lifecycle and the reference lifecycle agree on diffIDs.

use std::io::{Read as _, Write as _};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::sha256;

/// 1980-01-01T00:00:01Z, the modification time of every entry.
pub const NORMALIZED_MTIME: u64 = 315_532_801;

/// Who owns the entries of a tree added to a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The owner on disk.
    AsOnDisk,
    /// This uid and gid.
    Fixed(u64, u64),
}

/// An uncompressed layer and its diffID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub tar: Vec<u8>,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
}

impl Layer {
    /// The gzip-compressed layer and its digest (deterministic: no timestamp, no name).
    pub fn gzip(&self) -> std::io::Result<(Vec<u8>, String)> {
        let mut encoder =
            GzEncoder::new(Vec::with_capacity(self.tar.len() / 2), Compression::fast());
        encoder.write_all(&self.tar)?;
        let compressed = encoder.finish()?;
        let digest = sha256(&compressed);
        Ok((compressed, digest))
    }
}

/// Builds a layer entry by entry.
pub struct LayerBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether ustar's 100-byte name and 155-byte prefix hold `path` (split at a `/`).
fn fits_ustar(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.len() <= 100 {
        return true;
    }
    // The longest prefix that fits, as Go's splitUSTARPath chooses it.
    let searched = &bytes[..bytes.len().min(156)];
    match searched.iter().rposition(|b| *b == b'/') {
        Some(i) if i > 0 => bytes.len() - i - 1 <= 100 && bytes.len() - i - 1 > 0,
        _ => false,
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.preserve_absolute(true);
        Self { builder }
    }

    /// A ustar header (with the device numbers Go writes), or a GNU one for a path or link
    /// target that ustar cannot hold.
    fn header(
        path: &str,
        link: Option<&str>,
        kind: tar::EntryType,
        mode: u32,
        uid: u64,
        gid: u64,
        size: u64,
    ) -> tar::Header {
        let ustar = fits_ustar(path) && link.is_none_or(|l| l.len() <= 100);
        let mut header = if ustar {
            let mut header = tar::Header::new_ustar();
            let _ = header.set_device_major(0);
            let _ = header.set_device_minor(0);
            header
        } else {
            tar::Header::new_gnu()
        };
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_size(size);
        header.set_mtime(NORMALIZED_MTIME);
        // Empty user and group names: only the ids count.
        let _ = header.set_username("");
        let _ = header.set_groupname("");
        header
    }

    /// `path` as an entry's name: absolute.
    fn name(path: &str) -> String {
        format!("/{}", path.trim_start_matches('/'))
    }

    /// Appends an entry. A ustar header gets its name, link and checksum here, the checksum as
    /// Go writes it (six octal digits, NUL, space); a GNU one gets them from the tar crate,
    /// with a long-name entry first.
    fn append(
        &mut self,
        mut header: tar::Header,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> std::io::Result<()> {
        if header.as_ustar().is_none() {
            return match link {
                Some(target) => self.builder.append_link(&mut header, name, target),
                None => self.builder.append_data(&mut header, name, data),
            };
        }
        header.set_path_absolute(name)?;
        if let Some(target) = link {
            header.set_link_name(target)?;
        }
        header.set_cksum();
        let cksum = header.cksum()?;
        header.as_mut_bytes()[148..156].copy_from_slice(format!("{cksum:06o}\0 ").as_bytes());
        self.builder.append(&header, data)
    }

    /// A directory entry.
    pub fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> std::io::Result<()> {
        let name = Self::name(path);
        let header = Self::header(&name, None, tar::EntryType::Directory, mode, uid, gid, 0);
        self.append(header, &name, None, &[])
    }

    /// A regular file.
    pub fn file(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> std::io::Result<()> {
        let name = Self::name(path);
        let size = data.len() as u64;
        let header = Self::header(&name, None, tar::EntryType::Regular, mode, uid, gid, size);
        self.append(header, &name, None, data)
    }

    /// A symbolic link to `target`, with `mode` (0777 as on disk; the reference lifecycle
    /// writes its process-type links 0755).
    pub fn symlink(
        &mut self,
        path: &str,
        target: &str,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> std::io::Result<()> {
        let name = Self::name(path);
        let header = Self::header(
            &name,
            Some(target),
            tar::EntryType::Symlink,
            mode,
            uid,
            gid,
            0,
        );
        self.append(header, &name, Some(target), &[])
    }

    /// The directories above `path` (not `/`), as they are on disk, outermost first.
    pub fn parents(&mut self, path: &Path) -> std::io::Result<()> {
        let mut ancestors: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .filter(|p| p.parent().is_some())
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            let meta = fs_err::metadata(dir)?;
            let (uid, gid) = owner_of(&meta);
            self.dir(&dir.display().to_string(), mode_of(&meta), uid, gid)?;
        }
        Ok(())
    }

    /// The tree at `source` (itself included), stored at `at`, in name order. Sockets and other
    /// special files are left out; hard links become separate files.
    pub fn tree(&mut self, source: &Path, at: &str, owner: Owner) -> std::io::Result<()> {
        let meta = fs_err::symlink_metadata(source)?;
        let (uid, gid) = match owner {
            Owner::AsOnDisk => owner_of(&meta),
            Owner::Fixed(uid, gid) => (uid, gid),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs_err::read_link(source)?;
            self.symlink(at, &target.display().to_string(), 0o777, uid, gid)
        } else if kind.is_dir() {
            self.dir(at, mode_of(&meta), uid, gid)?;
            let mut names: Vec<_> = fs_err::read_dir(source)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            for name in names {
                let child = format!("{}/{}", at.trim_end_matches('/'), name.to_string_lossy());
                self.tree(&source.join(&name), &child, owner)?;
            }
            Ok(())
        } else if kind.is_file() {
            let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
            fs_err::File::open(source)?.read_to_end(&mut data)?;
            self.file(at, &data, mode_of(&meta), uid, gid)
        } else {
            Ok(())
        }
    }

    /// The finished layer.
    pub fn finish(self) -> std::io::Result<Layer> {
        let tar = self.builder.into_inner()?;
        let diff_id = sha256(&tar);
        Ok(Layer { tar, diff_id })
    }
}

fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o7777
}

fn owner_of(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (u64::from(meta.uid()), u64::from(meta.gid()))
}

/// Extracts an uncompressed layer under `root` (paths in the layer, absolute or not, are
/// relative to it), keeping modes; the files belong to whoever runs this.
pub fn extract(tar: &[u8], root: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive.set_preserve_mtime(true);
    archive.unpack(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_layer(dir: &Path, owner: Owner) -> Layer {
        let mut layer = LayerBuilder::new();
        layer.tree(dir, &dir.display().to_string(), owner).unwrap();
        layer.finish().unwrap()
    }

    #[test]
    fn the_same_files_give_the_same_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("layer");
        fs_err::create_dir_all(root.join("bin")).unwrap();
        fs_err::write(root.join("bin/tool"), "#!/bin/sh\necho hi\n").unwrap();
        fs_err::write(root.join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("bin/tool", root.join("link")).unwrap();
        let first = tree_layer(&root, Owner::Fixed(1000, 1000));
        // Touching files changes their mtime on disk, not the layer.
        fs_err::write(root.join("a.txt"), "a").unwrap();
        let second = tree_layer(&root, Owner::Fixed(1000, 1000));
        assert_eq!(first, second);
        assert!(first.diff_id.starts_with("sha256:"));
        fs_err::write(root.join("a.txt"), "changed").unwrap();
        assert_ne!(
            tree_layer(&root, Owner::Fixed(1000, 1000)).diff_id,
            first.diff_id
        );
        assert_eq!(
            first.gzip().unwrap(),
            first.gzip().unwrap(),
            "compression is deterministic too"
        );
    }

    #[test]
    fn entries_carry_the_chosen_owner_and_the_normalized_time() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("f"), "x").unwrap();
        let layer = tree_layer(dir.path(), Owner::Fixed(1001, 1002));
        let mut archive = tar::Archive::new(layer.tar.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (1001, 1002));
            assert_eq!(header.mtime().unwrap(), NORMALIZED_MTIME);
            assert_eq!(header.username().unwrap(), Some(""));
            names.push(entry.path().unwrap().display().to_string());
        }
        let base = dir.path().display().to_string();
        assert_eq!(names, [base.clone(), format!("{base}/f")]);
    }

    /// The bytes Go's `archive/tar` writes for a directory and a file (the reference
    /// lifecycle's app layer of `fixtures/apps/greeting`): ustar, absolute names, zero device
    /// numbers.
    #[test]
    fn entries_are_the_bytes_the_reference_lifecycle_writes() {
        let mut layer = LayerBuilder::new();
        layer.dir("/workspace", 0o755, 1000, 1000).unwrap();
        let greeting = b"Hello from the greeting fixture";
        layer
            .file("/workspace/greeting.txt", greeting, 0o644, 1000, 1000)
            .unwrap();
        let layer = layer.finish().unwrap();
        assert_eq!(
            layer.diff_id,
            "sha256:58135dd2daeb10c0c3a032d8d3d9985c0fd4f4936ab86c21cefa155d05dc5859",
            "the diffID of the reference's layer"
        );
        let header = &layer.tar[..512];
        assert_eq!(&header[..11], b"/workspace\0");
        assert_eq!(&header[257..265], b"ustar\x0000");
        assert_eq!(&header[329..345], b"0000000\x000000000\x00");
        assert_eq!(&header[148..156], b"011265\x00 ", "Go's checksum field");
    }

    #[test]
    fn paths_ustar_cannot_hold_get_a_gnu_long_name() {
        let long = format!("/layers/{}/file", "d".repeat(200));
        assert!(!fits_ustar(&long));
        assert!(fits_ustar(&format!("/layers/{}/file", "d".repeat(120))));
        let mut layer = LayerBuilder::new();
        layer.file(&long, b"x", 0o644, 0, 0).unwrap();
        let layer = layer.finish().unwrap();
        let mut archive = tar::Archive::new(layer.tar.as_slice());
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().display().to_string(), long);
    }

    #[test]
    fn layers_extract_back_to_their_paths() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mut layer = LayerBuilder::new();
        layer.dir("x", 0o755, 0, 0).unwrap();
        layer.file("x/run.sh", b"echo", 0o755, 0, 0).unwrap();
        layer.symlink("x/link", "run.sh", 0o777, 0, 0).unwrap();
        let layer = layer.finish().unwrap();
        extract(&layer.tar, dir.path()).unwrap();
        assert_eq!(
            fs_err::read_to_string(dir.path().join("x/run.sh")).unwrap(),
            "echo"
        );
        assert_eq!(
            fs_err::read_link(dir.path().join("x/link")).unwrap(),
            Path::new("run.sh")
        );
        assert_eq!(
            fs_err::metadata(dir.path().join("x/run.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
    }
}
