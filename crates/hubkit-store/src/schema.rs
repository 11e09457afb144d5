use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::StoreError;
use crate::options::{BUSY_TIMEOUT, Synchronous, WAL_AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES};

/// Schema migrations: entry `i` turns schema version `i` into version `i + 1`, and
/// `PRAGMA user_version` stores the version a file has reached.
///
/// Version 2 stores the values that many records share only once. Each distinct
/// combination of area, layer, layer kind, device and data type is a row of `sources`.
/// A row of `record_data` contains only the record's own values and its source's id.
/// The view `records` joins the two back into one row per record, with the timestamp
/// also as RFC 3339 text, for queries and for people reading the file with `sqlite3`.
///
/// Every commit writes each b-tree page it changes to the write-ahead log, so each
/// index adds a page write to most commits. In the webhook benchmark (2-core VM, ext4,
/// about 6 records per commit) version 1 wrote about 6 pages per commit and version 2
/// writes about 3.5. Version 2 therefore keeps two b-trees per record: `seq` orders
/// pages and cursors, and `timestamp_ns` serves `since`/`until`. `data_id` has no
/// unique index; [`DataId::new`](hubkit_model::DataId::new) never repeats an id.
/// Area, layer and device filters are checked while SQLite walks rows in `seq` order,
/// which stops after one page of matches.
///
/// `seq` has no `AUTOINCREMENT`, so SQLite assigns `max(seq) + 1`. In a rough
/// measurement (64 tasks inserting one record each, 2-core VM, ext4) `AUTOINCREMENT` cut
/// insert throughput by about 15%.
// NOTE: cursors stay monotonic only while nothing deletes the newest row. A future
// retention job must keep that row, or a new migration must add AUTOINCREMENT.
// NOTE: a filter value that matches few rows makes the `seq` walk read most of the
// table: on the machine above, with a million rows, a layer holding 1% of them took
// 5 ms per page and an unknown layer 0.16 s. Add an index in a new migration if needed.
// NOTE: finding a record by DataId walks the whole table; an API that needs it should
// add an index on `data_id` in a new migration.
pub(crate) const MIGRATIONS: &[&str] = &[
    // Version 1: one wide table.
    "CREATE TABLE records (
        seq INTEGER PRIMARY KEY,
        data_id TEXT NOT NULL UNIQUE,
        area_id TEXT NOT NULL,
        area_name TEXT NOT NULL,
        layer_id TEXT NOT NULL,
        layer_name TEXT NOT NULL,
        kind_name TEXT NOT NULL,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        data_type TEXT NOT NULL,
        data TEXT NOT NULL,
        timestamp_ns INTEGER NOT NULL,
        timestamp TEXT NOT NULL,
        transport TEXT NOT NULL
    ) STRICT;
    CREATE INDEX records_timestamp ON records (timestamp_ns);",
    // Version 2: sources split out, the timestamp text moved into the view.
    "CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        area_id TEXT NOT NULL,
        area_name TEXT NOT NULL,
        layer_id TEXT NOT NULL,
        layer_name TEXT NOT NULL,
        kind_name TEXT NOT NULL,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        data_type TEXT NOT NULL,
        UNIQUE (area_id, area_name, layer_id, layer_name, kind_name, device_id,
            device_name, data_type)
    ) STRICT;
    INSERT INTO sources (area_id, area_name, layer_id, layer_name, kind_name, device_id,
            device_name, data_type)
        SELECT area_id, area_name, layer_id, layer_name, kind_name, device_id,
            device_name, data_type
        FROM records
        GROUP BY area_id, area_name, layer_id, layer_name, kind_name, device_id,
            device_name, data_type
        ORDER BY min(seq);
    CREATE TABLE record_data (
        seq INTEGER PRIMARY KEY,
        data_id TEXT NOT NULL,
        source INTEGER NOT NULL REFERENCES sources (id),
        data TEXT NOT NULL,
        timestamp_ns INTEGER NOT NULL,
        transport TEXT NOT NULL
    ) STRICT;
    INSERT INTO record_data (seq, data_id, source, data, timestamp_ns, transport)
        SELECT r.seq, r.data_id, s.id, r.data, r.timestamp_ns, r.transport
        FROM records AS r
        JOIN sources AS s ON s.area_id = r.area_id AND s.area_name = r.area_name
            AND s.layer_id = r.layer_id AND s.layer_name = r.layer_name
            AND s.kind_name = r.kind_name AND s.device_id = r.device_id
            AND s.device_name = r.device_name AND s.data_type = r.data_type
        ORDER BY r.seq;
    DROP TABLE records;
    CREATE INDEX record_data_timestamp ON record_data (timestamp_ns);
    CREATE VIEW records AS
        SELECT d.seq, d.data_id, s.area_id, s.area_name, s.layer_id, s.layer_name,
            s.kind_name, s.device_id, s.device_name, s.data_type, d.data, d.timestamp_ns,
            strftime('%Y-%m-%dT%H:%M:%S', d.timestamp_ns / 1000000000
                - (d.timestamp_ns % 1000000000 < 0), 'unixepoch')
                || printf('.%09dZ', (d.timestamp_ns % 1000000000 + 1000000000) % 1000000000)
                AS timestamp,
            d.transport
        FROM record_data AS d
        JOIN sources AS s ON s.id = d.source;",
    // Version 3: stored files and the records that refer to them. A file whose
    // retention removed it keeps its row, with `removed_ns` set; the partial indexes
    // cover the files still on disk.
    "CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        path TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        received_ns INTEGER NOT NULL,
        removed_ns INTEGER,
        removal_reason TEXT
    ) STRICT;
    CREATE UNIQUE INDEX files_live_path ON files (path) WHERE removed_ns IS NULL;
    CREATE INDEX files_live_owner ON files (owner, received_ns) WHERE removed_ns IS NULL;
    CREATE TABLE file_records (
        file INTEGER NOT NULL REFERENCES files (id),
        seq INTEGER NOT NULL REFERENCES record_data (seq),
        PRIMARY KEY (file, seq)
    ) STRICT, WITHOUT ROWID;",
    // Version 4: payloads that could not become records, and the last committed MQTT
    // message of each packet identifier per broker session, which recognises
    // redeliveries. The inbox has at most 65535 rows per session.
    "CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        received_ns INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        broker TEXT NOT NULL,
        device TEXT NOT NULL,
        topic TEXT NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        payload BLOB NOT NULL,
        reason TEXT NOT NULL
    ) STRICT;
    CREATE TABLE mqtt_inbox (
        session TEXT NOT NULL,
        pkid INTEGER NOT NULL,
        topic TEXT NOT NULL,
        payload_sha256 BLOB NOT NULL,
        received_ns INTEGER NOT NULL,
        PRIMARY KEY (session, pkid)
    ) STRICT, WITHOUT ROWID;",
    // Version 5: raw camera requests small enough to keep in the database. Storing them
    // here commits them with their records in one group commit, instead of a file and
    // two fsyncs per request. A camera that reports every second would otherwise add
    // 86,400 files a day. `id` is the text id that the records' `Data.Raw.Id` carries.
    "CREATE TABLE camera_requests (
        id TEXT PRIMARY KEY,
        camera TEXT NOT NULL,
        received_ns INTEGER NOT NULL,
        raw BLOB NOT NULL
    ) STRICT, WITHOUT ROWID;",
    // Version 6: action runs. A fired trigger's run commits in the same transaction as
    // the record that fired it, so the run is stored exactly when the record is. The
    // caller's 32-hex-digit `id` is unique, but `seq` is the primary key because it
    // orders runs by commit, which ids made by several processes need not follow.
    // Pending runs are claimed oldest first through `action_runs_status`, and pages list
    // newest first by `seq`. `data_id` is the record that fired the run, or NULL for a
    // run started through the API.
    "CREATE TABLE action_runs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        trigger TEXT,
        action TEXT NOT NULL,
        data_id TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
        input TEXT NOT NULL,
        steps TEXT NOT NULL DEFAULT '[]',
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_ns INTEGER NOT NULL,
        started_ns INTEGER,
        finished_ns INTEGER
    ) STRICT;
    CREATE INDEX action_runs_status ON action_runs (status, seq);
    CREATE INDEX action_runs_trigger ON action_runs (trigger, seq);",
    // Version 7: the `seq` of the record that fired a run. A run with a record no longer
    // stores a copy of the record in `input`; reading the run adds the record's fields.
    // Older rows keep their full input and a NULL `record_seq`.
    "ALTER TABLE action_runs ADD COLUMN record_seq INTEGER;",
    // Version 8: the queue of runs that triggers fired for records. Ingest writes one row
    // per record with the JSON array of its runs, instead of one `action_runs` row and
    // three index entries per run. A runner's claim turns rows into `action_runs` rows
    // when it takes their runs, and deletes them. `count` is the number of runs in `runs`,
    // and `first_id` the id of the first; the code of `action_runs::queue` describes the
    // form of `runs`.
    "CREATE TABLE action_queue (
        seq INTEGER PRIMARY KEY,
        data_id TEXT NOT NULL,
        record_seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        created_ns INTEGER NOT NULL,
        first_id TEXT NOT NULL,
        runs TEXT NOT NULL
    ) STRICT;",
];

/// Returns the newest schema version this code can migrate to.
pub(crate) fn supported_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).expect("the migration list is short")
}

/// Opens the writer connection: creates the file and its folder if missing, sets WAL,
/// `synchronous` and the busy timeout, and migrates the schema.
pub(crate) fn open_writer(path: &Path, synchronous: Synchronous) -> Result<Connection, StoreError> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| StoreError::CreateFolder {
            path: folder.to_owned(),
            source,
        })?;
    }
    let open_error = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    // Without SQLITE_OPEN_URI, so a path that starts with `file:` stays a path.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal {
            path: path.to_owned(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma_value())
        .map_err(open_error)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(open_error)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
        .map_err(open_error)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection to a database that [`open_writer`] prepared.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Applies every migration the file lacks, each in its own `IMMEDIATE` transaction.
///
/// # Errors
///
/// [`StoreError::UnsupportedSchema`] when the file's version is negative or newer than
/// this code, [`StoreError::Migrate`] when a step fails.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let supported = supported_version();
    for (sql, version) in MIGRATIONS.iter().zip(1_i64..) {
        let migrate_error = |source| StoreError::Migrate {
            path: path.to_owned(),
            version,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migrate_error)?;
        // Read the version under the write lock, so two processes opening the same
        // file never run a step twice.
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(migrate_error)?;
        if !(0..=supported).contains(&found) {
            return Err(StoreError::UnsupportedSchema {
                path: path.to_owned(),
                found,
                supported,
            });
        }
        if found >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(migrate_error)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_error)?;
        tx.commit().map_err(migrate_error)?;
        tracing::info!(store.path = %path.display(), schema.version = version, "migrated database");
    }
    Ok(())
}
