//! `action-latency`: the time from an action run's creation to its start, read from
//! hubkitd's store.
//!
//! A run's `created_ns` is taken when its trigger fires, just before the transaction that
//! commits it with its record, and `started_ns` when the runner claims it. Their difference
//! is the commit wait plus the queue wait, an upper bound of the time from commit to start.

use std::path::PathBuf;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rusqlite::{Connection, OpenFlags};

/// Arguments of `action-latency`.
#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    /// hubkitd's SQLite file, `<data_dir>/hubkit.db`. It is opened read-only.
    #[arg(long)]
    pub db: PathBuf,
    /// Only runs fired by the trigger of this name.
    #[arg(long)]
    pub trigger: String,
}

/// Prints the number of started runs and the percentiles of their start delay.
pub fn run(args: &LatencyArgs) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(&args.db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("failed to open {}", args.db.display()))?;

    let mut statement = conn.prepare(
        "SELECT started_ns - created_ns FROM action_runs \
         WHERE trigger = ?1 AND started_ns IS NOT NULL",
    )?;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let delays = statement.query_map([&args.trigger], |row| row.get::<_, i64>(0))?;
    for delay in delays {
        let micros = u64::try_from(delay? / 1000).unwrap_or(0).max(1);
        histogram.saturating_record(micros);
    }

    if histogram.is_empty() {
        bail!(
            "no started runs of trigger {:?} in {}",
            args.trigger,
            args.db.display()
        );
    }

    let ms = |micros: u64| micros as f64 / 1000.0;
    println!("runs: {}", histogram.len());
    println!(
        "start delay p50: {:.2} ms",
        ms(histogram.value_at_quantile(0.5))
    );
    println!(
        "start delay p99: {:.2} ms",
        ms(histogram.value_at_quantile(0.99))
    );
    println!("start delay max: {:.2} ms", ms(histogram.max()));
    Ok(())
}
