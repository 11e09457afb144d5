//! Webhook ingest over real HTTPS: the source document's curl examples and a table of bad
//! inputs, each checked against the status, the problem type, the store and the hub's
//! health afterwards.

mod common;

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use common::{SAMPLE, TestHub, WEBHOOKS, admin, post_json};
use http::Method;

fn basic(user_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

/// Posts the sample to the Basic-authenticated webhook with an `Authorization` value.
async fn post_basic(hub: &TestHub, authorization: &str) -> hubkit_testkit::TestResponse {
    hub.client
        .send(
            Method::POST,
            "/webhook/urls/sensor-data-basic",
            &[
                ("content-type", "application/json"),
                ("authorization", authorization),
            ],
            SAMPLE,
        )
        .await
        .expect("request")
}

async fn records(hub: &TestHub, query: &str) -> serde_json::Value {
    let (name, value) = admin();
    let response = hub
        .client
        .get(&format!("/api/v1/records{query}"), &[(name, &value)])
        .await
        .expect("records request");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()
}

#[tokio::test]
async fn json_post_is_stored_and_listed() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = post_json(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    assert_eq!(response.status, 200);
    let data_id = response.json()["DataId"]
        .as_str()
        .expect("DataId")
        .to_owned();
    assert_eq!(data_id.len(), 32);

    let listed = records(&hub, "?device=sensor-data").await;
    let record = &listed["records"][0];
    assert_eq!(record["DataId"], data_id.as_str());
    assert_eq!(record["Data"]["temperature"], 25.5);
    assert_eq!(record["Data"]["humidity"], 60);
    assert_eq!(record["AreaName"], "Office");
    assert_eq!(record["LayerName"], "Webhooks");
    assert_eq!(record["KindName"], "Webhook-JSON");
    assert_eq!(record["PhysicalDeviceName"], "sensor-data");
    assert_eq!(record["PhysicalDeviceId"].as_str().map(str::len), Some(12));
    assert_eq!(record["DataType"], "json");
    assert_eq!(record["Transport"]["Method"], "POST");
    assert_eq!(record["Transport"]["ContentType"], "application/json");
    assert!(
        record["Timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 30),
        "timestamp {}",
        record["Timestamp"]
    );
    assert_eq!(hub.stored_rows(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn basic_auth_post_is_stored() {
    let hub = TestHub::start(WEBHOOKS).await;
    let authorization = basic("username:password");
    let response = post_basic(&hub, &authorization).await;
    assert_eq!(response.status, 200);
    let listed = records(&hub, "?device=sensor-data-basic").await;
    assert_eq!(listed["records"][0]["Data"]["humidity"], 60);
    hub.stop().await;
}

#[tokio::test]
async fn query_params_get_is_stored_as_strings() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = hub
        .client
        .get(
            "/webhook/urls/sensor-data-query?temperature=25.5&humidity=60",
            &[],
        )
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    let listed = records(&hub, "?device=sensor-data-query").await;
    let data = &listed["records"][0]["Data"];
    assert_eq!(data["temperature"], "25.5");
    assert_eq!(data["humidity"], "60");
    hub.stop().await;
}

#[tokio::test]
async fn query_repeated_keys_and_encoding() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = hub
        .client
        .get(
            "/webhook/urls/sensor-data-query?name=caf%C3%A9&tag=a&tag=b&note=hello+world",
            &[],
        )
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    let listed = records(&hub, "").await;
    let data = &listed["records"][0]["Data"];
    assert_eq!(data["name"], "café");
    assert_eq!(data["tag"], serde_json::json!(["a", "b"]));
    assert_eq!(data["note"], "hello world");
    hub.stop().await;
}

#[tokio::test]
async fn json_numbers_keep_their_digits() {
    let hub = TestHub::start(WEBHOOKS).await;
    let body = r#"{"big":123456789012345678901234567890,"low":-9223372036854775809,"e":1E2,"huge":1e400,"f":25.5}"#;
    let response = post_json(&hub, "/webhook/urls/sensor-data", body).await;
    assert_eq!(response.status, 200);
    let (name, value) = admin();
    let listed = hub
        .client
        .get("/api/v1/records", &[(name, &value)])
        .await
        .expect("records request");
    let text = String::from_utf8_lossy(&listed.body).into_owned();
    assert!(text.contains(r#""Data":{"big":123456789012345678901234567890,"low":-9223372036854775809,"e":1e+2,"huge":1e+400,"f":25.5}"#), "{text}");
    hub.stop().await;
}

#[tokio::test]
async fn two_bindings_make_two_records() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = post_json(&hub, "/webhook/urls/two/layers", SAMPLE).await;
    assert_eq!(response.status, 200);
    let ids = response.json()["DataIds"].as_array().expect("ids").len();
    assert_eq!(ids, 2);
    assert_eq!(hub.stored_rows(), 2);
    let audit = records(&hub, "?layer=Audit").await;
    assert_eq!(audit["records"].as_array().map(Vec::len), Some(1));
    hub.stop().await;
}

#[tokio::test]
async fn http2_post_is_stored() {
    let hub = TestHub::start(WEBHOOKS).await;
    let client = hub.client.with_http2();
    let response = client
        .send(
            Method::POST,
            "/webhook/urls/sensor-data",
            &[("content-type", "application/json")],
            SAMPLE,
        )
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    assert_eq!(hub.stored_rows(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn request_head_limit_is_same_for_both_versions() {
    let hub = TestHub::start(WEBHOOKS).await;
    let path = format!("/webhook/urls/sensor-data-query?a={}", "x".repeat(60_000));
    for client in [hub.client.clone(), hub.client.with_http2()] {
        let response = client.get(&path, &[]).await.expect("request");
        assert_eq!(
            response.status, 200,
            "a 60 KB query fits the 64 KiB head limit"
        );
    }
    assert_eq!(hub.stored_rows(), 2);

    // The http crate's Uri rejects this length, so the request is written by hand.
    let raw = format!(
        "GET /webhook/urls/sensor-data-query?a={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "x".repeat(70_000)
    );
    let response = hub
        .client
        .send_raw(raw.as_bytes(), Duration::from_secs(2))
        .await
        .expect("request");
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 414 "),
        "HTTP/1.1 rejects a 70 KB request line: {}",
        response.chars().take(200).collect::<String>()
    );
    assert_eq!(hub.stored_rows(), 2);
    hub.stop().await;
}

/// One bad request and what must come back.
struct BadCase {
    name: &'static str,
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
    status: u16,
    problem: &'static str,
}

fn case(
    name: &'static str,
    method: Method,
    path: &'static str,
    headers: &[(&'static str, &str)],
    body: &'static [u8],
    status: u16,
    problem: &'static str,
) -> BadCase {
    BadCase {
        name,
        method,
        path,
        headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        body,
        status,
        problem,
    }
}

fn bad_cases() -> Vec<BadCase> {
    let json = [("content-type", "application/json")];
    let wrong_password = basic("username:wrongpass");
    let wrong_user = basic("someone:password");
    let no_colon = basic("usernamepassword");
    vec![
        case(
            "unknown path",
            Method::POST,
            "/webhook/urls/no-such-hook",
            &json,
            b"{}",
            404,
            "webhook-not-found",
        ),
        case(
            "path differs in case",
            Method::POST,
            "/webhook/urls/Sensor-Data",
            &json,
            b"{}",
            404,
            "webhook-not-found",
        ),
        case(
            "trailing slash",
            Method::POST,
            "/webhook/urls/sensor-data/",
            &json,
            b"{}",
            404,
            "webhook-not-found",
        ),
        case(
            "empty custom path",
            Method::POST,
            "/webhook/urls/",
            &json,
            b"{}",
            404,
            "webhook-not-found",
        ),
        case(
            "percent-encoded path",
            Method::POST,
            "/webhook/urls/sensor%2Ddata",
            &json,
            b"{}",
            404,
            "webhook-not-found",
        ),
        case(
            "disabled webhook",
            Method::POST,
            "/webhook/urls/disabled/hook",
            &json,
            b"{}",
            404,
            "webhook-not-found",
        ),
        case(
            "unbound webhook",
            Method::POST,
            "/webhook/urls/unbound/hook",
            &json,
            b"{}",
            404,
            "webhook-not-bound",
        ),
        case(
            "GET on json webhook",
            Method::GET,
            "/webhook/urls/sensor-data",
            &[],
            b"",
            405,
            "method-not-allowed",
        ),
        case(
            "PUT on json webhook",
            Method::PUT,
            "/webhook/urls/sensor-data",
            &json,
            b"{}",
            405,
            "method-not-allowed",
        ),
        case(
            "POST on query webhook",
            Method::POST,
            "/webhook/urls/sensor-data-query",
            &json,
            b"{}",
            405,
            "method-not-allowed",
        ),
        case(
            "basic missing",
            Method::POST,
            "/webhook/urls/sensor-data-basic",
            &json,
            b"{}",
            401,
            "unauthorized",
        ),
        case(
            "basic wrong password",
            Method::POST,
            "/webhook/urls/sensor-data-basic",
            &[
                ("content-type", "application/json"),
                ("authorization", &wrong_password),
            ],
            b"{}",
            401,
            "unauthorized",
        ),
        case(
            "basic wrong user",
            Method::POST,
            "/webhook/urls/sensor-data-basic",
            &[
                ("content-type", "application/json"),
                ("authorization", &wrong_user),
            ],
            b"{}",
            401,
            "unauthorized",
        ),
        case(
            "basic without colon",
            Method::POST,
            "/webhook/urls/sensor-data-basic",
            &[
                ("content-type", "application/json"),
                ("authorization", &no_colon),
            ],
            b"{}",
            401,
            "unauthorized",
        ),
        case(
            "basic bad base64",
            Method::POST,
            "/webhook/urls/sensor-data-basic",
            &[
                ("content-type", "application/json"),
                ("authorization", "Basic !!!"),
            ],
            b"{}",
            401,
            "unauthorized",
        ),
        case(
            "bearer on basic webhook",
            Method::POST,
            "/webhook/urls/sensor-data-basic",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer abc"),
            ],
            b"{}",
            401,
            "unauthorized",
        ),
        case(
            "invalid json",
            Method::POST,
            "/webhook/urls/sensor-data",
            &json,
            b"{\"temperature\": }",
            400,
            "invalid-json",
        ),
        case(
            "trailing garbage",
            Method::POST,
            "/webhook/urls/sensor-data",
            &json,
            b"{} {}",
            400,
            "invalid-json",
        ),
        case(
            "empty body",
            Method::POST,
            "/webhook/urls/sensor-data",
            &json,
            b"",
            400,
            "empty-body",
        ),
        case(
            "body not utf-8",
            Method::POST,
            "/webhook/urls/sensor-data",
            &json,
            b"{\"a\": \"\xff\"}",
            400,
            "invalid-utf8",
        ),
        case(
            "latin-1 charset",
            Method::POST,
            "/webhook/urls/sensor-data",
            &[("content-type", "application/json; charset=iso-8859-1")],
            b"{}",
            415,
            "unsupported-charset",
        ),
        case(
            "gzip body",
            Method::POST,
            "/webhook/urls/sensor-data",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            b"{}",
            415,
            "unsupported-content-encoding",
        ),
        case(
            "text/plain with files off",
            Method::POST,
            "/webhook/urls/json/only",
            &[("content-type", "text/plain")],
            b"{}",
            415,
            "file-reception-disabled",
        ),
        case(
            "no content type with files off",
            Method::POST,
            "/webhook/urls/json/only",
            &[],
            b"{}",
            415,
            "file-reception-disabled",
        ),
        case(
            "garbage content type with files off",
            Method::POST,
            "/webhook/urls/json/only",
            &[("content-type", "///")],
            b"{}",
            415,
            "file-reception-disabled",
        ),
        case(
            "json with empty charset",
            Method::POST,
            "/webhook/urls/sensor-data",
            &[("content-type", "application/json; charset=")],
            b"{}",
            415,
            "invalid-content-type",
        ),
        case(
            "multipart form",
            Method::POST,
            "/webhook/urls/sensor-data",
            &[("content-type", "multipart/form-data; boundary=x")],
            b"--x--",
            415,
            "multipart-not-supported",
        ),
        case(
            "over webhook limit",
            Method::POST,
            "/webhook/urls/small/hook",
            &json,
            &[b' '; 100],
            413,
            "payload-too-large",
        ),
        case(
            "query invalid utf-8",
            Method::GET,
            "/webhook/urls/sensor-data-query?t=%FF",
            &[],
            b"",
            400,
            "invalid-utf8",
        ),
        case(
            "unknown route",
            Method::GET,
            "/nothing-here",
            &[],
            b"",
            404,
            "not-found",
        ),
        case(
            "records without token",
            Method::GET,
            "/api/v1/records",
            &[],
            b"",
            401,
            "unauthorized",
        ),
        case(
            "records wrong token",
            Method::GET,
            "/api/v1/records",
            &[("authorization", "Bearer wrong")],
            b"",
            401,
            "unauthorized",
        ),
        case(
            "records basic scheme",
            Method::GET,
            "/api/v1/records",
            &[("authorization", "Basic abc")],
            b"",
            401,
            "unauthorized",
        ),
        case(
            "records POST",
            Method::POST,
            "/api/v1/records",
            &[],
            b"",
            405,
            "method-not-allowed",
        ),
    ]
}

#[tokio::test]
async fn bad_inputs_get_problems_and_store_nothing() {
    let hub = TestHub::start(WEBHOOKS).await;
    for case in bad_cases() {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = hub
            .client
            .send(
                case.method.clone(),
                case.path,
                &headers,
                Bytes::from_static(case.body),
            )
            .await
            .unwrap_or_else(|err| panic!("{}: request failed: {err}", case.name));
        assert_eq!(
            response.status,
            case.status,
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(
            response.header("content-type"),
            "application/problem+json",
            "{}",
            case.name
        );
        let problem = response.json();
        assert_eq!(
            problem["type"],
            format!("urn:hubkit:problem:{}", case.problem),
            "{}: {problem}",
            case.name
        );
        assert_eq!(problem["status"], case.status, "{}", case.name);
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            case.name
        );
        assert_eq!(hub.stored_rows(), 0, "{}: something was stored", case.name);
        let health = hub.client.get("/healthz", &[]).await.expect("healthz");
        assert_eq!(
            health.status, 200,
            "{}: hub unhealthy afterwards",
            case.name
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn wrong_method_names_format_and_allow() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = hub
        .client
        .get("/webhook/urls/sensor-data", &[])
        .await
        .expect("request");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), "POST");
    let detail = response.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("json"), "{detail}");
    assert!(detail.contains("POST"), "{detail}");
    assert!(detail.contains("GET"), "{detail}");
    hub.stop().await;
}

#[tokio::test]
async fn unauthorized_has_basic_challenge() {
    let hub = TestHub::start(WEBHOOKS).await;
    let authorization = basic("username:s3cret-guess");
    let response = post_basic(&hub, &authorization).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        "Basic realm=\"hubkit\", charset=\"UTF-8\""
    );
    let body = String::from_utf8_lossy(&response.body).into_owned();
    assert!(!body.contains("s3cret-guess"), "{body}");
    assert!(!body.contains(&authorization[6..]), "{body}");
    hub.stop().await;
}

#[tokio::test]
async fn invalid_json_detail_has_line_and_column() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = post_json(
        &hub,
        "/webhook/urls/sensor-data",
        "{\n  \"temperature\": 25.5,\n  \"humidity\": \n}",
    )
    .await;
    assert_eq!(response.status, 400);
    let detail = response.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("line 4"), "{detail}");
    assert!(detail.contains("column"), "{detail}");
    hub.stop().await;
}

#[tokio::test]
async fn json_media_type_ignores_case_and_charset() {
    let hub = TestHub::start(WEBHOOKS).await;
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.hubkit+json",
    ] {
        let response = hub
            .client
            .send(
                Method::POST,
                "/webhook/urls/sensor-data",
                &[("content-type", content_type)],
                SAMPLE,
            )
            .await
            .expect("request");
        assert_eq!(response.status, 200, "{content_type}");
    }
    assert_eq!(hub.stored_rows(), 3);
    hub.stop().await;
}

#[tokio::test]
async fn chunked_body_over_limit_is_413() {
    let hub = TestHub::start(WEBHOOKS).await;
    // 10 chunks of 16 bytes exceed the 64-byte limit of small-hook; no Content-Length.
    let mut raw = String::from(
        "POST /webhook/urls/small/hook HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    for _ in 0..10 {
        raw.push_str("10\r\n                \r\n");
    }
    raw.push_str("0\r\n\r\n");
    let reply = hub
        .client
        .send_raw(raw.as_bytes(), Duration::from_secs(2))
        .await
        .expect("raw request");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("payload-too-large"), "{reply}");
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn chunked_body_within_limit_is_stored() {
    let hub = TestHub::start(WEBHOOKS).await;
    let raw = "POST /webhook/urls/sensor-data HTTP/1.1\r\nhost: localhost\r\n\
               content-type: application/json\r\ntransfer-encoding: chunked\r\n\
               connection: close\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n";
    let reply = hub
        .client
        .send_raw(raw.as_bytes(), Duration::from_secs(2))
        .await
        .expect("raw request");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(hub.stored_rows(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn content_length_over_limit_is_413_before_reading() {
    let hub = TestHub::start(WEBHOOKS).await;
    // The body is never sent: the response must come from the Content-Length alone.
    let raw = "POST /webhook/urls/small/hook HTTP/1.1\r\nhost: localhost\r\n\
               content-type: application/json\r\ncontent-length: 1000000\r\n\r\n";
    let reply = hub
        .client
        .send_raw(raw.as_bytes(), Duration::from_secs(2))
        .await
        .expect("raw request");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    hub.stop().await;
}

#[tokio::test]
async fn basic_auth_checked_before_body_is_read() {
    let hub = TestHub::start(WEBHOOKS).await;
    // A declared body that never arrives: a 401 proves the body was not awaited.
    let raw = "POST /webhook/urls/sensor-data-basic HTTP/1.1\r\nhost: localhost\r\n\
               content-type: application/json\r\ncontent-length: 50\r\n\r\n";
    let reply = hub
        .client
        .send_raw(raw.as_bytes(), Duration::from_secs(2))
        .await
        .expect("raw request");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    hub.stop().await;
}

#[tokio::test]
async fn malformed_request_line_gets_400_not_crash() {
    let hub = TestHub::start(WEBHOOKS).await;
    let reply = hub
        .client
        .send_raw(b"GARBAGE\r\n\r\n", Duration::from_secs(2))
        .await
        .expect("raw request");
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
        "{reply}"
    );
    let health = hub.client.get("/healthz", &[]).await.expect("healthz");
    assert_eq!(health.status, 200);
    hub.stop().await;
}

#[tokio::test]
async fn repeated_basic_requests_use_cache() {
    let hub = TestHub::start(WEBHOOKS).await;
    let authorization = basic("username:password");
    for _ in 0..20 {
        let response = post_basic(&hub, &authorization).await;
        assert_eq!(response.status, 200);
    }
    assert_eq!(hub.stored_rows(), 20);
    hub.stop().await;
}

#[tokio::test]
async fn duplicate_content_type_is_rejected() {
    let hub = TestHub::start(WEBHOOKS).await;
    let raw = "POST /webhook/urls/sensor-data HTTP/1.1\r\nhost: localhost\r\n\
               content-type: application/json\r\ncontent-type: text/plain\r\n\
               content-length: 2\r\nconnection: close\r\n\r\n{}";
    let reply = hub
        .client
        .send_raw(raw.as_bytes(), Duration::from_secs(2))
        .await
        .expect("raw request");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("duplicate-content-type"), "{reply}");
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn json_webhook_keeps_query_string() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = post_json(&hub, "/webhook/urls/sensor-data?token=abc&site=7", SAMPLE).await;
    assert_eq!(response.status, 200);
    let listed = records(&hub, "").await;
    assert_eq!(
        listed["records"][0]["Transport"]["Query"],
        "token=abc&site=7"
    );
    hub.stop().await;
}

#[tokio::test]
async fn http2_early_error_reaches_client() {
    let hub = TestHub::start(WEBHOOKS).await;
    let client = hub.client.with_http2();
    let response = client
        .send(
            Method::POST,
            "/webhook/urls/no-such-hook",
            &[("content-type", "application/json")],
            SAMPLE,
        )
        .await
        .expect("request");
    assert_eq!(response.status, 404);
    assert_eq!(
        response.json()["type"],
        "urn:hubkit:problem:webhook-not-found"
    );
    hub.stop().await;
}

#[tokio::test]
async fn head_has_no_body_on_http2() {
    let hub = TestHub::start(WEBHOOKS).await;
    let client = hub.client.with_http2();
    let response = client
        .send(Method::HEAD, "/healthz", &[], Bytes::new())
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    hub.stop().await;
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::config_text(
        dir.path(),
        "[server.limits]\nidle_timeout_ms = 200\nheader_read_timeout_ms = 60000\n",
        WEBHOOKS,
    );
    let hub = TestHub::start_text(dir, &text).await;
    let started = std::time::Instant::now();
    // Nothing is sent, so only the idle check can end the connection before the wait.
    let reply = hub
        .client
        .send_raw(b"", Duration::from_secs(5))
        .await
        .expect("connection");
    let elapsed = started.elapsed();
    assert!(reply.is_empty());
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    hub.stop().await;
}

#[tokio::test]
async fn query_webhook_rejects_body() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = hub
        .client
        .send(
            Method::GET,
            "/webhook/urls/sensor-data-query?temperature=25.5",
            &[("content-type", "application/json")],
            SAMPLE,
        )
        .await
        .expect("request");
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json()["type"],
        "urn:hubkit:problem:unexpected-body"
    );
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn duplicate_authorization_is_rejected() {
    let hub = TestHub::start(WEBHOOKS).await;
    let good = basic("username:password");
    let bad = basic("foo:barbazqux");
    for path in ["/webhook/urls/sensor-data-basic", "/api/v1/records"] {
        let raw = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             authorization: {good}\r\nauthorization: {bad}\r\n\
             content-length: 2\r\nconnection: close\r\n\r\n{{}}"
        );
        let raw = if path.starts_with("/api") {
            raw.replacen("POST", "GET", 1)
        } else {
            raw
        };
        let reply = hub
            .client
            .send_raw(raw.as_bytes(), Duration::from_secs(2))
            .await
            .expect("raw request");
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 400"), "{path}: {reply}");
        assert!(reply.contains("duplicate-authorization"), "{path}: {reply}");
    }
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}
