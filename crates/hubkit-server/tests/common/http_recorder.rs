//! A plain HTTP/1.1 server on 127.0.0.1 for the HTTP Request steps of actions. It records
//! every request and responds to each with one fixed status and JSON body, then closes the
//! connection (`Connection: close`).
//!
//! The hubkitd process tests include this file by path, so it uses only tokio, serde_json
//! and the standard library.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest request head the recorder reads, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Largest request body the recorder reads, in bytes.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// One request as the recorder received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Request method, such as `POST`.
    pub method: String,
    /// Request target: the path with its query string.
    pub path: String,
    /// Header names in lower case, with their values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// Returns the first value of header `name`, which must be lower case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON, panicking with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("request body is not JSON ({err}): {}", self.text()))
    }
}

struct Shared {
    status: u16,
    body: String,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Turns true when held responses may go out.
    released: watch::Sender<bool>,
}

impl Shared {
    fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        // The list stays consistent even if a holder panicked.
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A recording HTTP server. Dropping it stops accepting connections.
pub struct HttpRecorder {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl HttpRecorder {
    /// Starts a server that responds to every request at once with `status` and `body`
    /// (sent as `application/json`).
    pub async fn start(status: u16, body: &str) -> HttpRecorder {
        HttpRecorder::bind(status, body, true).await
    }

    /// Starts a server that records each request at once but sends no response until
    /// [`HttpRecorder::release`] is called, so that HTTP Request steps stay in progress.
    pub async fn start_holding(status: u16, body: &str) -> HttpRecorder {
        HttpRecorder::bind(status, body, false).await
    }

    async fn bind(status: u16, body: &str, released: bool) -> HttpRecorder {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the HTTP recorder");
        let addr = listener.local_addr().expect("recorder address");
        let (released, _) = watch::channel(released);
        let shared = Arc::new(Shared {
            status,
            body: body.to_owned(),
            requests: Mutex::new(Vec::new()),
            released,
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        HttpRecorder { addr, shared, task }
    }

    /// Returns the server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the base URL, `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests().clone()
    }

    /// Sends the held responses, and responds to later requests at once.
    pub fn release(&self) {
        self.shared.released.send_replace(true);
    }

    /// Waits until at least `count` requests arrived and returns all of them. Panics with
    /// what did arrive when `timeout` passes first.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "the HTTP recorder received {} of {count} requests within {timeout:?}: {requests:#?}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve(stream, Arc::clone(&shared)));
    }
}

/// Reads one request, records it and responds. A connection that closes or sends a
/// malformed request before its body is complete is dropped without a record.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    shared.requests().push(request);

    let mut released = shared.released.subscribe();
    if released.wait_for(|released| *released).await.is_err() {
        return;
    }
    let response = format!(
        "HTTP/1.1 {} Recorded\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{}",
        shared.status,
        shared.body.len(),
        shared.body
    );
    // The client may have given up, for example when hubkitd was killed.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break position;
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return None;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };

    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map_or(Some(0), |(_, value)| value.parse::<usize>().ok())?;
    if length > MAX_BODY_BYTES {
        return None;
    }

    let mut body = buffer.split_off(head_end + 4);
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    })
}
