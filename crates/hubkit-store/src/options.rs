use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Default of [`StoreOptions::max_batch`].
pub const DEFAULT_MAX_BATCH: usize = 512;
/// Default of [`StoreOptions::queue_capacity`].
pub const DEFAULT_QUEUE_CAPACITY: usize = 8192;
/// Default of [`StoreOptions::broadcast_capacity`].
pub const DEFAULT_BROADCAST_CAPACITY: usize = 4096;

/// How long a connection waits for a lock held by another connection before it fails
/// with `SQLITE_BUSY`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Write-ahead log size, in pages, at which a commit also checkpoints the log into the
/// database file (SQLite's `wal_autocheckpoint`, default 1000).
///
/// The writer thread runs that checkpoint before it can commit the next batch, so every
/// checkpoint stalls the requests waiting for it. At 4000 pages (16 MiB with 4 KiB
/// pages) they come a quarter as often. In interleaved runs of the webhook benchmark
/// (2-core VM, ext4) that lowered hubkitd's p99 from about 1.8 ms to about 1.2 ms.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 4000;

/// Size in bytes to which SQLite truncates a larger write-ahead log when it starts the
/// log over, so a burst that grew the log does not keep its disk space.
pub(crate) const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// SQLite's `synchronous` setting of the writer connection, in WAL mode.
///
/// The guarantees below are those of the SQLite documentation of `PRAGMA synchronous`
/// (<https://www.sqlite.org/pragma.html#pragma_synchronous>).
///
/// - [`Synchronous::Full`] syncs the WAL file on every commit, so a transaction that
///   committed survives a power loss or an OS crash.
/// - [`Synchronous::Normal`] syncs only at checkpoints. A committed transaction may roll
///   back after a power loss or OS crash, but the database is never corrupted. A crash of
///   the hubkit process alone loses nothing, because the written pages are already in
///   the OS page cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `PRAGMA synchronous=FULL`: durable commits.
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL`: faster commits that a power loss may undo.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Measurements of one committed transaction, passed to
/// [`StoreOptions::commit_observer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitStats {
    /// Records written by the transaction.
    pub records: usize,
    /// `insert` calls served by the transaction.
    pub requests: usize,
    /// Time from `BEGIN` to the return of `COMMIT`.
    pub duration: Duration,
}

/// Callback that receives the [`CommitStats`] of every successful commit.
pub type CommitObserver = Arc<dyn Fn(&CommitStats) + Send + Sync>;

/// Settings of [`Store::open`](crate::Store::open).
#[derive(Clone)]
pub struct StoreOptions {
    /// Durability of commits; [`Synchronous::Full`] by default.
    pub synchronous: Synchronous,
    /// Number of records after which the writer stops adding waiting requests to a
    /// transaction; 512 by default, and 0 counts as 1. A single `insert` with more
    /// records is still written whole, in one transaction.
    pub max_batch: usize,
    /// Number of `insert` requests that may wait for the writer; 8192 by default, and
    /// 0 counts as 1. When the queue is full, `insert` waits for a free slot.
    pub queue_capacity: usize,
    /// Number of committed records a [`subscribe`](crate::Store::subscribe)r may fall
    /// behind before it misses records and receives `RecvError::Lagged`; 4096 by
    /// default, clamped to 1..=1048576.
    pub broadcast_capacity: usize,
    /// Callback run on the writer thread after every successful commit, before the
    /// callers of the batch get their reply. It must be quick, because the callers and
    /// the next batch wait for it.
    pub commit_observer: Option<CommitObserver>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            synchronous: Synchronous::default(),
            max_batch: DEFAULT_MAX_BATCH,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            broadcast_capacity: DEFAULT_BROADCAST_CAPACITY,
            commit_observer: None,
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("synchronous", &self.synchronous)
            .field("max_batch", &self.max_batch)
            .field("queue_capacity", &self.queue_capacity)
            .field("broadcast_capacity", &self.broadcast_capacity)
            .field("commit_observer", &self.commit_observer.is_some())
            .finish()
    }
}
