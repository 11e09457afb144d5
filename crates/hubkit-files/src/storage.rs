//! The files folder: crash-safe uploads, lookups of stored files and their removal.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{FileError, PathError};
use crate::name::numbered_name;

/// Name prefix of files that are still being received. Stored names never start with a
/// dot, so a temporary file can never be mistaken for a stored one.
const TEMP_PREFIX: &str = ".upload-";

/// Name suffix of files that are still being received.
const TEMP_SUFFIX: &str = ".part";

/// Size of the buffer that gathers small body frames into larger writes.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Bytes written between two requests to start writing the file back to disk, so the
/// final sync of a large file only waits for its tail.
const FLUSH_EVERY_BYTES: u64 = 8 * 1024 * 1024;

/// Numbered variants of a name tried before an upload fails.
const MAX_NAME_TRIES: u32 = 100_000;

/// Entries kept in the map of next free name numbers before it is cleared.
const MAX_NAME_HINTS: usize = 10_000;

/// Maximum relative path length, in bytes, accepted by [`FileStore::resolve`].
const MAX_RELATIVE_PATH_BYTES: usize = 1024;

/// The folder that stored files live in, laid out as
/// `<owner>/<YYYYMMDD>/<name>` with the day of receipt in UTC.
///
/// Uploads write to a temporary file in their final folder, sync it, give it its name
/// without ever replacing an existing file, then sync the folder. A crash at any point
/// leaves either no file under a stored name or the complete file. Temporary files left by
/// a crash are removed by [`remove_partial_uploads`](FileStore::remove_partial_uploads).
#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
    /// Next number to try per name, so that the thousandth upload named `snapshot.jpg`
    /// in a day does not try every taken name first.
    name_hints: Arc<Mutex<HashMap<PathBuf, u32>>>,
}

/// A file that was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// Path relative to the files folder, with `/` separators:
    /// `<owner>/<YYYYMMDD>/<name>`.
    pub relative_path: String,
    /// The stored name, which differs from the requested one when that was taken.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, as lower-case hex.
    pub sha256: String,
}

impl FileStore {
    /// Opens the files folder at `root`, creating it when missing.
    ///
    /// # Errors
    ///
    /// [`FileError::Folder`] when the folder cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<FileStore, FileError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|source| FileError::Folder {
            path: root.clone(),
            source,
        })?;
        Ok(FileStore {
            root,
            name_hints: Arc::default(),
        })
    }

    /// Returns the files folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes the temporary files of uploads that a crash interrupted, and returns how
    /// many it removed. Call it before the first upload starts, because it cannot tell
    /// an interrupted upload from a running one. Failures are logged and skipped.
    pub fn remove_partial_uploads(&self) -> usize {
        let mut removed = 0;
        for owner in read_folders(&self.root) {
            for day in read_folders(&owner) {
                let Ok(entries) = fs::read_dir(&day) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
                        continue;
                    }
                    match fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(err) => tracing::warn!(
                            file.path = %entry.path().display(),
                            error = %err,
                            "failed to remove an interrupted upload's temporary file"
                        ),
                    }
                }
            }
        }
        if removed > 0 {
            tracing::info!(
                files.removed = removed,
                "removed temporary files of interrupted uploads"
            );
        }
        removed
    }

    /// Starts an upload for `owner` received at `received_at`, whose content may not
    /// exceed `limit` bytes. Creates the owner's folder for that day and a temporary file
    /// in it.
    ///
    /// # Errors
    ///
    /// [`FileError::InvalidOwner`] when `owner` is not a safe folder name,
    /// [`FileError::Folder`] or [`FileError::Io`] when the folder or file cannot be
    /// created.
    pub fn begin(
        &self,
        owner: &str,
        received_at: DateTime<Utc>,
        limit: u64,
    ) -> Result<Upload, FileError> {
        if !is_safe_owner(owner) {
            return Err(FileError::InvalidOwner {
                owner: owner.to_owned(),
            });
        }
        let day = received_at.format("%Y%m%d").to_string();
        let owner_folder = self.root.join(owner);
        create_synced_folder(&owner_folder, &self.root)?;
        let folder = owner_folder.join(&day);
        create_synced_folder(&folder, &owner_folder)?;

        let temp = folder.join(format!(
            "{TEMP_PREFIX}{}{TEMP_SUFFIX}",
            uuid::Uuid::now_v7().simple()
        ));
        let create = || OpenOptions::new().write(true).create_new(true).open(&temp);
        let file = match create() {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // Retention removed the empty day folder in the meantime.
                create_synced_folder(&owner_folder, &self.root)?;
                create_synced_folder(&folder, &owner_folder)?;
                create()
            }
            other => other,
        }
        .map_err(|source| FileError::Io {
            action: "create",
            path: temp.clone(),
            source,
        })?;
        Ok(Upload {
            relative_folder: format!("{owner}/{day}"),
            folder,
            temp,
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file)),
            hasher: Some(Sha256::new()),
            size: 0,
            limit,
            unflushed: 0,
            flusher: None,
            temp_removed: false,
            name_hints: Arc::clone(&self.name_hints),
        })
    }

    /// Returns the absolute path of the stored file at `relative`, after checking that
    /// the path follows the layout, so that no value can reach outside the files folder.
    ///
    /// # Errors
    ///
    /// [`PathError`] naming the rule the path breaks.
    pub fn resolve(&self, relative: &str) -> Result<PathBuf, PathError> {
        let error = |reason| PathError {
            path: crate::detect::excerpt(relative),
            reason,
        };
        if relative.len() > MAX_RELATIVE_PATH_BYTES {
            return Err(error("it is longer than 1024 bytes"));
        }
        if relative.contains(['\\', '\0']) || relative.chars().any(char::is_control) {
            return Err(error("it contains a backslash or a control character"));
        }

        let parts: Vec<&str> = relative.split('/').collect();
        let [owner, day, name] = parts[..] else {
            return Err(error(
                "it must have three parts, <owner>/<YYYYMMDD>/<name>, separated by /",
            ));
        };
        if !is_safe_owner(owner) {
            return Err(error("the owner must be letters, digits, `-` and `_` only"));
        }
        if day.len() != 8 || !day.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(error("the day must be eight digits, YYYYMMDD"));
        }
        if name.is_empty() || name.starts_with('.') {
            return Err(error("the file name must not be empty or start with a dot"));
        }

        let owner_folder = self.root.join(owner);
        let day_folder = owner_folder.join(day);
        for folder in [&owner_folder, &day_folder] {
            if fs::symlink_metadata(folder).is_ok_and(|meta| !meta.file_type().is_dir()) {
                return Err(error("a folder on the way is a symbolic link"));
            }
        }
        Ok(day_folder.join(name))
    }

    /// Removes the stored file at `relative`. Returns `false` when it was already gone.
    /// Removes its day folder too when that is empty and not the day of `now`. An upload
    /// whose folder is removed between its creation and the temporary file's creates it
    /// again.
    ///
    /// # Errors
    ///
    /// [`FileError::Io`] when the path is invalid or the file cannot be removed.
    pub fn remove(&self, relative: &str, now: DateTime<Utc>) -> Result<bool, FileError> {
        let path = self.resolve(relative).map_err(|err| FileError::Io {
            action: "remove",
            path: PathBuf::from(relative),
            source: io::Error::new(io::ErrorKind::InvalidInput, err),
        })?;
        let removed = match fs::remove_file(&path) {
            Ok(()) => true,
            Err(err) if err.kind() == io::ErrorKind::NotFound => false,
            Err(source) => {
                return Err(FileError::Io {
                    action: "remove",
                    path,
                    source,
                });
            }
        };
        let today = now.format("%Y%m%d").to_string();
        if let Some(folder) = path.parent()
            && folder.file_name().is_some_and(|day| day != today.as_str())
        {
            // Fails while the folder still has files, which is the common case.
            let _ = fs::remove_dir(folder);
        }
        Ok(removed)
    }
}

/// An upload in progress. Dropping it before [`finish`](Upload::finish) removes its
/// temporary file.
#[derive(Debug)]
pub struct Upload {
    folder: PathBuf,
    relative_folder: String,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
    /// SHA-256 of what was written, unless the caller hashes the content itself.
    hasher: Option<Sha256>,
    size: u64,
    limit: u64,
    /// Bytes written since the last request to start writeback.
    unflushed: u64,
    flusher: Option<Flusher>,
    temp_removed: bool,
    name_hints: Arc<Mutex<HashMap<PathBuf, u32>>>,
}

impl Upload {
    /// Appends `bytes` to the file.
    ///
    /// # Errors
    ///
    /// [`FileError::TooLarge`] when the file would exceed its limit (nothing of `bytes`
    /// is written), [`FileError::Io`] when writing fails.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        let size = self.size + bytes.len() as u64;
        if size > self.limit {
            return Err(FileError::TooLarge { limit: self.limit });
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(FileError::WriterStopped);
        };
        writer.write_all(bytes).map_err(|source| FileError::Io {
            action: "write",
            path: self.temp.clone(),
            source,
        })?;
        self.account([bytes], size)
    }

    /// Appends `chunks` with vectored writes straight to the file, without copying them
    /// into the write buffer. Errors as for [`write`](Upload::write).
    pub(crate) fn write_chunks(&mut self, chunks: &[bytes::Bytes]) -> Result<(), FileError> {
        let total: u64 = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        let size = self.size + total;
        if size > self.limit {
            return Err(FileError::TooLarge { limit: self.limit });
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(FileError::WriterStopped);
        };
        let io_error = |source| FileError::Io {
            action: "write",
            path: self.temp.clone(),
            source,
        };

        // Bytes that `write` buffered must reach the file first, to keep the order.
        writer.flush().map_err(io_error)?;
        let file = writer.get_mut();
        let mut slices: Vec<io::IoSlice<'_>> =
            chunks.iter().map(|chunk| io::IoSlice::new(chunk)).collect();
        let mut remaining = &mut slices[..];
        while !remaining.is_empty() {
            match file.write_vectored(remaining) {
                Ok(0) => return Err(io_error(io::ErrorKind::WriteZero.into())),
                Ok(written) => io::IoSlice::advance_slices(&mut remaining, written),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(io_error(err)),
            }
        }
        self.account(chunks.iter().map(|chunk| &chunk[..]), size)
    }

    /// Hashes the written `chunks` (unless the caller hashes), sets the size to `size`, and
    /// starts writeback every [`FLUSH_EVERY_BYTES`].
    fn account<'a>(
        &mut self,
        chunks: impl IntoIterator<Item = &'a [u8]>,
        size: u64,
    ) -> Result<(), FileError> {
        if let Some(hasher) = self.hasher.as_mut() {
            for chunk in chunks {
                hasher.update(chunk);
            }
        }
        self.unflushed += size - self.size;
        self.size = size;
        if self.unflushed >= FLUSH_EVERY_BYTES {
            self.unflushed = 0;
            self.start_writeback()?;
        }
        Ok(())
    }

    /// Stops hashing in [`write`](Upload::write), for a caller that hashes the content
    /// itself and passes the digest to [`finish_with_sha256`](Upload::finish_with_sha256).
    pub(crate) fn without_hashing(mut self) -> Upload {
        self.hasher = None;
        self
    }

    /// Hands the buffered bytes to the kernel and signals a helper thread to sync the file,
    /// so the disk writes while the upload goes on. At most one sync waits at a time.
    fn start_writeback(&mut self) -> Result<(), FileError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        writer.flush().map_err(|source| FileError::Io {
            action: "write",
            path: self.temp.clone(),
            source,
        })?;
        if self.flusher.is_none() {
            let file = writer
                .get_ref()
                .try_clone()
                .map_err(|source| FileError::Io {
                    action: "open",
                    path: self.temp.clone(),
                    source,
                })?;
            self.flusher = Some(Flusher::spawn(file));
        }
        if let Some(flusher) = &self.flusher {
            flusher.request();
        }
        Ok(())
    }

    /// Returns the number of bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Returns the folder the file goes to, relative to the files folder:
    /// `<owner>/<YYYYMMDD>`.
    pub fn relative_folder(&self) -> &str {
        &self.relative_folder
    }

    /// Syncs the file, stores it as `name` (or as the first free `name-<n>` when `name`
    /// exists), then syncs the folder. `name` must be a single safe file name, such as
    /// one from [`safe_name`](crate::safe_name) or [`default_name`](crate::default_name).
    ///
    /// # Errors
    ///
    /// [`FileError::Io`] when syncing or naming fails, [`FileError::NamesExhausted`]
    /// when every variant of the name is taken. The temporary file is removed in both
    /// cases.
    pub fn finish(mut self, name: &str) -> Result<StoredFile, FileError> {
        let Some(hasher) = self.hasher.take() else {
            return Err(FileError::WriterStopped);
        };
        let sha256 = format!("{:x}", hasher.finalize());
        self.finish_with_sha256(name, sha256)
    }

    /// Finishes like [`finish`](Upload::finish), with a SHA-256 that the caller computed.
    pub(crate) fn finish_with_sha256(
        mut self,
        name: &str,
        sha256: String,
    ) -> Result<StoredFile, FileError> {
        let Some(writer) = self.writer.take() else {
            return Err(FileError::WriterStopped);
        };
        let file = writer.into_inner().map_err(|err| FileError::Io {
            action: "write",
            path: self.temp.clone(),
            source: err.into_error(),
        })?;
        if let Some(flusher) = self.flusher.take() {
            // An error of an early sync may not be reported again by the final one.
            flusher.finish().map_err(|source| FileError::Io {
                action: "sync",
                path: self.temp.clone(),
                source,
            })?;
        }
        file.sync_all().map_err(|source| FileError::Io {
            action: "sync",
            path: self.temp.clone(),
            source,
        })?;
        drop(file);

        let stored_name = self.link_unique(name)?;
        // The temporary name is only a second link now; a crash before this line leaves
        // it for remove_partial_uploads.
        self.temp_removed = true;
        match fs::remove_file(&self.temp) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(
                file.path = %self.temp.display(),
                error = %err,
                "failed to remove a temporary upload name"
            ),
        }
        sync_folder(&self.folder)?;
        Ok(StoredFile {
            relative_path: format!("{}/{stored_name}", self.relative_folder),
            name: stored_name,
            size: self.size,
            sha256,
        })
    }

    /// Gives the temporary file the first free name among `name`, `name-1`, `name-2`, ...
    /// A hard link fails when the target exists, so an existing file is never replaced.
    fn link_unique(&self, name: &str) -> Result<String, FileError> {
        let key = self.folder.join(name);
        let first = self.take_hint(&key);
        for n in first..=first.saturating_add(MAX_NAME_TRIES) {
            let candidate = if n == 0 {
                name.to_owned()
            } else {
                numbered_name(name, n)
            };
            let target = self.folder.join(&candidate);
            match fs::hard_link(&self.temp, &target) {
                Ok(()) => {
                    self.store_hint(key, n);
                    return Ok(candidate);
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                // FAT and exFAT, common on removable drives, have no hard links.
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    if self.rename_if_free(&target)? {
                        self.store_hint(key, n);
                        return Ok(candidate);
                    }
                }
                Err(source) => {
                    return Err(FileError::Io {
                        action: "name",
                        path: target,
                        source,
                    });
                }
            }
        }
        Err(FileError::NamesExhausted {
            name: name.to_owned(),
            tries: MAX_NAME_TRIES,
            folder: self.folder.clone(),
        })
    }

    /// Renames the temporary file to `target` unless `target` exists, for file systems
    /// without hard links. Holding the hint lock keeps two uploads of this process from
    /// taking the same name.
    // NOTE: without hard links, a file that another process creates at `target` between
    // the check and the rename is replaced.
    fn rename_if_free(&self, target: &Path) -> Result<bool, FileError> {
        let _guard = self
            .name_hints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if fs::symlink_metadata(target).is_ok() {
            return Ok(false);
        }
        fs::rename(&self.temp, target).map_err(|source| FileError::Io {
            action: "name",
            path: target.to_owned(),
            source,
        })?;
        Ok(true)
    }

    fn take_hint(&self, key: &Path) -> u32 {
        let hints = self
            .name_hints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        hints.get(key).map_or(0, |last| last.saturating_add(1))
    }

    fn store_hint(&self, key: PathBuf, n: u32) {
        let mut hints = self
            .name_hints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if hints.len() >= MAX_NAME_HINTS {
            hints.clear();
        }
        let entry = hints.entry(key).or_insert(n);
        *entry = (*entry).max(n);
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.writer = None;
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.finish();
        }
        if self.temp_removed {
            return;
        }
        match fs::remove_file(&self.temp) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(
                file.path = %self.temp.display(),
                error = %err,
                "failed to remove the temporary file of an unfinished upload"
            ),
        }
    }
}

/// A thread that syncs an upload's file whenever it is asked, while the upload goes on
/// writing through another handle of the same file.
#[derive(Debug)]
struct Flusher {
    requests: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<io::Result<()>>,
}

impl Flusher {
    fn spawn(file: File) -> Flusher {
        let (requests, received) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::spawn(move || {
            let mut result = Ok(());
            while received.recv().is_ok() {
                if let Err(err) = file.sync_data() {
                    result = Err(err);
                }
            }
            result
        });
        Flusher { requests, thread }
    }

    /// Asks for a sync unless one is already waiting.
    fn request(&self) {
        let _ = self.requests.try_send(());
    }

    /// Waits for the requested syncs and returns the first error of any of them.
    fn finish(self) -> io::Result<()> {
        drop(self.requests);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the file sync thread panicked")))
    }
}

/// Returns whether `owner` can be one folder name: 1 to 64 ASCII letters, digits, `-`
/// and `_`.
fn is_safe_owner(owner: &str) -> bool {
    (1..=64).contains(&owner.len())
        && owner
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Creates `folder` when missing and then syncs `parent`, so the new entry survives a
/// crash. An existing `folder` must be a real folder, not a symbolic link, so that nothing
/// placed in the data directory can send uploads elsewhere.
fn create_synced_folder(folder: &Path, parent: &Path) -> Result<(), FileError> {
    match fs::create_dir(folder) {
        Ok(()) => sync_folder(parent),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => check_real_folder(folder),
        Err(source) => Err(FileError::Folder {
            path: folder.to_owned(),
            source,
        }),
    }
}

/// Fails unless `folder` is a folder and not a symbolic link.
fn check_real_folder(folder: &Path) -> Result<(), FileError> {
    let kind = fs::symlink_metadata(folder)
        .map_err(|source| FileError::Folder {
            path: folder.to_owned(),
            source,
        })?
        .file_type();
    if kind.is_dir() {
        return Ok(());
    }
    Err(FileError::Folder {
        path: folder.to_owned(),
        source: io::Error::other("it is a symbolic link or a file, not a folder"),
    })
}

fn sync_folder(folder: &Path) -> Result<(), FileError> {
    File::open(folder)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| FileError::Folder {
            path: folder.to_owned(),
            source,
        })
}

/// Returns the subfolders of `folder`, skipping anything unreadable.
fn read_folders(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests;
