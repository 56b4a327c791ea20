//! Bearer tokens for the three kinds of caller: operators (admin), SDKs (client) and peers
//! (cluster).
//!
//! Tokens are compared in constant time so a caller cannot learn a token byte by byte from
//! response timing. A role whose token is not configured is open: that is the development mode
//! on loopback; `serve` refuses to bind a non-loopback address with no tokens unless told
//! `--insecure` (see the CLI). Tokens are never logged: [`Token`]'s `Debug` prints a redaction.

use std::fmt;
use std::sync::Arc;

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
    /// SDK calls: the client service.
    Client,
    /// Raft traffic between nodes.
    Cluster,
}

/// The tokens a node accepts, one per role.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Token for admin calls.
    pub admin: Option<Token>,
    /// Token for client (SDK) calls.
    pub client: Option<Token>,
    /// Token for Raft calls between nodes.
    pub cluster: Option<Token>,
}

impl Tokens {
    /// Whether any token is configured.
    pub fn any(&self) -> bool {
        self.admin.is_some() || self.client.is_some() || self.cluster.is_some()
    }

    /// Checks the caller's `authorization` metadata for `role`.
    ///
    /// Admin credentials are also accepted for client calls (an operator may watch decisions);
    /// client credentials are never accepted for admin or cluster calls.
    pub fn check(
        &self,
        role: Role,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(), tonic::Status> {
        let expected: Vec<&Token> = match role {
            Role::Admin => self.admin.iter().collect(),
            Role::Client => {
                if self.client.is_none() {
                    return Ok(());
                }
                self.client.iter().chain(self.admin.iter()).collect()
            }
            Role::Cluster => self.cluster.iter().collect(),
        };
        if expected.is_empty() {
            return Ok(());
        }
        let presented = metadata
            .get(AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .ok_or_else(|| {
                tonic::Status::unauthenticated(format!(
                    "missing `authorization: Bearer <token>` for a {role:?} call"
                ))
            })?;
        // Check every candidate so timing does not reveal which one matched.
        let matched = expected
            .iter()
            .fold(false, |acc, t| acc | t.matches(presented));
        if matched {
            Ok(())
        } else {
            Err(tonic::Status::permission_denied(format!(
                "the presented token is not valid for a {role:?} call"
            )))
        }
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

/// What a node presents to its peers.
#[derive(Debug, Clone, Default)]
pub struct ClusterCredentials {
    token: Option<Token>,
}

impl ClusterCredentials {
    /// Credentials carrying `token`, if any.
    pub fn new(token: Option<Token>) -> Self {
        Self { token }
    }

    /// Adds the bearer token to an outgoing request.
    pub fn attach<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(token) = &self.token
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
        let tokens = Tokens {
            admin: Some(Token::new("adm").unwrap()),
            client: Some(Token::new("cli").unwrap()),
            cluster: Some(Token::new("clu").unwrap()),
        };
        assert!(tokens.check(Role::Admin, &meta(Some("adm"))).is_ok());
        assert_eq!(
            tokens
                .check(Role::Admin, &meta(Some("cli")))
                .unwrap_err()
                .code(),
            tonic::Code::PermissionDenied
        );
        assert!(tokens.check(Role::Client, &meta(Some("cli"))).is_ok());
        assert!(tokens.check(Role::Client, &meta(Some("adm"))).is_ok());
        assert_eq!(
            tokens
                .check(Role::Cluster, &meta(Some("cli")))
                .unwrap_err()
                .code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            tokens.check(Role::Admin, &meta(None)).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn unset_roles_are_open_and_tokens_are_redacted() {
        let tokens = Tokens::default();
        assert!(tokens.check(Role::Admin, &meta(None)).is_ok());
        let t = Token::new("s3cret").unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(Token::new("").is_err());
        assert!(Token::new("has space").is_err());
    }
}
