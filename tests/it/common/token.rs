//! A token issuer for the Docker token authentication flow (the specification the distribution
//! registry implements: `docs/spec/auth/token.md`), for test registries configured with
//! `auth.token`. No token server is served by a registry these machines reach, so this is the
//! small one the issue allows; the registry's own validation of its tokens (signature against
//! `rootcertbundle`, issuer, audience, expiry, scopes) is the part under test.
//!
//! `GET /token?service=…&scope=repository:<name>:<actions>…` with HTTP basic credentials answers
//! `{"token": …, "access_token": …, "expires_in": 300}`: a JWT signed RS256 with
//! the test key (`x5c` header), granting what the account may do of what was asked:
//! [`super::registry::TEST_USER`] pulls and pushes, [`READER`] only pulls, anyone else nothing.
//! A wrong password is refused with 401.

use std::io::{BufRead as _, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::registry::{TEST_PASSWORD, TEST_USER};
use super::tls::{ServerCert, SigningKey};

/// The registry's `auth.token.service`, and the tokens' audience.
pub const SERVICE: &str = "op-test-registry";
/// The tokens' issuer (`auth.token.issuer`).
pub const ISSUER: &str = "op-test-issuer";
/// An account that may only pull.
pub const READER: &str = "reader";
pub const READER_PASSWORD: &str = "reader-test-password";

/// A running token issuer on a loopback port (HTTPS, with a certificate of the test's CA),
/// stopped when dropped.
pub struct TokenServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    /// Every token it issued.
    issued: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    pub fn start(key: Arc<SigningKey>, tls: &ServerCert) -> Self {
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from(fs_err::read(&tls.cert_der).unwrap())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                        fs_err::read(&tls.key_der).unwrap(),
                    )),
                )
                .expect("the token issuer's certificate and key"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(AtomicUsize::new(0));
        let issued = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            let issued = Arc::clone(&issued);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            requests.fetch_add(1, Ordering::Relaxed);
                            let (key, config) = (Arc::clone(&key), Arc::clone(&config));
                            let issued = Arc::clone(&issued);
                            std::thread::spawn(move || {
                                if let Ok(Some(token)) = serve(stream, &config, &key)
                                    && let Ok(mut issued) = issued.lock()
                                {
                                    issued.push(token);
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Self {
            addr,
            requests,
            issued,
            stop,
            thread: Some(thread),
        }
    }

    /// The `realm` registries send clients to: `localhost` by name, as go-containerregistry
    /// refuses a realm that is a loopback or private IP literal (other than the registry's
    /// own host).
    pub fn realm(&self) -> String {
        format!("https://localhost:{}/token", self.addr.port())
    }

    /// How many requests it has had.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Every token it issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.issued.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What `account` may do with a repository.
fn allowed(account: Option<&str>) -> &'static [&'static str] {
    match account {
        Some(TEST_USER) => &["pull", "push"],
        Some(READER) => &["pull"],
        _ => &[],
    }
}

/// Answers one request; the token it issued, if it issued one.
fn serve(
    stream: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    key: &SigningKey,
) -> std::io::Result<Option<String>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let connection =
        rustls::ServerConnection::new(Arc::clone(config)).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(connection, stream);
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_string());
        }
    }
    // The request has no body (a GET): what is left is the answer.
    drop(reader);
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !request_line.starts_with("GET ") || path != "/token" {
        return respond(&mut stream, 404, "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}").map(|()| None);
    }
    let account = match authorization.as_deref().and_then(basic) {
        None => None,
        Some((user, password)) => {
            let known = matches!(
                (user.as_str(), password.as_str()),
                (TEST_USER, TEST_PASSWORD) | (READER, READER_PASSWORD)
            );
            if !known {
                return respond(
                    &mut stream,
                    401,
                    "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"wrong username or password\"}]}",
                )
                .map(|()| None);
            }
            Some(user)
        }
    };
    let mut service = String::new();
    let mut access = Vec::new();
    for (name, value) in query.split('&').filter_map(|p| p.split_once('=')) {
        let value = unescape(value);
        match name {
            "service" => service = value,
            "scope" => access.extend(grant(&value, allowed(account.as_deref()))),
            _ => {}
        }
    }
    let token = token(key, account.as_deref().unwrap_or(""), &service, &access);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
    });
    respond(&mut stream, 200, &body.to_string())?;
    Ok(Some(token))
}

/// `Basic base64(user:password)` → (user, password).
fn basic(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The access entry for one `scope` (`repository:<name>:<actions>`): the actions asked for
/// that the account may take; nothing when it may take none of them.
fn grant(scope: &str, allowed: &[&str]) -> Option<serde_json::Value> {
    let mut parts = scope.splitn(3, ':');
    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
    if kind != "repository" {
        return None;
    }
    let granted: Vec<&str> = actions
        .split(',')
        .filter(|a| allowed.contains(a) || (*a == "*" && allowed.contains(&"push")))
        .collect();
    (!granted.is_empty())
        .then(|| serde_json::json!({"type": "repository", "name": name, "actions": granted}))
}

/// A JWT for `subject`, for `audience`, granting `access`.
fn token(key: &SigningKey, subject: &str, audience: &str, access: &[serde_json::Value]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "RS256",
        "x5c": [STANDARD.encode(key.cert_der())],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `%XX` and `+` decoded.
fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(stream: &mut impl Write, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
