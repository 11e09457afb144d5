//! The action-run methods of [`Store`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hubkit_model::Record;

use super::{
    ActionRun, ActionRunPage, ActionRunQuery, ActionRunStatus, FinishedRun, NewActionRun, sql,
};
use crate::mqtt::time_ns;
use crate::query::MAX_PAGE;
use crate::writer::Attachment;
use crate::{Cursor, Store, StoreError};

impl Store {
    /// Stores `records` and pending action `runs` in one transaction, and returns the
    /// records' cursors; see [`insert`](Store::insert). Each run's
    /// [`record`](NewActionRun::record) index is resolved to that record's `DataId`.
    /// The runs of each record are written as one compact queue row, which a claim turns
    /// into runs. Until then [`action_runs`](Store::action_runs) counts them as
    /// [`queued`](crate::ActionRunPage::queued), and [`action_run`](Store::action_run)
    /// does not find them. Runs without a record are stored as pending runs at once.
    ///
    /// # Errors
    ///
    /// As for [`insert`](Store::insert), and before anything is written
    /// [`StoreError::InvalidActionRunId`] for a run id that is not 32 hex digits or
    /// [`StoreError::ActionRunRecordOutOfRange`] for a record index outside `records`.
    /// A run id without a record that is already stored fails the transaction with
    /// [`StoreError::Write`]. A queued run whose id is already stored gets a new id when
    /// it is claimed.
    pub async fn insert_with_runs(
        &self,
        records: Vec<Record>,
        runs: Vec<NewActionRun>,
    ) -> Result<Vec<Cursor>, StoreError> {
        self.write(records, Attachment::None, runs)
            .await
            .map(|(cursors, _)| cursors)
    }

    /// Stores one pending action run without records, such as a run started through the
    /// API.
    ///
    /// # Errors
    ///
    /// As for [`insert_with_runs`](Store::insert_with_runs). A run with a record index
    /// fails with [`StoreError::ActionRunRecordOutOfRange`], because there are no records.
    pub async fn insert_action_run(&self, run: NewActionRun) -> Result<(), StoreError> {
        self.write(Vec::new(), Attachment::None, vec![run])
            .await
            .map(drop)
    }

    /// Claims up to `limit` of the oldest pending runs, at most [`MAX_PAGE`]: each
    /// becomes running, with one more attempt and `started_at` set to `now`. Returns them
    /// oldest first. When fewer runs are pending than `limit`, the claim turns the oldest
    /// queue rows, the runs that triggers fired for records, into pending runs first. A
    /// row whose runs cannot be read becomes one failed run with the reason as its
    /// error. Runs on the writer thread between two batches, in its own transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError::UpdateActionRuns`] when the transaction fails,
    /// [`StoreError::DecodeActionRun`] when a claimed row is invalid (the claim is rolled
    /// back), [`StoreError::Closed`] after [`close`](Store::close).
    pub async fn claim_action_runs(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<ActionRun>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_PAGE);
        let now_ns = time_ns(&now);
        let (claimed, _) = self
            .maintain(move |conn| sql::claim(conn, limit, now_ns))
            .await?;
        if claimed.iter().all(|(record_seq, _)| record_seq.is_none()) {
            return Ok(claimed.into_iter().map(|(_, run)| run).collect());
        }
        self.read(move |conn| sql::add_claimed_records(conn, claimed))
            .await
    }

    /// Claims runs as [`claim_action_runs`](Store::claim_action_runs) does, without the
    /// fields of their records in their input. A runner that keeps many claimed runs
    /// waiting reads their records with [`record_fields`](Store::record_fields), once per
    /// record, or with [`add_record_fields`](Store::add_record_fields) per run. Also
    /// returns how many queued runs the claim dropped because their queue row was
    /// damaged. Such a row becomes one failed run, which the claim does not return.
    ///
    /// # Errors
    ///
    /// As for [`claim_action_runs`](Store::claim_action_runs).
    pub async fn claim_action_runs_without_records(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ActionRun>, u64), StoreError> {
        if limit == 0 {
            return Ok((Vec::new(), 0));
        }
        let limit = limit.min(MAX_PAGE);
        let now_ns = time_ns(&now);
        let (claimed, dropped) = self
            .maintain(move |conn| sql::claim(conn, limit, now_ns))
            .await?;
        Ok((claimed.into_iter().map(|(_, run)| run).collect(), dropped))
    }

    /// Returns the fields of the stored records among `records`, by cursor, as
    /// [`claim_action_runs`](Store::claim_action_runs) puts them in front of a run's
    /// input. A runner that claims several runs of one record reads the record once.
    /// Records that are no longer stored are left out.
    ///
    /// # Errors
    ///
    /// As for [`add_record_fields`](Store::add_record_fields).
    pub async fn record_fields(
        &self,
        records: Vec<Cursor>,
    ) -> Result<HashMap<Cursor, serde_json::Map<String, serde_json::Value>>, StoreError> {
        if records.is_empty() {
            return Ok(HashMap::new());
        }
        self.read(move |conn| sql::record_fields(conn, &records))
            .await
    }

    /// Puts the fields of the record that fired `run` in front of its input, as
    /// [`claim_action_runs`](Store::claim_action_runs) does. A run without a record, or
    /// whose record is no longer stored, comes back as it is.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails, [`StoreError::Decode`] when the record is
    /// invalid, [`StoreError::ReadTask`] when the blocking task fails.
    pub async fn add_record_fields(&self, run: ActionRun) -> Result<ActionRun, StoreError> {
        let Some(record) = run.record else {
            return Ok(run);
        };
        self.read(move |conn| {
            let mut runs = sql::add_claimed_records(conn, vec![(Some(record.seq()), run)])?;
            Ok(runs.pop().expect("one run in, one run out"))
        })
        .await
    }

    /// Finishes the running run `id` as succeeded or failed, with the `steps` the runner
    /// recorded (a JSON array), its `error` and `now` as the finish time.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidActionRunSteps`] when `steps` is not an array,
    /// [`StoreError::ActionRunNotRunning`] when no running run has the id,
    /// [`StoreError::UpdateActionRuns`] when the update fails, and [`StoreError::Closed`]
    /// after [`close`](Store::close).
    pub async fn finish_action_run(
        &self,
        id: &str,
        succeeded: bool,
        steps: serde_json::Value,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = id.to_ascii_lowercase();
        if !steps.is_array() {
            return Err(StoreError::InvalidActionRunSteps { id });
        }
        let status = if succeeded {
            ActionRunStatus::Succeeded
        } else {
            ActionRunStatus::Failed
        };
        let steps = steps.to_string();
        let now_ns = time_ns(&now);
        self.maintain(move |conn| sql::finish(conn, &id, status, &steps, error.as_deref(), now_ns))
            .await
    }

    /// Finishes several running runs in one transaction, as
    /// [`finish_action_run`](Store::finish_action_run) does for one, and returns the ids
    /// of the runs that were not running (nothing is written for those). A runner that
    /// finishes many short runs saves one commit per run this way.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidActionRunSteps`] when the steps of a run are not an array
    /// (nothing is written), [`StoreError::UpdateActionRuns`] when the transaction fails,
    /// and [`StoreError::Closed`] after [`close`](Store::close).
    pub async fn finish_action_runs(
        &self,
        runs: Vec<FinishedRun>,
    ) -> Result<Vec<String>, StoreError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(runs.len());
        for run in runs {
            let id = run.id.to_ascii_lowercase();
            if !run.steps.is_array() {
                return Err(StoreError::InvalidActionRunSteps { id });
            }
            let status = if run.succeeded {
                ActionRunStatus::Succeeded
            } else {
                ActionRunStatus::Failed
            };
            rows.push(sql::FinishRow {
                id,
                status,
                steps: run.steps.to_string(),
                error: run.error,
                started_ns: run.started_at.as_ref().map(time_ns),
                finished_ns: time_ns(&run.finished_at),
            });
        }
        self.maintain(move |conn| sql::finish_many(conn, &rows))
            .await
    }

    /// Sets the running runs `ids` back to pending and takes back the attempt that their
    /// claim counted, for runs that a runner claimed but did not start, such as at a
    /// shutdown. Returns how many were running.
    ///
    /// # Errors
    ///
    /// [`StoreError::UpdateActionRuns`] when the update fails, [`StoreError::Closed`]
    /// after [`close`](Store::close).
    pub async fn release_action_runs(&self, ids: Vec<String>) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = ids.iter().map(|id| id.to_ascii_lowercase()).collect();
        self.maintain(move |conn| sql::release(conn, &ids)).await
    }

    /// Sets every running run back to pending and returns how many there were. Call it
    /// at start, before any runner claims runs: a run still running then was claimed
    /// before a crash or an unclean stop, and runs again. Attempts are kept.
    ///
    /// # Errors
    ///
    /// [`StoreError::UpdateActionRuns`] when the update fails, [`StoreError::Closed`]
    /// after [`close`](Store::close).
    pub async fn requeue_running_action_runs(&self) -> Result<usize, StoreError> {
        self.maintain(sql::requeue_running).await
    }

    /// Returns one page of the action runs that match `query`, newest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails, [`StoreError::DecodeActionRun`] when a
    /// stored row is invalid, [`StoreError::ReadTask`] when the blocking task fails.
    pub async fn action_runs(&self, query: ActionRunQuery) -> Result<ActionRunPage, StoreError> {
        self.read(move |conn| sql::list(conn, &query)).await
    }

    /// Returns the action run with `id` (hex digits in either case), or `None` when
    /// there is none.
    ///
    /// # Errors
    ///
    /// As for [`action_runs`](Store::action_runs).
    pub async fn action_run(&self, id: &str) -> Result<Option<ActionRun>, StoreError> {
        let id = id.to_ascii_lowercase();
        self.read(move |conn| sql::find(conn, &id)).await
    }

    /// Returns the number of pending action runs. Blocks the calling thread, so call it
    /// at startup or inside `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails.
    pub fn pending_action_runs(&self) -> Result<u64, StoreError> {
        self.inner.with_reader(sql::pending_count)
    }
}
