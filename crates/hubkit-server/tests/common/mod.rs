//! Start-up helpers shared by the server's integration tests.

#![allow(dead_code)]

pub mod http_recorder;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hubkit_server::{Hub, HubOptions};
use hubkit_testkit::HttpsClient;
use tempfile::TempDir;

/// Admin token used by every test hub.
pub const TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";

/// Webhooks, areas and bindings of the shipped example, plus test-only entries.
pub const WEBHOOKS: &str = r#"
[[areas]]
name = "Office"
  [[areas.layers]]
  name = "Webhooks"
  kind = "webhook-json"
  [[areas.layers]]
  name = "Audit"
  kind = "webhook-json"

[[webhooks]]
name = "sensor-data"
custom_path = "sensor-data"
payload_format = "json"

[[webhooks]]
name = "sensor-data-basic"
custom_path = "sensor-data-basic"
payload_format = "json"
auth = { type = "basic", username = "username", password = "password" }

[[webhooks]]
name = "sensor-data-query"
custom_path = "sensor-data-query"
payload_format = "query-params"

[[webhooks]]
name = "unbound-hook"
custom_path = "unbound/hook"
payload_format = "json"

[[webhooks]]
name = "disabled-hook"
custom_path = "disabled/hook"
payload_format = "json"
enabled = false

[[webhooks]]
name = "small-hook"
custom_path = "small/hook"
payload_format = "json"
max_body_bytes = 64

[[webhooks]]
name = "small-query"
custom_path = "small/query"
payload_format = "query-params"
max_body_bytes = 16

[[bindings]]
webhook = "small-query"
area = "Office"
layer = "Webhooks"

[[webhooks]]
name = "two-layers"
custom_path = "two/layers"
payload_format = "json"

[[webhooks]]
name = "json-only"
custom_path = "json/only"
payload_format = "json"
files = { enabled = false }

[[bindings]]
webhook = "json-only"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "sensor-data"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "sensor-data-basic"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "sensor-data-query"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "disabled-hook"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "small-hook"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "two-layers"
area = "Office"
layer = "Webhooks"

[[bindings]]
webhook = "two-layers"
area = "Office"
layer = "Audit"
"#;

/// A hub running on 127.0.0.1 with a temporary data directory and real TLS.
pub struct TestHub {
    pub hub: Hub,
    pub client: HttpsClient,
    pub dir: TempDir,
}

impl TestHub {
    /// Starts a hub with the default server section and `body` as the rest of the file.
    pub async fn start(body: &str) -> TestHub {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = config_text(dir.path(), "", body);
        TestHub::start_text(dir, &text).await
    }

    /// Starts a hub from a complete configuration text.
    pub async fn start_text(dir: TempDir, text: &str) -> TestHub {
        let config = parse(dir.path(), text);
        let options = HubOptions {
            admin_token_env: Some(TOKEN.to_owned()),
        };
        let hub = Hub::start(config, options).await.expect("hub starts");
        let cert = dir.path().join("data/tls/cert.pem");
        let client = HttpsClient::trusting(hub.local_addr(), &cert).expect("client");
        TestHub { hub, client, dir }
    }

    /// Returns the data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Counts rows in the SQLite file, through a connection of its own.
    pub fn stored_rows(&self) -> i64 {
        let path = self.data_dir().join(hubkit_server::DATABASE_FILE);
        let connection = rusqlite::Connection::open(path).expect("open database");
        connection
            .query_row("SELECT COUNT(*) FROM records", [], |row| row.get(0))
            .expect("count rows")
    }

    /// Stops the hub.
    pub async fn stop(self) {
        self.hub.shutdown(Duration::from_secs(5)).await;
    }
}

/// Returns a configuration text with a server section pointing at `dir`.
pub fn config_text(dir: &Path, server_extra: &str, body: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{server_extra}\n{body}",
        dir.join("data").display().to_string()
    )
}

/// Parses a configuration text as if it were `<dir>/hubkit.toml`.
pub fn parse(dir: &Path, text: &str) -> hubkit_config::Config {
    hubkit_config::parse(text, &dir.join("hubkit.toml"))
        .unwrap_or_else(|errors| panic!("test configuration is invalid:\n{errors}"))
}

/// Sample body of the source document's examples.
pub const SAMPLE: &str = r#"{"temperature": 25.5, "humidity": 60}"#;

/// Sends `body` to `path` as a JSON POST.
pub async fn post_json(
    hub: &TestHub,
    path: &str,
    body: impl Into<bytes::Bytes>,
) -> hubkit_testkit::TestResponse {
    hub.client
        .send(
            http::Method::POST,
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await
        .expect("request")
}

/// `Authorization` header with the admin token.
pub fn admin() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}
