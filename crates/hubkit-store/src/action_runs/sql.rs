//! Statements on the `action_runs` table.

use chrono::DateTime;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};

use super::{ActionRun, ActionRunPage, ActionRunQuery, ActionRunStatus, EncodedActionRun, queue};
use crate::codec::{SELECT_COLUMNS, decode_row};
use crate::{Cursor, StoreError};

/// Columns that [`RawRun::read`] reads, in its order.
const COLUMNS: &str = "seq, id, trigger, action, data_id, status, input, steps, error, \
     attempts, created_ns, started_ns, finished_ns, record_seq";

/// Inserts `runs`: direct runs as pending rows, and the runs fired for a record as one
/// queue row with the `seq` of its record from `records`, the cursors of the records of
/// the same write. Runs inside the transaction that inserted the records.
pub(crate) fn insert_runs(
    conn: &Connection,
    runs: &[EncodedActionRun],
    records: &[Cursor],
) -> rusqlite::Result<()> {
    for run in runs {
        match run {
            EncodedActionRun::Direct {
                id,
                trigger,
                action,
                input,
                created_ns,
            } => {
                conn.prepare_cached(
                    "INSERT INTO action_runs (id, trigger, action, status, input, created_ns) \
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
                )?
                .execute(params![id, trigger, action, input, created_ns])?;
            }
            EncodedActionRun::Queued {
                record,
                data_id,
                count,
                created_ns,
                first_id,
                runs,
            } => {
                // The store resolved the index when it encoded the runs.
                let Some(cursor) = records.get(*record) else {
                    continue;
                };
                conn.prepare_cached(
                    "INSERT INTO action_queue \
                     (data_id, record_seq, count, created_ns, first_id, runs) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    data_id,
                    cursor.seq(),
                    i64::try_from(*count).unwrap_or(i64::MAX),
                    created_ns,
                    first_id,
                    runs
                ])?;
            }
        }
    }
    Ok(())
}

/// One `action_queue` row.
struct QueueRow {
    seq: i64,
    data_id: String,
    record_seq: i64,
    created_ns: i64,
    first_id: String,
    runs: String,
    count: u64,
}

/// Runs that [`materialize`] wrote, and the queue rows it read.
pub(crate) struct Materialized {
    /// The runs written as running, each with the `seq` of its record.
    pub(crate) running: Vec<(Option<i64>, ActionRun)>,
    /// Queue rows read.
    pub(crate) read: usize,
    /// Runs in damaged queue rows.
    pub(crate) lost: u64,
}

/// Turns the oldest queue rows into runs until they contained at least `requested` runs,
/// or the queue is empty, and deletes those rows. The first `take` runs are written
/// claimed and returned: running, with their first attempt started at `now_ns`. A claim
/// thus writes each run once. The rest are written pending. A row whose runs do not
/// decode becomes one failed run with the decoding error as its error, so a damaged row
/// neither blocks the queue nor disappears unnoticed.
pub(crate) fn materialize(
    conn: &Connection,
    requested: usize,
    take: usize,
    now_ns: i64,
) -> rusqlite::Result<Materialized> {
    let rows = {
        let mut select = conn.prepare_cached(
            "SELECT seq, data_id, record_seq, created_ns, first_id, runs, count \
             FROM action_queue ORDER BY seq LIMIT ?1",
        )?;
        let mut found = select.query([i64::try_from(requested).unwrap_or(i64::MAX)])?;
        let mut rows = Vec::new();
        let mut contained = 0_usize;
        while contained < requested {
            let Some(row) = found.next()? else { break };
            let count = row.get::<_, i64>(6)?;
            contained += usize::try_from(count).unwrap_or(1).max(1);
            rows.push(QueueRow {
                seq: row.get(0)?,
                data_id: row.get(1)?,
                record_seq: row.get(2)?,
                created_ns: row.get(3)?,
                first_id: row.get(4)?,
                runs: row.get(5)?,
                count: count.unsigned_abs(),
            });
        }
        rows
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO action_runs (id, trigger, action, data_id, status, input, created_ns, \
         record_seq, error, finished_ns, attempts, started_ns) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (id) DO NOTHING",
    )?;
    let mut delete = conn.prepare_cached("DELETE FROM action_queue WHERE seq = ?1")?;
    let mut running = Vec::with_capacity(take.min(requested));
    let mut lost = 0;
    let read = rows.len();
    for row in rows {
        // A run with an invalid data_id could not be read back, so such a row fails.
        let parsed = row.data_id.parse::<hubkit_model::DataId>().ok();
        let data_id = parsed.is_some().then_some(row.data_id.as_str());
        let decoded = if parsed.is_some() {
            queue::decode(&row.runs, &row.first_id, row.created_ns)
        } else {
            Err(format!("its data_id {:?} is not a record id", row.data_id))
        };
        match decoded {
            Ok(entries) => {
                for entry in entries {
                    let input = entry.input.to_string();
                    let mut id = entry.id.to_ascii_lowercase();
                    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                        let fresh = uuid::Uuid::now_v7().simple().to_string();
                        tracing::warn!(run.id = %id, new_id = %fresh, "a queued action run has an invalid id; it gets a new id");
                        id = fresh;
                    }
                    let claimed = running.len() < take;
                    let (status, attempts, started_ns) = if claimed {
                        (ActionRunStatus::Running, 1, Some(now_ns))
                    } else {
                        (ActionRunStatus::Pending, 0, None)
                    };
                    // Ids are random, so a stored one means a caller reused an id; the
                    // run still runs, under an id of its own.
                    while insert.execute(params![
                        id,
                        entry.trigger,
                        entry.action,
                        data_id,
                        status.as_str(),
                        input,
                        entry.created_ns,
                        row.record_seq,
                        None::<String>,
                        None::<i64>,
                        attempts,
                        started_ns
                    ])? == 0
                    {
                        let fresh = uuid::Uuid::now_v7().simple().to_string();
                        tracing::warn!(run.id = %id, new_id = %fresh, "a queued action run reuses a stored run id; it gets a new id");
                        id = fresh;
                    }
                    if claimed {
                        let run = ActionRun {
                            cursor: Cursor::from_seq(conn.last_insert_rowid()),
                            id,
                            trigger: entry.trigger,
                            action: entry.action,
                            data_id: parsed,
                            record: Some(Cursor::from_seq(row.record_seq)),
                            status,
                            input: entry.input,
                            steps: serde_json::Value::Array(Vec::new()),
                            error: None,
                            attempts,
                            created_at: DateTime::from_timestamp_nanos(entry.created_ns),
                            started_at: Some(DateTime::from_timestamp_nanos(now_ns)),
                            finished_at: None,
                        };
                        running.push((Some(row.record_seq), run));
                    }
                }
            }
            Err(err) => {
                let error = format!(
                    "the runs that triggers fired for record {} could not be read from the \
                     action queue (row {}): {err}",
                    row.data_id, row.seq
                );
                tracing::warn!(queue.seq = row.seq, error = %error, "skipped a damaged action queue row");
                lost += row.count;
                insert.execute(params![
                    uuid::Uuid::now_v7().simple().to_string(),
                    None::<String>,
                    "",
                    data_id,
                    "failed",
                    "{}",
                    row.created_ns,
                    row.record_seq,
                    error,
                    now_ns,
                    0,
                    None::<i64>
                ])?;
            }
        }
        delete.execute([row.seq])?;
    }
    Ok(Materialized {
        running,
        read,
        lost,
    })
}

/// Puts the fields of each run's record in front of its input. Runs of one record share
/// one read of it.
fn add_records(conn: &Connection, runs: &mut [(Option<i64>, ActionRun)]) -> Result<(), StoreError> {
    let mut cursors: Vec<Cursor> = runs
        .iter()
        .filter(|(_, run)| run.input.is_object())
        .filter_map(|(record_seq, _)| record_seq.map(Cursor::from_seq))
        .collect();
    cursors.sort_unstable();
    cursors.dedup();
    let fields = record_fields(conn, &cursors)?;
    for (record_seq, run) in runs.iter_mut() {
        let Some(record) = record_seq.and_then(|seq| fields.get(&Cursor::from_seq(seq))) else {
            continue;
        };
        if let serde_json::Value::Object(own) = &mut run.input {
            let mut input = record.clone();
            input.extend(std::mem::take(own));
            *own = input;
        }
    }
    Ok(())
}

/// Decodes `raw` rows, each with the `seq` of its record.
fn decode_with_records(raw: Vec<RawRun>) -> Result<Vec<(Option<i64>, ActionRun)>, StoreError> {
    raw.into_iter()
        .map(|raw| {
            let record_seq = raw.record_seq;
            raw.decode().map(|run| (record_seq, run))
        })
        .collect()
}

/// Decodes `raw` rows and adds their records' fields to their input.
fn decode_all(conn: &Connection, raw: Vec<RawRun>) -> Result<Vec<ActionRun>, StoreError> {
    let mut runs = decode_with_records(raw)?;
    add_records(conn, &mut runs)?;
    Ok(runs.into_iter().map(|(_, run)| run).collect())
}

/// Runs `function` with `synchronous=NORMAL` when the connection uses `FULL`, then puts
/// the setting back.
///
/// Claims and finishes do not need a sync of their own: in WAL mode a `NORMAL` commit
/// reaches the disk with the next `FULL` commit, the next batch of records, or at the
/// latest at the next checkpoint. A power loss before then undoes the claim (the run is
/// pending again, as after a requeue) or the finish (the run runs again), both within
/// the at-least-once guarantee. Without this, every claim and every finish paid an fsync
/// on the writer thread that ingest uses too.
fn relaxed<T>(
    conn: &mut Connection,
    function: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let pragma_error = |source| StoreError::UpdateActionRuns {
        operation: "set synchronous for action runs",
        source,
    };
    let level: i64 = conn
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .map_err(pragma_error)?;
    // 2 is FULL and 3 EXTRA; NORMAL (1) and OFF (0) are kept as they are.
    if level < 2 {
        return function(conn);
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL")
        .map_err(pragma_error)?;
    let result = function(conn);
    let restored = conn
        .execute_batch(&format!("PRAGMA synchronous = {level}"))
        .map_err(pragma_error);
    match (result, restored) {
        (Ok(value), Ok(())) => Ok(value),
        (Err(err), _) | (Ok(_), Err(err)) => Err(err),
    }
}

/// Claimed runs, each with the `seq` of its record, and the number of queued runs in
/// damaged queue rows.
pub(super) type Claimed = (Vec<(Option<i64>, ActionRun)>, u64);

/// Marks up to `limit` of the oldest pending runs running, in one transaction, and
/// returns them oldest first.
///
/// The runs' input does not have their records' fields yet: pass the result to
/// [`add_claimed_records`] on a read connection, which keeps that work off the writer.
pub(super) fn claim(
    conn: &mut Connection,
    limit: usize,
    now_ns: i64,
) -> Result<Claimed, StoreError> {
    relaxed(conn, |conn| claim_now(conn, limit, now_ns))
}

/// Returns the fields of each stored record among `records`, as [`Record`] serializes
/// them, by cursor. Records that are no longer stored are left out.
///
/// [`Record`]: hubkit_model::Record
pub(super) fn record_fields(
    conn: &Connection,
    records: &[Cursor],
) -> Result<std::collections::HashMap<Cursor, serde_json::Map<String, serde_json::Value>>, StoreError>
{
    let sql = format!("SELECT {SELECT_COLUMNS} FROM records WHERE seq = ?1");
    let mut select = conn
        .prepare_cached(&sql)
        .map_err(|source| StoreError::Read { source })?;
    let mut found = std::collections::HashMap::with_capacity(records.len());
    for cursor in records {
        let seq = cursor.seq();
        let stored = select
            .query_row([seq], |row| Ok(decode_row(row)))
            .optional()
            .map_err(|source| StoreError::Read { source })?
            .transpose()?;
        let Some(stored) = stored else { continue };
        let value = serde_json::to_value(&stored.record).map_err(|source| StoreError::Decode {
            seq,
            column: "data",
            source: Box::new(source),
        })?;
        if let serde_json::Value::Object(fields) = value {
            found.insert(*cursor, fields);
        }
    }
    Ok(found)
}

/// Puts the fields of each claimed run's record in front of its input.
pub(super) fn add_claimed_records(
    conn: &Connection,
    mut runs: Vec<(Option<i64>, ActionRun)>,
) -> Result<Vec<ActionRun>, StoreError> {
    add_records(conn, &mut runs)?;
    Ok(runs.into_iter().map(|(_, run)| run).collect())
}

fn claim_now(conn: &mut Connection, limit: usize, now_ns: i64) -> Result<Claimed, StoreError> {
    let update_error = |source| StoreError::UpdateActionRuns {
        operation: "claim action runs",
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(update_error)?;
    // Pending runs come first: a claim turns queue rows into runs only when no pending
    // run is left, so pending runs are older than any queue row.
    let raw = claim_pending(&tx, limit, now_ns).map_err(update_error)?;
    // A row that does not decode rolls the claim back, so it stays pending.
    let mut runs = decode_with_records(raw)?;
    let mut lost = 0;
    while runs.len() < limit {
        let needed = limit - runs.len();
        let materialized = materialize(&tx, needed, needed, now_ns).map_err(update_error)?;
        lost += materialized.lost;
        if materialized.read == 0 {
            break;
        }
        runs.extend(materialized.running);
    }
    tx.commit().map_err(update_error)?;
    // SQLite does not order the rows of RETURNING.
    runs.sort_by_key(|(_, run)| run.cursor);
    Ok((runs, lost))
}

/// Marks up to `limit` of the oldest pending runs running and returns them.
fn claim_pending(conn: &Connection, limit: usize, now_ns: i64) -> rusqlite::Result<Vec<RawRun>> {
    let sql = format!(
        "UPDATE action_runs SET status = 'running', attempts = attempts + 1, started_ns = ?1 \
         WHERE seq IN (SELECT seq FROM action_runs WHERE status = 'pending' \
         ORDER BY seq LIMIT ?2) RETURNING {COLUMNS}"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(&sql)?;
    statement
        .query_map(params![now_ns, limit], RawRun::read)?
        .collect()
}

/// Marks the running run `id` finished with `status`.
pub(super) fn finish(
    conn: &mut Connection,
    id: &str,
    status: ActionRunStatus,
    steps: &str,
    error: Option<&str>,
    now_ns: i64,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE action_runs SET status = ?2, steps = ?3, error = ?4, finished_ns = ?5 \
             WHERE id = ?1 AND status = 'running'",
        )
        .and_then(|mut statement| {
            statement.execute(params![id, status.as_str(), steps, error, now_ns])
        })
        .map_err(|source| StoreError::UpdateActionRuns {
            operation: "finish an action run",
            source,
        })?;
    if changed == 0 {
        return Err(StoreError::ActionRunNotRunning { id: id.to_owned() });
    }
    Ok(())
}

/// The columns that finishing one run sets.
pub(super) struct FinishRow {
    pub id: String,
    pub status: ActionRunStatus,
    pub steps: String,
    pub error: Option<String>,
    pub started_ns: Option<i64>,
    pub finished_ns: i64,
}

/// Finishes `rows` in one transaction and returns the ids of those that were not running.
pub(super) fn finish_many(
    conn: &mut Connection,
    rows: &[FinishRow],
) -> Result<Vec<String>, StoreError> {
    relaxed(conn, |conn| finish_many_now(conn, rows))
}

fn finish_many_now(conn: &mut Connection, rows: &[FinishRow]) -> Result<Vec<String>, StoreError> {
    let failed = |source| StoreError::UpdateActionRuns {
        operation: "finish action runs",
        source,
    };
    let transaction = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let mut missing = Vec::new();
    {
        let mut update = transaction
            .prepare_cached(
                "UPDATE action_runs SET status = ?2, steps = ?3, error = ?4, finished_ns = ?5, \
                 started_ns = coalesce(?6, started_ns) WHERE id = ?1 AND status = 'running'",
            )
            .map_err(failed)?;
        for row in rows {
            let changed = update
                .execute(params![
                    row.id,
                    row.status.as_str(),
                    row.steps,
                    row.error,
                    row.finished_ns,
                    row.started_ns
                ])
                .map_err(failed)?;
            if changed == 0 {
                missing.push(row.id.clone());
            }
        }
    }
    transaction.commit().map_err(failed)?;
    Ok(missing)
}

/// Sets the running runs `ids` back to pending, without the attempt that their claim
/// counted, and returns how many there were.
pub(super) fn release(conn: &mut Connection, ids: &[String]) -> Result<usize, StoreError> {
    relaxed(conn, |conn| {
        let failed = |source| StoreError::UpdateActionRuns {
            operation: "release claimed action runs",
            source,
        };
        let transaction = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let mut released = 0;
        {
            let mut update = transaction
                .prepare_cached(
                    "UPDATE action_runs SET status = 'pending', started_ns = NULL, \
                     attempts = max(attempts - 1, 0) WHERE id = ?1 AND status = 'running'",
                )
                .map_err(failed)?;
            for id in ids {
                released += update.execute([id]).map_err(failed)?;
            }
        }
        transaction.commit().map_err(failed)?;
        Ok(released)
    })
}

/// Sets every running run back to pending and returns how many there were.
pub(super) fn requeue_running(conn: &mut Connection) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "UPDATE action_runs SET status = 'pending', started_ns = NULL WHERE status = 'running'",
    )
    .and_then(|mut statement| statement.execute([]))
    .map_err(|source| StoreError::UpdateActionRuns {
        operation: "requeue running action runs",
        source,
    })
}

/// Returns one page of runs, newest first, and the number of queued runs, both from one
/// snapshot: a run that a claim moves from the queue meanwhile is counted once.
pub(super) fn list(conn: &Connection, query: &ActionRunQuery) -> Result<ActionRunPage, StoreError> {
    let snapshot = conn
        .unchecked_transaction()
        .map_err(|source| StoreError::Read { source })?;
    let page = list_in(&snapshot, query)?;
    snapshot
        .finish()
        .map_err(|source| StoreError::Read { source })?;
    Ok(page)
}

fn list_in(conn: &Connection, query: &ActionRunQuery) -> Result<ActionRunPage, StoreError> {
    let mut conditions = vec!["seq < ?"];
    let mut values = vec![Value::Integer(query.before.map_or(i64::MAX, Cursor::seq))];
    if let Some(status) = query.status {
        conditions.push("status = ?");
        values.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(trigger) = &query.trigger {
        conditions.push("trigger = ?");
        values.push(Value::Text(trigger.clone()));
    }
    let limit = query.page_size();
    // The row after the page, when it exists, shows that an older page exists.
    values.push(Value::Integer(i64::try_from(limit + 1).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT {COLUMNS} FROM action_runs WHERE {} ORDER BY seq DESC LIMIT ?",
        conditions.join(" AND ")
    );

    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement
                .query_map(params_from_iter(values), RawRun::read)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|source| StoreError::Read { source })?;
    let mut runs = decode_all(conn, raw)?;
    let next_before = if runs.len() > limit {
        runs.truncate(limit);
        runs.last().map(|run| run.cursor)
    } else {
        None
    };
    let queued = queued_count(conn)?;
    Ok(ActionRunPage {
        runs,
        next_before,
        queued,
    })
}

/// Returns the run with `id`, which must be in lowercase.
pub(super) fn find(conn: &Connection, id: &str) -> Result<Option<ActionRun>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM action_runs WHERE id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut statement| statement.query_row([id], RawRun::read).optional())
        .map_err(|source| StoreError::Read { source })?;
    match raw {
        Some(raw) => Ok(decode_all(conn, vec![raw])?.pop()),
        None => Ok(None),
    }
}

/// Returns the number of pending runs, those in the queue included, from one snapshot.
pub(super) fn pending_count(conn: &Connection) -> Result<u64, StoreError> {
    let snapshot = conn
        .unchecked_transaction()
        .map_err(|source| StoreError::Read { source })?;
    let count = queued_count(&snapshot)? + pending_rows(&snapshot)?;
    snapshot
        .finish()
        .map_err(|source| StoreError::Read { source })?;
    Ok(count)
}

/// Returns the number of pending `action_runs` rows.
fn pending_rows(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("SELECT count(*) FROM action_runs WHERE status = 'pending'")
        .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
        .map(i64::unsigned_abs)
        .map_err(|source| StoreError::Read { source })
}

/// Returns the number of runs in the queue.
fn queued_count(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("SELECT coalesce(sum(count), 0) FROM action_queue")
        .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
        .map(i64::unsigned_abs)
        .map_err(|source| StoreError::Read { source })
}

/// The columns of one `action_runs` row before decoding, so a row that SQLite returned
/// fails with the run's id and column when its text is invalid.
struct RawRun {
    seq: i64,
    id: String,
    trigger: Option<String>,
    action: String,
    data_id: Option<String>,
    status: String,
    input: String,
    steps: String,
    error: Option<String>,
    attempts: i64,
    created_ns: i64,
    started_ns: Option<i64>,
    finished_ns: Option<i64>,
    record_seq: Option<i64>,
}

impl RawRun {
    /// Reads the columns of [`COLUMNS`].
    fn read(row: &Row<'_>) -> rusqlite::Result<RawRun> {
        Ok(RawRun {
            seq: row.get(0)?,
            id: row.get(1)?,
            trigger: row.get(2)?,
            action: row.get(3)?,
            data_id: row.get(4)?,
            status: row.get(5)?,
            input: row.get(6)?,
            steps: row.get(7)?,
            error: row.get(8)?,
            attempts: row.get(9)?,
            created_ns: row.get(10)?,
            started_ns: row.get(11)?,
            finished_ns: row.get(12)?,
            record_seq: row.get(13)?,
        })
    }

    /// Parses the status, the JSON columns and the data id.
    fn decode(self) -> Result<ActionRun, StoreError> {
        let id = self.id;
        let invalid =
            |column: &'static str| {
                let id = id.clone();
                move |source: Box<dyn std::error::Error + Send + Sync>| {
                    StoreError::DecodeActionRun { id, column, source }
                }
            };
        let status = self
            .status
            .parse()
            .map_err(|err: StoreError| invalid("status")(Box::new(err)))?;
        let data_id = self
            .data_id
            .map(|text| text.parse())
            .transpose()
            .map_err(|err: hubkit_model::InvalidDataId| invalid("data_id")(Box::new(err)))?;
        let input =
            serde_json::from_str(&self.input).map_err(|err| invalid("input")(Box::new(err)))?;
        let steps =
            serde_json::from_str(&self.steps).map_err(|err| invalid("steps")(Box::new(err)))?;
        let attempts =
            u32::try_from(self.attempts).map_err(|err| invalid("attempts")(Box::new(err)))?;
        Ok(ActionRun {
            cursor: Cursor::from_seq(self.seq),
            id,
            trigger: self.trigger,
            action: self.action,
            data_id,
            record: self.record_seq.map(Cursor::from_seq),
            status,
            input,
            steps,
            error: self.error,
            attempts,
            created_at: DateTime::from_timestamp_nanos(self.created_ns),
            started_at: self.started_ns.map(DateTime::from_timestamp_nanos),
            finished_at: self.finished_ns.map(DateTime::from_timestamp_nanos),
        })
    }
}
