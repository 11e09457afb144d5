//! hubkitd: receives webhooks and i-PRO camera events over HTTPS and messages from MQTT
//! brokers, stores them as layer data in SQLite and serves them through an admin API.
//! The `hubkit-server` crate does the work. This binary parses arguments, sets up logging,
//! loads the configuration, runs the hub and handles signals: SIGHUP reloads, SIGINT and
//! SIGTERM shut down gracefully.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hubkit_config::{Config, TlsConfig};
use hubkit_model::DeviceRef;
use hubkit_server::{ADMIN_TOKEN_ENV, Hub, HubOptions, TokenSource, WEBHOOK_PREFIX, error_chain};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Receive webhooks and i-PRO camera events over HTTPS and MQTT messages, and store them
/// as layer data.
#[derive(Parser, Debug)]
#[command(version, about, subcommand_negates_reqs = true)]
struct Args {
    /// Configuration file (TOML) to run with.
    #[arg(long, value_name = "FILE", required = true)]
    config: Option<PathBuf>,

    /// Address and port to listen on, such as 0.0.0.0:8443; overrides server.listen.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Folder for the database, certificates and admin token; overrides server.data_dir.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a configuration file, print every error and warning, and exit.
    CheckConfig {
        /// Configuration file (TOML) to check.
        file: PathBuf,
    },
    /// Read a password (from the terminal without echo, or one line of standard input) and
    /// print its argon2id hash for a webhook's or camera's `password` setting.
    HashPassword,
    /// Print the URL to enter in each camera of a configuration file, and exit.
    CameraUrls {
        /// Configuration file (TOML) whose cameras to list.
        file: PathBuf,
        /// Address cameras reach the hub at, such as https://192.168.1.10:8443; defaults
        /// to server.public_url, then to server.listen.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::CheckConfig { file }) => check_config(file),
        Some(Command::HashPassword) => hash_password(),
        Some(Command::CameraUrls { file, base_url }) => camera_urls(file, base_url.as_deref()),
        None => run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hubkitd: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    match hubkit_config::load(file) {
        Ok(config) => {
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            // Files mode only reads; self-signed mode would write a certificate.
            if matches!(config.server.tls, TlsConfig::Files { .. })
                && let Err(err) = hubkit_server::tls::setup(
                    &config.server.tls,
                    &config.server.data_dir,
                    config.server.listen,
                )
            {
                let err = anyhow::Error::new(err);
                eprintln!("{}: invalid TLS files: {err:#}", file.display());
                return Ok(ExitCode::FAILURE);
            }
            let mut tls_failed = false;
            for broker in config.brokers.iter().filter(|b| b.address.tls) {
                if let Err(err) = hubkit_mqtt::check_tls(&broker.tls) {
                    eprintln!(
                        "{}: broker {:?}: invalid TLS files: {err}",
                        file.display(),
                        broker.name
                    );
                    tls_failed = true;
                }
            }
            if tls_failed {
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "{}: valid ({}, {}, {}, {}, {}, {}, {}, {})",
                file.display(),
                count(config.webhooks.len(), "webhook"),
                count(config.brokers.len(), "broker"),
                count(config.topics.len(), "topic entry"),
                count(config.cameras.len(), "camera"),
                count(config.topology.areas().len(), "area"),
                count(config.topology.bindings().len(), "binding"),
                count(config.actions.len(), "action"),
                count(config.triggers.len(), "trigger")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Formats `n` with `noun`, in the plural unless `n` is 1.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if let Some(stem) = noun.strip_suffix("ry") {
        format!("{n} {stem}ries")
    } else {
        format!("{n} {noun}s")
    }
}

fn camera_urls(file: &Path, base_url: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = match hubkit_config::load(file) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(base) = base_url
        && !is_http_url(base)
    {
        bail!(
            "--base-url {base:?} is invalid: it must start with https:// or http://, such as \
             https://192.168.1.10:8443"
        );
    }
    let base = match base_url.or(config.server.public_url.as_deref()) {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let scheme = if matches!(config.server.tls, TlsConfig::Off) {
                "http"
            } else {
                "https"
            };
            let listen = config.server.listen;
            if listen.ip().is_unspecified() {
                eprintln!(
                    "note: server.listen is {listen}, which is no address a camera can reach; \
                     the URLs below say HUB-ADDRESS, so replace it, or pass --base-url or set \
                     server.public_url"
                );
                format!("{scheme}://HUB-ADDRESS:{}", listen.port())
            } else if listen.is_ipv6() {
                format!("{scheme}://[{}]:{}", listen.ip(), listen.port())
            } else {
                format!("{scheme}://{listen}")
            }
        }
    };
    if config.cameras.is_empty() {
        eprintln!("{}: no cameras are configured", file.display());
    }
    for camera in &config.cameras {
        let device = DeviceRef::Camera(camera.name.clone());
        let state = device_state(&config, &device, camera.enabled);
        println!(
            "camera {:?} ({}, {}{state}): {base}{}",
            camera.name,
            camera.mac,
            camera.format,
            camera.url_path()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns whether `text` starts with `https://` or `http://`, in any case, and names a
/// host after it.
fn is_http_url(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let known = scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http");
    known && !rest.trim_start_matches('/').is_empty() && !rest.starts_with('/')
}

/// Returns the note that follows a device's settings in the lines printed at start and
/// by `camera-urls`: whether it is disabled or records nothing.
fn device_state(config: &Config, device: &DeviceRef, enabled: bool) -> &'static str {
    if !enabled {
        ", disabled"
    } else if config.topology.layers_for(device).is_empty() {
        ", not bound to an enabled layer"
    } else {
        ""
    }
}

fn hash_password() -> anyhow::Result<ExitCode> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("failed to read password")?;
        let second =
            rpassword::prompt_password("Repeat password: ").context("failed to read password")?;
        if first != second {
            bail!("the two passwords differ; run hash-password again");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("failed to read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    hubkit_endpoints::validate_clear_password(&password)?;
    println!("{}", hubkit_endpoints::hash_password(&password)?);
    Ok(ExitCode::SUCCESS)
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    init_tracing();
    let path = args
        .config
        .clone()
        .context("--config FILE is required to run")?;
    let config = load_config(&path, args).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let result = runtime.block_on(serve(config, &path, args));
    // Idle blocking-pool threads would otherwise keep the process alive for a while.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result?;
    Ok(ExitCode::SUCCESS)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Loads the file and applies the command-line overrides.
fn load_config(path: &Path, args: &Args) -> Result<Config, hubkit_config::ConfigErrors> {
    let mut config = hubkit_config::load(path)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(data_dir) = &args.data_dir {
        config.server.data_dir = data_dir.clone();
    }
    Ok(config)
}

async fn serve(config: Config, path: &Path, args: &Args) -> anyhow::Result<()> {
    for warning in &config.warnings {
        warn!("{warning}");
    }
    // Watch the signals before announcing the hub: until then SIGHUP would still have its
    // default action and end the process.
    let mut hangup = signal(SignalKind::hangup()).context("failed to watch SIGHUP")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;

    let grace = config.server.limits.shutdown_grace;
    let options = HubOptions {
        admin_token_env: std::env::var(ADMIN_TOKEN_ENV).ok(),
    };
    let hub = Hub::start(config, options)
        .await
        .context("failed to start hubkitd")?;
    announce(&hub);

    loop {
        tokio::select! {
            _ = hangup.recv() => reload(&hub, path, args).await,
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    info!("shutting down");
    hub.shutdown(grace).await;
    Ok(())
}

fn announce(hub: &Hub) {
    let config = hub.config();
    let fingerprint = hub.tls_fingerprint();
    info!(
        url = %hub.base_url(),
        tls.fingerprint_sha256 = fingerprint.as_deref().unwrap_or("none (TLS off)"),
        data_dir = %config.server.data_dir.display(),
        "hubkitd listening"
    );
    if let Some(fingerprint) = fingerprint {
        println!("hubkitd listening on {}", hub.base_url());
        println!("certificate SHA-256 fingerprint: {fingerprint}");
    } else {
        println!("hubkitd listening on {} (TLS off)", hub.base_url());
    }
    match hub.admin_token().source() {
        TokenSource::Environment => info!("admin token from {ADMIN_TOKEN_ENV}"),
        TokenSource::Config => info!("admin token from server.admin_token"),
        TokenSource::File(file) => {
            info!(file = %file.display(), "admin token in file");
            println!("admin token file: {}", file.display());
        }
    }
    let base = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| hub.base_url().to_owned());
    for webhook in &config.webhooks {
        let device = DeviceRef::Webhook(webhook.name.clone());
        let state = device_state(&config, &device, webhook.enabled);
        println!(
            "webhook {:?} ({}{state}): {}{WEBHOOK_PREFIX}{}",
            webhook.name,
            webhook.format.as_str(),
            base.trim_end_matches('/'),
            webhook.custom_path
        );
    }
    for camera in &config.cameras {
        let device = DeviceRef::Camera(camera.name.clone());
        let state = device_state(&config, &device, camera.enabled);
        println!(
            "camera {:?} ({}, {}{state}): {}{}",
            camera.name,
            camera.mac,
            camera.format,
            base.trim_end_matches('/'),
            camera.url_path()
        );
    }
    for entry in &config.topics {
        let device = DeviceRef::MqttTopic(entry.name.clone());
        let state = device_state(&config, &device, true);
        let address = config
            .brokers
            .iter()
            .find(|broker| broker.name == entry.broker)
            .map(|broker| broker.address.to_string())
            .unwrap_or_default();
        println!(
            "topic entry {:?} (QoS {}, {}{state}): {} on broker {:?} at {address}",
            entry.name,
            entry.qos,
            entry.format.as_str(),
            entry.filter.subscription(),
            entry.broker
        );
    }
}

async fn reload(hub: &Hub, path: &Path, args: &Args) {
    info!(file = %path.display(), "SIGHUP received; reloading the configuration");
    let config = match load_config(path, args) {
        Ok(config) => config,
        Err(errors) => {
            hub.count_rejected_reload();
            for error in errors.errors() {
                error!("configuration rejected, the old one stays in force: {error}");
            }
            return;
        }
    };
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let fingerprint = hub.tls_fingerprint();
    match hub.reload(config).await {
        Ok(warnings) => {
            for warning in warnings {
                warn!("{warning}");
            }
            info!("configuration reloaded");
            let reloaded = hub.tls_fingerprint();
            if reloaded != fingerprint {
                info!(
                    tls.fingerprint_sha256 = reloaded.as_deref().unwrap_or("none"),
                    "new TLS certificate in use"
                );
            }
        }
        Err(err) => error!(
            error = %error_chain(&err),
            "configuration rejected, the old one stays in force"
        ),
    }
}
