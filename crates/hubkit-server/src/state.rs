//! State shared by every request: the current configuration generation, the store, the
//! metrics and the admin token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hubkit_config::Config;
use hubkit_endpoints::Registry;
use hubkit_files::{Detector, FileStore};
use hubkit_ipro::CameraRegistry;
use hubkit_model::Topology;
use hubkit_mqtt::BrokerSettings;
use hubkit_store::Store;
use tokio::sync::{Semaphore, watch};

use crate::actions::ActionQueue;
use crate::actions::engine::Engine;
use crate::metrics::Metrics;
use crate::token::AdminToken;

/// How many argon2 password verifications may run at once. Each takes tens of
/// milliseconds of CPU, so a client sending many wrong passwords could otherwise take every
/// core from ingest. Verified credentials are cached, so legitimate devices rarely wait.
pub(crate) const PASSWORD_VERIFICATIONS: usize = 1;

/// How many camera requests with a body over [`SMALL_CAMERA_BODY_BYTES`] (or of unknown
/// length) are read and parsed at once. Each keeps its body, the raw copy and the decoded
/// values. 16 parallel uploads of an 8.6 MB JSON body of 70,000 small objects took a
/// debug hubkitd to a peak RSS of 223 MB with 2 permits and 307 MB with 4 (2-core VM).
/// Others wait, holding only their connection.
pub(crate) const LARGE_CAMERA_REQUESTS: usize = 2;

/// Largest declared camera body that needs no permit from
/// [`AppState::large_camera_requests`].
pub(crate) const SMALL_CAMERA_BODY_BYTES: u64 = 1024 * 1024;

/// The parts of one configuration generation that requests use. A reload builds a new
/// generation and swaps it in, and requests in flight keep the one they started with.
pub(crate) struct Runtime {
    pub registry: Registry,
    pub cameras: CameraRegistry,
    /// Largest camera request body for cameras without a limit of their own.
    pub camera_body_bytes: u64,
    /// Folder that camera requests are also written to, when capture mode is on.
    pub capture_dir: Option<PathBuf>,
    pub topology: Topology,
    pub max_body_bytes: u64,
    pub max_file_bytes: u64,
    pub body_read_timeout: Duration,
    pub public_url: Option<String>,
    /// Triggers and actions.
    pub engine: Engine,
    /// Broker settings by name, for MQTT Publish steps.
    pub brokers: HashMap<String, BrokerSettings>,
}

impl Runtime {
    /// Builds the request-facing part of a validated configuration.
    /// `base_url` replaces `server.public_url` when the configuration has none. Triggers
    /// of `previous` with the same name and gate settings keep their firing state.
    pub(crate) fn from_config(
        config: &Config,
        base_url: &str,
        previous: Option<&Runtime>,
    ) -> Result<Runtime, RuntimeError> {
        let capture_dir = config.ipro.capture.then(|| {
            config
                .ipro
                .capture_dir
                .clone()
                .unwrap_or_else(|| config.server.data_dir.join("captures"))
        });
        Ok(Runtime {
            registry: Registry::new(config.webhooks.clone())?,
            cameras: CameraRegistry::new(config.cameras.clone())?,
            camera_body_bytes: config.ipro.max_body_bytes,
            capture_dir,
            topology: config.topology.clone(),
            max_body_bytes: config.server.limits.max_body_bytes,
            max_file_bytes: config.server.limits.max_file_bytes,
            body_read_timeout: config.server.limits.body_read_timeout,
            public_url: Some(
                config
                    .server
                    .public_url
                    .clone()
                    .unwrap_or_else(|| base_url.to_owned()),
            ),
            engine: Engine::new(
                &config.triggers,
                &config.actions,
                &config.topology,
                previous.map(|runtime| &runtime.engine),
            ),
            brokers: config
                .brokers
                .iter()
                .map(|broker| (broker.name.clone(), broker.clone()))
                .collect(),
        })
    }
}

/// Error returned when the webhooks or cameras of a configuration cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The webhooks do not form a valid registry.
    #[error("invalid webhook configuration")]
    Endpoints(#[from] hubkit_endpoints::EndpointError),
    /// The cameras do not form a valid registry.
    #[error("invalid camera configuration")]
    Cameras(#[from] hubkit_ipro::CameraError),
}

/// State shared by every connection and request.
pub(crate) struct AppState {
    pub runtime: ArcSwap<Runtime>,
    pub store: Store,
    pub files: FileStore,
    pub detector: Detector,
    pub metrics: Arc<Metrics>,
    pub admin: AdminToken,
    pub password_verifications: Semaphore,
    /// Permits for camera requests whose body may be large, so that concurrent uploads
    /// cannot hold many bodies and their decoded forms in memory at once.
    pub large_camera_requests: Semaphore,
    pub shutdown: watch::Receiver<bool>,
    pub tls: bool,
    /// Statuses of the MQTT broker connections, replaced when a reload changes brokers.
    pub brokers: ArcSwap<Vec<hubkit_mqtt::SharedStatus>>,
    /// The queue of action runs shared by ingest, timers, the API and the runner.
    pub actions: ActionQueue,
}
