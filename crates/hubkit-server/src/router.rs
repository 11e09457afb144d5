//! Dispatch of requests to handlers, with per-request metrics and logging.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tracing::debug;

use crate::api;
use crate::body::{ResponseBody, full};
use crate::problem::Problem;
use crate::state::AppState;
use crate::webhook::{self, WEBHOOK_PREFIX};

/// The hyper service of one connection: every request goes to [`route`].
#[derive(Clone)]
pub(crate) struct HubService {
    state: Arc<AppState>,
    remote: SocketAddr,
}

impl HubService {
    pub(crate) fn new(state: Arc<AppState>, remote: SocketAddr) -> HubService {
        HubService { state, remote }
    }
}

impl hyper::service::Service<Request<Incoming>> for HubService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let HubService { state, remote } = self.clone();
        Box::pin(async move { Ok(route(&state, request, remote).await) })
    }
}

/// Routes one request and counts it.
pub(crate) async fn route(
    state: &Arc<AppState>,
    request: Request<Incoming>,
    remote: SocketAddr,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (response, endpoint) = dispatch(state, request, remote, &path).await;
    let status = response.status().as_u16();
    state.metrics.count_request(&endpoint, status);
    debug!(
        peer.addr = %remote,
        http.method = %method,
        http.endpoint = %endpoint,
        http.status = status,
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn dispatch(
    state: &Arc<AppState>,
    request: Request<Incoming>,
    remote: SocketAddr,
    path: &str,
) -> (Response<ResponseBody>, String) {
    if let Some(custom_path) = path.strip_prefix(WEBHOOK_PREFIX) {
        return webhook::handle(state, request, remote, custom_path).await;
    }
    let endpoint = match path {
        "/healthz"
        | "/metrics"
        | "/api/v1/records"
        | "/api/v1/records/stream"
        | "/api/v1/webhooks" => path.to_owned(),
        _ => {
            return (
                Problem::route_not_found(path).into_response(),
                "unknown".into(),
            );
        }
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
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

fn healthz() -> Response<ResponseBody> {
    let mut response = Response::new(full(&b"{\"status\":\"ok\"}"[..]));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn metrics(state: &AppState) -> Response<ResponseBody> {
    let mut response = Response::new(full(state.metrics.encode()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
