//! Bearer tokens for the four kinds of caller: operators (admin), dashboards and scrapers
//! (viewer, read-only), SDKs (client) and peers (cluster).
//!
//! Tokens are compared in constant time so a caller cannot learn a token byte by byte from
//! response timing. A role none of whose tokens is configured is open: that is the development
//! mode on loopback; `serve` refuses to bind a non-loopback address with no tokens unless told
//! `--insecure` (see the CLI). Tokens are never logged: [`Token`]'s `Debug` prints a redaction,
//! and a refusal names which token was missing or wrong, never a value.
//!
//! | role | accepted tokens | used by |
//! |---|---|---|
//! | [`Role::Admin`] | admin | the gRPC admin service, HTTP writes and the audit trail |
//! | [`Role::Read`] | viewer, admin | HTTP reads under `/api/v1/` (and `/metrics` when asked) |
//! | [`Role::Client`] | client, admin | the gRPC client service (SDKs) |
//! | [`Role::Cluster`] | cluster | Raft RPCs between nodes |
//!
//! The accepted set lives behind [`Tokens`], a shared handle: `serve` swaps in a new
//! [`TokenSet`] when the token files change or on SIGHUP, and every check after the swap uses
//! it. Calls already admitted are not re-checked.

use std::fmt;
use std::sync::{Arc, RwLock};

use tonic::metadata::MetadataValue;

/// The metadata key carrying `Bearer <token>`.
pub const AUTHORIZATION: &str = "authorization";

/// A secret token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Wraps a token, rejecting empty and non-printable ones (they cannot travel in a header).
    pub fn new(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.is_empty() {
            return Err("token is empty".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("token must be printable ASCII with no spaces".into());
        }
        Ok(Self(token.into()))
    }

    fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = expected.len() ^ presented.len();
    for (i, &e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(0);
        diff |= usize::from(e ^ p);
    }
    diff == 0
}

/// Which role a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Operator calls: the admin service and the HTTP write API.
    Admin,
    /// Reads over HTTP: the viewer or the admin token.
    Read,
    /// SDK calls: the client service.
    Client,
    /// Raft traffic between nodes.
    Cluster,
}

impl Role {
    /// "an Admin call", "a read", ... for messages.
    fn call(self) -> &'static str {
        match self {
            Role::Admin => "an Admin call",
            Role::Read => "a read",
            Role::Client => "a Client call",
            Role::Cluster => "a Cluster call",
        }
    }

    /// The tokens this role accepts, for messages.
    fn needs(self) -> &'static str {
        match self {
            Role::Admin => "the admin token",
            Role::Read => "the viewer or the admin token",
            Role::Client => "the client or the admin token",
            Role::Cluster => "the cluster token",
        }
    }
}

/// The tokens a node accepts, one per kind of caller (a value; see [`Tokens`] for the shared,
/// reloadable handle).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSet {
    /// Token for admin calls (also accepted for reads and client calls).
    pub admin: Option<Token>,
    /// Read-only token for the HTTP API, the dashboard and (when asked) `/metrics`.
    pub viewer: Option<Token>,
    /// Token for client (SDK) calls.
    pub client: Option<Token>,
    /// Token for Raft calls between nodes.
    pub cluster: Option<Token>,
}

impl TokenSet {
    /// Whether any token is configured.
    pub fn any(&self) -> bool {
        self.admin.is_some()
            || self.viewer.is_some()
            || self.client.is_some()
            || self.cluster.is_some()
    }

    /// The tokens `role` accepts, with the name of each; empty means the role is open.
    fn accepted(&self, role: Role) -> Vec<(&'static str, &Token)> {
        fn named<'a>(
            name: &'static str,
            t: &'a Option<Token>,
        ) -> Option<(&'static str, &'a Token)> {
            t.as_ref().map(|t| (name, t))
        }
        let list = match role {
            Role::Admin => vec![named("admin", &self.admin)],
            Role::Read => vec![named("viewer", &self.viewer), named("admin", &self.admin)],
            Role::Client => {
                // The admin token opens the client service only when the client role is locked
                // (an operator may watch decisions); with no client token it is open anyway.
                if self.client.is_none() {
                    return Vec::new();
                }
                vec![named("client", &self.client), named("admin", &self.admin)]
            }
            Role::Cluster => vec![named("cluster", &self.cluster)],
        };
        list.into_iter().flatten().collect()
    }

    /// Which configured token `presented` is, if any (to say "the viewer token is read-only"
    /// rather than "wrong token"). Every token is compared, so timing reveals nothing.
    fn identify(&self, presented: &[u8]) -> Option<&'static str> {
        let mut found = None;
        for (name, token) in [
            ("admin", &self.admin),
            ("viewer", &self.viewer),
            ("client", &self.client),
            ("cluster", &self.cluster),
        ] {
            if token.as_ref().is_some_and(|t| t.matches(presented)) {
                found = found.or(Some(name));
            }
        }
        found
    }

    /// Checks a presented `authorization` value (`None`: the header is absent) for `role`.
    pub fn check_header(&self, role: Role, authorization: Option<&[u8]>) -> Result<(), AuthError> {
        let accepted = self.accepted(role);
        if accepted.is_empty() {
            return Ok(());
        }
        let presented = authorization
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .ok_or(AuthError::Missing { role })?;
        // Check every candidate so timing does not reveal which one matched.
        let matched = accepted
            .iter()
            .fold(false, |acc, (_, t)| acc | t.matches(presented));
        if matched {
            return Ok(());
        }
        Err(AuthError::Wrong {
            role,
            presented: self.identify(presented),
        })
    }
}

/// A refused call: which token was missing or wrong. Never holds a token's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer <token>` header.
    #[error("missing `authorization: Bearer <token>` for {}: send {}", .role.call(), .role.needs())]
    Missing {
        /// What the call needed.
        role: Role,
    },
    /// A token was presented, but not one the role accepts.
    #[error("{}", wrong_message(*.role, *.presented))]
    Wrong {
        /// What the call needed.
        role: Role,
        /// Which known token was presented (`None`: none of this node's tokens).
        presented: Option<&'static str>,
    },
}

fn wrong_message(role: Role, presented: Option<&'static str>) -> String {
    match presented {
        Some("viewer") => format!(
            "the viewer token is read-only and cannot make {}: it needs {}",
            role.call(),
            role.needs()
        ),
        Some(name) => format!(
            "the {name} token is not accepted for {}: it needs {}",
            role.call(),
            role.needs()
        ),
        None => format!(
            "the presented token is wrong for {}: it is none of this node's tokens, and {} needs {}",
            role.call(),
            role.call(),
            role.needs()
        ),
    }
}

impl From<AuthError> for tonic::Status {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing { .. } => tonic::Status::unauthenticated(e.to_string()),
            AuthError::Wrong { .. } => tonic::Status::permission_denied(e.to_string()),
        }
    }
}

/// The tokens a node accepts: a shared handle that `serve` can swap without a restart.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    current: Arc<RwLock<TokenSet>>,
}

impl Tokens {
    /// A handle holding `set`.
    pub fn new(set: TokenSet) -> Self {
        Self {
            current: Arc::new(RwLock::new(set)),
        }
    }

    /// The tokens in force now.
    pub fn current(&self) -> TokenSet {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the accepted tokens; checks after this use `set`.
    pub fn replace(&self, set: TokenSet) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = set;
    }

    /// Whether any token is configured.
    pub fn any(&self) -> bool {
        self.current().any()
    }

    /// Checks the caller's `authorization` metadata for `role`.
    pub fn check(
        &self,
        role: Role,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(), tonic::Status> {
        let header = metadata.get(AUTHORIZATION).map(|v| v.as_bytes());
        self.check_header(role, header).map_err(tonic::Status::from)
    }

    /// Checks a raw `authorization` header value for `role` (HTTP).
    pub fn check_header(&self, role: Role, authorization: Option<&[u8]>) -> Result<(), AuthError> {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        guard.check_header(role, authorization)
    }
}

/// The operator identity a caller claims (the `x-switchyard-actor` metadata or header):
/// accepted when non-empty, at most 64 bytes of `[A-Za-z0-9._@:-]`; otherwise `fallback`.
/// It is recorded in the audit log; authorization itself is the admin token's job.
pub fn operator_actor(claimed: Option<&str>, fallback: &str) -> switchyard_core::Actor {
    let name = claimed.map(str::trim).filter(|s| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-:".contains(&b))
    });
    switchyard_core::Actor::Operator(name.unwrap_or(fallback).to_string())
}

/// What a node presents to its peers: the cluster token in force (it follows reloads).
#[derive(Debug, Clone, Default)]
pub struct ClusterCredentials {
    tokens: Tokens,
}

impl ClusterCredentials {
    /// Credentials presenting the cluster token of `tokens`, if any.
    pub fn new(tokens: Tokens) -> Self {
        Self { tokens }
    }

    /// Adds the bearer token to an outgoing request.
    pub fn attach<T>(&self, request: &mut tonic::Request<T>) {
        let guard = self
            .tokens
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(token) = &guard.cluster
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {}", token.0))
        {
            request.metadata_mut().insert(AUTHORIZATION, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(token: Option<&str>) -> tonic::metadata::MetadataMap {
        let mut m = tonic::metadata::MetadataMap::new();
        if let Some(t) = token {
            m.insert(AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        }
        m
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn roles_are_separated() {
        let tokens = Tokens::new(TokenSet {
            admin: Some(Token::new("adm").unwrap()),
            viewer: Some(Token::new("vie").unwrap()),
            client: Some(Token::new("cli").unwrap()),
            cluster: Some(Token::new("clu").unwrap()),
        });
        let code = |role, token| {
            tokens
                .check(role, &meta(token))
                .err()
                .map(|s: tonic::Status| s.code())
        };
        use tonic::Code::{PermissionDenied as Denied, Unauthenticated as NoToken};
        // (role, token presented, expected refusal)
        let table = [
            (Role::Admin, Some("adm"), None),
            (Role::Admin, Some("vie"), Some(Denied)),
            (Role::Admin, Some("cli"), Some(Denied)),
            (Role::Admin, Some("wrong"), Some(Denied)),
            (Role::Admin, None, Some(NoToken)),
            (Role::Read, Some("vie"), None),
            (Role::Read, Some("adm"), None),
            (Role::Read, Some("cli"), Some(Denied)),
            (Role::Read, None, Some(NoToken)),
            (Role::Client, Some("cli"), None),
            (Role::Client, Some("adm"), None),
            (Role::Client, Some("vie"), Some(Denied)),
            (Role::Cluster, Some("clu"), None),
            (Role::Cluster, Some("cli"), Some(Denied)),
            (Role::Cluster, Some("adm"), Some(Denied)),
        ];
        for (role, token, refusal) in table {
            assert_eq!(code(role, token), refusal, "{role:?} with {token:?}");
        }
    }

    #[test]
    fn refusals_name_the_token_never_its_value() {
        let set = TokenSet {
            admin: Some(Token::new("adm-secret").unwrap()),
            viewer: Some(Token::new("vie-secret").unwrap()),
            ..TokenSet::default()
        };
        let missing = set.check_header(Role::Admin, None).unwrap_err().to_string();
        assert!(
            missing.contains("for an Admin call") && missing.contains("the admin token"),
            "{missing}"
        );
        let viewer = set
            .check_header(Role::Admin, Some(b"Bearer vie-secret"))
            .unwrap_err()
            .to_string();
        assert!(
            viewer.contains("viewer token is read-only") && viewer.contains("an Admin call"),
            "{viewer}"
        );
        let wrong = set
            .check_header(Role::Read, Some(b"Bearer guess"))
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("wrong") && wrong.contains("the viewer or the admin token"),
            "{wrong}"
        );
        for m in [missing, viewer, wrong] {
            assert!(!m.contains("secret") && !m.contains("guess"), "{m}");
        }
    }

    #[test]
    fn a_replaced_set_is_used_by_the_next_check() {
        let tokens = Tokens::new(TokenSet {
            admin: Some(Token::new("old").unwrap()),
            ..TokenSet::default()
        });
        let credentials = ClusterCredentials::new(tokens.clone());
        assert!(tokens.check(Role::Admin, &meta(Some("old"))).is_ok());
        tokens.replace(TokenSet {
            admin: Some(Token::new("new").unwrap()),
            cluster: Some(Token::new("peer").unwrap()),
            ..TokenSet::default()
        });
        assert!(tokens.check(Role::Admin, &meta(Some("old"))).is_err());
        assert!(tokens.check(Role::Admin, &meta(Some("new"))).is_ok());
        let mut request = tonic::Request::new(());
        credentials.attach(&mut request);
        assert_eq!(
            request.metadata().get(AUTHORIZATION).unwrap(),
            "Bearer peer",
            "peers are sent the reloaded cluster token"
        );
    }

    #[test]
    fn unset_roles_are_open_and_tokens_are_redacted() {
        let tokens = Tokens::default();
        assert!(tokens.check(Role::Admin, &meta(None)).is_ok());
        assert!(tokens.check(Role::Read, &meta(None)).is_ok());
        let t = Token::new("s3cret").unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(Token::new("").is_err());
        assert!(Token::new("has space").is_err());
    }
}
