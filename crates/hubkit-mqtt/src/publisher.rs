//! Publishing to a broker for action steps, on a connection of its own.
//!
//! The subscribing connection of a [`crate::BrokerTask`] may keep a persistent session and
//! acknowledges by hand; a publisher needs neither. Its connection has a clean session and
//! its own client id (the broker's id with `-actions` appended), so publishing never
//! disturbs a subscription and leaves no session behind on the broker.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, Transport};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::rumqttc_client::to_rumqttc;
use crate::{BrokerSettings, Qos, tls};

/// Largest message a publisher sends, in bytes: room for a 1 MiB payload, the most an
/// action template renders, and its topic.
pub const MAX_PUBLISH_PACKET_BYTES: usize = 2 * 1024 * 1024;

/// Delay before the first reconnect after a lost connection; it doubles up to
/// [`MAX_RECONNECT_DELAY`].
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Maximum delay between two connection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// State of a publisher's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// The first attempt has not finished.
    Connecting,
    /// The broker accepted the connection.
    Connected,
    /// The latest attempt failed or the connection was lost, for this reason.
    Down(String),
}

/// A report of the connection task to a waiting [`Publisher::publish`].
#[derive(Clone, Copy, Debug)]
enum Progress {
    /// A PUBLISH went out with this packet id (0 for QoS 0).
    Sent(u16),
    /// The broker acknowledged a QoS 1 message.
    Acked(u16),
    /// The broker completed a QoS 2 exchange.
    Completed(u16),
    /// The connection was lost.
    Lost,
}

/// Publishes messages to one broker and waits for the broker's acknowledgement.
///
/// One message is in flight at a time, so each acknowledgement belongs to the message
/// that is waiting. A publisher whose connection is down fails at once with the reason,
/// rather than queueing messages that a restart would lose. Dropping it closes the
/// connection.
pub struct Publisher {
    name: String,
    client: AsyncClient,
    state: watch::Receiver<State>,
    progress: Mutex<mpsc::Receiver<Progress>>,
    task: JoinHandle<()>,
}

impl Publisher {
    /// Starts connecting to the broker of `settings` as `<client id>-actions`, where the
    /// client id is the broker's effective one for `hub_id`, or the derived one when that
    /// is empty. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when a TLS file cannot be read.
    pub fn start(settings: &BrokerSettings, hub_id: &str) -> Result<Publisher, String> {
        let base = match settings.effective_client_id(hub_id) {
            // With an empty id the broker chooses one for the subscriber. The publisher
            // takes the derived id instead, which stays unique per hub.
            id if id.is_empty() => BrokerSettings {
                client_id: None,
                ..settings.clone()
            }
            .effective_client_id(hub_id),
            id => id,
        };
        let client_id = format!("{base}-actions");

        let address = &settings.address;
        let mut options = MqttOptions::new(client_id, &address.host, address.port);
        options
            .set_keep_alive(settings.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(settings.max_packet_bytes, MAX_PUBLISH_PACKET_BYTES);
        if let Some(username) = &settings.username {
            options.set_credentials(username, settings.password.as_deref().unwrap_or(""));
        }
        if address.tls {
            let config = tls::client_config(&settings.tls)?;
            options.set_transport(Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config),
            ));
        }
        let (client, eventloop) = AsyncClient::new(options, 16);
        let (state_tx, state) = watch::channel(State::Connecting);
        let (progress_tx, progress) = mpsc::channel(64);
        let task = tokio::spawn(drive(
            settings.name.clone(),
            eventloop,
            state_tx,
            progress_tx,
        ));
        Ok(Publisher {
            name: settings.name.clone(),
            client,
            state,
            progress: Mutex::new(progress),
            task,
        })
    }

    /// Publishes one message and waits until the broker has it: for QoS 0 until it is
    /// sent, for QoS 1 until the PUBACK, for QoS 2 until the PUBCOMP. While the first
    /// connection attempt is still running it waits for that too, all within `timeout`.
    ///
    /// # Errors
    ///
    /// A message naming the broker when it is not connected, the connection is lost
    /// before the acknowledgement, or `timeout` passes. A message that timed out may
    /// still reach the broker.
    pub async fn publish(
        &self,
        topic: &str,
        qos: Qos,
        retain: bool,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), String> {
        let name = &self.name;
        let exchange = async {
            let mut progress = self.progress.lock().await;
            // Reports of an earlier exchange that timed out are stale now.
            while progress.try_recv().is_ok() {}
            let mut state = self.state.clone();
            let current = state
                .wait_for(|state| *state != State::Connecting)
                .await
                .map_err(|_| format!("the publisher of broker {name} has stopped"))?
                .clone();
            if let State::Down(reason) = current {
                return Err(format!("broker {name} is not connected: {reason}"));
            }
            self.client
                .publish(topic, to_rumqttc(qos), retain, payload.to_vec())
                .await
                .map_err(|err| format!("failed to queue the message for broker {name}: {err}"))?;
            let mut sent = None;
            while let Some(report) = progress.recv().await {
                match (report, qos, sent) {
                    (Progress::Sent(_), Qos::AtMostOnce, _) => return Ok(()),
                    (Progress::Sent(pkid), _, None) => sent = Some(pkid),
                    (Progress::Acked(pkid), Qos::AtLeastOnce, Some(sent))
                    | (Progress::Completed(pkid), Qos::ExactlyOnce, Some(sent))
                        if pkid == sent =>
                    {
                        return Ok(());
                    }
                    (Progress::Lost, ..) => {
                        return Err(format!(
                            "the connection to broker {name} was lost before it acknowledged \
                             the message"
                        ));
                    }
                    _ => {}
                }
            }
            Err(format!("the publisher of broker {name} has stopped"))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "broker {name} did not acknowledge the message within {} ms",
                    timeout.as_millis()
                ))
            })
    }

    /// Returns the name of the broker.
    pub fn broker(&self) -> &str {
        &self.name
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("broker", &self.name)
            .finish_non_exhaustive()
    }
}

/// Drives the connection: reconnects with a doubling delay and reports progress.
async fn drive(
    name: String,
    mut eventloop: EventLoop,
    state: watch::Sender<State>,
    progress: mpsc::Sender<Progress>,
) {
    let mut delay = FIRST_RECONNECT_DELAY;
    loop {
        let report = match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                info!(broker = %name, "action publisher connected");
                state.send_replace(State::Connected);
                delay = FIRST_RECONNECT_DELAY;
                None
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => Some(Progress::Acked(ack.pkid)),
            Ok(Event::Incoming(Incoming::PubComp(comp))) => Some(Progress::Completed(comp.pkid)),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some(Progress::Sent(pkid)),
            Ok(_) => None,
            Err(err) => {
                debug!(broker = %name, error = %err, "action publisher connection failed");
                state.send_replace(State::Down(err.to_string()));
                let _ = progress.try_send(Progress::Lost);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                None
            }
        };
        // A full channel means no publish is waiting, and the next one drains it first.
        if let Some(report) = report {
            let _ = progress.try_send(report);
        }
    }
}
