use serde_json::{Value, json};

use super::decode_query;
use crate::{DecodeError, PayloadPart};

fn decoded(query: &str) -> Value {
    Value::Object(decode_query(query).expect("query decodes"))
}

#[test]
fn query_empty_gives_empty_map() {
    assert_eq!(decoded(""), json!({}));
}

#[test]
fn query_values_stay_strings() {
    assert_eq!(
        decoded("temperature=25.5&humidity=60"),
        json!({"temperature": "25.5", "humidity": "60"})
    );
}

#[test]
fn query_repeated_keys_become_array() {
    assert_eq!(
        decoded("tag=a&x=1&tag=b&tag=c"),
        json!({"tag": ["a", "b", "c"], "x": "1"})
    );
}

#[test]
fn query_keys_keep_first_order() {
    let map = decode_query("zeta=1&alpha=2&zeta=3&mid=4").expect("query decodes");
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(keys, ["zeta", "alpha", "mid"]);
}

#[test]
fn query_decoding_rules() {
    let cases = [
        ("note=hello+world", json!({"note": "hello world"})),
        ("note=hello%20world", json!({"note": "hello world"})),
        ("sum=1%2B1", json!({"sum": "1+1"})),
        ("name=caf%C3%A9", json!({"name": "café"})),
        ("name=caf%c3%a9", json!({"name": "café"})),
        ("name=café", json!({"name": "café"})),
        ("flag", json!({"flag": ""})),
        ("flag=", json!({"flag": ""})),
        ("=value", json!({"": "value"})),
        ("a=b=c", json!({"a": "b=c"})),
        ("&&a=1&&", json!({"a": "1"})),
        ("a+b=1", json!({"a b": "1"})),
        ("tag[]=1", json!({"tag[]": "1"})),
    ];
    for (query, expected) in cases {
        assert_eq!(decoded(query), expected, "query {query:?}");
    }
}

#[test]
fn query_stray_percent_stays_literal() {
    let cases = [
        ("a=%", "%"),
        ("a=100%", "100%"),
        ("a=%4", "%4"),
        ("a=%zz", "%zz"),
        ("a=%4g", "%4g"),
        ("a=%%41", "%A"),
    ];
    for (query, expected) in cases {
        assert_eq!(decoded(query), json!({"a": expected}), "query {query:?}");
    }
}

#[test]
fn query_invalid_utf8_names_value_key() {
    let err = decode_query("name=%FF").expect_err("%FF is not UTF-8");
    assert_eq!(
        err,
        DecodeError::InvalidUtf8 {
            part: PayloadPart::QueryValue {
                key: "name".to_owned()
            },
            offset: 5,
        }
    );
}

#[test]
fn query_invalid_utf8_offsets() {
    let cases = [
        ("a=1&&b=x%FFy", 8),
        ("a=%C3", 2),
        ("a=%C3%28", 2),
        ("a=caf%C3%A9+%E9", 12),
        ("a=%E2%82", 2),
    ];
    for (query, offset) in cases {
        let err = decode_query(query).expect_err("value is not UTF-8");
        let DecodeError::InvalidUtf8 { offset: found, .. } = err else {
            panic!("query {query:?} gave {err:?}");
        };
        assert_eq!(found, offset, "query {query:?}");
    }
}

#[test]
fn query_invalid_utf8_key_names_index() {
    let err = decode_query("a=1&&x%FF=2").expect_err("key is not UTF-8");
    assert_eq!(
        err,
        DecodeError::InvalidUtf8 {
            part: PayloadPart::QueryKey { index: 2 },
            offset: 6,
        }
    );
}

#[test]
fn query_invalid_utf8_message() {
    let err = decode_query("name=%FF").expect_err("%FF is not UTF-8");
    assert_eq!(
        err.to_string(),
        "value of query parameter \"name\" is not valid UTF-8 at byte 5; \
         percent-encode text as UTF-8, such as caf%C3%A9 for \"café\""
    );
}

#[test]
fn query_long_key_is_shortened_in_error() {
    let key = "k".repeat(100);
    let err = decode_query(&format!("{key}=%FF")).expect_err("%FF is not UTF-8");
    let DecodeError::InvalidUtf8 {
        part: PayloadPart::QueryValue { key: shown },
        ..
    } = err
    else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(shown, format!("{}...", "k".repeat(60)));
}
