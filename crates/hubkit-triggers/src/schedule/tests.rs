use chrono::{TimeDelta, TimeZone};

use super::*;

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn next(expression: &str, now: &str) -> Option<DateTime<Utc>> {
    CronSchedule::parse(expression, utc())
        .unwrap()
        .next_after(time(now))
}

#[test]
fn next_after_table() {
    let cases = [
        (
            "0 */5 * * * *",
            "2026-03-01T12:03:10Z",
            "2026-03-01T12:05:00Z",
        ),
        (
            "0 */5 * * * *",
            "2026-03-01T12:05:00Z",
            "2026-03-01T12:10:00Z",
        ),
        (
            "* * * * * *",
            "2026-03-01T12:00:00Z",
            "2026-03-01T12:00:01Z",
        ),
        (
            "30 0 9 * * *",
            "2026-03-01T09:00:30Z",
            "2026-03-02T09:00:30Z",
        ),
        (
            "51 23 14 4 2 *",
            "2026-03-01T00:00:00Z",
            "2027-02-04T14:23:51Z",
        ),
        (
            "0 0 0 * * ?",
            "2026-12-31T23:59:59Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "0 0 8 ? * MON-FRI",
            "2026-03-06T09:00:00Z",
            "2026-03-09T08:00:00Z",
        ),
        (
            "0 0 8 * * 0",
            "2026-03-01T09:00:00Z",
            "2026-03-08T08:00:00Z",
        ),
        (
            "0 0 8 * * 7",
            "2026-03-01T09:00:00Z",
            "2026-03-08T08:00:00Z",
        ),
        (
            "0 0 12 1 JAN,JUL *",
            "2026-03-01T00:00:00Z",
            "2026-07-01T12:00:00Z",
        ),
    ];
    for (expression, now, expected) in cases {
        assert_eq!(
            next(expression, now),
            Some(time(expected)),
            "{expression} after {now}"
        );
    }
}

#[test]
fn next_after_subsecond_now() {
    let now = time("2026-03-01T12:00:00Z") + TimeDelta::milliseconds(500);
    let schedule = CronSchedule::parse("* * * * * *", utc()).unwrap();
    assert_eq!(schedule.next_after(now), Some(time("2026-03-01T12:00:01Z")));
}

#[test]
fn leap_day_schedule() {
    // February 29 exists in 2028 but not in 2026 or 2027.
    assert_eq!(
        next("0 0 6 29 2 *", "2026-03-01T00:00:00Z"),
        Some(time("2028-02-29T06:00:00Z"))
    );
    assert_eq!(
        next("0 0 6 29 2 *", "2028-02-29T06:00:00Z"),
        Some(time("2032-02-29T06:00:00Z"))
    );
}

#[test]
fn month_end_schedule() {
    // Day 31 skips months that have 30 days or fewer.
    assert_eq!(
        next("0 0 0 31 * *", "2026-03-31T00:00:01Z"),
        Some(time("2026-05-31T00:00:00Z"))
    );
    // L is the last day of each month.
    assert_eq!(
        next("0 30 23 L * *", "2026-02-01T00:00:00Z"),
        Some(time("2026-02-28T23:30:00Z"))
    );
    assert_eq!(
        next("0 30 23 L * *", "2028-02-01T00:00:00Z"),
        Some(time("2028-02-29T23:30:00Z"))
    );
}

#[test]
fn impossible_date_has_no_next() {
    assert_eq!(next("0 0 0 30 2 *", "2026-03-01T00:00:00Z"), None);
}

#[test]
fn offset_moves_wall_clock() {
    let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
    let schedule = CronSchedule::parse("0 0 9 * * *", tokyo).unwrap();
    // 09:00 at UTC+09:00 is 00:00 UTC.
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    assert_eq!(schedule.next_after(now), Some(time("2026-03-02T00:00:00Z")));
    assert_eq!(schedule.offset(), tokyo);
}

#[test]
fn parse_rejects_wrong_field_count() {
    for (expression, count) in [
        ("*/5 * * * *", 5),
        ("0 0 0 1 1 * 2027", 7),
        ("@daily", 1),
        ("", 0),
    ] {
        let err = CronSchedule::parse(expression, utc()).unwrap_err();
        assert!(
            matches!(&err, Error::CronFieldCount { count: c, .. } if *c == count),
            "{expression:?} gave {err:?}"
        );
        assert!(err.to_string().contains("must have 6"), "{err}");
    }
}

#[test]
fn parse_rejects_bad_fields() {
    for expression in [
        "60 * * * * *",
        "* 60 * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * 32 * *",
        "* * * * 13 *",
        "* * * * * 8",
        "* * * * * MOON",
        "a b c d e f",
        "*/0 * * * * *",
    ] {
        let err = CronSchedule::parse(expression, utc()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidCron { expression: e, .. } if e == expression),
            "{expression:?} gave {err:?}"
        );
    }
}

#[test]
fn display_keeps_expression() {
    let schedule = CronSchedule::parse("0 */5 * * * *", utc()).unwrap();
    assert_eq!(schedule.to_string(), "0 */5 * * * *");
    assert_eq!(schedule.as_str(), "0 */5 * * * *");
}
