//! Reads the TOML document into the raw structures, one section or array element at a
//! time, so that a mistake in one element does not hide the mistakes in the others.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::Report;
use crate::raw::{
    RawAction, RawArea, RawBinding, RawBroker, RawCamera, RawIpro, RawLimits, RawServer, RawStore,
    RawTls, RawTopic, RawTrigger, RawWebhook,
};

/// One element of an array of tables, with its index and span.
pub(crate) struct Item<T> {
    pub index: usize,
    pub span: Range<usize>,
    pub value: T,
}

/// The `[server]` table and its sub-tables, each `None` if the file leaves it out.
#[derive(Default)]
pub(crate) struct RawServerSection {
    pub top: RawServer,
    pub tls: Option<Spanned<RawTls>>,
    pub limits: Option<RawLimits>,
    pub store: Option<RawStore>,
}

/// Everything read from the file.
#[derive(Default)]
pub(crate) struct RawDocument {
    pub server: RawServerSection,
    pub areas: Vec<Item<RawArea>>,
    pub webhooks: Vec<Item<RawWebhook>>,
    pub brokers: Vec<Item<RawBroker>>,
    pub topics: Vec<Item<RawTopic>>,
    pub cameras: Vec<Item<RawCamera>>,
    pub ipro: Option<Spanned<RawIpro>>,
    pub bindings: Vec<Item<RawBinding>>,
    pub actions: Vec<Item<RawAction>>,
    pub triggers: Vec<Item<RawTrigger>>,
    /// Whether every area was read. Bindings are checked against the areas only if so.
    pub complete_areas: bool,
    /// Whether every webhook was read.
    pub complete_webhooks: bool,
    /// Whether every broker was read.
    pub complete_brokers: bool,
    /// Whether every topic entry was read.
    pub complete_topics: bool,
    /// Whether every camera was read.
    pub complete_cameras: bool,
    /// Whether every binding was read. Triggers are checked against the bindings only
    /// if so.
    pub complete_bindings: bool,
    /// Whether every action was read. Triggers are checked against the action names
    /// only if so.
    pub complete_actions: bool,
}

const TOP_LEVEL_KEYS: &str = "`server`, `areas`, `webhooks`, `brokers`, `topics`, `cameras`, \
                              `ipro`, `bindings`, `actions`, `triggers`";
const SERVER_TABLES: [&str; 3] = ["tls", "limits", "store"];

/// Parses `text` and reads its sections, recording every syntax and structure error.
///
/// Returns `None` when the text is not valid TOML.
pub(crate) fn read(text: &str, report: &mut Report<'_>) -> Option<RawDocument> {
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            report.error(span, "", error.message().to_owned());
        }
        return None;
    }

    let mut document = RawDocument {
        complete_areas: true,
        complete_webhooks: true,
        complete_brokers: true,
        complete_topics: true,
        complete_cameras: true,
        complete_bindings: true,
        complete_actions: true,
        ..RawDocument::default()
    };
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "server" => document.server = read_server(value, report),
            "areas" => {
                document.complete_areas = read_array("areas", value, &mut document.areas, report);
            }
            "webhooks" => {
                document.complete_webhooks =
                    read_array("webhooks", value, &mut document.webhooks, report);
            }
            "brokers" => {
                document.complete_brokers =
                    read_array("brokers", value, &mut document.brokers, report);
            }
            "topics" => {
                document.complete_topics =
                    read_array("topics", value, &mut document.topics, report);
            }
            "cameras" => {
                document.complete_cameras =
                    read_array("cameras", value, &mut document.cameras, report);
            }
            "ipro" => {
                let span = value.span();
                document.ipro =
                    deserialize(value, "ipro", report).map(|ipro| Spanned::new(span, ipro));
            }
            "bindings" => {
                document.complete_bindings =
                    read_array("bindings", value, &mut document.bindings, report);
            }
            "actions" => {
                document.complete_actions =
                    read_array("actions", value, &mut document.actions, report);
            }
            "triggers" => {
                read_array("triggers", value, &mut document.triggers, report);
            }
            other => report.error(
                key.span(),
                &field_name("", other),
                format!("unknown key `{other}`, expected one of {TOP_LEVEL_KEYS}"),
            ),
        }
    }
    Some(document)
}

/// Reads the `[server]` table, each sub-table on its own.
fn read_server(value: Spanned<DeValue<'_>>, report: &mut Report<'_>) -> RawServerSection {
    let span = value.span();
    let DeValue::Table(mut table) = value.into_inner() else {
        report.error(span, "server", "`server` must be a table".to_owned());
        return RawServerSection::default();
    };

    let mut section = RawServerSection::default();
    for name in SERVER_TABLES {
        let Some(sub_table) = table.remove(name) else {
            continue;
        };
        let field = format!("server.{name}");
        match name {
            "tls" => section.tls = deserialize(sub_table, &field, report),
            "limits" => section.limits = deserialize(sub_table, &field, report),
            _ => section.store = deserialize(sub_table, &field, report),
        }
    }
    let rest = Spanned::new(span, DeValue::Table(table));
    section.top = deserialize(rest, "server", report).unwrap_or_default();
    section
}

/// Reads an array of tables into `items` and returns whether every element was read.
fn read_array<T: DeserializeOwned>(
    name: &str,
    value: Spanned<DeValue<'_>>,
    items: &mut Vec<Item<T>>,
    report: &mut Report<'_>,
) -> bool {
    let span = value.span();
    let DeValue::Array(array) = value.into_inner() else {
        let message = format!("`{name}` must be an array of tables, such as [[{name}]]");
        report.error(span, name, message);
        return false;
    };

    let mut complete = true;
    for (index, element) in array.into_iter().enumerate() {
        let field = format!("{name}[{index}]");
        let span = element.span();
        match deserialize(element, &field, report) {
            Some(value) => items.push(Item { index, span, value }),
            None => complete = false,
        }
    }
    complete
}

/// Deserializes one value, recording a failure with the key the error points at.
fn deserialize<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    field: &str,
    report: &mut Report<'_>,
) -> Option<T> {
    let tree = value.clone();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let span = error.span().unwrap_or_else(|| tree.span());
            let field = locate_field(tree.get_ref(), span.start, field.to_owned());
            report.error(span, &field, error.message().to_owned());
            None
        }
    }
}

/// Returns the dotted path of the innermost key whose key or value contains `offset`,
/// or `path` if none does.
fn locate_field(value: &DeValue<'_>, offset: usize, path: String) -> String {
    find_field(value, offset, &path).unwrap_or(path)
}

/// A key or element of a table or array, for [`find_field`].
struct Child<'a, 'i> {
    path: String,
    key_span: Option<Range<usize>>,
    value: &'a Spanned<DeValue<'i>>,
}

/// Searches every child, because the span of a table or an array of tables that is
/// written with headers covers only its first header, not its keys.
fn find_field(value: &DeValue<'_>, offset: usize, path: &str) -> Option<String> {
    let children: Vec<Child<'_, '_>> = match value {
        DeValue::Table(table) => table
            .iter()
            .map(|(key, value)| Child {
                path: field_name(path, key.get_ref()),
                key_span: Some(key.span()),
                value,
            })
            .collect(),
        DeValue::Array(array) => array
            .iter()
            .enumerate()
            .map(|(index, value)| Child {
                path: format!("{path}[{index}]"),
                key_span: None,
                value,
            })
            .collect(),
        _ => return None,
    };
    for child in children {
        if child.key_span.is_some_and(|span| contains(&span, offset)) {
            return Some(child.path);
        }
        if let Some(found) = find_field(child.value.get_ref(), offset, &child.path) {
            return Some(found);
        }
        if contains(&child.value.span(), offset) {
            return Some(child.path);
        }
    }
    None
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || span.start == offset
}

/// Appends `key` to a dotted path, quoting it unless it is a bare TOML key.
pub(crate) fn field_name(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}
