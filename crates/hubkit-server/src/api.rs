//! The admin API under `/api/v1/`: records as JSON or CSV, a live stream, webhooks,
//! and the MQTT brokers and dead letters.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use hubkit_endpoints::Auth;
use hubkit_model::{DeviceRef, Record, Transport, format_timestamp};
use hubkit_store::{Cursor, MAX_PAGE, Order, RecordQuery, StoredRecord};
use serde::Serialize;
use serde_json::Value;
use tracing::error;

use crate::body::{ResponseBody, full};
use crate::problem::{Problem, truncate};
use crate::state::AppState;
use crate::stream;
use crate::webhook::WEBHOOK_PREFIX;

/// Records per page when the request gives no `limit`.
pub const DEFAULT_PAGE: usize = 100;

/// Query parameters the record endpoints take.
const RECORD_PARAMETERS: &[&str] = &[
    "area", "layer", "device", "since", "until", "limit", "cursor", "order",
];

/// Handles an authenticated API request.
pub(crate) async fn handle(
    state: &Arc<AppState>,
    request: &Parts,
    path: &str,
) -> Response<ResponseBody> {
    if let Err(problem) = check_admin(state, request) {
        return problem.into_response();
    }
    let result = match path {
        "/api/v1/records" => records(state, request).await,
        "/api/v1/records/stream" => stream_records(state, request).await,
        "/api/v1/brokers" => crate::mqtt_api::brokers(state, request),
        "/api/v1/cameras" => crate::ipro::cameras(state, request),
        "/api/v1/dead-letters" => crate::mqtt_api::dead_letters(state, request).await,
        "/api/v1/actions" => crate::actions::api::actions(state, request),
        "/api/v1/action-runs" => crate::actions::api::list(state, request).await,
        _ => webhooks(state, request),
    };
    result.unwrap_or_else(Problem::into_response)
}

pub(crate) fn check_admin(state: &AppState, request: &Parts) -> Result<(), Problem> {
    if request
        .headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .count()
        > 1
    {
        return Err(crate::webhook::duplicate_authorization());
    }
    let Some(value) = request.headers.get(header::AUTHORIZATION) else {
        return Err(Problem::admin_unauthorized(
            "the Authorization header is missing",
        ));
    };
    let text = value.to_str().unwrap_or("").trim();
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Problem::admin_unauthorized(
            "the Authorization header does not use the Bearer scheme",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Problem::admin_unauthorized("the Bearer token is empty"));
    }
    if state.admin.matches(token.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::admin_unauthorized("the admin token is wrong"))
    }
}

async fn records(state: &AppState, request: &Parts) -> Result<Response<ResponseBody>, Problem> {
    let format = negotiate(request)?;
    let query = parse_query(request.uri.query().unwrap_or(""), true)?;
    let page = state.store.query(query.clone()).await.map_err(|err| {
        error!(error = %err, "failed to read records");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Service Unavailable",
            "the records could not be read; retry later",
        )
    })?;
    let next = page.next_cursor.map(|cursor| cursor.to_string());
    let mut response = match format {
        Format::Json => json_page(&page.records, next.as_deref()),
        Format::Csv => csv_page(&page.records)?,
    };
    if let Some(next) = next {
        let value = HeaderValue::from_str(&next).unwrap_or(HeaderValue::from_static(""));
        response.headers_mut().insert("x-next-cursor", value);
    }
    Ok(response)
}

async fn stream_records(
    state: &Arc<AppState>,
    request: &Parts,
) -> Result<Response<ResponseBody>, Problem> {
    let query = parse_query(request.uri.query().unwrap_or(""), false)?;
    let last_event_id = match request.headers.get("last-event-id") {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            let cursor = text.trim().parse::<Cursor>().map_err(|_| {
                invalid_parameter(format!(
                    "Last-Event-ID {:?} is not a record cursor; send the id of the last event received",
                    truncate(text, 40)
                ))
            })?;
            Some(cursor)
        }
    };
    Ok(stream::open(state.clone(), query, last_event_id).await)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Json,
    Csv,
}

/// Picks JSON or CSV from the `Accept` header: CSV only when `text/csv` is preferred,
/// JSON for anything else JSON-compatible, and 406 when neither is acceptable.
fn negotiate(request: &Parts) -> Result<Format, Problem> {
    let Some(accept) = request.headers.get(header::ACCEPT) else {
        return Ok(Format::Json);
    };
    let accept = accept.to_str().unwrap_or("");
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let Ok(parsed) = range.trim().parse::<mime::Mime>() else {
            continue;
        };
        let quality = parsed
            .get_param("q")
            .and_then(|q| q.as_str().parse::<f32>().ok())
            .unwrap_or(1.0);
        if quality <= 0.0 {
            continue;
        }
        let format = match (parsed.type_().as_str(), parsed.subtype().as_str()) {
            ("text", "csv") | ("text", "*") => Format::Csv,
            ("application", "json") | ("application", "*") | ("*", "*") => Format::Json,
            _ => continue,
        };
        if best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            "Not Acceptable",
            format!(
                "Accept {:?} allows neither application/json nor text/csv; ask for one of them",
                truncate(accept, 80)
            ),
        )
    })
}

/// Parses the record filters of a query string. `paged` allows `until`, `limit`, `cursor`
/// and `order`, which the live stream does not take.
pub(crate) fn parse_query(raw: &str, paged: bool) -> Result<RecordQuery, Problem> {
    let parameters = hubkit_decode::decode_query(raw)
        .map_err(|err| invalid_parameter(format!("the query string is invalid: {err}")))?;
    let mut query = RecordQuery {
        limit: DEFAULT_PAGE,
        ..RecordQuery::default()
    };
    for (name, value) in parameters {
        let known = RECORD_PARAMETERS.contains(&name.as_str());
        // The live stream has no pages and no end, so it takes neither paging nor `until`.
        let listing_only = matches!(name.as_str(), "limit" | "cursor" | "order" | "until");
        if !known || (listing_only && !paged) {
            let allowed = if paged {
                RECORD_PARAMETERS.join(", ")
            } else {
                "area, layer, device, since".to_owned()
            };
            return Err(invalid_parameter(format!(
                "unknown parameter {:?}; this endpoint takes {allowed}",
                truncate(&name, 40)
            )));
        }
        let Value::String(value) = value else {
            return Err(invalid_parameter(format!(
                "parameter {name:?} is given more than once; give it once"
            )));
        };
        apply_parameter(&mut query, &name, value)?;
    }
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since > until
    {
        return Err(invalid_parameter(format!(
            "since {} is after until {}; swap them or widen the range",
            format_timestamp(&since),
            format_timestamp(&until)
        )));
    }
    Ok(query)
}

fn apply_parameter(query: &mut RecordQuery, name: &str, value: String) -> Result<(), Problem> {
    if value.is_empty() {
        // An empty name or id matches no record, so an empty filter is a client mistake.
        return Err(invalid_parameter(format!(
            "parameter {name:?} is empty; give a value or leave the parameter out"
        )));
    }
    match name {
        "area" => query.area = Some(value),
        "layer" => query.layer = Some(value),
        "device" => query.device = Some(value),
        "since" => query.since = Some(parse_time(name, &value)?),
        "until" => query.until = Some(parse_time(name, &value)?),
        "limit" => {
            query.limit = value
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or_else(|| {
                    invalid_parameter(format!(
                        "limit {:?} is invalid; it must be a whole number from 1 to {MAX_PAGE}",
                        truncate(&value, 40)
                    ))
                })?;
        }
        "cursor" => {
            query.cursor = Some(value.parse::<Cursor>().map_err(|_| {
                invalid_parameter(format!(
                    "cursor {:?} is invalid; pass the next_cursor value of the previous page",
                    truncate(&value, 40)
                ))
            })?);
        }
        _ => {
            query.order = match value.as_str() {
                "asc" => Order::Asc,
                "desc" => Order::Desc,
                _ => {
                    return Err(invalid_parameter(format!(
                        "order {:?} is invalid; it must be asc or desc",
                        truncate(&value, 40)
                    )));
                }
            };
        }
    }
    Ok(())
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, Problem> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            // A `+` in a query string decodes to a space, so an offset like +09:00 must be
            // sent as %2B09:00.
            let hint = if value.contains(' ') {
                " (a + in a query string means a space: send +09:00 as %2B09:00)"
            } else {
                ""
            };
            invalid_parameter(format!(
                "{name} {:?} is not an RFC 3339 time; write it like 2026-01-31T08:00:00Z{hint}",
                truncate(value, 40)
            ))
        })
}

pub(crate) fn invalid_parameter(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-parameter",
        "Bad Request",
        detail,
    )
}

/// A record with its cursor, as the JSON API lists it.
#[derive(Serialize)]
pub(crate) struct ListedRecord<'a> {
    #[serde(rename = "Cursor")]
    cursor: String,
    #[serde(flatten)]
    record: &'a Record,
}

impl<'a> ListedRecord<'a> {
    pub(crate) fn new(stored: &'a StoredRecord) -> ListedRecord<'a> {
        ListedRecord {
            cursor: stored.cursor.to_string(),
            record: &stored.record,
        }
    }
}

#[derive(Serialize)]
struct Page<'a> {
    records: Vec<ListedRecord<'a>>,
    next_cursor: Option<&'a str>,
}

fn json_page(records: &[StoredRecord], next_cursor: Option<&str>) -> Response<ResponseBody> {
    let page = Page {
        records: records.iter().map(ListedRecord::new).collect(),
        next_cursor,
    };
    json_response(&page)
}

pub(crate) fn json_response<T: Serialize>(value: &T) -> Response<ResponseBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Columns of the CSV export, in order. The HTTP columns are empty for records that
/// arrived over MQTT, and the MQTT columns for records that arrived over HTTP.
const CSV_HEADER: [&str; 22] = [
    "Cursor",
    "DataId",
    "Timestamp",
    "AreaId",
    "AreaName",
    "LayerId",
    "LayerName",
    "KindName",
    "PhysicalDeviceId",
    "PhysicalDeviceName",
    "DataType",
    "Data",
    "RemoteAddress",
    "Method",
    "ContentType",
    "Query",
    "Tls",
    "Protocol",
    "Broker",
    "Topic",
    "QoS",
    "Retain",
];

fn csv_page(records: &[StoredRecord]) -> Result<Response<ResponseBody>, Problem> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_failed = |err: csv::Error| {
        error!(error = %err, "failed to write CSV");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "export-failed",
            "Service Unavailable",
            "the CSV export failed; retry later",
        )
    };
    writer.write_record(CSV_HEADER).map_err(csv_failed)?;
    for stored in records {
        let record = &stored.record;
        let mut row = vec![
            stored.cursor.to_string(),
            record.data_id.to_string(),
            format_timestamp(&record.timestamp),
            record.area_id.to_string(),
            record.area_name.clone(),
            record.layer_id.to_string(),
            record.layer_name.clone(),
            record.kind_name.clone(),
            record.physical_device_id.clone(),
            record.physical_device_name.clone(),
            record.data_type.clone(),
            record.data.to_string(),
        ];
        row.extend(transport_columns(&record.transport));
        writer.write_record(row).map_err(csv_failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|err| csv_failed(err.into_error().into()))?;
    let mut response = Response::new(full(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Returns the CSV columns from `RemoteAddress` to `Retain` for a record's transport.
fn transport_columns(transport: &Transport) -> [String; 10] {
    match transport {
        Transport::Http(http) => [
            http.remote_address.clone(),
            http.method.clone(),
            http.content_type.clone().unwrap_or_default(),
            http.query.clone().unwrap_or_default(),
            http.tls.to_string(),
            "http".to_owned(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ],
        Transport::Mqtt(mqtt) => [
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            "mqtt".to_owned(),
            mqtt.broker.clone(),
            mqtt.topic.clone(),
            mqtt.qos.to_string(),
            mqtt.retain.to_string(),
        ],
    }
}

/// One webhook as `GET /api/v1/webhooks` lists it; secrets are never included.
#[derive(Serialize)]
struct WebhookView {
    name: String,
    short_id: String,
    custom_path: String,
    url: String,
    payload_format: &'static str,
    method: &'static str,
    authentication: &'static str,
    enabled: bool,
    layers: Vec<String>,
    /// File reception of a json webhook; `None` for query-params webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<FilesView>,
}

/// File reception settings as `GET /api/v1/webhooks` shows them.
#[derive(Serialize)]
struct FilesView {
    enabled: bool,
    max_bytes: u64,
    max_age_hours: Option<u64>,
    max_total_bytes: Option<u64>,
}

fn webhooks(state: &AppState, request: &Parts) -> Result<Response<ResponseBody>, Problem> {
    if let Some(query) = request.uri.query().filter(|query| !query.is_empty()) {
        return Err(invalid_parameter(format!(
            "/api/v1/webhooks takes no parameters, but got {:?}",
            truncate(query, 60)
        )));
    }
    let runtime = state.runtime.load();
    let base = runtime.public_url.clone().unwrap_or_default();
    let views: Vec<WebhookView> = runtime
        .registry
        .iter()
        .map(|endpoint| {
            let webhook = endpoint.webhook();
            let layers = runtime
                .topology
                .layers_for(&DeviceRef::Webhook(webhook.name.clone()))
                .iter()
                .map(|layer| format!("{}/{}", layer.area_name, layer.layer_name))
                .collect();
            WebhookView {
                name: webhook.name.clone(),
                short_id: webhook.short_id.to_string(),
                custom_path: webhook.custom_path.to_string(),
                url: format!(
                    "{}{WEBHOOK_PREFIX}{}",
                    base.trim_end_matches('/'),
                    webhook.custom_path
                ),
                payload_format: webhook.format.as_str(),
                method: match webhook.format {
                    hubkit_endpoints::PayloadFormat::Json => "POST",
                    hubkit_endpoints::PayloadFormat::QueryParams => "GET",
                },
                authentication: match webhook.auth {
                    Auth::None => "none",
                    Auth::Basic { .. } => "basic",
                },
                enabled: webhook.enabled,
                layers,
                files: (webhook.format == hubkit_endpoints::PayloadFormat::Json).then(|| {
                    FilesView {
                        enabled: webhook.files.enabled,
                        max_bytes: webhook.files.max_bytes.unwrap_or(runtime.max_file_bytes),
                        max_age_hours: webhook.files.max_age.map(|age| age.as_secs() / 3600),
                        max_total_bytes: webhook.files.max_total_bytes,
                    }
                }),
            }
        })
        .collect();
    Ok(json_response(&serde_json::json!({ "webhooks": views })))
}
