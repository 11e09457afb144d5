use std::time::Duration;

use http::StatusCode;

use super::*;

fn row(target: &str, is_reference: bool, round: u32, requests: u64) -> Row {
    let mut load = LoadReport::empty(Duration::from_secs(10)).expect("constant bounds");
    load.requests = requests;
    for micros in [800, 1_200, 2_500] {
        load.latency.record(micros).expect("value within bounds");
    }
    Row {
        target: target.to_owned(),
        is_reference,
        round,
        load,
        idle_rss_kib: 10_240,
        peak_rss_kib: 20_480,
    }
}

fn table_lines(rows: &[Row], show_round: bool) -> Vec<String> {
    render_table(rows, show_round)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn table_header_has_ten_columns() {
    let lines = table_lines(&[], false);
    assert_eq!(
        lines[0],
        "| target | req/s | ratio to SQLite FULL baseline | p50 | p99 | max | idle RSS \
         | peak RSS | non-2xx | errors |"
    );
    assert_eq!(lines[1].matches("---").count(), 10);
}

#[test]
fn table_row_formats_values() {
    let rows = [row("baseline tls-sqlite-full", true, 1, 50_000)];
    let lines = table_lines(&rows, false);
    assert_eq!(
        lines[2],
        "| baseline tls-sqlite-full | 5000 | 1.00 | 1.20 ms | 2.50 ms | 2.50 ms \
         | 10.0 MiB | 20.0 MiB | 0 | 0 |"
    );
}

#[test]
fn ratio_divides_by_reference_of_same_round() {
    let rows = [
        row("baseline tls-sqlite-full", true, 1, 10_000),
        row("hubkitd", false, 1, 5_000),
        row("baseline tls-sqlite-full", true, 2, 20_000),
        row("hubkitd", false, 2, 5_000),
    ];
    assert_eq!(ratio_to_reference(&rows[1], &rows), "0.50");
    assert_eq!(ratio_to_reference(&rows[3], &rows), "0.25");
}

#[test]
fn ratio_without_reference_is_na() {
    let rows = [row("baseline tls", false, 1, 10_000)];
    assert_eq!(ratio_to_reference(&rows[0], &rows), "n/a");
}

#[test]
fn ratio_with_zero_reference_is_na() {
    let rows = [
        row("baseline tls-sqlite-full", true, 1, 0),
        row("hubkitd", false, 1, 5_000),
    ];
    assert_eq!(ratio_to_reference(&rows[1], &rows), "n/a");
}

#[test]
fn table_shows_round_when_asked() {
    let rows = [row("hubkitd", false, 2, 1)];
    let lines = table_lines(&rows, true);
    assert!(
        lines[2].starts_with("| hubkitd (round 2) |"),
        "{}",
        lines[2]
    );
}

#[test]
fn failures_list_rows_with_errors_or_non_2xx() {
    let mut rows = vec![
        row("baseline tls", false, 1, 1),
        row("hubkitd", false, 1, 1),
    ];
    rows[1].load.non_2xx = 3;
    rows[1].load.first_non_2xx = Some(StatusCode::NOT_FOUND);
    rows[1].load.errors = 1;
    rows[1].load.first_error = Some("connection reset".to_owned());
    let failures = failures(&rows);
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0],
        "hubkitd (round 1) failed: 3 non-2xx responses, 1 errors; \
         first non-2xx status: 404 Not Found; first error: connection reset"
    );
}

#[test]
fn shell_quote_cases() {
    let cases = [
        ("run", "run"),
        (
            "--config=docs/examples/hubkit.toml",
            "--config=docs/examples/hubkit.toml",
        ),
        ("two words", "'two words'"),
        ("it's", r"'it'\''s'"),
        ("", "''"),
    ];
    for (arg, expected) in cases {
        assert_eq!(shell_quote(arg), expected, "{arg:?}");
    }
}

#[test]
fn header_names_load_and_machine() {
    let host = HostInfo {
        hostname: Some("bench-host".to_owned()),
        kernel: Some("Linux 6.1.0".to_owned()),
        cpu_model: Some("AMD EPYC".to_owned()),
        cpu_count: 2,
        memory_kib: Some(24_683_792),
        rustc: None,
        load_average: Some("0.52 0.60 0.70".to_owned()),
    };
    let settings = RunSettings {
        command: vec!["hubkit-bench".to_owned(), "run".to_owned()],
        connections: 16,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(10),
        slices: 5,
        rounds: 1,
        data_root: PathBuf::from("/tmp"),
        data_filesystem: Some("ext4".to_owned()),
    };
    let header = render_header(&host, &settings);
    let expected = [
        "- command: `hubkit-bench run`",
        "- host: bench-host",
        "- kernel: Linux 6.1.0",
        "- CPU: AMD EPYC, 2 logical CPUs",
        "- memory: 23.5 GiB",
        "- rustc: unknown",
        "- load average at start (1, 5, 15 min): 0.52 0.60 0.70",
        "- data directories under: /tmp (ext4)",
        "- order: the other baselines one after the other; the SQLite FULL baseline and \
         hubkitd side by side, loaded in turn in 5 slices per round (later slices with \
         0.5 s warm-up)",
    ];
    for line in expected {
        assert!(
            header.lines().any(|l| l == line),
            "missing {line:?} in:\n{header}"
        );
    }
}
