//! Dispatch of requests to handlers, with per-request metrics and logging.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::body::Incoming;
use tracing::debug;

use crate::api;
use crate::body::{ResponseBody, full};
use crate::files_api::{self, FILES_PREFIX};
use crate::problem::Problem;
use crate::state::AppState;
use crate::webhook::{self, WEBHOOK_PREFIX};

/// The hyper service of one connection: every request goes to [`route`].
#[derive(Clone)]
pub(crate) struct HubService {
    state: Arc<AppState>,
    remote: SocketAddr,
    /// `remote` as text, formatted once per connection for the records it makes.
    remote_text: Arc<str>,
}

impl HubService {
    pub(crate) fn new(state: Arc<AppState>, remote: SocketAddr) -> HubService {
        HubService {
            state,
            remote,
            remote_text: remote.to_string().into(),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for HubService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let HubService {
            state,
            remote,
            remote_text,
        } = self.clone();
        Box::pin(async move { Ok(route(&state, request, remote, &remote_text).await) })
    }
}

/// Largest request body read and discarded after an early error response.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Time allowed for that discarding.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest pause between two parts of a body being discarded. A client that declared a
/// body and does not send it gets its response after this pause, not after
/// [`DRAIN_TIMEOUT`].
const DRAIN_IDLE: Duration = Duration::from_millis(500);

/// Routes one request and counts it.
pub(crate) async fn route(
    state: &Arc<AppState>,
    request: Request<Incoming>,
    remote: SocketAddr,
    remote_text: &str,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let mut body = Some(body);
    let (mut response, endpoint) = dispatch(state, &parts, &mut body, remote_text).await;
    let status = response.status();
    if let Some(body) = body
        && status.as_u16() >= 400
        && !body.is_end_stream()
    {
        finish_unread_body(parts.version, &parts.headers, status, body, &mut response).await;
    }
    if parts.method == Method::HEAD {
        // HTTP/2 forbids a body in the response to HEAD, and HTTP/1.1 clients ignore it.
        *response.body_mut() = full(Bytes::new());
    }
    debug!(
        peer.addr = %remote,
        http.method = %parts.method,
        http.endpoint = %endpoint,
        http.status = status.as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    state.metrics.count_request(endpoint, status.as_u16());
    response
}

/// Deals with the unread body of a request that was rejected before its body was read,
/// such as a 401 challenge to a camera that sends credentials only when challenged.
///
/// When an HTTP/2 response ends before the request body, hyper resets the stream, and
/// some clients (curl 7.88) then report a framing error instead of the response. An
/// HTTP/1.1 connection with unread body bytes cannot carry another request, so hyper
/// closes it, and a client still sending may get a reset instead of the response. So a
/// small body is read and discarded first, which also keeps an HTTP/1.1 connection open
/// for the client's retry. After a 408 or 413, or when the body is larger than
/// [`DRAIN_LIMIT`] or slower than [`drain`] allows, an HTTP/1.1 response carries
/// `Connection: close` instead.
async fn finish_unread_body(
    version: Version,
    headers: &http::HeaderMap,
    status: StatusCode,
    body: Incoming,
    response: &mut Response<ResponseBody>,
) {
    // A client that sent `Expect: 100-continue` waits for `100 Continue` before it sends
    // the body, and reading the body would send that. Such a client gets the final status
    // without having sent the body, and on HTTP/1.1 the connection closes.
    let expects_continue = expects_continue(headers);
    if version == Version::HTTP_2 {
        if !expects_continue {
            drain(body).await;
        }
        return;
    }
    let give_up = expects_continue
        || matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        );
    let drained = !give_up && drain(body).await;
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Returns whether the client waits for `100 Continue` before it sends its body.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::EXPECT)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads and discards a request body of up to [`DRAIN_LIMIT`] bytes within
/// [`DRAIN_TIMEOUT`], with pauses of at most [`DRAIN_IDLE`], and returns whether it
/// reached the body's end.
async fn drain(mut body: Incoming) -> bool {
    let discard = async {
        let mut read: u64 = 0;
        loop {
            let frame = match tokio::time::timeout(DRAIN_IDLE, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => return true,
                Ok(Some(Err(_))) | Err(_) => return false,
            };
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
            }
            if read > DRAIN_LIMIT {
                return false;
            }
        }
    };
    tokio::time::timeout(DRAIN_TIMEOUT, discard)
        .await
        .unwrap_or(false)
}

async fn dispatch(
    state: &Arc<AppState>,
    request: &Parts,
    body: &mut Option<Incoming>,
    remote: &str,
) -> (Response<ResponseBody>, String) {
    let path = request.uri.path();
    if let Some(custom_path) = path.strip_prefix(WEBHOOK_PREFIX) {
        return webhook::handle(state, request, body, remote, custom_path).await;
    }
    if let Some(rest) = path.strip_prefix(hubkit_ipro::IPRO_PREFIX) {
        return crate::ipro::handle(state, request, body, remote, rest).await;
    }
    if let Some(file_path) = path.strip_prefix(FILES_PREFIX) {
        let response = match check_admin_read(state, request, "/api/v1/files/<path>") {
            Ok(()) => files_api::serve(state, request, file_path).await,
            Err(problem) => Err(problem),
        };
        let response = response.unwrap_or_else(Problem::into_response);
        return (response, "/api/v1/files".to_owned());
    }
    if let Some(id) = path.strip_prefix("/api/v1/camera-requests/") {
        let response = match check_admin_read(state, request, "/api/v1/camera-requests/<id>") {
            Ok(()) => crate::ipro::camera_request(state, id).await,
            Err(problem) => Err(problem),
        };
        let response = response.unwrap_or_else(Problem::into_response);
        return (response, "/api/v1/camera-requests".to_owned());
    }
    if let Some(rest) = path.strip_prefix("/api/v1/actions/") {
        let route = "/api/v1/actions/<name>/run";
        let response = match rest.strip_suffix("/run").filter(|name| !name.contains('/')) {
            Some(name) if !name.is_empty() => match api::check_admin(state, request) {
                Ok(()) => crate::actions::api::run(state, request, body, name).await,
                Err(problem) => Err(problem),
            },
            _ => Err(Problem::route_not_found(path)),
        };
        let response = response.unwrap_or_else(Problem::into_response);
        return (response, route.to_owned());
    }
    if let Some(id) = path.strip_prefix("/api/v1/action-runs/") {
        let route = "/api/v1/action-runs/<id>";
        let response = match check_admin_read(state, request, route) {
            Ok(()) => crate::actions::api::one(state, id, request.uri.query()).await,
            Err(problem) => Err(problem),
        };
        let response = response.unwrap_or_else(Problem::into_response);
        return (response, route.to_owned());
    }
    if let Some(rest) = path.strip_prefix("/api/v1/dead-letters/") {
        let route = "/api/v1/dead-letters/<id>/payload";
        let response = match check_admin_read(state, request, route) {
            Ok(()) => crate::mqtt_api::dead_letter_payload(state, rest).await,
            Err(problem) => Err(problem),
        };
        let response = response.unwrap_or_else(Problem::into_response);
        return (response, "/api/v1/dead-letters/payload".to_owned());
    }
    let endpoint = match path {
        "/healthz"
        | "/metrics"
        | "/api/v1/records"
        | "/api/v1/records/stream"
        | "/api/v1/webhooks"
        | "/api/v1/brokers"
        | "/api/v1/cameras"
        | "/api/v1/actions"
        | "/api/v1/action-runs"
        | "/api/v1/dead-letters" => path.to_owned(),
        _ => {
            return (
                Problem::route_not_found(path).into_response(),
                "unknown".into(),
            );
        }
    };
    if request.method != Method::GET && request.method != Method::HEAD {
        let problem =
            Problem::method_not_allowed("GET, HEAD", format!("{path} is read-only; use GET"));
        return (problem.into_response(), endpoint);
    }
    let response = match path {
        "/healthz" => healthz(),
        "/metrics" => metrics(state),
        _ => api::handle(state, request, path).await,
    };
    (response, endpoint)
}

/// Checks that a request to the read-only admin route `route` uses GET or HEAD and has the
/// admin token.
fn check_admin_read(state: &AppState, request: &Parts, route: &str) -> Result<(), Problem> {
    if request.method != Method::GET && request.method != Method::HEAD {
        return Err(Problem::method_not_allowed(
            "GET, HEAD",
            format!("{route} is read-only; use GET"),
        ));
    }
    api::check_admin(state, request)
}

fn healthz() -> Response<ResponseBody> {
    let mut response = Response::new(full(&b"{\"status\":\"ok\"}"[..]));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn metrics(state: &AppState) -> Response<ResponseBody> {
    let statuses: Vec<_> = state.brokers.load().iter().map(|s| s.snapshot()).collect();
    state.metrics.refresh_mqtt(&statuses);
    let mut response = Response::new(full(state.metrics.encode()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
