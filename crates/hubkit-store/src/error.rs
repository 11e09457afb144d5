use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hubkit_model::DataId;

/// Error returned by the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The folder that should contain the database could not be created.
    #[error("failed to create folder {path} for the database")]
    CreateFolder {
        /// Folder that could not be created.
        path: PathBuf,
        /// Error from the file system.
        #[source]
        source: std::io::Error,
    },

    /// The database file could not be opened or configured.
    #[error("failed to open database {path}")]
    Open {
        /// Path of the database file.
        path: PathBuf,
        /// Error from SQLite.
        #[source]
        source: rusqlite::Error,
    },

    /// The database kept a journal mode other than WAL, which happens on file systems
    /// without shared memory support.
    #[error(
        "journal mode of database {path} is {mode:?} after setting it to wal; use a local file system"
    )]
    NotWal {
        /// Path of the database file.
        path: PathBuf,
        /// Journal mode that SQLite reported.
        mode: String,
    },

    /// The writer thread could not be started.
    #[error("failed to start the store writer thread")]
    SpawnWriter {
        /// Error from the operating system.
        #[source]
        source: std::io::Error,
    },

    /// The database has a schema version this code cannot read, because it is newer than
    /// the newest supported version or negative.
    #[error(
        "database {path} has schema version {found}; this hubkit-store supports versions 0 to {supported}, so upgrade hubkit or use another file"
    )]
    UnsupportedSchema {
        /// Path of the database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// Newest schema version this code supports.
        supported: i64,
    },

    /// A schema migration failed and was rolled back.
    #[error("failed to migrate database {path} to schema version {version}")]
    Migrate {
        /// Path of the database file.
        path: PathBuf,
        /// Version the failed migration would have produced.
        version: i64,
        /// Error from SQLite.
        #[source]
        source: rusqlite::Error,
    },

    /// A record's timestamp cannot be stored as nanoseconds in an `i64`.
    #[error(
        "timestamp {timestamp} of record {data_id} is out of range; it must be from 1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z"
    )]
    TimestampOutOfRange {
        /// Id of the record.
        data_id: DataId,
        /// The rejected timestamp.
        timestamp: DateTime<Utc>,
    },

    /// A stored file's receipt time is outside the range of `i64` nanoseconds.
    #[error("stored file {path} has a receipt time outside the years 1677 to 2262")]
    FileTimestampOutOfRange {
        /// The file's relative path.
        path: String,
    },

    /// A record's data or transport could not be serialized as JSON.
    #[error("failed to serialize the {column} of record {data_id} as JSON")]
    Encode {
        /// Id of the record.
        data_id: DataId,
        /// Column being serialized.
        column: &'static str,
        /// Error from serde_json.
        #[source]
        source: serde_json::Error,
    },

    /// Writing a batch failed, so none of its records were stored. The writer goes on
    /// with the next batch.
    #[error(
        "failed to write a request of {records} records and its other rows (files, raw \
         requests, dead letters, action runs) to the database"
    )]
    Write {
        /// Number of records of the failed request.
        records: usize,
        /// Error from SQLite, shared by every request of the failed batch.
        #[source]
        source: Arc<rusqlite::Error>,
    },

    /// A read query failed.
    #[error("failed to read records from the database")]
    Read {
        /// Error from SQLite.
        #[source]
        source: rusqlite::Error,
    },

    /// A stored row could not be decoded into a record.
    #[error("stored record {seq} has an invalid {column} column")]
    Decode {
        /// Cursor of the row.
        seq: i64,
        /// Column that failed to decode.
        column: &'static str,
        /// Reason the value was rejected.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A cursor string is not a valid cursor.
    #[error(
        "cursor {value:?} is invalid; it must be a decimal integer from 0 to 9223372036854775807"
    )]
    InvalidCursor {
        /// The rejected text.
        value: String,
    },

    /// A blocking read task panicked or was cancelled by a runtime shutdown.
    #[error("read task failed")]
    ReadTask {
        /// Error from tokio.
        #[source]
        source: tokio::task::JoinError,
    },

    /// An action run's id is not 32 hex digits.
    #[error(
        "action run id {id:?} is invalid; it must be 32 hex digits without dashes, such as a UUID in simple form"
    )]
    InvalidActionRunId {
        /// The rejected id.
        id: String,
    },

    /// An action run refers to a record index outside the records of its write, so
    /// nothing of the write was stored.
    #[error(
        "action run {id} refers to record index {index}, but its write has {records} records; use an index below {records}, or none"
    )]
    ActionRunRecordOutOfRange {
        /// Id of the run.
        id: String,
        /// The rejected index.
        index: usize,
        /// Number of records in the write.
        records: usize,
    },

    /// An action run status is not one of `pending`, `running`, `succeeded` or `failed`.
    #[error(
        "action run status {value:?} is invalid; it must be pending, running, succeeded or failed"
    )]
    InvalidActionRunStatus {
        /// The rejected text.
        value: String,
    },

    /// The steps given for a finished action run are not a JSON array.
    #[error("steps of action run {id} are invalid; they must be a JSON array")]
    InvalidActionRunSteps {
        /// Id of the run.
        id: String,
    },

    /// No running action run has the id, because it was never claimed, was already
    /// finished, or does not exist.
    #[error("action run {id} is not running; only a claimed run can be finished")]
    ActionRunNotRunning {
        /// Id of the run.
        id: String,
    },

    /// Claiming, finishing or requeuing action runs failed, and the change was rolled
    /// back.
    #[error("failed to {operation} in the database")]
    UpdateActionRuns {
        /// The operation that failed, such as `claim action runs`.
        operation: &'static str,
        /// Error from SQLite.
        #[source]
        source: rusqlite::Error,
    },

    /// A stored action run row could not be decoded.
    #[error("stored action run {id} has an invalid {column} column")]
    DecodeActionRun {
        /// Id of the run.
        id: String,
        /// Column that failed to decode.
        column: &'static str,
        /// Reason the value was rejected.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The store was closed, or its writer thread stopped.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Returns whether the failure is SQLite finding the disk full (`SQLITE_FULL`).
    pub fn is_storage_full(&self) -> bool {
        let source = match self {
            StoreError::Write { source, .. } => source.as_ref(),
            _ => return false,
        };
        source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
    }
}
