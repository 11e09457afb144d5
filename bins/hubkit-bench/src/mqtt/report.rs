//! Results of `hubkit-bench mqtt` and their markdown: the header block, one table per QoS
//! and broker window, hubkitd's commits and the CPU use, and the summary against the
//! target.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::format::{format_latency, format_mib};
use crate::report::host_lines;
use crate::sysinfo::HostInfo;

use super::hub::StoreMetrics;

/// Minimum median ratio of hubkitd's stored messages per second to the baseline
/// subscriber's, at QoS 1 with `synchronous = FULL`. QoS 0 has no target.
pub const MIN_QOS1_RATIO: f64 = 0.5;

/// Settings of a run that the header block reports.
#[derive(Debug)]
pub struct MqttSettings {
    /// Command line of this process.
    pub command: Vec<String>,
    /// Version line of the broker, e.g. `mosquitto version 2.0.11`.
    pub broker_version: Option<String>,
    /// `max_queued_messages` of the broker.
    pub max_queued_messages: u32,
    /// Messages per measured turn.
    pub messages: u64,
    /// Messages per warm-up turn.
    pub warmup_messages: u64,
    /// Rounds per QoS and broker window.
    pub rounds: u32,
    /// rumqttc's in-flight limit of the publisher.
    pub publisher_inflight: u16,
    /// Interval between two reads of hubkitd's record counter.
    pub poll_interval: Duration,
    /// Clock ticks per second of `/proc` CPU times.
    pub ticks_per_second: u64,
    /// Directory that contains the data directories.
    pub data_root: PathBuf,
    /// File system type of `data_root`, if known.
    pub data_filesystem: Option<String>,
}

/// CPU time used during a turn, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// hubkitd, or 0 in a baseline turn while hubkitd idles.
    pub hubkitd: u64,
    /// The broker.
    pub broker: u64,
    /// This process: the publisher, the baseline subscriber and the metrics reads.
    pub harness: u64,
    /// The whole machine, busy time summed over all CPUs.
    pub machine_busy: u64,
    /// The whole machine, all time summed over all CPUs.
    pub machine_total: u64,
}

impl CpuTicks {
    /// Returns the ticks used from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuTicks) -> CpuTicks {
        CpuTicks {
            hubkitd: self.hubkitd.saturating_sub(earlier.hubkitd),
            broker: self.broker.saturating_sub(earlier.broker),
            harness: self.harness.saturating_sub(earlier.harness),
            machine_busy: self.machine_busy.saturating_sub(earlier.machine_busy),
            machine_total: self.machine_total.saturating_sub(earlier.machine_total),
        }
    }

    fn add(&mut self, other: &CpuTicks) {
        self.hubkitd += other.hubkitd;
        self.broker += other.broker;
        self.harness += other.harness;
        self.machine_busy += other.machine_busy;
        self.machine_total += other.machine_total;
    }
}

/// One turn: `messages` published to one subscriber.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Turn {
    /// Messages published and received or stored.
    pub messages: u64,
    /// Time from the first publish until the subscriber had received, or hubkitd had
    /// committed, the last message.
    pub elapsed: Duration,
    /// Time from the first publish until the broker had accepted the last message.
    pub published: Duration,
    /// CPU time used during the turn.
    pub cpu: CpuTicks,
    /// Time between the two readings of `cpu`: from the first publish until both the
    /// broker's acceptance and the receipt or commit of the last message were seen.
    pub cpu_wall: Duration,
}

impl Turn {
    /// Returns the messages per second received or stored.
    pub fn rate(&self) -> f64 {
        per_second(self.messages, self.elapsed)
    }

    /// Returns the messages per second the broker accepted from the publisher.
    pub fn publish_rate(&self) -> f64 {
        per_second(self.messages, self.published)
    }
}

fn per_second(messages: u64, time: Duration) -> f64 {
    let seconds = time.as_secs_f64();
    if seconds > 0.0 {
        messages as f64 / seconds
    } else {
        0.0
    }
}

/// One round: a baseline turn and a hubkitd turn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Round {
    /// Round number, from 1.
    pub round: u32,
    /// Whether hubkitd's turn came first.
    pub hubkitd_first: bool,
    /// The baseline subscriber's turn.
    pub baseline: Turn,
    /// hubkitd's turn.
    pub hubkitd: Turn,
}

impl Round {
    /// Returns hubkitd's rate divided by the baseline's, or 0 if the baseline's is 0.
    pub fn ratio(&self) -> f64 {
        let baseline = self.baseline.rate();
        if baseline > 0.0 {
            self.hubkitd.rate() / baseline
        } else {
            0.0
        }
    }
}

/// All rounds of one QoS level and broker window, with one hubkitd.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// QoS of the publisher, the subscriptions and hubkitd's topic entry.
    pub qos: u8,
    /// The broker's `max_inflight_messages`.
    pub window: u16,
    /// The rounds completed.
    pub rounds: Vec<Round>,
    /// hubkitd's commits during the completed rounds.
    pub store: StoreMetrics,
    /// hubkitd's `VmRSS` after the last round, in KiB, if it could be read.
    pub rss_kib: Option<u64>,
    /// hubkitd's `VmHWM` after the last round, in KiB, if it could be read.
    pub peak_rss_kib: Option<u64>,
    /// Reason the phase stopped early or failed its final checks.
    pub failure: Option<String>,
}

impl Phase {
    /// Returns a phase with no rounds yet.
    pub fn new(qos: u8, window: u16) -> Self {
        Phase {
            qos,
            window,
            rounds: Vec::new(),
            store: StoreMetrics::default(),
            rss_kib: None,
            peak_rss_kib: None,
            failure: None,
        }
    }

    /// Returns the phase's title, e.g. `QoS 1, broker max_inflight_messages 20`.
    pub fn title(&self) -> String {
        format!(
            "QoS {}, broker max_inflight_messages {}",
            self.qos, self.window
        )
    }

    fn ratios(&self) -> Vec<f64> {
        self.rounds.iter().map(Round::ratio).collect()
    }

    fn rates(&self, turn: TurnOf) -> Vec<f64> {
        self.rounds.iter().map(|round| turn(round).rate()).collect()
    }

    fn totals(&self, turn: TurnOf) -> Totals {
        let mut totals = Totals::default();
        for round in &self.rounds {
            let turn = turn(round);
            totals.messages += turn.messages;
            totals.elapsed += turn.elapsed;
            totals.cpu.add(&turn.cpu);
            totals.cpu_wall += turn.cpu_wall;
        }
        totals
    }
}

/// Sums over the same turn of every round of a phase.
#[derive(Default)]
struct Totals {
    messages: u64,
    elapsed: Duration,
    cpu: CpuTicks,
    cpu_wall: Duration,
}

/// Selects one of the two turns of a round.
type TurnOf = fn(&Round) -> &Turn;

fn baseline_turn(round: &Round) -> &Turn {
    &round.baseline
}

fn hubkitd_turn(round: &Round) -> &Turn {
    &round.hubkitd
}

/// Renders the header block: command, date, machine, broker, clients and counts.
pub fn render_header(host: &HostInfo, settings: &MqttSettings) -> String {
    let unknown = || "unknown".to_owned();
    let filesystem = settings.data_filesystem.clone().unwrap_or_else(unknown);
    let broker = settings.broker_version.clone().unwrap_or_else(unknown);
    let mut lines = host_lines(host, &settings.command);
    lines.extend([
        format!(
            "- broker: {broker}, started by the harness on a free port of 127.0.0.1 for each \
             broker window, with `persistence false`, `max_queued_messages {}` and the \
             window as `max_inflight_messages`",
            settings.max_queued_messages
        ),
        format!(
            "- publisher: one rumqttc client in the harness, publishing \
             `{}` with n counting from 0, as fast as the broker accepts them, at most {} \
             unacknowledged at QoS 1",
            super::clients::payload(0),
            settings.publisher_inflight
        ),
        "- baseline: one rumqttc client in the harness, subscribed at the measured QoS to \
         `baseline/#`, which counts each message and at QoS 1 acknowledges it as soon as \
         it is read"
            .to_owned(),
        format!(
            "- hubkitd: its own process with a fresh data directory and \
             `synchronous = \"full\"`, one broker with `clean_session = false`, one topic \
             entry `bench/#` at the measured QoS bound to an `mqtt` layer. A QoS 1 message \
             is acknowledged after its record is committed. The harness reads \
             `hubkit_records_stored_total` from `/metrics` every {} ms over one keep-alive \
             HTTPS connection",
            settings.poll_interval.as_millis()
        ),
        format!(
            "- turns: {} messages per turn; each round has one baseline turn and one \
             hubkitd turn, in alternating order, after one warm-up turn of {} messages \
             each; {} round(s) per QoS and window",
            settings.messages, settings.warmup_messages, settings.rounds
        ),
        "- rate: messages divided by the time from the first publish until the baseline \
         received the last message, or until a read of hubkitd's counter showed the last \
         record committed. Each turn must end with exactly its messages received or \
         stored, and hubkitd's SQLite file must hold each message once"
            .to_owned(),
        format!(
            "- CPU: from `/proc/<pid>/stat` and `/proc/stat` at {} ticks per second",
            settings.ticks_per_second
        ),
        format!(
            "- data directories under: {} ({filesystem})",
            settings.data_root.display()
        ),
    ]);
    let mut text = lines.join("\n");
    text.push_str("\n\n");
    text
}

/// Renders the rounds of one phase with a median row when there are several, and the
/// failure if the phase failed.
pub fn render_phase_table(phase: &Phase) -> String {
    if phase.rounds.is_empty() {
        let failure = phase.failure.as_deref().unwrap_or("no failure recorded");
        return format!("No round completed. Failed: {failure}\n");
    }
    let mut text = String::from(
        "| round | first | baseline msg/s | hubkitd msg/s | ratio | publisher msg/s in the \
         baseline turn | publisher msg/s in the hubkitd turn |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for round in &phase.rounds {
        let first = if round.hubkitd_first {
            "hubkitd"
        } else {
            "baseline"
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "| {} | {first} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} |",
            round.round,
            round.baseline.rate(),
            round.hubkitd.rate(),
            round.ratio(),
            round.baseline.publish_rate(),
            round.hubkitd.publish_rate(),
        );
    }
    if phase.rounds.len() > 1 {
        let publish_rates = |turn: TurnOf| -> Vec<f64> {
            phase
                .rounds
                .iter()
                .map(|round| turn(round).publish_rate())
                .collect()
        };
        let _ = writeln!(
            text,
            "| median | | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} |",
            median(&phase.rates(baseline_turn)),
            median(&phase.rates(hubkitd_turn)),
            median(&phase.ratios()),
            median(&publish_rates(baseline_turn)),
            median(&publish_rates(hubkitd_turn)),
        );
    }
    if let Some(failure) = &phase.failure {
        let _ = write!(
            text,
            "\nFailed after {} complete round(s): {failure}\n",
            phase.rounds.len()
        );
    }
    text
}

/// Renders hubkitd's group commits during the measured turns, one row per phase.
pub fn render_commit_table(phases: &[Phase]) -> String {
    let mut text = String::from(
        "| QoS | broker window | commits/s | records per commit, mean | median commit in \
         bucket | commit time, mean | hubkitd RSS after the run | hubkitd peak RSS |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for phase in phases {
        let elapsed = phase.totals(hubkitd_turn).elapsed;
        let batch = &phase.store.batch;
        let commits_per_second = if elapsed.is_zero() {
            0.0
        } else {
            batch.count / elapsed.as_secs_f64()
        };
        let mean_batch = batch
            .mean()
            .map_or_else(|| "n/a".to_owned(), |mean| format!("{mean:.1}"));
        let median_bucket = batch
            .median_bucket()
            .map_or_else(|| "n/a".to_owned(), |(low, high)| format_bucket(low, high));
        let mean_commit = phase.store.duration.mean().map_or_else(
            || "n/a".to_owned(),
            |seconds| format_latency((seconds * 1e6).round() as u64),
        );
        let commits_per_second = if phase.rounds.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{commits_per_second:.0}")
        };
        let mib = |kib: Option<u64>| kib.map_or_else(|| "n/a".to_owned(), format_mib);
        let _ = writeln!(
            text,
            "| {} | {} | {commits_per_second} | {mean_batch} | {median_bucket} | \
             {mean_commit} | {} | {} |",
            phase.qos,
            phase.window,
            mib(phase.rss_kib),
            mib(phase.peak_rss_kib),
        );
    }
    text
}

/// Formats a histogram bucket of whole numbers, e.g. `17 to 32` for `(16, 32]`.
pub fn format_bucket(low: f64, high: f64) -> String {
    let first = low.floor() as u64 + 1;
    if high.is_infinite() {
        return format!("{first} or more");
    }
    let last = high.floor() as u64;
    if first >= last {
        return last.to_string();
    }
    format!("{first} to {last}")
}

/// Renders, for the baseline turns and the hubkitd turns of each phase, the CPU time per
/// message of each process, the cores each kept busy on average, the cores that other
/// processes kept busy, and the machine's busy share.
pub fn render_cpu_table(phases: &[Phase], ticks_per_second: u64) -> String {
    let mut text = String::from(
        "| QoS | broker window | turns | hubkitd µs/msg | broker µs/msg | harness µs/msg | \
         hubkitd cores | broker cores | harness cores | other processes' cores | machine CPU \
         busy |\n\
         | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for phase in phases.iter().filter(|phase| !phase.rounds.is_empty()) {
        let targets: [(&str, TurnOf); 2] = [("baseline", baseline_turn), ("hubkitd", hubkitd_turn)];
        for (name, turn) in targets {
            let totals = phase.totals(turn);
            let cpu = totals.cpu;
            let per_message =
                |ticks: u64| micros_per_message(ticks, ticks_per_second, totals.messages);
            let cores = |ticks: u64| busy_cores(ticks, ticks_per_second, totals.cpu_wall);
            let (hubkitd_per_message, hubkitd_cores) = if name == "hubkitd" {
                (
                    format!("{:.1}", per_message(cpu.hubkitd)),
                    format!("{:.2}", cores(cpu.hubkitd)),
                )
            } else {
                // No message goes to hubkitd in a baseline turn.
                ("-".to_owned(), "-".to_owned())
            };
            let busy = if cpu.machine_total > 0 {
                100.0 * cpu.machine_busy as f64 / cpu.machine_total as f64
            } else {
                0.0
            };
            // The machine's busy ticks are summed over all CPUs, so they convert to cores
            // like a process's ticks.
            let measured = cpu.hubkitd + cpu.broker + cpu.harness;
            let other = cores(cpu.machine_busy.saturating_sub(measured));
            let _ = writeln!(
                text,
                "| {} | {} | {name} | {hubkitd_per_message} | {:.1} | {:.1} | {hubkitd_cores} | \
                 {:.2} | {:.2} | {other:.2} | {busy:.0}% |",
                phase.qos,
                phase.window,
                per_message(cpu.broker),
                per_message(cpu.harness),
                cores(cpu.broker),
                cores(cpu.harness),
            );
        }
    }
    text
}

/// Returns the average number of cores that `ticks` clock ticks kept busy over `wall`.
pub fn busy_cores(ticks: u64, ticks_per_second: u64, wall: Duration) -> f64 {
    let seconds = wall.as_secs_f64();
    if ticks_per_second == 0 || seconds <= 0.0 {
        return 0.0;
    }
    ticks as f64 / ticks_per_second as f64 / seconds
}

/// Returns the CPU microseconds per message for `ticks` clock ticks.
pub fn micros_per_message(ticks: u64, ticks_per_second: u64, messages: u64) -> f64 {
    if messages == 0 || ticks_per_second == 0 {
        return 0.0;
    }
    ticks as f64 * 1e6 / ticks_per_second as f64 / messages as f64
}

/// Renders the summary: per phase the median rates and the ratio against the target.
pub fn render_summary(phases: &[Phase]) -> String {
    let mut text = String::from(
        "| QoS | broker window | baseline msg/s, median | hubkitd msg/s, median | ratio | \
         target |\n\
         | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for phase in phases {
        let ratios = phase.ratios();
        let ratio = median(&ratios);
        let (low, high) = range(&ratios);
        let mut ratio_text = if ratios.is_empty() {
            "n/a".to_owned()
        } else {
            format!("median {ratio:.2} ({low:.2} to {high:.2})")
        };
        if phase.failure.is_some() {
            let _ = write!(
                ratio_text,
                " in {} complete round(s), then failed",
                ratios.len()
            );
        }
        let target = match (phase.qos, &phase.failure) {
            (1, Some(_)) => format!("at least {MIN_QOS1_RATIO}: missed, the phase failed"),
            (1, None) if ratio >= MIN_QOS1_RATIO => format!("at least {MIN_QOS1_RATIO}: met"),
            (1, None) => format!("at least {MIN_QOS1_RATIO}: missed"),
            _ => String::new(),
        };
        let median_rate = |turn: TurnOf| {
            if ratios.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.0}", median(&phase.rates(turn)))
            }
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {ratio_text} | {target} |",
            phase.qos,
            phase.window,
            median_rate(baseline_turn),
            median_rate(hubkitd_turn),
        );
    }
    text
}

/// Returns the progress line of one round for stderr.
pub fn progress_line(round: &Round) -> String {
    format!(
        "round {}: baseline {:.0} msg/s, hubkitd {:.0} msg/s, ratio {:.2}",
        round.round,
        round.baseline.rate(),
        round.hubkitd.rate(),
        round.ratio()
    )
}

/// Returns the median of `values`: the middle value, or the mean of the two middle ones.
/// Returns 0 for no values.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => 0.0,
        len if len % 2 == 1 => sorted[middle],
        _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
    }
}

/// Returns the smallest and largest of `values`, or (0, 0) for no values.
pub fn range(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}
