//! The I/O of action steps: HTTP requests, MQTT publishes, files under the data folder,
//! log lines and sleeps.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hubkit_mqtt::{BrokerSettings, BrokerTls, Publisher, Qos};
use hubkit_triggers::{Effects, HttpRequest, HttpResponse, LogLevel, QoS};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::{debug, error, info, warn};

use crate::state::AppState;

/// Largest HTTP response body an HTTP Request step keeps, in bytes; the rest is read and
/// discarded. The body becomes the next step's payload and a preview of it is stored with
/// the run.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How long an MQTT Publish step waits for the broker, the first connection included.
pub(crate) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Folder inside the data folder that File Write steps write under.
pub const ACTION_FILES_FOLDER: &str = "action-files";

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The hub's [`Effects`]: one HTTP client per CA file, one MQTT publisher per broker.
pub(crate) struct HubEffects {
    state: Arc<AppState>,
    hub_id: String,
    files_root: PathBuf,
    clients: Mutex<HashMap<Option<PathBuf>, HttpClient>>,
    publishers: Mutex<HashMap<String, (BrokerSettings, Arc<Publisher>)>>,
    started: Instant,
}

impl HubEffects {
    pub(crate) fn new(state: Arc<AppState>, hub_id: String, data_dir: &Path) -> HubEffects {
        HubEffects {
            state,
            hub_id,
            files_root: data_dir.join(ACTION_FILES_FOLDER),
            clients: Mutex::new(HashMap::new()),
            publishers: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    /// Returns the HTTP client that trusts `ca_file`, or the system's authorities.
    fn client(&self, ca_file: Option<&Path>) -> Result<HttpClient, String> {
        let key = ca_file.map(Path::to_path_buf);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let tls = hubkit_mqtt::tls_client_config(&BrokerTls {
            ca_file: key.clone(),
            client_auth: None,
            accept_invalid_certs: false,
        })?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Returns the publisher of the broker named `name` as it is configured now, starting
    /// one when there is none or the broker's settings changed.
    fn publisher(&self, name: &str) -> Result<Arc<Publisher>, String> {
        let runtime = self.state.runtime.load();
        let Some(settings) = runtime.brokers.get(name) else {
            return Err(format!(
                "broker {name:?} is not in the configuration; add it to [[brokers]]"
            ));
        };
        let mut publishers = self
            .publishers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((known, publisher)) = publishers.get(name)
            && known == settings
        {
            return Ok(publisher.clone());
        }
        let publisher = Arc::new(Publisher::start(settings, &self.hub_id)?);
        publishers.insert(name.to_owned(), (settings.clone(), publisher.clone()));
        Ok(publisher)
    }

    /// Drops the publishers of brokers that are gone from the configuration or changed.
    pub(crate) fn prune_publishers(&self, brokers: &HashMap<String, BrokerSettings>) {
        self.publishers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|name, (settings, _)| brokers.get(name) == Some(settings));
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, String> {
        // Query strings often carry tokens, and errors are stored with the run and logged.
        let url_text = without_query(&request.url);
        let client = self.client(request.ca_file.as_deref())?;
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let http_request = builder
            .body(Full::new(Bytes::from(request.body.unwrap_or_default())))
            .map_err(|err| format!("invalid request to {url_text}: {err}"))?;
        let exchange = async {
            let response = client.request(http_request).await.map_err(|err| {
                format!("request to {url_text} failed: {}", crate::error_chain(&err))
            })?;
            let status = response.status().as_u16();
            let body = read_limited(response.into_body(), MAX_RESPONSE_BYTES)
                .await
                .map_err(|err| format!("reading the response of {url_text} failed: {err}"))?;
            Ok(HttpResponse { status, body })
        };
        tokio::time::timeout(request.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "request to {url_text} timed out after {} ms",
                    request.timeout.as_millis()
                ))
            })
    }
}

impl Effects for HubEffects {
    async fn http(&self, request: HttpRequest) -> Result<HttpResponse, String> {
        debug!(http.method = request.method.as_str(), url = %without_query(&request.url), "action HTTP request");
        self.send(request).await
    }

    async fn publish(
        &self,
        broker: &str,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<(), String> {
        hubkit_mqtt::validate_topic_name(topic)
            .map_err(|err| format!("topic {topic:?} cannot be published to: {err}"))?;
        let publisher = self.publisher(broker)?;
        let qos = match qos {
            QoS::AtMostOnce => Qos::AtMostOnce,
            QoS::AtLeastOnce => Qos::AtLeastOnce,
            QoS::ExactlyOnce => Qos::ExactlyOnce,
        };
        publisher
            .publish(topic, qos, retain, payload, PUBLISH_TIMEOUT)
            .await
    }

    async fn write_file(&self, path: &Path, bytes: &[u8], append: bool) -> Result<(), String> {
        let path = path.to_path_buf();
        let bytes = bytes.to_vec();
        let writer = HubEffectsWriter {
            root: self.files_root.clone(),
        };
        tokio::task::spawn_blocking(move || writer.write(&path, &bytes, append))
            .await
            .map_err(|err| format!("the file write task failed: {err}"))?
    }

    fn log(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error => error!(target: "hubkit::action", "{message}"),
            LogLevel::Warn => warn!(target: "hubkit::action", "{message}"),
            LogLevel::Info => info!(target: "hubkit::action", "{message}"),
            LogLevel::Debug => debug!(target: "hubkit::action", "{message}"),
        }
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The file writing of [`HubEffects`], movable into a blocking task.
struct HubEffectsWriter {
    root: PathBuf,
}

impl HubEffectsWriter {
    /// Appends to or replaces the file at `path` under the root, creating its folders,
    /// and syncs it before returning.
    fn write(&self, path: &Path, bytes: &[u8], append: bool) -> Result<(), String> {
        let target = self.root.join(path);
        let failed = |what: &str, err: std::io::Error| {
            format!("failed to {what} {}: {err}", target.display())
        };
        // A link inside the folder could lead the write anywhere the user hubkitd runs as
        // may write, so no part of the path below the folder may be a symbolic link. The
        // folder itself may be one, for example to another disk.
        let mut below = self.root.clone();
        for component in path.components() {
            below.push(component);
            match std::fs::symlink_metadata(&below) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(format!(
                        "{} is a symbolic link; File Write does not follow links, so write to \
                         a path without one",
                        below.display()
                    ));
                }
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => break,
                Err(err) => return Err(failed("inspect", err)),
            }
        }
        if let Some(parent) = target.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|err| failed("create the folder of", err))?;
        }
        if append {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&target)
                .map_err(|err| failed("open", err))?;
            file.write_all(bytes)
                .map_err(|err| failed("append to", err))?;
            file.sync_data().map_err(|err| failed("sync", err))?;
            return Ok(());
        }
        // Replace the file whole: write a temporary file next to it, then rename it over.
        let name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary =
            target.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::now_v7().simple()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &target)
        })();
        if let Err(err) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(failed("write", err));
        }
        Ok(())
    }
}

/// Reads a response body, keeping its first `limit` bytes and discarding the rest. A body
/// that is too large is cut rather than failing the step, because a failure would be
/// retried and repeat a request that the server already handled.
async fn read_limited(
    mut body: hyper::body::Incoming,
    limit: usize,
) -> Result<Vec<u8>, hyper::Error> {
    let mut kept_bytes = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            let room = limit.saturating_sub(kept_bytes.len());
            kept_bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    if total > limit {
        debug!(
            bytes = total,
            limit, "action HTTP response body cut to the limit"
        );
    }
    Ok(kept_bytes)
}

/// Returns `url` without its query string and fragment, for messages and logs.
fn without_query(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(end) => format!("{}?…", &url[..end]),
        None => url.to_owned(),
    }
}
