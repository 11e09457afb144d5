use std::io::Write;
use std::path::Path;

use hubkit_model::DeviceRef;

use crate::{Config, ConfigErrors, ConfigWarning, load, parse};

const AREA: &str = r#"
[[areas]]
name = "Office"

[[areas.layers]]
name = "Webhooks"
kind = "webhook-json"
"#;

fn webhook(name: &str, path: &str, extra: &str) -> String {
    format!(
        "\n[[webhooks]]\nname = \"{name}\"\ncustom_path = \"{path}\"\npayload_format = \"json\"\n{extra}"
    )
}

fn binding(name: &str, extra: &str) -> String {
    format!(
        "\n[[bindings]]\nwebhook = \"{name}\"\narea = \"Office\"\nlayer = \"Webhooks\"\n{extra}"
    )
}

fn check(text: &str) -> Result<Config, ConfigErrors> {
    parse(text, Path::new("hubkit.toml"))
}

fn errors_of(text: &str) -> ConfigErrors {
    match check(text) {
        Ok(_) => panic!("configuration was accepted:\n{text}"),
        Err(errors) => errors,
    }
}

fn warnings_of(text: &str) -> Vec<ConfigWarning> {
    check(text)
        .unwrap_or_else(|errors| panic!("{errors}"))
        .warnings
}

#[test]
fn errors_are_all_collected() {
    let text = format!(
        "[server]\nlisten = \"nowhere\"\n\n[server.limits]\nmax_body_bytes = 0\n{AREA}{}{}",
        webhook("a", "abc", ""),
        webhook("b", "valid-path", "colour = \"red\"\n"),
    );
    let errors = errors_of(&text);
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "server.listen",
            "server.limits.max_body_bytes",
            "webhooks[0].custom_path",
            "webhooks[1].colour",
        ]
    );
}

#[test]
fn errors_display_one_per_line() {
    let errors = errors_of("[server]\nlisten = \"x\"\nadmin_token = \"short\"\n");
    let text = errors.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("hubkit.toml:2:10: server.listen: "));
    assert!(lines[1].starts_with("hubkit.toml:3:15: server.admin_token: "));
}

#[test]
fn syntax_errors_are_all_reported() {
    let errors = errors_of("a = \nb = [1\nc = \"x\"\n");
    assert!(errors.len() >= 2, "{errors}");
    assert!(errors.errors().iter().all(|e| e.field.is_empty()));
}

#[test]
fn broken_webhook_does_not_fail_its_binding() {
    let text = format!(
        "{AREA}{}{}",
        webhook("a", "a-path-of-8", "enabled = 1\n"),
        binding("a", "")
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors}");
    assert_eq!(errors.errors()[0].field, "webhooks[0].enabled");
}

#[test]
fn broken_area_does_not_fail_its_binding() {
    let text = format!(
        "[[areas]]\nname = \"Office\"\nid = \"not-a-uuid\"\n\n[[areas.layers]]\nname = \"Webhooks\"\nkind = \"webhook-json\"\n{}{}",
        webhook("a", "a-path-of-8", ""),
        binding("a", "")
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors}");
    assert_eq!(errors.errors()[0].field, "areas[0].id");
}

#[test]
fn inline_arrays_of_tables_work() {
    let text = r#"
areas = [{ name = "Office", layers = [{ name = "Webhooks", kind = "webhook-json" }] }]
webhooks = [{ name = "a", custom_path = "a-path-of-8", payload_format = "json" }]
bindings = [{ webhook = "a", area = "Office", layer = "Webhooks" }]
"#;
    let config = check(text).expect("valid configuration");
    let device = DeviceRef::Webhook("a".into());
    assert_eq!(config.topology.layers_for(&device).len(), 1);
}

#[test]
fn inline_table_error_names_inner_key() {
    let text = r#"webhooks = [{ name = "a", custom_path = "a-path-of-8", payload_format = "json", auth = { type = "basic", user = "x" } }]"#;
    let errors = errors_of(text);
    assert_eq!(errors.errors()[0].field, "webhooks[0].auth.user");
}

#[test]
fn clear_password_warns_without_the_password() {
    let auth =
        "auth = { type = \"basic\", username = \"sensor\", password = \"hunter2-hunter2\" }\n";
    let text = format!(
        "{AREA}{}{}",
        webhook("a", "a-path-of-8", auth),
        binding("a", "")
    );
    let warnings = warnings_of(&text);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].field, "webhooks[0].auth.password");
    assert!(warnings[0].message.contains("hubkitd hash-password"));
    assert!(!warnings[0].to_string().contains("hunter2"));
}

#[test]
fn errors_never_contain_password_or_token() {
    let auth = "auth = { type = \"basic\", username = \"x:y\", password = \"s3cr\" }\n";
    let text = format!(
        "[server]\nadmin_token = \"tok-tok-tok\"\n{AREA}{}{}",
        webhook("a", "a-path-of-8", auth),
        binding("a", "")
    );
    let errors = errors_of(&text).to_string();
    assert!(errors.contains("username"), "{errors}");
    assert!(errors.contains("password"), "{errors}");
    assert!(!errors.contains("s3cr"), "{errors}");
    assert!(!errors.contains("tok-tok"), "{errors}");
}

#[test]
fn unbound_webhook_warns() {
    let text = format!("{AREA}{}", webhook("a", "a-path-of-8", ""));
    let warnings = warnings_of(&text);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].field, "webhooks[0]");
    assert!(warnings[0].message.contains("records nothing until bound"));
}

#[test]
fn disabled_binding_leaves_webhook_unbound() {
    let text = format!(
        "{AREA}{}{}",
        webhook("a", "a-path-of-8", ""),
        binding("a", "enabled = false\n")
    );
    let warnings = warnings_of(&text);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("no enabled binding"));
}

#[test]
fn disabled_webhook_does_not_warn() {
    let text = format!("{AREA}{}", webhook("a", "a-path-of-8", "enabled = false\n"));
    assert!(warnings_of(&text).is_empty());
}

#[test]
fn tls_off_warns() {
    let warnings = warnings_of("[server.tls]\nmode = \"off\"\n");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].line, 2);
    assert!(warnings[0].message.contains("TLS-terminating proxy"));
}

#[test]
fn admin_token_of_32_characters_is_valid() {
    let token = "a".repeat(crate::MIN_ADMIN_TOKEN_CHARS);
    let config = check(&format!("[server]\nadmin_token = \"{token}\"\n")).expect("valid");
    assert_eq!(config.server.admin_token, Some(token));
}

#[test]
fn public_url_cases() {
    let cases = [
        ("https://hub.local:8443", true),
        ("http://10.0.0.5", true),
        ("https://", false),
        ("https:///path", false),
        ("ftp://hub.local", false),
        ("https://hub local", false),
    ];
    for (url, valid) in cases {
        let result = check(&format!("[server]\npublic_url = \"{url}\"\n"));
        assert_eq!(result.is_ok(), valid, "{url}");
    }
}

#[test]
fn hostname_cases() {
    let cases = [
        ("hub.local", true),
        ("192.168.1.10", true),
        ("::1", true),
        ("a-b.example", true),
        ("-hub.local", false),
        ("hub..local", false),
        ("", false),
        ("hub local", false),
    ];
    for (hostname, valid) in cases {
        let result = check(&format!("[server.tls]\nhostnames = [\"{hostname}\"]\n"));
        assert_eq!(result.is_ok(), valid, "{hostname:?}");
    }
}

#[test]
fn limit_bounds_are_inclusive() {
    let text = "[server.limits]\nmax_body_bytes = 1073741824\nmax_connections = 1\nshutdown_grace_ms = 1\n";
    let limits = check(text).expect("valid").server.limits;
    assert_eq!(limits.max_body_bytes, 1 << 30);
    assert_eq!(limits.max_connections, 1);
    assert_eq!(limits.shutdown_grace.as_millis(), 1);
}

#[test]
fn derived_ids_follow_names() {
    let config = check(AREA).expect("valid");
    let area = &config.topology.areas()[0];
    assert_eq!(area.id, hubkit_model::derive_uuid("area", "Office"));
    let layer_id = hubkit_model::derive_uuid("layer", "Office/Webhooks");
    assert_eq!(area.layers[0].id, layer_id);
}

#[test]
fn webhook_gets_short_id_from_name() {
    let text = format!(
        "{AREA}{}{}",
        webhook("sensor-data", "sensor-data", ""),
        binding("sensor-data", "")
    );
    let config = check(&text).expect("valid");
    assert_eq!(config.webhooks[0].short_id.as_str(), "2bd3d393b13a");
}

#[test]
fn load_reports_missing_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("absent.toml");
    let errors = load(&path).expect_err("missing file");
    assert_eq!(errors.len(), 1);
    let error = &errors.errors()[0];
    assert_eq!(error.line, 0);
    assert!(
        error
            .message
            .starts_with("failed to read the configuration file")
    );
    assert!(error.to_string().starts_with(&path.display().to_string()));
}

#[test]
fn load_reports_invalid_utf8_position() {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(b"[server]\nlisten = \"\xff\"\n")
        .expect("write");
    let errors = load(file.path()).expect_err("invalid UTF-8");
    let error = &errors.errors()[0];
    assert_eq!((error.line, error.column), (2, 11));
    assert!(error.message.contains("not valid UTF-8"));
}

#[test]
fn load_reads_file() {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(b"[server]\nlisten = \"[::1]:9000\"\n")
        .expect("write");
    let config = load(file.path()).expect("valid");
    assert_eq!(config.server.listen.to_string(), "[::1]:9000");
    assert_eq!(config.file, file.path());
}

#[test]
fn files_table_is_read() {
    let text = format!(
        "[server.limits]\nmax_file_bytes = 5000\n{AREA}{}{}",
        webhook(
            "camera",
            "camera-upload",
            "[webhooks.files]\nenabled = true\nmax_bytes = 1000\nmax_age_hours = 48\nmax_total_bytes = 9000\n"
        ),
        binding("camera", ""),
    );
    let config = check(&text).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.server.limits.max_file_bytes, 5000);
    let files = config.webhooks[0].files;
    assert!(files.enabled);
    assert_eq!(files.max_bytes, Some(1000));
    assert_eq!(
        files.max_age,
        Some(std::time::Duration::from_secs(48 * 3600))
    );
    assert_eq!(files.max_total_bytes, Some(9000));
}

#[test]
fn files_default_to_enabled_without_retention() {
    let text = format!(
        "{AREA}{}{}",
        webhook("a", "a-long-path", ""),
        binding("a", "")
    );
    let config = check(&text).unwrap_or_else(|errors| panic!("{errors}"));
    let files = config.webhooks[0].files;
    assert!(files.enabled);
    assert_eq!(files.max_bytes, None);
    assert_eq!(files.max_age, None);
    assert_eq!(files.max_total_bytes, None);
    assert_eq!(config.server.limits.max_file_bytes, 256 * 1024 * 1024);
}

#[test]
fn files_table_errors_name_field_and_rule() {
    let query_webhook = "\n[[webhooks]]\nname = \"q\"\ncustom_path = \"q-long-path\"\n\
         payload_format = \"query-params\"\n[webhooks.files]\nenabled = true\n";
    let text = format!(
        "{AREA}{}{query_webhook}",
        webhook(
            "a",
            "a-long-path",
            "[webhooks.files]\nmax_bytes = 0\nmax_age_hours = -1\nmax_total_bytes = 0\n"
        ),
    );
    let errors = errors_of(&text);
    let found: Vec<(&str, &str)> = errors
        .errors()
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect();
    let fields: Vec<&str> = found.iter().map(|(field, _)| *field).collect();
    assert_eq!(
        fields,
        [
            "webhooks[0].files.max_bytes",
            "webhooks[0].files.max_age_hours",
            "webhooks[0].files.max_total_bytes",
            "webhooks[1].files",
        ]
    );
    assert!(
        found[0].1.contains("max_bytes is 0; it must be 1 to"),
        "{}",
        found[0].1
    );
    assert!(found[3].1.contains("query-params"), "{}", found[3].1);
}

#[test]
fn files_table_unknown_key_is_rejected() {
    let text = format!(
        "{AREA}{}",
        webhook("a", "a-long-path", "[webhooks.files]\nmax_size = 10\n")
    );
    let message = errors_of(&text).to_string();
    assert!(message.contains("max_size"), "{message}");
}

#[test]
fn files_larger_than_retention_total_warn() {
    let text = format!(
        "{AREA}{}{}",
        webhook(
            "a",
            "a-long-path",
            "[webhooks.files]\nmax_bytes = 5000\nmax_total_bytes = 3000\n"
        ),
        binding("a", ""),
    );
    let warnings = warnings_of(&text);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].field, "webhooks[0].files.max_total_bytes");
    assert!(
        warnings[0].message.contains("retention removes"),
        "{}",
        warnings[0].message
    );
}

fn mqtt(brokers: &str) -> String {
    format!(
        "[[areas]]\nname = \"Plant\"\n[[areas.layers]]\nname = \"Sensors\"\nkind = \"mqtt\"\n{brokers}"
    )
}

#[test]
fn brokers_with_one_client_id_collide() {
    let sanitised = mqtt(
        "[[brokers]]\nname = \"plant a\"\nurl = \"mqtt://h\"\n\
         [[brokers]]\nname = \"plant_a\"\nurl = \"mqtt://H\"\n",
    );
    let errors = errors_of(&sanitised);
    assert_eq!(errors.errors()[0].field, "brokers[1].client_id");
    assert!(
        errors.errors()[0]
            .message
            .contains("the same as brokers[0]"),
        "{errors}"
    );

    let explicit = mqtt(
        "[[brokers]]\nname = \"a\"\nurl = \"mqtt://h\"\nclient_id = \"hub\"\n\
         [[brokers]]\nname = \"b\"\nurl = \"mqtt://h:1883\"\nclient_id = \"hub\"\n",
    );
    let errors = errors_of(&explicit);
    assert!(
        errors.errors()[0].message.contains("client id \"hub\""),
        "{errors}"
    );

    let other_broker = mqtt(
        "[[brokers]]\nname = \"a\"\nurl = \"mqtt://h\"\nclient_id = \"hub\"\n\
         [[brokers]]\nname = \"b\"\nurl = \"mqtt://other\"\nclient_id = \"hub\"\n",
    );
    assert!(
        check(&other_broker).is_ok(),
        "the same id on two brokers is fine"
    );

    let copied = mqtt(
        "[[brokers]]\nname = \"local\"\nurl = \"mqtt://h\"\n\
         [[brokers]]\nname = \"b\"\nurl = \"mqtt://h\"\nclient_id = \"hubkit-a6af53c8e175-local\"\n",
    );
    let errors = errors_of(&copied);
    assert_eq!(errors.errors()[0].field, "brokers[1].client_id", "{errors}");

    let broker_chosen = mqtt(
        "[[brokers]]\nname = \"a\"\nurl = \"mqtt://h\"\nclient_id = \"\"\nclean_session = true\n\
         [[brokers]]\nname = \"b\"\nurl = \"mqtt://h\"\nclient_id = \"\"\nclean_session = true\n",
    );
    assert!(
        check(&broker_chosen).is_ok(),
        "ids the broker chooses never clash"
    );
}
