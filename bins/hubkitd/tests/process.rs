//! hubkitd as a process: start-up output, SIGHUP reload, and a SIGKILL in the middle of a
//! load after which every acknowledged record must be in the store.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::Method;
use hubkit_testkit::HttpsClient;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TOKEN: &str = "process-test-admin-token-0123456789abcdef";
const SAMPLE: &str = r#"{"temperature": 25.5, "humidity": 60}"#;

fn config(data_dir: &Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = {data_dir:?}

[[areas]]
name = "Office"
  [[areas.layers]]
  name = "Webhooks"
  kind = "webhook-json"

[[webhooks]]
name = "sensor-data"
custom_path = "sensor-data"
payload_format = "json"

[[bindings]]
webhook = "sensor-data"
area = "Office"
layer = "Webhooks"
{extra}
"#,
        data_dir = data_dir.display().to_string()
    )
}

/// A running hubkitd process and the address it printed.
struct Daemon {
    child: Child,
    address: SocketAddr,
    fingerprint: String,
}

impl Daemon {
    fn start(config_file: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hubkitd"))
            .arg("--config")
            .arg(config_file)
            .env("HUBKITD_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hubkitd");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut address = None;
        let mut fingerprint = String::new();
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            if let Some(url) = line.strip_prefix("hubkitd listening on https://") {
                address = Some(url.trim().parse().expect("address"));
            }
            if let Some(value) = line.strip_prefix("certificate SHA-256 fingerprint: ") {
                fingerprint = value.to_owned();
                break;
            }
        }
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Daemon {
            child,
            address: address.expect("hubkitd printed its address"),
            fingerprint,
        }
    }

    fn client(&self, data_dir: &Path) -> HttpsClient {
        HttpsClient::trusting(self.address, &data_dir.join("tls/cert.pem")).expect("client")
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        kill(Pid::from_raw(pid), signal).expect("send signal");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config_file = dir.path().join("hubkit.toml");
    std::fs::write(&config_file, config(&data_dir, extra)).expect("write config");
    (dir, data_dir, config_file)
}

async fn post(client: &HttpsClient, path: &str) -> anyhow::Result<(u16, String)> {
    let response = client
        .send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            SAMPLE,
        )
        .await?;
    let id = if response.status == 200 {
        response.json()["DataId"].as_str().unwrap_or("").to_owned()
    } else {
        String::new()
    };
    Ok((response.status, id))
}

#[tokio::test]
async fn prints_url_and_fingerprint() {
    let (_dir, data_dir, config_file) = setup("");
    let daemon = Daemon::start(&config_file);
    assert_eq!(daemon.fingerprint.len(), 95, "{}", daemon.fingerprint);
    let client = daemon.client(&data_dir);
    let (status, _) = post(&client, "/webhook/urls/sensor-data")
        .await
        .expect("post");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sighup_applies_valid_and_rejects_invalid_config() {
    let (_dir, data_dir, config_file) = setup("");
    let daemon = Daemon::start(&config_file);
    let client = daemon.client(&data_dir);
    let added = r#"
[[webhooks]]
name = "added"
custom_path = "added/after/start"
payload_format = "json"

[[bindings]]
webhook = "added"
area = "Office"
layer = "Webhooks"
"#;
    std::fs::write(&config_file, config(&data_dir, added)).expect("write config");
    daemon.signal(Signal::SIGHUP);
    let mut status = 0;
    for _ in 0..50 {
        status = post(&client, "/webhook/urls/added/after/start")
            .await
            .expect("post")
            .0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "new webhook not active after SIGHUP");

    std::fs::write(&config_file, "this is [not valid toml").expect("write config");
    daemon.signal(Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = post(&client, "/webhook/urls/added/after/start")
        .await
        .expect("post");
    assert_eq!(status, 200, "invalid config replaced the old one");
    let metrics = client.get("/metrics", &[]).await.expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains("hubkit_config_reloads_total{outcome=\"rejected\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_record() {
    let (_dir, data_dir, config_file) = setup("");
    let daemon = Daemon::start(&config_file);
    let client = daemon.client(&data_dir);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // Failed requests and errors are expected around the kill.
                if let Ok((200, id)) = post(&client, "/webhook/urls/sensor-data").await {
                    acknowledged.push(id);
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(daemon); // SIGKILL while the workers are sending.
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.expect("worker"));
    }
    assert!(acknowledged.len() > 10, "too few requests before the kill");

    let restarted = Daemon::start(&config_file);
    drop(restarted);
    let connection = rusqlite::Connection::open(data_dir.join("hubkit.db")).expect("open");
    let mut statement = connection
        .prepare("SELECT COUNT(*) FROM records WHERE data_id = ?1")
        .expect("prepare");
    for id in &acknowledged {
        let count: i64 = statement.query_row([id], |row| row.get(0)).expect("query");
        assert_eq!(
            count, 1,
            "acknowledged record {id} is missing after SIGKILL"
        );
    }
}

/// Lists the files under `folder` and its subfolders, relative to `folder`.
fn files_under(folder: &Path) -> Vec<String> {
    fn walk(root: &Path, folder: &Path, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut found = Vec::new();
    walk(folder, folder, &mut found);
    found.sort();
    found
}

#[tokio::test]
async fn sigkill_during_large_upload_leaves_no_partial_file() {
    use tokio::io::AsyncWriteExt;

    let (_dir, data_dir, config_file) = setup(
        r#"
[[webhooks]]
name = "camera-upload"
custom_path = "camera-upload"
payload_format = "json"
files = { max_bytes = 209715200 }

[[bindings]]
webhook = "camera-upload"
area = "Office"
layer = "Webhooks"
"#,
    );
    let files = data_dir.join("files");
    let daemon = Daemon::start(&config_file);
    let client = daemon.client(&data_dir);

    let complete = client
        .send(
            Method::POST,
            "/webhook/urls/camera-upload",
            &[("content-type", "image/jpeg")],
            vec![0xAB; 100_000],
        )
        .await
        .expect("upload");
    assert_eq!(complete.status, 200);
    let stored_path = complete.json()["File"]["Path"]
        .as_str()
        .expect("path")
        .to_owned();

    // Announce 128 MiB, send 16 MiB of it, and wait until the upload is on disk.
    let head = "POST /webhook/urls/camera-upload HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: video/mp4\r\nContent-Length: 134217728\r\n\r\n";
    let mut stream = client
        .open_raw(head.as_bytes(), 1 << 16)
        .await
        .expect("connect");
    let chunk = vec![0x5A; 1 << 20];
    for _ in 0..16 {
        stream.write_all(&chunk).await.expect("send body");
    }
    stream.flush().await.expect("flush");
    let mut partial = Vec::new();
    for _ in 0..200 {
        partial = files_under(&files)
            .into_iter()
            .filter(|path| path.contains("/.upload-"))
            .collect();
        if !partial.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(partial.len(), 1, "the large upload has a temporary file");
    drop(daemon); // SIGKILL in the middle of the upload.
    drop(stream);

    let restarted = Daemon::start(&config_file);
    drop(restarted);
    assert_eq!(
        files_under(&files),
        vec![stored_path.clone()],
        "only the acknowledged file is left"
    );
    let connection = rusqlite::Connection::open(data_dir.join("hubkit.db")).expect("open");
    let records: i64 = connection
        .query_row("SELECT COUNT(*) FROM records", [], |row| row.get(0))
        .expect("count");
    assert_eq!(records, 1, "no record for the interrupted upload");
    let paths: Vec<String> = connection
        .prepare("SELECT path FROM files WHERE removed_ns IS NULL")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(paths, vec![stored_path.clone()]);
    for path in &paths {
        assert!(
            files.join(path).is_file(),
            "record points at missing {path}"
        );
    }
}
