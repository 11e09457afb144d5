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
            "precise": 0.12345678901234567890, "exponent": 1.5e3,
            "seventeen": 134.36424411240122, "sum": 0.30000000000000004,
            "largest": 1.7976931348623157e308, "tiny": 5e-324}"#,
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
        // Decimals of 16 and 17 digits, as a double prints, are numbers.
        ("{{ seventeen }}", "134.36424411240122"),
        ("{{ seventeen | tojson }}", "134.36424411240122"),
        ("{{ seventeen | float > 134 }}", "True"),
        ("{{ sum * 2 }}", "0.6000000000000001"),
        ("{{ sum | float > 0.3 }}", "True"),
        ("{{ largest | tojson }}", "1.7976931348623157e+308"),
        ("{{ tiny | tojson }}", "5e-324"),
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

/// Converts the whole of a JSON value into plain template maps, lists and scalars. The
/// views of a context must render the same as this reference.
fn converted(value: &Value) -> TemplateValue {
    match value {
        Value::Null => TemplateValue::from(()),
        Value::Bool(flag) => TemplateValue::from(*flag),
        Value::Number(number) => number_value(number),
        Value::String(text) => TemplateValue::from(text.as_str()),
        Value::Array(items) => items.iter().map(converted).collect(),
        Value::Object(map) => TemplateValue::from_pairs(
            map.iter()
                .map(|(key, value)| (key.as_str(), converted(value))),
        ),
    }
}

#[test]
fn views_render_as_converted_values() {
    let document = context(
        r#"{"name": "lab", "n": 3, "big": 123456789012345678901234567890, "empty": {},
            "none": [], "list": [1, "two", {"three": 3.5}, [4, null, true]],
            "map": {"b": 2, "a": 1, "nested": {"z": [0]}}}"#,
    );
    let sources = [
        "{{ map }}",
        "{{ list }}",
        "{{ map | tojson }}",
        "{{ list | tojson }}",
        "{{ empty }}{{ none }}{{ empty | tojson }}",
        "{{ list[-1] }} {{ list[1:3] }} {{ list | length }} {{ map | length }}",
        "{% for key in map %}{{ key }};{% endfor %}",
        "{% for key, value in map | items %}{{ key }}={{ value }};{% endfor %}",
        "{% for key, value in map | dictsort %}{{ key }}={{ value }};{% endfor %}",
        "{{ map is mapping }} {{ list is sequence }} {{ map.nested.z[0] }}",
        "{% if empty %}x{% else %}y{% endif %}{% if none %}x{% else %}y{% endif %}",
        "{{ list | first }} {{ list | last }} {{ list | reverse | list }}",
        "{{ big }} {{ n + 1 }} {{ name | upper }} {{ map.a + map.b }}",
        "{{ 'b' in map }} {{ 4 in list[3] }} {{ map.nested == {'z': [0]} }}",
    ];
    let eager = converted(&document);
    for source in sources {
        let template = Template::parse(source).unwrap();
        let lazy = template.render(&document).unwrap();
        assert_eq!(
            lazy,
            template.render_value(eager.clone()).unwrap(),
            "{source}"
        );
    }
}

#[test]
fn step_context_variables() {
    let input = Arc::new(json!({"Data": {"t": 35}, "payload": "shadowed", "TriggerName": "hot"}));
    let payload = Arc::new(json!({"status": 200}));
    let step = StepContext::new(input.clone(), payload);
    let render = |source: &str| Template::parse(source).unwrap().render_step(&step).unwrap();
    assert_eq!(render("{{ TriggerName }} {{ Data.t }}"), "hot 35");
    assert_eq!(
        render("{{ payload.status }} {{ input.payload }}"),
        "200 shadowed"
    );
    assert_eq!(
        render("{{ input | tojson }}"),
        r#"{"Data": {"t": 35}, "payload": "shadowed", "TriggerName": "hot"}"#
    );
    let err = Template::parse("{{ Missing }}")
        .unwrap()
        .render_step(&step)
        .unwrap_err();
    assert!(err.to_string().contains("Missing"), "{err}");
}
