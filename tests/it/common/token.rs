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
//! A wrong password is refused with 401. `POST /token` is the OAuth 2 form of the same
//! (`grant_type=password` or `refresh_token`), which the Docker Engine's containerd and an
//! identity token (`identitytoken` of the Docker configuration) use; with
//! `access_type=offline` it gives a refresh token ([`refresh_token_of`]) too.

use std::io::{BufRead as _, BufReader, Read as _, Write};
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
                                if let Ok(tokens) = serve(stream, &config, &key)
                                    && let Ok(mut issued) = issued.lock()
                                {
                                    issued.extend(tokens);
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

/// Answers one request; the tokens it issued, if it issued some.
fn serve(
    stream: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    key: &SigningKey,
) -> std::io::Result<Vec<String>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let connection =
        rustls::ServerConnection::new(Arc::clone(config)).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(connection, stream);
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut authorization, mut length) = (None, 0);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    drop(reader);
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let answer = match (request_line.split_whitespace().next(), path) {
        (Some("GET"), "/token") => get(query, authorization.as_deref()),
        (Some("POST"), "/token") => post(&String::from_utf8_lossy(&body)),
        _ => Err((404, "NOT_FOUND", "no such endpoint")),
    };
    match answer {
        Ok(grant) => {
            let (body, issued) = grant.answer(key);
            respond(&mut stream, 200, &body.to_string())?;
            Ok(issued)
        }
        Err((status, code, message)) => {
            let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
            respond(&mut stream, status, &body.to_string()).map(|()| Vec::new())
        }
    }
}

/// A refused request: its status, error code and message.
type Refusal = (u16, &'static str, &'static str);

/// What a request is granted: an account (none: anonymous), the audience, the scopes asked,
/// and whether a refresh token goes with the access token (an OAuth 2 `access_type=offline`).
struct Grant {
    account: Option<String>,
    service: String,
    scopes: Vec<String>,
    refresh: bool,
}

impl Grant {
    /// The answer's body, and the tokens in it.
    fn answer(&self, key: &SigningKey) -> (serde_json::Value, Vec<String>) {
        let allowed = allowed(self.account.as_deref());
        let access: Vec<_> = self
            .scopes
            .iter()
            .filter_map(|s| grant(s, allowed))
            .collect();
        let token = token(
            key,
            self.account.as_deref().unwrap_or(""),
            &self.service,
            &access,
        );
        let mut body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": 300,
        });
        let mut issued = vec![token];
        if self.refresh
            && let Some(account) = &self.account
        {
            let refresh = refresh_token_of(account);
            body["refresh_token"] = refresh.clone().into();
            issued.push(refresh);
        }
        (body, issued)
    }
}

/// The refresh (identity) token of `account`: what `docker login` keeps as `identitytoken`.
pub fn refresh_token_of(account: &str) -> String {
    format!("op-test-refresh-{account}-{}", STANDARD.encode(account))
}

/// The account of a known user name and password; a wrong one is refused.
fn account_of(user: &str, password: &str) -> Result<String, Refusal> {
    match (user, password) {
        (TEST_USER, TEST_PASSWORD) | (READER, READER_PASSWORD) => Ok(user.to_string()),
        _ => Err((401, "UNAUTHORIZED", "wrong username or password")),
    }
}

/// `GET /token?service=…&scope=…` with HTTP basic credentials or none (anonymous).
fn get(query: &str, authorization: Option<&str>) -> Result<Grant, Refusal> {
    let account = match authorization.and_then(basic) {
        None => None,
        Some((user, password)) => Some(account_of(&user, &password)?),
    };
    let (mut service, mut scopes) = (String::new(), Vec::new());
    for (name, value) in form(query) {
        match name.as_str() {
            "service" => service = value,
            "scope" => scopes.push(value),
            _ => {}
        }
    }
    Ok(Grant {
        account,
        service,
        scopes,
        refresh: false,
    })
}

/// `POST /token`, the OAuth 2 form (`grant_type=password` with `username`/`password`, or
/// `grant_type=refresh_token` with a refresh token this issuer gave), as containerd, the docker
/// CLI's login and go-containerregistry with an identity token ask.
fn post(body: &str) -> Result<Grant, Refusal> {
    let fields = form(body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let account = match field("grant_type") {
        Some("password") => account_of(
            field("username").unwrap_or_default(),
            field("password").unwrap_or_default(),
        )?,
        Some("refresh_token") => {
            let presented = field("refresh_token").unwrap_or_default();
            [TEST_USER, READER]
                .into_iter()
                .find(|account| refresh_token_of(account) == presented)
                .ok_or((401, "UNAUTHORIZED", "unknown refresh token"))?
                .to_string()
        }
        _ => return Err((400, "UNSUPPORTED", "unsupported grant_type")),
    };
    Ok(Grant {
        account: Some(account),
        service: field("service").unwrap_or_default().to_string(),
        // Several scopes are one field, separated by spaces, in the OAuth 2 form.
        scopes: fields
            .iter()
            .filter(|(n, _)| n == "scope")
            .flat_map(|(_, v)| v.split(' ').map(str::to_string))
            .collect(),
        refresh: field("access_type") == Some("offline"),
    })
}

/// The `name=value` pairs of a query or form, decoded.
fn form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| (unescape(n), unescape(v)))
        .collect()
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
        400 => "Bad Request",
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
