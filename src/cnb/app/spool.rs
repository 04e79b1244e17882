//! The creator's inputs tarred once, before a build whose key they are part of
//! (`--cache-artifacts`): the tar is kept for the upload (in memory, or past [`IN_MEMORY`] in an
//! unnamed temporary file, which the system removes however op ends) and digested while it is
//! written, on a second thread. A build that does run then uploads what was read for its key:
//! the context is read once.

use std::io::{Read, Seek as _, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use futures::StreamExt as _;
use sha2::Digest as _;

use super::{CHUNK, CHUNKS, Error, Inputs, Streamed};
use op_oci::archive::LayerBuilder;

/// The tar is kept in memory up to this size, in a temporary file past it.
const IN_MEMORY: usize = 16 << 20;

/// A tar of the inputs, kept for the upload.
pub struct Spooled {
    store: Store,
}

enum Store {
    Memory(Vec<u8>),
    File(std::fs::File),
}

impl Spooled {
    /// The tar as the engine's upload (or a pod's stdin) reads it: in chunks, read from the
    /// temporary file on a blocking thread as they are asked for.
    pub fn streamed(self) -> Streamed {
        let archive = match self.store {
            Store::Memory(bytes) => futures::stream::iter(
                bytes
                    .chunks(CHUNK)
                    .map(|chunk| Ok(chunk.to_vec()))
                    .collect::<Vec<_>>(),
            )
            .boxed(),
            Store::File(file) => futures::stream::unfold(Some(file), |file| async move {
                let mut file = file?;
                let read = tokio::task::spawn_blocking(move || {
                    let mut chunk = vec![0; CHUNK];
                    let n = read_full(&mut file, &mut chunk)?;
                    chunk.truncate(n);
                    Ok::<_, std::io::Error>((chunk, file))
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|read| read);
                match read {
                    Ok((chunk, _)) if chunk.is_empty() => None,
                    Ok((chunk, file)) => Some((Ok(chunk), Some(file))),
                    Err(e) => Some((Err(e), None)),
                }
            })
            .boxed(),
        };
        Streamed {
            archive,
            tarred: tokio::spawn(async { Ok(()) }),
        }
    }

    /// Whether the tar went to a temporary file (it was larger than [`IN_MEMORY`]).
    pub fn on_disk(&self) -> bool {
        matches!(self.store, Store::File(_))
    }
}

/// Fills `buf` but at the end of `reader`; how much it read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Tars what `fill` writes (a copy: modification times kept), keeping the tar, and digests it
/// meanwhile on another thread: the digest of its entries, each entry's name, type, mode,
/// owner, size, link target and contents, in order, but not its modification time (the same
/// inputs give the same digest on any machine, whenever their files were touched), leaving out
/// the entries `left_out` names (by path, and whether they are directories).
pub async fn spool(
    fill: impl FnOnce(&mut Inputs<Tee>) -> Result<(), Error> + Send + 'static,
    left_out: fn(&str, bool) -> bool,
) -> Result<(String, Spooled), Error> {
    let (sender, receiver) = mpsc::sync_channel(CHUNKS);
    let hashed = tokio::task::spawn_blocking(move || {
        let mut reader = Received {
            receiver,
            chunk: Vec::new(),
            at: 0,
        };
        let digest = digest_entries(&mut reader, left_out);
        // What follows the last entry (the tar's end), so that the writer is never left
        // waiting on a full channel.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        digest
    });
    let written = tokio::task::spawn_blocking(move || {
        let tee = Tee {
            spool: Store::Memory(Vec::new()),
            sender,
            buffer: Vec::with_capacity(CHUNK),
        };
        let mut inputs = Inputs {
            tar: LayerBuilder::copy_to(tee),
        };
        fill(&mut inputs)?;
        let mut tee = inputs.tar.into_inner().map_err(fail)?;
        tee.pass().map_err(fail)?;
        let Tee { mut spool, .. } = tee;
        if let Store::File(file) = &mut spool {
            file.rewind().map_err(fail)?;
        }
        Ok(Spooled { store: spool })
    });
    let joined = |e: tokio::task::JoinError| fail(std::io::Error::other(e.to_string()));
    let (written, hashed) = futures::future::join(written, hashed).await;
    let written: Result<Spooled, Error> = written.map_err(joined)?;
    let hashed = hashed.map_err(joined)?;
    match (written, hashed) {
        (Ok(spooled), Ok(digest)) => Ok((digest, spooled)),
        // Why the tar stopped (a file op could not read), unless it stopped because the
        // digest did.
        (Err(e), _) if !stopped(&e) => Err(e),
        (_, Err(e)) => Err(fail(e)),
        (Err(e), Ok(_)) => Err(e),
    }
}

fn fail(source: std::io::Error) -> Error {
    Error::Read {
        path: PathBuf::from("/"),
        source,
    }
}

/// Whether `e` is the tar's writer finding the digest gone.
fn stopped(e: &Error) -> bool {
    matches!(e, Error::Read { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// The digest of the entries of the tar `reader` reads (see [`spool`]).
fn digest_entries(
    reader: &mut impl Read,
    left_out: fn(&str, bool) -> bool,
) -> std::io::Result<String> {
    let mut archive = tar::Archive::new(reader);
    let mut hasher = sha2::Sha256::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header();
        let kind = header.entry_type();
        if left_out(path.trim_end_matches('/'), kind.is_dir()) {
            continue;
        }
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let fields = format!(
            "{}\0{path}\0{:o}\0{}\0{}\0{}\0{link}\0",
            kind.as_byte(),
            header.mode()?,
            header.uid()?,
            header.gid()?,
            header.size()?,
        );
        hasher.update(fields.as_bytes());
        std::io::copy(&mut entry, &mut hasher)?;
    }
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// What the tar is written into: chunks of [`CHUNK`] bytes, each kept and sent to the digest.
pub struct Tee {
    spool: Store,
    sender: mpsc::SyncSender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl Tee {
    /// Keeps and sends what is buffered.
    fn pass(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.keep(&chunk)?;
        self.sender.send(chunk).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the digest of the inputs stopped",
            )
        })
    }

    fn keep(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match &mut self.spool {
            Store::Memory(bytes) if bytes.len() + chunk.len() <= IN_MEMORY => {
                bytes.extend_from_slice(chunk);
            }
            Store::Memory(bytes) => {
                let mut file = tempfile::tempfile().map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "a temporary file in {} for the inputs: {e}",
                            std::env::temp_dir().display()
                        ),
                    )
                })?;
                file.write_all(bytes)?;
                file.write_all(chunk)?;
                self.spool = Store::File(file);
            }
            Store::File(file) => file.write_all(chunk)?,
        }
        Ok(())
    }
}

impl Write for Tee {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == CHUNK {
            self.pass()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The chunks the tar's writer sends, as one reader.
struct Received {
    receiver: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Received {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                // The writer is done (or gone: the tar then ends short, and its error says
                // why).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
