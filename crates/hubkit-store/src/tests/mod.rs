//! Tests of the store against real SQLite files in temporary folders.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hubkit_model::{DataId, HttpTransport, Record, Transport, derive_uuid};
use tempfile::TempDir;

use crate::{Store, StoreOptions};

mod action_runs;
mod files;
mod mqtt;
mod query;
mod schema;
mod write;

/// Base time of the sample records: 2021-09-13T00:26:42.594348934Z.
const BASE_NANOS: i64 = 1_631_492_802_594_348_934;

/// Returns the timestamp `offset_seconds` after [`BASE_NANOS`].
fn time(offset_seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(BASE_NANOS + offset_seconds * 1_000_000_000)
}

/// Returns a record of area `area`, layer `layer` and device `device`, with ids derived
/// from the names.
fn record(area: &str, layer: &str, device: &str, timestamp: DateTime<Utc>) -> Record {
    Record {
        data_id: DataId::new(),
        area_id: derive_uuid("area", area),
        area_name: area.into(),
        layer_id: derive_uuid("layer", &format!("{area}/{layer}")),
        layer_name: layer.into(),
        kind_name: "Webhook-JSON".into(),
        physical_device_id: device_id(device),
        physical_device_name: device.into(),
        data_type: "json".into(),
        data: serde_json::json!({"device": device}),
        timestamp,
        transport: Transport::Http(HttpTransport {
            query: None,
            remote_address: "127.0.0.1:50000".into(),
            method: "POST".into(),
            content_type: Some("application/json".into()),
            tls: true,
        }),
    }
}

/// Returns the short device id used by [`record`] for `device`.
fn device_id(device: &str) -> String {
    hubkit_model::ShortId::derive("webhook", device).to_string()
}

/// Returns a plain record for tests that do not filter.
fn sample(offset_seconds: i64) -> Record {
    record("Office", "Webhooks", "sensor-a", time(offset_seconds))
}

/// Returns the database path inside `folder`.
fn db_path(folder: &TempDir) -> PathBuf {
    folder.path().join("hub.db")
}

/// Opens a store with default options in `folder`.
fn open(folder: &TempDir) -> Store {
    Store::open(&db_path(folder), StoreOptions::default()).expect("store opens")
}

/// Creates a temporary folder.
fn tempdir() -> TempDir {
    tempfile::tempdir().expect("temporary folder")
}

/// Holds the writer thread between batches until the returned sender is dropped, so
/// tests can queue requests deterministically.
async fn block_writer(store: &Store) -> std::sync::mpsc::Sender<()> {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (blocked, is_blocked) = tokio::sync::oneshot::channel();
    let store = store.clone();
    tokio::spawn(async move {
        store
            .with_writer_connection(move |_| {
                blocked.send(()).expect("test waits for the writer");
                // Returns on a message or when the test drops the sender.
                let _ = released.recv();
            })
            .await;
    });
    is_blocked.await.expect("writer runs the blocking function");
    release
}

/// Waits until `count` messages wait for the writer thread.
async fn wait_for_queue(store: &Store, count: usize) {
    for _ in 0..1000 {
        if store.queued_messages() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "queue holds {} messages; expected {count}",
        store.queued_messages()
    );
}
