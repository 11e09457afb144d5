use std::time::Duration;

use super::broker::{BrokerConfig, find_in, parse_version};
use super::clients::{payload, rumqttc_qos};
use super::hub::{
    HubConfig, StoreMetrics, TopicRecords, parse_records_stored, record_problems,
    subscription_ready,
};
use super::prometheus::{self, Histogram};
use super::report::{
    CpuTicks, Phase, Round, Turn, busy_cores, format_bucket, median, micros_per_message, range,
    render_commit_table, render_cpu_table, render_phase_table, render_summary,
};

/// `/metrics` text in the form prometheus-client writes it.
const METRICS: &str = "# HELP hubkit_records_stored Records committed to the store.\n\
# TYPE hubkit_records_stored counter\n\
hubkit_records_stored_total 105000\n\
# HELP hubkit_store_commit_batch_records Records per committed store transaction.\n\
# TYPE hubkit_store_commit_batch_records histogram\n\
hubkit_store_commit_batch_records_sum 105000.0\n\
hubkit_store_commit_batch_records_count 6000\n\
hubkit_store_commit_batch_records_bucket{le=\"1.0\"} 100\n\
hubkit_store_commit_batch_records_bucket{le=\"2.0\"} 200\n\
hubkit_store_commit_batch_records_bucket{le=\"4.0\"} 300\n\
hubkit_store_commit_batch_records_bucket{le=\"8.0\"} 400\n\
hubkit_store_commit_batch_records_bucket{le=\"16.0\"} 2000\n\
hubkit_store_commit_batch_records_bucket{le=\"32.0\"} 6000\n\
hubkit_store_commit_batch_records_bucket{le=\"+Inf\"} 6000\n\
# TYPE hubkit_store_commit_duration_seconds histogram\n\
hubkit_store_commit_duration_seconds_sum 3.0\n\
hubkit_store_commit_duration_seconds_count 6000\n\
hubkit_store_commit_duration_seconds_bucket{le=\"0.001\"} 6000\n\
hubkit_store_commit_duration_seconds_bucket{le=\"+Inf\"} 6000\n\
hubkit_mqtt_messages_total{broker=\"bench\"} 105000\n\
# EOF\n";

fn turn(messages: u64, millis: u64) -> Turn {
    Turn {
        messages,
        elapsed: Duration::from_millis(millis),
        published: Duration::from_millis(millis / 2),
        cpu: CpuTicks {
            hubkitd: 100,
            broker: 50,
            harness: 25,
            machine_busy: 180,
            machine_total: 200,
        },
        cpu_wall: Duration::from_millis(millis),
    }
}

fn round(number: u32, baseline_millis: u64, hubkitd_millis: u64) -> Round {
    Round {
        round: number,
        hubkitd_first: number.is_multiple_of(2),
        baseline: turn(10_000, baseline_millis),
        hubkitd: turn(10_000, hubkitd_millis),
    }
}

fn phase(qos: u8, rounds: Vec<Round>) -> Phase {
    Phase {
        rounds,
        store: StoreMetrics::parse(METRICS).expect("both histograms present"),
        rss_kib: Some(12_288),
        peak_rss_kib: Some(14_336),
        ..Phase::new(qos, 20)
    }
}

fn failed_phase(qos: u8, rounds: Vec<Round>) -> Phase {
    Phase {
        rounds,
        failure: Some("hubkitd's committed records stalled at 7 of 10".to_owned()),
        ..Phase::new(qos, 20)
    }
}

fn records(topic: &str, count: u64, distinct: u64, min_n: i64, max_n: i64) -> TopicRecords {
    TopicRecords {
        topic: topic.to_owned(),
        records: count,
        distinct,
        min_n: Some(min_n),
        max_n: Some(max_n),
    }
}

#[test]
fn broker_config_has_listener_and_limits() {
    let config = BrokerConfig {
        port: 41883,
        max_inflight_messages: 20,
        max_queued_messages: 1_000_000,
    };
    let lines: Vec<String> = config.render().lines().map(str::to_owned).collect();
    for expected in [
        "listener 41883 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        "max_inflight_messages 20",
        "max_queued_messages 1000000",
        "log_dest stderr",
    ] {
        assert!(lines.iter().any(|line| line == expected), "{expected}");
    }
}

#[test]
fn broker_config_sets_no_memory_limit() {
    let config = BrokerConfig {
        port: 1,
        max_inflight_messages: 1000,
        max_queued_messages: 10,
    };
    let text = config.render();
    assert!(!text.contains("memory_limit"), "{text}");
    assert!(!text.contains("persistence_location"), "{text}");
}

#[test]
fn mosquitto_found_in_first_dir_with_it() {
    let empty = tempfile::tempdir().expect("temporary directory");
    let with_binary = tempfile::tempdir().expect("temporary directory");
    let binary = with_binary.path().join("mosquitto");
    std::fs::write(&binary, "").expect("writable temporary directory");
    let dirs = [empty.path().to_owned(), with_binary.path().to_owned()];
    assert_eq!(find_in(&dirs), Some(binary));
}

#[test]
fn mosquitto_missing_from_dirs() {
    let empty = tempfile::tempdir().expect("temporary directory");
    assert_eq!(find_in(&[empty.path().to_owned()]), None);
    assert_eq!(find_in(&[]), None);
}

#[test]
fn version_line_found_in_help() {
    let help = "mosquitto version 2.0.11\n\nmosquitto is an MQTT v5.0/v3.1.1/v3.1 broker.\n";
    assert_eq!(
        parse_version(help).as_deref(),
        Some("mosquitto version 2.0.11")
    );
}

#[test]
fn version_missing_from_other_text() {
    assert_eq!(parse_version("Usage: mosquitto [-c config_file]\n"), None);
}

#[test]
fn hub_config_names_broker_and_qos() {
    let config = HubConfig {
        broker_port: 41883,
        client_id: "hubkit-bench-hubkitd-0123456789ab".to_owned(),
        qos: 1,
    };
    let text = config.render();
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "port = 41883",
        "client_id = \"hubkit-bench-hubkitd-0123456789ab\"",
        "clean_session = false",
        "filter = \"bench/#\"",
        "qos = 1",
        "payload_format = \"json\"",
        "synchronous = \"full\"",
        "topic = \"bench\"",
        "  kind = \"mqtt\"",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from:\n{text}"
        );
    }
}

#[test]
fn hub_config_is_valid_toml() {
    let config = HubConfig {
        broker_port: 1883,
        client_id: "hubkit-bench-hubkitd-0123456789ab".to_owned(),
        qos: 0,
    };
    let parsed: toml::Table = config.render().parse().expect("valid TOML");
    let broker = &parsed["brokers"][0];
    assert_eq!(broker["url"].as_str(), Some("mqtt://127.0.0.1"));
    assert_eq!(broker["port"].as_integer(), Some(1883));
    let topic = &parsed["topics"][0];
    assert_eq!(topic["broker"].as_str(), broker["name"].as_str());
    assert_eq!(topic["qos"].as_integer(), Some(0));
    let binding = &parsed["bindings"][0];
    assert_eq!(binding["topic"].as_str(), topic["name"].as_str());
    let area = &parsed["areas"][0];
    assert_eq!(binding["area"].as_str(), area["name"].as_str());
    assert_eq!(
        binding["layer"].as_str(),
        area["layers"][0]["name"].as_str()
    );
}

#[test]
fn hub_config_escapes_client_id() {
    let config = HubConfig {
        broker_port: 1883,
        client_id: "id \"quoted\" \\ with\ttab and \u{7f}".to_owned(),
        qos: 1,
    };
    let parsed: toml::Table = config.render().parse().expect("valid TOML");
    assert_eq!(
        parsed["brokers"][0]["client_id"].as_str(),
        Some("id \"quoted\" \\ with\ttab and \u{7f}")
    );
}

#[test]
fn payload_is_json_with_number() {
    let text = payload(41);
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(json["n"].as_u64(), Some(41));
    assert_eq!(json["humidity"].as_u64(), Some(60));
    assert_eq!(text, r#"{"temperature": 25.5, "humidity": 60, "n": 41}"#);
}

#[test]
fn qos_two_is_rejected() {
    assert!(rumqttc_qos(0).is_ok());
    assert!(rumqttc_qos(1).is_ok());
    assert!(rumqttc_qos(2).is_err());
}

#[test]
fn sample_reads_unlabelled_counter() {
    assert_eq!(
        prometheus::sample(METRICS, "hubkit_records_stored_total"),
        Some(105_000.0)
    );
}

#[test]
fn sample_ignores_labelled_and_prefix_names() {
    assert_eq!(
        prometheus::sample(METRICS, "hubkit_mqtt_messages_total"),
        None
    );
    assert_eq!(prometheus::sample(METRICS, "hubkit_records_stored"), None);
}

#[test]
fn records_stored_parses_counter() {
    assert_eq!(
        parse_records_stored(METRICS).expect("counter present"),
        105_000
    );
    assert!(parse_records_stored("hubkit_records_stored_total 1.5\n").is_err());
    assert!(parse_records_stored("other_total 1\n").is_err());
}

#[test]
fn histogram_reads_buckets_sum_and_count() {
    let histogram =
        prometheus::histogram(METRICS, "hubkit_store_commit_batch_records").expect("present");
    assert_eq!(histogram.count, 6000.0);
    assert_eq!(histogram.sum, 105_000.0);
    assert_eq!(histogram.buckets.len(), 7);
    assert_eq!(histogram.buckets[0], (1.0, 100.0));
    assert_eq!(histogram.buckets[6], (f64::INFINITY, 6000.0));
}

#[test]
fn histogram_without_count_is_none() {
    let text = "x_bucket{le=\"1.0\"} 1\nx_sum 1.0\n";
    assert_eq!(prometheus::histogram(text, "x"), None);
}

#[test]
fn histogram_since_subtracts_bucketwise() {
    let earlier = Histogram {
        buckets: vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)],
        sum: 30.0,
        count: 20.0,
    };
    let later = Histogram {
        buckets: vec![(1.0, 10.0), (2.0, 50.0), (f64::INFINITY, 60.0)],
        sum: 130.0,
        count: 60.0,
    };
    let delta = later.since(&earlier);
    assert_eq!(
        delta.buckets,
        vec![(1.0, 0.0), (2.0, 30.0), (f64::INFINITY, 40.0)]
    );
    assert_eq!(delta.count, 40.0);
    assert_eq!(delta.sum, 100.0);
    assert_eq!(delta.mean(), Some(2.5));
}

#[test]
fn histogram_median_bucket() {
    let histogram =
        prometheus::histogram(METRICS, "hubkit_store_commit_batch_records").expect("present");
    assert_eq!(histogram.median_bucket(), Some((16.0, 32.0)));
    assert_eq!(Histogram::default().median_bucket(), None);
    assert_eq!(Histogram::default().mean(), None);
}

#[test]
fn bucket_formats_whole_numbers() {
    let cases = [
        ((16.0, 32.0), "17 to 32"),
        ((0.0, 1.0), "1"),
        ((1.0, 2.0), "2"),
        ((2.0, 4.0), "3 to 4"),
        ((1024.0, f64::INFINITY), "1025 or more"),
    ];
    for ((low, high), expected) in cases {
        assert_eq!(format_bucket(low, high), expected, "({low}, {high}]");
    }
}

#[test]
fn ready_when_connected_and_granted() {
    let body = br#"{"brokers":[{"name":"bench","state":"connected","topics":[
        {"name":"bench","subscription":"granted","granted_qos":1}]}]}"#;
    assert!(subscription_ready(body, 1).expect("valid body"));
}

#[test]
fn not_ready_while_connecting_or_pending() {
    let connecting = br#"{"brokers":[{"name":"bench","state":"connecting","topics":[]}]}"#;
    assert!(!subscription_ready(connecting, 1).expect("valid body"));
    let pending = br#"{"brokers":[{"name":"bench","state":"connected","topics":[
        {"name":"bench","subscription":"pending","granted_qos":null}]}]}"#;
    assert!(!subscription_ready(pending, 1).expect("valid body"));
}

#[test]
fn rejected_or_other_qos_fails() {
    let rejected = br#"{"brokers":[{"name":"bench","state":"connected","topics":[
        {"name":"bench","subscription":"rejected","granted_qos":null}]}]}"#;
    assert!(subscription_ready(rejected, 1).is_err());
    let downgraded = br#"{"brokers":[{"name":"bench","state":"connected","topics":[
        {"name":"bench","subscription":"granted","granted_qos":0}]}]}"#;
    assert!(subscription_ready(downgraded, 1).is_err());
}

#[test]
fn missing_broker_fails() {
    assert!(subscription_ready(br#"{"brokers":[]}"#, 0).is_err());
    assert!(subscription_ready(b"not json", 0).is_err());
}

#[test]
fn complete_records_have_no_problems() {
    let found = vec![
        records("bench/round-1", 100, 100, 0, 99),
        records("bench/warmup", 10, 10, 0, 9),
    ];
    let published = vec![
        ("bench/warmup".to_owned(), 10),
        ("bench/round-1".to_owned(), 100),
    ];
    assert_eq!(record_problems(&found, &published), Vec::<String>::new());
}

#[test]
fn lost_repeated_and_extra_records_are_reported() {
    let found = vec![
        records("bench/round-1", 100, 99, 0, 99),
        records("bench/round-2", 99, 99, 1, 99),
        records("bench/stray", 5, 5, 0, 4),
    ];
    let published = vec![
        ("bench/round-1".to_owned(), 100),
        ("bench/round-2".to_owned(), 100),
        ("bench/round-3".to_owned(), 100),
    ];
    let problems = record_problems(&found, &published);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with("topic bench/round-1: 100 records with 99 distinct"));
    assert!(problems[1].starts_with("topic bench/round-2: 99 records"));
    assert_eq!(problems[2], "topic bench/round-3: no records, expected 100");
    assert!(problems[3].starts_with("topic bench/stray: 5 records, but nothing"));
}

#[test]
fn median_of_odd_and_even_counts() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    assert_eq!(median(&[]), 0.0);
}

#[test]
fn range_of_values() {
    assert_eq!(range(&[0.4, 0.7, 0.5]), (0.4, 0.7));
    assert_eq!(range(&[]), (0.0, 0.0));
}

#[test]
fn turn_rates_and_round_ratio() {
    let round = round(1, 100, 400);
    assert_eq!(round.baseline.rate(), 100_000.0);
    assert_eq!(round.baseline.publish_rate(), 200_000.0);
    assert_eq!(round.hubkitd.rate(), 25_000.0);
    assert_eq!(round.ratio(), 0.25);
}

#[test]
fn zero_time_gives_zero_rate() {
    let mut round = round(1, 0, 400);
    assert_eq!(round.baseline.rate(), 0.0);
    assert_eq!(round.ratio(), 0.0);
    round.baseline.messages = 0;
    assert_eq!(round.baseline.publish_rate(), 0.0);
}

#[test]
fn cpu_ticks_since_saturates() {
    let later = CpuTicks {
        hubkitd: 10,
        broker: 5,
        harness: 7,
        machine_busy: 30,
        machine_total: 40,
    };
    let earlier = CpuTicks {
        hubkitd: 4,
        broker: 6,
        harness: 7,
        machine_busy: 10,
        machine_total: 20,
    };
    let delta = later.since(&earlier);
    assert_eq!(delta.hubkitd, 6);
    assert_eq!(delta.broker, 0);
    assert_eq!(delta.harness, 0);
    assert_eq!(delta.machine_busy, 20);
    assert_eq!(delta.machine_total, 20);
}

#[test]
fn micros_per_message_from_ticks() {
    assert_eq!(micros_per_message(100, 100, 50_000), 20.0);
    assert_eq!(micros_per_message(100, 100, 0), 0.0);
    assert_eq!(micros_per_message(100, 0, 10), 0.0);
}

#[test]
fn busy_cores_from_ticks_and_wall_time() {
    assert_eq!(busy_cores(150, 100, Duration::from_secs(2)), 0.75);
    assert_eq!(busy_cores(150, 100, Duration::ZERO), 0.0);
    assert_eq!(busy_cores(150, 0, Duration::from_secs(1)), 0.0);
}

#[test]
fn phase_table_has_rows_and_median() {
    let phase = phase(
        1,
        vec![round(1, 100, 400), round(2, 200, 400), round(3, 100, 200)],
    );
    let lines: Vec<String> = render_phase_table(&phase)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(
        lines[2],
        "| 1 | baseline | 100000 | 25000 | 0.25 | 200000 | 50000 |"
    );
    assert_eq!(
        lines[3],
        "| 2 | hubkitd | 50000 | 25000 | 0.50 | 100000 | 50000 |"
    );
    assert_eq!(
        lines[5],
        "| median | | 100000 | 25000 | 0.50 | 200000 | 50000 |"
    );
}

#[test]
fn phase_table_of_one_round_has_no_median() {
    let phase = phase(0, vec![round(1, 100, 400)]);
    let table = render_phase_table(&phase);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(!table.contains("median"), "{table}");
}

#[test]
fn commit_table_shows_batch_and_time() {
    let phase = phase(1, vec![round(1, 100, 3000)]);
    let table = render_commit_table(&[phase]);
    let row = table.lines().nth(2).expect("one row");
    assert_eq!(
        row,
        "| 1 | 20 | 2000 | 17.5 | 17 to 32 | 500 µs | 12.0 MiB | 14.0 MiB |"
    );
}

#[test]
fn cpu_table_has_row_per_target() {
    let phase = phase(0, vec![round(1, 100, 400), round(2, 100, 400)]);
    let table = render_cpu_table(&[phase], 100);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    // 2 turns × 50 ticks at 100 ticks/s over 20,000 messages is 50 µs per message, and
    // 1 s of CPU over 0.2 s (baseline) or 0.8 s (hubkitd) of wall time is 5 or 1.25 cores.
    // The machine's 360 busy ticks less the 350 of the three processes leave 10 for others.
    assert_eq!(
        lines[2],
        "| 0 | 20 | baseline | - | 50.0 | 25.0 | - | 5.00 | 2.50 | 0.50 | 90% |"
    );
    assert_eq!(
        lines[3],
        "| 0 | 20 | hubkitd | 100.0 | 50.0 | 25.0 | 2.50 | 1.25 | 0.62 | 0.12 | 90% |"
    );
}

#[test]
fn summary_checks_target_for_qos1_only() {
    let met = phase(1, vec![round(1, 100, 150), round(2, 100, 190)]);
    let missed = phase(1, vec![round(1, 100, 400), round(2, 100, 300)]);
    let qos0 = phase(0, vec![round(1, 100, 400)]);
    let summary = render_summary(&[met, missed, qos0]);
    let lines: Vec<&str> = summary.lines().collect();
    assert!(
        lines[2].ends_with("| median 0.60 (0.53 to 0.67) | at least 0.5: met |"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].ends_with("| median 0.29 (0.25 to 0.33) | at least 0.5: missed |"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].ends_with("| median 0.25 (0.25 to 0.25) |  |"),
        "{}",
        lines[4]
    );
}

#[test]
fn failed_phase_table_names_failure() {
    let phase = failed_phase(1, vec![round(1, 100, 400)]);
    let table = render_phase_table(&phase);
    assert!(
        table.ends_with(
            "\nFailed after 1 complete round(s): hubkitd's committed records stalled at 7 of \
             10\n"
        ),
        "{table}"
    );
}

#[test]
fn failed_phase_keeps_commits_of_complete_rounds() {
    let mut phase = failed_phase(1, vec![round(1, 100, 3000)]);
    phase.store = StoreMetrics::parse(METRICS).expect("both histograms present");
    let table = render_commit_table(&[phase]);
    let row = table.lines().nth(2).expect("one row");
    assert_eq!(
        row,
        "| 1 | 20 | 2000 | 17.5 | 17 to 32 | 500 µs | n/a | n/a |"
    );
}

#[test]
fn failed_phase_has_no_commit_figures() {
    let table = render_commit_table(&[failed_phase(1, Vec::new())]);
    let row = table.lines().nth(2).expect("one row");
    assert_eq!(row, "| 1 | 20 | n/a | n/a | n/a | n/a | n/a | n/a |");
}

#[test]
fn failed_phase_misses_target() {
    let summary = render_summary(&[
        failed_phase(1, vec![round(1, 100, 150)]),
        failed_phase(0, Vec::new()),
    ]);
    let lines: Vec<&str> = summary.lines().collect();
    assert!(
        lines[2].ends_with(
            "| median 0.67 (0.67 to 0.67) in 1 complete round(s), then failed | at least 0.5: \
             missed, the phase failed |"
        ),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[3],
        "| 0 | 20 | n/a | n/a | n/a in 0 complete round(s), then failed |  |"
    );
}

#[test]
fn failed_phase_without_rounds_has_no_table() {
    let table = render_phase_table(&failed_phase(1, Vec::new()));
    assert_eq!(
        table,
        "No round completed. Failed: hubkitd's committed records stalled at 7 of 10\n"
    );
}

#[test]
fn cpu_table_skips_phase_without_rounds() {
    let table = render_cpu_table(&[failed_phase(1, Vec::new())], 100);
    assert_eq!(table.lines().count(), 2, "{table}");
}
