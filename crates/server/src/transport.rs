//! How a node reaches its peers: an injected [`Connector`] that turns an address into a tonic
//! [`Channel`].
//!
//! Production uses [`TcpConnector`] (tokio TCP); the simulation supplies a connector over
//! turmoil's simulated network. A [`ChannelPool`] keeps one reused channel per peer address. A
//! node has two pools: one for Raft (replication, votes, snapshots), created where Raft runs,
//! and one for forwarding to the leader, so forwarded traffic never queues ahead of a heartbeat.
//!
//! # Fast rejoin: a connection that stops answering is replaced
//!
//! While a peer is cut off, the calls queued on its connection fill the TCP send buffer and
//! the kernel's retransmission timer backs off exponentially (seconds apart after a few
//! rounds). When the network heals, nothing is sent until that timer fires, and every Raft
//! call to the peer queues behind the stuck bytes: a follower cut off for 7 s stayed out of
//! the cluster for another 5-7 s. Two things bound this:
//!
//! - Every Raft call has a deadline. A call that times out or finds the peer unavailable
//!   [`ChannelPool::replace`]s the channel it used: the next call dials a fresh connection
//!   (bounded by the connect timeout) with empty buffers and no backoff, and the old
//!   connection is dropped with its stuck bytes. During a cut the dials fail fast; the first
//!   one after the heal succeeds, so the peer is caught up within a heartbeat or two plus
//!   Raft's retry backoff (capped at 100 ms, see `node::bootstrap`).
//! - HTTP/2 keepalive pings every second with a one-second timeout close a connection that
//!   carries no calls and stops answering (e.g. a forwarding channel), for the same reason.
//!
//! The generation number makes a replacement idempotent: when many calls on one dead
//! connection time out together, only the first replaces it, and the fresh one survives.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How often an HTTP/2 ping checks a peer connection.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a ping may go unanswered before the connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Builds a lazily-connecting channel to `addr` (`host:port`).
pub trait Connector: Debug + Send + Sync + 'static {
    /// A channel that connects on first use and reconnects on failure.
    fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error>;
}

/// Plain TCP (HTTP/2 without TLS) to `http://addr`.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    /// How long establishing a TCP connection may take.
    pub connect_timeout: Duration,
}

/// The connect timeout of [`TcpConnector::default`]. During a black-hole partition every
/// retry to the peer waits this long before Raft's backoff (at most 100 ms) and the next
/// dial, so after the heal the first successful dial comes up to one such cycle later: at
/// 500 ms that cycle alone took a third to two thirds of the 1 s rejoin budget. A TCP connect
/// between a cluster's nodes (one round trip) takes well under a millisecond on a LAN and a
/// few across availability zones.
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

impl Default for TcpConnector {
    fn default() -> Self {
        Self {
            connect_timeout: TCP_CONNECT_TIMEOUT,
        }
    }
}

impl Connector for TcpConnector {
    fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        Ok(endpoint.connect_lazy())
    }
}

/// One channel per peer address, created on first use, reused, and replaced when it stops
/// answering.
#[derive(Debug, Clone)]
pub struct ChannelPool {
    connector: Arc<dyn Connector>,
    channels: Arc<Mutex<BTreeMap<String, PooledChannel>>>,
}

/// A channel and the generation it was created in (see [`ChannelPool::replace`]).
#[derive(Debug, Clone)]
pub struct PooledChannel {
    /// The channel.
    pub channel: Channel,
    /// Counts the channels this pool has created for the address.
    pub generation: u64,
}

impl ChannelPool {
    /// A pool that builds channels with `connector`.
    pub fn new(connector: Arc<dyn Connector>) -> Self {
        Self {
            connector,
            channels: Arc::default(),
        }
    }

    /// The channel to `addr`, reused across calls.
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        self.get_pooled(addr).map(|p| p.channel)
    }

    /// The channel to `addr` with its generation, to hand back to [`ChannelPool::replace`].
    pub fn get_pooled(&self, addr: &str) -> Result<PooledChannel, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pooled) = channels.get(addr) {
            return Ok(pooled.clone());
        }
        let pooled = PooledChannel {
            channel: self.connector.channel(addr)?,
            generation: 0,
        };
        channels.insert(addr.to_string(), pooled.clone());
        Ok(pooled)
    }

    /// Drops the channel of `generation` to `addr` (a call on it timed out or found the peer
    /// unavailable), so the next call dials a fresh connection. A no-op when that channel has
    /// already been replaced. Returns whether it replaced anything.
    pub fn replace(&self, addr: &str, generation: u64) -> bool {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let Some(current) = channels.get(addr) else {
            return false;
        };
        if current.generation != generation {
            return false;
        }
        match self.connector.channel(addr) {
            Ok(channel) => {
                channels.insert(
                    addr.to_string(),
                    PooledChannel {
                        channel,
                        generation: generation + 1,
                    },
                );
                true
            }
            Err(e) => {
                tracing::debug!(addr, error = %e, "cannot build a replacement channel");
                false
            }
        }
    }
}

/// The accepted connections of `listener`, with `TCP_NODELAY` set on each.
///
/// tonic's `Server::tcp_nodelay` only applies to listeners tonic binds itself; a node that
/// is handed its listener (as every node is, so the simulation can hand it a turmoil one)
/// must set the option on each accepted socket. Without it, Nagle's algorithm holds a small
/// response back until the peer's delayed ACK (40 ms on Linux), which shows up as a stall of
/// one delayed-ACK interval on a few percent of acknowledged writes.
pub fn tcp_incoming(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send + 'static {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, peer)| {
            if let Err(e) = stream.set_nodelay(true) {
                // The connection still works, only with Nagle's delays; it is usually a
                // peer that reset the connection right after connecting.
                tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY on an accepted socket");
            }
            stream
        });
        Some((accepted, listener))
    })
}
