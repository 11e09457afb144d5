//! Checked settings of brokers and topic entries, as the configuration produces them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::TopicFilter;

/// Default port of `mqtt://` brokers.
pub const DEFAULT_PORT: u16 = 1883;
/// Default port of `mqtts://` brokers.
pub const DEFAULT_TLS_PORT: u16 = 8883;
/// Default maximum size of a received packet: 1 MiB.
pub const DEFAULT_MAX_PACKET_BYTES: usize = 1024 * 1024;
/// Largest packet MQTT can encode: a remaining length of 268,435,455 bytes plus a
/// five-byte fixed header.
pub const PROTOCOL_MAX_PACKET_BYTES: usize = 268_435_460;
/// Default keep-alive interval.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);
/// Default timeout of a topic entry.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Quality of service of a subscription or message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Qos {
    /// At most once.
    AtMostOnce,
    /// At least once.
    AtLeastOnce,
    /// Exactly once.
    ExactlyOnce,
}

impl Qos {
    /// Returns the QoS of a level number 0, 1 or 2.
    pub fn from_level(level: u8) -> Option<Qos> {
        match level {
            0 => Some(Qos::AtMostOnce),
            1 => Some(Qos::AtLeastOnce),
            2 => Some(Qos::ExactlyOnce),
            _ => None,
        }
    }

    /// Returns the level number: 0, 1 or 2.
    pub fn level(self) -> u8 {
        match self {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        }
    }
}

impl fmt::Display for Qos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.level())
    }
}

/// The rule that turns a topic entry's payloads into a record's `Data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataFormat {
    /// One JSON value.
    Json,
    /// UTF-8 text, stored as a JSON string.
    String,
}

impl DataFormat {
    /// Returns the name used in configuration files and records: `json` or `string`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Json => "json",
            DataFormat::String => "string",
        }
    }
}

/// A broker's host and port, and whether the connection uses TLS.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BrokerAddress {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether the URL's scheme is `mqtts`.
    pub tls: bool,
}

/// A broker URL that cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// The URL has no `mqtt://` or `mqtts://` scheme.
    #[error("broker URL {url:?} must start with mqtt:// or mqtts://, as in mqtt://127.0.0.1")]
    Scheme {
        /// The URL.
        url: String,
    },
    /// The URL has no host.
    #[error("broker URL {url:?} has no host; write it as mqtt://<host>")]
    MissingHost {
        /// The URL.
        url: String,
    },
    /// The URL has a path, query, user or other part that a broker URL cannot have.
    #[error(
        "broker URL {url:?} may contain only a scheme, a host and a port; \
         set username, password and port with their own keys"
    )]
    ExtraParts {
        /// The URL.
        url: String,
    },
    /// The port in the URL is not a number from 1 to 65535.
    #[error("broker URL {url:?} has port {port:?}; a port must be a number from 1 to 65535")]
    InvalidPort {
        /// The URL.
        url: String,
        /// The port text.
        port: String,
    },
    /// The host is not an IP address or a valid host name.
    #[error("broker URL {url:?} has host {host:?}, which {rule}")]
    InvalidHost {
        /// The URL.
        url: String,
        /// The host.
        host: String,
        /// The rule the host breaks.
        rule: &'static str,
    },
    /// The URL's port and the `port` key disagree.
    #[error("broker URL {url:?} has port {in_url}, but the port key is {key}; give it once")]
    ConflictingPort {
        /// The URL.
        url: String,
        /// Port in the URL.
        in_url: u16,
        /// Port of the `port` key.
        key: u16,
    },
}

impl BrokerAddress {
    /// Parses a broker URL such as `mqtt://127.0.0.1` or `mqtts://broker.example:8884`.
    /// `port` is the separate port setting; without either port, the scheme's default
    /// (1883 or 8883) applies.
    ///
    /// # Errors
    ///
    /// Returns an [`AddressError`] naming the URL and the rule it breaks.
    pub fn parse(url: &str, port: Option<u16>) -> Result<BrokerAddress, AddressError> {
        let lower = url.to_ascii_lowercase();
        let (tls, rest) = if lower.starts_with("mqtts://") {
            (true, &url["mqtts://".len()..])
        } else if lower.starts_with("mqtt://") {
            (false, &url["mqtt://".len()..])
        } else {
            return Err(AddressError::Scheme {
                url: url.to_owned(),
            });
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) || rest.chars().any(char::is_whitespace) {
            return Err(AddressError::ExtraParts {
                url: url.to_owned(),
            });
        }
        if !rest.starts_with('[') && rest.matches(':').count() > 1 {
            return Err(AddressError::InvalidHost {
                url: url.to_owned(),
                host: rest.to_owned(),
                rule: "looks like an IPv6 address; write it in brackets, as in mqtt://[::1]",
            });
        }
        let bracketed = rest.starts_with('[');
        let (host, url_port) = split_port(rest, url)?;
        if host.is_empty() {
            return Err(AddressError::MissingHost {
                url: url.to_owned(),
            });
        }
        if let Err(rule) = check_host(host, bracketed) {
            return Err(AddressError::InvalidHost {
                url: url.to_owned(),
                host: host.to_owned(),
                rule,
            });
        }
        let port = match (url_port, port) {
            (Some(in_url), Some(key)) if in_url != key => {
                return Err(AddressError::ConflictingPort {
                    url: url.to_owned(),
                    in_url,
                    key,
                });
            }
            (Some(port), _) | (None, Some(port)) => port,
            (None, None) if tls => DEFAULT_TLS_PORT,
            (None, None) => DEFAULT_PORT,
        };
        Ok(BrokerAddress {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Checks a host: an IPv6 address inside brackets, an IPv4 address, or a host name of
/// labels of letters, digits, `-` and `_`.
fn check_host(host: &str, bracketed: bool) -> Result<(), &'static str> {
    if bracketed {
        return host
            .parse::<std::net::Ipv6Addr>()
            .map(drop)
            .map_err(|_| "is not a valid IPv6 address");
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if host.len() > 253 {
        return Err("is longer than 253 characters");
    }
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(host).split('.').collect();
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err("has an empty label or one longer than 63 characters");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("contains a character other than letters, digits, `-`, `_` and `.`");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label that starts or ends with `-`");
        }
    }
    if labels
        .iter()
        .all(|label| label.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("is neither a valid IPv4 address nor a host name");
    }
    Ok(())
}

/// Splits `host[:port]` or `[ipv6][:port]`, returning the host without brackets.
fn split_port<'a>(rest: &'a str, url: &str) -> Result<(&'a str, Option<u16>), AddressError> {
    let (host, port_text) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(AddressError::ExtraParts {
                url: url.to_owned(),
            });
        };
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => {
                return Err(AddressError::ExtraParts {
                    url: url.to_owned(),
                });
            }
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port_text {
        None => None,
        Some(text) => match text.parse::<u16>() {
            Ok(port)
                if port > 0
                    && text.bytes().all(|b| b.is_ascii_digit())
                    && !text.starts_with('0') =>
            {
                Some(port)
            }
            _ => {
                return Err(AddressError::InvalidPort {
                    url: url.to_owned(),
                    port: text.to_owned(),
                });
            }
        },
    };
    Ok((host, port))
}

/// TLS settings of an `mqtts://` broker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BrokerTls {
    /// PEM file of the certificate authorities to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate chain and its private key.
    pub client_auth: Option<(PathBuf, PathBuf)>,
    /// Whether to accept any server certificate, including self-signed ones. The
    /// handshake still checks that the server has the certificate's private key.
    pub accept_invalid_certs: bool,
}

/// A broker connection's settings. Two equal settings describe the same connection, so
/// a reload reconnects a broker only when its settings changed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BrokerSettings {
    /// Name in the configuration.
    pub name: String,
    /// Host, port and scheme.
    pub address: BrokerAddress,
    /// TLS settings, used when the address is `mqtts`.
    pub tls: BrokerTls,
    /// User name for the broker.
    pub username: Option<String>,
    /// Password for the broker.
    pub password: Option<String>,
    /// Client identifier; `None` derives one from the hub id and the broker name.
    pub client_id: Option<String>,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Whether the broker discards the session at each connect. With `false` the broker
    /// keeps subscriptions and queues QoS 1 and 2 messages while the hub is away.
    pub clean_session: bool,
    /// Largest packet accepted from the broker, in bytes.
    pub max_packet_bytes: usize,
}

impl fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerSettings")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_id", &self.client_id)
            .field("keep_alive", &self.keep_alive)
            .field("clean_session", &self.clean_session)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .finish()
    }
}

impl BrokerSettings {
    /// Returns the client identifier to connect with: the configured one, or
    /// `hubkit-<hub id>-<broker name>` with characters outside `[0-9A-Za-z_-]` replaced
    /// by `_` and cut to 64 bytes, which stays the same across restarts of one hub.
    pub fn effective_client_id(&self, hub_id: &str) -> String {
        if let Some(id) = &self.client_id {
            return id.clone();
        }
        let raw = format!("hubkit-{hub_id}-{}", self.name);
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect()
    }
}

/// A subscription of one broker whose messages become records of the layers its
/// bindings name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopicEntry {
    /// Name in the configuration; records carry it as `PhysicalDeviceName`.
    pub name: String,
    /// Name of the broker.
    pub broker: String,
    /// The checked filter.
    pub filter: TopicFilter,
    /// Requested quality of service.
    pub qos: Qos,
    /// The payload format that turns payloads into `Data`.
    pub format: DataFormat,
    /// Maximum time from the start of a connection attempt to the broker's SUBACK for
    /// this entry; see [`crate::BrokerTask`].
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_defaults_port_by_scheme() {
        let plain = BrokerAddress::parse("mqtt://127.0.0.1", None).expect("valid");
        assert_eq!(plain.port, 1883);
        assert!(!plain.tls);
        let tls = BrokerAddress::parse("MQTTS://broker.example/", None).expect("valid");
        assert_eq!(tls.port, 8883);
        assert!(tls.tls);
        assert_eq!(tls.host, "broker.example");
    }

    #[test]
    fn address_takes_port_from_url_or_key() {
        let url = BrokerAddress::parse("mqtt://h:1884", None).expect("valid");
        assert_eq!(url.port, 1884);
        let key = BrokerAddress::parse("mqtt://h", Some(1885)).expect("valid");
        assert_eq!(key.port, 1885);
        let both = BrokerAddress::parse("mqtt://h:1886", Some(1886)).expect("valid");
        assert_eq!(both.port, 1886);
        let ipv6 = BrokerAddress::parse("mqtt://[::1]:1887", None).expect("valid");
        assert_eq!(ipv6.host, "::1");
        assert_eq!(ipv6.port, 1887);
        assert_eq!(ipv6.to_string(), "mqtt://[::1]:1887");
        let name = BrokerAddress::parse("mqtt://broker_1.plant.local.", None).expect("valid");
        assert_eq!(name.host, "broker_1.plant.local.");
    }

    #[test]
    fn address_rejects_bad_urls() {
        let cases = [
            ("tcp://h", "must start with mqtt://"),
            ("127.0.0.1", "must start with mqtt://"),
            ("mqtt://", "has no host"),
            ("mqtt://:1883", "has no host"),
            ("mqtt://h/path", "only a scheme, a host and a port"),
            ("mqtt://user:pw@h", "only a scheme, a host and a port"),
            ("mqtt://h:0", "has port \"0\""),
            ("mqtt://h:99999", "has port \"99999\""),
            ("mqtt://h:x", "has port \"x\""),
            ("mqtt://::1", "write it in brackets"),
            ("mqtt://[::g]", "not a valid IPv6 address"),
            (
                "mqtt://1.2.3.4.5",
                "neither a valid IPv4 address nor a host name",
            ),
            (
                "mqtt://300.1.1.1",
                "neither a valid IPv4 address nor a host name",
            ),
            ("mqtt://a..b", "empty label"),
            ("mqtt://-a.b", "starts or ends with `-`"),
            ("mqtt://a*b", "contains a character other than"),
            ("mqtt://h:+1883", "has port \"+1883\""),
            ("mqtt://h:01883", "has port \"01883\""),
        ];
        for (url, expected) in cases {
            let err = BrokerAddress::parse(url, None).expect_err(url);
            assert!(err.to_string().contains(expected), "{url}: {err}");
        }
        let err = BrokerAddress::parse("mqtt://h:1884", Some(1883)).expect_err("conflict");
        assert!(matches!(err, AddressError::ConflictingPort { .. }), "{err}");
    }

    #[test]
    fn client_id_is_derived_and_sanitised() {
        let settings = BrokerSettings {
            name: "main broker/1".into(),
            address: BrokerAddress::parse("mqtt://h", None).expect("valid"),
            tls: BrokerTls::default(),
            username: None,
            password: Some("secret".into()),
            client_id: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            clean_session: false,
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
        };
        assert_eq!(
            settings.effective_client_id("a1b2c3"),
            "hubkit-a1b2c3-main_broker_1"
        );
        assert!(!format!("{settings:?}").contains("secret"));
        let fixed = BrokerSettings {
            client_id: Some("plant-7".into()),
            ..settings
        };
        assert_eq!(fixed.effective_client_id("a1b2c3"), "plant-7");
    }
}
