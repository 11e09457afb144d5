use super::*;

fn filter(value: &str) -> TopicFilter {
    TopicFilter::parse(value).unwrap_or_else(|err| panic!("{value:?}: {err}"))
}

#[test]
fn valid_filters() {
    for value in [
        "sensors/#",
        "#",
        "+",
        "+/+",
        "/+",
        "sensors/+/temperature",
        "sport/tennis/player1/#",
        "a//b",
        "/",
        "$SYS/#",
        "$share/group/sensors/#",
        "$share/g/+",
        "caf\u{e9}/\u{1f321}",
    ] {
        assert!(TopicFilter::parse(value).is_ok(), "{value:?}");
    }
}

#[test]
fn invalid_filters_name_the_rule() {
    let long = "a".repeat(MAX_TOPIC_BYTES + 1);
    for (value, expected) in [
        ("", "empty"),
        (long.as_str(), "at most 65535"),
        ("a\0b", "null character"),
        ("sport/tennis#", "`#` at level 2"),
        ("sport/#/ranking", "`#` at level 2"),
        ("#/a", "`#` at level 1"),
        ("sport+", "`+` inside level 1"),
        ("sport/+tennis/x", "`+` inside level 2"),
        ("$share/", "no filter after the group"),
        ("$share/group", "no filter after the group"),
        ("$share//a", "group name is empty"),
        ("$share/g+/a", "group name contains a wildcard"),
        ("$share/g#/a", "group name contains a wildcard"),
        ("$share/g/", "filter after the group is empty"),
        ("$share/g/a#", "`#` at level 1"),
    ] {
        let err = TopicFilter::parse(value).expect_err(value).to_string();
        assert!(err.contains(expected), "{value:?}: {err}");
    }
}

/// Cases from MQTT 3.1.1 section 4.7 and MQTT 5.0 section 4.7: filter, topic, matches.
#[test]
fn matching_follows_the_specification() {
    for (filter_text, topic, expected) in [
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("#", "sport/tennis", true),
        ("#", "/", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+", "sport", true),
        ("a//b", "a//b", true),
        ("a/+/b", "a//b", true),
        ("sensors/room1", "sensors/room1", true),
        ("sensors/room1", "Sensors/room1", false),
        ("sensors/room1", "sensors/room1/", false),
        ("sensors/#", "sensors/room1/temperature", true),
        ("sensors/#", "sensor", false),
    ] {
        assert_eq!(
            filter(filter_text).matches(topic),
            expected,
            "{filter_text:?} against {topic:?}"
        );
    }
}

#[test]
fn wildcards_skip_dollar_topics() {
    assert!(!filter("#").matches("$SYS/broker/uptime"));
    assert!(!filter("+/monitor/Clients").matches("$SYS/monitor/Clients"));
    assert!(filter("$SYS/#").matches("$SYS/monitor/Clients"));
    assert!(filter("$SYS/monitor/+").matches("$SYS/monitor/Clients"));
    assert!(filter("a/#").matches("a/$b"));
}

#[test]
fn shared_subscription_prefix_is_stripped_for_matching() {
    let shared = filter("$share/hubkit/sensors/#");
    assert_eq!(shared.subscription(), "$share/hubkit/sensors/#");
    assert_eq!(shared.filter(), "sensors/#");
    assert_eq!(shared.share_group(), Some("hubkit"));
    assert!(shared.matches("sensors/room1"));
    assert!(!shared.matches("$share/hubkit/sensors/room1"));
    assert_eq!(filter("sensors/#").share_group(), None);
}

#[test]
fn topic_names() {
    assert!(validate_topic_name("sensors/room1").is_ok());
    assert!(validate_topic_name("$SYS/x").is_ok());
    for (value, expected) in [
        ("", "empty"),
        ("a/+", "contains `+`"),
        ("a/#", "contains `#`"),
        ("a\0", "null character"),
    ] {
        let err = validate_topic_name(value).expect_err(value).to_string();
        assert!(err.contains(expected), "{value:?}: {err}");
    }
}

#[test]
fn covers_follows_matching() {
    let cases = [
        ("sensors/#", "sensors/+/temperature", true),
        ("sensors/#", "sensors", true),
        ("sensors/#", "sensors/#", true),
        ("#", "sensors/a", true),
        ("#", "$SYS/broker", false),
        ("+/a", "$x/a", false),
        ("+/a", "b/a", true),
        ("sensors/+", "sensors/#", false),
        ("sensors/+", "sensors/a/b", false),
        ("sensors/+/temperature", "sensors/#", false),
        ("sensors/a", "sensors/+", false),
        ("a/+/c", "a/b/+", false),
        ("a/b", "a/b/c", false),
        ("$share/g/sensors/#", "$share/g/sensors/a", true),
        ("$share/g/sensors/#", "sensors/a", false),
        ("sensors/#", "$share/g/sensors/a", false),
    ];
    for (wide, narrow, expected) in cases {
        let wide_filter = TopicFilter::parse(wide).expect(wide);
        let narrow_filter = TopicFilter::parse(narrow).expect(narrow);
        assert_eq!(
            wide_filter.covers(&narrow_filter),
            expected,
            "{wide} covers {narrow}"
        );
    }
}
