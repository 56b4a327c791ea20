//! Hardening (DESIGN §8) against real node processes: who may call what (tokens), TLS and
//! mTLS, every node limit at its edge, one flooding client not slowing the others, and
//! acknowledged writes surviving SIGKILL.
//!
//! - [`auth`]: client credentials refused on admin and Raft RPCs; the SDK's client token;
//!   a non-loopback bind without tokens refused; tokens never in the node's log.
//! - [`tls`]: a 3-node cluster over TLS; plaintext refused; mTLS on Raft traffic.
//! - [`rotation`]: HTTPS on the HTTP port; certificates and tokens rotated without a restart
//!   under a live Watch stream; a broken file keeps the material in force.
//! - [`limits`]: each limit at N (accepted) and N+1 (`ResourceExhausted`, named).
//! - [`flood`]: a flooder does not raise a well-behaved client's report latency over 2x.
//! - [`crash`]: 20 SIGKILLs during writes; every acknowledged write survives.

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod certs;
mod crash;
mod flood;
mod limits;
mod rotation;
mod tls;
