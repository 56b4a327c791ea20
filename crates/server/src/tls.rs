//! TLS (rustls, through tonic) for the node's gRPC port and its connections to peers.
//!
//! One port carries client, admin and Raft traffic, so one server certificate covers all
//! three. mTLS is asked for at the handshake but not required there: SDKs and operators
//! connect without a client certificate, while the Raft service refuses any call whose
//! connection did not present a certificate signed by `tls_client_ca` (see
//! [`require_client_cert`]). A certificate that *is* presented is always verified by rustls
//! against `tls_client_ca`, so a peer cannot get in with a self-made one.
//!
//! ```text
//!   SDK / CLI ──TLS (server cert verified by tls_ca)──▶ ┐
//!                                                       ├─ node gRPC port: Client, Admin
//!   peer node ──mTLS (own cert as client cert)────────▶ ┘                  Raft (needs cert)
//! ```
//!
//! Why one port and an application-level check rather than a second, mTLS-only port: the
//! design contract exposes one gRPC address per node (`--grpc-addr`), and every peer already
//! dials that address for Raft, forwarding and snapshots. Why the files are read once at
//! start: a bad certificate must stop the node with a message naming the file, not surface
//! later as a failed handshake; rotating certificates is a rolling restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};

use crate::config::NodeConfig;
use crate::transport::Connector;

/// TLS material could not be loaded or is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("`{field}`: cannot read {}: {source}", path.display())]
    Read {
        /// The setting that names the file.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file does not hold what the setting needs.
    #[error("`{field}`: {} {rule}", path.display())]
    Content {
        /// The setting that names the file.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// What it must contain.
        rule: String,
    },
}

/// The PEM files of a TLS node, read into memory.
#[derive(Clone)]
pub struct TlsMaterial {
    cert_pem: Arc<[u8]>,
    key_pem: Arc<[u8]>,
    ca_pem: Arc<[u8]>,
    client_ca_pem: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TlsMaterial")
            .field("mtls", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

fn read_pem(
    field: &'static str,
    path: &Path,
    marker: &str,
    what: &str,
) -> Result<Arc<[u8]>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        field,
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN") || !text.contains(marker) {
        return Err(TlsError::Content {
            field,
            path: path.to_path_buf(),
            rule: format!("must be a PEM file holding {what}"),
        });
    }
    Ok(bytes.into())
}

impl TlsMaterial {
    /// Reads the files named by `config`; `None` when TLS is off (no `tls_cert`).
    ///
    /// Call after [`NodeConfig::validate`], which guarantees the settings come as a set.
    pub fn load(config: &NodeConfig) -> Result<Option<Self>, TlsError> {
        let (Some(cert), Some(key), Some(ca)) = (&config.tls_cert, &config.tls_key, &config.tls_ca)
        else {
            return Ok(None);
        };
        let material = Self {
            cert_pem: read_pem("tls_cert", cert, "CERTIFICATE", "a certificate chain")?,
            key_pem: read_pem("tls_key", key, "PRIVATE KEY", "a private key")?,
            ca_pem: read_pem("tls_ca", ca, "CERTIFICATE", "CA certificates")?,
            client_ca_pem: config
                .tls_client_ca
                .as_deref()
                .map(|p| read_pem("tls_client_ca", p, "CERTIFICATE", "CA certificates"))
                .transpose()?,
        };
        // Build both sides now so a key that does not match its certificate, or a CA file
        // rustls cannot parse, stops the node at start with the file named.
        tonic::transport::Server::builder()
            .tls_config(material.server_config())
            .map_err(|e| TlsError::Content {
                field: "tls_cert",
                path: cert.clone(),
                rule: format!("and tls_key {} are not a usable pair: {e}", key.display()),
            })?;
        Endpoint::from_static("https://127.0.0.1:1")
            .tls_config(material.client_config())
            .map_err(|e| TlsError::Content {
                field: "tls_ca",
                path: ca.clone(),
                rule: format!("is not usable as a trust root: {e}"),
            })?;
        Ok(Some(material))
    }

    /// Whether peers must present client certificates on Raft calls.
    pub fn mtls(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// The server side: this node's identity, and (mTLS) the CA its peers' client certificates
    /// must chain to. Client certificates are optional at the handshake; see the module doc.
    pub fn server_config(&self) -> ServerTlsConfig {
        let config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        match &self.client_ca_pem {
            Some(ca) => config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(true),
            None => config,
        }
    }

    /// The client side used towards peers: trust `tls_ca`, and present this node's own
    /// certificate when mTLS is on.
    pub fn client_config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if self.mtls() {
            config.identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
        } else {
            config
        }
    }
}

/// Reaches peers at `https://addr`, verifying them against `tls_ca` (and presenting this
/// node's certificate under mTLS).
#[derive(Debug, Clone)]
pub struct TlsConnector {
    material: TlsMaterial,
    /// How long establishing a connection (TCP and handshake) may take.
    pub connect_timeout: Duration,
}

impl TlsConnector {
    /// A connector using `material`.
    pub fn new(material: TlsMaterial) -> Self {
        Self {
            material,
            connect_timeout: Duration::from_millis(1_000),
        }
    }
}

impl Connector for TlsConnector {
    fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(self.material.client_config())?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        Ok(endpoint.connect_lazy())
    }
}

/// Refuses a Raft call whose connection presented no verified client certificate, when the
/// node runs mTLS. rustls has already checked any certificate presented against
/// `tls_client_ca`; here only its presence is left to check.
pub fn require_client_cert<T>(
    config: &NodeConfig,
    request: &tonic::Request<T>,
) -> Result<(), tonic::Status> {
    if config.tls_client_ca.is_none() {
        return Ok(());
    }
    let presented = request.peer_certs().is_some_and(|certs| !certs.is_empty());
    if presented {
        Ok(())
    } else {
        Err(tonic::Status::unauthenticated(
            "Raft calls to this node need a client certificate signed by its tls_client_ca \
             (mTLS): configure the calling node with tls_cert/tls_key issued by that CA",
        ))
    }
}
