use serde_json::json;

use super::{check_json_media_type, decode_json};
use crate::{DecodeError, PayloadPart};

#[test]
fn media_type_accepts_json_variants() {
    let accepted = [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json; charset=\"utf-8\"",
        "application/json; version=2",
        "application/vnd.api+json",
        "application/problem+JSON",
        " application/json ",
        "application/json ; charset=utf-8",
        "application/json\t;charset=utf-8 ; version=2",
        "application/json; note=\"a ;b\" ; charset=utf-8",
        "application/json;\tcharset=utf-8",
        "text/json",
        "Text/X-JSON; charset=utf-8",
        "application/x-json",
    ];
    for value in accepted {
        assert_eq!(check_json_media_type(Some(value)), Ok(()), "{value:?}");
    }
}

#[test]
fn media_type_rejects_other_types() {
    let rejected = [
        ("text/plain", "text/plain"),
        ("text/jsonx", "text/jsonx"),
        ("application/xml", "application/xml"),
        ("application/json-seq", "application/json-seq"),
        (
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded",
        ),
        ("multipart/form-data; boundary=x", "multipart/form-data"),
        ("application/", "application/"),
        ("application/+json", "application/+json"),
        ("application/json+xml", "application/json+xml"),
    ];
    for (value, essence) in rejected {
        assert_eq!(
            check_json_media_type(Some(value)),
            Err(DecodeError::UnsupportedMediaType {
                media_type: essence.to_owned()
            }),
            "{value:?}"
        );
    }
}

#[test]
fn media_type_missing_header() {
    assert_eq!(
        check_json_media_type(None),
        Err(DecodeError::MissingContentType)
    );
}

#[test]
fn media_type_unparseable_value() {
    for value in [
        "",
        "json",
        "/json",
        "application/json;;",
        "application/json; charset",
        "application/json; charset=",
    ] {
        let result = check_json_media_type(Some(value));
        assert!(
            matches!(result, Err(DecodeError::InvalidContentType { .. })),
            "{value:?} gave {result:?}"
        );
    }
}

#[test]
fn media_type_rejects_other_charset() {
    assert_eq!(
        check_json_media_type(Some("application/json; charset=iso-8859-1")),
        Err(DecodeError::UnsupportedCharset {
            charset: "iso-8859-1".to_owned()
        })
    );
}

#[test]
fn media_type_checks_every_charset() {
    assert_eq!(
        check_json_media_type(Some("application/json; charset=utf-8; charset=latin1")),
        Err(DecodeError::UnsupportedCharset {
            charset: "latin1".to_owned()
        })
    );
}

#[test]
fn json_decodes_object() {
    let value = decode_json(br#"{"temperature": 25.5, "humidity": 60}"#).expect("valid JSON");
    assert_eq!(value, json!({"temperature": 25.5, "humidity": 60}));
}

#[test]
fn json_accepts_any_value_kind() {
    let cases = [
        (&b"[1, 2]"[..], json!([1, 2])),
        (b"\"text\"", json!("text")),
        (b"42", json!(42)),
        (b"null", json!(null)),
        (b" \r\n{} \n", json!({})),
    ];
    for (body, expected) in cases {
        assert_eq!(decode_json(body), Ok(expected));
    }
}

#[test]
fn json_strips_one_bom() {
    let value = decode_json(b"\xEF\xBB\xBF{\"a\": 1}").expect("BOM is stripped");
    assert_eq!(value, json!({"a": 1}));
}

#[test]
fn json_second_bom_is_invalid() {
    let result = decode_json(b"\xEF\xBB\xBF\xEF\xBB\xBF{}");
    assert!(
        matches!(result, Err(DecodeError::InvalidJson { .. })),
        "{result:?}"
    );
}

#[test]
fn json_empty_bodies() {
    for body in [
        &b""[..],
        b"   ",
        b"\r\n\t ",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF \n",
    ] {
        assert_eq!(decode_json(body), Err(DecodeError::EmptyBody), "{body:?}");
    }
}

#[test]
fn json_invalid_utf8_offset_counts_bom() {
    let cases = [
        (&b"{\"a\": \"\xFF\"}"[..], 7),
        (b"\xEF\xBB\xBF{\"a\": \"\xFF\"}", 10),
        (b"{\"a\": \"caf\xC3\"}", 10),
    ];
    for (body, offset) in cases {
        assert_eq!(
            decode_json(body),
            Err(DecodeError::InvalidUtf8 {
                part: PayloadPart::Body,
                offset
            }),
            "{body:?}"
        );
    }
}

#[test]
fn json_invalid_reports_position() {
    let err = decode_json(br#"{"temperature": }"#).expect_err("missing value");
    assert_eq!(
        err,
        DecodeError::InvalidJson {
            line: 1,
            column: 17,
            reason: "expected value".to_owned()
        }
    );
}

#[test]
fn json_invalid_message() {
    let err = decode_json(br#"{"temperature":}"#).expect_err("missing value");
    assert_eq!(
        err.to_string(),
        "invalid JSON at line 1, column 16: expected value; \
         send one JSON value such as {\"temperature\": 25.5}"
    );
}

#[test]
fn json_trailing_text_is_invalid() {
    let err = decode_json(b"{} {}").expect_err("two values");
    let DecodeError::InvalidJson { reason, .. } = err else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(reason, "trailing characters");
}

#[test]
fn json_deep_nesting_is_invalid() {
    let body = "[".repeat(100_000);
    let err = decode_json(body.as_bytes()).expect_err("too deep");
    let DecodeError::InvalidJson { reason, .. } = err else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(reason, "recursion limit exceeded");
}

#[test]
fn json_error_slugs() {
    let cases = [
        (decode_json(b""), "empty-body"),
        (decode_json(b"{"), "invalid-json"),
        (decode_json(b"\"\xFF\""), "invalid-utf8"),
    ];
    for (result, slug) in cases {
        let err = result.expect_err("body is rejected");
        assert_eq!(err.problem_slug(), slug);
    }
}

#[test]
fn media_type_error_slugs() {
    let cases = [
        (None, "missing-content-type"),
        (Some("json"), "invalid-content-type"),
        (Some("text/plain"), "unsupported-media-type"),
        (
            Some("application/json; charset=latin1"),
            "unsupported-charset",
        ),
    ];
    for (value, slug) in cases {
        let err = check_json_media_type(value).expect_err("media type is rejected");
        assert_eq!(err.problem_slug(), slug, "{value:?}");
    }
}
