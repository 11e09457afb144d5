//! Triggers and actions end to end. Records posted over real HTTPS fire triggers, and the
//! runner executes the actions against an HTTP server and an MQTT broker that the test
//! starts. The tests read the runs back through the action API, the files and the metrics.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::http_recorder::HttpRecorder;
use common::{TestHub, admin, config_text, parse, post_json};
use http::Method;
use hubkit_testkit::TestResponse;
use hubkit_testkit::mqtt::{QoS, Subscriber, TestBroker, unique_name};
use serde_json::{Value, json};

/// Maximum wait for a run, a request or a message to arrive.
const WAIT: Duration = Duration::from_secs(20);

/// Areas, webhooks and bindings that every test here uses. `sensor-data`, `other-sensor`
/// and `sensor-data-query` post to layer Webhooks, and `door-sensor` posts to layer Doors.
const BASE: &str = r#"
[[areas]]
name = "Office"
  [[areas.layers]]
  name = "Webhooks"
  kind = "webhook-json"
  [[areas.layers]]
  name = "Doors"
  kind = "webhook-json"

[[webhooks]]
name = "sensor-data"
custom_path = "sensor-data"
payload_format = "json"

[[webhooks]]
name = "other-sensor"
custom_path = "other-sensor"
payload_format = "json"

[[webhooks]]
name = "sensor-data-query"
custom_path = "sensor-data-query"
payload_format = "query-params"

[[webhooks]]
name = "door-sensor"
custom_path = "door-sensor"
payload_format = "json"

[[bindings]]
webhook = "sensor-data"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "other-sensor"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "sensor-data-query"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "door-sensor"
area = "Office"
layer = "Doors"
"#;

/// An action with one Log step, for tests that only count runs.
const NOTE_ACTION: &str = r#"
[[actions]]
name = "note"
  [[actions.steps]]
  component = "log"
  message = "{{ TriggerName }} fired on {{ Data | tojson }}"
"#;

async fn start(body: &str) -> TestHub {
    TestHub::start(&format!("{BASE}{body}")).await
}

/// Posts `body` to webhook `device`, expects 200 and returns the record's DataId.
async fn post_reading(hub: &TestHub, device: &str, body: &str) -> String {
    let response = post_json(hub, &format!("/webhook/urls/{device}"), body.to_owned()).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["DataId"]
        .as_str()
        .expect("DataId")
        .to_owned()
}

/// Sends a GET with the admin token.
async fn get(hub: &TestHub, path: &str) -> TestResponse {
    let (name, value) = admin();
    hub.client
        .get(path, &[(name, &value)])
        .await
        .expect("request")
}

/// Sends a GET with the admin token, expects 200 and returns the JSON body.
async fn get_json(hub: &TestHub, path: &str) -> Value {
    let response = get(hub, path).await;
    assert_eq!(
        response.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()
}

/// Returns the first page of `GET /api/v1/action-runs{query}`.
/// Lists runs once no fired run waits in the queue, where the list does not show it yet.
async fn list_runs(hub: &TestHub, query: &str) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = get_json(hub, &format!("/api/v1/action-runs{query}")).await;
        if page["queued"] == 0 {
            return page["runs"].as_array().expect("runs").clone();
        }
        assert!(
            Instant::now() < deadline,
            "fired runs stay queued: {page:#}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn is_finished(run: &Value) -> bool {
    run["status"] == "succeeded" || run["status"] == "failed"
}

/// Waits until run `id` succeeded or failed, and returns it with its input.
async fn wait_finished(hub: &TestHub, id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let run = get_json(hub, &format!("/api/v1/action-runs/{id}")).await;
        if is_finished(&run) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} did not finish within {WAIT:?}: {run:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `GET /api/v1/action-runs{query}` lists `count` runs that all finished,
/// and returns them, newest first.
async fn wait_runs_finished(hub: &TestHub, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let runs = list_runs(hub, query).await;
        if runs.len() >= count && runs.iter().all(is_finished) {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "{count} finished runs of {query:?} expected within {WAIT:?}: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `POST /api/v1/actions/<name>/run{query}` with the admin token and `body`.
async fn request_run(hub: &TestHub, name: &str, query: &str, body: &str) -> TestResponse {
    let (auth, value) = admin();
    hub.client
        .send(
            Method::POST,
            &format!("/api/v1/actions/{name}/run{query}"),
            &[(auth, &value), ("content-type", "application/json")],
            body.to_owned(),
        )
        .await
        .expect("request")
}

/// Requests a run of `name` with `properties`, waits for it and returns the response body.
async fn run_now(hub: &TestHub, name: &str, properties: &Value) -> Value {
    let response = request_run(hub, name, "", &properties.to_string()).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()
}

/// Returns the problem type of an `application/problem+json` response.
fn problem_type(response: &TestResponse) -> String {
    assert_eq!(
        response.header("content-type"),
        "application/problem+json",
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["type"]
        .as_str()
        .expect("problem type")
        .to_owned()
}

/// Returns a 127.0.0.1 address that nothing listens on: the port was free a moment ago.
async fn closed_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    listener.local_addr().expect("address")
}

/// Returns the value of the metric line that starts with `series`, or `None` when the
/// series is absent.
async fn metric(hub: &TestHub, series: &str) -> Option<f64> {
    let response = hub.client.get("/metrics", &[]).await.expect("metrics");
    let text = String::from_utf8_lossy(&response.body).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

/// Waits until the metric `series` reaches `value`.
async fn wait_metric(hub: &TestHub, series: &str, value: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let current = metric(hub, series).await.unwrap_or(0.0);
        if current >= value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "metric {series} is {current}, expected {value} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Broker, action and trigger of the shipped example: a hot reading of `sensor-data` is
/// POSTed to an HTTP endpoint, then published with the endpoint's status.
const HOT_ALERT: &str = r#"
[[brokers]]
name = "alerts"
url = "mqtt://BROKER_HOST"
port = BROKER_PORT
client_id = "CLIENT_ID"

[[actions]]
name = "hot-alert"
  [[actions.steps]]
  component = "http_request"
  method = "POST"
  url = "RECORDER/alerts/{{ PhysicalDeviceName }}?severity={{ Properties.severity }}"
  headers = { "X-Trigger" = "{{ TriggerName }}" }
  body = '{"temperature": {{ Data.temperature }}, "device": {{ PhysicalDeviceName | tojson }}, "severity": {{ Properties.severity | tojson }}, "data_id": {{ DataId | tojson }}}'
  retries = 0

  [[actions.steps]]
  component = "mqtt_publish"
  broker = "alerts"
  topic = "TOPIC_PREFIX/{{ PhysicalDeviceName }}"
  qos = 1
  payload = '{"temperature": {{ Data.temperature }}, "endpoint_status": {{ payload.status }}, "ticket": {{ payload.body.ticket }}}'

[[triggers]]
name = "too-hot"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
action = "hot-alert"
properties = { severity = "high" }
"#;

/// Proves the whole path of a layer trigger. A hot record of the trigger's device runs an
/// HTTP Request rendered from the record's Data and the trigger's Properties, then an MQTT
/// Publish rendered from the HTTP step's output. The run is listed as succeeded with the
/// record's DataId. A cold record and a hot record of another device run nothing.
#[tokio::test]
async fn hot_record_runs_http_then_mqtt() {
    let broker = TestBroker::start().await.expect("broker");
    let prefix = unique_name("alerts");
    let subscriber = Subscriber::connect(
        broker.addr(),
        &unique_name("alerts-sub"),
        &format!("{prefix}/#"),
        QoS::AtLeastOnce,
    )
    .await
    .expect("subscriber");
    let recorder = HttpRecorder::start(201, r#"{"accepted": true, "ticket": 7}"#).await;
    let body = HOT_ALERT
        .replace("BROKER_HOST", &broker.addr().ip().to_string())
        .replace("BROKER_PORT", &broker.addr().port().to_string())
        .replace("CLIENT_ID", &unique_name("alerts-hub"))
        .replace("TOPIC_PREFIX", &prefix)
        .replace("RECORDER", &recorder.url());
    let hub = start(&body).await;

    let data_id = post_reading(
        &hub,
        "sensor-data",
        r#"{"temperature": 35, "humidity": 60}"#,
    )
    .await;

    let requests = recorder.wait_for(1, WAIT).await;
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/alerts/sensor-data?severity=high");
    assert_eq!(request.header("x-trigger"), Some("too-hot"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({"temperature": 35, "device": "sensor-data", "severity": "high", "data_id": data_id})
    );

    let messages = subscriber.wait_for(1, WAIT).await.expect("alert message");
    assert_eq!(messages[0].topic, format!("{prefix}/sensor-data"));
    let payload: Value = serde_json::from_slice(&messages[0].payload).expect("JSON payload");
    assert_eq!(
        payload,
        json!({"temperature": 35, "endpoint_status": 201, "ticket": 7})
    );

    let runs = wait_runs_finished(&hub, "", 1).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["trigger"], "too-hot");
    assert_eq!(run["action"], "hot-alert");
    assert_eq!(run["data_id"], data_id.as_str());
    assert_eq!(run["attempts"], 1);
    assert_eq!(run["error"], Value::Null);
    assert!(run.get("input").is_none(), "listings leave out the input");
    let steps = run["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{steps:#?}");
    assert_eq!(steps[0]["component"], "http_request");
    assert_eq!(steps[0]["status"], "succeeded");
    assert_eq!(steps[0]["attempts"], 1);
    assert_eq!(steps[1]["component"], "mqtt_publish");
    assert_eq!(steps[1]["status"], "succeeded");

    let id = run["id"].as_str().expect("id");
    let detail = get_json(&hub, &format!("/api/v1/action-runs/{id}")).await;
    let input = &detail["input"];
    assert_eq!(input["TriggerName"], "too-hot");
    assert_eq!(input["Properties"], json!({"severity": "high"}));
    assert_eq!(input["DataId"], data_id.as_str());
    assert_eq!(input["Data"]["temperature"], 35);
    assert_eq!(input["PhysicalDeviceName"], "sensor-data");
    assert_eq!(input["AreaName"], "Office");
    assert!(input["FiredAt"].is_string(), "{input:#}");

    post_reading(&hub, "sensor-data", r#"{"temperature": 20}"#).await;
    post_reading(&hub, "other-sensor", r#"{"temperature": 35}"#).await;
    // Runs are stored with their record, so a run would be listed once the POST returned.
    assert_eq!(list_runs(&hub, "").await.len(), 1);
    assert_eq!(recorder.requests().len(), 1);
    assert_eq!(
        metric(
            &hub,
            "hubkit_action_runs_total{action=\"hot-alert\",status=\"succeeded\"}"
        )
        .await,
        Some(1.0)
    );
    hub.stop().await;
}

/// Proves that a numeric operator compares a number sent as text: a query-parameter
/// webhook stores `temperature=35` as the string "35", and `> 30` fires on it, while "20"
/// and "warm" do not.
#[tokio::test]
async fn numeric_string_fires_as_number() {
    let body = format!(
        r#"{NOTE_ACTION}
[[triggers]]
name = "query-hot"
area = "Office"
layer = "Webhooks"
device = "sensor-data-query"
field = "temperature"
operator = ">"
value = 30
action = "note"
"#
    );
    let hub = start(&body).await;
    for query in ["temperature=35", "temperature=20", "temperature=warm"] {
        let response = hub
            .client
            .get(&format!("/webhook/urls/sensor-data-query?{query}"), &[])
            .await
            .expect("request");
        assert_eq!(response.status, 200, "{query}");
    }
    let runs = wait_runs_finished(&hub, "", 1).await;
    assert_eq!(runs.len(), 1, "only temperature=35 fires: {runs:#?}");
    assert_eq!(runs[0]["status"], "succeeded");
    let id = runs[0]["id"].as_str().expect("id");
    let detail = get_json(&hub, &format!("/api/v1/action-runs/{id}")).await;
    assert_eq!(detail["input"]["Data"]["temperature"], "35");
    hub.stop().await;
}

/// Proves the gate settings. With `threshold = true`, a run of hot records fires once and
/// a cold record re-arms the trigger. With `interval_ms`, hot records fire at most once per
/// interval, whatever comes between.
#[tokio::test]
async fn threshold_and_interval_limit_firing() {
    let body = format!(
        r#"{NOTE_ACTION}
[[triggers]]
name = "hot-threshold"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
threshold = true
action = "note"

[[triggers]]
name = "hot-interval"
area = "Office"
layer = "Webhooks"
device = "other-sensor"
field = "temperature"
operator = ">"
value = 30
interval_ms = 3000
action = "note"
"#
    );
    let hub = start(&body).await;
    let hot = r#"{"temperature": 35}"#;
    let cold = r#"{"temperature": 20}"#;
    let threshold_runs = "?trigger=hot-threshold";
    let interval_runs = "?trigger=hot-interval";

    for _ in 0..3 {
        post_reading(&hub, "sensor-data", hot).await;
    }
    assert_eq!(
        list_runs(&hub, threshold_runs).await.len(),
        1,
        "three hot records in a row fire once"
    );
    post_reading(&hub, "sensor-data", cold).await;
    assert_eq!(list_runs(&hub, threshold_runs).await.len(), 1);
    post_reading(&hub, "sensor-data", hot).await;
    assert_eq!(
        list_runs(&hub, threshold_runs).await.len(),
        2,
        "a hot record after a cold one fires again"
    );

    post_reading(&hub, "other-sensor", hot).await;
    let first_fired = Instant::now();
    assert_eq!(list_runs(&hub, interval_runs).await.len(), 1);
    for body in [hot, cold, hot] {
        post_reading(&hub, "other-sensor", body).await;
    }
    assert_eq!(
        list_runs(&hub, interval_runs).await.len(),
        1,
        "nothing fires within the interval"
    );
    // Wait out the interval, with a margin for clocks that read the time at other points.
    let after_interval = first_fired + Duration::from_millis(3200);
    tokio::time::sleep_until(after_interval.into()).await;
    post_reading(&hub, "other-sensor", hot).await;
    assert_eq!(
        list_runs(&hub, interval_runs).await.len(),
        2,
        "a hot record after the interval fires"
    );

    let runs = wait_runs_finished(&hub, "", 4).await;
    assert!(
        runs.iter().all(|run| run["status"] == "succeeded"),
        "{runs:#?}"
    );
    hub.stop().await;
}

/// Actions for the API tests: `echo` POSTs its properties to an HTTP endpoint, `note`
/// logs, `unreachable` fails, and trigger `hot` runs `note`.
const API_ACTIONS: &str = r#"
[[actions]]
name = "echo"
  [[actions.steps]]
  component = "http_request"
  method = "POST"
  url = "RECORDER/echo"
  body = '{"note": {{ Properties.note | tojson }}, "trigger": {{ TriggerName | tojson }}}'
  retries = 0

[[actions]]
name = "note"
  [[actions.steps]]
  component = "log"
  message = "properties {{ Properties | tojson }}"

[[actions]]
name = "unreachable"
  [[actions.steps]]
  component = "http_request"
  method = "GET"
  url = "http://CLOSED/unreachable"
  retries = 0

[[triggers]]
name = "hot"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
action = "note"
"#;

/// Proves `POST /api/v1/actions/<name>/run`. A run with properties returns 200 with the
/// finished run and its output, and `wait_ms=0` returns 202 with a Location that later
/// shows the finished run. Bad requests get 400, 401, 404 or 405 with a problem type.
#[tokio::test]
async fn api_run_waits_and_rejects_bad_requests() {
    let recorder = HttpRecorder::start(200, r#"{"echo": "ok"}"#).await;
    let body = API_ACTIONS
        .replace("RECORDER", &recorder.url())
        .replace("CLOSED", &closed_address().await.to_string());
    let hub = start(&body).await;

    let response = request_run(&hub, "echo", "", r#"{"note": "hello"}"#).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let run = response.json();
    let id = run["id"].as_str().expect("id").to_owned();
    assert_eq!(
        response.header("location"),
        format!("/api/v1/action-runs/{id}")
    );
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["action"], "echo");
    assert_eq!(run["trigger"], Value::Null);
    assert_eq!(run["data_id"], Value::Null);
    assert_eq!(
        run["output"],
        json!({"status": 200, "body": {"echo": "ok"}})
    );
    assert_eq!(run["input"]["TriggerName"], Value::Null);
    assert_eq!(run["input"]["Properties"], json!({"note": "hello"}));
    let requests = recorder.wait_for(1, WAIT).await;
    assert_eq!(
        requests[0].json(),
        json!({"note": "hello", "trigger": null})
    );

    let response = request_run(&hub, "note", "", "").await;
    assert_eq!(response.status, 200, "an empty body means no properties");
    assert_eq!(response.json()["input"]["Properties"], json!({}));

    let response = request_run(&hub, "note", "?wait_ms=0", r#"{"n": 1}"#).await;
    assert_eq!(response.status, 202);
    let location = response.header("location").to_owned();
    assert!(
        location.starts_with("/api/v1/action-runs/"),
        "location {location:?}"
    );
    let queued = response.json();
    assert!(queued.get("output").is_none(), "{queued:#}");
    let later_id = location.trim_start_matches("/api/v1/action-runs/");
    let finished = wait_finished(&hub, later_id).await;
    assert_eq!(finished["status"], "succeeded");

    // The query is percent-decoded, as the list's is.
    let response = request_run(&hub, "note", "?wait%5Fms=%30", "{}").await;
    assert_eq!(response.status, 202, "wait%5Fms=%30 is wait_ms=0");
    let response = request_run(&hub, "note", "?wait_ms=%31%30%30%30%30", "{}").await;
    assert_eq!(
        response.status, 200,
        "wait_ms=%31%30%30%30%30 is wait_ms=10000"
    );

    let response = request_run(&hub, "nope", "", "{}").await;
    assert_eq!(response.status, 404);
    assert_eq!(
        problem_type(&response),
        "urn:hubkit:problem:action-not-found"
    );
    let detail = response.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(
        detail.contains("echo, note, unreachable"),
        "the detail lists the actions: {detail}"
    );

    let response = request_run(&hub, "note", "", "[1, 2]").await;
    assert_eq!(response.status, 400);
    assert_eq!(
        problem_type(&response),
        "urn:hubkit:problem:invalid-properties"
    );
    let response = request_run(&hub, "note", "", "{not json").await;
    assert_eq!(response.status, 400);
    assert_eq!(
        problem_type(&response),
        "urn:hubkit:problem:invalid-properties"
    );
    for query in [
        "?wait_ms=abc",
        "?wait_ms=%2B5",
        "?wait_ms=+5",
        "?wait_ms=1&wait_ms=2",
    ] {
        let response = request_run(&hub, "note", query, "{}").await;
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(
            problem_type(&response),
            "urn:hubkit:problem:invalid-parameter",
            "{query}"
        );
    }
    let response = get(&hub, &format!("/api/v1/action-runs/{}?x=1", "0".repeat(32))).await;
    assert_eq!(response.status, 400);
    assert!(
        response.json()["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("unknown parameter \"x\"")),
        "{:?}",
        response.json()
    );

    let response = get(&hub, "/api/v1/actions/note/run").await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), "POST");
    let response = hub
        .client
        .send(
            Method::POST,
            "/api/v1/actions/note/run",
            &[("content-type", "application/json")],
            "{}",
        )
        .await
        .expect("request");
    assert_eq!(response.status, 401);
    assert_eq!(problem_type(&response), "urn:hubkit:problem:unauthorized");

    let actions = get_json(&hub, "/api/v1/actions").await;
    let note = actions["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|action| action["name"] == "note")
        .expect("note is listed")
        .clone();
    assert_eq!(note["steps"], json!(["log"]));
    assert_eq!(
        note["triggers"],
        json!([{"name": "hot", "kind": "layer", "enabled": true}])
    );
    assert_eq!(note["run_url"], "/api/v1/actions/note/run");
    hub.stop().await;
}

/// Proves the filters and paging of `GET /api/v1/action-runs`, its 400s for bad
/// parameters, and the 404 of an unknown run.
#[tokio::test]
async fn action_runs_filter_page_and_reject() {
    let recorder = HttpRecorder::start(200, "{}").await;
    let body = API_ACTIONS
        .replace("RECORDER", &recorder.url())
        .replace("CLOSED", &closed_address().await.to_string());
    let hub = start(&body).await;

    for n in 0..3 {
        let run = run_now(&hub, "note", &json!({ "n": n })).await;
        assert_eq!(run["status"], "succeeded");
    }
    let failed = run_now(&hub, "unreachable", &json!({})).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    post_reading(&hub, "sensor-data", r#"{"temperature": 35}"#).await;
    let all = wait_runs_finished(&hub, "", 5).await;
    assert_eq!(all.len(), 5);

    let failed_runs = list_runs(&hub, "?status=failed").await;
    assert_eq!(failed_runs.len(), 1);
    assert_eq!(failed_runs[0]["id"], failed["id"]);
    assert_eq!(list_runs(&hub, "?status=succeeded").await.len(), 4);
    assert_eq!(list_runs(&hub, "?status=pending").await.len(), 0);
    let triggered = list_runs(&hub, "?trigger=hot").await;
    assert_eq!(triggered.len(), 1);
    assert_eq!(triggered[0]["trigger"], "hot");
    assert_eq!(list_runs(&hub, "?trigger=nothing").await.len(), 0);

    // Pages of two, newest first, end to end give the same list as one page.
    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let query = match &before {
            Some(cursor) => format!("?limit=2&before={cursor}"),
            None => "?limit=2".to_owned(),
        };
        let page = get_json(&hub, &format!("/api/v1/action-runs{query}")).await;
        let runs = page["runs"].as_array().expect("runs");
        assert!(runs.len() <= 2, "{page:#}");
        paged.extend(runs.iter().map(|run| run["id"].clone()));
        match page["next_before"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => break,
        }
        assert!(paged.len() <= all.len(), "paging does not end: {paged:?}");
    }
    let ids: Vec<Value> = all.iter().map(|run| run["id"].clone()).collect();
    assert_eq!(paged, ids);
    assert_eq!(all[0]["trigger"], "hot", "the newest run comes first");

    for query in [
        "?status=done",
        "?limit=0",
        "?limit=abc",
        "?limit=100000000",
        "?before=not-a-cursor",
        "?colour=red",
        "?status=failed&status=succeeded",
    ] {
        let response = get(&hub, &format!("/api/v1/action-runs{query}")).await;
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(
            problem_type(&response),
            "urn:hubkit:problem:invalid-parameter",
            "{query}"
        );
    }
    for id in ["00000000000000000000000000000000", "no-such-run"] {
        let response = get(&hub, &format!("/api/v1/action-runs/{id}")).await;
        assert_eq!(response.status, 404, "{id}");
        assert_eq!(
            problem_type(&response),
            "urn:hubkit:problem:action-run-not-found"
        );
    }
    let response = hub
        .client
        .get("/api/v1/action-runs", &[])
        .await
        .expect("request");
    assert_eq!(response.status, 401, "listing runs needs the admin token");
    hub.stop().await;
}

/// Proves that failures end the run as failed with an error that names the step. An
/// endpoint that responds 500 is tried twice with `retries = 1`, and the later step is
/// skipped. A closed port fails the request, and an MQTT Publish to a broker that is not
/// running fails as not connected.
#[tokio::test]
async fn failing_steps_fail_the_run() {
    let recorder = HttpRecorder::start(500, r#"{"error": "down for maintenance"}"#).await;
    let closed = closed_address().await;
    let stopped_broker = closed_address().await;
    let body = r#"
[[brokers]]
name = "gone"
url = "mqtt://127.0.0.1"
port = GONE_PORT
client_id = "CLIENT_ID"

[[actions]]
name = "flaky"
  [[actions.steps]]
  component = "http_request"
  method = "POST"
  url = "RECORDER/flaky"
  body = '{"t": {{ Data.temperature }}}'
  retries = 1
  backoff_ms = 10
  backoff_max_ms = 10
  [[actions.steps]]
  component = "log"
  message = "not reached"

[[actions]]
name = "closed-port"
  [[actions.steps]]
  component = "http_request"
  method = "GET"
  url = "http://CLOSED/closed"
  retries = 0

[[actions]]
name = "publish-gone"
  [[actions.steps]]
  component = "mqtt_publish"
  broker = "gone"
  topic = "hubkit/test/gone"
  payload = "x"

[[triggers]]
name = "hot-flaky"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
action = "flaky"
"#
    .replace("RECORDER", &recorder.url())
    .replace("CLOSED", &closed.to_string())
    .replace("GONE_PORT", &stopped_broker.port().to_string())
    .replace("CLIENT_ID", &unique_name("gone-hub"));
    let hub = start(&body).await;

    post_reading(&hub, "sensor-data", r#"{"temperature": 35}"#).await;
    let runs = wait_runs_finished(&hub, "?trigger=hot-flaky", 1).await;
    let run = &runs[0];
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().expect("error");
    assert!(error.contains("step 1 (http_request) failed"), "{error}");
    assert!(error.contains("HTTP status 500"), "{error}");
    assert!(error.contains("after 2 attempts"), "{error}");
    assert_eq!(run["steps"][0]["status"], "failed");
    assert_eq!(run["steps"][0]["attempts"], 2);
    assert_eq!(run["steps"][1]["status"], "skipped");
    assert_eq!(recorder.requests().len(), 2, "one retry after the 500");

    let run = run_now(&hub, "closed-port", &json!({})).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().expect("error");
    assert!(error.contains("step 1 (http_request) failed"), "{error}");
    assert!(
        error.contains(&format!("request to http://{closed}/closed failed")),
        "{error}"
    );
    assert!(error.contains("onnection refused"), "{error}");

    let run = run_now(&hub, "publish-gone", &json!({})).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().expect("error");
    assert!(error.contains("step 1 (mqtt_publish) failed"), "{error}");
    assert!(error.contains("broker gone is not connected"), "{error}");
    assert_eq!(
        metric(
            &hub,
            "hubkit_action_runs_total{action=\"publish-gone\",status=\"failed\"}"
        )
        .await,
        Some(1.0)
    );
    hub.stop().await;
}

/// Proves that File Write appends lines and replaces whole files under
/// `<data_dir>/action-files/`, and that a rendered path with `..` or an absolute path
/// fails the run and writes nothing.
#[tokio::test]
async fn file_write_stays_under_action_files() {
    let body = r#"
[[actions]]
name = "write-files"
  [[actions.steps]]
  component = "file_write"
  path = "logs/{{ Properties.name }}.log"
  mode = "append"
  content = "{{ Properties.line }}"
  [[actions.steps]]
  component = "file_write"
  path = "latest/{{ Properties.name }}.txt"
  mode = "overwrite"
  content = "{{ Properties.line }}"

[[actions]]
name = "write-anywhere"
  [[actions.steps]]
  component = "file_write"
  path = "{{ Properties.path }}"
  mode = "overwrite"
  content = "escaped"
"#;
    let hub = start(body).await;
    let root = hub.data_dir().join(hubkit_server::ACTION_FILES_FOLDER);

    for line in ["one", "two"] {
        let run = run_now(
            &hub,
            "write-files",
            &json!({"name": "boiler", "line": line}),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    let log = root.join("logs/boiler.log");
    let latest = root.join("latest/boiler.txt");
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "one\ntwo\n");
    assert_eq!(std::fs::read_to_string(&latest).expect("latest"), "two");
    let mode = std::fs::metadata(&latest)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "action files are private");

    let run = run_now(&hub, "write-anywhere", &json!({"path": "../x"})).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().expect("error");
    assert!(error.contains("step 1 (file_write) failed"), "{error}");
    assert!(error.contains("the path contains `..`"), "{error}");
    assert_eq!(
        run["steps"][0]["attempts"], 0,
        "the step fails before writing"
    );
    assert!(!hub.data_dir().join("x").exists());
    assert!(!root.join("x").exists());

    let absolute = hub.dir.path().join("absolute.txt");
    let run = run_now(
        &hub,
        "write-anywhere",
        &json!({"path": absolute.display().to_string()}),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().expect("error");
    assert!(error.contains("the path is absolute"), "{error}");
    assert!(!absolute.exists());

    // Symbolic links inside the folder are not followed, whether they name a folder, a
    // file or nothing yet.
    let outside = hub.dir.path().join("outside");
    std::fs::create_dir(&outside).expect("outside folder");
    std::os::unix::fs::symlink(&outside, root.join("link")).expect("folder link");
    std::os::unix::fs::symlink(outside.join("file.log"), root.join("flink.log"))
        .expect("file link");
    for path in ["link/x.log", "link/sub/y.log", "flink.log"] {
        let run = run_now(&hub, "write-anywhere", &json!({ "path": path })).await;
        assert_eq!(run["status"], "failed", "{path}: {run:#}");
        let error = run["error"].as_str().expect("error");
        assert!(error.contains("is a symbolic link"), "{path}: {error}");
    }
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        0,
        "nothing was written through a link"
    );
    hub.stop().await;
}

/// Proves that a reload applies to the runs that follow it: a queued run of an action
/// that the reload removed fails as not in the configuration, and a trigger that the
/// reload added fires without a restart.
#[tokio::test]
async fn reload_removes_action_and_adds_trigger() {
    let recorder = HttpRecorder::start_holding(200, "{}").await;
    let actions = r#"
[[actions]]
name = "blocker"
  [[actions.steps]]
  component = "http_request"
  method = "POST"
  url = "RECORDER/block"
  timeout_ms = 60000
  retries = 0
"#
    .replace("RECORDER", &recorder.url());
    let doomed = r#"
[[actions]]
name = "doomed"
  [[actions.steps]]
  component = "log"
  message = "doomed ran"
"#;
    let added = format!(
        r#"{NOTE_ACTION}
[[triggers]]
name = "added-hot"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
action = "note"
"#
    );
    let hub = start(&format!("{actions}{doomed}")).await;

    // Hold every runner slot with a request that gets no response until the release, so
    // the next run stays pending.
    for _ in 0..hubkit_server::ACTION_CONCURRENCY {
        let response = request_run(&hub, "blocker", "?wait_ms=0", "{}").await;
        assert_eq!(response.status, 202);
    }
    recorder
        .wait_for(hubkit_server::ACTION_CONCURRENCY, WAIT)
        .await;
    let response = request_run(&hub, "doomed", "?wait_ms=0", "{}").await;
    assert_eq!(response.status, 202);
    let doomed_id = response.json()["id"].as_str().expect("id").to_owned();
    let queued = get_json(&hub, &format!("/api/v1/action-runs/{doomed_id}")).await;
    assert_eq!(queued["status"], "pending", "{queued:#}");

    post_reading(&hub, "sensor-data", r#"{"temperature": 35}"#).await;
    let count_before = list_runs(&hub, "").await.len();
    assert_eq!(
        count_before,
        hubkit_server::ACTION_CONCURRENCY + 1,
        "no trigger fires before the reload"
    );

    let text = config_text(hub.dir.path(), "", &format!("{BASE}{actions}{added}"));
    let warnings = hub
        .hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    assert!(warnings.is_empty(), "{warnings:?}");
    recorder.release();

    let run = wait_finished(&hub, &doomed_id).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().expect("error");
    assert!(
        error.contains("\"doomed\" is not in the configuration"),
        "{error}"
    );
    let blockers = wait_runs_finished(&hub, "?status=succeeded", 16).await;
    assert!(
        blockers.iter().all(|run| run["action"] == "blocker"),
        "{blockers:#?}"
    );
    assert_eq!(metric(&hub, "hubkit_action_queue_depth").await, Some(0.0));
    assert_eq!(metric(&hub, "hubkit_actions_in_progress").await, Some(0.0));
    assert_eq!(
        metric(
            &hub,
            "hubkit_action_runs_total{action=\"doomed\",status=\"failed\"}"
        )
        .await,
        Some(1.0)
    );

    post_reading(&hub, "sensor-data", r#"{"temperature": 36}"#).await;
    let runs = wait_runs_finished(&hub, "?trigger=added-hot", 1).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);
    hub.stop().await;
}

/// Returns an action `slow` that sleeps `sleep_ms` and a trigger `slow-hot` that runs it
/// for hot records of sensor-data, with `extra` added to the trigger.
fn slow_trigger(sleep_ms: u64, extra: &str) -> String {
    format!(
        r#"
[[actions]]
name = "slow"
  [[actions.steps]]
  component = "sleep"
  duration_ms = {sleep_ms}

[[triggers]]
name = "slow-hot"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
action = "slow"
{extra}
"#
    )
}

/// Proves skip-if-running: while a run of the trigger is queued or sleeping, another hot
/// record does not fire it, and once the run has finished the next hot record does.
#[tokio::test]
async fn skip_if_running_fires_once() {
    let hub = start(&slow_trigger(2000, "skip_if_running = true")).await;
    let hot = r#"{"temperature": 35}"#;

    post_reading(&hub, "sensor-data", hot).await;
    let runs = list_runs(&hub, "").await;
    assert_eq!(runs.len(), 1);
    let first = runs[0]["id"].as_str().expect("id").to_owned();
    post_reading(&hub, "sensor-data", hot).await;
    let status = get_json(&hub, &format!("/api/v1/action-runs/{first}")).await["status"].clone();
    assert!(
        status == "pending" || status == "running",
        "the first run must still be in progress for this test to mean anything: {status}"
    );
    assert_eq!(
        list_runs(&hub, "").await.len(),
        1,
        "the second record is skipped"
    );

    let run = wait_finished(&hub, &first).await;
    assert_eq!(run["status"], "succeeded");
    // The runner counts the run only after it let the trigger fire again.
    wait_metric(
        &hub,
        "hubkit_action_runs_total{action=\"slow\",status=\"succeeded\"}",
        1.0,
    )
    .await;
    post_reading(&hub, "sensor-data", hot).await;
    assert_eq!(
        list_runs(&hub, "").await.len(),
        2,
        "a hot record after the run finished fires"
    );
    hub.stop().await;
}

/// Proves an extra-layer condition with `combine = "and"` and `max_age_ms`: a hot record
/// fires only while the latest record of layer Doors has state "open" and is younger than
/// `max_age_ms`.
#[tokio::test]
async fn extra_layer_needs_fresh_match() {
    let body = format!(
        r#"{NOTE_ACTION}
[[triggers]]
name = "hot-and-open"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
combine = "and"
action = "note"

  [[triggers.extra]]
  area = "Office"
  layer = "Doors"
  field = "state"
  operator = "equals"
  value = "open"
  max_age_ms = 4000
"#
    );
    let hub = start(&body).await;
    let hot = r#"{"temperature": 35}"#;
    let cold = r#"{"temperature": 20}"#;
    let count = || list_runs(&hub, "");

    post_reading(&hub, "sensor-data", hot).await;
    assert_eq!(count().await.len(), 0, "no door record yet");

    post_reading(&hub, "door-sensor", r#"{"state": "closed"}"#).await;
    post_reading(&hub, "sensor-data", hot).await;
    assert_eq!(count().await.len(), 0, "the door is closed");

    post_reading(&hub, "door-sensor", r#"{"state": "open"}"#).await;
    let opened = Instant::now();
    post_reading(&hub, "sensor-data", hot).await;
    assert_eq!(count().await.len(), 1, "hot and the door is open");

    tokio::time::sleep_until((opened + Duration::from_millis(4200)).into()).await;
    post_reading(&hub, "sensor-data", hot).await;
    assert_eq!(count().await.len(), 1, "the door record is too old");

    post_reading(&hub, "door-sensor", r#"{"state": "open"}"#).await;
    post_reading(&hub, "sensor-data", cold).await;
    assert_eq!(count().await.len(), 1, "the door is open but it is not hot");
    post_reading(&hub, "sensor-data", hot).await;
    assert_eq!(count().await.len(), 2, "hot and a fresh open door");

    let runs = wait_runs_finished(&hub, "", 2).await;
    assert!(
        runs.iter().all(|run| run["status"] == "succeeded"),
        "{runs:#?}"
    );
    hub.stop().await;
}

/// Stopping the hub does not wait for a run beyond the shutdown grace period: the run
/// stays `running` in the store, and the next start on the same data folder runs it again.
#[tokio::test]
async fn shutdown_leaves_long_run_queued() {
    let body = slow_trigger(60_000, "");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(
        dir.path(),
        "\n[server.limits]\nshutdown_grace_ms = 200\n",
        &format!("{BASE}{body}"),
    );
    let hub = TestHub::start_text(dir, &text).await;
    post_reading(&hub, "sensor-data", r#"{"temperature": 35}"#).await;
    let deadline = Instant::now() + WAIT;
    while list_runs(&hub, "?status=running").await.is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The run sleeps for a minute, so shutdown returns only because it gave up on it.
    let data = hub.data_dir();
    let TestHub { hub, client, dir } = hub;
    drop(client);
    hub.shutdown(Duration::from_secs(5)).await;
    let connection =
        rusqlite::Connection::open(data.join(hubkit_server::DATABASE_FILE)).expect("open");
    let status: String = connection
        .query_row("SELECT status FROM action_runs", [], |row| row.get(0))
        .expect("one run");
    assert_eq!(status, "running");
    drop(connection);

    let restarted = TestHub::start_text(dir, &text).await;
    let runs = list_runs(&restarted, "").await;
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0]["status"] == "pending" || runs[0]["status"] == "running",
        "the run is queued again: {}",
        runs[0]
    );
    restarted.stop().await;
}

/// A run whose end the store fails to record, as on a full disk, is recorded once the
/// store works again, without a restart, and runs once.
#[tokio::test]
async fn failed_finish_retried_until_stored() {
    let hub = start(&format!(
        "{NOTE_ACTION}
[[triggers]]
name = \"hot\"
area = \"Office\"
layer = \"Webhooks\"
field = \"temperature\"
operator = \">\"
value = 30
action = \"note\"
"
    ))
    .await;
    // A second connection makes every finish fail until the trigger is dropped.
    let connection = rusqlite::Connection::open(hub.data_dir().join(hubkit_server::DATABASE_FILE))
        .expect("open");
    connection
        .execute_batch(
            "CREATE TRIGGER refuse_finish BEFORE UPDATE OF status ON action_runs \
             WHEN NEW.status IN ('succeeded', 'failed') \
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .expect("create trigger");
    post_reading(&hub, "sensor-data", r#"{"temperature": 35}"#).await;
    // The run ends, its end fails to be stored, and it stays running in the store.
    wait_metric(&hub, "hubkit_actions_in_progress", 0.0).await;
    let deadline = Instant::now() + WAIT;
    while list_runs(&hub, "?status=running").await.is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(list_runs(&hub, "?status=running").await.len(), 1);

    connection
        .execute_batch("DROP TRIGGER refuse_finish")
        .expect("drop trigger");
    let runs = wait_runs_finished(&hub, "", 1).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
    assert_eq!(runs[0]["attempts"], 1, "{}", runs[0]);
    drop(connection);
    hub.stop().await;
}

/// Proves that the runner's thread runs at niceness 10 on Linux, so that actions take
/// little CPU time from ingest while ingest keeps every core busy.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn runner_thread_runs_at_idle_priority() {
    let hub = start(NOTE_ACTION).await;
    let deadline = Instant::now() + WAIT;
    let policy = loop {
        let found = std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .filter_map(Result::ok)
            .find(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|name| name.trim() == "hubkit-actions")
            })
            .and_then(|task| std::fs::read_to_string(task.path().join("stat")).ok());
        if let Some(stat) = found {
            // The fields after the command name, which is in parentheses; the scheduling
            // policy is the 41st field of the whole line.
            let after = stat.rsplit_once(')').expect("stat line").1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            break fields[38].parse::<i32>().expect("policy");
        }
        assert!(Instant::now() < deadline, "no hubkit-actions thread");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // 5 is SCHED_IDLE, under which niceness does not count.
    assert_eq!(policy, 5);
    hub.stop().await;
}
