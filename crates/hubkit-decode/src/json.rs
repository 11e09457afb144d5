use std::borrow::Cow;

use serde_json::Value;

use crate::error::{DecodeError, PayloadPart, excerpt};

/// UTF-8 encoding of U+FEFF, which some clients put before a JSON body.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Unregistered names for JSON that older servers and device firmware send.
const LEGACY_JSON_TYPES: &[&str] = &["text/json", "text/x-json", "application/x-json"];

/// Returns whether a lower-case media type without parameters, such as
/// `application/vnd.api+json`, names JSON: `application/json`, any
/// `application/<name>+json`, or a legacy name such as `text/json`.
pub fn is_json_media_type(essence: &str) -> bool {
    if LEGACY_JSON_TYPES.contains(&essence) {
        return true;
    }
    let Some(subtype) = essence.strip_prefix("application/") else {
        return false;
    };
    subtype == "json"
        || subtype
            .strip_suffix("+json")
            .is_some_and(|name| !name.is_empty())
}

/// Checks that a `Content-Type` header value declares JSON.
///
/// Accepts `application/json`, any `application/<name>+json`, and the legacy names
/// `text/json`, `text/x-json` and `application/x-json`, compared without regard to case. Parameters are ignored, except that a `charset` other than `utf-8`
/// is rejected because JSON exchanged between systems must be UTF-8 (RFC 8259).
///
/// # Errors
///
/// Returns [`DecodeError::MissingContentType`] for `None`,
/// [`DecodeError::InvalidContentType`] when the value does not parse as a media type,
/// [`DecodeError::UnsupportedMediaType`] for a media type that is not JSON, and
/// [`DecodeError::UnsupportedCharset`] for a charset other than UTF-8.
pub fn check_json_media_type(content_type: Option<&str>) -> Result<(), DecodeError> {
    let value = content_type.ok_or(DecodeError::MissingContentType)?;
    let media_type: mime::Mime = without_space_before_semicolons(value.trim())
        .parse()
        .map_err(|_| DecodeError::InvalidContentType {
            value: excerpt(value),
        })?;

    if !is_json_media_type(media_type.essence_str()) {
        return Err(DecodeError::UnsupportedMediaType {
            media_type: excerpt(media_type.essence_str()),
        });
    }

    // Every charset parameter counts, so a repeated one cannot hide a second charset.
    for (name, charset) in media_type.params() {
        if name != mime::CHARSET {
            continue;
        }
        if charset.as_str().is_empty() {
            return Err(DecodeError::InvalidContentType {
                value: excerpt(value),
            });
        }
        if !charset.as_str().eq_ignore_ascii_case("utf-8") {
            return Err(DecodeError::UnsupportedCharset {
                charset: excerpt(charset.as_str()),
            });
        }
    }
    Ok(())
}

/// Removes the whitespace around each `;` outside quoted strings. RFC 9110 allows it
/// (`application/json ; charset=utf-8`), and the mime crate rejects it before a `;` and
/// tabs after one.
fn without_space_before_semicolons(value: &str) -> Cow<'_, str> {
    if !value.contains([' ', '\t']) {
        return Cow::Borrowed(value);
    }
    let mut cleaned = String::with_capacity(value.len());
    let mut quoted = false;
    let mut escaped = false;
    let mut after_semicolon = false;
    for c in value.chars() {
        if after_semicolon && matches!(c, ' ' | '\t') {
            continue;
        }
        after_semicolon = false;
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ';' {
            cleaned.truncate(cleaned.trim_end_matches([' ', '\t']).len());
            after_semicolon = true;
        }
        cleaned.push(c);
    }
    Cow::Owned(cleaned)
}

/// Decodes a request body as one JSON value.
///
/// One leading UTF-8 byte order mark is removed first. Text after the value, other
/// than whitespace, is an error. Nesting deeper than serde_json's recursion limit of
/// 128 is an error too.
///
/// Numbers keep every digit (a 30-digit id, `1e400`) when serde_json's
/// `arbitrary_precision` feature is on, as it is in the hubkit workspace. Only the
/// exponent's spelling is normalised (`1E2` reads back as `1e+2`). Without the feature,
/// numbers outside `i64` and `u64` are rounded to `f64`.
///
/// # Errors
///
/// Returns [`DecodeError::EmptyBody`] for a body that is empty or only whitespace,
/// [`DecodeError::InvalidUtf8`] with the offset of the first invalid byte, and
/// [`DecodeError::InvalidJson`] with the position and parser message otherwise.
pub fn decode_json(body: &[u8]) -> Result<Value, DecodeError> {
    let (text, bom_len) = match body.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, UTF8_BOM.len()),
        None => (body, 0),
    };
    if text
        .iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(DecodeError::EmptyBody);
    }
    let text = std::str::from_utf8(text).map_err(|err| DecodeError::InvalidUtf8 {
        part: PayloadPart::Body,
        offset: bom_len + err.valid_up_to(),
    })?;
    serde_json::from_str(text).map_err(|err| invalid_json(&err))
}

/// Converts a serde_json error into [`DecodeError::InvalidJson`], moving the position
/// out of the message.
fn invalid_json(err: &serde_json::Error) -> DecodeError {
    let (line, column) = (err.line(), err.column());
    let message = err.to_string();
    // serde_json 1.x formats the message as "<reason> at line L column C".
    let position = format!(" at line {line} column {column}");
    let reason = message
        .strip_suffix(&position)
        .unwrap_or(&message)
        .to_owned();
    DecodeError::InvalidJson {
        line,
        column,
        reason,
    }
}

#[cfg(test)]
mod tests;
