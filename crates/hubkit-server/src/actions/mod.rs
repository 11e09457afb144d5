//! Triggers and actions in the running hub.
//!
//! Ingest evaluates the triggers of each record's layer ([`engine`]) and stores a pending
//! run for each trigger that fires in the same transaction as the record. The runner
//! ([`runner`]) claims pending runs, executes them through [`effects::HubEffects`] and
//! records how they ended. Timer triggers ([`timer`]) store runs at their cron times.

pub(crate) mod api;
pub(crate) mod effects;
pub(crate) mod engine;
pub(crate) mod runner;
pub(crate) mod timer;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use hubkit_model::Record;
use hubkit_store::NewActionRun;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::state::{AppState, Runtime};

pub use effects::ACTION_FILES_FOLDER;
pub use runner::ACTION_CONCURRENCY;

/// The end of a run, as the runner hands it to waiting API requests.
#[derive(Clone, Debug)]
pub(crate) struct RunResult {
    pub succeeded: bool,
    pub steps: Vec<Value>,
    pub error: Option<String>,
    /// The last step's output, which the store does not keep.
    pub output: Value,
}

/// The queue side of the runner that requests, brokers and timers share.
#[derive(Default)]
pub(crate) struct ActionQueue {
    /// Wakes the runner after runs were stored.
    pub wake: Notify,
    /// State of the triggers that outlives a configuration generation.
    pub shared: engine::Shared,
    /// Wakes timer triggers after a reload.
    pub reloaded: Notify,
    waiters: Mutex<HashMap<String, oneshot::Sender<RunResult>>>,
}

impl ActionQueue {
    /// Registers interest in the end of run `id`; call it before storing the run.
    pub(crate) fn wait_for(&self, id: &str) -> oneshot::Receiver<RunResult> {
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), sender);
        receiver
    }

    /// Returns whether an API request waits for the end of run `id`.
    pub(crate) fn is_awaited(&self, id: &str) -> bool {
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id)
    }

    /// Forgets a waiter that gave up.
    pub(crate) fn forget(&self, id: &str) {
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    fn complete(&self, id: &str, result: RunResult) {
        let waiter = self
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(result);
        }
    }
}

/// Evaluates the triggers for `records` about to be stored and returns their pending
/// runs. Note them with [`Fired::of`] before the write and call [`Fired::stored`] or
/// [`Fired::not_stored`] after it.
pub(crate) fn fire(state: &AppState, runtime: &Runtime, records: &[Record]) -> Vec<NewActionRun> {
    runtime
        .engine
        .fire(&state.actions.shared, records, Utc::now())
}

/// The triggers of `runs`, kept while the runs move into a store write.
pub(crate) struct Fired(Vec<Option<String>>);

impl Fired {
    /// Notes the triggers of `runs`.
    pub(crate) fn of(runs: &[NewActionRun]) -> Fired {
        Fired(runs.iter().map(|run| run.trigger.clone()).collect())
    }

    /// Counts the runs as queued and wakes the runner, after their write committed.
    pub(crate) fn stored(self, state: &AppState) {
        if self.0.is_empty() {
            return;
        }
        state.metrics.action_queue_depth.inc_by(self.0.len() as i64);
        state.actions.wake.notify_one();
    }

    /// Lets the triggers fire again after their write failed.
    pub(crate) fn not_stored(self, state: &AppState) {
        state
            .actions
            .shared
            .release(self.0.iter().filter_map(Option::as_deref));
    }
}
