//! MQTT deliveries: dead letters and the inbox that recognises redelivered messages.

use chrono::{DateTime, Utc};
use hubkit_model::Record;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{Cursor, NewActionRun, StoreError};

/// A payload that could not become a record, kept with the reason so nothing received is
/// lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDeadLetter {
    /// Time the hub received the payload.
    pub received_at: DateTime<Utc>,
    /// Transport, such as `mqtt`.
    pub protocol: String,
    /// Name of the broker.
    pub broker: String,
    /// Name of the topic entry whose payload format failed.
    pub device: String,
    /// Topic the message was published to.
    pub topic: String,
    /// Quality of service of the delivery.
    pub qos: u8,
    /// Whether the broker sent it as a retained message.
    pub retain: bool,
    /// The payload as received.
    pub payload: Vec<u8>,
    /// The reason the payload did not become a record.
    pub reason: String,
}

/// Bytes of a payload that a dead-letter page includes; the whole payload is read one
/// letter at a time with [`Store::dead_letter_payload`](crate::Store::dead_letter_payload).
pub const DEAD_LETTER_PREVIEW_BYTES: usize = 256;

/// A stored dead letter, as a page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Row id, increasing in the order the letters were stored.
    pub id: i64,
    /// The letter as written, with `payload` cut to its first
    /// [`DEAD_LETTER_PREVIEW_BYTES`] bytes.
    pub letter: NewDeadLetter,
    /// Size of the whole payload in bytes.
    pub payload_bytes: u64,
}

/// The identity of a QoS 1 or 2 message within a broker session, which recognises a
/// redelivery of a committed message.
///
/// A broker reuses a packet identifier only after the hub acknowledged the message
/// that had it, and it sets the DUP flag when it sends a message again. So a message
/// with DUP set whose session, packet identifier, topic and payload equal the last
/// committed message with that identifier is a redelivery. A message without DUP is
/// always new, even when its content repeats an earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxKey {
    /// `<client id>@<host>:<port>`.
    pub session: String,
    /// Packet identifier.
    pub pkid: u16,
    /// Topic of the message.
    pub topic: String,
    /// SHA-256 of the payload.
    pub payload_sha256: [u8; 32],
    /// The DUP flag of the delivery.
    pub dup: bool,
}

/// Records, dead letters and action runs of one MQTT message, committed together with its
/// inbox key. A redelivery writes none of them.
#[derive(Clone, Debug, Default)]
pub struct MqttWrite {
    /// Records, one per matching topic entry and enabled binding.
    pub records: Vec<Record>,
    /// Payloads that a topic entry could not decode.
    pub dead_letters: Vec<NewDeadLetter>,
    /// The message's identity, for QoS 1 and 2.
    pub inbox: Option<InboxKey>,
    /// Action runs to store as pending, each referring to its record by index.
    pub runs: Vec<NewActionRun>,
}

/// Result of [`Store::insert_mqtt`](crate::Store::insert_mqtt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttWritten {
    /// Cursors of the committed records; empty for a duplicate.
    pub cursors: Vec<Cursor>,
    /// Whether the message was a redelivery of a committed one, so nothing was written.
    pub duplicate: bool,
}

/// One page of dead letters, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterPage {
    /// The letters.
    pub letters: Vec<DeadLetter>,
    /// `before` value of the next page, if there may be one.
    pub next_before: Option<i64>,
}

/// The extra writes of an MQTT request, with its dead letters' receipt times.
#[derive(Debug)]
pub(crate) struct MqttExtra {
    pub dead_letters: Vec<(NewDeadLetter, i64)>,
    pub inbox: Option<InboxKey>,
    /// Set by the writer when the message turned out to be a redelivery.
    pub duplicate: std::cell::Cell<bool>,
}

const INSERT_DEAD_LETTER_SQL: &str = "INSERT INTO dead_letters (received_ns, protocol, broker, \
     device, topic, qos, retain, payload, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const DEAD_LETTER_COLUMNS: &str = "id, received_ns, protocol, broker, device, topic, qos, \
     retain, coalesce(substr(payload, 1, 256), x''), reason, length(payload)";

/// Converts a receipt time to nanoseconds; times after the year 2262, which `i64`
/// nanoseconds cannot hold, become the largest value.
pub(crate) fn time_ns(at: &DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Returns whether `key` is a redelivery of the last committed message with its packet
/// identifier. Runs inside the write transaction.
pub(crate) fn is_redelivery(conn: &Connection, key: &InboxKey) -> rusqlite::Result<bool> {
    if !key.dup {
        return Ok(false);
    }
    let found: Option<(String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT topic, payload_sha256 FROM mqtt_inbox WHERE session = ?1 AND pkid = ?2",
        )?
        .query_row(params![key.session, key.pkid], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    Ok(found.is_some_and(|(topic, sha)| topic == key.topic && sha == key.payload_sha256))
}

/// Writes the dead letters and the inbox row of one message. Runs inside the
/// transaction that inserted its records.
pub(crate) fn insert_extra(
    conn: &Connection,
    extra: &MqttExtra,
    now_ns: i64,
) -> rusqlite::Result<()> {
    if !extra.dead_letters.is_empty() {
        let mut insert = conn.prepare_cached(INSERT_DEAD_LETTER_SQL)?;
        for (letter, received_ns) in &extra.dead_letters {
            insert.execute(params![
                received_ns,
                letter.protocol,
                letter.broker,
                letter.device,
                letter.topic,
                letter.qos,
                letter.retain,
                letter.payload,
                letter.reason
            ])?;
        }
    }
    if let Some(key) = &extra.inbox {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO mqtt_inbox (session, pkid, topic, payload_sha256, received_ns) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            key.session,
            key.pkid,
            key.topic,
            &key.payload_sha256[..],
            now_ns
        ])?;
    }
    Ok(())
}

/// Deletes the inbox rows of `session`. Runs inside a write transaction.
pub(crate) fn reset_session(conn: &Connection, session: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM mqtt_inbox WHERE session = ?1")?
        .execute([session])
        .map(drop)
}

/// Returns up to `limit` dead letters with ids below `before`, newest first.
pub(crate) fn dead_letters(
    conn: &Connection,
    before: Option<i64>,
    limit: usize,
) -> Result<DeadLetterPage, StoreError> {
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
    );
    let limit = limit.clamp(1, 1000);
    let read = || -> rusqlite::Result<Vec<DeadLetter>> {
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map(
            params![before.unwrap_or(i64::MAX), limit as i64 + 1],
            decode_dead_letter,
        )?;
        rows.collect()
    };
    let mut letters = read().map_err(|source| StoreError::Read { source })?;
    let next_before = if letters.len() > limit {
        letters.truncate(limit);
        letters.last().map(|letter| letter.id)
    } else {
        None
    };
    Ok(DeadLetterPage {
        letters,
        next_before,
    })
}

/// Returns the whole payload of dead letter `id`, or `None` when there is none.
pub(crate) fn dead_letter_payload(
    conn: &Connection,
    id: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT payload FROM dead_letters WHERE id = ?1")
        .and_then(|mut statement| statement.query_row([id], |row| row.get(0)).optional())
        .map_err(|source| StoreError::Read { source })
}

/// Returns the number of dead letters.
pub(crate) fn dead_letter_count(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row("SELECT count(*) FROM dead_letters", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(i64::unsigned_abs)
    .map_err(|source| StoreError::Read { source })
}

fn decode_dead_letter(row: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    let received_ns: i64 = row.get(1)?;
    let payload_bytes: i64 = row.get(10)?;
    Ok(DeadLetter {
        id: row.get(0)?,
        payload_bytes: payload_bytes.unsigned_abs(),
        letter: NewDeadLetter {
            received_at: DateTime::from_timestamp_nanos(received_ns),
            protocol: row.get(2)?,
            broker: row.get(3)?,
            device: row.get(4)?,
            topic: row.get(5)?,
            qos: row.get(6)?,
            retain: row.get(7)?,
            payload: row.get(8)?,
            reason: row.get(9)?,
        },
    })
}
