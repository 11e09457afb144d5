//! An MQTT test harness: a broker per test ([`TestBroker`]), a fault-injecting TCP proxy
//! ([`MqttProxy`]) and rumqttc-based clients ([`Publisher`], [`Subscriber`]).
//!
//! Tests run against a real broker. Set [`BROKER_ENV`] (`HUBKIT_TEST_MQTT_BROKER=host:port`)
//! to use an external broker. Otherwise each test spawns its own mosquitto when a binary is
//! installed, or runs rumqttd in-process, so `cargo test` needs nothing but Rust.

mod broker;
mod client;
mod embedded;
pub mod frame;
mod proxy;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use broker::{
    BROKER_ENV, BrokerKind, MAX_PACKET_SIZE, MOSQUITTO_ENV, TestBroker, mosquitto_binary,
};
pub use client::{
    DEFAULT_PUBLISH_TIMEOUT, Publisher, ReceivedMessage, Subscriber, SubscriberOptions,
    clear_session, publish_all,
};
pub use frame::packet_type;
pub use proxy::MqttProxy;
pub use rumqttc::QoS;

/// Returns a name that no other test, test process or earlier run uses, for client ids and
/// topics on a shared broker: `hubkit-testkit-<label>-<process id>-<start time>-<counter>`.
/// It contains only ASCII letters, digits and `-`, so it is valid as both.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros())
        .unwrap_or_default();
    format!(
        "hubkit-testkit-{label}-{}-{started}-{count}",
        std::process::id()
    )
}
