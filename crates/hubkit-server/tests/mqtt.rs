//! MQTT subscription end to end: a real broker (spawned mosquitto, the broker named by
//! HUBKIT_TEST_MQTT_BROKER, or embedded rumqttd), a hub with a real SQLite file, and the
//! records and dead letters read back through the HTTPS API.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{TestHub, admin, config_text, parse};
use hubkit_mqtt::ConnectionState;
use hubkit_testkit::mqtt::{BrokerKind, MqttProxy, QoS, TestBroker, packet_type, unique_name};
use serde_json::Value;

/// Maximum wait for records to arrive.
const WAIT: Duration = Duration::from_secs(20);

/// Test settings: a unique topic prefix and client id, so tests can share one broker.
struct Names {
    prefix: String,
    client_id: String,
}

impl Names {
    fn new(label: &str) -> Names {
        Names {
            prefix: unique_name(label),
            client_id: unique_name(&format!("{label}-hub")),
        }
    }
}

/// Returns the configuration body: one MQTT layer, a broker at `broker`, the given topic
/// entries (TOML) and a binding of each named entry.
fn body(broker: SocketAddr, names: &Names, broker_extra: &str, topics: &[(&str, &str)]) -> String {
    let mut text = format!(
        r#"
[[areas]]
name = "Plant"
  [[areas.layers]]
  name = "Sensors"
  kind = "mqtt"

[[brokers]]
name = "test"
url = "mqtt://{}"
port = {}
client_id = "{}"
{broker_extra}
"#,
        broker.ip(),
        broker.port(),
        names.client_id
    );
    for (name, entry) in topics {
        text.push_str(&format!(
            "\n[[topics]]\nname = \"{name}\"\nbroker = \"test\"\n{entry}\n"
        ));
    }
    for (name, _) in topics {
        text.push_str(&format!(
            "\n[[bindings]]\ntopic = \"{name}\"\narea = \"Plant\"\nlayer = \"Sensors\"\n"
        ));
    }
    text
}

async fn start_hub(body: &str) -> TestHub {
    let hub = TestHub::start(body).await;
    wait_subscribed(&hub).await;
    hub
}

/// Waits until every topic entry of every broker has its SUBACK.
async fn wait_subscribed(hub: &TestHub) {
    let deadline = Instant::now() + WAIT;
    loop {
        let statuses = hub.hub.broker_statuses();
        let ready = statuses.iter().all(|status| {
            status.state == ConnectionState::Connected
                && status.entries.iter().all(|entry| {
                    matches!(
                        entry.subscription,
                        hubkit_mqtt::SubscriptionState::Granted(_)
                    )
                })
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "broker not subscribed in time: {statuses:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn publish(broker: SocketAddr, topic: &str, payloads: Vec<Vec<u8>>, qos: QoS, retain: bool) {
    hubkit_testkit::mqtt::publish_all(broker, &unique_name("pub"), topic, payloads, qos, retain)
        .await
        .expect("publish");
}

async fn api(hub: &TestHub, path: &str) -> Value {
    let (name, value) = admin();
    let response = hub
        .client
        .get(path, &[(name, &value)])
        .await
        .expect("request");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()
}

/// Returns every record whose PhysicalDeviceId starts with `prefix`, oldest first.
async fn records(hub: &TestHub, prefix: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/records?order=asc&limit=1000&cursor={cursor}"),
            None => "/api/v1/records?order=asc&limit=1000".to_owned(),
        };
        let page = api(hub, &path).await;
        for record in page["records"].as_array().expect("records") {
            let device = record["PhysicalDeviceId"].as_str().unwrap_or("");
            if device.starts_with(prefix) {
                found.push(record.clone());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return found,
        }
    }
}

/// Waits until at least `count` records of `prefix` are stored, and returns them.
async fn wait_records(hub: &TestHub, prefix: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = records(hub, prefix).await;
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} records after {WAIT:?}: {:#?}",
            found.len(),
            hub.hub.broker_statuses()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `condition` holds for the first broker's status.
async fn wait_status(
    hub: &TestHub,
    what: &str,
    condition: impl Fn(&hubkit_mqtt::BrokerStatus) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let statuses = hub.hub.broker_statuses();
        if statuses.first().is_some_and(&condition) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {statuses:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn numbered(range: std::ops::RangeInclusive<u32>) -> Vec<Vec<u8>> {
    range
        .map(|n| format!("{{\"n\": {n}}}").into_bytes())
        .collect()
}

/// Counts records by their `Data.n`.
fn count_by_n(records: &[Value]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        let n = record["Data"]["n"].as_u64().expect("numbered record");
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn json_and_string_entries_record_messages() {
    let broker = TestBroker::start().await.expect("broker");
    let names = Names::new("formats");
    let p = &names.prefix;
    publish(
        broker.addr(),
        &format!("{p}/json/retained"),
        vec![br#"{"kept": true}"#.to_vec()],
        QoS::AtLeastOnce,
        true,
    )
    .await;
    let topics = [
        (
            "readings",
            format!("filter = \"{p}/json/#\"\nqos = 1\npayload_format = \"json\""),
        ),
        (
            "labels",
            format!("filter = \"{p}/text/+\"\nqos = 0\npayload_format = \"string\""),
        ),
    ];
    let topics: Vec<(&str, &str)> = topics.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let hub = start_hub(&body(broker.addr(), &names, "", &topics)).await;

    publish(
        broker.addr(),
        &format!("{p}/json/room1"),
        vec![br#"{"temperature": 25.5}"#.to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    publish(
        broker.addr(),
        &format!("{p}/text/room2"),
        vec!["24.5 °C".as_bytes().to_vec()],
        QoS::AtMostOnce,
        false,
    )
    .await;
    let found = wait_records(&hub, p, 3).await;
    let by_topic: BTreeMap<String, &Value> = found
        .iter()
        .map(|r| (r["PhysicalDeviceId"].as_str().expect("id").to_owned(), r))
        .collect();

    let retained = by_topic[&format!("{p}/json/retained")];
    assert_eq!(retained["Data"]["kept"], true);
    assert_eq!(retained["Transport"]["Retain"], true);

    let json = by_topic[&format!("{p}/json/room1")];
    assert_eq!(json["KindName"], "MQTT");
    assert_eq!(json["PhysicalDeviceName"], "readings");
    assert_eq!(json["DataType"], "json");
    assert_eq!(json["Data"]["temperature"].to_string(), "25.5");
    assert_eq!(json["AreaName"], "Plant");
    assert_eq!(json["LayerName"], "Sensors");
    assert_eq!(json["Transport"]["Protocol"], "mqtt");
    assert_eq!(json["Transport"]["Broker"], "test");
    assert_eq!(json["Transport"]["QoS"], 1);
    assert_eq!(json["Transport"]["Retain"], false);

    let text = by_topic[&format!("{p}/text/room2")];
    assert_eq!(text["PhysicalDeviceName"], "labels");
    assert_eq!(text["DataType"], "string");
    assert_eq!(text["Data"], "24.5 °C");
    assert_eq!(text["Transport"]["QoS"], 0);
    hub.stop().await;
}

#[tokio::test]
async fn overlapping_filters_record_once_per_entry() {
    let broker = TestBroker::start().await.expect("broker");
    let names = Names::new("overlap");
    let p = &names.prefix;
    let wildcard = format!("filter = \"{p}/+/temperature\"");
    let all = format!("filter = \"{p}/#\"");
    let hub = start_hub(&body(
        broker.addr(),
        &names,
        "",
        &[("temperature", &wildcard), ("everything", &all)],
    ))
    .await;

    publish(
        broker.addr(),
        &format!("{p}/room1/temperature"),
        vec![b"21".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    publish(
        broker.addr(),
        &format!("{p}/room1/humidity"),
        vec![b"40".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    publish(
        broker.addr(),
        p,
        vec![b"1".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    let found = wait_records(&hub, p, 4).await;
    let mut pairs: Vec<(String, String)> = found
        .iter()
        .map(|r| {
            (
                r["PhysicalDeviceId"]
                    .as_str()
                    .expect("id")
                    .trim_start_matches(p.as_str())
                    .to_owned(),
                r["PhysicalDeviceName"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    pairs.sort();
    let expected = [
        ("", "everything"),
        ("/room1/humidity", "everything"),
        ("/room1/temperature", "everything"),
        ("/room1/temperature", "temperature"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(pairs, expected);
    let brokers = api(&hub, "/api/v1/brokers").await;
    let topics = brokers["brokers"][0]["topics"].as_array().expect("topics");
    let all = format!("{p}/#");
    assert!(
        topics
            .iter()
            .all(|t| t["subscribed_filter"] == all.as_str()),
        "{topics:#?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn each_qos_is_stored_once() {
    let broker = TestBroker::start().await.expect("broker");
    let names = Names::new("qos");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"\nqos = 2");
    let hub = start_hub(&body(broker.addr(), &names, "", &[("all", &entry)])).await;

    for (n, qos) in [
        (0, QoS::AtMostOnce),
        (1, QoS::AtLeastOnce),
        (2, QoS::ExactlyOnce),
    ] {
        publish(
            broker.addr(),
            &format!("{p}/q{n}"),
            numbered(n..=n),
            qos,
            false,
        )
        .await;
    }
    let found = wait_records(&hub, p, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let found_later = records(&hub, p).await;
    assert_eq!(found_later.len(), found.len(), "no record arrives twice");
    let qos: BTreeMap<u64, u64> = found
        .iter()
        .map(|r| {
            (
                r["Data"]["n"].as_u64().expect("n"),
                r["Transport"]["QoS"].as_u64().expect("qos"),
            )
        })
        .collect();
    // QoS 2 entries subscribe at QoS 1, so the broker delivers at most QoS 1. rumqttd
    // 0.20 delivers at the subscription's QoS even when the message was published lower.
    if broker.kind() != BrokerKind::Embedded {
        assert_eq!(qos, BTreeMap::from([(0, 0), (1, 1), (2, 1)]));
    }
    assert_eq!(qos.len(), 3);

    let brokers = api(&hub, "/api/v1/brokers").await;
    let topic = &brokers["brokers"][0]["topics"][0];
    assert_eq!(topic["qos"], 2);
    assert_eq!(topic["subscribed_qos"], 1);
    assert_eq!(topic["subscription"], "granted");
    hub.stop().await;
}

#[tokio::test]
async fn undecodable_payloads_become_dead_letters() {
    let broker = TestBroker::start().await.expect("broker");
    let names = Names::new("dead");
    let p = &names.prefix;
    let json = format!("filter = \"{p}/json\"\npayload_format = \"json\"");
    let text = format!("filter = \"{p}/text\"\npayload_format = \"string\"");
    let hub = start_hub(&body(
        broker.addr(),
        &names,
        "",
        &[("json", &json), ("text", &text)],
    ))
    .await;

    let bad_json: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        Vec::new(),
        b"{\"t\": \"\xff\"}".to_vec(),
    ];
    publish(
        broker.addr(),
        &format!("{p}/json"),
        bad_json,
        QoS::AtLeastOnce,
        false,
    )
    .await;
    publish(
        broker.addr(),
        &format!("{p}/text"),
        vec![b"ok\xc3".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    publish(
        broker.addr(),
        &format!("{p}/json"),
        vec![b"{\"fine\": 1}".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    wait_records(&hub, p, 1).await;
    wait_status(&hub, "4 dead letters", |s| s.dead_letters == 4).await;

    let page = api(&hub, "/api/v1/dead-letters?limit=10").await;
    let letters = page["dead_letters"].as_array().expect("letters");
    let ours: Vec<&Value> = letters
        .iter()
        .filter(|l| {
            l["topic"]
                .as_str()
                .is_some_and(|t| t.starts_with(p.as_str()))
        })
        .collect();
    assert_eq!(ours.len(), 4, "{page:#}");
    let reasons: Vec<&str> = ours
        .iter()
        .map(|l| l["reason"].as_str().expect("reason"))
        .collect();
    assert!(
        reasons[0].contains("not valid UTF-8 at byte 2"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("not valid UTF-8 at byte 7"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("payload is empty"), "{reasons:?}");
    assert!(
        reasons[3].contains("invalid JSON at line 1, column 2"),
        "{reasons:?}"
    );
    assert_eq!(ours[3]["payload_preview_text"], "not json");
    assert_eq!(ours[3]["payload_preview_base64"], "bm90IGpzb24=");
    assert_eq!(ours[3]["payload_truncated"], false);
    assert_eq!(ours[3]["topic_entry"], "json");
    assert_eq!(ours[0]["payload_preview_text"], Value::Null);
    assert_eq!(ours[0]["payload_bytes"], 3);

    let url = ours[0]["payload_url"].as_str().expect("payload url");
    let (name, value) = admin();
    let raw = hub
        .client
        .get(url, &[(name, &value)])
        .await
        .expect("payload");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body.as_ref(), b"ok\xc3");
    assert_eq!(raw.header("content-type"), "application/octet-stream");
    let missing = hub
        .client
        .get("/api/v1/dead-letters/999999/payload", &[(name, &value)])
        .await
        .expect("missing");
    assert_eq!(missing.status, 404);
    let unauthorised = hub.client.get(url, &[]).await.expect("no token");
    assert_eq!(unauthorised.status, 401);
    let twice = hub
        .client
        .get("/api/v1/dead-letters?limit=1&limit=2", &[(name, &value)])
        .await
        .expect("twice");
    assert_eq!(twice.status, 400);

    let (name, value) = admin();
    let metrics = hub
        .client
        .get("/metrics", &[(name, &value)])
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("hubkit_mqtt_dead_letters_total{broker=\"test\"} 4"),
        "{text}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn disabled_binding_records_nothing() {
    let broker = TestBroker::start().await.expect("broker");
    let names = Names::new("off");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"");
    let enabled = body(broker.addr(), &names, "", &[("sensors", &entry)]);
    let disabled = enabled.replace(
        "layer = \"Sensors\"\n",
        "layer = \"Sensors\"\nenabled = false\n",
    );
    let hub = start_hub(&disabled).await;

    publish(
        broker.addr(),
        &format!("{p}/a"),
        vec![b"{\"n\": 1}".to_vec(), b"broken".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    wait_status(&hub, "2 messages", |s| s.messages == 2).await;
    assert!(records(&hub, p).await.is_empty());
    let status = &hub.hub.broker_statuses()[0];
    assert_eq!(status.dead_letters, 0);
    assert_eq!(status.records, 0);

    let text = config_text(hub.dir.path(), "", &enabled);
    hub.hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    publish(
        broker.addr(),
        &format!("{p}/a"),
        vec![b"{\"n\": 2}".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    let found = wait_records(&hub, p, 1).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["Data"]["n"], 2);
    hub.stop().await;
}

#[tokio::test]
async fn reload_changes_subscriptions() {
    let broker = TestBroker::start().await.expect("broker");
    let names = Names::new("reload");
    let p = &names.prefix;
    let first = format!("filter = \"{p}/first/#\"");
    let second = format!("filter = \"{p}/second/#\"");
    let hub = start_hub(&body(broker.addr(), &names, "", &[("first", &first)])).await;

    let text = config_text(
        hub.dir.path(),
        "",
        &body(broker.addr(), &names, "", &[("second", &second)]),
    );
    hub.hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    wait_subscribed(&hub).await;
    let reconnects = hub.hub.broker_statuses()[0].reconnects;
    assert_eq!(reconnects, 0, "changing topic entries keeps the connection");

    publish(
        broker.addr(),
        &format!("{p}/first/x"),
        numbered(1..=1),
        QoS::AtLeastOnce,
        false,
    )
    .await;
    publish(
        broker.addr(),
        &format!("{p}/second/x"),
        numbered(2..=2),
        QoS::AtLeastOnce,
        false,
    )
    .await;
    let found = wait_records(&hub, p, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let found_later = records(&hub, p).await;
    assert_eq!(found_later.len(), 1, "{found_later:#?}");
    assert_eq!(found[0]["Data"]["n"], 2);
    assert_eq!(found[0]["PhysicalDeviceName"], "second");
    hub.stop().await;
}

#[tokio::test]
async fn redelivered_message_is_stored_once() {
    let broker = TestBroker::start().await.expect("broker");
    let proxy = MqttProxy::start(broker.addr()).await.expect("proxy");
    let names = Names::new("redeliver");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"");
    let hub = start_hub(&body(proxy.addr(), &names, "", &[("sensors", &entry)])).await;

    // The hub commits these three but its PUBACKs never reach the broker, so after the
    // cut the broker sends them again.
    proxy.drop_client_packets(packet_type::PUBACK, 3);
    publish(
        broker.addr(),
        &format!("{p}/a"),
        numbered(1..=3),
        QoS::AtLeastOnce,
        false,
    )
    .await;
    wait_records(&hub, p, 3).await;
    let deadline = Instant::now() + WAIT;
    while proxy.client_packets_dropped(packet_type::PUBACK) < 3 {
        assert!(
            Instant::now() < deadline,
            "the hub did not acknowledge the three messages"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.cut();
    if broker.kind() == BrokerKind::Embedded {
        // rumqttd 0.20 redelivers without the DUP flag, so the hub cannot tell a
        // redelivery from a new message: each arrives at least once.
        let found = wait_records(&hub, p, 6).await;
        assert_eq!(count_by_n(&found).len(), 3);
    } else {
        wait_status(&hub, "3 duplicates", |s| s.duplicates == 3).await;
        let found = records(&hub, p).await;
        assert_eq!(count_by_n(&found), BTreeMap::from([(1, 1), (2, 1), (3, 1)]));
    }
    assert_eq!(proxy.client_packets_dropped(packet_type::PUBACK), 3);
    hub.stop().await;
}

#[tokio::test]
async fn qos2_entry_survives_reconnects() {
    let broker = TestBroker::start().await.expect("broker");
    let proxy = MqttProxy::start(broker.addr()).await.expect("proxy");
    let names = Names::new("qos2");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"\nqos = 2");
    let hub = start_hub(&body(proxy.addr(), &names, "", &[("sensors", &entry)])).await;

    // Ten messages per round stay within Mosquitto's default in-flight window of 20.
    // Mosquitto 2.0.11 stalls messages published at QoS 2 that it queues beyond a full
    // window while the subscriber is disconnected. Its maintainers list in-flight quota
    // fixes in 2.0.13, and that broker fault is outside what this test checks.
    for round in 0..4u32 {
        let first = round * 10 + 1;
        // Each cut lands right after an acknowledgement, the moment at which rumqttc's
        // QoS 2 state would make the broker's re-sent PUBREL fail the next connection.
        proxy.cut_after_client_packet(packet_type::PUBACK);
        let payloads = numbered(first..=first + 9);
        publish(
            broker.addr(),
            &format!("{p}/a"),
            payloads,
            QoS::ExactlyOnce,
            false,
        )
        .await;
        wait_records(&hub, p, (first + 9) as usize).await;
        wait_status(&hub, "the reconnect", |s| s.reconnects > u64::from(round)).await;
        wait_subscribed(&hub).await;
    }
    let found = records(&hub, p).await;
    let counts = count_by_n(&found);
    assert_eq!(counts.len(), 40);
    if broker.kind() != BrokerKind::Embedded {
        assert!(counts.values().all(|&c| c == 1), "{counts:?}");
    }
    let status = &hub.hub.broker_statuses()[0];
    assert!(
        status.reconnects <= 4,
        "one reconnect per cut, not a loop: {status:#?}"
    );
    assert_eq!(status.state, ConnectionState::Connected);
    hub.stop().await;
}

#[tokio::test]
async fn oversized_message_is_dead_lettered_once() {
    let broker = TestBroker::start().await.expect("broker");
    let names = Names::new("oversize");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"\npayload_format = \"string\"");
    let hub = start_hub(&body(
        broker.addr(),
        &names,
        "max_packet_bytes = 1024",
        &[("sensors", &entry)],
    ))
    .await;

    let big = vec![b'x'; 4096];
    publish(
        broker.addr(),
        &format!("{p}/big"),
        vec![big, b"small".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await;
    let found = wait_records(&hub, p, 1).await;
    assert_eq!(found[0]["Data"], "small");
    wait_status(&hub, "a dead letter", |s| s.dead_letters == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = &hub.hub.broker_statuses()[0];
    assert_eq!(status.oversized, 1);
    assert_eq!(
        status.reconnects, 1,
        "one reconnect lets the message through: {status:#?}"
    );
    assert_eq!(status.state, ConnectionState::Connected);
    let page = api(&hub, "/api/v1/dead-letters").await;
    let letter = &page["dead_letters"][0];
    assert_eq!(letter["payload_bytes"], 4096);
    assert_eq!(letter["payload_truncated"], true);
    assert_eq!(
        letter["payload_preview_text"].as_str().map(str::len),
        Some(256)
    );
    assert!(
        letter["reason"]
            .as_str()
            .is_some_and(|r| r.contains("larger than the broker's max_packet_bytes of 1024")),
        "{letter:#}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn stopped_hub_gets_queued_messages_once() {
    let broker = TestBroker::start().await.expect("broker");
    if broker.kind() == BrokerKind::Embedded {
        // rumqttd keeps sessions, but its redeliveries lack DUP; the count below would
        // still hold, so run it anyway.
    }
    let names = Names::new("offline");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"");
    let text = body(
        broker.addr(),
        &names,
        "clean_session = false",
        &[("sensors", &entry)],
    );
    let hub = start_hub(&text).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = hub.data_dir();
    hub.hub.shutdown(Duration::from_secs(5)).await;

    publish(
        broker.addr(),
        &format!("{p}/bulk"),
        numbered(1..=1000),
        QoS::AtLeastOnce,
        false,
    )
    .await;

    // The same data directory and client id: the broker resumes the session.
    let full = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{text}",
        data.display().to_string()
    );
    let config = parse(dir.path(), &full);
    let options = hubkit_server::HubOptions {
        admin_token_env: Some(common::TOKEN.to_owned()),
    };
    let restarted = hubkit_server::Hub::start(config, options)
        .await
        .expect("hub restarts");
    let cert = data.join("tls/cert.pem");
    let client =
        hubkit_testkit::HttpsClient::trusting(restarted.local_addr(), &cert).expect("client");
    let hub = TestHub {
        hub: restarted,
        client,
        dir,
    };
    let found = wait_records(&hub, p, 1000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let found_later = records(&hub, p).await;
    assert_eq!(found_later.len(), found.len());
    let counts = count_by_n(&found_later);
    assert_eq!(counts.len(), 1000);
    assert!(counts.values().all(|&c| c == 1), "each message stored once");
    assert!(
        hub.hub.broker_statuses()[0]
            .entries
            .iter()
            .all(|e| e.subscription != hubkit_mqtt::SubscriptionState::Rejected)
    );
    hub.stop().await;
}

#[tokio::test]
async fn broker_restart_loses_no_qos1_message() {
    let Some(mut broker) = TestBroker::start_restartable().await.expect("broker") else {
        eprintln!("skipped: restarting a broker with persistence needs mosquitto installed");
        return;
    };
    let names = Names::new("restart");
    let p = names.prefix.clone();
    let entry = format!("filter = \"{p}/#\"");
    let hub = start_hub(&body(
        broker.addr(),
        &names,
        "clean_session = false",
        &[("sensors", &entry)],
    ))
    .await;

    // A publisher that keeps its session and re-sends unacknowledged messages after
    // reconnecting, as a device would.
    let addr = broker.addr();
    let topic = format!("{p}/stream");
    let publisher = tokio::spawn(async move {
        let mut options = rumqttc::MqttOptions::new(
            unique_name("restart-pub"),
            addr.ip().to_string(),
            addr.port(),
        );
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 2000);
        let driver = tokio::spawn(async move {
            loop {
                if eventloop.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        for n in 1..=1000u32 {
            client
                .publish(
                    &topic,
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    format!("{{\"n\": {n}}}"),
                )
                .await
                .expect("queue publish");
            if n % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        (client, driver)
    });

    wait_records(&hub, &p, 300).await;
    broker.restart().await.expect("broker restarts");
    let (_client, driver) = publisher.await.expect("publisher");
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let counts = count_by_n(&records(&hub, &p).await);
        if counts.len() == 1000 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    driver.abort();
    let missing: Vec<u32> = (1..=1000u32)
        .filter(|n| !counts.contains_key(&u64::from(*n)))
        .collect();
    assert!(
        missing.is_empty(),
        "lost {} messages: {missing:?}; broker log:\n{}",
        missing.len(),
        broker.log().unwrap_or_default()
    );
    let status = &hub.hub.broker_statuses()[0];
    assert!(status.reconnects >= 1, "{status:#?}");
    hub.stop().await;
}

#[tokio::test]
async fn unreachable_broker_reports_its_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = listener.local_addr().expect("addr");
    drop(listener);
    let names = Names::new("down");
    let entry = format!("filter = \"{}/#\"", names.prefix);
    let hub = TestHub::start(&body(closed, &names, "", &[("sensors", &entry)])).await;
    wait_status(&hub, "a failed attempt", |s| s.reconnects >= 1).await;
    let brokers = api(&hub, "/api/v1/brokers").await;
    let broker = &brokers["brokers"][0];
    assert_eq!(broker["state"], "disconnected");
    assert!(
        broker["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{broker:#}"
    );
    assert_eq!(broker["client_id"], names.client_id);
    assert_eq!(broker["topics"][0]["subscription"], "pending");
    let metrics = hub.client.get("/metrics", &[]).await.expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("hubkit_mqtt_connected{broker=\"test\"} 0"),
        "{text}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn reload_reconnects_changed_broker() {
    let broker = TestBroker::start().await.expect("broker");
    let proxy = MqttProxy::start(broker.addr()).await.expect("proxy");
    let names = Names::new("moved");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"");
    let hub = start_hub(&body(broker.addr(), &names, "", &[("sensors", &entry)])).await;
    publish(
        broker.addr(),
        &format!("{p}/a"),
        numbered(1..=1),
        QoS::AtLeastOnce,
        false,
    )
    .await;
    wait_records(&hub, p, 1).await;

    // The same broker behind a proxy is a changed address, so the hub reconnects there.
    let moved = body(proxy.addr(), &names, "", &[("sensors", &entry)]);
    let text = config_text(hub.dir.path(), "", &moved);
    hub.hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    wait_subscribed(&hub).await;
    assert_eq!(proxy.connections_accepted(), 1);
    let status = &hub.hub.broker_statuses()[0];
    assert_eq!(status.address, format!("mqtt://{}", proxy.addr()));
    assert_eq!(status.records, 1, "counters carry over a reconnect");

    publish(
        broker.addr(),
        &format!("{p}/a"),
        numbered(2..=2),
        QoS::AtLeastOnce,
        false,
    )
    .await;
    let found = wait_records(&hub, p, 2).await;
    assert_eq!(count_by_n(&found), BTreeMap::from([(1, 1), (2, 1)]));
    hub.stop().await;
}

/// A mosquitto with a TLS listener and a plain one, both on the same message bus.
struct TlsBroker {
    child: std::process::Child,
    tls: SocketAddr,
    plain: SocketAddr,
    cert: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// Starts mosquitto with a self-signed certificate that is marked as a CA, as
/// `openssl req -x509` makes it, or returns `None` when mosquitto is not installed.
async fn start_tls_broker() -> Option<TlsBroker> {
    let binary = hubkit_testkit::mqtt::mosquitto_binary().expect("mosquitto lookup")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("certificate params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    let cert_file = dir.path().join("broker.pem");
    let key_file = dir.path().join("broker-key.pem");
    std::fs::write(&cert_file, cert.pem()).expect("write certificate");
    std::fs::write(&key_file, key.serialize_pem()).expect("write key");
    let (tls, plain) = (free_addr(), free_addr());
    let conf = format!(
        "per_listener_settings false\nallow_anonymous true\npersistence false\nuser root\n\
         listener {} 127.0.0.1\ncertfile {}\nkeyfile {}\nlistener {} 127.0.0.1\n",
        tls.port(),
        cert_file.display(),
        key_file.display(),
        plain.port()
    );
    let conf_file = dir.path().join("mosquitto.conf");
    std::fs::write(&conf_file, conf).expect("write config");
    let child = std::process::Command::new(binary)
        .arg("-c")
        .arg(&conf_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn mosquitto");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(plain).await.is_err()
        || tokio::net::TcpStream::connect(tls).await.is_err()
    {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(TlsBroker {
        child,
        tls,
        plain,
        cert: cert_file,
        _dir: dir,
    })
}

#[tokio::test]
async fn mqtts_broker_with_pinned_certificate() {
    let Some(broker) = start_tls_broker().await else {
        eprintln!("skipped: the TLS broker test needs mosquitto installed");
        return;
    };
    let names = Names::new("tls");
    let p = &names.prefix;
    let entry = format!("filter = \"{p}/#\"");
    let tls_table = format!(
        "\n[brokers.tls]\nca_file = {:?}\n",
        broker.cert.display().to_string()
    );
    let text = body(broker.tls, &names, "", &[("sensors", &entry)])
        .replace("url = \"mqtt://", "url = \"mqtts://")
        .replacen("\n[[topics]]", &format!("{tls_table}\n[[topics]]"), 1);
    let hub = start_hub(&text).await;
    publish(
        broker.plain,
        &format!("{p}/a"),
        numbered(1..=1),
        QoS::AtLeastOnce,
        false,
    )
    .await;
    let found = wait_records(&hub, p, 1).await;
    assert_eq!(found[0]["Data"]["n"], 1);
    assert_eq!(
        hub.hub.broker_statuses()[0].address,
        format!("mqtts://{}", broker.tls)
    );
    hub.stop().await;

    // Without the certificate in ca_file, the system's CAs do not trust it.
    let untrusted = body(
        broker.tls,
        &Names::new("tls-untrusted"),
        "",
        &[("sensors", &entry)],
    )
    .replace("url = \"mqtt://", "url = \"mqtts://");
    let hub = TestHub::start(&untrusted).await;
    wait_status(&hub, "a failed handshake", |s| s.reconnects >= 1).await;
    let status = &hub.hub.broker_statuses()[0];
    assert_eq!(status.state, ConnectionState::Disconnected);
    let error = status.last_error.clone().unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    hub.stop().await;
}
