//! Prometheus metrics of the server and the store.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::UNIX_EPOCH;

use hubkit_mqtt::{BrokerStatus, ConnectionState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The webhook's name, an API route, or `unknown`; never a raw request path, so the
    /// number of series stays bounded.
    pub endpoint: String,
    /// The response status code.
    pub status: u16,
}

/// Every metric hubkitd exports, registered once at start.
pub struct Metrics {
    registry: Registry,
    /// Requests by endpoint and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Records committed to the store.
    pub records_stored: Counter,
    /// Records per committed transaction.
    pub commit_batch_records: Histogram,
    /// Time from transaction begin to commit end, in seconds.
    pub commit_duration: Histogram,
    /// Open client connections.
    pub open_connections: Gauge,
    /// Configuration reloads by outcome.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Files stored by webhooks.
    pub files_stored: Counter,
    /// Bytes of the files stored by webhooks.
    pub file_bytes_stored: Counter,
    /// Stored files removed by retention, by reason.
    pub files_removed: Family<RemovalLabels, Counter>,
    /// Camera requests stored with at least one parse error.
    pub camera_parse_errors: Counter,
    /// Action runs stored and not yet claimed by the runner.
    pub action_queue_depth: Gauge,
    /// Action runs executing now.
    pub actions_in_progress: Gauge,
    /// Finished action runs by action and status.
    pub action_runs: Family<ActionLabels, Counter>,
    /// Time from a run's creation (just before its commit) to the runner claiming it.
    pub action_start_delay: Histogram,
    /// Time from a run's claim to its finish.
    pub action_duration: Histogram,
    /// MQTT broker state and counters, refreshed from the broker statuses at each scrape.
    mqtt: MqttMetrics,
}

/// Labels of the action run counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The action's name, from the configuration, so the number of series stays bounded.
    pub action: String,
    /// `succeeded` or `failed`.
    pub status: &'static str,
}

/// Labels of the MQTT metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerLabels {
    /// Name of the broker.
    pub broker: String,
}

/// Reads one counter of a broker status.
type StatusCounter = fn(&BrokerStatus) -> u64;

/// Metrics of the MQTT broker connections.
struct MqttMetrics {
    connected: Family<BrokerLabels, Gauge>,
    last_message: Family<BrokerLabels, Gauge<f64, AtomicU64>>,
    counters: Vec<(StatusCounter, Family<BrokerLabels, Counter>)>,
}

impl MqttMetrics {
    fn register(registry: &mut Registry) -> MqttMetrics {
        let connected = Family::<BrokerLabels, Gauge>::default();
        registry.register(
            "mqtt_connected",
            "1 while the broker connection is up, 0 otherwise",
            connected.clone(),
        );
        let last_message = Family::<BrokerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "mqtt_last_message_timestamp_seconds",
            "Unix time of the last message received from the broker",
            last_message.clone(),
        );
        let specs: [(&str, &str, StatusCounter); 7] = [
            (
                "mqtt_reconnects",
                "Broker connections lost or attempts failed",
                |s| s.reconnects,
            ),
            ("mqtt_messages", "Messages received from the broker", |s| {
                s.messages
            }),
            (
                "mqtt_duplicates",
                "Redelivered messages that were already committed",
                |s| s.duplicates,
            ),
            (
                "mqtt_dead_letters",
                "Payloads set aside as dead letters",
                |s| s.dead_letters,
            ),
            (
                "mqtt_unmatched",
                "Messages no topic entry matched, acknowledged without a record",
                |s| s.unmatched,
            ),
            (
                "mqtt_oversized",
                "Messages larger than the broker's max_packet_bytes",
                |s| s.oversized,
            ),
            (
                "mqtt_store_failures",
                "Failed commits of MQTT messages, each retried",
                |s| s.store_failures,
            ),
        ];
        let counters = specs
            .into_iter()
            .map(|(name, help, read)| {
                let family = Family::<BrokerLabels, Counter>::default();
                registry.register(name, help, family.clone());
                (read, family)
            })
            .collect();
        MqttMetrics {
            connected,
            last_message,
            counters,
        }
    }

    fn refresh(&self, statuses: &[BrokerStatus]) {
        for status in statuses {
            let labels = BrokerLabels {
                broker: status.name.clone(),
            };
            let up = i64::from(status.state == ConnectionState::Connected);
            self.connected.get_or_create(&labels).set(up);
            if let Some(at) = status.last_message_at {
                let seconds = at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                self.last_message.get_or_create(&labels).set(seconds);
            }
            for (read, family) in &self.counters {
                let counter = family.get_or_create(&labels);
                // The supervisor carries counters over when it restarts a broker task,
                // so the status only grows while the process runs.
                counter.inc_by(read(status).saturating_sub(counter.get()));
            }
        }
    }
}

/// Labels of the removed-files counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemovalLabels {
    /// `max-age` or `max-total-bytes`.
    pub reason: &'static str,
}

/// Labels of the reload counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `applied` or `rejected`.
    pub outcome: &'static str,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("hubkit");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint and response status",
            requests.clone(),
        );
        let records_stored = Counter::default();
        registry.register(
            "records_stored",
            "Records committed to the store",
            records_stored.clone(),
        );
        let commit_batch_records = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "store_commit_batch_records",
            "Records per committed store transaction (group commit batch size)",
            commit_batch_records.clone(),
        );
        let commit_duration = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "store_commit_duration_seconds",
            "Time from transaction begin to commit end, including the fsync",
            commit_duration.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections currently open",
            open_connections.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by outcome",
            reloads.clone(),
        );
        let files_stored = Counter::default();
        registry.register(
            "files_stored",
            "Files stored by webhooks and cameras",
            files_stored.clone(),
        );
        let file_bytes_stored = Counter::default();
        registry.register(
            "file_bytes_stored",
            "Bytes of the files stored by webhooks and cameras",
            file_bytes_stored.clone(),
        );
        let files_removed = Family::<RemovalLabels, Counter>::default();
        registry.register(
            "files_removed",
            "Stored files removed by retention, by reason",
            files_removed.clone(),
        );
        let camera_parse_errors = Counter::default();
        registry.register(
            "camera_parse_errors",
            "Camera requests stored raw with at least one parse error",
            camera_parse_errors.clone(),
        );
        let action_queue_depth = Gauge::default();
        registry.register(
            "action_queue_depth",
            "Action runs stored and waiting for the runner",
            action_queue_depth.clone(),
        );
        let actions_in_progress = Gauge::default();
        registry.register(
            "actions_in_progress",
            "Action runs executing now",
            actions_in_progress.clone(),
        );
        let action_runs = Family::<ActionLabels, Counter>::default();
        registry.register(
            "action_runs",
            "Finished action runs by action and status (succeeded or failed)",
            action_runs.clone(),
        );
        // 0.1 ms to about 28 minutes, for a queue that drains after a long peak.
        let action_start_delay = Histogram::new(exponential_buckets(0.000_1, 2.0, 25));
        registry.register(
            "action_start_delay_seconds",
            "Time from an action run's creation, just before its commit, to its start",
            action_start_delay.clone(),
        );
        let action_duration = Histogram::new(exponential_buckets(0.000_1, 2.0, 22));
        registry.register(
            "action_run_duration_seconds",
            "Time from an action run's start to its finish",
            action_duration.clone(),
        );
        let mqtt = MqttMetrics::register(&mut registry);
        Arc::new(Metrics {
            action_queue_depth,
            actions_in_progress,
            action_runs,
            action_start_delay,
            action_duration,
            camera_parse_errors,
            registry,
            mqtt,
            files_stored,
            file_bytes_stored,
            files_removed,
            requests,
            records_stored,
            commit_batch_records,
            commit_duration,
            open_connections,
            reloads,
        })
    }

    /// Counts one request.
    pub fn count_request(&self, endpoint: String, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc();
    }

    /// Counts one finished action run.
    pub fn count_action_run(&self, action: &str, status: &'static str) {
        self.action_runs
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
                status,
            })
            .inc();
    }

    /// Copies the MQTT broker statuses into their metrics.
    pub fn refresh_mqtt(&self, statuses: &[BrokerStatus]) {
        self.mqtt.refresh(statuses);
    }

    /// Encodes every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
