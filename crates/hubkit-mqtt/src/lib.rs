//! MQTT broker and topic management for hubkit.
//!
//! [`TopicFilter`] checks a subscription filter against the MQTT 3.1.1 and 5.0 rules
//! (`+` and `#` wildcards, `$` topics, `$share/<group>/<filter>` shared subscriptions) and
//! matches received topic names against it. [`validate_topic_name`] checks a topic to
//! publish to. [`Backoff`] spaces reconnect attempts. This crate does no I/O.

#![deny(missing_docs)]

mod backoff;
mod topic;

pub use backoff::Backoff;
pub use topic::{FilterError, MAX_TOPIC_BYTES, TopicFilter, validate_topic_name};
