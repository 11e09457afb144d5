//! Replays the captured curl requests in `fixtures/http/` byte for byte over TLS into a
//! running hub, with only the request path pointed at the webhook each case is meant for.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{TestHub, WEBHOOKS};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/http")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Points the request line of a captured request at `webhook`, adding
/// `Connection: close` so the hub ends the connection after its response.
fn retarget(raw: &[u8], webhook: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let retargeted = text.replacen(
        "/webhook/urls/sensor-data",
        &format!("/webhook/urls/{webhook}"),
        1,
    );
    let head_end = retargeted.find("\r\n").expect("request line");
    let mut bytes = Vec::from(&retargeted.as_bytes()[..head_end + 2]);
    bytes.extend_from_slice(b"Connection: close\r\n");
    // Keep the original bytes after the request line: bodies may not be UTF-8.
    let original_head_end = raw
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .expect("request line");
    bytes.extend_from_slice(&raw[original_head_end + 2..]);
    bytes
}

#[tokio::test]
async fn captured_requests_get_expected_status() {
    let hub = TestHub::start(WEBHOOKS).await;
    let cases = [
        ("json-post.http", "sensor-data", 200),
        ("json-post-basic-auth.http", "sensor-data-basic", 200),
        ("query-get.http", "sensor-data-query", 200),
        ("json-post-chunked.http", "sensor-data", 200),
        ("query-repeated-keys.http", "sensor-data-query", 200),
        ("json-charset-utf8.http", "sensor-data", 200),
        ("json-bom.http", "sensor-data", 200),
        ("query-invalid-utf8.http", "sensor-data-query", 400),
        ("json-invalid.http", "sensor-data", 400),
        ("json-text-plain.http", "json/only", 415),
        ("json-no-content-type.http", "json/only", 415),
        ("basic-wrong-password.http", "sensor-data-basic", 401),
        ("basic-password-colon.http", "sensor-data-basic", 401),
    ];
    let mut stored = 0;
    for (file, webhook, status) in cases {
        let raw = retarget(&fixture(file), webhook);
        let reply = hub
            .client
            .send_raw(&raw, Duration::from_secs(5))
            .await
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        let reply = String::from_utf8_lossy(&reply);
        let expected = format!("HTTP/1.1 {status} ");
        assert!(reply.starts_with(&expected), "{file}: {reply}");
        if status == 200 {
            stored += 1;
        }
        assert_eq!(hub.stored_rows(), stored, "{file}");
    }
    hub.stop().await;
}
