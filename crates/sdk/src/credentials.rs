//! How the SDK authenticates to the cluster: the client token and TLS.
//!
//! The node accepts SDK calls with `authorization: Bearer <client token>` when it has a client
//! token configured (DESIGN §8). The token is attached by a tonic interceptor to every call
//! (Report, Watch, probes) on every endpoint, so the agent code never handles it. Like the
//! node's, it is printed as `<redacted>` by `Debug`.
//!
//! TLS verifies the nodes against a CA the application names ([`ClientTls`]): a token sent to
//! an impostor is a token lost, so production deployments should use both.

use std::fmt;
use std::path::Path;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::Error;

/// Environment variable holding the client token.
pub const CLIENT_TOKEN_ENV: &str = "SWITCHYARD_CLIENT_TOKEN";

/// The client token as a ready-made header value.
#[derive(Clone, Default)]
pub(crate) struct BearerToken(Option<MetadataValue<Ascii>>);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("BearerToken(<redacted>)"),
            None => f.write_str("BearerToken(none)"),
        }
    }
}

impl BearerToken {
    /// Validates `token` (printable ASCII, no spaces, not empty) into a header value.
    pub(crate) fn new(token: Option<&str>) -> Result<Self, Error> {
        let Some(token) = token.map(str::trim) else {
            return Ok(Self(None));
        };
        let invalid = |rule: &str| Error::InvalidOption {
            option: "token",
            rule: rule.to_owned(),
        };
        if token.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("must be printable ASCII with no spaces"));
        }
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| invalid("must be printable ASCII with no spaces"))?;
        Ok(Self(Some(value)))
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// TLS towards the cluster: the CA that signs the nodes' certificates, and optionally a
/// client certificate.
#[derive(Clone)]
pub struct ClientTls {
    pub(crate) config: ClientTlsConfig,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trust the nodes whose certificates chain to this PEM CA.
    pub fn from_ca_pem(ca_pem: impl AsRef<[u8]>) -> Self {
        Self {
            config: ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)),
        }
    }

    /// Reads the PEM CA from a file.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| Error::InvalidOption {
            option: "tls",
            rule: format!("cannot read the CA file {}: {e}", path.display()),
        })?;
        Ok(Self::from_ca_pem(pem))
    }

    /// Presents this PEM certificate and key to the nodes.
    pub fn identity(self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        Self {
            config: self.config.identity(Identity::from_pem(cert_pem, key_pem)),
        }
    }

    /// Verifies the nodes' certificates for this name instead of the endpoint's host.
    pub fn domain_name(self, name: impl Into<String>) -> Self {
        Self {
            config: self.config.domain_name(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_validated_and_redacted() {
        let t = BearerToken::new(Some("s3cret")).unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        let mut interceptor = t;
        let request = interceptor.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        for bad in ["", "  ", "has space", "tab\there"] {
            let err = BearerToken::new(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("`token`"), "{bad:?}: {err}");
        }
        let mut none = BearerToken::new(None).unwrap();
        let request = none.call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }
}
