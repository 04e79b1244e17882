//! op-oci's own requests, beside oci-client's: whether a registry is open (`GET /v2/` answered
//! without a challenge, go-containerregistry's ping), the manifests of open registries, and
//! identity tokens: the refresh tokens `docker login` keeps as `identitytoken` (and credential
//! helpers give as the user name `<token>`), exchanged for an access token per repository and
//! action with the OAuth 2 form of the token flow, as go-containerregistry (the reference
//! lifecycle's client) and the Docker Engine do: `GET /v2/` for the registry's challenge
//! (`WWW-Authenticate: Bearer realm=…,service=…`), then `POST <realm>` with
//! `grant_type=refresh_token`, the refresh token, the service, the scope and a client id; the
//! answer's `access_token` is the bearer token. oci-client knows basic credentials and bearer
//! tokens only: op-oci hands it the access token of each repository and action before the
//! requests that need it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use oci_client::errors::OciDistributionError;
use serde::Deserialize;

/// What op says it is (`client_id`), as go-containerregistry says `go-containerregistry`.
const CLIENT_ID: &str = "op";

/// The `User-Agent` of op-oci's own requests (oci-client's say `oci-client/…`).
pub(crate) const USER_AGENT: &str = concat!("op-oci/", env!("CARGO_PKG_VERSION"));

/// How long before its end an access token is asked for again.
const MARGIN: Duration = Duration::from_secs(30);

/// A registry's answer to `GET /v2/` without credentials: where its tokens come from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
}

/// What an access token is for: a registry, a repository, and whether it may push.
type Scope = (String, String, bool);

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    token: Option<String>,
    expires_in: Option<u64>,
}

/// HTTP clients trusting what the registry client trusts: one that verifies certificates, one
/// for the registries reached without verifying them; each made on first use.
pub(crate) struct Http {
    roots: std::sync::Arc<Vec<Vec<u8>>>,
    verified: std::sync::OnceLock<Result<reqwest::Client, String>>,
    unverified: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

impl Http {
    /// Trusting `roots` (DER), as the registry client does.
    pub(crate) fn new(roots: std::sync::Arc<Vec<Vec<u8>>>) -> Self {
        Self {
            roots,
            verified: std::sync::OnceLock::new(),
            unverified: std::sync::OnceLock::new(),
        }
    }

    fn client(&self, verify: bool) -> Result<&reqwest::Client, OciDistributionError> {
        let cell = if verify {
            &self.verified
        } else {
            &self.unverified
        };
        cell.get_or_init(|| {
            let certificates = self
                .roots
                .iter()
                .filter_map(|der| reqwest::Certificate::from_der(der).ok());
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .tls_certs_only(certificates)
                .danger_accept_invalid_certs(!verify)
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| OciDistributionError::GenericError(Some(format!("op-oci's HTTP client: {e}"))))
    }

    /// The manifest of `reference` (by tag or digest) from the registry at `base`
    /// (`scheme://host`), which is open ([`Http::is_open`]), as one of the media types
    /// `accepted`: its bytes and digest (that of the bytes, which must be the reference's when it
    /// has one, and the registry's `Docker-Content-Digest` when it says one). One request, where
    /// oci-client asks `GET /v2/` again before each manifest it reads without a token, and an
    /// open registry gives none. The registry's errors are oci-client's (a missing manifest is
    /// `MANIFEST_UNKNOWN`).
    pub(crate) async fn manifest(
        &self,
        (base, verify): (&str, bool),
        reference: &oci_client::Reference,
        accepted: &[&str],
    ) -> Result<(Vec<u8>, String), OciDistributionError> {
        let what = reference
            .digest()
            .or_else(|| reference.tag())
            .unwrap_or("latest");
        let url = format!("{base}/v2/{}/manifests/{what}", reference.repository());
        let answer = self
            .client(verify)?
            .get(&url)
            .header(reqwest::header::ACCEPT, accepted.join(", "))
            .send()
            .await?;
        let status = answer.status();
        let said = answer
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|d| d.to_str().ok())
            .map(str::to_string);
        let body = answer.bytes().await?;
        if status != reqwest::StatusCode::OK {
            return Err(refusal(status, &body, url));
        }
        let digest = crate::sha256(&body);
        for expected in [reference.digest(), said.as_deref()].into_iter().flatten() {
            if expected.starts_with("sha256:") && expected != digest {
                return Err(OciDistributionError::SpecViolationError(format!(
                    "the manifest {url} served has digest {digest}, not {expected}"
                )));
            }
        }
        Ok((body.to_vec(), digest))
    }

    /// Whether the registry at `base` (`scheme://host`) is open: it answers `GET /v2/` with a
    /// success and no challenge. Not when it cannot be asked (the requests say why).
    pub(crate) async fn is_open(&self, base: &str, verify: bool) -> bool {
        let Ok(client) = self.client(verify) else {
            return false;
        };
        match client.get(format!("{base}/v2/")).send().await {
            Ok(answer) => {
                answer.status().is_success()
                    && !answer
                        .headers()
                        .contains_key(reqwest::header::WWW_AUTHENTICATE)
            }
            Err(_) => false,
        }
    }
}

/// A registry's refusal (`status`, `body`) of a request for `url`, as oci-client reports
/// one: the registry's error codes when the body has them.
fn refusal(status: reqwest::StatusCode, body: &[u8], url: String) -> OciDistributionError {
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return OciDistributionError::UnauthorizedError { url };
    }
    match serde_json::from_slice::<oci_client::errors::OciEnvelope>(body) {
        Ok(envelope) if status.is_client_error() => {
            OciDistributionError::RegistryError { envelope, url }
        }
        _ => OciDistributionError::ServerError {
            code: status.as_u16(),
            url,
            message: String::from_utf8_lossy(body).into_owned(),
        },
    }
}

/// The exchanges of one registry client: challenges by registry, access tokens by registry,
/// repository and action, each asked for once while it is valid.
#[derive(Default)]
pub(crate) struct Exchange {
    challenges: tokio::sync::Mutex<HashMap<String, Challenge>>,
    tokens: tokio::sync::Mutex<HashMap<Scope, (String, Instant)>>,
}

impl Exchange {
    /// An access token for `repository` of `registry` (at `base`, its `scheme://host`), to
    /// pull, or to pull and push, from the refresh token `refresh`.
    pub(crate) async fn token(
        &self,
        http: &Http,
        (base, verify): (&str, bool),
        registry: &str,
        repository: &str,
        push: bool,
        refresh: &str,
    ) -> Result<String, OciDistributionError> {
        let key = (registry.to_string(), repository.to_string(), push);
        let mut tokens = self.tokens.lock().await;
        if let Some((token, until)) = tokens.get(&key)
            && Instant::now() + MARGIN < *until
        {
            return Ok(token.clone());
        }
        let http = http.client(verify)?;
        let challenge = self.challenge(http, base, registry).await?;
        let actions = if push { "pull,push" } else { "pull" };
        let scope = format!("repository:{repository}:{actions}");
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
            ("scope", scope.as_str()),
        ];
        if let Some(service) = &challenge.service {
            form.push(("service", service.as_str()));
        }
        let answer = http.post(&challenge.realm).form(&form).send().await?;
        let status = answer.status();
        if !status.is_success() {
            return Err(OciDistributionError::AuthenticationFailure(format!(
                "the token service {} refused the identity token ({status})",
                challenge.realm
            )));
        }
        let answer: Answer = answer.json().await?;
        let token = answer.access_token.or(answer.token).ok_or_else(|| {
            OciDistributionError::AuthenticationFailure(format!(
                "the token service {} gave no access token",
                challenge.realm
            ))
        })?;
        // The token specification's default lifetime is 60 seconds.
        let until = Instant::now() + Duration::from_secs(answer.expires_in.unwrap_or(60));
        tokens.insert(key, (token.clone(), until));
        Ok(token)
    }

    /// The challenge of `registry`, asked for once.
    async fn challenge(
        &self,
        http: &reqwest::Client,
        base: &str,
        registry: &str,
    ) -> Result<Challenge, OciDistributionError> {
        let mut challenges = self.challenges.lock().await;
        if let Some(known) = challenges.get(registry) {
            return Ok(known.clone());
        }
        let answer = http.get(format!("{base}/v2/")).send().await?;
        let header = answer
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let challenge = parse_challenge(header).ok_or_else(|| {
            OciDistributionError::AuthenticationFailure(format!(
                "{registry} has an identity token but does not ask for bearer tokens \
                 (its answer to GET /v2/ was {}{})",
                answer.status(),
                if header.is_empty() {
                    String::new()
                } else {
                    format!(", `WWW-Authenticate: {header}`")
                }
            ))
        })?;
        challenges.insert(registry.to_string(), challenge.clone());
        Ok(challenge)
    }
}

/// `Bearer realm="…",service="…",…` → its realm and service.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let (mut realm, mut service) = (None, None);
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            _ => {}
        }
        rest = remainder.trim_start_matches([',', ' ']);
    }
    Some(Challenge {
        realm: realm?,
        service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_as_oci_client_tells_them() {
        let url = || "http://r/v2/a/manifests/t".to_string();
        let unknown = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let missing = refusal(reqwest::StatusCode::NOT_FOUND, unknown, url());
        assert!(crate::error::not_found(&missing), "{missing}");
        assert!(matches!(
            refusal(reqwest::StatusCode::UNAUTHORIZED, b"", url()),
            OciDistributionError::UnauthorizedError { .. }
        ));
        let broken = refusal(reqwest::StatusCode::BAD_GATEWAY, b"upstream down", url());
        assert!(!crate::error::not_found(&broken));
        assert_eq!(
            broken.to_string(),
            "Server error: url http://r/v2/a/manifests/t, code: 502, message: upstream down"
        );
    }

    #[test]
    fn challenges_are_read_as_the_token_specification_writes_them() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Some(Challenge {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer service=reg, realm="https://a/t""#),
            Some(Challenge {
                realm: "https://a/t".into(),
                service: Some("reg".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry""#), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge(""), None);
    }
}
