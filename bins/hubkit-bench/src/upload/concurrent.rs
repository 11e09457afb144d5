//! One slice's uploads or baseline files, spread over threads that start together, and the
//! slice's time from their timings. Each upload thread has its own connection and tokio
//! runtime, and each baseline thread writes its own files.

use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use tokio::runtime::Runtime;
use tokio_rustls::TlsConnector;

use crate::load::{self, Target};

use super::report::Throughput;
use super::request::UploadRequest;
use super::{client, disk};

/// Rule for counting a slice's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBasis {
    /// The sum of each upload's or file's own time, without the pauses between them.
    Summed,
    /// The wall time from the start of the slice's first upload or file to the end of its
    /// last one.
    WallClock,
}

impl TimeBasis {
    /// Returns the basis for uploads or files that run `concurrency` at a time: summed
    /// times for one at a time, wall time for more.
    pub fn for_concurrency(concurrency: u32) -> TimeBasis {
        if concurrency > 1 {
            TimeBasis::WallClock
        } else {
            TimeBasis::Summed
        }
    }
}

/// Bytes, count and times of the uploads or files of one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// Bytes of all bodies.
    pub bytes: u64,
    /// Number of uploads or files.
    pub count: u32,
    /// Sum of the uploads' or files' own times.
    pub summed: Duration,
    /// Start of the first upload or file and end of the last one, `None` before the first.
    pub span: Option<(Instant, Instant)>,
}

impl Timing {
    /// Adds one upload or file of `bytes` that started at `started` and took `elapsed`.
    pub fn add(&mut self, bytes: u64, started: Instant, elapsed: Duration) {
        self.bytes += bytes;
        self.count += 1;
        self.summed += elapsed;
        let finished = started + elapsed;
        self.span = Some(match self.span {
            None => (started, finished),
            Some((first, last)) => (first.min(started), last.max(finished)),
        });
    }
}

/// Returns the throughput of one slice from the timings of its threads: all their bytes
/// over their summed times or over the wall time that `basis` selects.
pub fn slice_throughput(timings: &[Timing], basis: TimeBasis) -> Throughput {
    let bytes = timings.iter().map(|timing| timing.bytes).sum();
    let count = timings.iter().map(|timing| timing.count).sum();
    let elapsed = match basis {
        TimeBasis::Summed => timings.iter().map(|timing| timing.summed).sum(),
        TimeBasis::WallClock => {
            let spans = timings.iter().filter_map(|timing| timing.span);
            let first = spans.clone().map(|(started, _)| started).min();
            let last = spans.map(|(_, finished)| finished).max();
            match (first, last) {
                (Some(first), Some(last)) => last.saturating_duration_since(first),
                _ => Duration::ZERO,
            }
        }
    };
    Throughput {
        bytes,
        count,
        elapsed,
    }
}

/// Result of one connection's uploads.
#[derive(Debug, Default)]
pub struct ConnectionOutcome {
    /// Bytes and times of the uploads that got a complete response.
    pub timing: Timing,
    /// `File.Path` of each hubkitd upload whose response passed the checks.
    pub stored: Vec<String>,
    /// One message per failed upload.
    pub failures: Vec<String>,
}

/// Sends `counts[i]` uploads of `request` on connection `i`, one thread per connection. Every
/// thread opens its connection and waits for the others, so the uploads start together.
/// Each connection then sends its uploads one after the other. Failed uploads are recorded
/// in the outcomes, and a broken connection is reopened for the next upload.
///
/// # Errors
/// Fails if a connection cannot be opened or reopened, or if a thread panics.
pub fn upload(
    connector: &TlsConnector,
    request: &UploadRequest,
    counts: &[u32],
) -> anyhow::Result<Vec<ConnectionOutcome>> {
    let barrier = Barrier::new(counts.len());
    thread::scope(|scope| {
        let handles: Vec<_> = counts
            .iter()
            .map(|&count| {
                let barrier = &barrier;
                scope.spawn(move || upload_on_connection(connector, request, count, barrier))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| anyhow!("an upload thread panicked"))?
            })
            .collect()
    })
}

fn upload_on_connection(
    connector: &TlsConnector,
    request: &UploadRequest,
    count: u32,
    barrier: &Barrier,
) -> anyhow::Result<ConnectionOutcome> {
    let server = request.server.name();
    // Every thread must reach the barrier, even when it failed to connect, or the others
    // would wait forever.
    let prepared = open_connection(&request.target, connector)
        .with_context(|| format!("failed to connect to {server}"));
    barrier.wait();
    let (runtime, mut sender) = prepared?;

    let len = request.len();
    let mut outcome = ConnectionOutcome::default();
    for _ in 0..count {
        let response = match runtime.block_on(client::upload(&mut sender, &request.template)) {
            Ok(response) => response,
            Err(err) => {
                outcome
                    .failures
                    .push(format!("{len} B upload to {server}: {err:#}"));
                sender = runtime
                    .block_on(load::connect(&request.target, connector))
                    .with_context(|| format!("failed to reconnect to {server}"))?;
                continue;
            }
        };
        outcome.timing.add(len, response.started, response.elapsed);
        match request.check_response(response.status, &response.body) {
            Ok(Some(path)) => outcome.stored.push(path),
            Ok(None) => {}
            Err(failure) => outcome
                .failures
                .push(format!("{len} B upload to {server}: {failure}")),
        }
    }
    drop(sender);
    Ok(outcome)
}

/// Starts a single-threaded tokio runtime and opens a connection on it, so the connection's
/// I/O and its uploads run on the calling thread.
fn open_connection(
    target: &Target,
    connector: &TlsConnector,
) -> anyhow::Result<(Runtime, SendRequest<Full<Bytes>>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let sender = runtime.block_on(load::connect(target, connector))?;
    Ok((runtime, sender))
}

/// Writes the files named in `names[i]` on thread `i`, one after the other, each with
/// `bytes` and the durability steps of [`disk::write_durably`]. The threads wait for each
/// other before their first file, so the writes start together.
///
/// # Errors
/// Fails if any file cannot be written or if a thread panics.
pub fn write_files(
    folder: &Path,
    names: &[Vec<String>],
    bytes: &[u8],
) -> anyhow::Result<Vec<Timing>> {
    let barrier = Barrier::new(names.len());
    thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|thread_names| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    write_files_in_turn(folder, thread_names, bytes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| anyhow!("a baseline thread panicked"))?
            })
            .collect()
    })
}

fn write_files_in_turn(folder: &Path, names: &[String], bytes: &[u8]) -> anyhow::Result<Timing> {
    let mut timing = Timing::default();
    for name in names {
        let started = Instant::now();
        let elapsed = disk::write_durably(folder, name, bytes)?;
        timing.add(bytes.len() as u64, started, elapsed);
    }
    Ok(timing)
}
