//! Turning one request from a camera into events with normalised fields.
//!
//! The parser looks at what arrived rather than at the camera's data format setting.
//!
//! - The query string and the path tail become the `Notification` field of every event,
//!   and an alarm source code found in them becomes the `Alarm` field.
//! - The body is classified by the essence of its `Content-Type` (the media type without
//!   parameters). When the type is missing, `application/octet-stream` or `text/plain`,
//!   the first bytes decide. `FF D8 FF` or another image signature known to the `infer`
//!   crate is an image. After a byte order mark and whitespace, `<` starts XML and `{`
//!   or `[` starts JSON. Printable `key=value&...` text is form data.
//! - A JPEG with an AI-VMD result makes an `AiMotion` event. Other images make `Image`
//!   events, except in a multipart body with other events, where they attach to those.
//! - ONVIF metadata (a `MetaDataStream` root, or any `NotificationMessage` element)
//!   makes one `Onvif` event per notification message. Other XML becomes a JSON tree.
//! - JSON, form data, and XML other than ONVIF go through a field picker, which sets
//!   the kind to `Crowd`, `Face` or `Data` and keeps the whole decoded body under `Body`.
//! - A body that cannot be read makes a `Request` event whose errors give the reason.
//!
//! # Field picker
//!
//! The picker searches a JSON value for known fields. Keys are compared after
//! lower-casing them and removing `_`, `-` and spaces, so `People_Count` matches
//! `peoplecount`. Values are copied as received, so `"12"` stays a string.
//!
//! | group | field | keys |
//! | --- | --- | --- |
//! | `Crowd` | `Area` | area, areaname, areaid, areano |
//! | `Crowd` | `Count` | count, peoplecount, number, num, people |
//! | `Crowd` | `Threshold` | threshold |
//! | `Crowd` | `State` | state, status |
//! | `Face` | `Person` | person, personname, personid |
//! | `Face` | `List` | list, listname, group |
//! | `Face` | `Score` | score, similarity, confidence |
//! | `Face` | `Attributes` | attributes, attribute, attr |
//!
//! Tie-breaks:
//!
//! - The search visits an object's own keys in order before it descends into the
//!   objects among its values, depth first, at most [`MAX_PICK_DEPTH`] levels deep.
//!   The first match of each field wins.
//! - Arrays are not searched, because picking their first element would misrepresent
//!   a list. A top-level JSON array instead makes one event per element.
//! - `Attributes` takes any value. The other fields take only a string, number or
//!   boolean. A key whose value is an object is searched rather than taken, so
//!   `{"person": {"personName": "Sato"}}` gives `Person` = `"Sato"`, while
//!   `{"person": {"name": "Sato"}}` gives no `Person`, because `name` alone is no key.
//! - A group counts only when it has its main fields: `Count` or `Area` for `Crowd`,
//!   `Person` or `Score` for `Face`. A group that does not count is left out.
//! - When both groups count, both are kept, and the kind is that of the group with more
//!   fields. On a tie the kind is `Crowd` when it has `Count`, and `Face` otherwise.
//!
//! A bare `name` and ONVIF's `Likelihood` are not face keys: cameras, areas and lists
//! have names too, and every ONVIF analytics event may carry a likelihood, so either
//! alone would report a face match in a crowd or motion event. An ONVIF event whose
//! other fields make it a face match takes its `Likelihood` as the face `Score`.
//!
//! NOTE: the keys are guesses. No crowd or face payload has been captured from a camera,
//! so real payloads may name these fields differently.
//!
//! # Limits
//!
//! A request makes at most [`MAX_EVENTS`] events and [`MAX_IMAGES`] images. The events
//! or images past the limit are left out, and the last event gets an error with their
//! number, because they remain only in the raw request. JSON nesting stops at
//! serde_json's recursion limit of 128, generic XML is converted to at most
//! [`MAX_XML_DEPTH`] levels, an XML document may have at most [`MAX_XML_NODES`] nodes,
//! and multipart bodies nest at most [`MAX_MULTIPART_DEPTH`] levels. Every step is
//! linear in the size of the body.

mod body;
mod multipart;
mod picker;
mod query;
mod xml;

use serde_json::{Map, Value};

/// One request from a camera, as the server received it.
#[derive(Clone, Copy, Debug)]
pub struct Notification<'a> {
    /// The request method, such as `GET`.
    pub method: &'a str,
    /// The path after `/ipro/<mac>/<format>/`, as received (percent-encoded), possibly
    /// empty.
    pub path_rest: &'a str,
    /// The query string without the `?`, as received.
    pub query: Option<&'a str>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The whole body.
    pub body: &'a [u8],
}

/// The result of [`parse`]: events and the images they refer to.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The events, never empty: a request with nothing recognisable still makes one.
    pub events: Vec<Event>,
    /// Images found in the request, to be stored as files. Events refer to them by index.
    pub images: Vec<Image>,
}

/// The kind of an event, by what the request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An HTTP alarm notification with an alarm source code.
    Alarm,
    /// An AI-VMD result read from a JPEG.
    AiMotion,
    /// An ONVIF metadata event.
    Onvif,
    /// Crowd counting fields.
    Crowd,
    /// Face match fields.
    Face,
    /// Other structured data.
    Data,
    /// An image without a result.
    Image,
    /// A request with nothing the parser recognised, or one it failed to parse.
    Request,
}

/// One event of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The kind of event.
    pub kind: EventKind,
    /// The normalised fields.
    pub data: Map<String, Value>,
    /// Indexes into [`Parsed::images`] of the images that belong to the event.
    pub images: Vec<usize>,
    /// Parse errors met while reading the parts of the request this event came from.
    pub errors: Vec<String>,
}

/// An image to store.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// The image's bytes.
    pub bytes: Vec<u8>,
    /// Its media type, such as `image/jpeg`.
    pub media_type: String,
    /// The file name extension for its type, without the dot, such as `jpg`.
    pub extension: String,
    /// The image's place in the request, such as `body` or `part 2`.
    pub origin: String,
}

impl EventKind {
    /// Returns a lower-case name, such as `ai-motion`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alarm => "alarm",
            EventKind::AiMotion => "ai-motion",
            EventKind::Onvif => "onvif",
            EventKind::Crowd => "crowd",
            EventKind::Face => "face",
            EventKind::Data => "data",
            EventKind::Image => "image",
            EventKind::Request => "request",
        }
    }
}

/// Maximum number of events that one request makes.
pub const MAX_EVENTS: usize = 256;
/// Maximum number of images taken from one request.
pub const MAX_IMAGES: usize = 32;
/// Maximum depth of nested JSON objects that the field picker searches.
pub const MAX_PICK_DEPTH: usize = 32;
/// Maximum depth of XML elements converted to JSON. Deeper elements become `null` and
/// the event gets an error.
pub const MAX_XML_DEPTH: usize = 32;
/// Maximum number of nodes (elements, attributes, text) in an XML body.
pub const MAX_XML_NODES: u32 = 200_000;
/// Maximum nesting of multipart bodies: a multipart body inside a part is level 2.
pub const MAX_MULTIPART_DEPTH: usize = 4;

/// Parses a request into events. It never fails: what it cannot read is reported in the
/// events' `errors`.
///
/// The server adds the camera, the format, stored image references and the raw request
/// to each event. This function adds only what the request itself contains.
pub fn parse(notification: &Notification<'_>) -> Parsed {
    let request = query::RequestFields::read(notification);
    let mut output = Output::default();
    let body = body::read_body(notification.content_type, notification.body, &mut output);

    let mut events = body.into_events();
    if events.is_empty() {
        events.push(request.own_event());
    }
    for event in &mut events {
        request.add_to(event);
    }
    output.limit_events(&mut events);
    Parsed {
        events,
        images: output.images,
    }
}

impl Event {
    fn new(kind: EventKind, data: Map<String, Value>) -> Event {
        Event {
            kind,
            data,
            images: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// The images of a request and the counts of what was left out over the limits.
#[derive(Default)]
struct Output {
    images: Vec<Image>,
    skipped_images: usize,
    skipped_events: usize,
}

impl Output {
    /// Adds an image and returns its index, or `None` when [`MAX_IMAGES`] are stored.
    fn add_image(
        &mut self,
        bytes: &[u8],
        media_type: &str,
        extension: &str,
        origin: &str,
    ) -> Option<usize> {
        if self.images.len() >= MAX_IMAGES {
            self.skipped_images += 1;
            return None;
        }
        self.images.push(Image {
            bytes: bytes.to_vec(),
            media_type: media_type.to_owned(),
            extension: extension.to_owned(),
            origin: origin.to_owned(),
        });
        Some(self.images.len() - 1)
    }

    /// Counts events that a producer left out without building them.
    fn skip_events(&mut self, count: usize) {
        self.skipped_events += count;
    }

    /// Cuts `events` to [`MAX_EVENTS`] and notes on the last event what was left out.
    fn limit_events(&mut self, events: &mut Vec<Event>) {
        if events.len() > MAX_EVENTS {
            self.skipped_events += events.len() - MAX_EVENTS;
            events.truncate(MAX_EVENTS);
        }
        let Some(last) = events.last_mut() else {
            return;
        };
        if self.skipped_events > 0 {
            last.errors.push(format!(
                "{} more events were left out because a request makes at most {MAX_EVENTS}; \
                 their data is only in the raw request",
                self.skipped_events
            ));
        }
        if self.skipped_images > 0 {
            last.errors.push(format!(
                "{} more images were left out because a request yields at most {MAX_IMAGES}; \
                 they are only in the raw request",
                self.skipped_images
            ));
        }
    }
}

#[cfg(test)]
mod tests;
