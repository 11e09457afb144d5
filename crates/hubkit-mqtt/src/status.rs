//! State and counters of each broker connection, for `GET /api/v1/brokers` and `/metrics`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::Qos;

/// State of a broker connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting, or waiting before the next attempt.
    Connecting,
    /// Connected and subscribed or subscribing.
    Connected,
    /// Connection lost or attempt failed; the task waits before the next attempt.
    Disconnected,
    /// No topic entry uses the broker, so the hub does not connect.
    Unused,
    /// The broker task has stopped.
    Stopped,
}

impl ConnectionState {
    /// Returns the lower-case name shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Unused => "unused",
            ConnectionState::Stopped => "stopped",
        }
    }
}

/// State of one topic entry's subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionState {
    /// Not subscribed yet, or the SUBACK has not arrived.
    Pending,
    /// The broker granted the subscription at this QoS.
    Granted(Qos),
    /// The broker rejected the filter, for example because an ACL forbids it.
    Rejected,
}

/// One topic entry as the broker status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryStatus {
    /// Name of the entry.
    pub name: String,
    /// The entry's filter.
    pub filter: String,
    /// The filter subscribed for the entry: its own, or another entry's filter that
    /// covers it.
    pub subscribed_filter: String,
    /// QoS the entry requests.
    pub qos: Qos,
    /// QoS sent in the SUBSCRIBE: the highest of the entries that share the subscribed
    /// filter, and 1 where an entry requests 2.
    pub subscribed_qos: Qos,
    /// State of the subscription.
    pub subscription: SubscriptionState,
}

/// Counters and state of one broker connection.
#[derive(Clone, Debug)]
pub struct BrokerStatus {
    /// Name of the broker.
    pub name: String,
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub address: String,
    /// Client identifier in use.
    pub client_id: String,
    /// Whether the session is persistent.
    pub persistent_session: bool,
    /// Connection state.
    pub state: ConnectionState,
    /// When the current connection was accepted.
    pub connected_since: Option<SystemTime>,
    /// The most recent connection error.
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_at: Option<SystemTime>,
    /// Connections lost and attempts failed since the broker task started.
    pub reconnects: u64,
    /// When the last message arrived.
    pub last_message_at: Option<SystemTime>,
    /// Messages received.
    pub messages: u64,
    /// Records committed.
    pub records: u64,
    /// Redelivered messages that were already committed.
    pub duplicates: u64,
    /// Payloads set aside as dead letters.
    pub dead_letters: u64,
    /// Messages whose topic no current entry matches, acknowledged without a record.
    pub unmatched: u64,
    /// Messages over the maximum packet size.
    pub oversized: u64,
    /// Failed commits, each retried.
    pub store_failures: u64,
    /// Topic entries of the broker.
    pub entries: Vec<EntryStatus>,
}

impl BrokerStatus {
    /// Returns the status of a broker that has not connected yet.
    pub fn new(name: &str, address: String, client_id: String, persistent: bool) -> Self {
        BrokerStatus {
            name: name.to_owned(),
            address,
            client_id,
            persistent_session: persistent,
            state: ConnectionState::Connecting,
            connected_since: None,
            last_error: None,
            last_error_at: None,
            reconnects: 0,
            last_message_at: None,
            messages: 0,
            records: 0,
            duplicates: 0,
            dead_letters: 0,
            unmatched: 0,
            oversized: 0,
            store_failures: 0,
            entries: Vec::new(),
        }
    }
}

impl BrokerStatus {
    /// Copies the counters and the last message time of `previous`.
    pub fn carry_counters(&mut self, previous: &BrokerStatus) {
        self.reconnects = previous.reconnects;
        self.last_message_at = previous.last_message_at;
        self.messages = previous.messages;
        self.records = previous.records;
        self.duplicates = previous.duplicates;
        self.dead_letters = previous.dead_letters;
        self.unmatched = previous.unmatched;
        self.oversized = previous.oversized;
        self.store_failures = previous.store_failures;
    }
}

/// A broker status shared between its task and readers.
#[derive(Clone, Debug)]
pub struct SharedStatus(Arc<Mutex<BrokerStatus>>);

impl SharedStatus {
    /// Wraps `status`.
    pub fn new(status: BrokerStatus) -> Self {
        SharedStatus(Arc::new(Mutex::new(status)))
    }

    /// Returns a copy of the current status.
    pub fn snapshot(&self) -> BrokerStatus {
        self.lock().clone()
    }

    /// Locks the status for an update.
    pub(crate) fn lock(&self) -> MutexGuard<'_, BrokerStatus> {
        // A panic while holding the lock leaves counters that are still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
