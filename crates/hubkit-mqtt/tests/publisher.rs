//! The action publisher against a real broker: each QoS, the retain flag, a payload over
//! rumqttc's default 10 KiB packet limit, and a broker that is not there.

use std::time::Duration;

use hubkit_mqtt::{BrokerAddress, BrokerSettings, BrokerTls, Publisher, Qos};
use hubkit_testkit::mqtt::{QoS, Subscriber, TestBroker, unique_name};

const WAIT: Duration = Duration::from_secs(20);

fn settings(host: &str, port: u16, name: &str) -> BrokerSettings {
    BrokerSettings {
        name: name.into(),
        address: BrokerAddress::parse(&format!("mqtt://{host}"), Some(port)).expect("valid"),
        tls: BrokerTls::default(),
        username: None,
        password: None,
        client_id: Some(unique_name("publisher")),
        keep_alive: Duration::from_secs(30),
        clean_session: false,
        max_packet_bytes: 1024,
    }
}

#[tokio::test]
async fn publishes_each_qos_and_waits_for_the_broker() {
    let broker = TestBroker::start().await.expect("broker starts");
    let addr = broker.addr();
    let prefix = unique_name("actions");
    let subscriber = Subscriber::connect(
        addr,
        &unique_name("watcher"),
        &format!("{prefix}/#"),
        QoS::ExactlyOnce,
    )
    .await
    .expect("subscriber connects");
    let publisher = Publisher::start(
        &settings(&addr.ip().to_string(), addr.port(), "local"),
        "0123456789ab",
    )
    .expect("publisher starts");

    let large = vec![b'x'; 100 * 1024];
    let sends: [(&str, Qos, &[u8]); 4] = [
        ("zero", Qos::AtMostOnce, b"{\"n\":0}"),
        ("one", Qos::AtLeastOnce, b"{\"n\":1}"),
        ("two", Qos::ExactlyOnce, b"{\"n\":2}"),
        ("large", Qos::AtLeastOnce, &large),
    ];
    for (suffix, qos, payload) in sends {
        publisher
            .publish(&format!("{prefix}/{suffix}"), qos, false, payload, WAIT)
            .await
            .unwrap_or_else(|err| panic!("publish {suffix}: {err}"));
    }

    let received = subscriber.wait_for(4, WAIT).await.expect("all four arrive");
    let topics: Vec<&str> = received.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        ["zero", "one", "two", "large"].map(|s| format!("{prefix}/{s}"))
    );
    assert_eq!(received[2].qos, QoS::ExactlyOnce);
    assert_eq!(received[3].payload.len(), 100 * 1024);
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let broker = TestBroker::start().await.expect("broker starts");
    let addr = broker.addr();
    let topic = format!("{}/state", unique_name("retained"));
    let publisher = Publisher::start(
        &settings(&addr.ip().to_string(), addr.port(), "local"),
        "0123456789ab",
    )
    .expect("publisher starts");
    publisher
        .publish(&topic, Qos::AtLeastOnce, true, b"on", WAIT)
        .await
        .expect("publish");

    let subscriber = Subscriber::connect(addr, &unique_name("late"), &topic, QoS::AtLeastOnce)
        .await
        .expect("subscriber connects");
    let received = subscriber
        .wait_for(1, WAIT)
        .await
        .expect("retained arrives");
    assert!(received[0].retain);
    assert_eq!(&received[0].payload[..], b"on");

    // Clear the retained message so a shared broker does not keep it.
    publisher
        .publish(&topic, Qos::AtLeastOnce, true, b"", WAIT)
        .await
        .expect("clear");
}

#[tokio::test]
async fn missing_broker_fails_with_its_name() {
    // Bind and drop a listener to find a port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let publisher = Publisher::start(&settings("127.0.0.1", port, "gone"), "0123456789ab")
        .expect("publisher starts");
    let err = publisher
        .publish("alerts/hot", Qos::AtLeastOnce, false, b"{}", WAIT)
        .await
        .expect_err("nothing listens");
    assert!(err.starts_with("broker gone is not connected: "), "{err}");
}
