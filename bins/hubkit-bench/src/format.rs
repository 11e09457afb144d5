//! Number formatting shared by the load report and the results table.

/// Formats a latency given in microseconds: `850 µs`, `1.23 ms` or `2.50 s`.
pub fn format_latency(micros: u64) -> String {
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.2} ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2} s", micros as f64 / 1_000_000.0)
    }
}

/// Formats a size given in KiB as MiB with one decimal, e.g. `12.3 MiB`.
pub fn format_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Formats a size given in KiB as GiB with one decimal, e.g. `23.4 GiB`.
pub fn format_gib(kib: u64) -> String {
    format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_picks_unit_by_size() {
        let cases = [
            (0, "0 µs"),
            (999, "999 µs"),
            (1_000, "1.00 ms"),
            (1_234, "1.23 ms"),
            (999_994, "999.99 ms"),
            (1_000_000, "1.00 s"),
            (2_500_000, "2.50 s"),
        ];
        for (micros, expected) in cases {
            assert_eq!(format_latency(micros), expected, "{micros} µs");
        }
    }

    #[test]
    fn mib_has_one_decimal() {
        assert_eq!(format_mib(12_595), "12.3 MiB");
    }

    #[test]
    fn gib_has_one_decimal() {
        assert_eq!(format_gib(24_523_580), "23.4 GiB");
    }
}
