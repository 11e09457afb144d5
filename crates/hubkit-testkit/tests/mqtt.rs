//! Tests of the MQTT harness against real brokers. With HUBKIT_TEST_MQTT_BROKER set, the
//! tests that do not restart a broker use that broker as a normal client.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use hubkit_testkit::mqtt::{
    BROKER_ENV, BrokerKind, MqttProxy, QoS, ReceivedMessage, Subscriber, SubscriberOptions,
    TestBroker, clear_session, packet_type, publish_all, unique_name,
};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(10);

fn numbered_payloads(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("message-{i}").into_bytes())
        .collect()
}

fn payloads_of(messages: &[ReceivedMessage]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|message| message.payload.to_vec())
        .collect()
}

/// Returns the last lines of the broker's log, for error context.
fn log_tail(broker: &TestBroker) -> String {
    let Some(log) = broker.log() else {
        return format!("{broker}: no log available");
    };
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(80);
    format!("{broker}, last log lines:\n{}", lines[start..].join("\n"))
}

/// Polls `condition` every 5 ms until it is true or `timeout` passes, and returns its last value.
async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn start_honours_broker_env() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    match std::env::var(BROKER_ENV) {
        Ok(value) => {
            assert_eq!(broker.kind(), BrokerKind::External);
            assert_eq!(broker.addr().to_string(), value);
            assert!(!broker.can_restart());
        }
        Err(_) => assert_ne!(broker.kind(), BrokerKind::External),
    }
    Ok(())
}

#[tokio::test]
async fn roundtrip_at_each_qos() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let topic = unique_name("roundtrip");
        let subscriber =
            Subscriber::connect(broker.addr(), &unique_name("sub"), &topic, qos).await?;
        let payloads = numbered_payloads(20);
        publish_all(
            broker.addr(),
            &unique_name("pub"),
            &topic,
            payloads.clone(),
            qos,
            false,
        )
        .await
        .with_context(|| log_tail(&broker))?;
        let messages = subscriber
            .wait_for(20, WAIT)
            .await
            .with_context(|| log_tail(&broker))?;
        assert_eq!(payloads_of(&messages), payloads, "payloads at {qos:?}");
        for message in &messages {
            assert_eq!(message.topic, topic);
            assert_eq!(message.qos, qos);
            assert!(!message.retain, "retain flag at {qos:?}");
            assert!(!message.dup, "dup flag at {qos:?}");
        }
        subscriber.disconnect().await?;
    }
    Ok(())
}

#[tokio::test]
async fn retained_message_reaches_late_subscriber() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let topic = unique_name("retained");
    let publisher = unique_name("pub");
    let payload = b"last value".to_vec();
    publish_all(
        broker.addr(),
        &publisher,
        &topic,
        vec![payload.clone()],
        QoS::AtLeastOnce,
        true,
    )
    .await?;

    let subscriber =
        Subscriber::connect(broker.addr(), &unique_name("sub"), &topic, QoS::AtLeastOnce).await?;
    let messages = subscriber.wait_for(1, WAIT).await?;
    assert_eq!(messages[0].payload.as_ref(), payload.as_slice());
    assert!(messages[0].retain);
    subscriber.disconnect().await?;

    // An empty retained message deletes the retained one, which keeps a shared broker clean.
    publish_all(
        broker.addr(),
        &publisher,
        &topic,
        vec![Vec::new()],
        QoS::AtLeastOnce,
        true,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn two_mib_payload_through_proxy() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let proxy = MqttProxy::start(broker.addr()).await?;
    let topic = unique_name("large");
    let subscriber =
        Subscriber::connect(proxy.addr(), &unique_name("sub"), &topic, QoS::AtLeastOnce).await?;
    let payload: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    publish_all(
        proxy.addr(),
        &unique_name("pub"),
        &topic,
        vec![payload.clone()],
        QoS::AtLeastOnce,
        false,
    )
    .await
    .with_context(|| log_tail(&broker))?;
    let messages = subscriber.wait_for(1, WAIT).await?;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].payload == payload, "2 MiB payload differs");
    assert_eq!(proxy.client_packets(packet_type::PUBLISH), 1);
    assert!(
        eventually(WAIT, || proxy.client_packets(packet_type::PUBACK) == 1).await,
        "the subscriber's PUBACK did not pass the proxy"
    );
    Ok(())
}

#[tokio::test]
async fn proxy_counts_client_packets() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let proxy = MqttProxy::start(broker.addr()).await?;
    let topic = unique_name("counts");
    let subscriber =
        Subscriber::connect(proxy.addr(), &unique_name("sub"), &topic, QoS::AtLeastOnce).await?;
    publish_all(
        proxy.addr(),
        &unique_name("pub"),
        &topic,
        numbered_payloads(5),
        QoS::AtLeastOnce,
        false,
    )
    .await?;
    subscriber.wait_for(5, WAIT).await?;
    subscriber.disconnect().await?;
    assert!(
        eventually(WAIT, || proxy.open_connections() == 0).await,
        "{} connections still open",
        proxy.open_connections()
    );
    assert_eq!(proxy.connections_accepted(), 2);
    assert_eq!(proxy.client_packets(packet_type::CONNECT), 2);
    assert_eq!(proxy.client_packets(packet_type::SUBSCRIBE), 1);
    assert_eq!(proxy.client_packets(packet_type::PUBLISH), 5);
    assert_eq!(proxy.client_packets(packet_type::PUBACK), 5);
    assert_eq!(proxy.client_packets(packet_type::DISCONNECT), 2);
    assert_eq!(proxy.client_packets_dropped(packet_type::PUBACK), 0);
    Ok(())
}

#[tokio::test]
async fn proxy_cut_forces_reconnect() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let proxy = MqttProxy::start(broker.addr()).await?;
    let topic = unique_name("cut");
    let mut options = SubscriberOptions::new(unique_name("sub"), &topic);
    options.clean_session = false;
    options.reconnect = true;
    let subscriber = Subscriber::connect_with(proxy.addr(), options.clone()).await?;
    assert_eq!(proxy.open_connections(), 1);

    assert_eq!(proxy.cut(), 1);
    let session_present = subscriber.wait_for_connacks(2, WAIT).await?;
    assert_eq!(session_present, vec![false, true]);
    assert_eq!(proxy.connections_accepted(), 2);
    assert_eq!(subscriber.connection_errors().len(), 1);

    publish_all(
        broker.addr(),
        &unique_name("pub"),
        &topic,
        numbered_payloads(3),
        QoS::AtLeastOnce,
        false,
    )
    .await?;
    let messages = subscriber.wait_for(3, WAIT).await?;
    assert_eq!(payloads_of(&messages), numbered_payloads(3));
    subscriber.disconnect().await?;
    clear_session(broker.addr(), &options.client_id).await?;
    Ok(())
}

#[tokio::test]
async fn proxy_pause_rejects_new_connections() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let proxy = MqttProxy::start(broker.addr()).await?;
    let topic = unique_name("pause");
    proxy.pause();
    let rejected =
        Subscriber::connect(proxy.addr(), &unique_name("sub"), &topic, QoS::AtLeastOnce).await;
    assert!(rejected.is_err(), "connected through a paused proxy");
    assert_eq!(proxy.connections_rejected(), 1);
    assert_eq!(proxy.connections_accepted(), 0);

    proxy.resume();
    let subscriber =
        Subscriber::connect(proxy.addr(), &unique_name("sub"), &topic, QoS::AtLeastOnce).await?;
    assert_eq!(proxy.connections_accepted(), 1);
    subscriber.disconnect().await?;
    Ok(())
}

#[tokio::test]
async fn cut_after_puback_delivers_first_message_once() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let proxy = MqttProxy::start(broker.addr()).await?;
    let topic = unique_name("cut-after");
    let mut options = SubscriberOptions::new(unique_name("sub"), &topic);
    options.clean_session = false;
    options.reconnect = true;
    let subscriber = Subscriber::connect_with(proxy.addr(), options.clone()).await?;
    proxy.cut_after_client_packet(packet_type::PUBACK);

    let payloads = numbered_payloads(3);
    publish_all(
        broker.addr(),
        &unique_name("pub"),
        &topic,
        payloads.clone(),
        QoS::AtLeastOnce,
        false,
    )
    .await?;
    let session_present = subscriber.wait_for_connacks(2, WAIT).await?;
    assert_eq!(session_present, vec![false, true]);
    let all_received = eventually(WAIT, || {
        let received: HashSet<Vec<u8>> = payloads_of(&subscriber.messages()).into_iter().collect();
        received.len() == payloads.len()
    })
    .await;
    let messages = subscriber.messages();
    assert!(
        all_received,
        "received {:?}; {}",
        payloads_of(&messages),
        log_tail(&broker)
    );
    assert_eq!(proxy.connections_accepted(), 2);
    // The PUBACK of the first message reached the broker before the cut.
    let first_copies = messages
        .iter()
        .filter(|message| message.payload.as_ref() == payloads[0].as_slice())
        .count();
    assert_eq!(first_copies, 1, "messages: {messages:?}");
    subscriber.disconnect().await?;
    clear_session(broker.addr(), &options.client_id).await?;
    Ok(())
}

/// What a persistent-session subscriber received when its first PUBACK was lost.
struct Redelivery {
    first: ReceivedMessage,
    again: Vec<ReceivedMessage>,
    session_present: Vec<bool>,
}

/// Subscribes through a proxy that drops the first PUBACK, receives one QoS 1 message, cuts
/// the connection and lets the subscriber reconnect with its session.
async fn observe_redelivery(broker: &TestBroker) -> anyhow::Result<Redelivery> {
    let proxy = MqttProxy::start(broker.addr()).await?;
    let topic = unique_name("redeliver");
    let mut options = SubscriberOptions::new(unique_name("sub"), &topic);
    options.clean_session = false;
    options.reconnect = true;
    let subscriber = Subscriber::connect_with(proxy.addr(), options.clone()).await?;
    proxy.drop_client_packets(packet_type::PUBACK, 1);

    publish_all(
        broker.addr(),
        &unique_name("pub"),
        &topic,
        vec![b"unacknowledged".to_vec()],
        QoS::AtLeastOnce,
        false,
    )
    .await?;
    subscriber.wait_for(1, WAIT).await?;
    assert!(
        eventually(WAIT, || proxy.client_packets_dropped(packet_type::PUBACK)
            == 1)
        .await,
        "the proxy did not drop the PUBACK"
    );
    proxy.cut();
    subscriber.wait_for_connacks(2, WAIT).await?;
    let messages = subscriber
        .wait_for(2, WAIT)
        .await
        .with_context(|| log_tail(broker))?;
    let session_present = subscriber.session_present();
    subscriber.disconnect().await?;
    clear_session(broker.addr(), &options.client_id).await?;
    Ok(Redelivery {
        first: messages[0].clone(),
        again: messages[1..].to_vec(),
        session_present,
    })
}

#[tokio::test]
async fn mosquitto_redelivers_unacked_with_dup() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    if broker.kind() == BrokerKind::Embedded {
        eprintln!("skipped: no mosquitto binary and no {BROKER_ENV}");
        return Ok(());
    }
    let redelivery = observe_redelivery(&broker).await?;
    assert_eq!(redelivery.session_present, vec![false, true]);
    assert!(!redelivery.first.dup);
    assert_eq!(redelivery.again.len(), 1);
    assert_eq!(redelivery.again[0].payload, redelivery.first.payload);
    assert!(redelivery.again[0].dup, "mosquitto redelivered without DUP");
    Ok(())
}

#[tokio::test]
async fn rumqttd_redelivers_unacked_without_dup() -> anyhow::Result<()> {
    let broker = TestBroker::start_embedded().await?;
    let redelivery = observe_redelivery(&broker).await?;
    assert_eq!(redelivery.session_present, vec![false, true]);
    assert!(!redelivery.first.dup);
    assert_eq!(redelivery.again.len(), 1);
    assert_eq!(redelivery.again[0].payload, redelivery.first.payload);
    // rumqttd 0.20 re-reads unacknowledged messages from its log and sends them as stored.
    assert!(
        !redelivery.again[0].dup,
        "rumqttd now sets DUP on redelivery"
    );
    Ok(())
}

#[tokio::test]
async fn rumqttd_queues_for_offline_session() -> anyhow::Result<()> {
    let broker = TestBroker::start_embedded().await?;
    let topic = unique_name("offline");
    let mut options = SubscriberOptions::new(unique_name("sub"), &topic);
    options.clean_session = false;
    let first = Subscriber::connect_with(broker.addr(), options.clone()).await?;
    first.disconnect().await?;
    publish_all(
        broker.addr(),
        &unique_name("pub"),
        &topic,
        numbered_payloads(10),
        QoS::AtLeastOnce,
        false,
    )
    .await?;
    let second = Subscriber::connect_with(broker.addr(), options).await?;
    assert_eq!(second.session_present(), vec![true]);
    let messages = second.wait_for(10, WAIT).await?;
    assert_eq!(payloads_of(&messages), numbered_payloads(10));
    Ok(())
}

/// Spawns a restartable mosquitto, or returns `None` (and the test passes) without a binary.
async fn restartable_broker() -> anyhow::Result<Option<TestBroker>> {
    let broker = TestBroker::start_restartable().await?;
    if broker.is_none() {
        eprintln!("skipped: no mosquitto binary to restart");
    }
    Ok(broker)
}

#[tokio::test]
async fn restart_keeps_queued_messages() -> anyhow::Result<()> {
    let Some(mut broker) = restartable_broker().await? else {
        return Ok(());
    };
    assert_eq!(broker.kind(), BrokerKind::Mosquitto);
    assert!(broker.can_restart());
    let addr: SocketAddr = broker.addr();
    let topic = unique_name("persist");
    let mut options = SubscriberOptions::new(unique_name("sub"), &topic);
    options.clean_session = false;
    let first = Subscriber::connect_with(addr, options.clone()).await?;
    assert_eq!(first.session_present(), vec![false]);
    first.disconnect().await?;

    let payloads = numbered_payloads(100);
    publish_all(
        addr,
        &unique_name("pub"),
        &topic,
        payloads.clone(),
        QoS::AtLeastOnce,
        false,
    )
    .await?;
    broker.restart().await.with_context(|| log_tail(&broker))?;
    assert_eq!(broker.addr(), addr);

    let second = Subscriber::connect_with(addr, options)
        .await
        .with_context(|| log_tail(&broker))?;
    assert_eq!(second.session_present(), vec![true]);
    let messages = second
        .wait_for(100, WAIT)
        .await
        .with_context(|| log_tail(&broker))?;
    assert_eq!(payloads_of(&messages), payloads);
    for message in &messages {
        assert_eq!(message.qos, QoS::AtLeastOnce);
        assert!(!message.dup, "queued message {message:?} was marked DUP");
    }
    Ok(())
}

#[tokio::test]
async fn restart_redelivers_inflight_messages() -> anyhow::Result<()> {
    let Some(mut broker) = restartable_broker().await? else {
        return Ok(());
    };
    let topic = unique_name("inflight");
    let mut options = SubscriberOptions::new(unique_name("sub"), &topic);
    options.clean_session = false;
    options.reconnect = true;
    options.acknowledge = false;
    let subscriber = Subscriber::connect_with(broker.addr(), options).await?;
    let payloads = numbered_payloads(5);
    publish_all(
        broker.addr(),
        &unique_name("pub"),
        &topic,
        payloads.clone(),
        QoS::AtLeastOnce,
        false,
    )
    .await?;
    subscriber.wait_for(5, WAIT).await?;

    broker.restart().await.with_context(|| log_tail(&broker))?;
    let messages = subscriber
        .wait_for(10, WAIT)
        .await
        .with_context(|| log_tail(&broker))?;
    assert_eq!(subscriber.session_present(), vec![false, true]);
    assert_eq!(payloads_of(&messages[..5]), payloads);
    assert_eq!(payloads_of(&messages[5..]), payloads);
    for message in &messages[5..] {
        assert!(message.dup, "redelivered {message:?} without DUP");
    }
    Ok(())
}

#[tokio::test]
async fn spawned_mosquitto_log_is_readable() -> anyhow::Result<()> {
    let Some(broker) = restartable_broker().await? else {
        return Ok(());
    };
    let log = broker.log().context("a spawned mosquitto has a log")?;
    assert!(log.contains("mosquitto version"), "log:\n{log}");
    let listening = format!("listen socket on port {}", broker.addr().port());
    assert!(log.contains(&listening), "log:\n{log}");
    Ok(())
}

#[tokio::test]
async fn external_and_embedded_cannot_restart() -> anyhow::Result<()> {
    let mut embedded = TestBroker::start_embedded().await?;
    assert_eq!(embedded.kind(), BrokerKind::Embedded);
    assert!(!embedded.can_restart());
    assert!(embedded.restart().await.is_err());
    assert!(embedded.log().is_none());

    let mut external = TestBroker::external(embedded.addr()).await?;
    assert_eq!(external.kind(), BrokerKind::External);
    assert!(!external.can_restart());
    assert!(external.restart().await.is_err());
    assert!(external.log().is_none());
    Ok(())
}

#[tokio::test]
async fn embedded_broker_keeps_quick_reconnects() -> anyhow::Result<()> {
    // Each round disconnects cleanly and connects again at once, which is when rumqttd 0.20
    // without the relay could disconnect the new client.
    let broker = TestBroker::start_embedded().await?;
    for round in 0..30 {
        let topic = unique_name("quick");
        let mut options = SubscriberOptions::new(unique_name("sub"), &topic);
        options.clean_session = false;
        let first = Subscriber::connect_with(broker.addr(), options.clone()).await?;
        first.disconnect().await?;
        publish_all(
            broker.addr(),
            &unique_name("pub"),
            &topic,
            numbered_payloads(3),
            QoS::AtLeastOnce,
            false,
        )
        .await
        .with_context(|| format!("round {round}"))?;
        let second = Subscriber::connect_with(broker.addr(), options).await?;
        let messages = second
            .wait_for(3, WAIT)
            .await
            .with_context(|| format!("round {round}"))?;
        assert_eq!(
            payloads_of(&messages),
            numbered_payloads(3),
            "round {round}"
        );
        second.disconnect().await?;
    }
    Ok(())
}
