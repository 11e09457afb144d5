//! The runner: claims pending runs, executes them a bounded number at a time and records
//! how each ended.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use hubkit_store::{ActionRun, Cursor, FinishedRun};
use hubkit_triggers::{StepRecord, StepStatus, run_action};
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use super::effects::HubEffects;
use super::{ActionQueue, RunResult};
use crate::state::AppState;

/// Runs executing at once. Steps mostly wait on the network, so this bounds open
/// connections and memory rather than CPU.
pub const ACTION_CONCURRENCY: usize = 16;

/// Runs finished in one store transaction at most.
const FINISH_BATCH: usize = 1024;

/// Finished runs that wait for the finisher at most. When the store records them slower
/// than runs end, a run that ends waits with its slot, so memory stays bounded.
const DONE_CAPACITY: usize = 4 * FINISH_BATCH;

/// How long the finisher waits after a run ended for more to end, so that it records them
/// in one transaction. It delays only the run's `finished` status and the API's response.
const FINISH_GATHER: Duration = Duration::from_millis(5);

/// How long the finisher gathers while the runner is behind: fewer, larger transactions
/// leave the writer to ingest.
const FINISH_GATHER_BEHIND: Duration = Duration::from_millis(50);

/// Maximum number of runs claimed in one transaction. The runner keeps claimed runs that
/// wait for a free slot in memory. Under a backlog one claim thus serves many runs, not
/// [`ACTION_CONCURRENCY`] of them.
const CLAIM_BATCH: usize = 256;

/// How often the runner looks for pending runs without a wake-up. Every write of a run
/// wakes it, so this is only a safety net.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Share of the writer thread's time spent on batches of several writes, from which
/// ingest counts as busy and the runner gives way to it. Writes share a batch only when
/// they queue for the writer, so one client that waits for each commit of a slow disk
/// keeps the writer busy without counting as busy: the runner's claims cost it little.
const BUSY_SHARE: f64 = 0.5;

/// Shortest time over which the runner measures that share.
const LOAD_WINDOW: Duration = Duration::from_millis(20);

/// While ingest is busy, the runner waits this many times as long as its last claim or
/// finish took before the next one, so claims and finishes together take at most about
/// 7% of the writer's time. The store writes records and runs on one thread, and a claim
/// of a full batch keeps it busy for milliseconds. In the trigger benchmark on 2 cores,
/// ingest with ten triggers firing for every record kept 0.73 to 0.81 of its rate
/// without triggers at a factor of 9 (a fifth of the writer's time). At 29 it kept 0.89
/// to 0.96, and the runner still finished about 3,800 runs a second during the peak.
const YIELD_FACTOR: u32 = 29;

/// Maximum wait of [`YIELD_FACTOR`].
const MAX_YIELD: Duration = Duration::from_secs(1);

/// Load of the store's writer by ingest, shared by the claims and the finisher. The
/// runner's own claims and finishes are single writes, so they do not count.
struct WriterLoad {
    /// Start of the current measurement.
    at: Instant,
    /// The writer's contended time at `at`.
    contended: Duration,
    /// Whether ingest was busy in the last measurement.
    pressed: bool,
}

impl WriterLoad {
    fn new(state: &AppState) -> WriterLoad {
        WriterLoad {
            at: Instant::now(),
            contended: state.store.writer_contended(),
            pressed: false,
        }
    }

    /// Counts a store call of the runner that took `took` and returns how long to wait
    /// before the next one: zero unless ingest keeps the writer busy.
    fn after_call(&mut self, state: &AppState, took: Duration) -> Duration {
        let elapsed = self.at.elapsed();
        if elapsed >= LOAD_WINDOW {
            let contended = state.store.writer_contended();
            let ingest = contended.saturating_sub(self.contended);
            self.pressed = ingest.as_secs_f64() >= BUSY_SHARE * elapsed.as_secs_f64();
            self.at = Instant::now();
            self.contended = contended;
        }
        if self.pressed {
            (took * YIELD_FACTOR).min(MAX_YIELD)
        } else {
            Duration::ZERO
        }
    }
}

/// Pause after the store failed to hand out runs.
const CLAIM_RETRY: Duration = Duration::from_secs(1);

/// Pause after the store failed to record finished runs, before it tries them again.
const FINISH_RETRY: Duration = Duration::from_secs(1);

/// A finished run on its way to the store.
struct Done {
    run: ActionRun,
    result: RunResult,
    /// When the run started, which can be later than its claim.
    started: chrono::DateTime<Utc>,
}

/// The niceness of the runner's thread: 10, about a tenth of the CPU time of a normal
/// thread when both want the CPU. thread-priority maps 22 on its scale of 0 to 99 to
/// niceness 10 for normal threads.
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
            let lowered = lower_priority();
            if let Err(err) = lowered {
                warn!(error = %err, "failed to lower the priority of the action runner; it runs at normal priority");
            }
            runtime.block_on(run(state, effects, shutdown, grace));
        })
}

/// Lowers the calling thread's priority. On Linux the thread gets the `SCHED_IDLE` policy:
/// it runs when a core has nothing else to run, and the blocking threads it starts
/// inherit that. Under an ingest peak that keeps every core busy, runs wait in the
/// store's durable queue and catch up when the peak is over, instead of taking CPU time
/// from ingest. At niceness 10 alone the runner cut ingest by a third more in the trigger
/// benchmark. Elsewhere, or when the policy cannot be set, the thread gets niceness 10.
fn lower_priority() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if let Err(err) = idle {
            warn!(error = ?err, "failed to give the action runner the idle scheduling policy; it runs at niceness 10");
        } else {
            return Ok(());
        }
    }
    let niceness = thread_priority::ThreadPriorityValue::try_from(RUNNER_NICENESS_PERCENT)
        .map(thread_priority::ThreadPriority::Crossplatform)
        .map_err(|err| err.to_string())?;
    thread_priority::set_current_thread_priority(niceness).map_err(|err| format!("{err:?}"))
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
    let (done_tx, done_rx) = mpsc::channel(DONE_CAPACITY);
    let (stop_finisher, stop) = oneshot::channel();
    let behind = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(WriterLoad::new(&state)));
    let finisher = tokio::spawn(finish_loop(
        state.clone(),
        done_rx,
        stop,
        behind.clone(),
        load.clone(),
    ));
    let queue = &state.actions;
    // Claimed runs that wait for a free slot, oldest first.
    let mut claimed: VecDeque<ActionRun> = VecDeque::new();
    // The fields of the records of the claimed runs, each read once per claim: the ten
    // runs that ten triggers fired for one record share one copy while they wait.
    let mut records: HashMap<Cursor, Arc<Map<String, Value>>> = HashMap::new();
    let mut next_claim = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        if claimed.is_empty() {
            tokio::select! {
                () = tokio::time::sleep_until(next_claim) => {}
                _ = shutdown.changed() => break,
            }
            // Claim what the free slots can start, or a large batch while more runs wait
            // than the last claim took.
            let free = 1 + permits.available_permits();
            let limit = if behind.load(Ordering::Relaxed) {
                CLAIM_BATCH
            } else {
                free
            };
            let call_start = tokio::time::Instant::now();
            let batch = state
                .store
                .claim_action_runs_without_records(limit, Utc::now())
                .await;
            let pause = load
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .after_call(&state, call_start.elapsed());
            next_claim = tokio::time::Instant::now() + pause;
            let batch = match batch {
                Ok((batch, dropped)) => {
                    // Runs of a damaged queue row end as one failed run, unstarted.
                    state.metrics.action_queue_depth.dec_by(dropped as i64);
                    batch
                }
                Err(err) => {
                    warn!(error = %crate::error_chain(&err), "failed to claim pending action runs");
                    drop(permit);
                    tokio::select! {
                        () = tokio::time::sleep(CLAIM_RETRY) => continue,
                        _ = shutdown.changed() => break,
                    }
                }
            };
            behind.store(batch.len() == limit, Ordering::Relaxed);
            if batch.is_empty() {
                drop(permit);
                tokio::select! {
                    () = queue.wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            records = read_records(&state, &batch).await;
            claimed.extend(batch);
        }
        let Some(mut run) = claimed.pop_front() else {
            continue;
        };
        state.metrics.action_queue_depth.dec();
        let started = Utc::now();
        let delay = (started - run.created_at).to_std().unwrap_or_default();
        state
            .metrics
            .action_start_delay
            .observe(delay.as_secs_f64());
        state.metrics.actions_in_progress.inc();
        let state = state.clone();
        let effects = effects.clone();
        let done = done_tx.clone();
        let fields = run.record.and_then(|record| records.get(&record).cloned());
        tokio::spawn(async move {
            let input = with_record(std::mem::take(&mut run.input), fields.as_deref());
            let mut result = execute(&state, &effects, &run, input).await;
            // Only a waiting API request reads the output, which can be a 1 MiB response,
            // so finished runs in the finisher's queue stay small.
            if !state.actions.is_awaited(&run.id) {
                result.output = Value::Null;
            }
            state.metrics.actions_in_progress.dec();
            run.started_at = Some(started);
            // After shutdown stopped the finisher the send fails, so the run stays
            // `running` in the store and runs again after the next start.
            let _ = done
                .send(Done {
                    run,
                    result,
                    started,
                })
                .await;
            drop(permit);
        });
    }

    // Claimed runs that never started go back to pending, without the attempt.
    if !claimed.is_empty() {
        let ids: Vec<String> = claimed.iter().map(|run| run.id.clone()).collect();
        match state.store.release_action_runs(ids).await {
            Ok(released) => {
                state.metrics.action_queue_depth.inc_by(released as i64);
            }
            Err(err) => {
                warn!(
                    error = %crate::error_chain(&err),
                    runs = claimed.len(),
                    "failed to release claimed action runs at shutdown; they run after the next start"
                );
            }
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

/// Reads the fields of the records of `runs`, each once. A record that cannot be read is
/// left out, with a warning, and its runs get no record fields.
async fn read_records(
    state: &AppState,
    runs: &[ActionRun],
) -> HashMap<Cursor, Arc<Map<String, Value>>> {
    let mut cursors: Vec<Cursor> = runs.iter().filter_map(|run| run.record).collect();
    cursors.sort_unstable();
    cursors.dedup();
    match state.store.record_fields(cursors).await {
        Ok(found) => found
            .into_iter()
            .map(|(cursor, fields)| (cursor, Arc::new(fields)))
            .collect(),
        Err(err) => {
            warn!(error = %crate::error_chain(&err), "failed to read the records of claimed action runs; they run without record fields");
            HashMap::new()
        }
    }
}

/// Returns a run's input with its record's fields in front, as the store shows it.
fn with_record(own: Value, fields: Option<&Map<String, Value>>) -> Value {
    match (own, fields) {
        (Value::Object(own), Some(fields)) => {
            let mut input = fields.clone();
            input.extend(own);
            Value::Object(input)
        }
        (own, _) => own,
    }
}

/// Executes one claimed run, with `input`, with the action as configured now.
async fn execute(
    state: &AppState,
    effects: &HubEffects,
    run: &ActionRun,
    input: Value,
) -> RunResult {
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
    let outcome = run_action(&action, input, effects).instrument(span).await;
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
    mut done: mpsc::Receiver<Done>,
    mut stop: oneshot::Receiver<()>,
    behind: Arc<AtomicBool>,
    load: Arc<Mutex<WriterLoad>>,
) {
    let queue: &ActionQueue = &state.actions;
    let mut stopping = false;
    // Finished runs whose end the store failed to record, tried again before new ones.
    // While they wait, newly finished runs fill the bounded channel, and once it is full
    // the runner starts no new runs.
    let mut retry: Vec<Done> = Vec::new();
    loop {
        let mut batch = if retry.is_empty() {
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
                // Let the runs that end meanwhile join this batch, until it is full: one
                // transaction for many short runs leaves the writer to ingest.
                let gather = if behind.load(Ordering::Relaxed) {
                    FINISH_GATHER_BEHIND
                } else {
                    FINISH_GATHER
                };
                let deadline = tokio::time::Instant::now() + gather;
                while batch.len() < FINISH_BATCH {
                    match tokio::time::timeout_at(deadline, done.recv()).await {
                        Ok(Some(next)) => batch.push(next),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            batch
        } else {
            std::mem::take(&mut retry)
        };
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
                started_at: Some(done.started),
                finished_at: now,
            })
            .collect();
        let call_start = tokio::time::Instant::now();
        let finished = state.store.finish_action_runs(rows).await;
        let pause = load
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .after_call(&state, call_start.elapsed());
        match finished {
            Ok(missing) if !missing.is_empty() => {
                warn!(runs = ?missing, "finished action runs were no longer running");
            }
            Ok(_) => {}
            Err(err) if !stopping => {
                warn!(
                    error = %crate::error_chain(&err),
                    runs = batch.len(),
                    retry_in_ms = FINISH_RETRY.as_millis() as u64,
                    "failed to record finished action runs; trying again"
                );
                retry = batch;
                tokio::select! {
                    () = tokio::time::sleep(FINISH_RETRY) => {}
                    _ = &mut stop => stopping = true,
                }
                continue;
            }
            Err(err) => {
                warn!(
                    error = %crate::error_chain(&err),
                    runs = batch.len(),
                    "failed to record finished action runs at shutdown; they run again after the next start"
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
            let took = (now - done.started).to_std().unwrap_or_default();
            state.metrics.action_duration.observe(took.as_secs_f64());
            queue.complete(&done.run.id, done.result);
        }
        if !stopping && !pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = &mut stop => stopping = true,
            }
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
