//! Opening, migrations, pragmas, encoding and durability.

use chrono::DateTime;
use hubkit_model::{HttpTransport, Transport};
use rusqlite::Connection;

use super::{db_path, open, record, sample, tempdir};
use crate::{RecordQuery, Store, StoreError, StoreOptions, Synchronous};

fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version is readable")
}

#[tokio::test]
async fn record_round_trips_every_field() {
    let folder = tempdir();
    let store = open(&folder);
    let mut original = record(
        "Office 東京",
        "Webhooks",
        "sensor-a",
        DateTime::from_timestamp_nanos(1_631_492_802_594_348_934),
    );
    original.data = serde_json::json!({
        "temperature": 25.5,
        "tiny": 5e-324,
        "sum": 0.30000000000000004,
        "max": 1.7976931348623157e308,
        // serde_json parses these one ulp off unless its float_roundtrip feature is on.
        "exact": [1.947700395895162e-169, -1.490143767845386e129, 6.162599865641032e196],
        "big": u64::MAX,
        "negative": i64::MIN,
        "nested": {"list": [1, "two", null, true], "text": "line\nbreak \"quoted\""},
    });
    let mut second = sample(1);
    second.transport = Transport::Http(HttpTransport {
        query: None,
        remote_address: "[::1]:443".into(),
        method: "PUT".into(),
        content_type: None,
        tls: false,
    });
    second.data = serde_json::Value::Null;

    let cursors = store
        .insert(vec![original.clone(), second.clone()])
        .await
        .expect("insert succeeds");
    let page = store
        .query(RecordQuery {
            order: crate::Order::Asc,
            ..RecordQuery::default()
        })
        .await
        .expect("query succeeds");

    assert_eq!(page.records.len(), 2);
    assert_eq!(page.records[0].record, original);
    assert_eq!(page.records[1].record, second);
    assert_eq!(page.records[0].cursor, cursors[0]);
    assert_eq!(page.records[1].cursor, cursors[1]);
}

#[tokio::test]
async fn records_view_shows_timestamp_as_rfc3339_nanos() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert(vec![sample(0)])
        .await
        .expect("insert succeeds");
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let (text, nanos): (String, i64) = conn
        .query_row("SELECT timestamp, timestamp_ns FROM records", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("row exists");
    assert_eq!(text, "2021-09-13T00:26:42.594348934Z");
    assert_eq!(nanos, 1_631_492_802_594_348_934);
}

#[tokio::test]
async fn records_view_floors_timestamps_before_1970() {
    let folder = tempdir();
    let store = open(&folder);
    let mut early = sample(0);
    early.timestamp = DateTime::from_timestamp_nanos(-1_500_000_001);
    store.insert(vec![early]).await.expect("insert succeeds");
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let text: String = conn
        .query_row("SELECT timestamp FROM records", [], |row| row.get(0))
        .expect("row exists");
    assert_eq!(text, "1969-12-31T23:59:58.499999999Z");
}

#[tokio::test]
async fn records_of_one_source_share_one_sources_row() {
    let folder = tempdir();
    let store = open(&folder);
    let renamed = {
        let mut record = sample(2);
        record.layer_name = "Renamed".into();
        record
    };
    store
        .insert(vec![sample(0), sample(1)])
        .await
        .expect("insert succeeds");
    store
        .insert(vec![renamed.clone(), sample(3)])
        .await
        .expect("insert succeeds");
    store.close().await;

    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let sources: i64 = conn
        .query_row("SELECT count(*) FROM sources", [], |row| row.get(0))
        .expect("count succeeds");
    assert_eq!(sources, 2, "a renamed layer is a second source");
    let reopened = open(&folder);
    let page = reopened
        .query(RecordQuery {
            order: crate::Order::Asc,
            ..RecordQuery::default()
        })
        .await
        .expect("query succeeds");
    let layers: Vec<&str> = page
        .records
        .iter()
        .map(|stored| stored.record.layer_name.as_str())
        .collect();
    assert_eq!(layers, ["Webhooks", "Webhooks", "Renamed", "Webhooks"]);
    reopened.close().await;
}

#[tokio::test]
async fn rolled_back_source_is_added_again() {
    let folder = tempdir();
    let store = open(&folder);
    super::write::reject_marked_records(&store).await;
    let mut new_source = sample(1);
    new_source.area_name = "Warehouse".into();
    // The marked record makes the whole request fail after the new source was added.
    let err = store
        .insert(vec![new_source.clone(), super::write::marked(2)])
        .await
        .expect_err("insert fails");
    assert!(
        matches!(err, StoreError::Write { .. }),
        "unexpected error {err:?}"
    );

    let mut retried = new_source;
    retried.data_id = hubkit_model::DataId::new();
    store
        .insert(vec![retried.clone()])
        .await
        .expect("insert succeeds");
    let page = store
        .query(RecordQuery {
            area: Some("Warehouse".into()),
            ..RecordQuery::default()
        })
        .await
        .expect("query succeeds");
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].record, retried);
    store.close().await;
}

#[test]
fn version_1_file_migrates_with_its_records() {
    let folder = tempdir();
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    conn.execute_batch(crate::schema::MIGRATIONS[0])
        .expect("version 1 schema is created");
    conn.pragma_update(None, "user_version", 1)
        .expect("user_version is writable");
    let rows = [
        ("0190b1a2c3d4e5f60718293a4b5c6d7e", "Office", "Webhooks", 10),
        ("0190b1a2c3d4e5f60718293a4b5c6d7f", "Lab", "Webhooks", 11),
        ("0190b1a2c3d4e5f60718293a4b5c6d80", "Office", "Webhooks", 12),
    ];
    for (data_id, area, layer, seconds) in rows {
        conn.execute(
            "INSERT INTO records (data_id, area_id, area_name, layer_id, layer_name, \
             kind_name, device_id, device_name, data_type, data, timestamp_ns, timestamp, \
             transport) VALUES (?1, '05b7483c-acd5-5f4e-b230-8f0181f85445', ?2, \
             'd01037a6-e80c-531e-a9a1-0b071f8423c6', ?3, 'Webhook-JSON', '2bd3d393b13a', \
             'sensor-data', 'json', '{\"t\":1}', ?4, 'ignored', \
             '{\"Protocol\":\"http\",\"RemoteAddress\":\"127.0.0.1:1\",\"Method\":\"POST\",\"Tls\":true}')",
            rusqlite::params![data_id, area, layer, seconds * 1_000_000_000_i64],
        )
        .expect("version 1 row is inserted");
    }
    drop(conn);

    let store = open(&folder);
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    assert_eq!(user_version(&conn), 8);
    let sources: i64 = conn
        .query_row("SELECT count(*) FROM sources", [], |row| row.get(0))
        .expect("count succeeds");
    assert_eq!(sources, 2);
    let migrated: Vec<(i64, String, String, String)> = conn
        .prepare("SELECT seq, data_id, area_name, timestamp FROM records ORDER BY seq")
        .expect("statement prepares")
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("query runs")
        .collect::<Result<_, _>>()
        .expect("rows read");
    let expected: Vec<(i64, String, String, String)> = rows
        .iter()
        .zip(1..)
        .map(|((data_id, area, _, seconds), seq)| {
            (
                seq,
                (*data_id).to_owned(),
                (*area).to_owned(),
                format!("1970-01-01T00:00:{seconds}.000000000Z"),
            )
        })
        .collect();
    assert_eq!(migrated, expected);
    assert_eq!(store.record_count().expect("count succeeds"), 3);
}

#[tokio::test]
async fn fresh_file_gets_the_newest_user_version() {
    let folder = tempdir();
    open(&folder).close().await;
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    assert_eq!(user_version(&conn), 8);
}

#[tokio::test]
async fn open_creates_missing_folders() {
    let folder = tempdir();
    let path = folder.path().join("a").join("b").join("hub.db");
    let store = Store::open(&path, StoreOptions::default()).expect("store opens");
    store.close().await;
    assert!(path.is_file());
}

#[tokio::test]
async fn reopening_keeps_data() {
    let folder = tempdir();
    let store = open(&folder);
    let cursors = store
        .insert(vec![sample(0), sample(1)])
        .await
        .expect("insert succeeds");
    store.close().await;

    let reopened = open(&folder);
    assert_eq!(reopened.record_count().expect("count succeeds"), 2);
    let next = reopened
        .insert(vec![sample(2)])
        .await
        .expect("insert succeeds");
    assert!(next[0] > cursors[1], "cursors keep growing after reopening");
    reopened.close().await;
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    assert_eq!(user_version(&conn), 8);
}

#[test]
fn unsupported_user_version_is_rejected() {
    for version in [99, -1] {
        let folder = tempdir();
        let conn = Connection::open(db_path(&folder)).expect("database opens");
        conn.pragma_update(None, "user_version", version)
            .expect("user_version is writable");
        drop(conn);

        let err = Store::open(&db_path(&folder), StoreOptions::default())
            .err()
            .expect("open fails");
        let message = err.to_string();
        let versions = match err {
            StoreError::UnsupportedSchema {
                found, supported, ..
            } => Some((found, supported)),
            _ => None,
        };
        assert_eq!(versions, Some((version, 8)), "unexpected error {err:?}");
        assert!(
            message.contains(&format!("schema version {version}")),
            "{message}"
        );
        assert!(message.contains("versions 0 to 8"), "{message}");
    }
}

#[test]
fn non_database_file_is_rejected() {
    let folder = tempdir();
    std::fs::write(db_path(&folder), vec![b'x'; 4096]).expect("file is writable");
    let err = Store::open(&db_path(&folder), StoreOptions::default())
        .err()
        .expect("open fails");
    assert!(
        matches!(err, StoreError::Open { .. }),
        "unexpected error {err:?}"
    );
}

#[tokio::test]
async fn journal_mode_is_wal() {
    let folder = tempdir();
    let store = open(&folder);
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal_mode is readable");
    assert_eq!(mode, "wal");
    store.close().await;
}

#[tokio::test]
async fn writer_pragmas_follow_options() {
    // SQLite reports synchronous as 1 for NORMAL and 2 for FULL.
    for (synchronous, expected) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
        let folder = tempdir();
        let options = StoreOptions {
            synchronous,
            ..StoreOptions::default()
        };
        let store = Store::open(&db_path(&folder), options).expect("store opens");
        let (actual, busy_timeout, mode, autocheckpoint, size_limit) = store
            .with_writer_connection(|conn| {
                let read = |name: &str| -> String {
                    conn.pragma_query_value(None, name, |row| {
                        row.get::<_, rusqlite::types::Value>(0)
                    })
                    .map(|value| match value {
                        rusqlite::types::Value::Integer(n) => n.to_string(),
                        rusqlite::types::Value::Text(text) => text,
                        other => format!("{other:?}"),
                    })
                    .expect("pragma is readable")
                };
                (
                    read("synchronous"),
                    read("busy_timeout"),
                    read("journal_mode"),
                    read("wal_autocheckpoint"),
                    read("journal_size_limit"),
                )
            })
            .await;
        assert_eq!(
            actual,
            expected.to_string(),
            "synchronous for {synchronous:?}"
        );
        assert_eq!(busy_timeout, "5000");
        assert_eq!(mode, "wal");
        assert_eq!(autocheckpoint, "4000");
        assert_eq!(size_limit, (64 * 1024 * 1024).to_string());
        store.close().await;
    }
}

#[tokio::test]
async fn awaited_insert_survives_drop_without_close() {
    let folder = tempdir();
    let store = open(&folder);
    for offset in 0..3 {
        store
            .insert(vec![sample(offset)])
            .await
            .expect("insert succeeds");
    }
    drop(store);

    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .expect("count succeeds");
    assert_eq!(count, 3);
}

#[tokio::test]
async fn out_of_range_timestamp_is_rejected() {
    let folder = tempdir();
    let store = open(&folder);
    let mut late = sample(0);
    late.timestamp = DateTime::from_timestamp(10_413_792_000, 0).expect("year 2300 is valid");
    let err = store
        .insert(vec![sample(1), late])
        .await
        .expect_err("insert fails");
    assert!(
        matches!(err, StoreError::TimestampOutOfRange { .. }),
        "unexpected error {err:?}"
    );
    assert_eq!(store.record_count().expect("count succeeds"), 0);
}

#[tokio::test]
async fn closed_database_file_holds_every_record() {
    let folder = tempdir();
    let store = open(&folder);
    for offset in 0..50 {
        store
            .insert(vec![sample(offset)])
            .await
            .expect("insert succeeds");
    }
    // A query leaves a reader connection open in the pool, so the writer's close is not
    // the last one.
    store
        .query(RecordQuery::default())
        .await
        .expect("query succeeds");
    store.close().await;

    let copy = tempdir();
    std::fs::copy(db_path(&folder), db_path(&copy)).expect("database file copies");
    let conn = Connection::open(db_path(&copy)).expect("copy opens");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .expect("count succeeds");
    assert_eq!(count, 50, "the database file alone holds every record");
}
