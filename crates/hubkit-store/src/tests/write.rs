//! Group commit, back-pressure, broadcast, failures and shutdown of the writer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::ErrorCode;

use super::{block_writer, db_path, open, sample, tempdir, wait_for_queue};
use hubkit_model::Record;

use crate::{CommitStats, Store, StoreError, StoreOptions};

/// Returns options whose observer appends every commit to the returned list.
fn observed(options: StoreOptions) -> (StoreOptions, Arc<Mutex<Vec<CommitStats>>>) {
    let commits = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&commits);
    let options = StoreOptions {
        commit_observer: Some(Arc::new(move |stats: &CommitStats| {
            seen.lock().expect("observer lock").push(*stats);
        })),
        ..options
    };
    (options, commits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_share_commits() {
    let folder = tempdir();
    let (options, commits) = observed(StoreOptions::default());
    let store = Store::open(&db_path(&folder), options).expect("store opens");

    let tasks: Vec<_> = (0..200)
        .map(|offset| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(vec![sample(offset)]).await })
        })
        .collect();
    let mut cursors = Vec::new();
    for task in tasks {
        let inserted = task
            .await
            .expect("task completes")
            .expect("insert succeeds");
        cursors.extend(inserted);
    }
    cursors.sort();
    cursors.dedup();

    let commits = commits.lock().expect("observer lock").clone();
    assert_eq!(cursors.len(), 200, "every insert gets its own cursor");
    assert_eq!(store.record_count().expect("count succeeds"), 200);
    assert_eq!(commits.iter().map(|c| c.records).sum::<usize>(), 200);
    assert_eq!(commits.iter().map(|c| c.requests).sum::<usize>(), 200);
    assert!(
        commits.len() < 200,
        "{} commits for 200 requests",
        commits.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_inserts_commit_in_batches_of_max_batch() {
    let folder = tempdir();
    let (options, commits) = observed(StoreOptions {
        max_batch: 50,
        ..StoreOptions::default()
    });
    let store = Store::open(&db_path(&folder), options).expect("store opens");
    let release = block_writer(&store).await;
    let tasks: Vec<_> = (0..200)
        .map(|offset| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(vec![sample(offset)]).await })
        })
        .collect();
    wait_for_queue(&store, 200).await;
    drop(release);
    for task in tasks {
        task.await
            .expect("task completes")
            .expect("insert succeeds");
    }

    let commits = commits.lock().expect("observer lock").clone();
    let sizes: Vec<usize> = commits.iter().map(|c| c.records).collect();
    assert_eq!(sizes, vec![50, 50, 50, 50]);
    assert!(commits.iter().all(|c| c.requests == 50));
}

#[tokio::test]
async fn insert_larger_than_max_batch_is_one_commit() {
    let folder = tempdir();
    let (options, commits) = observed(StoreOptions {
        max_batch: 2,
        ..StoreOptions::default()
    });
    let store = Store::open(&db_path(&folder), options).expect("store opens");
    let records: Vec<_> = (0..5).map(sample).collect();
    let cursors = store.insert(records).await.expect("insert succeeds");

    let commits = commits.lock().expect("observer lock").clone();
    assert_eq!(cursors.len(), 5);
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].records, 5);
    assert_eq!(commits[0].requests, 1);
}

#[tokio::test]
async fn empty_insert_returns_no_cursors() {
    let folder = tempdir();
    let store = open(&folder);
    let cursors = store.insert(Vec::new()).await.expect("insert succeeds");
    assert!(cursors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_makes_insert_wait() {
    let folder = tempdir();
    let store = Store::open(
        &db_path(&folder),
        StoreOptions {
            queue_capacity: 1,
            ..StoreOptions::default()
        },
    )
    .expect("store opens");
    let release = block_writer(&store).await;
    let first = tokio::spawn({
        let store = store.clone();
        async move { store.insert(vec![sample(0)]).await }
    });
    wait_for_queue(&store, 1).await;
    let mut second = tokio::spawn({
        let store = store.clone();
        async move { store.insert(vec![sample(1)]).await }
    });
    let waited = tokio::time::timeout(Duration::from_millis(100), &mut second).await;
    assert!(
        waited.is_err(),
        "second insert waits while the queue is full"
    );

    drop(release);
    first
        .await
        .expect("task completes")
        .expect("insert succeeds");
    second
        .await
        .expect("task completes")
        .expect("insert succeeds");
    assert_eq!(store.record_count().expect("count succeeds"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_insert_future_does_not_break_writer() {
    let folder = tempdir();
    let store = open(&folder);
    let release = block_writer(&store).await;
    let mut pending = Box::pin(store.insert(vec![sample(0)]));
    let waited = tokio::time::timeout(Duration::from_millis(50), &mut pending).await;
    assert!(waited.is_err(), "insert waits for the blocked writer");
    drop(pending);
    drop(release);

    let later = store.insert(vec![sample(1)]).await;
    assert!(later.is_ok(), "later insert fails: {later:?}");
    // The dropped request was queued, so it was written too.
    assert_eq!(store.record_count().expect("count succeeds"), 2);
}

#[tokio::test]
async fn subscriber_sees_commits_in_order() {
    let folder = tempdir();
    let store = open(&folder);
    let mut receiver = store.subscribe();
    let mut inserted = Vec::new();
    let mut expected_cursors = Vec::new();
    for batch in [vec![sample(0)], vec![sample(1), sample(2)], vec![sample(3)]] {
        inserted.extend(batch.clone());
        expected_cursors.extend(store.insert(batch).await.expect("insert succeeds"));
    }

    for (record, cursor) in inserted.iter().zip(&expected_cursors) {
        let stored = receiver.try_recv().expect("record was broadcast");
        assert_eq!(stored.cursor, *cursor);
        assert_eq!(&stored.record, record);
    }
    assert!(receiver.try_recv().is_err(), "nothing else was broadcast");
}

#[tokio::test]
async fn failed_insert_fails_alone() {
    let folder = tempdir();
    let store = open(&folder);
    reject_marked_records(&store).await;

    // Queue three requests behind the blocked writer so they share one batch.
    let release = block_writer(&store).await;
    let requests = [vec![sample(1)], vec![sample(2), marked(3)], vec![sample(4)]];
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|records| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(records).await })
        })
        .collect();
    wait_for_queue(&store, 3).await;
    drop(release);
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task completes"));
    }

    assert!(results[0].is_ok(), "first request: {:?}", results[0]);
    let message = match &results[1] {
        Err(StoreError::Write { records, source }) => Some((*records, source.to_string())),
        _ => None,
    };
    assert_eq!(
        message,
        Some((2, "rejected by the test".to_owned())),
        "second request: {:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "third request: {:?}", results[2]);
    assert_eq!(store.record_count().expect("count succeeds"), 2);
}

/// Makes the write connection reject every record made by [`marked`].
pub(super) async fn reject_marked_records(store: &Store) {
    store
        .with_writer_connection(|conn| {
            conn.execute_batch(
                "CREATE TEMP TRIGGER reject_marked BEFORE INSERT ON record_data \
                 WHEN NEW.data LIKE '%\"reject\"%' \
                 BEGIN SELECT RAISE(ABORT, 'rejected by the test'); END;",
            )
            .expect("trigger is created");
        })
        .await;
}

/// Returns a record that [`reject_marked_records`] makes fail.
pub(super) fn marked(offset: i64) -> Record {
    let mut record = sample(offset);
    record.data = serde_json::json!({"reject": true});
    record
}

/// Returns a record too large for the free pages of a capped database.
fn large(offset: i64) -> Record {
    let mut record = sample(offset);
    record.data = serde_json::json!({"payload": "x".repeat(200_000)});
    record
}

/// Sets `PRAGMA max_page_count` of the write connection; `None` caps the file at its
/// current size.
async fn set_max_page_count(store: &Store, pages: Option<i64>) {
    store
        .with_writer_connection(move |conn| {
            let current: i64 = conn
                .pragma_query_value(None, "page_count", |row| row.get(0))
                .expect("page_count is readable");
            conn.pragma_update(None, "max_page_count", pages.unwrap_or(current))
                .expect("max_page_count is writable");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_fails_batch_then_recovers() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert(vec![sample(0)])
        .await
        .expect("insert succeeds");
    let mut receiver = store.subscribe();

    set_max_page_count(&store, None).await;
    let release = block_writer(&store).await;
    let tasks: Vec<_> = (1..4)
        .map(|offset| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(vec![large(offset)]).await })
        })
        .collect();
    wait_for_queue(&store, 3).await;
    drop(release);
    for task in tasks {
        let err = task
            .await
            .expect("task completes")
            .expect_err("insert fails on a full database");
        let code = match &err {
            StoreError::Write { source, .. } => source.sqlite_error_code(),
            _ => None,
        };
        assert_eq!(code, Some(ErrorCode::DiskFull), "unexpected error {err:?}");
    }

    set_max_page_count(&store, Some(1_073_741_823)).await;
    let cursors = store.insert(vec![large(4)]).await.expect("insert succeeds");
    assert_eq!(store.record_count().expect("count succeeds"), 2);
    let stored = receiver.try_recv().expect("record was broadcast");
    assert_eq!(
        stored.cursor, cursors[0],
        "only the committed record was broadcast"
    );
}

#[tokio::test]
async fn panicking_observer_does_not_stop_writer() {
    let folder = tempdir();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let options = StoreOptions {
        commit_observer: Some(Arc::new(move |_: &CommitStats| {
            seen.fetch_add(1, Ordering::SeqCst);
            panic!("observer fails on purpose");
        })),
        ..StoreOptions::default()
    };
    let store = Store::open(&db_path(&folder), options).expect("store opens");
    for offset in 0..2 {
        let inserted = store.insert(vec![sample(offset)]).await;
        assert!(inserted.is_ok(), "insert {offset} fails: {inserted:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_writes_queued_inserts() {
    let folder = tempdir();
    let store = open(&folder);
    let release = block_writer(&store).await;
    let tasks: Vec<_> = (0..10)
        .map(|offset| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(vec![sample(offset)]).await })
        })
        .collect();
    wait_for_queue(&store, 10).await;
    let closing = tokio::spawn({
        let store = store.clone();
        async move { store.close().await }
    });
    wait_for_queue(&store, 11).await;
    drop(release);
    closing.await.expect("close completes");

    for task in tasks {
        let inserted = task.await.expect("task completes");
        assert!(inserted.is_ok(), "queued insert fails: {inserted:?}");
    }
    assert_eq!(store.record_count().expect("count succeeds"), 10);
}

#[tokio::test]
async fn insert_after_close_fails() {
    let folder = tempdir();
    let store = open(&folder);
    store.close().await;
    store.close().await;
    let err = store
        .insert(vec![sample(0)])
        .await
        .expect_err("insert fails");
    assert!(
        matches!(err, StoreError::Closed),
        "unexpected error {err:?}"
    );
    let page = store.query(crate::RecordQuery::default()).await;
    assert!(page.is_ok(), "query after close fails: {page:?}");
}
