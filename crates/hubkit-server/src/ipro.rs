//! `GET|POST|PUT /ipro/<mac>/<format>[/<notification data>]`: requests from i-PRO cameras.
//!
//! Every accepted request is rebuilt as raw HTTP text before it is parsed. The response
//! is 200 once the raw request (a database row, or a file when it is large), the images
//! found in it and one record per event have committed. A request whose body cannot be
//! parsed is still stored, and its response is 200 with the parse errors in its record.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, Version, header};
use hubkit_ipro::{
    Camera, CameraEndpoint, DataFormat, IPRO_PREFIX, Image, Notification, Parsed, parse_camera_path,
};
use hubkit_model::{BoundLayer, DataId, DeviceRef, HttpTransport, Record, Transport};
use hubkit_store::{CameraWrite, NewCameraRequest, NewFile};
use hyper::body::{Body as _, Incoming};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tracing::{debug, error, warn};

use crate::body::{ResponseBody, full};
use crate::problem::{Problem, truncate};
use crate::state::{AppState, Runtime, SMALL_CAMERA_BODY_BYTES};

/// Metrics label of every camera request.
const ENDPOINT_LABEL: &str = "/ipro";

/// `DataType` of camera records.
const DATA_TYPE: &str = "json";

/// Media type of a stored raw request.
const RAW_MEDIA_TYPE: &str = "message/http";

/// Bodies larger than this are parsed on a blocking thread.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Largest decoded body, as JSON text, that a record's `Data.Body` carries.
const MAX_BODY_IN_DATA: usize = 256 * 1024;

/// Longest string that a record's `Data` carries from a body over [`MAX_BODY_IN_DATA`],
/// such as a huge ONVIF `Event detail`; longer ones are cut.
const MAX_STRING_IN_DATA: usize = 64 * 1024;

/// Header fields whose values the raw copy replaces with `[redacted]`.
const REDACTED_HEADERS: [header::HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Raw requests up to this size are kept in the database, committed with their records;
/// larger ones are stored as files. Most alarm notifications and count reports are a
/// few hundred bytes, and one file with two fsyncs per request would cost far more.
pub(crate) const MAX_INLINE_RAW_BYTES: usize = 64 * 1024;

/// Handles one camera request. `rest` is the path after [`IPRO_PREFIX`].
pub(crate) async fn handle(
    state: &AppState,
    request: &Parts,
    body: &mut Option<Incoming>,
    remote: &str,
    rest: &str,
) -> (Response<ResponseBody>, String) {
    let response = match accept(state, request, body, remote, rest).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    };
    (response, ENDPOINT_LABEL.to_owned())
}

async fn accept(
    state: &AppState,
    request: &Parts,
    body: &mut Option<Incoming>,
    remote: &str,
    rest: &str,
) -> Result<Response<ResponseBody>, Problem> {
    let runtime = state.runtime.load_full();
    let path = parse_camera_path(rest).map_err(|err| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "camera-path-invalid",
            "Not Found",
            format!("{err}; a camera URL looks like {IPRO_PREFIX}aa-bb-cc-dd-ee-ff/general"),
        )
    })?;
    let Some(endpoint) = runtime.cameras.lookup(&path.mac).cloned() else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "camera-not-found",
            "Not Found",
            format!(
                "no camera has MAC address {}; add a [[cameras]] entry with this mac, or \
                 correct the address in the camera's URL",
                path.mac
            ),
        ));
    };
    let camera = endpoint.camera();
    if !camera.enabled {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "camera-disabled",
            "Not Found",
            format!(
                "camera {:?} ({}) is disabled; set enabled = true to accept its requests",
                camera.name, camera.mac
            ),
        ));
    }
    if !matches!(request.method, Method::GET | Method::POST | Method::PUT) {
        return Err(Problem::method_not_allowed(
            "GET, POST, PUT",
            format!(
                "camera URLs take GET, POST and PUT, but the request used {}",
                truncate(request.method.as_str(), 20)
            ),
        ));
    }
    authorize(state, &endpoint, request).await?;

    let device = DeviceRef::Camera(camera.name.clone());
    let layers = runtime.topology.layers_for(&device);
    if layers.is_empty() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "camera-not-bound",
            "Not Found",
            format!(
                "camera {:?} is not bound to an enabled layer, so it records nothing; bind \
                 it to a layer of kind ipro and enable the binding",
                camera.name
            ),
        ));
    }

    let bytes = read_camera_body(state, &runtime, camera, request, body).await?;
    let received_at = Utc::now();
    let raw = raw_request(request, &bytes);
    if let Some(folder) = &runtime.capture_dir {
        capture(folder, camera, received_at, &raw).await;
    }
    let mut parsed = parse_request(request, path.rest, bytes.clone()).await?;
    if bytes.len() > MAX_BODY_IN_DATA {
        for event in &mut parsed.events {
            omit_large_body(&mut event.data);
            for value in event.data.values_mut() {
                cut_long_strings(value, 0);
            }
        }
    }

    // Keep the raw request (in the database when it is small), store the images, then
    // commit the records that refer to them.
    let owner = camera.file_owner();
    let raw = keep_raw(state, &owner, received_at, raw).await?;
    let images = std::mem::take(&mut parsed.images);
    let images = match store_images(state, &owner, received_at, images).await {
        Ok(images) => images,
        Err(problem) => {
            discard(state, raw.file.as_slice()).await;
            return Err(problem);
        }
    };

    let transport = Transport::Http(HttpTransport {
        remote_address: remote.to_owned(),
        method: request.method.to_string(),
        content_type: header_text(request, header::CONTENT_TYPE),
        query: request.uri.query().map(str::to_owned),
        tls: state.tls,
    });
    let url_format = path.format.filter(|format| *format != camera.format);
    let context = RecordContext {
        camera,
        layers,
        raw_reference: &raw.reference,
        images: &images,
        url_format,
        received_at,
        transport: &transport,
    };
    let made = make_records(&context, parsed);
    let ids: Vec<DataId> = made.records.iter().map(|record| record.data_id).collect();
    let count = made.records.len() as u64;

    let mut files = Vec::with_capacity(images.len() + 1);
    if let Some(file) = &raw.file {
        files.push((file.clone(), (0..made.records.len()).collect()));
    }
    for (image, links) in images.iter().zip(made.image_links) {
        files.push((image.file.clone(), links));
    }
    let stored: Vec<NewFile> = raw
        .file
        .iter()
        .cloned()
        .chain(images.iter().map(|image| image.file.clone()))
        .collect();
    let runs = crate::actions::fire(state, &runtime, &made.records);
    let fired = crate::actions::Fired::of(&runs);
    let write = CameraWrite {
        files,
        raw: raw.row,
        runs,
    };
    if let Err(err) = state.store.insert_camera(made.records, write).await {
        fired.not_stored(state);
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        discard(state, &stored).await;
        if err.is_storage_full() {
            warn!(camera.name = %camera.name, error = %err, "disk full while storing a camera record");
            return Err(crate::upload::storage_full());
        }
        error!(camera.name = %camera.name, error = %err, error.cause = ?cause, "failed to store a camera record");
        return Err(Problem::store_unavailable());
    }
    fired.stored(state);
    state.metrics.records_stored.inc_by(count);
    state.metrics.files_stored.inc_by(stored.len() as u64);
    let file_bytes: u64 = stored.iter().map(|file| file.size).sum();
    state.metrics.file_bytes_stored.inc_by(file_bytes);
    if made.parse_errors > 0 {
        state.metrics.camera_parse_errors.inc();
    }
    debug!(
        camera.name = %camera.name,
        records = count,
        images = images.len(),
        parse_errors = made.parse_errors,
        "stored a camera request"
    );

    let body = json!({
        "DataId": ids.first(),
        "DataIds": ids,
        "Raw": raw.reference,
    });
    let mut response = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Reads the body within the camera's size limit. A body over 1 MiB, or of unknown
/// length, first waits for one of the few permits for large requests.
async fn read_camera_body(
    state: &AppState,
    runtime: &Runtime,
    camera: &Camera,
    request: &Parts,
    body: &mut Option<Incoming>,
) -> Result<Bytes, Problem> {
    let limit = camera.max_body_bytes.unwrap_or(runtime.camera_body_bytes);
    let declared = crate::webhook::content_length(&request.headers);
    let has_body = body.as_ref().is_some_and(|body| !body.is_end_stream());
    let may_be_large = has_body
        && declared.is_none_or(|length| length > SMALL_CAMERA_BODY_BYTES)
        && declared.is_none_or(|length| length <= limit);
    // The hub never closes this semaphore, so acquiring cannot fail while it runs.
    let _permit = if may_be_large {
        Some(
            state
                .large_camera_requests
                .acquire()
                .await
                .map_err(|_| Problem::store_unavailable())?,
        )
    } else {
        None
    };
    crate::webhook::read_body(&request.headers, body, limit, runtime, "this camera's").await
}

/// Parses the request into events, on a blocking thread when the body is large. A
/// compressed body is not parsed, and every event gets an error naming its coding.
async fn parse_request(request: &Parts, path_rest: &str, bytes: Bytes) -> Result<Parsed, Problem> {
    let content_type = header_text(request, header::CONTENT_TYPE);
    let encoded = encoded_body(request);
    let method = request.method.to_string();
    let query = request.uri.query().map(str::to_owned);
    let path_rest = path_rest.to_owned();
    let compressed = encoded.is_some();
    let large = bytes.len() > INLINE_PARSE_BYTES;
    let parse = move || {
        let notification = Notification {
            method: &method,
            path_rest: &path_rest,
            query: query.as_deref(),
            content_type: content_type.as_deref(),
            body: if compressed { &[] } else { &bytes },
        };
        hubkit_ipro::parse(&notification)
    };
    let mut parsed = if large {
        tokio::task::spawn_blocking(parse).await.map_err(|err| {
            error!(error = %err, "camera request parse task failed");
            Problem::store_unavailable()
        })?
    } else {
        parse()
    };
    if let Some(coding) = &encoded {
        let message = format!(
            "the body has Content-Encoding {coding:?}, which hubkitd does not decode; it is \
             kept only in the raw request"
        );
        for event in &mut parsed.events {
            event.errors.push(message.clone());
        }
    }
    Ok(parsed)
}

/// A raw request as it is kept: the reference that records carry, and either the
/// database row to commit with them or the file already written.
struct KeptRaw {
    reference: Map<String, Value>,
    row: Option<NewCameraRequest>,
    file: Option<NewFile>,
}

/// Keeps a raw request of up to [`MAX_INLINE_RAW_BYTES`] as a database row, and writes a
/// larger one to a file.
async fn keep_raw(
    state: &AppState,
    owner: &str,
    received_at: DateTime<Utc>,
    raw: Vec<u8>,
) -> Result<KeptRaw, Problem> {
    if raw.len() > MAX_INLINE_RAW_BYTES {
        let file = store_file(state, owner, received_at, raw, "raw", "http").await?;
        let file = NewFile {
            media_type: RAW_MEDIA_TYPE.to_owned(),
            ..file
        };
        return Ok(KeptRaw {
            reference: describe(&file),
            row: None,
            file: Some(file),
        });
    }
    let id = uuid::Uuid::now_v7().simple().to_string();
    let mut reference = Map::new();
    reference.insert("Id".into(), Value::String(id.clone()));
    reference.insert("Size".into(), Value::from(raw.len()));
    reference.insert("MediaType".into(), Value::String(RAW_MEDIA_TYPE.to_owned()));
    reference.insert(
        "Sha256".into(),
        Value::String(format!("{:x}", Sha256::digest(&raw))),
    );
    let row = NewCameraRequest {
        id,
        camera: owner.to_owned(),
        received_at,
        raw,
    };
    Ok(KeptRaw {
        reference,
        row: Some(row),
        file: None,
    })
}

/// An image written to a file, with the reference that records carry.
struct StoredImage {
    file: NewFile,
    reference: Map<String, Value>,
}

/// Writes each image to a file. On a failure the images already written are removed.
async fn store_images(
    state: &AppState,
    owner: &str,
    received_at: DateTime<Utc>,
    images: Vec<Image>,
) -> Result<Vec<StoredImage>, Problem> {
    let mut stored: Vec<StoredImage> = Vec::with_capacity(images.len());
    for (index, image) in images.into_iter().enumerate() {
        let name = format!("image-{}", index + 1);
        let written = store_file(
            state,
            owner,
            received_at,
            image.bytes,
            &name,
            &image.extension,
        );
        match written.await {
            Ok(file) => {
                let file = NewFile {
                    media_type: image.media_type,
                    ..file
                };
                let mut reference = describe(&file);
                reference.insert("Origin".into(), Value::String(image.origin));
                stored.push(StoredImage { file, reference });
            }
            Err(problem) => {
                let files: Vec<NewFile> = stored.into_iter().map(|image| image.file).collect();
                discard(state, &files).await;
                return Err(problem);
            }
        }
    }
    Ok(stored)
}

/// The records of one camera request.
struct MadeRecords {
    records: Vec<Record>,
    /// For each stored image, the indexes of the records that refer to it.
    image_links: Vec<Vec<usize>>,
    /// Number of events with at least one parse error.
    parse_errors: usize,
}

/// What every record of one camera request shares.
struct RecordContext<'a> {
    camera: &'a Camera,
    layers: &'a [BoundLayer],
    raw_reference: &'a Map<String, Value>,
    images: &'a [StoredImage],
    /// The URL's data format, when it differs from the camera's.
    url_format: Option<DataFormat>,
    received_at: DateTime<Utc>,
    transport: &'a Transport,
}

/// Makes one record per event and bound layer, with the camera's fields, the images of
/// the event and the raw request reference added to the event's `Data`.
fn make_records(context: &RecordContext<'_>, parsed: Parsed) -> MadeRecords {
    let RecordContext {
        camera,
        layers,
        raw_reference,
        images,
        url_format,
        received_at,
        transport,
    } = *context;
    let mut made = MadeRecords {
        records: Vec::new(),
        image_links: vec![Vec::new(); images.len()],
        parse_errors: 0,
    };
    for event in parsed.events {
        if !event.errors.is_empty() {
            made.parse_errors += 1;
        }
        let mut data = Map::new();
        data.insert("Camera".into(), Value::String(camera.name.clone()));
        data.insert("Mac".into(), Value::String(camera.mac.to_string()));
        data.insert("Format".into(), Value::String(camera.format.to_string()));
        if let Some(format) = url_format {
            data.insert("UrlFormat".into(), Value::String(format.to_string()));
        }
        data.insert(
            "Event".into(),
            Value::String(event.kind.as_str().to_owned()),
        );
        data.extend(event.data);
        let event_images: Vec<Value> = event
            .images
            .iter()
            .filter_map(|&index| images.get(index))
            .map(|image| Value::Object(image.reference.clone()))
            .collect();
        if !event_images.is_empty() {
            data.insert("Images".into(), Value::Array(event_images));
        }
        data.insert("Raw".into(), Value::Object(raw_reference.clone()));
        if !event.errors.is_empty() {
            let errors = event.errors.into_iter().map(Value::String).collect();
            data.insert("ParseErrors".into(), Value::Array(errors));
        }
        let data = Value::Object(data);
        for layer in layers {
            for &index in &event.images {
                if let Some(links) = made.image_links.get_mut(index) {
                    links.push(made.records.len());
                }
            }
            made.records.push(Record {
                data_id: DataId::new(),
                area_id: layer.area_id,
                area_name: layer.area_name.clone(),
                layer_id: layer.layer_id,
                layer_name: layer.layer_name.clone(),
                kind_name: kind_name(camera.format),
                physical_device_id: camera.mac.to_string(),
                physical_device_name: camera.name.clone(),
                data_type: DATA_TYPE.to_owned(),
                data: data.clone(),
                timestamp: received_at,
                transport: transport.clone(),
            });
        }
    }
    made
}

/// Returns a header's value as text, replacing bytes that are not UTF-8.
fn header_text(request: &Parts, name: header::HeaderName) -> Option<String> {
    request
        .headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// Replaces a decoded body larger than [`MAX_BODY_IN_DATA`] as JSON text with a note: the
/// raw request keeps it, and every record would otherwise carry its own copy.
fn omit_large_body(data: &mut Map<String, Value>) {
    let Some(body) = data.get("Body") else {
        return;
    };
    let size = serde_json::to_vec(body).map_or(0, |text| text.len());
    if size > MAX_BODY_IN_DATA {
        let note = format!(
            "the decoded body is {size} bytes as JSON, over the {MAX_BODY_IN_DATA} bytes \
             kept in a record; it is kept in the raw request"
        );
        data.insert("Body".into(), json!({ "Omitted": note }));
    }
}

/// Cuts every string in `value` longer than [`MAX_STRING_IN_DATA`] bytes, at a character
/// boundary, and marks it with its full length. The raw request keeps the whole value.
fn cut_long_strings(value: &mut Value, depth: usize) {
    // The parsers bound nesting to a few dozen levels; this guards the recursion anyway.
    if depth > 256 {
        return;
    }
    match value {
        Value::String(text) if text.len() > MAX_STRING_IN_DATA => {
            let mut end = MAX_STRING_IN_DATA;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let full = text.len();
            text.truncate(end);
            text.push_str(&format!(
                "… [cut at {end} of {full} bytes; the raw request keeps the whole value]"
            ));
        }
        Value::Array(items) => {
            for item in items {
                cut_long_strings(item, depth + 1);
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                cut_long_strings(item, depth + 1);
            }
        }
        _ => {}
    }
}

/// Returns the records' `KindName` for a data format, such as `i-PRO AI Motion Detection`.
pub(crate) fn kind_name(format: DataFormat) -> String {
    format!("i-PRO {}", format.display_name())
}

async fn authorize(
    state: &AppState,
    endpoint: &Arc<CameraEndpoint>,
    request: &Parts,
) -> Result<(), Problem> {
    crate::webhook::check_credentials(
        state,
        &request.headers,
        |authorization| endpoint.authorize(authorization),
        "this camera requires HTTP Basic authentication; enter the username and password \
         of its [[cameras]] entry in the camera's notification settings",
    )
    .await
}

/// Returns the content coding of a compressed body, which the parsers cannot read.
fn encoded_body(request: &Parts) -> Option<String> {
    request
        .headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .flat_map(|text| {
            text.split(',')
                .map(|coding| coding.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
}

/// Writes the request as HTTP/1.x text. The request line is the one received, or the
/// HTTP/1.1 form of an HTTP/2 request with its authority as `host`. The header fields
/// follow (names in lower case, as hyper keeps them), then a blank line and the body
/// byte for byte.
///
/// Some header fields differ from what was sent: the values of [`REDACTED_HEADERS`]
/// become `[redacted]`, so no camera password is written to disk, and a chunked body is
/// written de-chunked with a `content-length` in place of `transfer-encoding`, so the
/// text parses as one request again.
fn raw_request(request: &Parts, body: &Bytes) -> Vec<u8> {
    let (target, version) = match request.version {
        Version::HTTP_2 | Version::HTTP_3 => (
            request
                .uri
                .path_and_query()
                .map_or_else(|| request.uri.path().to_owned(), ToString::to_string),
            "HTTP/1.1",
        ),
        Version::HTTP_10 => (request.uri.to_string(), "HTTP/1.0"),
        _ => (request.uri.to_string(), "HTTP/1.1"),
    };
    let mut raw = Vec::with_capacity(body.len() + 512);
    raw.extend_from_slice(format!("{} {target} {version}\r\n", request.method).as_bytes());
    if request.headers.get(header::HOST).is_none()
        && let Some(authority) = request.uri.authority()
    {
        raw.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
    }
    for (name, value) in &request.headers {
        if *name == header::TRANSFER_ENCODING {
            continue;
        }
        raw.extend_from_slice(name.as_str().as_bytes());
        raw.extend_from_slice(b": ");
        if REDACTED_HEADERS.contains(name) {
            raw.extend_from_slice(b"[redacted]");
        } else {
            raw.extend_from_slice(value.as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
    }
    if request.headers.get(header::CONTENT_LENGTH).is_none() && !body.is_empty() {
        raw.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

/// Writes a raw request to the capture folder. A failure is logged and does not fail the
/// request: the raw request is stored in the files folder as well.
async fn capture(folder: &Path, camera: &Camera, received_at: DateTime<Utc>, raw: &[u8]) {
    let folder = folder.join(camera.mac.url_form());
    let name = format!(
        "{}-{}.http",
        received_at.format("%Y%m%dT%H%M%S%.9fZ"),
        uuid::Uuid::now_v7().simple()
    );
    let path: PathBuf = folder.join(name);
    let raw = raw.to_vec();
    let write_path = path.clone();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&folder)?;
        std::fs::write(&write_path, raw)
    })
    .await;
    match written {
        Ok(Ok(())) => debug!(file.path = %path.display(), "captured a camera request"),
        Ok(Err(err)) => {
            warn!(file.path = %path.display(), error = %err, "failed to capture a camera request")
        }
        Err(err) => warn!(error = %err, "capture task failed"),
    }
}

/// Stores `bytes` as a file of `owner` named `<stem>-<time>.<extension>`.
async fn store_file(
    state: &AppState,
    owner: &str,
    received_at: DateTime<Utc>,
    bytes: Vec<u8>,
    stem: &str,
    extension: &str,
) -> Result<NewFile, Problem> {
    let files = state.files.clone();
    let owner = owner.to_owned();
    let name = format!(
        "{stem}-{}.{extension}",
        received_at.format("%Y%m%dT%H%M%S%.9fZ")
    );
    let stored = tokio::task::spawn_blocking(move || {
        let mut upload = files.begin(&owner, received_at, u64::MAX)?;
        upload.write(&bytes)?;
        upload.finish(&name).map(|stored| (owner, stored))
    })
    .await;
    match stored {
        Ok(Ok((owner, stored))) => Ok(NewFile {
            owner,
            path: stored.relative_path,
            media_type: String::new(),
            size: stored.size,
            sha256: stored.sha256,
            received_at,
        }),
        Ok(Err(err)) if err.is_storage_full() => {
            warn!(error = %err, "disk full while storing a camera request");
            Err(crate::upload::storage_full())
        }
        Ok(Err(err)) => {
            error!(error = %err, "failed to store a camera request");
            Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "file-storage-unavailable",
                "Service Unavailable",
                "the request could not be written to the hub's disk, so it was not stored; \
                 retry later",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")))
        }
        Err(err) => {
            error!(error = %err, "camera file task failed");
            Err(Problem::store_unavailable())
        }
    }
}

/// Returns the reference to a stored file that records carry.
fn describe(file: &NewFile) -> Map<String, Value> {
    let mut reference = Map::new();
    reference.insert("Path".into(), Value::String(file.path.clone()));
    reference.insert("Size".into(), Value::from(file.size));
    reference.insert("MediaType".into(), Value::String(file.media_type.clone()));
    reference.insert("Sha256".into(), Value::String(file.sha256.clone()));
    reference
}

/// Removes files whose records failed to commit.
async fn discard(state: &AppState, files: &[NewFile]) {
    for file in files {
        crate::upload::discard(state, file).await;
    }
}

/// `GET /api/v1/cameras`: every camera with the URL to enter in it; secrets are never
/// included.
pub(crate) fn cameras(
    state: &AppState,
    request: &Parts,
) -> Result<Response<ResponseBody>, Problem> {
    if let Some(query) = request.uri.query().filter(|query| !query.is_empty()) {
        return Err(crate::api::invalid_parameter(format!(
            "/api/v1/cameras takes no parameters, but got {:?}",
            truncate(query, 60)
        )));
    }
    let runtime = state.runtime.load();
    Ok(crate::api::json_response(&camera_list(&runtime)))
}

/// Builds the body of `GET /api/v1/cameras`.
pub(crate) fn camera_list(runtime: &Runtime) -> Value {
    let base = runtime
        .public_url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let cameras: Vec<Value> = runtime
        .cameras
        .iter()
        .map(|endpoint| {
            let camera = endpoint.camera();
            let device = DeviceRef::Camera(camera.name.clone());
            let layers: Vec<String> = runtime
                .topology
                .layers_for(&device)
                .iter()
                .map(|layer| format!("{}/{}", layer.area_name, layer.layer_name))
                .collect();
            json!({
                "name": camera.name,
                "mac": camera.mac.to_string(),
                "format": camera.format.as_str(),
                "kind_name": kind_name(camera.format),
                "url": format!("{base}{}", camera.url_path()),
                "methods": "GET, POST, PUT",
                "authentication": match camera.auth {
                    hubkit_endpoints::Auth::None => "none",
                    hubkit_endpoints::Auth::Basic { .. } => "basic",
                },
                "enabled": camera.enabled,
                "layers": layers,
                "max_body_bytes": camera.max_body_bytes.unwrap_or(runtime.camera_body_bytes),
                "max_age_hours": camera.max_age.map(|age| age.as_secs() / 3600),
                "max_total_bytes": camera.max_total_bytes,
            })
        })
        .collect();
    json!({ "cameras": cameras, "capture": runtime.capture_dir.is_some() })
}

/// `GET /api/v1/camera-requests/<id>`: a raw camera request kept in the database, as
/// `message/http`.
pub(crate) async fn camera_request(
    state: &AppState,
    id: &str,
) -> Result<Response<ResponseBody>, Problem> {
    let id = id.to_ascii_lowercase();
    let id = id.as_str();
    let valid = id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit());
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "camera-request-not-found",
            "Not Found",
            format!(
                "no raw camera request has the id {:?}; use the Id of a record's Data.Raw \
                 (32 hex digits). A Raw with a Path instead is a file: fetch it from \
                 /api/v1/files/<path>",
                truncate(id, 60)
            ),
        )
    };
    if !valid {
        return Err(not_found());
    }
    match state.store.camera_request(id).await {
        Ok(Some(request)) => {
            let mut response = Response::new(full(request.raw));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(RAW_MEDIA_TYPE),
            );
            Ok(response)
        }
        Ok(None) => Err(not_found()),
        Err(err) => {
            error!(error = %crate::error_chain(&err), "failed to read a raw camera request");
            Err(Problem::store_unavailable())
        }
    }
}
