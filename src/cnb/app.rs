//! What op copies into the creator container before it starts, as tars extracted at `/`:
//!
//! - the app: the artifact's context under `workspace/`, every entry (the root one included)
//!   owned by the builder's `CNB_USER_ID:CNB_GROUP_ID`, so the lifecycle never has to chown it
//!   (`docs/cnb-platform.md` section 6.2); `project.toml`'s `include`/`exclude` (gitignore
//!   patterns) decide which files go;
//! - `platform/env/<NAME>`: `project.toml`'s build environment (`[[build.env]]`,
//!   `[[io.buildpacks.build.env]]`), then the artifact's `buildpacks.env`, which wins;
//! - `layers/order.toml`: the order of the build when it is not the builder's (the artifact's
//!   `buildpacks.buildpacks`, or `project.toml`'s buildpacks: [`super::project`]), and the
//!   buildpacks it adds (local directories, inline scripts) under `cnb/buildpacks/`.
//!
//! Symlinks are kept, special files (sockets, fifos) are left out. Modification times are kept,
//! as pack does: the lifecycle normalises them in the layers it exports.
//!
//! The builds [`stream`] that tar: it is written on a blocking thread into a bounded channel of
//! chunks, which the engine's upload reads as they come, so a context of any size is never held
//! whole (about a MiB of it at most). A build keyed by its inputs (`--cache-artifacts`)
//! [`spool`]s it instead: tarred once for the key, kept for the upload.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt as _;

use cnb_data::files::{OrderToml, Report};
use op_oci::archive::{LayerBuilder, Owner, Select};
use regex::Regex;

use super::Error;
use super::project::{Added, Inline, Order};
use crate::engine::Archive;
use crate::plan::EnvVar;

/// Which files of the context go into the app.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    mode: Mode,
    patterns: Vec<Pattern>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Everything,
    Include,
    Exclude,
}

/// One gitignore-style pattern.
#[derive(Clone, Debug)]
struct Pattern {
    regex: Regex,
    negated: bool,
    dir_only: bool,
}

impl Pattern {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return None;
        }
        let (negated, text) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let dir_only = text.ends_with('/');
        let text = text.trim_end_matches('/');
        let anchored = text.starts_with('/') || text.contains('/');
        let text = text.trim_start_matches('/');
        let mut body = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        body.push_str("(?:.*/)?");
                    } else {
                        body.push_str(".*");
                    }
                }
                '*' => body.push_str("[^/]*"),
                '?' => body.push_str("[^/]"),
                c => body.push_str(&regex::escape(&c.to_string())),
            }
        }
        let full = if anchored {
            format!("^{body}$")
        } else {
            format!("^(?:.*/)?{body}$")
        };
        Some(Self {
            regex: Regex::new(&full).ok()?,
            negated,
            dir_only,
        })
    }
}

impl Filter {
    /// The filter of `include` or `exclude` patterns (gitignore's); `None` for both.
    pub fn from_patterns(include: Vec<String>, exclude: Vec<String>) -> Option<Self> {
        let (mode, patterns) = match (include.is_empty(), exclude.is_empty()) {
            (true, true) => (Mode::Everything, Vec::new()),
            (false, false) => return None,
            (false, true) => (Mode::Include, include),
            (true, false) => (Mode::Exclude, exclude),
        };
        Some(Self {
            mode,
            patterns: patterns.iter().filter_map(|p| Pattern::parse(p)).collect(),
        })
    }

    /// Whether a pattern matches `path` (relative, `/`-separated) or one of its directories.
    fn matches(&self, path: &str, is_dir: bool) -> bool {
        let mut matched = false;
        let parts: Vec<&str> = path.split('/').collect();
        for end in 1..=parts.len() {
            let prefix = parts[..end].join("/");
            let prefix_is_dir = end < parts.len() || is_dir;
            for pattern in &self.patterns {
                if (!pattern.dir_only || prefix_is_dir) && pattern.regex.is_match(&prefix) {
                    matched = !pattern.negated;
                }
            }
            if matched && end < parts.len() {
                // A matched directory covers what is below it.
                return true;
            }
        }
        matched
    }

    /// Whether the file at `path` goes into the app.
    pub fn keeps(&self, path: &str, is_dir: bool) -> bool {
        match self.mode {
            Mode::Everything => true,
            Mode::Include => self.matches(path, is_dir),
            Mode::Exclude => !self.matches(path, is_dir),
        }
    }

    /// What the app's tar does with the entry at `path`: an excluded directory is left out with
    /// everything below it; in include mode, a directory no pattern names is still walked, and
    /// written only when something below it is kept.
    fn select(&self, path: &str, is_dir: bool) -> Select {
        match (self.keeps(path, is_dir), self.mode, is_dir) {
            (true, _, _) => Select::Keep,
            (false, Mode::Include, true) => Select::Skip,
            (false, _, _) => Select::Prune,
        }
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything copied into the creator container before it starts, as one tar (one call to the
/// engine), written by `op_oci::archive` in memory or, [`stream`]ed, into [`Chunks`].
pub struct Inputs<W: Write = Vec<u8>> {
    tar: LayerBuilder<W>,
}

impl Default for Inputs {
    fn default() -> Self {
        Self::new()
    }
}

impl Inputs {
    pub fn new() -> Self {
        Self {
            tar: LayerBuilder::copy(),
        }
    }

    /// The tar, to extract at `/`.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        self.tar
            .finish()
            .map(|layer| layer.tar)
            .map_err(io_error(Path::new("/")))
    }
}

impl<W: Write> Inputs<W> {
    /// The app: `context` as `workspace/…`, owned by `uid:gid`.
    pub fn app(
        &mut self,
        context: &Path,
        uid: u32,
        gid: u32,
        filter: &Filter,
    ) -> Result<(), Error> {
        let owner = Owner::Fixed(u64::from(uid), u64::from(gid));
        self.tar
            .selected_tree(context, "workspace", owner, &|path, is_dir| {
                filter.select(path, is_dir)
            })
            .map_err(io_error(context))
    }

    /// `platform/env/<NAME>` files for `env` (root-owned, readable by the build user).
    pub fn platform_env(&mut self, env: &[EnvVar]) -> Result<(), Error> {
        let fail = io_error(Path::new("/platform/env"));
        for dir in ["platform", "platform/env"] {
            self.tar.dir(dir, 0o755, 0, 0).map_err(&fail)?;
        }
        for var in env {
            let path = format!("platform/env/{}", var.name);
            self.tar
                .file(&path, var.value.as_bytes(), 0o644, 0, 0)
                .map_err(&fail)?;
        }
        Ok(())
    }

    /// The CA certificates the lifecycle trusts ([`CA_FILE`], root-owned, readable by all): a
    /// PEM bundle.
    pub fn ca_certificates(&mut self, pem: &str) -> Result<(), Error> {
        let fail = io_error(Path::new(CA_FILE));
        let (dir, _) = CA_FILE
            .trim_start_matches('/')
            .rsplit_once('/')
            .unwrap_or(("", ""));
        let mut parent = String::new();
        for part in dir.split('/') {
            parent = if parent.is_empty() {
                part.to_string()
            } else {
                format!("{parent}/{part}")
            };
            self.tar.dir(&parent, 0o755, 0, 0).map_err(&fail)?;
        }
        self.tar
            .file(CA_FILE.trim_start_matches('/'), pem.as_bytes(), 0o644, 0, 0)
            .map_err(&fail)
    }

    /// An empty directory at `path` (absolute) owned by `uid:gid`, for the buildpacks to write
    /// in (a chart artifact's `/out`).
    pub fn directory(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        self.tar
            .dir(
                path.trim_start_matches('/'),
                0o755,
                u64::from(uid),
                u64::from(gid),
            )
            .map_err(io_error(Path::new(path)))
    }

    /// The order of one build as `layers/order.toml`, which the lifecycle prefers to the
    /// builder's, and the buildpacks it adds under `cnb/buildpacks/<id, / as _>/<version>/`,
    /// root-owned as a builder's.
    pub fn order(&mut self, order: &Order) -> Result<(), Error> {
        let text = toml::to_string(&OrderToml {
            order: order.groups.clone(),
            ..OrderToml::default()
        })
        .unwrap_or_default();
        self.tar
            .file("layers/order.toml", text.as_bytes(), 0o644, 0, 0)
            .map_err(io_error(Path::new("/layers/order.toml")))?;
        for added in &order.added {
            self.buildpack(added)?;
        }
        Ok(())
    }

    fn buildpack(&mut self, added: &Added) -> Result<(), Error> {
        let (id, version) = match added {
            Added::Directory { id, version, .. } | Added::Inline(Inline { id, version, .. }) => {
                (id, version)
            }
        };
        let escaped = format!("cnb/buildpacks/{}", id.replace('/', "_"));
        let dir = format!("{escaped}/{version}");
        let fail = io_error(Path::new("/cnb/buildpacks"));
        self.tar.dir(&escaped, 0o755, 0, 0).map_err(&fail)?;
        match added {
            Added::Directory { path, .. } => self
                .tar
                .selected_tree(path, &dir, Owner::Fixed(0, 0), &|_, _| Select::Keep)
                .map_err(io_error(path)),
            Added::Inline(Inline {
                api, inline, shell, ..
            }) => {
                let descriptor =
                    format!("api = {api:?}\n\n[buildpack]\nid = {id:?}\nversion = {version:?}\n");
                let files = [
                    ("buildpack.toml", descriptor, 0o644),
                    ("bin/build", format!("#!{shell}\n\n{inline}\n"), 0o755),
                    ("bin/detect", format!("#!{shell}\n\nexit 0\n"), 0o755),
                ];
                self.tar.dir(&dir, 0o755, 0, 0).map_err(&fail)?;
                self.tar
                    .dir(&format!("{dir}/bin"), 0o755, 0, 0)
                    .map_err(&fail)?;
                for (name, text, mode) in files {
                    self.tar
                        .file(&format!("{dir}/{name}"), text.as_bytes(), mode, 0, 0)
                        .map_err(&fail)?;
                }
                Ok(())
            }
        }
    }
}

/// The size of the chunks a streamed tar is sent in.
const CHUNK: usize = 256 * 1024;
/// How many chunks may wait for the engine.
const CHUNKS: usize = 4;

/// The inputs, tarred as the engine reads them: `archive` is what the engine uploads, and
/// `tarred` (the thread that writes them) says how tarring ended.
pub struct Streamed {
    pub archive: Archive,
    pub tarred: tokio::task::JoinHandle<Result<(), Error>>,
}

/// Tars what `fill` writes, on a blocking thread, into a bounded channel of chunks: the
/// engine's upload reads them as they come, and the thread waits while the engine is behind.
/// `tarred` is an error when tarring failed (a file that cannot be read, named), and the
/// archive then ends in an error rather than as a tar, so that the upload fails; when the
/// upload stops reading first, tarring stops, and the upload's own error says why.
pub fn stream(
    fill: impl FnOnce(&mut Inputs<Chunks>) -> Result<(), Error> + Send + 'static,
) -> Streamed {
    let (sender, receiver) = tokio::sync::mpsc::channel(CHUNKS);
    let finished = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(AtomicBool::new(false));
    let chunks = Chunks {
        sender,
        buffer: Vec::with_capacity(CHUNK),
        finished: Arc::clone(&finished),
        stopped: Arc::clone(&stopped),
    };
    let tarred = tokio::task::spawn_blocking(move || {
        let mut inputs = Inputs {
            tar: LayerBuilder::copy_to(chunks),
        };
        let tarred = fill(&mut inputs).and_then(|()| {
            inputs
                .tar
                .into_inner()
                .and_then(Chunks::end)
                .map_err(io_error(Path::new("/")))
        });
        match tarred {
            Err(_) if stopped.load(Ordering::Acquire) => Ok(()),
            tarred => tarred,
        }
    });
    let archive = futures::stream::unfold(Some(receiver), move |receiver| {
        let finished = Arc::clone(&finished);
        async move {
            let mut receiver = receiver?;
            match receiver.recv().await {
                Some(chunk) => Some((Ok(chunk), Some(receiver))),
                None if finished.load(Ordering::Acquire) => None,
                None => Some((
                    Err(std::io::Error::other("the inputs were not tarred whole")),
                    None,
                )),
            }
        }
    })
    .boxed();
    Streamed { archive, tarred }
}

/// Where a [`stream`]ed tar is written: chunks of [`CHUNK`] bytes, sent into a channel that
/// holds [`CHUNKS`] of them.
pub struct Chunks {
    sender: tokio::sync::mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
    /// Set once the tar is whole, before the channel closes.
    finished: Arc<AtomicBool>,
    /// Set when the reader has gone.
    stopped: Arc<AtomicBool>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sender.blocking_send(chunk).map_err(|_| {
            self.stopped.store(true, Ordering::Release);
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the upload stopped reading the inputs",
            )
        })
    }

    /// Sends what is left, and says the tar is whole.
    fn end(mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            self.send()?;
        }
        self.finished.store(true, Ordering::Release);
        Ok(())
    }
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where the creator finds the CA certificates op hands it (`SSL_CERT_FILE`, which both the
/// reference lifecycle and op-lifecycle read).
pub const CA_FILE: &str = "/etc/op/ca-certificates.pem";

/// `report.toml` out of the tar the engine returns for `/layers/report.toml`.
pub fn read_report(tar: &[u8]) -> Result<Report, String> {
    let text = single_file(tar)?;
    toml::from_str(&text).map_err(|e| format!("report.toml is not valid: {e}"))
}

/// The text of the one file of the tar the engine returns for a file's path.
pub fn single_file(tar: &[u8]) -> Result<String, String> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(tar);
    let mut entry = archive
        .entries()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("the archive is empty")?
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    entry.read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

mod spool;

pub use spool::{Spooled, Tee, spool};

#[cfg(test)]
mod tests;
