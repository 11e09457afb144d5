//! The file's structure as serde reads it, before validation. Fields that are validated
//! keep their byte span so errors can point at them.

use std::collections::BTreeMap;

use hubkit_endpoints::PayloadFormat;
use hubkit_model::LayerKind;
use serde::Deserialize;
use toml::Spanned;

use crate::server::{Synchronous, TlsMode};

/// The `[server]` table without its sub-tables, which are read separately.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of server settings")]
pub(crate) struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub data_dir: Option<Spanned<String>>,
    pub admin_token: Option<Spanned<String>>,
    pub public_url: Option<Spanned<String>>,
}

/// The `[server.tls]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of TLS settings")]
pub(crate) struct RawTls {
    pub mode: Option<Spanned<TlsMode>>,
    pub hostnames: Option<Spanned<Vec<Spanned<String>>>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// The `[server.limits]` table. Integers are read as `i64`, the TOML integer type, so
/// that a negative value gets the range message instead of a type error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of limits")]
pub(crate) struct RawLimits {
    pub max_body_bytes: Option<Spanned<i64>>,
    pub max_file_bytes: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub header_read_timeout_ms: Option<Spanned<i64>>,
    pub body_read_timeout_ms: Option<Spanned<i64>>,
    pub tls_handshake_timeout_ms: Option<Spanned<i64>>,
    pub idle_timeout_ms: Option<Spanned<i64>>,
    pub shutdown_grace_ms: Option<Spanned<i64>>,
}

/// The `[server.store]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of store settings")]
pub(crate) struct RawStore {
    pub synchronous: Option<Synchronous>,
}

/// One `[[areas]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of an area")]
pub(crate) struct RawArea {
    pub name: Spanned<String>,
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    pub layers: Vec<Spanned<RawLayer>>,
}

/// One `[[areas.layers]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of a layer")]
pub(crate) struct RawLayer {
    pub name: Spanned<String>,
    pub kind: LayerKind,
    pub id: Option<Spanned<String>>,
}

/// One `[[webhooks]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of a webhook")]
pub(crate) struct RawWebhook {
    pub name: Spanned<String>,
    pub custom_path: Spanned<String>,
    pub payload_format: PayloadFormat,
    pub enabled: Option<bool>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub auth: Option<Spanned<RawAuth>>,
    pub files: Option<Spanned<RawFiles>>,
}

/// The `files` table of a webhook.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with the keys of webhook file reception"
)]
pub(crate) struct RawFiles {
    pub enabled: Option<bool>,
    pub max_bytes: Option<Spanned<i64>>,
    pub max_age_hours: Option<Spanned<i64>>,
    pub max_total_bytes: Option<Spanned<i64>>,
}

/// The `auth` table of a webhook. It is a struct with a `type` key rather than an
/// internally tagged enum because serde buffers tagged enums, which loses the spans.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with the keys of webhook authentication"
)]
pub(crate) struct RawAuth {
    #[serde(rename = "type")]
    pub kind: AuthType,
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
}

/// Value of the `type` key of a webhook's `auth` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthType {
    None,
    Basic,
}

/// One `[[brokers]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of a broker")]
pub(crate) struct RawBroker {
    pub name: Spanned<String>,
    pub url: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub keep_alive_secs: Option<Spanned<i64>>,
    pub clean_session: Option<Spanned<bool>>,
    pub max_packet_bytes: Option<Spanned<i64>>,
    pub tls: Option<Spanned<RawBrokerTls>>,
}

/// The `tls` table of a broker.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of broker TLS")]
pub(crate) struct RawBrokerTls {
    pub ca_file: Option<Spanned<String>>,
    pub cert_file: Option<Spanned<String>>,
    pub key_file: Option<Spanned<String>>,
    pub accept_invalid_certs: Option<Spanned<bool>>,
}

/// One `[[topics]]` table.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with the keys of a topic entry"
)]
pub(crate) struct RawTopic {
    pub name: Spanned<String>,
    pub broker: Spanned<String>,
    pub filter: Spanned<String>,
    pub qos: Option<Spanned<i64>>,
    pub payload_format: Option<Spanned<TopicFormat>>,
    pub timeout_secs: Option<Spanned<i64>>,
}

/// Value of a topic entry's `payload_format` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TopicFormat {
    Json,
    String,
}

/// One `[[cameras]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of a camera")]
pub(crate) struct RawCamera {
    pub name: Spanned<String>,
    pub mac: Spanned<String>,
    pub format: Spanned<String>,
    pub enabled: Option<bool>,
    pub auth: Option<Spanned<RawAuth>>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub max_age_hours: Option<Spanned<i64>>,
    pub max_total_bytes: Option<Spanned<i64>>,
}

/// The `[ipro]` table: settings shared by every camera.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of i-PRO camera settings")]
pub(crate) struct RawIpro {
    pub capture: Option<bool>,
    pub capture_dir: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<i64>>,
}

/// One `[[bindings]]` table: exactly one of `webhook`, `topic` and `camera` names the
/// device.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of a binding")]
pub(crate) struct RawBinding {
    pub webhook: Option<Spanned<String>>,
    pub topic: Option<Spanned<String>>,
    pub camera: Option<Spanned<String>>,
    pub area: Spanned<String>,
    pub layer: Spanned<String>,
    pub enabled: Option<bool>,
}

/// One `[[actions]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of an action")]
pub(crate) struct RawAction {
    pub name: Spanned<String>,
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
}

/// One `[[actions.steps]]` table. It has the keys of every component, each optional,
/// rather than being an internally tagged enum, because serde buffers tagged enums,
/// which loses the spans. The keys are checked against the component afterwards.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with the keys of an action step"
)]
pub(crate) struct RawStep {
    pub component: Spanned<String>,
    pub method: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub headers: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    pub body: Option<Spanned<String>>,
    pub content_type: Option<Spanned<String>>,
    pub timeout_ms: Option<Spanned<i64>>,
    pub retries: Option<Spanned<i64>>,
    pub backoff_ms: Option<Spanned<i64>>,
    pub backoff_max_ms: Option<Spanned<i64>>,
    pub ca_file: Option<Spanned<String>>,
    pub broker: Option<Spanned<String>>,
    pub topic: Option<Spanned<String>>,
    pub qos: Option<Spanned<i64>>,
    pub retain: Option<Spanned<bool>>,
    pub payload: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub mode: Option<Spanned<RawWriteMode>>,
    pub content: Option<Spanned<String>>,
    pub message: Option<Spanned<String>>,
    pub level: Option<Spanned<RawLogLevel>>,
    pub duration_ms: Option<Spanned<i64>>,
}

/// Value of a `file_write` step's `mode` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawWriteMode {
    Append,
    Overwrite,
}

/// Value of a `log` step's `level` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawLogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// One `[[triggers]]` table: a layer trigger with `area` and `layer`, or a timer
/// trigger with `cron`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with the keys of a trigger")]
pub(crate) struct RawTrigger {
    pub name: Spanned<String>,
    pub enabled: Option<bool>,
    pub action: Spanned<String>,
    pub area: Option<Spanned<String>>,
    pub layer: Option<Spanned<String>>,
    pub device: Option<Spanned<String>>,
    pub field: Option<Spanned<String>>,
    pub operator: Option<Spanned<String>>,
    /// Read as any TOML value so that a wrong type gets a message that lists the
    /// accepted ones.
    pub value: Option<Spanned<toml::Value>>,
    pub combine: Option<Spanned<RawCombination>>,
    pub cron: Option<Spanned<String>>,
    pub utc_offset: Option<Spanned<String>>,
    pub active_hours: Option<Spanned<String>>,
    pub interval_ms: Option<Spanned<i64>>,
    pub threshold: Option<Spanned<bool>>,
    pub skip_if_running: Option<bool>,
    pub properties: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub extra: Vec<Spanned<RawExtra>>,
}

/// Value of a trigger's `combine` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawCombination {
    And,
    Or,
}

/// One `[[triggers.extra]]` table: a condition on the latest record of another layer.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with the keys of an extra-layer condition"
)]
pub(crate) struct RawExtra {
    pub area: Spanned<String>,
    pub layer: Spanned<String>,
    pub field: Option<Spanned<String>>,
    pub operator: Option<Spanned<String>>,
    pub value: Option<Spanned<toml::Value>>,
    pub max_age_ms: Spanned<i64>,
}
