use super::CustomPath;
use crate::EndpointError;

#[test]
fn path_accepts_allowed_forms() {
    let long = "a".repeat(1000);
    let accepted = ["sensor-data", "Sensor_Data/room-1", "12345678", &long];
    for path in accepted {
        let parsed = CustomPath::parse(path).expect("path is valid");
        assert_eq!(parsed.as_str(), path);
    }
}

#[test]
fn path_length_limits() {
    let cases = [
        ("", 0),
        ("abc", 3),
        ("abcdefg", 7),
        (&"a".repeat(1001), 1001),
    ];
    for (path, length) in cases {
        let err = CustomPath::parse(path).expect_err("length is out of range");
        assert!(
            matches!(err, EndpointError::PathLength { length: found, .. } if found == length),
            "{path:?} gave {err:?}"
        );
    }
}

#[test]
fn path_length_message() {
    let err = CustomPath::parse("abc").expect_err("too short");
    assert_eq!(
        err.to_string(),
        "custom path \"abc\" is 3 characters; it must be 8 to 1000"
    );
}

#[test]
fn path_space_is_named() {
    let err = CustomPath::parse("abcd efgh").expect_err("space is not allowed");
    assert_eq!(
        err.to_string(),
        "custom path \"abcd efgh\" contains a space at position 5; \
         use only A-Z, a-z, 0-9, '-', '_' and '/'"
    );
}

#[test]
fn path_rejected_characters() {
    let cases = [
        ("sensor\tdata", '\t', 7),
        ("sensor.data", '.', 7),
        ("sensor%20data", '%', 7),
        ("sensor?data=1", '?', 7),
        ("café-data", 'é', 4),
        ("sensor\ndata", '\n', 7),
        ("sensor\\data", '\\', 7),
    ];
    for (path, character, position) in cases {
        assert_eq!(
            CustomPath::parse(path),
            Err(EndpointError::PathCharacter {
                path: path.to_owned(),
                character,
                position
            }),
            "{path:?}"
        );
    }
}

#[test]
fn path_tab_is_named() {
    let err = CustomPath::parse("abc\tdefgh").expect_err("tab is not allowed");
    assert!(
        err.to_string().contains("contains a tab at position 4"),
        "{err}"
    );
}

#[test]
fn path_slash_rules() {
    let leading = CustomPath::parse("/sensor-data");
    assert!(
        matches!(leading, Err(EndpointError::PathLeadingSlash { .. })),
        "{leading:?}"
    );
    let trailing = CustomPath::parse("sensor-data/");
    assert!(
        matches!(trailing, Err(EndpointError::PathTrailingSlash { .. })),
        "{trailing:?}"
    );
    let empty = CustomPath::parse("sensor//data");
    assert!(
        matches!(
            empty,
            Err(EndpointError::PathEmptySegment { position: 7, .. })
        ),
        "{empty:?}"
    );
}

#[test]
fn path_error_shortens_long_value() {
    let path = format!("{}.", "a".repeat(2000));
    let err = CustomPath::parse(&path).expect_err("dot is not allowed");
    let expected = format!("custom path \"{}...\" contains '.'", "a".repeat(60));
    assert!(err.to_string().starts_with(&expected), "{err}");
}

#[test]
fn path_deserializes_with_validation() {
    let parsed: CustomPath = serde_json::from_str("\"sensor-data\"").expect("path is valid");
    assert_eq!(parsed.as_str(), "sensor-data");
    let invalid = serde_json::from_str::<CustomPath>("\"abc\"");
    assert!(invalid.is_err());
}
