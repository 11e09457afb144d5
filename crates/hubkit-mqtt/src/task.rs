//! The task that keeps one broker connection: connect, subscribe, hand messages to the
//! sink, acknowledge after commit, reconnect with backoff.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::client::{
    AckToken, ConnectParams, Connection, ConnectionError, Connector, Event, Message, Requests,
};
use crate::sink::{Delivery, Outcome, Sink, SinkError};
use crate::status::{ConnectionState, EntryStatus, SharedStatus, SubscriptionState};
use crate::{Backoff, BrokerSettings, DEFAULT_TIMEOUT, PROTOCOL_MAX_PACKET_BYTES, Qos, TopicEntry};

/// Deliveries a connection hands to the sink before it waits for the oldest one. A
/// broker's in-flight window (20 messages by default in Mosquitto) should bound QoS 1 and
/// 2, but Mosquitto 2.0.11 was seen sending thousands beyond it to a client that
/// acknowledges, so this bounds every QoS.
pub const MAX_PENDING_DELIVERIES: usize = 256;

/// Events the polling task may queue ahead of the broker task.
const EVENT_QUEUE: usize = 64;

/// Time a lost connection waits for deliveries already handed to the sink, without
/// acknowledging them, before it reconnects.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Time a shutdown waits for the polling task to send the last acknowledgements and
/// DISCONNECT and for the broker to close the connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection that stayed up this long resets the backoff.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

/// Delay between retries of a delivery the sink failed to commit.
const SINK_RETRY: Backoff = Backoff {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(10),
};

/// A change for a running broker task.
#[derive(Debug)]
pub enum Control {
    /// Replace the topic entries: new filters are subscribed, removed ones unsubscribed.
    Entries(Vec<Arc<TopicEntry>>),
}

/// One broker connection's task. [`run`](BrokerTask::run) returns when `shutdown` turns
/// true.
///
/// A topic entry's `timeout` bounds one connection attempt. The TCP connect, the TLS
/// handshake and the CONNACK together must finish within the smallest timeout of the
/// broker's entries. Each entry's SUBACK must arrive within the entry's timeout of the
/// attempt's start, or of the reload that added it. A timeout counts as a failed attempt
/// and the task reconnects with backoff.
///
/// A QoS 2 entry is subscribed at QoS 1. rumqttc 0.25 discards its state of the QoS 2
/// packets it received when a connection drops, so a PUBREL that the broker re-sends
/// after the reconnect fails the connection again, in a loop. At QoS 1 the broker redelivers an
/// unacknowledged message with the DUP flag, and the sink drops such a redelivery when it
/// has committed the message already, so each message is still recorded once.
pub struct BrokerTask<C: Connector, S: Sink> {
    settings: Arc<BrokerSettings>,
    session: Arc<str>,
    connector: C,
    sink: Arc<S>,
    entries: Vec<Arc<TopicEntry>>,
    status: SharedStatus,
    control: mpsc::Receiver<Control>,
    shutdown: watch::Receiver<bool>,
    backoff: Backoff,
    /// Packet limit for the next connection after an oversized packet, so the broker's
    /// redelivery of that packet can arrive; cleared at the next CONNACK.
    raised_limit: Option<usize>,
    /// Filters the broker holds for the current session, with their QoS. `None` until
    /// the first CONNACK of this task, because a resumed session may hold filters from
    /// an earlier run that this task cannot know.
    session_filters: Option<BTreeMap<String, Qos>>,
    /// Text of the last error logged, so repeats of one failure are logged once.
    logged_error: Option<String>,
}

/// The reason one connection ended.
enum Ended {
    Shutdown,
    Lost(String, Option<ConnectionError>),
}

type DeliveryFuture = Pin<Box<dyn Future<Output = Delivered> + Send>>;

/// A finished delivery: its acknowledgement and outcome.
struct Delivered {
    ack: Option<AckToken>,
    outcome: Outcome,
    failures: u64,
}

impl<C: Connector, S: Sink> BrokerTask<C, S> {
    /// Creates the task of a broker; `client_id` is the identifier to connect with.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Arc<BrokerSettings>,
        client_id: &str,
        connector: C,
        sink: Arc<S>,
        entries: Vec<Arc<TopicEntry>>,
        status: SharedStatus,
        control: mpsc::Receiver<Control>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let session = format!(
            "{client_id}@{}:{}",
            settings.address.host, settings.address.port
        );
        let task = BrokerTask {
            settings,
            session: session.into(),
            connector,
            sink,
            entries,
            status,
            control,
            shutdown,
            backoff: Backoff::default(),
            raised_limit: None,
            session_filters: None,
            logged_error: None,
        };
        task.update_entry_status();
        task
    }

    /// Sets the reconnect backoff, for tests.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Connects and reconnects until shutdown.
    pub async fn run(mut self) {
        let mut attempt: u32 = 0;
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            self.set_state(ConnectionState::Connecting);
            let started = Instant::now();
            let ended = match self.connector.connect(self.connect_params()) {
                Ok(connection) => self.run_connection(connection, started).await,
                Err(err) => Ended::Lost(err.to_string(), Some(err)),
            };
            let (message, error) = match ended {
                Ended::Shutdown => break,
                Ended::Lost(message, error) => (message, error),
            };
            if let Some(ConnectionError::PacketTooLarge { size, .. }) = error {
                self.raised_limit = Some(size.saturating_add(16).min(PROTOCOL_MAX_PACKET_BYTES));
            }
            if started.elapsed() >= STABLE_CONNECTION {
                attempt = 0;
            }
            self.record_failure(&message);
            let delay = self.backoff.delay(attempt, random_fraction());
            attempt = attempt.saturating_add(1);
            debug!(mqtt.broker = %self.settings.name, delay_ms = delay.as_millis() as u64, "waiting before reconnecting");
            if self.wait(delay).await {
                break;
            }
        }
        self.set_state(ConnectionState::Stopped);
        info!(mqtt.broker = %self.settings.name, "broker connection stopped");
    }

    fn connect_params(&self) -> ConnectParams {
        let timeout = self
            .entries
            .iter()
            .map(|entry| entry.timeout)
            .min()
            .unwrap_or(DEFAULT_TIMEOUT);
        let limit = self.settings.max_packet_bytes;
        ConnectParams {
            max_packet_bytes: self.raised_limit.map_or(limit, |raised| raised.max(limit)),
            connect_timeout: timeout,
        }
    }

    /// Waits `delay` while applying control messages; returns true on shutdown.
    async fn wait(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return false,
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return true;
                    }
                }
                control = self.control.recv() => match control {
                    Some(Control::Entries(entries)) => {
                        self.entries = entries;
                        self.update_entry_status();
                    }
                    None => return true,
                },
            }
        }
    }

    async fn run_connection(&mut self, connection: C::Connection, started: Instant) -> Ended {
        let requests = connection.requests();
        let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
        let (acks, acks_rx) = mpsc::unbounded_channel();
        let poller = tokio::spawn(poll_connection(connection, events_tx, acks_rx));
        let mut link = Link {
            requests,
            acks,
            pending: FuturesOrdered::new(),
            subscribing: VecDeque::new(),
            unsubscribing: VecDeque::new(),
            connected: false,
            started,
        };
        let ended = self.serve(&mut link, &mut events).await;
        if matches!(ended, Ended::Shutdown) && link.connected {
            // Commit what is in flight and queue its acknowledgements. Closing both channels
            // then makes the polling task to write them, send DISCONNECT and wait for the
            // broker to close the connection.
            self.drain(&mut link, true).await;
            drop(link);
            drop(events);
            if tokio::time::timeout(CLOSE_TIMEOUT, poller).await.is_err() {
                warn!(mqtt.broker = %self.settings.name, "the broker did not close the connection after DISCONNECT in time");
            }
        } else {
            poller.abort();
            self.drain(&mut link, false).await;
        }
        ended
    }

    async fn serve(
        &mut self,
        link: &mut Link<<C::Connection as Connection>::Requests>,
        events: &mut mpsc::Receiver<Result<Event, ConnectionError>>,
    ) -> Ended {
        loop {
            let deadline = link.subscribing.front().map(|pending| pending.deadline);
            tokio::select! {
                biased;
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return Ended::Shutdown;
                    }
                }
                control = self.control.recv() => match control {
                    Some(Control::Entries(entries)) => {
                        self.entries = entries;
                        if link.connected
                            && let Err(ended) = self.sync_subscriptions(link, Instant::now())
                        {
                            return ended;
                        }
                        self.update_entry_status();
                    }
                    None => return Ended::Shutdown,
                },
                Some(delivered) = link.pending.next(), if !link.pending.is_empty() => {
                    if let Err(ended) = self.finish_delivery(link, delivered) {
                        return ended;
                    }
                }
                () = sleep_until_option(deadline), if deadline.is_some() => {
                    let filter = link.subscribing.front().map(|p| p.filter.clone()).unwrap_or_default();
                    let message = format!("no SUBACK for filter {filter:?} within the topic entry's timeout");
                    return Ended::Lost(message, None);
                }
                event = events.recv(), if link.pending.len() < MAX_PENDING_DELIVERIES => {
                    let event = match event {
                        Some(Ok(event)) => event,
                        Some(Err(err)) => return Ended::Lost(err.to_string(), Some(err)),
                        None => return Ended::Lost("the connection task ended".to_owned(), None),
                    };
                    if event == (Event::Connected { session_present: false }) {
                        // Packet identifiers of the old session must not match messages
                        // of the new one, so the reset commits before any new message.
                        if let Err(err) = self.sink.forget_session(self.session.clone()).await {
                            let message = format!("failed to reset the session's redelivery state: {err}");
                            return Ended::Lost(message, None);
                        }
                    }
                    if let Err(ended) = self.handle_event(link, event) {
                        return ended;
                    }
                }
            }
        }
    }

    fn handle_event(
        &mut self,
        link: &mut Link<<C::Connection as Connection>::Requests>,
        event: Event,
    ) -> Result<(), Ended> {
        match event {
            Event::Connected { session_present } => {
                link.connected = true;
                // This connection has the raised limit already; later ones go back to
                // max_packet_bytes.
                self.raised_limit = None;
                self.record_connected(session_present);
                if !session_present || self.session_filters.is_none() {
                    self.session_filters = Some(BTreeMap::new());
                }
                self.sync_subscriptions(link, link.started)?;
                self.update_entry_status();
            }
            Event::Message(message) => self.start_delivery(link, message),
            Event::Subscribed(codes) => {
                let Some(pending) = link.subscribing.pop_front() else {
                    debug!(mqtt.broker = %self.settings.name, "SUBACK without a pending SUBSCRIBE");
                    return Ok(());
                };
                let granted = codes.first().copied().flatten();
                let filters = self.session_filters.get_or_insert_with(BTreeMap::new);
                match granted {
                    Some(qos) => {
                        filters.insert(pending.filter.clone(), pending.qos);
                        debug!(mqtt.broker = %self.settings.name, mqtt.filter = %pending.filter, mqtt.qos = %qos, "subscribed");
                    }
                    None => {
                        filters.remove(&pending.filter);
                        warn!(mqtt.broker = %self.settings.name, mqtt.filter = %pending.filter, "the broker rejected the subscription; check the broker's access rules for this client");
                    }
                }
                self.set_granted(&pending.filter, granted);
            }
            Event::Unsubscribed => {
                if let Some(filter) = link.unsubscribing.pop_front() {
                    debug!(mqtt.broker = %self.settings.name, mqtt.filter = %filter, "unsubscribed");
                }
            }
            Event::Other => {}
        }
        Ok(())
    }

    /// Subscribes filters the session lacks and unsubscribes those no entry uses.
    fn sync_subscriptions(
        &mut self,
        link: &mut Link<<C::Connection as Connection>::Requests>,
        since: Instant,
    ) -> Result<(), Ended> {
        let wanted = plan_subscriptions(&self.entries).filters;
        let held = self.session_filters.get_or_insert_with(BTreeMap::new);
        for (filter, (qos, timeout)) in &wanted {
            if held.get(filter) == Some(qos) {
                continue;
            }
            if link
                .subscribing
                .iter()
                .any(|p| &p.filter == filter && p.qos == *qos)
            {
                continue;
            }
            link.requests
                .try_subscribe(filter, *qos)
                .map_err(|err| Ended::Lost(err.to_string(), None))?;
            link.subscribing.push_back(PendingSubscribe {
                filter: filter.clone(),
                qos: *qos,
                deadline: since + *timeout,
            });
        }
        let extra: Vec<String> = held
            .keys()
            .filter(|filter| !wanted.contains_key(*filter))
            .cloned()
            .collect();
        for filter in extra {
            link.requests
                .try_unsubscribe(&filter)
                .map_err(|err| Ended::Lost(err.to_string(), None))?;
            held.remove(&filter);
            link.unsubscribing.push_back(filter);
        }
        Ok(())
    }

    fn start_delivery(
        &mut self,
        link: &mut Link<<C::Connection as Connection>::Requests>,
        message: Message,
    ) {
        let entries: Vec<Arc<TopicEntry>> = self
            .entries
            .iter()
            .filter(|entry| entry.filter.matches(&message.topic))
            .cloned()
            .collect();
        let limit = self.settings.max_packet_bytes;
        let over_limit = (message.payload.len() > limit).then_some(limit);
        {
            let mut status = self.status.lock();
            status.messages += 1;
            status.last_message_at = Some(SystemTime::now());
            if over_limit.is_some() {
                status.oversized += 1;
            }
            if entries.is_empty() {
                status.unmatched += 1;
            }
        }
        debug!(
            mqtt.broker = %self.settings.name,
            mqtt.topic = %message.topic,
            mqtt.qos = %message.qos,
            mqtt.dup = message.dup,
            bytes = message.payload.len(),
            entries = entries.len(),
            "message received"
        );
        if let Some(limit) = over_limit {
            warn!(
                mqtt.broker = %self.settings.name,
                mqtt.topic = %message.topic,
                bytes = message.payload.len(),
                limit,
                "message is larger than max_packet_bytes; it goes to the dead letters"
            );
        }
        let ack = message.ack_token();
        if entries.is_empty() {
            link.pending.push_back(Box::pin(async move {
                Delivered {
                    ack,
                    outcome: Outcome::default(),
                    failures: 0,
                }
            }));
            return;
        }
        let delivery = Delivery {
            broker: self.settings.name.as_str().into(),
            session: self.session.clone(),
            message,
            entries,
            over_limit,
        };
        let sink = self.sink.clone();
        let broker = self.settings.name.clone();
        link.pending
            .push_back(Box::pin(deliver_with_retries(sink, delivery, broker, ack)));
    }

    fn finish_delivery(
        &mut self,
        link: &mut Link<<C::Connection as Connection>::Requests>,
        delivered: Delivered,
    ) -> Result<(), Ended> {
        {
            let mut status = self.status.lock();
            status.records += delivered.outcome.records as u64;
            status.dead_letters += delivered.outcome.dead_letters as u64;
            status.store_failures += delivered.failures;
            if delivered.outcome.duplicate {
                status.duplicates += 1;
            }
        }
        if let Some(token) = delivered.ack
            && link.acks.send(token).is_err()
        {
            return Err(Ended::Lost("the connection task ended".to_owned(), None));
        }
        Ok(())
    }

    /// Waits for deliveries already handed to the sink. With `acknowledge` their
    /// acknowledgements are queued; otherwise they are dropped, because the broker
    /// redelivers those messages with the DUP flag.
    async fn drain(
        &mut self,
        link: &mut Link<<C::Connection as Connection>::Requests>,
        acknowledge: bool,
    ) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !link.pending.is_empty() {
            let Ok(Some(mut delivered)) =
                tokio::time::timeout_at(deadline, link.pending.next()).await
            else {
                break;
            };
            if !acknowledge {
                delivered.ack = None;
            }
            if self.finish_delivery(link, delivered).is_err() {
                break;
            }
        }
        link.pending = FuturesOrdered::new();
    }

    fn record_connected(&mut self, session_present: bool) {
        {
            let mut status = self.status.lock();
            status.state = ConnectionState::Connected;
            status.connected_since = Some(SystemTime::now());
        }
        self.logged_error = None;
        info!(
            mqtt.broker = %self.settings.name,
            mqtt.address = %self.settings.address,
            mqtt.session_present = session_present,
            "connected to broker"
        );
    }

    fn record_failure(&mut self, message: &str) {
        let was_connected = {
            let mut status = self.status.lock();
            let was_connected = status.state == ConnectionState::Connected;
            status.state = ConnectionState::Disconnected;
            status.connected_since = None;
            status.last_error = Some(message.to_owned());
            status.last_error_at = Some(SystemTime::now());
            status.reconnects += 1;
            was_connected
        };
        if was_connected || self.logged_error.as_deref() != Some(message) {
            warn!(
                mqtt.broker = %self.settings.name,
                mqtt.address = %self.settings.address,
                error = %message,
                "broker connection failed; reconnecting with backoff"
            );
            self.logged_error = Some(message.to_owned());
        } else {
            debug!(mqtt.broker = %self.settings.name, error = %message, "reconnect attempt failed");
        }
    }

    fn set_state(&self, state: ConnectionState) {
        let mut status = self.status.lock();
        if state != ConnectionState::Connecting || status.state != ConnectionState::Disconnected {
            status.state = state;
        }
    }

    fn update_entry_status(&self) {
        let filters = self.session_filters.as_ref();
        let plan = plan_subscriptions(&self.entries);
        let mut status = self.status.lock();
        let previous = std::mem::take(&mut status.entries);
        status.entries = self
            .entries
            .iter()
            .map(|entry| {
                let filter = entry.filter.subscription().to_owned();
                let subscribed_filter = plan
                    .subscribed_as
                    .get(&filter)
                    .cloned()
                    .unwrap_or_else(|| filter.clone());
                let subscribed_qos = plan
                    .filters
                    .get(&subscribed_filter)
                    .map_or(wire_qos(entry.qos), |(qos, _)| *qos);
                let known = previous
                    .iter()
                    .find(|old| old.subscribed_filter == subscribed_filter)
                    .map(|old| old.subscription);
                let subscription = match filters.and_then(|f| f.get(&subscribed_filter)) {
                    Some(_) => known.unwrap_or(SubscriptionState::Pending),
                    None if known == Some(SubscriptionState::Rejected) => {
                        SubscriptionState::Rejected
                    }
                    None => SubscriptionState::Pending,
                };
                EntryStatus {
                    name: entry.name.clone(),
                    filter,
                    subscribed_filter,
                    qos: entry.qos,
                    subscribed_qos,
                    subscription,
                }
            })
            .collect();
    }

    fn set_granted(&self, filter: &str, granted: Option<Qos>) {
        let mut status = self.status.lock();
        for entry in status
            .entries
            .iter_mut()
            .filter(|e| e.subscribed_filter == filter)
        {
            entry.subscription = match granted {
                Some(qos) => SubscriptionState::Granted(qos),
                None => SubscriptionState::Rejected,
            };
        }
    }
}

/// Requests and in-flight work of one connection.
struct Link<R> {
    requests: R,
    /// Acknowledgements for the polling task to write. The number waiting is bounded by
    /// [`MAX_PENDING_DELIVERIES`], because each comes from a finished delivery.
    acks: mpsc::UnboundedSender<AckToken>,
    pending: FuturesOrdered<DeliveryFuture>,
    subscribing: VecDeque<PendingSubscribe>,
    unsubscribing: VecDeque<String>,
    connected: bool,
    started: Instant,
}

struct PendingSubscribe {
    filter: String,
    qos: Qos,
    deadline: Instant,
}

/// Returns the QoS to subscribe with for an entry's QoS; see [`BrokerTask`] for why 2
/// becomes 1.
pub fn wire_qos(qos: Qos) -> Qos {
    qos.min(Qos::AtLeastOnce)
}

/// Returns each filter to subscribe with its QoS and SUBACK timeout, and for each entry's
/// filter the filter subscribed in its place.
///
/// A filter that another entry's filter covers is not subscribed, because a broker may
/// send one copy of a message per matching subscription, and each copy would be recorded
/// for every matching entry. The covering filter gets the highest QoS and the shortest
/// timeout of the filters it stands for. Filters that only partly overlap, such as
/// `a/+/c` and `a/b/+`, are both subscribed.
fn plan_subscriptions(entries: &[Arc<TopicEntry>]) -> SubscriptionPlan {
    let filters: Vec<&crate::TopicFilter> = entries.iter().map(|entry| &entry.filter).collect();
    let strictly_covers = |wide: &crate::TopicFilter, narrow: &crate::TopicFilter| {
        wide != narrow
            && wide.covers(narrow)
            && (!narrow.covers(wide) || wide.subscription() < narrow.subscription())
    };
    let mut plan = SubscriptionPlan::default();
    for entry in entries {
        let root = filters
            .iter()
            .find(|candidate| {
                strictly_covers(candidate, &entry.filter)
                    && !filters
                        .iter()
                        .any(|other| strictly_covers(other, candidate))
            })
            .map_or(&entry.filter, |root| *root);
        let qos = wire_qos(entry.qos);
        plan.filters
            .entry(root.subscription().to_owned())
            .and_modify(|(q, t)| {
                *q = (*q).max(qos);
                *t = (*t).min(entry.timeout);
            })
            .or_insert((qos, entry.timeout));
        plan.subscribed_as.insert(
            entry.filter.subscription().to_owned(),
            root.subscription().to_owned(),
        );
    }
    plan
}

/// Filters to subscribe and which one stands for each entry's filter.
#[derive(Default)]
struct SubscriptionPlan {
    filters: BTreeMap<String, (Qos, Duration)>,
    subscribed_as: std::collections::HashMap<String, String>,
}

/// Drives one connection: forwards its events to the broker task and writes the
/// acknowledgements the broker task sends back, between polls and while an event waits
/// for room in the queue, so acknowledgements never wait behind incoming messages. When
/// the broker task closes the channels, it writes the last acknowledgements and closes
/// the connection cleanly.
async fn poll_connection<C: Connection>(
    mut connection: C,
    events: mpsc::Sender<Result<Event, ConnectionError>>,
    mut acks: mpsc::UnboundedReceiver<AckToken>,
) {
    loop {
        if let Err(err) = write_queued_acks(&mut connection, &mut acks, None).await {
            let _ = events.send(Err(err)).await;
            return;
        }
        let event = tokio::select! {
            biased;
            token = acks.recv() => match token {
                Some(token) => match write_queued_acks(&mut connection, &mut acks, Some(token)).await {
                    Ok(()) => continue,
                    Err(err) => Err(err),
                },
                None => return close_connection(connection).await,
            },
            event = connection.poll() => event,
        };
        let failed = event.is_err();
        let mut event = Some(event);
        while let Some(pending) = event.take() {
            tokio::select! {
                biased;
                token = acks.recv() => {
                    event = Some(pending);
                    let Some(token) = token else {
                        return close_connection(connection).await;
                    };
                    if let Err(err) = write_queued_acks(&mut connection, &mut acks, Some(token)).await {
                        let _ = events.send(Err(err)).await;
                        return;
                    }
                }
                permit = events.reserve() => match permit {
                    Ok(permit) => permit.send(pending),
                    Err(_) => {
                        let _ = write_queued_acks(&mut connection, &mut acks, None).await;
                        return close_connection(connection).await;
                    }
                },
            }
        }
        if failed {
            return;
        }
    }
}

/// Sends DISCONNECT, then reads until the broker closes the connection. Closing a socket
/// with unread data makes the kernel reset the connection and drop what it has not sent
/// yet, which could include the last PUBACKs.
async fn close_connection<C: Connection>(mut connection: C) {
    if connection.disconnect().await.is_err() {
        return;
    }
    while connection.poll().await.is_ok() {}
}

/// Writes `first` and every acknowledgement already queued, then flushes once.
async fn write_queued_acks<C: Connection>(
    connection: &mut C,
    acks: &mut mpsc::UnboundedReceiver<AckToken>,
    first: Option<AckToken>,
) -> Result<(), ConnectionError> {
    let mut wrote = false;
    if let Some(token) = first {
        connection.ack(token).await?;
        wrote = true;
    }
    while let Ok(token) = acks.try_recv() {
        connection.ack(token).await?;
        wrote = true;
    }
    if wrote {
        connection.flush().await?;
    }
    Ok(())
}

async fn deliver_with_retries<S: Sink>(
    sink: Arc<S>,
    delivery: Delivery,
    broker: String,
    ack: Option<AckToken>,
) -> Delivered {
    let mut failures: u64 = 0;
    loop {
        match sink.deliver(delivery.clone()).await {
            Ok(outcome) => {
                return Delivered {
                    ack,
                    outcome,
                    failures,
                };
            }
            Err(SinkError(reason)) => {
                if failures == 0 {
                    warn!(
                        mqtt.broker = %broker,
                        mqtt.topic = %delivery.message.topic,
                        error = %reason,
                        "failed to store a message; retrying without acknowledging it"
                    );
                }
                let delay = SINK_RETRY.delay(failures.min(16) as u32, random_fraction());
                failures += 1;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn sleep_until_option(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Returns a random value in `0.0..=1.0` for backoff jitter.
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 1.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
