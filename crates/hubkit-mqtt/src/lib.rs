//! MQTT broker and topic management for hubkit.
//!
//! [`TopicFilter`] checks a subscription filter against the MQTT 3.1.1 and 5.0 rules
//! (`+` and `#` wildcards, `$` topics, `$share/<group>/<filter>` shared subscriptions) and
//! matches received topic names against it. [`BrokerSettings`] and [`TopicEntry`] are the
//! checked configuration of a broker and of a subscription.
//!
//! A [`Supervisor`] runs one [`BrokerTask`] per broker. The task keeps one connection
//! that carries every topic entry of the broker, routes each received message to the
//! entries whose filters match its topic, hands it to a [`Sink`] (the hub's store) and
//! acknowledges a QoS 1 or 2 message only after the sink committed it, in the order the
//! messages arrived. It reconnects with capped exponential [`Backoff`] and jitter and
//! reports its state through [`BrokerStatus`].
//!
//! A [`Publisher`] sends the messages of action steps on a separate clean-session
//! connection and waits for the broker's acknowledgement.
//!
//! The MQTT client library (rumqttc) stays behind the crate's own [`Connector`],
//! [`Connection`] and [`Requests`] traits. [`decode_payload`] turns a payload into a
//! record's data by the entry's payload format; building and storing records is left to
//! the sink.

#![deny(missing_docs)]

mod backoff;
mod client;
mod payload;
mod publisher;
mod rumqttc_client;
mod settings;
mod sink;
mod status;
mod supervisor;
mod task;
mod tls;
mod topic;

pub use backoff::Backoff;
pub use client::{
    AckToken, ConnectParams, Connection, ConnectionError, Connector, Event, Message, RequestError,
    Requests,
};
pub use payload::decode_payload;
pub use publisher::{MAX_PUBLISH_PACKET_BYTES, Publisher};
pub use rumqttc_client::{RumqttcConnection, RumqttcConnector, RumqttcRequests};
pub use settings::{
    AddressError, BrokerAddress, BrokerSettings, BrokerTls, DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_PACKET_BYTES, DEFAULT_PORT, DEFAULT_TIMEOUT, DEFAULT_TLS_PORT, DataFormat,
    PROTOCOL_MAX_PACKET_BYTES, Qos, TopicEntry,
};
pub use sink::{Delivery, Outcome, Sink, SinkError};
pub use status::{BrokerStatus, ConnectionState, EntryStatus, SharedStatus, SubscriptionState};
pub use supervisor::Supervisor;
pub use task::{BrokerTask, Control, MAX_PENDING_DELIVERIES, wire_qos};
pub use tls::{check_tls, client_config as tls_client_config};
pub use topic::{FilterError, MAX_TOPIC_BYTES, TopicFilter, validate_topic_name};
