//! Bare HTTPS servers that hubkitd is compared with: hyper HTTP/1.1 over tokio-rustls on a
//! multi-thread runtime, optionally storing each body in SQLite through one group-commit writer,
//! or discarding bodies of up to 1 GiB as the transfer ceiling of `hubkit-bench upload`.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::{Buf, Bytes};
use chrono::{SecondsFormat, Utc};
use clap::{Args, ValueEnum};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rusqlite::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

/// Maximum request body size that a baseline reads; larger bodies get 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Maximum request body size that the `tls-discard` mode reads; larger bodies get 413.
const MAX_DISCARD_BODY_BYTES: u64 = 1024 * 1024 * 1024;
/// Cap of hyper's HTTP/1 read buffer in the `tls-discard` mode: 64 KiB, the value that
/// hubkitd's listener in hubkit-server sets, so that both read a body in chunks of the same
/// maximum size.
pub const DISCARD_MAX_BUF_BYTES: usize = 64 * 1024;
/// Capacity of the queue between the request handlers and the SQLite writer thread.
const WRITE_QUEUE_CAPACITY: usize = 4096;
/// Maximum number of rows that the writer inserts in one transaction.
const MAX_BATCH_ROWS: usize = 512;
/// Pause after a failed `accept`, so that running out of file descriptors does not spin.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Request handling mode of a baseline server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Reads the body and responds 200.
    Tls,
    /// Also commits the body to SQLite (WAL, `synchronous = FULL`) before responding.
    TlsSqliteFull,
    /// Also commits the body to SQLite (WAL, `synchronous = NORMAL`) before responding.
    TlsSqliteNormal,
    /// Reads bodies of up to 1 GiB frame by frame, drops each frame and responds 200 with
    /// the byte count: the transfer ceiling of `hubkit-bench upload`.
    TlsDiscard,
}

impl Mode {
    /// Returns the mode's command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tls => "tls",
            Mode::TlsSqliteFull => "tls-sqlite-full",
            Mode::TlsSqliteNormal => "tls-sqlite-normal",
            Mode::TlsDiscard => "tls-discard",
        }
    }

    /// Returns the SQLite `synchronous` setting, or `None` for the mode without SQLite.
    fn synchronous(self) -> Option<&'static str> {
        match self {
            Mode::Tls | Mode::TlsDiscard => None,
            Mode::TlsSqliteFull => Some("FULL"),
            Mode::TlsSqliteNormal => Some("NORMAL"),
        }
    }
}

/// Command-line arguments of `hubkit-bench baseline`.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// Request handling mode.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Socket address to listen on; port 0 picks a free port, printed once bound.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Directory for the SQLite file (`baseline.sqlite3`) of the SQLite modes.
    #[arg(long)]
    pub data_dir: PathBuf,
}

/// One body waiting for the writer thread, with the channel that receives the commit result.
struct WriteRequest {
    body: Bytes,
    received_at: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// Runs a baseline server until the process is killed.
///
/// # Errors
/// Fails if the runtime, the certificate, the SQLite file or the listening socket cannot be set
/// up, or if stdout cannot be written.
pub fn run(args: &BaselineArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &BaselineArgs) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(crate::tls::self_signed_server_config()?);
    let writer = match args.mode.synchronous() {
        Some(synchronous) => Some(spawn_writer(&args.data_dir, synchronous)?),
        None => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let local = listener
        .local_addr()
        .context("failed to read the bound address")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}").context("failed to write to stdout")?;
    stdout.flush().context("failed to flush stdout")?;
    drop(stdout);
    tracing::info!(baseline.mode = args.mode.as_str(), listen.addr = %local, "baseline started");

    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    if args.mode == Mode::TlsDiscard {
        builder.max_buf_size(DISCARD_MAX_BUF_BYTES);
    }
    let builder = Arc::new(builder);
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "failed to accept a connection");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
                continue;
            }
        };
        let connection = serve_connection(
            stream,
            acceptor.clone(),
            builder.clone(),
            args.mode,
            writer.clone(),
        );
        tokio::spawn(connection);
    }
}

async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    builder: Arc<http1::Builder>,
    mode: Mode,
    writer: Option<mpsc::Sender<WriteRequest>>,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "failed to set TCP_NODELAY");
    }
    let tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(err) => {
            tracing::debug!(error = %err, "TLS handshake failed");
            return;
        }
    };
    let service = service_fn(move |request: Request<Incoming>| {
        let writer = writer.clone();
        async move {
            if mode == Mode::TlsDiscard {
                Ok::<_, Infallible>(discard(request.into_body(), MAX_DISCARD_BODY_BYTES).await)
            } else {
                handle(request, writer).await
            }
        }
    });
    if let Err(err) = builder.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

async fn handle(
    request: Request<Incoming>,
    writer: Option<mpsc::Sender<WriteRequest>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received_at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<LengthLimitError>() => {
            let message = r#"{"error":"the body exceeds 1 MiB"}"#;
            return Ok(json_response(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
        Err(err) => {
            tracing::debug!(error = %err, "failed to read a request body");
            let message = r#"{"error":"failed to read the body"}"#;
            return Ok(json_response(StatusCode::BAD_REQUEST, message));
        }
    };
    if let Some(writer) = writer
        && let Err(err) = store(&writer, body, received_at).await
    {
        tracing::warn!(error = %err, "failed to store a body");
        let message = r#"{"error":"failed to store the body"}"#;
        return Ok(json_response(StatusCode::INTERNAL_SERVER_ERROR, message));
    }
    Ok(json_response(StatusCode::OK, r#"{"status":"ok"}"#))
}

/// Reads `body` frame by frame and drops each frame, so that no more than one frame is in
/// memory at a time. Responds 200 with `{"status":"ok","received_bytes":N}`, 413 when the
/// body announces or reaches more than `max_bytes`, and 400 when it cannot be read.
async fn discard<B>(mut body: B, max_bytes: u64) -> Response<Full<Bytes>>
where
    B: Body + Unpin,
    B::Error: std::fmt::Display,
{
    let too_large = || {
        let message = format!(r#"{{"error":"the body exceeds {max_bytes} bytes"}}"#);
        json_response(StatusCode::PAYLOAD_TOO_LARGE, message)
    };
    if body.size_hint().lower() > max_bytes {
        return too_large();
    }
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                tracing::debug!(error = %err, received.bytes = received, "failed to read a request body");
                let message = r#"{"error":"failed to read the body"}"#;
                return json_response(StatusCode::BAD_REQUEST, message);
            }
        };
        if let Some(data) = frame.data_ref() {
            received += data.remaining() as u64;
        }
        if received > max_bytes {
            return too_large();
        }
    }
    let message = format!(r#"{{"status":"ok","received_bytes":{received}}}"#);
    json_response(StatusCode::OK, message)
}

/// Sends a body to the writer thread and waits until its transaction has committed.
async fn store(
    writer: &mpsc::Sender<WriteRequest>,
    body: Bytes,
    received_at: String,
) -> Result<(), String> {
    let (done, committed) = oneshot::channel();
    let request = WriteRequest {
        body,
        received_at,
        done,
    };
    writer
        .send(request)
        .await
        .map_err(|_| "the writer thread has stopped".to_owned())?;
    committed
        .await
        .map_err(|_| "the writer thread dropped the request".to_owned())?
}

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Opens `baseline.sqlite3` in `data_dir` and starts the writer thread that owns it.
fn spawn_writer(data_dir: &Path, synchronous: &str) -> anyhow::Result<mpsc::Sender<WriteRequest>> {
    let path = data_dir.join("baseline.sqlite3");
    let connection = open_database(&path, synchronous)
        .with_context(|| format!("failed to open SQLite file {}", path.display()))?;
    let (sender, receiver) = mpsc::channel(WRITE_QUEUE_CAPACITY);
    std::thread::Builder::new()
        .name("sqlite-writer".to_owned())
        .spawn(move || write_loop(connection, receiver))
        .context("failed to start the SQLite writer thread")?;
    Ok(sender)
}

fn open_database(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    let journal_mode: String =
        connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    tracing::debug!(sqlite.journal_mode = %journal_mode, "journal mode set");
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS records (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            body BLOB NOT NULL
        )",
    )?;
    Ok(connection)
}

/// Commits queued bodies in groups: it blocks for one request, takes up to
/// [`MAX_BATCH_ROWS`] in total from what is already queued, inserts them in one transaction
/// and then sends the commit result to every request of the group.
fn write_loop(mut connection: Connection, mut receiver: mpsc::Receiver<WriteRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH_ROWS);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH_ROWS {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let outcome = insert_batch(&mut connection, &batch).map_err(|err| err.to_string());
        if let Err(err) = &outcome {
            tracing::warn!(error = %err, batch.rows = batch.len(), "failed to commit a batch");
        }
        for request in batch.drain(..) {
            // The handler's client may have disconnected, which drops the receiver.
            let _ = request.done.send(outcome.clone());
        }
    }
}

fn insert_batch(connection: &mut Connection, batch: &[WriteRequest]) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction
            .prepare_cached("INSERT INTO records (received_at, body) VALUES (?1, ?2)")?;
        for request in batch {
            insert.execute((request.received_at.as_str(), request.body.as_ref()))?;
        }
    }
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http::{Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Body, Frame};

    use super::discard;

    /// A body that yields its items one by one as data frames or errors, with no length
    /// known in advance, like a chunked request.
    struct Frames(VecDeque<Result<&'static [u8], &'static str>>);

    impl Frames {
        fn new(items: &[Result<&'static [u8], &'static str>]) -> Frames {
            Frames(items.iter().copied().collect())
        }
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _context: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            let next = self.0.pop_front();
            Poll::Ready(next.map(|item| item.map(|chunk| Frame::data(Bytes::from_static(chunk)))))
        }
    }

    async fn body_text(response: Response<Full<Bytes>>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a full body cannot fail")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("the response is UTF-8")
    }

    #[tokio::test]
    async fn discard_counts_every_frame() {
        let body = Frames::new(&[Ok(b"abc"), Ok(b""), Ok(b"de")]);
        let response = discard(body, 5).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            body_text(response).await,
            r#"{"status":"ok","received_bytes":5}"#
        );
    }

    #[tokio::test]
    async fn discard_accepts_empty_body() {
        let response = discard(Full::new(Bytes::new()), 5).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(body_text(response).await.contains(r#""received_bytes":0"#));
    }

    #[tokio::test]
    async fn discard_rejects_announced_excess() {
        let response = discard(Full::new(Bytes::from_static(b"0123456789")), 5).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body_text(response).await.contains("exceeds 5 bytes"));
    }

    #[tokio::test]
    async fn discard_rejects_streamed_excess() {
        let body = Frames::new(&[Ok(b"abc"), Ok(b"def"), Err("must not be read")]);
        let response = discard(body, 5).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn discard_reports_read_error() {
        let body = Frames::new(&[Ok(b"abc"), Err("connection reset")]);
        let response = discard(body, 5).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            body_text(response)
                .await
                .contains("failed to read the body")
        );
    }
}
