//! Action runs: the durable queue of actions that triggers fired or the API started.
//!
//! The runs that triggers fire for a record are written as one queue row, in the same
//! transaction as the record. A runner's claim turns queue rows into `pending` runs and
//! marks the runs it takes `running`. The runner executes them and finishes each one as
//! `succeeded` or `failed`. A run without a record, such as one started through the API,
//! is written as `pending` directly. After a crash, runs left `running` go back to
//! `pending`, so every run executes at least once.

mod queue;
mod sql;
mod store;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use hubkit_model::{DataId, Record};
use serde::{Deserialize, Serialize};

use crate::mqtt::time_ns;
use crate::query::{DEFAULT_PAGE, MAX_PAGE};
use crate::{Cursor, StoreError};

pub(crate) use sql::insert_runs;
#[cfg(test)]
pub(crate) use sql::materialize;

/// State of an action run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionRunStatus {
    /// Waiting for a runner to claim it.
    Pending,
    /// Claimed by a runner and not finished yet.
    Running,
    /// Finished without error.
    Succeeded,
    /// Finished with an error.
    Failed,
}

impl ActionRunStatus {
    /// Returns the status as stored and shown in the API: `pending`, `running`,
    /// `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionRunStatus::Pending => "pending",
            ActionRunStatus::Running => "running",
            ActionRunStatus::Succeeded => "succeeded",
            ActionRunStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for ActionRunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionRunStatus {
    type Err = StoreError;

    /// Parses the lowercase name of a status.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(ActionRunStatus::Pending),
            "running" => Ok(ActionRunStatus::Running),
            "succeeded" => Ok(ActionRunStatus::Succeeded),
            "failed" => Ok(ActionRunStatus::Failed),
            _ => Err(StoreError::InvalidActionRunStatus {
                value: s.to_owned(),
            }),
        }
    }
}

/// An action run to store as `pending`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewActionRun {
    /// Unique id: 32 hex digits, such as a UUIDv7 in simple form. Stored in lowercase.
    pub id: String,
    /// Name of the trigger that fired the run, or `None` for a run started through the API.
    pub trigger: Option<String>,
    /// Name of the action to run.
    pub action: String,
    /// Index of the record that fired the run, into the records of the same write. The
    /// store resolves it to that record's `DataId` and stores a reference to the record.
    pub record: Option<usize>,
    /// Input of the action. For a run with a record, the record is not copied into the
    /// stored input: reading the run back puts the record's fields, as [`Record`]
    /// serializes them, in front of the keys of an input that is a JSON object.
    pub input: serde_json::Value,
    /// Time the run was created.
    pub created_at: DateTime<Utc>,
}

/// The end of a run, for [`Store::finish_action_runs`](crate::Store::finish_action_runs).
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedRun {
    /// Id of the running run.
    pub id: String,
    /// Whether the run succeeded.
    pub succeeded: bool,
    /// Steps that the runner recorded: a JSON array.
    pub steps: serde_json::Value,
    /// Error of a failed run.
    pub error: Option<String>,
    /// Time the run started, when it is later than its claim: a runner that claims runs
    /// in batches starts some of them after a wait. `None` keeps the claim time.
    pub started_at: Option<DateTime<Utc>>,
    /// Time the run finished.
    pub finished_at: DateTime<Utc>,
}

/// A stored action run.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRun {
    /// Position of the run in commit order, for paging.
    pub cursor: Cursor,
    /// Id of the run, 32 lowercase hex digits.
    pub id: String,
    /// Name of the trigger that fired the run, or `None` for a run started through the API.
    pub trigger: Option<String>,
    /// Name of the action.
    pub action: String,
    /// Id of the record that fired the run.
    pub data_id: Option<DataId>,
    /// Position of the record that fired the run, which
    /// [`Store::add_record_fields`](crate::Store::add_record_fields) reads.
    pub record: Option<Cursor>,
    /// State of the run.
    pub status: ActionRunStatus,
    /// Input of the action, with the fields of the record that fired the run first (see
    /// [`NewActionRun::input`]), except after
    /// [`Store::claim_action_runs_without_records`](crate::Store::claim_action_runs_without_records).
    pub input: serde_json::Value,
    /// Steps that the runner recorded when it finished the run, or an empty array until then.
    pub steps: serde_json::Value,
    /// Error of a failed run.
    pub error: Option<String>,
    /// Number of times a runner claimed the run.
    pub attempts: u32,
    /// Time the run was created.
    pub created_at: DateTime<Utc>,
    /// Time of the latest claim, or `None` while pending.
    pub started_at: Option<DateTime<Utc>>,
    /// Time the run finished.
    pub finished_at: Option<DateTime<Utc>>,
}

impl ActionRun {
    /// Returns the time from the latest claim to the finish, or `None` for a run that
    /// has not finished.
    pub fn duration(&self) -> Option<TimeDelta> {
        Some(self.finished_at? - self.started_at?)
    }
}

/// Filters and page position of [`Store::action_runs`](crate::Store::action_runs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRunQuery {
    /// Cursor of the last run already seen: the page continues with older runs.
    pub before: Option<Cursor>,
    /// Maximum number of runs in the page, clamped to `1..=MAX_PAGE`.
    pub limit: usize,
    /// Only runs in this state.
    pub status: Option<ActionRunStatus>,
    /// Only runs fired by the trigger of this name.
    pub trigger: Option<String>,
}

impl Default for ActionRunQuery {
    fn default() -> Self {
        ActionRunQuery {
            before: None,
            limit: DEFAULT_PAGE,
            status: None,
            trigger: None,
        }
    }
}

impl ActionRunQuery {
    /// Returns the page size: `limit` clamped to `1..=MAX_PAGE`.
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// One page of action runs, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRunPage {
    /// The runs.
    pub runs: Vec<ActionRun>,
    /// `before` value of the next page, set when older matching runs exist.
    pub next_before: Option<Cursor>,
    /// Runs that triggers fired for stored records and that no runner has taken yet.
    /// They wait in the queue of their record and are listed from the moment a runner
    /// takes them; see [`Store::claim_action_runs`](crate::Store::claim_action_runs).
    pub queued: u64,
}

/// Action runs of one write, with their columns prepared by the caller's task.
#[derive(Debug)]
pub(crate) enum EncodedActionRun {
    /// A run without a record, such as one started through the API or by a timer: it is
    /// stored as a pending `action_runs` row.
    Direct {
        id: String,
        trigger: Option<String>,
        action: String,
        input: String,
        created_ns: i64,
    },
    /// The runs that triggers fired for one record: one `action_queue` row. The runner
    /// turns it into `action_runs` rows when it takes the runs, so ingest writes one small
    /// row per record however many triggers fire.
    Queued {
        /// Index of the record into the records of the same write.
        record: usize,
        data_id: String,
        count: usize,
        created_ns: i64,
        first_id: String,
        /// The runs in the form of [`queue::encode`].
        runs: String,
    },
}

/// Checks the ids of `runs`, resolves their record indexes into `records` and
/// serializes their input. Runs that name a record are grouped into one queue row per
/// record, in their order.
///
/// # Errors
///
/// [`StoreError::InvalidActionRunId`] for an id that is not 32 hex digits,
/// [`StoreError::ActionRunRecordOutOfRange`] for an index outside `records`.
pub(crate) fn encode_runs(
    runs: Vec<NewActionRun>,
    records: &[Record],
) -> Result<Vec<EncodedActionRun>, StoreError> {
    let mut encoded = Vec::new();
    // Runs fired for each record, by record index, in the order of their first run.
    let mut groups: Vec<(usize, Vec<(String, NewActionRun)>)> = Vec::new();
    for run in runs {
        let id = normalize_id(&run.id)?;
        let Some(index) = run.record else {
            encoded.push(EncodedActionRun::Direct {
                created_ns: time_ns(&run.created_at),
                input: run.input.to_string(),
                id,
                trigger: run.trigger,
                action: run.action,
            });
            continue;
        };
        if index >= records.len() {
            return Err(StoreError::ActionRunRecordOutOfRange {
                id,
                index,
                records: records.len(),
            });
        }
        match groups.iter_mut().find(|(record, _)| *record == index) {
            Some((_, group)) => group.push((id, run)),
            None => groups.push((index, vec![(id, run)])),
        }
    }
    for (index, group) in groups {
        let created_ns = time_ns(&group[0].1.created_at);
        encoded.push(EncodedActionRun::Queued {
            record: index,
            data_id: records[index].data_id.to_string(),
            count: group.len(),
            created_ns,
            runs: queue::encode(&group, created_ns),
            first_id: group[0].0.clone(),
        });
    }
    Ok(encoded)
}

/// Returns `id` in lowercase when it is 32 hex digits.
fn normalize_id(id: &str) -> Result<String, StoreError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(StoreError::InvalidActionRunId { id: id.to_owned() })
    }
}
