use std::path::Path;

use super::*;

const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 2\n\
model name\t: AMD EPYC 9654 96-Core Processor\n\nprocessor\t: 1\n\
model name\t: AMD EPYC 9654 96-Core Processor\n";

const STATUS: &str = "Name:\thubkitd\nVmPeak:\t  812344 kB\nVmHWM:\t   20480 kB\n\
VmRSS:\t   12288 kB\nThreads:\t3\n";

const MOUNTS: &str = "proc /proc proc rw,relatime 0 0\n\
/dev/vda / ext4 rw,relatime 0 0\n\
tmpfs /tmp tmpfs rw,nosuid 0 0\n\
/dev/vdb /mnt/my\\040disk xfs rw 0 0\n";

#[test]
fn cpu_model_takes_first_model_name() {
    assert_eq!(
        cpu_model(CPUINFO).as_deref(),
        Some("AMD EPYC 9654 96-Core Processor")
    );
}

#[test]
fn cpu_model_ignores_plain_model_line() {
    assert_eq!(cpu_model("model\t\t: 2\n"), None);
}

#[test]
fn cpu_count_counts_processor_entries() {
    assert_eq!(cpu_count(CPUINFO), 2);
}

#[test]
fn kib_field_reads_status_lines() {
    let cases = [
        ("VmRSS", Some(12_288)),
        ("VmHWM", Some(20_480)),
        ("Threads", None),
    ];
    for (name, expected) in cases {
        assert_eq!(kib_field(STATUS, name), expected, "{name}");
    }
}

#[test]
fn kib_field_needs_exact_name() {
    assert_eq!(kib_field(STATUS, "VmR"), None);
}

#[test]
fn kib_field_reads_meminfo() {
    let meminfo = "MemTotal:       24683792 kB\nMemFree:        23501104 kB\n";
    assert_eq!(kib_field(meminfo, "MemTotal"), Some(24_683_792));
}

#[test]
fn process_kib_reads_own_rss() {
    let rss = process_kib(std::process::id(), "VmRSS").expect("own status is readable");
    assert!(rss > 0, "VmRSS of this test process is {rss} kB");
}

#[test]
fn mount_type_picks_longest_mount_point() {
    let cases = [
        ("/tmp/hubkit-bench-1", Some("tmpfs")),
        ("/tmpfoo", Some("ext4")),
        ("/work/main", Some("ext4")),
        ("/mnt/my disk/data", Some("xfs")),
    ];
    for (path, expected) in cases {
        assert_eq!(
            mount_type(MOUNTS, Path::new(path)).as_deref(),
            expected,
            "{path}"
        );
    }
}

#[test]
fn mount_type_without_root_is_none() {
    let mounts = "tmpfs /tmp tmpfs rw 0 0\n";
    assert_eq!(mount_type(mounts, Path::new("/var/lib")), None);
}

#[test]
fn unescape_octal_keeps_broken_escapes() {
    let cases = [
        ("a\\040b", "a b"),
        ("a\\04", "a\\04"),
        ("a\\999b", "a\\999b"),
    ];
    for (escaped, expected) in cases {
        assert_eq!(unescape_octal(escaped), expected, "{escaped}");
    }
}

#[test]
fn load_average_takes_three_fields() {
    let text = "0.52 0.60 0.70 2/391 12345\n";
    assert_eq!(load_average(text).as_deref(), Some("0.52 0.60 0.70"));
}

#[test]
fn load_average_of_short_text_is_none() {
    assert_eq!(load_average("0.52\n"), None);
}

#[test]
fn stat_cpu_ticks_adds_utime_and_stime() {
    let stat = "4242 (hubkitd) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 268 0 0 20 0 \
                6 0 123456 812344 3072 18446744073709551615\n";
    assert_eq!(stat_cpu_ticks(stat), Some(999));
}

#[test]
fn stat_cpu_ticks_skips_name_with_spaces() {
    let stat = "77 (tokio-rt (worker) 2) R 1 77 77 0 -1 0 0 0 0 0 5 7 0 0 20 0 1 0 1 1 1\n";
    assert_eq!(stat_cpu_ticks(stat), Some(12));
}

#[test]
fn stat_cpu_ticks_rejects_short_line() {
    assert_eq!(stat_cpu_ticks("1 (init) S 0 1"), None);
}

#[test]
fn machine_ticks_excludes_idle_and_iowait() {
    let stat = "cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 50 2 25 400 10 1 1 5 3 0\nintr 1\n";
    let ticks = machine_ticks(stat).expect("valid cpu line");
    assert_eq!(ticks.total, 990);
    assert_eq!(ticks.busy, 170);
}

#[test]
fn machine_ticks_needs_cpu_line() {
    assert_eq!(machine_ticks("cpu0 1 2 3 4 5\n"), None);
    assert_eq!(machine_ticks("cpu  1 2 3\n"), None);
}
