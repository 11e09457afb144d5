//! Checks rumqttc's QoS 2 fault that the broker task works around, against a real broker.
//!
//! rumqttc 0.25 discards its record of the QoS 2 packets it received when a connection drops. A broker
//! that resumes the session re-sends the PUBREL of a message whose PUBREC it got, and
//! rumqttc rejects it as unsolicited and drops the new connection, again at every
//! reconnect. This test shows the fault is still there; when it fails, rumqttc handles
//! the PUBREL and `wire_qos` can stop subscribing QoS 2 entries at QoS 1.

use std::time::{Duration, Instant};

use hubkit_testkit::mqtt::{
    BrokerKind, MqttProxy, QoS, TestBroker, packet_type, publish_all, unique_name,
};

#[tokio::test]
async fn rumqttc_rejects_resent_pubrel() {
    let broker = TestBroker::start().await.expect("broker");
    if broker.kind() == BrokerKind::Embedded {
        eprintln!("skipped: the PUBREL re-send after a resumed session is checked with mosquitto");
        return;
    }
    let proxy = MqttProxy::start(broker.addr()).await.expect("proxy");
    let topic = unique_name("pubrel");
    let mut options = rumqttc::MqttOptions::new(
        unique_name("pubrel-sub"),
        proxy.addr().ip().to_string(),
        proxy.addr().port(),
    );
    options.set_clean_session(false);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    client
        .subscribe(&topic, QoS::ExactlyOnce)
        .await
        .expect("queue subscribe");
    loop {
        let event = eventloop.poll().await.expect("connect and subscribe");
        if matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) {
            break;
        }
    }

    // The broker gets the PUBREC, then the connection drops before its PUBREL arrives.
    proxy.cut_after_client_packet(packet_type::PUBREC);
    publish_all(
        broker.addr(),
        &unique_name("pubrel-pub"),
        &topic,
        vec![b"1".to_vec()],
        QoS::ExactlyOnce,
        false,
    )
    .await
    .expect("publish");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut errors = Vec::new();
    while Instant::now() < deadline && errors.len() < 3 {
        let polled = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
        if let Ok(Err(err)) = polled {
            errors.push(err.to_string());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let unsolicited = errors.iter().filter(|e| e.contains("unsolicited")).count();
    assert!(
        unsolicited >= 2,
        "expected rumqttc to reject the re-sent PUBREL at every reconnect; errors: {errors:?}"
    );
}
