//! Background checkpoints: a thread with its own connection copies the write-ahead log
//! into the database file, so no commit waits for a checkpoint.
//!
//! SQLite's own automatic checkpoint runs inside the `COMMIT` that crosses its threshold,
//! and the single writer thread commits nothing else until it is done. In the webhook
//! benchmark (2-core VM, ext4) raising that threshold from 1000 to 4000 pages lowered
//! the p99 latency from 1.6-2.0 ms to 0.9-1.4 ms, so the stalls were a large part of it.

use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::options::{BUSY_TIMEOUT, Synchronous};

/// Write-ahead log size, in pages, after a commit at which the checkpointer thread is
/// woken (SQLite's automatic checkpoint uses 1000).
pub(crate) const BACKGROUND_CHECKPOINT_PAGES: c_int = 1000;

/// Write-ahead log size, in pages, at which the writer checkpoints by itself, because the
/// checkpointer thread has not kept up (a slow disk, or readers that hold old pages).
/// 20000 pages are 80 MiB with 4 KiB pages.
pub(crate) const FOREGROUND_CHECKPOINT_PAGES: c_int = 20_000;

/// The checkpointer thread, which ends when every sender of its wake-up channel is gone.
pub(crate) struct Checkpointer {
    handle: JoinHandle<()>,
    path: PathBuf,
}

impl Checkpointer {
    /// Opens the checkpointer's connection, starts its thread and installs the write-ahead
    /// log hook on `writer`, which wakes the thread after commits that leave the log at
    /// [`BACKGROUND_CHECKPOINT_PAGES`] or more.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] when the connection cannot be opened or the hook installed,
    /// [`StoreError::SpawnWriter`] when the thread cannot start.
    pub(crate) fn start(
        writer: &mut Connection,
        path: &Path,
        synchronous: Synchronous,
    ) -> Result<Checkpointer, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // The checkpoint syncs the database file before the log may start over only when
        // its connection's `synchronous` is NORMAL or FULL.
        conn.pragma_update(None, "synchronous", synchronous.pragma_value())
            .map_err(open_error)?;

        let (wake, woken) = mpsc::sync_channel(1);
        let thread_path = path.to_owned();
        let handle = std::thread::Builder::new()
            .name("hubkit-store-checkpointer".into())
            .spawn(move || run(conn, &woken, &thread_path))
            .map_err(|source| StoreError::SpawnWriter { source })?;
        // Installing the hook replaces SQLite's automatic checkpoint on this connection.
        writer
            .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
                on_commit(wal, pages, &wake);
                Ok(())
            }))
            .map_err(open_error)?;
        Ok(Checkpointer {
            handle,
            path: path.to_owned(),
        })
    }

    /// Waits for the thread to end. Call it after closing the writer connection, because
    /// that connection owns the hook and with it the last sender.
    pub(crate) fn join(self) {
        if self.handle.join().is_err() {
            tracing::error!(store.path = %self.path.display(), "store checkpointer panicked");
        }
    }
}

/// Runs on the writer thread after every commit, with the log's size in pages. It never
/// returns an error, because SQLite would then report the committed transaction as failed.
fn on_commit(wal: &mut Wal, pages: c_int, wake: &SyncSender<()>) {
    if pages >= FOREGROUND_CHECKPOINT_PAGES {
        if let Err(err) = wal.checkpoint() {
            tracing::warn!(wal.pages = pages, error = %err, "write-ahead log checkpoint failed");
        }
    } else if pages >= BACKGROUND_CHECKPOINT_PAGES {
        // A full channel means a wake-up is already pending.
        let _ = wake.try_send(());
    }
}

/// Checkpoints once per wake-up until the channel closes, then closes the connection.
fn run(conn: Connection, woken: &Receiver<()>, path: &Path) {
    tracing::info!(store.path = %path.display(), "store checkpointer started");
    while woken.recv().is_ok() {
        // PASSIVE waits for no reader or writer: it copies the frames that no reader
        // still needs (SQLite's documentation of sqlite3_wal_checkpoint_v2).
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match result {
            Ok((log, copied)) => {
                tracing::debug!(
                    wal.pages = log,
                    wal.copied = copied,
                    "checkpointed the write-ahead log"
                );
            }
            Err(err) => {
                tracing::warn!(store.path = %path.display(), error = %err, "write-ahead log checkpoint failed");
            }
        }
    }
    if let Err((_, err)) = conn.close() {
        tracing::error!(store.path = %path.display(), error = %err, "failed to close the checkpointer connection");
    }
    tracing::info!(store.path = %path.display(), "store checkpointer stopped");
}
