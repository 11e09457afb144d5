//! `hubkit-bench mqtt` measures how many MQTT messages per second hubkitd stores, against
//! a baseline subscriber in the harness that only counts them, in the same run. A private
//! Mosquitto broker on 127.0.0.1 carries both. For each broker window
//! (`max_inflight_messages`) and QoS level it starts a fresh hubkitd, then alternates
//! baseline and hubkitd turns of the same number of messages, round by round. It checks
//! both counts around every turn, and at the end that hubkitd's SQLite file holds each
//! message once.

mod broker;
mod clients;
mod hub;
mod prometheus;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tokio::time::Instant;

use crate::orchestrate::{self, SETTLE_TIME};
use crate::sysinfo::{self, HostInfo};

use self::broker::{Broker, BrokerSettings};
use self::clients::{Publisher, STALL_TIMEOUT, Subscriber};
use self::hub::{HubClient, HubConfig, StoreMetrics};
use self::report::{CpuTicks, MqttSettings, Phase, Round, Turn};

/// `max_queued_messages` of the broker, the messages it queues for one client beyond those
/// in flight. It is the largest `--messages`, so the broker can queue a whole turn for a
/// subscriber that falls behind.
const MAX_QUEUED_MESSAGES: u32 = 1_000_000;
/// Filter of the baseline subscriber; hubkitd's `bench/#` does not match its topics.
const BASELINE_FILTER: &str = "baseline/#";
/// Prefix of the topics that the baseline turns publish on.
const BASELINE_PREFIX: &str = "baseline/";
/// Name of hubkitd's SQLite file in its data directory.
const DATABASE_FILE: &str = "hubkit.db";
/// Pause after the last round before the final counts, so that a duplicate that arrives
/// late shows in them.
const FINAL_SETTLE: Duration = Duration::from_millis(500);

/// Command-line arguments of `hubkit-bench mqtt`.
#[derive(Args, Debug)]
pub struct MqttArgs {
    /// Path of the hubkitd binary to measure.
    #[arg(long)]
    pub hubkitd: PathBuf,
    /// Path of the Mosquitto binary (default: `mosquitto` in the PATH, /usr/sbin or
    /// /usr/local/sbin).
    #[arg(long)]
    pub mosquitto: Option<PathBuf>,
    /// Number of rounds per QoS level and broker window. Each round has one baseline turn
    /// and one hubkitd turn.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Messages per turn, at most the broker's `max_queued_messages` of 1,000,000.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    pub messages: u64,
    /// Messages of the warm-up turn that the baseline and hubkitd each get before the
    /// first round; 0 skips it.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub warmup_messages: u64,
    /// QoS levels to measure, comma-separated. QoS 2 is not offered because hubkitd
    /// subscribes a QoS 2 entry at QoS 1.
    #[arg(long, value_delimiter = ',', default_values_t = [0_u8, 1], value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: Vec<u8>,
    /// Broker windows to measure, comma-separated: Mosquitto's `max_inflight_messages`,
    /// the QoS 1 messages it sends a client before waiting for a PUBACK. 20 is
    /// Mosquitto's default.
    #[arg(long, value_delimiter = ',', default_values_t = [20_u16, 1000], value_parser = clap::value_parser!(u16).range(1..))]
    pub broker_inflight: Vec<u16>,
    /// QoS 1 messages the publisher sends before waiting for a PUBACK.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub publisher_inflight: u16,
    /// Interval in milliseconds between two reads of hubkitd's committed-records counter.
    /// It bounds how late the end of a hubkitd turn is seen.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub poll_interval_ms: u64,
    /// Directory under which each broker and each hubkitd gets a fresh directory
    /// (default: the system temporary directory). Its file system sets the cost of an
    /// fsync.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

/// Runs `hubkit-bench mqtt`: prints the header, each phase's table as it finishes, then
/// the commit, CPU and summary tables.
///
/// Returns failure when a phase lost, repeated or stalled a message.
///
/// # Errors
/// Fails if Mosquitto or hubkitd cannot be found or started.
pub fn run(args: &MqttArgs) -> anyhow::Result<ExitCode> {
    if !args.hubkitd.is_file() {
        bail!(
            "hubkitd binary {} not found; build it first",
            args.hubkitd.display()
        );
    }
    let mosquitto = broker::find_mosquitto(args.mosquitto.as_deref())?;
    let data_root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let settings = MqttSettings {
        command: std::env::args().collect(),
        broker_version: broker::version(&mosquitto),
        max_queued_messages: MAX_QUEUED_MESSAGES,
        messages: args.messages,
        warmup_messages: args.warmup_messages,
        rounds: args.rounds,
        publisher_inflight: args.publisher_inflight,
        poll_interval: Duration::from_millis(args.poll_interval_ms),
        ticks_per_second: sysinfo::clock_ticks_per_second(),
        data_filesystem: sysinfo::filesystem_type(&data_root),
        data_root: data_root.clone(),
    };
    orchestrate::print_stdout(&report::render_header(&HostInfo::collect(), &settings))?;

    // Two workers, so the publisher's and the baseline subscriber's event loops can run
    // on both cores of a small machine at once.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let mut phases = Vec::new();
    for &window in &args.broker_inflight {
        let broker_dir = tempfile::Builder::new()
            .prefix("hubkit-bench-mosquitto-")
            .tempdir_in(&data_root)
            .with_context(|| format!("failed to make a directory in {}", data_root.display()))?;
        let broker_settings = BrokerSettings {
            max_inflight_messages: window,
            max_queued_messages: MAX_QUEUED_MESSAGES,
        };
        let broker = broker::start(&mosquitto, broker_settings, broker_dir.path())?;
        for &qos in &args.qos {
            let phase = Phase::new(qos, window);
            eprintln!("{}: starting hubkitd", phase.title());
            let phase = measure_phase(&runtime, args, &settings, &broker, phase, &data_root)?;
            let table = report::render_phase_table(&phase);
            orchestrate::print_stdout(&format!("{}:\n\n{table}\n", phase.title()))?;
            phases.push(phase);
        }
    }

    let sections = [
        (
            "hubkitd's commits during the measured turns",
            report::render_commit_table(&phases),
        ),
        (
            "CPU time per message during the measured turns",
            report::render_cpu_table(&phases, settings.ticks_per_second),
        ),
        ("Summary", report::render_summary(&phases)),
    ];
    for (title, table) in sections {
        orchestrate::print_stdout(&format!("{title}:\n\n{table}\n"))?;
    }
    let failed: Vec<&Phase> = phases
        .iter()
        .filter(|phase| phase.failure.is_some())
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} of {} phases failed:", failed.len(), phases.len());
    for phase in failed {
        let reason = phase.failure.as_deref().unwrap_or_default();
        eprintln!("{}: {reason}", phase.title());
    }
    Ok(ExitCode::FAILURE)
}

/// Starts a fresh hubkitd subscribed at `phase.qos`, measures the phase's rounds, stops
/// hubkitd, removes its broker session and checks its SQLite file. The directory with
/// hubkitd's data is removed at the end.
///
/// A turn that loses, repeats or stalls a message ends the phase: the phase keeps the
/// rounds completed before it and records the failure, and the full error with the
/// output of hubkitd and the broker goes to stderr.
///
/// # Errors
/// Fails if hubkitd cannot be started, the broker rejects the connection that ends
/// hubkitd's session, or hubkitd's SQLite file cannot be read.
fn measure_phase(
    runtime: &tokio::runtime::Runtime,
    args: &MqttArgs,
    settings: &MqttSettings,
    broker: &Broker,
    mut phase: Phase,
    data_root: &Path,
) -> anyhow::Result<Phase> {
    let work_dir = tempfile::Builder::new()
        .prefix("hubkit-bench-mqtt-")
        .tempdir_in(data_root)
        .with_context(|| format!("failed to make a directory in {}", data_root.display()))?;
    let suffix = client_suffix()?;
    let config = HubConfig {
        broker_port: broker.config.port,
        client_id: format!("hubkit-bench-hubkitd-{suffix}"),
        qos: phase.qos,
    };
    let config_path = work_dir.path().join("hubkit.toml");
    std::fs::write(&config_path, config.render())
        .with_context(|| format!("failed to write {}", config_path.display()))?;
    let running = orchestrate::start_hubkitd(&args.hubkitd, &config_path, work_dir.path(), "")?;
    let token = running
        .admin_token
        .clone()
        .context("start_hubkitd sets an admin token")?;
    let pids = Pids {
        hubkitd: running.child.pid(),
        broker: broker.pid(),
        harness: std::process::id(),
    };
    let mut turns = Turns {
        settings,
        qos: phase.qos,
        pids,
        suffix,
        hub: HubClient::new(&running.url, &token)?,
        baseline_received: 0,
        hubkitd_stored: 0,
        published: Vec::new(),
        rounds: Vec::new(),
        store: StoreMetrics::default(),
    };
    let port = broker.config.port;
    let measured = runtime.block_on(turns.measure(port));
    phase.rounds = std::mem::take(&mut turns.rounds);
    phase.store = std::mem::take(&mut turns.store);
    phase.rss_kib = sysinfo::process_kib(pids.hubkitd, "VmRSS").ok();
    phase.peak_rss_kib = sysinfo::process_kib(pids.hubkitd, "VmHWM").ok();
    let published = std::mem::take(&mut turns.published);
    drop(turns);
    let outputs = [
        ("hubkitd", running.output.as_path()),
        ("mosquitto", broker.output.as_path()),
    ];
    let failure = format!("{} failed", phase.title());
    if let Err(err) = measured {
        phase.failure = Some(format!("{err:#}"));
        eprintln!("{:#}", orchestrate::with_outputs(&failure, &err, &outputs));
    }
    // Dropping the guard kills hubkitd and waits for it, so the file is no longer
    // written while it is checked. Every counted record was committed with FULL sync.
    drop(running);
    runtime.block_on(clients::end_session(&config.client_id, port))?;
    if phase.failure.is_some() {
        return Ok(phase);
    }

    let database = work_dir.path().join("data").join(DATABASE_FILE);
    let found = hub::topic_records(&database)?;
    let problems = hub::record_problems(&found, &published);
    if !problems.is_empty() {
        let message = format!(
            "hubkitd's SQLite file {} does not hold each published message once:\n{}",
            database.display(),
            problems.join("\n")
        );
        eprintln!("{}: {message}", phase.title());
        phase.failure = Some(message);
    }
    Ok(phase)
}

/// Returns 12 random hexadecimal characters that make the client ids of a phase unique.
fn client_suffix() -> anyhow::Result<String> {
    let mut token = orchestrate::random_token()?;
    token.truncate(12);
    Ok(token)
}

/// Process ids whose CPU time each turn reads.
#[derive(Clone, Copy)]
struct Pids {
    hubkitd: u32,
    broker: u32,
    harness: u32,
}

impl Pids {
    fn sample(&self) -> anyhow::Result<CpuTicks> {
        let machine = sysinfo::machine_cpu_ticks()?;
        Ok(CpuTicks {
            hubkitd: sysinfo::process_cpu_ticks(self.hubkitd)?,
            broker: sysinfo::process_cpu_ticks(self.broker)?,
            harness: sysinfo::process_cpu_ticks(self.harness)?,
            machine_busy: machine.busy,
            machine_total: machine.total,
        })
    }
}

/// The clients and counts of one phase.
struct Turns<'a> {
    settings: &'a MqttSettings,
    qos: u8,
    pids: Pids,
    /// Suffix of the harness's client ids.
    suffix: String,
    hub: HubClient,
    /// Messages the baseline subscriber must have received after the turns so far.
    baseline_received: u64,
    /// Records hubkitd must have committed after the turns so far.
    hubkitd_stored: u64,
    /// Topics of the hubkitd turns and the messages published on each.
    published: Vec<(String, u64)>,
    /// Rounds completed so far.
    rounds: Vec<Round>,
    /// hubkitd's commits during the rounds completed so far.
    store: StoreMetrics,
}

impl Turns<'_> {
    /// Connects the clients, runs the warm-up turns and the rounds into `self.rounds` and
    /// `self.store`, and checks the final counts.
    async fn measure(&mut self, port: u16) -> anyhow::Result<()> {
        self.hub.wait_subscribed(self.qos).await?;
        let qos = clients::rumqttc_qos(self.qos)?;
        let publisher_id = format!("hubkit-bench-publisher-{}", self.suffix);
        let publisher =
            Publisher::connect(&publisher_id, port, qos, self.settings.publisher_inflight).await?;
        let subscriber_id = format!("hubkit-bench-baseline-{}", self.suffix);
        let subscriber = Subscriber::connect(&subscriber_id, port, BASELINE_FILTER, qos).await?;

        let warmup = self.settings.warmup_messages;
        if warmup > 0 {
            self.baseline_turn(&publisher, &subscriber, "warmup", warmup)
                .await?;
            self.hubkitd_turn(&publisher, "warmup", warmup).await?;
        }
        tokio::time::sleep(SETTLE_TIME).await;
        let before = self.hub.store_metrics().await?;
        for number in 1..=self.settings.rounds {
            let name = format!("round-{number}");
            let messages = self.settings.messages;
            // Odd rounds start with the baseline, even rounds with hubkitd.
            let hubkitd_first = number.is_multiple_of(2);
            let (baseline, hubkitd) = if hubkitd_first {
                let hubkitd = self.hubkitd_turn(&publisher, &name, messages).await?;
                let baseline = self
                    .baseline_turn(&publisher, &subscriber, &name, messages)
                    .await?;
                (baseline, hubkitd)
            } else {
                let baseline = self
                    .baseline_turn(&publisher, &subscriber, &name, messages)
                    .await?;
                let hubkitd = self.hubkitd_turn(&publisher, &name, messages).await?;
                (baseline, hubkitd)
            };
            let round = Round {
                round: number,
                hubkitd_first,
                baseline,
                hubkitd,
            };
            eprintln!("  {}", report::progress_line(&round));
            self.rounds.push(round);
            self.store = self.hub.store_metrics().await?.since(&before);
        }

        tokio::time::sleep(FINAL_SETTLE).await;
        self.check_counts(&subscriber).await?;
        publisher.disconnect().await;
        subscriber.disconnect().await;
        Ok(())
    }

    /// Checks that the baseline subscriber has received, and hubkitd has committed,
    /// exactly the messages of the turns so far.
    async fn check_counts(&mut self, subscriber: &Subscriber) -> anyhow::Result<()> {
        let received = subscriber.received();
        if received != self.baseline_received {
            bail!(
                "the baseline subscriber received {received} messages, expected {}",
                self.baseline_received
            );
        }
        let stored = self.hub.records_stored().await?;
        if stored != self.hubkitd_stored {
            bail!(
                "hubkitd committed {stored} records, expected {}; messages were lost or \
                 stored twice",
                self.hubkitd_stored
            );
        }
        Ok(())
    }

    /// Publishes `count` messages on `baseline/<name>` and waits until the baseline
    /// subscriber has received them.
    async fn baseline_turn(
        &mut self,
        publisher: &Publisher,
        subscriber: &Subscriber,
        name: &str,
        count: u64,
    ) -> anyhow::Result<Turn> {
        self.check_counts(subscriber).await?;
        let topic = format!("{BASELINE_PREFIX}{name}");
        let target = self.baseline_received + count;
        let cpu_before = self.pids.sample()?;
        let start = Instant::now();
        let (accepted, received) = tokio::join!(
            publisher.publish(&topic, count),
            subscriber.wait_for(target)
        );
        let accepted = accepted?;
        let received = received?;
        let cpu = self.pids.sample()?.since(&cpu_before);
        let cpu_wall = start.elapsed();
        self.baseline_received = target;
        Ok(Turn {
            messages: count,
            elapsed: received.saturating_duration_since(start),
            published: accepted.saturating_duration_since(start),
            cpu,
            cpu_wall,
        })
    }

    /// Publishes `count` messages on `bench/<name>` and waits until hubkitd has committed
    /// them.
    async fn hubkitd_turn(
        &mut self,
        publisher: &Publisher,
        name: &str,
        count: u64,
    ) -> anyhow::Result<Turn> {
        let stored = self.hub.records_stored().await?;
        if stored != self.hubkitd_stored {
            bail!(
                "hubkitd committed {stored} records before turn {name}, expected {}; \
                 messages were lost or stored twice",
                self.hubkitd_stored
            );
        }

        let topic = format!("{}{name}", hub::TOPIC_PREFIX);
        let target = self.hubkitd_stored + count;
        let interval = self.settings.poll_interval;
        let cpu_before = self.pids.sample()?;
        let start = Instant::now();
        let (accepted, stored) = tokio::join!(
            publisher.publish(&topic, count),
            self.hub.wait_stored(target, interval, STALL_TIMEOUT)
        );
        let accepted = accepted?;
        let stored = stored?;
        let cpu = self.pids.sample()?.since(&cpu_before);
        let cpu_wall = start.elapsed();

        self.hubkitd_stored = target;
        self.published.push((topic, count));
        Ok(Turn {
            messages: count,
            elapsed: stored.saturating_duration_since(start),
            published: accepted.saturating_duration_since(start),
            cpu,
            cpu_wall,
        })
    }
}

#[cfg(test)]
mod tests;
