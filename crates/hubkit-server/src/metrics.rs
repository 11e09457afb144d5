//! Prometheus metrics of the server and the store.

use std::sync::Arc;

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
            "Files stored by webhooks",
            files_stored.clone(),
        );
        let file_bytes_stored = Counter::default();
        registry.register(
            "file_bytes_stored",
            "Bytes of the files stored by webhooks",
            file_bytes_stored.clone(),
        );
        let files_removed = Family::<RemovalLabels, Counter>::default();
        registry.register(
            "files_removed",
            "Stored files removed by retention, by reason",
            files_removed.clone(),
        );
        Arc::new(Metrics {
            registry,
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

    /// Encodes every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
