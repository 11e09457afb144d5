//! Filters, order, pagination and cursors of queries.

use chrono::{DateTime, NaiveDate, Utc};
use hubkit_model::{Record, derive_uuid};

use super::{device_id, open, record, tempdir, time};
use crate::{Cursor, MAX_PAGE, Order, RecordQuery, Store, StoreError};

/// Returns the ten records of the filter tests: areas Office (0..6) and Lab (6..10),
/// layers Webhooks (even) and Events (odd), devices sensor-a (multiples of 3) and
/// sensor-b, ten seconds apart.
fn dataset() -> Vec<Record> {
    (0..10)
        .map(|i| {
            let area = if i < 6 { "Office" } else { "Lab" };
            let layer = if i % 2 == 0 { "Webhooks" } else { "Events" };
            let device = if i % 3 == 0 { "sensor-a" } else { "sensor-b" };
            record(area, layer, device, time(i * 10))
        })
        .collect()
}

/// Opens a store holding [`dataset`] and returns the records' cursors.
async fn stored_dataset() -> (tempfile::TempDir, Store, Vec<Record>, Vec<Cursor>) {
    let folder = tempdir();
    let store = open(&folder);
    let records = dataset();
    let cursors = store
        .insert(records.clone())
        .await
        .expect("insert succeeds");
    (folder, store, records, cursors)
}

fn year(year: i32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .expect("valid date")
        .and_utc()
}

fn text(value: &str) -> Option<String> {
    Some(value.to_owned())
}

#[tokio::test]
async fn filters_select_expected_records() {
    let (_folder, store, records, cursors) = stored_dataset().await;
    let lab = derive_uuid("area", "Lab");
    let office_events = derive_uuid("layer", "Office/Events");
    let query = RecordQuery::default;
    let cases: Vec<(&str, RecordQuery, Vec<usize>)> = vec![
        ("no filter", query(), (0..10).collect()),
        (
            "area name",
            RecordQuery {
                area: text("Office"),
                ..query()
            },
            (0..6).collect(),
        ),
        (
            "area id",
            RecordQuery {
                area: Some(lab.to_string()),
                ..query()
            },
            (6..10).collect(),
        ),
        (
            "area id without dashes in capitals",
            RecordQuery {
                area: Some(lab.simple().to_string().to_uppercase()),
                ..query()
            },
            (6..10).collect(),
        ),
        (
            "unknown area",
            RecordQuery {
                area: text("Nowhere"),
                ..query()
            },
            vec![],
        ),
        (
            "layer name",
            RecordQuery {
                layer: text("Webhooks"),
                ..query()
            },
            vec![0, 2, 4, 6, 8],
        ),
        (
            "layer id",
            RecordQuery {
                layer: Some(office_events.to_string()),
                ..query()
            },
            vec![1, 3, 5],
        ),
        (
            "device id",
            RecordQuery {
                device: Some(device_id("sensor-a")),
                ..query()
            },
            vec![0, 3, 6, 9],
        ),
        (
            "device name",
            RecordQuery {
                device: text("sensor-b"),
                ..query()
            },
            vec![1, 2, 4, 5, 7, 8],
        ),
        (
            "since is inclusive",
            RecordQuery {
                since: Some(time(30)),
                ..query()
            },
            (3..10).collect(),
        ),
        (
            "until is exclusive",
            RecordQuery {
                until: Some(time(30)),
                ..query()
            },
            (0..3).collect(),
        ),
        (
            "one nanosecond window",
            RecordQuery {
                since: Some(time(30)),
                until: Some(time(30) + chrono::Duration::nanoseconds(1)),
                ..query()
            },
            vec![3],
        ),
        (
            "empty window",
            RecordQuery {
                since: Some(time(30)),
                until: Some(time(30)),
                ..query()
            },
            vec![],
        ),
        (
            "since before 1677",
            RecordQuery {
                since: Some(year(1600)),
                ..query()
            },
            (0..10).collect(),
        ),
        (
            "since after 2262",
            RecordQuery {
                since: Some(year(2300)),
                ..query()
            },
            vec![],
        ),
        (
            "until before 1677",
            RecordQuery {
                until: Some(year(1600)),
                ..query()
            },
            vec![],
        ),
        (
            "until after 2262",
            RecordQuery {
                until: Some(year(2300)),
                ..query()
            },
            (0..10).collect(),
        ),
        (
            "area, device and since together",
            RecordQuery {
                area: text("Office"),
                device: text("sensor-a"),
                since: Some(time(10)),
                ..query()
            },
            vec![3],
        ),
    ];

    for (name, query, expected) in cases {
        for order in [Order::Asc, Order::Desc] {
            let mut expected_cursors: Vec<Cursor> = expected.iter().map(|&i| cursors[i]).collect();
            if order == Order::Desc {
                expected_cursors.reverse();
            }
            let page = store
                .query(RecordQuery {
                    order,
                    ..query.clone()
                })
                .await
                .expect("query succeeds");
            let actual: Vec<Cursor> = page.records.iter().map(|stored| stored.cursor).collect();
            assert_eq!(actual, expected_cursors, "{name}, {order:?}");
        }
        let matching: Vec<usize> = (0..records.len())
            .filter(|&i| query.matches(&records[i]))
            .collect();
        assert_eq!(matching, expected, "{name}: matches() disagrees with SQL");
    }
}

#[tokio::test]
async fn pages_cover_every_record_once() {
    let (_folder, store, _records, cursors) = stored_dataset().await;
    for order in [Order::Asc, Order::Desc] {
        for limit in [1, 3, 5, 10, 11] {
            let mut seen = Vec::new();
            let mut cursor = None;
            for _ in 0..20 {
                let page = store
                    .query(RecordQuery {
                        limit,
                        cursor,
                        order,
                        ..RecordQuery::default()
                    })
                    .await
                    .expect("query succeeds");
                assert!(
                    page.records.len() <= limit,
                    "{order:?} limit {limit}: page too long"
                );
                seen.extend(page.records.iter().map(|stored| stored.cursor));
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            let mut expected = cursors.clone();
            if order == Order::Desc {
                expected.reverse();
            }
            assert_eq!(seen, expected, "{order:?} limit {limit}");
        }
    }
}

#[tokio::test]
async fn next_cursor_is_set_only_on_full_pages() {
    let (_folder, store, _records, cursors) = stored_dataset().await;
    let full = store
        .query(RecordQuery {
            limit: 4,
            ..RecordQuery::default()
        })
        .await
        .expect("query succeeds");
    let partial = store
        .query(RecordQuery {
            limit: 4,
            cursor: Some(cursors[2]),
            ..RecordQuery::default()
        })
        .await
        .expect("query succeeds");
    assert_eq!(full.next_cursor, Some(cursors[6]));
    assert_eq!(partial.records.len(), 2);
    assert_eq!(partial.next_cursor, None);
}

#[tokio::test]
async fn cursor_continues_with_filters() {
    let (_folder, store, _records, cursors) = stored_dataset().await;
    let page = store
        .query(RecordQuery {
            layer: text("Webhooks"),
            cursor: Some(cursors[2]),
            order: Order::Asc,
            ..RecordQuery::default()
        })
        .await
        .expect("query succeeds");
    let actual: Vec<Cursor> = page.records.iter().map(|stored| stored.cursor).collect();
    assert_eq!(actual, vec![cursors[4], cursors[6], cursors[8]]);
}

#[test]
fn limit_is_clamped() {
    let cases = [
        (0, 1),
        (1, 1),
        (100, 100),
        (MAX_PAGE, MAX_PAGE),
        (MAX_PAGE + 1, MAX_PAGE),
        (usize::MAX, MAX_PAGE),
    ];
    for (limit, expected) in cases {
        let query = RecordQuery {
            limit,
            ..RecordQuery::default()
        };
        assert_eq!(query.page_size(), expected, "limit {limit}");
    }
}

#[tokio::test]
async fn zero_limit_returns_one_record() {
    let (_folder, store, _records, cursors) = stored_dataset().await;
    let page = store
        .query(RecordQuery {
            limit: 0,
            ..RecordQuery::default()
        })
        .await
        .expect("query succeeds");
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.next_cursor, Some(cursors[9]));
}

#[test]
fn invalid_cursor_is_rejected() {
    for value in [
        "",
        "-1",
        "+1",
        "1.5",
        "abc",
        " 1",
        "1 ",
        "0x10",
        "9223372036854775808",
    ] {
        let err = value.parse::<Cursor>().expect_err("cursor is invalid");
        assert!(
            matches!(&err, StoreError::InvalidCursor { value: rejected } if rejected == value),
            "{value:?}: unexpected error {err:?}"
        );
        assert!(
            err.to_string().contains("decimal integer"),
            "{value:?}: {err}"
        );
    }
}

#[test]
fn valid_cursor_round_trips() {
    for value in ["0", "42", "9223372036854775807"] {
        let cursor: Cursor = value.parse().expect("cursor is valid");
        assert_eq!(cursor.to_string(), value);
    }
}

#[test]
fn cursor_serializes_as_string() {
    let cursor: Cursor = "42".parse().expect("cursor is valid");
    assert_eq!(
        serde_json::to_string(&cursor).expect("serializable"),
        "\"42\""
    );
    let back: Cursor = serde_json::from_str("\"42\"").expect("deserializable");
    assert_eq!(back, cursor);
    assert!(
        serde_json::from_str::<Cursor>("42").is_err(),
        "numbers are rejected"
    );
}
