use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;

/// One call that the fake made on behalf of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Http(HttpRequest),
    Publish {
        broker: String,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: String,
    },
    WriteFile {
        path: PathBuf,
        content: String,
        append: bool,
    },
    Log(LogLevel, String),
    Sleep(Duration),
}

/// Effects that record every call, return scripted HTTP responses and keep a clock that
/// only sleeps and HTTP requests (10 ms each) move forward.
#[derive(Default)]
struct FakeEffects {
    calls: Mutex<Vec<Call>>,
    responses: Mutex<VecDeque<Result<HttpResponse, String>>>,
    clock: Mutex<Duration>,
}

impl FakeEffects {
    fn with_responses(responses: Vec<Result<HttpResponse, String>>) -> Self {
        Self {
            responses: Mutex::new(responses.into()),
            ..Self::default()
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn advance(&self, duration: Duration) {
        *self.clock.lock().unwrap() += duration;
    }
}

impl Effects for FakeEffects {
    async fn http(&self, request: HttpRequest) -> Result<HttpResponse, String> {
        self.record(Call::Http(request));
        self.advance(Duration::from_millis(10));
        self.responses
            .lock()
            .unwrap()
            .pop_front()
            .expect("the test scripts a response for every HTTP request")
    }

    async fn publish(
        &self,
        broker: &str,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> Result<(), String> {
        self.record(Call::Publish {
            broker: broker.to_owned(),
            topic: topic.to_owned(),
            qos,
            retain,
            payload: String::from_utf8(payload.to_vec()).unwrap(),
        });
        Ok(())
    }

    async fn write_file(&self, path: &Path, bytes: &[u8], append: bool) -> Result<(), String> {
        self.record(Call::WriteFile {
            path: path.to_path_buf(),
            content: String::from_utf8(bytes.to_vec()).unwrap(),
            append,
        });
        Ok(())
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.record(Call::Log(level, message.to_owned()));
    }

    async fn sleep(&self, duration: Duration) {
        self.record(Call::Sleep(duration));
        self.advance(duration);
    }

    fn now(&self) -> Duration {
        *self.clock.lock().unwrap()
    }
}

/// Polls `future` to completion. The fake's futures are ready at once, so no waker is needed.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

fn template(source: &str) -> Template {
    Template::parse(source).unwrap()
}

fn response(status: u16, body: &str) -> Result<HttpResponse, String> {
    Ok(HttpResponse {
        status,
        body: body.as_bytes().to_vec(),
    })
}

fn http_step(url: &str, body: Option<&str>, retries: u32) -> Step {
    Step::HttpRequest {
        method: HttpMethod::Post,
        url: template(url),
        headers: vec![("X-Trigger".to_owned(), template("{{ trigger }}"))],
        body: body.map(template),
        content_type: None,
        timeout: Duration::from_secs(5),
        retries,
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(250),
        },
        ca_file: None,
    }
}

fn log_step(message: &str) -> Step {
    Step::Log {
        message: template(message),
        level: LogLevel::Info,
    }
}

fn run(steps: Vec<Step>, input: Value, effects: &FakeEffects) -> RunOutcome {
    let action = Action::new("test", steps).unwrap();
    block_on(run_action(&action, input, effects))
}

fn input() -> Value {
    json!({"trigger": "hot-room", "data": {"temperature": 31}})
}

#[test]
fn payload_chains_through_three_steps() {
    let effects = FakeEffects::with_responses(vec![response(200, r#"{"id": 7}"#)]);
    let steps = vec![
        http_step(
            "https://example.test/{{ trigger }}",
            Some("{{ payload.data | tojson }}"),
            1,
        ),
        Step::MqttPublish {
            broker: "local".to_owned(),
            topic: template("alerts/{{ payload.body.id }}"),
            qos: QoS::AtLeastOnce,
            retain: true,
            payload: template("{{ payload.status }} {{ input.data.temperature }}"),
        },
        Step::FileWrite {
            path: template("logs/{{ trigger }}.log"),
            mode: WriteMode::Append,
            content: template("{{ payload.body.id }}"),
        },
    ];

    let outcome = run(steps, input(), &effects);

    assert!(outcome.succeeded, "{:?}", outcome.error);
    let calls = effects.calls();
    let Call::Http(request) = &calls[0] else {
        panic!("expected an HTTP call, got {:?}", calls[0]);
    };
    assert_eq!(request.url, "https://example.test/hot-room");
    assert_eq!(
        request.body.as_deref(),
        Some(&br#"{"temperature": 31}"#[..])
    );
    assert_eq!(
        request.headers,
        vec![
            ("X-Trigger".to_owned(), "hot-room".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ]
    );
    assert_eq!(
        calls[1],
        Call::Publish {
            broker: "local".to_owned(),
            topic: "alerts/7".to_owned(),
            qos: QoS::AtLeastOnce,
            retain: true,
            payload: "200 31".to_owned(),
        }
    );
    assert_eq!(
        calls[2],
        Call::WriteFile {
            path: PathBuf::from("logs/hot-room.log"),
            content: "7\n".to_owned(),
            append: true,
        }
    );
    assert_eq!(outcome.output, json!({"status": 200, "body": {"id": 7}}));
}

#[test]
fn first_payload_is_input() {
    let effects = FakeEffects::default();
    let outcome = run(vec![log_step("{{ payload.trigger }}")], input(), &effects);

    assert!(outcome.succeeded);
    assert_eq!(
        effects.calls(),
        vec![Call::Log(LogLevel::Info, "hot-room".to_owned())]
    );
    assert_eq!(outcome.output, input());
}

#[test]
fn reserved_keys_replace_input_keys() {
    let effects = FakeEffects::default();
    let input = json!({"payload": "from input", "input": 1});
    let outcome = run(vec![log_step("{{ payload.payload }}")], input, &effects);

    assert!(outcome.succeeded);
    assert_eq!(
        effects.calls(),
        vec![Call::Log(LogLevel::Info, "from input".to_owned())]
    );
}

#[test]
fn http_text_body_stays_text() {
    let effects = FakeEffects::with_responses(vec![response(201, "created")]);
    let outcome = run(
        vec![http_step("http://example.test", Some("plain"), 1)],
        input(),
        &effects,
    );

    assert_eq!(outcome.output, json!({"status": 201, "body": "created"}));
    let Call::Http(request) = &effects.calls()[0] else {
        panic!("expected an HTTP call");
    };
    assert_eq!(
        request.headers[1],
        (
            "Content-Type".to_owned(),
            "text/plain; charset=utf-8".to_owned()
        )
    );
}

#[test]
fn http_retries_then_succeeds() {
    let effects = FakeEffects::with_responses(vec![
        Err("connection refused".to_owned()),
        response(503, ""),
        response(429, ""),
        response(200, "ok"),
    ]);
    let outcome = run(
        vec![http_step("http://example.test", None, 4)],
        input(),
        &effects,
    );

    assert!(outcome.succeeded, "{:?}", outcome.error);
    assert_eq!(outcome.steps[0].attempts, 4);
    let sleeps: Vec<Call> = effects
        .calls()
        .into_iter()
        .filter(|call| matches!(call, Call::Sleep(_)))
        .collect();
    assert_eq!(
        sleeps,
        vec![
            Call::Sleep(Duration::from_millis(100)),
            Call::Sleep(Duration::from_millis(200)),
            Call::Sleep(Duration::from_millis(250)),
        ]
    );
}

#[test]
fn http_retry_exhaustion_fails() {
    let effects = FakeEffects::with_responses(vec![
        response(500, ""),
        response(502, ""),
        response(503, ""),
    ]);
    let outcome = run(
        vec![http_step("http://example.test", None, 3), log_step("never")],
        input(),
        &effects,
    );

    assert!(!outcome.succeeded);
    let record = &outcome.steps[0];
    assert_eq!(record.status, StepStatus::Failed);
    assert_eq!(record.attempts, 3);
    assert_eq!(
        record.error.as_deref(),
        Some("failed after 3 attempts: HTTP status 503")
    );
    assert_eq!(
        outcome.error.as_deref(),
        Some("step 1 (http_request) failed: failed after 3 attempts: HTTP status 503")
    );
    assert_eq!(outcome.steps[1].status, StepStatus::Skipped);
    assert!(
        !effects
            .calls()
            .contains(&Call::Log(LogLevel::Info, "never".to_owned()))
    );
}

#[test]
fn http_client_error_not_retried() {
    let effects = FakeEffects::with_responses(vec![response(404, "missing")]);
    let outcome = run(
        vec![http_step("http://example.test", None, 5)],
        input(),
        &effects,
    );

    assert!(!outcome.succeeded);
    assert_eq!(outcome.steps[0].attempts, 1);
    assert_eq!(
        outcome.steps[0].error.as_deref(),
        Some("HTTP status 404, which is not retried")
    );
    assert_eq!(effects.calls().len(), 1);
}

#[test]
fn http_url_without_scheme_fails() {
    let effects = FakeEffects::default();
    let outcome = run(vec![http_step("{{ trigger }}", None, 1)], input(), &effects);

    assert!(!outcome.succeeded);
    assert_eq!(outcome.steps[0].attempts, 0);
    assert!(effects.calls().is_empty());
}

#[test]
fn template_error_fails_step() {
    let effects = FakeEffects::default();
    let outcome = run(
        vec![log_step("{{ missing.field }}"), log_step("never")],
        input(),
        &effects,
    );

    assert!(!outcome.succeeded);
    let error = outcome.steps[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("message: template rendering failed at line 1"),
        "{error}"
    );
    assert_eq!(outcome.steps[0].attempts, 0);
    assert_eq!(outcome.steps[1].status, StepStatus::Skipped);
    assert!(effects.calls().is_empty());
}

#[test]
fn bad_url_fails_before_io() {
    let cases = [
        ("http://", "has no host"),
        ("https:///path", "has no host"),
        (
            "http://user:s3cret@example.com/x",
            "contains a user name or password",
        ),
    ];
    for (url, rule) in cases {
        let effects = FakeEffects::default();
        let outcome = run(vec![http_step(url, None, 3)], input(), &effects);
        let error = outcome.steps[0].error.as_deref().unwrap();
        assert!(error.contains(rule), "{url}: {error}");
        assert!(!error.contains("s3cret"), "{url}: {error}");
        assert_eq!(outcome.steps[0].attempts, 0, "{url}");
        assert!(effects.calls().is_empty(), "{url}");
    }
}

#[test]
fn path_traversal_rejected() {
    for path in [
        "../secret",
        "logs/../../etc/passwd",
        "/etc/passwd",
        "",
        "logs/",
        "a\\b",
    ] {
        let effects = FakeEffects::default();
        let step = Step::FileWrite {
            path: template(path),
            mode: WriteMode::Overwrite,
            content: template("x"),
        };
        let outcome = run(vec![step], input(), &effects);

        assert!(!outcome.succeeded, "path {path:?} was accepted");
        assert!(effects.calls().is_empty(), "path {path:?} was written");
    }
}

#[test]
fn rendered_path_traversal_rejected() {
    let effects = FakeEffects::default();
    let step = Step::FileWrite {
        path: template("{{ name }}"),
        mode: WriteMode::Overwrite,
        content: template("x"),
    };
    let outcome = run(vec![step], json!({"name": "../../x"}), &effects);

    assert!(!outcome.succeeded);
    assert!(
        outcome.steps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("contains `..`")
    );
}

#[test]
fn overwrite_writes_content_as_is() {
    let effects = FakeEffects::default();
    let step = Step::FileWrite {
        path: template("./out/{{ trigger }}.json"),
        mode: WriteMode::Overwrite,
        content: template("{{ data | tojson }}"),
    };
    let outcome = run(vec![step], input(), &effects);

    assert!(outcome.succeeded, "{:?}", outcome.error);
    assert_eq!(
        effects.calls(),
        vec![Call::WriteFile {
            path: PathBuf::from("./out/hot-room.json"),
            content: r#"{"temperature": 31}"#.to_owned(),
            append: false,
        }]
    );
}

#[test]
fn mqtt_wildcard_topic_rejected() {
    let effects = FakeEffects::default();
    let step = Step::MqttPublish {
        broker: "local".to_owned(),
        topic: template("alerts/{{ name }}"),
        qos: QoS::AtMostOnce,
        retain: false,
        payload: template("x"),
    };
    let outcome = run(vec![step], json!({"name": "#"}), &effects);

    assert!(!outcome.succeeded);
    assert!(effects.calls().is_empty());
}

#[test]
fn sleep_bound_enforced() {
    let too_long = Step::Sleep {
        duration: MAX_SLEEP + Duration::from_millis(1),
    };
    let err = Action::new("nap", vec![too_long]).unwrap_err();
    assert!(matches!(err, Error::InvalidStep { index: 0, .. }), "{err}");

    let longest = Step::Sleep {
        duration: MAX_SLEEP,
    };
    assert!(Action::new("nap", vec![longest]).is_ok());
}

#[test]
fn sleep_passes_payload_through() {
    let effects = FakeEffects::default();
    let step = Step::Sleep {
        duration: Duration::from_secs(2),
    };
    let outcome = run(vec![step], input(), &effects);

    assert_eq!(effects.calls(), vec![Call::Sleep(Duration::from_secs(2))]);
    assert_eq!(outcome.output, input());
    assert_eq!(outcome.duration, Duration::from_secs(2));
}

#[test]
fn step_records_have_offsets() {
    let effects = FakeEffects::with_responses(vec![response(200, "[1, 2]")]);
    let steps = vec![
        Step::Sleep {
            duration: Duration::from_millis(500),
        },
        http_step("http://example.test", None, 1),
        log_step("done"),
    ];
    let outcome = run(steps, input(), &effects);

    let records = &outcome.steps;
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].component, Component::Sleep);
    assert_eq!(records[0].started, Duration::ZERO);
    assert_eq!(records[0].finished, Duration::from_millis(500));
    assert_eq!(records[1].component, Component::HttpRequest);
    assert_eq!(records[1].index, 1);
    assert_eq!(records[1].status, StepStatus::Succeeded);
    assert_eq!(records[1].attempts, 1);
    assert_eq!(records[1].started, Duration::from_millis(500));
    assert_eq!(records[1].finished, Duration::from_millis(510));
    assert_eq!(
        records[1].output_preview.as_deref(),
        Some(r#"{"status":200,"body":[1,2]}"#)
    );
    assert_eq!(records[2].component, Component::Log);
    assert_eq!(records[2].error, None);
    assert_eq!(outcome.duration, Duration::from_millis(510));
}

#[test]
fn output_preview_is_bounded() {
    let effects = FakeEffects::default();
    let input = json!({"text": "é".repeat(400)});
    let outcome = run(vec![log_step("x")], input, &effects);

    let preview = outcome.steps[0].output_preview.as_deref().unwrap();
    assert!(preview.len() <= MAX_OUTPUT_PREVIEW);
    assert!(preview.len() >= MAX_OUTPUT_PREVIEW - 1);
}

#[test]
fn action_without_steps_rejected() {
    let err = Action::new("empty", Vec::new()).unwrap_err();
    assert!(matches!(err, Error::InvalidAction { .. }), "{err}");
}

#[test]
fn action_with_blank_name_rejected() {
    let err = Action::new(" ", vec![log_step("x")]).unwrap_err();
    assert!(matches!(err, Error::InvalidAction { .. }), "{err}");
}

/// A change that breaks one setting of an HTTP Request step.
type StepChange = fn(&mut Step);

#[test]
fn http_settings_validated() {
    let cases: [(&str, StepChange); 6] = [
        ("zero attempts", |step| set_retries(step, 0)),
        ("too many attempts", |step| {
            set_retries(step, MAX_HTTP_ATTEMPTS + 1)
        }),
        ("zero timeout", |step| set_timeout(step, Duration::ZERO)),
        ("long timeout", |step| {
            set_timeout(step, MAX_HTTP_TIMEOUT * 2)
        }),
        ("bad header name", |step| set_header(step, "X Bad")),
        ("inverted backoff", invert_backoff),
    ];
    for (case, change) in cases {
        let mut step = http_step("http://example.test", None, 1);
        change(&mut step);
        let result = Action::new("http", vec![step]);
        assert!(
            matches!(result, Err(Error::InvalidStep { index: 0, .. })),
            "{case}: {result:?}"
        );
    }
}

fn set_retries(step: &mut Step, value: u32) {
    if let Step::HttpRequest { retries, .. } = step {
        *retries = value;
    }
}

fn set_timeout(step: &mut Step, value: Duration) {
    if let Step::HttpRequest { timeout, .. } = step {
        *timeout = value;
    }
}

fn set_header(step: &mut Step, name: &str) {
    if let Step::HttpRequest { headers, .. } = step {
        headers[0].0 = name.to_owned();
    }
}

fn invert_backoff(step: &mut Step) {
    if let Step::HttpRequest { backoff, .. } = step {
        backoff.initial = backoff.max * 2;
    }
}

#[test]
fn mqtt_blank_broker_rejected() {
    let step = Step::MqttPublish {
        broker: String::new(),
        topic: template("t"),
        qos: QoS::AtMostOnce,
        retain: false,
        payload: template("x"),
    };
    assert!(Action::new("mqtt", vec![step]).is_err());
}

#[test]
fn qos_from_level() {
    assert_eq!(QoS::try_from(2).unwrap(), QoS::ExactlyOnce);
    assert!(matches!(
        QoS::try_from(3),
        Err(Error::InvalidQos { level: 3 })
    ));
}

#[test]
fn backoff_doubles_and_caps() {
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(5),
    };
    assert_eq!(backoff.delay_after(1), Duration::from_secs(1));
    assert_eq!(backoff.delay_after(3), Duration::from_secs(4));
    assert_eq!(backoff.delay_after(4), Duration::from_secs(5));
    assert_eq!(backoff.delay_after(40), Duration::from_secs(5));
}

#[test]
fn relative_path_accepted() {
    assert_eq!(
        check_relative_path("logs/today.csv").unwrap(),
        PathBuf::from("logs/today.csv")
    );
}

#[test]
fn run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let action = Action::new("send", vec![log_step("x")]).unwrap();
    let effects = FakeEffects::default();
    let future = run_action(&action, input(), &effects);
    assert_send(&future);
    block_on(future);
}
