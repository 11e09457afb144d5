//! The admin API over real HTTPS: listing with filters and cursors, CSV, the live stream,
//! metrics, reload and password hashes.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{SAMPLE, TestHub, WEBHOOKS, admin, config_text, parse, post_json};
use http::Method;
use http_body_util::BodyExt;

async fn post(hub: &TestHub, path: &str, body: &str) -> String {
    let response = post_json(hub, path, body.to_owned()).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()["DataId"]
        .as_str()
        .expect("DataId")
        .to_owned()
}

async fn api_get(hub: &TestHub, path: &str) -> hubkit_testkit::TestResponse {
    let (name, value) = admin();
    hub.client
        .get(path, &[(name, &value)])
        .await
        .expect("request")
}

#[tokio::test]
async fn cursor_pages_cover_every_record_once() {
    let hub = TestHub::start(WEBHOOKS).await;
    let mut posted = Vec::new();
    for index in 0..7 {
        posted.push(
            post(
                &hub,
                "/webhook/urls/sensor-data",
                &format!("{{\"n\": {index}}}"),
            )
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("/api/v1/records?limit=3&order=asc&cursor={cursor}"),
            None => "/api/v1/records?limit=3&order=asc".to_owned(),
        };
        let page = api_get(&hub, &query).await.json();
        for record in page["records"].as_array().expect("records") {
            seen.push(record["DataId"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, posted);
    hub.stop().await;
}

#[tokio::test]
async fn newest_first_by_default() {
    let hub = TestHub::start(WEBHOOKS).await;
    let first = post(&hub, "/webhook/urls/sensor-data", "{\"n\": 1}").await;
    let second = post(&hub, "/webhook/urls/sensor-data", "{\"n\": 2}").await;
    let page = api_get(&hub, "/api/v1/records").await.json();
    assert_eq!(page["records"][0]["DataId"], second.as_str());
    assert_eq!(page["records"][1]["DataId"], first.as_str());
    hub.stop().await;
}

#[tokio::test]
async fn filters_by_device_layer_area_and_time() {
    let hub = TestHub::start(WEBHOOKS).await;
    post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    post(&hub, "/webhook/urls/two/layers", SAMPLE).await;

    let cases = [
        ("device=sensor-data", 1),
        ("device=two-layers", 2),
        ("layer=Audit", 1),
        ("area=Office", 3),
        ("area=Lab", 0),
        ("since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z", 0),
        ("since=2000-01-01T00:00:00Z", 3),
    ];
    for (query, expected) in cases {
        let page = api_get(&hub, &format!("/api/v1/records?{query}"))
            .await
            .json();
        let found = page["records"].as_array().map_or(0, Vec::len);
        assert_eq!(found, expected, "{query}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn invalid_parameters_are_named() {
    let hub = TestHub::start(WEBHOOKS).await;
    for (query, fragment) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("order=sideways", "order"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("colour=red", "colour"),
        ("area=a&area=b", "area"),
        ("area=", "\"area\" is empty"),
        ("device=", "\"device\" is empty"),
        (
            "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "after until",
        ),
        ("since=2026-01-01T00:00:00+09:00", "%2B"),
    ] {
        let response = api_get(&hub, &format!("/api/v1/records?{query}")).await;
        assert_eq!(response.status, 400, "{query}");
        let problem = response.json();
        assert_eq!(
            problem["type"], "urn:hubkit:problem:invalid-parameter",
            "{query}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(fragment)),
            "{query}: {problem}"
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn csv_export_has_header_and_rows() {
    let hub = TestHub::start(WEBHOOKS).await;
    let id = post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    let (name, value) = admin();
    let response = hub
        .client
        .get("/api/v1/records", &[(name, &value), ("accept", "text/csv")])
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    assert!(response.header("content-type").starts_with("text/csv"));
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("Cursor,DataId,Timestamp"))
    );
    let row = lines.next().expect("one row");
    assert!(row.contains(&id), "{row}");
    assert!(row.contains("\"{\"\"temperature\"\":25.5"), "{row}");
    hub.stop().await;
}

#[tokio::test]
async fn unacceptable_accept_is_406() {
    let hub = TestHub::start(WEBHOOKS).await;
    let (name, value) = admin();
    let response = hub
        .client
        .get(
            "/api/v1/records",
            &[(name, &value), ("accept", "application/xml")],
        )
        .await
        .expect("request");
    assert_eq!(response.status, 406);
    hub.stop().await;
}

async fn next_event(body: &mut hyper::body::Incoming) -> String {
    let mut text = String::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("event within 5 s")
            .expect("stream open")
            .expect("frame");
        if let Some(data) = frame.data_ref() {
            text.push_str(&String::from_utf8_lossy(data));
        }
        if text.contains("event: record") && text.ends_with("\n\n") {
            return text;
        }
    }
}

#[tokio::test]
async fn stream_delivers_live_records() {
    let hub = TestHub::start(WEBHOOKS).await;
    let (name, value) = admin();
    let response = hub
        .client
        .open_stream(
            "/api/v1/records/stream?device=sensor-data",
            &[(name, &value)],
        )
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    // A record of another device must be filtered out.
    post(&hub, "/webhook/urls/two/layers", SAMPLE).await;
    let id = post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    let event = next_event(&mut body).await;
    assert!(event.contains(&id), "{event}");
    assert!(!event.contains("two-layers"), "{event}");
    drop(body);
    hub.stop().await;
}

#[tokio::test]
async fn stream_resumes_after_last_event_id() {
    let hub = TestHub::start(WEBHOOKS).await;
    post(&hub, "/webhook/urls/sensor-data", "{\"n\": 1}").await;
    let page = api_get(&hub, "/api/v1/records").await.json();
    let cursor = page["records"][0]["Cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let missed = post(&hub, "/webhook/urls/sensor-data", "{\"n\": 2}").await;
    let (name, value) = admin();
    let response = hub
        .client
        .open_stream(
            "/api/v1/records/stream",
            &[(name, &value), ("last-event-id", &cursor)],
        )
        .await
        .expect("stream");
    let mut body = response.into_body();
    let event = next_event(&mut body).await;
    assert!(event.contains(&missed), "{event}");
    drop(body);
    hub.stop().await;
}

#[tokio::test]
async fn stream_needs_token() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = hub
        .client
        .get("/api/v1/records/stream", &[])
        .await
        .expect("request");
    assert_eq!(response.status, 401);
    hub.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_and_commits() {
    let hub = TestHub::start(WEBHOOKS).await;
    post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    let _ = hub
        .client
        .get("/webhook/urls/nope", &[])
        .await
        .expect("request");
    let response = hub.client.get("/metrics", &[]).await.expect("metrics");
    assert_eq!(response.status, 200);
    let text = String::from_utf8_lossy(&response.body).into_owned();
    assert!(
        text.contains("hubkit_http_requests_total{endpoint=\"sensor-data\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("endpoint=\"unknown\",status=\"404\""),
        "{text}"
    );
    assert!(text.contains("hubkit_records_stored_total 1"), "{text}");
    assert!(
        text.contains("hubkit_store_commit_batch_records_count"),
        "{text}"
    );
    assert!(
        text.contains("hubkit_store_commit_duration_seconds_bucket"),
        "{text}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn webhooks_list_has_urls_and_no_secrets() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = api_get(&hub, "/api/v1/webhooks").await;
    assert_eq!(response.status, 200);
    let text = String::from_utf8_lossy(&response.body).into_owned();
    assert!(!text.contains("\"password\""), "{text}");
    let list = response.json();
    let basic = list["webhooks"]
        .as_array()
        .expect("list")
        .iter()
        .find(|w| w["name"] == "sensor-data-basic")
        .expect("basic webhook")
        .clone();
    assert_eq!(basic["authentication"], "basic");
    assert_eq!(
        basic["url"],
        format!("{}/webhook/urls/sensor-data-basic", hub.hub.base_url())
    );
    hub.stop().await;
}

#[tokio::test]
async fn reload_swaps_webhooks_atomically() {
    let hub = TestHub::start(WEBHOOKS).await;
    let extra = r#"
[[webhooks]]
name = "added-later"
custom_path = "added/later"
payload_format = "json"

[[bindings]]
webhook = "added-later"
area = "Office"
layer = "Webhooks"
"#;
    let text = config_text(hub.dir.path(), "", &format!("{WEBHOOKS}{extra}"));
    let before = post_json(&hub, "/webhook/urls/added/later", SAMPLE).await;
    assert_eq!(before.status, 404);
    hub.hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    post(&hub, "/webhook/urls/added/later", SAMPLE).await;
    post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    hub.stop().await;
}

#[tokio::test]
async fn reload_reports_restart_only_settings() {
    let hub = TestHub::start(WEBHOOKS).await;
    let text = config_text(
        hub.dir.path(),
        "[server.limits]\nmax_connections = 7\n",
        WEBHOOKS,
    );
    let warnings = hub
        .hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    assert!(
        warnings.iter().any(|w| w.contains("max_connections")),
        "{warnings:?}"
    );
    // The value in force is still the old one, so the same file warns again.
    let again = hub
        .hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    assert!(
        again.iter().any(|w| w.contains("max_connections")),
        "{again:?}"
    );
    let original = config_text(hub.dir.path(), "", WEBHOOKS);
    let back = hub
        .hub
        .reload(parse(hub.dir.path(), &original))
        .await
        .expect("reload");
    assert!(back.is_empty(), "{back:?}");
    hub.stop().await;
}

#[tokio::test]
async fn argon2_hash_password_is_accepted() {
    let hash = hubkit_endpoints::hash_password("correct horse").expect("hash");
    let body = format!(
        r#"
[[areas]]
name = "Office"
  [[areas.layers]]
  name = "Webhooks"
  kind = "webhook-json"

[[webhooks]]
name = "hashed"
custom_path = "hashed/hook"
payload_format = "json"
auth = {{ type = "basic", username = "device", password = "{hash}" }}

[[bindings]]
webhook = "hashed"
area = "Office"
layer = "Webhooks"
"#
    );
    let hub = TestHub::start(&body).await;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("device:correct horse")
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("device:wrong horse")
    );
    for (authorization, status) in [(&good, 200), (&bad, 401), (&good, 200), (&bad, 401)] {
        let response = hub
            .client
            .send(
                Method::POST,
                "/webhook/urls/hashed/hook",
                &[
                    ("content-type", "application/json"),
                    ("authorization", authorization),
                ],
                SAMPLE,
            )
            .await
            .expect("request");
        assert_eq!(response.status, status);
    }
    hub.stop().await;
}

#[tokio::test]
async fn certificate_is_reused_across_restarts() {
    let hub = TestHub::start(WEBHOOKS).await;
    let first = hub.hub.tls_fingerprint().expect("tls");
    let dir = hub.dir;
    hub.hub.shutdown(Duration::from_secs(5)).await;
    let text = config_text(dir.path(), "", WEBHOOKS);
    let again = TestHub::start_text(dir, &text).await;
    assert_eq!(again.hub.tls_fingerprint(), Some(first));
    again.stop().await;
}

#[tokio::test]
async fn bearer_token_parsing() {
    let hub = TestHub::start(WEBHOOKS).await;
    let token = common::TOKEN;
    for (header, status) in [
        (format!("Bearer {token}"), 200),
        (format!("bearer  {token} "), 200),
        ("Bearer ".to_owned(), 401),
        ("Bearer".to_owned(), 401),
        (format!("Basic {token}"), 401),
    ] {
        let response = hub
            .client
            .get("/api/v1/records", &[("authorization", &header)])
            .await
            .expect("request");
        assert_eq!(response.status, status, "{header:?}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn accept_text_wildcard_gives_csv() {
    let hub = TestHub::start(WEBHOOKS).await;
    let (name, value) = admin();
    let response = hub
        .client
        .get("/api/v1/records", &[(name, &value), ("accept", "text/*")])
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    assert!(response.header("content-type").starts_with("text/csv"));
    hub.stop().await;
}

#[tokio::test]
async fn webhooks_list_rejects_parameters() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = api_get(&hub, "/api/v1/webhooks?x=1").await;
    assert_eq!(response.status, 400);
    hub.stop().await;
}

#[tokio::test]
async fn stream_rejects_until() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = api_get(&hub, "/api/v1/records/stream?until=2026-01-01T00:00:00Z").await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json()["type"],
        "urn:hubkit:problem:invalid-parameter"
    );
    hub.stop().await;
}

#[tokio::test]
async fn stream_since_replays_stored_records() {
    let hub = TestHub::start(WEBHOOKS).await;
    let stored = post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    let (name, value) = admin();
    let response = hub
        .client
        .open_stream(
            "/api/v1/records/stream?since=2000-01-01T00:00:00Z",
            &[(name, &value)],
        )
        .await
        .expect("stream");
    let mut body = response.into_body();
    let event = next_event(&mut body).await;
    assert!(event.contains(&stored), "{event}");
    drop(body);
    hub.stop().await;
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let hub = TestHub::start(WEBHOOKS).await;
    let response = hub.client.get("/metrics", &[]).await.expect("metrics");
    assert!(
        response
            .header("content-type")
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{}",
        response.header("content-type")
    );
    assert!(String::from_utf8_lossy(&response.body).ends_with("# EOF\n"));
    hub.stop().await;
}

#[tokio::test]
async fn data_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let hub = TestHub::start(WEBHOOKS).await;
    post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    let mode = |path: std::path::PathBuf| {
        std::fs::metadata(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let data = hub.data_dir();
    assert_eq!(mode(data.clone()), 0o700);
    assert_eq!(mode(data.join("hubkit.db")), 0o600);
    assert_eq!(mode(data.join("hubkit.db-wal")), 0o600);
    assert_eq!(mode(data.join("tls/key.pem")), 0o600);
    hub.stop().await;
}

#[tokio::test]
async fn stream_resumes_after_cursor_beyond_newest() {
    let hub = TestHub::start(WEBHOOKS).await;
    post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    let (name, value) = admin();
    let response = hub
        .client
        .open_stream(
            "/api/v1/records/stream",
            &[(name, &value), ("last-event-id", "99999")],
        )
        .await
        .expect("stream");
    let mut body = response.into_body();
    let fresh = post(&hub, "/webhook/urls/sensor-data", SAMPLE).await;
    let event = next_event(&mut body).await;
    assert!(event.contains(&fresh), "{event}");
    drop(body);
    hub.stop().await;
}

#[tokio::test]
async fn stalled_stream_reader_is_dropped() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(
        dir.path(),
        "[server.limits]\nidle_timeout_ms = 300\n",
        WEBHOOKS,
    );
    let hub = TestHub::start_text(dir, &text).await;
    let request = format!(
        "GET /api/v1/records/stream HTTP/1.1\r\nhost: localhost\r\n\
         authorization: Bearer {}\r\n\r\n",
        common::TOKEN
    );
    let mut stream = hub
        .client
        .open_raw(request.as_bytes(), 4096)
        .await
        .expect("stream");

    // Fill the socket buffers while the client reads nothing.
    let padding = format!("{{\"pad\": \"{}\"}}", "x".repeat(8000));
    for _ in 0..200 {
        post(&hub, "/webhook/urls/sensor-data", &padding).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A dropped connection ends in EOF or a reset once the buffered bytes are read. A live
    // one would keep the read waiting for the next heartbeat.
    let mut buffer = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stalled stream was not dropped");
    hub.stop().await;
}

#[tokio::test]
async fn reload_without_webhooks_warns() {
    let hub = TestHub::start(WEBHOOKS).await;
    let empty = config_text(hub.dir.path(), "", "");
    let warnings = hub
        .hub
        .reload(parse(hub.dir.path(), &empty))
        .await
        .expect("reload");
    assert!(
        warnings.iter().any(|w| w.contains("defines no webhooks")),
        "{warnings:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn failed_tls_start_creates_no_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let tls = format!("[server.tls]\nmode = \"files\"\ncert = {missing:?}\nkey = {missing:?}\n");
    let text = format!("{}\n{tls}", config_text(dir.path(), "", WEBHOOKS));
    let options = hubkit_server::HubOptions {
        admin_token_env: Some(common::TOKEN.to_owned()),
    };
    let result = hubkit_server::Hub::start(parse(dir.path(), &text), options).await;
    assert!(
        matches!(result, Err(hubkit_server::StartError::Tls(_))),
        "start must fail at TLS setup"
    );
    let database = dir.path().join("data").join(hubkit_server::DATABASE_FILE);
    assert!(!database.exists(), "{} was created", database.display());
}
