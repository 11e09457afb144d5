//! The accept loop and the life of one client connection: TLS handshake, HTTP/1.1 or
//! HTTP/2 by ALPN, idle and shutdown handling.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::router;
use crate::state::AppState;

/// Timeouts that apply to every connection, fixed at start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionLimits {
    pub tls_handshake: Duration,
    pub header_read: Duration,
    pub idle: Duration,
}

/// Accepts connections until `shutdown` turns true. Each connection holds a permit of
/// `connections`, so at most that many are open; further clients wait in the kernel's
/// backlog.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    acceptor: Arc<ArcSwapOption<TlsAcceptor>>,
    connections: Arc<Semaphore>,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut accept_errors: u64 = 0;
    let mut full_logged = false;
    loop {
        // Log once each time the limit is reached, not once per waiting client.
        let full = connections.available_permits() == 0;
        if full && !full_logged {
            warn!(
                "all connections allowed by server.limits.max_connections are open; \
                 new clients wait until one closes"
            );
        }
        full_logged = full;
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Running out of file descriptors must not spin the loop; log the
                    // first error and then every 100th.
                    accept_errors += 1;
                    if accept_errors % 100 == 1 {
                        warn!(error = %err, count = accept_errors, "failed to accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = acceptor.load_full();
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(tcp, remote, tls, state, limits, shutdown, permit).await;
        });
    }
}

async fn serve_connection(
    tcp: TcpStream,
    remote: SocketAddr,
    tls: Option<Arc<TlsAcceptor>>,
    state: Arc<AppState>,
    limits: ConnectionLimits,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    state.metrics.open_connections.inc();
    let activity = Arc::new(Activity::new());
    match tls {
        None => {
            let io = ActivityIo::new(tcp, activity.clone());
            serve_http1(io, remote, &state, limits, &activity, shutdown).await;
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.tls_handshake, acceptor.accept(tcp)).await;
            match handshake {
                Ok(Ok(stream)) => {
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    let io = ActivityIo::new(stream, activity.clone());
                    if h2 {
                        serve_http2(io, remote, &state, limits, &activity, shutdown).await;
                    } else {
                        serve_http1(io, remote, &state, limits, &activity, shutdown).await;
                    }
                }
                Ok(Err(err)) => debug!(peer.addr = %remote, error = %err, "TLS handshake failed"),
                Err(_) => debug!(peer.addr = %remote, "TLS handshake timed out"),
            }
        }
    }
    state.metrics.open_connections.dec();
}

async fn serve_http1<I>(
    io: I,
    remote: SocketAddr,
    state: &Arc<AppState>,
    limits: ConnectionLimits,
    activity: &Activity,
    shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router::HubService::new(state.clone(), remote);
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header read timeout also bounds how long a keep-alive connection may sit idle
    // before its next request, because hyper starts it whenever it waits for a head.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(MAX_HEAD_BYTES as usize)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    drive(connection, remote, activity, limits.idle, shutdown).await;
}

/// Largest request head (request line and headers) taken over either HTTP version;
/// hyper responds to a larger one with 431 (HTTP/1.1 also with 414 for a long request line).
/// Without it, HTTP/1.1 took about 400 KB and HTTP/2 16 KiB. For HTTP/1.1 the limit is the
/// connection's read buffer, which only bounds how much of a body is read at once.
const MAX_HEAD_BYTES: u32 = 64 * 1024;

async fn serve_http2<I>(
    io: I,
    remote: SocketAddr,
    state: &Arc<AppState>,
    limits: ConnectionLimits,
    activity: &Activity,
    shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router::HubService::new(state.clone(), remote);
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .max_header_list_size(MAX_HEAD_BYTES)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    drive(connection, remote, activity, limits.idle, shutdown).await;
}

/// Runs a connection to its end, starting a graceful close when the hub shuts down or when
/// no byte moved in either direction for `idle`. A graceful close waits for the response in
/// flight, which never ends for a live stream whose client stopped reading, so a connection
/// still open `idle` after its close began is dropped.
async fn drive<C>(
    connection: C,
    remote: SocketAddr,
    activity: &Activity,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(connection);
    let mut closing = false;
    let force_close = tokio::time::sleep(Duration::MAX);
    tokio::pin!(force_close);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    debug!(peer.addr = %remote, error = %err, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
                force_close.as_mut().reset(tokio::time::Instant::now() + idle);
            }
            _ = activity.idle_for(idle), if !closing => {
                debug!(peer.addr = %remote, "closing idle connection");
                closing = true;
                connection.as_mut().graceful_shutdown();
                force_close.as_mut().reset(tokio::time::Instant::now() + idle);
            }
            _ = &mut force_close, if closing => {
                debug!(peer.addr = %remote, "dropping a connection that did not close in time");
                return;
            }
        }
    }
}

/// Count of successful reads and writes on a connection, which the idle check samples.
/// A counter rather than a timestamp keeps a clock read off every read and write.
pub(crate) struct Activity {
    events: AtomicU64,
}

/// Number of quiet intervals, each a quarter of the idle timeout, that make a connection
/// idle. A connection is closed between 1 and 1.25 idle timeouts after its last byte.
const QUIET_INTERVALS: u32 = 4;

impl Activity {
    fn new() -> Activity {
        Activity {
            events: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// Completes once no byte moved for about `idle`.
    async fn idle_for(&self, idle: Duration) {
        let interval = idle / QUIET_INTERVALS;
        let mut quiet = 0;
        let mut seen = self.events.load(Ordering::Relaxed);
        while quiet < QUIET_INTERVALS {
            tokio::time::sleep(interval).await;
            let now = self.events.load(Ordering::Relaxed);
            if now == seen {
                quiet += 1;
            } else {
                quiet = 0;
                seen = now;
            }
        }
    }
}

/// An IO object that counts its successful reads and writes.
struct ActivityIo<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I> ActivityIo<I> {
    fn new(inner: I, activity: Arc<Activity>) -> ActivityIo<I> {
        activity.touch();
        ActivityIo { inner, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ActivityIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ActivityIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
