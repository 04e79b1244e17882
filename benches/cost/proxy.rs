//! A counting proxy in front of the engine's socket: op is pointed at it with `DOCKER_HOST`, it
//! forwards every byte both ways and writes down each HTTP request op sends (its method, its
//! route, when it came, and when the first and the last byte of its body went through).
//!
//! Requests are framed as HTTP/1.1 frames them (`Content-Length`, or `chunked`), so a body
//! (an app's tar) is never mistaken for requests; after a request that upgrades the connection
//! (`attach`), what the client sends is passed on unread.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One request op sent to the engine.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: SystemTime,
    pub method: String,
    /// The route: the path without the API version, the query and the names in it
    /// (`POST /containers/{}/start`).
    pub route: String,
    /// Bytes of its body.
    pub body: u64,
    pub first_byte: Option<SystemTime>,
    pub last_byte: Option<SystemTime>,
}

pub struct EngineProxy {
    socket: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
    _dir: tempfile::TempDir,
}

impl EngineProxy {
    /// Listens on a socket of its own and forwards to `upstream` (the engine's socket).
    pub fn start(upstream: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("op-bench-engine-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let upstream = upstream.to_path_buf();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (upstream, log) = (upstream.clone(), Arc::clone(&log));
                std::thread::spawn(move || serve(client, &upstream, &log));
            }
        });
        Self {
            socket,
            requests,
            _dir: dir,
        }
    }

    /// `unix://…`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// How many requests it has seen so far.
    pub fn mark(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// The requests seen since `mark`.
    pub fn since(&self, mark: usize) -> Vec<Request> {
        self.requests.lock().unwrap()[mark..].to_vec()
    }
}

fn serve(client: UnixStream, upstream: &Path, log: &Mutex<Vec<Request>>) {
    let Ok(server) = UnixStream::connect(upstream) else {
        return;
    };
    let (Ok(mut back_to), Ok(mut back_from)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let answers = std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(std::net::Shutdown::Write);
    });
    let _ = forward(BufReader::with_capacity(1 << 16, client), &server, log);
    let _ = server.shutdown(std::net::Shutdown::Write);
    let _ = answers.join();
}

/// Forwards the requests read from `from` to `to`, writing each down.
fn forward(
    mut from: BufReader<UnixStream>,
    mut to: &UnixStream,
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if from.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" || line == b"\n" {
                break;
            }
        }
        to.write_all(&head)?;
        let text = String::from_utf8_lossy(&head);
        let mut lines = text.lines();
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let route = route(first.next().unwrap_or_default());
        let (mut length, mut chunked, mut upgrade) = (None, false, false);
        for header in lines {
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim().to_ascii_lowercase();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<u64>().ok(),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "upgrade" => upgrade = true,
                _ => {}
            }
        }
        let mut request = Request {
            at: SystemTime::now(),
            method,
            route,
            body: 0,
            first_byte: None,
            last_byte: None,
        };
        if chunked {
            loop {
                line.clear();
                from.read_until(b'\n', &mut line)?;
                to.write_all(&line)?;
                let size = String::from_utf8_lossy(&line);
                let size = size.split(';').next().unwrap_or_default().trim();
                let size = u64::from_str_radix(size, 16)
                    .map_err(|e| std::io::Error::other(format!("chunk size {size:?}: {e}")))?;
                if size == 0 {
                    loop {
                        line.clear();
                        if from.read_until(b'\n', &mut line)? == 0 || line == b"\r\n" {
                            to.write_all(&line)?;
                            break;
                        }
                        to.write_all(&line)?;
                    }
                    break;
                }
                copy_body(&mut from, to, size, &mut request)?;
                let mut crlf = [0; 2];
                from.read_exact(&mut crlf)?;
                to.write_all(&crlf)?;
            }
        } else if let Some(length) = length {
            copy_body(&mut from, to, length, &mut request)?;
        }
        log.lock().unwrap().push(request);
        if upgrade {
            std::io::copy(&mut from, &mut to)?;
            return Ok(());
        }
    }
}

/// Copies `size` bytes of a body, noting when the first and the last went through.
fn copy_body(
    from: &mut BufReader<UnixStream>,
    mut to: &UnixStream,
    mut size: u64,
    request: &mut Request,
) -> std::io::Result<()> {
    while size > 0 {
        let buffer = from.fill_buf()?;
        if buffer.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = buffer
            .len()
            .min(usize::try_from(size).unwrap_or(usize::MAX));
        request.first_byte.get_or_insert_with(SystemTime::now);
        to.write_all(&buffer[..n])?;
        from.consume(n);
        size -= n as u64;
        request.body += n as u64;
        request.last_byte = Some(SystemTime::now());
    }
    Ok(())
}

/// The last segments of a path that name what is done, not to what.
const VERBS: &[&str] = &[
    "json", "archive", "start", "stop", "wait", "attach", "create", "tag", "push", "logs", "kill",
    "resize", "prune",
];

/// `/v1.56/containers/abc/start?x=1` as `/containers/{}/start`: the names in a path (ids,
/// volume and image names, which may hold `/`) become `{}`.
fn route(target: &str) -> String {
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip_while(|s| s.starts_with('v') && s[1..].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    match segments.as_slice() {
        [] => "/".into(),
        [one] => format!("/{one}"),
        [group, name] if VERBS.contains(name) => format!("/{group}/{name}"),
        [group, _] => format!("/{group}/{{}}"),
        [group, .., last] if VERBS.contains(last) => format!("/{group}/{{}}/{last}"),
        [group, ..] => format!("/{group}/{{}}"),
    }
}
