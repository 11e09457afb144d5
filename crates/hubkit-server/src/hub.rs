//! The running hub: start, reload and graceful shutdown.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use chrono::{DateTime, Utc};
use hubkit_config::{Config, Synchronous, TlsConfig};
use hubkit_files::{Detector, FileStore};
use hubkit_store::{CommitStats, Order, RecordQuery, Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::actions::effects::HubEffects;
use crate::actions::timer::{self, HubTimers, SystemClock};
use crate::actions::{ActionQueue, runner};
use crate::listener::{self, ConnectionLimits};
use crate::metrics::{Metrics, ReloadLabels};
use crate::mqtt::{HubSink, hub_id};
use crate::retention;
use crate::state::{
    AppState, LARGE_CAMERA_REQUESTS, PASSWORD_VERIFICATIONS, Runtime, RuntimeError,
};
use crate::tls;
use crate::token::{AdminToken, TokenError};
use hubkit_mqtt::{BrokerStatus, Supervisor};

/// Committed records the live stream channel keeps for its slowest reader. A stream that
/// falls further behind catches up from the store, so the number only bounds memory: a
/// client that stops reading pins at most this many records (each up to the body limit).
const LIVE_RECORDS: usize = 64;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "hubkit.db";

/// Folder inside the data directory that received files are stored in.
pub const FILES_FOLDER: &str = "files";

/// Settings of [`Hub::start`] that do not come from the configuration file.
#[derive(Debug, Default, Clone)]
pub struct HubOptions {
    /// Value of the `HUBKITD_ADMIN_TOKEN` environment variable, if set. The binary reads
    /// the environment; tests pass a value, so they never depend on it.
    pub admin_token_env: Option<String>,
}

/// Error returned when the hub cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be created.
    #[error("failed to create data directory {path}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store cannot be opened.
    #[error("failed to open the store")]
    Store(#[from] hubkit_store::StoreError),
    /// The files folder cannot be opened.
    #[error("failed to open the files folder {path}")]
    Files {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: hubkit_files::FileError,
    },
    /// TLS cannot be set up.
    #[error("failed to set up TLS")]
    Tls(#[from] tls::TlsError),
    /// The admin token cannot be chosen.
    #[error("failed to set up the admin token")]
    Token(#[from] TokenError),
    /// The webhooks or cameras cannot be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The listen address cannot be bound.
    #[error("failed to listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Error returned when a new configuration cannot be applied; the old one stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The webhooks or cameras cannot be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The new TLS files cannot be loaded.
    #[error("failed to load the new TLS certificate")]
    Tls(#[from] tls::TlsError),
}

/// A running hub: the listener, the store and the current configuration.
pub struct Hub {
    state: Arc<AppState>,
    config: ArcSwap<Config>,
    local_addr: SocketAddr,
    base_url: String,
    fingerprint: ArcSwapOption<String>,
    acceptor: Arc<ArcSwapOption<TlsAcceptor>>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    shutdown: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
    retention_task: JoinHandle<()>,
    runner_task: std::thread::JoinHandle<()>,
    timer_task: JoinHandle<()>,
    effects: Arc<HubEffects>,
    mqtt: tokio::sync::Mutex<Supervisor<HubSink>>,
}

impl Hub {
    /// Sets up TLS and the admin token, opens the store, binds the listen address and
    /// starts accepting connections. TLS comes first, so a bad certificate path fails
    /// before the store file is created.
    ///
    /// # Errors
    ///
    /// Fails when the data directory, the store, TLS, the admin token or the listen
    /// address cannot be set up.
    pub async fn start(config: Config, options: HubOptions) -> Result<Hub, StartError> {
        let server = &config.server;
        create_data_dir(&server.data_dir)?;
        let tls_setup = tls::setup(&server.tls, &server.data_dir, server.listen)?;
        let admin = AdminToken::resolve(
            options.admin_token_env,
            server.admin_token.as_deref(),
            &server.data_dir,
        )?;
        let metrics = Metrics::new();
        let store = open_store(&config, &metrics)?;
        let files = open_files(&server.data_dir)?;
        let hub_id = hub_id(&server.data_dir).map_err(|source| StartError::DataDir {
            path: server.data_dir.join(crate::mqtt::HUB_ID_FILE),
            source,
        })?;
        let detector = Detector::new();
        let listener =
            TcpListener::bind(server.listen)
                .await
                .map_err(|source| StartError::Bind {
                    address: server.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            address: server.listen,
            source,
        })?;
        let scheme = if tls_setup.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{}", display_address(local_addr));

        let (shutdown, shutdown_rx) = watch::channel(false);
        let runtime = Runtime::from_config(&config, &base_url, None)?;
        let state = Arc::new(AppState {
            runtime: ArcSwap::from_pointee(runtime),
            store,
            files,
            detector,
            metrics,
            admin,
            password_verifications: Semaphore::new(PASSWORD_VERIFICATIONS),
            large_camera_requests: Semaphore::new(LARGE_CAMERA_REQUESTS),
            shutdown: shutdown_rx.clone(),
            tls: tls_setup.is_some(),
            brokers: ArcSwap::from_pointee(Vec::new()),
            actions: ActionQueue::default(),
        });
        prepare_actions(&state).await?;
        let effects = Arc::new(HubEffects::new(
            state.clone(),
            hub_id.clone(),
            &server.data_dir,
        ));
        let runner_task = runner::spawn_thread(
            state.clone(),
            effects.clone(),
            shutdown_rx.clone(),
            server.limits.shutdown_grace,
        )
        .map_err(|source| StartError::DataDir {
            path: server.data_dir.clone(),
            source,
        })?;
        let timer_task = {
            let host = HubTimers {
                state: state.clone(),
            };
            let shutdown = shutdown_rx.clone();
            tokio::spawn(async move { timer::drive(&host, &SystemClock, shutdown).await })
        };
        let mut mqtt = Supervisor::new(
            hub_id,
            Arc::new(HubSink {
                state: state.clone(),
            }),
        );
        mqtt.apply(config.brokers.clone(), config.topics.clone())
            .await;
        state.brokers.store(Arc::new(mqtt.status_handles()));
        let fingerprint = ArcSwapOption::from(
            tls_setup
                .as_ref()
                .map(|setup| Arc::new(setup.fingerprint.clone())),
        );
        let acceptor = Arc::new(ArcSwapOption::from(
            tls_setup.map(|setup| Arc::new(TlsAcceptor::from(setup.config))),
        ));
        let limits = &server.limits;
        let connection_limits = ConnectionLimits {
            tls_handshake: limits.tls_handshake_timeout,
            header_read: limits.header_read_timeout,
            idle: limits.idle_timeout,
        };
        let max_connections = limits.max_connections;
        let connections = Arc::new(Semaphore::new(max_connections));
        let retention_task = tokio::spawn(retention::run(state.clone(), shutdown_rx.clone()));
        let accept_task = tokio::spawn(listener::accept_loop(
            listener,
            state.clone(),
            acceptor.clone(),
            connections.clone(),
            connection_limits,
            shutdown_rx,
        ));
        Ok(Hub {
            state,
            config: ArcSwap::from_pointee(config),
            local_addr,
            base_url,
            fingerprint,
            acceptor,
            connections,
            max_connections,
            shutdown,
            accept_task,
            retention_task,
            runner_task,
            timer_task,
            effects,
            mqtt: tokio::sync::Mutex::new(mqtt),
        })
    }

    /// Returns the status of every configured MQTT broker.
    pub fn broker_statuses(&self) -> Vec<BrokerStatus> {
        self.state
            .brokers
            .load()
            .iter()
            .map(|status| status.snapshot())
            .collect()
    }

    /// Returns the address the hub listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the base URL clients use, such as `https://127.0.0.1:8443`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Returns the SHA-256 fingerprint of the served certificate, or `None` without TLS.
    /// A reload in TLS mode `files` can change it.
    pub fn tls_fingerprint(&self) -> Option<String> {
        self.fingerprint
            .load_full()
            .map(|fingerprint| (*fingerprint).clone())
    }

    /// Counts a reload whose file was rejected before it reached [`Hub::reload`], such as
    /// one with a syntax error, so `/metrics` shows every rejected reload.
    pub fn count_rejected_reload(&self) {
        self.state
            .metrics
            .reloads
            .get_or_create(&ReloadLabels {
                outcome: "rejected",
            })
            .inc();
    }

    /// Returns the admin token.
    pub fn admin_token(&self) -> &AdminToken {
        &self.state.admin
    }

    /// Returns the configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Returns the store.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Returns the folder that received files are stored in.
    pub fn files_dir(&self) -> &Path {
        self.state.files.root()
    }

    /// Runs one retention pass as if the time were `now`, and returns how many files it
    /// removed. The hub also runs one every minute by itself.
    pub async fn enforce_retention(&self, now: DateTime<Utc>) -> usize {
        retention::enforce(&self.state, now).await
    }

    /// Applies a new, already validated configuration. Requests in flight finish on the old
    /// one. Settings that need a restart (listen address, data directory, store options,
    /// connection limit, TLS mode) keep their old values; each is returned as a warning.
    /// MQTT brokers are started, reconnected when their settings changed, or stopped, and
    /// topic entries subscribed or unsubscribed, before this returns.
    ///
    /// # Errors
    ///
    /// Fails, leaving the old configuration in force, when the webhooks do not form a
    /// registry or new TLS files cannot be loaded.
    pub async fn reload(&self, config: Config) -> Result<Vec<String>, ReloadError> {
        let result = self.try_reload(config);
        if result.is_ok() {
            let config = self.config.load_full();
            let mut mqtt = self.mqtt.lock().await;
            mqtt.apply(config.brokers.clone(), config.topics.clone())
                .await;
            self.state.brokers.store(Arc::new(mqtt.status_handles()));
        }
        let outcome = if result.is_ok() {
            "applied"
        } else {
            "rejected"
        };
        self.state
            .metrics
            .reloads
            .get_or_create(&ReloadLabels { outcome })
            .inc();
        result
    }

    fn try_reload(&self, mut config: Config) -> Result<Vec<String>, ReloadError> {
        let old = self.config.load_full();
        let mut warnings = restart_only_changes(&old, &config);
        if config.webhooks.is_empty() && !old.webhooks.is_empty() {
            warnings.push(format!(
                "the new configuration defines no webhooks, so all {} webhook URLs now answer \
                 404; check that the file was not truncated",
                old.webhooks.len()
            ));
        }
        keep_restart_only_settings(&old, &mut config);
        let previous = self.state.runtime.load_full();
        let runtime = Runtime::from_config(&config, &self.base_url, Some(&previous))?;
        let new_tls = match &config.server.tls {
            TlsConfig::Files { .. } => {
                tls::setup(&config.server.tls, &old.server.data_dir, old.server.listen)?
            }
            _ => None,
        };
        // Everything that can fail has run; swap in the new generation.
        if let Some(setup) = new_tls {
            self.fingerprint
                .store(Some(Arc::new(setup.fingerprint.clone())));
            self.acceptor
                .store(Some(Arc::new(TlsAcceptor::from(setup.config))));
        }
        self.effects.prune_publishers(&runtime.brokers);
        self.state.runtime.store(Arc::new(runtime));
        self.config.store(Arc::new(config));
        self.state.actions.reloaded.notify_one();
        Ok(warnings)
    }

    /// Stops accepting connections, lets requests in flight finish for up to `grace`, then
    /// commits what the store has queued and closes it.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_task.await;
        let _ = self.retention_task.await;
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(grace, self.connections.acquire_many(all)).await;
        if drained.is_err() {
            warn!(
                grace_ms = grace.as_millis() as u64,
                "connections still open after the shutdown grace period; closing them"
            );
        }
        // Broker tasks commit and acknowledge what is in flight, so the store must still
        // be open.
        self.mqtt.lock().await.shutdown().await;
        // The runner records the runs that finish within the grace period; the others
        // stay running in the store and run again after the next start.
        let _ = self.timer_task.await;
        let runner = self.runner_task;
        let _ = tokio::task::spawn_blocking(move || runner.join()).await;
        self.state.store.close().await;
        info!("hub stopped");
    }
}

/// Readies the action queue before the runner starts. Runs that a crash or an unclean
/// stop left running go back to pending, and the queue depth gauge starts at the number of
/// pending runs. The layers that extra-layer conditions read get their latest record.
async fn prepare_actions(state: &AppState) -> Result<(), StartError> {
    let requeued = state.store.requeue_running_action_runs().await?;
    if requeued > 0 {
        warn!(
            runs = requeued,
            "action runs were running when hubkitd stopped; they run again"
        );
    }
    let pending = state.store.pending_action_runs()?;
    state
        .metrics
        .action_queue_depth
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    if pending > 0 {
        info!(runs = pending, "pending action runs queued");
    }
    let watched: Vec<uuid::Uuid> = state.runtime.load().engine.watched_layers().collect();
    for layer in watched {
        let query = RecordQuery {
            layer: Some(layer.to_string()),
            limit: 1,
            order: Order::Desc,
            ..RecordQuery::default()
        };
        let page = state.store.query(query).await?;
        if let Some(latest) = page.records.first() {
            let record = &latest.record;
            state
                .actions
                .shared
                .remember(layer, record.timestamp, &record.data);
        }
    }
    Ok(())
}

/// Creates the data directory, readable only by its owner, when it does not exist. An
/// existing directory keeps the mode the operator gave it.
fn create_data_dir(path: &Path) -> Result<(), StartError> {
    let data_dir_err = |source| StartError::DataDir {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(data_dir_err)
}

/// Opens the files folder, readable only by its owner when hubkitd creates it, and
/// removes what interrupted uploads left.
fn open_files(data_dir: &Path) -> Result<FileStore, StartError> {
    let root = data_dir.join(FILES_FOLDER);
    if !root.is_dir() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&root)
            .or_else(|err| match err.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(err),
            })
            .map_err(|source| StartError::DataDir {
                path: root.clone(),
                source,
            })?;
    }
    let files = FileStore::open(&root).map_err(|err| StartError::Files {
        path: root.clone(),
        source: err,
    })?;
    files.remove_partial_uploads();
    Ok(files)
}

fn open_store(config: &Config, metrics: &Arc<Metrics>) -> Result<Store, StartError> {
    let observer_metrics = metrics.clone();
    let observer = move |stats: &CommitStats| {
        observer_metrics
            .commit_batch_records
            .observe(stats.records as f64);
        observer_metrics
            .commit_duration
            .observe(stats.duration.as_secs_f64());
    };
    let options = StoreOptions {
        synchronous: match config.server.store.synchronous {
            Synchronous::Full => hubkit_store::Synchronous::Full,
            Synchronous::Normal => hubkit_store::Synchronous::Normal,
        },
        commit_observer: Some(Arc::new(observer)),
        broadcast_capacity: LIVE_RECORDS,
        ..StoreOptions::default()
    };
    let path = config.server.data_dir.join(DATABASE_FILE);
    let store = Store::open(&path, options)?;
    // The records may hold personal data, so only the owner may read the files. SQLite
    // creates the -wal and -shm files with the database file's mode, but they already
    // exist once the store is open.
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if !file.exists() {
            continue;
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| StartError::DataDir { path: file, source })?;
    }
    Ok(store)
}

fn same_tls_mode(old: &TlsConfig, new: &TlsConfig) -> bool {
    std::mem::discriminant(old) == std::mem::discriminant(new)
}

/// Puts the values in force back into the settings that only a restart can change, so
/// [`Hub::config`] shows what is applied and the next reload compares against it.
fn keep_restart_only_settings(old: &Config, new: &mut Config) {
    let (old, new) = (&old.server, &mut new.server);
    new.listen = old.listen;
    new.data_dir = old.data_dir.clone();
    new.store = old.store;
    new.admin_token = old.admin_token.clone();
    new.limits.max_connections = old.limits.max_connections;
    new.limits.header_read_timeout = old.limits.header_read_timeout;
    new.limits.idle_timeout = old.limits.idle_timeout;
    new.limits.tls_handshake_timeout = old.limits.tls_handshake_timeout;
    new.limits.shutdown_grace = old.limits.shutdown_grace;
    if !same_tls_mode(&old.tls, &new.tls) {
        new.tls = old.tls.clone();
    }
}

/// Lists settings that changed but only take effect after a restart.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let (old, new) = (&old.server, &new.server);
    let mut check = |changed: bool, key: &str| {
        if changed {
            warnings.push(format!("server.{key} changed; restart hubkitd to apply it"));
        }
    };
    check(old.listen != new.listen, "listen");
    check(old.data_dir != new.data_dir, "data_dir");
    check(old.store != new.store, "store");
    check(
        old.limits.max_connections != new.limits.max_connections,
        "limits.max_connections",
    );
    check(
        old.limits.header_read_timeout != new.limits.header_read_timeout
            || old.limits.idle_timeout != new.limits.idle_timeout
            || old.limits.tls_handshake_timeout != new.limits.tls_handshake_timeout,
        "limits timeouts of connections",
    );
    check(
        old.limits.shutdown_grace != new.limits.shutdown_grace,
        "limits.shutdown_grace_ms",
    );
    check(!same_tls_mode(&old.tls, &new.tls), "tls.mode");
    check(old.admin_token != new.admin_token, "admin_token");
    warnings
}

/// Formats an address for a URL, with brackets around IPv6 addresses.
fn display_address(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}
