//! The connection to the admin API: endpoint failover, credentials, deadlines, and turning a
//! gRPC status into an error message that says what to fix.
//!
//! Endpoints are tried in order. An endpoint that cannot be reached, answers `Unavailable`
//! (no leader, shutting down) or does not answer within the deadline is skipped and the next
//! one is tried; any other answer, success or error, is final. The endpoint that answered is
//! remembered, so the pages of a long listing go to the same node.
//!
//! Every call carries `authorization: Bearer $SWITCHYARD_ADMIN_TOKEN` (when set), the
//! operator identity in [`ACTOR_METADATA_KEY`] and the command's request id in
//! [`REQUEST_ID_METADATA_KEY`], both of which the server records in the audit log. The request
//! id is one per command (every call and endpoint of it), so the id printed with an error
//! names everything the command did.
//!
//! With `--tls-ca` (or `SWITCHYARD_TLS_CA`) every endpoint is dialled over `https://` and
//! verified against that CA; `--tls-client-cert`/`--tls-client-key` add a client certificate.
//! The token then never crosses the network in clear text.

use std::error::Error as StdError;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use switchyard_proto::admin::admin_client::AdminClient;
use switchyard_proto::{ACTOR_METADATA_KEY, REQUEST_ID_METADATA_KEY};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Response, Status};

/// Largest answer accepted (a full breaker or audit page can be large).
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Longest wait for a TCP connection to one endpoint before trying the next.
const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(2);
/// Longest actor name sent; the server may cap it further.
const ACTOR_BYTES_MAX: usize = 64;

/// How to reach and authenticate to the cluster.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// `host:port` (or `http://host:port`) endpoints, tried in order.
    pub endpoints: Vec<String>,
    /// The admin token, if any.
    pub token: Option<String>,
    /// The operator identity recorded in the audit log.
    pub actor: String,
    /// Deadline of one call at one endpoint.
    pub call_timeout: Duration,
    /// TLS towards the nodes, if configured.
    pub tls: Option<ClientTlsConfig>,
    /// The request id every call carries (valid per `switchyard_core::validate_request_id`).
    pub request_id: String,
}

/// Where the CLI's TLS files come from: the global flags, else `SWITCHYARD_TLS_*`.
#[derive(Debug, Clone, Default)]
pub struct TlsPaths {
    /// `--tls-ca` / `SWITCHYARD_TLS_CA`.
    pub ca: Option<PathBuf>,
    /// `--tls-client-cert` / `SWITCHYARD_TLS_CLIENT_CERT`.
    pub client_cert: Option<PathBuf>,
    /// `--tls-client-key` / `SWITCHYARD_TLS_CLIENT_KEY`.
    pub client_key: Option<PathBuf>,
}

impl TlsPaths {
    /// Reads the files into a tonic TLS configuration; `None` without a CA.
    pub fn load(&self) -> anyhow::Result<Option<ClientTlsConfig>> {
        let read = |flag: &str, path: &Path| {
            std::fs::read(path).with_context(|| format!("{flag}: cannot read {}", path.display()))
        };
        let Some(ca) = &self.ca else {
            if self.client_cert.is_some() {
                bail!(
                    "--tls-client-cert needs --tls-ca (or SWITCHYARD_TLS_CA) to verify the nodes"
                );
            }
            return Ok(None);
        };
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--tls-ca", ca)?));
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read("--tls-client-cert", cert)?,
                    read("--tls-client-key", key)?,
                ));
            }
            (None, None) => {}
            _ => bail!("--tls-client-cert and --tls-client-key must be given together"),
        }
        Ok(Some(config))
    }
}

impl AdminOptions {
    /// Options from the `--endpoints` value and the process environment
    /// (`SWITCHYARD_ADMIN_TOKEN`, `SWITCHYARD_ACTOR`, `USER`).
    /// `tls` comes from the global flags; a path not given there is taken from
    /// `SWITCHYARD_TLS_CA`, `SWITCHYARD_TLS_CLIENT_CERT`, `SWITCHYARD_TLS_CLIENT_KEY`.
    pub fn from_env(
        endpoints: &str,
        call_timeout_ms: u64,
        tls: TlsPaths,
        request_id: String,
    ) -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let tls = TlsPaths {
            ca: tls
                .ca
                .or_else(|| var("SWITCHYARD_TLS_CA").map(PathBuf::from)),
            client_cert: tls
                .client_cert
                .or_else(|| var("SWITCHYARD_TLS_CLIENT_CERT").map(PathBuf::from)),
            client_key: tls
                .client_key
                .or_else(|| var("SWITCHYARD_TLS_CLIENT_KEY").map(PathBuf::from)),
        };
        Ok(Self {
            endpoints: parse_endpoints(endpoints)?,
            token: var("SWITCHYARD_ADMIN_TOKEN").map(|t| t.trim().to_string()),
            actor: actor_name(var("SWITCHYARD_ACTOR"), var("USER")),
            call_timeout: Duration::from_millis(call_timeout_ms.max(1)),
            tls: tls.load()?,
            request_id,
        })
    }
}

/// A fresh request id for one command: UUID-shaped, seeded by the OS (std's per-process
/// random hash keys) and the clock.
pub fn new_request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    switchyard_core::RequestIds::new(hasher.finish()).next_id()
}

/// Splits `a:1, b:2` into endpoints; at least one is required.
pub fn parse_endpoints(text: &str) -> anyhow::Result<Vec<String>> {
    let endpoints: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    if endpoints.is_empty() {
        bail!(
            "no endpoints: pass --endpoints HOST:PORT[,HOST:PORT...] or set SWITCHYARD_ENDPOINTS"
        );
    }
    Ok(endpoints)
}

/// The operator identity: `SWITCHYARD_ACTOR`, else `$USER`, else `cli`; reduced to printable
/// ASCII so it fits in request metadata.
pub fn actor_name(explicit: Option<String>, user: Option<String>) -> String {
    let raw = explicit.or(user).unwrap_or_else(|| "cli".to_string());
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(ACTOR_BYTES_MAX)
        .collect();
    if cleaned.is_empty() {
        "cli".to_string()
    } else {
        cleaned
    }
}

/// An admin client with failover across endpoints.
#[derive(Debug)]
pub struct Admin {
    options: AdminOptions,
    /// The endpoint (index) and channel that answered last.
    current: Mutex<Option<(usize, Channel)>>,
}

impl Admin {
    /// A client; nothing is connected until the first call.
    pub fn new(options: AdminOptions) -> Self {
        Self {
            options,
            current: Mutex::new(None),
        }
    }

    /// Calls `rpc` with `message`, trying each endpoint in order until one answers.
    ///
    /// `call` receives a fresh client and the request (with credentials attached), e.g.
    /// `|mut c, r| async move { c.status(r).await }`.
    pub async fn call<Req, Resp, F, Fut>(
        &self,
        rpc: &str,
        message: Req,
        call: F,
    ) -> anyhow::Result<Resp>
    where
        Req: Clone,
        F: Fn(AdminClient<Channel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let count = self.options.endpoints.len();
        let cached = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let start = cached.as_ref().map_or(0, |(i, _)| *i);
        let mut tried = Vec::new();
        for i in (start..count).chain(0..start) {
            let endpoint = &self.options.endpoints[i];
            let channel = match &cached {
                Some((cached_i, channel)) if *cached_i == i => channel.clone(),
                _ => match self.connect(endpoint).await {
                    Ok(channel) => channel,
                    Err(e) => {
                        tried.push(format!("{endpoint}: cannot connect: {e}"));
                        continue;
                    }
                },
            };
            let client =
                AdminClient::new(channel.clone()).max_decoding_message_size(RESPONSE_BYTES_MAX);
            let request = self.request(message.clone())?;
            match call(client, request).await {
                Ok(response) => {
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((i, channel));
                    return Ok(response.into_inner());
                }
                Err(status) if is_skippable(&status) => {
                    tried.push(format!(
                        "{endpoint}: {}",
                        describe_skip(&status, self.options.call_timeout)
                    ));
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Err(status) => return Err(explain(rpc, endpoint, &status)),
            }
        }
        bail!(
            "{rpc}: no endpoint could answer; tried:\n  {}\nstart a node (`switchyard serve`) or \
             point --endpoints / SWITCHYARD_ENDPOINTS at a running cluster",
            tried.join("\n  ")
        )
    }

    async fn connect(&self, endpoint: &str) -> Result<Channel, String> {
        let scheme = if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let uri = if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("{scheme}://{endpoint}")
        };
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|e| format!("not a valid HOST:PORT ({})", chain(&e)))?;
        if let Some(tls) = &self.options.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS settings unusable ({})", chain(&e)))?;
        }
        let endpoint = endpoint
            .connect_timeout(self.options.call_timeout.min(CONNECT_TIMEOUT_MAX))
            .timeout(self.options.call_timeout)
            .tcp_nodelay(true);
        endpoint.connect().await.map_err(|e| chain(&e))
    }

    fn request<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request.set_timeout(self.options.call_timeout);
        if let Some(token) = &self.options.token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .ok()
                .filter(|_| token.bytes().all(|b| b.is_ascii_graphic()))
                .context("SWITCHYARD_ADMIN_TOKEN must be printable ASCII without spaces")?;
            request.metadata_mut().insert("authorization", value);
        }
        let actor = MetadataValue::try_from(self.options.actor.as_str())
            .context("SWITCHYARD_ACTOR must be printable ASCII")?;
        request.metadata_mut().insert(ACTOR_METADATA_KEY, actor);
        let id = MetadataValue::try_from(self.options.request_id.as_str())
            .context("--request-id must be printable ASCII")?;
        request.metadata_mut().insert(REQUEST_ID_METADATA_KEY, id);
        Ok(request)
    }
}

/// Whether another endpoint may do better: unreachable, no leader, or too slow.
fn is_skippable(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded => true,
        // tonic reports its own client-side deadline as Cancelled("Timeout expired").
        Code::Cancelled => status.message().to_ascii_lowercase().contains("timeout"),
        // A status tonic made up from a transport error (the node died mid-call, the
        // connection was reset, an HTTP/2 protocol error): no node answered, whatever the code
        // (`UNKNOWN: transport error`, `RESOURCE_EXHAUSTED: h2 protocol error`).
        _ => std::error::Error::source(status).is_some(),
    }
}

fn describe_skip(status: &Status, timeout: Duration) -> String {
    match status.code() {
        Code::Unavailable => format!("unavailable: {}", status_text(status)),
        Code::Cancelled | Code::DeadlineExceeded => format!(
            "no answer within {} ms (raise --timeout?)",
            timeout.as_millis()
        ),
        _ => format!("connection failed: {}", status_text(status)),
    }
}

fn status_text(status: &Status) -> String {
    let mut text = status.message().to_string();
    if let Some(source) = status.source() {
        let detail = chain(source);
        if !detail.is_empty() && !text.contains(&detail) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&detail);
        }
    }
    if text.is_empty() {
        format!("{:?}", status.code())
    } else {
        text
    }
}

/// Turns a final error status into a message that says what to fix.
pub fn explain(rpc: &str, endpoint: &str, status: &Status) -> anyhow::Error {
    let message = status_text(status);
    match status.code() {
        Code::InvalidArgument => anyhow::anyhow!("rejected: {message}"),
        Code::Unauthenticated => anyhow::anyhow!(
            "not authenticated ({message}): set SWITCHYARD_ADMIN_TOKEN to the cluster's admin token"
        ),
        Code::PermissionDenied => anyhow::anyhow!(
            "permission denied ({message}): SWITCHYARD_ADMIN_TOKEN is not the cluster's admin token"
        ),
        Code::NotFound => anyhow::anyhow!("{message}"),
        Code::ResourceExhausted => {
            anyhow::anyhow!("over a limit: {message} (nothing was changed)")
        }
        Code::FailedPrecondition => anyhow::anyhow!("refused: {message}"),
        Code::AlreadyExists => anyhow::anyhow!("already exists: {message}"),
        Code::Unimplemented => anyhow::anyhow!(
            "{endpoint} does not serve {rpc} ({message}): is it a switchyard node of the same version?"
        ),
        code => anyhow::anyhow!("{rpc} failed at {endpoint}: {code:?}: {message}"),
    }
}

/// An error and its sources, `outer: inner: innermost`.
fn chain(error: &dyn StdError) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_and_trim() {
        assert_eq!(parse_endpoints("a:1, b:2,,").unwrap(), vec!["a:1", "b:2"]);
        assert!(
            parse_endpoints(" , ")
                .unwrap_err()
                .to_string()
                .contains("SWITCHYARD_ENDPOINTS")
        );
    }

    #[test]
    fn actor_prefers_the_explicit_name_then_user() {
        assert_eq!(
            actor_name(Some("alice".into()), Some("bob".into())),
            "alice"
        );
        assert_eq!(actor_name(None, Some("bob".into())), "bob");
        assert_eq!(actor_name(None, None), "cli");
        assert_eq!(actor_name(Some("a b\n".into()), None), "a_b");
    }

    #[test]
    fn statuses_explain_what_to_fix() {
        let e = explain(
            "SetOverride",
            "h:1",
            &Status::invalid_argument("invalid `key`: bad"),
        );
        assert!(e.to_string().contains("`key`"));
        let e = explain("Status", "h:1", &Status::unauthenticated("missing"));
        assert!(e.to_string().contains("SWITCHYARD_ADMIN_TOKEN"));
        let e = explain("Status", "h:1", &Status::permission_denied("bad token"));
        assert!(e.to_string().contains("SWITCHYARD_ADMIN_TOKEN"));
        assert!(is_skippable(&Status::unavailable("no leader")));
        assert!(is_skippable(&Status::cancelled("Timeout expired")));
        assert!(!is_skippable(&Status::not_found("x")));
    }

    #[test]
    fn a_transport_failure_moves_on_to_the_next_endpoint_whatever_its_code() {
        // What tonic makes of a connection reset while a node dies: UNKNOWN with the transport
        // error as its source. The same code answered by a node (no source) is the node's word.
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let transport = Status::from_error(Box::new(reset));
        assert_eq!(transport.code(), Code::Unknown);
        assert!(is_skippable(&transport));
        assert!(describe_skip(&transport, Duration::from_secs(1)).contains("reset by peer"));
        assert!(!is_skippable(&Status::unknown("transport error")));
        assert!(!is_skippable(&Status::resource_exhausted("rate limit")));
    }

    #[tokio::test]
    async fn unreachable_endpoints_are_all_listed() {
        // Port 1 on loopback refuses connections.
        let admin = Admin::new(AdminOptions {
            endpoints: vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
            token: None,
            actor: "test".into(),
            call_timeout: Duration::from_secs(1),
            tls: None,
            request_id: new_request_id(),
        });
        let err = admin
            .call(
                "Status",
                switchyard_proto::admin::StatusRequest { local: true },
                |mut c, r| async move { c.status(r).await },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("127.0.0.1:1") && err.contains("127.0.0.1:2"),
            "{err}"
        );
        assert!(err.contains("SWITCHYARD_ENDPOINTS"), "{err}");
    }
}
