//! The file baseline of the upload benchmark: the same bytes written to a file on the same
//! disk with the durability steps that hubkitd takes for an upload, without TLS, HTTP,
//! hashing or SQLite.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Size of each `write` call of the baseline: 64 KiB.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Writes `body` to `folder/name` and returns the time taken.
///
/// The steps are those of hubkitd's `Upload::finish` in hubkit-files: create a temporary
/// file in `folder`, write `body` in [`CHUNK_BYTES`] chunks, fsync the file, hard-link it to
/// `name`, unlink the temporary name and fsync `folder`.
///
/// # Errors
/// Fails if any step fails, for example when `name` exists or the disk is full.
pub fn write_durably(folder: &Path, name: &str, body: &[u8]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let temp = folder.join(format!(".{name}.part"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .with_context(|| format!("failed to create {}", temp.display()))?;
    for chunk in body.chunks(CHUNK_BYTES) {
        file.write_all(chunk)
            .with_context(|| format!("failed to write {}", temp.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("failed to fsync {}", temp.display()))?;
    drop(file);

    let target = folder.join(name);
    fs::hard_link(&temp, &target).with_context(|| {
        format!(
            "failed to hard-link {} to {}",
            temp.display(),
            target.display()
        )
    })?;
    fs::remove_file(&temp).with_context(|| format!("failed to unlink {}", temp.display()))?;
    File::open(folder)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("failed to fsync folder {}", folder.display()))?;
    Ok(started.elapsed())
}
