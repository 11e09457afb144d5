//! File reception on `json` webhooks: a body whose media type is not JSON is detected,
//! streamed to disk and described by a record's `Data`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use hubkit_endpoints::Webhook;
use hubkit_files::{
    BackgroundUpload, ContentDisposition, FileError, FileType, HEAD_BYTES, StoredFile,
};
use hubkit_store::NewFile;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tracing::{debug, error, warn};

use crate::problem::{Problem, truncate};
use crate::state::{AppState, Runtime};

/// `DataType` of records made from received files.
pub(crate) const DATA_TYPE_FILE: &str = "file";

/// A file stored on disk, waiting for its records to commit.
pub(crate) struct ReceivedFile {
    /// The records' `Data`.
    pub data: Value,
    /// The `files` row that links the file to its records.
    pub file: NewFile,
}

/// Kind of body a `json` webhook received, by its `Content-Type`.
pub(crate) enum BodyKind {
    /// A JSON document, decoded into the record's `Data`.
    Json,
    /// Anything else, stored as a file.
    File,
}

/// Decides whether a body is JSON or a file. A JSON media type with an invalid or
/// non-UTF-8 charset is an error rather than a file, because the sender meant JSON.
pub(crate) fn classify(content_type: Option<&str>) -> Result<BodyKind, Problem> {
    let err = match hubkit_decode::check_json_media_type(content_type) {
        Ok(()) => return Ok(BodyKind::Json),
        Err(err) => err,
    };
    let named = hubkit_files::from_content_type(content_type);
    let is_json = named
        .as_ref()
        .is_some_and(|found| hubkit_decode::is_json_media_type(&found.media_type));
    if is_json {
        return Err(crate::webhook::decode_problem(err));
    }
    if let Some(found) = named
        && found.media_type.starts_with("multipart/")
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "multipart-not-supported",
            "Unsupported Media Type",
            format!(
                "Content-Type {:?} is a multipart form, which this webhook does not take apart; \
                 send the file itself as the body, as `curl --data-binary @photo.jpg -H \
                 'Content-Type: image/jpeg'` does",
                found.media_type
            ),
        ));
    }
    Ok(BodyKind::File)
}

/// 415 for a non-JSON body sent to a webhook whose file reception is off.
pub(crate) fn files_disabled(webhook: &Webhook, content_type: Option<&str>) -> Problem {
    let sent = match content_type {
        Some(value) => format!("Content-Type {:?}", truncate(value, 60)),
        None => "no Content-Type".to_owned(),
    };
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "file-reception-disabled",
        "Unsupported Media Type",
        format!(
            "the request has {sent}, so its body would be stored as a file, but webhook {:?} \
             has file reception turned off (files.enabled = false); send JSON with \
             Content-Type application/json",
            webhook.name
        ),
    )
}

/// Reads the body of `request`, detects its type, and stores it for `webhook`.
pub(crate) async fn receive(
    state: &AppState,
    runtime: &Runtime,
    webhook: &Webhook,
    request: &Parts,
    body: &mut Option<Incoming>,
    received_at: DateTime<Utc>,
) -> Result<ReceivedFile, Problem> {
    let headers = &request.headers;
    let filename = filename(headers)?;
    let limit = webhook.files.max_bytes.unwrap_or(runtime.max_file_bytes);
    if let Some(length) = crate::webhook::content_length(headers)
        && length > limit
    {
        return Err(too_large(limit));
    }
    let Some(incoming) = body.as_mut() else {
        return Err(crate::webhook::body_consumed());
    };
    let idle = runtime.body_read_timeout;

    // Read until the detection has its 3 KiB, or the body ends.
    let mut head: Vec<Bytes> = Vec::new();
    let mut head_len: usize = 0;
    let mut ended = false;
    while head_len < HEAD_BYTES {
        match next_chunk(incoming, idle).await? {
            Some(chunk) => {
                head_len += chunk.len();
                if head_len as u64 > limit {
                    return Err(too_large(limit));
                }
                head.push(chunk);
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    if head_len == 0 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "empty-body",
            "Bad Request",
            "the request body is empty; send the file's bytes as the body",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let first_bytes: Vec<u8> = head
        .iter()
        .flat_map(|chunk| chunk.iter().copied())
        .take(HEAD_BYTES)
        .collect();
    reject_data_as_file(content_type.as_deref(), filename.as_deref(), &first_bytes)?;
    let file_type = state
        .detector
        .detect(content_type.as_deref(), filename.as_deref(), &first_bytes)
        .map_err(|undetected| {
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "file-type-unknown",
                "Unsupported Media Type",
                format!(
                    "{undetected}; send a Content-Type such as image/jpeg, or a \
                     Content-Disposition filename with a known extension"
                ),
            )
        })?;

    let owner = webhook.short_id.to_string();
    let files = state.files.clone();
    let upload = tokio::task::spawn_blocking(move || files.begin(&owner, received_at, limit))
        .await
        .map_err(|err| {
            error!(error = %err, "file upload task failed");
            storage_problem(None)
        })?
        .map_err(|err| file_problem(&err, webhook))?;
    let mut upload = BackgroundUpload::spawn(upload, limit);
    for chunk in head {
        upload
            .write(chunk)
            .await
            .map_err(|err| file_problem(&err, webhook))?;
    }
    if !ended {
        while let Some(chunk) = next_chunk(incoming, idle).await? {
            upload
                .write(chunk)
                .await
                .map_err(|err| file_problem(&err, webhook))?;
        }
    }
    let name = stored_name(filename.as_deref(), &file_type, received_at);
    let stored = upload
        .finish(name)
        .await
        .map_err(|err| file_problem(&err, webhook))?;
    debug!(
        webhook.name = %webhook.name,
        file.path = %stored.relative_path,
        file.size = stored.size,
        file.media_type = %file_type.media_type,
        file.detected_by = %file_type.detected_by,
        "stored a webhook file"
    );
    Ok(described(stored, file_type, filename, webhook, received_at))
}

/// Returns the name to store the file under: the safe form of the sender's filename, or
/// `data-<timestamp>.<extension>`.
fn stored_name(filename: Option<&str>, file_type: &FileType, received_at: DateTime<Utc>) -> String {
    filename
        .and_then(|name| hubkit_files::safe_name(name, file_type))
        .unwrap_or_else(|| hubkit_files::default_name(received_at, &file_type.extension))
}

fn described(
    stored: StoredFile,
    file_type: FileType,
    filename: Option<String>,
    webhook: &Webhook,
    received_at: DateTime<Utc>,
) -> ReceivedFile {
    let data = json!({
        "Path": stored.relative_path,
        "Size": stored.size,
        "MediaType": file_type.media_type,
        "Sha256": stored.sha256,
        "OriginalFilename": filename,
        "DetectedBy": file_type.detected_by.as_str(),
    });
    let file = NewFile {
        owner: webhook.short_id.to_string(),
        path: stored.relative_path,
        media_type: file_type.media_type,
        size: stored.size,
        sha256: stored.sha256,
        received_at,
    };
    ReceivedFile { data, file }
}

/// Rejects a body that was sent without a `Content-Type` (or with curl's default for `-d`,
/// `application/x-www-form-urlencoded`) and without a filename, when it is JSON or form
/// fields. Its sender meant data, not a file. Storing it as a text file would respond 200
/// and leave its values out of the record.
fn reject_data_as_file(
    content_type: Option<&str>,
    filename: Option<&str>,
    head: &[u8],
) -> Result<(), Problem> {
    let essence = content_type.map(|value| value.split(';').next().unwrap_or_default().trim());
    let form_type =
        essence.is_some_and(|e| e.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if filename.is_some() || !(essence.is_none() || form_type) {
        return Ok(());
    }
    let sent = match content_type {
        Some(value) => format!("Content-Type {:?}", truncate(value, 60)),
        None => "no Content-Type".to_owned(),
    };
    if starts_as_json(head) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "json-without-content-type",
            "Unsupported Media Type",
            format!(
                "the body is JSON but the request has {sent}; send JSON with \
                 Content-Type application/json (curl -H 'Content-Type: application/json'), \
                 or a file with its own media type or a Content-Disposition filename"
            ),
        ));
    }
    if form_type && is_form_fields(head) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "form-not-supported",
            "Unsupported Media Type",
            "the body is form fields (application/x-www-form-urlencoded), which a json \
             webhook does not take; send the fields as JSON with Content-Type \
             application/json, or as the query string of a query-params webhook",
        ));
    }
    Ok(())
}

/// Returns whether `head` is the start of a JSON object or array: it parses, or it ends
/// before a syntax error does (a large body is cut at 3 KiB). A UTF-8 byte order mark
/// is skipped.
fn starts_as_json(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = head.iter().find(|byte| !byte.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return false;
    }
    let mut values =
        serde_json::Deserializer::from_slice(head).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => true,
        Some(Err(err)) => err.is_eof(),
        None => false,
    }
}

/// Returns whether `head` looks like `key=value&key=value` form fields: printable ASCII
/// without spaces, with an `=` in every pair.
fn is_form_fields(head: &[u8]) -> bool {
    let printable = head.iter().all(|byte| byte.is_ascii_graphic());
    printable
        && head
            .split(|byte| *byte == b'&')
            .all(|pair| pair.contains(&b'=') || pair.is_empty())
        && head.contains(&b'=')
}

/// Longest `Content-Disposition` filename accepted, in bytes after decoding. The stored
/// name is shorter still; the limit keeps `OriginalFilename` in every record small.
const MAX_FILENAME_BYTES: usize = 1024;

/// Returns the filename of the `Content-Disposition` header, if any.
fn filename(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let mut values = headers.get_all(header::CONTENT_DISPOSITION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "duplicate-content-disposition",
            "Bad Request",
            "the request has more than one Content-Disposition header; send exactly one",
        ));
    }
    let parsed = ContentDisposition::parse(value.as_bytes())
        .map(|parsed| parsed.filename)
        .map_err(|err| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-content-disposition",
                "Bad Request",
                format!(
                    "{err}; the header value was {:?}",
                    truncate(&String::from_utf8_lossy(value.as_bytes()), 120)
                ),
            )
        })?;
    if let Some(name) = &parsed
        && name.len() > MAX_FILENAME_BYTES
    {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-content-disposition",
            "Bad Request",
            format!(
                "the Content-Disposition filename is {} bytes, over the limit of \
                 {MAX_FILENAME_BYTES} bytes; send a shorter name",
                name.len()
            ),
        ));
    }
    Ok(parsed)
}

/// Returns the next data chunk of the body, or `None` at its end. Each chunk must arrive
/// within `idle` of the previous one, so a slow but steady upload of a large file is
/// never cut off.
async fn next_chunk(
    incoming: &mut Incoming,
    idle: std::time::Duration,
) -> Result<Option<Bytes>, Problem> {
    loop {
        let frame = match tokio::time::timeout(idle, incoming.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(_) => {
                return Err(Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body-timeout",
                    "Request Timeout",
                    format!(
                        "no part of the request body arrived for {} ms; send the file without \
                         pauses",
                        idle.as_millis()
                    ),
                ));
            }
        };
        let frame = frame.map_err(crate::webhook::body_read_failed)?;
        if let Ok(data) = frame.into_data()
            && !data.is_empty()
        {
            return Ok(Some(data));
        }
    }
}

fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Content Too Large",
        format!(
            "the file is larger than this webhook's file limit of {limit} bytes; send a \
             smaller file or raise files.max_bytes"
        ),
    )
}

/// Maps a storage failure to its response, logging failures that are the hub's own.
fn file_problem(err: &FileError, webhook: &Webhook) -> Problem {
    match err {
        FileError::TooLarge { limit } => too_large(*limit),
        _ if err.is_storage_full() => {
            warn!(webhook.name = %webhook.name, error = %err, "disk full while storing a file");
            storage_problem(Some(err))
        }
        _ => {
            error!(webhook.name = %webhook.name, error = %err, "failed to store a file");
            storage_problem(Some(err))
        }
    }
}

/// 507 for a full disk, 503 for other storage failures. The detail names no path, which
/// would tell clients about the server's layout.
fn storage_problem(err: Option<&FileError>) -> Problem {
    if err.is_some_and(FileError::is_storage_full) {
        return storage_full();
    }
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "file-storage-unavailable",
        "Service Unavailable",
        "the file could not be written to the hub's disk, so it was not stored; retry later",
    )
    .with_header(header::RETRY_AFTER, http::HeaderValue::from_static("1"))
}

/// 507 for a full disk, under the files folder or the database.
pub(crate) fn storage_full() -> Problem {
    Problem::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "storage-full",
        "Insufficient Storage",
        "the hub's disk is full, so nothing was stored; retry after space is freed",
    )
}

/// Removes a stored file whose records failed to commit, so no file is left that no
/// record describes.
pub(crate) async fn discard(state: &AppState, file: &NewFile) {
    let files = state.files.clone();
    let path = file.path.clone();
    let now = Utc::now();
    let removed = tokio::task::spawn_blocking(move || files.remove(&path, now)).await;
    if let Ok(Err(err)) = removed {
        warn!(file.path = %file.path, error = %err, "failed to remove a file whose records failed to commit");
    }
}
