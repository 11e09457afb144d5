//! hubkitd as a process: start-up output, SIGHUP reload, a SIGKILL in the middle of a
//! load after which every acknowledged record must be in the store, and SIGKILLs while
//! action runs are in progress or pending.

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

#[path = "../../../crates/hubkit-server/tests/common/http_recorder.rs"]
mod http_recorder;

use http_recorder::HttpRecorder;

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

/// Returns an action that runs `steps` (TOML `[[actions.steps]]` tables) and a trigger that
/// runs it for every record of sensor-data hotter than 30.
fn hot_trigger(steps: &str) -> String {
    format!(
        r#"
[[actions]]
name = "hot-alert"
{steps}

[[triggers]]
name = "too-hot"
area = "Office"
layer = "Webhooks"
device = "sensor-data"
field = "temperature"
operator = ">"
value = 30
action = "hot-alert"
"#
    )
}

/// Returns an HTTP Request step that POSTs the record's DataId to `url`/alert and waits
/// up to 60 s for the response.
fn alert_request(url: &str) -> String {
    r#"
  [[actions.steps]]
  component = "http_request"
  method = "POST"
  url = "RECORDER/alert"
  body = '{"data_id": {{ DataId | tojson }}}'
  timeout_ms = 60000
  retries = 0
"#
    .replace("RECORDER", url)
}

/// Posts a reading above the trigger's threshold and returns its DataId.
async fn post_hot(client: &HttpsClient) -> String {
    let response = client
        .send(
            Method::POST,
            "/webhook/urls/sensor-data",
            &[("content-type", "application/json")],
            r#"{"temperature": 35}"#,
        )
        .await
        .expect("post");
    assert_eq!(response.status, 200);
    response.json()["DataId"]
        .as_str()
        .expect("DataId")
        .to_owned()
}

fn is_finished(run: &serde_json::Value) -> bool {
    run["status"] == "succeeded" || run["status"] == "failed"
}

/// Polls `GET /api/v1/action-runs` until `condition` holds for its runs, newest first,
/// and returns them. Panics after 30 s with `description` and the last runs.
async fn wait_runs(
    client: &HttpsClient,
    description: &str,
    condition: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    wait_runs_queued(client, description, |runs, _| condition(runs)).await
}

/// Waits until `condition` holds for the listed runs and the number of queued runs, the
/// fired runs that the runner has not claimed, and returns the runs.
async fn wait_runs_queued(
    client: &HttpsClient,
    description: &str,
    condition: impl Fn(&[serde_json::Value], u64) -> bool,
) -> Vec<serde_json::Value> {
    let authorization = format!("Bearer {TOKEN}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = client
            .get(
                "/api/v1/action-runs",
                &[("authorization", authorization.as_str())],
            )
            .await
            .expect("list runs");
        assert_eq!(response.status, 200);
        let page = response.json();
        let runs = page["runs"].as_array().expect("runs").clone();
        let queued = page["queued"].as_u64().expect("queued");
        if condition(&runs, queued) {
            return runs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {description}: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Proves that a run killed in the middle runs again after a restart. SIGKILL during the
/// Sleep step, before the HTTP Request, leaves the run `running` in the store. The
/// restarted hubkitd runs it again, so the endpoint gets exactly one request and the run
/// ends succeeded on attempt 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_reruns_it_once() {
    let recorder = HttpRecorder::start(200, r#"{"ok": true}"#).await;
    let steps = format!(
        "
  [[actions.steps]]
  component = \"sleep\"
  duration_ms = 3000
{}",
        alert_request(&recorder.url())
    );
    let (_dir, data_dir, config_file) = setup(&hot_trigger(&steps));
    let daemon = Daemon::start(&config_file);
    let client = daemon.client(&data_dir);
    let data_id = post_hot(&client).await;
    wait_runs(&client, "the run to start", |runs| {
        runs.first().is_some_and(|run| run["status"] == "running")
    })
    .await;
    daemon.signal(Signal::SIGKILL);
    drop(daemon);
    assert!(
        recorder.requests().is_empty(),
        "hubkitd was killed during the sleep, before the request"
    );

    let restarted = Daemon::start(&config_file);
    let client = restarted.client(&data_dir);
    let runs = wait_runs(&client, "the run to finish", |runs| {
        runs.first().is_some_and(is_finished)
    })
    .await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);
    assert_eq!(runs[0]["attempts"], 2);
    assert_eq!(runs[0]["data_id"], data_id.as_str());
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].json()["data_id"], data_id.as_str());
}

/// Proves that a fired run still queued because every runner slot is busy survives a
/// SIGKILL: the restarted hubkitd runs it once, on its first attempt, and reruns the runs
/// that were in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_run_survives_sigkill() {
    let busy = hubkit_server::ACTION_CONCURRENCY;
    // The recorder sends no response until released, so the first runs hold every slot.
    let recorder = HttpRecorder::start_holding(200, r#"{"ok": true}"#).await;
    let (_dir, data_dir, config_file) = setup(&hot_trigger(&alert_request(&recorder.url())));
    let daemon = Daemon::start(&config_file);
    let client = daemon.client(&data_dir);
    for _ in 0..=busy {
        post_hot(&client).await;
    }
    recorder.wait_for(busy, Duration::from_secs(30)).await;
    // The run behind the busy ones waits in the queue: the runner claims no more runs
    // than it has free slots.
    wait_runs_queued(
        &client,
        "one queued run behind the busy ones",
        |runs, queued| {
            runs.len() == busy && runs.iter().all(|run| run["status"] == "running") && queued == 1
        },
    )
    .await;
    daemon.signal(Signal::SIGKILL);
    drop(daemon);
    recorder.release();

    let restarted = Daemon::start(&config_file);
    let client = restarted.client(&data_dir);
    let runs = wait_runs(&client, "every run to finish", |runs| {
        runs.len() == busy + 1 && runs.iter().all(is_finished)
    })
    .await;
    assert!(
        runs.iter().all(|run| run["status"] == "succeeded"),
        "{runs:#?}"
    );
    // The runs in progress at the kill ran again; the queued one ran once.
    let once: Vec<_> = runs.iter().filter(|run| run["attempts"] == 1).collect();
    assert_eq!(once.len(), 1, "{runs:#?}");
    assert_eq!(
        runs.iter().filter(|run| run["attempts"] == 2).count(),
        busy,
        "{runs:#?}"
    );
    let pending_data_id = once[0]["data_id"].as_str().expect("data_id");
    let requests = recorder.requests();
    let for_pending = requests
        .iter()
        .filter(|request| request.json()["data_id"] == pending_data_id)
        .count();
    assert_eq!(for_pending, 1, "the pending run sent its request once");
    assert_eq!(
        requests.len(),
        busy * 2 + 1,
        "the runs in progress at the kill sent their request again"
    );

    let metrics = client.get("/metrics", &[]).await.expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    for line in [
        "hubkit_action_queue_depth 0",
        "hubkit_actions_in_progress 0",
    ] {
        assert!(text.lines().any(|found| found == line), "{line}: {text}");
    }
}
