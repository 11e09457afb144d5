use chrono::TimeZone;

use super::*;

fn at(hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, hour, minute, second)
        .unwrap()
}

fn ms(milliseconds: i64) -> DateTime<Utc> {
    at(12, 0, 0) + TimeDelta::milliseconds(milliseconds)
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

fn gate(config: GateConfig) -> Gate {
    Gate::new(config)
}

const FIRE: Decision = Decision::Fire;

fn skip(reason: SkipReason) -> Decision {
    Decision::Skip(reason)
}

#[test]
fn plain_gate_fires_on_every_true() {
    let mut gate = gate(GateConfig::default());
    assert_eq!(gate.offer(ms(0), true, false), FIRE);
    assert_eq!(gate.offer(ms(0), true, false), FIRE);
    assert_eq!(
        gate.offer(ms(1), false, false),
        skip(SkipReason::ConditionFalse)
    );
    assert_eq!(gate.offer(ms(2), true, true), FIRE);
}

#[test]
fn threshold_fires_on_rising_edges() {
    // Condition "> 20" over readings 21, 22, 18, 23: threshold mode fires on 21 and 23.
    let mut gate = gate(GateConfig {
        threshold: true,
        ..GateConfig::default()
    });
    let readings = [21, 22, 18, 23, 24];
    let expected = [
        FIRE,
        skip(SkipReason::ThresholdNotRearmed),
        skip(SkipReason::ConditionFalse),
        FIRE,
        skip(SkipReason::ThresholdNotRearmed),
    ];
    for (step, (reading, want)) in readings.iter().zip(expected).enumerate() {
        let got = gate.offer(ms(step as i64 * 1000), *reading > 20, false);
        assert_eq!(got, want, "reading {reading} at step {step}");
    }
}

#[test]
fn without_threshold_every_true_fires() {
    let mut gate = gate(GateConfig::default());
    let fired: Vec<bool> = [21, 22, 18, 23]
        .iter()
        .enumerate()
        .map(|(step, reading)| gate.offer(ms(step as i64 * 1000), *reading > 20, false) == FIRE)
        .collect();
    assert_eq!(fired, [true, true, false, true]);
}

#[test]
fn interval_blocks_until_elapsed() {
    let mut gate = gate(GateConfig {
        interval_ms: 9000,
        ..GateConfig::default()
    });
    // Readings every 2 s with a 9 s cool-down fire every 10 s.
    let mut fired_at = Vec::new();
    for second in (0..=30).step_by(2) {
        let decision = gate.offer(ms(second * 1000), true, false);
        if decision == FIRE {
            fired_at.push(second);
        } else {
            assert_eq!(decision, skip(SkipReason::Interval), "second {second}");
        }
    }
    assert_eq!(fired_at, [0, 10, 20, 30]);
}

#[test]
fn interval_boundary_is_inclusive() {
    let mut gate = gate(GateConfig {
        interval_ms: 500,
        ..GateConfig::default()
    });
    assert_eq!(gate.offer(ms(0), true, false), FIRE);
    assert_eq!(gate.offer(ms(499), true, false), skip(SkipReason::Interval));
    assert_eq!(gate.offer(ms(500), true, false), FIRE);
    assert_eq!(gate.last_fired(), Some(ms(500)));
}

#[test]
fn interval_restarts_after_clock_step_back() {
    let mut gate = gate(GateConfig {
        interval_ms: 1000,
        ..GateConfig::default()
    });
    assert_eq!(gate.offer(ms(10_000), true, false), FIRE);
    assert_eq!(gate.offer(ms(0), true, false), skip(SkipReason::Interval));
    assert_eq!(gate.offer(ms(999), true, false), skip(SkipReason::Interval));
    assert_eq!(gate.offer(ms(1000), true, false), FIRE);
}

#[test]
fn huge_interval_never_ends() {
    let mut gate = gate(GateConfig {
        interval_ms: u64::MAX,
        ..GateConfig::default()
    });
    assert_eq!(gate.offer(ms(0), true, false), FIRE);
    let much_later = ms(0) + TimeDelta::days(365 * 1000);
    assert_eq!(
        gate.offer(much_later, true, false),
        skip(SkipReason::Interval)
    );
}

#[test]
fn threshold_and_interval_combined() {
    let mut gate = gate(GateConfig {
        interval_ms: 5000,
        threshold: true,
        ..GateConfig::default()
    });
    assert_eq!(gate.offer(ms(0), true, false), FIRE);
    assert_eq!(
        gate.offer(ms(1000), false, false),
        skip(SkipReason::ConditionFalse)
    );
    assert_eq!(
        gate.offer(ms(2000), true, false),
        skip(SkipReason::Interval)
    );
    // Still armed after the skip, so the next true reading past the cool-down fires.
    assert!(gate.is_armed());
    assert_eq!(gate.offer(ms(6000), true, false), FIRE);
    assert!(!gate.is_armed());
}

#[test]
fn skip_if_running_keeps_state() {
    let mut gate = gate(GateConfig {
        threshold: true,
        skip_if_running: true,
        ..GateConfig::default()
    });
    assert_eq!(gate.offer(ms(0), true, true), skip(SkipReason::Running));
    assert!(gate.is_armed());
    assert_eq!(gate.last_fired(), None);
    assert_eq!(gate.offer(ms(1000), true, false), FIRE);
}

#[test]
fn running_ignored_without_skip() {
    let mut gate = gate(GateConfig::default());
    assert_eq!(gate.offer(ms(0), true, true), FIRE);
}

#[test]
fn active_hours_same_day() {
    let hours = ActiveHours::parse("09:00-17:30", utc()).unwrap();
    let cases = [
        (at(8, 59, 59), false),
        (at(9, 0, 0), true),
        (at(12, 0, 0), true),
        (at(17, 29, 59), true),
        (at(17, 30, 0), false),
        (at(23, 0, 0), false),
    ];
    for (now, expected) in cases {
        assert_eq!(hours.contains(now), expected, "{now}");
    }
}

#[test]
fn active_hours_across_midnight() {
    let hours = ActiveHours::parse("22:00-06:00", utc()).unwrap();
    let cases = [
        (at(21, 59, 59), false),
        (at(22, 0, 0), true),
        (at(23, 59, 59), true),
        (at(0, 0, 0), true),
        (at(5, 59, 59), true),
        (at(6, 0, 0), false),
        (at(12, 0, 0), false),
    ];
    for (now, expected) in cases {
        assert_eq!(hours.contains(now), expected, "{now}");
    }

    let until_midnight = ActiveHours::parse("22:00-00:00", utc()).unwrap();
    assert!(until_midnight.contains(at(23, 59, 59)));
    assert!(!until_midnight.contains(at(0, 0, 0)));
}

#[test]
fn active_hours_use_offset() {
    // 09:00-17:00 at UTC+09:00 is 00:00-08:00 UTC.
    let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
    let hours = ActiveHours::parse("09:00-17:00", tokyo).unwrap();
    assert!(hours.contains(at(0, 0, 0)));
    assert!(hours.contains(at(7, 59, 0)));
    assert!(!hours.contains(at(8, 0, 0)));
    assert!(!hours.contains(at(23, 59, 0)));

    // 22:00-02:00 at UTC-05:00 is 03:00-07:00 UTC.
    let new_york = FixedOffset::west_opt(5 * 3600).unwrap();
    let night = ActiveHours::parse("22:00-02:00", new_york).unwrap();
    assert!(!night.contains(at(2, 59, 0)));
    assert!(night.contains(at(3, 0, 0)));
    assert!(night.contains(at(6, 59, 0)));
    assert!(!night.contains(at(7, 0, 0)));
}

#[test]
fn active_hours_parse_rejects() {
    for window in [
        "",
        "9:00-17:00",
        "09:00",
        "09:00-",
        "24:00-01:00",
        "09:60-10:00",
        "09:00-09:00",
        "0900-1700",
        "09:00:00-17:00:00",
        "+9:00-10:00",
    ] {
        let err = ActiveHours::parse(window, utc()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidActiveHours { window: w, .. } if w == window),
            "{window:?} gave {err:?}"
        );
    }
    let start = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    assert!(ActiveHours::new(start, start, utc()).is_err());
}

#[test]
fn active_hours_gate_outside_window() {
    let mut gate = gate(GateConfig {
        active_hours: Some(ActiveHours::parse("09:00-17:00", utc()).unwrap()),
        ..GateConfig::default()
    });
    assert_eq!(
        gate.offer(at(8, 0, 0), true, false),
        skip(SkipReason::OutsideActiveHours)
    );
    assert_eq!(gate.offer(at(9, 0, 0), true, false), FIRE);
    assert_eq!(
        gate.offer(at(17, 0, 0), true, false),
        skip(SkipReason::OutsideActiveHours)
    );
}

#[test]
fn threshold_rearms_outside_window() {
    let mut gate = gate(GateConfig {
        threshold: true,
        active_hours: Some(ActiveHours::parse("22:00-06:00", utc()).unwrap()),
        ..GateConfig::default()
    });
    assert_eq!(gate.offer(at(23, 0, 0), true, false), FIRE);
    assert_eq!(
        gate.offer(at(23, 30, 0), true, false),
        skip(SkipReason::ThresholdNotRearmed)
    );
    // A false reading outside the window re-arms the gate.
    assert_eq!(
        gate.offer(at(7, 0, 0), false, false),
        skip(SkipReason::ConditionFalse)
    );
    assert!(gate.is_armed());
    assert_eq!(
        gate.offer(at(8, 0, 0), true, false),
        skip(SkipReason::OutsideActiveHours)
    );
    // The condition turned true outside the window and fires once the window opens.
    assert_eq!(gate.offer(at(22, 0, 0), true, false), FIRE);
}

#[test]
fn skip_reason_names() {
    assert_eq!(SkipReason::ConditionFalse.to_string(), "condition_false");
    assert_eq!(
        SkipReason::OutsideActiveHours.as_str(),
        "outside_active_hours"
    );
    assert_eq!(
        SkipReason::ThresholdNotRearmed.as_str(),
        "threshold_not_rearmed"
    );
    assert_eq!(SkipReason::Interval.as_str(), "interval");
    assert_eq!(SkipReason::Running.as_str(), "running");
}
