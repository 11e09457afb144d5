//! The compact form of the runs that triggers fired for one record, as stored in the
//! `runs` column of an `action_queue` row.
//!
//! Ingest writes one queue row per record, so its size is what ten firing triggers add to
//! every commit. A run fired by a trigger has an input of the form
//! `{"TriggerName": <trigger>, "Properties": {...}, "FiredAt": <creation time>}`, and the
//! runs of one record are created together with consecutive ids. The encoding leaves out
//! what can be derived from the row and restores it exactly:
//!
//! - the id, when it is the row's first id plus the run's position (as a 128-bit number);
//! - the creation time, when it is the row's;
//! - `TriggerName` when it is the first key of the input and equals the trigger, and
//!   `FiredAt` when it is the last key and equals the creation time in the records API's
//!   format.
//!
//! Each run is a JSON array `[id, trigger, action, created_ns, input, stripped]`, where
//! `id` and `created_ns` are `null` when derived and `stripped` holds the bits
//! [`TRIGGER_NAME`] and [`FIRED_AT`].

use chrono::DateTime;
use hubkit_model::format_timestamp;
use serde_json::{Map, Value};

use super::NewActionRun;

/// The input's first key `TriggerName` equalled the trigger and was left out.
const TRIGGER_NAME: u8 = 1;
/// The input's last key `FiredAt` equalled the creation time and was left out.
const FIRED_AT: u8 = 2;

/// One run of a queue row, as read back.
type Entry = (
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    Value,
    u8,
);

/// A run read back from a queue row.
#[derive(Debug, PartialEq)]
pub(crate) struct QueuedRun {
    pub(crate) id: String,
    pub(crate) trigger: Option<String>,
    pub(crate) action: String,
    pub(crate) created_ns: i64,
    pub(crate) input: Value,
}

/// Encodes `runs`, whose ids are already lowercase and checked, for a row whose first id
/// is `runs[0].id` and whose creation time is `created_ns`. It writes the JSON itself,
/// leaving keys out of each input on the way, so ingest copies no input.
pub(crate) fn encode(runs: &[(String, NewActionRun)], created_ns: i64) -> String {
    let first = runs
        .first()
        .and_then(|(id, _)| u128::from_str_radix(id, 16).ok());
    // The runs of one record are usually created at the same time.
    let mut fired_at = (
        created_ns,
        format_timestamp(&DateTime::from_timestamp_nanos(created_ns)),
    );
    let mut out: Vec<u8> = Vec::with_capacity(64 * runs.len());
    out.push(b'[');
    for (position, (id, run)) in runs.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        let derived = first
            .and_then(|first| first.checked_add(position as u128))
            .is_some_and(|expected| u128::from_str_radix(id, 16).ok() == Some(expected));
        let own_ns = super::time_ns(&run.created_at);
        if fired_at.0 != own_ns {
            fired_at = (own_ns, format_timestamp(&run.created_at));
        }
        out.push(b'[');
        if derived {
            out.extend_from_slice(b"null");
        } else {
            push_json(&mut out, id);
        }
        out.push(b',');
        push_json(&mut out, &run.trigger);
        out.push(b',');
        push_json(&mut out, &run.action);
        out.push(b',');
        if own_ns == created_ns {
            out.extend_from_slice(b"null");
        } else {
            out.extend_from_slice(own_ns.to_string().as_bytes());
        }
        out.push(b',');
        let stripped = push_stripped(&mut out, run, &fired_at.1);
        out.push(b',');
        out.extend_from_slice(stripped.to_string().as_bytes());
        out.push(b']');
    }
    out.push(b']');
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Appends `value` as JSON.
fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings and JSON values serialize");
}

/// Appends the input of `run` without the keys that can be derived, and returns which
/// ones were left out.
fn push_stripped(out: &mut Vec<u8>, run: &NewActionRun, fired_at: &str) -> u8 {
    let input = match &run.input {
        Value::Object(input) if !input.is_empty() => input,
        other => {
            push_json(out, other);
            return 0;
        }
    };
    let first_is_trigger = input.iter().next().is_some_and(|(key, value)| {
        key == "TriggerName" && run.trigger.as_deref() == value.as_str()
    });
    let last_is_time = input.len() > usize::from(first_is_trigger)
        && input
            .iter()
            .next_back()
            .is_some_and(|(key, value)| key == "FiredAt" && value.as_str() == Some(fired_at));
    let last = input.len() - 1;
    let mut stripped = 0;
    let mut written = 0;
    out.push(b'{');
    for (index, (key, value)) in input.iter().enumerate() {
        if index == 0 && first_is_trigger {
            stripped |= TRIGGER_NAME;
        } else if index == last && last_is_time {
            stripped |= FIRED_AT;
        } else {
            if written > 0 {
                out.push(b',');
            }
            push_json(out, key);
            out.push(b':');
            push_json(out, value);
            written += 1;
        }
    }
    out.push(b'}');
    stripped
}

/// Decodes the `runs` of a queue row whose first id is `first_id` and whose creation
/// time is `created_ns`.
///
/// # Errors
///
/// Fails when `runs` is not an array of entries or `first_id` is not 32 hex digits while
/// an id is derived from it.
pub(crate) fn decode(
    runs: &str,
    first_id: &str,
    created_ns: i64,
) -> Result<Vec<QueuedRun>, String> {
    let entries: Vec<Entry> = serde_json::from_str(runs).map_err(|err| err.to_string())?;
    let first = u128::from_str_radix(first_id, 16).ok();
    entries
        .into_iter()
        .enumerate()
        .map(
            |(position, (id, trigger, action, own_ns, input, stripped))| {
                let id = match id {
                    Some(id) => id,
                    None => first
                        .and_then(|first| first.checked_add(position as u128))
                        .map(|id| format!("{id:032x}"))
                        .ok_or_else(|| {
                            format!("the first run id {first_id:?} is not 32 hex digits")
                        })?,
                };
                let created_ns = own_ns.unwrap_or(created_ns);
                let input = restore(input, stripped, trigger.as_deref(), created_ns);
                Ok(QueuedRun {
                    id,
                    trigger,
                    action,
                    created_ns,
                    input,
                })
            },
        )
        .collect()
}

/// Puts the keys that [`strip`] left out back in their places.
fn restore(input: Value, stripped: u8, trigger: Option<&str>, created_ns: i64) -> Value {
    let Value::Object(kept) = input else {
        return input;
    };
    if stripped == 0 {
        return Value::Object(kept);
    }
    let mut full = Map::with_capacity(kept.len() + 2);
    if stripped & TRIGGER_NAME != 0 {
        full.insert("TriggerName".to_owned(), Value::from(trigger));
    }
    full.extend(kept);
    if stripped & FIRED_AT != 0 {
        let fired_at = format_timestamp(&DateTime::from_timestamp_nanos(created_ns));
        full.insert("FiredAt".to_owned(), Value::from(fired_at));
    }
    Value::Object(full)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::json;

    use super::*;

    fn run(
        id: &str,
        trigger: Option<&str>,
        input: Value,
        created_ns: i64,
    ) -> (String, NewActionRun) {
        (
            id.to_owned(),
            NewActionRun {
                id: id.to_owned(),
                trigger: trigger.map(str::to_owned),
                action: "notify".to_owned(),
                record: Some(0),
                input,
                created_at: DateTime::from_timestamp_nanos(created_ns),
            },
        )
    }

    fn fired(trigger: &str, created_ns: i64) -> Value {
        let at = format_timestamp(&DateTime::from_timestamp_nanos(created_ns));
        json!({"TriggerName": trigger, "Properties": {"room": 1}, "FiredAt": at})
    }

    fn round_trip(runs: &[(String, NewActionRun)], created_ns: i64) -> String {
        let encoded = encode(runs, created_ns);
        let decoded = decode(&encoded, &runs[0].0, created_ns).expect("row decodes");
        let expected: Vec<QueuedRun> = runs
            .iter()
            .map(|(id, run)| QueuedRun {
                id: id.clone(),
                trigger: run.trigger.clone(),
                action: run.action.clone(),
                created_ns: super::super::time_ns(&run.created_at),
                input: run.input.clone(),
            })
            .collect();
        assert_eq!(decoded, expected);
        // Key order survives too.
        for (decoded, (_, run)) in decoded.iter().zip(runs) {
            assert_eq!(decoded.input.to_string(), run.input.to_string());
        }
        encoded
    }

    #[test]
    fn encode_leaves_out_derived_fields() {
        let ns = 1_796_455_037_051_177_980;
        let runs = [
            run(
                "01a24510787b75a0b7c9768b0124a32e",
                Some("hot"),
                fired("hot", ns),
                ns,
            ),
            run(
                "01a24510787b75a0b7c9768b0124a32f",
                Some("cold"),
                fired("cold", ns),
                ns,
            ),
        ];
        let encoded = round_trip(&runs, ns);
        assert_eq!(
            encoded,
            r#"[[null,"hot","notify",null,{"Properties":{"room":1}},3],[null,"cold","notify",null,{"Properties":{"room":1}},3]]"#
        );
    }

    #[test]
    fn encode_keeps_underivable_fields() {
        let ns = 1_000;
        let runs = [
            run(
                "0000000000000000000000000000000a",
                Some("hot"),
                fired("hot", ns),
                ns,
            ),
            // Not the next id, another time, and a TriggerName that is not the trigger.
            run(
                "0000000000000000000000000000000c",
                Some("cold"),
                fired("hot", ns + 5),
                ns + 5,
            ),
            // FiredAt that is not the creation time, keys in another order.
            run(
                "0000000000000000000000000000000d",
                Some("x"),
                json!({"FiredAt": "then", "TriggerName": "x", "Other": [1, 2]}),
                ns,
            ),
            run(
                "0000000000000000000000000000000e",
                None,
                json!([1, "two"]),
                ns,
            ),
            run(
                "0000000000000000000000000000000f",
                Some("y"),
                json!({"TriggerName": "y"}),
                ns,
            ),
        ];
        round_trip(&runs, ns);
    }

    #[test]
    fn decode_rejects_damaged_rows() {
        assert!(decode("[[null", "00", 0).is_err());
        let error = decode(r#"[[null,"t","a",null,{},0]]"#, "not hex", 0).expect_err("fails");
        assert!(error.contains("not hex"), "{error}");
    }
}
