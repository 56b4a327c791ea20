//! TLS handshakes on the node's own accept loops, from the certificate in force.
//!
//! ```text
//!   TCP accept ──▶ handshake task (≤ HANDSHAKES_MAX at once, each ≤ HANDSHAKE_TIMEOUT)
//!                      │ with TlsState::acceptor(port) as it is at accept time
//!                      ▼
//!              ready queue (≤ READY_QUEUE_MAX) ──▶ tonic (gRPC) or axum (HTTP)
//! ```
//!
//! Why not tonic's own TLS: tonic reads its `ServerTlsConfig` once, when the server is built,
//! so a rotated certificate would need a restart. Handshakes run in their own tasks so a slow
//! or silent client cannot hold up the connections behind it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;

use super::{Port, TlsState};

/// Longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once per port; beyond it new connections are closed at once.
pub const HANDSHAKES_MAX: usize = 1_024;
/// Finished handshakes waiting for the server to take them.
const READY_QUEUE_MAX: usize = 128;

/// Runs the handshakes of every connection `incoming` yields; the finished ones come out of
/// the returned receiver. Stops when `incoming` ends or the receiver is dropped.
fn spawn_handshakes<S, IO, IE>(
    incoming: S,
    state: TlsState,
    port: Port,
) -> mpsc::Receiver<TlsStream<IO>>
where
    S: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    IE: std::fmt::Display + Send + 'static,
{
    let (ready_tx, ready_rx) = mpsc::channel(READY_QUEUE_MAX);
    tokio::spawn(async move {
        let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
        let mut incoming = std::pin::pin!(incoming);
        loop {
            let next = tokio::select! {
                next = incoming.next() => next,
                () = ready_tx.closed() => return,
            };
            let io = match next {
                None => return,
                Some(Ok(io)) => io,
                Some(Err(e)) => {
                    tracing::debug!(?port, error = %e, "accept failed");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                tracing::warn!(
                    ?port,
                    limit = HANDSHAKES_MAX,
                    "too many TLS handshakes in progress; connection closed"
                );
                continue;
            };
            let acceptor = state.acceptor(port);
            let ready_tx = ready_tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                    Ok(Ok(stream)) => {
                        let _ = ready_tx.send(stream).await;
                    }
                    Ok(Err(e)) => tracing::debug!(?port, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(?port, "TLS handshake timed out"),
                }
            });
        }
    });
    ready_rx
}

/// The gRPC side: `incoming` with every connection wrapped in TLS.
pub fn tls_incoming<S, IO, IE>(
    incoming: S,
    state: TlsState,
) -> impl Stream<Item = Result<TlsStream<IO>, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    IE: std::fmt::Display + Send + 'static,
{
    let ready = spawn_handshakes(incoming, state, Port::Grpc);
    tokio_stream::wrappers::ReceiverStream::new(ready).map(Ok)
}

/// The HTTP side: an axum listener serving TLS connections accepted on `listener`.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<TlsStream<TcpStream>>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Serves TLS with the certificate of `state` on `listener`.
    pub fn new(listener: TcpListener, state: TlsState) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let incoming = crate::transport::tcp_incoming(listener);
        Ok(Self {
            ready: spawn_handshakes(incoming, state, Port::Http),
            local_addr,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(stream) = self.ready.recv().await else {
                // The accept loop ended (the listener failed); serve nothing more.
                std::future::pending::<()>().await;
                unreachable!("pending never resolves");
            };
            if let Ok(peer) = stream.get_ref().0.peer_addr() {
                return (stream, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
