//! The harness's own MQTT clients, both rumqttc: the publisher, and the baseline
//! subscriber that only counts the messages it receives.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS,
    SubscribeReasonCode,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// Capacity of rumqttc's request channel between a client handle and its event loop.
const REQUEST_CHANNEL: usize = 1024;
/// Time allowed for the CONNACK, and for the SUBACK after it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a count may stay unchanged before waiting for it fails.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two checks for a stalled count.
const STALL_CHECK: Duration = Duration::from_millis(500);
/// Keep-alive interval of the harness's clients; rumqttc's default.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// Returns the payload of message `n`: a small JSON object of a typical sensor reading
/// with the message number, so the stored records can be checked one by one.
pub fn payload(n: u64) -> String {
    format!(r#"{{"temperature": 25.5, "humidity": 60, "n": {n}}}"#)
}

/// Converts a QoS level of 0 or 1, the levels the benchmark measures, to rumqttc's.
pub fn rumqttc_qos(level: u8) -> anyhow::Result<QoS> {
    match level {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        other => bail!("QoS {other} is not measured; use 0 or 1"),
    }
}

/// A running count of events that a task can wait on until it reaches a target.
#[derive(Default)]
pub struct Tally {
    count: AtomicU64,
    /// Target of the pending waiter, `u64::MAX` when none waits, so the hot path reads
    /// one atomic instead of taking the lock.
    target: AtomicU64,
    waiter: Mutex<Option<oneshot::Sender<Instant>>>,
    /// Reason the event loop that feeds the count stopped.
    failure: Mutex<Option<String>>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            target: AtomicU64::new(u64::MAX),
            ..Tally::default()
        }
    }

    /// Returns the count so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Adds one event and wakes the waiter when its target is reached.
    fn add_one(&self) {
        let count = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if count >= self.target.load(Ordering::Acquire) {
            self.wake(Instant::now());
        }
    }

    fn wake(&self, at: Instant) {
        self.target.store(u64::MAX, Ordering::Release);
        if let Some(sender) = lock(&self.waiter).take() {
            // The waiter may have given up already, and then the instant is not needed.
            let _ = sender.send(at);
        }
    }

    /// Records why the count stopped and wakes the waiter, whose wait then fails.
    fn fail(&self, reason: String) {
        lock(&self.failure).get_or_insert(reason);
        self.target.store(u64::MAX, Ordering::Release);
        lock(&self.waiter).take();
    }

    fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// Waits until the count reaches `target` and returns the instant it did. `description`
    /// names the count in errors, e.g. "messages received by the baseline subscriber".
    ///
    /// # Errors
    /// Fails if the event loop stops, or the count stays unchanged for
    /// [`STALL_TIMEOUT`] below the target.
    pub async fn wait_for(&self, target: u64, description: &str) -> anyhow::Result<Instant> {
        let (sender, mut receiver) = oneshot::channel();
        *lock(&self.waiter) = Some(sender);
        self.target.store(target, Ordering::Release);
        // The count may have reached the target before the waiter was in place.
        if self.count() >= target {
            self.wake(Instant::now());
        }
        let mut last_count = self.count();
        let mut last_change = Instant::now();
        loop {
            match timeout(STALL_CHECK, &mut receiver).await {
                Ok(Ok(at)) => return Ok(at),
                Ok(Err(_)) => {
                    let reason = self
                        .failure()
                        .unwrap_or_else(|| "no reason given".to_owned());
                    bail!(
                        "{description} stopped at {} of {target}: {reason}",
                        self.count()
                    );
                }
                Err(_) => {
                    let count = self.count();
                    if count != last_count {
                        last_count = count;
                        last_change = Instant::now();
                    } else if last_change.elapsed() >= STALL_TIMEOUT {
                        bail!(
                            "{description} stalled at {count} of {target}: no change in \
                             {STALL_TIMEOUT:?}"
                        );
                    }
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves only an Option or a String behind, which
    // stays valid.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connected client whose event loop runs in its own task.
struct Client {
    handle: AsyncClient,
    task: JoinHandle<()>,
}

impl Client {
    async fn disconnect(mut self) {
        // The broker may have closed the connection already; the task ends either way.
        let _ = self.handle.disconnect().await;
        let _ = timeout(Duration::from_secs(1), &mut self.task).await;
    }
}

impl Drop for Client {
    /// Stops the event loop, so a client dropped after a failed turn neither stays
    /// connected nor keeps receiving messages in later phases.
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn options(client_id: &str, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_request_channel_capacity(REQUEST_CHANNEL);
    options
}

/// Polls until the CONNACK arrives.
async fn await_connack(eventloop: &mut EventLoop, client_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        let event = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .with_context(|| format!("{client_id}: no CONNACK within {HANDSHAKE_TIMEOUT:?}"))?
            .with_context(|| format!("{client_id}: failed to connect to the broker"))?;
        if let Event::Incoming(Incoming::ConnAck(_)) = event {
            return Ok(());
        }
    }
}

/// The publisher: one client that sends numbered messages as fast as the broker
/// accepts them, with at most `inflight` unacknowledged QoS 1 messages.
pub struct Publisher {
    client: Client,
    qos: QoS,
    /// Messages the broker has accepted: written to the socket at QoS 0, acknowledged
    /// with PUBACK at QoS 1.
    accepted: Arc<Tally>,
}

impl Publisher {
    /// Connects as `client_id` to the broker on 127.0.0.1:`port`.
    ///
    /// # Errors
    /// Fails if the broker does not accept the connection.
    pub async fn connect(
        client_id: &str,
        port: u16,
        qos: QoS,
        inflight: u16,
    ) -> anyhow::Result<Self> {
        let mut options = options(client_id, port);
        options.set_inflight(inflight);
        let (handle, mut eventloop) = AsyncClient::new(options, REQUEST_CHANNEL);
        await_connack(&mut eventloop, client_id).await?;
        let accepted = Arc::new(Tally::new());
        let tally = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                        tally.add_one();
                    }
                    Ok(Event::Incoming(Incoming::PubAck(_))) => tally.add_one(),
                    Ok(_) => {}
                    Err(err) => {
                        tally.fail(connection_failure("publisher", &err));
                        return;
                    }
                }
            }
        });
        Ok(Publisher {
            client: Client { handle, task },
            qos,
            accepted,
        })
    }

    /// Returns the number of messages the broker has accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.count()
    }

    /// Publishes messages 0 to `count - 1` on `topic` and returns the instant the broker
    /// had accepted the last one.
    ///
    /// # Errors
    /// Fails if the event loop stops or stalls.
    pub async fn publish(&self, topic: &str, count: u64) -> anyhow::Result<Instant> {
        let target = self.accepted() + count;
        let sending = async {
            for n in 0..count {
                self.client
                    .handle
                    .publish(topic, self.qos, false, payload(n))
                    .await
                    .with_context(|| format!("failed to queue message {n} on {topic}"))?;
            }
            anyhow::Ok(())
        };
        let description = "messages accepted by the broker from the publisher";
        let (sent, accepted) = tokio::join!(sending, self.accepted.wait_for(target, description));
        sent?;
        accepted
    }

    /// Sends DISCONNECT and stops the event loop.
    pub async fn disconnect(self) {
        self.client.disconnect().await;
    }
}

/// The baseline subscriber: one client subscribed to a filter that counts each message
/// and does nothing else. At QoS 1 rumqttc sends the PUBACK as soon as it has read the
/// message.
pub struct Subscriber {
    client: Client,
    received: Arc<Tally>,
}

impl Subscriber {
    /// Connects as `client_id` to the broker on 127.0.0.1:`port` with a clean session
    /// and subscribes to `filter` at `qos`, returning once the broker granted it.
    ///
    /// # Errors
    /// Fails if the broker does not accept the connection or rejects the subscription.
    pub async fn connect(
        client_id: &str,
        port: u16,
        filter: &str,
        qos: QoS,
    ) -> anyhow::Result<Self> {
        let (handle, mut eventloop) = AsyncClient::new(options(client_id, port), REQUEST_CHANNEL);
        await_connack(&mut eventloop, client_id).await?;
        handle
            .subscribe(filter, qos)
            .await
            .with_context(|| format!("failed to queue the SUBSCRIBE to {filter}"))?;
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, eventloop.poll())
                .await
                .with_context(|| format!("no SUBACK for {filter} within {HANDSHAKE_TIMEOUT:?}"))?
                .context("the baseline subscriber's connection failed")?;
            if let Event::Incoming(Incoming::SubAck(ack)) = event {
                match ack.return_codes.first() {
                    Some(SubscribeReasonCode::Success(granted)) if *granted == qos => break,
                    other => bail!(
                        "the broker returned {other:?} for the SUBSCRIBE to {filter} at {qos:?}"
                    ),
                }
            }
        }
        let received = Arc::new(Tally::new());
        let tally = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(_))) => tally.add_one(),
                    Ok(_) => {}
                    Err(err) => {
                        tally.fail(connection_failure("baseline subscriber", &err));
                        return;
                    }
                }
            }
        });
        Ok(Subscriber {
            client: Client { handle, task },
            received,
        })
    }

    /// Returns the number of messages received so far.
    pub fn received(&self) -> u64 {
        self.received.count()
    }

    /// Waits until `target` messages have been received in total and returns the instant
    /// the last one arrived.
    ///
    /// # Errors
    /// Fails if the event loop stops or stalls.
    pub async fn wait_for(&self, target: u64) -> anyhow::Result<Instant> {
        let description = "messages received by the baseline subscriber";
        self.received.wait_for(target, description).await
    }

    /// Sends DISCONNECT and stops the event loop.
    pub async fn disconnect(self) {
        self.client.disconnect().await;
    }
}

/// Removes the broker's persistent session of `client_id`: connects with a clean session
/// and disconnects. The broker then stops queueing messages for a hubkitd that has
/// stopped.
///
/// # Errors
/// Fails if the broker does not accept the connection.
pub async fn end_session(client_id: &str, port: u16) -> anyhow::Result<()> {
    let (handle, mut eventloop) = AsyncClient::new(options(client_id, port), REQUEST_CHANNEL);
    await_connack(&mut eventloop, client_id).await?;
    let task = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    Client { handle, task }.disconnect().await;
    Ok(())
}

fn connection_failure(client: &str, err: &ConnectionError) -> String {
    format!("the {client}'s connection failed: {err}")
}
