//! The destination of received messages: the hub implements [`Sink`] on its store.

use std::future::Future;
use std::sync::Arc;

use crate::{Message, TopicEntry};

/// One received message with the topic entries whose filters match its topic.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Name of the broker.
    pub broker: Arc<str>,
    /// Identity of the broker session, `<client id>@<host>:<port>`. A packet identifier
    /// names one message only within a session.
    pub session: Arc<str>,
    /// The message.
    pub message: Message,
    /// Topic entries whose filters match the topic, in configuration order.
    pub entries: Vec<Arc<TopicEntry>>,
    /// The broker's maximum packet size when the payload is larger, which happens only
    /// after the connection raised its limit to let an oversized message through.
    pub over_limit: Option<usize>,
}

/// The result of a [`Sink`] delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Records committed.
    pub records: usize,
    /// Payloads set aside as dead letters.
    pub dead_letters: usize,
    /// Whether the message was a redelivery of one already committed, so nothing was
    /// written.
    pub duplicate: bool,
}

/// A delivery that could not be committed; the broker task retries it and does not
/// acknowledge the message meanwhile.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Commits deliveries. The broker task acknowledges a QoS 1 or 2 message only after
/// [`deliver`](Sink::deliver) returned `Ok`, so the sink must return only once what it
/// wrote is durable.
pub trait Sink: Send + Sync + 'static {
    /// Commits the records and dead letters of one message.
    fn deliver(
        &self,
        delivery: Delivery,
    ) -> impl Future<Output = Result<Outcome, SinkError>> + Send;

    /// Forgets what identified committed messages of `session`, because the broker
    /// reported that it has no stored session and numbers packets anew. The broker task
    /// waits for this before it hands over the new connection's first message.
    fn forget_session(
        &self,
        session: Arc<str>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}
