//! `GET /api/v1/files/<relative path>`: streams a stored file with its media type.

use std::convert::Infallible;

use bytes::BytesMut;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
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

    let etag = format!("\"{}\"", row.file.sha256);
    if lists_etag(&request.headers, header::IF_NONE_MATCH, &etag, true) {
        let mut response = Response::new(crate::body::full(bytes::Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        return Ok(response);
    }
    if request.headers.contains_key(header::IF_MATCH)
        && !lists_etag(&request.headers, header::IF_MATCH, &etag, false)
    {
        return Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition Failed",
            format!("If-Match does not list the file's current ETag {etag}"),
        ));
    }
    // RFC 9110 section 13.1.5: a Range whose If-Range validator does not match is ignored,
    // so a client resuming a download never joins parts of two different files.
    let if_range_holds = request
        .headers
        .get(header::IF_RANGE)
        .is_none_or(|value| value.to_str().is_ok_and(|tag| tag.trim() == etag));
    let requested = if if_range_holds {
        requested_range(&request.headers, size)
    } else {
        Ok(None)
    };
    let range = match requested {
        Ok(range) => range,
        Err(()) => return Ok(range_not_satisfiable(size)),
    };
    let (start, length) = range.unwrap_or((0, size));
    let mut file = file;
    if start > 0
        && let Err(err) = file.seek(std::io::SeekFrom::Start(start)).await
    {
        warn!(file.path = %relative, error = %err, "failed to seek in a stored file");
        return Err(Problem::store_unavailable());
    }
    let mut response = Response::new(stream_file(file, length));
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {start}-{}/{size}", start + length - 1);
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    let headers = response.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let media_type = HeaderValue::from_str(&row.file.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, media_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
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

/// Returns whether the `name` headers list `etag` or `*`. `weak` compares as RFC 9110
/// section 8.8.3.2 says `If-None-Match` does, ignoring a `W/` prefix; `If-Match` compares
/// strongly.
fn lists_etag(headers: &HeaderMap, name: header::HeaderName, etag: &str, weak: bool) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| {
            let tag = if weak {
                tag.strip_prefix("W/").unwrap_or(tag)
            } else {
                tag
            };
            tag == "*" || tag == etag
        })
}

/// Returns the single byte range of a `Range: bytes=...` header as `(start, length)`, or
/// `None` to send the whole file: no header, another unit, several ranges, or a
/// malformed value, all of which RFC 9110 lets a server answer with the whole file.
///
/// # Errors
///
/// `Err(())` when the range starts at or after the end of a file of `size` bytes (416).
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let value = value.trim();
    let Some((unit, spec)) = value.split_once('=') else {
        return Ok(None);
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    // Only digits: `u64::from_str` would also take a leading `+`.
    let number = |text: &str| {
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        text.parse::<u64>().ok()
    };
    let (start, end) = match (first.is_empty(), number(first), number(last)) {
        // `bytes=-N`: the last N bytes; a suffix longer than u64 covers the whole file.
        (true, _, Some(0)) => return Err(()),
        (true, _, Some(suffix)) => (size.saturating_sub(suffix), size),
        (true, _, None) if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) => {
            (0, size)
        }
        (false, Some(start), None) if last.is_empty() => (start, size),
        (false, Some(start), Some(last)) if last >= start => {
            (start, last.saturating_add(1).min(size))
        }
        _ => return Ok(None),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end - start)))
}

/// Streams `length` bytes of `file` from its position, in chunks. A read error ends the
/// body early, and the client sees fewer bytes than `Content-Length` promised.
fn stream_file(file: tokio::fs::File, length: u64) -> ResponseBody {
    let chunks = futures_util::stream::unfold(Some(file.take(length)), |file| async move {
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

/// 416 for a range outside the file, with the file's size in `Content-Range`.
fn range_not_satisfiable(size: u64) -> Response<ResponseBody> {
    let mut response = Problem::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
        "Range Not Satisfiable",
        format!("the Range header asks for bytes outside the file, which has {size} bytes"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
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
