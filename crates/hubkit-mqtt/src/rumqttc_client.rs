//! [`Connector`] and [`Connection`] on rumqttc's MQTT 3.1.1 client.

use std::sync::Arc;

use rumqttc::mqttbytes::Error as PacketError;
use rumqttc::{
    AsyncClient, ClientError, ConnectReturnCode, EventLoop, Incoming, MqttOptions, NetworkOptions,
    Packet, PubAck, Publish, QoS, StateError, SubscribeReasonCode, TlsConfiguration, Transport,
};

use crate::client::{
    AckToken, ConnectParams, Connection, ConnectionError, Connector, Event, Message, RequestError,
    Requests,
};
use crate::{BrokerSettings, Qos, tls};

/// Requests a connection can queue before `try_*` fails: SUBSCRIBE and UNSUBSCRIBE, one
/// per filter, and DISCONNECT. PUBACKs do not use this queue.
const REQUEST_QUEUE: usize = 4096;

/// Makes rumqttc connections to one broker.
pub struct RumqttcConnector {
    settings: BrokerSettings,
    client_id: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl RumqttcConnector {
    /// Prepares connections with `settings` under `client_id`. The TLS configuration is
    /// built once here.
    ///
    /// # Errors
    ///
    /// Fails when a TLS file cannot be read, or when the client id is empty while the
    /// session is persistent.
    pub fn new(settings: BrokerSettings, client_id: String) -> Result<Self, ConnectionError> {
        if client_id.is_empty() && !settings.clean_session {
            return Err(ConnectionError::Other(
                "a persistent session (clean_session = false) needs a client id".to_owned(),
            ));
        }
        let tls = if settings.address.tls {
            Some(tls::client_config(&settings.tls).map_err(ConnectionError::Other)?)
        } else {
            None
        };
        Ok(RumqttcConnector {
            settings,
            client_id,
            tls,
        })
    }
}

impl Connector for RumqttcConnector {
    type Connection = RumqttcConnection;

    fn connect(&self, params: ConnectParams) -> Result<RumqttcConnection, ConnectionError> {
        let settings = &self.settings;
        let address = &settings.address;
        let mut options = MqttOptions::new(&self.client_id, &address.host, address.port);
        options
            .set_keep_alive(settings.keep_alive)
            .set_clean_session(settings.clean_session)
            .set_manual_acks(true)
            .set_max_packet_size(params.max_packet_bytes, settings.max_packet_bytes)
            .set_request_channel_capacity(REQUEST_QUEUE);
        if let Some(username) = &settings.username {
            options.set_credentials(username, settings.password.as_deref().unwrap_or(""));
        }
        if let Some(config) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                config.clone(),
            )));
        }
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
        let mut network = NetworkOptions::new();
        let timeout_secs = params.connect_timeout.as_secs().max(1);
        network.set_connection_timeout(timeout_secs);
        eventloop.set_network_options(network);
        Ok(RumqttcConnection {
            client,
            eventloop,
            limit: params.max_packet_bytes,
            timeout_secs,
        })
    }
}

/// One rumqttc connection.
pub struct RumqttcConnection {
    client: AsyncClient,
    eventloop: EventLoop,
    limit: usize,
    timeout_secs: u64,
}

impl Connection for RumqttcConnection {
    type Requests = RumqttcRequests;

    fn requests(&self) -> RumqttcRequests {
        RumqttcRequests(self.client.clone())
    }

    async fn poll(&mut self) -> Result<Event, ConnectionError> {
        match self.eventloop.poll().await {
            Ok(rumqttc::Event::Incoming(packet)) => Ok(incoming_event(packet)),
            Ok(rumqttc::Event::Outgoing(_)) => Ok(Event::Other),
            Err(err) => Err(self.connection_error(err)),
        }
    }

    /// Writes the acknowledgement straight into the connection's buffer. rumqttc's own
    /// `ack` queues a request that its event loop sends at most one per turn, while a
    /// turn reads up to ten packets, so under a steady stream the acknowledgements fall
    /// ever further behind. With manual acknowledgements rumqttc keeps no state for a
    /// QoS 1 PUBACK, so writing it here skips nothing. A PUBREC still goes through
    /// rumqttc, which must record the QoS 2 packet it acknowledges.
    async fn ack(&mut self, token: AckToken) -> Result<(), ConnectionError> {
        if token.qos == Qos::ExactlyOnce {
            return self
                .client
                .try_ack(&ack_publish(token))
                .map_err(|err| ConnectionError::Other(request_error("PUBREC", &err).to_string()));
        }
        let Some(network) = self.eventloop.network.as_mut() else {
            return Ok(());
        };
        network
            .write(Packet::PubAck(PubAck::new(token.pkid)))
            .await
            .map_err(|err| ConnectionError::Other(format!("failed to write a PUBACK: {err}")))
    }

    async fn disconnect(&mut self) -> Result<(), ConnectionError> {
        let Some(network) = self.eventloop.network.as_mut() else {
            return Err(ConnectionError::Other("not connected".to_owned()));
        };
        let failed =
            |err: StateError| ConnectionError::Other(format!("failed to send DISCONNECT: {err}"));
        network.write(Packet::Disconnect).await.map_err(failed)?;
        network.flush().await.map_err(failed)
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        let Some(network) = self.eventloop.network.as_mut() else {
            return Ok(());
        };
        network
            .flush()
            .await
            .map_err(|err| ConnectionError::Other(format!("failed to send PUBACKs: {err}")))
    }
}

/// Returns the `Publish` that rumqttc's `ack` needs: it reads only the QoS and packet
/// identifier.
fn ack_publish(token: AckToken) -> Publish {
    let mut publish = Publish::new("", to_rumqttc(token.qos), Vec::new());
    publish.pkid = token.pkid;
    publish
}

/// The request handle of a [`RumqttcConnection`].
#[derive(Clone)]
pub struct RumqttcRequests(AsyncClient);

impl Requests for RumqttcRequests {
    fn try_subscribe(&self, filter: &str, qos: Qos) -> Result<(), RequestError> {
        self.0
            .try_subscribe(filter, to_rumqttc(qos))
            .map_err(|err| request_error("SUBSCRIBE", &err))
    }

    fn try_unsubscribe(&self, filter: &str) -> Result<(), RequestError> {
        self.0
            .try_unsubscribe(filter)
            .map_err(|err| request_error("UNSUBSCRIBE", &err))
    }
}

impl RumqttcConnection {
    fn connection_error(&self, err: rumqttc::ConnectionError) -> ConnectionError {
        match err {
            rumqttc::ConnectionError::MqttState(StateError::Deserialization(
                PacketError::PayloadSizeLimitExceeded(size),
            )) => ConnectionError::PacketTooLarge {
                size,
                limit: self.limit,
            },
            rumqttc::ConnectionError::ConnectionRefused(code) => {
                ConnectionError::Refused(refusal_reason(code).to_owned())
            }
            rumqttc::ConnectionError::NetworkTimeout => ConnectionError::Timeout(self.timeout_secs),
            other => ConnectionError::Other(other.to_string()),
        }
    }
}

fn incoming_event(packet: Incoming) -> Event {
    match packet {
        Incoming::ConnAck(ack) => Event::Connected {
            session_present: ack.session_present,
        },
        Incoming::Publish(publish) => Event::Message(Message {
            qos: from_rumqttc(publish.qos),
            retain: publish.retain,
            dup: publish.dup,
            pkid: publish.pkid,
            topic: publish.topic,
            payload: publish.payload,
        }),
        Incoming::SubAck(ack) => Event::Subscribed(
            ack.return_codes
                .into_iter()
                .map(|code| match code {
                    SubscribeReasonCode::Success(qos) => Some(from_rumqttc(qos)),
                    SubscribeReasonCode::Failure => None,
                })
                .collect(),
        ),
        Incoming::UnsubAck(_) => Event::Unsubscribed,
        _ => Event::Other,
    }
}

fn refusal_reason(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::Success => "success",
        ConnectReturnCode::RefusedProtocolVersion => "unacceptable protocol version",
        ConnectReturnCode::BadClientId => "client identifier rejected",
        ConnectReturnCode::ServiceUnavailable => "server unavailable",
        ConnectReturnCode::BadUserNamePassword => "bad user name or password",
        ConnectReturnCode::NotAuthorized => "not authorized",
    }
}

fn request_error(request: &'static str, err: &ClientError) -> RequestError {
    RequestError {
        request,
        reason: err.to_string(),
    }
}

pub(crate) fn to_rumqttc(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn from_rumqttc(qos: QoS) -> Qos {
    match qos {
        QoS::AtMostOnce => Qos::AtMostOnce,
        QoS::AtLeastOnce => Qos::AtLeastOnce,
        QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}
