//! Checks every invalid configuration in `fixtures/config/bad` against the one error it
//! must produce, and the valid configurations against their values.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hubkit_config::{Config, ConfigError, Synchronous, TlsConfig, load};
use hubkit_endpoints::{Auth, PasswordSpec, PayloadFormat, Registry};
use hubkit_triggers::{
    Combination, HttpMethod, LogLevel, NumberOperator, Operator, QoS, Step, Template, TextOperator,
    TriggerSource, WriteMode,
};

/// File name in `fixtures/config/bad`, then the expected line, key and message fragment.
const BAD_CASES: &[(&str, usize, &str, &str)] = &[
    (
        "camera-mac-invalid.toml",
        11,
        "cameras[0].mac",
        "MAC address \"AA-BB-CC-DD-EE-F\" is invalid: write 12 hex digits",
    ),
    (
        "camera-format-unknown.toml",
        12,
        "cameras[0].format",
        "data format \"crowd\" is unknown; use ai-crowd",
    ),
    (
        "camera-mac-duplicate.toml",
        16,
        "cameras[1].mac",
        "MAC address aa:bb:cc:dd:ee:ff is already used by cameras[0]",
    ),
    (
        "camera-password-short.toml",
        13,
        "cameras[0].auth.password",
        "shorter than 8 characters",
    ),
    (
        "binding-unknown-camera.toml",
        15,
        "bindings[0].camera",
        "binding names camera \"lobbby\", which is not defined in [[cameras]]",
    ),
    (
        "binding-camera-to-webhook-layer.toml",
        17,
        "bindings[0].layer",
        "camera \"lobby\" cannot be bound to layer \"Webhooks\", whose kind is webhook-json",
    ),
    (
        "ipro-unknown-key.toml",
        4,
        "ipro.capture_folder",
        "unknown field `capture_folder`",
    ),
    (
        "broker-url-scheme.toml",
        11,
        "brokers[0].url",
        "must start with mqtt:// or mqtts://",
    ),
    (
        "broker-client-id-empty.toml",
        13,
        "brokers[0].client_id",
        "needs a fixed client id",
    ),
    (
        "broker-password-without-username.toml",
        12,
        "brokers[0].password",
        "password is set without username",
    ),
    (
        "broker-tls-on-plain-url.toml",
        13,
        "brokers[0].tls",
        "does not use TLS",
    ),
    (
        "broker-max-packet-small.toml",
        12,
        "brokers[0].max_packet_bytes",
        "max_packet_bytes is 100; it must be 1024 to 268435455",
    ),
    (
        "broker-name-duplicate.toml",
        14,
        "brokers[1].name",
        r#"broker name "local" is already used by brokers[0]"#,
    ),
    (
        "broker-tls-cert-without-key.toml",
        13,
        "brokers[0].tls",
        "needs both cert_file and key_file",
    ),
    (
        "topic-unknown-broker.toml",
        15,
        "topics[0].broker",
        r#"names broker "remote", which is not defined"#,
    ),
    (
        "topic-filter-invalid.toml",
        16,
        "topics[0].filter",
        "has `#` at level 2",
    ),
    (
        "topic-qos-3.toml",
        17,
        "topics[0].qos",
        "qos is 3; it must be 0 to 2",
    ),
    (
        "topic-format-unknown.toml",
        17,
        "topics[0].payload_format",
        "unknown variant `xml`",
    ),
    (
        "topic-timeout-zero.toml",
        17,
        "topics[0].timeout_secs",
        "timeout_secs is 0; it must be 1 to 3600",
    ),
    (
        "binding-unknown-topic.toml",
        19,
        "bindings[0].topic",
        r#"names topic entry "sensor", which is not defined in [[topics]]"#,
    ),
    (
        "binding-topic-to-webhook-layer.toml",
        21,
        "bindings[0].layer",
        r#"topic entry "sensors" cannot be bound to layer "Sensors", whose kind is webhook-json"#,
    ),
    (
        "binding-webhook-and-topic.toml",
        20,
        "bindings[0].topic",
        "binding names more than one device (webhook, topic)",
    ),
    (
        "files-on-query-params.toml",
        13,
        "webhooks[0].files",
        "which receives no body",
    ),
    (
        "files-max-age-zero.toml",
        15,
        "webhooks[0].files.max_age_hours",
        "max_age_hours is 0; it must be 1 to 876000",
    ),
    ("syntax-unclosed-string.toml", 3, "", "invalid basic string"),
    (
        "unknown-top-level-key.toml",
        2,
        "webhook_defaults",
        "unknown key `webhook_defaults`",
    ),
    (
        "unknown-server-key.toml",
        4,
        "server.listen_port",
        "unknown field `listen_port`",
    ),
    (
        "unknown-webhook-key.toml",
        13,
        "webhooks[0].custom-path",
        "unknown field `custom-path`",
    ),
    (
        "wrong-type-enabled.toml",
        13,
        "webhooks[0].enabled",
        "expected a boolean",
    ),
    (
        "missing-custom-path.toml",
        9,
        "webhooks[0]",
        "missing field `custom_path`",
    ),
    (
        "areas-not-array.toml",
        2,
        "areas",
        "must be an array of tables",
    ),
    (
        "listen-invalid.toml",
        3,
        "server.listen",
        "listen address \"127.0.0.1\" is invalid",
    ),
    (
        "data-dir-empty.toml",
        3,
        "server.data_dir",
        "data_dir is empty",
    ),
    (
        "admin-token-short.toml",
        3,
        "server.admin_token",
        "is 16 characters; it must be at least 32",
    ),
    (
        "admin-token-space.toml",
        3,
        "server.admin_token",
        "must be visible ASCII",
    ),
    (
        "public-url-scheme.toml",
        3,
        "server.public_url",
        "must start with http:// or https://",
    ),
    (
        "tls-files-missing-key.toml",
        2,
        "server.tls",
        "TLS mode \"files\" needs `key`",
    ),
    (
        "tls-self-signed-with-cert.toml",
        4,
        "server.tls.cert",
        "read only in mode \"files\"",
    ),
    (
        "tls-off-with-hostnames.toml",
        4,
        "server.tls.hostnames",
        "read only in mode \"self-signed\"",
    ),
    (
        "tls-hostname-invalid.toml",
        3,
        "server.tls.hostnames[1]",
        "hostname \"my_hub\" is invalid",
    ),
    (
        "tls-mode-unknown.toml",
        3,
        "server.tls.mode",
        "unknown variant `acme`",
    ),
    (
        "limits-body-zero.toml",
        3,
        "server.limits.max_body_bytes",
        "is 0; it must be 1 to 1073741824",
    ),
    (
        "limits-body-too-large.toml",
        3,
        "server.limits.max_body_bytes",
        "is 2147483648; it must be",
    ),
    (
        "limits-connections-negative.toml",
        3,
        "server.limits.max_connections",
        "is -1; it must be 1",
    ),
    (
        "limits-timeout-zero.toml",
        4,
        "server.limits.idle_timeout_ms",
        "is 0; it must be 1 to",
    ),
    (
        "store-synchronous-unknown.toml",
        3,
        "server.store.synchronous",
        "unknown variant `off`",
    ),
    (
        "custom-path-short.toml",
        11,
        "webhooks[0].custom_path",
        "custom path \"abc\" is 3 characters; it must be 8 to 1000",
    ),
    (
        "custom-path-leading-slash.toml",
        11,
        "webhooks[0].custom_path",
        "starts with '/'",
    ),
    (
        "custom-path-duplicate.toml",
        16,
        "webhooks[1].custom_path",
        "is already used by webhooks[0]",
    ),
    (
        "webhook-name-empty.toml",
        10,
        "webhooks[0].name",
        "webhook name is empty",
    ),
    (
        "webhook-name-duplicate.toml",
        15,
        "webhooks[1].name",
        "is already used by webhooks[0]",
    ),
    (
        "payload-format-unknown.toml",
        12,
        "webhooks[0].payload_format",
        "unknown variant `xml`",
    ),
    (
        "webhook-max-body-too-large.toml",
        13,
        "webhooks[0].max_body_bytes",
        "is 2000000000; it must be",
    ),
    (
        "auth-username-short.toml",
        13,
        "webhooks[0].auth.username",
        "is 3 characters; it must be at least 4",
    ),
    (
        "auth-password-short.toml",
        13,
        "webhooks[0].auth.password",
        "shorter than 8 characters",
    ),
    (
        "auth-phc-invalid.toml",
        13,
        "webhooks[0].auth.password",
        "not a valid PHC string",
    ),
    (
        "auth-basic-missing-password.toml",
        13,
        "webhooks[0].auth",
        "needs `password`",
    ),
    (
        "auth-none-with-username.toml",
        13,
        "webhooks[0].auth.username",
        "auth type is \"none\"",
    ),
    (
        "auth-type-unknown.toml",
        13,
        "webhooks[0].auth.type",
        "unknown variant `digest`",
    ),
    (
        "area-name-duplicate.toml",
        10,
        "areas[1].name",
        "area name \"Office\" is already used by areas[0]",
    ),
    (
        "area-name-empty.toml",
        3,
        "areas[0].name",
        "area name is empty",
    ),
    (
        "layer-name-duplicate.toml",
        10,
        "areas[0].layers[1].name",
        "is already used by areas[0].layers[0]",
    ),
    (
        "area-id-duplicate.toml",
        8,
        "areas[1].id",
        "is already used by areas[0]",
    ),
    (
        "area-id-invalid.toml",
        4,
        "areas[0].id",
        "id \"office-1\" is not a valid UUID",
    ),
    (
        "layer-kind-unknown.toml",
        7,
        "areas[0].layers[0].kind",
        "unknown variant `camera`",
    ),
    (
        "binding-unknown-webhook.toml",
        20,
        "bindings[1].webhook",
        "webhook \"sensor-dta\", which is not defined",
    ),
    (
        "binding-unknown-area.toml",
        16,
        "bindings[0].area",
        "area \"Lab\", which is not defined",
    ),
    (
        "binding-unknown-layer.toml",
        17,
        "bindings[0].layer",
        "layer \"Cameras\", which area \"Office\" does not have",
    ),
    (
        "binding-duplicate.toml",
        19,
        "bindings[1]",
        "is already bound to layer \"Webhooks\"",
    ),
    (
        "action-component-unknown.toml",
        6,
        "actions[0].steps[0].component",
        "component \"email\" is unknown; use http_request, mqtt_publish, file_write, log or sleep",
    ),
    (
        "action-key-not-for-component.toml",
        8,
        "actions[0].steps[0].topic",
        "key `topic` does not apply to component log",
    ),
    (
        "action-template-invalid.toml",
        8,
        "actions[0].steps[0].body",
        "invalid template at line 1",
    ),
    (
        "action-broker-unknown.toml",
        11,
        "actions[0].steps[0].broker",
        r#"step names broker "remote", which is not defined in [[brokers]]"#,
    ),
    (
        "action-file-path-parent.toml",
        7,
        "actions[0].steps[0].path",
        "the path contains `..`",
    ),
    (
        "action-retries-too-many.toml",
        8,
        "actions[0].steps[0].retries",
        "retries is 10; it must be 0 to 9",
    ),
    (
        "trigger-action-unknown.toml",
        11,
        "triggers[0].action",
        r#"trigger runs action "cold-alert", which is not defined in [[actions]]"#,
    ),
    (
        "trigger-area-unknown.toml",
        23,
        "triggers[0].area",
        r#"area "Lab" is not defined in [[areas]]"#,
    ),
    (
        "trigger-layer-unknown.toml",
        24,
        "triggers[0].layer",
        r#"area "Office" has no layer "Cameras""#,
    ),
    (
        "trigger-device-not-bound.toml",
        39,
        "triggers[0].device",
        r#"device "door-sensor" is not bound to layer "Sensors" of area "Office""#,
    ),
    (
        "trigger-operator-unknown.toml",
        26,
        "triggers[0].operator",
        r#"unknown operator "above""#,
    ),
    (
        "trigger-value-not-number.toml",
        27,
        "triggers[0].value",
        r#"its operand "warm" is not a finite number"#,
    ),
    (
        "trigger-range-min-above-max.toml",
        27,
        "triggers[0].value",
        "range minimum 40 is greater than its maximum 30",
    ),
    (
        "trigger-cron-and-layer.toml",
        25,
        "triggers[0].cron",
        "trigger sets both `cron` and `area`/`layer`",
    ),
    (
        "trigger-cron-invalid.toml",
        12,
        "triggers[0].cron",
        "must have 6 fields, not 5",
    ),
    (
        "trigger-timer-with-field.toml",
        13,
        "triggers[0].field",
        "key `field` applies to layer triggers only",
    ),
    (
        "trigger-extra-too-many.toml",
        58,
        "triggers[0].extra[4]",
        "trigger has 5 extra-layer conditions; a trigger takes at most 4",
    ),
    (
        "trigger-utc-offset-invalid.toml",
        13,
        "triggers[0].utc_offset",
        r#"utc_offset "+9" is invalid; write +HH:MM or -HH:MM"#,
    ),
    (
        "trigger-active-hours-invalid.toml",
        25,
        "triggers[0].active_hours",
        r#"invalid active hours "8-18""#,
    ),
];

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/config")
        .join(relative)
}

fn load_ok(path: &Path) -> Config {
    load(path).unwrap_or_else(|errors| panic!("{} is invalid:\n{errors}", path.display()))
}

#[test]
fn bad_fixtures_report_their_error() {
    for &(name, line, field, fragment) in BAD_CASES {
        let errors = match load(&fixture(&format!("bad/{name}"))) {
            Ok(_) => panic!("{name} was accepted"),
            Err(errors) => errors.into_vec(),
        };
        assert_eq!(
            errors.len(),
            1,
            "{name}: expected one error, got {errors:#?}"
        );
        let ConfigError {
            line: actual_line,
            field: actual_field,
            message,
            ..
        } = &errors[0];
        assert_eq!(*actual_line, line, "{name}: line of {message:?}");
        assert_eq!(actual_field, field, "{name}: field of {message:?}");
        assert!(message.contains(fragment), "{name}: message {message:?}");
    }
}

#[test]
fn bad_fixtures_are_all_listed() {
    let listed: BTreeSet<&str> = BAD_CASES.iter().map(|case| case.0).collect();
    let entries = std::fs::read_dir(fixture("bad")).expect("fixtures/config/bad is readable");
    for entry in entries {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            listed.contains(name.as_ref()),
            "{name} has no case in BAD_CASES"
        );
    }
}

#[test]
fn example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/hubkit.toml");
    let config = load_ok(&path);
    let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sensor-data",
            "sensor-data-basic",
            "sensor-data-query",
            "camera-upload",
            "hot-alerts"
        ]
    );
    assert!(config.webhooks.iter().all(|w| w.enabled));
    assert_eq!(config.topology.bindings().len(), 10);
    let actions: Vec<&str> = config.actions.iter().map(|a| a.name()).collect();
    assert_eq!(actions, ["hot-alert"]);
    assert_eq!(config.actions[0].steps().len(), 2);
    let triggers: Vec<&str> = config.triggers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(triggers, ["too-hot"]);
    assert_eq!(config.triggers[0].action, "hot-alert");
    let formats: Vec<&str> = config.cameras.iter().map(|c| c.format.as_str()).collect();
    assert_eq!(
        formats,
        ["general", "ai-motion", "ai-crowd", "face-recognition"]
    );
    assert_eq!(
        config.cameras[0].url_path(),
        "/ipro/aa-bb-cc-dd-ee-ff/general"
    );
    assert!(matches!(config.cameras[0].auth, Auth::None));
    assert!(!config.ipro.capture);
    assert_eq!(config.brokers.len(), 1);
    let broker = &config.brokers[0];
    assert_eq!(broker.address.to_string(), "mqtt://127.0.0.1:1883");
    assert!(!broker.clean_session);
    assert_eq!(broker.max_packet_bytes, 1024 * 1024);
    assert_eq!(config.topics.len(), 1);
    let topic = &config.topics[0];
    assert_eq!(topic.filter.subscription(), "sensors/#");
    assert_eq!(topic.qos, hubkit_mqtt::Qos::AtLeastOnce);
    assert_eq!(topic.format, hubkit_mqtt::DataFormat::Json);
    let camera = &config.webhooks[3].files;
    assert!(camera.enabled);
    assert_eq!(camera.max_bytes, Some(100 * 1024 * 1024));
    assert_eq!(
        camera.max_age,
        Some(std::time::Duration::from_secs(720 * 3600))
    );
    assert_eq!(camera.max_total_bytes, Some(5 * 1024 * 1024 * 1024));
    // The quick-start password of one webhook.
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0].message.contains("clear text"));
}

#[test]
fn minimal_config_gets_defaults() {
    let config = load_ok(&fixture("minimal.toml"));
    assert_eq!(config.server, hubkit_config::ServerConfig::default());
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(config.server.data_dir, Path::new("hubkit-data"));
    assert_eq!(
        config.server.tls,
        TlsConfig::SelfSigned { hostnames: vec![] }
    );
    assert_eq!(config.server.limits.max_body_bytes, 1024 * 1024);
    assert_eq!(config.server.limits.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.server.store.synchronous, Synchronous::Full);
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
}

#[test]
fn full_config_reads_every_key() {
    let config = load_ok(&fixture("full.toml"));
    let server = &config.server;
    assert_eq!(server.listen.to_string(), "0.0.0.0:9443");
    assert_eq!(server.data_dir, Path::new("/var/lib/hubkit"));
    assert_eq!(server.admin_token.as_deref().map(str::len), Some(32));
    assert_eq!(server.public_url.as_deref(), Some("https://hub.local:9443"));
    let expected_tls = TlsConfig::Files {
        cert: PathBuf::from("/etc/hubkit/cert.pem"),
        key: PathBuf::from("/etc/hubkit/key.pem"),
    };
    assert_eq!(server.tls, expected_tls);
    let limits = &server.limits;
    assert_eq!(limits.max_body_bytes, 65536);
    assert_eq!(limits.max_connections, 256);
    assert_eq!(limits.header_read_timeout, Duration::from_millis(5000));
    assert_eq!(limits.body_read_timeout, Duration::from_millis(15000));
    assert_eq!(limits.tls_handshake_timeout, Duration::from_millis(4000));
    assert_eq!(limits.idle_timeout, Duration::from_millis(30000));
    assert_eq!(limits.shutdown_grace, Duration::from_millis(2000));
    assert_eq!(server.store.synchronous, Synchronous::Normal);

    let area = &config.topology.areas()[0];
    assert_eq!(area.id.to_string(), "0f8e5b9c-3c1a-4e6d-9b2a-7d4c1e0f2a3b");
    assert_eq!(
        area.layers[0].id.to_string(),
        "5a1c7e2d-8b4f-4c3a-a6d9-2e0b1f7c8d94"
    );
    assert!(!config.topology.bindings()[0].enabled);

    let webhook = &config.webhooks[0];
    assert_eq!(webhook.custom_path.as_str(), "office/door-sensor");
    assert_eq!(webhook.format, PayloadFormat::QueryParams);
    assert!(!webhook.enabled);
    assert_eq!(webhook.max_body_bytes, Some(4096));
    assert!(matches!(
        &webhook.auth,
        Auth::Basic { username, password: PasswordSpec::Phc(_) } if username == "door"
    ));

    let broker = &config.brokers[0];
    assert_eq!(
        broker.address.to_string(),
        "mqtts://broker.plant.local:8884"
    );
    assert_eq!(broker.username.as_deref(), Some("hub"));
    assert_eq!(broker.password.as_deref(), Some("broker-secret"));
    assert_eq!(broker.client_id.as_deref(), Some("plant-hub-1"));
    assert_eq!(broker.keep_alive, Duration::from_secs(30));
    assert!(!broker.clean_session);
    assert_eq!(broker.max_packet_bytes, 2 * 1024 * 1024);
    assert_eq!(
        broker.tls.ca_file.as_deref(),
        Some(Path::new("/etc/hubkit/broker-ca.pem"))
    );
    assert!(broker.tls.client_auth.is_some());
    assert!(!broker.tls.accept_invalid_certs);
    let topic = &config.topics[0];
    assert_eq!(topic.filter.share_group(), Some("hubs"));
    assert_eq!(topic.filter.filter(), "plant/line-1/+");
    assert_eq!(topic.qos, hubkit_mqtt::Qos::ExactlyOnce);
    assert_eq!(topic.format, hubkit_mqtt::DataFormat::String);
    assert_eq!(topic.timeout, Duration::from_secs(10));

    let camera = &config.cameras[0];
    assert_eq!(camera.mac.to_string(), "aa:bb:cc:dd:ee:ff");
    assert_eq!(camera.format, hubkit_ipro::DataFormat::AiCrowd);
    assert!(!camera.enabled);
    assert_eq!(camera.max_body_bytes, Some(1_048_576));
    assert_eq!(camera.max_age, Some(Duration::from_secs(48 * 3600)));
    assert_eq!(camera.max_total_bytes, Some(1_073_741_824));
    assert!(matches!(
        &camera.auth,
        Auth::Basic { username, password: PasswordSpec::Phc(_) } if username == "iprocam"
    ));
    assert!(config.ipro.capture);
    assert_eq!(
        config.ipro.capture_dir.as_deref(),
        Some(Path::new("/var/lib/hubkit/captures"))
    );
    assert_eq!(config.ipro.max_body_bytes, 4_194_304);

    assert_full_actions(&config);
    assert_full_triggers(&config);
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
}

/// Checks the action of `full.toml`, one step of each component.
fn assert_full_actions(config: &Config) {
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
    assert_eq!(
        url.source(),
        "https://alerts.plant.local/lines/{{ Data.line }}"
    );
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "X-Source");
    assert_eq!(headers[0].1.source(), "hubkit");
    assert_eq!(
        body.as_ref().map(Template::source),
        Some(r#"{"t": {{ Data.temperature }}}"#)
    );
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(*timeout, Duration::from_millis(5000));
    assert_eq!(*retries, 5, "4 retries after the first attempt");
    assert_eq!(backoff.initial, Duration::from_millis(250));
    assert_eq!(backoff.max, Duration::from_millis(4000));
    assert_eq!(
        ca_file.as_deref(),
        Some(Path::new("/etc/hubkit/alerts-ca.pem"))
    );

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
    assert_eq!(broker, "plant");
    assert_eq!(topic.source(), "plant/alerts/{{ Data.line }}");
    assert_eq!(*qos, QoS::ExactlyOnce);
    assert!(*retain);
    assert_eq!(payload.source(), "{{ payload.body | tojson }}");

    let Step::FileWrite {
        path,
        mode,
        content,
    } = file
    else {
        panic!("step 3 is {file:?}");
    };
    assert_eq!(path.source(), "alerts/hot.log");
    assert_eq!(*mode, WriteMode::Overwrite);
    assert_eq!(content.source(), "{{ Data.temperature }}");

    let Step::Log { message, level } = log else {
        panic!("step 4 is {log:?}");
    };
    assert_eq!(message.source(), "line {{ Data.line }} is hot");
    assert_eq!(*level, LogLevel::Error);

    let Step::Sleep { duration } = sleep else {
        panic!("step 5 is {sleep:?}");
    };
    assert_eq!(*duration, Duration::from_millis(2000));
}

/// Checks the layer trigger and the timer trigger of `full.toml`.
fn assert_full_triggers(config: &Config) {
    let names: Vec<&str> = config.triggers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["line-1-hot", "hourly-report"]);

    let layer = &config.triggers[0];
    assert!(!layer.enabled);
    assert_eq!(layer.action, "hot-alert");
    let TriggerSource::Layer(source) = &layer.source else {
        panic!("not a layer trigger: {:?}", layer.source);
    };
    assert_eq!(source.key.area, "Office");
    assert_eq!(source.key.layer, "Sensors");
    assert_eq!(source.device.as_deref(), Some("line-1"));
    let key = source.conditions.key();
    assert_eq!(key.path.as_str(), "temperature");
    assert!(
        matches!(key.operator, Operator::Number(NumberOperator::Ge, operand) if operand == 80.0),
        "{:?}",
        key.operator
    );
    assert_eq!(source.conditions.combination(), Combination::Or);
    let extras = source.conditions.extras();
    assert_eq!(extras.len(), 1);
    assert_eq!(extras[0].condition.path.as_str(), "open");
    assert!(matches!(
        &extras[0].condition.operator,
        Operator::Text(TextOperator::Eq, operand) if operand == "true"
    ));
    assert_eq!(extras[0].max_age_ms, 300_000);
    assert_eq!(source.extra_layers.len(), 1);
    assert_eq!(source.extra_layers[0].layer, "Webhooks");
    let gate = &layer.gate;
    assert_eq!(gate.interval_ms, 60_000);
    assert!(gate.threshold);
    assert!(gate.skip_if_running);
    let hours = gate.active_hours.expect("active hours are set");
    assert_eq!(hours.offset().local_minus_utc(), 9 * 3600);
    assert_eq!(
        layer.properties.get("severity"),
        Some(&serde_json::Value::from("high"))
    );

    let timer = &config.triggers[1];
    assert!(timer.enabled);
    let TriggerSource::Timer(schedule) = &timer.source else {
        panic!("not a timer trigger: {:?}", timer.source);
    };
    assert_eq!(schedule.as_str(), "0 0 * * * *");
    assert_eq!(schedule.offset().local_minus_utc(), -5 * 3600);
    assert_eq!(timer.gate, hubkit_triggers::GateConfig::default());
    assert!(timer.properties.is_empty());
}

#[test]
fn registry_accepts_valid_configs() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/hubkit.toml");
    for path in [example, fixture("minimal.toml"), fixture("full.toml")] {
        let config = load_ok(&path);
        let registry = Registry::new(config.webhooks.clone());
        assert!(registry.is_ok(), "{}: {:?}", path.display(), registry.err());
    }
}
