//! What went wrong with a registry.

use oci_client::errors::{OciDistributionError, OciErrorCode};

/// What went wrong with a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{reference}` is not an image reference")]
    BadReference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },
    #[error("Failed to {action} `{reference}`")]
    Registry {
        action: String,
        reference: String,
        #[source]
        source: OciDistributionError,
    },
    #[error("This system has no CA certificates, which the registry client needs")]
    NoRoots,
    #[error("Failed to set up a registry client")]
    Client {
        #[source]
        source: OciDistributionError,
    },
    #[error("`{reference}` is not a usable image: {problem}")]
    Invalid { reference: String, problem: String },
}

impl Error {
    /// Whether the registry refused the credentials (or their absence).
    pub fn is_unauthorized(&self) -> bool {
        // oci-client reports a failed TLS handshake while authenticating as an authentication
        // failure: the registry did not answer.
        if self.is_untrusted_certificate() {
            return false;
        }
        match self {
            Error::Registry { source, .. } => match source {
                OciDistributionError::UnauthorizedError { .. }
                | OciDistributionError::AuthenticationFailure(_) => true,
                OciDistributionError::RegistryError { envelope, .. } => envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
                // A 401 or 403 oci-client did not parse (an upload refused for want of the push
                // scope, a request made without the token it could not get).
                OciDistributionError::ServerError { code, .. } => matches!(code, 401 | 403),
                OciDistributionError::RequestError(e) => {
                    matches!(e.status().map(|s| s.as_u16()), Some(401 | 403))
                }
                _ => false,
            },
            _ => false,
        }
    }
}

impl Error {
    /// The image reference the error is about, when it is about one.
    pub fn reference(&self) -> Option<&str> {
        match self {
            Error::BadReference { reference, .. }
            | Error::Registry { reference, .. }
            | Error::Invalid { reference, .. } => Some(reference),
            Error::NoRoots | Error::Client { .. } => None,
        }
    }

    /// Whether the registry answered (with an error), rather than not at all.
    pub fn registry_answered(&self) -> bool {
        matches!(
            self,
            Error::Registry {
                source: OciDistributionError::ServerError { .. }
                    | OciDistributionError::RegistryError { .. }
                    | OciDistributionError::UnauthorizedError { .. }
                    | OciDistributionError::AuthenticationFailure(_)
                    | OciDistributionError::ImageManifestNotFoundError(_),
                ..
            }
        )
    }

    /// Whether the registry refused to be written to (`405 Method Not Allowed`, or `UNSUPPORTED`),
    /// as one in read-only maintenance does.
    pub fn is_write_refused(&self) -> bool {
        match self {
            Error::Registry { source, .. } => match source {
                OciDistributionError::ServerError { code, .. } => *code == 405,
                OciDistributionError::RegistryError { envelope, .. } => envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::Unsupported)),
                _ => false,
            },
            _ => false,
        }
    }

    /// Why the TLS handshake refused the registry's certificate, when it did: rustls's reason
    /// (`UnknownIssuer`, `NotValidForName…`, `Expired…`).
    pub fn certificate_problem(&self) -> Option<String> {
        const REFUSED: &str = "invalid peer certificate: ";
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            let text = error.to_string();
            if let Some(at) = text.find(REFUSED) {
                return Some(text[at + REFUSED.len()..].to_string());
            }
            cause = error.source();
        }
        None
    }

    /// Whether the TLS handshake refused the registry's certificate.
    pub fn is_untrusted_certificate(&self) -> bool {
        self.certificate_problem().is_some()
    }

    /// Whether the registry answered that it does not have what was asked for.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Registry { source, .. } if not_found(source))
    }
}

pub(crate) fn not_found(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
            )
        }),
        _ => false,
    }
}
