use chrono::{DateTime, Utc};
use hubkit_model::Record;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{SELECT_COLUMNS, decode_row};
use crate::{Cursor, StoreError, StoredRecord};

/// Largest number of records in one [`RecordPage`]; a larger [`RecordQuery::limit`] is
/// lowered to it.
pub const MAX_PAGE: usize = 1000;

/// [`RecordQuery::limit`] of [`RecordQuery::default`].
pub const DEFAULT_PAGE: usize = 100;

/// Order of the records of a page, by cursor, which is commit order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Newest first: the highest cursor first.
    #[default]
    Desc,
    /// Oldest first: the lowest cursor first.
    Asc,
}

/// Filters and page position of a [`Store::query`](crate::Store::query).
///
/// Every filter that is set must match. Text filters compare exactly, with case.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordQuery {
    /// Matches `AreaId` (in any form that parses as a UUID) or `AreaName`.
    pub area: Option<String>,
    /// Matches `LayerId` (in any form that parses as a UUID) or `LayerName`.
    pub layer: Option<String>,
    /// Matches `PhysicalDeviceId` or `PhysicalDeviceName`.
    pub device: Option<String>,
    /// Earliest `Timestamp` to include.
    pub since: Option<DateTime<Utc>>,
    /// `Timestamp` from which records are left out.
    pub until: Option<DateTime<Utc>>,
    /// Maximum number of records in the page, clamped to `1..=MAX_PAGE`.
    pub limit: usize,
    /// Cursor of the last record already seen: the page continues after it in `order`.
    pub cursor: Option<Cursor>,
    /// Order of the page.
    pub order: Order,
}

impl Default for RecordQuery {
    fn default() -> Self {
        RecordQuery {
            area: None,
            layer: None,
            device: None,
            since: None,
            until: None,
            limit: DEFAULT_PAGE,
            cursor: None,
            order: Order::Desc,
        }
    }
}

/// One page of query results.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordPage {
    /// Matching records in the requested order.
    pub records: Vec<StoredRecord>,
    /// Cursor to pass for the next page, set when this page is full. The next page
    /// may still be empty.
    pub next_cursor: Option<Cursor>,
}

impl RecordQuery {
    /// Returns the page size: `limit` clamped to `1..=MAX_PAGE`.
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }

    /// Returns whether `record` passes the area, layer, device and time filters; the
    /// cursor and limit are ignored.
    pub fn matches(&self, record: &Record) -> bool {
        let id_or_name = |filter: &Option<String>, id: Uuid, name: &str| {
            filter
                .as_deref()
                .is_none_or(|value| name == value || parse_uuid(value) == Some(id))
        };
        let device_matches = self.device.as_deref().is_none_or(|value| {
            record.physical_device_id == value || record.physical_device_name == value
        });
        id_or_name(&self.area, record.area_id, &record.area_name)
            && id_or_name(&self.layer, record.layer_id, &record.layer_name)
            && device_matches
            && self.since.is_none_or(|since| record.timestamp >= since)
            && self.until.is_none_or(|until| record.timestamp < until)
    }

    /// Runs the query on `conn`.
    pub(crate) fn run(&self, conn: &Connection) -> Result<RecordPage, StoreError> {
        let (sql, values) = self.to_sql();
        let read_error = |source| StoreError::Read { source };
        let mut statement = conn.prepare_cached(&sql).map_err(read_error)?;
        let mut rows = statement
            .query(params_from_iter(values))
            .map_err(read_error)?;
        let mut records = Vec::new();
        while let Some(row) = rows.next().map_err(read_error)? {
            records.push(decode_row(row)?);
        }
        let next_cursor = if records.len() == self.page_size() {
            records.last().map(|stored| stored.cursor)
        } else {
            None
        };
        Ok(RecordPage {
            records,
            next_cursor,
        })
    }

    /// Builds the `SELECT` statement and its parameters.
    fn to_sql(&self) -> (String, Vec<Value>) {
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();

        let id_or_name = [
            (&self.area, "(area_id = ? OR area_name = ?)"),
            (&self.layer, "(layer_id = ? OR layer_name = ?)"),
        ];
        for (filter, condition) in id_or_name {
            if let Some(value) = filter {
                let id = parse_uuid(value).map_or_else(|| value.clone(), |id| id.to_string());
                conditions.push(condition);
                values.push(Value::Text(id));
                values.push(Value::Text(value.clone()));
            }
        }
        if let Some(device) = &self.device {
            conditions.push("(device_id = ? OR device_name = ?)");
            values.push(Value::Text(device.clone()));
            values.push(Value::Text(device.clone()));
        }
        self.push_time_conditions(&mut conditions, &mut values);

        if let Some(cursor) = self.cursor {
            conditions.push(match self.order {
                Order::Desc => "seq < ?",
                Order::Asc => "seq > ?",
            });
            values.push(Value::Integer(cursor.seq()));
        }

        let mut sql = format!("SELECT {SELECT_COLUMNS} FROM records");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(match self.order {
            Order::Desc => " ORDER BY seq DESC LIMIT ?",
            Order::Asc => " ORDER BY seq ASC LIMIT ?",
        });
        let limit = i64::try_from(self.page_size()).expect("MAX_PAGE fits in i64");
        values.push(Value::Integer(limit));
        (sql, values)
    }

    /// Adds the `since` and `until` conditions. Stored timestamps are `i64` nanoseconds,
    /// so a bound outside that range either drops its condition or matches nothing.
    fn push_time_conditions(&self, conditions: &mut Vec<&str>, values: &mut Vec<Value>) {
        if let Some(since) = self.since {
            match since.timestamp_nanos_opt() {
                Some(nanos) => {
                    conditions.push("timestamp_ns >= ?");
                    values.push(Value::Integer(nanos));
                }
                None if since.timestamp() > 0 => conditions.push("0"),
                None => {}
            }
        }
        if let Some(until) = self.until {
            match until.timestamp_nanos_opt() {
                Some(nanos) => {
                    conditions.push("timestamp_ns < ?");
                    values.push(Value::Integer(nanos));
                }
                None if until.timestamp() < 0 => conditions.push("0"),
                None => {}
            }
        }
    }
}

fn parse_uuid(value: &str) -> Option<Uuid> {
    Uuid::parse_str(value).ok()
}
