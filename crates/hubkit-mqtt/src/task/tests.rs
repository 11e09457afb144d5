//! The broker task against a scripted connection and sink, under paused time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::*;
use crate::status::BrokerStatus;
use crate::{BrokerAddress, BrokerTls, DataFormat, TopicFilter};

/// A request the task queued on a scripted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Request {
    Subscribe(String, Qos),
    Unsubscribe(String),
    Ack(u16),
    Disconnect,
}

type Log = Arc<Mutex<Vec<Request>>>;
type EventSender = mpsc::UnboundedSender<Result<Event, ConnectionError>>;

struct ScriptedConnection {
    events: mpsc::UnboundedReceiver<Result<Event, ConnectionError>>,
    log: Log,
}

#[derive(Clone)]
struct ScriptedRequests(Log);

impl Requests for ScriptedRequests {
    fn try_subscribe(&self, filter: &str, qos: Qos) -> Result<(), RequestError> {
        self.push(Request::Subscribe(filter.to_owned(), qos))
    }
    fn try_unsubscribe(&self, filter: &str) -> Result<(), RequestError> {
        self.push(Request::Unsubscribe(filter.to_owned()))
    }
}

impl ScriptedRequests {
    fn push(&self, request: Request) -> Result<(), RequestError> {
        self.0.lock().expect("log lock").push(request);
        Ok(())
    }
}

use crate::client::RequestError;

impl Connection for ScriptedConnection {
    type Requests = ScriptedRequests;

    fn requests(&self) -> ScriptedRequests {
        ScriptedRequests(self.log.clone())
    }

    async fn poll(&mut self) -> Result<Event, ConnectionError> {
        match self.events.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }

    async fn ack(&mut self, token: AckToken) -> Result<(), ConnectionError> {
        self.log
            .lock()
            .expect("log lock")
            .push(Request::Ack(token.pkid));
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        Ok(())
    }

    async fn disconnect(&mut self) -> Result<(), ConnectionError> {
        self.log.lock().expect("log lock").push(Request::Disconnect);
        // The broker closes the connection after DISCONNECT.
        self.events.close();
        Err(ConnectionError::Other("closed".to_owned()))
    }
}

/// Hands out one scripted connection per connect, recording each connection's requests
/// in its own log and the parameters of every attempt.
#[derive(Clone, Default)]
struct Script {
    pending: Arc<Mutex<VecDeque<ScriptedConnection>>>,
    params: Arc<Mutex<Vec<ConnectParams>>>,
}

impl Script {
    /// Queues a connection and returns its event sender and request log.
    fn add(&self) -> (EventSender, Log) {
        let (events_tx, events) = mpsc::unbounded_channel();
        let log = Log::default();
        self.pending
            .lock()
            .expect("lock")
            .push_back(ScriptedConnection {
                events,
                log: log.clone(),
            });
        (events_tx, log)
    }
}

impl Connector for Script {
    type Connection = ScriptedConnection;

    fn connect(&self, params: ConnectParams) -> Result<ScriptedConnection, ConnectionError> {
        self.params.lock().expect("lock").push(params);
        self.pending
            .lock()
            .expect("lock")
            .pop_front()
            .ok_or_else(|| ConnectionError::Other("no scripted connection left".to_owned()))
    }
}

/// A sink that commits after a delay named in the payload (`slow` waits 50 ms) and fails
/// the first `failures` attempts.
#[derive(Default)]
struct ScriptedSink {
    delivered: Mutex<Vec<u16>>,
    failures: Mutex<u32>,
    forgotten: Mutex<u32>,
}

impl Sink for ScriptedSink {
    async fn deliver(&self, delivery: Delivery) -> Result<Outcome, SinkError> {
        if delivery.message.payload.as_ref() == b"slow" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        {
            let mut failures = self.failures.lock().expect("lock");
            if *failures > 0 {
                *failures -= 1;
                return Err(SinkError("disk full".to_owned()));
            }
        }
        self.delivered
            .lock()
            .expect("lock")
            .push(delivery.message.pkid);
        Ok(Outcome {
            records: 1,
            ..Outcome::default()
        })
    }

    async fn forget_session(&self, session: Arc<str>) -> Result<(), SinkError> {
        assert_eq!(&*session, "hub@127.0.0.1:1883");
        *self.forgotten.lock().expect("lock") += 1;
        Ok(())
    }
}

fn settings() -> Arc<BrokerSettings> {
    Arc::new(BrokerSettings {
        name: "test".into(),
        address: BrokerAddress::parse("mqtt://127.0.0.1", None).expect("valid"),
        tls: BrokerTls::default(),
        username: None,
        password: None,
        client_id: Some("hub".into()),
        keep_alive: Duration::from_secs(60),
        clean_session: false,
        max_packet_bytes: 1024,
    })
}

fn entry(name: &str, filter: &str, timeout_secs: u64) -> Arc<TopicEntry> {
    Arc::new(TopicEntry {
        name: name.into(),
        broker: "test".into(),
        filter: TopicFilter::parse(filter).expect("valid"),
        qos: Qos::AtLeastOnce,
        format: DataFormat::Json,
        timeout: Duration::from_secs(timeout_secs),
    })
}

fn message(pkid: u16, payload: &'static str) -> Event {
    Event::Message(Message {
        topic: "sensors/a".into(),
        payload: Bytes::from_static(payload.as_bytes()),
        qos: Qos::AtLeastOnce,
        retain: false,
        dup: false,
        pkid,
    })
}

struct Running {
    status: SharedStatus,
    control: mpsc::Sender<Control>,
    shutdown: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

fn start(script: &Script, sink: Arc<ScriptedSink>, entries: Vec<Arc<TopicEntry>>) -> Running {
    let status = SharedStatus::new(BrokerStatus::new(
        "test",
        "mqtt://127.0.0.1:1883".into(),
        "hub".into(),
        true,
    ));
    let (control, control_rx) = mpsc::channel(4);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = BrokerTask::new(
        settings(),
        "hub",
        script.clone(),
        sink,
        entries,
        status.clone(),
        control_rx,
        shutdown_rx,
    )
    .with_backoff(Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(100),
    });
    let join = tokio::spawn(task.run());
    Running {
        status,
        control,
        shutdown,
        join,
    }
}

fn requests(log: &Log) -> Vec<Request> {
    log.lock().expect("lock").clone()
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn connected(session_present: bool) -> Result<Event, ConnectionError> {
    Ok(Event::Connected { session_present })
}

fn granted() -> Result<Event, ConnectionError> {
    Ok(Event::Subscribed(vec![Some(Qos::AtLeastOnce)]))
}

#[tokio::test(start_paused = true)]
async fn acks_follow_commits_in_arrival_order() {
    let script = Script::default();
    let (events, log) = script.add();
    let sink = Arc::new(ScriptedSink::default());
    let running = start(&script, sink.clone(), vec![entry("s", "sensors/#", 30)]);
    events.send(connected(false)).expect("send");
    events.send(granted()).expect("send");
    events.send(Ok(message(1, "slow"))).expect("send");
    events.send(Ok(message(2, "{}"))).expect("send");
    settle().await;
    assert_eq!(
        requests(&log),
        [Request::Subscribe("sensors/#".into(), Qos::AtLeastOnce)]
    );
    assert_eq!(
        *sink.delivered.lock().expect("lock"),
        [2],
        "the fast message commits first"
    );

    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        requests(&log),
        [
            Request::Subscribe("sensors/#".into(), Qos::AtLeastOnce),
            Request::Ack(1),
            Request::Ack(2),
        ],
        "acknowledgements keep the arrival order"
    );
    let _ = running.shutdown.send(true);
    running.join.await.expect("task ends");
    assert_eq!(requests(&log).last(), Some(&Request::Disconnect));
}

#[tokio::test(start_paused = true)]
async fn failed_commit_withholds_ack_until_retry() {
    let script = Script::default();
    let (events, log) = script.add();
    let sink = Arc::new(ScriptedSink {
        failures: Mutex::new(2),
        ..ScriptedSink::default()
    });
    let running = start(&script, sink, vec![entry("s", "sensors/#", 30)]);
    events.send(connected(false)).expect("send");
    events.send(granted()).expect("send");
    events.send(Ok(message(7, "{}"))).expect("send");
    settle().await;
    assert!(!requests(&log).contains(&Request::Ack(7)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(requests(&log).contains(&Request::Ack(7)));
    assert_eq!(running.status.snapshot().store_failures, 2);
    assert_eq!(running.status.snapshot().records, 1);
    let _ = running.shutdown.send(true);
    running.join.await.expect("task ends");
}

#[tokio::test(start_paused = true)]
async fn resumed_session_is_not_resubscribed() {
    let script = Script::default();
    let (first, first_log) = script.add();
    let (second, second_log) = script.add();
    let (third, third_log) = script.add();
    let sink = Arc::new(ScriptedSink::default());
    let running = start(&script, sink.clone(), vec![entry("s", "sensors/#", 30)]);
    first.send(connected(false)).expect("send");
    first.send(granted()).expect("send");
    first
        .send(Err(ConnectionError::Other("reset".into())))
        .expect("send");
    second.send(connected(true)).expect("send");
    second
        .send(Err(ConnectionError::Other("reset".into())))
        .expect("send");
    third.send(connected(false)).expect("send");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let subscribe = Request::Subscribe("sensors/#".into(), Qos::AtLeastOnce);
    assert_eq!(requests(&first_log), std::slice::from_ref(&subscribe));
    assert!(
        requests(&second_log).is_empty(),
        "the broker kept the subscription"
    );
    assert_eq!(
        requests(&third_log),
        [subscribe],
        "a new session subscribes again"
    );
    let status = running.status.snapshot();
    assert_eq!(status.reconnects, 2);
    assert_eq!(status.last_error.as_deref(), Some("reset"));
    let _ = running.shutdown.send(true);
    running.join.await.expect("task ends");
}

#[tokio::test(start_paused = true)]
async fn missing_suback_times_out() {
    let script = Script::default();
    let (first, _) = script.add();
    let (_second, second_log) = script.add();
    let running = start(&script, Arc::default(), vec![entry("s", "sensors/#", 2)]);
    first.send(connected(false)).expect("send");
    tokio::time::sleep(Duration::from_millis(1900)).await;
    assert_eq!(running.status.snapshot().reconnects, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = running.status.snapshot();
    assert_eq!(status.reconnects, 1);
    let error = status.last_error.unwrap_or_default();
    assert!(
        error.contains("no SUBACK for filter \"sensors/#\""),
        "{error}"
    );
    assert_eq!(
        script.params.lock().expect("lock")[0].connect_timeout,
        Duration::from_secs(2)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        requests(&second_log).len(),
        0,
        "the second connection waits for its CONNACK"
    );
    let _ = running.shutdown.send(true);
    running.join.await.expect("task ends");
}

#[tokio::test(start_paused = true)]
async fn rejected_subscription_is_reported() {
    let script = Script::default();
    let (events, _log) = script.add();
    let running = start(&script, Arc::default(), vec![entry("s", "secret/#", 30)]);
    events.send(connected(false)).expect("send");
    events
        .send(Ok(Event::Subscribed(vec![None])))
        .expect("send");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = running.status.snapshot();
    assert_eq!(status.entries[0].subscription, SubscriptionState::Rejected);
    assert_eq!(status.state, ConnectionState::Connected);
    assert_eq!(status.reconnects, 0);
    let _ = running.shutdown.send(true);
    running.join.await.expect("task ends");
}

#[tokio::test(start_paused = true)]
async fn oversized_packet_raises_next_limit() {
    let script = Script::default();
    let (first, _) = script.add();
    let (second, _) = script.add();
    let (_third, _) = script.add();
    let running = start(&script, Arc::default(), vec![entry("s", "sensors/#", 30)]);
    first.send(connected(false)).expect("send");
    first
        .send(Err(ConnectionError::PacketTooLarge {
            size: 5000,
            limit: 1024,
        }))
        .expect("send");
    tokio::time::sleep(Duration::from_secs(1)).await;
    second.send(connected(true)).expect("send");
    second
        .send(Err(ConnectionError::Other("reset".into())))
        .expect("send");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let params = script.params.lock().expect("lock").clone();
    assert_eq!(params.len(), 3);
    assert_eq!(params[0].max_packet_bytes, 1024);
    assert!(params[1].max_packet_bytes >= 5000, "{params:?}");
    assert_eq!(
        params[2].max_packet_bytes, 1024,
        "the raise lasts one connection"
    );
    let _ = running.shutdown.send(true);
    running.join.await.expect("task ends");
}

#[tokio::test(start_paused = true)]
async fn new_entries_change_subscriptions() {
    let script = Script::default();
    let (events, log) = script.add();
    let running = start(&script, Arc::default(), vec![entry("a", "a/#", 30)]);
    events.send(connected(false)).expect("send");
    events.send(granted()).expect("send");
    settle().await;
    running
        .control
        .send(Control::Entries(vec![entry("b", "b/#", 30)]))
        .await
        .expect("send");
    settle().await;
    assert_eq!(
        requests(&log),
        [
            Request::Subscribe("a/#".into(), Qos::AtLeastOnce),
            Request::Subscribe("b/#".into(), Qos::AtLeastOnce),
            Request::Unsubscribe("a/#".into()),
        ]
    );
    let _ = running.shutdown.send(true);
    running.join.await.expect("task ends");
}

#[test]
fn covered_filters_are_not_subscribed() {
    let entries = vec![
        entry("temperature", "sensors/+/temperature", 30),
        entry("all", "sensors/#", 10),
        entry("other", "plant/+/x", 30),
        entry("overlap", "plant/a/+", 30),
    ];
    let plan = plan_subscriptions(&entries);
    let filters: Vec<&str> = plan.filters.keys().map(String::as_str).collect();
    assert_eq!(filters, ["plant/+/x", "plant/a/+", "sensors/#"]);
    assert_eq!(plan.subscribed_as["sensors/+/temperature"], "sensors/#");
    assert_eq!(plan.filters["sensors/#"].1, Duration::from_secs(10));
}
