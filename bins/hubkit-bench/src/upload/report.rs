//! Markdown output of `hubkit-bench upload`: the header block, one table per body size,
//! the RSS table and the summary against the targets. It also formats the progress lines
//! on stderr.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::baseline::DISCARD_MAX_BUF_BYTES;
use crate::format::format_mib;
use crate::report::host_lines;
use crate::sysinfo::HostInfo;

use super::disk::CHUNK_BYTES;

/// Minimum median ratio of hubkitd's MiB/s to the file baseline's, for each body size. The
/// ratio to the transfer ceiling has no target.
pub const MIN_RATIO: f64 = 0.7;

/// RSS growth during the 100 MiB uploads that hubkitd must stay under, in KiB (16 MiB). The
/// same limit applies at every concurrency.
pub const MAX_RSS_GROWTH_KIB: i64 = 16 * 1024;

const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// Settings of a run that the header block reports.
#[derive(Debug)]
pub struct UploadSettings {
    /// Command line of this process.
    pub command: Vec<String>,
    /// Webhook path that receives the uploads.
    pub path: String,
    /// Number of rounds.
    pub rounds: u32,
    /// 1 MiB uploads to each server per round before the measured ones.
    pub warmup_uploads: u32,
    /// Measured 1 MiB uploads per round.
    pub small_uploads: u32,
    /// Slices in which the 1 MiB uploads, the baseline and the transfer ceiling take turns.
    pub small_slices: u32,
    /// Slices of 100 MiB uploads per round, each with `large_concurrency` uploads.
    pub large_slices: u32,
    /// Uploads and baseline files that run at once in the warm-up and the 1 MiB slices.
    pub concurrency: u32,
    /// Uploads and baseline files that run at once in the 100 MiB slices.
    pub large_concurrency: u32,
    /// Directory that contains each round's hubkitd data directory and baseline folder.
    pub data_root: PathBuf,
    /// File system type of `data_root`, if known.
    pub data_filesystem: Option<String>,
}

impl UploadSettings {
    /// Returns the maximum MiB of bodies on disk at once, which is one slice's uploads or
    /// files at 1 MiB per small body and 100 MiB per large one.
    pub fn max_files_mib(&self) -> u32 {
        let small_slice = self.small_uploads.div_ceil(self.small_slices.max(1));
        let large_slice = if self.large_slices > 0 {
            100 * self.large_concurrency
        } else {
            0
        };
        small_slice.max(self.warmup_uploads).max(large_slice)
    }

    /// Returns the number of measured 100 MiB uploads per round.
    pub fn large_uploads(&self) -> u32 {
        self.large_slices * self.large_concurrency
    }

    /// Returns the titles of the 1 MiB table, the 100 MiB table, the RSS table and the
    /// summary. They name the concurrency when it is above 1.
    pub fn section_titles(&self) -> [String; 4] {
        let both = self.concurrency_suffix();
        [
            format!("1 MiB uploads{}", at_a_time(self.concurrency)),
            format!("100 MiB uploads{}", at_a_time(self.large_concurrency)),
            format!("hubkitd RSS{both}"),
            format!("Summary{both}"),
        ]
    }

    /// Returns the suffix that names the concurrency of both phases, empty when it is 1.
    fn concurrency_suffix(&self) -> String {
        if self.concurrency == 1 {
            String::new()
        } else if self.concurrency == self.large_concurrency {
            format!(", uploads {} at a time", self.concurrency)
        } else {
            format!(
                ", 1 MiB uploads {} at a time and 100 MiB uploads {} at a time",
                self.concurrency, self.large_concurrency
            )
        }
    }
}

/// Returns `, N at a time` for a concurrency N above 1, and an empty string for 1.
fn at_a_time(concurrency: u32) -> String {
    if concurrency == 1 {
        String::new()
    } else {
        format!(", {concurrency} at a time")
    }
}

/// Bytes moved and time taken by a series of uploads or baseline files.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Throughput {
    /// Bytes of all bodies.
    pub bytes: u64,
    /// Number of uploads or files.
    pub count: u32,
    /// Time of the uploads or files. One at a time, it is the sum of their own times
    /// without the pauses between them. Several at a time, it is the sum of each slice's
    /// wall time from its first start to its last end.
    pub elapsed: Duration,
}

impl Throughput {
    /// Adds the uploads or files of `other`.
    pub fn append(&mut self, other: Throughput) {
        self.bytes += other.bytes;
        self.count += other.count;
        self.elapsed += other.elapsed;
    }

    /// Returns MiB per second, 0 when no time was measured.
    pub fn mib_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs == 0.0 {
            return 0.0;
        }
        self.bytes as f64 / BYTES_PER_MIB / secs
    }

    /// Returns uploads or files per second, 0 when no time was measured.
    pub fn per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs == 0.0 {
            return 0.0;
        }
        f64::from(self.count) / secs
    }
}

/// hubkitd, the file baseline and the transfer ceiling measured in the same slices of one
/// body size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseResult {
    /// Uploads to hubkitd.
    pub hubkitd: Throughput,
    /// Files written by the baseline.
    pub baseline: Throughput,
    /// Uploads to the transfer ceiling server.
    pub ceiling: Throughput,
}

impl PhaseResult {
    /// Adds the uploads and files of `other`.
    pub fn append(&mut self, other: PhaseResult) {
        self.hubkitd.append(other.hubkitd);
        self.baseline.append(other.baseline);
        self.ceiling.append(other.ceiling);
    }

    /// Returns hubkitd's MiB/s divided by the file baseline's, the measure of the target.
    pub fn ratio_to_baseline(&self) -> f64 {
        divide(self.hubkitd.mib_per_sec(), self.baseline.mib_per_sec())
    }

    /// Returns hubkitd's MiB/s divided by the transfer ceiling's.
    pub fn ratio_to_ceiling(&self) -> f64 {
        divide(self.hubkitd.mib_per_sec(), self.ceiling.mib_per_sec())
    }

    /// Returns the transfer ceiling's MiB/s divided by the file baseline's: the ratio to the
    /// file baseline that hubkitd would reach if its own work cost nothing.
    pub fn ceiling_ratio_to_baseline(&self) -> f64 {
        divide(self.ceiling.mib_per_sec(), self.baseline.mib_per_sec())
    }
}

/// Returns `numerator / denominator`, or 0 when the denominator is 0.
fn divide(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        return 0.0;
    }
    numerator / denominator
}

/// hubkitd's memory readings in one round, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS` one second after hubkitd became ready.
    pub start_idle_kib: u64,
    /// `VmHWM` after the 1 MiB uploads: the peak since hubkitd started.
    pub small_peak_kib: u64,
    /// `VmRSS` one second after the 1 MiB uploads, when `VmHWM` was reset.
    pub large_idle_kib: u64,
    /// `VmHWM` after the 100 MiB uploads: the peak since the reset.
    pub large_peak_kib: u64,
}

impl Memory {
    /// Returns the RSS growth during the 100 MiB uploads in KiB: peak minus the idle RSS
    /// before them.
    pub fn large_growth_kib(&self) -> i64 {
        i64::try_from(self.large_peak_kib).unwrap_or(i64::MAX)
            - i64::try_from(self.large_idle_kib).unwrap_or(i64::MAX)
    }
}

/// Measurements of one round.
#[derive(Debug, Default)]
pub struct RoundResult {
    /// Round number, from 1.
    pub round: u32,
    /// 1 MiB uploads and files.
    pub small: PhaseResult,
    /// 100 MiB uploads and files.
    pub large: PhaseResult,
    /// hubkitd's RSS readings.
    pub memory: Memory,
    /// One message per failed upload, warm-up included.
    pub failures: Vec<String>,
}

/// Formats one body size of a round for the progress output on stderr.
pub fn progress_line(result: &PhaseResult) -> String {
    format!(
        "hubkitd {:.1} MiB/s, baseline {:.1} MiB/s, transfer ceiling {:.1} MiB/s, ratio to \
         the baseline {:.2}, ratio to the ceiling {:.2}",
        result.hubkitd.mib_per_sec(),
        result.baseline.mib_per_sec(),
        result.ceiling.mib_per_sec(),
        result.ratio_to_baseline(),
        result.ratio_to_ceiling()
    )
}

/// Renders the header block: command, date, machine and the upload settings.
pub fn render_header(host: &HostInfo, settings: &UploadSettings) -> String {
    let filesystem = settings
        .data_filesystem
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let mut lines = host_lines(host, &settings.command);
    lines.extend([
        uploads_line(settings),
        baseline_line(settings),
        ceiling_line(),
        format!(
            "- rounds: {}, each with a fresh hubkitd and an empty data directory",
            settings.rounds
        ),
        concurrency_line(settings),
        format!(
            "- warm-up: {0} uploads to hubkitd, {0} uploads to the transfer ceiling server \
             and {0} baseline files of 1 MiB per round, not counted",
            settings.warmup_uploads
        ),
        small_bodies_line(settings),
        large_bodies_line(settings),
        "- order: hubkitd, the baseline and the transfer ceiling take turns in every slice. \
         The order rotates by one step from slice to slice, so in every three slices each \
         comes first, second and third once"
            .to_owned(),
        format!(
            "- disk: at most {} MiB of uploaded or baseline files exist at a time, because \
             each slice deletes its files before the next step",
            settings.max_files_mib()
        ),
        time_line(settings),
        format!(
            "- data directories under: {} ({filesystem})",
            settings.data_root.display()
        ),
    ]);
    let mut text = lines.join("\n");
    text.push_str("\n\n");
    text
}

fn uploads_line(settings: &UploadSettings) -> String {
    let start = format!(
        "- uploads: POST `{}` to hubkitd and to the transfer ceiling server, with \
         `Content-Type: image/jpeg` and a body of pseudo-random bytes generated once in memory",
        settings.path
    );
    if settings.concurrency == 1 {
        format!(
            "{start}, one upload at a time over HTTP/1.1 and TLS 1.3, on one keep-alive \
             connection per slice that is opened before the slice's timer starts"
        )
    } else {
        format!(
            "{start}, over HTTP/1.1 and TLS 1.3 on one keep-alive connection per concurrent \
             upload in each slice. Each connection has its own client thread, sends one \
             upload at a time and is opened before the slice's timer starts"
        )
    }
}

fn baseline_line(settings: &UploadSettings) -> String {
    let steps = format!(
        "creates a temporary file, writes {} KiB chunks, fsyncs the file, hard-links it to \
         the final name, unlinks the temporary name and fsyncs the folder",
        CHUNK_BYTES / 1024
    );
    if settings.concurrency == 1 {
        format!(
            "- baseline: the harness writes the same bytes to a new file in a folder beside \
             hubkitd's data directory. It {steps}"
        )
    } else {
        format!(
            "- baseline: the harness writes the same bytes to new files with distinct names \
             in a folder beside hubkitd's data directory, one thread per concurrent file. \
             Each thread {steps}"
        )
    }
}

fn ceiling_line() -> String {
    format!(
        "- transfer ceiling: `hubkit-bench baseline --mode tls-discard`, a bare hyper \
         HTTP/1.1 server over rustls in its own process. With this client it negotiates what \
         hubkitd negotiates: TLS 1.3 with the ring provider and HTTP/1.1 by ALPN. Like \
         hubkitd, it has a self-signed certificate and caps hyper's read buffer at {} KiB. \
         It reads each body frame by frame, drops it and responds 200 with the byte count. Its uploads use the same client \
         code, connections and concurrency as hubkitd's, so its MiB/s is what the HTTPS \
         transfer alone reaches on this machine, with the client and the server on the same \
         CPUs. hubkitd does the same transfer plus its own work, so its ratio to the file \
         baseline can only exceed the ceiling's ratio to the file baseline by measurement \
         noise",
        DISCARD_MAX_BUF_BYTES / 1024
    )
}

fn concurrency_line(settings: &UploadSettings) -> String {
    let small = settings.concurrency;
    let large = settings.large_concurrency;
    if small == 1 {
        "- concurrency: 1, so uploads and baseline files run one at a time".to_owned()
    } else if small == large {
        format!(
            "- concurrency: {small} uploads at a time and {small} baseline files at a time, \
             for both body sizes"
        )
    } else {
        format!(
            "- concurrency: {small} uploads at a time and {small} baseline files at a time \
             for 1 MiB bodies, but {large} of each for 100 MiB bodies, so that a slice's \
             100 MiB files stay under 1.6 GiB"
        )
    }
}

fn small_bodies_line(settings: &UploadSettings) -> String {
    let start = format!(
        "- 1 MiB bodies: {0} uploads to each server and {0} baseline files per round, in {1} \
         slices",
        settings.small_uploads, settings.small_slices
    );
    if settings.concurrency == 1 {
        start
    } else {
        format!(
            "{start}. Each slice splits its uploads across {0} connections and its files \
             across {0} threads",
            settings.concurrency
        )
    }
}

fn large_bodies_line(settings: &UploadSettings) -> String {
    if settings.large_concurrency == 1 {
        format!(
            "- 100 MiB bodies: {0} uploads to each server and {0} baseline files per round, \
             one of each per slice",
            settings.large_uploads()
        )
    } else {
        format!(
            "- 100 MiB bodies: {0} uploads to each server and {0} baseline files per round, \
             in {1} slices of {2} uploads at once and {2} files at once",
            settings.large_uploads(),
            settings.large_slices,
            settings.large_concurrency
        )
    }
}

fn time_line(settings: &UploadSettings) -> String {
    if settings.concurrency == 1 {
        "- time: an upload's runs from sending the request until the response body has \
         arrived, and a baseline file's from creating the file until the folder's fsync \
         returned. MiB/s is the bytes divided by the summed times"
            .to_owned()
    } else {
        "- time: a slice's uploads run from sending the first request until the last \
         response body has arrived, and its baseline files from creating the first file \
         until the last folder fsync returned. MiB/s is the bytes divided by the summed \
         wall times of the slices"
            .to_owned()
    }
}

/// A table column: the value of one phase and the number of decimals it is printed with.
type Column = (fn(&PhaseResult) -> f64, usize);

/// Columns of the transfer ceiling and both ratios, the last columns of both upload tables.
const CEILING_AND_RATIOS: [Column; 3] = [
    (|result| result.ceiling.mib_per_sec(), 1),
    (PhaseResult::ratio_to_baseline, 2),
    (PhaseResult::ratio_to_ceiling, 2),
];

/// Renders the table of the 1 MiB uploads, one row per round and a median row.
pub fn render_small_table(rounds: &[RoundResult]) -> String {
    let mut text = String::from(
        "| round | hubkitd MiB/s | hubkitd uploads/s | baseline MiB/s | baseline files/s \
         | transfer ceiling MiB/s | ratio to the baseline | ratio to the ceiling |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut columns: Vec<Column> = vec![
        (|result| result.hubkitd.mib_per_sec(), 1),
        (|result| result.hubkitd.per_sec(), 1),
        (|result| result.baseline.mib_per_sec(), 1),
        (|result| result.baseline.per_sec(), 1),
    ];
    columns.extend(CEILING_AND_RATIOS);
    let results: Vec<(String, PhaseResult)> = rounds
        .iter()
        .map(|round| (round.round.to_string(), round.small))
        .collect();
    push_rows(&mut text, &results, &columns);
    text
}

/// Renders the table of the 100 MiB uploads, one row per round and a median row.
pub fn render_large_table(rounds: &[RoundResult]) -> String {
    let mut text = String::from(
        "| round | hubkitd MiB/s | baseline MiB/s | transfer ceiling MiB/s | ratio to the \
         baseline | ratio to the ceiling |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut columns: Vec<Column> = vec![
        (|result| result.hubkitd.mib_per_sec(), 1),
        (|result| result.baseline.mib_per_sec(), 1),
    ];
    columns.extend(CEILING_AND_RATIOS);
    let results: Vec<(String, PhaseResult)> = rounds
        .iter()
        .map(|round| (round.round.to_string(), round.large))
        .collect();
    push_rows(&mut text, &results, &columns);
    text
}

/// Appends one row per labelled result and a median row when there are two or more. The
/// median of a column is the median of its values, not the column computed from medians.
fn push_rows(text: &mut String, results: &[(String, PhaseResult)], columns: &[Column]) {
    let cells = |values: Vec<f64>| -> String {
        values
            .iter()
            .zip(columns)
            .map(|(value, (_, decimals))| format!("{value:.decimals$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    for (label, result) in results {
        let values = columns.iter().map(|(column, _)| column(result)).collect();
        // Writing to a String cannot fail.
        let _ = writeln!(text, "| {label} | {} |", cells(values));
    }
    if results.len() > 1 {
        let medians = columns
            .iter()
            .map(|(column, _)| median(results.iter().map(|(_, result)| column(result)).collect()))
            .collect();
        let _ = writeln!(text, "| median | {} |", cells(medians));
    }
}

/// Renders hubkitd's RSS readings, one row per round.
pub fn render_memory_table(rounds: &[RoundResult]) -> String {
    let mut text = String::from(
        "| round | idle at start | peak after the 1 MiB uploads | idle before the 100 MiB \
         uploads | peak during the 100 MiB uploads | growth |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for round in rounds {
        let memory = &round.memory;
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} |",
            round.round,
            format_mib(memory.start_idle_kib),
            format_mib(memory.small_peak_kib),
            format_mib(memory.large_idle_kib),
            format_mib(memory.large_peak_kib),
            format_signed_mib(memory.large_growth_kib())
        );
    }
    text
}

/// Renders the summary table: each measure, its result and whether it met its target. The
/// measures name the concurrency of `settings` when it is above 1. Each body size has the
/// ratio to the file baseline with its target, then the ratio to the transfer ceiling and
/// the ceiling's own ratio to the file baseline, which have none.
pub fn render_summary(rounds: &[RoundResult], settings: &UploadSettings) -> String {
    let mut text = String::from("| measure | result | target |\n| --- | --- | --- |\n");
    let small: Vec<PhaseResult> = rounds.iter().map(|round| round.small).collect();
    let large: Vec<PhaseResult> = rounds.iter().map(|round| round.large).collect();
    let phases = [
        ("1 MiB", settings.concurrency, small),
        ("100 MiB", settings.large_concurrency, large),
    ];
    for (size, concurrency, results) in phases {
        let suffix = at_a_time(concurrency);
        let ratios =
            |ratio: fn(&PhaseResult) -> f64| -> Vec<f64> { results.iter().map(ratio).collect() };
        let to_baseline = ratios(PhaseResult::ratio_to_baseline);
        let median_to_baseline = median(to_baseline.clone());
        let _ = writeln!(
            text,
            "| {size} throughput ratio to the file baseline{suffix} | {} | at least \
             {MIN_RATIO}: {} |",
            median_and_range(&to_baseline),
            met(median_to_baseline >= MIN_RATIO)
        );
        let _ = writeln!(
            text,
            "| {size} throughput ratio to the transfer ceiling{suffix} | {} | |",
            median_and_range(&ratios(PhaseResult::ratio_to_ceiling))
        );
        let _ = writeln!(
            text,
            "| {size} transfer ceiling ratio to the file baseline{suffix} | {} | |",
            median_and_range(&ratios(PhaseResult::ceiling_ratio_to_baseline))
        );
    }

    let growths: Vec<i64> = rounds
        .iter()
        .map(|round| round.memory.large_growth_kib())
        .collect();
    let max_growth = growths.iter().copied().max().unwrap_or(0);
    let min_growth = growths.iter().copied().min().unwrap_or(0);
    let _ = writeln!(
        text,
        "| RSS growth during the 100 MiB uploads{} | {} to {} | under {}: {} |",
        at_a_time(settings.large_concurrency),
        format_signed_mib(min_growth),
        format_signed_mib(max_growth),
        format_signed_mib(MAX_RSS_GROWTH_KIB),
        met(max_growth < MAX_RSS_GROWTH_KIB)
    );

    let failed: usize = rounds.iter().map(|round| round.failures.len()).sum();
    let _ = writeln!(text, "| failed uploads | {failed} | |");
    text
}

/// Formats the median of `values` and their range, e.g. `median 0.80 (0.75 to 0.85)`.
fn median_and_range(values: &[f64]) -> String {
    let (low, high) = range(values);
    format!(
        "median {:.2} ({low:.2} to {high:.2})",
        median(values.to_vec())
    )
}

fn met(condition: bool) -> &'static str {
    if condition { "met" } else { "missed" }
}

/// Returns the median of `values`, which is the middle value or the mean of the two middle
/// ones. Returns 0 for no values.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        (0.0, 0.0)
    } else {
        (low, high)
    }
}

/// Formats a signed size given in KiB as MiB with one decimal, e.g. `-0.3 MiB`.
pub fn format_signed_mib(kib: i64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
