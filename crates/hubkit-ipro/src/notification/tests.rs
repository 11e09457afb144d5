//! Unit tests of [`parse`] on hand-built requests, including hostile ones.

use serde_json::json;

use super::*;

fn notification<'a>(content_type: Option<&'a str>, body: &'a [u8]) -> Notification<'a> {
    Notification {
        method: "POST",
        path_rest: "",
        query: None,
        content_type,
        body,
    }
}

fn parse_body(content_type: Option<&str>, body: &[u8]) -> Parsed {
    parse(&notification(content_type, body))
}

fn only_event(parsed: &Parsed) -> &Event {
    assert_eq!(parsed.events.len(), 1, "{:#?}", parsed.events);
    &parsed.events[0]
}

/// Returns a JPEG with a COM segment that contains `comment`.
fn jpeg_with_comment(comment: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xFE];
    bytes.extend(u16::try_from(comment.len() + 2).unwrap().to_be_bytes());
    bytes.extend(comment);
    bytes.extend([0xFF, 0xD9]);
    bytes
}

/// The signature and header of a 1x1 PNG, enough for `infer` to detect it.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

#[test]
fn empty_request_makes_request_event() {
    let parsed = parse_body(None, b"");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert!(event.data.is_empty());
    assert!(event.errors.is_empty());
}

#[test]
fn query_repeated_keys_become_array() {
    let request = Notification {
        query: Some("tag=a&tag=b&note=hello+world&name=caf%C3%A9&&flag"),
        ..notification(None, b"")
    };
    let parsed = parse(&request);
    assert_eq!(
        only_event(&parsed).data["Notification"]["Query"],
        json!({"tag": ["a", "b"], "note": "hello world", "name": "café", "flag": ""})
    );
}

#[test]
fn query_invalid_utf8_is_replaced() {
    let request = Notification {
        query: Some("name=%FF"),
        ..notification(None, b"")
    };
    let parsed = parse(&request);
    let event = only_event(&parsed);
    assert_eq!(event.data["Notification"]["Query"]["name"], "\u{FFFD}");
    assert_eq!(event.errors.len(), 1);
    assert!(event.errors[0].contains("\"name\""), "{}", event.errors[0]);
}

#[test]
fn path_segments_are_decoded() {
    let request = Notification {
        path_rest: "events//front%20door/AB/",
        ..notification(None, b"")
    };
    let parsed = parse(&request);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Alarm);
    assert_eq!(
        event.data["Notification"],
        json!({"Path": ["events", "front door", "AB"]})
    );
    assert_eq!(
        event.data["Alarm"],
        json!({"Code": "AB", "Source": "on-camera application alarm"})
    );
}

#[test]
fn unknown_code_has_null_source() {
    let request = Notification {
        query: Some("src=7f"),
        ..notification(None, b"")
    };
    let parsed = parse(&request);
    assert_eq!(
        only_event(&parsed).data["Alarm"],
        json!({"Code": "7F", "Source": null})
    );
}

#[test]
fn alarm_is_added_to_body_events() {
    let request = Notification {
        query: Some("src=AB"),
        ..notification(Some("application/json"), br#"{"count": 3}"#)
    };
    let parsed = parse(&request);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Crowd);
    assert_eq!(event.data["Alarm"]["Code"], "AB");
    let keys: Vec<&str> = event.data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["Notification", "Alarm", "Crowd", "Body"]);
}

#[test]
fn failed_body_keeps_alarm_and_request_kind() {
    let request = Notification {
        query: Some("src=AB"),
        ..notification(Some("application/json"), b"{")
    };
    let parsed = parse(&request);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert_eq!(event.data["Alarm"]["Code"], "AB");
    assert_eq!(event.errors.len(), 1);
}

#[test]
fn sniffing_generic_and_missing_types() {
    let cases: [(Option<&str>, &[u8], EventKind); 6] = [
        (Some("text/plain"), br#"{"count": 1}"#, EventKind::Crowd),
        (
            None,
            b"\xEF\xBB\xBF  <a><score>1</score></a>",
            EventKind::Face,
        ),
        (
            Some("application/octet-stream"),
            b"person=Sato\r\n",
            EventKind::Face,
        ),
        (None, b"[1, 2]", EventKind::Data),
        (Some("text/plain"), b"hello world", EventKind::Request),
        (Some("application/pdf"), b"%PDF-1.4", EventKind::Request),
    ];
    for (content_type, body, kind) in cases {
        let parsed = parse_body(content_type, body);
        assert_eq!(parsed.events[0].kind, kind, "{content_type:?} {body:?}");
    }
}

#[test]
fn json_with_bom_and_charset() {
    let parsed = parse_body(
        Some("application/json; charset=utf-8"),
        b"\xEF\xBB\xBF{\"person\": \"Sato\"}",
    );
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Face);
    assert_eq!(event.data["Face"], json!({"Person": "Sato"}));
}

#[test]
fn json_scalar_is_data() {
    let parsed = parse_body(Some("application/json"), b"42");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Data);
    assert_eq!(event.data["Body"], json!(42));
}

#[test]
fn json_numbers_keep_every_digit() {
    let parsed = parse_body(
        Some("application/json"),
        br#"{"count": 123456789012345678901234567890}"#,
    );
    assert_eq!(
        only_event(&parsed).data["Crowd"]["Count"].to_string(),
        "123456789012345678901234567890"
    );
}

#[test]
fn picker_searches_nested_objects() {
    let body = br#"{"event": {"face": {"person": {"personName": "Sato"}, "Similarity": "0.9"}}, "status": "ok"}"#;
    let parsed = parse_body(Some("application/json"), body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Face);
    assert_eq!(
        event.data["Face"],
        json!({"Person": "Sato", "Score": "0.9"})
    );
    assert!(
        !event.data.contains_key("Crowd"),
        "State alone is not a crowd"
    );
}

#[test]
fn picker_skips_arrays_and_nulls() {
    let body = br#"{"people": [{"name": "A"}], "count": null, "area_name": "gate"}"#;
    let parsed = parse_body(Some("application/json"), body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Crowd);
    assert_eq!(event.data["Crowd"], json!({"Area": "gate"}));
}

#[test]
fn picker_tie_breaks() {
    let cases: [(&[u8], EventKind); 3] = [
        // Crowd has three fields, Face one.
        (
            br#"{"person": "cam", "area": 1, "count": 2, "state": "ok"}"#,
            EventKind::Crowd,
        ),
        // One field each: Crowd wins with Count.
        (br#"{"count": 2, "score": 0.5}"#, EventKind::Crowd),
        // One field each: Face wins over Area alone.
        (br#"{"area": 1, "score": 0.5}"#, EventKind::Face),
    ];
    for (body, kind) in cases {
        let parsed = parse_body(Some("application/json"), body);
        let event = only_event(&parsed);
        assert_eq!(event.kind, kind, "{}", String::from_utf8_lossy(body));
        assert!(event.data.contains_key("Crowd"));
        assert!(event.data.contains_key("Face"));
    }
}

#[test]
fn png_body_is_image_event() {
    let parsed = parse_body(Some("image/png"), PNG);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Image);
    assert_eq!(event.images, [0]);
    assert_eq!(parsed.images[0].media_type, "image/png");
    assert_eq!(parsed.images[0].extension, "png");
}

#[test]
fn jpeg_without_result_is_image_event() {
    let jpeg = jpeg_with_comment(b"hello");
    let parsed = parse_body(None, &jpeg);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Image);
    assert!(event.errors.is_empty());
    assert_eq!(parsed.images[0].bytes, jpeg);
}

#[test]
fn truncated_aivmd_is_image_with_error() {
    // Tag 0x002F with a length of 40 but only 4 bytes of value.
    let jpeg = jpeg_with_comment(&[0x00, 0x2F, 0x00, 0x28, 1, 2, 3, 4]);
    let parsed = parse_body(Some("image/jpeg"), &jpeg);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Image);
    assert_eq!(event.errors.len(), 1);
    assert!(
        event.errors[0].starts_with("AI-VMD result in body: "),
        "{}",
        event.errors[0]
    );
}

#[test]
fn generic_xml_tree() {
    let body = br#"<r a="1"><x>1</x><x>2</x><m>text <b>bold</b> tail</m><e/></r>"#;
    let parsed = parse_body(Some("text/xml"), body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Data);
    assert_eq!(
        event.data["Body"],
        json!({"r": {"@a": "1", "x": ["1", "2"], "m": {"b": "bold", "#text": "texttail"}, "e": ""}})
    );
}

#[test]
fn xml_entities_in_dtd_are_rejected() {
    let body = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>"#;
    let parsed = parse_body(Some("application/xml"), body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert!(
        event.errors[0].starts_with("XML body: "),
        "{}",
        event.errors[0]
    );
}

#[test]
fn bare_notify_is_onvif() {
    let body = br#"<wsnt:Notify xmlns:wsnt="urn:n" xmlns:tt="urn:t"><wsnt:NotificationMessage><wsnt:Topic>tns1:AppEvent/App</wsnt:Topic><wsnt:Message><tt:Message UtcTime="t"><tt:Data><tt:SimpleItem Name="Likelihood" Value=" 1e-2 "/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></wsnt:Notify>"#;
    let parsed = parse_body(Some("application/soap+xml"), body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Onvif);
    assert_eq!(event.data["Onvif"]["App"], "App");
    assert_eq!(event.data["Onvif"]["EventName"], json!(null));
    assert_eq!(event.data["Onvif"]["Likelihood"].to_string(), "1e-2");
    assert_eq!(event.data["Onvif"]["Source"], json!({}));
}

#[test]
fn onvif_base64_without_padding() {
    let body = b"<MetaDataStream><NotificationMessage><Message UtcTime=\"t\"><Data><ElementItem Name=\"Image\"><base64Binary>\n  iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAA\n</base64Binary></ElementItem></Data></Message></NotificationMessage></MetaDataStream>";
    let parsed = parse_body(Some("application/xml"), body);
    let event = only_event(&parsed);
    assert!(event.errors.is_empty(), "{:?}", event.errors);
    assert_eq!(event.images, [0]);
    assert_eq!(parsed.images[0].media_type, "image/png");
}

fn multipart(boundary: &str, parts: &[(&str, &[u8])], closed: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, content) in parts {
        body.extend(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend(*content);
        body.extend(b"\r\n");
    }
    if closed {
        body.extend(format!("--{boundary}--\r\n").as_bytes());
    }
    body
}

#[test]
fn multipart_form_fields_gather() {
    let body = multipart(
        "b",
        &[
            ("Content-Disposition: form-data; name=\"area\"", b"1"),
            ("Content-Disposition: form-data; name=\"count\"", b"12"),
            ("Content-Disposition: form-data; name=\"tag\"", b"x"),
            ("Content-Disposition: form-data; name=\"tag\"", b"y"),
        ],
        true,
    );
    let parsed = parse_body(Some("multipart/form-data; boundary=b"), &body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Crowd);
    assert_eq!(
        event.data["Body"],
        json!({"area": "1", "count": "12", "tag": ["x", "y"]})
    );
    assert!(event.errors.is_empty(), "{:?}", event.errors);
}

#[test]
fn multipart_images_alone_make_image_events() {
    let body = multipart(
        "b",
        &[
            ("Content-Type: image/png", PNG),
            (
                "Content-Disposition: form-data; name=\"snap\"; filename=\"a.png\"",
                PNG,
            ),
        ],
        true,
    );
    let parsed = parse_body(Some("multipart/mixed; boundary=\"b\""), &body);
    assert_eq!(parsed.events.len(), 2);
    assert!(
        parsed
            .events
            .iter()
            .all(|event| event.kind == EventKind::Image)
    );
    assert_eq!(parsed.images[0].origin, "part 1");
    assert_eq!(parsed.images[1].origin, "part 2 snap");
    assert_eq!(parsed.images[1].bytes, PNG);
}

#[test]
fn multipart_without_boundary_parameter() {
    let parsed = parse_body(Some("multipart/form-data"), b"--x\r\n\r\nhi\r\n--x--");
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert!(
        event.errors[0].contains("no boundary parameter"),
        "{}",
        event.errors[0]
    );
    assert_eq!(event.data["Body"]["MediaType"], "multipart/form-data");
}

#[test]
fn multipart_without_end_boundary() {
    let body = multipart(
        "b",
        &[("Content-Type: application/json", br#"{"count": 1}"#)],
        false,
    );
    let parsed = parse_body(Some("multipart/form-data; boundary=b"), &body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Crowd);
    assert_eq!(event.errors.len(), 1);
    assert!(
        event.errors[0].contains("closing boundary"),
        "{}",
        event.errors[0]
    );
}

#[test]
fn multipart_nesting_is_bounded() {
    let mut body = multipart(
        "b0",
        &[("Content-Type: application/json", b"{\"count\": 1}")],
        true,
    );
    let mut content_type = "multipart/mixed; boundary=b0".to_owned();
    for level in 1..=5 {
        let boundary = format!("b{level}");
        body = multipart(
            &boundary,
            &[(&format!("Content-Type: {content_type}"), &body)],
            true,
        );
        content_type = format!("multipart/mixed; boundary={boundary}");
    }
    let parsed = parse_body(Some(&content_type), &body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert!(
        event.errors[0].contains("nested deeper than 4"),
        "{}",
        event.errors[0]
    );
}

#[test]
fn deep_json_nesting_is_an_error() {
    let body = "[".repeat(100_000);
    let parsed = parse_body(Some("application/json"), body.as_bytes());
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Request);
    assert!(
        event.errors[0].contains("recursion limit"),
        "{}",
        event.errors[0]
    );
}

#[test]
fn deep_picker_search_is_bounded() {
    let depth = 120;
    let body = format!(
        "{}{{\"count\": 1}}{}",
        "{\"a\": ".repeat(depth),
        "}".repeat(depth)
    );
    let parsed = parse_body(Some("application/json"), body.as_bytes());
    let event = only_event(&parsed);
    assert_eq!(
        event.kind,
        EventKind::Data,
        "the count is deeper than the picker looks"
    );
}

#[test]
fn deep_xml_nesting_does_not_overflow() {
    let depth = 50_000;
    let body = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let parsed = parse_body(Some("application/xml"), body.as_bytes());
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Data);
    assert_eq!(event.errors.len(), 1);
    assert!(
        event.errors[0].contains("deeper than 32 levels"),
        "{}",
        event.errors[0]
    );
}

#[test]
fn large_array_is_cut_to_event_limit() {
    let element = r#"{"area": 1, "count": 2}"#;
    let body = format!("[{}]", vec![element; 10_000].join(","));
    let parsed = parse_body(Some("application/json"), body.as_bytes());
    assert_eq!(parsed.events.len(), MAX_EVENTS);
    let last = parsed.events.last().unwrap();
    assert_eq!(last.errors.len(), 1);
    assert!(
        last.errors[0].starts_with("9744 more events were left out"),
        "{}",
        last.errors[0]
    );
}

#[test]
fn many_onvif_messages_are_cut() {
    let message = "<NotificationMessage><Topic>t</Topic></NotificationMessage>";
    let body = format!("<MetaDataStream>{}</MetaDataStream>", message.repeat(300));
    let parsed = parse_body(Some("application/xml"), body.as_bytes());
    assert_eq!(parsed.events.len(), MAX_EVENTS);
    assert!(parsed.events[MAX_EVENTS - 1].errors[0].starts_with("44 more events"));
}

#[test]
fn images_are_cut_to_image_limit() {
    let parts: Vec<(&str, &[u8])> = vec![("Content-Type: image/png", PNG); 40];
    let body = multipart("b", &parts, true);
    let parsed = parse_body(Some("multipart/mixed; boundary=b"), &body);
    assert_eq!(parsed.images.len(), MAX_IMAGES);
    assert_eq!(parsed.events.len(), 40);
    let last = parsed.events.last().unwrap();
    assert!(
        last.errors
            .iter()
            .any(|error| error.starts_with("8 more images")),
        "{:?}",
        last.errors
    );
}

#[test]
fn huge_base64_image_decodes() {
    let payload = "QUFB".repeat(1_000_000);
    let body = format!(
        "<MetaDataStream><NotificationMessage><Message><Data><ElementItem Name=\"Image\"><base64Binary>{payload}</base64Binary></ElementItem></Data></Message></NotificationMessage></MetaDataStream>"
    );
    let parsed = parse_body(Some("application/xml"), body.as_bytes());
    assert_eq!(parsed.images.len(), 1);
    assert_eq!(parsed.images[0].bytes.len(), 3_000_000);
    assert_eq!(parsed.images[0].media_type, "application/octet-stream");
}

#[test]
fn many_tiny_multipart_parts_are_read() {
    let mut body = Vec::new();
    for _ in 0..20_000 {
        body.extend(b"--b\r\n\r\nx\r\n");
    }
    let parsed = parse_body(Some("multipart/form-data; boundary=b"), &body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Data);
    assert!(
        event.errors[0].contains("closing boundary"),
        "{:?}",
        event.errors
    );
}

#[test]
fn random_bytes_never_panic() {
    let content_types = [
        None,
        Some("application/json"),
        Some("application/xml"),
        Some("image/jpeg"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencoded"),
    ];
    let alphabet = b"<>{}[]=&--x\r\n\xFF\xD8\xFE\x00/+%";
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    for round in 0..500 {
        let length = round % 97;
        let body: Vec<u8> = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect();
        let parsed = parse_body(content_types[round % content_types.len()], &body);
        assert!(!parsed.events.is_empty());
    }
}

#[test]
fn names_and_likelihoods_are_not_faces() {
    let body = br#"{"camera": {"name": "cam1"}, "area": 2, "count": 7, "likelihood": 0.4}"#;
    let parsed = parse_body(Some("application/json"), body);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Crowd);
    assert!(!event.data.contains_key("Face"), "{:?}", event.data);
}

#[test]
fn content_decides_between_image_and_not() {
    // JSON labelled as a JPEG is read as JSON, with an error naming the label.
    let parsed = parse_body(Some("image/jpeg"), br#"{"count": 1}"#);
    let event = only_event(&parsed);
    assert_eq!(event.kind, EventKind::Crowd);
    assert!(parsed.images.is_empty());
    assert!(event.errors[0].contains("image/jpeg"), "{:?}", event.errors);

    // A JPEG labelled as JSON is still an image, with its AI-VMD result read.
    let jpeg = jpeg_with_comment(&[]);
    let parsed = parse_body(Some("application/json"), &jpeg);
    assert_eq!(parsed.images.len(), 1);
    assert_eq!(parsed.images[0].media_type, "image/jpeg");
}
