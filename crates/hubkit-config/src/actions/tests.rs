use std::path::{Path, PathBuf};
use std::time::Duration;

use hubkit_triggers::{Backoff, HttpMethod, LogLevel, QoS, Step, WriteMode};

use crate::{Config, ConfigError, ConfigErrors, parse};

/// A broker, so that `mqtt_publish` steps have one to name.
const BROKER: &str = r#"
[[brokers]]
name = "local"
url = "mqtt://127.0.0.1"
"#;

fn check(text: &str) -> Result<Config, ConfigErrors> {
    parse(text, Path::new("hubkit.toml"))
}

fn config_of(text: &str) -> Config {
    check(text).unwrap_or_else(|errors| panic!("{errors}\n{text}"))
}

fn errors_of(text: &str) -> Vec<ConfigError> {
    match check(text) {
        Ok(_) => panic!("configuration was accepted:\n{text}"),
        Err(errors) => errors.into_vec(),
    }
}

fn single_error(text: &str) -> ConfigError {
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().expect("one error")
}

/// Returns a file with the broker and one action whose only step has `keys`.
fn one_step(keys: &str) -> String {
    format!("{BROKER}\n[[actions]]\nname = \"a\"\n\n[[actions.steps]]\n{keys}\n")
}

fn only_step(config: &Config) -> &Step {
    assert_eq!(config.actions.len(), 1);
    let steps = config.actions[0].steps();
    assert_eq!(steps.len(), 1);
    &steps[0]
}

#[test]
fn every_key_of_every_component() {
    let text = format!(
        r#"{BROKER}
[[actions]]
name = "hot-alert"

[[actions.steps]]
component = "http_request"
method = "put"
url = "https://example.com/{{{{ Data.room }}}}"
headers = {{ "X-Source" = "hubkit", "X-Room" = "{{{{ Data.room }}}}" }}
body = '{{"t": {{{{ Data.temperature }}}}}}'
content_type = "application/json"
timeout_ms = 2500
retries = 4
backoff_ms = 100
backoff_max_ms = 800
ca_file = "data/tls/cert.pem"

[[actions.steps]]
component = "mqtt_publish"
broker = "local"
topic = "hubkit/alerts"
qos = 2
retain = true
payload = "{{{{ payload.status }}}}"

[[actions.steps]]
component = "file_write"
path = "alerts/{{{{ Data.room }}}}.log"
mode = "overwrite"
content = "{{{{ Data.temperature }}}}"

[[actions.steps]]
component = "log"
message = "hot in {{{{ Data.room }}}}"
level = "warn"

[[actions.steps]]
component = "sleep"
duration_ms = 1500
"#
    );
    let config = config_of(&text);
    assert_eq!(config.actions.len(), 1);
    let action = &config.actions[0];
    assert_eq!(action.name(), "hot-alert");
    let [http, publish, file, log, sleep] = action.steps() else {
        panic!("expected 5 steps, got {:#?}", action.steps());
    };

    let Step::HttpRequest {
        method,
        url,
        headers,
        body,
        content_type,
        timeout,
        retries,
        backoff,
        ca_file,
    } = http
    else {
        panic!("step 1 is {http:?}");
    };
    assert_eq!(*method, HttpMethod::Put);
    assert_eq!(url.source(), "https://example.com/{{ Data.room }}");
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.source()))
        .collect();
    assert_eq!(
        headers,
        [("X-Room", "{{ Data.room }}"), ("X-Source", "hubkit")]
    );
    assert_eq!(
        body.as_ref().map(|body| body.source()),
        Some(r#"{"t": {{ Data.temperature }}}"#)
    );
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(*timeout, Duration::from_millis(2500));
    assert_eq!(*retries, 5, "4 retries after the first attempt");
    let expected_backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
    };
    assert_eq!(*backoff, expected_backoff);
    assert_eq!(ca_file.as_deref(), Some(Path::new("data/tls/cert.pem")));

    let Step::MqttPublish {
        broker,
        topic,
        qos,
        retain,
        payload,
    } = publish
    else {
        panic!("step 2 is {publish:?}");
    };
    assert_eq!(broker, "local");
    assert_eq!(topic.source(), "hubkit/alerts");
    assert_eq!(*qos, QoS::ExactlyOnce);
    assert!(*retain);
    assert_eq!(payload.source(), "{{ payload.status }}");

    let Step::FileWrite {
        path,
        mode,
        content,
    } = file
    else {
        panic!("step 3 is {file:?}");
    };
    assert_eq!(path.source(), "alerts/{{ Data.room }}.log");
    assert_eq!(*mode, WriteMode::Overwrite);
    assert_eq!(content.source(), "{{ Data.temperature }}");

    let Step::Log { message, level } = log else {
        panic!("step 4 is {log:?}");
    };
    assert_eq!(message.source(), "hot in {{ Data.room }}");
    assert_eq!(*level, LogLevel::Warn);

    let Step::Sleep { duration } = sleep else {
        panic!("step 5 is {sleep:?}");
    };
    assert_eq!(*duration, Duration::from_millis(1500));
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
}

#[test]
fn http_request_defaults() {
    let config = config_of(&one_step(
        "component = \"http_request\"\nurl = \"https://example.com\"",
    ));
    let Step::HttpRequest {
        method,
        headers,
        body,
        content_type,
        timeout,
        retries,
        backoff,
        ca_file,
        ..
    } = only_step(&config)
    else {
        panic!("not an HTTP step");
    };
    assert_eq!(*method, HttpMethod::Post);
    assert!(headers.is_empty());
    assert!(body.is_none());
    assert!(content_type.is_none());
    assert_eq!(*timeout, Duration::from_millis(10_000));
    assert_eq!(*retries, 3, "2 retries after the first attempt");
    assert_eq!(backoff.initial, Duration::from_millis(500));
    assert_eq!(backoff.max, Duration::from_millis(30_000));
    assert_eq!(*ca_file, None::<PathBuf>);
}

#[test]
fn mqtt_publish_defaults() {
    let config = config_of(&one_step(
        "component = \"mqtt_publish\"\nbroker = \"local\"\ntopic = \"a/b\"",
    ));
    let Step::MqttPublish {
        qos,
        retain,
        payload,
        ..
    } = only_step(&config)
    else {
        panic!("not an MQTT step");
    };
    assert_eq!(*qos, QoS::AtLeastOnce);
    assert!(!*retain);
    assert_eq!(payload.source(), "{{ payload | tojson }}");
}

#[test]
fn file_write_and_log_defaults() {
    let config = config_of(&one_step(
        "component = \"file_write\"\npath = \"out.log\"\ncontent = \"x\"",
    ));
    let Step::FileWrite { mode, .. } = only_step(&config) else {
        panic!("not a file step");
    };
    assert_eq!(*mode, WriteMode::Append);

    let config = config_of(&one_step("component = \"log\"\nmessage = \"x\""));
    let Step::Log { level, .. } = only_step(&config) else {
        panic!("not a log step");
    };
    assert_eq!(*level, LogLevel::Info);
}

#[test]
fn method_is_case_insensitive() {
    let cases = [
        ("get", HttpMethod::Get),
        ("Post", HttpMethod::Post),
        ("PUT", HttpMethod::Put),
        ("patch", HttpMethod::Patch),
        ("DeLeTe", HttpMethod::Delete),
    ];
    for (text, expected) in cases {
        let config = config_of(&one_step(&format!(
            "component = \"http_request\"\nurl = \"https://h\"\nmethod = \"{text}\""
        )));
        let Step::HttpRequest { method, .. } = only_step(&config) else {
            panic!("not an HTTP step");
        };
        assert_eq!(*method, expected, "{text}");
    }
}

#[test]
fn unknown_method_lists_methods() {
    let error = single_error(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\nmethod = \"FETCH\"",
    ));
    assert_eq!(error.field, "actions[0].steps[0].method");
    assert!(
        error.message.contains("GET, POST, PUT, PATCH or DELETE"),
        "{}",
        error.message
    );
}

#[test]
fn unknown_component_lists_components() {
    let error = single_error(&one_step("component = \"email\"\nmessage = \"x\""));
    assert_eq!(error.field, "actions[0].steps[0].component");
    assert_eq!(
        error.message,
        "component \"email\" is unknown; use http_request, mqtt_publish, file_write, log or sleep"
    );
}

#[test]
fn key_of_other_component_is_rejected() {
    let text = format!(
        "{BROKER}\n[[actions]]\nname = \"a\"\n\n[[actions.steps]]\ncomponent = \"sleep\"\n\
         duration_ms = 0\n\n[[actions.steps]]\ncomponent = \"log\"\nmessage = \"x\"\n\
         topic = \"t\"\n"
    );
    let error = single_error(&text);
    assert_eq!(error.field, "actions[0].steps[1].topic");
    assert_eq!(error.line, 16);
    assert!(
        error.message.starts_with(
            "key `topic` does not apply to component log, which takes `message` and `level`"
        ),
        "{}",
        error.message
    );
}

#[test]
fn unknown_step_key_is_rejected() {
    let error = single_error(&one_step(
        "component = \"log\"\nmessage = \"x\"\ncolour = 1",
    ));
    assert_eq!(error.field, "actions[0].steps[0].colour");
    assert!(error.message.contains("unknown field `colour`"));
}

#[test]
fn missing_required_keys() {
    let cases = [
        (
            "component = \"http_request\"",
            "component http_request needs `url`",
        ),
        (
            "component = \"mqtt_publish\"\ntopic = \"t\"",
            "component mqtt_publish needs `broker`",
        ),
        (
            "component = \"mqtt_publish\"\nbroker = \"local\"",
            "component mqtt_publish needs `topic`",
        ),
        (
            "component = \"file_write\"\ncontent = \"x\"",
            "component file_write needs `path`",
        ),
        (
            "component = \"file_write\"\npath = \"x\"",
            "component file_write needs `content`",
        ),
        ("component = \"log\"", "component log needs `message`"),
        (
            "component = \"sleep\"",
            "component sleep needs `duration_ms`",
        ),
    ];
    for (keys, expected) in cases {
        let error = single_error(&one_step(keys));
        assert_eq!(error.field, "actions[0].steps[0]", "{keys}");
        assert_eq!(error.message, expected, "{keys}");
    }
}

#[test]
fn bad_template_names_its_key() {
    let cases = [
        (
            "component = \"log\"\nmessage = \"{{ x\"",
            "actions[0].steps[0].message",
        ),
        (
            "component = \"http_request\"\nurl = \"https://h\"\nbody = \"{% if %}\"",
            "actions[0].steps[0].body",
        ),
        (
            "component = \"http_request\"\nurl = \"https://h\"\nheaders = { X-A = \"{{\" }",
            "actions[0].steps[0].headers.X-A",
        ),
        (
            "component = \"mqtt_publish\"\nbroker = \"local\"\ntopic = \"t\"\npayload = \"{{ }\"",
            "actions[0].steps[0].payload",
        ),
    ];
    for (keys, field) in cases {
        let error = single_error(&one_step(keys));
        assert_eq!(error.field, field, "{keys}");
        assert!(
            error.message.starts_with("invalid template at line 1"),
            "{}",
            error.message
        );
    }
}

#[test]
fn unknown_broker_is_rejected() {
    let error = single_error(&one_step(
        "component = \"mqtt_publish\"\nbroker = \"remote\"\ntopic = \"t\"",
    ));
    assert_eq!(error.field, "actions[0].steps[0].broker");
    assert!(
        error
            .message
            .contains("broker \"remote\", which is not defined in [[brokers]]"),
        "{}",
        error.message
    );
}

#[test]
fn empty_broker_is_rejected_without_brokers() {
    let text = "[[brokers]]\nname = \"remote\"\nurl = \"mqtt://h\"\nport = \"x\"\n\n\
                [[actions]]\nname = \"a\"\n[[actions.steps]]\ncomponent = \"log\"\nmessage = \"x\"\n\
                [[actions.steps]]\ncomponent = \"mqtt_publish\"\nbroker = \"\"\ntopic = \"t\"\n";
    let errors = errors_of(text);
    let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    assert_eq!(fields, ["brokers[0].port", "actions[0].steps[1].broker"]);
    assert_eq!(
        errors[1].message,
        "broker is empty; name a [[brokers]] entry"
    );
    assert_eq!(errors[1].line, 13);
}

#[test]
fn broken_broker_does_not_fail_step() {
    let text = "[[brokers]]\nname = \"remote\"\nurl = \"mqtt://h\"\nport = \"x\"\n\n\
                [[actions]]\nname = \"a\"\n[[actions.steps]]\ncomponent = \"mqtt_publish\"\n\
                broker = \"remote\"\ntopic = \"t\"\n";
    let error = single_error(text);
    assert_eq!(error.field, "brokers[0].port");
}

#[test]
fn literal_values_are_checked_now() {
    let cases = [
        (
            "component = \"file_write\"\npath = \"../escape.log\"\ncontent = \"x\"",
            "actions[0].steps[0].path",
            "the path contains `..`",
        ),
        (
            "component = \"file_write\"\npath = \"/etc/passwd\"\ncontent = \"x\"",
            "actions[0].steps[0].path",
            "the path is absolute",
        ),
        (
            "component = \"http_request\"\nurl = \"ftp://h\"",
            "actions[0].steps[0].url",
            "must start with http:// or https://",
        ),
        (
            "component = \"mqtt_publish\"\nbroker = \"local\"\ntopic = \"a/#\"",
            "actions[0].steps[0].topic",
            "wildcards are allowed only in filters",
        ),
    ];
    for (keys, field, fragment) in cases {
        let error = single_error(&one_step(keys));
        assert_eq!(error.field, field, "{keys}");
        assert!(error.message.contains(fragment), "{}", error.message);
    }
}

#[test]
fn templated_values_are_checked_at_run() {
    let cases = [
        "component = \"file_write\"\npath = \"{{ Data.name }}\"\ncontent = \"x\"",
        "component = \"http_request\"\nurl = \"{{ Properties.url }}\"",
        "component = \"mqtt_publish\"\nbroker = \"local\"\ntopic = \"{% if true %}a{% endif %}\"",
    ];
    for keys in cases {
        let config = config_of(&one_step(keys));
        assert_eq!(config.actions.len(), 1, "{keys}");
    }
}

#[test]
fn number_ranges_are_inclusive() {
    let valid = [
        "component = \"http_request\"\nurl = \"https://h\"\ntimeout_ms = 1\nretries = 0\nbackoff_ms = 0\nbackoff_max_ms = 0",
        "component = \"http_request\"\nurl = \"https://h\"\ntimeout_ms = 300000\nretries = 9\nbackoff_ms = 300000\nbackoff_max_ms = 300000",
        "component = \"mqtt_publish\"\nbroker = \"local\"\ntopic = \"t\"\nqos = 0",
        "component = \"sleep\"\nduration_ms = 0",
        "component = \"sleep\"\nduration_ms = 3600000",
    ];
    for keys in valid {
        config_of(&one_step(keys));
    }

    let invalid = [
        ("timeout_ms = 0", "timeout_ms is 0; it must be 1 to 300000"),
        (
            "timeout_ms = 300001",
            "timeout_ms is 300001; it must be 1 to 300000",
        ),
        ("retries = 10", "retries is 10; it must be 0 to 9"),
        ("retries = -1", "retries is -1; it must be 0 to 9"),
        (
            "backoff_max_ms = 300001",
            "backoff_max_ms is 300001; it must be 0 to 300000",
        ),
    ];
    for (key, expected) in invalid {
        let keys = format!("component = \"http_request\"\nurl = \"https://h\"\n{key}");
        let error = single_error(&one_step(&keys));
        assert_eq!(error.message, expected, "{key}");
    }

    let error = single_error(&one_step("component = \"sleep\"\nduration_ms = 3600001"));
    assert_eq!(error.field, "actions[0].steps[0].duration_ms");
    let error = single_error(&one_step(
        "component = \"mqtt_publish\"\nbroker = \"local\"\ntopic = \"t\"\nqos = 3",
    ));
    assert_eq!(error.message, "qos is 3; it must be 0 to 2");
}

#[test]
fn backoff_start_above_max_is_rejected() {
    let error = single_error(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\nbackoff_ms = 40000",
    ));
    assert_eq!(error.field, "actions[0].steps[0].backoff_ms");
    assert!(
        error
            .message
            .starts_with("backoff_ms is 40000 but backoff_max_ms is 30000"),
        "{}",
        error.message
    );

    let error = single_error(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\nbackoff_max_ms = 100",
    ));
    assert_eq!(error.field, "actions[0].steps[0].backoff_max_ms");
}

#[test]
fn header_name_and_content_type_are_checked() {
    let error = single_error(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\nheaders = { \"X Source\" = \"v\" }",
    ));
    assert_eq!(error.field, "actions[0].steps[0].headers.\"X Source\"");
    assert!(
        error.message.contains("is not a valid HTTP token"),
        "{}",
        error.message
    );

    let error = single_error(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\ncontent_type = \"text/plain\\n\"",
    ));
    assert_eq!(error.field, "actions[0].steps[0].content_type");
    assert!(
        error.message.contains("is not a valid header value"),
        "{}",
        error.message
    );
    let error = single_error(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\nheaders = { \"X-Note\" = \"a\\nb\" }",
    ));
    assert_eq!(error.field, "actions[0].steps[0].headers.X-Note");
    assert!(
        error.message.contains("contains a control character"),
        "{}",
        error.message
    );
}

#[test]
fn ca_file_is_not_read() {
    let config = config_of(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\nca_file = \"does/not/exist.pem\"",
    ));
    let Step::HttpRequest { ca_file, .. } = only_step(&config) else {
        panic!("not an HTTP step");
    };
    assert_eq!(ca_file.as_deref(), Some(Path::new("does/not/exist.pem")));

    let error = single_error(&one_step(
        "component = \"http_request\"\nurl = \"https://h\"\nca_file = \" \"",
    ));
    assert_eq!(error.field, "actions[0].steps[0].ca_file");
    assert!(error.message.starts_with("ca_file is empty"));
}

#[test]
fn authorization_over_http_warns() {
    let keys = "component = \"http_request\"\nurl = \"HTTP://h/x\"\n\
                headers = { authorization = \"Bearer secret-token\" }";
    let config = config_of(&one_step(keys));
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    let warning = &config.warnings[0];
    assert_eq!(warning.field, "actions[0].steps[0].headers.authorization");
    assert!(warning.message.contains("use an https:// URL"));
    assert!(!warning.to_string().contains("secret-token"));

    let quiet = [
        "component = \"http_request\"\nurl = \"https://h\"\nheaders = { Authorization = \"x\" }",
        "component = \"http_request\"\nurl = \"http://h\"\nheaders = { X-Token = \"x\" }",
    ];
    for keys in quiet {
        let config = config_of(&one_step(keys));
        assert!(config.warnings.is_empty(), "{keys}: {:#?}", config.warnings);
    }
}

#[test]
fn step_count_is_limited() {
    let error = single_error(&format!("{BROKER}\n[[actions]]\nname = \"a\"\n"));
    assert_eq!(error.field, "actions[0]");
    assert!(error.message.starts_with("action has no steps"));

    let step = "[[actions.steps]]\ncomponent = \"sleep\"\nduration_ms = 0\n";
    let max_steps = format!("[[actions]]\nname = \"a\"\n{}", step.repeat(32));
    assert_eq!(config_of(&max_steps).actions[0].steps().len(), 32);
    let error = single_error(&format!("[[actions]]\nname = \"a\"\n{}", step.repeat(33)));
    assert_eq!(error.field, "actions[0].steps[32]");
    assert_eq!(
        error.message,
        "action has 33 steps; an action takes at most 32"
    );
}

#[test]
fn action_count_is_limited() {
    let actions = |count: usize| {
        let items: Vec<String> = (0..count)
            .map(|index| {
                format!("{{ name = \"a{index}\", steps = [{{ component = \"sleep\", duration_ms = 0 }}] }}")
            })
            .collect();
        format!("actions = [{}]\n", items.join(", "))
    };
    assert_eq!(config_of(&actions(1000)).actions.len(), 1000);
    let error = single_error(&actions(1001));
    assert_eq!(error.field, "actions[1000]");
    assert!(
        error.message.contains("more than 1000 actions"),
        "{}",
        error.message
    );
}

#[test]
fn action_names_are_checked() {
    let step = "[[actions.steps]]\ncomponent = \"log\"\nmessage = \"x\"\n";
    let text = format!(
        "[[actions]]\nname = \"a\"\n{step}[[actions]]\nname = \"a\"\n{step}[[actions]]\nname = \" \"\n{step}"
    );
    let errors = errors_of(&text);
    let found: Vec<(&str, &str)> = errors
        .iter()
        .map(|error| (error.field.as_str(), error.message.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].0, "actions[1].name");
    assert!(found[0].1.contains("is already used by actions[0]"));
    assert_eq!(found[1].0, "actions[2].name");
    assert!(found[1].1.starts_with("action name is empty"));
}

#[test]
fn every_step_error_is_reported() {
    let text = format!(
        "{BROKER}\n[[actions]]\nname = \"a\"\n\
         [[actions.steps]]\ncomponent = \"log\"\nmessage = \"{{{{\"\n\
         [[actions.steps]]\ncomponent = \"sleep\"\nduration_ms = -5\n\
         [[actions]]\nname = \"b\"\n\
         [[actions.steps]]\ncomponent = \"mqtt_publish\"\nbroker = \"nowhere\"\ntopic = \"t\"\n"
    );
    let errors = errors_of(&text);
    let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "actions[0].steps[0].message",
            "actions[0].steps[1].duration_ms",
            "actions[1].steps[0].broker",
        ]
    );
}

#[test]
fn unknown_level_hides_rest_of_action() {
    let text = "[[actions]]\nname = \"a\"\n\
                [[actions.steps]]\ncomponent = \"log\"\nmessage = \"x\"\nlevel = \"loud\"\n\
                [[actions.steps]]\ncomponent = \"sleep\"\nduration_ms = -5\n";
    // A value of the wrong type stops serde from reading the action, as it does for a
    // webhook, so the sleep step is not checked.
    let error = single_error(text);
    assert_eq!(error.field, "actions[0].steps[0].level");
    assert!(
        error.message.contains("unknown variant `loud`"),
        "{}",
        error.message
    );
}
