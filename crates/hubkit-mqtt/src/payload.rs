//! Payloads into record data, by a topic entry's payload format.

use hubkit_decode::DecodeError;
use serde_json::Value;

use crate::DataFormat;

/// Decodes a payload into the record's `Data`: one JSON value for
/// [`DataFormat::Json`], a JSON string for [`DataFormat::String`].
///
/// # Errors
///
/// Returns the reason the payload does not fit the format, for its dead letter: empty
/// or invalid JSON, or invalid UTF-8 with the offset of the first bad byte.
pub fn decode_payload(format: DataFormat, payload: &[u8]) -> Result<Value, String> {
    match format {
        DataFormat::Json => hubkit_decode::decode_json(payload).map_err(|err| match err {
            DecodeError::EmptyBody => "payload is empty; a json topic entry needs one JSON \
                                       value such as {\"temperature\": 25.5}"
                .to_owned(),
            DecodeError::InvalidUtf8 { offset, .. } => {
                format!("payload is not valid UTF-8 at byte {offset}; JSON must be UTF-8")
            }
            DecodeError::InvalidJson {
                line,
                column,
                reason,
            } => format!("payload is invalid JSON at line {line}, column {column}: {reason}"),
            other => other.to_string(),
        }),
        DataFormat::String => match std::str::from_utf8(payload) {
            Ok(text) => Ok(Value::String(text.to_owned())),
            Err(err) => Err(format!(
                "payload is not valid UTF-8 at byte {}; a string topic entry needs UTF-8 text",
                err.valid_up_to()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payload_becomes_value() {
        let value = decode_payload(DataFormat::Json, br#"{"temperature": 25.5}"#).expect("valid");
        assert_eq!(value["temperature"].to_string(), "25.5");
    }

    #[test]
    fn string_payload_becomes_string() {
        let value = decode_payload(DataFormat::String, "24.5 °C".as_bytes()).expect("valid");
        assert_eq!(value, Value::String("24.5 °C".into()));
        let empty = decode_payload(DataFormat::String, b"").expect("valid");
        assert_eq!(empty, Value::String(String::new()));
    }

    #[test]
    fn bad_payloads_name_the_rule() {
        let cases: [(DataFormat, &[u8], &str); 5] = [
            (DataFormat::Json, b"", "payload is empty"),
            (
                DataFormat::Json,
                b"{\"t\": ",
                "invalid JSON at line 1, column 6",
            ),
            (
                DataFormat::Json,
                b"{\"t\": \"\xff\"}",
                "not valid UTF-8 at byte 7",
            ),
            (DataFormat::Json, b"25.5 26", "invalid JSON at line 1"),
            (DataFormat::String, b"ok\xc3", "not valid UTF-8 at byte 2"),
        ];
        for (format, payload, expected) in cases {
            let err = decode_payload(format, payload).expect_err("invalid");
            assert!(err.contains(expected), "{payload:?}: {err}");
        }
    }
}
