//! Conversion between [`Record`] and the columns of the `records` table.

use chrono::DateTime;
use hubkit_model::{DataId, Record, format_timestamp};
use rusqlite::types::FromSql;
use rusqlite::{Row, Statement, params};
use uuid::Uuid;

use crate::{Cursor, StoreError, StoredRecord};

/// Columns read by [`decode_row`], in its order. The `timestamp` text column is left
/// out, because `timestamp_ns` stores the same instant exactly.
pub(crate) const SELECT_COLUMNS: &str = "seq, data_id, area_id, area_name, layer_id, \
     layer_name, kind_name, device_id, device_name, data_type, data, timestamp_ns, \
     transport";

/// Statement that [`insert_row`] runs.
pub(crate) const INSERT_SQL: &str = "INSERT INTO records (data_id, area_id, area_name, \
     layer_id, layer_name, kind_name, device_id, device_name, data_type, data, \
     timestamp_ns, timestamp, transport) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// A record together with the column values that need formatting, prepared by the
/// caller's task so the writer thread only binds them.
#[derive(Debug)]
pub(crate) struct EncodedRecord {
    pub(crate) record: Record,
    data_id: String,
    area_id: String,
    layer_id: String,
    data: String,
    timestamp_ns: i64,
    timestamp: String,
    transport: String,
}

impl EncodedRecord {
    /// Formats the columns of `record`.
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
            data_id: data_id.to_string(),
            area_id: record.area_id.hyphenated().to_string(),
            layer_id: record.layer_id.hyphenated().to_string(),
            data,
            timestamp_ns,
            timestamp: format_timestamp(&record.timestamp),
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
) -> rusqlite::Result<i64> {
    let record = &encoded.record;
    statement.insert(params![
        encoded.data_id,
        encoded.area_id,
        record.area_name,
        encoded.layer_id,
        record.layer_name,
        record.kind_name,
        record.physical_device_id,
        record.physical_device_name,
        record.data_type,
        encoded.data,
        encoded.timestamp_ns,
        encoded.timestamp,
        encoded.transport,
    ])
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
