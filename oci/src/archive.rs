//! Tars: image layers, and what op copies into a container.
//!
//! A layer is deterministic: the same files always give the same bytes, hence the same diffID,
//! which is what lets an unchanged layer be reused instead of uploaded again. Its entries are
//! those the reference lifecycle (Go's `archive/tar`) writes: POSIX ustar headers (a GNU long
//! name only for a path ustar cannot hold, where Go writes a PAX record), absolute paths, the
//! modification time 1980-01-01T00:00:01Z, empty user and group names, and the owner the caller
//! chooses. Directories are walked in name order. The same files give the same bytes as the
//! reference's, so op-lifecycle and the reference lifecycle agree on diffIDs.
//!
//! A copy ([`LayerBuilder::copy`], what the Engine API's archive upload extracts) is written the
//! same way but for two things, as pack's and `docker cp`'s are: names are relative to where it
//! is extracted, and files walked from disk keep their modification times. A copy can be
//! written to any writer as it is made ([`LayerBuilder::copy_to`]), so that it is never held whole.

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::sha256;

/// 1980-01-01T00:00:01Z, the modification time of every entry of a layer.
pub const NORMALIZED_MTIME: u64 = 315_532_801;

/// The largest size a ustar header holds (eleven octal digits); larger files get a GNU header.
const USTAR_MAX_SIZE: u64 = (1 << 33) - 1;

/// Who owns the entries of a tree added to a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The owner on disk.
    AsOnDisk,
    /// This uid and gid.
    Fixed(u64, u64),
}

/// What [`LayerBuilder::selected_tree`] does with an entry below the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Write it (and, for a directory, walk it).
    Keep,
    /// Do not write it, but walk it if it is a directory: it is written after all, just before
    /// the first entry below it that is kept.
    Skip,
    /// Leave it and everything below it out.
    Prune,
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

/// Which of the two kinds of tar is being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// An image layer: absolute names, normalized times.
    Layer,
    /// A copy into a container: relative names, times of files on disk kept.
    Copy,
}

/// Builds a tar entry by entry, in memory or into a writer.
pub struct LayerBuilder<W: Write = Vec<u8>> {
    builder: tar::Builder<W>,
    flavor: Flavor,
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

/// One entry's header fields.
struct Entry<'a> {
    kind: tar::EntryType,
    link: Option<&'a str>,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
}

impl Entry<'_> {
    /// An entry without data or link target.
    fn new(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, mtime: u64) -> Self {
        Self {
            kind,
            link: None,
            mode,
            uid,
            gid,
            size: 0,
            mtime,
        }
    }
}

/// A file's bytes, exactly `left` of them: a file that shrank after it was measured is an error
/// rather than a tar whose header lies; one that grew is read up to its measured size.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl LayerBuilder {
    /// An image layer.
    pub fn new() -> Self {
        Self::of(Flavor::Layer, Vec::new())
    }

    /// A tar for the Engine API's archive upload: names relative to where it is extracted,
    /// the modification times of the files [`tree`](Self::tree) walks kept.
    pub fn copy() -> Self {
        Self::of(Flavor::Copy, Vec::new())
    }

    /// The finished tar.
    pub fn finish(self) -> std::io::Result<Layer> {
        let tar = self.into_inner()?;
        let diff_id = sha256(&tar);
        Ok(Layer { tar, diff_id })
    }
}

impl<W: Write> LayerBuilder<W> {
    /// [`copy`](LayerBuilder::copy), written to `out` entry by entry as it is made.
    pub fn copy_to(out: W) -> Self {
        Self::of(Flavor::Copy, out)
    }

    /// [`new`](LayerBuilder::new) (a layer: modification times normalized), written to `out`
    /// entry by entry as it is made: what is written depends on the names, modes, owners and
    /// contents of the entries alone (a hasher as `out` digests them).
    pub fn layer_to(out: W) -> Self {
        Self::of(Flavor::Layer, out)
    }

    fn of(flavor: Flavor, out: W) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.preserve_absolute(flavor == Flavor::Layer);
        Self { builder, flavor }
    }

    /// The end of the tar written; the writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.builder.into_inner()
    }

    /// A ustar header (with the device numbers Go writes), or a GNU one for a path, link
    /// target or size that ustar cannot hold.
    fn header(path: &str, entry: &Entry<'_>) -> tar::Header {
        let ustar = fits_ustar(path)
            && entry.link.is_none_or(|l| l.len() <= 100)
            && entry.size <= USTAR_MAX_SIZE;
        let mut header = if ustar {
            let mut header = tar::Header::new_ustar();
            let _ = header.set_device_major(0);
            let _ = header.set_device_minor(0);
            header
        } else {
            tar::Header::new_gnu()
        };
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_size(entry.size);
        header.set_mtime(entry.mtime);
        // Empty user and group names: only the ids count.
        let _ = header.set_username("");
        let _ = header.set_groupname("");
        header
    }

    /// `path` as an entry's name: absolute in a layer, relative in a copy.
    fn name(&self, path: &str) -> String {
        let relative = path.trim_start_matches('/');
        match self.flavor {
            Flavor::Layer => format!("/{relative}"),
            Flavor::Copy => relative.to_string(),
        }
    }

    /// The modification time of an entry read from disk.
    fn mtime_of(&self, meta: &std::fs::Metadata) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        match self.flavor {
            Flavor::Layer => NORMALIZED_MTIME,
            Flavor::Copy => u64::try_from(meta.mtime()).unwrap_or(0),
        }
    }

    /// Appends an entry named `path`. A ustar header gets its name, link and checksum here, the
    /// checksum as Go writes it (six octal digits, NUL, space); a GNU one gets them from the
    /// tar crate, with a long-name entry first.
    fn append(&mut self, path: &str, entry: &Entry<'_>, data: impl Read) -> std::io::Result<()> {
        let name = self.name(path);
        let mut header = Self::header(&name, entry);
        if header.as_ustar().is_none() {
            return match entry.link {
                Some(target) => self.builder.append_link(&mut header, &name, target),
                None => self.builder.append_data(&mut header, &name, data),
            };
        }
        if self.flavor == Flavor::Layer {
            header.set_path_absolute(&name)?;
        } else {
            header.set_path(&name)?;
        }
        if let Some(target) = entry.link {
            header.set_link_name(target)?;
        }
        header.set_cksum();
        let cksum = header.cksum()?;
        header.as_mut_bytes()[148..156].copy_from_slice(format!("{cksum:06o}\0 ").as_bytes());
        self.builder.append(&header, data)
    }

    /// A directory entry.
    pub fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> std::io::Result<()> {
        self.dir_at(path, mode, uid, gid, NORMALIZED_MTIME)
    }

    fn dir_at(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> std::io::Result<()> {
        let entry = Entry::new(tar::EntryType::Directory, mode, uid, gid, mtime);
        self.append(path, &entry, std::io::empty())
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
        let entry = Entry {
            size: data.len() as u64,
            ..Entry::new(tar::EntryType::Regular, mode, uid, gid, NORMALIZED_MTIME)
        };
        self.append(path, &entry, data)
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
        let entry = Entry {
            link: Some(target),
            ..Entry::new(tar::EntryType::Symlink, mode, uid, gid, NORMALIZED_MTIME)
        };
        self.append(path, &entry, std::io::empty())
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
            let mtime = self.mtime_of(&meta);
            self.dir_at(&dir.display().to_string(), mode_of(&meta), uid, gid, mtime)?;
        }
        Ok(())
    }

    /// The tree at `source` (itself included), stored at `at`, in name order. Sockets and other
    /// special files are left out; hard links become separate files.
    pub fn tree(&mut self, source: &Path, at: &str, owner: Owner) -> std::io::Result<()> {
        self.selected_tree(source, at, owner, &|_, _| Select::Keep)
    }

    /// [`tree`](Self::tree), with `select` deciding about every entry below the root from its
    /// path relative to `source` (`/`-separated) and whether it is a directory.
    pub fn selected_tree(
        &mut self,
        source: &Path,
        at: &str,
        owner: Owner,
        select: &dyn Fn(&str, bool) -> Select,
    ) -> std::io::Result<()> {
        let mut walk = Walk {
            owner,
            select,
            pending: Vec::new(),
        };
        walk.entry(self, source, at, None)
    }
}

/// A walk of one tree.
struct Walk<'a> {
    owner: Owner,
    select: &'a dyn Fn(&str, bool) -> Select,
    /// Skipped directories above the entry being walked, not written yet.
    pending: Vec<(String, u32, u64, u64, u64)>,
}

impl Walk<'_> {
    /// The entry at `source`, stored at `at`; `relative` is `None` for the root.
    fn entry<W: Write>(
        &mut self,
        out: &mut LayerBuilder<W>,
        source: &Path,
        at: &str,
        relative: Option<&str>,
    ) -> std::io::Result<()> {
        let meta = fs_err::symlink_metadata(source)?;
        let kind = meta.file_type();
        if !(kind.is_dir() || kind.is_file() || kind.is_symlink()) {
            return Ok(());
        }
        let selected = relative.map_or(Select::Keep, |r| (self.select)(r, kind.is_dir()));
        if selected == Select::Prune || (selected == Select::Skip && !kind.is_dir()) {
            return Ok(());
        }
        let (uid, gid) = match self.owner {
            Owner::AsOnDisk => owner_of(&meta),
            Owner::Fixed(uid, gid) => (uid, gid),
        };
        let mtime = out.mtime_of(&meta);
        if kind.is_dir() {
            let depth = self.pending.len();
            self.pending
                .push((at.to_string(), mode_of(&meta), uid, gid, mtime));
            if selected == Select::Keep {
                self.flush(out)?;
            }
            let mut names: Vec<_> = fs_err::read_dir(source)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            for name in names {
                let name = name.to_string_lossy();
                let child_at = format!("{}/{name}", at.trim_end_matches('/'));
                let child_relative = match relative {
                    Some(r) => format!("{r}/{name}"),
                    None => name.to_string(),
                };
                self.entry(out, &source.join(&*name), &child_at, Some(&child_relative))?;
            }
            self.pending.truncate(depth);
            return Ok(());
        }
        self.flush(out)?;
        if kind.is_symlink() {
            let target = fs_err::read_link(source)?.display().to_string();
            let entry = Entry {
                link: Some(&target),
                ..Entry::new(tar::EntryType::Symlink, 0o777, uid, gid, mtime)
            };
            out.append(at, &entry, std::io::empty())
        } else {
            let size = meta.len();
            let file = Exactly {
                inner: fs_err::File::open(source)?,
                left: size,
            };
            let entry = Entry {
                size,
                ..Entry::new(tar::EntryType::Regular, mode_of(&meta), uid, gid, mtime)
            };
            out.append(at, &entry, file)
        }
    }

    /// Writes the directories waiting above the entry about to be written.
    fn flush<W: Write>(&mut self, out: &mut LayerBuilder<W>) -> std::io::Result<()> {
        for (at, mode, uid, gid, mtime) in self.pending.drain(..) {
            out.dir_at(&at, mode, uid, gid, mtime)?;
        }
        Ok(())
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

/// The uncompressed bytes of a gzip-compressed layer.
pub fn gunzip(gzip: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = Vec::with_capacity(gzip.len() * 2);
    flate2::read::GzDecoder::new(gzip).read_to_end(&mut tar)?;
    Ok(tar)
}

/// Extracts an uncompressed layer under `root` (paths in the layer, absolute or not, are
/// relative to it), keeping modes; the files belong to whoever runs this. A directory that
/// exists already keeps its owner, mode and time (`tar --no-overwrite-dir`): one this process
/// does not own (a pod's emptyDir at `/layers`, for a lifecycle that is not root) could not take
/// them.
pub fn extract(tar: &[u8], root: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive.set_preserve_mtime(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_dir() {
            let path = entry.path()?;
            let relative = path.strip_prefix("/").unwrap_or(&path);
            if root.join(relative).is_dir() {
                continue;
            }
        }
        entry.unpack_in(root)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_directory_keeps_its_mode_and_the_files_under_it_are_written() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let layers = root.path().join("layers");
        fs_err::create_dir(&layers).unwrap();
        fs_err::set_permissions(&layers, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        dir.set_cksum();
        tar.append_data(&mut dir, "layers/", std::io::empty())
            .unwrap();
        tar.append_data(&mut dir, "layers/bp/", std::io::empty())
            .unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_mode(0o640);
        file.set_size(2);
        file.set_cksum();
        tar.append_data(&mut file, "layers/bp/counter", &b"41"[..])
            .unwrap();
        extract(&tar.into_inner().unwrap(), root.path()).unwrap();
        let mode = |path: &Path| fs_err::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&layers), 0o777);
        assert_eq!(mode(&layers.join("bp")), 0o755);
        assert_eq!(mode(&layers.join("bp/counter")), 0o640);
        assert_eq!(fs_err::read(layers.join("bp/counter")).unwrap(), b"41");
    }

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

    fn names_of(layer: &Layer) -> Vec<String> {
        tar::Archive::new(layer.tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn skipped_directories_are_written_only_above_what_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            "a/b/keep.txt",
            "a/b/other.txt",
            "a/empty/x.txt",
            "pruned/keep.txt",
        ] {
            let path = dir.path().join(path);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, "x").unwrap();
        }
        let mut layer = LayerBuilder::new();
        layer
            .selected_tree(
                dir.path(),
                "/w",
                Owner::Fixed(0, 0),
                &|path, is_dir| match (path, is_dir) {
                    ("pruned", true) => Select::Prune,
                    (path, false) if path.ends_with("keep.txt") => Select::Keep,
                    // Directories are walked, other files left out.
                    _ => Select::Skip,
                },
            )
            .unwrap();
        let layer = layer.finish().unwrap();
        assert_eq!(
            names_of(&layer),
            ["/w", "/w/a", "/w/a/b", "/w/a/b/keep.txt"],
            "a skipped directory appears before its first kept entry, a pruned one never"
        );
    }

    #[test]
    fn copies_have_relative_names_and_keep_the_times_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs_err::write(&file, "x").unwrap();
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        fs_err::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(when)
            .unwrap();
        let mut copy = LayerBuilder::copy();
        copy.tree(dir.path(), "workspace", Owner::Fixed(1000, 1000))
            .unwrap();
        copy.file("layers/order.toml", b"", 0o644, 0, 0).unwrap();
        let copy = copy.finish().unwrap();
        assert_eq!(
            names_of(&copy),
            ["workspace", "workspace/f", "layers/order.toml"]
        );
        let mut archive = tar::Archive::new(copy.tar.as_slice());
        let entry = archive.entries().unwrap().nth(1).unwrap().unwrap();
        assert_eq!(entry.header().mtime().unwrap(), 1_700_000_000);
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_an_error() {
        let mut short = Exactly {
            inner: &b"abc"[..],
            left: 5,
        };
        let mut out = Vec::new();
        let error = std::io::copy(&mut short, &mut out).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
        let mut long = Exactly {
            inner: &b"abcdef"[..],
            left: 3,
        };
        let mut out = Vec::new();
        std::io::copy(&mut long, &mut out).unwrap();
        assert_eq!(
            out, b"abc",
            "a file that grew is read up to its measured size"
        );
    }
}
