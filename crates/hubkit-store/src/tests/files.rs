//! Stored files: linking, lookups, retention marks and the version 3 migration.

use rusqlite::Connection;

use super::{db_path, open, sample, tempdir, time};
use crate::{CameraWrite, FileRemoval, NewCameraRequest, NewFile, RecordQuery};

fn new_file(owner: &str, path: &str, offset_seconds: i64) -> NewFile {
    NewFile {
        owner: owner.into(),
        path: path.into(),
        media_type: "image/jpeg".into(),
        size: 1234,
        sha256: "ab".repeat(32),
        received_at: time(offset_seconds),
    }
}

#[tokio::test]
async fn file_is_linked_to_every_record() {
    let folder = tempdir();
    let store = open(&folder);
    let file = new_file("owner", "owner/20210913/a.jpg", 0);
    let cursors = store
        .insert_with_file(vec![sample(0), sample(0)], file.clone())
        .await
        .expect("insert succeeds");
    assert_eq!(cursors.len(), 2);

    let found = store
        .find_file("owner/20210913/a.jpg")
        .await
        .expect("lookup succeeds")
        .expect("file is found");
    assert_eq!(found.file, file);
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let links: Vec<i64> = conn
        .prepare("SELECT seq FROM file_records WHERE file = ?1 ORDER BY seq")
        .expect("statement prepares")
        .query_map([found.id], |row| row.get(0))
        .expect("query runs")
        .collect::<Result<_, _>>()
        .expect("rows read");
    let seqs: Vec<i64> = cursors.iter().map(|cursor| cursor.seq()).collect();
    assert_eq!(links, seqs);
    store.close().await;
}

#[tokio::test]
async fn camera_rows_commit_with_their_records() {
    let folder = tempdir();
    let store = open(&folder);
    let raw = new_file("cam", "cam/20210913/raw.http", 0);
    let image = new_file("cam", "cam/20210913/image.jpg", 0);
    let cursors = store
        .insert_camera(
            vec![sample(0), sample(0), sample(0)],
            CameraWrite {
                files: vec![(raw, vec![0, 1, 2]), (image, vec![1, 7])],
                raw: Some(NewCameraRequest {
                    id: "0192a7c3e5f04c1b8a9d2e3f4a5b6c7d".into(),
                    camera: "cam".into(),
                    received_at: time(0),
                    raw: b"GET /ipro/x HTTP/1.1\r\n\r\n".to_vec(),
                }),
                runs: Vec::new(),
            },
        )
        .await
        .expect("insert succeeds");
    let seqs: Vec<i64> = cursors.iter().map(|cursor| cursor.seq()).collect();
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let links = |path: &str| -> Vec<i64> {
        conn.prepare(
            "SELECT seq FROM file_records JOIN files ON files.id = file_records.file \
             WHERE path = ?1 ORDER BY seq",
        )
        .expect("statement prepares")
        .query_map([path], |row| row.get(0))
        .expect("query runs")
        .collect::<Result<_, _>>()
        .expect("rows read")
    };
    assert_eq!(links("cam/20210913/raw.http"), seqs);
    assert_eq!(links("cam/20210913/image.jpg"), vec![seqs[1]]);

    let kept = store
        .camera_request("0192a7c3e5f04c1b8a9d2e3f4a5b6c7d")
        .await
        .expect("lookup succeeds")
        .expect("request is kept");
    assert_eq!(kept.camera, "cam");
    assert_eq!(kept.received_at, time(0));
    assert_eq!(kept.raw, b"GET /ipro/x HTTP/1.1\r\n\r\n");
    let missing = store.camera_request("nope").await.expect("lookup succeeds");
    assert_eq!(missing, None);
    store.close().await;
}

#[tokio::test]
async fn unknown_path_is_not_found() {
    let folder = tempdir();
    let store = open(&folder);
    let found = store.find_file("owner/20210913/missing.jpg").await;
    assert_eq!(found.expect("lookup succeeds"), None);
    store.close().await;
}

#[tokio::test]
async fn live_files_are_listed_oldest_first() {
    let folder = tempdir();
    let store = open(&folder);
    for (path, offset) in [("o/20210913/b.jpg", 5), ("o/20210913/a.jpg", 1)] {
        store
            .insert_with_file(vec![sample(offset)], new_file("o", path, offset))
            .await
            .expect("insert succeeds");
    }
    store
        .insert_with_file(
            vec![sample(0)],
            new_file("other", "other/20210913/c.jpg", 0),
        )
        .await
        .expect("insert succeeds");

    let listed = store.live_files("o").await.expect("listing succeeds");
    let paths: Vec<&str> = listed.iter().map(|row| row.file.path.as_str()).collect();
    assert_eq!(paths, vec!["o/20210913/a.jpg", "o/20210913/b.jpg"]);
    store.close().await;
}

#[tokio::test]
async fn removal_marks_file_and_records() {
    let folder = tempdir();
    let store = open(&folder);
    let mut record = sample(0);
    record.data = serde_json::json!({"Path": "o/20210913/a.jpg", "Size": 1234});
    store
        .insert_with_file(vec![record], new_file("o", "o/20210913/a.jpg", 0))
        .await
        .expect("insert succeeds");
    store
        .insert(vec![sample(1)])
        .await
        .expect("insert succeeds");
    let id = store.live_files("o").await.expect("listing")[0].id;

    let removal = FileRemoval {
        id,
        reason: "max-age".into(),
    };
    let marked = store
        .mark_files_removed(vec![removal.clone()], time(100))
        .await
        .expect("marking succeeds");
    assert_eq!(marked, 1);
    let again = store
        .mark_files_removed(vec![removal], time(200))
        .await
        .expect("marking succeeds");
    assert_eq!(again, 0, "a file is marked once");

    assert!(store.live_files("o").await.expect("listing").is_empty());
    assert_eq!(
        store.find_file("o/20210913/a.jpg").await.expect("lookup"),
        None
    );
    let page = store.query(RecordQuery::default()).await.expect("query");
    // The default order is newest first.
    let data: Vec<&serde_json::Value> = page.records.iter().map(|r| &r.record.data).collect();
    assert_eq!(
        *data[1],
        serde_json::json!({
            "Path": "o/20210913/a.jpg",
            "Size": 1234,
            "Removed": {"At": "2021-09-13T00:28:22.594348934Z", "Reason": "max-age"}
        })
    );
    assert_eq!(*data[0], serde_json::json!({"device": "sensor-a"}));
    store.close().await;
}

#[tokio::test]
async fn removed_path_can_be_stored_again() {
    let folder = tempdir();
    let store = open(&folder);
    let path = "o/20210913/a.jpg";
    store
        .insert_with_file(vec![sample(0)], new_file("o", path, 0))
        .await
        .expect("insert succeeds");
    let id = store.live_files("o").await.expect("listing")[0].id;
    store
        .mark_files_removed(
            vec![FileRemoval {
                id,
                reason: "max-total-bytes".into(),
            }],
            time(1),
        )
        .await
        .expect("marking succeeds");
    store
        .insert_with_file(vec![sample(2)], new_file("o", path, 2))
        .await
        .expect("a new file may take the path");
    let found = store.find_file(path).await.expect("lookup").expect("found");
    assert_ne!(found.id, id);
    store.close().await;
}

#[tokio::test]
async fn duplicate_live_path_fails_alone() {
    let folder = tempdir();
    let store = open(&folder);
    let path = "o/20210913/a.jpg";
    store
        .insert_with_file(vec![sample(0)], new_file("o", path, 0))
        .await
        .expect("insert succeeds");
    let err = store
        .insert_with_file(vec![sample(1)], new_file("o", path, 1))
        .await
        .expect_err("two live files cannot share a path");
    assert!(matches!(err, crate::StoreError::Write { .. }), "{err:?}");
    assert_eq!(
        store.record_count().expect("count"),
        1,
        "the record rolled back"
    );
    store.close().await;
}
