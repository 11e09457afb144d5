//! Multipart bodies, split into parts by the `mailparse` crate.

use std::borrow::Cow;

use mailparse::{MailHeaderMap, ParsedMail};
use serde_json::{Map, Value};

use super::body::{self, BodyEvents, essence, failed_body};
use super::query::insert_repeated;
use super::{MAX_MULTIPART_DEPTH, Output, picker};

/// Maximum boundary length, from RFC 2046 section 5.1.1.
const MAX_BOUNDARY_LENGTH: usize = 70;

/// Reads a multipart body whose full `Content-Type` value is `content_type`.
///
/// Parts without a `Content-Type` header and without a file name are form fields, which
/// are gathered into one map and read like form data. Every other part is read by its
/// own type. A missing closing boundary is an error on the events, but the parts before
/// it are still read.
pub(super) fn read_multipart(
    content_type: &str,
    body: &[u8],
    origin: &str,
    output: &mut Output,
) -> BodyEvents {
    let media_type = essence(content_type);
    let fail =
        |error: String| BodyEvents::one(failed_body(media_type.as_deref(), body.len(), error));

    let parsed_type = mailparse::parse_content_type(content_type);
    let Some(boundary) = parsed_type.params.get("boundary") else {
        return fail(format!(
            "multipart {origin}: the Content-Type has no boundary parameter"
        ));
    };
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY_LENGTH {
        return fail(format!(
            "multipart {origin}: the boundary is {} characters long; it must be 1 to \
             {MAX_BOUNDARY_LENGTH}",
            boundary.len()
        ));
    }

    // mailparse reads a whole MIME message, so the body gets its Content-Type as a header.
    let mut message = Vec::with_capacity(content_type.len() + body.len() + 18);
    message.extend_from_slice(b"Content-Type: ");
    message.extend_from_slice(content_type.as_bytes());
    message.extend_from_slice(b"\r\n\r\n");
    message.extend_from_slice(body);
    let mail = match mailparse::parse_mail(&message) {
        Ok(mail) => mail,
        Err(err) => return fail(format!("multipart {origin}: {err}")),
    };
    if mail.subparts.is_empty() {
        return fail(format!(
            "multipart {origin}: no line starts with the boundary \"--{boundary}\""
        ));
    }

    let mut result = read_parts(&mail.subparts, "part ", 1, output);
    if result.is_empty() {
        return fail(format!("multipart {origin}: every part is empty"));
    }
    if !has_closing_boundary(body, boundary.as_bytes()) {
        result.add_errors(&[format!(
            "multipart {origin}: the closing boundary \"--{boundary}--\" is missing, so \
             the last part was read to the end of the body"
        )]);
    }
    result
}

/// Reads the parts of one multipart level. `prefix` starts each part's label, such as
/// `part ` or `part 2.`, and `depth` is the nesting level of these parts, from 1.
fn read_parts(
    parts: &[ParsedMail<'_>],
    prefix: &str,
    depth: usize,
    output: &mut Output,
) -> BodyEvents {
    let mut result = BodyEvents::default();
    let mut form = Map::new();
    let mut form_errors = Vec::new();
    let mut form_position = None;

    for (index, part) in parts.iter().enumerate() {
        let label = format!("{prefix}{}", index + 1);
        let disposition = part.get_content_disposition();
        let name = disposition.params.get("name");
        let origin = match name {
            Some(name) => format!("{label} {name}"),
            None => label.clone(),
        };
        let content_type = part.headers.get_first_value("Content-Type");

        let bytes = match part.get_body_raw() {
            Ok(bytes) => bytes,
            Err(err) => {
                let error = format!("{origin}: {err}");
                result
                    .events
                    .push(failed_body(None, part.raw_bytes.len(), error));
                continue;
            }
        };

        if content_type.is_none() && !disposition.params.contains_key("filename") {
            form_position.get_or_insert(result.events.len());
            let value = match String::from_utf8_lossy(&bytes) {
                Cow::Borrowed(text) => text.to_owned(),
                Cow::Owned(text) => {
                    form_errors.push(format!(
                        "form field {origin} is not valid UTF-8; invalid bytes were \
                         replaced with U+FFFD"
                    ));
                    text
                }
            };
            insert_repeated(
                &mut form,
                name.cloned().unwrap_or(label),
                Value::String(value),
            );
            continue;
        }

        let media_type = content_type.as_deref().and_then(essence);
        if media_type
            .as_deref()
            .is_some_and(|media_type| media_type.starts_with("multipart/"))
        {
            let nested = read_nested(part, &label, &origin, depth, output);
            result.extend(nested);
            continue;
        }
        result.extend(body::read_part(
            content_type.as_deref(),
            &bytes,
            &origin,
            output,
        ));
    }

    if let Some(position) = form_position {
        let mut event = picker::event_from_value(Value::Object(form));
        event.errors = form_errors;
        result.events.insert(position, event);
    }
    result
}

/// Reads a part that is itself multipart, unless it nests too deep.
fn read_nested(
    part: &ParsedMail<'_>,
    label: &str,
    origin: &str,
    depth: usize,
    output: &mut Output,
) -> BodyEvents {
    let media_type = essence(&part.ctype.mimetype);
    let size = part.raw_bytes.len();
    if depth >= MAX_MULTIPART_DEPTH {
        let error = format!(
            "multipart {origin}: nested deeper than {MAX_MULTIPART_DEPTH} levels, so it was \
             not parsed"
        );
        return BodyEvents::one(failed_body(media_type.as_deref(), size, error));
    }
    if part.subparts.is_empty() {
        let error = format!("multipart {origin}: no part found; check its boundary parameter");
        return BodyEvents::one(failed_body(media_type.as_deref(), size, error));
    }
    read_parts(&part.subparts, &format!("{label}."), depth + 1, output)
}

/// Returns whether a line of `body` starts with the closing delimiter `--<boundary>--`.
/// The work is linear: each line is compared over at most the delimiter's length.
fn has_closing_boundary(body: &[u8], boundary: &[u8]) -> bool {
    body.split(|&b| b == b'\n').any(|line| {
        line.strip_prefix(b"--")
            .and_then(|rest| rest.strip_prefix(boundary))
            .is_some_and(|rest| rest.starts_with(b"--"))
    })
}
