//! How a node reaches its peers: an injected [`Connector`] that turns an address into a tonic
//! [`Channel`].
//!
//! Production uses [`TcpConnector`] (tokio TCP); the simulation supplies a connector over
//! turmoil's simulated network. [`ChannelPool`] keeps one reused channel per peer address, so
//! Raft replication, forwarding and snapshot streaming to a peer share one HTTP/2 connection.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

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

impl Default for TcpConnector {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(500),
        }
    }
}

impl Connector for TcpConnector {
    fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        Ok(endpoint.connect_lazy())
    }
}

/// One channel per peer address, created on first use and then reused.
#[derive(Debug, Clone)]
pub struct ChannelPool {
    connector: Arc<dyn Connector>,
    channels: Arc<Mutex<BTreeMap<String, Channel>>>,
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
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = self.connector.channel(addr)?;
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
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
