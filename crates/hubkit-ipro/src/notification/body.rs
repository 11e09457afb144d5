//! Classifying a body or part by its media type and first bytes, and reading images,
//! JSON and form data.

use serde_json::{Map, Value, json};

use super::{Event, EventKind, MAX_EVENTS, Output, multipart, picker, query, xml};
use crate::{AiVmdResult, decode_ai_vmd};

/// UTF-8 encoding of U+FEFF, which some senders put before a text body.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The events and loose images of one body or part, before the request's own fields are
/// added.
#[derive(Default)]
pub(super) struct BodyEvents {
    pub(super) events: Vec<Event>,
    /// Images without an event of their own: images other than JPEG, and JPEGs without
    /// an AI-VMD result.
    pub(super) loose_images: Vec<LooseImage>,
}

/// An image without an event of its own.
pub(super) struct LooseImage {
    /// Its index in the request's images, or `None` when [`super::MAX_IMAGES`] were
    /// already taken.
    pub(super) index: Option<usize>,
    pub(super) errors: Vec<String>,
}

impl BodyEvents {
    pub(super) fn one(event: Event) -> BodyEvents {
        BodyEvents {
            events: vec![event],
            loose_images: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty() && self.loose_images.is_empty()
    }

    pub(super) fn extend(&mut self, other: BodyEvents) {
        self.events.extend(other.events);
        self.loose_images.extend(other.loose_images);
    }

    /// Adds `errors` to every event and loose image.
    pub(super) fn add_errors(&mut self, errors: &[String]) {
        let events = self.events.iter_mut().map(|event| &mut event.errors);
        let images = self.loose_images.iter_mut().map(|image| &mut image.errors);
        for list in events.chain(images) {
            list.extend_from_slice(errors);
        }
    }

    /// Attaches the loose images to every event, or makes one `Image` event per loose
    /// image when there is no other event.
    pub(super) fn into_events(self) -> Vec<Event> {
        let mut events = self.events;
        if events.is_empty() {
            for image in self.loose_images {
                let mut event = Event::new(EventKind::Image, Map::new());
                event.images.extend(image.index);
                event.errors = image.errors;
                events.push(event);
            }
            return events;
        }
        for image in &self.loose_images {
            for event in &mut events {
                event.images.extend(image.index);
                event.errors.extend_from_slice(&image.errors);
            }
        }
        events
    }
}

/// The reader chosen for a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyType {
    Image,
    Xml,
    Json,
    Form,
    Multipart,
    Other,
}

/// Reads the whole body of a request. An empty body makes nothing.
pub(super) fn read_body(
    content_type: Option<&str>,
    body: &[u8],
    output: &mut Output,
) -> BodyEvents {
    read_part(content_type, body, "body", output)
}

/// Reads one body or part. `origin` names it in errors and image origins, such as
/// `body` or `part 2 meta`. An empty body makes nothing.
///
/// The parts of a multipart part are read by [`multipart`], which walks the parts that
/// were already split, so a multipart type here is a whole request body.
pub(super) fn read_part(
    content_type: Option<&str>,
    bytes: &[u8],
    origin: &str,
    output: &mut Output,
) -> BodyEvents {
    if bytes.is_empty() {
        return BodyEvents::default();
    }
    let essence = content_type.and_then(essence);
    let essence = essence.as_deref();
    // The content decides between image and not: a JPEG sent as JSON is still an image,
    // and JSON sent as image/jpeg is read as JSON, with an error naming the wrong label.
    let declared = classify(essence, bytes);
    let mut mislabelled = None;
    let body_type = if looks_like_image(bytes) {
        BodyType::Image
    } else if declared == BodyType::Image {
        mislabelled = Some(format!(
            "{origin} has Content-Type {} but is not an image, so it was read by its content",
            essence.unwrap_or("(none)")
        ));
        sniff(bytes)
    } else {
        declared
    };
    let mut events = read_classified(body_type, content_type, essence, bytes, origin, output);
    // A body that is not read at all gets only the error of `BodyType::Other`.
    if let Some(error) = mislabelled
        && body_type != BodyType::Other
    {
        events.add_errors(&[error]);
    }
    events
}

/// Reads one body or part with the reader that [`read_part`] chose.
fn read_classified(
    body_type: BodyType,
    content_type: Option<&str>,
    essence: Option<&str>,
    bytes: &[u8],
    origin: &str,
    output: &mut Output,
) -> BodyEvents {
    let result = match body_type {
        BodyType::Image => return read_image(essence, bytes, origin, output),
        BodyType::Xml => xml::read_xml(bytes, origin, output).map(|events| BodyEvents {
            events,
            loose_images: Vec::new(),
        }),
        BodyType::Json => read_json(bytes, origin, output),
        BodyType::Form => {
            let mut errors = Vec::new();
            let form =
                query::decode_form(trim_line_end(bytes), &format!("form {origin}"), &mut errors);
            let mut event = picker::event_from_value(Value::Object(form));
            event.errors = errors;
            Ok(BodyEvents::one(event))
        }
        BodyType::Multipart => {
            // A declared media type is the only way to classify as multipart.
            let content_type = content_type.unwrap_or_default();
            return multipart::read_multipart(content_type, bytes, origin, output);
        }
        BodyType::Other => Err(format!(
            "{origin} of type {} is not an image, XML, JSON, form data or multipart, so \
             it was not parsed",
            essence.unwrap_or("(none)")
        )),
    };
    result.unwrap_or_else(|error| BodyEvents::one(failed_body(essence, bytes.len(), error)))
}

/// Returns the `Request` event of a body that could not be read.
pub(super) fn failed_body(essence: Option<&str>, size: usize, error: String) -> Event {
    let mut data = Map::new();
    data.insert(
        "Body".to_owned(),
        json!({"MediaType": essence, "Size": size}),
    );
    let mut event = Event::new(EventKind::Request, data);
    event.errors.push(error);
    event
}

/// Returns the lower-case media type of a `Content-Type` value without its parameters,
/// or `None` when it is empty.
pub(super) fn essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

/// Classifies by the declared media type, or by the first bytes when it is missing or
/// generic.
fn classify(essence: Option<&str>, bytes: &[u8]) -> BodyType {
    let Some(essence) = essence else {
        return sniff(bytes);
    };
    match essence {
        "application/octet-stream" | "text/plain" => sniff(bytes),
        "application/xml" | "text/xml" => BodyType::Xml,
        "application/json" | "text/json" | "application/x-json" => BodyType::Json,
        "application/x-www-form-urlencoded" => BodyType::Form,
        _ if essence.starts_with("image/") => BodyType::Image,
        _ if essence.starts_with("multipart/") => BodyType::Multipart,
        _ if essence.ends_with("+xml") => BodyType::Xml,
        _ if essence.ends_with("+json") => BodyType::Json,
        _ => BodyType::Other,
    }
}

/// Returns whether the bytes start with the signature of a JPEG or of another image
/// format that `infer` detects.
fn looks_like_image(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || infer::is_image(bytes)
}

/// Classifies by the first bytes.
fn sniff(bytes: &[u8]) -> BodyType {
    if looks_like_image(bytes) {
        return BodyType::Image;
    }
    let text = bytes
        .strip_prefix(UTF8_BOM)
        .unwrap_or(bytes)
        .trim_ascii_start();
    match text.first() {
        Some(b'<') => BodyType::Xml,
        Some(b'{' | b'[') => BodyType::Json,
        _ if looks_like_form(bytes) => BodyType::Form,
        _ => BodyType::Other,
    }
}

/// Returns whether the bytes are printable ASCII without spaces, ending in at most a
/// line break, with a first `&`-separated piece of the form `key=...`.
fn looks_like_form(bytes: &[u8]) -> bool {
    let text = trim_line_end(bytes);
    let Some(first_piece) = text.split(|&b| b == b'&').next() else {
        return false;
    };
    let key_length = first_piece.iter().position(|&b| b == b'=');
    key_length.is_some_and(|length| length > 0) && text.iter().all(u8::is_ascii_graphic)
}

fn trim_line_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| !matches!(b, b'\r' | b'\n'))
        .map_or(0, |last| last + 1);
    &bytes[..end]
}

/// Decodes a JSON body: an object makes one event, an array one event per element, and
/// any other value one `Data` event.
fn read_json(bytes: &[u8], origin: &str, output: &mut Output) -> Result<BodyEvents, String> {
    let text = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let value: Value =
        serde_json::from_slice(text).map_err(|err| format!("JSON {origin}: {err}"))?;
    let Value::Array(elements) = value else {
        return Ok(BodyEvents::one(picker::event_from_value(value)));
    };
    if elements.is_empty() {
        return Ok(BodyEvents::one(picker::event_from_value(Value::Array(
            Vec::new(),
        ))));
    }
    let total = elements.len();
    let events: Vec<Event> = elements
        .into_iter()
        .take(MAX_EVENTS)
        .map(picker::event_from_value)
        .collect();
    output.skip_events(total - events.len());
    Ok(BodyEvents {
        events,
        loose_images: Vec::new(),
    })
}

/// Stores an image. A JPEG with an AI-VMD result makes an `AiMotion` event; any other
/// image is loose.
fn read_image(
    declared: Option<&str>,
    bytes: &[u8],
    origin: &str,
    output: &mut Output,
) -> BodyEvents {
    let (media_type, extension) = match infer::get(bytes) {
        Some(found) => (found.mime_type(), found.extension()),
        None => match declared {
            Some("image/jpeg" | "image/jpg" | "image/pjpeg") => ("image/jpeg", "jpg"),
            Some(declared) => (declared, "bin"),
            None => ("application/octet-stream", "bin"),
        },
    };
    let index = output.add_image(bytes, media_type, extension, origin);
    let mut errors = Vec::new();
    if media_type == "image/jpeg" {
        match decode_ai_vmd(bytes) {
            Ok(Some(result)) => {
                let mut data = Map::new();
                data.insert("AiMotion".to_owned(), ai_motion_json(&result));
                let mut event = Event::new(EventKind::AiMotion, data);
                event.images.extend(index);
                return BodyEvents::one(event);
            }
            Ok(None) => {}
            Err(err) => errors.push(format!("AI-VMD result in {origin}: {err}")),
        }
    }
    BodyEvents {
        events: Vec::new(),
        loose_images: vec![LooseImage { index, errors }],
    }
}

/// Returns the `AiMotion` field of an AI-VMD result.
fn ai_motion_json(result: &AiVmdResult) -> Value {
    let areas: Vec<Value> = result
        .areas
        .iter()
        .map(|area| {
            let bounding_box = &area.bounding_box;
            json!({
                "AreaId": area.area_id,
                "DetectArea": area.detect_area,
                "AlarmType": area.alarm_type.as_str(),
                "Object": area.object,
                "Direction": area.direction,
                "BoundingBox": {
                    "X": bounding_box.x,
                    "Y": bounding_box.y,
                    "Width": bounding_box.width,
                    "Height": bounding_box.height,
                },
            })
        })
        .collect();
    json!({
        "UtcClock": result.utc_clock,
        "TimeZone": time_zone(result.utc_offset_minutes),
        "DaylightSaving": result.daylight_saving,
        "FrameTime": result.frame_time,
        "Detection": result.detection,
        "Image": {"Width": result.image_width, "Height": result.image_height},
        "Areas": areas,
    })
}

/// Formats an offset from UTC in minutes as `+09:00`.
fn time_zone(offset_minutes: i16) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let minutes = offset_minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}
