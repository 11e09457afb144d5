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
