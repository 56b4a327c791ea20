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
//! dials that address for Raft, forwarding and snapshots.
//!
//! The files are read at start (a bad certificate stops the node with a message naming the
//! file) and again on [`TlsState::reload`]: `serve` calls it on SIGHUP and when a file changes.
//! The node does its own TLS handshakes ([`accept`]) from the [`TlsState`] in force, so a
//! reload reaches the next connection, while open ones keep the certificate they started
//! with. A reload that fails keeps the old material. The HTTP port serves the same
//! certificate (HTTP/1.1), the gRPC port negotiates `h2`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::sync::RwLock;

use tokio_rustls::rustls;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::NodeConfig;
use crate::transport::Connector;

pub mod accept;

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
        // rustls cannot parse, stops the node (or fails the reload) with the file named.
        material
            .rustls_server(&[])
            .map_err(|rule| TlsError::Content {
                field: "tls_cert",
                path: cert.clone(),
                rule: format!(
                    "and tls_key {} are not a usable pair: {rule}",
                    key.display()
                ),
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
    /// `alpn`: the protocols offered (`h2` on the gRPC port).
    pub fn rustls_server(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate chain: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| format!("private key: {e}"))?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match &self.client_ca_pem {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|e| format!("tls_client_ca: {e}"))?;
                    roots.add(cert).map_err(|e| format!("tls_client_ca: {e}"))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("tls_client_ca: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
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

/// The TLS material in force, shared by the node's accept loops and its connector, and
/// replaced by [`TlsState::reload`].
#[derive(Debug, Clone)]
pub struct TlsState {
    current: Arc<RwLock<Current>>,
}

#[derive(Debug)]
struct Current {
    material: TlsMaterial,
    grpc: Arc<rustls::ServerConfig>,
    http: Arc<rustls::ServerConfig>,
}

/// The ALPN protocol gRPC runs on.
const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol of the HTTP port (axum serves HTTP/1.1).
const ALPN_HTTP1: &[u8] = b"http/1.1";

impl Current {
    fn build(material: TlsMaterial, config: &NodeConfig) -> Result<Self, TlsError> {
        let content = |rule: String| TlsError::Content {
            field: "tls_cert",
            path: config.tls_cert.clone().unwrap_or_default(),
            rule,
        };
        Ok(Self {
            grpc: material.rustls_server(&[ALPN_H2]).map_err(content)?,
            http: material.rustls_server(&[ALPN_HTTP1]).map_err(content)?,
            material,
        })
    }
}

/// Which port a handshake is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The gRPC port (`h2`).
    Grpc,
    /// The HTTP port (HTTP/1.1).
    Http,
}

impl TlsState {
    /// Reads the files named by `config`; `None` when TLS is off.
    pub fn load(config: &NodeConfig) -> Result<Option<Self>, TlsError> {
        let Some(material) = TlsMaterial::load(config)? else {
            return Ok(None);
        };
        let current = Current::build(material, config)?;
        Ok(Some(Self {
            current: Arc::new(RwLock::new(current)),
        }))
    }

    /// Reads the files again and, when they are usable, serves them to new connections. On
    /// an error the material in force stays, and the error says which file is wrong.
    pub fn reload(&self, config: &NodeConfig) -> Result<(), TlsError> {
        let material = TlsMaterial::load(config)?.ok_or_else(|| TlsError::Content {
            field: "tls_cert",
            path: PathBuf::new(),
            rule: "was removed from the configuration; TLS cannot be turned off by a reload".into(),
        })?;
        let next = Current::build(material, config)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// The material in force.
    pub fn material(&self) -> TlsMaterial {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.material.clone()
    }

    /// An acceptor with the certificate in force, for one handshake on `port`.
    pub fn acceptor(&self, port: Port) -> tokio_rustls::TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let config = match port {
            Port::Grpc => Arc::clone(&current.grpc),
            Port::Http => Arc::clone(&current.http),
        };
        tokio_rustls::TlsAcceptor::from(config)
    }
}

/// Reaches peers at `https://addr`, verifying them against `tls_ca` (and presenting this
/// node's certificate under mTLS), with the material in force when the channel is made.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    state: TlsState,
    /// How long establishing a connection (TCP and handshake) may take.
    pub connect_timeout: Duration,
}

impl TlsConnector {
    /// A connector using the material of `state`.
    pub fn new(state: TlsState) -> Self {
        Self {
            state,
            connect_timeout: Duration::from_millis(1_000),
        }
    }
}

impl Connector for TlsConnector {
    fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(self.state.material().client_config())?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(crate::transport::KEEPALIVE_INTERVAL)
            .keep_alive_timeout(crate::transport::KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
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
