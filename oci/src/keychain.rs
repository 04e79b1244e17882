//! Credentials by registry host, from `CNB_REGISTRY_AUTH` (`{"host": "Basic …"}`, `Bearer …`
//! or `X-Identity …`, the lifecycle's forms).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

/// Credentials by registry host.
#[derive(Clone, Default)]
pub struct Keychain {
    entries: BTreeMap<String, RegistryAuth>,
    /// Identity (refresh) tokens, exchanged for access tokens ([`crate::identity`]).
    identities: BTreeMap<String, String>,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets themselves.
        f.debug_struct("Keychain")
            .field(
                "registries",
                &self
                    .entries
                    .keys()
                    .chain(self.identities.keys())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keychain {
    /// Parses `CNB_REGISTRY_AUTH`: a JSON object of registry → `Authorization` value
    /// (`Basic <base64 user:pass>`, `Bearer <token>` or `X-Identity <refresh token>`). Keys may
    /// carry a scheme and a path, which are ignored.
    pub fn from_cnb_registry_auth(json: &str) -> Result<Self, String> {
        let map: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| format!("CNB_REGISTRY_AUTH is not a JSON object of strings: {e}"))?;
        let mut entries = BTreeMap::new();
        let mut identities = BTreeMap::new();
        for (key, header) in map {
            let host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or(host).to_string();
            let (scheme, value) = header.split_once(' ').unwrap_or((header.as_str(), ""));
            let auth = match scheme {
                "Basic" => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(value.trim())
                        .ok()
                        .and_then(|d| String::from_utf8(d).ok())
                        .ok_or_else(|| format!("CNB_REGISTRY_AUTH: the Basic credentials of `{host}` are not base64 `user:password`"))?;
                    let (user, password) =
                        decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
                    RegistryAuth::Basic(user.to_string(), password.to_string())
                }
                "Bearer" => RegistryAuth::Bearer(value.trim().to_string()),
                "X-Identity" => {
                    identities.insert(host, value.trim().to_string());
                    continue;
                }
                other => {
                    return Err(format!(
                        "CNB_REGISTRY_AUTH: the `{other}` credentials of `{host}` are not supported (use Basic, Bearer or X-Identity)"
                    ));
                }
            };
            entries.insert(host, auth);
        }
        Ok(Self {
            entries,
            identities,
        })
    }

    /// The names `registry` is known by: Docker Hub's are one.
    fn names_of(registry: &str) -> Vec<&str> {
        let hub = ["index.docker.io", "docker.io", "registry-1.docker.io"];
        if hub.contains(&registry) {
            hub.to_vec()
        } else {
            vec![registry]
        }
    }

    /// The identity token of `registry`, if it has one (then [`Keychain::auth_for`] gives
    /// none).
    pub(crate) fn identity_for(&self, registry: &str) -> Option<&str> {
        Self::names_of(registry)
            .iter()
            .find_map(|r| self.identities.get(*r))
            .map(String::as_str)
    }

    /// The credentials for `registry` (anonymous when there are none). Docker Hub's names are
    /// treated as one.
    pub fn auth_for(&self, registry: &str) -> RegistryAuth {
        Self::names_of(registry)
            .iter()
            .find_map(|r| self.entries.get(*r).cloned())
            .unwrap_or(RegistryAuth::Anonymous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keychains_read_cnb_registry_auth() {
        let keychain = Keychain::from_cnb_registry_auth(
            r#"{"https://ghcr.io/v2/": "Basic dXNlcjpwYXNz", "reg.example:5000": "Bearer tok", "index.docker.io": "Basic YTpi"}"#,
        )
        .unwrap();
        assert!(
            matches!(keychain.auth_for("ghcr.io"), RegistryAuth::Basic(u, p) if u == "user" && p == "pass")
        );
        assert!(
            matches!(keychain.auth_for("reg.example:5000"), RegistryAuth::Bearer(t) if t == "tok")
        );
        assert!(matches!(keychain.auth_for("docker.io"), RegistryAuth::Basic(u, _) if u == "a"));
        assert!(matches!(
            keychain.auth_for("other.example"),
            RegistryAuth::Anonymous
        ));
        assert!(
            !format!("{keychain:?}").contains("dXNlcjpwYXNz"),
            "secrets are not printed"
        );
        assert!(Keychain::from_cnb_registry_auth("[]").is_err());
        let identity = Keychain::from_cnb_registry_auth(
            r#"{"r": "X-Identity refresh-r", "docker.io": "X-Identity h"}"#,
        )
        .unwrap();
        assert_eq!(identity.identity_for("r"), Some("refresh-r"));
        assert_eq!(identity.identity_for("index.docker.io"), Some("h"));
        assert!(matches!(identity.auth_for("r"), RegistryAuth::Anonymous));
        assert!(!format!("{identity:?}").contains("refresh-r"));
        assert!(
            Keychain::from_cnb_registry_auth(r#"{"r": "Digest t"}"#)
                .unwrap_err()
                .contains("`Digest` credentials")
        );
        assert!(Keychain::from_cnb_registry_auth(r#"{"r": "Basic !!!"}"#).is_err());
    }
}
