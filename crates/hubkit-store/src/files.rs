//! Stored files: the `files` table, its link to records, and retention marks.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::StoreError;

/// A file on disk that a write refers to. It is stored in the same transaction as the
/// records, and linked to each of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFile {
    /// Owner that retention groups files by, such as a webhook's short id.
    pub owner: String,
    /// Path relative to the files folder.
    pub path: String,
    /// Media type, such as `image/jpeg`.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, as lower-case hex.
    pub sha256: String,
    /// Time the file was received.
    pub received_at: DateTime<Utc>,
}

/// A stored file as the store lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    /// Row id, used to mark the file removed.
    pub id: i64,
    /// The file's details as written.
    pub file: NewFile,
}

/// Retention's removal of a file, written into its records' `Data` under `Removed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRemoval {
    /// Row id of the file.
    pub id: i64,
    /// Reason, such as `max-age`.
    pub reason: String,
}

/// Statement that adds a `files` row.
const INSERT_FILE_SQL: &str = "INSERT INTO files (owner, path, media_type, size, sha256, \
     received_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Statement that links a `files` row to a record.
const LINK_SQL: &str = "INSERT INTO file_records (file, seq) VALUES (?1, ?2)";

const FILE_COLUMNS: &str = "id, owner, path, media_type, size, sha256, received_ns";

impl NewFile {
    /// Converts the receipt time to nanoseconds for the `received_ns` column.
    pub(crate) fn received_ns(&self) -> Result<i64, StoreError> {
        self.received_at
            .timestamp_nanos_opt()
            .ok_or_else(|| StoreError::FileTimestampOutOfRange {
                path: self.path.clone(),
            })
    }
}

/// Adds the `files` row of `file` and links it to the records at `seqs`. Runs inside the
/// transaction that inserted those records.
pub(crate) fn insert_file(
    conn: &Connection,
    file: &NewFile,
    received_ns: i64,
    seqs: impl IntoIterator<Item = i64>,
) -> rusqlite::Result<()> {
    let size = i64::try_from(file.size).unwrap_or(i64::MAX);
    let id = conn.prepare_cached(INSERT_FILE_SQL)?.insert(params![
        file.owner,
        file.path,
        file.media_type,
        size,
        file.sha256,
        received_ns
    ])?;
    let mut link = conn.prepare_cached(LINK_SQL)?;
    for seq in seqs {
        link.execute(params![id, seq])?;
    }
    Ok(())
}

/// Returns the file stored at `path` unless retention removed it.
pub(crate) fn find_file(conn: &Connection, path: &str) -> Result<Option<FileRow>, StoreError> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE path = ?1 AND removed_ns IS NULL");
    conn.prepare_cached(&sql)
        .and_then(|mut statement| statement.query_row([path], decode_file).optional())
        .map_err(|source| StoreError::Read { source })
}

/// Returns the files of `owner` that retention has not removed, oldest first.
pub(crate) fn live_files(conn: &Connection, owner: &str) -> Result<Vec<FileRow>, StoreError> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE owner = ?1 AND removed_ns IS NULL \
         ORDER BY received_ns, id"
    );
    let read = || -> rusqlite::Result<Vec<FileRow>> {
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map([owner], decode_file)?;
        rows.collect()
    };
    read().map_err(|source| StoreError::Read { source })
}

/// Marks files removed and adds `"Removed": {"At": ..., "Reason": ...}` to the `Data` of
/// every record linked to them, in one transaction. Returns how many files it marked;
/// files marked before are skipped.
pub(crate) fn mark_removed(
    conn: &mut Connection,
    removals: &[FileRemoval],
    at: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let at_ns = at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let at_text = hubkit_model::format_timestamp(&at);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut marked = 0;
    {
        let mut mark = tx.prepare_cached(
            "UPDATE files SET removed_ns = ?2, removal_reason = ?3 \
             WHERE id = ?1 AND removed_ns IS NULL",
        )?;
        let mut annotate = tx.prepare_cached(
            "UPDATE record_data SET data = json_set(data, '$.Removed', \
             json_object('At', ?2, 'Reason', ?3)) \
             WHERE seq IN (SELECT seq FROM file_records WHERE file = ?1)",
        )?;
        for removal in removals {
            if mark.execute(params![removal.id, at_ns, removal.reason])? == 0 {
                continue;
            }
            annotate.execute(params![removal.id, at_text, removal.reason])?;
            marked += 1;
        }
    }
    tx.commit()?;
    Ok(marked)
}

fn decode_file(row: &Row<'_>) -> rusqlite::Result<FileRow> {
    let size: i64 = row.get(4)?;
    let received_ns: i64 = row.get(6)?;
    Ok(FileRow {
        id: row.get(0)?,
        file: NewFile {
            owner: row.get(1)?,
            path: row.get(2)?,
            media_type: row.get(3)?,
            size: size.unsigned_abs(),
            sha256: row.get(5)?,
            received_at: DateTime::from_timestamp_nanos(received_ns),
        },
    })
}
