use std::path::Path;

use chrono::{FixedOffset, NaiveTime};
use hubkit_triggers::{
    Combination, NumberOperator, Operator, TextOperator, Trigger, TriggerSource,
};
use serde_json::json;

use crate::{Config, ConfigError, ConfigErrors, parse};

/// Areas, devices, bindings and one action, which the triggers of each test refer to.
/// The door webhook is disabled and has a disabled binding, and the other devices are
/// bound, so the base alone has no warnings.
const BASE: &str = r#"
[[areas]]
name = "Office"

[[areas.layers]]
name = "Sensors"
kind = "mqtt"

[[areas.layers]]
name = "Doors"
kind = "webhook-json"

[[brokers]]
name = "local"
url = "mqtt://127.0.0.1"

[[topics]]
name = "sensor-data"
broker = "local"
filter = "sensors/#"

[[webhooks]]
name = "door"
custom_path = "office-door"
payload_format = "json"
enabled = false

[[bindings]]
topic = "sensor-data"
area = "Office"
layer = "Sensors"

[[bindings]]
webhook = "door"
area = "Office"
layer = "Doors"
enabled = false

[[actions]]
name = "hot-alert"

[[actions.steps]]
component = "log"
message = "hot"
"#;

/// Number of lines of [`BASE`], so that tests can compute the line of a key.
fn base_lines() -> usize {
    BASE.lines().count()
}

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

/// Returns [`BASE`] with one trigger that has `keys` after its name and action.
fn with_trigger(keys: &str) -> String {
    format!("{BASE}\n[[triggers]]\nname = \"t\"\naction = \"hot-alert\"\n{keys}\n")
}

/// Returns [`BASE`] with one layer trigger on Office/Sensors that has `keys`.
fn layer_trigger(keys: &str) -> String {
    with_trigger(&format!("area = \"Office\"\nlayer = \"Sensors\"\n{keys}"))
}

fn only_trigger(config: &Config) -> &Trigger {
    assert_eq!(config.triggers.len(), 1);
    &config.triggers[0]
}

#[test]
fn layer_trigger_with_every_key() {
    let text = layer_trigger(
        r#"enabled = false
device = "sensor-data"
field = "/room/temperature"
operator = ">"
value = 30.5
combine = "or"
utc_offset = "+09:00"
active_hours = "08:00-18:00"
interval_ms = 60000
threshold = true
skip_if_running = true
properties = { severity = "high", count = 3, ratio = 0.5, page = true, tags = ["a", "b"], since = 2026-01-02T03:04:05Z, owner = { team = "ops" } }

[[triggers.extra]]
area = "Office"
layer = "Doors"
field = "open"
operator = "="
value = 1
max_age_ms = 60000

[[triggers.extra]]
area = "Office"
layer = "Sensors"
operator = "range"
value = [10, 20]
max_age_ms = 604800000
"#,
    );
    let config = config_of(&text);
    let trigger = only_trigger(&config);
    assert_eq!(trigger.name, "t");
    assert!(!trigger.enabled);
    assert_eq!(trigger.action, "hot-alert");

    let TriggerSource::Layer(source) = &trigger.source else {
        panic!("not a layer trigger: {:?}", trigger.source);
    };
    assert_eq!(source.key.area, "Office");
    assert_eq!(source.key.layer, "Sensors");
    assert_eq!(source.device.as_deref(), Some("sensor-data"));
    let key = source.conditions.key();
    assert_eq!(key.path.as_str(), "/room/temperature");
    assert!(
        matches!(key.operator, Operator::Number(NumberOperator::Gt, operand) if operand == 30.5),
        "{:?}",
        key.operator
    );
    assert_eq!(source.conditions.combination(), Combination::Or);

    let extras = source.conditions.extras();
    assert_eq!(extras.len(), 2);
    assert_eq!(extras[0].condition.path.as_str(), "open");
    assert!(matches!(
        extras[0].condition.operator,
        Operator::Number(NumberOperator::Eq, operand) if operand == 1.0
    ));
    assert_eq!(extras[0].max_age_ms, 60_000);
    assert!(extras[1].condition.path.is_root());
    assert!(matches!(
        extras[1].condition.operator,
        Operator::Range { min, max } if min == 10.0 && max == 20.0
    ));
    assert_eq!(extras[1].max_age_ms, 604_800_000);
    let layers: Vec<(&str, &str)> = source
        .extra_layers
        .iter()
        .map(|layer| (layer.area.as_str(), layer.layer.as_str()))
        .collect();
    assert_eq!(layers, [("Office", "Doors"), ("Office", "Sensors")]);

    let gate = &trigger.gate;
    assert_eq!(gate.interval_ms, 60_000);
    assert!(gate.threshold);
    assert!(gate.skip_if_running);
    let hours = gate.active_hours.expect("active hours are set");
    assert_eq!(
        hours.start(),
        NaiveTime::from_hms_opt(8, 0, 0).expect("valid time")
    );
    assert_eq!(
        hours.end(),
        NaiveTime::from_hms_opt(18, 0, 0).expect("valid time")
    );
    assert_eq!(hours.offset().local_minus_utc(), 9 * 3600);

    let properties = serde_json::Value::Object(trigger.properties.clone());
    let expected = json!({
        "count": 3,
        "owner": {"team": "ops"},
        "page": true,
        "ratio": 0.5,
        "severity": "high",
        "since": "2026-01-02T03:04:05Z",
        "tags": ["a", "b"],
    });
    assert_eq!(properties, expected);
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
}

#[test]
fn layer_trigger_defaults() {
    let config = config_of(&layer_trigger(""));
    let trigger = only_trigger(&config);
    assert!(trigger.enabled);
    let TriggerSource::Layer(source) = &trigger.source else {
        panic!("not a layer trigger");
    };
    assert_eq!(source.device, None);
    assert!(source.conditions.key().path.is_root());
    assert!(matches!(source.conditions.key().operator, Operator::Any));
    assert_eq!(source.conditions.combination(), Combination::And);
    assert!(source.conditions.extras().is_empty());
    assert!(source.extra_layers.is_empty());
    assert_eq!(trigger.gate, hubkit_triggers::GateConfig::default());
    assert!(trigger.properties.is_empty());
}

#[test]
fn timer_trigger_with_offset() {
    let config = config_of(&with_trigger(
        "cron = \"0 */5 * * * *\"\nutc_offset = \"-05:30\"\nactive_hours = \"22:00-06:00\"\n\
         skip_if_running = true",
    ));
    let trigger = only_trigger(&config);
    let TriggerSource::Timer(schedule) = &trigger.source else {
        panic!("not a timer trigger");
    };
    assert_eq!(schedule.as_str(), "0 */5 * * * *");
    let offset = FixedOffset::west_opt(5 * 3600 + 30 * 60).expect("valid offset");
    assert_eq!(schedule.offset(), offset);
    let hours = trigger.gate.active_hours.expect("active hours are set");
    assert_eq!(hours.offset(), offset);
    assert!(trigger.gate.skip_if_running);
    assert_eq!(trigger.gate.interval_ms, 0);
    assert!(!trigger.gate.threshold);
}

#[test]
fn utc_offset_forms() {
    let cases = [
        ("Z", Some(0)),
        ("z", Some(0)),
        ("+00:00", Some(0)),
        ("+09:00", Some(9 * 3600)),
        ("-05:30", Some(-(5 * 3600 + 30 * 60))),
        ("+23:59", Some(23 * 3600 + 59 * 60)),
        ("+9", None),
        ("09:00", None),
        ("+0900", None),
        ("+24:00", None),
        ("+09:60", None),
        ("+9:00", None),
        ("", None),
        ("UTC", None),
    ];
    for (text, expected) in cases {
        let result = check(&with_trigger(&format!(
            "cron = \"0 0 * * * *\"\nutc_offset = \"{text}\""
        )));
        match (result, expected) {
            (Ok(config), Some(seconds)) => {
                let TriggerSource::Timer(schedule) = &only_trigger(&config).source else {
                    panic!("not a timer trigger");
                };
                assert_eq!(schedule.offset().local_minus_utc(), seconds, "{text:?}");
            }
            (Err(errors), None) => {
                let error = &errors.errors()[0];
                assert_eq!(error.field, "triggers[0].utc_offset", "{text:?}");
                assert!(error.message.contains("+HH:MM"), "{}", error.message);
            }
            (result, _) => panic!("{text:?}: unexpected {result:?}"),
        }
    }
}

#[test]
fn source_keys_are_exclusive() {
    let cases = [
        (
            "cron = \"0 0 * * * *\"\narea = \"Office\"\nlayer = \"Sensors\"",
            "triggers[0].cron",
            "sets both `cron` and `area`/`layer`",
        ),
        (
            "cron = \"0 0 * * * *\"\nlayer = \"Sensors\"",
            "triggers[0].cron",
            "sets both `cron` and `area`/`layer`",
        ),
        (
            "area = \"Office\"",
            "triggers[0].area",
            "`area` is set without `layer`",
        ),
        (
            "layer = \"Sensors\"",
            "triggers[0].layer",
            "`layer` is set without `area`",
        ),
        ("", "triggers[0]", "trigger has no source"),
    ];
    for (keys, field, fragment) in cases {
        let error = single_error(&with_trigger(keys));
        assert_eq!(error.field, field, "{keys}");
        assert!(error.message.contains(fragment), "{}", error.message);
    }
}

#[test]
fn timer_rejects_layer_keys() {
    let keys = [
        ("field", "field = \"a\""),
        ("operator", "operator = \"any\""),
        ("value", "value = 1"),
        ("device", "device = \"sensor-data\""),
        ("combine", "combine = \"and\""),
        ("interval_ms", "interval_ms = 0"),
        ("threshold", "threshold = false"),
        (
            "extra",
            "[[triggers.extra]]\narea = \"Office\"\nlayer = \"Doors\"\nmax_age_ms = 1",
        ),
    ];
    for (key, line) in keys {
        let error = single_error(&with_trigger(&format!("cron = \"0 0 * * * *\"\n{line}")));
        assert_eq!(error.field, format!("triggers[0].{key}"));
        assert!(
            error
                .message
                .starts_with(&format!("key `{key}` applies to layer triggers only")),
            "{}",
            error.message
        );
    }
}

#[test]
fn bad_cron_is_rejected() {
    let error = single_error(&with_trigger("cron = \"0 */5 * * *\""));
    assert_eq!(error.field, "triggers[0].cron");
    assert!(
        error.message.contains("must have 6 fields, not 5"),
        "{}",
        error.message
    );

    let error = single_error(&with_trigger("cron = \"0 0 25 * * *\""));
    assert_eq!(error.field, "triggers[0].cron");
    assert!(
        error
            .message
            .starts_with("invalid cron expression \"0 0 25 * * *\": "),
        "{}",
        error.message
    );
    assert_eq!(
        error.message.matches("out of bounds").count(),
        1,
        "the parser's reason appears once: {}",
        error.message
    );
    assert!(!error.message.contains('\n'));
}

#[test]
fn bad_active_hours_and_interval() {
    let error = single_error(&layer_trigger("active_hours = \"8-18\""));
    assert_eq!(error.field, "triggers[0].active_hours");
    assert!(error.message.contains("HH:MM-HH:MM"), "{}", error.message);

    let max_interval = config_of(&layer_trigger("interval_ms = 604800000"));
    assert_eq!(only_trigger(&max_interval).gate.interval_ms, 604_800_000);
    let error = single_error(&layer_trigger("interval_ms = 604800001"));
    assert_eq!(
        error.message,
        "interval_ms is 604800001; it must be 0 to 604800000"
    );
}

#[test]
fn action_must_exist() {
    let text =
        format!("{BASE}\n[[triggers]]\nname = \"t\"\naction = \"cold\"\ncron = \"0 0 * * * *\"\n");
    let error = single_error(&text);
    assert_eq!(error.field, "triggers[0].action");
    assert_eq!(error.line, base_lines() + 4);
    assert_eq!(
        error.message,
        "trigger runs action \"cold\", which is not defined in [[actions]]"
    );
}

#[test]
fn unread_action_does_not_fail_trigger() {
    let text = "[[actions]]\nname = \"cold\"\nsteps = 5\n\n\
                [[triggers]]\nname = \"t\"\naction = \"cold\"\ncron = \"0 0 * * * *\"\n";
    let error = single_error(text);
    assert_eq!(error.field, "actions[0].steps");
}

#[test]
fn unused_action_is_valid() {
    let config = config_of(BASE);
    assert_eq!(config.actions.len(), 1);
    assert!(config.triggers.is_empty());
}

#[test]
fn layers_must_exist() {
    let cases = [
        (
            "area = \"Lab\"\nlayer = \"Sensors\"",
            "triggers[0].area",
            "area \"Lab\" is not defined in [[areas]]",
        ),
        (
            "area = \"Office\"\nlayer = \"Cameras\"",
            "triggers[0].layer",
            "area \"Office\" has no layer \"Cameras\"",
        ),
    ];
    for (keys, field, expected) in cases {
        let error = single_error(&with_trigger(keys));
        assert_eq!(error.field, field, "{keys}");
        assert_eq!(error.message, expected, "{keys}");
    }

    let error = single_error(&layer_trigger(
        "[[triggers.extra]]\narea = \"Office\"\nlayer = \"Windows\"\nmax_age_ms = 1",
    ));
    assert_eq!(error.field, "triggers[0].extra[0].layer");
}

#[test]
fn invalid_area_does_not_fail_trigger() {
    let text = BASE.replacen(
        "name = \"Office\"\n",
        "name = \"Office\"\nid = \"not-a-uuid\"\n",
        1,
    );
    let text = format!(
        "{text}\n[[triggers]]\nname = \"t\"\naction = \"hot-alert\"\narea = \"Lab\"\nlayer = \"X\"\n"
    );
    let error = single_error(&text);
    assert_eq!(error.field, "areas[0].id");
}

#[test]
fn device_must_be_bound_to_layer() {
    let error = single_error(&layer_trigger("device = \"door\""));
    assert_eq!(error.field, "triggers[0].device");
    assert!(
        error
            .message
            .starts_with("device \"door\" is not bound to layer \"Sensors\" of area \"Office\""),
        "{}",
        error.message
    );

    // The door webhook's binding is disabled, but it is still bound.
    let config = config_of(&with_trigger(
        "area = \"Office\"\nlayer = \"Doors\"\ndevice = \"door\"",
    ));
    assert_eq!(config.triggers.len(), 1);
}

#[test]
fn invalid_binding_does_not_fail_device() {
    let text = format!(
        "{BASE}\n[[bindings]]\ntopic = \"sensor-data\"\narea = \"Office\"\nlayer = \"Nowhere\"\n\
         [[triggers]]\nname = \"t\"\naction = \"hot-alert\"\narea = \"Office\"\n\
         layer = \"Doors\"\ndevice = \"sensor-data\"\n"
    );
    let error = single_error(&text);
    assert_eq!(error.field, "bindings[2].layer");
}

#[test]
fn condition_errors_point_at_their_key() {
    let cases = [
        (
            "field = \"a..b\"",
            "triggers[0].field",
            "invalid field path",
        ),
        (
            "operator = \"between\"",
            "triggers[0].operator",
            "unknown operator \"between\"",
        ),
        (
            "operator = \">\"\nvalue = \"warm\"",
            "triggers[0].value",
            "its operand \"warm\" is not a finite number",
        ),
        (
            "operator = \"range\"\nvalue = [40, 30]",
            "triggers[0].value",
            "range minimum 40 is greater than its maximum 30",
        ),
        (
            "operator = \"range\"\nvalue = 40",
            "triggers[0].value",
            "takes 2 operands, the minimum and the maximum, but got 1",
        ),
        (
            "operator = \">\"",
            "triggers[0].operator",
            "but got 0; set `value`",
        ),
        (
            "value = 5",
            "triggers[0].value",
            "set `operator`, which is any when left out",
        ),
        (
            "operator = \"regex\"\nvalue = \"(\"",
            "triggers[0].value",
            "invalid regular expression \"(\": unclosed group",
        ),
    ];
    for (keys, field, fragment) in cases {
        let error = single_error(&layer_trigger(keys));
        assert_eq!(error.field, field, "{keys}");
        assert!(
            error.message.contains(fragment),
            "{keys}: {}",
            error.message
        );
    }
}

#[test]
fn operand_types() {
    let valid = [
        ("operator = \"=\"\nvalue = 7", "7"),
        ("operator = \"<=\"\nvalue = -2.5", "-2.5"),
        ("operator = \"equals\"\nvalue = \"open\"", "open"),
        ("operator = \"equals\"\nvalue = true", "true"),
    ];
    for (keys, operand) in valid {
        let config = config_of(&layer_trigger(keys));
        let TriggerSource::Layer(source) = &only_trigger(&config).source else {
            panic!("not a layer trigger");
        };
        let operand_text = match &source.conditions.key().operator {
            Operator::Number(_, number) => number.to_string(),
            Operator::Text(TextOperator::Eq, text) => text.clone(),
            other => panic!("{keys}: unexpected {other:?}"),
        };
        assert_eq!(operand_text, operand, "{keys}");
    }

    let invalid = [
        ("value = [1, 2, 3]", "value is an array of 3 values"),
        (
            "value = [1, [2]]",
            "value is an array with a value that is not a scalar",
        ),
        ("value = { a = 1 }", "value is a table"),
        ("value = 2026-01-01", "value is a datetime"),
    ];
    for (keys, fragment) in invalid {
        let error = single_error(&layer_trigger(&format!("operator = \"range\"\n{keys}")));
        assert_eq!(error.field, "triggers[0].value", "{keys}");
        assert!(error.message.starts_with(fragment), "{}", error.message);
    }
}

#[test]
fn extra_count_is_limited() {
    let extra = "[[triggers.extra]]\narea = \"Office\"\nlayer = \"Doors\"\nmax_age_ms = 1000\n";
    let config = config_of(&layer_trigger(&extra.repeat(4)));
    let TriggerSource::Layer(source) = &only_trigger(&config).source else {
        panic!("not a layer trigger");
    };
    assert_eq!(source.conditions.extras().len(), 4);

    let error = single_error(&layer_trigger(&extra.repeat(5)));
    assert_eq!(error.field, "triggers[0].extra[4]");
    assert_eq!(
        error.message,
        "trigger has 5 extra-layer conditions; a trigger takes at most 4"
    );
}

#[test]
fn extra_needs_max_age() {
    let error = single_error(&layer_trigger(
        "[[triggers.extra]]\narea = \"Office\"\nlayer = \"Doors\"\nmax_age_ms = 0",
    ));
    assert_eq!(error.field, "triggers[0].extra[0].max_age_ms");
    assert_eq!(error.message, "max_age_ms is 0; it must be 1 to 604800000");

    let error = single_error(&layer_trigger(
        "[[triggers.extra]]\narea = \"Office\"\nlayer = \"Doors\"",
    ));
    assert!(
        error.message.contains("missing field `max_age_ms`"),
        "{}",
        error.message
    );
}

#[test]
fn properties_must_be_json() {
    let error = single_error(&layer_trigger("properties = \"high\""));
    assert_eq!(error.field, "triggers[0].properties");
    assert!(
        error
            .message
            .starts_with("properties is a string; it must be a table")
    );
    let error = single_error(&layer_trigger("properties = 5"));
    assert!(
        error
            .message
            .starts_with("properties is an integer; it must be a table"),
        "{}",
        error.message
    );

    let error = single_error(&layer_trigger("properties = { limits = [1.0, inf] }"));
    assert_eq!(error.field, "triggers[0].properties.limits[1]");
    assert!(error.message.contains("JSON has no NaN or infinity"));
}

#[test]
fn trigger_names_are_checked() {
    let trigger = "[[triggers]]\nname = \"t\"\naction = \"hot-alert\"\ncron = \"0 0 * * * *\"\n";
    let errors = errors_of(&format!("{BASE}\n{trigger}{trigger}"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, "triggers[1].name");
    assert!(errors[0].message.contains("is already used by triggers[0]"));
}

#[test]
fn trigger_count_is_limited() {
    let triggers = |count: usize| {
        let items: Vec<String> = (0..count)
            .map(|index| {
                format!("{{ name = \"t{index}\", action = \"hot-alert\", cron = \"0 0 * * * *\" }}")
            })
            .collect();
        format!("triggers = [{}]\n{BASE}", items.join(", "))
    };
    assert_eq!(config_of(&triggers(1000)).triggers.len(), 1000);
    let error = single_error(&triggers(1001));
    assert_eq!(error.field, "triggers[1000]");
    assert!(
        error.message.contains("more than 1000 triggers"),
        "{}",
        error.message
    );
}

#[test]
fn triggers_keep_file_order() {
    let text = format!(
        "{BASE}\n[[triggers]]\nname = \"b\"\naction = \"hot-alert\"\ncron = \"0 0 * * * *\"\n\
         [[triggers]]\nname = \"a\"\naction = \"hot-alert\"\narea = \"Office\"\nlayer = \"Doors\"\n"
    );
    let config = config_of(&text);
    let names: Vec<&str> = config.triggers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}
