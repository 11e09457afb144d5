//! hubkitd as a process with a real MQTT broker: SIGKILL while QoS 1 messages stream in,
//! and SIGHUP changing the topic entries.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubkit_testkit::HttpsClient;
use hubkit_testkit::mqtt::{BrokerKind, QoS, TestBroker, unique_name};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TOKEN: &str = "process-test-admin-token-0123456789abcdef";

/// Returns a configuration with one broker and the given topic entries (name, filter),
/// each bound to the MQTT layer.
fn config(data_dir: &Path, broker: SocketAddr, client_id: &str, topics: &[(&str, &str)]) -> String {
    let mut text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = {data_dir:?}

[[areas]]
name = "Plant"
  [[areas.layers]]
  name = "Sensors"
  kind = "mqtt"

[[brokers]]
name = "test"
url = "mqtt://{ip}"
port = {port}
client_id = "{client_id}"
clean_session = false
"#,
        data_dir = data_dir.display().to_string(),
        ip = broker.ip(),
        port = broker.port(),
    );
    for (name, filter) in topics {
        text.push_str(&format!(
            "\n[[topics]]\nname = \"{name}\"\nbroker = \"test\"\nfilter = \"{filter}\"\nqos = 1\n\
             \n[[bindings]]\ntopic = \"{name}\"\narea = \"Plant\"\nlayer = \"Sensors\"\n"
        ));
    }
    text
}

/// A running hubkitd process.
struct Daemon {
    child: Child,
    client: HttpsClient,
}

impl Daemon {
    fn start(config_file: &Path, data_dir: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hubkitd"))
            .arg("--config")
            .arg(config_file)
            .env("HUBKITD_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hubkitd");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut address: Option<SocketAddr> = None;
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            if let Some(url) = line.strip_prefix("hubkitd listening on https://") {
                address = Some(url.trim().parse().expect("address"));
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let address = address.expect("hubkitd printed its address");
        let client =
            HttpsClient::trusting(address, &data_dir.join("tls/cert.pem")).expect("client");
        Daemon { child, client }
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        kill(Pid::from_raw(pid), signal).expect("send signal");
    }

    /// Waits until the broker's topic entries are exactly `expected`, each subscribed.
    async fn wait_subscribed(&self, expected: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let auth = format!("Bearer {TOKEN}");
            let response = self
                .client
                .get("/api/v1/brokers", &[("authorization", &auth)])
                .await
                .expect("brokers");
            let body = response.json();
            let topics = body["brokers"][0]["topics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let granted: Vec<String> = topics
                .iter()
                .filter(|topic| topic["subscription"] == "granted")
                .map(|topic| topic["name"].as_str().unwrap_or_default().to_owned())
                .collect();
            if granted == expected && topics.len() == expected.len() {
                return;
            }
            assert!(Instant::now() < deadline, "not subscribed: {body:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts stored records per `Data.n` for topics under `prefix`, through a read-only
/// connection of its own.
fn stored(data_dir: &Path, prefix: &str) -> std::collections::BTreeMap<i64, i64> {
    let Ok(connection) = rusqlite::Connection::open_with_flags(
        data_dir.join("hubkit.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Default::default();
    };
    let query = "SELECT json_extract(data, '$.n'), COUNT(*) FROM records \
                 WHERE device_id LIKE ?1 GROUP BY 1";
    let Ok(mut statement) = connection.prepare(query) else {
        return Default::default();
    };
    statement
        .query_map([format!("{prefix}/%")], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Publishes `payloads` to `topic` with a client of its own; an owned-argument wrapper
/// of the testkit's function, for spawning.
async fn publish_all(
    broker: SocketAddr,
    client_id: String,
    topic: String,
    payloads: Vec<Vec<u8>>,
    qos: QoS,
) -> anyhow::Result<()> {
    hubkit_testkit::mqtt::publish_all(broker, &client_id, &topic, payloads, qos, false).await
}

fn numbered(range: std::ops::RangeInclusive<u32>) -> Vec<Vec<u8>> {
    range
        .map(|n| format!("{{\"n\": {n}}}").into_bytes())
        .collect()
}

#[tokio::test]
async fn sigkill_during_mqtt_stream_loses_nothing() {
    let broker = TestBroker::start().await.expect("broker");
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config_file = dir.path().join("hubkit.toml");
    let prefix = unique_name("kill");
    let filter = format!("{prefix}/#");
    let client_id = unique_name("kill-hub");
    std::fs::write(
        &config_file,
        config(
            &data_dir,
            broker.addr(),
            &client_id,
            &[("sensors", &filter)],
        ),
    )
    .expect("write config");
    let daemon = Daemon::start(&config_file, &data_dir);
    daemon.wait_subscribed(&["sensors"]).await;

    // Publish in chunks, each acknowledged by the broker, and kill hubkitd once it has
    // stored 300; the broker keeps the next 800 for the persistent session. That stays
    // below Mosquitto's default max_queued_messages of 1000, beyond which it drops
    // messages.
    let topic = format!("{prefix}/stream");
    let mut daemon = Some(daemon);
    let mut published = 0u32;
    let mut after_kill = 0u32;
    while after_kill < 8 {
        assert!(published < 5000, "hubkitd stored fewer than 300 messages");
        let first = published + 1;
        let payloads = numbered(first..=first + 99);
        let publisher = tokio::spawn(publish_all(
            broker.addr(),
            unique_name("kill-pub"),
            topic.clone(),
            payloads,
            QoS::AtLeastOnce,
        ));
        if daemon.is_some() && published >= 300 {
            // Kill once hubkitd has stored part of this chunk, so the rest is in flight.
            let deadline = Instant::now() + Duration::from_secs(10);
            while stored(&data_dir, &prefix).len() < published as usize + 10 {
                assert!(Instant::now() < deadline, "hubkitd stopped storing");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            drop(daemon.take()); // SIGKILL
        } else if daemon.is_none() {
            after_kill += 1;
        }
        publisher.await.expect("publisher task").expect("publish");
        published += 100;
    }
    let killed_at = stored(&data_dir, &prefix).len();
    assert!(
        killed_at <= published as usize - 800,
        "the kill left nothing for the restart: {killed_at} of {published} stored"
    );

    let _restarted = Daemon::start(&config_file, &data_dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    let counts = loop {
        let counts = stored(&data_dir, &prefix);
        if counts.len() == published as usize || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let missing: Vec<u32> = (1..=published)
        .filter(|n| !counts.contains_key(&i64::from(*n)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} messages lost: {missing:?}",
        missing.len()
    );
    if broker.kind() != BrokerKind::Embedded {
        let repeated: Vec<(&i64, &i64)> = counts.iter().filter(|(_, c)| **c > 1).collect();
        assert!(repeated.is_empty(), "stored more than once: {repeated:?}");
    }
}

#[tokio::test]
async fn sighup_changes_topic_entries() {
    let broker = TestBroker::start().await.expect("broker");
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config_file = dir.path().join("hubkit.toml");
    let prefix = unique_name("hup");
    let client_id = unique_name("hup-hub");
    let first = format!("{prefix}/first/#");
    let second = format!("{prefix}/second/#");
    std::fs::write(
        &config_file,
        config(&data_dir, broker.addr(), &client_id, &[("first", &first)]),
    )
    .expect("write config");
    let daemon = Daemon::start(&config_file, &data_dir);
    daemon.wait_subscribed(&["first"]).await;

    std::fs::write(
        &config_file,
        config(&data_dir, broker.addr(), &client_id, &[("second", &second)]),
    )
    .expect("write config");
    daemon.signal(Signal::SIGHUP);
    // The old entry stays subscribed until the reload replaced it.
    daemon.wait_subscribed(&["second"]).await;

    let publisher = unique_name("hup-pub");
    publish_all(
        broker.addr(),
        publisher.clone(),
        format!("{prefix}/first/a"),
        numbered(1..=1),
        QoS::AtLeastOnce,
    )
    .await
    .expect("publish");
    publish_all(
        broker.addr(),
        publisher,
        format!("{prefix}/second/a"),
        numbered(2..=2),
        QoS::AtLeastOnce,
    )
    .await
    .expect("publish");
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored(&data_dir, &prefix).is_empty() {
        assert!(Instant::now() < deadline, "no record after SIGHUP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = stored(&data_dir, &prefix);
    assert_eq!(counts, std::collections::BTreeMap::from([(2, 1)]));
}
