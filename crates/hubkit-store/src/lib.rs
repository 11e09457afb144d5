//! The durable store of hubkit records, on SQLite in WAL mode.
//!
//! [`Store::open`] creates or migrates the database file. One writer thread owns the
//! only write connection and commits concurrent [`Store::insert`] calls together, in one
//! transaction per batch (group commit). An insert resolves once its transaction is
//! committed. Committed records are broadcast to [`Store::subscribe`]rs in commit order,
//! and [`Store::query`] reads pages of [`StoredRecord`]s through a small pool of
//! read-only connections, filtered by a [`RecordQuery`] and positioned by a [`Cursor`].
//!
//! The store also keeps the queue of [`ActionRun`]s: [`Store::insert_with_runs`] commits
//! pending runs with the records that fired them, and a runner claims, finishes and,
//! after a crash, requeues them ([`Store::claim_action_runs`]).
//!
//! This crate leaves the record's content to `hubkit-model`, and HTTP, live streams and
//! metrics to the server, which plugs a [`CommitObserver`] into [`StoreOptions`].

#![deny(missing_docs)]

mod action_runs;
mod activity;
mod camera;
mod codec;
mod cursor;
mod error;
mod files;
mod mqtt;
mod options;
mod query;
mod schema;
mod store;
mod writer;

#[cfg(test)]
mod tests;

pub use action_runs::{
    ActionRun, ActionRunPage, ActionRunQuery, ActionRunStatus, FinishedRun, NewActionRun,
};
pub use camera::{CameraRequest, CameraWrite, NewCameraRequest};
pub use cursor::Cursor;
pub use error::StoreError;
pub use files::{FileRemoval, FileRow, NewFile};
pub use mqtt::{
    DEAD_LETTER_PREVIEW_BYTES, DeadLetter, DeadLetterPage, InboxKey, MqttWrite, MqttWritten,
    NewDeadLetter,
};
pub use options::{
    CommitObserver, CommitStats, DEFAULT_BROADCAST_CAPACITY, DEFAULT_MAX_BATCH,
    DEFAULT_QUEUE_CAPACITY, StoreOptions, Synchronous,
};
pub use query::{DEFAULT_PAGE, MAX_PAGE, Order, RecordPage, RecordQuery};
pub use store::{Store, StoredRecord};
