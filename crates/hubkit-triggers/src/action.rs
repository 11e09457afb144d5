//! Actions: ordered steps that a trigger runs, checked when built and run by
//! [`run_action`] through an [`Effects`] implementation that does the I/O.

use std::fmt;
use std::path::{Component as PathComponent, Path, PathBuf};
use std::time::Duration;

use crate::{Error, Template};

mod effects;
mod run;

pub use effects::{Effects, HttpRequest, HttpResponse};
pub use run::{Component, MAX_OUTPUT_PREVIEW, RunOutcome, StepRecord, StepStatus, run_action};

/// The maximum duration of a Sleep step (1 hour).
pub const MAX_SLEEP: Duration = Duration::from_secs(60 * 60);

/// The maximum timeout of one HTTP attempt (5 minutes).
pub const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The maximum number of attempts of an HTTP Request step, the first included.
pub const MAX_HTTP_ATTEMPTS: u32 = 10;

/// The maximum delay between two HTTP attempts (5 minutes).
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// An action: a named, non-empty list of steps run in order.
#[derive(Debug, Clone)]
pub struct Action {
    name: String,
    steps: Vec<Step>,
}

impl Action {
    /// Builds an action after checking its name and every step.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAction`] when the name is empty or there are no steps, and
    /// [`Error::InvalidStep`] for the first step whose settings are out of range.
    pub fn new(name: impl Into<String>, steps: Vec<Step>) -> Result<Self, Error> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(Error::InvalidAction {
                name,
                rule: "the name is empty".to_owned(),
            });
        }
        if steps.is_empty() {
            return Err(Error::InvalidAction {
                name,
                rule: "it has no steps; add at least one".to_owned(),
            });
        }
        for (index, step) in steps.iter().enumerate() {
            step.validate().map_err(|rule| Error::InvalidStep {
                index,
                component: step.component().as_str(),
                rule,
            })?;
        }
        Ok(Self { name, steps })
    }

    /// Returns the action's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the steps in the order they run.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

/// One step of an action. Its settings are checked by [`Action::new`].
#[derive(Debug, Clone)]
pub enum Step {
    /// Sends an HTTP request. The next payload is `{"status": <code>, "body": <body>}`, with
    /// the body as JSON when it parses and as text otherwise.
    HttpRequest {
        /// The request method.
        method: HttpMethod,
        /// The URL, which must render to an `http://` or `https://` URL.
        url: Template,
        /// Header names and value templates. The names must be HTTP tokens.
        headers: Vec<(String, Template)>,
        /// The body template, or `None` to send no body.
        body: Option<Template>,
        /// The `Content-Type` of the body. `None` picks `application/json` when the
        /// rendered body parses as JSON and `text/plain; charset=utf-8` otherwise.
        content_type: Option<String>,
        /// The timeout of one attempt, from 1 ms to [`MAX_HTTP_TIMEOUT`].
        timeout: Duration,
        /// The maximum number of attempts, the first included, from 1 to
        /// [`MAX_HTTP_ATTEMPTS`].
        retries: u32,
        /// The delays between attempts.
        backoff: Backoff,
        /// A PEM file of certificate authorities trusted for `https://` URLs instead of
        /// the system's, such as a site's private authority or a self-signed server
        /// certificate.
        ca_file: Option<PathBuf>,
    },
    /// Publishes an MQTT message. The payload passes through unchanged.
    MqttPublish {
        /// The name of a configured broker.
        broker: String,
        /// The topic, which must render to a topic name without wildcards.
        topic: Template,
        /// The quality of service.
        qos: QoS,
        /// Whether the broker keeps the message as the topic's retained message.
        retain: bool,
        /// The message payload.
        payload: Template,
    },
    /// Writes to a file under the folder of action files, which hubkitd keeps in its data
    /// directory. The payload passes through unchanged.
    FileWrite {
        /// The file path relative to the folder of action files. The rendered path must not be
        /// absolute or contain `..`.
        path: Template,
        /// Whether to append a line or replace the file.
        mode: WriteMode,
        /// The line to append, without its newline, or the whole file content.
        content: Template,
    },
    /// Sends a message to the log. The payload passes through unchanged.
    Log {
        /// The message.
        message: Template,
        /// The log level.
        level: LogLevel,
    },
    /// Waits. The payload passes through unchanged.
    Sleep {
        /// The time to wait, at most [`MAX_SLEEP`].
        duration: Duration,
    },
}

impl Step {
    /// Returns the kind of component the step is.
    pub fn component(&self) -> Component {
        match self {
            Self::HttpRequest { .. } => Component::HttpRequest,
            Self::MqttPublish { .. } => Component::MqttPublish,
            Self::FileWrite { .. } => Component::FileWrite,
            Self::Log { .. } => Component::Log,
            Self::Sleep { .. } => Component::Sleep,
        }
    }

    /// Checks the settings that do not depend on the payload, returning the broken rule.
    fn validate(&self) -> Result<(), String> {
        match self {
            Self::HttpRequest {
                headers,
                content_type,
                timeout,
                retries,
                backoff,
                ..
            } => validate_http(
                headers,
                content_type.as_deref(),
                *timeout,
                *retries,
                backoff,
            ),
            Self::MqttPublish { broker, .. } if broker.trim().is_empty() => {
                Err("the broker name is empty".to_owned())
            }
            Self::Sleep { duration } if *duration > MAX_SLEEP => Err(format!(
                "sleep of {} ms is longer than the maximum {} ms",
                duration.as_millis(),
                MAX_SLEEP.as_millis()
            )),
            _ => Ok(()),
        }
    }
}

fn validate_http(
    headers: &[(String, Template)],
    content_type: Option<&str>,
    timeout: Duration,
    retries: u32,
    backoff: &Backoff,
) -> Result<(), String> {
    if let Some((name, _)) = headers.iter().find(|(name, _)| !is_http_token(name)) {
        return Err(format!("header name {name:?} is not a valid HTTP token"));
    }
    if let Some(value) = content_type.filter(|value| !is_header_value(value)) {
        return Err(format!(
            "content type {value:?} is not a valid header value"
        ));
    }
    if timeout.is_zero() || timeout > MAX_HTTP_TIMEOUT {
        return Err(format!(
            "timeout of {} ms is out of range; it must be 1 to {} ms",
            timeout.as_millis(),
            MAX_HTTP_TIMEOUT.as_millis()
        ));
    }
    if !(1..=MAX_HTTP_ATTEMPTS).contains(&retries) {
        return Err(format!(
            "{retries} attempts is out of range; it must be 1 to {MAX_HTTP_ATTEMPTS}"
        ));
    }
    if backoff.initial > backoff.max || backoff.max > MAX_BACKOFF {
        return Err(format!(
            "backoff of {} ms to {} ms is invalid; the initial delay must not exceed the \
             maximum, which must be at most {} ms",
            backoff.initial.as_millis(),
            backoff.max.as_millis(),
            MAX_BACKOFF.as_millis()
        ));
    }
    Ok(())
}

/// Returns whether `name` is an HTTP token (RFC 9110, section 5.6.2).
fn is_http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// Returns whether `value` is a header value without control characters.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|byte| byte == b'\t' || (byte >= 0x20 && byte != 0x7f))
}

/// An HTTP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl HttpMethod {
    /// Returns the method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exponential backoff between HTTP attempts: the delay starts at `initial` and doubles
/// after each retry, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the second attempt.
    pub initial: Duration,
    /// The maximum delay, at most [`MAX_BACKOFF`].
    pub max: Duration,
}

impl Backoff {
    /// Returns the delay before attempt `attempt + 1`, where `attempt` counts from 1.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// An MQTT quality of service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QoS {
    /// At most once (0).
    AtMostOnce,
    /// At least once (1).
    AtLeastOnce,
    /// Exactly once (2).
    ExactlyOnce,
}

impl TryFrom<u8> for QoS {
    type Error = Error;

    fn try_from(level: u8) -> Result<Self, Error> {
        match level {
            0 => Ok(Self::AtMostOnce),
            1 => Ok(Self::AtLeastOnce),
            2 => Ok(Self::ExactlyOnce),
            _ => Err(Error::InvalidQos { level }),
        }
    }
}

/// The write mode of a File Write step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Appends the content and a newline, creating the file when missing.
    Append,
    /// Replaces the file with the content.
    Overwrite,
}

/// The level of a Log step's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Information.
    Info,
    /// Debugging detail.
    Debug,
}

/// Checks a rendered File Write path and returns it as a relative path.
///
/// # Errors
///
/// [`Error::InvalidFilePath`] when the path is empty, absolute, contains a `..`
/// component, a NUL byte or a backslash, or ends with `/`.
pub fn check_relative_path(rendered: &str) -> Result<PathBuf, Error> {
    let invalid = |rule: &'static str| Error::InvalidFilePath {
        path: rendered.to_owned(),
        rule,
    };
    if rendered.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if rendered.contains(['\0', '\\']) {
        return Err(invalid("the path contains a NUL byte or a backslash"));
    }
    let path = Path::new(rendered);
    for component in path.components() {
        match component {
            PathComponent::Normal(_) | PathComponent::CurDir => {}
            PathComponent::ParentDir => return Err(invalid("the path contains `..`")),
            PathComponent::RootDir | PathComponent::Prefix(_) => {
                return Err(invalid("the path is absolute"));
            }
        }
    }
    if rendered.ends_with('/') {
        return Err(invalid("the path names a directory"));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests;
