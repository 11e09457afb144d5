//! `GET /api/v1/files/<relative path>`: streams a stored file with its media type.

use std::convert::Infallible;

use bytes::BytesMut;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tokio::io::AsyncReadExt;
use tracing::{error, warn};

use crate::body::ResponseBody;
use crate::problem::{Problem, truncate};
use crate::state::AppState;

/// Path prefix of the files endpoint.
pub(crate) const FILES_PREFIX: &str = "/api/v1/files/";

/// Bytes read from disk per response frame.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Characters kept unescaped in the `filename*` of `Content-Disposition` (RFC 8187
/// `attr-char`).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Serves the stored file named by the percent-encoded `encoded_path`. Only paths that
/// the store lists as live files are served, and each is checked against the layout, so
/// no request reaches a file outside the files folder.
pub(crate) async fn serve(
    state: &AppState,
    request: &Parts,
    encoded_path: &str,
) -> Result<Response<ResponseBody>, Problem> {
    if request.uri.query().is_some_and(|query| !query.is_empty()) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Bad Request",
            "/api/v1/files/<path> takes no parameters",
        ));
    }
    let relative = percent_decode_str(encoded_path)
        .decode_utf8()
        .map_err(|_| invalid_path(encoded_path, "it is not valid UTF-8 after percent-decoding"))?;
    let absolute = state
        .files
        .resolve(&relative)
        .map_err(|err| invalid_path(encoded_path, err.reason))?;
    let row = state.store.find_file(&relative).await.map_err(|err| {
        error!(error = %err, "failed to look up a stored file");
        Problem::store_unavailable()
    })?;
    let Some(row) = row else {
        return Err(not_found(&relative));
    };

    let metadata = tokio::fs::symlink_metadata(&absolute).await;
    let file = match metadata {
        Ok(metadata) if metadata.is_file() => tokio::fs::File::open(&absolute).await,
        Ok(_) => Err(std::io::Error::other("not a regular file")),
        Err(err) => Err(err),
    };
    let file = match file {
        Ok(file) => file,
        Err(err) => {
            warn!(file.path = %relative, error = %err, "a stored file listed in the store cannot be opened");
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "file-missing",
                "Not Found",
                format!(
                    "the store lists file {:?}, but it is missing from the hub's disk or \
                     cannot be read",
                    truncate(&relative, 120)
                ),
            ));
        }
    };
    let size = file
        .metadata()
        .await
        .map(|m| m.len())
        .unwrap_or(row.file.size);

    let mut response = Response::new(stream_file(file));
    let headers = response.headers_mut();
    let media_type = HeaderValue::from_str(&row.file.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, media_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", row.file.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    let name = relative.rsplit('/').next().unwrap_or_default();
    let disposition = format!(
        "inline; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR_CHAR)
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Stored files come from devices: never let a browser run one as a page of this origin.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(response)
}

/// Streams `file` in chunks. A read error ends the body early; the client sees fewer
/// bytes than `Content-Length` promised.
fn stream_file(file: tokio::fs::File) -> ResponseBody {
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((
                Ok::<_, Infallible>(Frame::data(buffer.freeze())),
                Some(file),
            )),
            Err(err) => {
                warn!(error = %err, "failed to read a stored file while sending it");
                None
            }
        }
    });
    StreamBody::new(chunks).boxed()
}

fn invalid_path(encoded: &str, reason: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-file-path",
        "Bad Request",
        format!(
            "file path {:?} is invalid: {reason}; use the Path of a file record, \
             <short id>/<YYYYMMDD>/<name>",
            truncate(encoded, 120)
        ),
    )
}

fn not_found(relative: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "file-not-found",
        "Not Found",
        format!(
            "no stored file has the path {:?}; it was never stored or retention removed it",
            truncate(relative, 120)
        ),
    )
}
