//! The `[[triggers]]` section, checked into [`Trigger`]s.

use std::collections::{HashMap, HashSet};
use std::ops::{Range, RangeInclusive};

use chrono::FixedOffset;
use hubkit_model::{Area, Binding, DeviceRef};
use hubkit_triggers::{
    ActiveHours, Combination, Condition, ConditionSet, CronSchedule, Error as TriggerError,
    ExtraCondition, FieldPath, GateConfig, LayerName, LayerSource, MAX_EXTRA_CONDITIONS, Operator,
    Trigger, TriggerSource,
};
use serde_json::{Map, Value};
use toml::Spanned;

use crate::document::{Item, field_name};
use crate::error::Report;
use crate::mqtt::check_name;
use crate::raw::{RawCombination, RawExtra, RawTrigger};
use crate::server::check_range;

/// Maximum number of `[[triggers]]` tables in a file.
pub const MAX_TRIGGERS: usize = 1000;

/// One week in milliseconds.
const WEEK_MS: u64 = 7 * 86_400_000;
/// Allowed `interval_ms` values. 0 turns the cool-down off.
const INTERVAL_MS_RANGE: RangeInclusive<u64> = 0..=WEEK_MS;
/// Allowed `max_age_ms` values of an extra-layer condition.
const MAX_AGE_MS_RANGE: RangeInclusive<u64> = 1..=WEEK_MS;

/// The sections that triggers refer to. Each is `None` when some element of it could not
/// be read or is invalid, so that references to it are not checked and a mistake there
/// does not also show up in each trigger that refers to it.
pub(crate) struct TriggerRefs<'a> {
    /// The areas and their layers.
    pub areas: Option<&'a [Area]>,
    /// Every binding, enabled or not.
    pub bindings: Option<&'a [Binding]>,
    /// The names of the actions.
    pub actions: Option<&'a HashSet<String>>,
}

/// Validates the triggers, recording every problem in `report`.
pub(crate) fn build_triggers(
    raw: Vec<Item<RawTrigger>>,
    refs: &TriggerRefs<'_>,
    report: &mut Report<'_>,
) -> Vec<Trigger> {
    if let Some(excess) = raw.iter().find(|item| item.index >= MAX_TRIGGERS) {
        let message = format!(
            "the file has more than {MAX_TRIGGERS} triggers; hubkit loads at most \
             {MAX_TRIGGERS}, so merge or remove some"
        );
        report.error(
            excess.span.clone(),
            &format!("triggers[{}]", excess.index),
            message,
        );
    }

    let mut names = HashMap::new();
    let mut triggers = Vec::new();
    for item in raw {
        let prefix = format!("triggers[{}]", item.index);
        let errors_before = report.error_count();
        let trigger = build_trigger(item, &prefix, refs, &mut names, report);
        if let Some(trigger) = trigger
            && report.error_count() == errors_before
        {
            triggers.push(trigger);
        }
    }
    triggers
}

fn build_trigger(
    item: Item<RawTrigger>,
    prefix: &str,
    refs: &TriggerRefs<'_>,
    names: &mut HashMap<String, String>,
    report: &mut Report<'_>,
) -> Option<Trigger> {
    let raw = item.value;
    let field = |key: &str| format!("{prefix}.{key}");
    check_name(&raw.name, "trigger", prefix, names, report);
    if refs
        .actions
        .is_some_and(|actions| !actions.contains(raw.action.get_ref()))
    {
        let message = format!(
            "trigger runs action {:?}, which is not defined in [[actions]]",
            raw.action.get_ref()
        );
        report.error(raw.action.span(), &field("action"), message);
    }

    let offset = match &raw.utc_offset {
        None => Some(utc()),
        Some(text) => {
            let offset = parse_utc_offset(text.get_ref());
            if offset.is_none() {
                let message = format!(
                    "utc_offset {:?} is invalid; write +HH:MM or -HH:MM, such as +09:00 or \
                     -05:00, or Z for UTC",
                    text.get_ref()
                );
                report.error(text.span(), &field("utc_offset"), message);
            }
            offset
        }
    };
    // With an invalid offset, active_hours and cron are still checked, against UTC.
    let clock = offset.unwrap_or_else(utc);
    let active_hours = match &raw.active_hours {
        None => Some(None),
        Some(window) => match ActiveHours::parse(window.get_ref(), clock) {
            Ok(hours) => Some(Some(hours)),
            Err(err) => {
                report.error(window.span(), &field("active_hours"), err.to_string());
                None
            }
        },
    };
    let interval_ms = match &raw.interval_ms {
        None => Some(0),
        Some(_) => check_range(
            &raw.interval_ms,
            &INTERVAL_MS_RANGE,
            &field("interval_ms"),
            report,
        ),
    };
    let properties = match &raw.properties {
        None => Some(Map::new()),
        Some(value) => build_properties(value, &field("properties"), report),
    };
    let source = build_source(&raw, item.span, prefix, clock, refs, report);

    Some(Trigger {
        name: raw.name.into_inner(),
        enabled: raw.enabled.unwrap_or(true),
        source: source?,
        gate: GateConfig {
            interval_ms: interval_ms?,
            threshold: raw
                .threshold
                .as_ref()
                .is_some_and(|threshold| *threshold.get_ref()),
            active_hours: active_hours?,
            skip_if_running: raw.skip_if_running.unwrap_or(false),
        },
        action: raw.action.into_inner(),
        properties: properties?,
    })
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("an offset of 0 is in range")
}

/// Parses `+HH:MM`, `-HH:MM` or `Z`, the offset forms of RFC 3339, with hours 00 to 23
/// and minutes 00 to 59.
fn parse_utc_offset(text: &str) -> Option<FixedOffset> {
    if text.eq_ignore_ascii_case("z") {
        return Some(utc());
    }
    let (sign, rest) = match text.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':')?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Builds the layer or timer source, or records why the trigger has none.
fn build_source(
    raw: &RawTrigger,
    span: Range<usize>,
    prefix: &str,
    clock: FixedOffset,
    refs: &TriggerRefs<'_>,
    report: &mut Report<'_>,
) -> Option<TriggerSource> {
    let field = |key: &str| format!("{prefix}.{key}");
    match (&raw.cron, &raw.area, &raw.layer) {
        (Some(cron), None, None) => {
            check_timer_keys(raw, prefix, report);
            match CronSchedule::parse(cron.get_ref(), clock) {
                Ok(schedule) => Some(TriggerSource::Timer(schedule)),
                Err(err) => {
                    report.error(cron.span(), &field("cron"), describe(&err));
                    None
                }
            }
        }
        (Some(cron), _, _) => {
            let message = "trigger sets both `cron` and `area`/`layer`; remove `cron` to run \
                           on the layer's records, or `area` and `layer` to run on the schedule"
                .to_owned();
            report.error(cron.span(), &field("cron"), message);
            None
        }
        (None, Some(area), Some(layer)) => {
            let source = LayerKeys {
                area,
                layer,
                span,
                prefix,
            };
            build_layer_source(raw, &source, refs, report).map(TriggerSource::Layer)
        }
        (None, Some(area), None) => {
            let message = "`area` is set without `layer`; a layer trigger needs both".to_owned();
            report.error(area.span(), &field("area"), message);
            None
        }
        (None, None, Some(layer)) => {
            let message = "`layer` is set without `area`; a layer trigger needs both".to_owned();
            report.error(layer.span(), &field("layer"), message);
            None
        }
        (None, None, None) => {
            let message = "trigger has no source; set `area` and `layer` to run on a layer's \
                           records, or `cron` to run on a schedule"
                .to_owned();
            report.error(span, prefix, message);
            None
        }
    }
}

/// Returns the message of `err` followed by the reason that its source gives, such as the
/// cron field that is invalid.
///
/// A regex syntax error spans several lines that draw the pattern and a caret under the
/// problem. Only its last line, which names the problem, is kept, so that each
/// configuration error stays on one line.
fn describe(err: &TriggerError) -> String {
    let Some(source) = std::error::Error::source(err) else {
        return err.to_string();
    };
    let source = source.to_string();
    let reason = source.lines().map(str::trim).rfind(|line| !line.is_empty());
    let reason = reason.unwrap_or_default();
    let reason = reason.strip_prefix("error: ").unwrap_or(reason);
    format!("{err}: {reason}")
}

/// Records an error for each key of a timer trigger that applies to layer triggers only.
fn check_timer_keys(raw: &RawTrigger, prefix: &str, report: &mut Report<'_>) {
    let keys = [
        ("field", raw.field.as_ref().map(Spanned::span)),
        ("operator", raw.operator.as_ref().map(Spanned::span)),
        ("value", raw.value.as_ref().map(Spanned::span)),
        ("device", raw.device.as_ref().map(Spanned::span)),
        ("extra", raw.extra.first().map(Spanned::span)),
        ("combine", raw.combine.as_ref().map(Spanned::span)),
        ("interval_ms", raw.interval_ms.as_ref().map(Spanned::span)),
        ("threshold", raw.threshold.as_ref().map(Spanned::span)),
    ];
    for (key, span) in keys {
        let Some(span) = span else {
            continue;
        };
        let message = format!(
            "key `{key}` applies to layer triggers only, and this trigger runs on `cron`; \
             remove it"
        );
        report.error(span, &format!("{prefix}.{key}"), message);
    }
}

/// The `area` and `layer` keys of a layer trigger, with the span and the dotted path of
/// its table.
struct LayerKeys<'a> {
    area: &'a Spanned<String>,
    layer: &'a Spanned<String>,
    span: Range<usize>,
    prefix: &'a str,
}

fn build_layer_source(
    raw: &RawTrigger,
    source: &LayerKeys<'_>,
    refs: &TriggerRefs<'_>,
    report: &mut Report<'_>,
) -> Option<LayerSource> {
    let LayerKeys {
        area,
        layer,
        prefix,
        ..
    } = *source;
    let key = LayerName {
        area: area.get_ref().clone(),
        layer: layer.get_ref().clone(),
    };
    let layer_ok = check_layer(area, layer, prefix, refs.areas, report);
    if let (Some(device), Some(bindings), true) = (&raw.device, refs.bindings, layer_ok) {
        check_device(device, &key, bindings, &format!("{prefix}.device"), report);
    }
    let condition = build_condition(
        &ConditionKeys {
            field: raw.field.as_ref(),
            operator: raw.operator.as_ref(),
            value: raw.value.as_ref(),
        },
        prefix,
        report,
    );
    let combination = match raw.combine.as_ref().map(|combine| *combine.get_ref()) {
        None | Some(RawCombination::And) => Combination::And,
        Some(RawCombination::Or) => Combination::Or,
    };

    if let Some(excess) = raw.extra.get(MAX_EXTRA_CONDITIONS) {
        let message = format!(
            "trigger has {} extra-layer conditions; a trigger takes at most \
             {MAX_EXTRA_CONDITIONS}",
            raw.extra.len()
        );
        report.error(
            excess.span(),
            &format!("{prefix}.extra[{MAX_EXTRA_CONDITIONS}]"),
            message,
        );
        return None;
    }
    let mut extras = Vec::new();
    let mut extra_layers = Vec::new();
    let mut extras_ok = true;
    for (index, extra) in raw.extra.iter().enumerate() {
        let extra_prefix = format!("{prefix}.extra[{index}]");
        match build_extra(extra.get_ref(), &extra_prefix, refs, report) {
            Some((layer, condition)) => {
                extra_layers.push(layer);
                extras.push(condition);
            }
            None => extras_ok = false,
        }
    }

    let condition = condition?;
    if !extras_ok {
        return None;
    }
    let conditions = match ConditionSet::new(condition, combination, extras) {
        Ok(conditions) => conditions,
        // The checks above cover every rule of ConditionSet::new, so this reports only
        // a rule that hubkit-triggers adds later.
        Err(err) => {
            report.error(source.span.clone(), prefix, err.to_string());
            return None;
        }
    };
    Some(LayerSource {
        key,
        device: raw.device.as_ref().map(|device| device.get_ref().clone()),
        conditions,
        extra_layers,
    })
}

fn build_extra(
    raw: &RawExtra,
    prefix: &str,
    refs: &TriggerRefs<'_>,
    report: &mut Report<'_>,
) -> Option<(LayerName, ExtraCondition)> {
    check_layer(&raw.area, &raw.layer, prefix, refs.areas, report);
    let condition = build_condition(
        &ConditionKeys {
            field: raw.field.as_ref(),
            operator: raw.operator.as_ref(),
            value: raw.value.as_ref(),
        },
        prefix,
        report,
    );
    let max_age_ms = check_range(
        &Some(raw.max_age_ms.clone()),
        &MAX_AGE_MS_RANGE,
        &format!("{prefix}.max_age_ms"),
        report,
    );
    let layer = LayerName {
        area: raw.area.get_ref().clone(),
        layer: raw.layer.get_ref().clone(),
    };
    let extra = ExtraCondition {
        condition: condition?,
        max_age_ms: max_age_ms?,
    };
    Some((layer, extra))
}

/// Checks that the area and its layer exist, when the areas are known. Returns false
/// only after recording an error.
fn check_layer(
    area: &Spanned<String>,
    layer: &Spanned<String>,
    prefix: &str,
    areas: Option<&[Area]>,
    report: &mut Report<'_>,
) -> bool {
    let Some(areas) = areas else {
        return true;
    };
    let Some(found) = areas.iter().find(|found| found.name == *area.get_ref()) else {
        let message = format!("area {:?} is not defined in [[areas]]", area.get_ref());
        report.error(area.span(), &format!("{prefix}.area"), message);
        return false;
    };
    if !found
        .layers
        .iter()
        .any(|found| found.name == *layer.get_ref())
    {
        let message = format!(
            "area {:?} has no layer {:?}",
            area.get_ref(),
            layer.get_ref()
        );
        report.error(layer.span(), &format!("{prefix}.layer"), message);
        return false;
    }
    true
}

/// Checks that a binding, enabled or not, binds a device of that name to the layer.
fn check_device(
    device: &Spanned<String>,
    layer: &LayerName,
    bindings: &[Binding],
    field: &str,
    report: &mut Report<'_>,
) {
    let name = device.get_ref();
    let bound = bindings.iter().any(|binding| {
        let bound_name = match &binding.device {
            DeviceRef::Webhook(name) | DeviceRef::MqttTopic(name) | DeviceRef::Camera(name) => name,
        };
        binding.area == layer.area && binding.layer == layer.layer && bound_name == name
    });
    if !bound {
        let message = format!(
            "device {name:?} is not bound to layer {:?} of area {:?}; name a webhook, topic \
             entry or camera that [[bindings]] binds to this layer, or remove `device` to \
             run on every device of the layer",
            layer.layer, layer.area
        );
        report.error(device.span(), field, message);
    }
}

/// The keys of a trigger or extra-layer table that make up its condition.
struct ConditionKeys<'a> {
    field: Option<&'a Spanned<String>>,
    operator: Option<&'a Spanned<String>>,
    value: Option<&'a Spanned<toml::Value>>,
}

/// Builds a condition, recording each error at the key it concerns: a path error at
/// `field`, an unknown operator at `operator` and an operand error at `value`.
fn build_condition(
    keys: &ConditionKeys<'_>,
    prefix: &str,
    report: &mut Report<'_>,
) -> Option<Condition> {
    let field = |key: &str| format!("{prefix}.{key}");
    let path = match keys.field {
        None => Some(FieldPath::root()),
        Some(path) => match FieldPath::parse(path.get_ref()) {
            Ok(path) => Some(path),
            Err(err) => {
                report.error(path.span(), &field("field"), err.to_string());
                None
            }
        },
    };
    let operands = match keys.value {
        None => Some(Vec::new()),
        Some(value) => operands_of(value, &field("value"), report),
    };
    let name = keys
        .operator
        .map_or("any", |operator| operator.get_ref().as_str());
    let operator = match &operands {
        Some(operands) => {
            let operands: Vec<&str> = operands.iter().map(String::as_str).collect();
            match Operator::parse(name, &operands) {
                Ok(operator) => Some(operator),
                Err(err) => {
                    report_operator_error(&err, keys, prefix, report);
                    None
                }
            }
        }
        None => {
            // The operands are reported already, so only an unknown name is left.
            if let Err(err @ TriggerError::UnknownOperator { .. }) = Operator::parse(name, &[]) {
                report_operator_error(&err, keys, prefix, report);
            }
            None
        }
    };
    Some(Condition {
        path: path?,
        operator: operator?,
    })
}

/// Records an error of [`Operator::parse`] at the `operator` or the `value` key.
fn report_operator_error(
    err: &TriggerError,
    keys: &ConditionKeys<'_>,
    prefix: &str,
    report: &mut Report<'_>,
) {
    let operator_key = keys
        .operator
        .map(|operator| (operator.span(), format!("{prefix}.operator")));
    let value_key = keys
        .value
        .map(|value| (value.span(), format!("{prefix}.value")));
    let (location, message) = match err {
        TriggerError::UnknownOperator { .. } => (operator_key.or(value_key), err.to_string()),
        TriggerError::OperandCount { .. } if keys.value.is_none() => {
            (operator_key, format!("{err}; set `value`"))
        }
        TriggerError::OperandCount { .. } if keys.operator.is_none() => (
            value_key,
            format!("{err}; set `operator`, which is any when left out"),
        ),
        _ => (value_key.or(operator_key), describe(err)),
    };
    let (span, field) = location.unwrap_or((0..0, prefix.to_owned()));
    report.error(span, &field, message);
}

/// Converts `value` into the operands of a condition: one scalar gives one operand and
/// an array of two scalars gives two, the minimum and the maximum of a range.
fn operands_of(
    value: &Spanned<toml::Value>,
    field: &str,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    let problem = match value.get_ref() {
        toml::Value::Array(items) if items.len() == 2 => {
            match items.iter().map(scalar_text).collect::<Option<Vec<_>>>() {
                Some(operands) => return Some(operands),
                None => "value is an array with a value that is not a scalar".to_owned(),
            }
        }
        toml::Value::Array(items) => format!("value is an array of {} values", items.len()),
        other => match scalar_text(other) {
            Some(operand) => return Some(vec![operand]),
            None => format!("value is {}", with_article(other.type_str())),
        },
    };
    let message = format!(
        "{problem}; it must be an integer, float, string or boolean, or an array of two of \
         them (minimum and maximum) for operator range"
    );
    report.error(value.span(), field, message);
    None
}

/// Returns a TOML type name, such as `integer`, with its indefinite article.
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// Returns the text of an integer, float, string or boolean, the form that
/// [`Operator::parse`] reads operands in.
fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Float(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// Converts the `properties` table into a JSON object. Keys come in the order of their
/// names, because the toml crate, built without its `preserve_order` feature, keeps the
/// keys of a table sorted.
fn build_properties(
    value: &Spanned<toml::Value>,
    field: &str,
    report: &mut Report<'_>,
) -> Option<Map<String, Value>> {
    let toml::Value::Table(table) = value.get_ref() else {
        let message = format!(
            "properties is {}; it must be a table, such as properties = {{ severity = \"high\" }}",
            with_article(value.get_ref().type_str())
        );
        report.error(value.span(), field, message);
        return None;
    };
    match object_of(table, field) {
        Ok(object) => Some(object),
        Err((path, message)) => {
            report.error(value.span(), &path, message);
            None
        }
    }
}

/// Converts a TOML table into a JSON object, or returns the path and the problem of the
/// first value that JSON cannot represent.
fn object_of(table: &toml::Table, path: &str) -> Result<Map<String, Value>, (String, String)> {
    table
        .iter()
        .map(|(key, value)| {
            let path = field_name(path, key);
            json_of(value, &path).map(|value| (key.clone(), value))
        })
        .collect()
}

/// Converts a TOML value into JSON. A datetime becomes its TOML text, such as
/// `2026-01-02T03:04:05Z` or `2026-01-02`.
fn json_of(value: &toml::Value, path: &str) -> Result<Value, (String, String)> {
    match value {
        toml::Value::String(text) => Ok(Value::String(text.clone())),
        toml::Value::Integer(number) => Ok(Value::from(*number)),
        toml::Value::Float(number) => serde_json::Number::from_f64(*number)
            .map(Value::Number)
            .ok_or_else(|| {
                let message = format!(
                    "{number} cannot be a property, because JSON has no NaN or infinity; write \
                     it as a string"
                );
                (path.to_owned(), message)
            }),
        toml::Value::Boolean(flag) => Ok(Value::Bool(*flag)),
        toml::Value::Datetime(datetime) => Ok(Value::String(datetime.to_string())),
        toml::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| json_of(item, &format!("{path}[{index}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        toml::Value::Table(table) => object_of(table, path).map(Value::Object),
    }
}

#[cfg(test)]
mod tests;
