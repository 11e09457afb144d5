//! `hubkit-bench upload` measures hubkitd's file upload throughput over HTTPS for 1 MiB and
//! 100 MiB bodies against writing the same bytes to a file on the same disk. It also sends
//! the same uploads to a bare HTTPS server that discards each body, the transfer ceiling.
//! All three take turns in the same run, one upload or file at a time or several at once.
//! It also measures hubkitd's RSS during the 100 MiB uploads.

mod client;
mod concurrent;
mod disk;
mod report;
mod request;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use tokio_rustls::TlsConnector;

use crate::baseline::Mode;
use crate::orchestrate::{self, SETTLE_TIME};
use crate::sysinfo::{self, HostInfo};

use self::concurrent::{TimeBasis, Timing};
use self::report::{Memory, PhaseResult, RoundResult, Throughput, UploadSettings};
use self::request::{SizedUploads, UploadRequest};

/// Path of the file webhook `camera-upload` of docs/examples/hubkit.toml. The transfer
/// ceiling server gets the same path, although it ignores it.
const UPLOAD_PATH: &str = "/webhook/urls/camera-upload";
/// Content-Type of every upload. It names a file type, so hubkitd stores the body as a
/// file and its detection ends at the header step.
const UPLOAD_CONTENT_TYPE: &str = "image/jpeg";
/// Size of the small body: 1 MiB.
const SMALL_BYTES: usize = 1024 * 1024;
/// Size of the large body: 100 MiB, the `files.max_bytes` of `camera-upload`.
const LARGE_BYTES: usize = 100 * 1024 * 1024;
/// 1 MiB uploads to each server and baseline files per round before the measured ones. They
/// open hubkitd's SQLite file, create the day's folder and fill the allocators' pools.
const WARMUP_UPLOADS: u32 = 10;
/// Seed of the pseudo-random body bytes, fixed so that every run sends the same bytes.
const BODY_SEED: u64 = 0x6875_626b_6974_0001;
/// Maximum bytes of 100 MiB files that one slice may keep on disk at once: 1.6 GiB, which
/// caps the 100 MiB phase at 16 uploads or files at a time.
const MAX_LARGE_SLICE_BYTES: u64 = 16 * 1024 * 1024 * 1024 / 10;

/// Command-line arguments of `hubkit-bench upload`.
#[derive(Args, Debug)]
pub struct UploadArgs {
    /// Path of the hubkitd binary to measure.
    #[arg(long)]
    pub hubkitd: PathBuf,
    /// Path of the hubkitd configuration file. It must define the webhook URL
    /// /webhook/urls/camera-upload with file reception on and a file limit of at least
    /// 100 MiB, as docs/examples/hubkit.toml does.
    #[arg(long)]
    pub config: PathBuf,
    /// Number of rounds. Each starts a fresh hubkitd with an empty data directory.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Number of measured 1 MiB uploads per round to hubkitd and as many to the transfer
    /// ceiling server, each matched by a 1 MiB baseline file.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub small_uploads: u32,
    /// Number of slices in which the 1 MiB uploads to hubkitd, the baseline files and the
    /// uploads to the transfer ceiling server take turns within a round. It must not exceed
    /// --small-uploads.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub small_slices: u32,
    /// Number of 100 MiB slices per round. Each slice sends as many 100 MiB uploads at once
    /// as the concurrency of the 100 MiB phase to hubkitd and then to the transfer ceiling
    /// server, and writes as many 100 MiB baseline files at once. With --concurrency 1 this
    /// is the number of 100 MiB uploads to each server.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub large_uploads: u32,
    /// Number of uploads that run at the same time, each on its own TLS connection, and of
    /// baseline files, each written by its own thread. Each 1 MiB slice must have at least
    /// this many uploads. The 100 MiB phase runs at most 16 at a time, so that its files
    /// take at most 16 × 100 MiB = 1600 MiB, under 1.6 GiB. Above 1, MiB/s counts the wall
    /// time of each slice instead of the summed times of its uploads or files.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub concurrency: u32,
    /// Directory under which each round gets a fresh directory for hubkitd's data and the
    /// baseline's files (default: the system temporary directory). Its file system sets
    /// the cost of an fsync.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

/// Runs `hubkit-bench upload`: measures every round and prints the header and the tables.
///
/// Returns failure when any upload failed or was stored wrongly.
///
/// # Errors
/// Fails if hubkitd cannot be started or exits, or if the baseline cannot write its files.
pub fn run(args: &UploadArgs) -> anyhow::Result<ExitCode> {
    if !args.hubkitd.is_file() {
        bail!(
            "hubkitd binary {} not found; build it first",
            args.hubkitd.display()
        );
    }
    if !args.config.is_file() {
        bail!("config file {} not found", args.config.display());
    }
    check_small_counts(args.small_uploads, args.small_slices, args.concurrency)?;
    let data_root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let settings = UploadSettings {
        command: std::env::args().collect(),
        path: UPLOAD_PATH.to_owned(),
        rounds: args.rounds,
        warmup_uploads: warmup_uploads(args.concurrency),
        small_uploads: args.small_uploads,
        small_slices: args.small_slices,
        large_slices: args.large_uploads,
        concurrency: args.concurrency,
        large_concurrency: large_concurrency(args.concurrency),
        data_filesystem: sysinfo::filesystem_type(&data_root),
        data_root: data_root.clone(),
    };
    orchestrate::print_stdout(&report::render_header(&HostInfo::collect(), &settings))?;

    let large = Bytes::from(pseudo_random_bytes(LARGE_BYTES, BODY_SEED));
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        eprintln!("round {round}/{}: starting hubkitd", args.rounds);
        let result = measure_round(args, &settings, round, &large, &data_root)?;
        eprintln!("  1 MiB: {}", report::progress_line(&result.small));
        eprintln!(
            "  100 MiB: {}; RSS growth {}",
            report::progress_line(&result.large),
            report::format_signed_mib(result.memory.large_growth_kib())
        );
        rounds.push(result);
    }

    let titles = settings.section_titles();
    let tables = [
        report::render_small_table(&rounds),
        report::render_large_table(&rounds),
        report::render_memory_table(&rounds),
        report::render_summary(&rounds, &settings),
    ];
    let sections = titles.into_iter().zip(tables);
    for (title, table) in sections {
        orchestrate::print_stdout(&format!("{title}:\n\n{table}\n"))?;
    }

    let failures: Vec<&String> = rounds.iter().flat_map(|round| &round.failures).collect();
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} upload(s) failed:", failures.len());
    for failure in failures {
        eprintln!("{failure}");
    }
    Ok(ExitCode::FAILURE)
}

/// Starts a fresh hubkitd and transfer ceiling server, measures one round against them and
/// stops them. `bytes` is the 100 MiB body, and the 1 MiB body is its first MiB. The round's
/// directory, with hubkitd's data, the baseline's folder and the servers' output, is removed
/// at the end.
fn measure_round(
    args: &UploadArgs,
    settings: &UploadSettings,
    round: u32,
    bytes: &Bytes,
    data_root: &Path,
) -> anyhow::Result<RoundResult> {
    let work_dir = tempfile::Builder::new()
        .prefix("hubkit-bench-upload-")
        .tempdir_in(data_root)
        .with_context(|| format!("failed to make a directory in {}", data_root.display()))?;
    let running =
        orchestrate::start_hubkitd(&args.hubkitd, &args.config, work_dir.path(), UPLOAD_PATH)?;
    let ceiling_dir = work_dir.path().join("ceiling");
    fs::create_dir(&ceiling_dir)
        .with_context(|| format!("failed to create {}", ceiling_dir.display()))?;
    let ceiling = orchestrate::start_baseline(Mode::TlsDiscard, &ceiling_dir, UPLOAD_PATH)?;
    let baseline_dir = work_dir.path().join("baseline");
    fs::create_dir(&baseline_dir)
        .with_context(|| format!("failed to create {}", baseline_dir.display()))?;

    let mut session = Session {
        connector: TlsConnector::from(crate::tls::accept_any_client_config()?),
        files_dir: work_dir.path().join("data").join("files"),
        baseline_dir,
        baseline_files: 0,
        failures: Vec::new(),
    };
    let small = SizedUploads::new(bytes.slice(..SMALL_BYTES), &running.url, &ceiling.url)?;
    let large = SizedUploads::new(bytes.clone(), &running.url, &ceiling.url)?;

    let (small_result, large_result, memory) = session
        .measure(settings, running.child.pid(), &small, &large)
        .map_err(|err| {
            let outputs = [
                ("hubkitd", running.output.as_path()),
                ("the transfer ceiling server", ceiling.output.as_path()),
            ];
            orchestrate::with_outputs("the upload round failed", &err, &outputs)
        })?;
    let failures = session
        .failures
        .into_iter()
        .map(|failure| format!("round {round}: {failure}"))
        .collect();
    Ok(RoundResult {
        round,
        small: small_result,
        large: large_result,
        memory,
        failures,
    })
}

/// The client side of one round: the connection settings, the folders and the failures.
struct Session {
    connector: TlsConnector,
    /// hubkitd's files folder, which `File.Path` in a response is relative to.
    files_dir: PathBuf,
    baseline_dir: PathBuf,
    /// Number of baseline files written so far, for unique names.
    baseline_files: u64,
    failures: Vec<String>,
}

impl Session {
    /// Runs the warm-up, the 1 MiB slices and the 100 MiB slices against hubkitd `pid`,
    /// the baseline and the transfer ceiling server, reading hubkitd's RSS around them.
    fn measure(
        &mut self,
        settings: &UploadSettings,
        pid: u32,
        small: &SizedUploads,
        large: &SizedUploads,
    ) -> anyhow::Result<(PhaseResult, PhaseResult, Memory)> {
        thread::sleep(SETTLE_TIME);
        let start_idle_kib = sysinfo::process_kib(pid, "VmRSS")?;

        let concurrency = settings.concurrency;
        self.upload_slice(&small.hubkitd, settings.warmup_uploads, concurrency)?;
        self.upload_slice(&small.ceiling, settings.warmup_uploads, concurrency)?;
        self.baseline_slice(small.bytes(), settings.warmup_uploads, concurrency)?;

        let mut small_result = PhaseResult::default();
        let counts = split_evenly(settings.small_uploads, settings.small_slices);
        for (slice, count) in (0..).zip(counts) {
            let result = self.measure_slice(small, count, concurrency, slice)?;
            small_result.append(result);
        }
        let small_peak_kib = sysinfo::process_kib(pid, "VmHWM")?;

        thread::sleep(SETTLE_TIME);
        let large_idle_kib = sysinfo::process_kib(pid, "VmRSS")?;
        sysinfo::reset_peak_rss(pid)?;
        let mut large_result = PhaseResult::default();
        let large_concurrency = settings.large_concurrency;
        for slice in 0..settings.large_slices {
            let result = self.measure_slice(large, large_concurrency, large_concurrency, slice)?;
            large_result.append(result);
        }
        let large_peak_kib = sysinfo::process_kib(pid, "VmHWM")?;

        let memory = Memory {
            start_idle_kib,
            small_peak_kib,
            large_idle_kib,
            large_peak_kib,
        };
        Ok((small_result, large_result, memory))
    }

    /// Sends `count` uploads of `uploads` to hubkitd and to the transfer ceiling server and
    /// writes `count` baseline files, each step `concurrency` at a time, in the order that
    /// [`slice_order`] gives for slice number `slice`.
    fn measure_slice(
        &mut self,
        uploads: &SizedUploads,
        count: u32,
        concurrency: u32,
        slice: u32,
    ) -> anyhow::Result<PhaseResult> {
        let mut result = PhaseResult::default();
        for step in slice_order(slice) {
            match step {
                Step::Hubkitd => {
                    result.hubkitd = self.upload_slice(&uploads.hubkitd, count, concurrency)?;
                }
                Step::Baseline => {
                    result.baseline = self.baseline_slice(uploads.bytes(), count, concurrency)?;
                }
                Step::Ceiling => {
                    result.ceiling = self.upload_slice(&uploads.ceiling, count, concurrency)?;
                }
            }
        }
        Ok(result)
    }

    /// Sends `count` uploads of `request` over `concurrency` connections at once, checks
    /// each response and then deletes the files that hubkitd stored. Failed uploads are
    /// recorded in `self.failures`.
    fn upload_slice(
        &mut self,
        request: &UploadRequest,
        count: u32,
        concurrency: u32,
    ) -> anyhow::Result<Throughput> {
        let counts = split_evenly(count, concurrency);
        let outcomes = concurrent::upload(&self.connector, request, &counts)?;
        let mut timings = Vec::new();
        let mut stored = Vec::new();
        for outcome in outcomes {
            timings.push(outcome.timing);
            stored.extend(outcome.stored);
            self.failures.extend(outcome.failures);
        }
        for relative in stored {
            self.remove_stored(&relative, request.len());
        }
        Ok(concurrent::slice_throughput(
            &timings,
            TimeBasis::for_concurrency(concurrency),
        ))
    }

    /// Checks the size of a file that hubkitd stored and deletes it, recording a failure
    /// when it is missing or has another size.
    fn remove_stored(&mut self, relative: &str, expected_size: u64) {
        let path = self.files_dir.join(relative);
        match fs::metadata(&path) {
            Ok(metadata) if metadata.len() == expected_size => {}
            Ok(metadata) => self.failures.push(format!(
                "stored file {} has {} bytes, expected {expected_size}",
                path.display(),
                metadata.len()
            )),
            Err(err) => {
                self.failures.push(format!(
                    "stored file {} cannot be read: {err}",
                    path.display()
                ));
                return;
            }
        }
        if let Err(err) = fs::remove_file(&path) {
            self.failures
                .push(format!("failed to delete {}: {err}", path.display()));
        }
    }

    /// Writes `count` baseline files of `bytes` from `concurrency` threads at once, each file
    /// under its own name, then deletes them.
    fn baseline_slice(
        &mut self,
        bytes: &[u8],
        count: u32,
        concurrency: u32,
    ) -> anyhow::Result<Throughput> {
        let names: Vec<Vec<String>> = split_evenly(count, concurrency)
            .into_iter()
            .map(|thread_count| self.next_baseline_names(thread_count))
            .collect();
        let timings: Vec<Timing> = concurrent::write_files(&self.baseline_dir, &names, bytes)?;
        for name in names.iter().flatten() {
            let path = self.baseline_dir.join(name);
            fs::remove_file(&path)
                .with_context(|| format!("failed to delete {}", path.display()))?;
        }
        Ok(concurrent::slice_throughput(
            &timings,
            TimeBasis::for_concurrency(concurrency),
        ))
    }

    /// Returns `count` baseline file names that no earlier file of the round has used.
    fn next_baseline_names(&mut self, count: u32) -> Vec<String> {
        (0..count)
            .map(|_| {
                self.baseline_files += 1;
                format!("file-{}.bin", self.baseline_files)
            })
            .collect()
    }
}

/// One step of a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Uploads to hubkitd.
    Hubkitd,
    /// Baseline files.
    Baseline,
    /// Uploads to the transfer ceiling server.
    Ceiling,
}

/// Returns the order of the steps in slice number `slice`, from 0: hubkitd, the baseline and
/// the transfer ceiling, rotated left by `slice % 3`. In every three slices each step comes
/// first, second and third once.
fn slice_order(slice: u32) -> [Step; 3] {
    let mut order = [Step::Hubkitd, Step::Baseline, Step::Ceiling];
    // The remainder is below 3, so the cast cannot truncate.
    order.rotate_left((slice % 3) as usize);
    order
}

/// Returns the number of warm-up uploads and baseline files for `concurrency`: at least
/// [`WARMUP_UPLOADS`], and at least one per connection or thread.
fn warmup_uploads(concurrency: u32) -> u32 {
    WARMUP_UPLOADS.max(concurrency)
}

/// Returns how many 100 MiB uploads or files run at once for `concurrency`: at most as many
/// as fit in [`MAX_LARGE_SLICE_BYTES`].
fn large_concurrency(concurrency: u32) -> u32 {
    let fitting = MAX_LARGE_SLICE_BYTES / LARGE_BYTES as u64;
    concurrency.min(u32::try_from(fitting).unwrap_or(u32::MAX))
}

/// Checks that `small_uploads` split into `small_slices` slices gives every slice at least
/// `concurrency` uploads, so that every connection and thread has work in every slice.
///
/// # Errors
/// Fails with a message that names the options to change.
fn check_small_counts(
    small_uploads: u32,
    small_slices: u32,
    concurrency: u32,
) -> anyhow::Result<()> {
    if small_slices == 0 {
        bail!("--small-slices is 0, but it must be at least 1");
    }
    if small_slices > small_uploads {
        bail!(
            "--small-slices {small_slices} is more than --small-uploads {small_uploads}, but \
             each slice needs at least one upload; lower --small-slices"
        );
    }
    let smallest_slice = small_uploads / small_slices;
    if smallest_slice < concurrency {
        bail!(
            "--small-uploads {small_uploads} in --small-slices {small_slices} gives slices of \
             {smallest_slice} uploads, fewer than --concurrency {concurrency}. Raise \
             --small-uploads, or lower --small-slices or --concurrency"
        );
    }
    Ok(())
}

/// Splits `total` into `parts` counts that differ by at most one, the larger ones first.
fn split_evenly(total: u32, parts: u32) -> Vec<u32> {
    if parts == 0 {
        return Vec::new();
    }
    let base = total / parts;
    let extra = total % parts;
    (0..parts)
        .map(|index| base + u32::from(index < extra))
        .collect()
}

/// Returns `len` pseudo-random bytes from SplitMix64 seeded with `seed`. The same seed gives
/// the same bytes, which have no structure that compression or a file-type signature finds.
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        bytes.extend_from_slice(&z.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

#[cfg(test)]
mod tests;
