//! Action runs: writes with records, claims, finishes, requeues, pages and the version 6
//! migration.

use rusqlite::Connection;
use serde_json::json;

use super::{block_writer, db_path, open, sample, tempdir, time, wait_for_queue};
use crate::{
    ActionRun, ActionRunQuery, ActionRunStatus, CameraWrite, FinishedRun, InboxKey, MqttWrite,
    NewActionRun, NewFile, Store, StoreError,
};

/// Returns the id of run `n`: 32 hex digits that sort in `n` order.
fn run_id(n: u32) -> String {
    format!("0193a0b1c2d37e4f8a9b{n:012x}")
}

/// Returns a run of the action `notify`, fired by `trigger` through record `record`.
fn new_run(n: u32, trigger: Option<&str>, record: Option<usize>) -> NewActionRun {
    NewActionRun {
        id: run_id(n),
        trigger: trigger.map(str::to_owned),
        action: "notify".into(),
        record,
        input: json!({"run": n, "text": "temperature above 30"}),
        created_at: time(i64::from(n)),
    }
}

/// Stores runs `1..=count` through the API path, one write each, so they commit in
/// `n` order.
async fn insert_api_runs(store: &Store, count: u32) {
    for n in 1..=count {
        store
            .insert_action_run(new_run(n, None, None))
            .await
            .expect("insert succeeds");
    }
}

/// Turns every queue row into pending runs, as a claim does before it takes them.
async fn take_queue(store: &Store) {
    store
        .with_writer_connection(|conn| {
            crate::action_runs::materialize(conn, usize::MAX, 0, 0).expect("queue rows convert");
        })
        .await;
}

/// Returns run `n` after turning the queue into runs.
async fn stored_run(store: &Store, n: u32) -> ActionRun {
    take_queue(store).await;
    store
        .action_run(&run_id(n))
        .await
        .expect("lookup succeeds")
        .expect("run is stored")
}

fn pending(store: &Store) -> u64 {
    store.pending_action_runs().expect("count succeeds")
}

fn ids(runs: &[ActionRun]) -> Vec<String> {
    runs.iter().map(|run| run.id.clone()).collect()
}

#[tokio::test]
async fn runs_commit_with_their_records() {
    let folder = tempdir();
    let store = open(&folder);
    let records = vec![sample(0), sample(1)];
    let fired_by = records[1].data_id;
    let record_fields = serde_json::to_value(&records[1]).expect("record serializes");
    let runs = vec![new_run(1, Some("hot"), Some(1)), new_run(2, None, None)];
    let cursors = store
        .insert_with_runs(records, runs)
        .await
        .expect("insert succeeds");

    assert_eq!(cursors.len(), 2);
    assert_eq!(store.record_count().expect("count succeeds"), 2);
    assert_eq!(pending(&store), 2);
    // The fired run waits in its record's queue row, with no copy of the record.
    let (count, first_id, queued): (i64, String, String) = store
        .with_writer_connection(|conn| {
            conn.query_row(
                "SELECT count, first_id, runs FROM action_queue",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .expect("row reads")
        })
        .await;
    assert_eq!(count, 1);
    assert_eq!(first_id, run_id(1));
    assert_eq!(
        queued,
        r#"[[null,"hot","notify",null,{"run":1,"text":"temperature above 30"},0]]"#
    );
    let page = store
        .action_runs(ActionRunQuery::default())
        .await
        .expect("list succeeds");
    assert_eq!(ids(&page.runs), [run_id(2)]);
    assert_eq!(page.queued, 1);
    let fired = stored_run(&store, 1).await;
    assert_eq!(fired.data_id, Some(fired_by));
    assert_eq!(fired.trigger.as_deref(), Some("hot"));
    assert_eq!(fired.action, "notify");
    assert_eq!(fired.status, ActionRunStatus::Pending);
    // The stored input has no copy of the record: reading it puts the record's fields
    // first, then the run's own keys.
    let mut expected = record_fields.as_object().expect("an object").clone();
    expected.insert("run".into(), json!(1));
    expected.insert("text".into(), json!("temperature above 30"));
    assert_eq!(fired.input, serde_json::Value::Object(expected));
    let stored: String = store
        .with_writer_connection(|conn| {
            conn.query_row("SELECT input FROM action_runs WHERE seq = 2", [], |row| {
                row.get(0)
            })
            .expect("row reads")
        })
        .await;
    assert_eq!(stored, r#"{"run":1,"text":"temperature above 30"}"#);
    assert_eq!(fired.steps, json!([]));
    assert_eq!(fired.error, None);
    assert_eq!(fired.attempts, 0);
    assert_eq!(fired.created_at, time(1));
    assert_eq!(fired.started_at, None);
    assert_eq!(fired.finished_at, None);
    assert_eq!(fired.duration(), None);
    let unlinked = stored_run(&store, 2).await;
    assert_eq!(
        unlinked.input,
        json!({"run": 2, "text": "temperature above 30"})
    );
    assert_eq!(unlinked.data_id, None);
    assert_eq!(unlinked.trigger, None);
    store.close().await;
}

#[tokio::test]
async fn out_of_range_record_index_is_rejected() {
    let folder = tempdir();
    let store = open(&folder);
    let err = store
        .insert_with_runs(vec![sample(0)], vec![new_run(1, Some("hot"), Some(1))])
        .await
        .expect_err("insert fails");
    let found = match &err {
        StoreError::ActionRunRecordOutOfRange { index, records, .. } => Some((*index, *records)),
        _ => None,
    };
    assert_eq!(found, Some((1, 1)), "unexpected error {err:?}");
    assert_eq!(store.record_count().expect("count succeeds"), 0);
    assert_eq!(pending(&store), 0);

    let err = store
        .insert_action_run(new_run(2, None, Some(0)))
        .await
        .expect_err("insert fails");
    assert!(
        matches!(err, StoreError::ActionRunRecordOutOfRange { .. }),
        "unexpected error {err:?}"
    );
    assert_eq!(pending(&store), 0);
    store.close().await;
}

#[tokio::test]
async fn invalid_run_id_is_rejected() {
    let folder = tempdir();
    let store = open(&folder);
    for id in [
        "",
        "0193a0b1-c2d3-7e4f-8a9b-000000000001",
        "xyz",
        &"0".repeat(33),
    ] {
        let mut run = new_run(1, None, None);
        run.id = id.to_owned();
        let err = store
            .insert_with_runs(vec![sample(0)], vec![run])
            .await
            .expect_err("insert fails");
        assert!(
            matches!(&err, StoreError::InvalidActionRunId { id: rejected } if rejected == id),
            "unexpected error {err:?} for {id:?}"
        );
    }
    assert_eq!(store.record_count().expect("count succeeds"), 0);
    store.close().await;
}

#[tokio::test]
async fn uppercase_run_id_is_stored_lowercase() {
    let folder = tempdir();
    let store = open(&folder);
    let mut run = new_run(1, None, None);
    run.id = run.id.to_ascii_uppercase();
    store.insert_action_run(run).await.expect("insert succeeds");

    let by_lower = store.action_run(&run_id(1)).await.expect("lookup succeeds");
    let by_upper = store
        .action_run(&run_id(1).to_ascii_uppercase())
        .await
        .expect("lookup succeeds");
    assert_eq!(by_lower.map(|run| run.id), Some(run_id(1)));
    assert_eq!(by_upper.map(|run| run.id), Some(run_id(1)));
    store.close().await;
}

#[tokio::test]
async fn failed_write_stores_no_runs() {
    let folder = tempdir();
    let store = open(&folder);
    let file = NewFile {
        owner: "cam".into(),
        path: "cam/20210913/image.jpg".into(),
        media_type: "image/jpeg".into(),
        size: 10,
        sha256: "ab".repeat(32),
        received_at: time(0),
    };
    store
        .insert_with_file(vec![sample(0)], file.clone())
        .await
        .expect("first file is stored");

    // The path is still live, so the unique index rejects the second file.
    let write = CameraWrite {
        files: vec![(file, vec![0])],
        raw: None,
        runs: vec![new_run(1, Some("motion"), Some(0))],
    };
    let err = store
        .insert_camera(vec![sample(1)], write)
        .await
        .expect_err("insert fails");
    assert!(
        matches!(err, StoreError::Write { .. }),
        "unexpected error {err:?}"
    );
    assert_eq!(store.record_count().expect("count succeeds"), 1);
    assert_eq!(pending(&store), 0);
    let run = store.action_run(&run_id(1)).await.expect("lookup succeeds");
    assert_eq!(run, None);
    store.close().await;
}

#[tokio::test]
async fn duplicate_direct_run_id_rolls_back_records() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert_action_run(new_run(1, None, None))
        .await
        .expect("first run is stored");
    let err = store
        .insert_with_runs(vec![sample(0)], vec![new_run(1, None, None)])
        .await
        .expect_err("insert fails");
    assert!(
        matches!(err, StoreError::Write { .. }),
        "unexpected error {err:?}"
    );
    assert_eq!(store.record_count().expect("count succeeds"), 0);
    assert_eq!(pending(&store), 1);
    store.close().await;
}

#[tokio::test]
async fn claim_renames_queued_duplicate_id() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert_action_run(new_run(1, None, None))
        .await
        .expect("first run is stored");
    store
        .insert_with_runs(vec![sample(0)], vec![new_run(1, Some("hot"), Some(0))])
        .await
        .expect("the record and its queued run are stored");
    assert_eq!(pending(&store), 2);

    let claimed = store
        .claim_action_runs(10, time(50))
        .await
        .expect("claim succeeds");
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].id, run_id(1));
    assert_eq!(claimed[0].trigger, None);
    assert_ne!(claimed[1].id, run_id(1));
    assert_eq!(claimed[1].trigger.as_deref(), Some("hot"));
    assert_eq!(pending(&store), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_request_in_batch_drops_only_its_runs() {
    let folder = tempdir();
    let store = open(&folder);
    super::write::reject_marked_records(&store).await;

    // Queue three requests behind the blocked writer so they share one batch.
    let release = block_writer(&store).await;
    let requests = [
        (vec![sample(1)], 1),
        (vec![super::write::marked(2)], 2),
        (vec![sample(3)], 3),
    ];
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(records, n)| {
            let store = store.clone();
            let runs = vec![new_run(n, Some("hot"), Some(0))];
            tokio::spawn(async move { store.insert_with_runs(records, runs).await })
        })
        .collect();
    wait_for_queue(&store, 3).await;
    drop(release);
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task completes"));
    }

    assert!(results[0].is_ok(), "first request: {:?}", results[0]);
    assert!(results[1].is_err(), "second request: {:?}", results[1]);
    assert!(results[2].is_ok(), "third request: {:?}", results[2]);
    take_queue(&store).await;
    let page = store
        .action_runs(ActionRunQuery::default())
        .await
        .expect("list succeeds");
    // The spawned tasks may queue in any order, so the runs are compared as a set.
    let mut stored = ids(&page.runs);
    stored.sort();
    assert_eq!(stored, [run_id(1), run_id(3)]);
    store.close().await;
}

#[tokio::test]
async fn camera_runs_resolve_to_their_records() {
    let folder = tempdir();
    let store = open(&folder);
    let records = vec![sample(0), sample(1), sample(2)];
    let expected = records[2].data_id;
    let write = CameraWrite {
        runs: vec![new_run(1, Some("crowd"), Some(2))],
        ..CameraWrite::default()
    };
    store
        .insert_camera(records, write)
        .await
        .expect("insert succeeds");
    assert_eq!(stored_run(&store, 1).await.data_id, Some(expected));
    store.close().await;
}

#[tokio::test]
async fn mqtt_redelivery_writes_no_runs() {
    use sha2::Digest;

    let folder = tempdir();
    let store = open(&folder);
    let write = |dup: bool, n: u32| {
        let records = vec![sample(0)];
        MqttWrite {
            records,
            dead_letters: Vec::new(),
            inbox: Some(InboxKey {
                session: "hubkit-1@127.0.0.1:1883".into(),
                pkid: 9,
                topic: "sensors/room1".into(),
                payload_sha256: sha2::Sha256::digest(b"31.5").into(),
                dup,
            }),
            runs: vec![new_run(n, Some("hot"), Some(0))],
        }
    };
    let first = store
        .insert_mqtt(write(false, 1))
        .await
        .expect("insert succeeds");
    let again = store
        .insert_mqtt(write(true, 2))
        .await
        .expect("insert succeeds");

    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(pending(&store), 1);
    assert_eq!(stored_run(&store, 1).await.status, ActionRunStatus::Pending);
    let redelivered = store.action_run(&run_id(2)).await.expect("lookup succeeds");
    assert_eq!(redelivered, None);
    store.close().await;
}

#[tokio::test]
async fn claim_takes_oldest_pending_first() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 5).await;

    let first = store
        .claim_action_runs(2, time(100))
        .await
        .expect("claim succeeds");
    assert_eq!(ids(&first), [run_id(1), run_id(2)]);
    for run in &first {
        assert_eq!(run.status, ActionRunStatus::Running);
        assert_eq!(run.attempts, 1);
        assert_eq!(run.started_at, Some(time(100)));
    }
    assert_eq!(pending(&store), 3);

    let rest = store
        .claim_action_runs(10, time(101))
        .await
        .expect("claim succeeds");
    assert_eq!(ids(&rest), [run_id(3), run_id(4), run_id(5)]);
    assert_eq!(pending(&store), 0);

    let none = store
        .claim_action_runs(10, time(102))
        .await
        .expect("claim succeeds");
    assert!(none.is_empty());
    let stored = stored_run(&store, 1).await;
    assert_eq!(stored.status, ActionRunStatus::Running);
    assert_eq!(stored.started_at, Some(time(100)));
    store.close().await;
}

#[tokio::test]
async fn claim_with_zero_limit_takes_nothing() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 1).await;
    let claimed = store
        .claim_action_runs(0, time(100))
        .await
        .expect("claim succeeds");
    assert!(claimed.is_empty());
    assert_eq!(pending(&store), 1);
    store.close().await;
}

#[tokio::test]
async fn finish_records_outcome() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 2).await;
    store
        .claim_action_runs(2, time(100))
        .await
        .expect("claim succeeds");

    let steps = json!([{"step": "send", "status": "ok"}]);
    store
        .finish_action_run(&run_id(1), true, steps.clone(), None, time(103))
        .await
        .expect("finish succeeds");
    store
        .finish_action_run(
            &run_id(2),
            false,
            json!([]),
            Some("mail server timed out".into()),
            time(104),
        )
        .await
        .expect("finish succeeds");

    let succeeded = stored_run(&store, 1).await;
    assert_eq!(succeeded.status, ActionRunStatus::Succeeded);
    assert_eq!(succeeded.steps, steps);
    assert_eq!(succeeded.error, None);
    assert_eq!(succeeded.finished_at, Some(time(103)));
    assert_eq!(succeeded.duration(), Some(chrono::TimeDelta::seconds(3)));
    let failed = stored_run(&store, 2).await;
    assert_eq!(failed.status, ActionRunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("mail server timed out"));
    assert_eq!(failed.finished_at, Some(time(104)));
    store.close().await;
}

#[tokio::test]
async fn batch_finish_reports_missing_runs() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 3).await;
    store
        .claim_action_runs(2, time(100))
        .await
        .expect("claim succeeds");

    let finished = |n: u32, succeeded: bool| FinishedRun {
        id: run_id(n).to_ascii_uppercase(),
        succeeded,
        steps: json!([{"step": n}]),
        error: (!succeeded).then(|| format!("run {n} failed")),
        started_at: None,
        finished_at: time(110),
    };
    let missing = store
        .finish_action_runs(vec![
            finished(1, true),
            finished(2, false),
            finished(3, true),
        ])
        .await
        .expect("finish succeeds");

    assert_eq!(missing, vec![run_id(3)], "run 3 was never claimed");
    assert_eq!(
        stored_run(&store, 1).await.status,
        ActionRunStatus::Succeeded
    );
    let failed = stored_run(&store, 2).await;
    assert_eq!(failed.status, ActionRunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("run 2 failed"));
    assert_eq!(failed.steps, json!([{"step": 2}]));
    assert_eq!(stored_run(&store, 3).await.status, ActionRunStatus::Pending);

    let bad = FinishedRun {
        steps: json!({"step": 3}),
        ..finished(3, true)
    };
    let err = store
        .finish_action_runs(vec![bad])
        .await
        .expect_err("steps must be an array");
    assert!(
        matches!(err, StoreError::InvalidActionRunSteps { .. }),
        "{err:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn claims_keep_writer_sync_full() {
    async fn level(store: &Store) -> i64 {
        store
            .with_writer_connection(|conn| {
                conn.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0))
                    .expect("pragma reads")
            })
            .await
    }

    let folder = tempdir();
    let store = open(&folder);
    assert_eq!(level(&store).await, 2, "the store opens with FULL");
    insert_api_runs(&store, 1).await;
    store
        .claim_action_runs(1, time(100))
        .await
        .expect("claim succeeds");
    assert_eq!(level(&store).await, 2, "a claim puts FULL back");
    let finished = FinishedRun {
        id: run_id(1),
        succeeded: true,
        steps: json!([]),
        error: None,
        started_at: None,
        finished_at: time(101),
    };
    store
        .finish_action_runs(vec![finished])
        .await
        .expect("finish succeeds");
    assert_eq!(level(&store).await, 2, "a finish puts FULL back");
    assert_eq!(
        stored_run(&store, 1).await.status,
        ActionRunStatus::Succeeded
    );
    store.close().await;
}

#[tokio::test]
async fn finish_requires_running_run() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 2).await;
    store
        .claim_action_runs(1, time(100))
        .await
        .expect("claim succeeds");
    store
        .finish_action_run(&run_id(1), true, json!([]), None, time(101))
        .await
        .expect("finish succeeds");

    // Already finished, still pending, and never stored.
    for n in [1, 2, 3] {
        let err = store
            .finish_action_run(&run_id(n), false, json!([]), None, time(102))
            .await
            .expect_err("finish fails");
        assert!(
            matches!(&err, StoreError::ActionRunNotRunning { id } if *id == run_id(n)),
            "unexpected error {err:?} for run {n}"
        );
    }
    assert_eq!(
        stored_run(&store, 1).await.status,
        ActionRunStatus::Succeeded
    );
    assert_eq!(stored_run(&store, 2).await.status, ActionRunStatus::Pending);
    store.close().await;
}

#[tokio::test]
async fn finish_rejects_steps_that_are_not_an_array() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 1).await;
    store
        .claim_action_runs(1, time(100))
        .await
        .expect("claim succeeds");
    let err = store
        .finish_action_run(&run_id(1), true, json!({"step": 1}), None, time(101))
        .await
        .expect_err("finish fails");
    assert!(
        matches!(err, StoreError::InvalidActionRunSteps { .. }),
        "unexpected error {err:?}"
    );
    assert_eq!(stored_run(&store, 1).await.status, ActionRunStatus::Running);
    store.close().await;
}

#[tokio::test]
async fn running_runs_are_requeued_after_crash() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 3).await;
    store
        .claim_action_runs(2, time(100))
        .await
        .expect("claim succeeds");
    store
        .finish_action_run(&run_id(1), true, json!([]), None, time(101))
        .await
        .expect("finish succeeds");

    // Copying the database and its write-ahead log while the store is open leaves what
    // a crash leaves: committed transactions in the log, no checkpoint.
    let crashed = tempdir();
    for suffix in ["", "-wal"] {
        let name = format!("hub.db{suffix}");
        std::fs::copy(folder.path().join(&name), crashed.path().join(&name))
            .expect("database file copies");
    }
    store.close().await;

    let reopened = open(&crashed);
    assert_eq!(
        stored_run(&reopened, 2).await.status,
        ActionRunStatus::Running
    );
    let requeued = reopened
        .requeue_running_action_runs()
        .await
        .expect("requeue succeeds");
    assert_eq!(requeued, 1);
    let run = stored_run(&reopened, 2).await;
    assert_eq!(run.status, ActionRunStatus::Pending);
    assert_eq!(run.attempts, 1);
    assert_eq!(run.started_at, None);
    assert_eq!(
        stored_run(&reopened, 1).await.status,
        ActionRunStatus::Succeeded
    );
    assert_eq!(pending(&reopened), 2);

    let claimed = reopened
        .claim_action_runs(1, time(200))
        .await
        .expect("claim succeeds");
    assert_eq!(ids(&claimed), [run_id(2)]);
    assert_eq!(claimed[0].attempts, 2);
    let again = reopened
        .requeue_running_action_runs()
        .await
        .expect("requeue succeeds");
    assert_eq!(again, 1);
    reopened.close().await;
}

#[tokio::test]
async fn pages_list_newest_first() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 5).await;

    let first = store
        .action_runs(ActionRunQuery {
            limit: 2,
            ..ActionRunQuery::default()
        })
        .await
        .expect("list succeeds");
    assert_eq!(ids(&first.runs), [run_id(5), run_id(4)]);
    assert_eq!(first.next_before, Some(first.runs[1].cursor));

    let second = store
        .action_runs(ActionRunQuery {
            limit: 2,
            before: first.next_before,
            ..ActionRunQuery::default()
        })
        .await
        .expect("list succeeds");
    assert_eq!(ids(&second.runs), [run_id(3), run_id(2)]);
    assert!(second.next_before.is_some());

    let last = store
        .action_runs(ActionRunQuery {
            limit: 2,
            before: second.next_before,
            ..ActionRunQuery::default()
        })
        .await
        .expect("list succeeds");
    assert_eq!(ids(&last.runs), [run_id(1)]);
    assert_eq!(last.next_before, None);

    // A full last page has no next page either.
    let exact = store
        .action_runs(ActionRunQuery {
            limit: 5,
            ..ActionRunQuery::default()
        })
        .await
        .expect("list succeeds");
    assert_eq!(exact.runs.len(), 5);
    assert_eq!(exact.next_before, None);
    store.close().await;
}

#[tokio::test]
async fn pages_filter_by_status_and_trigger() {
    let folder = tempdir();
    let store = open(&folder);
    let triggers = [Some("hot"), Some("cold"), Some("hot"), None, Some("hot")];
    for (n, trigger) in (1..).zip(triggers) {
        store
            .insert_action_run(new_run(n, trigger, None))
            .await
            .expect("insert succeeds");
    }
    // Runs 1 and 2 become running, run 1 then succeeds.
    store
        .claim_action_runs(2, time(100))
        .await
        .expect("claim succeeds");
    store
        .finish_action_run(&run_id(1), true, json!([]), None, time(101))
        .await
        .expect("finish succeeds");

    let list = |status: Option<ActionRunStatus>, trigger: Option<&str>| {
        let store = store.clone();
        let query = ActionRunQuery {
            status,
            trigger: trigger.map(str::to_owned),
            ..ActionRunQuery::default()
        };
        async move {
            let page = store.action_runs(query).await.expect("list succeeds");
            ids(&page.runs)
        }
    };
    assert_eq!(
        list(Some(ActionRunStatus::Pending), None).await,
        [run_id(5), run_id(4), run_id(3)]
    );
    assert_eq!(
        list(Some(ActionRunStatus::Running), None).await,
        [run_id(2)]
    );
    assert_eq!(
        list(Some(ActionRunStatus::Succeeded), None).await,
        [run_id(1)]
    );
    assert!(list(Some(ActionRunStatus::Failed), None).await.is_empty());
    assert_eq!(
        list(None, Some("hot")).await,
        [run_id(5), run_id(3), run_id(1)]
    );
    assert_eq!(
        list(Some(ActionRunStatus::Pending), Some("hot")).await,
        [run_id(5), run_id(3)]
    );
    assert!(list(None, Some("unknown")).await.is_empty());
    store.close().await;
}

#[test]
fn status_parses_its_names() {
    for status in [
        ActionRunStatus::Pending,
        ActionRunStatus::Running,
        ActionRunStatus::Succeeded,
        ActionRunStatus::Failed,
    ] {
        let parsed: ActionRunStatus = status.as_str().parse().expect("name parses");
        assert_eq!(parsed, status);
        let serialized = serde_json::to_value(status).expect("status serializes");
        assert_eq!(serialized, json!(status.as_str()));
    }
    let err = "Done".parse::<ActionRunStatus>().expect_err("parse fails");
    assert!(
        matches!(&err, StoreError::InvalidActionRunStatus { value } if value == "Done"),
        "unexpected error {err:?}"
    );
}

#[tokio::test]
async fn version_5_file_migrates_to_action_runs() {
    let folder = tempdir();
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    for sql in &crate::schema::MIGRATIONS[..5] {
        conn.execute_batch(sql).expect("older schema is created");
    }
    conn.pragma_update(None, "user_version", 5)
        .expect("user_version is writable");
    conn.execute(
        "INSERT INTO camera_requests (id, camera, received_ns, raw) \
         VALUES ('0192a7c3e5f04c1b8a9d2e3f4a5b6c7d', 'ipro-aabbccddeeff', 1, x'00')",
        [],
    )
    .expect("version 5 row is inserted");
    drop(conn);

    let store = open(&folder);
    let conn = Connection::open(db_path(&folder)).expect("database opens");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version is readable");
    assert_eq!(version, 8);
    let camera_request = store
        .camera_request("0192a7c3e5f04c1b8a9d2e3f4a5b6c7d")
        .await
        .expect("lookup succeeds");
    assert!(
        camera_request.is_some(),
        "version 5 rows survive the migration"
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'action_runs' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .expect("statement prepares")
        .query_map([], |row| row.get(0))
        .expect("query runs")
        .collect::<Result<_, _>>()
        .expect("rows read");
    assert_eq!(indexes, ["action_runs_status", "action_runs_trigger"]);

    store
        .insert_action_run(new_run(1, None, None))
        .await
        .expect("insert succeeds");
    assert_eq!(pending(&store), 1);
    store.close().await;
}

#[tokio::test]
async fn claim_plan_uses_status_index() {
    let folder = tempdir();
    let store = open(&folder);
    let plan: Vec<String> = store
        .with_writer_connection(|conn| {
            conn.prepare(
                "EXPLAIN QUERY PLAN SELECT seq FROM action_runs WHERE status = 'pending' \
                 ORDER BY seq LIMIT 10",
            )
            .expect("statement prepares")
            .query_map([], |row| row.get::<_, String>(3))
            .expect("query runs")
            .collect::<Result<_, _>>()
            .expect("rows read")
        })
        .await;
    let joined = plan.join("\n");
    assert!(joined.contains("action_runs_status"), "{joined}");
    assert!(!joined.contains("TEMP B-TREE"), "{joined}");
    store.close().await;
}

#[tokio::test]
async fn claim_takes_pending_before_queue() {
    let folder = tempdir();
    let store = open(&folder);
    insert_api_runs(&store, 1).await;
    let fired: Vec<NewActionRun> = (2..=4).map(|n| new_run(n, Some("hot"), Some(0))).collect();
    store
        .insert_with_runs(vec![sample(0)], fired)
        .await
        .expect("first record is stored");
    let second_record = sample(1);
    let second_id = second_record.data_id;
    store
        .insert_with_runs(vec![second_record], vec![new_run(5, Some("hot"), Some(0))])
        .await
        .expect("second record is stored");
    assert_eq!(pending(&store), 5);

    // The claim takes the API run, then the whole first queue row: one of its runs is
    // left pending, and the second row stays queued.
    let first = store
        .claim_action_runs(3, time(50))
        .await
        .expect("claim succeeds");
    assert_eq!(ids(&first), [run_id(1), run_id(2), run_id(3)]);
    assert!(
        first
            .iter()
            .all(|run| run.status == ActionRunStatus::Running)
    );
    assert_eq!(pending(&store), 2);
    let page = store
        .action_runs(ActionRunQuery::default())
        .await
        .expect("list succeeds");
    assert_eq!(page.queued, 1);
    assert_eq!(
        ids(&page.runs),
        [run_id(4), run_id(3), run_id(2), run_id(1)]
    );
    assert_eq!(page.runs[0].status, ActionRunStatus::Pending);

    let second = store
        .claim_action_runs(16, time(51))
        .await
        .expect("claim succeeds");
    assert_eq!(ids(&second), [run_id(4), run_id(5)]);
    assert_eq!(second[1].data_id, Some(second_id));
    assert_eq!(pending(&store), 0);
    let empty = store
        .claim_action_runs(16, time(52))
        .await
        .expect("claim succeeds");
    assert!(empty.is_empty());
    store.close().await;
}

#[tokio::test]
async fn queued_runs_survive_a_reopen() {
    let folder = tempdir();
    let record = sample(0);
    let data_id = record.data_id;
    {
        let store = open(&folder);
        let fired: Vec<NewActionRun> = (1..=10).map(|n| new_run(n, Some("hot"), Some(0))).collect();
        store
            .insert_with_runs(vec![record], fired)
            .await
            .expect("record is stored");
        // No close: the process ends with the runs still queued.
    }
    let store = open(&folder);
    assert_eq!(pending(&store), 10);
    let claimed = store
        .claim_action_runs(16, time(50))
        .await
        .expect("claim succeeds");
    assert_eq!(claimed.len(), 10);
    assert_eq!(claimed[9].id, run_id(10));
    assert_eq!(claimed[0].input["run"], json!(1));
    assert_eq!(claimed[0].input["DataId"], json!(data_id.to_string()));
    store.close().await;
}

#[tokio::test]
async fn damaged_queue_row_becomes_a_failed_run() {
    let folder = tempdir();
    let store = open(&folder);
    let damaged = sample(0);
    let damaged_id = damaged.data_id;
    store
        .insert_with_runs(vec![damaged], vec![new_run(1, Some("hot"), Some(0))])
        .await
        .expect("first record is stored");
    store
        .insert_with_runs(vec![sample(1)], vec![new_run(2, Some("hot"), Some(0))])
        .await
        .expect("second record is stored");
    store
        .with_writer_connection(|conn| {
            conn.execute(
                "UPDATE action_queue SET runs = '[{\"id\":' WHERE seq = 1",
                [],
            )
            .expect("row updates")
        })
        .await;

    let claimed = store
        .claim_action_runs(1, time(50))
        .await
        .expect("claim succeeds");
    assert_eq!(ids(&claimed), [run_id(2)]);
    let failed = store
        .action_runs(ActionRunQuery {
            status: Some(ActionRunStatus::Failed),
            ..ActionRunQuery::default()
        })
        .await
        .expect("list succeeds");
    assert_eq!(failed.runs.len(), 1);
    let error = failed.runs[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&damaged_id.to_string()) && error.contains("could not be read"),
        "{error}"
    );
    assert_eq!(failed.runs[0].data_id, Some(damaged_id));
    assert_eq!(pending(&store), 0);
    store.close().await;
}

#[tokio::test]
async fn queue_row_with_invalid_data_id_fails_readably() {
    let folder = tempdir();
    let store = open(&folder);
    for n in 1..=2 {
        let fired: Vec<NewActionRun> = (0..5)
            .map(|k| new_run(n * 10 + k, Some("hot"), Some(0)))
            .collect();
        store
            .insert_with_runs(vec![sample(i64::from(n))], fired)
            .await
            .expect("record is stored");
    }
    store
        .with_writer_connection(|conn| {
            conn.execute(
                "UPDATE action_queue SET data_id = 'not an id' WHERE seq = 1",
                [],
            )
            .expect("row updates")
        })
        .await;

    let (claimed, dropped) = store
        .claim_action_runs_without_records(16, time(50))
        .await
        .expect("claim succeeds");
    assert_eq!(claimed.len(), 5);
    assert_eq!(dropped, 5);
    let failed = store
        .action_runs(ActionRunQuery {
            status: Some(ActionRunStatus::Failed),
            ..ActionRunQuery::default()
        })
        .await
        .expect("list succeeds");
    assert_eq!(failed.runs.len(), 1);
    assert_eq!(failed.runs[0].data_id, None);
    let error = failed.runs[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("\"not an id\" is not a record id"),
        "{error}"
    );
    store.close().await;
}

#[tokio::test]
async fn queued_uppercase_id_is_stored_lowercase() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert_with_runs(vec![sample(0)], vec![new_run(1, Some("hot"), Some(0))])
        .await
        .expect("record is stored");
    store
        .with_writer_connection(|conn| {
            conn.execute(
                "UPDATE action_queue SET first_id = upper(first_id), \
                 runs = '[[\"' || upper(first_id) || '\",\"hot\",\"notify\",null,{},0]]'",
                [],
            )
            .expect("row updates")
        })
        .await;

    let claimed = store
        .claim_action_runs(16, time(50))
        .await
        .expect("claim succeeds");
    assert_eq!(ids(&claimed), [run_id(1)]);
    store.close().await;
}

#[tokio::test]
async fn record_fields_can_be_added_after_the_claim() {
    let folder = tempdir();
    let store = open(&folder);
    let record = sample(0);
    let data_id = record.data_id;
    store
        .insert_with_runs(vec![record], vec![new_run(1, Some("hot"), Some(0))])
        .await
        .expect("record is stored");

    let (claimed, dropped) = store
        .claim_action_runs_without_records(16, time(50))
        .await
        .expect("claim succeeds");
    assert_eq!(dropped, 0);
    let light = claimed.into_iter().next().expect("one run");
    assert_eq!(
        light.input,
        json!({"run": 1, "text": "temperature above 30"})
    );
    let full = store.add_record_fields(light).await.expect("record reads");
    assert_eq!(full.input["DataId"], json!(data_id.to_string()));
    assert_eq!(full.input["run"], json!(1));
    store.close().await;
}
