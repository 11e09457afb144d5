//! An [`Upload`] driven from async code: a blocking task writes, hashes and syncs while
//! the caller keeps reading the request body.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::FileError;
use crate::storage::{StoredFile, Upload};

/// Body chunks queued for the writer task. With HTTP frames of at most 64 KiB this keeps
/// an upload's buffered data under about 1 MiB whatever the file size.
const QUEUE_CHUNKS: usize = 16;

/// Message to the writer task.
enum Command {
    Write(Bytes),
    Finish(String),
}

/// An upload whose file operations run on a blocking task.
///
/// Dropping it before [`finish`](BackgroundUpload::finish) stops the task, which removes
/// the temporary file.
#[derive(Debug)]
pub struct BackgroundUpload {
    sender: mpsc::Sender<Command>,
    /// The writer task, until its result was taken.
    task: Option<JoinHandle<Result<StoredFile, FileError>>>,
    size: u64,
    limit: u64,
}

impl BackgroundUpload {
    /// Moves `upload` to a blocking task of the current tokio runtime.
    pub fn spawn(upload: Upload, limit: u64) -> BackgroundUpload {
        let (sender, receiver) = mpsc::channel(QUEUE_CHUNKS);
        let size = upload.size();
        let task = tokio::task::spawn_blocking(move || run(upload, receiver));
        BackgroundUpload {
            sender,
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
        if self.sender.send(Command::Write(bytes)).await.is_err() {
            // The task stopped early, so it has an error to report.
            return Err(self.stop().await);
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
    pub async fn finish(self, name: String) -> Result<StoredFile, FileError> {
        let BackgroundUpload { sender, task, .. } = self;
        // A failed send means the task already stopped, and its result contains the reason.
        let _ = sender.send(Command::Finish(name)).await;
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

fn run(mut upload: Upload, mut receiver: mpsc::Receiver<Command>) -> Result<StoredFile, FileError> {
    while let Some(command) = receiver.blocking_recv() {
        match command {
            Command::Write(bytes) => upload.write(&bytes)?,
            Command::Finish(name) => return upload.finish(&name),
        }
    }
    // Every sender was dropped: the upload was abandoned and `upload` removes its file.
    Err(FileError::WriterStopped)
}
