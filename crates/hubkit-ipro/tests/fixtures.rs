//! Parses the synthetic camera requests of `fixtures/ipro` and checks the events.

#![allow(clippy::unwrap_used)]

#[path = "../../../fixtures/http/request.rs"]
mod request;

use std::path::PathBuf;

use hubkit_ipro::{EventKind, Notification, Parsed, parse};
use request::Request;
use serde_json::{Value, json};

/// Reads `fixtures/ipro/<case>.http` and parses it as the server would.
fn parse_fixture(case: &str) -> Parsed {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/ipro")
        .join(format!("{case}.http"));
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|err| panic!("failed to read {}: {err}", path.display()));
    let request = Request::parse(&bytes);
    let camera_path = request
        .path()
        .strip_prefix("/ipro/")
        .expect("an i-PRO path");
    let path_rest = camera_path.splitn(3, '/').nth(2).unwrap_or("");
    let query = Some(request.query()).filter(|query| !query.is_empty());
    let notification = Notification {
        method: &request.method,
        path_rest,
        query,
        content_type: request.header_str("content-type"),
        body: &request.body,
    };
    parse(&notification)
}

/// Returns the only event, after checking that there is one.
fn only_event(parsed: &Parsed) -> &hubkit_ipro::Event {
    assert_eq!(parsed.events.len(), 1, "{:#?}", parsed.events);
    &parsed.events[0]
}

#[test]
fn general_codes_from_query_and_path() {
    let cases = [
        (
            "general-src-query",
            "AB",
            json!("on-camera application alarm"),
        ),
        (
            "general-path-tail",
            "AB",
            json!("on-camera application alarm"),
        ),
        ("general-alrmsrc2", "01", json!("SD card full")),
        ("general-almsrc2", "A5", json!("SD card write error")),
        ("general-alarmsrc2", "A8", json!("SD card other error")),
    ];
    for (case, code, source) in cases {
        let parsed = parse_fixture(case);
        let event = only_event(&parsed);
        assert_eq!(event.kind, EventKind::Alarm, "{case}");
        assert_eq!(event.data["Alarm"]["Code"], code, "{case}");
        assert_eq!(event.data["Alarm"]["Source"], source, "{case}");
        assert!(event.errors.is_empty(), "{case}: {:?}", event.errors);
        assert!(parsed.images.is_empty(), "{case}");
    }
}

#[test]
fn general_notification_fields() {
    let query = parse_fixture("general-src-query");
    assert_eq!(
        only_event(&query).data["Notification"],
        json!({"Query": {"src": "AB"}})
    );
    let path = parse_fixture("general-path-tail");
    assert_eq!(
        only_event(&path).data["Notification"],
        json!({"Path": ["AB"]})
    );
}

#[test]
fn aivmd_two_areas() {
    let parsed = parse_fixture("aivmd-two-areas");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::AiMotion);
    assert!(event.errors.is_empty(), "{:?}", event.errors);
    assert_eq!(event.images, [0]);
    assert_eq!(parsed.images.len(), 1);
    assert_eq!(parsed.images[0].media_type, "image/jpeg");
    assert_eq!(parsed.images[0].extension, "jpg");
    assert_eq!(parsed.images[0].origin, "body");

    let motion = &event.data["AiMotion"];
    assert_eq!(motion["UtcClock"], 1_733_300_000);
    assert_eq!(motion["TimeZone"], "+09:00");
    assert_eq!(motion["Detection"], true);
    assert_eq!(motion["Image"], json!({"Width": 1920, "Height": 1080}));
    assert_eq!(
        motion["Areas"][0],
        json!({
            "AreaId": 1, "DetectArea": 1, "AlarmType": "intruder", "Object": "person",
            "Direction": null, "BoundingBox": {"X": 640, "Y": 300, "Width": 120, "Height": 360}
        })
    );
    assert_eq!(motion["Areas"][1]["AlarmType"], "cross-line");
    assert_eq!(motion["Areas"][1]["Object"], "bike");
    assert_eq!(motion["Areas"][1]["Direction"], "a-to-b");
    assert!(!event.data.contains_key("Alarm"));
}

#[test]
fn aivmd_no_detection() {
    let parsed = parse_fixture("aivmd-no-detection");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::AiMotion);
    assert_eq!(event.data["AiMotion"]["Detection"], false);
    assert_eq!(event.data["AiMotion"]["Areas"], json!([]));
    assert_eq!(event.images, [0]);
}

#[test]
fn onvif_face_appevent() {
    let parsed = parse_fixture("onvif-face-appevent");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Onvif);
    assert!(event.errors.is_empty(), "{:?}", event.errors);
    let onvif = &event.data["Onvif"];
    assert_eq!(onvif["Topic"], "tns1:AppEvent/FaceApp/RegisteredFace");
    assert_eq!(onvif["App"], "FaceApp");
    assert_eq!(onvif["EventName"], "RegisteredFace");
    assert_eq!(onvif["UtcTime"], "2024-12-04T06:00:00.000Z");
    assert_eq!(onvif["Source"], json!({"VideoSource": "VideoSourceConfig"}));
    assert_eq!(onvif["EventDetail"], "person=Sato list=VIP");
    assert_eq!(onvif["Likelihood"], json!(0.87));
    assert!(onvif.get("Key").is_none());
    assert_eq!(
        event.data["Face"],
        json!({"Person": "Sato", "List": "VIP", "Score": 0.87})
    );
    assert_eq!(event.images, [0]);
    let image = &parsed.images[0];
    assert_eq!(image.media_type, "image/jpeg");
    assert_eq!(image.origin, "onvif message 1 Image");
    assert!(image.bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
    assert!(image.bytes.ends_with(&[0xFF, 0xD9]));
}

#[test]
fn onvif_two_messages() {
    let parsed = parse_fixture("onvif-two-messages");
    assert_eq!(parsed.events.len(), 2);
    let motion = &parsed.events[0];
    assert_eq!(motion.kind, EventKind::Onvif);
    assert_eq!(motion.data["Onvif"]["App"], Value::Null);
    assert_eq!(motion.data["Onvif"]["PropertyOperation"], "Changed");
    assert_eq!(motion.data["Onvif"]["Key"], json!({"Rule": "MotionRule1"}));
    assert_eq!(motion.data["Onvif"]["Data"], json!({"IsMotion": "true"}));
    assert!(!motion.data.contains_key("Crowd"));

    let crowd = &parsed.events[1];
    assert_eq!(crowd.data["Onvif"]["App"], "CrowdApp");
    assert_eq!(crowd.data["Onvif"]["EventName"], "Exceeded");
    assert_eq!(crowd.data["Onvif"]["Likelihood"], "high");
    assert_eq!(crowd.data["Crowd"], json!({"Area": "1", "Count": "12"}));
    assert!(!crowd.data.contains_key("Face"), "{:?}", crowd.data);
    assert!(parsed.images.is_empty());
}

#[test]
fn onvif_bad_base64_keeps_event() {
    let parsed = parse_fixture("onvif-bad-base64");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Onvif);
    assert_eq!(event.errors.len(), 1, "{:?}", event.errors);
    assert!(
        event.errors[0].starts_with("ONVIF message 1 item \"Image\": base64 image is invalid"),
        "{}",
        event.errors[0]
    );
    assert!(event.images.is_empty());
    assert!(parsed.images.is_empty());
    assert_eq!(event.data["Face"]["Person"], "Sato");
}

#[test]
fn crowd_same_fields_in_three_encodings() {
    let expected_strings =
        json!({"Area": "1", "Count": "12", "Threshold": "10", "State": "exceeded"});
    let expected_numbers = json!({"Area": 1, "Count": 12, "Threshold": 10, "State": "exceeded"});
    for (case, expected) in [
        ("crowd-json", &expected_numbers),
        ("crowd-form", &expected_strings),
        ("crowd-xml", &expected_strings),
    ] {
        let parsed = parse_fixture(case);
        let event = only_event(&parsed);
        assert_eq!(event.kind, EventKind::Crowd, "{case}");
        assert_eq!(&event.data["Crowd"], expected, "{case}");
        assert!(event.data.contains_key("Body"), "{case}");
        assert!(!event.data.contains_key("Face"), "{case}");
        assert!(event.errors.is_empty(), "{case}: {:?}", event.errors);
    }
}

#[test]
fn crowd_xml_body_is_tree() {
    let parsed = parse_fixture("crowd-xml");
    assert_eq!(
        only_event(&parsed).data["Body"],
        json!({"CrowdDetection": {"Area": "1", "Count": "12", "Threshold": "10", "State": "exceeded"}})
    );
}

#[test]
fn crowd_json_array_makes_two_events() {
    let parsed = parse_fixture("crowd-json-array");
    assert_eq!(parsed.events.len(), 2);
    assert_eq!(parsed.events[0].data["Crowd"]["Area"], 1);
    assert_eq!(parsed.events[1].data["Crowd"]["Area"], 2);
    assert_eq!(parsed.events[1].data["Crowd"]["State"], "normal");
    assert!(
        parsed
            .events
            .iter()
            .all(|event| event.kind == EventKind::Crowd)
    );
}

#[test]
fn face_json_fields() {
    let parsed = parse_fixture("face-json");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Face);
    assert_eq!(
        event.data["Face"],
        json!({
            "Person": "Sato", "List": "VIP", "Score": 0.87,
            "Attributes": {"age": 40, "gender": "male"}
        })
    );
}

#[test]
fn face_multipart_attaches_image() {
    let parsed = parse_fixture("face-multipart");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Face);
    assert!(event.errors.is_empty(), "{:?}", event.errors);
    assert_eq!(
        event.data["Face"],
        json!({"Person": "Sato", "List": "VIP", "Score": 87})
    );
    assert_eq!(event.images, [0]);
    let image = &parsed.images[0];
    assert_eq!(image.origin, "part 2 image");
    assert_eq!(image.media_type, "image/jpeg");
    assert!(image.bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
    assert!(
        image.bytes.ends_with(&[0xFF, 0xD9]),
        "the part's CRLF is not part of the image"
    );
}

#[test]
fn invalid_json_is_request_with_position() {
    let parsed = parse_fixture("invalid-json");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert_eq!(
        event.errors,
        ["JSON body: expected value at line 1 column 22"]
    );
    assert_eq!(
        event.data["Body"],
        json!({"MediaType": "application/json", "Size": 22})
    );
}

#[test]
fn unknown_body_is_request() {
    let parsed = parse_fixture("unknown-body");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert_eq!(event.errors.len(), 1);
    assert_eq!(
        event.data["Body"],
        json!({"MediaType": "application/octet-stream", "Size": 256})
    );
    assert!(parsed.images.is_empty());
}
