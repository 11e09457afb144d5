//! The `[[brokers]]` and `[[topics]]` sections, checked into [`BrokerSettings`] and
//! [`TopicEntry`]s.

use std::collections::{HashMap, HashSet};
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

use hubkit_model::{DeviceRef, Topology};
use hubkit_mqtt::{
    BrokerAddress, BrokerSettings, BrokerTls, DEFAULT_KEEP_ALIVE, DEFAULT_MAX_PACKET_BYTES,
    DEFAULT_TIMEOUT, DataFormat, Qos, TopicEntry, TopicFilter,
};
use toml::Spanned;

use crate::document::Item;
use crate::error::Report;
use crate::raw::{RawBroker, RawBrokerTls, RawTopic, TopicFormat};
use crate::server::check_range;

/// Allowed `port` values.
const PORT_RANGE: RangeInclusive<u64> = 1..=65_535;
/// Allowed `keep_alive_secs` values; 0 turns keep-alive off.
const KEEP_ALIVE_RANGE: RangeInclusive<u64> = 0..=65_535;
/// Allowed `max_packet_bytes` values: at least 1 KiB, at most what MQTT can encode.
const MAX_PACKET_RANGE: RangeInclusive<u64> = 1024..=268_435_455;
/// Allowed `timeout_secs` values.
const TIMEOUT_RANGE: RangeInclusive<u64> = 1..=3600;
/// Allowed `qos` values.
const QOS_RANGE: RangeInclusive<u64> = 0..=2;

/// Validates the brokers, recording every problem in `report`.
pub(crate) fn build_brokers(
    raw: Vec<Item<RawBroker>>,
    report: &mut Report<'_>,
) -> Vec<BrokerSettings> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut client_ids: HashMap<(String, u16, String), String> = HashMap::new();
    let mut brokers = Vec::new();
    for item in raw {
        let prefix = format!("brokers[{}]", item.index);
        let name_span = item.value.name.span();
        let id_span = item
            .value
            .client_id
            .as_ref()
            .map_or(name_span, Spanned::span);
        let name_ok = check_name(&item.value.name, "broker", &prefix, &mut names, report);
        let Some(settings) = build_broker(item.value, &prefix, report) else {
            continue;
        };
        if !name_ok {
            continue;
        }
        // Every hub id has the same length, so a placeholder finds the same collisions.
        let client_id = comparable_client_id(&settings.effective_client_id("000000000000"));
        // An empty id lets the broker choose one per connection, so it cannot clash.
        if client_id.is_empty() {
            brokers.push(settings);
            continue;
        }
        let key = (
            settings.address.host.to_ascii_lowercase(),
            settings.address.port,
            client_id.clone(),
        );
        if let Some(first) = client_ids.get(&key) {
            let shown = match &settings.client_id {
                Some(_) => format!("{client_id:?}"),
                None => format!(
                    "{:?}",
                    settings
                        .effective_client_id("HUBID")
                        .replacen("HUBID", "<hub id>", 1)
                ),
            };
            let message = format!(
                "broker {:?} would connect to {} with client id {shown}, the same as {first}; \
                 a broker closes one of two connections with the same client id, so the two \
                 would disconnect each other in a loop. Set a unique client_id or rename one",
                settings.name, settings.address
            );
            report.error(id_span, &format!("{prefix}.client_id"), message);
            continue;
        }
        client_ids.insert(key, prefix);
        brokers.push(settings);
    }
    brokers
}

fn build_broker(raw: RawBroker, prefix: &str, report: &mut Report<'_>) -> Option<BrokerSettings> {
    let field = |key: &str| format!("{prefix}.{key}");
    let port = check_range(&raw.port, &PORT_RANGE, &field("port"), report)
        .and_then(|port| u16::try_from(port).ok());
    let port_failed = raw.port.is_some() && port.is_none();
    let address = match BrokerAddress::parse(raw.url.get_ref(), port) {
        Ok(address) => Some(address),
        Err(err) => {
            report.error(raw.url.span(), &field("url"), err.to_string());
            None
        }
    };

    let clean_session = raw.clean_session.as_ref().is_some_and(|c| *c.get_ref());
    let client_id = raw.client_id.as_ref().map(|id| id.get_ref().clone());
    let mut ok = !port_failed;
    if let Some(id) = &raw.client_id {
        ok &= check_client_id(id, clean_session, &field("client_id"), report);
    }
    if let (Some(password), None) = (&raw.password, &raw.username) {
        let message = "password is set without username; MQTT 3.1.1 sends a password only \
                       with a user name, so add username"
            .to_owned();
        report.error(password.span(), &field("password"), message);
        ok = false;
    }
    if let Some(username) = &raw.username
        && username.get_ref().contains('\0')
    {
        let message = "username contains the null character U+0000".to_owned();
        report.error(username.span(), &field("username"), message);
        ok = false;
    }
    let keep_alive = check_range(
        &raw.keep_alive_secs,
        &KEEP_ALIVE_RANGE,
        &field("keep_alive_secs"),
        report,
    )
    .map_or(DEFAULT_KEEP_ALIVE, Duration::from_secs);
    let max_packet_bytes = check_range(
        &raw.max_packet_bytes,
        &MAX_PACKET_RANGE,
        &field("max_packet_bytes"),
        report,
    )
    .map_or(DEFAULT_MAX_PACKET_BYTES, |bytes| bytes as usize);
    let tls = match (&raw.tls, &address) {
        (Some(tls), Some(address)) if !address.tls => {
            let message = format!(
                "broker URL {:?} does not use TLS, so the tls table does not apply; \
                 use an mqtts:// URL or remove the table",
                raw.url.get_ref()
            );
            report.error(tls.span(), &field("tls"), message);
            ok = false;
            BrokerTls::default()
        }
        (Some(_), _) => {
            let raw_tls = raw.tls.expect("matched Some above");
            build_tls(raw_tls, &field("tls"), report).unwrap_or_else(|| {
                ok = false;
                BrokerTls::default()
            })
        }
        (None, _) => BrokerTls::default(),
    };
    let address = address?;
    ok.then(|| BrokerSettings {
        name: raw.name.into_inner(),
        address,
        tls,
        username: raw.username.map(Spanned::into_inner),
        password: raw.password.map(Spanned::into_inner),
        client_id,
        keep_alive,
        clean_session,
        max_packet_bytes,
    })
}

/// Replaces the hub id in a client id of the derived form `hubkit-<12 hex digits>-...`
/// with the placeholder, so an id copied from the brokers API is compared like the
/// derived one it equals.
fn comparable_client_id(id: &str) -> String {
    let Some(rest) = id.strip_prefix("hubkit-") else {
        return id.to_owned();
    };
    let hub_id = rest.get(..12).unwrap_or("");
    let is_hex = hub_id.len() == 12 && hub_id.bytes().all(|b| b.is_ascii_hexdigit());
    match rest.get(12..) {
        Some(tail) if is_hex && tail.starts_with('-') => format!("hubkit-000000000000{tail}"),
        _ => id.to_owned(),
    }
}

/// Checks a client identifier: MQTT encodes it in two bytes and forbids U+0000, and a
/// persistent session needs one that is not empty.
fn check_client_id(
    id: &Spanned<String>,
    clean_session: bool,
    field: &str,
    report: &mut Report<'_>,
) -> bool {
    let text = id.get_ref();
    let problem = if text.is_empty() && !clean_session {
        "client_id is empty, which asks the broker to pick one at each connect, but a \
         persistent session (clean_session = false) needs a fixed client id; set one or \
         remove the key to use the id derived from the hub and broker name"
            .to_owned()
    } else if text.len() > 65_535 {
        format!(
            "client_id is {} bytes; MQTT allows at most 65535",
            text.len()
        )
    } else if text.contains('\0') {
        "client_id contains the null character U+0000, which MQTT forbids".to_owned()
    } else {
        return true;
    };
    report.error(id.span(), field, problem);
    false
}

fn build_tls(
    raw: Spanned<RawBrokerTls>,
    field: &str,
    report: &mut Report<'_>,
) -> Option<BrokerTls> {
    let span = raw.span();
    let raw = raw.into_inner();
    let accept_invalid_certs = raw
        .accept_invalid_certs
        .as_ref()
        .is_some_and(|a| *a.get_ref());
    let client_auth = match (raw.cert_file, raw.key_file) {
        (Some(cert), Some(key)) => Some((path_of(&cert), path_of(&key))),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            let message = "a client certificate needs both cert_file and key_file".to_owned();
            report.error(span, field, message);
            return None;
        }
    };
    if accept_invalid_certs && let Some(ca_file) = &raw.ca_file {
        let message = "accept_invalid_certs = true accepts any certificate, so ca_file would \
                       not be used; remove one of them"
            .to_owned();
        report.error(ca_file.span(), &format!("{field}.ca_file"), message);
        return None;
    }
    if let Some(switch) = raw.accept_invalid_certs.as_ref().filter(|a| *a.get_ref()) {
        let message = "accept_invalid_certs = true accepts any server certificate, so a \
                       machine on the network path can impersonate the broker; use ca_file \
                       with the broker's certificate instead"
            .to_owned();
        report.warning(
            switch.span(),
            &format!("{field}.accept_invalid_certs"),
            message,
        );
    }
    Some(BrokerTls {
        ca_file: raw.ca_file.as_ref().map(path_of),
        client_auth,
        accept_invalid_certs,
    })
}

fn path_of(value: &Spanned<String>) -> PathBuf {
    PathBuf::from(value.get_ref())
}

/// Names of the brokers read from the file, for topic entries to refer to.
pub(crate) fn broker_names(raw: &[Item<RawBroker>]) -> HashSet<String> {
    raw.iter()
        .map(|item| item.value.name.get_ref().clone())
        .collect()
}

/// A topic entry that passed its checks, with the span its warnings point at.
pub(crate) struct CheckedTopic {
    index: usize,
    name_span: Range<usize>,
    entry: TopicEntry,
}

/// Validates the topic entries against the broker names (when every broker was read).
pub(crate) fn build_topics(
    raw: Vec<Item<RawTopic>>,
    brokers: Option<&HashSet<String>>,
    report: &mut Report<'_>,
) -> Vec<CheckedTopic> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut topics = Vec::new();
    for item in raw {
        let prefix = format!("topics[{}]", item.index);
        let raw = item.value;
        let field = |key: &str| format!("{prefix}.{key}");
        let mut ok = check_name(&raw.name, "topic entry", &prefix, &mut names, report);
        if brokers.is_some_and(|names| !names.contains(raw.broker.get_ref())) {
            let message = format!(
                "topic entry names broker {:?}, which is not defined in [[brokers]]",
                raw.broker.get_ref()
            );
            report.error(raw.broker.span(), &field("broker"), message);
            ok = false;
        }
        let filter = match TopicFilter::parse(raw.filter.get_ref()) {
            Ok(filter) => Some(filter),
            Err(err) => {
                report.error(raw.filter.span(), &field("filter"), err.to_string());
                None
            }
        };
        let qos = match check_range(&raw.qos, &QOS_RANGE, &field("qos"), report) {
            Some(level) => Qos::from_level(level as u8),
            None if raw.qos.is_some() => None,
            None => Some(Qos::AtLeastOnce),
        };
        let timeout = match check_range(
            &raw.timeout_secs,
            &TIMEOUT_RANGE,
            &field("timeout_secs"),
            report,
        ) {
            Some(secs) => Some(Duration::from_secs(secs)),
            None if raw.timeout_secs.is_some() => None,
            None => Some(DEFAULT_TIMEOUT),
        };
        let format = match raw.payload_format.as_ref().map(|f| *f.get_ref()) {
            None | Some(TopicFormat::Json) => DataFormat::Json,
            Some(TopicFormat::String) => DataFormat::String,
        };
        let (Some(filter), Some(qos), Some(timeout), true) = (filter, qos, timeout, ok) else {
            continue;
        };
        topics.push(CheckedTopic {
            index: item.index,
            name_span: raw.name.span(),
            entry: TopicEntry {
                name: raw.name.into_inner(),
                broker: raw.broker.into_inner(),
                filter,
                qos,
                format,
                timeout,
            },
        });
    }
    topics
}

/// Warns about topic entries that no enabled binding records and about QoS 1 and 2
/// entries of brokers with clean sessions, and returns the entries.
pub(crate) fn finish_topics(
    topics: Vec<CheckedTopic>,
    brokers: &[BrokerSettings],
    topology: &Topology,
    report: &mut Report<'_>,
) -> Vec<TopicEntry> {
    for checked in &topics {
        let entry = &checked.entry;
        let field = format!("topics[{}]", checked.index);
        let device = DeviceRef::MqttTopic(entry.name.clone());
        if topology.layers_for(&device).is_empty() {
            let message = format!(
                "topic entry {:?} has no enabled binding; it records nothing until bound",
                entry.name
            );
            report.warning(checked.name_span.clone(), &field, message);
        }
        let clean = brokers
            .iter()
            .any(|broker| broker.name == entry.broker && broker.clean_session);
        if clean && entry.qos != Qos::AtMostOnce {
            let message = format!(
                "topic entry {:?} asks for QoS {} but broker {:?} uses clean_session = true, \
                 so messages published while hubkitd is stopped or disconnected are lost; \
                 set clean_session = false to keep them",
                entry.name, entry.qos, entry.broker
            );
            report.warning(checked.name_span.clone(), &field, message);
        }
    }
    topics.into_iter().map(|checked| checked.entry).collect()
}

/// Checks that a name is not empty, has no control characters and is unique.
pub(crate) fn check_name(
    name: &Spanned<String>,
    kind: &str,
    prefix: &str,
    used: &mut HashMap<String, String>,
    report: &mut Report<'_>,
) -> bool {
    let field = format!("{prefix}.name");
    let text = name.get_ref();
    let problem = if text.trim().is_empty() {
        format!("{kind} name is empty; give each {kind} a unique name")
    } else if text.chars().any(char::is_control) {
        format!("{kind} name {text:?} contains a control character")
    } else if let Some(first) = used.get(text) {
        format!("{kind} name {text:?} is already used by {first}; {kind} names must be unique")
    } else {
        used.insert(text.clone(), prefix.to_owned());
        return true;
    };
    report.error(name.span(), &field, problem);
    false
}
