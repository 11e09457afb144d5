//! XML bodies: ONVIF notification messages, and any other XML as a JSON tree.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use roxmltree::{Document, Node, ParsingOptions};
use serde_json::{Map, Number, Value};

use super::picker::{self, Picked};
use super::query::insert_repeated;
use super::{Event, EventKind, MAX_XML_DEPTH, MAX_XML_NODES, Output};

/// UTF-8 encoding of U+FEFF.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The standard base64 alphabet, with or without padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads an XML body: one `Onvif` event per notification message of ONVIF metadata,
/// or one event for any other document.
///
/// # Errors
///
/// A message naming `origin` when the body is not UTF-8 or not well-formed XML, has a
/// DTD, or has more than [`MAX_XML_NODES`] nodes.
pub(super) fn read_xml(
    bytes: &[u8],
    origin: &str,
    output: &mut Output,
) -> Result<Vec<Event>, String> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|err| {
        format!(
            "XML {origin}: byte {} is not valid UTF-8; only UTF-8 XML is read",
            err.valid_up_to()
        )
    })?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
        ..ParsingOptions::default()
    };
    let document = Document::parse_with_options(text, options)
        .map_err(|err| format!("XML {origin}: {err}"))?;

    let root = document.root_element();
    let mut messages = document
        .descendants()
        .filter(|node| has_name(*node, "NotificationMessage"))
        .peekable();
    if has_name(root, "MetaDataStream") || messages.peek().is_some() {
        return Ok(read_onvif(messages, output));
    }

    let mut truncated = false;
    let mut tree = Map::new();
    tree.insert(
        root.tag_name().name().to_owned(),
        element_to_json(root, 1, &mut truncated),
    );
    let mut event = picker::event_from_value(Value::Object(tree));
    if truncated {
        event.errors.push(format!(
            "XML {origin}: elements nested deeper than {MAX_XML_DEPTH} levels became null"
        ));
    }
    Ok(vec![event])
}

/// Makes one `Onvif` event per notification message. A `MetaDataStream` without
/// messages makes one event without `Onvif` fields.
fn read_onvif<'a, 'input: 'a>(
    messages: impl Iterator<Item = Node<'a, 'input>>,
    output: &mut Output,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut skipped = 0;
    for (index, message) in messages.enumerate() {
        if events.len() >= super::MAX_EVENTS {
            skipped += 1;
            continue;
        }
        events.push(onvif_event(message, index + 1, output));
    }
    output.skip_events(skipped);
    if events.is_empty() {
        let mut event = Event::new(EventKind::Onvif, Map::new());
        event
            .errors
            .push("ONVIF metadata has no NotificationMessage element".to_owned());
        events.push(event);
    }
    events
}

/// Makes the event of one `NotificationMessage`. `number` counts messages from 1.
fn onvif_event(notification: Node<'_, '_>, number: usize, output: &mut Output) -> Event {
    let topic = notification
        .descendants()
        .find(|node| has_name(*node, "Topic"))
        .and_then(|node| node.text())
        .map(str::trim);
    let (app, event_name) = topic.map(app_event).unwrap_or((None, None));

    // The ONVIF tt:Message sits inside wsnt:Message and carries UtcTime.
    let message = notification
        .descendants()
        .filter(|node| has_name(*node, "Message"))
        .find(|node| node.has_attribute("UtcTime"))
        .or_else(|| {
            notification
                .descendants()
                .find(|node| has_name(*node, "Message"))
        })
        .unwrap_or(notification);

    let mut errors = Vec::new();
    let mut images = Vec::new();
    let source = message.children().find(|node| has_name(*node, "Source"));
    let key = message.children().find(|node| has_name(*node, "Key"));
    let data_node = message.children().find(|node| has_name(*node, "Data"));
    let mut data = data_node.map(simple_items).unwrap_or_default();
    if let Some(data_node) = data_node {
        let mut items = ElementItems {
            number,
            output,
            errors: &mut errors,
            images: &mut images,
        };
        items.read(data_node, &mut data);
    }

    let event_detail = find_item(&data, "eventdetail");
    let likelihood = find_item(&data, "likelihood").map(number_if_parses);

    let mut onvif = Map::new();
    onvif.insert("Topic".to_owned(), topic.into());
    onvif.insert("App".to_owned(), app.into());
    onvif.insert("EventName".to_owned(), event_name.into());
    onvif.insert("UtcTime".to_owned(), message.attribute("UtcTime").into());
    let operation = message.attribute("PropertyOperation");
    onvif.insert("PropertyOperation".to_owned(), operation.into());
    let source = source.map(simple_items).unwrap_or_default();
    onvif.insert("Source".to_owned(), Value::Object(source));
    if let Some(key) = key {
        onvif.insert("Key".to_owned(), Value::Object(simple_items(key)));
    }
    let mut picked = pick_fields(&data, event_detail.as_ref());
    picked.score_face_with(likelihood.as_ref());
    onvif.insert("Data".to_owned(), Value::Object(data));
    onvif.insert(
        "EventDetail".to_owned(),
        event_detail.unwrap_or(Value::Null),
    );
    onvif.insert("Likelihood".to_owned(), likelihood.unwrap_or(Value::Null));

    let mut fields = Map::new();
    fields.insert("Onvif".to_owned(), Value::Object(onvif));
    picked.insert_into(&mut fields);
    let mut event = Event::new(EventKind::Onvif, fields);
    event.images = images;
    event.errors = errors;
    event
}

/// Returns a string value that parses as a JSON number as that number, and any other
/// value unchanged.
fn number_if_parses(value: Value) -> Value {
    let Value::String(text) = &value else {
        return value;
    };
    match text.trim().parse::<Number>() {
        Ok(number) => Value::Number(number),
        Err(_) => value,
    }
}

/// Splits a topic such as `tns1:AppEvent/FaceApp/RegisteredFace` into the application
/// and event names. Other topics give neither.
fn app_event(topic: &str) -> (Option<&str>, Option<&str>) {
    let mut segments = topic.splitn(3, '/');
    let first = segments.next().unwrap_or("");
    let first = first.rsplit(':').next().unwrap_or(first);
    if !first.eq_ignore_ascii_case("AppEvent") {
        return (None, None);
    }
    let app = segments.next().filter(|app| !app.is_empty());
    let event = segments.next().filter(|event| !event.is_empty());
    (app, event)
}

/// Returns the `SimpleItem` children of `node` as a map from `Name` to `Value`.
fn simple_items(node: Node<'_, '_>) -> Map<String, Value> {
    let mut items = Map::new();
    for item in node
        .children()
        .filter(|child| has_name(*child, "SimpleItem"))
    {
        let name = item.attribute("Name").unwrap_or_default().to_owned();
        let value = item.attribute("Value").map_or(Value::Null, Value::from);
        insert_repeated(&mut items, name, value);
    }
    items
}

/// Returns the first item whose name, compared like a picker key, is `normalised`.
fn find_item(items: &Map<String, Value>, normalised: &str) -> Option<Value> {
    items
        .iter()
        .find(|(name, _)| {
            let name: String = name
                .chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_lowercase)
                .collect();
            name == normalised
        })
        .map(|(_, value)| value.clone())
}

/// Runs the picker over the data items and the `key=value` words of the event detail,
/// such as `person=Sato list=VIP`.
fn pick_fields(data: &Map<String, Value>, event_detail: Option<&Value>) -> Picked {
    let mut fields = data.clone();
    if let Some(Value::String(detail)) = event_detail {
        for word in detail.split_whitespace() {
            if let Some((key, value)) = word.split_once('=') {
                fields
                    .entry(key.to_owned())
                    .or_insert_with(|| Value::String(value.to_owned()));
            }
        }
    }
    Picked::search(&Value::Object(fields))
}

/// Reads the `ElementItem` children of a message's `Data`.
struct ElementItems<'a> {
    number: usize,
    output: &'a mut Output,
    errors: &'a mut Vec<String>,
    images: &'a mut Vec<usize>,
}

impl ElementItems<'_> {
    /// Stores images given as `base64Binary` and adds any other item to `data` as a
    /// JSON tree.
    fn read(&mut self, data_node: Node<'_, '_>, data: &mut Map<String, Value>) {
        let items = data_node
            .children()
            .filter(|child| has_name(*child, "ElementItem"));
        for item in items {
            let name = item.attribute("Name").unwrap_or_default();
            let base64 = item
                .descendants()
                .find(|node| has_name(*node, "base64Binary"));
            if let Some(base64) = base64 {
                self.read_image(name, base64);
                continue;
            }
            let mut truncated = false;
            let tree = element_to_json(item, 1, &mut truncated);
            insert_repeated(data, name.to_owned(), tree);
            if truncated {
                self.errors.push(format!(
                    "ONVIF message {} item {name:?}: elements nested deeper than \
                     {MAX_XML_DEPTH} levels became null",
                    self.number
                ));
            }
        }
    }

    fn read_image(&mut self, name: &str, base64: Node<'_, '_>) {
        let text: Vec<u8> = base64
            .descendants()
            .filter(Node::is_text)
            .flat_map(|node| node.text().unwrap_or_default().bytes())
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let bytes = match BASE64.decode(&text) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.errors.push(format!(
                    "ONVIF message {} item {name:?}: base64 image is invalid: {err}",
                    self.number
                ));
                return;
            }
        };
        let (media_type, extension) = infer::get(&bytes)
            .map_or(("application/octet-stream", "bin"), |found| {
                (found.mime_type(), found.extension())
            });
        let origin = format!("onvif message {} {name}", self.number);
        let index = self
            .output
            .add_image(&bytes, media_type, extension, &origin);
        self.images.extend(index);
    }
}

/// Converts an element to JSON: attributes as `@name`, child elements by local name
/// (an array when a name repeats), and text as `#text` next to them. An element with
/// only text becomes that string. `depth` counts levels from 1, and an element deeper
/// than [`MAX_XML_DEPTH`] becomes `null` and sets `truncated`.
fn element_to_json(element: Node<'_, '_>, depth: usize, truncated: &mut bool) -> Value {
    if depth > MAX_XML_DEPTH {
        *truncated = true;
        return Value::Null;
    }
    let has_elements = element.children().any(|child| child.is_element());
    if element.attributes().len() == 0 && !has_elements {
        let text: String = element
            .children()
            .filter_map(|child| child.text())
            .collect();
        return Value::String(text);
    }

    let mut object = Map::new();
    for attribute in element.attributes() {
        object.insert(format!("@{}", attribute.name()), attribute.value().into());
    }
    let mut text = String::new();
    for child in element.children() {
        if child.is_element() {
            let value = element_to_json(child, depth + 1, truncated);
            insert_repeated(&mut object, child.tag_name().name().to_owned(), value);
        } else if child.is_text() {
            text.push_str(child.text().unwrap_or_default().trim());
        }
    }
    if !text.is_empty() {
        object.insert("#text".to_owned(), Value::String(text));
    }
    Value::Object(object)
}

fn has_name(node: Node<'_, '_>, local_name: &str) -> bool {
    node.is_element() && node.tag_name().name() == local_name
}
