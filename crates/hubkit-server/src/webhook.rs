//! `GET|POST /webhook/urls/<custom path>`: authenticate, read, decode, bind and store.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use hubkit_decode::DecodeError;
use hubkit_endpoints::{AuthCheck, Endpoint, PayloadFormat};
use hubkit_model::{BoundLayer, DataId, DeviceRef, HttpTransport, Record, Transport};
use hyper::body::{Body, Incoming};
use serde::Serialize;
use tracing::{debug, error, warn};

use crate::body::{ResponseBody, full};
use crate::problem::{Problem, truncate};
use crate::state::{AppState, Runtime};
use crate::upload::{self, BodyKind};

/// Path prefix of every webhook.
pub const WEBHOOK_PREFIX: &str = "/webhook/urls/";

/// `DataType` of records made from webhook payloads.
const DATA_TYPE_JSON: &str = "json";

/// Body of a successful webhook response.
#[derive(Serialize)]
struct Stored<'a> {
    /// Id of the first record, the one most callers need.
    #[serde(rename = "DataId")]
    data_id: &'a DataId,
    /// Ids of every record made, one per bound layer.
    #[serde(rename = "DataIds")]
    data_ids: &'a [DataId],
    /// The records' `Data` when the body was stored as a file, so the sender learns
    /// the stored path and hash.
    #[serde(rename = "File", skip_serializing_if = "Option::is_none")]
    file: Option<&'a serde_json::Value>,
}

/// Handles one webhook request. Returns the response and the metrics label of the
/// endpoint (the webhook's name, or `unknown`).
pub(crate) async fn handle(
    state: &AppState,
    request: &Parts,
    body: &mut Option<Incoming>,
    remote: &str,
    custom_path: &str,
) -> (Response<ResponseBody>, String) {
    let runtime = state.runtime.load_full();
    let Some(endpoint) = runtime.registry.lookup(custom_path).cloned() else {
        return (not_found(custom_path).into_response(), "unknown".into());
    };
    let label = endpoint.webhook().name.clone();
    let response = match accept(state, &runtime, &endpoint, request, body, remote).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    };
    (response, label)
}

async fn accept(
    state: &AppState,
    runtime: &Runtime,
    endpoint: &Arc<Endpoint>,
    request: &Parts,
    body: &mut Option<Incoming>,
    remote: &str,
) -> Result<Response<ResponseBody>, Problem> {
    let webhook = endpoint.webhook();
    if !webhook.enabled {
        return Err(not_found(webhook.custom_path.as_str()));
    }
    check_method(endpoint, &request.method)?;
    authorize(state, endpoint, &request.headers).await?;

    let device = DeviceRef::Webhook(webhook.name.clone());
    let layers = runtime.topology.layers_for(&device);
    if layers.is_empty() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "webhook-not-bound",
            "Not Found",
            format!(
                "webhook {:?} is not bound to an enabled layer, so it records nothing; \
                 bind it to a layer in the configuration and enable the binding",
                webhook.name
            ),
        ));
    }

    let received_at = Utc::now();
    let content_type = header_text(&request.headers, header::CONTENT_TYPE);
    let method = request.method.to_string();
    let mut body_query = None;
    let mut data_type = DATA_TYPE_JSON;
    let mut file = None;
    let data = match webhook.format {
        PayloadFormat::QueryParams => {
            reject_body(body)?;
            let query = request.uri.query().unwrap_or("");
            let limit = webhook.max_body_bytes.unwrap_or(runtime.max_body_bytes);
            if query.len() as u64 > limit {
                return Err(Problem::new(
                    StatusCode::URI_TOO_LONG,
                    "query-too-long",
                    "URI Too Long",
                    format!(
                        "the query string is {} bytes, over this webhook's limit of {limit} bytes; \
                         send less data per request",
                        query.len()
                    ),
                ));
            }
            let map = hubkit_decode::decode_query(query).map_err(decode_problem)?;
            serde_json::Value::Object(map)
        }
        PayloadFormat::Json => {
            check_body_headers(&request.headers)?;
            body_query = request.uri.query().map(str::to_owned);
            match upload::classify(content_type.as_deref())? {
                BodyKind::Json => {
                    let limit = webhook.max_body_bytes.unwrap_or(runtime.max_body_bytes);
                    let bytes =
                        read_body(&request.headers, body, limit, runtime, "this webhook's").await?;
                    hubkit_decode::decode_json(&bytes).map_err(decode_problem)?
                }
                BodyKind::File if !webhook.files.enabled => {
                    return Err(upload::files_disabled(webhook, content_type.as_deref()));
                }
                BodyKind::File => {
                    let received =
                        upload::receive(state, runtime, webhook, request, body, received_at)
                            .await?;
                    data_type = upload::DATA_TYPE_FILE;
                    file = Some(received.file);
                    received.data
                }
            }
        }
    };

    let file_view = file.is_some().then(|| data.clone());
    let transport = Transport::Http(HttpTransport {
        remote_address: remote.to_owned(),
        method,
        content_type,
        query: body_query,
        tls: state.tls,
    });
    let make_record = |layer: &BoundLayer, data, transport| Record {
        data_id: DataId::new(),
        area_id: layer.area_id,
        area_name: layer.area_name.clone(),
        layer_id: layer.layer_id,
        layer_name: layer.layer_name.clone(),
        kind_name: layer.kind.kind_name().to_owned(),
        physical_device_id: webhook.short_id.to_string(),
        physical_device_name: webhook.name.clone(),
        data_type: data_type.to_owned(),
        data,
        timestamp: received_at,
        transport,
    };
    // The last layer takes the decoded data; only the others get copies.
    let Some((last, others)) = layers.split_last() else {
        return Err(not_found(webhook.custom_path.as_str()));
    };
    let mut records: Vec<Record> = others
        .iter()
        .map(|layer| make_record(layer, data.clone(), transport.clone()))
        .collect();
    records.push(make_record(last, data, transport));
    let ids: Vec<DataId> = records.iter().map(|record| record.data_id).collect();
    let count = records.len() as u64;

    let runs = crate::actions::fire(state, runtime, &records);
    let fired = crate::actions::Fired::of(&runs);
    let inserted = match &file {
        Some(file) => {
            state
                .store
                .insert_with_file_and_runs(records, file.clone(), runs)
                .await
        }
        None => state.store.insert_with_runs(records, runs).await,
    };
    if let Err(err) = inserted {
        fired.not_stored(state);
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        if let Some(file) = &file {
            upload::discard(state, file).await;
        }
        if err.is_storage_full() {
            warn!(webhook.name = %webhook.name, error = %err, error.cause = ?cause, "disk full while storing a webhook record");
            return Err(upload::storage_full());
        }
        error!(webhook.name = %webhook.name, error = %err, error.cause = ?cause, "failed to store a webhook record");
        return Err(Problem::store_unavailable());
    }
    fired.stored(state);
    if let Some(file) = &file {
        state.metrics.files_stored.inc();
        state.metrics.file_bytes_stored.inc_by(file.size);
    }
    state.metrics.records_stored.inc_by(count);
    debug!(webhook.name = %webhook.name, records = count, "stored webhook data");

    let body = serde_json::to_vec(&Stored {
        data_id: &ids[0],
        data_ids: &ids,
        file: file_view.as_ref(),
    })
    .unwrap_or_default();
    let mut response = Response::new(full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn not_found(custom_path: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "webhook-not-found",
        "Not Found",
        format!(
            "no enabled webhook has the custom path {:?}; the path after {WEBHOOK_PREFIX} \
             must match a configured custom path exactly, including case",
            truncate(custom_path, 120)
        ),
    )
}

fn check_method(endpoint: &Endpoint, method: &Method) -> Result<(), Problem> {
    let webhook = endpoint.webhook();
    let (expected, allow) = match webhook.format {
        PayloadFormat::Json => (Method::POST, "POST"),
        PayloadFormat::QueryParams => (Method::GET, "GET"),
    };
    if *method == expected {
        return Ok(());
    }
    let hint = match webhook.format {
        PayloadFormat::Json => "send the data as a JSON body, or a file, with POST",
        PayloadFormat::QueryParams => "send the data as query parameters with GET",
    };
    Err(Problem::method_not_allowed(
        allow,
        format!(
            "webhook {:?} has payload format {}, which expects {allow}, but the request used {}; {hint}",
            webhook.name,
            webhook.format.as_str(),
            truncate(method.as_str(), 20)
        ),
    ))
}

async fn authorize(
    state: &AppState,
    endpoint: &Arc<Endpoint>,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    check_credentials(
        state,
        headers,
        |authorization| endpoint.authorize(authorization),
        "this webhook requires HTTP Basic authentication with its configured username and password",
    )
    .await
}

/// Checks a request's credentials with `check`, running an argon2 verification on a
/// blocking thread when one is needed. A rejection is a 401 with a Basic challenge whose
/// detail ends with `hint`.
pub(crate) async fn check_credentials(
    state: &AppState,
    headers: &HeaderMap,
    check: impl FnOnce(Option<&[u8]>) -> AuthCheck,
    hint: &str,
) -> Result<(), Problem> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(duplicate_authorization());
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let result = match check(authorization) {
        AuthCheck::Allowed => Ok(()),
        AuthCheck::Denied(err) => Err(err),
        AuthCheck::Verify(pending) => {
            // The permit bounds how many argon2 verifications run at once. Nothing closes
            // the semaphore, so acquiring cannot fail while the hub runs.
            let Ok(_permit) = state.password_verifications.acquire().await else {
                return Err(Problem::store_unavailable());
            };
            match tokio::task::spawn_blocking(move || pending.verify()).await {
                Ok(result) => result,
                Err(err) => {
                    error!(error = %err, "password verification task failed");
                    return Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "verification-unavailable",
                        "Service Unavailable",
                        "the credentials could not be checked; retry later",
                    ));
                }
            }
        }
    };
    result.map_err(|err| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            format!("{err}; {hint}"),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"hubkit\", charset=\"UTF-8\""),
        )
    })
}

/// Reads the body into memory, enforcing `limit` while it streams. On a 413 the rest of the
/// body stays in `body`, so the router can discard it for HTTP/2 clients.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: &mut Option<Incoming>,
    limit: u64,
    runtime: &Runtime,
    owner: &str,
) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Content Too Large",
            format!(
                "the request body is larger than {owner} limit of {limit} bytes; send a smaller body"
            ),
        )
    };
    if let Some(length) = content_length(headers)
        && length > limit
    {
        return Err(too_large());
    }
    let Some(incoming) = body.as_mut() else {
        return Err(body_consumed());
    };
    let read = async {
        // Most bodies arrive in one frame, whose bytes are kept without a copy.
        let mut first: Option<Bytes> = None;
        let mut bytes = BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(body_read_failed)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let read = first.as_ref().map_or(0, Bytes::len) + bytes.len();
            if (read + data.len()) as u64 > limit {
                return Err(too_large());
            }
            match first.take() {
                None if bytes.is_empty() => first = Some(data),
                earlier => {
                    if let Some(earlier) = earlier {
                        bytes.extend_from_slice(&earlier);
                    }
                    bytes.extend_from_slice(&data);
                }
            }
        }
        Ok(first.unwrap_or_else(|| bytes.freeze()))
    };
    match tokio::time::timeout(runtime.body_read_timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request Timeout",
            format!(
                "the request body did not arrive within {} ms; send it without pauses",
                runtime.body_read_timeout.as_millis()
            ),
        )),
    }
}

/// Returns the `Content-Length` header as a number, or `None` when it is missing or
/// invalid (hyper rejects an invalid one before the handler runs).
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// 400 for a body that broke off or has malformed chunked encoding.
pub(crate) fn body_read_failed(err: hyper::Error) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "body-read-failed",
        "Bad Request",
        format!(
            "failed to read the request body ({err}); the connection broke or the chunked \
             encoding is malformed, so send the body again"
        ),
    )
}

/// 400 for a body that another step already read, which no route should do.
pub(crate) fn body_consumed() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "body-read-failed",
        "Bad Request",
        "the request body was already consumed",
    )
}

/// 400 for a request with more than one `Authorization` header: a proxy may have checked
/// another one than hubkitd would.
pub(crate) fn duplicate_authorization() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "duplicate-authorization",
        "Bad Request",
        "the request has more than one Authorization header; send exactly one",
    )
}

/// Rejects a body sent to a query-params webhook, whose data is the query string alone, so
/// the body is not dropped without a word.
fn reject_body(body: &Option<Incoming>) -> Result<(), Problem> {
    match body {
        Some(incoming) if !incoming.is_end_stream() => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "unexpected-body",
            "Bad Request",
            "this webhook has payload format query-params and reads only the query string, \
             but the request has a body; send the data as query parameters without a body",
        )),
        _ => Ok(()),
    }
}

/// Rejects bodies hubkitd cannot decode whatever their media type: a compressed body, and
/// a request with more than one `Content-Type`, which makes the media type ambiguous.
fn check_body_headers(headers: &HeaderMap) -> Result<(), Problem> {
    if headers.get_all(header::CONTENT_TYPE).iter().count() > 1 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "duplicate-content-type",
            "Bad Request",
            "the request has more than one Content-Type header; send exactly one",
        ));
    }
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let unsupported = text
            .split(',')
            .map(str::trim)
            .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"));
        if let Some(coding) = unsupported {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-content-encoding",
                "Unsupported Media Type",
                format!(
                    "Content-Encoding {:?} is not supported; send the body uncompressed",
                    truncate(coding, 40)
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) fn decode_problem(err: DecodeError) -> Problem {
    let (status, title) = match err {
        DecodeError::MissingContentType
        | DecodeError::InvalidContentType { .. }
        | DecodeError::UnsupportedMediaType { .. }
        | DecodeError::UnsupportedCharset { .. } => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type")
        }
        _ => (StatusCode::BAD_REQUEST, "Bad Request"),
    };
    Problem::new(status, err.problem_slug(), title, err.to_string())
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}
