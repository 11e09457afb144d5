//! The field picker: known crowd and face fields found in a JSON value by their keys.
//! The module documentation of `notification` lists the keys and the tie-breaks.

use serde_json::{Map, Value};

use super::{Event, EventKind, MAX_PICK_DEPTH};

/// A group of fields, which becomes one object in an event's data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Crowd,
    Face,
}

/// A field that the picker looks for.
struct Field {
    group: Group,
    name: &'static str,
    /// Keys that match, lower-case, without `_`, `-` and spaces.
    keys: &'static [&'static str],
    /// Whether an object or array value is taken, rather than only a string, number or
    /// boolean.
    takes_structures: bool,
}

const FIELDS: [Field; 8] = [
    Field {
        group: Group::Crowd,
        name: "Area",
        keys: &["area", "areaname", "areaid", "areano"],
        takes_structures: false,
    },
    Field {
        group: Group::Crowd,
        name: "Count",
        keys: &["count", "peoplecount", "number", "num", "people"],
        takes_structures: false,
    },
    Field {
        group: Group::Crowd,
        name: "Threshold",
        keys: &["threshold"],
        takes_structures: false,
    },
    Field {
        group: Group::Crowd,
        name: "State",
        keys: &["state", "status"],
        takes_structures: false,
    },
    Field {
        group: Group::Face,
        name: "Person",
        keys: &["person", "personname", "personid"],
        takes_structures: false,
    },
    Field {
        group: Group::Face,
        name: "List",
        keys: &["list", "listname", "group"],
        takes_structures: false,
    },
    Field {
        group: Group::Face,
        name: "Score",
        keys: &["score", "similarity", "confidence"],
        takes_structures: false,
    },
    Field {
        group: Group::Face,
        name: "Attributes",
        keys: &["attributes", "attribute", "attr"],
        takes_structures: true,
    },
];

/// The crowd and face fields found in a value. A group is `None` when it lacks its main
/// fields.
pub(super) struct Picked {
    crowd: Option<Map<String, Value>>,
    face: Option<Map<String, Value>>,
}

impl Picked {
    /// Searches `value` for the known fields.
    pub(super) fn search(value: &Value) -> Picked {
        let mut found: [Option<Value>; FIELDS.len()] = Default::default();
        if let Value::Object(object) = value {
            search_object(object, 0, &mut found);
        }
        let crowd = group_map(Group::Crowd, &mut found)
            .filter(|crowd| crowd.contains_key("Count") || crowd.contains_key("Area"));
        let face = group_map(Group::Face, &mut found)
            .filter(|face| face.contains_key("Person") || face.contains_key("Score"));
        Picked { crowd, face }
    }

    /// Returns the kind that the groups found give: `Crowd`, `Face`, or `None` for
    /// neither.
    pub(super) fn kind(&self) -> Option<EventKind> {
        match (&self.crowd, &self.face) {
            (None, None) => None,
            (Some(_), None) => Some(EventKind::Crowd),
            (None, Some(_)) => Some(EventKind::Face),
            (Some(crowd), Some(face)) if crowd.len() > face.len() => Some(EventKind::Crowd),
            (Some(crowd), Some(face)) if crowd.len() < face.len() => Some(EventKind::Face),
            (Some(crowd), Some(_)) if crowd.contains_key("Count") => Some(EventKind::Crowd),
            (Some(_), Some(_)) => Some(EventKind::Face),
        }
    }

    /// Inserts `Crowd` and `Face` into `data` for the groups found.
    /// Sets the face group's `Score` to `score` when the group was found without one.
    /// ONVIF events carry their match score as `Likelihood`, which counts as a face
    /// score only once other fields showed the event to be a face match.
    pub(super) fn score_face_with(&mut self, score: Option<&Value>) {
        if let (Some(face), Some(score)) = (self.face.as_mut(), score)
            && !face.contains_key("Score")
        {
            face.insert("Score".to_owned(), score.clone());
        }
    }

    pub(super) fn insert_into(self, data: &mut Map<String, Value>) {
        if let Some(crowd) = self.crowd {
            data.insert("Crowd".to_owned(), Value::Object(crowd));
        }
        if let Some(face) = self.face {
            data.insert("Face".to_owned(), Value::Object(face));
        }
    }
}

/// Makes the event of one decoded JSON value, form or XML tree: `Crowd`, `Face` or
/// `Data`, with the whole value under `Body`.
pub(super) fn event_from_value(value: Value) -> Event {
    let picked = Picked::search(&value);
    let kind = picked.kind().unwrap_or(EventKind::Data);
    let mut data = Map::new();
    picked.insert_into(&mut data);
    data.insert("Body".to_owned(), value);
    Event::new(kind, data)
}

/// Visits the keys of `object`, then the objects among its values, depth first.
fn search_object(object: &Map<String, Value>, depth: usize, found: &mut [Option<Value>]) {
    for (key, value) in object {
        let Some(index) = field_index(key) else {
            continue;
        };
        let takes = match value {
            Value::Null => false,
            Value::Object(_) | Value::Array(_) => FIELDS[index].takes_structures,
            Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
        };
        if takes && found[index].is_none() {
            found[index] = Some(value.clone());
        }
    }
    if depth + 1 >= MAX_PICK_DEPTH || found.iter().all(Option::is_some) {
        return;
    }
    for value in object.values() {
        if let Value::Object(child) = value {
            search_object(child, depth + 1, found);
        }
    }
}

/// Returns the index in [`FIELDS`] of the field that `key` names.
fn field_index(key: &str) -> Option<usize> {
    // Keys longer than 40 bytes are skipped, which bounds the work per key. The longest
    // known key has 11 letters.
    if key.len() > 40 {
        return None;
    }
    let normalised: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    FIELDS
        .iter()
        .position(|field| field.keys.contains(&normalised.as_str()))
}

/// Moves the found fields of `group` into a map, or returns `None` when none was found.
fn group_map(group: Group, found: &mut [Option<Value>]) -> Option<Map<String, Value>> {
    let map: Map<String, Value> = FIELDS
        .iter()
        .zip(found.iter_mut())
        .filter(|(field, _)| field.group == group)
        .filter_map(|(field, value)| Some((field.name.to_owned(), value.take()?)))
        .collect();
    (!map.is_empty()).then_some(map)
}
