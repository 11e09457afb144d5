//! The `[server]` section: its public types, defaults and validation.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::document::RawServerSection;
use crate::error::Report;
use crate::raw::{RawLimits, RawServer, RawTls};

/// Address the server listens on when `server.listen` is not set: `127.0.0.1:8443`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8443));

/// Data directory used when `server.data_dir` is not set, relative to the working
/// directory.
pub const DEFAULT_DATA_DIR: &str = "hubkit-data";

/// Minimum length of `server.admin_token`, in characters.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Settings of the HTTPS server, the admin API and the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Socket address to listen on.
    pub listen: SocketAddr,
    /// Directory of the database and the generated files, as written in the file, so a
    /// relative path resolves against the working directory of the process.
    pub data_dir: PathBuf,
    /// Bearer token of the admin API, if the file sets one.
    pub admin_token: Option<String>,
    /// Base URL used when printing webhook URLs, without a trailing `/`.
    pub public_url: Option<String>,
    /// Certificate source, or plain HTTP.
    pub tls: TlsConfig,
    /// Limits on requests and connections.
    pub limits: Limits,
    /// Settings of the SQLite store.
    pub store: StoreConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            admin_token: None,
            public_url: None,
            tls: TlsConfig::default(),
            limits: Limits::DEFAULT,
            store: StoreConfig::default(),
        }
    }
}

/// Source of the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsConfig {
    /// A certificate the server generates and keeps in its data directory.
    SelfSigned {
        /// Extra DNS names or IP addresses for the certificate's subject alternative names.
        hostnames: Vec<String>,
    },
    /// A certificate chain and private key read from PEM files.
    Files {
        /// PEM file with the certificate chain, leaf first.
        cert: PathBuf,
        /// PEM file with the private key.
        key: PathBuf,
    },
    /// Plain HTTP, for use behind a TLS-terminating proxy.
    Off,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::SelfSigned {
            hostnames: Vec::new(),
        }
    }
}

/// Value of `server.tls.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TlsMode {
    SelfSigned,
    Files,
    Off,
}

/// Limits on request bodies, connections and the time each step may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum request body size in bytes, unless a webhook sets its own.
    pub max_body_bytes: u64,
    /// Maximum size in bytes of a file received by a webhook, unless the webhook sets
    /// its own.
    pub max_file_bytes: u64,
    /// Maximum number of connections open at once.
    pub max_connections: usize,
    /// Time allowed to receive a request's headers.
    pub header_read_timeout: Duration,
    /// Time allowed to receive a request's body.
    pub body_read_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time a keep-alive connection may stay open without a request.
    pub idle_timeout: Duration,
    /// Time requests in flight get to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The limits used for keys the file leaves out.
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 1024 * 1024,
        max_file_bytes: 256 * 1024 * 1024,
        max_connections: 1024,
        header_read_timeout: Duration::from_millis(10_000),
        body_read_timeout: Duration::from_millis(30_000),
        tls_handshake_timeout: Duration::from_millis(10_000),
        idle_timeout: Duration::from_millis(60_000),
        shutdown_grace: Duration::from_millis(10_000),
    };

    /// Allowed values of `max_body_bytes`, server-wide or per webhook: 1 byte to 1 GiB.
    pub const BODY_BYTES_RANGE: RangeInclusive<u64> = 1..=1024 * 1024 * 1024;

    /// Allowed values of `max_file_bytes`, server-wide or per webhook: 1 byte to 1 TiB.
    pub const FILE_BYTES_RANGE: RangeInclusive<u64> = 1..=1 << 40;

    /// Allowed values of a webhook's `files.max_age_hours`: 1 hour to 100 years.
    pub const MAX_AGE_HOURS_RANGE: RangeInclusive<u64> = 1..=876_000;

    /// Allowed values of a webhook's `files.max_total_bytes`: 1 byte to 1 PiB.
    pub const TOTAL_BYTES_RANGE: RangeInclusive<u64> = 1..=1 << 50;

    /// Allowed values of `max_connections`.
    pub const CONNECTIONS_RANGE: RangeInclusive<u64> = 1..=1_000_000;

    /// Allowed values of the `_ms` timeouts: 1 millisecond to 24 hours.
    pub const TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=86_400_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Settings of the SQLite store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// SQLite `synchronous` level of the database.
    pub synchronous: Synchronous,
}

/// SQLite `synchronous` level: how often the database waits for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Waits for the disk at every commit, so an acknowledged record survives a power loss.
    #[default]
    Full,
    /// Waits for the disk less often. In WAL mode it waits only at checkpoints, so a
    /// power loss can roll back the last commits.
    Normal,
}

/// Validates the `[server]` section, recording every problem in `report`.
pub(crate) fn build(raw: RawServerSection, report: &mut Report<'_>) -> ServerConfig {
    let RawServerSection {
        top,
        tls,
        limits,
        store,
    } = raw;
    let mut server = ServerConfig::default();
    build_top(top, &mut server, report);
    if let Some(tls) = tls {
        server.tls = build_tls(tls, report);
    }
    if let Some(limits) = limits {
        server.limits = build_limits(&limits, report);
    }
    if let Some(store) = store {
        server.store.synchronous = store.synchronous.unwrap_or_default();
    }
    server
}

fn build_top(top: RawServer, server: &mut ServerConfig, report: &mut Report<'_>) {
    if let Some(listen) = top.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(address) => server.listen = address,
            Err(_) => report.error(
                listen.span(),
                "server.listen",
                format!(
                    "listen address {:?} is invalid; it must be an IP address and port, such as \"0.0.0.0:8443\" or \"[::]:8443\"",
                    listen.get_ref()
                ),
            ),
        }
    }
    if let Some(data_dir) = top.data_dir {
        if data_dir.get_ref().is_empty() {
            let message = "data_dir is empty; it must name a directory".to_owned();
            report.error(data_dir.span(), "server.data_dir", message);
        }
        server.data_dir = PathBuf::from(data_dir.into_inner());
    }
    if let Some(token) = top.admin_token {
        check_admin_token(&token, report);
        server.admin_token = Some(token.into_inner());
    }
    if let Some(url) = top.public_url {
        check_public_url(&url, report);
        server.public_url = Some(url.get_ref().trim_end_matches('/').to_owned());
    }
}

/// Checks the admin token's length and characters without ever showing its value.
fn check_admin_token(token: &Spanned<String>, report: &mut Report<'_>) {
    let length = token.get_ref().chars().count();
    if length < MIN_ADMIN_TOKEN_CHARS {
        let message = format!(
            "admin token is {length} characters; it must be at least {MIN_ADMIN_TOKEN_CHARS}"
        );
        report.error(token.span(), "server.admin_token", message);
    } else if !token.get_ref().bytes().all(|b| b.is_ascii_graphic()) {
        let message = "admin token contains a space, a control or a non-ASCII character; \
                       clients send it in an HTTP header, so it must be visible ASCII"
            .to_owned();
        report.error(token.span(), "server.admin_token", message);
    }
}

fn check_public_url(url: &Spanned<String>, report: &mut Report<'_>) {
    let text = url.get_ref();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let message = match rest {
        None => format!("public URL {text:?} is invalid; it must start with http:// or https://"),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("public URL {text:?} has no host")
        }
        Some(_) if text.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            format!("public URL {text:?} contains whitespace or a control character")
        }
        Some(_) => return,
    };
    report.error(url.span(), "server.public_url", message);
}

fn build_tls(raw: Spanned<RawTls>, report: &mut Report<'_>) -> TlsConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let mode = raw
        .mode
        .as_ref()
        .map_or(TlsMode::SelfSigned, |m| *m.get_ref());
    let mode_name = match mode {
        TlsMode::SelfSigned => "self-signed",
        TlsMode::Files => "files",
        TlsMode::Off => "off",
    };
    for (name, value) in [("cert", &raw.cert), ("key", &raw.key)] {
        match value {
            Some(path) if mode != TlsMode::Files => report.error(
                path.span(),
                &format!("server.tls.{name}"),
                format!("`{name}` is set but TLS mode is \"{mode_name}\"; it is read only in mode \"files\""),
            ),
            Some(path) if path.get_ref().is_empty() => report.error(
                path.span(),
                &format!("server.tls.{name}"),
                format!("`{name}` is empty; it must name a PEM file"),
            ),
            None if mode == TlsMode::Files => report.error(
                span.clone(),
                "server.tls",
                format!("TLS mode \"files\" needs `{name}`, the path of a PEM file"),
            ),
            _ => {}
        }
    }
    let hostnames = build_hostnames(raw.hostnames, mode, mode_name, report);

    match mode {
        TlsMode::SelfSigned => TlsConfig::SelfSigned { hostnames },
        TlsMode::Files => TlsConfig::Files {
            cert: path_of(raw.cert),
            key: path_of(raw.key),
        },
        TlsMode::Off => {
            let mode_span = raw.mode.map_or(span, |m| m.span());
            let message = "TLS is off, so hubkit serves plain HTTP; serve it behind a \
                           TLS-terminating proxy"
                .to_owned();
            report.warning(mode_span, "server.tls.mode", message);
            TlsConfig::Off
        }
    }
}

fn path_of(value: Option<Spanned<String>>) -> PathBuf {
    value
        .map(|v| PathBuf::from(v.into_inner()))
        .unwrap_or_default()
}

fn build_hostnames(
    raw: Option<Spanned<Vec<Spanned<String>>>>,
    mode: TlsMode,
    mode_name: &str,
    report: &mut Report<'_>,
) -> Vec<String> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    if mode != TlsMode::SelfSigned {
        let message = format!(
            "`hostnames` is set but TLS mode is \"{mode_name}\"; it is read only in mode \"self-signed\""
        );
        report.error(raw.span(), "server.tls.hostnames", message);
        return Vec::new();
    }
    let mut hostnames = Vec::new();
    for (index, hostname) in raw.into_inner().into_iter().enumerate() {
        if !is_hostname(hostname.get_ref()) {
            let message = format!(
                "hostname {:?} is invalid; it must be a DNS name (letters, digits, `-` and `.`) or an IP address",
                hostname.get_ref()
            );
            report.error(
                hostname.span(),
                &format!("server.tls.hostnames[{index}]"),
                message,
            );
        }
        hostnames.push(hostname.into_inner());
    }
    hostnames
}

/// Returns whether `name` is an IP address or a DNS name of 1 to 253 characters whose
/// labels are 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen.
fn is_hostname(name: &str) -> bool {
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn build_limits(raw: &RawLimits, report: &mut Report<'_>) -> Limits {
    let defaults = Limits::DEFAULT;
    let field = |name: &str| format!("server.limits.{name}");
    let timeout =
        |value: &Option<Spanned<i64>>, name: &str, default: Duration, report: &mut Report<'_>| {
            check_range(value, &Limits::TIMEOUT_MS_RANGE, &field(name), report)
                .map_or(default, Duration::from_millis)
        };
    let max_connections = check_range(
        &raw.max_connections,
        &Limits::CONNECTIONS_RANGE,
        &field("max_connections"),
        report,
    )
    .and_then(|n| usize::try_from(n).ok());

    Limits {
        max_body_bytes: check_range(
            &raw.max_body_bytes,
            &Limits::BODY_BYTES_RANGE,
            &field("max_body_bytes"),
            report,
        )
        .unwrap_or(defaults.max_body_bytes),
        max_file_bytes: check_range(
            &raw.max_file_bytes,
            &Limits::FILE_BYTES_RANGE,
            &field("max_file_bytes"),
            report,
        )
        .unwrap_or(defaults.max_file_bytes),
        max_connections: max_connections.unwrap_or(defaults.max_connections),
        header_read_timeout: timeout(
            &raw.header_read_timeout_ms,
            "header_read_timeout_ms",
            defaults.header_read_timeout,
            report,
        ),
        body_read_timeout: timeout(
            &raw.body_read_timeout_ms,
            "body_read_timeout_ms",
            defaults.body_read_timeout,
            report,
        ),
        tls_handshake_timeout: timeout(
            &raw.tls_handshake_timeout_ms,
            "tls_handshake_timeout_ms",
            defaults.tls_handshake_timeout,
            report,
        ),
        idle_timeout: timeout(
            &raw.idle_timeout_ms,
            "idle_timeout_ms",
            defaults.idle_timeout,
            report,
        ),
        shutdown_grace: timeout(
            &raw.shutdown_grace_ms,
            "shutdown_grace_ms",
            defaults.shutdown_grace,
            report,
        ),
    }
}

/// Returns the value if it is set and within `range`, and records an error if it is
/// out of range.
pub(crate) fn check_range(
    value: &Option<Spanned<i64>>,
    range: &RangeInclusive<u64>,
    field: &str,
    report: &mut Report<'_>,
) -> Option<u64> {
    let value = value.as_ref()?;
    let number = *value.get_ref();
    match u64::try_from(number) {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            let key = field.rsplit('.').next().unwrap_or(field);
            let message = format!(
                "{key} is {number}; it must be {} to {}",
                range.start(),
                range.end()
            );
            report.error(value.span(), field, message);
            None
        }
    }
}
