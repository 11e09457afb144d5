//! The query string and path tail of a request, and form data decoded like a query.

use std::borrow::Cow;

use percent_encoding::percent_decode;
use serde_json::{Map, Value, json};

use super::{Event, EventKind, Notification};
use crate::{alarm_source, find_source_code};

/// The fields of a request outside its body, which are added to every event.
pub(super) struct RequestFields {
    /// The `Notification` field, or `None` when the query and path tail are both empty.
    notification: Option<Value>,
    /// The `Alarm` field, when the request has an alarm source code.
    alarm: Option<Value>,
    errors: Vec<String>,
}

impl RequestFields {
    /// Decodes the query string and path tail and finds the alarm source code.
    pub(super) fn read(notification: &Notification<'_>) -> RequestFields {
        let mut errors = Vec::new();
        let query = decode_form(
            notification.query.unwrap_or("").as_bytes(),
            "query",
            &mut errors,
        );
        let path = decode_path(notification.path_rest, &mut errors);

        let mut fields = Map::new();
        if !query.is_empty() {
            fields.insert("Query".to_owned(), Value::Object(query));
        }
        if !path.is_empty() {
            fields.insert("Path".to_owned(), Value::Array(path));
        }
        let alarm = find_source_code(notification.query, notification.path_rest).map(|code| {
            json!({
                "Code": format!("{code:02X}"),
                "Source": alarm_source(code),
            })
        });
        RequestFields {
            notification: (!fields.is_empty()).then_some(Value::Object(fields)),
            alarm,
            errors,
        }
    }

    /// Returns the event of a request whose body made none: `Alarm` when it has an alarm
    /// source code, `Request` otherwise.
    pub(super) fn own_event(&self) -> Event {
        let kind = if self.alarm.is_some() {
            EventKind::Alarm
        } else {
            EventKind::Request
        };
        Event::new(kind, Map::new())
    }

    /// Puts `Notification` and `Alarm` before the event's own fields and adds the errors
    /// met while decoding them.
    pub(super) fn add_to(&self, event: &mut Event) {
        let mut data = Map::new();
        if let Some(notification) = &self.notification {
            data.insert("Notification".to_owned(), notification.clone());
        }
        if let Some(alarm) = &self.alarm {
            data.insert("Alarm".to_owned(), alarm.clone());
        }
        data.append(&mut event.data);
        event.data = data;
        event.errors.splice(0..0, self.errors.iter().cloned());
    }
}

/// Decodes `application/x-www-form-urlencoded` data into a map of strings.
///
/// Pieces split on `&`, empty pieces are skipped, and key and value split at the first
/// `=` (a piece without `=` has the value ""). `+` is a space and `%XX` a byte. A `%`
/// without two hex digits stays literal. A repeated key becomes an array of its values
/// in the order sent. Bytes that are not UTF-8 are replaced with U+FFFD, and an error
/// naming `what` and the key is added to `errors`.
pub(super) fn decode_form(data: &[u8], what: &str, errors: &mut Vec<String>) -> Map<String, Value> {
    let mut map = Map::new();
    for (index, piece) in data.split(|&b| b == b'&').enumerate() {
        if piece.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = match piece.iter().position(|&b| b == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &b""[..]),
        };
        let key = match decode_component(raw_key, true) {
            Ok(key) => key,
            Err(key) => {
                errors.push(format!(
                    "{what}: the key of parameter {} is not valid UTF-8; invalid bytes \
                     were replaced with U+FFFD",
                    index + 1
                ));
                key
            }
        };
        let value = decode_component(raw_value, true).unwrap_or_else(|value| {
            errors.push(format!(
                "{what}: the value of {key:?} is not valid UTF-8; invalid bytes were \
                 replaced with U+FFFD"
            ));
            value
        });
        insert_repeated(&mut map, key, Value::String(value));
    }
    map
}

/// Inserts `value` under `key`, turning the entry into an array when the key repeats.
pub(super) fn insert_repeated(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, value);
        }
        Some(Value::Array(values)) => values.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

/// Splits the path tail on `/`, drops empty segments and percent-decodes each one.
fn decode_path(path: &str, errors: &mut Vec<String>) -> Vec<Value> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .enumerate()
        .map(|(index, segment)| {
            let decoded = decode_component(segment.as_bytes(), false).unwrap_or_else(|decoded| {
                errors.push(format!(
                    "path: segment {} is not valid UTF-8; invalid bytes were replaced with \
                     U+FFFD",
                    index + 1
                ));
                decoded
            });
            Value::String(decoded)
        })
        .collect()
}

/// Percent-decodes one component, with `+` as a space when `plus_is_space`. Returns the
/// text as `Err` when invalid UTF-8 had to be replaced.
fn decode_component(raw: &[u8], plus_is_space: bool) -> Result<String, String> {
    let spaced: Cow<'_, [u8]> = if plus_is_space && raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Cow<'_, [u8]> = percent_decode(&spaced).into();
    match String::from_utf8_lossy(&bytes) {
        Cow::Borrowed(text) => Ok(text.to_owned()),
        Cow::Owned(text) => Err(text),
    }
}
