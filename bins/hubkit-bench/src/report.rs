//! Markdown output of `hubkit-bench run`: the header block that describes the machine and
//! the load, and the results table.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use crate::format::{format_gib, format_latency, format_mib};
use crate::load::{DEFAULT_BODY, LoadReport};
use crate::sysinfo::HostInfo;

/// Settings of a run that the header block reports.
#[derive(Debug)]
pub struct RunSettings {
    /// Command line of this process.
    pub command: Vec<String>,
    /// Number of keep-alive connections.
    pub connections: u16,
    /// Warm-up time per target.
    pub warmup: Duration,
    /// Measured time per target.
    pub duration: Duration,
    /// Number of alternating slices of the SQLite FULL baseline and hubkitd.
    pub slices: u32,
    /// Number of rounds.
    pub rounds: u32,
    /// Directory that contains the targets' data directories.
    pub data_root: PathBuf,
    /// File system type of `data_root`, if known.
    pub data_filesystem: Option<String>,
}

/// Measurements of one target in one round.
#[derive(Debug)]
pub struct Row {
    /// Target name, e.g. `baseline tls-sqlite-full` or `hubkitd`.
    pub target: String,
    /// Whether this row is the SQLite FULL baseline that the ratio column divides by.
    pub is_reference: bool,
    /// Round number, from 1.
    pub round: u32,
    /// Load results of the measured window.
    pub load: LoadReport,
    /// `VmRSS` one second after the target became ready, in KiB.
    pub idle_rss_kib: u64,
    /// `VmHWM` after the load, in KiB.
    pub peak_rss_kib: u64,
}

/// Renders the header block: command, date, machine and load settings.
pub fn render_header(host: &HostInfo, settings: &RunSettings) -> String {
    let unknown = || "unknown".to_owned();
    let filesystem = settings.data_filesystem.clone().unwrap_or_else(unknown);
    let mut lines = host_lines(host, &settings.command);
    lines.extend([
        format!(
            "- load: {} keep-alive connections, HTTP/1.1 over TLS 1.3, one load-generator \
             thread on the same machine, {} s warm-up then {} s measured per target, {} round(s)",
            settings.connections,
            settings.warmup.as_secs(),
            settings.duration.as_secs(),
            settings.rounds
        ),
        format!(
            "- order: the other baselines one after the other; the SQLite FULL baseline and \
             hubkitd side by side, loaded in turn in {} slices per round (later slices with \
             0.5 s warm-up)",
            settings.slices
        ),
        format!("- request: POST `{DEFAULT_BODY}` with `Content-Type: application/json`"),
        format!(
            "- data directories under: {} ({filesystem})",
            settings.data_root.display()
        ),
    ]);
    let mut text = lines.join("\n");
    text.push_str("\n\n");
    text
}

/// Returns the header lines that every benchmark shares: command, date and machine.
pub fn host_lines(host: &HostInfo, command: &[String]) -> Vec<String> {
    let unknown = || "unknown".to_owned();
    let command: Vec<String> = command.iter().map(|arg| shell_quote(arg)).collect();
    let cpu = format!(
        "{}, {} logical CPUs",
        host.cpu_model.clone().unwrap_or_else(unknown),
        host.cpu_count
    );
    vec![
        format!("- command: `{}`", command.join(" ")),
        format!("- date: {}", Utc::now().format("%Y-%m-%d %H:%M:%S UTC")),
        format!("- host: {}", host.hostname.clone().unwrap_or_else(unknown)),
        format!("- kernel: {}", host.kernel.clone().unwrap_or_else(unknown)),
        format!("- CPU: {cpu}"),
        format!(
            "- memory: {}",
            host.memory_kib.map_or_else(unknown, format_gib)
        ),
        format!("- rustc: {}", host.rustc.clone().unwrap_or_else(unknown)),
        format!(
            "- load average at start (1, 5, 15 min): {}",
            host.load_average.clone().unwrap_or_else(unknown)
        ),
    ]
}

/// Renders the results table, with the round in the target column when `show_round` is set.
pub fn render_table(rows: &[Row], show_round: bool) -> String {
    let mut text = String::from(
        "| target | req/s | ratio to SQLite FULL baseline | p50 | p99 | max | idle RSS \
         | peak RSS | non-2xx | errors |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let target = if show_round {
            format!("{} (round {})", row.target, row.round)
        } else {
            row.target.clone()
        };
        let load = &row.load;
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "| {target} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            load.requests_per_sec(),
            ratio_to_reference(row, rows),
            format_latency(load.latency_micros(0.50)),
            format_latency(load.latency_micros(0.99)),
            format_latency(load.max_latency_micros()),
            format_mib(row.idle_rss_kib),
            format_mib(row.peak_rss_kib),
            load.non_2xx,
            load.errors,
        );
    }
    text
}

/// Returns `row`'s req/s divided by the reference row's of the same round, or `n/a`.
fn ratio_to_reference(row: &Row, rows: &[Row]) -> String {
    let reference = rows
        .iter()
        .find(|other| other.is_reference && other.round == row.round)
        .map(|other| other.load.requests_per_sec());
    match reference {
        Some(rate) if rate > 0.0 => format!("{:.2}", row.load.requests_per_sec() / rate),
        _ => "n/a".to_owned(),
    }
}

/// Returns one message per row that had non-2xx responses or errors.
pub fn failures(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|row| row.load.non_2xx > 0 || row.load.errors > 0)
        .map(|row| {
            let mut message = format!(
                "{} (round {}) failed: {} non-2xx responses, {} errors",
                row.target, row.round, row.load.non_2xx, row.load.errors
            );
            if let Some(status) = row.load.first_non_2xx {
                let _ = write!(message, "; first non-2xx status: {status}");
            }
            if let Some(err) = &row.load.first_error {
                let _ = write!(message, "; first error: {err}");
            }
            message
        })
        .collect()
}

/// Quotes a command-line argument for a POSIX shell when it contains other characters than
/// letters, digits and `_./:=@%+,-`.
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests;
