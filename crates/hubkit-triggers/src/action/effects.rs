//! The I/O that action steps need, behind a trait.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{HttpMethod, LogLevel, QoS};

/// The I/O of action steps: HTTP, MQTT, files, logging, waiting and the clock.
///
/// The runner awaits each future to completion before it starts the next, so an
/// implementation may use any async runtime. Errors are plain text, stored in the step's
/// record as they are.
pub trait Effects {
    /// Sends one HTTP request and returns its response. It must give up after
    /// `request.timeout` and should cap the size of the body it reads, because the body
    /// becomes the next step's payload. An `Err` is a transport failure or a timeout, and
    /// the runner retries it.
    fn http(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, String>> + Send;

    /// Publishes one MQTT message through the configured broker named `broker`.
    fn publish(
        &self,
        broker: &str,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Writes `bytes` to `path`, relative to the folder of action files and already checked by
    /// [`super::check_relative_path`]. With `append` the bytes go at the end of the file,
    /// which is created when missing. Without it they replace the file.
    fn write_file(
        &self,
        path: &Path,
        bytes: &[u8],
        append: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Sends `message` to the log at `level`.
    fn log(&self, level: LogLevel, message: &str);

    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;

    /// Returns the current time of a monotonic clock, as a duration since any fixed point.
    fn now(&self) -> Duration;
}

/// An HTTP request with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The request method.
    pub method: HttpMethod,
    /// The URL.
    pub url: String,
    /// Header names and values, `Content-Type` included when there is a body.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// The timeout of this attempt.
    pub timeout: Duration,
    /// The PEM file of certificate authorities to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}
