use serde_json::{Map, Value};

use crate::error::{DecodeError, PayloadPart, excerpt};

/// Decodes a raw query string (the text after `?`, without it) into a map of strings.
///
/// The rules are those of application/x-www-form-urlencoded: pieces split on `&`, empty
/// pieces skipped, key and value split at the first `=` (no `=` gives the value ""),
/// `+` decoded as a space and `%XX` percent-decoded. A `%` that is not followed by two
/// hex digits stays literal, as in the WHATWG URL standard. Values stay strings exactly
/// as sent, so "25.5" is not turned into a number, and a repeated key becomes an array
/// of its values in the order sent. Brackets in keys such as `tag[]` have no meaning.
///
/// Keys keep the order of their first appearance, because the workspace enables
/// serde_json's `preserve_order` feature. Without it, `serde_json::Map` sorts them.
///
/// # Errors
///
/// Returns [`DecodeError::InvalidUtf8`] when a decoded key or value is not valid UTF-8.
/// The error names the key, or the parameter's position when the key itself is
/// invalid, and the offset of the first invalid byte in `query`.
pub fn decode_query(query: &str) -> Result<Map<String, Value>, DecodeError> {
    let mut map = Map::new();
    let mut index = 0;
    let mut piece_start = 0;
    for piece in query.split('&') {
        let start = piece_start;
        piece_start += piece.len() + 1;
        if piece.is_empty() {
            continue;
        }
        index += 1;

        let (raw_key, raw_value, value_start) = match piece.split_once('=') {
            Some((key, value)) => (key, value, start + key.len() + 1),
            None => (piece, "", start + piece.len()),
        };
        let key = decode_component(raw_key).map_err(|at| DecodeError::InvalidUtf8 {
            part: PayloadPart::QueryKey { index },
            offset: start + raw_offset(raw_key, at),
        })?;
        let value = decode_component(raw_value).map_err(|at| DecodeError::InvalidUtf8 {
            part: PayloadPart::QueryValue { key: excerpt(&key) },
            offset: value_start + raw_offset(raw_value, at),
        })?;
        insert_value(&mut map, key, value);
    }
    Ok(map)
}

/// Adds `value` under `key`, turning the entry into an array when the key repeats.
fn insert_value(map: &mut Map<String, Value>, key: String, value: String) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, Value::String(value));
        }
        Some(Value::Array(values)) => values.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
    }
}

/// Decodes `+` and `%XX` in one key or value.
///
/// On invalid UTF-8 it returns the index of the first invalid byte in the decoded bytes.
fn decode_component(raw: &str) -> Result<String, usize> {
    let raw = raw.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let (byte, consumed) = decode_byte(raw, i);
        decoded.push(byte);
        i += consumed;
    }
    String::from_utf8(decoded).map_err(|err| err.utf8_error().valid_up_to())
}

/// Returns the offset in `raw` of the byte that decodes to byte `decoded_index`.
fn raw_offset(raw: &str, decoded_index: usize) -> usize {
    let raw = raw.as_bytes();
    let mut i = 0;
    for _ in 0..decoded_index {
        if i >= raw.len() {
            break;
        }
        i += decode_byte(raw, i).1;
    }
    i
}

/// Decodes the byte that starts at `raw[i]` and returns it with the number of raw
/// bytes it took.
fn decode_byte(raw: &[u8], i: usize) -> (u8, usize) {
    match raw[i] {
        b'+' => (b' ', 1),
        b'%' => {
            let high = raw.get(i + 1).and_then(|&b| hex_value(b));
            let low = raw.get(i + 2).and_then(|&b| hex_value(b));
            match (high, low) {
                (Some(high), Some(low)) => (high << 4 | low, 3),
                _ => (b'%', 1),
            }
        }
        byte => (byte, 1),
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

#[cfg(test)]
mod tests;
