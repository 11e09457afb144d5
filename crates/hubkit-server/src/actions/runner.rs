//! The runner: claims pending runs, executes them a bounded number at a time and records
//! how each ended.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hubkit_store::{ActionRun, FinishedRun};
use hubkit_triggers::{StepRecord, StepStatus, run_action};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use super::effects::HubEffects;
use super::{ActionQueue, RunResult};
use crate::state::AppState;

/// Runs executing at once. Steps mostly wait on the network, so this bounds open
/// connections and memory rather than CPU.
pub const ACTION_CONCURRENCY: usize = 16;

/// Runs finished in one store transaction at most.
const FINISH_BATCH: usize = 256;

/// How long the finisher waits after a run ended for more to end, so that it records them
/// in one transaction. It delays only the run's `finished` status and the API's response.
const FINISH_GATHER: Duration = Duration::from_millis(5);

/// How often the runner looks for pending runs without a wake-up. Every write of a run
/// wakes it, so this is only a safety net.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// How long the runner waits before a claim while more runs are pending than it could
/// take with the last one.
const CLAIM_GATHER: Duration = Duration::from_millis(1);

/// Pause after the store failed to hand out runs.
const CLAIM_RETRY: Duration = Duration::from_secs(1);

/// A finished run on its way to the store.
struct Done {
    run: ActionRun,
    result: RunResult,
}

/// The niceness of the runner's thread on Linux: 10, about a tenth of the CPU time of a
/// normal thread when both want the CPU. Under an ingest peak that uses every core, runs
/// wait in the store's durable queue and catch up when the peak is over, instead of
/// taking CPU time from ingest.
const RUNNER_NICENESS_PERCENT: u8 = 22;

/// Starts the runner on a thread of its own with a lower priority and a single-threaded
/// Tokio runtime, and returns the thread's handle. Action steps mostly wait on the
/// network, so one thread runs all of them.
///
/// # Errors
///
/// Fails when the thread or its runtime cannot be created.
pub(crate) fn spawn_thread(
    state: Arc<AppState>,
    effects: Arc<HubEffects>,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("hubkit-actions")
        .build()?;
    std::thread::Builder::new()
        .name("hubkit-actions".to_owned())
        .spawn(move || {
            // thread-priority maps 22 on its scale of 0 to 99 to niceness 10 for normal
            // threads on Linux.
            let lowered = thread_priority::ThreadPriorityValue::try_from(RUNNER_NICENESS_PERCENT)
                .map_err(|err| err.to_string())
                .and_then(|value| {
                    thread_priority::set_current_thread_priority(
                        thread_priority::ThreadPriority::Crossplatform(value),
                    )
                    .map_err(|err| format!("{err:?}"))
                });
            if let Err(err) = lowered {
                warn!(error = %err, "failed to lower the priority of the action runner; it runs at normal priority");
            }
            runtime.block_on(run(state, effects, shutdown, grace));
        })
}

/// Claims and executes pending runs until `shutdown` turns true, then waits up to
/// `grace` for the runs in progress. Runs still in progress after that stay `running` in
/// the store and run again after the next start.
pub(crate) async fn run(
    state: Arc<AppState>,
    effects: Arc<HubEffects>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(ACTION_CONCURRENCY));
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (stop_finisher, stop) = oneshot::channel();
    let finisher = tokio::spawn(finish_loop(state.clone(), done_rx, stop));
    let queue = &state.actions;
    let mut backlog = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if backlog {
            // More runs wait: let the runs in progress end first, so that one claim takes
            // many runs instead of one transaction on the writer per run.
            tokio::time::sleep(CLAIM_GATHER).await;
        }
        let first = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let mut claim_permits = vec![first];
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            claim_permits.push(permit);
        }
        let claimed = match state
            .store
            .claim_action_runs(claim_permits.len(), Utc::now())
            .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                warn!(error = %crate::error_chain(&err), "failed to claim pending action runs");
                drop(claim_permits);
                tokio::select! {
                    () = tokio::time::sleep(CLAIM_RETRY) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        backlog = claimed.len() == claim_permits.len();
        if claimed.is_empty() {
            drop(claim_permits);
            tokio::select! {
                () = queue.wake.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        state
            .metrics
            .action_queue_depth
            .dec_by(claimed.len() as i64);
        for (run, permit) in claimed.into_iter().zip(claim_permits) {
            if let (Some(started), created) = (run.started_at, run.created_at) {
                let delay = (started - created).to_std().unwrap_or_default();
                state
                    .metrics
                    .action_start_delay
                    .observe(delay.as_secs_f64());
            }
            state.metrics.actions_in_progress.inc();
            let state = state.clone();
            let effects = effects.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let result = execute(&state, &effects, &run).await;
                state.metrics.actions_in_progress.dec();
                // After shutdown stopped the finisher the send fails, so the run stays
                // `running` in the store and runs again after the next start.
                let _ = done.send(Done { run, result });
                drop(permit);
            });
        }
    }

    let all = u32::try_from(ACTION_CONCURRENCY).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        warn!(
            grace_ms = grace.as_millis() as u64,
            "action runs still in progress at shutdown; they run again after the next start"
        );
    }
    // Runs still in progress hold senders of their own; stop the finisher after it has
    // recorded what has finished. Returning drops the runtime, which cancels the rest.
    drop(done_tx);
    let _ = stop_finisher.send(());
    let _ = finisher.await;
    info!("action runner stopped");
}

/// Executes one claimed run with the action as configured now.
async fn execute(state: &AppState, effects: &HubEffects, run: &ActionRun) -> RunResult {
    let action = state.runtime.load().engine.action(&run.action);
    let Some(action) = action else {
        return RunResult {
            succeeded: false,
            steps: Vec::new(),
            error: Some(format!(
                "action {:?} is not in the configuration; it was removed or renamed after \
                 the run was queued",
                run.action
            )),
            output: Value::Null,
        };
    };
    let span = info_span!("action_run", run.id = %run.id, action = %run.action);
    let outcome = run_action(&action, run.input.clone(), effects)
        .instrument(span)
        .await;
    if let Some(error) = outcome.error.as_deref() {
        warn!(run.id = %run.id, action = %run.action, error = %cap(error), "action run failed");
    } else {
        debug!(
            run.id = %run.id,
            action = %run.action,
            duration_ms = outcome.duration.as_millis() as u64,
            "action run succeeded"
        );
    }
    RunResult {
        succeeded: outcome.succeeded,
        steps: outcome.steps.iter().map(step_json).collect(),
        error: outcome.error.as_deref().map(cap),
        output: outcome.output,
    }
}

/// Stores finished runs in batches, then lets their triggers fire again and wakes the
/// API requests that wait for them.
async fn finish_loop(
    state: Arc<AppState>,
    mut done: mpsc::UnboundedReceiver<Done>,
    mut stop: oneshot::Receiver<()>,
) {
    let queue: &ActionQueue = &state.actions;
    let mut stopping = false;
    loop {
        let first = if stopping {
            match done.try_recv() {
                Ok(first) => first,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                next = done.recv() => match next {
                    Some(first) => first,
                    None => break,
                },
                _ = &mut stop => {
                    stopping = true;
                    continue;
                }
            }
        };
        let mut batch = vec![first];
        if !stopping {
            // Let the runs that end meanwhile join this batch: one transaction for many
            // short runs leaves the writer to ingest.
            tokio::time::sleep(FINISH_GATHER).await;
        }
        while batch.len() < FINISH_BATCH {
            match done.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = Utc::now();
        let rows = batch
            .iter()
            .map(|done| FinishedRun {
                id: done.run.id.clone(),
                succeeded: done.result.succeeded,
                steps: Value::Array(done.result.steps.clone()),
                error: done.result.error.clone(),
                finished_at: now,
            })
            .collect();
        match state.store.finish_action_runs(rows).await {
            Ok(missing) if !missing.is_empty() => {
                warn!(runs = ?missing, "finished action runs were no longer running");
            }
            Ok(_) => {}
            Err(err) => {
                warn!(
                    error = %crate::error_chain(&err),
                    runs = batch.len(),
                    "failed to record finished action runs; they run again after the next start"
                );
            }
        }
        queue
            .shared
            .release(batch.iter().filter_map(|done| done.run.trigger.as_deref()));
        for done in batch {
            let status = if done.result.succeeded {
                "succeeded"
            } else {
                "failed"
            };
            state.metrics.count_action_run(&done.run.action, status);
            if let Some(started) = done.run.started_at {
                let took = (now - started).to_std().unwrap_or_default();
                state.metrics.action_duration.observe(took.as_secs_f64());
            }
            queue.complete(&done.run.id, done.result);
        }
    }
}

/// Largest error message kept with a run or logged, in bytes. A message can quote input,
/// such as a 70,000-byte topic, so it is cut.
const MAX_ERROR_BYTES: usize = 1024;

/// Returns `error` cut to [`MAX_ERROR_BYTES`] at a character boundary, marked with `…`.
fn cap(error: &str) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error.to_owned();
    }
    let mut end = MAX_ERROR_BYTES;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}

/// Converts a step record to the JSON stored with the run and shown by the API.
fn step_json(step: &StepRecord) -> Value {
    let status = match step.status {
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    };
    json!({
        "step": step.index + 1,
        "component": step.component.as_str(),
        "status": status,
        "attempts": step.attempts,
        "started_ms": step.started.as_millis() as u64,
        "finished_ms": step.finished.as_millis() as u64,
        "error": step.error.as_deref().map(cap),
        "output_preview": step.output_preview,
    })
}
