//! An [`Upload`] driven from async code: a blocking task writes, hashes and syncs while
//! the caller keeps reading the request body.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::FileError;
use crate::storage::{StoredFile, Upload};

/// Batches queued for the writer task. With batches of about [`BATCH_BYTES`] this keeps
/// an upload's buffered data near 1 MiB whatever the file size.
const QUEUE_BATCHES: usize = 4;

/// Bytes gathered before they go to the writer task, so it wakes once per batch rather
/// than once per HTTP frame.
const BATCH_BYTES: usize = 256 * 1024;

/// Chunks sent together, shared by the writer and hasher tasks.
type Batch = Arc<[Bytes]>;

/// Message to the writer task.
enum Command {
    Write(Batch),
    Finish(String, String),
}

/// An upload whose file operations run on a blocking task.
///
/// A second blocking task computes the SHA-256, so receiving, hashing and writing run on
/// separate threads. Dropping it before [`finish`](BackgroundUpload::finish) stops both
/// tasks, and the writer task removes the temporary file.
pub struct BackgroundUpload {
    sender: mpsc::Sender<Command>,
    hash_sender: mpsc::Sender<Batch>,
    hash_task: JoinHandle<String>,
    batch: Vec<Bytes>,
    batch_bytes: usize,
    /// The writer task, until its result was taken.
    task: Option<JoinHandle<Result<StoredFile, FileError>>>,
    size: u64,
    limit: u64,
}

impl BackgroundUpload {
    /// Moves `upload` to a blocking task of the current tokio runtime.
    pub fn spawn(upload: Upload, limit: u64) -> BackgroundUpload {
        let (sender, receiver) = mpsc::channel(QUEUE_BATCHES);
        let size = upload.size();
        let upload = upload.without_hashing();
        let task = tokio::task::spawn_blocking(move || run(upload, receiver));
        let (hash_sender, hash_receiver) = mpsc::channel(QUEUE_BATCHES);
        let hash_task = tokio::task::spawn_blocking(move || hash(hash_receiver));
        BackgroundUpload {
            sender,
            hash_sender,
            hash_task,
            batch: Vec::new(),
            batch_bytes: 0,
            task: Some(task),
            size,
            limit,
        }
    }

    /// Queues `bytes` to be appended.
    ///
    /// # Errors
    ///
    /// [`FileError::TooLarge`] as soon as the bytes would exceed the limit, or the error
    /// that stopped the writer task.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), FileError> {
        let size = self.size + bytes.len() as u64;
        if size > self.limit {
            return Err(FileError::TooLarge { limit: self.limit });
        }
        self.size = size;
        self.batch_bytes += bytes.len();
        self.batch.push(bytes);
        if self.batch_bytes >= BATCH_BYTES {
            self.send_batch().await?;
        }
        Ok(())
    }

    async fn send_batch(&mut self) -> Result<(), FileError> {
        let batch: Batch = std::mem::take(&mut self.batch).into();
        self.batch_bytes = 0;
        if self
            .sender
            .send(Command::Write(Arc::clone(&batch)))
            .await
            .is_err()
        {
            // The task stopped early, so it has an error to report.
            return Err(self.stop().await);
        }
        if self.hash_sender.send(batch).await.is_err() {
            return Err(FileError::WriterStopped);
        }
        Ok(())
    }

    /// Returns the number of bytes queued so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes what is queued and stores the file as `name`; see [`Upload::finish`].
    ///
    /// # Errors
    ///
    /// The error of the first write that failed, or of [`Upload::finish`].
    pub async fn finish(mut self, name: String) -> Result<StoredFile, FileError> {
        if !self.batch.is_empty() {
            self.send_batch().await?;
        }
        let BackgroundUpload {
            sender,
            task,
            hash_sender,
            hash_task,
            ..
        } = self;
        drop(hash_sender);
        let Ok(sha256) = hash_task.await else {
            return Err(FileError::WriterStopped);
        };
        // A failed send means the task already stopped, and its result contains the reason.
        let _ = sender.send(Command::Finish(name, sha256)).await;
        drop(sender);
        match task {
            Some(task) => task.await.unwrap_or(Err(FileError::WriterStopped)),
            None => Err(FileError::WriterStopped),
        }
    }

    /// Waits for a task that stopped early and returns its error.
    async fn stop(&mut self) -> FileError {
        let Some(task) = self.task.take() else {
            return FileError::WriterStopped;
        };
        match task.await {
            Ok(Err(err)) => err,
            Ok(Ok(_)) | Err(_) => FileError::WriterStopped,
        }
    }
}

/// Hashes every batch until the sender is dropped, and returns the lower-case hex digest.
fn hash(mut receiver: mpsc::Receiver<Batch>) -> String {
    let mut hasher = Sha256::new();
    while let Some(batch) = receiver.blocking_recv() {
        for bytes in batch.iter() {
            hasher.update(bytes);
        }
    }
    format!("{:x}", hasher.finalize())
}

fn run(mut upload: Upload, mut receiver: mpsc::Receiver<Command>) -> Result<StoredFile, FileError> {
    while let Some(command) = receiver.blocking_recv() {
        match command {
            Command::Write(batch) => upload.write_chunks(&batch)?,
            Command::Finish(name, sha256) => return upload.finish_with_sha256(&name, sha256),
        }
    }
    // Every sender was dropped: the upload was abandoned and `upload` removes its file.
    Err(FileError::WriterStopped)
}
