//! MQTT brokers for tests: an external broker named by an environment variable, a mosquitto
//! process spawned for one test, or a rumqttd broker embedded in the test process.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::embedded::start_embedded_broker;

/// Environment variable that names an external broker as `host:port`, for example
/// `127.0.0.1:1883`. [`TestBroker::start`] then uses that broker and never starts or stops it.
pub const BROKER_ENV: &str = "HUBKIT_TEST_MQTT_BROKER";

/// Environment variable that sets the mosquitto binary to spawn, or `none` to skip mosquitto
/// so that [`TestBroker::start`] runs the embedded broker.
pub const MOSQUITTO_ENV: &str = "HUBKIT_TEST_MOSQUITTO";

/// Directories searched for `mosquitto` after `PATH`, because Debian installs it in
/// /usr/sbin, which a non-root `PATH` often lacks.
const EXTRA_SEARCH_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

/// Maximum time for a broker to accept TCP connections after it was started.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum time for mosquitto to exit after SIGTERM, including writing its persistence file.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval between readiness and exit checks.
pub(super) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Start attempts, each on a new free port: another process can take a port between the
/// moment it is picked and the moment the broker binds it.
pub(super) const START_ATTEMPTS: usize = 3;

/// Largest MQTT packet: one type byte, four remaining-length bytes and 268,435,455 bytes.
/// Brokers started here accept any valid packet, as mosquitto does without a limit set.
pub const MAX_PACKET_SIZE: usize = 268_435_460;

/// Kind of broker behind a [`TestBroker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// A broker named by [`BROKER_ENV`], shared with other tests and never restarted.
    External,
    /// A mosquitto process spawned for this test, with its own configuration and persistence.
    Mosquitto,
    /// A rumqttd broker running on threads of the test process.
    Embedded,
}

enum Backend {
    External,
    Mosquitto(MosquittoProcess),
    Embedded,
}

/// An MQTT 3.1.1 broker for one test.
///
/// [`TestBroker::start`] picks, in this order: the external broker named by [`BROKER_ENV`],
/// a spawned mosquitto when a binary is found, or an embedded rumqttd broker. A spawned
/// mosquitto is killed when the `TestBroker` is dropped.
pub struct TestBroker {
    addr: SocketAddr,
    backend: Backend,
}

impl TestBroker {
    /// Starts or selects a broker, as described on [`TestBroker`].
    pub async fn start() -> anyhow::Result<TestBroker> {
        if let Some(addr) = external_broker_from_env()? {
            return TestBroker::external(addr).await;
        }
        if let Some(broker) = TestBroker::start_mosquitto().await? {
            return Ok(broker);
        }
        TestBroker::start_embedded().await
    }

    /// Spawns a mosquitto that [`TestBroker::restart`] can restart, and ignores [`BROKER_ENV`]
    /// because a test must never restart a shared broker. Returns `Ok(None)` when no mosquitto
    /// binary is available.
    pub async fn start_restartable() -> anyhow::Result<Option<TestBroker>> {
        TestBroker::start_mosquitto().await
    }

    /// Uses the broker at `addr` without starting or stopping it, after checking that it
    /// accepts TCP connections.
    pub async fn external(addr: SocketAddr) -> anyhow::Result<TestBroker> {
        if !accepts_connections(addr).await {
            bail!(
                "the external MQTT broker at {addr} does not accept TCP connections; start it, \
                 or unset {BROKER_ENV} so that tests start their own broker"
            );
        }
        Ok(TestBroker {
            addr,
            backend: Backend::External,
        })
    }

    /// Spawns mosquitto on a free 127.0.0.1 port with a generated configuration in a new
    /// temporary directory. Returns `Ok(None)` when [`mosquitto_binary`] finds no binary.
    pub async fn start_mosquitto() -> anyhow::Result<Option<TestBroker>> {
        let Some(binary) = mosquitto_binary()? else {
            return Ok(None);
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
            let mut process = MosquittoProcess::create(binary.clone(), addr)?;
            process.spawn()?;
            match process.wait_ready(addr).await {
                Ok(()) => {
                    return Ok(Some(TestBroker {
                        addr,
                        backend: Backend::Mosquitto(process),
                    }));
                }
                Err(failure @ ReadyFailure::Exited(_)) => {
                    last_error = Some(process.failure_report(addr, &failure));
                }
                Err(failure) => bail!(process.failure_report(addr, &failure)),
            }
        }
        bail!(
            "mosquitto failed to start in {START_ATTEMPTS} attempts; the last: {}",
            last_error.unwrap_or_default()
        )
    }

    /// Starts a rumqttd broker in threads of this process, behind a relay on a free
    /// 127.0.0.1 port that avoids a disconnect race in rumqttd 0.20.
    ///
    /// NOTE: rumqttd 0.20 has no shutdown API, so the broker and its relay keep running, and
    /// keep their ports, until the test process exits.
    pub async fn start_embedded() -> anyhow::Result<TestBroker> {
        let addr = start_embedded_broker().await?;
        Ok(TestBroker {
            addr,
            backend: Backend::Embedded,
        })
    }

    /// Returns the address that clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns which broker this is.
    pub fn kind(&self) -> BrokerKind {
        match self.backend {
            Backend::External => BrokerKind::External,
            Backend::Mosquitto(_) => BrokerKind::Mosquitto,
            Backend::Embedded => BrokerKind::Embedded,
        }
    }

    /// Returns whether [`TestBroker::restart`] can restart this broker: true only for a
    /// spawned mosquitto.
    pub fn can_restart(&self) -> bool {
        matches!(self.backend, Backend::Mosquitto(_))
    }

    /// Stops a spawned mosquitto with SIGTERM, which makes it write its persistence file,
    /// then starts it again on the same port with the same configuration and persistence
    /// file, and waits until it accepts connections. A persistent session keeps its
    /// subscriptions and its queued and in-flight QoS 1 messages across the restart.
    ///
    /// Returns an error for an external broker, which tests must never stop, and for the
    /// embedded broker: rumqttd 0.20 cannot be stopped and keeps sessions only in memory,
    /// so a restart could not keep them.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let addr = self.addr;
        let process = match &mut self.backend {
            Backend::External => bail!(
                "the external MQTT broker at {addr} cannot be restarted: it may be shared, so \
                 tests must never stop it; use TestBroker::start_restartable for restart tests"
            ),
            Backend::Embedded => bail!(
                "the embedded rumqttd broker at {addr} cannot be restarted: rumqttd 0.20 has no \
                 shutdown API and keeps sessions only in memory; use \
                 TestBroker::start_restartable for restart tests"
            ),
            Backend::Mosquitto(process) => process,
        };
        process.stop().await?;
        process.spawn()?;
        if let Err(failure) = process.wait_ready(addr).await {
            bail!(process.failure_report(addr, &failure));
        }
        Ok(())
    }

    /// Returns the broker's log for failure messages: mosquitto's log file followed by
    /// anything it printed, or `None` for brokers whose log this harness cannot read.
    /// The embedded broker logs through `tracing`, which reaches only a global subscriber
    /// because rumqttd runs on threads of its own.
    pub fn log(&self) -> Option<String> {
        match &self.backend {
            Backend::Mosquitto(process) => Some(process.log()),
            Backend::External | Backend::Embedded => None,
        }
    }
}

impl fmt::Display for TestBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.backend {
            Backend::External => "external MQTT broker",
            Backend::Mosquitto(_) => "spawned mosquitto",
            Backend::Embedded => "embedded rumqttd",
        };
        write!(f, "{kind} at {}", self.addr)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Backend::Mosquitto(process) = &mut self.backend {
            process.kill();
        }
    }
}

/// Returns the mosquitto binary to spawn: the path in [`MOSQUITTO_ENV`], or `None` when that
/// variable is `none`, else the first executable `mosquitto` in `PATH`, /usr/sbin or
/// /usr/local/sbin.
pub fn mosquitto_binary() -> anyhow::Result<Option<PathBuf>> {
    if let Some(value) = std::env::var_os(MOSQUITTO_ENV) {
        if value == "none" {
            return Ok(None);
        }
        let path = PathBuf::from(value);
        if !is_executable(&path) {
            bail!(
                "{MOSQUITTO_ENV}={} is not an executable file; set it to a mosquitto binary or \
                 to `none`",
                path.display()
            );
        }
        return Ok(Some(path));
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let extra_dirs = EXTRA_SEARCH_DIRS.iter().map(PathBuf::from);
    Ok(path_dirs
        .into_iter()
        .chain(extra_dirs)
        .map(|dir| dir.join("mosquitto"))
        .find(|candidate| is_executable(candidate)))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

fn external_broker_from_env() -> anyhow::Result<Option<SocketAddr>> {
    let Some(value) = std::env::var_os(BROKER_ENV) else {
        return Ok(None);
    };
    let value = value
        .into_string()
        .map_err(|value| anyhow::anyhow!("{BROKER_ENV}={value:?} is not valid UTF-8"))?;
    let addr = value
        .to_socket_addrs()
        .with_context(|| format!("{BROKER_ENV}={value} is not a valid host:port"))?
        .next()
        .with_context(|| format!("{BROKER_ENV}={value} resolves to no address"))?;
    Ok(Some(addr))
}

/// Picks a free 127.0.0.1 port by binding port 0 and closing the listener again.
pub(super) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("failed to bind a free 127.0.0.1 port")?;
    Ok(listener.local_addr()?.port())
}

pub(super) async fn accepts_connections(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Reason that a started broker did not become ready.
#[derive(Debug)]
enum ReadyFailure {
    Exited(ExitStatus),
    TimedOut,
    Wait(std::io::Error),
}

impl fmt::Display for ReadyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyFailure::Exited(status) => {
                write!(f, "exited before accepting connections ({status})")
            }
            ReadyFailure::TimedOut => {
                write!(f, "did not accept connections within {READY_TIMEOUT:?}")
            }
            ReadyFailure::Wait(err) => write!(f, "could not be checked for exit: {err}"),
        }
    }
}

/// A mosquitto process and the temporary directory that contains its configuration,
/// persistence file and log.
struct MosquittoProcess {
    binary: PathBuf,
    directory: TempDir,
    child: Option<Child>,
}

impl MosquittoProcess {
    /// Creates the directory and writes the configuration for a broker on `addr`.
    fn create(binary: PathBuf, addr: SocketAddr) -> anyhow::Result<MosquittoProcess> {
        let directory = tempfile::Builder::new()
            .prefix("hubkit-mosquitto-")
            .tempdir()
            .context("failed to create a temporary directory for mosquitto")?;
        let process = MosquittoProcess {
            binary,
            directory,
            child: None,
        };
        let config = mosquitto_config(addr, process.directory.path(), &process.log_path());
        std::fs::write(process.config_path(), config).context("failed to write mosquitto.conf")?;
        Ok(process)
    }

    fn config_path(&self) -> PathBuf {
        self.directory.path().join("mosquitto.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.directory.path().join("mosquitto.log")
    }

    /// File for what mosquitto prints before its log file is open, such as config errors.
    fn output_path(&self) -> PathBuf {
        self.directory.path().join("mosquitto.out")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.output_path())
            .context("failed to open mosquitto.out")?;
        let errors = output.try_clone()?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .with_context(|| format!("failed to run {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self, addr: SocketAddr) -> Result<(), ReadyFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(ReadyFailure::Exited(status));
                    }
                    Ok(None) => {}
                    Err(err) => return Err(ReadyFailure::Wait(err)),
                }
            }
            if accepts_connections(addr).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ReadyFailure::TimedOut);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sends SIGTERM and waits for the exit, so that mosquitto writes its persistence file.
    async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = i32::try_from(child.id()).context("mosquitto's process id exceeds i32")?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).context("failed to send SIGTERM to mosquitto")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "mosquitto (pid {pid}) did not exit within {STOP_TIMEOUT:?} after SIGTERM and \
                     was killed; its persistence file may be incomplete. Log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        let mut log = read_lossy(&self.log_path());
        let output = read_lossy(&self.output_path());
        if !output.is_empty() {
            log.push_str("\n--- mosquitto stdout and stderr ---\n");
            log.push_str(&output);
        }
        log
    }

    fn failure_report(&self, addr: SocketAddr, failure: &ReadyFailure) -> String {
        format!(
            "mosquitto ({}) on {addr} {failure}. Config {}. Log:\n{}",
            self.binary.display(),
            self.config_path().display(),
            self.log()
        )
    }
}

fn read_lossy(path: &Path) -> String {
    match File::open(path) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut file, &mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Err(_) => String::new(),
    }
}

/// Returns a mosquitto 2.0 configuration for one test broker.
fn mosquitto_config(addr: SocketAddr, directory: &Path, log_path: &Path) -> String {
    // persistence_location needs the trailing slash because mosquitto appends the file
    // name to it as text.
    format!(
        "# Generated by hubkit-testkit for one test.\n\
         listener {port} {host}\n\
         allow_anonymous true\n\
         # Run as the current user: as root, mosquitto would otherwise switch to the\n\
         # mosquitto user, which cannot write this directory. Ignored when not root.\n\
         user root\n\
         persistence true\n\
         persistence_location {directory}/\n\
         persistence_file mosquitto.db\n\
         # Seconds between saves. SIGTERM also saves, which restart() relies on.\n\
         autosave_interval 1\n\
         max_queued_messages 100000\n\
         max_inflight_messages 20\n\
         max_packet_size {MAX_PACKET_SIZE}\n\
         log_dest file {log}\n\
         log_type all\n\
         connection_messages true\n\
         log_timestamp_format %Y-%m-%dT%H:%M:%S\n",
        port = addr.port(),
        host = addr.ip(),
        directory = directory.display(),
        log = log_path.display(),
    )
}
