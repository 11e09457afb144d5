//! Decodes the captured requests of `fixtures/http`.

#[path = "../../../fixtures/http/request.rs"]
mod request;

use hubkit_decode::{DecodeError, PayloadPart, check_json_media_type, decode_json, decode_query};
use request::Request;
use serde_json::{Value, json};

/// Decodes a fixture's body as the server does for a JSON webhook.
fn decode_body(case: &str) -> Result<Value, DecodeError> {
    let request = Request::load(case);
    check_json_media_type(request.header_str("content-type"))?;
    decode_json(&request.body)
}

fn decode_target_query(case: &str) -> Result<Value, DecodeError> {
    let request = Request::load(case);
    decode_query(request.query()).map(Value::Object)
}

#[test]
fn fixture_json_bodies_decode() {
    let cases = [
        ("json-post", json!({"temperature": 25.5, "humidity": 60})),
        (
            "json-post-basic-auth",
            json!({"temperature": 25.5, "humidity": 60}),
        ),
        (
            "json-post-chunked",
            json!({"temperature": 25.5, "humidity": 60}),
        ),
        ("json-charset-utf8", json!({"name": "café"})),
        ("json-bom", json!({"temperature": 25.5})),
        ("basic-password-colon", json!({"temperature": 25.5})),
    ];
    for (case, expected) in cases {
        assert_eq!(decode_body(case), Ok(expected), "{case}");
    }
}

#[test]
fn fixture_invalid_json_position() {
    assert_eq!(
        decode_body("json-invalid"),
        Err(DecodeError::InvalidJson {
            line: 1,
            column: 17,
            reason: "expected value".to_owned()
        })
    );
}

#[test]
fn fixture_text_plain_rejected() {
    assert_eq!(
        decode_body("json-text-plain"),
        Err(DecodeError::UnsupportedMediaType {
            media_type: "text/plain".to_owned()
        })
    );
}

#[test]
fn fixture_missing_content_type() {
    assert_eq!(
        decode_body("json-no-content-type"),
        Err(DecodeError::MissingContentType)
    );
}

#[test]
fn fixture_query_values_stay_strings() {
    assert_eq!(
        decode_target_query("query-get"),
        Ok(json!({"temperature": "25.5", "humidity": "60"}))
    );
}

#[test]
fn fixture_query_repeated_keys() {
    assert_eq!(
        decode_target_query("query-repeated-keys"),
        Ok(json!({"name": "café", "tag": ["a", "b"], "note": "hello world"}))
    );
}

#[test]
fn fixture_query_invalid_utf8() {
    assert_eq!(
        decode_target_query("query-invalid-utf8"),
        Err(DecodeError::InvalidUtf8 {
            part: PayloadPart::QueryValue {
                key: "name".to_owned()
            },
            offset: 22,
        })
    );
}
