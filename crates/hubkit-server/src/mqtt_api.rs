//! `GET /api/v1/brokers` and `GET /api/v1/dead-letters`.

use std::time::SystemTime;

use base64::Engine;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use hubkit_model::format_timestamp;
use hubkit_mqtt::{BrokerStatus, EntryStatus, SubscriptionState};
use hubkit_store::DeadLetter;
use serde::Serialize;

use crate::api::{invalid_parameter, json_response};
use crate::body::ResponseBody;
use crate::problem::{Problem, truncate};
use crate::state::AppState;

/// Dead letters per page when the request gives no `limit`.
const DEFAULT_DEAD_LETTERS: usize = 50;
/// Largest `limit` of a dead-letter page.
const MAX_DEAD_LETTERS: usize = 1000;

/// One broker as `GET /api/v1/brokers` lists it; the password is never included.
#[derive(Serialize)]
struct BrokerView {
    name: String,
    address: String,
    client_id: String,
    persistent_session: bool,
    state: &'static str,
    connected_since: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<String>,
    reconnects: u64,
    last_message_at: Option<String>,
    messages: u64,
    records: u64,
    duplicates: u64,
    dead_letters: u64,
    unmatched: u64,
    oversized: u64,
    store_failures: u64,
    topics: Vec<TopicView>,
}

#[derive(Serialize)]
struct TopicView {
    name: String,
    filter: String,
    subscribed_filter: String,
    qos: u8,
    subscribed_qos: u8,
    subscription: &'static str,
    granted_qos: Option<u8>,
}

pub(crate) fn brokers(
    state: &AppState,
    request: &Parts,
) -> Result<Response<ResponseBody>, Problem> {
    if let Some(query) = request.uri.query().filter(|query| !query.is_empty()) {
        return Err(invalid_parameter(format!(
            "/api/v1/brokers takes no parameters, but got {:?}",
            truncate(query, 60)
        )));
    }
    let statuses: Vec<BrokerStatus> = state
        .brokers
        .load()
        .iter()
        .map(|status| status.snapshot())
        .collect();
    let views: Vec<BrokerView> = statuses.into_iter().map(broker_view).collect();
    Ok(json_response(&serde_json::json!({ "brokers": views })))
}

fn broker_view(status: BrokerStatus) -> BrokerView {
    BrokerView {
        name: status.name,
        address: status.address,
        client_id: status.client_id,
        persistent_session: status.persistent_session,
        state: status.state.as_str(),
        connected_since: status.connected_since.map(timestamp),
        last_error: status.last_error,
        last_error_at: status.last_error_at.map(timestamp),
        reconnects: status.reconnects,
        last_message_at: status.last_message_at.map(timestamp),
        messages: status.messages,
        records: status.records,
        duplicates: status.duplicates,
        dead_letters: status.dead_letters,
        unmatched: status.unmatched,
        oversized: status.oversized,
        store_failures: status.store_failures,
        topics: status.entries.into_iter().map(topic_view).collect(),
    }
}

fn topic_view(entry: EntryStatus) -> TopicView {
    let (subscription, granted_qos) = match entry.subscription {
        SubscriptionState::Pending => ("pending", None),
        SubscriptionState::Granted(qos) => ("granted", Some(qos.level())),
        SubscriptionState::Rejected => ("rejected", None),
    };
    TopicView {
        name: entry.name,
        filter: entry.filter,
        subscribed_filter: entry.subscribed_filter,
        qos: entry.qos.level(),
        subscribed_qos: entry.subscribed_qos.level(),
        subscription,
        granted_qos,
    }
}

fn timestamp(time: SystemTime) -> String {
    format_timestamp(&DateTime::<Utc>::from(time))
}

/// One dead letter as the API lists it: the payload's first bytes and its size, and the
/// URL of the whole payload, so a page of large letters stays small.
#[derive(Serialize)]
struct DeadLetterView {
    id: i64,
    received_at: String,
    protocol: String,
    broker: String,
    topic_entry: String,
    topic: String,
    qos: u8,
    retain: bool,
    reason: String,
    payload_bytes: u64,
    payload_truncated: bool,
    payload_preview_base64: String,
    /// The preview as text when it is UTF-8, up to the last whole character.
    payload_preview_text: Option<String>,
    payload_url: String,
}

pub(crate) async fn dead_letters(
    state: &AppState,
    request: &Parts,
) -> Result<Response<ResponseBody>, Problem> {
    let (before, limit) = parse_page(request.uri.query().unwrap_or(""))?;
    let page = state
        .store
        .dead_letters(before, limit)
        .await
        .map_err(store_unavailable)?;
    let views: Vec<DeadLetterView> = page.letters.into_iter().map(dead_letter_view).collect();
    Ok(json_response(&serde_json::json!({
        "dead_letters": views,
        "next_before": page.next_before,
    })))
}

/// Serves `GET /api/v1/dead-letters/<id>/payload`: the raw payload bytes.
pub(crate) async fn dead_letter_payload(
    state: &AppState,
    rest: &str,
) -> Result<Response<ResponseBody>, Problem> {
    let id = rest
        .strip_suffix("/payload")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| Problem::route_not_found(&format!("/api/v1/dead-letters/{rest}")))?;
    let payload = state
        .store
        .dead_letter_payload(id)
        .await
        .map_err(store_unavailable)?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "dead-letter-not-found",
                "Not Found",
                format!("there is no dead letter {id}; list them at /api/v1/dead-letters"),
            )
        })?;
    let mut response = Response::new(crate::body::full(payload));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn store_unavailable(err: hubkit_store::StoreError) -> Problem {
    tracing::warn!(error = %crate::error_chain(&err), "failed to read dead letters");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store-unavailable",
        "Service Unavailable",
        "reading the dead letters failed; retry later",
    )
}

fn dead_letter_view(stored: DeadLetter) -> DeadLetterView {
    let letter = stored.letter;
    let truncated = stored.payload_bytes > letter.payload.len() as u64;
    let preview_text = match std::str::from_utf8(&letter.payload) {
        Ok(text) => Some(text.to_owned()),
        // A preview may end inside a character; keep the whole ones before it.
        Err(err) if truncated && err.error_len().is_none() => {
            std::str::from_utf8(&letter.payload[..err.valid_up_to()])
                .ok()
                .map(str::to_owned)
        }
        Err(_) => None,
    };
    DeadLetterView {
        id: stored.id,
        received_at: format_timestamp(&letter.received_at),
        protocol: letter.protocol,
        broker: letter.broker,
        topic_entry: letter.device,
        topic: letter.topic,
        qos: letter.qos,
        retain: letter.retain,
        reason: letter.reason,
        payload_bytes: stored.payload_bytes,
        payload_truncated: truncated,
        payload_preview_base64: base64::engine::general_purpose::STANDARD.encode(&letter.payload),
        payload_preview_text: preview_text,
        payload_url: format!("/api/v1/dead-letters/{}/payload", stored.id),
    }
}

fn parse_page(query: &str) -> Result<(Option<i64>, usize), Problem> {
    let mut before = None;
    let mut limit = DEFAULT_DEAD_LETTERS;
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&name) {
            return Err(invalid_parameter(format!(
                "parameter {:?} is given twice; give it once",
                truncate(name, 60)
            )));
        }
        seen.push(name);
        match name {
            "before" => match value.parse::<i64>() {
                Ok(id) if id > 0 => before = Some(id),
                _ => {
                    return Err(invalid_parameter(format!(
                        "before {:?} is not a dead letter id; use the next_before value of the previous page",
                        truncate(value, 60)
                    )));
                }
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_DEAD_LETTERS).contains(&n) => limit = n,
                _ => {
                    return Err(invalid_parameter(format!(
                        "limit {:?} is invalid; it must be 1 to {MAX_DEAD_LETTERS}",
                        truncate(value, 60)
                    )));
                }
            },
            other => {
                return Err(invalid_parameter(format!(
                    "unknown parameter {:?}; /api/v1/dead-letters takes before and limit",
                    truncate(other, 60)
                )));
            }
        }
    }
    Ok((before, limit))
}
