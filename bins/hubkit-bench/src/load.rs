//! The load generator: a fixed number of keep-alive HTTP/1.1-over-TLS connections on one
//! current-thread runtime, each sending requests back to back for a fixed time, like
//! `wrk -t1 -cN`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::prelude::{BASE64_STANDARD, Engine};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_rustls::TlsConnector;

use crate::format::format_latency;

/// Request body that the benchmark sends unless `--body` sets another.
pub const DEFAULT_BODY: &str = r#"{"temperature": 25.5, "humidity": 60}"#;
/// Time allowed for the TCP connect plus the TLS and HTTP handshakes of one connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time after the end of the run that a request still in flight may take before it counts
/// as an error.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed connect, so that a stopped server does not make the loop spin.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);
/// Largest latency that the histogram tracks exactly, in microseconds (60 s); larger values
/// are recorded as this value.
const MAX_TRACKED_MICROS: u64 = 60_000_000;

/// Command-line arguments of `hubkit-bench load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Target URL; the scheme must be https and the host 127.0.0.1, ::1 or localhost.
    #[arg(long)]
    pub url: String,
    /// Number of keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,
    /// Measured time in seconds, after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_secs: u64,
    /// Warm-up time in seconds, whose requests are not counted.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_secs: u64,
    /// Extra request header as `Name: value`; repeat for several. A Content-Type here replaces
    /// the default `application/json`.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long, default_value = DEFAULT_BODY)]
    pub body: String,
    /// Request method.
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// HTTP Basic credentials as `user:password`.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub basic: Option<String>,
}

/// Connection target: a loopback socket address and the TLS server name to present.
#[derive(Clone, Debug)]
pub struct Target {
    addr: SocketAddr,
    server_name: ServerName<'static>,
}

/// The request that every connection sends, built once and cloned per request.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    method: Method,
    path: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl RequestTemplate {
    /// Returns a new request with the template's method, path, headers and body.
    pub(crate) fn build(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// A complete load run: target, request and timing.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Connection target.
    pub target: Target,
    /// Request sent on every connection.
    pub request: RequestTemplate,
    /// Number of concurrent keep-alive connections.
    pub connections: u16,
    /// Time before the measured window whose requests are not counted.
    pub warmup: Duration,
    /// Length of the measured window.
    pub duration: Duration,
}

/// Results of the measured window of a load run.
#[derive(Debug)]
pub struct LoadReport {
    /// Responses of any status to requests started in the measured window.
    pub requests: u64,
    /// Length of the measured window.
    pub duration: Duration,
    /// Latency of each counted response, in microseconds.
    pub latency: Histogram<u64>,
    /// Responses whose status was not 2xx.
    pub non_2xx: u64,
    /// Status of the first non-2xx response, if any.
    pub first_non_2xx: Option<StatusCode>,
    /// Failed connects and requests without a complete response, outside the warm-up.
    pub errors: u64,
    /// Keep-alive connections that the server closed between requests in the measured window
    /// and that were reopened.
    pub reconnects: u64,
    /// Message of the first error, if any.
    pub first_error: Option<String>,
}

impl LoadReport {
    /// Returns a report with no requests for a measured window of `duration`.
    ///
    /// # Errors
    /// Fails only if hdrhistogram rejects the constant bounds (1 µs to 60 s, 3 significant
    /// figures), which hdrhistogram 7 accepts.
    pub fn empty(duration: Duration) -> anyhow::Result<Self> {
        let latency = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3)
            .context("histogram bounds 1 µs to 60 s at 3 significant figures are valid")?;
        Ok(LoadReport {
            requests: 0,
            duration,
            latency,
            non_2xx: 0,
            first_non_2xx: None,
            errors: 0,
            reconnects: 0,
            first_error: None,
        })
    }

    /// Adds `later`, a later measured window of the same target: the counts, the
    /// latencies and the window's length. The first non-2xx status and first error stay
    /// those of `self` when set.
    ///
    /// # Errors
    /// Fails only if the latency histograms have different bounds, which reports made by
    /// this module never have.
    pub fn append(&mut self, later: LoadReport) -> anyhow::Result<()> {
        self.duration += later.duration;
        merge(self, later)
    }

    /// Returns responses per second over the measured window.
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64()
    }

    /// Returns the latency at quantile `q` (0.0 to 1.0) in microseconds, 0 when nothing was
    /// recorded.
    pub fn latency_micros(&self, q: f64) -> u64 {
        if self.latency.is_empty() {
            return 0;
        }
        self.latency.value_at_quantile(q)
    }

    /// Returns the highest latency in microseconds, 0 when nothing was recorded.
    pub fn max_latency_micros(&self) -> u64 {
        if self.latency.is_empty() {
            return 0;
        }
        self.latency.max()
    }
}

/// Runs `hubkit-bench load`: parses the arguments, runs the load and prints the report.
///
/// # Errors
/// Fails on an invalid URL, header, method or credentials, or if the runtime cannot start.
pub fn run_cli(args: &LoadArgs) -> anyhow::Result<()> {
    let (target, uri) = parse_target(&args.url)?;
    let method = Method::from_bytes(args.method.as_bytes())
        .with_context(|| format!("method {:?} is not a valid HTTP method", args.method))?;
    let mut headers = HeaderMap::new();
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        headers.append(name, value);
    }
    if let Some(credentials) = &args.basic {
        headers.insert(AUTHORIZATION, basic_authorization(credentials)?);
    }
    let spec = LoadSpec {
        target,
        request: request_template(&uri, method, headers, Bytes::from(args.body.clone()))?,
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup_secs),
        duration: Duration::from_secs(args.duration_secs),
    };
    let report = run_load(&spec)?;
    print!("{}", render_report(&report));
    Ok(())
}

/// Parses an https URL whose host is a loopback name, returning the target and the URL.
///
/// # Errors
/// Fails if the URL does not parse, its scheme is not https, or its host is not 127.0.0.1,
/// ::1 or localhost.
pub fn parse_target(url: &str) -> anyhow::Result<(Target, Uri)> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("URL {url:?} is not a valid URL"))?;
    if uri.scheme_str() != Some("https") {
        bail!("URL {url:?} must use the https scheme");
    }
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(443);
    let Some(addr) = loopback_addr(host, port) else {
        bail!("URL host {host:?} is not allowed; it must be 127.0.0.1, ::1 or localhost");
    };
    let name = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let server_name = ServerName::try_from(name)
        .with_context(|| format!("URL host {host:?} is not a valid TLS server name"))?;
    Ok((Target { addr, server_name }, uri))
}

/// Returns the socket address for a loopback host name, or `None` for any other host.
pub fn loopback_addr(host: &str, port: u16) -> Option<SocketAddr> {
    let ip = match host.to_ascii_lowercase().as_str() {
        "127.0.0.1" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "::1" | "[::1]" => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses a `Name: value` header argument.
///
/// # Errors
/// Fails if the colon is missing or the name or value is not valid in HTTP.
pub fn parse_header(text: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let Some((name, value)) = text.split_once(':') else {
        bail!("header {text:?} has no colon; write it as Name:value");
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("header name {name:?} is not a valid HTTP header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .with_context(|| format!("header value {value:?} is not a valid HTTP header value"))?;
    Ok((name, value))
}

/// Returns the `Authorization` value for HTTP Basic credentials written as `user:password`.
///
/// # Errors
/// Fails if the colon is missing.
pub fn basic_authorization(credentials: &str) -> anyhow::Result<HeaderValue> {
    if !credentials.contains(':') {
        bail!("basic credentials have no colon; write them as user:password");
    }
    let encoded = BASE64_STANDARD.encode(credentials);
    HeaderValue::from_str(&format!("Basic {encoded}"))
        .context("base64 output is always a valid header value")
}

/// Builds the request template for `uri`: Host from the URL, and Content-Type
/// `application/json` when there is a body and `headers` sets no Content-Type.
///
/// # Errors
/// Fails if the URL has no path-and-query part that can stand alone.
pub fn request_template(
    uri: &Uri,
    method: Method,
    mut headers: HeaderMap,
    body: Bytes,
) -> anyhow::Result<RequestTemplate> {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let path: Uri = path_and_query
        .parse()
        .with_context(|| format!("URL path {path_and_query:?} is not a valid request target"))?;
    if let Some(authority) = uri.authority() {
        let host = HeaderValue::from_str(authority.as_str())
            .context("a parsed URL authority is always a valid header value")?;
        headers.insert(HOST, host);
    }
    if !body.is_empty() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(RequestTemplate {
        method,
        path,
        headers,
        body,
    })
}

/// Runs the load on a new current-thread runtime and returns the merged results.
///
/// # Errors
/// Fails if the runtime or the TLS client configuration cannot be set up; failed connections
/// and requests are counted in the report instead.
pub fn run_load(spec: &LoadSpec) -> anyhow::Result<LoadReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let connector = TlsConnector::from(crate::tls::accept_any_client_config()?);
    runtime.block_on(drive_all(spec, connector))
}

/// Sends one GET to `url` on a fresh connection and returns the response status.
///
/// # Errors
/// Fails if the URL is not allowed or the connection or request fails or times out.
pub fn probe(url: &str, limit: Duration) -> anyhow::Result<StatusCode> {
    let (target, uri) = parse_target(url)?;
    let template = request_template(&uri, Method::GET, HeaderMap::new(), Bytes::new())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let connector = TlsConnector::from(crate::tls::accept_any_client_config()?);
    runtime.block_on(async {
        let exchange = async {
            let mut sender = connect::<Empty<Bytes>>(&target, &connector).await?;
            let mut request = Request::new(Empty::new());
            *request.uri_mut() = template.path.clone();
            *request.headers_mut() = template.headers.clone();
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            anyhow::Ok(status)
        };
        timeout(limit, exchange)
            .await
            .with_context(|| format!("GET {url} timed out after {limit:?}"))?
    })
}

/// Time points shared by all connections of a run.
#[derive(Clone, Copy)]
struct Window {
    measure_start: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, at: Instant) -> bool {
        at >= self.measure_start && at < self.end
    }
}

async fn drive_all(spec: &LoadSpec, connector: TlsConnector) -> anyhow::Result<LoadReport> {
    let start = Instant::now();
    let window = Window {
        measure_start: start + spec.warmup,
        end: start + spec.warmup + spec.duration,
    };
    let shared = Arc::new((spec.target.clone(), spec.request.clone(), connector));
    let mut tasks = Vec::with_capacity(usize::from(spec.connections));
    for _ in 0..spec.connections {
        let shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let (target, request, connector) = &*shared;
            drive_connection(target, request, connector, window).await
        }));
    }
    let mut report = LoadReport::empty(spec.duration)?;
    for task in tasks {
        let stats = task.await.context("a connection task panicked")??;
        merge(&mut report, stats)?;
    }
    Ok(report)
}

/// Adds the counts and latencies of `stats`, measured in the same window, to `report`.
fn merge(report: &mut LoadReport, stats: LoadReport) -> anyhow::Result<()> {
    report.requests += stats.requests;
    report.non_2xx += stats.non_2xx;
    report.errors += stats.errors;
    report.reconnects += stats.reconnects;
    report.first_non_2xx = report.first_non_2xx.or(stats.first_non_2xx);
    report.first_error = report.first_error.take().or(stats.first_error);
    report
        .latency
        .add(&stats.latency)
        .context("histograms with equal bounds always add")
}

/// Sends requests back to back on one connection until the window ends, reopening the
/// connection whenever it breaks.
async fn drive_connection(
    target: &Target,
    template: &RequestTemplate,
    connector: &TlsConnector,
    window: Window,
) -> anyhow::Result<LoadReport> {
    let mut stats = LoadReport::empty(window.end - window.measure_start)?;
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < window.end {
        let sender = match connection.as_mut() {
            Some(sender) => sender,
            None => match connect(target, connector).await {
                Ok(sender) => connection.insert(sender),
                Err(err) => {
                    note_error(&mut stats, window, &err);
                    sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        if sender.ready().await.is_err() {
            if Instant::now() >= window.measure_start {
                stats.reconnects += 1;
            }
            connection = None;
            continue;
        }
        let started = Instant::now();
        let outcome = timeout_at(window.end + DRAIN_GRACE, exchange(sender, template)).await;
        match outcome {
            Ok(Ok(status)) if window.contains(started) => record(&mut stats, started, status),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                note_error(&mut stats, window, &err);
                connection = None;
            }
            Err(_) => {
                let err =
                    anyhow::anyhow!("request timed out {DRAIN_GRACE:?} after the end of the run");
                note_error(&mut stats, window, &err);
                connection = None;
            }
        }
    }
    Ok(stats)
}

fn record(stats: &mut LoadReport, started: Instant, status: StatusCode) {
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    stats.latency.saturating_record(micros.max(1));
    stats.requests += 1;
    if !status.is_success() {
        stats.non_2xx += 1;
        stats.first_non_2xx.get_or_insert(status);
    }
}

/// Counts an error unless it happens during the warm-up.
fn note_error(stats: &mut LoadReport, window: Window, err: &anyhow::Error) {
    if Instant::now() < window.measure_start {
        return;
    }
    stats.errors += 1;
    if stats.first_error.is_none() {
        stats.first_error = Some(format!("{err:#}"));
    }
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    template: &RequestTemplate,
) -> anyhow::Result<StatusCode> {
    let response = sender.send_request(template.build()).await?;
    let status = response.status();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(status)
}

/// Opens one HTTP/1.1-over-TLS connection to `target` and returns its request sender.
pub(crate) async fn connect<B>(
    target: &Target,
    connector: &TlsConnector,
) -> anyhow::Result<SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let handshake = async {
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = connector.connect(target.server_name.clone(), tcp).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            // A connection error also fails the pending request, which counts it.
            let _ = connection.await;
        });
        anyhow::Ok(sender)
    };
    timeout(CONNECT_TIMEOUT, handshake)
        .await
        .with_context(|| format!("connect to {} timed out", target.addr))?
        .with_context(|| format!("failed to connect to {}", target.addr))
}

/// Renders a load report as `name: value` lines.
pub fn render_report(report: &LoadReport) -> String {
    let mut lines = vec![
        format!("requests: {}", report.requests),
        format!("req/s: {:.0}", report.requests_per_sec()),
        format!(
            "latency p50: {}",
            format_latency(report.latency_micros(0.50))
        ),
        format!(
            "latency p90: {}",
            format_latency(report.latency_micros(0.90))
        ),
        format!(
            "latency p99: {}",
            format_latency(report.latency_micros(0.99))
        ),
        format!(
            "latency max: {}",
            format_latency(report.max_latency_micros())
        ),
        format!("non-2xx: {}", report.non_2xx),
        format!("errors: {}", report.errors),
        format!("reconnects: {}", report.reconnects),
    ];
    if let Some(status) = report.first_non_2xx {
        lines.push(format!("first non-2xx status: {status}"));
    }
    if let Some(err) = &report.first_error {
        lines.push(format!("first error: {err}"));
    }
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests;
