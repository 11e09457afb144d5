//! The `[[actions]]` section, checked into [`Action`]s.

use std::collections::{HashMap, HashSet};
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

use hubkit_triggers::{
    Action, Backoff, Component, HttpMethod, LogLevel, MAX_BACKOFF, MAX_HTTP_ATTEMPTS,
    MAX_HTTP_TIMEOUT, MAX_SLEEP, QoS, Step, Template, WriteMode, check_relative_path,
};
use toml::Spanned;

use crate::document::Item;
use crate::error::Report;
use crate::mqtt::check_name;
use crate::raw::{RawAction, RawLogLevel, RawStep, RawWriteMode};
use crate::server::check_range;

/// Maximum number of `[[actions]]` tables in a file.
pub const MAX_ACTIONS: usize = 1000;

/// Maximum number of steps of one action.
pub const MAX_ACTION_STEPS: usize = 32;

/// Allowed `timeout_ms` values of an `http_request` step.
const TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=MAX_HTTP_TIMEOUT.as_millis() as u64;
/// Allowed `retries` values. They count retries after the first attempt, so a step makes
/// at most [`MAX_HTTP_ATTEMPTS`] attempts.
const RETRIES_RANGE: RangeInclusive<u64> = 0..=(MAX_HTTP_ATTEMPTS as u64 - 1);
/// Allowed `backoff_ms` and `backoff_max_ms` values.
const BACKOFF_MS_RANGE: RangeInclusive<u64> = 0..=MAX_BACKOFF.as_millis() as u64;
/// Allowed `duration_ms` values of a `sleep` step.
const DURATION_MS_RANGE: RangeInclusive<u64> = 0..=MAX_SLEEP.as_millis() as u64;
/// Allowed `qos` values of an `mqtt_publish` step.
const QOS_RANGE: RangeInclusive<u64> = 0..=2;

/// Default `timeout_ms` of an `http_request` step.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default `retries` of an `http_request` step.
const DEFAULT_RETRIES: u64 = 2;
/// Default `backoff_ms` of an `http_request` step.
const DEFAULT_BACKOFF_MS: u64 = 500;
/// Default `backoff_max_ms` of an `http_request` step.
const DEFAULT_BACKOFF_MAX_MS: u64 = 30_000;
/// Default `qos` of an `mqtt_publish` step.
const DEFAULT_QOS: u64 = 1;
/// Default `payload` of an `mqtt_publish` step, which is the previous step's output as
/// JSON.
const DEFAULT_PAYLOAD: &str = "{{ payload | tojson }}";

/// Component names in the order that error messages list them.
const COMPONENTS: [Component; 5] = [
    Component::HttpRequest,
    Component::MqttPublish,
    Component::FileWrite,
    Component::Log,
    Component::Sleep,
];

/// Returns the names of every action in the file, valid or not.
pub(crate) fn action_names(raw: &[Item<RawAction>]) -> HashSet<String> {
    raw.iter()
        .map(|item| item.value.name.get_ref().clone())
        .collect()
}

/// Validates the actions, recording every problem in `report`.
///
/// `brokers` has the broker names when every broker was read, and `mqtt_publish` steps
/// are checked against it only then.
pub(crate) fn build_actions(
    raw: Vec<Item<RawAction>>,
    brokers: Option<&HashSet<String>>,
    report: &mut Report<'_>,
) -> Vec<Action> {
    if let Some(excess) = raw.iter().find(|item| item.index >= MAX_ACTIONS) {
        let message = format!(
            "the file has more than {MAX_ACTIONS} actions; hubkit loads at most {MAX_ACTIONS}, \
             so remove the ones that no trigger uses"
        );
        report.error(
            excess.span.clone(),
            &format!("actions[{}]", excess.index),
            message,
        );
    }

    let mut names = HashMap::new();
    let mut actions = Vec::new();
    for item in raw {
        let prefix = format!("actions[{}]", item.index);
        let errors_before = report.error_count();
        check_name(&item.value.name, "action", &prefix, &mut names, report);
        let steps = build_steps(&item, &prefix, brokers, report);
        if report.error_count() > errors_before {
            continue;
        }
        let Some(steps) = steps else {
            continue;
        };
        let step_spans: Vec<Range<usize>> = item.value.steps.iter().map(Spanned::span).collect();
        let name = item.value.name.into_inner();
        // Action::new checks the step rules again. The checks above report each of them at
        // the key that breaks it, so an error here is a rule that this crate does not
        // check yet, reported at the step.
        match Action::new(name, steps) {
            Ok(action) => actions.push(action),
            Err(hubkit_triggers::Error::InvalidStep { index, rule, .. }) => {
                let span = step_spans.get(index).cloned().unwrap_or(item.span);
                report.error(span, &format!("{prefix}.steps[{index}]"), rule);
            }
            Err(err) => report.error(item.span, &prefix, err.to_string()),
        }
    }
    actions
}

/// Builds the steps of one action, or returns `None` after recording why not.
fn build_steps(
    item: &Item<RawAction>,
    prefix: &str,
    brokers: Option<&HashSet<String>>,
    report: &mut Report<'_>,
) -> Option<Vec<Step>> {
    let raw_steps = &item.value.steps;
    if raw_steps.is_empty() {
        let message =
            "action has no steps; add at least one [[actions.steps]] table after it".to_owned();
        report.error(item.span.clone(), prefix, message);
        return None;
    }
    if let Some(excess) = raw_steps.get(MAX_ACTION_STEPS) {
        let message = format!(
            "action has {} steps; an action takes at most {MAX_ACTION_STEPS}",
            raw_steps.len()
        );
        report.error(
            excess.span(),
            &format!("{prefix}.steps[{MAX_ACTION_STEPS}]"),
            message,
        );
    }

    let mut steps = Vec::new();
    let mut complete = true;
    for (index, raw) in raw_steps.iter().enumerate() {
        let step = StepInput {
            raw: raw.get_ref(),
            span: raw.span(),
            prefix: format!("{prefix}.steps[{index}]"),
        };
        match build_step(&step, brokers, report) {
            Some(built) => steps.push(built),
            None => complete = false,
        }
    }
    complete.then_some(steps)
}

/// One step table with its span and the dotted path of its keys.
struct StepInput<'a> {
    raw: &'a RawStep,
    span: Range<usize>,
    prefix: String,
}

impl StepInput<'_> {
    /// Returns the dotted path of `key` in this step.
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    /// Returns the value of a required key, or records that the component needs it.
    fn required<'v>(
        &self,
        value: &'v Option<Spanned<String>>,
        key: &str,
        component: Component,
        report: &mut Report<'_>,
    ) -> Option<&'v Spanned<String>> {
        if value.is_none() {
            let message = format!("component {component} needs `{key}`");
            report.error(self.span.clone(), &self.prefix, message);
        }
        value.as_ref()
    }

    /// Compiles the template of `key`, recording its syntax error.
    fn template(
        &self,
        value: &Spanned<String>,
        key: &str,
        report: &mut Report<'_>,
    ) -> Option<Template> {
        match Template::parse(value.get_ref()) {
            Ok(template) => Some(template),
            Err(err) => {
                report.error(value.span(), &self.field(key), err.to_string());
                None
            }
        }
    }

    /// Returns the value of an integer key within `range`, or `default` when the key is
    /// not set, or `None` after recording that it is out of range.
    fn number(
        &self,
        value: &Option<Spanned<i64>>,
        key: &str,
        range: &RangeInclusive<u64>,
        default: u64,
        report: &mut Report<'_>,
    ) -> Option<u64> {
        match value {
            None => Some(default),
            Some(_) => check_range(value, range, &self.field(key), report),
        }
    }
}

/// Builds one step, or returns `None` after recording why not.
fn build_step(
    step: &StepInput<'_>,
    brokers: Option<&HashSet<String>>,
    report: &mut Report<'_>,
) -> Option<Step> {
    let component = parse_component(&step.raw.component, &step.field("component"), report)?;
    let errors_before = report.error_count();
    check_keys(step, component, report);
    let built = match component {
        Component::HttpRequest => build_http(step, report),
        Component::MqttPublish => build_publish(step, brokers, report),
        Component::FileWrite => build_file_write(step, report),
        Component::Log => build_log(step, report),
        Component::Sleep => build_sleep(step, report),
    };
    if report.error_count() > errors_before {
        return None;
    }
    built
}

fn parse_component(
    value: &Spanned<String>,
    field: &str,
    report: &mut Report<'_>,
) -> Option<Component> {
    let text = value.get_ref();
    let found = COMPONENTS
        .into_iter()
        .find(|component| component.as_str() == text);
    if found.is_none() {
        let names: Vec<String> = COMPONENTS
            .iter()
            .map(|component| component.as_str().to_owned())
            .collect();
        let message = format!(
            "component {text:?} is unknown; use {}",
            join_words(&names, "or")
        );
        report.error(value.span(), field, message);
    }
    found
}

/// Returns the keys that `component` takes besides `component`.
fn component_keys(component: Component) -> &'static [&'static str] {
    match component {
        Component::HttpRequest => &[
            "method",
            "url",
            "headers",
            "body",
            "content_type",
            "timeout_ms",
            "retries",
            "backoff_ms",
            "backoff_max_ms",
            "ca_file",
        ],
        Component::MqttPublish => &["broker", "topic", "qos", "retain", "payload"],
        Component::FileWrite => &["path", "mode", "content"],
        Component::Log => &["message", "level"],
        Component::Sleep => &["duration_ms"],
    }
}

/// Returns every key that the step sets, except `component`, with the span of its value.
fn set_keys(raw: &RawStep) -> Vec<(&'static str, Range<usize>)> {
    let keys = [
        ("method", raw.method.as_ref().map(Spanned::span)),
        ("url", raw.url.as_ref().map(Spanned::span)),
        ("headers", raw.headers.as_ref().map(Spanned::span)),
        ("body", raw.body.as_ref().map(Spanned::span)),
        ("content_type", raw.content_type.as_ref().map(Spanned::span)),
        ("timeout_ms", raw.timeout_ms.as_ref().map(Spanned::span)),
        ("retries", raw.retries.as_ref().map(Spanned::span)),
        ("backoff_ms", raw.backoff_ms.as_ref().map(Spanned::span)),
        (
            "backoff_max_ms",
            raw.backoff_max_ms.as_ref().map(Spanned::span),
        ),
        ("ca_file", raw.ca_file.as_ref().map(Spanned::span)),
        ("broker", raw.broker.as_ref().map(Spanned::span)),
        ("topic", raw.topic.as_ref().map(Spanned::span)),
        ("qos", raw.qos.as_ref().map(Spanned::span)),
        ("retain", raw.retain.as_ref().map(Spanned::span)),
        ("payload", raw.payload.as_ref().map(Spanned::span)),
        ("path", raw.path.as_ref().map(Spanned::span)),
        ("mode", raw.mode.as_ref().map(Spanned::span)),
        ("content", raw.content.as_ref().map(Spanned::span)),
        ("message", raw.message.as_ref().map(Spanned::span)),
        ("level", raw.level.as_ref().map(Spanned::span)),
        ("duration_ms", raw.duration_ms.as_ref().map(Spanned::span)),
    ];
    keys.into_iter()
        .filter_map(|(key, span)| span.map(|span| (key, span)))
        .collect()
}

/// Records an error for each key that the step sets but its component does not take.
fn check_keys(step: &StepInput<'_>, component: Component, report: &mut Report<'_>) {
    let allowed = component_keys(component);
    for (key, span) in set_keys(step.raw) {
        if allowed.contains(&key) {
            continue;
        }
        let quoted: Vec<String> = allowed.iter().map(|key| format!("`{key}`")).collect();
        let message = format!(
            "key `{key}` does not apply to component {component}, which takes {}; remove \
             it or change the component",
            join_words(&quoted, "and")
        );
        report.error(span, &step.field(key), message);
    }
}

fn build_http(step: &StepInput<'_>, report: &mut Report<'_>) -> Option<Step> {
    let raw = step.raw;
    let method = match &raw.method {
        None => Some(HttpMethod::Post),
        Some(method) => parse_method(method, &step.field("method"), report),
    };
    let url = step
        .required(&raw.url, "url", Component::HttpRequest, report)
        .and_then(|url| build_url(step, url, report));
    let headers = build_headers(step, report);
    let body = match &raw.body {
        None => Some(None),
        Some(body) => step.template(body, "body", report).map(Some),
    };
    let content_type = raw.content_type.as_ref().map(|value| {
        if let Some(rule) = http_header_rule(Vec::new(), Some(value.get_ref().clone())) {
            report.error(value.span(), &step.field("content_type"), rule);
        }
        value.get_ref().clone()
    });
    let timeout = step.number(
        &raw.timeout_ms,
        "timeout_ms",
        &TIMEOUT_MS_RANGE,
        DEFAULT_TIMEOUT_MS,
        report,
    );
    let retries = step.number(
        &raw.retries,
        "retries",
        &RETRIES_RANGE,
        DEFAULT_RETRIES,
        report,
    );
    let backoff = build_backoff(step, report);
    let ca_file = raw.ca_file.as_ref().map(|file| {
        if file.get_ref().trim().is_empty() {
            let message = "ca_file is empty; name a PEM file of certificate authorities, or \
                           remove the key to trust the system's authorities"
                .to_owned();
            report.error(file.span(), &step.field("ca_file"), message);
        }
        PathBuf::from(file.get_ref())
    });
    warn_clear_text_credentials(step, report);

    Some(Step::HttpRequest {
        method: method?,
        url: url?,
        headers: headers?,
        body: body?,
        content_type,
        timeout: Duration::from_millis(timeout?),
        // The step counts attempts, the first included.
        retries: u32::try_from(retries?).ok()? + 1,
        backoff: backoff?,
        ca_file,
    })
}

fn parse_method(
    value: &Spanned<String>,
    field: &str,
    report: &mut Report<'_>,
) -> Option<HttpMethod> {
    let methods = [
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
    ];
    let text = value.get_ref();
    let found = methods
        .into_iter()
        .find(|method| method.as_str().eq_ignore_ascii_case(text));
    if found.is_none() {
        let message = format!("method {text:?} is unknown; use GET, POST, PUT, PATCH or DELETE");
        report.error(value.span(), field, message);
    }
    found
}

/// Compiles the URL template, and checks the scheme now when the URL is literal.
fn build_url(
    step: &StepInput<'_>,
    url: &Spanned<String>,
    report: &mut Report<'_>,
) -> Option<Template> {
    let template = step.template(url, "url", report)?;
    let text = url.get_ref();
    let scheme = text
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if !is_template(text) && !matches!(scheme.as_deref(), Some("http" | "https")) {
        let message = format!("url {text:?} is invalid; it must start with http:// or https://");
        report.error(url.span(), &step.field("url"), message);
        return None;
    }
    Some(template)
}

/// Builds the headers in the order of their names, because the toml crate, built without
/// its `preserve_order` feature, keeps the keys of a table sorted.
fn build_headers(step: &StepInput<'_>, report: &mut Report<'_>) -> Option<Vec<(String, Template)>> {
    let Some(headers) = &step.raw.headers else {
        return Some(Vec::new());
    };
    let mut built = Vec::new();
    let mut ok = true;
    for (name, value) in headers.get_ref() {
        let field = crate::document::field_name(&step.field("headers"), name.get_ref());
        let text = value.get_ref();
        let literal = !["{{", "{%", "{#"].iter().any(|tag| text.contains(tag));
        if literal && text.chars().any(|c| c.is_control() && c != '\t') {
            let message = format!(
                "header value {text:?} contains a control character such as a line break; \
                 write the value on one line"
            );
            report.error(value.span(), &field, message);
            ok = false;
            continue;
        }
        let template = match Template::parse(text) {
            Ok(template) => template,
            Err(err) => {
                report.error(value.span(), &field, err.to_string());
                ok = false;
                continue;
            }
        };
        let header = (name.get_ref().clone(), template);
        if let Some(rule) = http_header_rule(vec![header.clone()], None) {
            report.error(name.span(), &field, rule);
            ok = false;
        }
        built.push(header);
    }
    ok.then_some(built)
}

/// Returns the rule that [`Action::new`] finds broken in an HTTP step with these headers
/// and content type and valid settings otherwise. hubkit-triggers checks header names
/// and values only in `Action::new`, so each one is checked in a step of its own to point
/// the error at its key.
fn http_header_rule(
    headers: Vec<(String, Template)>,
    content_type: Option<String>,
) -> Option<String> {
    let url = Template::parse("https://localhost").expect("a URL without braces is a template");
    let step = Step::HttpRequest {
        method: HttpMethod::Post,
        url,
        headers,
        body: None,
        content_type,
        timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        retries: 1,
        backoff: Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
        },
        ca_file: None,
    };
    match Action::new("header check", vec![step]) {
        Ok(_) => None,
        Err(hubkit_triggers::Error::InvalidStep { rule, .. }) => Some(rule),
        Err(err) => Some(err.to_string()),
    }
}

fn build_backoff(step: &StepInput<'_>, report: &mut Report<'_>) -> Option<Backoff> {
    let raw = step.raw;
    let initial = step.number(
        &raw.backoff_ms,
        "backoff_ms",
        &BACKOFF_MS_RANGE,
        DEFAULT_BACKOFF_MS,
        report,
    );
    let max = step.number(
        &raw.backoff_max_ms,
        "backoff_max_ms",
        &BACKOFF_MS_RANGE,
        DEFAULT_BACKOFF_MAX_MS,
        report,
    );
    let (initial, max) = (initial?, max?);
    if initial > max {
        // The defaults are in order, so at least one of the keys is set.
        let (span, field) = match (&raw.backoff_ms, &raw.backoff_max_ms) {
            (Some(value), _) => (value.span(), step.field("backoff_ms")),
            (None, Some(value)) => (value.span(), step.field("backoff_max_ms")),
            (None, None) => (step.span.clone(), step.prefix.clone()),
        };
        let message = format!(
            "backoff_ms is {initial} but backoff_max_ms is {max}; the first delay must not \
             exceed the maximum delay, so lower backoff_ms or raise backoff_max_ms"
        );
        report.error(span, &field, message);
        return None;
    }
    Some(Backoff {
        initial: Duration::from_millis(initial),
        max: Duration::from_millis(max),
    })
}

/// Warns when a step sends an `Authorization` header to an `http://` URL.
fn warn_clear_text_credentials(step: &StepInput<'_>, report: &mut Report<'_>) {
    let (Some(url), Some(headers)) = (&step.raw.url, &step.raw.headers) else {
        return;
    };
    let plain = url
        .get_ref()
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    if !plain {
        return;
    }
    for name in headers.get_ref().keys() {
        if name.get_ref().eq_ignore_ascii_case("authorization") {
            let message = "step sends an Authorization header to an http:// URL, so anyone on \
                           the network path can read the credentials; use an https:// URL"
                .to_owned();
            let field = crate::document::field_name(&step.field("headers"), name.get_ref());
            report.warning(name.span(), &field, message);
        }
    }
}

fn build_publish(
    step: &StepInput<'_>,
    brokers: Option<&HashSet<String>>,
    report: &mut Report<'_>,
) -> Option<Step> {
    let raw = step.raw;
    let component = Component::MqttPublish;
    let broker = step.required(&raw.broker, "broker", component, report);
    if let Some(broker) = broker {
        let name = broker.get_ref();
        let message = if name.trim().is_empty() {
            Some("broker is empty; name a [[brokers]] entry".to_owned())
        } else if brokers.is_some_and(|names| !names.contains(name)) {
            Some(format!(
                "step names broker {name:?}, which is not defined in [[brokers]]"
            ))
        } else {
            None
        };
        if let Some(message) = message {
            report.error(broker.span(), &step.field("broker"), message);
        }
    }
    let topic = step
        .required(&raw.topic, "topic", component, report)
        .and_then(|topic| {
            let template = step.template(topic, "topic", report)?;
            if !is_template(topic.get_ref())
                && let Err(err) = hubkit_mqtt::validate_topic_name(topic.get_ref())
            {
                report.error(topic.span(), &step.field("topic"), err.to_string());
                return None;
            }
            Some(template)
        });
    let qos = step
        .number(&raw.qos, "qos", &QOS_RANGE, DEFAULT_QOS, report)
        .and_then(|level| QoS::try_from(u8::try_from(level).ok()?).ok());
    let payload = match &raw.payload {
        Some(payload) => step.template(payload, "payload", report),
        None => Some(Template::parse(DEFAULT_PAYLOAD).expect("the default payload is a template")),
    };
    Some(Step::MqttPublish {
        broker: broker?.get_ref().clone(),
        topic: topic?,
        qos: qos?,
        retain: raw.retain.as_ref().is_some_and(|retain| *retain.get_ref()),
        payload: payload?,
    })
}

fn build_file_write(step: &StepInput<'_>, report: &mut Report<'_>) -> Option<Step> {
    let raw = step.raw;
    let component = Component::FileWrite;
    let path = step
        .required(&raw.path, "path", component, report)
        .and_then(|path| {
            let template = step.template(path, "path", report)?;
            if !is_template(path.get_ref())
                && let Err(err) = check_relative_path(path.get_ref())
            {
                report.error(path.span(), &step.field("path"), err.to_string());
                return None;
            }
            Some(template)
        });
    let content = step
        .required(&raw.content, "content", component, report)
        .and_then(|content| step.template(content, "content", report));
    let mode = match raw.mode.as_ref().map(|mode| *mode.get_ref()) {
        None | Some(RawWriteMode::Append) => WriteMode::Append,
        Some(RawWriteMode::Overwrite) => WriteMode::Overwrite,
    };
    Some(Step::FileWrite {
        path: path?,
        mode,
        content: content?,
    })
}

fn build_log(step: &StepInput<'_>, report: &mut Report<'_>) -> Option<Step> {
    let raw = step.raw;
    let message = step
        .required(&raw.message, "message", Component::Log, report)
        .and_then(|message| step.template(message, "message", report));
    let level = match raw.level.as_ref().map(|level| *level.get_ref()) {
        Some(RawLogLevel::Error) => LogLevel::Error,
        Some(RawLogLevel::Warn) => LogLevel::Warn,
        None | Some(RawLogLevel::Info) => LogLevel::Info,
        Some(RawLogLevel::Debug) => LogLevel::Debug,
    };
    Some(Step::Log {
        message: message?,
        level,
    })
}

fn build_sleep(step: &StepInput<'_>, report: &mut Report<'_>) -> Option<Step> {
    if step.raw.duration_ms.is_none() {
        let message = "component sleep needs `duration_ms`".to_owned();
        report.error(step.span.clone(), &step.prefix, message);
        return None;
    }
    let millis = check_range(
        &step.raw.duration_ms,
        &DURATION_MS_RANGE,
        &step.field("duration_ms"),
        report,
    )?;
    Some(Step::Sleep {
        duration: Duration::from_millis(millis),
    })
}

/// Returns whether `text` contains template syntax, so its rendered value is known only
/// when the action runs.
fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// Joins words as in "a, b and c".
pub(crate) fn join_words(words: &[String], conjunction: &str) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests;
