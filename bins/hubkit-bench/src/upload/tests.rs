use std::time::{Duration, Instant};

use http::StatusCode;

use super::client::{check_discard_response, check_response, is_relative_file_path};
use super::concurrent::{self, TimeBasis, Timing, slice_throughput};
use super::disk::write_durably;
use super::report::{
    Memory, PhaseResult, RoundResult, Throughput, UploadSettings, median, progress_line,
    render_large_table, render_memory_table, render_small_table, render_summary,
};
use super::*;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn response(size: u64, sha256: &str, path: &str) -> String {
    format!(
        r#"{{"DataId":"a","DataIds":["a"],"File":{{"Path":"{path}","Size":{size},"MediaType":"image/jpeg","Sha256":"{sha256}","OriginalFilename":null,"DetectedBy":"content-type"}}}}"#
    )
}

#[test]
fn check_response_returns_stored_path() {
    let body = response(1024, SHA, "abc123/20261204/data-1.jpg");
    let path = check_response(StatusCode::OK, body.as_bytes(), 1024, SHA);
    assert_eq!(path.as_deref(), Ok("abc123/20261204/data-1.jpg"));
}

#[test]
fn check_response_rejects_other_status() {
    let body = r#"{"title":"Content Too Large"}"#;
    let err = check_response(StatusCode::PAYLOAD_TOO_LARGE, body.as_bytes(), 1024, SHA)
        .expect_err("413 is a failure");
    assert!(err.contains("status 413"), "{err}");
    assert!(err.contains("Content Too Large"), "{err}");
}

#[test]
fn check_response_rejects_wrong_size() {
    let body = response(1000, SHA, "abc123/20261204/data-1.jpg");
    let err = check_response(StatusCode::OK, body.as_bytes(), 1024, SHA).expect_err("size differs");
    assert!(err.contains("File.Size is 1000, expected 1024"), "{err}");
}

#[test]
fn check_response_rejects_wrong_hash() {
    let body = response(1024, "00", "abc123/20261204/data-1.jpg");
    let err = check_response(StatusCode::OK, body.as_bytes(), 1024, SHA).expect_err("hash differs");
    assert!(err.contains("File.Sha256"), "{err}");
}

#[test]
fn check_response_rejects_missing_file() {
    let body = r#"{"DataId":"a","DataIds":["a"]}"#;
    let err = check_response(StatusCode::OK, body.as_bytes(), 1024, SHA)
        .expect_err("stored as JSON, not as a file");
    assert!(err.contains("no File object"), "{err}");
}

#[test]
fn check_response_rejects_non_json() {
    let err = check_response(StatusCode::OK, b"ok", 1024, SHA).expect_err("not JSON");
    assert!(err.contains("not JSON"), "{err}");
}

#[test]
fn check_response_rejects_escaping_path() {
    let body = response(1024, SHA, "../../etc");
    let err = check_response(StatusCode::OK, body.as_bytes(), 1024, SHA)
        .expect_err("path leaves the files folder");
    assert!(err.contains("File.Path"), "{err}");
}

#[test]
fn check_discard_response_accepts_full_count() {
    let body = br#"{"status":"ok","received_bytes":1024}"#;
    assert_eq!(check_discard_response(StatusCode::OK, body, 1024), Ok(()));
}

#[test]
fn check_discard_response_rejects_short_count() {
    let body = br#"{"status":"ok","received_bytes":1000}"#;
    let err = check_discard_response(StatusCode::OK, body, 1024).expect_err("bytes are missing");
    assert!(
        err.contains("received_bytes is 1000, expected 1024"),
        "{err}"
    );
}

#[test]
fn check_discard_response_rejects_missing_count() {
    let err = check_discard_response(StatusCode::OK, br#"{"status":"ok"}"#, 1024)
        .expect_err("count is missing");
    assert!(err.contains("received_bytes is missing"), "{err}");
}

#[test]
fn check_discard_response_rejects_other_status() {
    let body = br#"{"error":"the body exceeds 1073741824 bytes"}"#;
    let err = check_discard_response(StatusCode::PAYLOAD_TOO_LARGE, body, 1024)
        .expect_err("413 is a failure");
    assert!(err.contains("status 413"), "{err}");
    assert!(err.contains("exceeds"), "{err}");
}

#[test]
fn check_discard_response_rejects_non_json() {
    let err = check_discard_response(StatusCode::OK, b"ok", 1024).expect_err("not JSON");
    assert!(err.contains("not JSON"), "{err}");
}

#[test]
fn relative_file_path_cases() {
    let cases = [
        ("abc/20261204/data.jpg", true),
        ("abc/20261204", false),
        ("abc/20261204/data.jpg/x", false),
        ("/abc/20261204", false),
        ("abc/../data.jpg", false),
        ("abc/./data.jpg", false),
        ("abc//data.jpg", false),
        ("abc/20261204/a\\b", false),
    ];
    for (path, expected) in cases {
        assert_eq!(is_relative_file_path(path), expected, "{path}");
    }
}

#[test]
fn pseudo_random_bytes_repeat_for_seed() {
    let first = pseudo_random_bytes(1000, 7);
    let second = pseudo_random_bytes(1000, 7);
    assert_eq!(first.len(), 1000);
    assert_eq!(first, second);
}

#[test]
fn pseudo_random_bytes_differ_by_seed() {
    assert_ne!(pseudo_random_bytes(64, 7), pseudo_random_bytes(64, 8));
}

#[test]
fn pseudo_random_bytes_use_every_byte_value() {
    let bytes = pseudo_random_bytes(64 * 1024, BODY_SEED);
    let mut seen = [false; 256];
    for byte in bytes {
        seen[usize::from(byte)] = true;
    }
    assert!(seen.iter().all(|&found| found));
}

#[test]
fn pseudo_random_prefix_is_shorter_body() {
    let long = pseudo_random_bytes(1001, BODY_SEED);
    let short = pseudo_random_bytes(13, BODY_SEED);
    assert_eq!(&long[..13], &short[..]);
}

#[test]
fn split_evenly_spreads_remainder() {
    assert_eq!(split_evenly(200, 5), vec![40; 5]);
    assert_eq!(split_evenly(7, 3), vec![3, 2, 2]);
    assert_eq!(split_evenly(3, 3), vec![1, 1, 1]);
    assert_eq!(split_evenly(5, 0), Vec::<u32>::new());
}

#[test]
fn write_durably_leaves_only_final_file() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let body = pseudo_random_bytes(200 * 1024 + 5, 1);
    write_durably(folder.path(), "file-1.bin", &body).expect("write succeeds");
    let names: Vec<String> = fs::read_dir(folder.path())
        .expect("folder is readable")
        .map(|entry| {
            entry
                .expect("entry is readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, vec!["file-1.bin".to_owned()]);
    let written = fs::read(folder.path().join("file-1.bin")).expect("file is readable");
    assert_eq!(written, body);
}

#[test]
fn write_durably_rejects_existing_name() {
    let folder = tempfile::tempdir().expect("temporary folder");
    fs::write(folder.path().join("taken.bin"), b"old").expect("write succeeds");
    let err = write_durably(folder.path(), "taken.bin", b"new").expect_err("name is taken");
    assert!(format!("{err:#}").contains("hard-link"), "{err:#}");
    let kept = fs::read(folder.path().join("taken.bin")).expect("file is readable");
    assert_eq!(kept, b"old");
}

fn throughput(mib: u64, count: u32, millis: u64) -> Throughput {
    Throughput {
        bytes: mib * 1024 * 1024,
        count,
        elapsed: Duration::from_millis(millis),
    }
}

#[test]
fn throughput_rates() {
    let measured = throughput(100, 4, 500);
    assert!((measured.mib_per_sec() - 200.0).abs() < 1e-9);
    assert!((measured.per_sec() - 8.0).abs() < 1e-9);
}

#[test]
fn throughput_without_time_is_zero() {
    let empty = Throughput::default();
    assert_eq!(empty.mib_per_sec(), 0.0);
    assert_eq!(empty.per_sec(), 0.0);
}

#[test]
fn throughput_append_adds_all() {
    let mut total = throughput(1, 1, 10);
    total.append(throughput(2, 2, 30));
    assert_eq!(total, throughput(3, 3, 40));
}

#[test]
fn phase_ratios_divide_throughputs() {
    let result = PhaseResult {
        hubkitd: throughput(100, 1, 400),
        baseline: throughput(100, 1, 200),
        ceiling: throughput(100, 1, 250),
    };
    assert!((result.ratio_to_baseline() - 0.5).abs() < 1e-9);
    assert!((result.ratio_to_ceiling() - 0.625).abs() < 1e-9);
    assert!((result.ceiling_ratio_to_baseline() - 0.8).abs() < 1e-9);
}

#[test]
fn phase_ratios_without_time_are_zero() {
    let result = PhaseResult {
        hubkitd: throughput(100, 1, 400),
        ..PhaseResult::default()
    };
    assert_eq!(result.ratio_to_baseline(), 0.0);
    assert_eq!(result.ratio_to_ceiling(), 0.0);
    assert_eq!(result.ceiling_ratio_to_baseline(), 0.0);
}

#[test]
fn phase_append_adds_each_step() {
    let mut total = PhaseResult {
        hubkitd: throughput(1, 1, 10),
        baseline: throughput(1, 1, 20),
        ceiling: throughput(1, 1, 30),
    };
    total.append(PhaseResult {
        hubkitd: throughput(2, 2, 1),
        baseline: throughput(2, 2, 2),
        ceiling: throughput(2, 2, 3),
    });
    assert_eq!(total.hubkitd, throughput(3, 3, 11));
    assert_eq!(total.baseline, throughput(3, 3, 22));
    assert_eq!(total.ceiling, throughput(3, 3, 33));
}

#[test]
fn progress_line_names_every_step() {
    let line = progress_line(&round(1, 1_250, 1_000).small);
    assert_eq!(
        line,
        "hubkitd 80.0 MiB/s, baseline 100.0 MiB/s, transfer ceiling 125.0 MiB/s, ratio to the \
         baseline 0.80, ratio to the ceiling 0.64"
    );
}

#[test]
fn median_of_odd_and_even_counts() {
    assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    assert_eq!(median(Vec::new()), 0.0);
}

#[test]
fn memory_growth_may_be_negative() {
    let memory = Memory {
        start_idle_kib: 10_000,
        small_peak_kib: 20_000,
        large_idle_kib: 12_000,
        large_peak_kib: 11_000,
    };
    assert_eq!(memory.large_growth_kib(), -1_000);
}

/// Returns a round in which hubkitd takes the given milliseconds for the baseline's bytes.
/// The baseline moves 100 MiB/s of 1 MiB bodies and 500 MiB/s of 100 MiB bodies. The
/// transfer ceiling moves 125 MiB/s and 625 MiB/s, 1.25 times the baseline.
fn round(number: u32, small_ratio_millis: u64, large_ratio_millis: u64) -> RoundResult {
    RoundResult {
        round: number,
        small: PhaseResult {
            hubkitd: throughput(100, 100, small_ratio_millis),
            baseline: throughput(100, 100, 1_000),
            ceiling: throughput(100, 100, 800),
        },
        large: PhaseResult {
            hubkitd: throughput(500, 5, large_ratio_millis),
            baseline: throughput(500, 5, 1_000),
            ceiling: throughput(500, 5, 800),
        },
        memory: Memory {
            start_idle_kib: 10 * 1024,
            small_peak_kib: 14 * 1024,
            large_idle_kib: 12 * 1024,
            large_peak_kib: 15 * 1024,
        },
        failures: Vec::new(),
    }
}

#[test]
fn small_table_has_rows_and_median() {
    let rounds = [round(1, 1_250, 1_000), round(2, 2_000, 1_000)];
    let table = render_small_table(&rounds);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert_eq!(
        lines[0],
        "| round | hubkitd MiB/s | hubkitd uploads/s | baseline MiB/s | baseline files/s | \
         transfer ceiling MiB/s | ratio to the baseline | ratio to the ceiling |"
    );
    assert_eq!(
        lines[1],
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    assert_eq!(
        lines[2],
        "| 1 | 80.0 | 80.0 | 100.0 | 100.0 | 125.0 | 0.80 | 0.64 |"
    );
    assert_eq!(
        lines[3],
        "| 2 | 50.0 | 50.0 | 100.0 | 100.0 | 125.0 | 0.50 | 0.40 |"
    );
    assert_eq!(
        lines[4],
        "| median | 65.0 | 65.0 | 100.0 | 100.0 | 125.0 | 0.65 | 0.52 |"
    );
}

#[test]
fn large_table_of_one_round_has_no_median() {
    let table = render_large_table(&[round(1, 1_000, 2_000)]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(
        lines[0],
        "| round | hubkitd MiB/s | baseline MiB/s | transfer ceiling MiB/s | ratio to the \
         baseline | ratio to the ceiling |"
    );
    assert_eq!(lines[1], "| --- | ---: | ---: | ---: | ---: | ---: |");
    assert_eq!(lines[2], "| 1 | 250.0 | 500.0 | 625.0 | 0.50 | 0.40 |");
}

#[test]
fn memory_table_shows_growth() {
    let table = render_memory_table(&[round(1, 1_000, 1_000)]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[2],
        "| 1 | 10.0 MiB | 14.0 MiB | 12.0 MiB | 15.0 MiB | 3.0 MiB |"
    );
}

#[test]
fn summary_marks_met_targets() {
    let summary = render_summary(&[round(1, 1_250, 1_400)], &settings(200, 5, 5));
    assert!(
        summary.contains("| 1 MiB throughput ratio to the file baseline | median 0.80 (0.80 to 0.80) | at least 0.7: met |"),
        "{summary}"
    );
    assert!(
        summary.contains("median 0.71 (0.71 to 0.71) | at least 0.7: met |"),
        "{summary}"
    );
    assert!(
        summary.contains("| 3.0 MiB to 3.0 MiB | under 16.0 MiB: met |"),
        "{summary}"
    );
    assert!(summary.contains("| failed uploads | 0 | |"), "{summary}");
}

#[test]
fn summary_lists_ceiling_rows_per_size() {
    let rounds = [round(1, 1_250, 1_400), round(2, 2_000, 2_000)];
    let summary = render_summary(&rounds, &settings(200, 5, 5));
    let lines: Vec<&str> = summary.lines().collect();
    let expected = [
        "| measure | result | target |",
        "| --- | --- | --- |",
        "| 1 MiB throughput ratio to the file baseline | median 0.65 (0.50 to 0.80) | at least 0.7: missed |",
        "| 1 MiB throughput ratio to the transfer ceiling | median 0.52 (0.40 to 0.64) | |",
        "| 1 MiB transfer ceiling ratio to the file baseline | median 1.25 (1.25 to 1.25) | |",
        "| 100 MiB throughput ratio to the file baseline | median 0.61 (0.50 to 0.71) | at least 0.7: missed |",
        "| 100 MiB throughput ratio to the transfer ceiling | median 0.49 (0.40 to 0.57) | |",
        "| 100 MiB transfer ceiling ratio to the file baseline | median 1.25 (1.25 to 1.25) | |",
    ];
    assert_eq!(&lines[..expected.len()], &expected[..]);
}

#[test]
fn summary_marks_missed_targets() {
    let mut slow = round(1, 2_000, 2_000);
    slow.memory.large_peak_kib = slow.memory.large_idle_kib + 16 * 1024;
    slow.failures.push("round 1: status 500".to_owned());
    let summary = render_summary(&[slow], &settings(200, 5, 5));
    assert_eq!(summary.matches("missed").count(), 3, "{summary}");
    assert!(summary.contains("| failed uploads | 1 | |"), "{summary}");
}

fn settings(small_uploads: u32, small_slices: u32, large_slices: u32) -> UploadSettings {
    UploadSettings {
        command: vec!["hubkit-bench".to_owned(), "upload".to_owned()],
        path: UPLOAD_PATH.to_owned(),
        rounds: 3,
        warmup_uploads: WARMUP_UPLOADS,
        small_uploads,
        small_slices,
        large_slices,
        concurrency: 1,
        large_concurrency: 1,
        data_root: std::path::PathBuf::from("/tmp"),
        data_filesystem: Some("ext4".to_owned()),
    }
}

#[test]
fn max_files_mib_is_largest_slice() {
    assert_eq!(settings(200, 5, 5).max_files_mib(), 100);
    assert_eq!(settings(2000, 1, 5).max_files_mib(), 2000);
    assert_eq!(settings(20, 5, 0).max_files_mib(), WARMUP_UPLOADS);
}

#[test]
fn header_names_settings() {
    let header = report::render_header(&HostInfo::default(), &settings(200, 5, 5));
    assert!(
        header.contains("- command: `hubkit-bench upload`"),
        "{header}"
    );
    assert!(
        header.contains("POST `/webhook/urls/camera-upload`"),
        "{header}"
    );
    assert!(
        header.contains("writes 64 KiB chunks, fsyncs the file"),
        "{header}"
    );
    assert!(
        header.contains(
            "1 MiB bodies: 200 uploads to each server and 200 baseline files per round, in 5 \
             slices"
        ),
        "{header}"
    );
    assert!(header.contains("at most 100 MiB"), "{header}");
    assert!(header.contains("/tmp (ext4)"), "{header}");
}

/// Returns the default settings with `concurrency` as `hubkit-bench upload` derives them.
fn settings_at(concurrency: u32) -> UploadSettings {
    UploadSettings {
        warmup_uploads: warmup_uploads(concurrency),
        concurrency,
        large_concurrency: large_concurrency(concurrency),
        ..settings(200, 5, 5)
    }
}

#[test]
fn header_one_at_a_time_keeps_lines() {
    let header = report::render_header(&HostInfo::default(), &settings(200, 5, 5));
    let expected = [
        "- uploads: POST `/webhook/urls/camera-upload` to hubkitd and to the transfer ceiling server, with `Content-Type: image/jpeg` and a body of pseudo-random bytes generated once in memory, one upload at a time over HTTP/1.1 and TLS 1.3, on one keep-alive connection per slice that is opened before the slice's timer starts",
        "- baseline: the harness writes the same bytes to a new file in a folder beside hubkitd's data directory. It creates a temporary file, writes 64 KiB chunks, fsyncs the file, hard-links it to the final name, unlinks the temporary name and fsyncs the folder",
        "- transfer ceiling: `hubkit-bench baseline --mode tls-discard`, a bare hyper HTTP/1.1 server over rustls in its own process. With this client it negotiates what hubkitd negotiates: TLS 1.3 with the ring provider and HTTP/1.1 by ALPN. Like hubkitd, it has a self-signed certificate and caps hyper's read buffer at 64 KiB. It reads each body frame by frame, drops it and responds 200 with the byte count. Its uploads use the same client code, connections and concurrency as hubkitd's, so its MiB/s is what the HTTPS transfer alone reaches on this machine, with the client and the server on the same CPUs. hubkitd does the same transfer plus its own work, so its ratio to the file baseline can only exceed the ceiling's ratio to the file baseline by measurement noise",
        "- rounds: 3, each with a fresh hubkitd and an empty data directory",
        "- concurrency: 1, so uploads and baseline files run one at a time",
        "- warm-up: 10 uploads to hubkitd, 10 uploads to the transfer ceiling server and 10 baseline files of 1 MiB per round, not counted",
        "- 1 MiB bodies: 200 uploads to each server and 200 baseline files per round, in 5 slices",
        "- 100 MiB bodies: 5 uploads to each server and 5 baseline files per round, one of each per slice",
        "- order: hubkitd, the baseline and the transfer ceiling take turns in every slice. The order rotates by one step from slice to slice, so in every three slices each comes first, second and third once",
        "- disk: at most 100 MiB of uploaded or baseline files exist at a time, because each slice deletes its files before the next step",
        "- time: an upload's runs from sending the request until the response body has arrived, and a baseline file's from creating the file until the folder's fsync returned. MiB/s is the bytes divided by the summed times",
        "- data directories under: /tmp (ext4)",
    ];
    let lines: Vec<&str> = header.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.starts_with("- uploads:"))
        .expect("header has an uploads line");
    assert_eq!(&lines[start..start + expected.len()], &expected[..]);
    assert!(header.ends_with("(ext4)\n\n"), "{header}");
}

#[test]
fn header_names_concurrency() {
    let header = report::render_header(&HostInfo::default(), &settings_at(4));
    assert!(
        header.contains(
            "- concurrency: 4 uploads at a time and 4 baseline files at a time, for both body sizes"
        ),
        "{header}"
    );
    assert!(
        header.contains("one keep-alive connection per concurrent upload in each slice"),
        "{header}"
    );
    assert!(
        header.contains("one thread per concurrent file"),
        "{header}"
    );
    assert!(
        header.contains("splits its uploads across 4 connections and its files across 4 threads"),
        "{header}"
    );
    assert!(
        header.contains(
            "- 100 MiB bodies: 20 uploads to each server and 20 baseline files per round, in 5 \
             slices of 4 uploads at once and 4 files at once"
        ),
        "{header}"
    );
    assert!(header.contains("at most 400 MiB"), "{header}");
    assert!(
        header.contains("summed wall times of the slices"),
        "{header}"
    );
}

#[test]
fn header_names_large_concurrency_cap() {
    let header = report::render_header(&HostInfo::default(), &settings_at(32));
    assert!(
        header.contains("for 1 MiB bodies, but 16 of each for 100 MiB bodies"),
        "{header}"
    );
    assert!(header.contains("under 1.6 GiB"), "{header}");
    assert!(
        header.contains("- warm-up: 32 uploads to hubkitd, 32 uploads to the transfer ceiling"),
        "{header}"
    );
    assert!(header.contains("at most 1600 MiB"), "{header}");
}

#[test]
fn section_titles_one_at_a_time() {
    assert_eq!(
        settings_at(1).section_titles(),
        ["1 MiB uploads", "100 MiB uploads", "hubkitd RSS", "Summary"]
    );
}

#[test]
fn section_titles_name_concurrency() {
    assert_eq!(
        settings_at(4).section_titles(),
        [
            "1 MiB uploads, 4 at a time",
            "100 MiB uploads, 4 at a time",
            "hubkitd RSS, uploads 4 at a time",
            "Summary, uploads 4 at a time"
        ]
    );
}

#[test]
fn section_titles_name_large_cap() {
    let titles = settings_at(32).section_titles();
    assert_eq!(titles[0], "1 MiB uploads, 32 at a time");
    assert_eq!(titles[1], "100 MiB uploads, 16 at a time");
    assert_eq!(
        titles[2],
        "hubkitd RSS, 1 MiB uploads 32 at a time and 100 MiB uploads 16 at a time"
    );
}

#[test]
fn summary_names_concurrency() {
    let summary = render_summary(&[round(1, 1_250, 1_400)], &settings_at(32));
    assert!(
        summary.contains("| 1 MiB throughput ratio to the file baseline, 32 at a time | median"),
        "{summary}"
    );
    assert!(
        summary.contains("| 100 MiB throughput ratio to the file baseline, 16 at a time | median"),
        "{summary}"
    );
    assert!(
        summary.contains("| RSS growth during the 100 MiB uploads, 16 at a time |"),
        "{summary}"
    );
}

#[test]
fn summary_one_at_a_time_has_plain_measures() {
    let summary = render_summary(&[round(1, 1_250, 1_400)], &settings_at(1));
    assert!(!summary.contains("at a time"), "{summary}");
}

#[test]
fn max_files_mib_counts_concurrent_large_files() {
    assert_eq!(settings_at(4).max_files_mib(), 400);
    assert_eq!(settings_at(32).max_files_mib(), 1600);
}

#[test]
fn large_uploads_are_slices_times_concurrency() {
    assert_eq!(settings_at(1).large_uploads(), 5);
    assert_eq!(settings_at(4).large_uploads(), 20);
    assert_eq!(settings_at(32).large_uploads(), 80);
}

#[test]
fn large_concurrency_caps_disk_use() {
    let cases = [(1, 1), (4, 4), (16, 16), (17, 16), (32, 16)];
    for (concurrency, expected) in cases {
        assert_eq!(large_concurrency(concurrency), expected, "{concurrency}");
    }
    let cap = u64::from(large_concurrency(32));
    assert!(cap * LARGE_BYTES as u64 <= MAX_LARGE_SLICE_BYTES);
    assert!((cap + 1) * LARGE_BYTES as u64 > MAX_LARGE_SLICE_BYTES);
}

#[test]
fn warmup_uploads_cover_every_connection() {
    assert_eq!(warmup_uploads(1), WARMUP_UPLOADS);
    assert_eq!(warmup_uploads(10), 10);
    assert_eq!(warmup_uploads(32), 32);
}

#[test]
fn check_small_counts_accepts_full_slices() {
    assert!(check_small_counts(200, 5, 1).is_ok());
    assert!(check_small_counts(200, 5, 32).is_ok());
    assert!(check_small_counts(7, 3, 2).is_ok());
}

#[test]
fn check_small_counts_rejects_short_slices() {
    let err = check_small_counts(20, 5, 8).expect_err("slices of 4 for 8 connections");
    let message = format!("{err:#}");
    assert!(message.contains("slices of 4 uploads"), "{message}");
    assert!(message.contains("--concurrency 8"), "{message}");
}

#[test]
fn check_small_counts_rejects_more_slices_than_uploads() {
    let err = check_small_counts(3, 5, 1).expect_err("5 slices for 3 uploads");
    assert!(format!("{err:#}").contains("--small-slices 5"), "{err:#}");
    assert!(check_small_counts(10, 0, 1).is_err());
}

#[test]
fn slice_order_rotates_steps() {
    use Step::{Baseline, Ceiling, Hubkitd};
    assert_eq!(slice_order(0), [Hubkitd, Baseline, Ceiling]);
    assert_eq!(slice_order(1), [Baseline, Ceiling, Hubkitd]);
    assert_eq!(slice_order(2), [Ceiling, Hubkitd, Baseline]);
    assert_eq!(slice_order(3), slice_order(0));
    assert_eq!(slice_order(u32::MAX), slice_order(u32::MAX % 3));
}

#[test]
fn slice_order_puts_each_step_everywhere() {
    for step in [Step::Hubkitd, Step::Baseline, Step::Ceiling] {
        let mut positions: Vec<usize> = (0..3)
            .map(|slice| {
                slice_order(slice)
                    .iter()
                    .position(|&other| other == step)
                    .expect("every slice has every step")
            })
            .collect();
        positions.sort_unstable();
        assert_eq!(positions, vec![0, 1, 2], "{step:?}");
    }
}

#[test]
fn time_basis_for_concurrency() {
    assert_eq!(TimeBasis::for_concurrency(1), TimeBasis::Summed);
    assert_eq!(TimeBasis::for_concurrency(2), TimeBasis::WallClock);
    assert_eq!(TimeBasis::for_concurrency(32), TimeBasis::WallClock);
}

fn millis(value: u64) -> Duration {
    Duration::from_millis(value)
}

#[test]
fn timing_add_tracks_sum_and_span() {
    let origin = Instant::now();
    let mut timing = Timing::default();
    timing.add(100, origin + millis(10), millis(20));
    timing.add(50, origin, millis(5));
    assert_eq!(timing.bytes, 150);
    assert_eq!(timing.count, 2);
    assert_eq!(timing.summed, millis(25));
    assert_eq!(timing.span, Some((origin, origin + millis(30))));
}

/// Returns the timings of two threads whose uploads overlap: one busy from 0 to 10 ms and
/// from 20 to 40 ms, one from 10 to 40 ms. They sum to 60 ms in a wall time of 40 ms.
fn overlapping_timings() -> [Timing; 2] {
    let origin = Instant::now();
    let mut first = Timing::default();
    first.add(1024 * 1024, origin, millis(10));
    first.add(1024 * 1024, origin + millis(20), millis(20));
    let mut second = Timing::default();
    second.add(1024 * 1024, origin + millis(10), millis(30));
    [first, second]
}

#[test]
fn slice_throughput_sums_own_times() {
    let throughput = slice_throughput(&overlapping_timings(), TimeBasis::Summed);
    assert_eq!(throughput.bytes, 3 * 1024 * 1024);
    assert_eq!(throughput.count, 3);
    assert_eq!(throughput.elapsed, millis(60));
}

#[test]
fn slice_throughput_uses_wall_time() {
    let throughput = slice_throughput(&overlapping_timings(), TimeBasis::WallClock);
    assert_eq!(throughput.bytes, 3 * 1024 * 1024);
    assert_eq!(throughput.count, 3);
    assert_eq!(throughput.elapsed, millis(40));
    assert!((throughput.mib_per_sec() - 75.0).abs() < 1e-9);
}

#[test]
fn slice_throughput_wall_time_ignores_idle_threads() {
    let origin = Instant::now();
    let mut busy = Timing::default();
    busy.add(10, origin + millis(5), millis(15));
    let timings = [Timing::default(), busy];
    let throughput = slice_throughput(&timings, TimeBasis::WallClock);
    assert_eq!(throughput.elapsed, millis(15));
}

#[test]
fn slice_throughput_of_nothing_is_zero() {
    for basis in [TimeBasis::Summed, TimeBasis::WallClock] {
        let throughput = slice_throughput(&[], basis);
        assert_eq!(throughput, Throughput::default(), "{basis:?}");
    }
}

#[test]
fn write_files_writes_every_name() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let body = pseudo_random_bytes(70 * 1024, 3);
    let names = vec![
        vec!["file-1.bin".to_owned(), "file-2.bin".to_owned()],
        vec!["file-3.bin".to_owned()],
        vec!["file-4.bin".to_owned()],
    ];
    let timings = concurrent::write_files(folder.path(), &names, &body).expect("writes succeed");
    let counts: Vec<u32> = timings.iter().map(|timing| timing.count).collect();
    assert_eq!(counts, vec![2, 1, 1]);
    let mut found: Vec<String> = fs::read_dir(folder.path())
        .expect("folder is readable")
        .map(|entry| {
            entry
                .expect("entry is readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        ["file-1.bin", "file-2.bin", "file-3.bin", "file-4.bin"]
    );
    for name in names.iter().flatten() {
        let written = fs::read(folder.path().join(name)).expect("file is readable");
        assert_eq!(written, body, "{name}");
    }
}

#[test]
fn write_files_fails_on_taken_name() {
    let folder = tempfile::tempdir().expect("temporary folder");
    fs::write(folder.path().join("file-2.bin"), b"old").expect("write succeeds");
    let names = vec![vec!["file-1.bin".to_owned()], vec!["file-2.bin".to_owned()]];
    let err = concurrent::write_files(folder.path(), &names, b"new").expect_err("name is taken");
    assert!(format!("{err:#}").contains("file-2.bin"), "{err:#}");
}
