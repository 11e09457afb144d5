//! `hubkit-bench` measures hubkitd's HTTPS webhook ingest against bare servers built here,
//! its file uploads against plain file writes, and its MQTT ingest against a subscriber
//! that only counts messages, in the same run and on the same machine, and prints
//! markdown tables.
//!
//! Subcommands:
//! - `baseline --mode <tls|tls-sqlite-full|tls-sqlite-normal|tls-discard>` runs a bare
//!   hyper + rustls server, the floor that hubkitd is compared with. The SQLite modes commit
//!   every body through one writer thread with group commit before responding 200. The
//!   `tls-discard` mode drops bodies of up to 1 GiB as they arrive, and `upload` runs it as
//!   its transfer ceiling.
//! - `load --url URL` is the load generator: N keep-alive HTTP/1.1-over-TLS 1.3 connections
//!   on one thread, sending requests back to back for a fixed time, like `wrk -t1 -cN`. It
//!   only targets 127.0.0.1, ::1 or localhost.
//! - `run` starts each baseline and hubkitd as a child process in turn, loads it, reads its
//!   idle and peak RSS, and prints a header block and the results table. `just bench` calls
//!   it; it exits non-zero if any target returned non-2xx responses or had errors.
//! - `upload` measures hubkitd's file uploads of 1 MiB and 100 MiB over HTTPS against
//!   writing the same bytes durably to a file on the same disk, in turns, and hubkitd's RSS
//!   during the 100 MiB uploads. Its third step, the same uploads to the `tls-discard`
//!   baseline, measures the transfer ceiling. `just bench-upload` calls it. It exits non-zero if any
//!   upload failed or was stored wrongly.
//! - `mqtt` measures the MQTT messages per second that hubkitd stores at QoS 0 and 1,
//!   from a private Mosquitto broker it starts on 127.0.0.1, against a subscriber in the
//!   harness that only counts them, in alternating turns. `just bench-mqtt` calls it. It
//!   fails if a message is lost or stored twice.
//! - `action-latency --db FILE --trigger NAME` reads hubkitd's store and prints the time
//!   from each action run's creation, just before its commit, to its start. `just
//!   bench-triggers` calls it.
//!
//! Progress and diagnostics go to stderr; `RUST_LOG` sets the log level (default `warn`).

mod baseline;
mod format;
mod latency;
mod load;
mod mqtt;
mod orchestrate;
mod report;
mod sysinfo;
mod tls;
mod upload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Benchmark harness for hubkitd's HTTPS webhook ingest, file uploads and MQTT ingest.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a bare HTTPS server that hubkitd is compared with.
    Baseline(baseline::BaselineArgs),
    /// Sends load to one HTTPS URL on the loopback interface and prints latency and rate.
    Load(load::LoadArgs),
    /// Measures the baselines and hubkitd and prints the markdown results table.
    Run(orchestrate::RunArgs),
    /// Measures hubkitd's file upload throughput against a file-write baseline and an HTTPS
    /// transfer ceiling, and its RSS during 100 MiB uploads, and prints the markdown results.
    Upload(upload::UploadArgs),
    /// Measures the MQTT messages per second that hubkitd stores from a private Mosquitto
    /// broker against a subscriber that only counts them, at QoS 0 and 1.
    Mqtt(mqtt::MqttArgs),
    /// Prints the percentiles of the time from an action run's creation to its start, read
    /// from hubkitd's store.
    ActionLatency(latency::LatencyArgs),
}

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Baseline(args) => baseline::run(args).map(|()| ExitCode::SUCCESS),
        Command::Load(args) => load::run_cli(args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => orchestrate::run(args),
        Command::Upload(args) => upload::run(args),
        Command::Mqtt(args) => mqtt::run(args),
        Command::ActionLatency(args) => latency::run(args).map(|()| ExitCode::SUCCESS),
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::FAILURE
    })
}
