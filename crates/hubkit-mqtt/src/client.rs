//! The small client interface that the broker task drives, so the MQTT library stays
//! replaceable and tests can script a connection.

use std::future::Future;

use bytes::Bytes;
use thiserror::Error;

use crate::Qos;

/// A message received from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Topic the message was published to.
    pub topic: String,
    /// The payload as received.
    pub payload: Bytes,
    /// Quality of service of the delivery.
    pub qos: Qos,
    /// Whether the broker sent it as a retained message.
    pub retain: bool,
    /// Whether the broker marked it as a possible redelivery.
    pub dup: bool,
    /// Packet identifier; 0 for QoS 0.
    pub pkid: u16,
}

impl Message {
    /// Returns what acknowledges this message, or `None` for QoS 0.
    pub fn ack_token(&self) -> Option<AckToken> {
        (self.qos != Qos::AtMostOnce).then_some(AckToken {
            qos: self.qos,
            pkid: self.pkid,
        })
    }
}

/// The fields that a PUBACK (QoS 1) or PUBREC (QoS 2) needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckToken {
    /// Quality of service of the message.
    pub qos: Qos,
    /// Packet identifier of the message.
    pub pkid: u16,
}

/// Something the connection reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The broker accepted the connection (CONNACK).
    Connected {
        /// Whether the broker resumed a stored session, with its subscriptions.
        session_present: bool,
    },
    /// A PUBLISH from the broker.
    Message(Message),
    /// A SUBACK: the QoS granted to each filter of one SUBSCRIBE, or `None` where the
    /// broker rejected the filter.
    Subscribed(Vec<Option<Qos>>),
    /// An UNSUBACK.
    Unsubscribed,
    /// Any other packet, such as a PINGRESP or an outgoing packet being sent.
    Other,
}

/// The reason a connection failed or was lost.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// The broker sent a packet larger than the maximum packet size. MQTT 3.1.1 cannot
    /// tell the broker the limit, so the broker task raises the limit to `size` for the
    /// next connection: a redelivered message then arrives and is set aside instead of
    /// failing the connection forever.
    #[error("the broker sent a packet of {size} bytes, over the limit of {limit} bytes")]
    PacketTooLarge {
        /// Size the broker announced.
        size: usize,
        /// Limit of the connection.
        limit: usize,
    },
    /// The broker refused the connection in its CONNACK.
    #[error("the broker refused the connection: {0}")]
    Refused(String),
    /// Connecting, the TLS handshake or the CONNACK took longer than the timeout.
    #[error("connecting timed out after {0} s")]
    Timeout(u64),
    /// Any other failure: I/O, TLS, protocol.
    #[error("{0}")]
    Other(String),
}

/// A request could not be queued for the connection.
#[derive(Debug, Error)]
#[error("failed to queue the {request} request: {reason}")]
pub struct RequestError {
    /// The kind of request, such as `SUBSCRIBE`.
    pub request: &'static str,
    /// Why.
    pub reason: String,
}

/// Settings of one connection attempt that the broker task decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectParams {
    /// Largest packet to accept from the broker, in bytes.
    pub max_packet_bytes: usize,
    /// Maximum time for the TCP connect, the TLS handshake and the CONNACK together.
    pub connect_timeout: std::time::Duration,
}

/// Makes connections to one broker.
pub trait Connector: Send + Sync + 'static {
    /// The connection type.
    type Connection: Connection;

    /// Returns a new connection, which connects on its first [`Connection::poll`].
    ///
    /// # Errors
    ///
    /// Fails when the connection cannot be set up, for example because a TLS file cannot
    /// be read.
    fn connect(&self, params: ConnectParams) -> Result<Self::Connection, ConnectionError>;
}

/// One broker connection with manual acknowledgements. A task of its own drives it with
/// [`poll`](Connection::poll), which also sends the requests queued through its
/// [`Requests`] handle. Each connection starts with an empty request queue, so requests
/// meant for a lost connection are never sent on the next one.
pub trait Connection: Send + 'static {
    /// The handle that queues requests.
    type Requests: Requests;

    /// Returns a handle that queues requests for this connection.
    fn requests(&self) -> Self::Requests;

    /// Connects on the first call, then waits for the next event. After an error the
    /// connection is finished and must be dropped.
    fn poll(&mut self) -> impl Future<Output = Result<Event, ConnectionError>> + Send;

    /// Writes the PUBACK (QoS 1) or PUBREC (QoS 2) of a message into the connection's
    /// send buffer; [`flush`](Connection::flush) sends it. A connection that is not
    /// connected drops it, and the broker redelivers the message.
    ///
    /// # Errors
    ///
    /// Fails when the connection is broken.
    fn ack(&mut self, token: AckToken) -> impl Future<Output = Result<(), ConnectionError>> + Send;

    /// Sends what [`ack`](Connection::ack) wrote.
    ///
    /// # Errors
    ///
    /// Fails when the connection is broken.
    fn flush(&mut self) -> impl Future<Output = Result<(), ConnectionError>> + Send;

    /// Sends DISCONNECT, after which the broker closes the connection.
    ///
    /// # Errors
    ///
    /// Fails when the connection is broken or not connected.
    fn disconnect(&mut self) -> impl Future<Output = Result<(), ConnectionError>> + Send;
}

/// Queues requests for a [`Connection`] without waiting.
pub trait Requests: Clone + Send + Sync + 'static {
    /// Queues a SUBSCRIBE of one filter.
    ///
    /// # Errors
    ///
    /// Fails when the request queue is full or closed.
    fn try_subscribe(&self, filter: &str, qos: Qos) -> Result<(), RequestError>;

    /// Queues an UNSUBSCRIBE of one filter.
    ///
    /// # Errors
    ///
    /// Fails when the request queue is full or closed.
    fn try_unsubscribe(&self, filter: &str) -> Result<(), RequestError>;
}
