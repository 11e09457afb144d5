use serde_json::{Value, json};

use super::*;

/// Parses `text` as JSON, so numbers keep their digits as received.
fn context(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn render(source: &str, context: &Value) -> Result<String, Error> {
    Template::parse(source).unwrap().render(context)
}

#[test]
fn plain_substitution() {
    let output = render("{{ trigger }} fired", &json!({"trigger": "hot-room"})).unwrap();
    assert_eq!(output, "hot-room fired");
}

#[test]
fn nested_fields() {
    let data = json!({
        "data": {"temperature": 31, "sensor": {"room": "lab"}},
        "properties": {"room": "kitchen"},
    });
    let output = render(
        "{{ data.sensor.room }}/{{ properties.room }}/{{ data['temperature'] }}",
        &data,
    )
    .unwrap();
    assert_eq!(output, "lab/kitchen/31");
}

#[test]
fn tojson_of_object_keeps_key_order() {
    let data = context(r#"{"payload": {"z": 1, "a": [true, null], "m": "x\"y"}}"#);
    let output = render("{{ payload | tojson }}", &data).unwrap();
    assert_eq!(output, r#"{"z": 1, "a": [true, null], "m": "x\"y"}"#);
}

#[test]
fn output_is_not_html_escaped() {
    let output = render("{{ text }}", &json!({"text": "<a href=\"x\">&</a>"})).unwrap();
    assert_eq!(output, "<a href=\"x\">&</a>");
}

#[test]
fn urlencode_filter_available() {
    let output = render("/q?room={{ room | urlencode }}", &json!({"room": "a b&c"})).unwrap();
    assert_eq!(output, "/q?room=a%20b%26c");
}

#[test]
fn missing_variable_is_named() {
    let err = render("{{ trigger }} {{ missing }}", &json!({"trigger": "t"})).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::RenderTemplate { line: 1, .. }),
        "{err:?}"
    );
    assert!(message.contains("missing"), "{message}");
}

#[test]
fn missing_attribute_is_named() {
    let err = render("{{ data.humidity }}", &json!({"data": {"temperature": 1}})).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::RenderTemplate { .. }), "{err:?}");
    assert!(message.contains("humidity"), "{message}");
}

#[test]
fn syntax_error_names_line() {
    let err = Template::parse("line one\nline two\n{{ data.temperature \n").unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::InvalidTemplate { line: 3, .. }),
        "{err:?}"
    );
    assert!(
        message.starts_with("invalid template at line 3: syntax error"),
        "{message}"
    );
}

#[test]
fn runaway_loop_runs_out_of_fuel() {
    let source = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
    let err = render(source, &json!({})).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::RenderTemplate { .. }), "{err:?}");
    assert!(message.contains("fuel"), "{message}");
}

#[test]
fn fuel_is_per_rendering() {
    let template = Template::parse("{% for i in range(1000) %}{{ i }}{% endfor %}").unwrap();
    for _ in 0..5 {
        assert!(template.render(&json!({})).is_ok());
    }
}

#[test]
fn output_over_limit_is_rejected() {
    let source = "{% for i in range(3000) %}{{ block }}{% endfor %}";
    let block = "x".repeat(1000);
    let err = render(source, &json!({ "block": block })).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TemplateOutputTooLarge {
                max: MAX_TEMPLATE_OUTPUT
            }
        ),
        "{err:?}"
    );
}

#[test]
fn output_at_limit_is_accepted() {
    let block = "x".repeat(MAX_TEMPLATE_OUTPUT);
    let output = render("{{ block }}", &json!({ "block": block })).unwrap();
    assert_eq!(output.len(), MAX_TEMPLATE_OUTPUT);
}

#[test]
fn string_repetition_over_limit_is_rejected() {
    let result = render("{{ 'x' * 100000000 }}", &json!({}));
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn numbers_render_as_digits() {
    let data = context(
        r#"{"decimal": 25.5, "negative": -3, "integer": 60, "big": 18446744073709551616,
            "id": 123456789012345678901234567890, "huge": 1e400,
            "precise": 0.12345678901234567890, "exponent": 1.5e3}"#,
    );
    let cases = [
        ("{{ decimal }}", "25.5"),
        ("{{ negative }}", "-3"),
        ("{{ integer }}", "60"),
        ("{{ big }}", "18446744073709551616"),
        ("{{ id }}", "123456789012345678901234567890"),
        // serde_json stores the exponent of 1e400 with a sign.
        ("{{ huge }}", "1e+400"),
        ("{{ precise }}", "0.12345678901234567890"),
        ("{{ exponent }}", "1500.0"),
        ("{{ decimal | tojson }}", "25.5"),
        ("{{ id | tojson }}", "123456789012345678901234567890"),
        ("{{ decimal + 1 }}", "26.5"),
        ("{{ integer > 50 }}", "True"),
    ];
    for (source, expected) in cases {
        assert_eq!(render(source, &data).unwrap(), expected, "{source}");
    }
}

#[test]
fn unicode_passes_through() {
    let data = json!({"data": {"部屋": "会議室 🌡", "note": "naïve"}});
    let output = render(
        "{{ data['部屋'] }} {{ data.note | upper }} {{ data | tojson }}",
        &data,
    );
    assert_eq!(
        output.unwrap(),
        r#"会議室 🌡 NAÏVE {"部屋": "会議室 🌡", "note": "naïve"}"#
    );
}

#[test]
fn include_is_not_supported() {
    let err = Template::parse("{% include 'secrets.txt' %}").unwrap_err();
    assert!(
        matches!(err, Error::InvalidTemplate { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn template_is_send_sync_static() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Template>();
}

#[test]
fn source_is_kept() {
    let template = Template::parse("{{ trigger }}").unwrap();
    assert_eq!(template.source(), "{{ trigger }}");
}
