//! Conversion between [`Record`] and the columns of the `records` table.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use chrono::DateTime;
use hubkit_model::{DataId, Record};
use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension, Row, Statement, params};
use uuid::Uuid;

use crate::{Cursor, StoreError, StoredRecord};

/// Columns of the `records` view read by [`decode_row`], in its order. The `timestamp`
/// text column is left out, because `timestamp_ns` contains the same instant exactly.
pub(crate) const SELECT_COLUMNS: &str = "seq, data_id, area_id, area_name, layer_id, \
     layer_name, kind_name, device_id, device_name, data_type, data, timestamp_ns, \
     transport";

/// Statement that [`insert_row`] runs.
pub(crate) const INSERT_SQL: &str = "INSERT INTO record_data (data_id, source, data, \
     timestamp_ns, transport) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Statement that finds the `sources` row of a record.
const FIND_SOURCE_SQL: &str = "SELECT id FROM sources WHERE area_id = ?1 AND \
     area_name = ?2 AND layer_id = ?3 AND layer_name = ?4 AND kind_name = ?5 AND \
     device_id = ?6 AND device_name = ?7 AND data_type = ?8";

/// Statement that adds the `sources` row of a record.
const INSERT_SOURCE_SQL: &str = "INSERT INTO sources (area_id, area_name, layer_id, \
     layer_name, kind_name, device_id, device_name, data_type) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Most `sources` ids that [`SourceCache`] keeps before it starts over.
const MAX_CACHED_SOURCES: usize = 4096;

/// A record together with the column values that need serializing, prepared by the
/// caller's task so the writer thread only binds them.
#[derive(Debug)]
pub(crate) struct EncodedRecord {
    pub(crate) record: Record,
    data: String,
    timestamp_ns: i64,
    transport: String,
}

impl EncodedRecord {
    /// Serializes the JSON columns of `record`.
    ///
    /// # Errors
    ///
    /// [`StoreError::TimestampOutOfRange`] when the timestamp does not fit `i64`
    /// nanoseconds, [`StoreError::Encode`] when JSON serialization fails.
    pub(crate) fn new(record: Record) -> Result<EncodedRecord, StoreError> {
        let data_id = record.data_id;
        let timestamp_ns =
            record
                .timestamp
                .timestamp_nanos_opt()
                .ok_or(StoreError::TimestampOutOfRange {
                    data_id,
                    timestamp: record.timestamp,
                })?;
        let encode_error = |column| {
            move |source| StoreError::Encode {
                data_id,
                column,
                source,
            }
        };
        let data = serde_json::to_string(&record.data).map_err(encode_error("data"))?;
        let transport =
            serde_json::to_string(&record.transport).map_err(encode_error("transport"))?;
        Ok(EncodedRecord {
            data,
            timestamp_ns,
            transport,
            record,
        })
    }
}

/// Inserts one record with a statement prepared from [`INSERT_SQL`] and returns its
/// `seq`.
pub(crate) fn insert_row(
    statement: &mut Statement<'_>,
    encoded: &EncodedRecord,
    source: i64,
) -> rusqlite::Result<i64> {
    let mut data_id = Uuid::encode_buffer();
    let data_id = encoded
        .record
        .data_id
        .as_uuid()
        .simple()
        .encode_lower(&mut data_id);
    statement.insert(params![
        &*data_id,
        source,
        encoded.data,
        encoded.timestamp_ns,
        encoded.transport,
    ])
}

/// The `sources` ids the writer has used, so most records need no lookup.
///
/// An id is cached only while the transaction that found or added it may still commit,
/// so the writer calls [`clear`](SourceCache::clear) whenever it rolls anything back.
#[derive(Default)]
pub(crate) struct SourceCache {
    hasher: RandomState,
    /// Keyed by the hash of the source columns; a colliding entry is replaced.
    ids: HashMap<u64, (SourceKey, i64)>,
}

/// The source columns of a record.
#[derive(Debug)]
struct SourceKey {
    area_id: Uuid,
    area_name: String,
    layer_id: Uuid,
    layer_name: String,
    kind_name: String,
    device_id: String,
    device_name: String,
    data_type: String,
}

impl SourceKey {
    fn of(record: &Record) -> SourceKey {
        SourceKey {
            area_id: record.area_id,
            area_name: record.area_name.clone(),
            layer_id: record.layer_id,
            layer_name: record.layer_name.clone(),
            kind_name: record.kind_name.clone(),
            device_id: record.physical_device_id.clone(),
            device_name: record.physical_device_name.clone(),
            data_type: record.data_type.clone(),
        }
    }

    fn matches(&self, record: &Record) -> bool {
        self.area_id == record.area_id
            && self.area_name == record.area_name
            && self.layer_id == record.layer_id
            && self.layer_name == record.layer_name
            && self.kind_name == record.kind_name
            && self.device_id == record.physical_device_id
            && self.device_name == record.physical_device_name
            && self.data_type == record.data_type
    }
}

impl SourceCache {
    /// Returns the id of the `sources` row of `record`, adding the row when the file
    /// has none. Must run inside the transaction that inserts the record.
    pub(crate) fn id(&mut self, conn: &Connection, record: &Record) -> rusqlite::Result<i64> {
        let hash = self.hasher.hash_one((
            record.area_id,
            &record.area_name,
            record.layer_id,
            &record.layer_name,
            &record.kind_name,
            &record.physical_device_id,
            &record.physical_device_name,
            &record.data_type,
        ));
        if let Some((key, id)) = self.ids.get(&hash)
            && key.matches(record)
        {
            return Ok(*id);
        }
        let id = find_or_add_source(conn, record)?;
        if self.ids.len() >= MAX_CACHED_SOURCES {
            self.ids.clear();
        }
        self.ids.insert(hash, (SourceKey::of(record), id));
        Ok(id)
    }

    /// Forgets every id, for use after a rollback.
    pub(crate) fn clear(&mut self) {
        self.ids.clear();
    }
}

fn find_or_add_source(conn: &Connection, record: &Record) -> rusqlite::Result<i64> {
    let mut area_id = Uuid::encode_buffer();
    let mut layer_id = Uuid::encode_buffer();
    let values = params![
        &*record.area_id.hyphenated().encode_lower(&mut area_id),
        record.area_name,
        &*record.layer_id.hyphenated().encode_lower(&mut layer_id),
        record.layer_name,
        record.kind_name,
        record.physical_device_id,
        record.physical_device_name,
        record.data_type,
    ];
    let found = conn
        .prepare_cached(FIND_SOURCE_SQL)?
        .query_row(values, |row| row.get(0))
        .optional()?;
    match found {
        Some(id) => Ok(id),
        None => conn.prepare_cached(INSERT_SOURCE_SQL)?.insert(values),
    }
}

/// Decodes a row selected with [`SELECT_COLUMNS`].
///
/// # Errors
///
/// [`StoreError::Decode`] naming the first column that has the wrong type or an
/// unparsable value.
pub(crate) fn decode_row(row: &Row<'_>) -> Result<StoredRecord, StoreError> {
    let seq: i64 = row.get(0).map_err(|source| StoreError::Read { source })?;
    let column = ColumnReader { row, seq };
    let record = Record {
        data_id: column.parse::<DataId>(1, "data_id")?,
        area_id: column.parse::<Uuid>(2, "area_id")?,
        area_name: column.get(3, "area_name")?,
        layer_id: column.parse::<Uuid>(4, "layer_id")?,
        layer_name: column.get(5, "layer_name")?,
        kind_name: column.get(6, "kind_name")?,
        physical_device_id: column.get(7, "device_id")?,
        physical_device_name: column.get(8, "device_name")?,
        data_type: column.get(9, "data_type")?,
        data: column.json(10, "data")?,
        timestamp: DateTime::from_timestamp_nanos(column.get(11, "timestamp_ns")?),
        transport: column.json(12, "transport")?,
    };
    Ok(StoredRecord {
        cursor: Cursor::from_seq(seq),
        record,
    })
}

/// Reads columns of one row and names the column in every error.
struct ColumnReader<'a, 'row> {
    row: &'a Row<'row>,
    seq: i64,
}

impl ColumnReader<'_, '_> {
    fn error(
        &self,
        column: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> StoreError {
        let seq = self.seq;
        move |source| StoreError::Decode {
            seq,
            column,
            source,
        }
    }

    fn get<T: FromSql>(&self, index: usize, column: &'static str) -> Result<T, StoreError> {
        self.row
            .get(index)
            .map_err(|err| self.error(column)(Box::new(err)))
    }

    fn parse<T>(&self, index: usize, column: &'static str) -> Result<T, StoreError>
    where
        T: std::str::FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        let text: String = self.get(index, column)?;
        text.parse()
            .map_err(|err: T::Err| self.error(column)(Box::new(err)))
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<T, StoreError> {
        let text: String = self.get(index, column)?;
        serde_json::from_str(&text).map_err(|err| self.error(column)(Box::new(err)))
    }
}
