//! rumqttc-based MQTT 3.1.1 clients for tests: a publisher that returns once the broker has
//! every message, and a subscriber that collects what it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, NetworkOptions, Outgoing,
    Packet, QoS, SubscribeReasonCode,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::broker::MAX_PACKET_SIZE;

/// Overall deadline of [`publish_all`], from connecting to the last acknowledgement.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum time for [`Subscriber::connect_with`] to connect and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause before a reconnecting [`Subscriber`] polls again after a connection error, which
/// bounds how fast it retries while the broker is down.
const RECONNECT_DELAY: Duration = Duration::from_millis(20);

/// Filter that [`Publisher`] subscribes to after QoS 0 publishes. The broker handles one
/// client's packets in order, so its SUBACK shows that it has read every PUBLISH before it.
const BARRIER_FILTER: &str = "hubkit-testkit/publish-barrier";

/// Returns rumqttc options for a test client: large packets allowed both ways.
fn client_options(addr: SocketAddr, client_id: &str) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
    options.set_keep_alive(Duration::from_secs(30));
    options
}

fn new_client(options: MqttOptions, capacity: usize) -> (AsyncClient, EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options, capacity);
    // Without TCP_NODELAY, small acknowledgements can wait for delayed ACKs (about 40 ms).
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// Publishes messages on a new connection and returns once the broker has them all.
#[derive(Debug, Clone)]
pub struct Publisher {
    addr: SocketAddr,
    client_id: String,
    timeout: Duration,
}

/// Counts of one [`Publisher::publish_all`] call, kept for its error message.
#[derive(Debug, Default)]
struct PublishProgress {
    connected: bool,
    written: usize,
    acknowledged: usize,
}

impl Publisher {
    /// Creates a publisher that connects to `addr` as `client_id` with a clean session.
    pub fn new(addr: SocketAddr, client_id: impl Into<String>) -> Publisher {
        Publisher {
            addr,
            client_id: client_id.into(),
            timeout: DEFAULT_PUBLISH_TIMEOUT,
        }
    }

    /// Sets the overall deadline of each [`Publisher::publish_all`] call.
    pub fn with_timeout(mut self, timeout: Duration) -> Publisher {
        self.timeout = timeout;
        self
    }

    /// Connects, publishes every payload to `topic` in order and disconnects cleanly.
    ///
    /// Returns after the broker acknowledged every message: every PUBACK for QoS 1, every
    /// PUBCOMP for QoS 2. For QoS 0, which has no acknowledgement, it returns after every
    /// PUBLISH was written and the SUBACK to a later SUBSCRIBE arrived. Fails on any
    /// connection error, without reconnecting, and when the deadline passes.
    pub async fn publish_all(
        &self,
        topic: &str,
        payloads: Vec<Vec<u8>>,
        qos: QoS,
        retain: bool,
    ) -> anyhow::Result<()> {
        let total = payloads.len();
        let mut progress = PublishProgress::default();
        let run = self.run_publish(topic, payloads, qos, retain, &mut progress);
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result,
            Err(_) => bail!(
                "publishing {total} messages (QoS {}) to `{topic}` at {} as `{}` timed out after \
                 {:?}: connected {}, {} written, {} acknowledged",
                qos as u8,
                self.addr,
                self.client_id,
                self.timeout,
                progress.connected,
                progress.written,
                progress.acknowledged
            ),
        }
    }

    async fn run_publish(
        &self,
        topic: &str,
        payloads: Vec<Vec<u8>>,
        qos: QoS,
        retain: bool,
        progress: &mut PublishProgress,
    ) -> anyhow::Result<()> {
        let total = payloads.len();
        // Capacity for every PUBLISH plus the SUBSCRIBE and DISCONNECT at the end, so no
        // try_* call below finds the channel full.
        let (client, mut eventloop) =
            new_client(client_options(self.addr, &self.client_id), total + 2);
        for payload in payloads {
            client
                .try_publish(topic, qos, retain, payload)
                .context("failed to queue a PUBLISH in rumqttc")?;
        }
        let mut finishing = false;
        loop {
            let event = eventloop.poll().await.with_context(|| {
                format!(
                    "MQTT connection to {} as `{}` failed after {} of {total} messages were \
                     acknowledged",
                    self.addr, self.client_id, progress.acknowledged
                )
            })?;
            let mut done = false;
            match event {
                Event::Incoming(Packet::ConnAck(_)) => {
                    progress.connected = true;
                    done = total == 0;
                }
                Event::Outgoing(Outgoing::Publish(_)) => {
                    progress.written += 1;
                    if qos == QoS::AtMostOnce && progress.written == total {
                        client
                            .try_subscribe(BARRIER_FILTER, QoS::AtMostOnce)
                            .context("failed to queue the SUBSCRIBE after QoS 0 publishes")?;
                    }
                }
                Event::Incoming(Packet::PubAck(_)) if qos == QoS::AtLeastOnce => {
                    progress.acknowledged += 1;
                    done = progress.acknowledged == total;
                }
                Event::Incoming(Packet::PubComp(_)) if qos == QoS::ExactlyOnce => {
                    progress.acknowledged += 1;
                    done = progress.acknowledged == total;
                }
                Event::Incoming(Packet::SubAck(_)) if qos == QoS::AtMostOnce => {
                    progress.acknowledged = total;
                    done = true;
                }
                Event::Outgoing(Outgoing::Disconnect) => return Ok(()),
                _ => {}
            }
            if done && !finishing {
                finishing = true;
                client
                    .try_disconnect()
                    .context("failed to queue a DISCONNECT in rumqttc")?;
            }
        }
    }
}

/// Publishes `payloads` to `topic` on a new connection to `addr` as `client_id` and returns
/// once the broker has them all, within [`DEFAULT_PUBLISH_TIMEOUT`]. See
/// [`Publisher::publish_all`].
pub async fn publish_all(
    addr: SocketAddr,
    client_id: &str,
    topic: &str,
    payloads: Vec<Vec<u8>>,
    qos: QoS,
    retain: bool,
) -> anyhow::Result<()> {
    Publisher::new(addr, client_id)
        .publish_all(topic, payloads, qos, retain)
        .await
}

/// Connects to `addr` as `client_id` with a clean session and disconnects, which makes the
/// broker discard any persistent session stored for that client id.
pub async fn clear_session(addr: SocketAddr, client_id: &str) -> anyhow::Result<()> {
    Publisher::new(addr, client_id)
        .publish_all("unused", Vec::new(), QoS::AtLeastOnce, false)
        .await
}

/// A PUBLISH that a [`Subscriber`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Topic name.
    pub topic: String,
    /// Application payload.
    pub payload: Bytes,
    /// QoS of the delivery: the lower of the published and the granted QoS.
    pub qos: QoS,
    /// RETAIN flag: set when the broker sent a retained message because of a new subscription.
    pub retain: bool,
    /// DUP flag: set when the broker may have sent this message before.
    pub dup: bool,
    /// Packet identifier, 0 for QoS 0.
    pub packet_id: u16,
}

/// Settings of a [`Subscriber`].
#[derive(Debug, Clone)]
pub struct SubscriberOptions {
    /// MQTT client identifier.
    pub client_id: String,
    /// Topic filter to subscribe to.
    pub filter: String,
    /// Requested maximum QoS.
    pub qos: QoS,
    /// CONNECT's clean session flag. With `false`, the broker keeps the session, with its
    /// subscriptions and undelivered QoS 1 and 2 messages, after a disconnect.
    pub clean_session: bool,
    /// Whether to reconnect after a connection error, such as [`super::MqttProxy::cut`].
    pub reconnect: bool,
    /// Whether to acknowledge received QoS 1 and 2 messages. With `false`, the subscriber
    /// never sends PUBACK or PUBREC, so the broker keeps those messages in flight.
    pub acknowledge: bool,
    /// Keep-alive interval sent in CONNECT.
    pub keep_alive: Duration,
}

impl SubscriberOptions {
    /// Creates options with QoS 1, a clean session, no reconnect and automatic acknowledgements.
    pub fn new(client_id: impl Into<String>, filter: impl Into<String>) -> SubscriberOptions {
        SubscriberOptions {
            client_id: client_id.into(),
            filter: filter.into(),
            qos: QoS::AtLeastOnce,
            clean_session: true,
            reconnect: false,
            acknowledge: true,
            keep_alive: Duration::from_secs(30),
        }
    }
}

/// Messages, CONNACKs and errors that the subscriber task recorded.
#[derive(Debug, Default)]
struct SubscriberState {
    messages: Vec<ReceivedMessage>,
    session_present: Vec<bool>,
    errors: Vec<String>,
    /// Set after a CONNACK with a session present, or after the SUBACK that follows a
    /// CONNACK without one.
    ready: bool,
    /// Set when the task ended: after a clean DISCONNECT, or after an error without reconnect.
    finished: bool,
}

struct SubscriberShared {
    state: Mutex<SubscriberState>,
    /// Bumped after every change of `state`, to wake waiters.
    changes: watch::Sender<u64>,
}

impl SubscriberShared {
    fn state(&self) -> MutexGuard<'_, SubscriberState> {
        // The state is plain data that stays consistent even if a holder panicked.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut SubscriberState)) {
        change(&mut self.state());
        self.changes.send_modify(|version| *version += 1);
    }

    /// Waits until `condition` is true or `deadline` passes, and returns its last value.
    async fn wait_until(
        &self,
        deadline: Instant,
        condition: impl Fn(&SubscriberState) -> bool,
    ) -> bool {
        let mut changes = self.changes.subscribe();
        loop {
            changes.borrow_and_update();
            if condition(&self.state()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return condition(&self.state());
            }
        }
    }
}

/// An MQTT client that subscribes to one filter and collects every message it receives.
///
/// It subscribes after every CONNACK that reports no session present, so a reconnect to a
/// broker that kept the session does not subscribe again. Dropping it closes the connection
/// without DISCONNECT, as a crashed client would. [`Subscriber::disconnect`] closes cleanly.
pub struct Subscriber {
    options: SubscriberOptions,
    client: AsyncClient,
    shared: Arc<SubscriberShared>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Connects to `addr` with a clean session, subscribes to `filter` at `qos` and returns
    /// after the SUBACK.
    pub async fn connect(
        addr: SocketAddr,
        client_id: &str,
        filter: &str,
        qos: QoS,
    ) -> anyhow::Result<Subscriber> {
        let mut options = SubscriberOptions::new(client_id, filter);
        options.qos = qos;
        Subscriber::connect_with(addr, options).await
    }

    /// Connects to `addr` and returns after the CONNACK when it reports a session present,
    /// else after subscribing.
    pub async fn connect_with(
        addr: SocketAddr,
        options: SubscriberOptions,
    ) -> anyhow::Result<Subscriber> {
        // rumqttc panics on this combination, and MQTT 3.1.1 rejects it too.
        if options.client_id.is_empty() && !options.clean_session {
            bail!("a subscriber with clean_session false needs a non-empty client id");
        }
        let mut mqtt_options = client_options(addr, &options.client_id);
        mqtt_options.set_keep_alive(options.keep_alive);
        mqtt_options.set_clean_session(options.clean_session);
        mqtt_options.set_manual_acks(!options.acknowledge);
        let (client, eventloop) = new_client(mqtt_options, 16);

        let (changes, _) = watch::channel(0);
        let shared = Arc::new(SubscriberShared {
            state: Mutex::new(SubscriberState::default()),
            changes,
        });
        let task = tokio::spawn(run_subscriber(
            client.clone(),
            eventloop,
            options.clone(),
            Arc::clone(&shared),
        ));
        let subscriber = Subscriber {
            options,
            client,
            shared,
            task,
        };

        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let ready = subscriber
            .shared
            .wait_until(deadline, |state| state.ready || state.finished)
            .await;
        let state = subscriber.shared.state();
        if !(ready && state.ready) {
            bail!(
                "subscriber `{}` could not connect to {addr} and subscribe to `{}` within \
                 {CONNECT_TIMEOUT:?}; errors: {:?}",
                subscriber.options.client_id,
                subscriber.options.filter,
                state.errors
            );
        }
        drop(state);
        Ok(subscriber)
    }

    /// Returns the client identifier.
    pub fn client_id(&self) -> &str {
        &self.options.client_id
    }

    /// Returns every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.state().messages.clone()
    }

    /// Waits until at least `count` messages arrived and returns all of them, in arrival
    /// order. Fails when `timeout` passes first, with what did arrive in the message.
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<ReceivedMessage>> {
        let deadline = Instant::now() + timeout;
        self.shared
            .wait_until(deadline, |state| state.messages.len() >= count)
            .await;
        let state = self.shared.state();
        if state.messages.len() < count {
            bail!(
                "subscriber `{}` received {} of {count} messages on `{}` within {timeout:?}; \
                 connection errors: {:?}",
                self.options.client_id,
                state.messages.len(),
                self.options.filter,
                state.errors
            );
        }
        Ok(state.messages.clone())
    }

    /// Waits until the subscriber has received `count` CONNACKs in total, for example after
    /// reconnecting, and returns the session present flag of each, oldest first.
    pub async fn wait_for_connacks(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<bool>> {
        let deadline = Instant::now() + timeout;
        self.shared
            .wait_until(deadline, |state| state.session_present.len() >= count)
            .await;
        let state = self.shared.state();
        if state.session_present.len() < count {
            bail!(
                "subscriber `{}` received {} of {count} CONNACKs within {timeout:?}; \
                 connection errors: {:?}",
                self.options.client_id,
                state.session_present.len(),
                state.errors
            );
        }
        Ok(state.session_present.clone())
    }

    /// Returns the session present flag of every CONNACK so far, oldest first.
    pub fn session_present(&self) -> Vec<bool> {
        self.shared.state().session_present.clone()
    }

    /// Returns every connection error so far, oldest first.
    pub fn connection_errors(&self) -> Vec<String> {
        self.shared.state().errors.clone()
    }

    /// Sends DISCONNECT and waits up to 5 s until it was written. A broker keeps the session
    /// of a client that connected with `clean_session` false.
    pub async fn disconnect(self) -> anyhow::Result<()> {
        {
            let state = self.shared.state();
            if state.finished {
                bail!(
                    "subscriber `{}` is no longer connected; connection errors: {:?}",
                    self.options.client_id,
                    state.errors
                );
            }
        }
        self.client
            .try_disconnect()
            .context("failed to queue a DISCONNECT in rumqttc")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        if !self
            .shared
            .wait_until(deadline, |state| state.finished)
            .await
        {
            bail!(
                "subscriber `{}` did not finish its DISCONNECT within 5 s",
                self.options.client_id
            );
        }
        Ok(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_subscriber(
    client: AsyncClient,
    mut eventloop: EventLoop,
    options: SubscriberOptions,
    shared: Arc<SubscriberShared>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                let session_present = connack.session_present;
                let subscribe = !session_present
                    && client
                        .try_subscribe(options.filter.clone(), options.qos)
                        .is_ok();
                shared.update(|state| {
                    state.session_present.push(session_present);
                    if session_present {
                        state.ready = true;
                    } else if !subscribe {
                        state
                            .errors
                            .push("failed to queue a SUBSCRIBE in rumqttc".to_string());
                    }
                });
            }
            Ok(Event::Incoming(Packet::SubAck(suback))) => {
                let rejected = suback
                    .return_codes
                    .iter()
                    .any(|code| matches!(code, SubscribeReasonCode::Failure));
                shared.update(|state| {
                    if rejected {
                        state.errors.push(format!(
                            "the broker rejected the subscription to `{}`",
                            options.filter
                        ));
                        state.finished = true;
                    } else {
                        state.ready = true;
                    }
                });
                if rejected {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let message = ReceivedMessage {
                    topic: publish.topic,
                    payload: publish.payload,
                    qos: publish.qos,
                    retain: publish.retain,
                    dup: publish.dup,
                    packet_id: publish.pkid,
                };
                shared.update(|state| state.messages.push(message));
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                shared.update(|state| state.finished = true);
                return;
            }
            Ok(_) => {}
            Err(err) => {
                let refused = matches!(
                    err,
                    rumqttc::ConnectionError::ConnectionRefused(code)
                        if code != ConnectReturnCode::Success
                );
                shared.update(|state| {
                    state.errors.push(err.to_string());
                    state.finished = !options.reconnect || refused;
                });
                if !options.reconnect || refused {
                    return;
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
}
