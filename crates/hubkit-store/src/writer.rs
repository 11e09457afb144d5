//! The writer thread: it owns the only write connection and commits queued requests
//! in groups.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Statement, TransactionBehavior};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::action_runs::{EncodedActionRun, insert_runs};
use crate::activity::Activity;
use crate::codec::{EncodedRecord, INSERT_SQL, SourceCache, insert_row};
use crate::files::{NewFile, insert_file};
use crate::mqtt::{MqttExtra, insert_extra, is_redelivery};
use crate::options::{CommitObserver, CommitStats};
use crate::{Cursor, StoreError, StoredRecord};

/// Result of one `insert` call.
pub(crate) type Reply = Result<Vec<Cursor>, StoreError>;

/// Message of the writer to one `insert` call once its batch is done.
pub(crate) struct Done {
    pub(crate) reply: Reply,
    /// The request's records, unless they went to subscribers. They travel back so the
    /// thread that allocated them frees them, because cross-thread frees took about 8% of
    /// user CPU in a profile of the webhook benchmark.
    pub(crate) records: Vec<EncodedRecord>,
    /// Whether an MQTT request was a redelivery that wrote nothing.
    pub(crate) duplicate: bool,
}

/// Records of one `insert` call, which are committed together.
pub(crate) struct WriteRequest {
    pub(crate) records: Vec<EncodedRecord>,
    /// The other rows the transaction writes with the records.
    pub(crate) attachment: Attachment,
    /// Pending action runs that commit with the records.
    pub(crate) runs: Vec<EncodedActionRun>,
    pub(crate) reply: oneshot::Sender<Done>,
}

/// Rows written in the same transaction as a request's records.
pub(crate) enum Attachment {
    None,
    /// A stored file that the records refer to, with its receipt time in nanoseconds.
    File(NewFile, i64),
    /// The rows of a camera request: stored files, each with its receipt time in
    /// nanoseconds and the indexes of the records that refer to it, and the raw request
    /// when it is kept in the database.
    Camera(
        Vec<(NewFile, i64, Vec<usize>)>,
        Option<crate::camera::EncodedCameraRequest>,
    ),
    /// Dead letters and the inbox row of an MQTT message.
    Mqtt(MqttExtra),
    /// Forget the inbox rows of an MQTT session that the broker no longer has.
    ResetSession(String),
}

/// Message to the writer thread.
pub(crate) enum Message {
    Write(WriteRequest),
    /// Stop taking messages, write the queued ones, close the connection, then send
    /// `()`.
    Shutdown(oneshot::Sender<()>),
    /// Runs a maintenance function, such as marking files removed, on the write
    /// connection between two batches.
    Maintain(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Runs a function on the write connection between two batches.
    #[cfg(test)]
    Inspect(Box<dyn FnOnce(&Connection) + Send>),
}

/// Next item of the queue, after shutdowns and test hooks are handled.
enum Next {
    Request(WriteRequest),
    Empty,
    Disconnected,
}

/// Failure of a whole-batch transaction.
enum BatchError {
    /// An `INSERT` failed; the transaction was rolled back.
    Insert(rusqlite::Error),
    /// `BEGIN`, statement preparation or `COMMIT` failed.
    Transaction(rusqlite::Error),
}

/// State of the writer thread.
pub(crate) struct Writer {
    activity: Arc<Activity>,
    conn: Connection,
    receiver: mpsc::Receiver<Message>,
    broadcast: broadcast::Sender<Arc<StoredRecord>>,
    max_batch: usize,
    observer: Option<CommitObserver>,
    path: PathBuf,
    carry: Option<WriteRequest>,
    shutdown_acks: Vec<oneshot::Sender<()>>,
    failures: FailureLog,
    sources: SourceCache,
}

impl Writer {
    /// Creates the state; `max_batch` 0 counts as 1.
    pub(crate) fn new(
        activity: Arc<Activity>,
        conn: Connection,
        receiver: mpsc::Receiver<Message>,
        broadcast: broadcast::Sender<Arc<StoredRecord>>,
        max_batch: usize,
        observer: Option<CommitObserver>,
        path: PathBuf,
    ) -> Writer {
        Writer {
            activity,
            conn,
            receiver,
            broadcast,
            max_batch: max_batch.max(1),
            observer,
            path,
            carry: None,
            shutdown_acks: Vec::new(),
            failures: FailureLog::default(),
            sources: SourceCache::default(),
        }
    }

    /// Commits batches until every sender is dropped or a shutdown drained the queue.
    pub(crate) fn run(mut self) {
        tracing::info!(store.path = %self.path.display(), "store writer started");
        while let Some((batch, records)) = self.collect_batch() {
            self.write(batch, records);
        }
        let Writer {
            conn,
            path,
            shutdown_acks,
            ..
        } = self;
        // SQLite folds the log into the database file when the last connection closes,
        // but pooled readers may still be open. Doing it here leaves a database file
        // that contains every record by itself, for backups that copy only that file.
        if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(
                store.path = %path.display(),
                error = %err,
                "failed to fold the write-ahead log into the database file at close"
            );
        }
        if let Err((_, err)) = conn.close() {
            tracing::error!(
                store.path = %path.display(),
                error = %err,
                "failed to close the write connection"
            );
        }
        tracing::info!(store.path = %path.display(), "store writer stopped");
        for ack in shutdown_acks {
            // A failed send means the task that called close was dropped, so it is ignored.
            let _ = ack.send(());
        }
    }

    /// Waits for a request, then takes the requests already queued while the batch stays
    /// within `max_batch` records. Returns `None` when the queue is closed and empty.
    fn collect_batch(&mut self) -> Option<(Vec<WriteRequest>, usize)> {
        let first = match self.carry.take() {
            Some(request) => request,
            None => match self.next(true) {
                Next::Request(request) => request,
                Next::Empty | Next::Disconnected => return None,
            },
        };
        let mut records = first.records.len();
        let mut batch = vec![first];
        while records < self.max_batch {
            match self.next(false) {
                Next::Request(request) if records + request.records.len() <= self.max_batch => {
                    records += request.records.len();
                    batch.push(request);
                }
                Next::Request(request) => {
                    self.carry = Some(request);
                    break;
                }
                Next::Empty | Next::Disconnected => break,
            }
        }
        Some((batch, records))
    }

    /// Returns the next write request, handling shutdowns and test hooks on the way.
    fn next(&mut self, block: bool) -> Next {
        loop {
            let message = if block {
                match self.receiver.blocking_recv() {
                    Some(message) => message,
                    None => return Next::Disconnected,
                }
            } else {
                match self.receiver.try_recv() {
                    Ok(message) => message,
                    Err(TryRecvError::Empty) => return Next::Empty,
                    Err(TryRecvError::Disconnected) => return Next::Disconnected,
                }
            };
            match message {
                Message::Write(request) => return Next::Request(request),
                Message::Maintain(function) => {
                    let conn = &mut self.conn;
                    self.activity.time(|| function(conn));
                }
                Message::Shutdown(ack) => {
                    // Closing rejects new sends but keeps the queued messages readable.
                    self.receiver.close();
                    self.shutdown_acks.push(ack);
                }
                #[cfg(test)]
                Message::Inspect(function) => function(&self.conn),
            }
        }
    }

    /// Writes one batch, publishes what was committed and sends every request its reply.
    fn write(&mut self, mut batch: Vec<WriteRequest>, records: usize) {
        let started = Instant::now();
        let (conn, sources) = (&mut self.conn, &mut self.sources);
        let replies = self
            .activity
            .time_batch(batch.len(), || write_batch(conn, sources, &batch));
        let stats = self.publish(&mut batch, &replies, started.elapsed());
        self.log_failures(&replies, records);
        if stats.requests > 0 {
            self.observe(&stats);
        }
        for (request, reply) in batch.into_iter().zip(replies) {
            let duplicate = match &request.attachment {
                Attachment::Mqtt(extra) => extra.duplicate.get(),
                _ => false,
            };
            let done = Done {
                reply,
                records: request.records,
                duplicate,
            };
            // A failed send means the caller dropped its future, which does not undo a write.
            let _ = request.reply.send(done);
        }
    }

    /// Broadcasts the committed records in commit order and returns their statistics.
    fn publish(
        &self,
        batch: &mut [WriteRequest],
        replies: &[Reply],
        duration: Duration,
    ) -> CommitStats {
        let mut stats = CommitStats {
            records: 0,
            requests: 0,
            duration,
        };
        let has_subscribers = self.broadcast.receiver_count() > 0;
        for (request, reply) in batch.iter_mut().zip(replies) {
            let Ok(cursors) = reply else { continue };
            stats.records += cursors.len();
            stats.requests += 1;
            if !has_subscribers {
                continue;
            }
            let records = std::mem::take(&mut request.records);
            for (encoded, cursor) in records.into_iter().zip(cursors) {
                let stored = StoredRecord {
                    cursor: *cursor,
                    record: encoded.record,
                };
                // Fails only when every subscriber left since the check above.
                let _ = self.broadcast.send(Arc::new(stored));
            }
        }
        stats
    }

    /// Runs the commit observer; a panic in it is logged and does not stop the thread.
    fn observe(&self, stats: &CommitStats) {
        let Some(observer) = &self.observer else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| observer(stats))).is_err() {
            tracing::error!(store.path = %self.path.display(), "commit observer panicked");
        }
    }

    /// Logs write failures as errors, at most once per [`FAILURE_LOG_INTERVAL`].
    fn log_failures(&mut self, replies: &[Reply], records: usize) {
        let write_error = replies.iter().rev().find_map(|reply| match reply {
            Err(StoreError::Write { source, .. }) => Some(Arc::clone(source)),
            _ => None,
        });
        let Some(err) = write_error else {
            return;
        };
        let now = Instant::now();
        if self
            .failures
            .last_logged
            .is_some_and(|last| now.duration_since(last) < FAILURE_LOG_INTERVAL)
        {
            self.failures.suppressed += 1;
            return;
        }
        tracing::error!(
            store.path = %self.path.display(),
            batch.requests = replies.len(),
            batch.records = records,
            failures.suppressed = self.failures.suppressed,
            error = %err,
            "failed to write records; the writer goes on with the next batch"
        );
        self.failures = FailureLog {
            last_logged: Some(now),
            suppressed: 0,
        };
    }
}

/// Shortest time between two error logs of failed batches, so a full disk does not
/// flood the log.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Rate limit state of the failed-batch log.
#[derive(Default)]
struct FailureLog {
    last_logged: Option<Instant>,
    /// Failed batches not logged since `last_logged`.
    suppressed: u64,
}

/// Writes a batch and returns one reply per request, in order.
///
/// The fast path writes every request in one transaction. When an `INSERT` fails and
/// the batch contains several requests, the batch is written again with one savepoint per
/// request, so only the request that failed gets the error.
fn write_batch(
    conn: &mut Connection,
    sources: &mut SourceCache,
    batch: &[WriteRequest],
) -> Vec<Reply> {
    let written = write_together(conn, sources, batch);
    if written.is_err() {
        // The rollback may have removed `sources` rows that the cache contains.
        sources.clear();
    }
    match written {
        Ok(cursors) => cursors.into_iter().map(Ok).collect(),
        Err(BatchError::Insert(_)) if batch.len() > 1 => write_separately(conn, sources, batch)
            .unwrap_or_else(|err| {
                sources.clear();
                fail_all(batch, err)
            }),
        Err(BatchError::Insert(source)) => match batch.first() {
            Some(request) => vec![Err(request_error(request, source))],
            None => Vec::new(),
        },
        Err(BatchError::Transaction(err)) => fail_all(batch, err),
    }
}

/// Writes every request of the batch in one transaction and returns their cursors.
///
/// `BEGIN` and `COMMIT` run as cached statements rather than through
/// [`Connection::transaction_with_behavior`], which parses both anew for every batch.
fn write_together(
    conn: &mut Connection,
    sources: &mut SourceCache,
    batch: &[WriteRequest],
) -> Result<Vec<Vec<Cursor>>, BatchError> {
    run_cached(conn, "BEGIN IMMEDIATE").map_err(BatchError::Transaction)?;
    let written = insert_batch(conn, sources, batch).and_then(|all| {
        run_cached(conn, "COMMIT")
            .map(|()| all)
            .map_err(BatchError::Transaction)
    });
    if written.is_err() && !conn.is_autocommit() {
        // SQLite may already have rolled back after an I/O error; otherwise undo here.
        if let Err(err) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %err, "failed to roll back a failed batch");
        }
    }
    written
}

/// Inserts every request of the batch into the open transaction.
fn insert_batch(
    conn: &Connection,
    sources: &mut SourceCache,
    batch: &[WriteRequest],
) -> Result<Vec<Vec<Cursor>>, BatchError> {
    let mut statement = conn
        .prepare_cached(INSERT_SQL)
        .map_err(BatchError::Transaction)?;
    let mut all = Vec::with_capacity(batch.len());
    for request in batch {
        let cursors =
            insert_all(conn, sources, &mut statement, request).map_err(BatchError::Insert)?;
        all.push(cursors);
    }
    Ok(all)
}

/// Runs a statement without parameters or rows through the statement cache.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Writes the batch in one transaction with a savepoint per request, so a request whose
/// `INSERT` fails is rolled back alone.
///
/// # Errors
///
/// Returns the SQLite error when the transaction itself fails: at `BEGIN`, at `COMMIT`,
/// or when SQLite rolled the whole transaction back after an I/O or disk full error.
fn write_separately(
    conn: &mut Connection,
    sources: &mut SourceCache,
    batch: &[WriteRequest],
) -> Result<Vec<Reply>, rusqlite::Error> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut replies = Vec::with_capacity(batch.len());
    for request in batch {
        let savepoint = tx.savepoint()?;
        let inserted = {
            let mut statement = savepoint.prepare_cached(INSERT_SQL)?;
            insert_all(&savepoint, sources, &mut statement, request)
        };
        match inserted {
            Ok(cursors) => {
                savepoint.commit()?;
                replies.push(Ok(cursors));
            }
            Err(err) if savepoint.is_autocommit() => return Err(err),
            Err(err) => {
                sources.clear();
                savepoint.finish()?;
                replies.push(Err(request_error(request, err)));
            }
        }
    }
    tx.commit()?;
    Ok(replies)
}

/// Inserts the records of one request, its attachment and its action runs, and returns
/// the records' cursors. An MQTT message that is a redelivery of a committed one writes
/// nothing.
fn insert_all(
    conn: &Connection,
    sources: &mut SourceCache,
    statement: &mut Statement<'_>,
    request: &WriteRequest,
) -> Result<Vec<Cursor>, rusqlite::Error> {
    if let Attachment::Mqtt(extra) = &request.attachment {
        let duplicate = match &extra.inbox {
            Some(key) => is_redelivery(conn, key)?,
            None => false,
        };
        extra.duplicate.set(duplicate);
        if duplicate {
            return Ok(Vec::new());
        }
    }
    let mut cursors = Vec::with_capacity(request.records.len());
    for encoded in &request.records {
        let source = sources.id(conn, &encoded.record)?;
        let seq = insert_row(statement, encoded, source)?;
        cursors.push(Cursor::from_seq(seq));
    }
    match &request.attachment {
        Attachment::None => {}
        Attachment::File(file, received_ns) => {
            insert_file(conn, file, *received_ns, cursors.iter().map(|c| c.seq()))?;
        }
        Attachment::Camera(files, raw) => {
            if let Some(raw) = raw {
                crate::camera::insert_camera_request(conn, raw)?;
            }
            for (file, received_ns, records) in files {
                let seqs = records
                    .iter()
                    .filter_map(|&index| cursors.get(index))
                    .map(|c| c.seq());
                insert_file(conn, file, *received_ns, seqs)?;
            }
        }
        Attachment::Mqtt(extra) => {
            insert_extra(conn, extra, crate::mqtt::time_ns(&chrono::Utc::now()))?;
        }
        Attachment::ResetSession(session) => {
            crate::mqtt::reset_session(conn, session)?;
        }
    }
    insert_runs(conn, &request.runs, &cursors)?;
    Ok(cursors)
}

/// Converts the failure of one `INSERT` of `request` into the caller's error.
fn request_error(request: &WriteRequest, source: rusqlite::Error) -> StoreError {
    StoreError::Write {
        records: request.records.len(),
        source: Arc::new(source),
    }
}

/// Returns the same write error for every request of the batch.
fn fail_all(batch: &[WriteRequest], source: rusqlite::Error) -> Vec<Reply> {
    let source = Arc::new(source);
    batch
        .iter()
        .map(|request| {
            Err(StoreError::Write {
                records: request.records.len(),
                source: Arc::clone(&source),
            })
        })
        .collect()
}
