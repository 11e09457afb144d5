//! Starts, reconfigures and stops one [`BrokerTask`] per broker as the configuration
//! changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::status::{BrokerStatus, ConnectionState, SharedStatus};
use crate::task::{BrokerTask, Control};
use crate::{BrokerSettings, RumqttcConnector, Sink, TopicEntry};

/// Time a stopping broker task gets to finish its deliveries and disconnect.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The broker connections of a hub.
pub struct Supervisor<S: Sink> {
    hub_id: String,
    sink: Arc<S>,
    brokers: BTreeMap<String, Running>,
}

struct Running {
    settings: Arc<BrokerSettings>,
    status: SharedStatus,
    task: Option<TaskHandle>,
}

struct TaskHandle {
    control: mpsc::Sender<Control>,
    shutdown: watch::Sender<bool>,
    join: JoinHandle<()>,
}

impl<S: Sink> Supervisor<S> {
    /// Creates a supervisor with no brokers. `hub_id` names this hub in derived client
    /// identifiers.
    pub fn new(hub_id: String, sink: Arc<S>) -> Self {
        Supervisor {
            hub_id,
            sink,
            brokers: BTreeMap::new(),
        }
    }

    /// Applies a configuration: starts new brokers, reconnects brokers whose settings
    /// changed, hands changed topic entries to running brokers and stops removed ones.
    /// A broker that no topic entry uses is listed but not connected.
    pub async fn apply(&mut self, brokers: Vec<BrokerSettings>, entries: Vec<TopicEntry>) {
        let mut by_broker: BTreeMap<String, Vec<Arc<TopicEntry>>> = BTreeMap::new();
        for entry in entries {
            by_broker
                .entry(entry.broker.clone())
                .or_default()
                .push(Arc::new(entry));
        }
        let wanted: BTreeMap<String, BrokerSettings> = brokers
            .into_iter()
            .map(|settings| (settings.name.clone(), settings))
            .collect();

        let removed: Vec<String> = self
            .brokers
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = self.brokers.remove(&name) {
                info!(mqtt.broker = %name, "broker removed from the configuration");
                stop(running).await;
            }
        }

        for (name, settings) in wanted {
            let entries = by_broker.remove(&name).unwrap_or_default();
            self.apply_broker(settings, entries).await;
        }
    }

    async fn apply_broker(&mut self, settings: BrokerSettings, entries: Vec<Arc<TopicEntry>>) {
        let name = settings.name.clone();
        if let Some(running) = self.brokers.get_mut(&name) {
            let same = *running.settings == settings;
            if same
                && !entries.is_empty()
                && let Some(task) = &running.task
            {
                let update = Control::Entries(entries.clone());
                if task.control.send(update).await.is_ok() {
                    return;
                }
            } else if same && entries.is_empty() && running.task.is_none() {
                return;
            }
            if !same {
                info!(mqtt.broker = %name, "broker settings changed; reconnecting");
            }
            if let Some(running) = self.brokers.remove(&name) {
                let previous = running.status.snapshot();
                stop(running).await;
                let restarted = self.start(settings, entries, Some(&previous));
                self.brokers.insert(name, restarted);
                return;
            }
        }
        let running = self.start(settings, entries, None);
        self.brokers.insert(name, running);
    }

    /// Starts a broker task. The counters of `previous`, the status of the task it
    /// replaces, carry over so they only grow while the process runs.
    fn start(
        &self,
        settings: BrokerSettings,
        entries: Vec<Arc<TopicEntry>>,
        previous: Option<&BrokerStatus>,
    ) -> Running {
        let client_id = settings.effective_client_id(&self.hub_id);
        let mut initial = BrokerStatus::new(
            &settings.name,
            settings.address.to_string(),
            client_id.clone(),
            !settings.clean_session,
        );
        if let Some(previous) = previous {
            initial.carry_counters(previous);
        }
        let status = SharedStatus::new(initial);
        let settings = Arc::new(settings);
        if entries.is_empty() {
            status.lock().state = ConnectionState::Unused;
            return Running {
                settings,
                status,
                task: None,
            };
        }
        let connector = match RumqttcConnector::new((*settings).clone(), client_id.clone()) {
            Ok(connector) => connector,
            Err(err) => {
                warn!(mqtt.broker = %settings.name, error = %err, "cannot connect to the broker");
                let mut locked = status.lock();
                locked.state = ConnectionState::Stopped;
                locked.last_error = Some(err.to_string());
                locked.last_error_at = Some(std::time::SystemTime::now());
                drop(locked);
                return Running {
                    settings,
                    status,
                    task: None,
                };
            }
        };
        let (control_tx, control_rx) = mpsc::channel(8);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let task = BrokerTask::new(
            settings.clone(),
            &client_id,
            connector,
            self.sink.clone(),
            entries,
            status.clone(),
            control_rx,
            shutdown_rx,
        );
        info!(
            mqtt.broker = %settings.name,
            mqtt.address = %settings.address,
            mqtt.client_id = %client_id,
            mqtt.clean_session = settings.clean_session,
            "starting broker connection"
        );
        let join = tokio::spawn(task.run());
        Running {
            settings,
            status,
            task: Some(TaskHandle {
                control: control_tx,
                shutdown: shutdown_tx,
                join,
            }),
        }
    }

    /// Returns the status of every broker, by name.
    pub fn statuses(&self) -> Vec<BrokerStatus> {
        self.brokers
            .values()
            .map(|running| running.status.snapshot())
            .collect()
    }

    /// Returns shared handles of the statuses, which stay current as the tasks run.
    pub fn status_handles(&self) -> Vec<SharedStatus> {
        self.brokers
            .values()
            .map(|running| running.status.clone())
            .collect()
    }

    /// Stops every broker task: each commits and acknowledges what is in flight and
    /// disconnects.
    pub async fn shutdown(&mut self) {
        let brokers = std::mem::take(&mut self.brokers);
        for (_, running) in brokers {
            stop(running).await;
        }
    }
}

async fn stop(running: Running) {
    let Some(task) = running.task else {
        return;
    };
    let _ = task.shutdown.send(true);
    let mut join = task.join;
    if tokio::time::timeout(STOP_TIMEOUT, &mut join).await.is_err() {
        warn!(mqtt.broker = %running.settings.name, "broker task did not stop in time; aborting it");
        join.abort();
    }
}
