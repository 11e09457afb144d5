use crate::activity::Activity;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use hubkit_model::Record;
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};

use chrono::{DateTime, Utc};

use crate::action_runs::{NewActionRun, encode_runs};
use crate::camera::{CameraRequest, CameraWrite, NewCameraRequest};
use crate::codec::EncodedRecord;
use crate::files::{FileRemoval, FileRow, NewFile, find_file, live_files, mark_removed};
use crate::mqtt::{
    DeadLetterPage, MqttExtra, MqttWrite, MqttWritten, dead_letter_count, dead_letter_payload,
    dead_letters,
};
use crate::schema::{open_reader, open_writer};
use crate::writer::{Attachment, Message, WriteRequest, Writer};
use crate::{Cursor, RecordPage, RecordQuery, StoreError, StoreOptions};

/// Largest accepted [`StoreOptions::broadcast_capacity`].
const MAX_BROADCAST_CAPACITY: usize = 1 << 20;

/// Number of idle read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// A committed record with its cursor, as returned by queries and broadcast after
/// every commit.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    /// Position of the record in commit order.
    pub cursor: Cursor,
    /// The record as inserted.
    pub record: Record,
}

/// Handle to the SQLite store of records; clones share one writer thread and one
/// pool of read connections.
///
/// One writer thread owns the write connection. It waits for an
/// [`insert`](Store::insert), takes the inserts queued behind it up to
/// [`StoreOptions::max_batch`] records, writes them in one transaction and replies to every
/// caller after `COMMIT` returned (group commit). Reads run on separate read-only
/// connections in [`tokio::task::spawn_blocking`]. In WAL mode they read the last
/// committed state while the writer works, without waiting for its transactions.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use hubkit_store::{RecordQuery, Store, StoreOptions};
///
/// let folder = tempfile::tempdir()?;
/// let store = Store::open(&folder.path().join("hub.db"), StoreOptions::default())?;
/// let page = store
///     .query(RecordQuery {
///         layer: Some("Webhooks".into()),
///         ..RecordQuery::default()
///     })
///     .await?;
/// assert!(page.records.is_empty());
/// store.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    path: PathBuf,
    sender: mpsc::Sender<Message>,
    closing: AtomicBool,
    broadcast: broadcast::Sender<Arc<StoredRecord>>,
    readers: Mutex<Vec<Connection>>,
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    activity: Arc<Activity>,
}

impl Store {
    /// Opens the database at `path` and starts the writer thread.
    ///
    /// Creates the file and its folder if missing, switches the file to WAL, sets
    /// `synchronous` and a 5 second busy timeout, and applies missing schema migrations.
    /// Blocks the calling thread while it does so.
    ///
    /// # Errors
    ///
    /// [`StoreError::CreateFolder`], [`StoreError::Open`] or [`StoreError::NotWal`] when
    /// the file cannot be prepared, [`StoreError::UnsupportedSchema`] when the file is
    /// from a newer hubkit, [`StoreError::Migrate`] when a migration fails, and
    /// [`StoreError::SpawnWriter`] when the thread cannot start.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let conn = open_writer(path, options.synchronous)?;
        let (sender, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let broadcast_capacity = options.broadcast_capacity.clamp(1, MAX_BROADCAST_CAPACITY);
        let (broadcast, _) = broadcast::channel(broadcast_capacity);
        let activity = Arc::new(Activity::default());
        let writer = Writer::new(
            activity.clone(),
            conn,
            receiver,
            broadcast.clone(),
            options.max_batch,
            options.commit_observer,
            path.to_owned(),
        );
        let handle = std::thread::Builder::new()
            .name("hubkit-store-writer".into())
            .spawn(move || writer.run())
            .map_err(|source| StoreError::SpawnWriter { source })?;
        tracing::info!(
            store.path = %path.display(),
            store.synchronous = ?options.synchronous,
            "opened store"
        );
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                sender,
                closing: AtomicBool::new(false),
                broadcast,
                readers: Mutex::new(Vec::new()),
                writer: tokio::sync::Mutex::new(Some(handle)),
                activity,
            }),
        })
    }

    /// Returns the time the writer thread has spent writing since the store opened:
    /// batches of records and maintenance such as claims of action runs. Background work,
    /// such as an action runner, can compare it with the time passed to see how busy the
    /// writer is, and leave it to ingest.
    pub fn writer_busy(&self) -> std::time::Duration {
        self.inner.activity.busy()
    }

    /// Returns the time the writer thread has spent on batches that held more than one
    /// write request since the store opened. Writes share a batch when they arrive while
    /// the writer is busy, so this time grows when writers queue for the writer: a single
    /// client that waits for each commit, however slow the disk, adds nothing to it.
    pub fn writer_contended(&self) -> std::time::Duration {
        self.inner.activity.contended()
    }

    /// Stores `records` in one transaction and returns their cursors, in order.
    ///
    /// Waits while the queue is full, and resolves after `COMMIT` returned, so with
    /// [`Synchronous::Full`](crate::Synchronous::Full) the records are on disk. Dropping
    /// the future after the request was queued does not cancel the write.
    ///
    /// The store does not check that `DataId`s are unique: a unique index would add a
    /// page write to most commits. [`DataId::new`](hubkit_model::DataId::new) makes
    /// unique ids; a caller that brings its own must keep them unique.
    ///
    /// # Errors
    ///
    /// [`StoreError::TimestampOutOfRange`] or [`StoreError::Encode`] for a record that
    /// cannot be stored (nothing is written), [`StoreError::Write`] when the
    /// transaction failed, and [`StoreError::Closed`] after [`close`](Store::close).
    pub async fn insert(&self, records: Vec<Record>) -> Result<Vec<Cursor>, StoreError> {
        self.write(records, Attachment::None, Vec::new())
            .await
            .map(|(cursors, _)| cursors)
    }

    /// Stores `records` and the stored `file` they refer to in one transaction, linking
    /// the file to each record, and returns the records' cursors; see
    /// [`insert`](Store::insert).
    ///
    /// Write the file to disk, sync it and its folder first: once this returns, the
    /// records point at the file.
    ///
    /// # Errors
    ///
    /// As for [`insert`](Store::insert), and [`StoreError::FileTimestampOutOfRange`] when
    /// the file's receipt time does not fit `i64` nanoseconds.
    pub async fn insert_with_file(
        &self,
        records: Vec<Record>,
        file: NewFile,
    ) -> Result<Vec<Cursor>, StoreError> {
        let received_ns = file.received_ns()?;
        self.write(records, Attachment::File(file, received_ns), Vec::new())
            .await
            .map(|(cursors, _)| cursors)
    }

    /// Stores `records`, the stored `file` they refer to and pending action `runs` in one
    /// transaction; see [`insert_with_file`](Store::insert_with_file) and
    /// [`insert_with_runs`](Store::insert_with_runs).
    ///
    /// # Errors
    ///
    /// As for those two.
    pub async fn insert_with_file_and_runs(
        &self,
        records: Vec<Record>,
        file: NewFile,
        runs: Vec<NewActionRun>,
    ) -> Result<Vec<Cursor>, StoreError> {
        let received_ns = file.received_ns()?;
        self.write(records, Attachment::File(file, received_ns), runs)
            .await
            .map(|(cursors, _)| cursors)
    }

    /// Stores the records of one camera request with its other rows in one transaction:
    /// the raw request (when it is kept in the database), the stored files and the
    /// pending action runs. Each file comes with the indexes into `records` of the
    /// records that refer to it, so retention's removal of the file is written into those
    /// records' `Data`. Out-of-range file indexes are ignored, but an out-of-range run
    /// index is an error.
    ///
    /// Write the files to disk, sync them and their folders first, as for
    /// [`insert_with_file`](Store::insert_with_file).
    ///
    /// # Errors
    ///
    /// As for [`insert_with_file`](Store::insert_with_file), and the run errors of
    /// [`insert_with_runs`](Store::insert_with_runs).
    pub async fn insert_camera(
        &self,
        records: Vec<Record>,
        write: CameraWrite,
    ) -> Result<Vec<Cursor>, StoreError> {
        let files = write
            .files
            .into_iter()
            .map(|(file, links)| file.received_ns().map(|ns| (file, ns, links)))
            .collect::<Result<Vec<_>, _>>()?;
        let raw = write.raw.map(NewCameraRequest::encode).transpose()?;
        self.write(records, Attachment::Camera(files, raw), write.runs)
            .await
            .map(|(cursors, _)| cursors)
    }

    /// Returns the raw camera request with `id`, or `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when the query fails.
    pub async fn camera_request(&self, id: &str) -> Result<Option<CameraRequest>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            inner.with_reader(|conn| crate::camera::camera_request(conn, &id))
        })
        .await
        .map_err(|source| StoreError::ReadTask { source })?
    }

    /// Stores the records and dead letters of one MQTT message in one transaction, unless
    /// the message is a redelivery of one committed before; see
    /// [`InboxKey`](crate::InboxKey) for how redeliveries are recognised. With an inbox
    /// key the message's identity is written in the same transaction. The pending action
    /// runs commit with the records, and a redelivery writes none of them.
    ///
    /// # Errors
    ///
    /// As for [`insert`](Store::insert), and the run errors of
    /// [`insert_with_runs`](Store::insert_with_runs).
    pub async fn insert_mqtt(&self, write: MqttWrite) -> Result<MqttWritten, StoreError> {
        let dead_letters = write
            .dead_letters
            .into_iter()
            .map(|letter| {
                let received_ns = crate::mqtt::time_ns(&letter.received_at);
                (letter, received_ns)
            })
            .collect();
        let extra = MqttExtra {
            dead_letters,
            inbox: write.inbox,
            duplicate: std::cell::Cell::new(false),
        };
        let (cursors, duplicate) = self
            .write(write.records, Attachment::Mqtt(extra), write.runs)
            .await?;
        Ok(MqttWritten { cursors, duplicate })
    }

    /// Forgets what identified the committed messages of `session`, after the broker
    /// reported that it has no stored session: it numbers packets anew, so a redelivery
    /// in the new session must never match a message of the old one. The reset goes
    /// through the writer's queue, so writes queued before it are committed first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Write`] when the transaction fails, [`StoreError::Closed`] after
    /// [`close`](Store::close).
    pub async fn reset_mqtt_session(&self, session: &str) -> Result<(), StoreError> {
        let attachment = Attachment::ResetSession(session.to_owned());
        self.write(Vec::new(), attachment, Vec::new())
            .await
            .map(drop)
    }

    /// Returns up to `limit` (1 to 1000) dead letters with ids below `before`, newest
    /// first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails, [`StoreError::ReadTask`] when the blocking
    /// task fails.
    pub async fn dead_letters(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            inner.with_reader(|conn| dead_letters(conn, before, limit))
        })
        .await
        .map_err(|source| StoreError::ReadTask { source })?
    }

    /// Returns the whole payload of dead letter `id`, or `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails, [`StoreError::ReadTask`] when the blocking
    /// task fails.
    pub async fn dead_letter_payload(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.with_reader(|conn| dead_letter_payload(conn, id)))
            .await
            .map_err(|source| StoreError::ReadTask { source })?
    }

    /// Returns the number of stored dead letters. Blocks the calling thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails.
    pub fn dead_letter_count(&self) -> Result<u64, StoreError> {
        self.inner.with_reader(dead_letter_count)
    }

    /// Sends one write request to the writer thread and waits for its commit. Returns
    /// the records' cursors and whether an MQTT message was a redelivery.
    pub(crate) async fn write(
        &self,
        records: Vec<Record>,
        attachment: Attachment,
        runs: Vec<NewActionRun>,
    ) -> Result<(Vec<Cursor>, bool), StoreError> {
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let has_extra = match &attachment {
            Attachment::Mqtt(extra) => !extra.dead_letters.is_empty() || extra.inbox.is_some(),
            Attachment::ResetSession(_) => true,
            Attachment::None | Attachment::File(..) | Attachment::Camera(..) => false,
        };
        if records.is_empty() && !has_extra && runs.is_empty() {
            return Ok((Vec::new(), false));
        }
        let runs = encode_runs(runs, &records)?;
        let records = records
            .into_iter()
            .map(EncodedRecord::new)
            .collect::<Result<Vec<_>, _>>()?;
        let (reply, response) = oneshot::channel();
        let request = Message::Write(WriteRequest {
            records,
            attachment,
            runs,
            reply,
        });
        self.inner
            .sender
            .send(request)
            .await
            .map_err(|_| StoreError::Closed)?;
        let done = response.await.map_err(|_| StoreError::Closed)?;
        // Free the records here, on the thread that allocated them.
        drop(done.records);
        done.reply.map(|cursors| (cursors, done.duplicate))
    }

    /// Returns a receiver of every record committed from now on, in commit order.
    ///
    /// Records are broadcast before their `insert` call returns.
    ///
    /// A receiver that falls more than [`StoreOptions::broadcast_capacity`] records
    /// behind gets `RecvError::Lagged` and misses the oldest records.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredRecord>> {
        self.inner.broadcast.subscribe()
    }

    /// Returns one page of the records that match `query`.
    ///
    /// Works after [`close`](Store::close) too.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails, [`StoreError::Decode`] when a stored row is
    /// invalid, [`StoreError::ReadTask`] when the blocking task fails.
    pub async fn query(&self, query: RecordQuery) -> Result<RecordPage, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.with_reader(|conn| query.run(conn)))
            .await
            .map_err(|source| StoreError::ReadTask { source })?
    }

    /// Returns the stored file at `path` (relative to the files folder), or `None` when
    /// there is none or retention removed it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails, [`StoreError::ReadTask`] when the blocking
    /// task fails.
    pub async fn find_file(&self, path: &str) -> Result<Option<FileRow>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || inner.with_reader(|conn| find_file(conn, &path)))
            .await
            .map_err(|source| StoreError::ReadTask { source })?
    }

    /// Returns the files of `owner` that retention has not removed, oldest first.
    ///
    /// # Errors
    ///
    /// As for [`find_file`](Store::find_file).
    pub async fn live_files(&self, owner: &str) -> Result<Vec<FileRow>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let owner = owner.to_owned();
        tokio::task::spawn_blocking(move || inner.with_reader(|conn| live_files(conn, &owner)))
            .await
            .map_err(|source| StoreError::ReadTask { source })?
    }

    /// Marks files removed at `at`, and adds `"Removed": {"At": <RFC 3339>, "Reason":
    /// <reason>}` to the `Data` of each record that refers to them, in one transaction on
    /// the writer thread. Returns how many files were marked; files already marked are
    /// skipped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Write`] when the transaction fails, [`StoreError::Closed`] after
    /// [`close`](Store::close).
    pub async fn mark_files_removed(
        &self,
        removals: Vec<FileRemoval>,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let count = removals.len();
        self.maintain(move |conn| {
            mark_removed(conn, &removals, at).map_err(|source| StoreError::Write {
                records: count,
                source: Arc::new(source),
            })
        })
        .await
    }

    /// Runs `function` on the write connection between two batches and returns its
    /// result. Readers go on meanwhile, because WAL mode lets them read the last commit.
    ///
    /// # Errors
    ///
    /// The error of `function`, or [`StoreError::Closed`] after [`close`](Store::close).
    pub(crate) async fn maintain<T: Send + 'static>(
        &self,
        function: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.inner.closing.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, response) = oneshot::channel();
        let message = Message::Maintain(Box::new(move |conn| {
            // A failed send means the caller went away; what the function wrote stays
            // committed.
            let _ = reply.send(function(conn));
        }));
        self.inner
            .sender
            .send(message)
            .await
            .map_err(|_| StoreError::Closed)?;
        response.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `function` on a pooled read connection in a blocking task.
    ///
    /// # Errors
    ///
    /// The error of `function`, or [`StoreError::ReadTask`] when the blocking task fails.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        function: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.with_reader(function))
            .await
            .map_err(|source| StoreError::ReadTask { source })?
    }

    /// Returns the number of stored records. Blocks the calling thread, so call it at
    /// startup or inside `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Read`] when SQLite fails.
    pub fn record_count(&self) -> Result<u64, StoreError> {
        self.inner.with_reader(|conn| {
            let count: i64 = conn
                .query_row("SELECT count(*) FROM record_data", [], |row| row.get(0))
                .map_err(|source| StoreError::Read { source })?;
            Ok(count.unsigned_abs())
        })
    }

    /// Stops taking inserts, writes the queued ones, closes the write connection and
    /// joins the writer thread. Later inserts fail with [`StoreError::Closed`]; calling
    /// it again waits for the first call to finish.
    pub async fn close(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let mut writer = self.inner.writer.lock().await;
        let Some(handle) = writer.take() else {
            return;
        };
        let (ack, done) = oneshot::channel();
        if self.inner.sender.send(Message::Shutdown(ack)).await.is_ok() {
            // An error means the thread ended without replying, and the join below shows why.
            let _ = done.await;
        }
        let path = self.inner.path.display();
        match tokio::task::spawn_blocking(move || handle.join()).await {
            Ok(Ok(())) => tracing::info!(store.path = %path, "closed store"),
            Ok(Err(_)) => tracing::error!(store.path = %path, "store writer thread panicked"),
            Err(err) => tracing::error!(
                store.path = %path,
                error = %err,
                "failed to join the store writer thread"
            ),
        }
    }

    /// Runs `function` on the write connection between two batches and returns its
    /// result.
    #[cfg(test)]
    pub(crate) async fn with_writer_connection<T: Send + 'static>(
        &self,
        function: impl FnOnce(&Connection) -> T + Send + 'static,
    ) -> T {
        let (reply, response) = oneshot::channel();
        let message = Message::Inspect(Box::new(move |conn| {
            let _ = reply.send(function(conn));
        }));
        assert!(
            self.inner.sender.send(message).await.is_ok(),
            "writer is running"
        );
        response.await.expect("writer runs the function")
    }

    /// Returns the number of messages waiting for the writer thread.
    #[cfg(test)]
    pub(crate) fn queued_messages(&self) -> usize {
        self.inner.sender.max_capacity() - self.inner.sender.capacity()
    }
}

impl Inner {
    /// Runs `function` on a pooled read connection, opening one if none is idle.
    pub(crate) fn with_reader<T>(
        &self,
        function: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path).map_err(|source| StoreError::Read { source })?,
        };
        let result = function(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result
    }
}
