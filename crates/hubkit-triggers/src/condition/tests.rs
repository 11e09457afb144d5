use serde_json::{Value, json};

use super::*;

/// Parses `value` as JSON text, so numbers keep their digits as received.
fn data(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn check(operator: &str, operands: &[&str], cases: &[(&str, bool)]) {
    let condition = Condition::parse("", operator, operands).unwrap();
    for (value, expected) in cases {
        assert_eq!(
            condition.evaluate(&data(value)),
            *expected,
            "{operator} {operands:?} on {value}"
        );
    }
}

#[test]
fn number_operators_table() {
    check(
        "=",
        &["25"],
        &[("25", true), ("25.0", true), ("24.9", false)],
    );
    check("!=", &["25"], &[("25", false), ("26", true), ("-25", true)]);
    check(
        ">",
        &["30"],
        &[("30.1", true), ("30", false), ("-40", false)],
    );
    check(
        ">=",
        &["30"],
        &[("30", true), ("29.999", false), ("1e2", true)],
    );
    check("<", &["0"], &[("-0.5", true), ("0", false), ("-0", false)]);
    check(
        "<=",
        &["-1.5"],
        &[("-1.5", true), ("-1.4", false), ("-2", true)],
    );
}

#[test]
fn range_includes_both_ends() {
    check(
        "range",
        &["20", "30"],
        &[
            ("19.99", false),
            ("20", true),
            ("25", true),
            ("30", true),
            ("30.01", false),
        ],
    );
    check("range", &["5", "5"], &[("5", true), ("5.1", false)]);
}

#[test]
fn numeric_strings_compare_as_numbers() {
    check(
        ">",
        &["25"],
        &[
            (r#""25.5""#, true),
            (r#"" 26 ""#, true),
            (r#""1e3""#, true),
            (r#""24""#, false),
            (r#""hot""#, false),
            (r#""""#, false),
            (r#""inf""#, false),
            (r#""NaN""#, false),
            (r#""25.5°C""#, false),
        ],
    );
    check("=", &["7"], &[(r#""7.0""#, true), (r#""007""#, true)]);
    check(
        "range",
        &["0", "10"],
        &[(r#""5""#, true), (r#""11""#, false)],
    );
}

#[test]
fn non_numbers_never_match_numeric() {
    for operator in ["=", "!=", ">", ">=", "<", "<="] {
        check(
            operator,
            &["1"],
            &[
                ("true", false),
                ("false", false),
                ("null", false),
                ("[1]", false),
                (r#"{"a": 1}"#, false),
            ],
        );
    }
    check("range", &["0", "2"], &[("true", false), ("null", false)]);
}

#[test]
fn huge_numbers_compare_without_panic() {
    check(
        ">",
        &["1e300"],
        &[
            ("1e400", true),
            ("-1e400", false),
            ("123456789012345678901234567890", false),
            (r#""1e400""#, true),
        ],
    );
    check("<", &["-1e300"], &[("-1e400", true), ("1e400", false)]);
    check("=", &["1e300"], &[("1e400", false)]);
    check("!=", &["1e300"], &[("1e400", true)]);
    check(
        "range",
        &["-1e300", "1e300"],
        &[("1e400", false), ("0", true)],
    );
    check("<", &["0"], &[("1e-400", false), ("-1e-400", false)]);
}

#[test]
fn text_operators_table() {
    check(
        "equals",
        &["open"],
        &[
            (r#""open""#, true),
            (r#""Open""#, false),
            (r#""opened""#, false),
        ],
    );
    check(
        "not_equals",
        &["open"],
        &[(r#""open""#, false), (r#""closed""#, true)],
    );
    check(
        "contains",
        &["err"],
        &[(r#""an error""#, true), (r#""ok""#, false)],
    );
    check(
        "not_contains",
        &["err"],
        &[(r#""an error""#, false), (r#""ok""#, true)],
    );
    check(
        "starts_with",
        &["AB"],
        &[(r#""ABC""#, true), (r#""CAB""#, false)],
    );
    check(
        "not_starts_with",
        &["AB"],
        &[(r#""ABC""#, false), (r#""CAB""#, true)],
    );
    check(
        "ends_with",
        &[".jpg"],
        &[(r#""a.jpg""#, true), (r#""a.png""#, false)],
    );
    check(
        "not_ends_with",
        &[".jpg"],
        &[(r#""a.jpg""#, false), (r#""a.png""#, true)],
    );
    check("equals", &[""], &[(r#""""#, true), (r#""x""#, false)]);
    check("contains", &[""], &[(r#""x""#, true)]);
}

#[test]
fn text_operators_read_json_text() {
    check("equals", &["25.50"], &[("25.50", true), ("25.5", false)]);
    check(
        "starts_with",
        &["1234567890123"],
        &[("12345678901234567890123", true)],
    );
    check("equals", &["true"], &[("true", true), ("false", false)]);
    check("equals", &["null"], &[("null", false)]);
    for operator in [
        "not_equals",
        "not_contains",
        "not_starts_with",
        "not_ends_with",
    ] {
        check(
            operator,
            &["zzz"],
            &[("null", false), ("[]", false), ("{}", false), ("1", true)],
        );
    }
}

#[test]
fn regex_searches_anywhere() {
    check(
        "regex",
        &["^temp-[0-9]+$"],
        &[
            (r#""temp-12""#, true),
            (r#""temp-""#, false),
            (r#""xtemp-12""#, false),
        ],
    );
    check("regex", &["alarm"], &[(r#""fire alarm on""#, true)]);
    check("regex", &["(?i)^OPEN$"], &[(r#""open""#, true)]);
    check(
        "regex",
        &[r"^\d+\.\d$"],
        &[("25.5", true), ("25", false), ("null", false)],
    );
}

#[test]
fn any_matches_present_fields() {
    let condition = Condition::parse("a.b", "any", &[]).unwrap();
    assert!(condition.evaluate(&json!({"a": {"b": null}})));
    assert!(condition.evaluate(&json!({"a": {"b": 0}})));
    assert!(condition.evaluate(&json!({"a": {"b": [1, 2]}})));
    assert!(!condition.evaluate(&json!({"a": {}})));
    assert!(!condition.evaluate(&json!({"a": 1})));

    let whole = Condition::parse("", "any", &[]).unwrap();
    assert!(whole.evaluate(&json!(null)));
    assert!(whole.evaluate(&json!("x")));
}

#[test]
fn missing_fields_are_false() {
    let record = json!({"temperature": 20});
    let cases = [
        ("=", vec!["1"]),
        ("!=", vec!["1"]),
        ("range", vec!["0", "1"]),
        ("not_equals", vec!["x"]),
        ("not_contains", vec!["x"]),
        ("regex", vec![".*"]),
    ];
    for (operator, operands) in cases {
        let condition = Condition::parse("humidity", operator, &operands).unwrap();
        assert!(
            !condition.evaluate(&record),
            "{operator} on a missing field"
        );
    }
}

#[test]
fn nested_paths_and_arrays() {
    let record = json!({
        "sensor": {"readings": [{"t": "19.5"}, {"t": 31}]},
        "tags": ["indoor", "floor-2"],
    });
    let cases = [
        ("sensor.readings.1.t", ">", "30", true),
        ("/sensor/readings/0/t", "<", "20", true),
        ("sensor.readings.2.t", "<", "100", false),
        ("tags.1", "ends_with", "-2", true),
        ("tags", "contains", "indoor", false),
        ("sensor", "=", "1", false),
    ];
    for (path, operator, operand, expected) in cases {
        let condition = Condition::parse(path, operator, &[operand]).unwrap();
        assert_eq!(
            condition.evaluate(&record),
            expected,
            "{path} {operator} {operand}"
        );
    }
}

#[test]
fn operator_names_are_lenient() {
    for name in ["ANY", " any ", "Any"] {
        assert!(
            matches!(Operator::parse(name, &[]).unwrap(), Operator::Any),
            "{name}"
        );
    }
    for name in ["starts-with", "Starts With", "STARTS_WITH"] {
        let operator = Operator::parse(name, &["a"]).unwrap();
        assert!(
            matches!(operator, Operator::Text(TextOperator::StartsWith, _)),
            "{name}"
        );
    }
}

#[test]
fn parse_rejects_unknown_operator() {
    let err = Operator::parse("~=", &["1"]).unwrap_err();
    assert!(matches!(&err, Error::UnknownOperator { name } if name == "~="));
    assert!(err.to_string().contains("\"~=\""), "{err}");
}

#[test]
fn parse_rejects_operand_count() {
    let cases: &[(&str, &[&str])] = &[
        ("any", &["1"]),
        (">", &[]),
        (">", &["1", "2"]),
        ("range", &["1"]),
        ("contains", &[]),
        ("regex", &["a", "b"]),
    ];
    for (name, operands) in cases {
        let err = Operator::parse(name, operands).unwrap_err();
        assert!(
            matches!(&err, Error::OperandCount { count, .. } if *count == operands.len()),
            "{name} {operands:?} gave {err:?}"
        );
    }
}

#[test]
fn parse_rejects_bad_numbers() {
    for operand in ["hot", "", "inf", "NaN", "1e400", "-1e999", "1,5"] {
        let err = Operator::parse(">", &[operand]).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidNumber { operand: o, .. } if o == operand),
            "{operand:?} gave {err:?}"
        );
    }
    let message = Operator::parse("=", &["open"]).unwrap_err().to_string();
    assert!(message.contains("\"open\""), "{message}");
    assert!(message.contains("equals"), "{message}");
}

#[test]
fn parse_rejects_inverted_range() {
    let err = Operator::parse("range", &["30", "20"]).unwrap_err();
    let Error::InvalidRange { min, max } = err else {
        panic!("expected InvalidRange, got {err:?}");
    };
    assert_eq!(min, 30.0);
    assert_eq!(max, 20.0);
    assert!(Operator::parse("range", &["x", "20"]).is_err());
}

#[test]
fn parse_rejects_bad_regex() {
    let err = Operator::parse("regex", &["(unclosed"]).unwrap_err();
    assert!(matches!(&err, Error::InvalidRegex { pattern, .. } if pattern == "(unclosed"));

    // Backreferences and look-around are not in the regex crate's syntax.
    assert!(Operator::parse("regex", &[r"(a)\1"]).is_err());
    assert!(Operator::parse("regex", &["(?=a)"]).is_err());
}

#[test]
fn regex_limits_reject_hostile_patterns() {
    let long = "a".repeat(MAX_REGEX_LEN + 1);
    let err = Operator::parse("regex", &[&long]).unwrap_err();
    assert!(matches!(err, Error::RegexTooLong { len, .. } if len == MAX_REGEX_LEN + 1));

    let big = Operator::parse("regex", &[r"\w{1000}{1000}"]).unwrap_err();
    assert!(matches!(big, Error::InvalidRegex { .. }), "{big:?}");

    let nested = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    let deep = Operator::parse("regex", &[&nested]).unwrap_err();
    assert!(matches!(deep, Error::InvalidRegex { .. }), "{deep:?}");
}

#[test]
fn regex_within_limits_compiles() {
    let pattern = format!("^{}$", "[a-z]{1,3}".repeat(50));
    assert!(Operator::parse("regex", &[&pattern]).is_ok());
    assert!(Operator::parse("regex", &[r"^\w{40}$"]).is_ok());
    assert!(Operator::parse("regex", &[r"^(?-u:\w){1000}$"]).is_ok());
}

#[test]
fn regex_unicode_classes_are_costly() {
    // A Unicode \w compiles to tens of KiB, so a few dozen repetitions reach the limit.
    assert!(Operator::parse("regex", &[r"^\w{60}$"]).is_err());
}

#[test]
fn parse_rejects_bad_path() {
    let err = Condition::parse("a..b", "any", &[]).unwrap_err();
    assert!(matches!(err, Error::InvalidFieldPath { .. }));
}
