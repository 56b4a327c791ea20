//! The transport seam: node and SDK gRPC over turmoil's simulated TCP.
//!
//! - [`SimConnector`] implements the server's [`Connector`] (and builds SDK channels): a lazy
//!   tonic channel whose connections are turmoil `TcpStream`s.
//! - [`SimIo`] wraps an accepted turmoil stream so tonic's server can use it, and
//!   [`incoming`] turns a turmoil listener into the stream `serve_node` takes.
//!
//! Simulated TCP never retransmits: a segment dropped by a partition is gone, and a call
//! waiting for it would wait forever. Every call therefore carries a deadline (the server sets
//! one on each Raft and forward RPC, the SDK bounds its calls by `rpc_timeout`), and the
//! connector bounds connection setup by [`CONNECT_TIMEOUT`].
//!
//! Channels also keep h2's memory of reset streams off the machine's clock
//! ([`RESET_STREAM_MEMORY`]), so that a seed replays.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::TokioIo;
use switchyard_server::Connector;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long establishing a simulated connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a channel's HTTP/2 connection remembers a stream it reset, so that frames still
/// arriving on it are ignored rather than answered with `RST_STREAM(STREAM_CLOSED)`.
///
/// Why an hour and not h2's default second: h2 measures this on the machine's clock, which a
/// simulation must never depend on (a second of machine time is tens of simulated seconds,
/// and more or fewer of them depending on the machine's load). An hour outlasts every run, so
/// remembering depends only on h2's count limit, which is deterministic; and it is what a real
/// network mostly sees, where the late frames of a reset stream arrive within a second.
pub const RESET_STREAM_MEMORY: Duration = Duration::from_secs(3_600);

/// The port every node serves gRPC on.
pub const GRPC_PORT: u16 = 7070;

/// Connects over turmoil's network.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimConnector;

impl SimConnector {
    /// A lazily connecting channel to `addr` (`host:port`); must be called inside a host.
    pub fn lazy_channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
        let target = addr.to_string();
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_reset_stream_duration(RESET_STREAM_MEMORY)
            .http2_keep_alive_interval(Duration::from_secs(2))
            .keep_alive_timeout(Duration::from_secs(2));
        Ok(
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let target = target.clone();
                async move {
                    let stream = turmoil::net::TcpStream::connect(target).await?;
                    Ok::<_, io::Error>(TokioIo::new(stream))
                }
            })),
        )
    }
}

impl Connector for SimConnector {
    fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        Self::lazy_channel(addr)
    }
}

/// An accepted simulated connection, as tonic's server wants it.
#[derive(Debug)]
pub struct SimIo(pub turmoil::net::TcpStream);

/// What tonic learns about a simulated peer.
#[derive(Debug, Clone)]
pub struct SimConnectInfo;

impl Connected for SimIo {
    type ConnectInfo = SimConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        SimConnectInfo
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The accepted connections of `listener`, forever.
pub fn incoming(
    listener: turmoil::net::TcpListener,
) -> impl Stream<Item = Result<SimIo, io::Error>> + Send + 'static {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| SimIo(stream));
        Some((accepted, listener))
    })
}
