//! The runner: renders each step's templates, does its I/O through [`Effects`] and passes
//! the payload on.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::effects::{Effects, HttpRequest, HttpResponse};
use super::{Action, Backoff, HttpMethod, Step, WriteMode, check_relative_path};
use crate::{StepContext, Template};

/// The maximum length of [`StepRecord::output_preview`] in bytes.
pub const MAX_OUTPUT_PREVIEW: usize = 256;

/// The kind of component a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// [`Step::HttpRequest`].
    HttpRequest,
    /// [`Step::MqttPublish`].
    MqttPublish,
    /// [`Step::FileWrite`].
    FileWrite,
    /// [`Step::Log`].
    Log,
    /// [`Step::Sleep`].
    Sleep,
}

impl Component {
    /// Returns the component's name in snake case, as stored in run records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpRequest => "http_request",
            Self::MqttPublish => "mqtt_publish",
            Self::FileWrite => "file_write",
            Self::Log => "log",
            Self::Sleep => "sleep",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// The step finished and passed its output on.
    Succeeded,
    /// The step failed, which stopped the action.
    Failed,
    /// The step did not run because an earlier step failed.
    Skipped,
}

/// The record of one step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The step's position in the action, counted from 0.
    pub index: usize,
    /// The step's component.
    pub component: Component,
    /// The step's result.
    pub status: StepStatus,
    /// The number of times the step's I/O was tried: 0 when the step failed before it (for
    /// example on a template error) or was skipped, and more than 1 for retried HTTP requests.
    pub attempts: u32,
    /// The time from the start of the run to the start of the step, by [`Effects::now`].
    pub started: Duration,
    /// The time from the start of the run to the end of the step, by [`Effects::now`].
    pub finished: Duration,
    /// The failure, for a failed step.
    pub error: Option<String>,
    /// The start of the step's output as JSON, at most [`MAX_OUTPUT_PREVIEW`] bytes, for a
    /// step that succeeded.
    pub output_preview: Option<String>,
}

/// The result of one run of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Whether every step succeeded.
    pub succeeded: bool,
    /// One record per step of the action, in order, skipped steps included.
    pub steps: Vec<StepRecord>,
    /// The failure of the step that stopped the action, naming the step.
    pub error: Option<String>,
    /// The run's duration, by [`Effects::now`].
    pub duration: Duration,
    /// The output of the last step that succeeded, or the input when none did.
    pub output: Value,
}

/// The attempts and the output or failure of one step.
struct StepResult {
    attempts: u32,
    outcome: Result<Arc<Value>, String>,
}

impl StepResult {
    fn failed_before_io(message: String) -> Self {
        Self {
            attempts: 0,
            outcome: Err(message),
        }
    }
}

/// Runs the steps of `action` in order, starting with `input` as the payload.
///
/// Each step's templates render with a context object that has the top-level keys of
/// `input` (when it is an object), then `input` (the whole input) and `payload` (the
/// previous step's output, or `input` for the first step). `input` and `payload` replace
/// input keys of the same name. A step that fails stops the run, and the later steps are
/// recorded as skipped. The run never returns an error: failures are in the outcome.
pub async fn run_action<E: Effects>(action: &Action, input: Value, effects: &E) -> RunOutcome {
    let run_started = effects.now();
    // Steps share the input and pass payloads on without copying them.
    let input = Arc::new(input);
    let mut payload = input.clone();
    let mut steps = Vec::with_capacity(action.steps().len());
    let mut error = None;

    for (index, step) in action.steps().iter().enumerate() {
        let component = step.component();
        let started = effects.now().saturating_sub(run_started);
        if error.is_some() {
            steps.push(skipped_record(index, component, started));
            continue;
        }

        let context = StepContext::new(input.clone(), payload.clone());
        let result = run_step(step, &context, &payload, effects).await;
        let finished = effects.now().saturating_sub(run_started);

        let mut record = StepRecord {
            index,
            component,
            status: StepStatus::Succeeded,
            attempts: result.attempts,
            started,
            finished,
            error: None,
            output_preview: None,
        };
        match result.outcome {
            Ok(output) => {
                record.output_preview = Some(preview(&output));
                payload = output;
            }
            Err(message) => {
                record.status = StepStatus::Failed;
                error = Some(format!(
                    "step {} ({component}) failed: {message}",
                    index + 1
                ));
                record.error = Some(message);
            }
        }
        steps.push(record);
    }

    let duration = effects.now().saturating_sub(run_started);
    drop(input);
    RunOutcome {
        succeeded: error.is_none(),
        steps,
        error,
        duration,
        output: Arc::try_unwrap(payload).unwrap_or_else(|shared| (*shared).clone()),
    }
}

fn skipped_record(index: usize, component: Component, at: Duration) -> StepRecord {
    StepRecord {
        index,
        component,
        status: StepStatus::Skipped,
        attempts: 0,
        started: at,
        finished: at,
        error: None,
        output_preview: None,
    }
}

/// Returns the start of `output` as JSON, cut at a character boundary. It serializes only
/// that start, so a large payload costs no more than a small one.
fn preview(output: &Value) -> String {
    let mut start = PreviewWriter(Vec::with_capacity(MAX_OUTPUT_PREVIEW + 4));
    // The writer refuses bytes past the limit, which stops the serializer with an error.
    let _ = serde_json::to_writer(&mut start, output);
    let mut bytes = start.0;
    bytes.truncate(MAX_OUTPUT_PREVIEW);
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let mut bytes = err.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

/// Collects serialized JSON up to [`MAX_OUTPUT_PREVIEW`] bytes and one character more.
struct PreviewWriter(Vec<u8>);

impl io::Write for PreviewWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = (MAX_OUTPUT_PREVIEW + 4).saturating_sub(self.0.len());
        if room == 0 {
            return Err(io::Error::other("preview is complete"));
        }
        let accepted = buf.len().min(room);
        self.0.extend_from_slice(&buf[..accepted]);
        Ok(accepted)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renders `template`, prefixing a failure with the name of the step setting.
fn render(template: &Template, setting: &str, context: &StepContext) -> Result<String, String> {
    template
        .render_step(context)
        .map_err(|err| format!("{setting}: {err}"))
}

async fn run_step<E: Effects>(
    step: &Step,
    context: &StepContext,
    payload: &Arc<Value>,
    effects: &E,
) -> StepResult {
    let passed_on = |outcome: Result<(), String>| StepResult {
        attempts: 1,
        outcome: outcome.map(|()| payload.clone()),
    };

    match step {
        Step::HttpRequest {
            method,
            url,
            headers,
            body,
            content_type,
            timeout,
            retries,
            backoff,
            ca_file,
        } => {
            let settings = HttpSettings {
                method: *method,
                url,
                headers,
                body: body.as_ref(),
                content_type: content_type.as_deref(),
                timeout: *timeout,
                ca_file: ca_file.as_deref(),
            };
            let request = match build_request(&settings, context) {
                Ok(request) => request,
                Err(failure) => return StepResult::failed_before_io(failure),
            };
            send_with_retries(request, *retries, backoff, effects).await
        }
        Step::MqttPublish {
            broker,
            topic,
            qos,
            retain,
            payload: message,
        } => {
            let (topic, message) = match render_publish(topic, message, context) {
                Ok(rendered) => rendered,
                Err(failure) => return StepResult::failed_before_io(failure),
            };
            let published = effects
                .publish(broker, &topic, *qos, *retain, message.as_bytes())
                .await;
            passed_on(published)
        }
        Step::FileWrite {
            path,
            mode,
            content,
        } => {
            let (path, mut bytes) = match render_file(path, content, context) {
                Ok(rendered) => rendered,
                Err(failure) => return StepResult::failed_before_io(failure),
            };
            let append = *mode == WriteMode::Append;
            if append {
                bytes.push('\n');
            }
            passed_on(effects.write_file(&path, bytes.as_bytes(), append).await)
        }
        Step::Log { message, level } => match render(message, "message", context) {
            Ok(message) => {
                effects.log(*level, &message);
                passed_on(Ok(()))
            }
            Err(failure) => StepResult::failed_before_io(failure),
        },
        Step::Sleep { duration } => {
            effects.sleep(*duration).await;
            passed_on(Ok(()))
        }
    }
}

fn render_publish(
    topic: &Template,
    message: &Template,
    context: &StepContext,
) -> Result<(String, String), String> {
    let topic = render(topic, "topic", context)?;
    if topic.is_empty() || topic.contains(['+', '#', '\0']) || topic.len() > usize::from(u16::MAX) {
        return Err(format!(
            "topic {topic:?} is not a valid MQTT topic name; it must be 1 to 65535 bytes \
             without `+`, `#` or NUL"
        ));
    }
    let message = render(message, "payload", context)?;
    Ok((topic, message))
}

fn render_file(
    path: &Template,
    content: &Template,
    context: &StepContext,
) -> Result<(std::path::PathBuf, String), String> {
    let path = render(path, "path", context)?;
    let path = check_relative_path(&path).map_err(|err| err.to_string())?;
    let content = render(content, "content", context)?;
    Ok((path, content))
}

/// Sends `request` up to `max_attempts` times, retrying transport failures, 429 and 5xx
/// with backoff, and returns `{"status": <code>, "body": <body>}`.
async fn send_with_retries<E: Effects>(
    request: HttpRequest,
    max_attempts: u32,
    backoff: &Backoff,
    effects: &E,
) -> StepResult {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failure = match effects.http(request.clone()).await {
            Ok(response) if is_retryable(response.status) => {
                format!("HTTP status {}", response.status)
            }
            Ok(response) if response.status >= 400 => {
                let failure = format!("HTTP status {}, which is not retried", response.status);
                return StepResult {
                    attempts,
                    outcome: Err(failure),
                };
            }
            Ok(response) => {
                return StepResult {
                    attempts,
                    outcome: Ok(Arc::new(http_output(response))),
                };
            }
            Err(transport) => transport,
        };

        if attempts >= max_attempts {
            return StepResult {
                attempts,
                outcome: Err(if attempts == 1 {
                    format!("failed after 1 attempt: {failure}")
                } else {
                    format!("failed after {attempts} attempts: {failure}")
                }),
            };
        }
        effects.sleep(backoff.delay_after(attempts)).await;
    }
}

/// Returns whether a response status is worth another attempt: 429 Too Many Requests and
/// every 5xx.
fn is_retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

fn http_output(response: HttpResponse) -> Value {
    let body = serde_json::from_slice(&response.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&response.body).into_owned()));
    serde_json::json!({"status": response.status, "body": body})
}

/// The settings of an HTTP Request step that make its request.
struct HttpSettings<'a> {
    method: HttpMethod,
    url: &'a Template,
    headers: &'a [(String, Template)],
    body: Option<&'a Template>,
    content_type: Option<&'a str>,
    timeout: Duration,
    ca_file: Option<&'a std::path::Path>,
}

/// Renders the URL, headers and body of an HTTP Request step.
fn build_request(
    settings: &HttpSettings<'_>,
    context: &StepContext,
) -> Result<HttpRequest, String> {
    let HttpSettings {
        method,
        url,
        headers,
        body,
        content_type,
        timeout,
        ca_file,
    } = settings;

    let url = render(url, "url", context)?;
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(format!("url {url:?} must start with http:// or https://"));
    }
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    if authority.is_empty() {
        return Err(format!("url {url:?} has no host"));
    }
    if let Some((_, host)) = authority.rsplit_once('@') {
        // The credentials are left out of the message, which is stored with the run.
        return Err(format!(
            "url with host {host:?} contains a user name or password, which would not be \
             sent; put the credentials in an Authorization header instead"
        ));
    }

    let mut rendered_headers = Vec::with_capacity(headers.len() + 1);
    for (name, value) in headers.iter() {
        let value = render(value, &format!("header {name}"), context)?;
        if !super::is_header_value(&value) {
            return Err(format!(
                "header {name}: the value contains a control character"
            ));
        }
        rendered_headers.push((name.clone(), value));
    }

    let body = body.map(|body| render(body, "body", context)).transpose()?;
    if let Some(body) = &body {
        add_content_type(&mut rendered_headers, *content_type, body);
    }

    Ok(HttpRequest {
        method: *method,
        url,
        headers: rendered_headers,
        body: body.map(String::into_bytes),
        timeout: *timeout,
        ca_file: ca_file.map(std::path::Path::to_path_buf),
    })
}

/// Adds a `Content-Type` header unless the step sets one among its headers.
fn add_content_type(headers: &mut Vec<(String, String)>, configured: Option<&str>, body: &str) {
    let present = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if present {
        return;
    }
    let value = match configured {
        Some(value) => value,
        None if serde_json::from_str::<Value>(body).is_ok() => "application/json",
        None => "text/plain; charset=utf-8",
    };
    headers.push(("Content-Type".to_owned(), value.to_owned()));
}
