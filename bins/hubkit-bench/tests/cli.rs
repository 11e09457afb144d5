//! Runs the `hubkit-bench` binary end to end: real baseline servers on 127.0.0.1, the load
//! generator against them, the orchestrator in `--baselines-only` mode, and the argument
//! checks of the upload benchmark.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hubkit-bench");

/// Kills the baseline when the test ends, also on a failed assert.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_baseline(mode: &str, data_dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args([
            "baseline",
            "--mode",
            mode,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("baseline starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("baseline prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("line starts with \"listening on \"")
        .to_owned();
    (server, addr)
}

fn run_load(url: &str) -> Output {
    Command::new(BIN)
        .args(["load", "--url", url, "--connections", "4"])
        .args(["--duration-secs", "1", "--warmup-secs", "0"])
        .output()
        .expect("load runs")
}

/// Returns the value of a `name: value` line of the load report.
fn report_value(stdout: &str, name: &str) -> u64 {
    let prefix = format!("{name}: ");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{stdout}"))
        .parse()
        .unwrap_or_else(|err| panic!("{name:?} is not a number ({err}) in:\n{stdout}"))
}

#[test]
fn sqlite_baseline_commits_every_response() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, addr) = start_baseline("tls-sqlite-full", dir.path());
    let output = run_load(&format!("https://{addr}/webhook/urls/sensor-data"));
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "load failed: {output:?}");
    let requests = report_value(&stdout, "requests");
    assert!(requests > 0, "no requests in:\n{stdout}");
    assert_eq!(report_value(&stdout, "non-2xx"), 0, "{stdout}");
    assert_eq!(report_value(&stdout, "errors"), 0, "{stdout}");

    let db = rusqlite::Connection::open(dir.path().join("baseline.sqlite3")).expect("db opens");
    let rows: i64 = db
        .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .expect("count query");
    let rows = u64::try_from(rows).expect("count(*) is never negative");
    assert!(rows >= requests, "{rows} rows for {requests} responses");
    let body: String = db
        .query_row(
            "SELECT CAST(body AS TEXT) FROM records LIMIT 1",
            [],
            |row| row.get(0),
        )
        .expect("body query");
    assert_eq!(body, r#"{"temperature": 25.5, "humidity": 60}"#);
}

#[test]
fn discard_baseline_answers_every_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, addr) = start_baseline("tls-discard", dir.path());
    let output = run_load(&format!("https://{addr}/webhook/urls/camera-upload"));
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "load failed: {output:?}");
    assert!(
        report_value(&stdout, "requests") > 0,
        "no requests in:\n{stdout}"
    );
    assert_eq!(report_value(&stdout, "non-2xx"), 0, "{stdout}");
    assert_eq!(report_value(&stdout, "errors"), 0, "{stdout}");
}

#[test]
fn load_rejects_remote_url() {
    let output = run_load("https://example.invalid:8443/");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "load accepted a remote URL");
    assert!(stderr.contains("not allowed"), "{stderr}");
}

#[test]
fn run_baselines_only_prints_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BIN)
        .args([
            "run",
            "--baselines-only",
            "--skip-normal",
            "--connections",
            "4",
        ])
        .args(["--duration-secs", "1", "--warmup-secs", "0", "--data-root"])
        .arg(dir.path())
        .output()
        .expect("run runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "run failed: {output:?}");
    assert!(stdout.contains("| target | req/s |"), "{stdout}");
    assert!(stdout.contains("\n| baseline tls | "), "{stdout}");
    assert!(
        stdout.contains("\n| baseline tls-sqlite-full | "),
        "{stdout}"
    );
    assert!(!stdout.contains("tls-sqlite-normal"), "{stdout}");
}

#[test]
fn upload_rejects_missing_hubkitd() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BIN)
        .args(["upload", "--config", "Cargo.toml", "--hubkitd"])
        .arg(dir.path().join("no-such-hubkitd"))
        .output()
        .expect("upload runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "upload ran without hubkitd");
    assert!(stderr.contains("not found; build it first"), "{stderr}");
}

#[test]
fn upload_rejects_more_slices_than_uploads() {
    let output = Command::new(BIN)
        .args(["upload", "--hubkitd", BIN, "--config", "Cargo.toml"])
        .args(["--small-uploads", "3", "--small-slices", "4"])
        .output()
        .expect("upload runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "upload accepted 4 slices of 3 uploads"
    );
    assert!(stderr.contains("--small-slices 4 is more than"), "{stderr}");
}
