//! The upload client: one body at a time over a keep-alive HTTP/1.1-over-TLS connection,
//! and the checks of the responses of hubkitd and of the transfer ceiling server.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::Value;
use tokio::time::{Instant, timeout};

use crate::load::RequestTemplate;

/// Time one upload may take from sending the request until the response body has arrived.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Maximum number of response-body characters quoted in a failure message.
const MAX_QUOTED_CHARS: usize = 300;

/// A complete response to one upload.
#[derive(Debug)]
pub struct UploadResponse {
    /// Response status.
    pub status: StatusCode,
    /// Response body.
    pub body: Bytes,
    /// When the request was sent.
    pub started: std::time::Instant,
    /// Time from sending the request until the response body had arrived.
    pub elapsed: Duration,
}

/// Sends the request of `template` on `sender` and reads the whole response.
///
/// # Errors
/// Fails if the connection is closed, breaks, or the exchange takes longer than
/// [`UPLOAD_TIMEOUT`].
pub async fn upload(
    sender: &mut SendRequest<Full<Bytes>>,
    template: &RequestTemplate,
) -> anyhow::Result<UploadResponse> {
    sender
        .ready()
        .await
        .context("the connection closed before the upload started")?;
    let started = Instant::now();
    let exchange = async {
        let response = sender.send_request(template.build()).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    let (status, body) = timeout(UPLOAD_TIMEOUT, exchange)
        .await
        .with_context(|| format!("the upload timed out after {UPLOAD_TIMEOUT:?}"))?
        .context("the upload failed")?;
    Ok(UploadResponse {
        status,
        body,
        started: started.into_std(),
        elapsed: started.elapsed(),
    })
}

/// Checks that hubkitd stored the body: status 200 and a JSON body whose `File.Size` is
/// `expected_size` and whose `File.Sha256` is `expected_sha256`. Returns `File.Path`, the
/// stored file's path relative to hubkitd's files folder.
///
/// # Errors
/// Returns a message that names the first check that failed and quotes the response.
pub fn check_response(
    status: StatusCode,
    body: &[u8],
    expected_size: u64,
    expected_sha256: &str,
) -> Result<String, String> {
    let quoted = || quote(body);
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}, expected 200 OK; response: {}",
            quoted()
        ));
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|err| format!("the response is not JSON ({err}); response: {}", quoted()))?;
    let Some(file) = json.get("File") else {
        return Err(format!(
            "the response has no File object; response: {}",
            quoted()
        ));
    };
    let size = file.get("Size").and_then(Value::as_u64);
    if size != Some(expected_size) {
        return Err(format!(
            "File.Size is {}, expected {expected_size}; response: {}",
            file.get("Size")
                .map_or("missing".to_owned(), Value::to_string),
            quoted()
        ));
    }
    let sha256 = file.get("Sha256").and_then(Value::as_str);
    if sha256 != Some(expected_sha256) {
        return Err(format!(
            "File.Sha256 is {sha256:?}, expected {expected_sha256:?}; response: {}",
            quoted()
        ));
    }
    let Some(path) = file.get("Path").and_then(Value::as_str) else {
        return Err(format!("File.Path is missing; response: {}", quoted()));
    };
    if !is_relative_file_path(path) {
        return Err(format!(
            "File.Path {path:?} is not of the form <owner>/<YYYYMMDD>/<name>"
        ));
    }
    Ok(path.to_owned())
}

/// Checks that the transfer ceiling server read the whole body: status 200 and a JSON body
/// whose `received_bytes` is `expected_size`.
///
/// # Errors
/// Returns a message that names the first check that failed and quotes the response.
pub fn check_discard_response(
    status: StatusCode,
    body: &[u8],
    expected_size: u64,
) -> Result<(), String> {
    let quoted = || quote(body);
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}, expected 200 OK; response: {}",
            quoted()
        ));
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|err| format!("the response is not JSON ({err}); response: {}", quoted()))?;
    let received = json.get("received_bytes").and_then(Value::as_u64);
    if received != Some(expected_size) {
        return Err(format!(
            "received_bytes is {}, expected {expected_size}; response: {}",
            json.get("received_bytes")
                .map_or("missing".to_owned(), Value::to_string),
            quoted()
        ));
    }
    Ok(())
}

/// Returns whether `path` has three non-empty `/`-separated parts, none of them `.` or
/// `..`, so joining it to the files folder cannot leave that folder.
pub fn is_relative_file_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && *part != "." && *part != ".." && !part.contains('\\'))
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut quoted: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    if text.chars().count() > MAX_QUOTED_CHARS {
        quoted.push('…');
    }
    quoted
}
