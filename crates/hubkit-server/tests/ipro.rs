//! i-PRO cameras over HTTPS: URLs, authentication, limits, raw storage, capture mode and
//! every fixture of `fixtures/ipro` end to end into the records API.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{TestHub, admin, config_text, parse};
use http::Method;
use serde_json::Value;

/// Four cameras, one per data format, in one layer, of which the general camera takes
/// Basic credentials and is also bound to a second layer. A fifth camera is disabled, a
/// sixth unbound, and a seventh has a 1 KiB body limit and retention.
const CAMERAS: &str = r#"
[[areas]]
name = "Lobby"
  [[areas.layers]]
  name = "Cameras"
  kind = "ipro"
  [[areas.layers]]
  name = "Audit"
  kind = "ipro"

[[cameras]]
name = "lobby-camera"
mac = "AA-BB-CC-DD-EE-FF"
format = "general"
auth = { type = "basic", username = "iprocam", password = "secretpw1" }

[[cameras]]
name = "entrance-ai"
mac = "aa:bb:cc:dd:ee:01"
format = "ai-motion"

[[cameras]]
name = "hall-occupancy"
mac = "aabbccddee02"
format = "ai-crowd"

[[cameras]]
name = "gate-face"
mac = "aa-bb-cc-dd-ee-03"
format = "face-recognition"

[[cameras]]
name = "switched-off"
mac = "aa-bb-cc-dd-ee-04"
format = "general"
enabled = false

[[cameras]]
name = "unbound"
mac = "aa-bb-cc-dd-ee-05"
format = "general"

[[cameras]]
name = "small"
mac = "aa-bb-cc-dd-ee-06"
format = "ai-crowd"
max_body_bytes = 1024
max_age_hours = 1

[[bindings]]
camera = "lobby-camera"
area = "Lobby"
layer = "Cameras"

[[bindings]]
camera = "lobby-camera"
area = "Lobby"
layer = "Audit"

[[bindings]]
camera = "entrance-ai"
area = "Lobby"
layer = "Cameras"

[[bindings]]
camera = "hall-occupancy"
area = "Lobby"
layer = "Cameras"

[[bindings]]
camera = "gate-face"
area = "Lobby"
layer = "Cameras"

[[bindings]]
camera = "switched-off"
area = "Lobby"
layer = "Cameras"

[[bindings]]
camera = "unbound"
area = "Lobby"
layer = "Cameras"
enabled = false

[[bindings]]
camera = "small"
area = "Lobby"
layer = "Cameras"
"#;

/// `Authorization` header of the general camera: Basic `iprocam:secretpw1`.
const CAMERA_AUTH: (&str, &str) = ("authorization", "Basic aXByb2NhbTpzZWNyZXRwdzE=");

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/ipro")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Adds `Connection: close` after the request line, so the hub ends the connection after
/// its response.
fn closing(raw: &[u8]) -> Vec<u8> {
    let line_end = raw
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .expect("request line");
    let mut bytes = Vec::from(&raw[..line_end + 2]);
    bytes.extend_from_slice(b"Connection: close\r\n");
    bytes.extend_from_slice(&raw[line_end + 2..]);
    bytes
}

/// Splits a raw response into status and JSON body.
fn parse_response(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn records(hub: &TestHub) -> Vec<Value> {
    let (name, value) = admin();
    let response = hub
        .client
        .get("/api/v1/records?limit=1000", &[(name, &value)])
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    response.json()["records"]
        .as_array()
        .expect("records array")
        .clone()
}

/// POSTs `body` to a camera URL, checks that the status is 200, and returns the records
/// it made.
async fn post_to_camera(
    hub: &TestHub,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
) -> Vec<Value> {
    let response = hub
        .client
        .send(Method::POST, path, headers, body)
        .await
        .expect("request");
    let text = String::from_utf8_lossy(&response.body).into_owned();
    assert_eq!(response.status, 200, "{path}: {text}");
    records_of(hub, &response.json()).await
}

/// Returns the records whose ids a camera response lists.
async fn records_of(hub: &TestHub, response: &Value) -> Vec<Value> {
    let ids: Vec<&str> = response["DataIds"]
        .as_array()
        .unwrap_or_else(|| panic!("no DataIds in {response}"))
        .iter()
        .map(|id| id.as_str().expect("id"))
        .collect();
    let all = records(hub).await;
    ids.iter()
        .map(|id| {
            all.iter()
                .find(|record| record["DataId"] == *id)
                .unwrap_or_else(|| panic!("record {id} is not listed"))
                .clone()
        })
        .collect()
}

async fn file_bytes(hub: &TestHub, path: &str) -> Vec<u8> {
    std::fs::read(hub.hub.files_dir().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Fetches the raw request that a record's `Data.Raw` refers to: from the camera
/// requests API for an `Id`, or from the files folder for a `Path`.
async fn raw_bytes(hub: &TestHub, raw: &Value) -> Vec<u8> {
    if let Some(path) = raw["Path"].as_str() {
        return file_bytes(hub, path).await;
    }
    let id = raw["Id"]
        .as_str()
        .unwrap_or_else(|| panic!("no Id or Path in {raw}"));
    let (name, value) = admin();
    let response = hub
        .client
        .get(&format!("/api/v1/camera-requests/{id}"), &[(name, &value)])
        .await
        .expect("request");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("content-type"), "message/http");
    response.body.to_vec()
}

#[tokio::test]
async fn alarm_notification_becomes_a_record_with_its_raw_request() {
    let hub = TestHub::start(CAMERAS).await;
    let response = hub
        .client
        .get(
            "/ipro/AA-BB-CC-DD-EE-FF/general?src=AB",
            &[CAMERA_AUTH, ("cookie", "session=secret-cookie")],
        )
        .await
        .expect("request");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let reply = response.json();
    let found = records_of(&hub, &reply).await;
    // Bound to two layers: one record each.
    assert_eq!(found.len(), 2);
    let layers: Vec<&str> = found
        .iter()
        .map(|r| r["LayerName"].as_str().expect("layer name"))
        .collect();
    assert_eq!(layers, ["Cameras", "Audit"]);
    let record = &found[0];
    assert_eq!(record["KindName"], "i-PRO General");
    assert_eq!(record["PhysicalDeviceId"], "aa:bb:cc:dd:ee:ff");
    assert_eq!(record["PhysicalDeviceName"], "lobby-camera");
    assert_eq!(record["AreaName"], "Lobby");
    let data = &record["Data"];
    assert_eq!(data["Event"], "alarm");
    assert_eq!(data["Camera"], "lobby-camera");
    assert_eq!(data["Mac"], "aa:bb:cc:dd:ee:ff");
    assert_eq!(data["Format"], "general");
    assert_eq!(data["Alarm"]["Code"], "AB");
    assert_eq!(data["Alarm"]["Source"], "on-camera application alarm");
    assert_eq!(record["Transport"]["Query"], "src=AB");
    assert!(data.get("ParseErrors").is_none(), "{data}");

    // The raw request is kept in the database, its credentials redacted.
    let raw_id = data["Raw"]["Id"].as_str().expect("raw id");
    assert_eq!(reply["Raw"]["Id"], raw_id);
    let raw = String::from_utf8(raw_bytes(&hub, &data["Raw"]).await).expect("text");
    assert!(
        raw.starts_with("GET /ipro/AA-BB-CC-DD-EE-FF/general?src=AB HTTP/1.1\r\n"),
        "{raw}"
    );
    assert!(raw.contains("authorization: [redacted]\r\n"), "{raw}");
    assert!(!raw.contains("aXByb2NhbTpzZWNyZXRwdzE"), "{raw}");
    assert!(raw.contains("cookie: [redacted]\r\n"), "{raw}");
    assert!(!raw.contains("secret-cookie"), "{raw}");
    assert_eq!(data["Raw"]["Size"], raw.len());
    assert!(!hub.hub.files_dir().join("ipro-aabbccddeeff").exists());

    // Ids are read in any case; unknown ids and the admin token are checked.
    let (name, value) = admin();
    let upper = hub
        .client
        .get(
            &format!("/api/v1/camera-requests/{}", raw_id.to_ascii_uppercase()),
            &[(name, &value)],
        )
        .await
        .expect("request");
    assert_eq!(upper.status, 200);
    for id in ["0".repeat(32), "not-an-id".to_owned()] {
        let missing = hub
            .client
            .get(&format!("/api/v1/camera-requests/{id}"), &[(name, &value)])
            .await
            .expect("request");
        assert_eq!(missing.status, 404, "{id}");
    }
    let unauthenticated = hub
        .client
        .get(&format!("/api/v1/camera-requests/{raw_id}"), &[])
        .await
        .expect("request");
    assert_eq!(unauthenticated.status, 401);
    hub.stop().await;
}

#[tokio::test]
async fn mac_spellings_and_path_tails_reach_the_camera() {
    let hub = TestHub::start(CAMERAS).await;
    let paths = [
        "/ipro/aabbccddeeff/general?src=01",
        "/ipro/aa:bb:cc:dd:ee:ff/general?alrmsrc2=01",
        "/ipro/aa%3Abb%3Acc%3Add%3Aee%3Aff/general?almsrc2=01",
        "/ipro/Aa-bB-cC-Dd-eE-fF/general/01",
        "/ipro/AA-BB-CC-DD-EE-FF/GENERAL?alarmsrc2=01",
        "/ipro/AA-BB-CC-DD-EE-FF?src=01",
        "/ipro/AA-BB-CC-DD-EE-FF/",
    ];
    for path in paths {
        let response = hub.client.get(path, &[CAMERA_AUTH]).await.expect("request");
        assert_eq!(
            response.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let found = records_of(&hub, &response.json()).await;
        let data = &found[0]["Data"];
        assert_eq!(found[0]["PhysicalDeviceId"], "aa:bb:cc:dd:ee:ff", "{path}");
        if path.ends_with('/') {
            assert_eq!(data["Event"], "request", "{path}: {data}");
        } else {
            assert_eq!(data["Alarm"]["Code"], "01", "{path}: {data}");
            assert_eq!(data["Alarm"]["Source"], "SD card full", "{path}: {data}");
        }
    }
    // A URL format other than the camera's is kept in the record.
    let response = hub
        .client
        .get("/ipro/aa-bb-cc-dd-ee-ff/ai-motion?src=AB", &[CAMERA_AUTH])
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    let found = records_of(&hub, &response.json()).await;
    assert_eq!(found[0]["KindName"], "i-PRO General");
    assert_eq!(found[0]["Data"]["UrlFormat"], "ai-motion");
    hub.stop().await;
}

/// A request that must be refused: method, path, headers, body, status and problem type.
type Refusal = (
    Method,
    &'static str,
    &'static [(&'static str, &'static str)],
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn refusals_name_the_rule_and_store_nothing() {
    let hub = TestHub::start(CAMERAS).await;
    let cases: [Refusal; 11] = [
        (
            Method::GET,
            "/ipro/aa-bb-cc-dd-ee-09/general",
            &[],
            vec![],
            404,
            "camera-not-found",
        ),
        (
            Method::GET,
            "/ipro/not-a-mac/general",
            &[],
            vec![],
            404,
            "camera-path-invalid",
        ),
        (
            Method::GET,
            "/ipro/aa-bb-cc-dd-ee-01/crowd",
            &[],
            vec![],
            404,
            "camera-path-invalid",
        ),
        (
            Method::GET,
            "/ipro/",
            &[],
            vec![],
            404,
            "camera-path-invalid",
        ),
        (
            Method::GET,
            "/ipro/aa-bb-cc-dd-ee-04/general",
            &[],
            vec![],
            404,
            "camera-disabled",
        ),
        (
            Method::GET,
            "/ipro/aa-bb-cc-dd-ee-05/general",
            &[],
            vec![],
            404,
            "camera-not-bound",
        ),
        (
            Method::GET,
            "/ipro/aa-bb-cc-dd-ee-ff/general?src=AB",
            &[],
            vec![],
            401,
            "unauthorized",
        ),
        (
            Method::GET,
            "/ipro/aa-bb-cc-dd-ee-ff/general?src=AB",
            &[("authorization", "Basic aXByb2NhbTp3cm9uZ3Bhc3N3b3Jk")],
            vec![],
            401,
            "unauthorized",
        ),
        (
            Method::DELETE,
            "/ipro/aa-bb-cc-dd-ee-01/ai-motion",
            &[],
            vec![],
            405,
            "method-not-allowed",
        ),
        (
            Method::POST,
            "/ipro/aa-bb-cc-dd-ee-06/ai-crowd",
            &[("content-type", "application/json")],
            vec![b' '; 1025],
            413,
            "payload-too-large",
        ),
        (
            Method::POST,
            "/ipro/aa-bb-cc-dd-ee-06/ai-crowd",
            &[
                ("content-type", "application/json"),
                ("transfer-encoding", "chunked"),
            ],
            vec![b' '; 4096],
            413,
            "payload-too-large",
        ),
    ];
    for (method, path, headers, body, status, slug) in cases {
        let response = hub
            .client
            .send(method.clone(), path, headers, body)
            .await
            .expect("request");
        let text = String::from_utf8_lossy(&response.body).into_owned();
        assert_eq!(response.status, status, "{method} {path}: {text}");
        assert!(text.contains(slug), "{method} {path}: {text}");
        if status == 401 {
            assert_eq!(
                response.header("www-authenticate"),
                "Basic realm=\"hubkit\", charset=\"UTF-8\""
            );
        }
    }
    assert_eq!(hub.stored_rows(), 0);
    assert!(!hub.hub.files_dir().join("ipro-aabbccddee06").exists());
    hub.stop().await;
}

#[tokio::test]
async fn unparseable_bodies_are_stored_raw_and_flagged() {
    let hub = TestHub::start(CAMERAS).await;
    let body = br#"{"count": 12,"#.to_vec();
    let found = post_to_camera(
        &hub,
        "/ipro/aa-bb-cc-dd-ee-02/ai-crowd",
        &[("content-type", "application/json")],
        body.clone(),
    )
    .await;
    let data = &found[0]["Data"];
    assert_eq!(data["Event"], "request", "{data}");
    let errors = data["ParseErrors"].as_array().expect("parse errors");
    assert!(!errors.is_empty());
    let raw = raw_bytes(&hub, &data["Raw"]).await;
    assert!(raw.ends_with(&body));

    // A compressed body is kept raw too, with an error naming the coding.
    let response = hub
        .client
        .send(
            Method::POST,
            "/ipro/aa-bb-cc-dd-ee-02/ai-crowd",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            vec![0x1f, 0x8b, 0, 1, 2, 3],
        )
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    let found = records_of(&hub, &response.json()).await;
    let errors = found[0]["Data"]["ParseErrors"].to_string();
    assert!(errors.contains("gzip"), "{errors}");

    let metrics = hub.client.get("/metrics", &[]).await.expect("request");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains("hubkit_camera_parse_errors_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("hubkit_http_requests_total{endpoint=\"/ipro\",status=\"200\"} 2\n"),
        "{text}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn capture_mode_writes_each_request_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let captures = dir.path().join("captures");
    let body = format!(
        "{CAMERAS}\n[ipro]\ncapture = true\ncapture_dir = {:?}\n",
        captures.display().to_string()
    );
    let text = config_text(dir.path(), "", &body);
    let hub = TestHub::start_text(dir, &text).await;
    let raw = closing(&fixture("crowd-json.http"));
    let reply = hub
        .client
        .send_raw(&raw, Duration::from_secs(5))
        .await
        .expect("request");
    let (status, _) = parse_response(&reply);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let folder = captures.join("aa-bb-cc-dd-ee-02");
    let files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("capture folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let captured = std::fs::read(&files[0]).expect("capture");
    let original = fixture("crowd-json.http");
    let body_start = |bytes: &[u8]| {
        bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("head end")
            + 4
    };
    assert_eq!(
        captured[body_start(&captured)..],
        original[body_start(&original)..]
    );
    hub.stop().await;
}

#[tokio::test]
async fn cameras_api_lists_the_urls() {
    let hub = TestHub::start(CAMERAS).await;
    let (name, value) = admin();
    let response = hub
        .client
        .get("/api/v1/cameras", &[(name, &value)])
        .await
        .expect("request");
    assert_eq!(response.status, 200);
    let body = response.json();
    let cameras = body["cameras"].as_array().expect("cameras");
    assert_eq!(cameras.len(), 7);
    let first = &cameras[0];
    let port = hub.hub.local_addr().port();
    assert_eq!(
        first["url"],
        format!("https://127.0.0.1:{port}/ipro/aa-bb-cc-dd-ee-ff/general")
    );
    assert_eq!(first["authentication"], "basic");
    assert_eq!(
        first["layers"],
        serde_json::json!(["Lobby/Cameras", "Lobby/Audit"])
    );
    assert!(!body.to_string().contains("secretpw1"));
    let unauthenticated = hub
        .client
        .get("/api/v1/cameras", &[])
        .await
        .expect("request");
    assert_eq!(unauthenticated.status, 401);
    hub.stop().await;
}

#[tokio::test]
async fn retention_removes_a_cameras_old_files() {
    let hub = TestHub::start(CAMERAS).await;
    let jpeg = {
        let raw = fixture("aivmd-two-areas.http");
        let start = raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("head end")
            + 4;
        raw[start..].to_vec()
    };
    let found = post_to_camera(
        &hub,
        "/ipro/aa-bb-cc-dd-ee-06/ai-crowd",
        &[("content-type", "image/jpeg")],
        jpeg,
    )
    .await;
    let image = found[0]["Data"]["Images"][0]["Path"]
        .as_str()
        .expect("image path")
        .to_owned();
    assert!(hub.hub.files_dir().join(&image).exists());
    let removed = hub
        .hub
        .enforce_retention(chrono::Utc::now() + chrono::Duration::hours(2))
        .await;
    assert_eq!(removed, 1);
    assert!(!hub.hub.files_dir().join(&image).exists());
    let found = records(&hub).await;
    assert_eq!(found[0]["Data"]["Removed"]["Reason"], "max-age");
    hub.stop().await;
}

#[tokio::test]
async fn large_raw_requests_are_stored_as_files() {
    let hub = TestHub::start(CAMERAS).await;
    let body = format!(
        r#"{{"area": 1, "count": 12, "note": "{}"}}"#,
        "x".repeat(300_000)
    );
    let found = post_to_camera(
        &hub,
        "/ipro/aa-bb-cc-dd-ee-02/ai-crowd",
        &[("content-type", "application/json")],
        body.clone(),
    )
    .await;
    let data = &found[0]["Data"];
    assert_eq!(data["Crowd"]["Count"], 12);
    // The 300 kB body is kept once, in the raw request, not in every record.
    let omitted = data["Body"]["Omitted"].as_str().expect("body omitted");
    assert!(omitted.contains("kept in the raw request"), "{omitted}");
    let path = data["Raw"]["Path"].as_str().expect("raw path");
    assert!(path.starts_with("ipro-aabbccddee02/"), "{path}");
    let raw = file_bytes(&hub, path).await;
    assert!(raw.ends_with(body.as_bytes()));
    assert_eq!(data["Raw"]["Size"], raw.len());
    hub.stop().await;
}

/// What one fixture must produce: the `Event` of each record (one per event, each camera
/// bound to one layer except the general one, bound to two), and JSON pointers into the
/// first record with their expected values.
struct Expected {
    file: &'static str,
    events: &'static [&'static str],
    kind_name: &'static str,
    checks: &'static [(&'static str, &'static str)],
    images: usize,
    parse_errors: bool,
}

const FIXTURES: &[Expected] = &[
    Expected {
        file: "general-src-query.http",
        events: &["alarm", "alarm"],
        kind_name: "i-PRO General",
        checks: &[
            ("/Data/Alarm/Code", "\"AB\""),
            ("/Data/Alarm/Source", "\"on-camera application alarm\""),
        ],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "general-path-tail.http",
        events: &["alarm", "alarm"],
        kind_name: "i-PRO General",
        checks: &[
            ("/Data/Alarm/Code", "\"AB\""),
            ("/Data/Notification/Path", "[\"AB\"]"),
        ],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "general-alrmsrc2.http",
        events: &["alarm", "alarm"],
        kind_name: "i-PRO General",
        checks: &[("/Data/Alarm/Source", "\"SD card full\"")],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "general-almsrc2.http",
        events: &["alarm", "alarm"],
        kind_name: "i-PRO General",
        checks: &[("/Data/Alarm/Code", "\"A5\"")],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "general-alarmsrc2.http",
        events: &["alarm", "alarm"],
        kind_name: "i-PRO General",
        checks: &[("/Data/Alarm/Code", "\"A8\"")],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "aivmd-two-areas.http",
        events: &["ai-motion"],
        kind_name: "i-PRO AI Motion Detection",
        checks: &[
            ("/Data/AiMotion/Detection", "true"),
            ("/Data/AiMotion/Areas/0/AlarmType", "\"intruder\""),
            ("/Data/AiMotion/Areas/0/Object", "\"person\""),
            ("/Data/AiMotion/Areas/1/AlarmType", "\"cross-line\""),
            ("/Data/AiMotion/Areas/1/Direction", "\"a-to-b\""),
        ],
        images: 1,
        parse_errors: false,
    },
    Expected {
        file: "aivmd-no-detection.http",
        events: &["ai-motion"],
        kind_name: "i-PRO AI Motion Detection",
        checks: &[
            ("/Data/AiMotion/Detection", "false"),
            ("/Data/AiMotion/Areas", "[]"),
        ],
        images: 1,
        parse_errors: false,
    },
    Expected {
        file: "onvif-face-appevent.http",
        events: &["onvif"],
        kind_name: "i-PRO Face Recognition",
        checks: &[
            (
                "/Data/Onvif/Topic",
                "\"tns1:AppEvent/FaceApp/RegisteredFace\"",
            ),
            ("/Data/Onvif/Likelihood", "0.87"),
            ("/Data/Face/Person", "\"Sato\""),
            ("/Data/Face/List", "\"VIP\""),
        ],
        images: 1,
        parse_errors: false,
    },
    Expected {
        file: "onvif-two-messages.http",
        events: &["onvif", "onvif"],
        kind_name: "i-PRO AI Motion Detection",
        checks: &[("/Data/Onvif/PropertyOperation", "\"Changed\"")],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "onvif-bad-base64.http",
        events: &["onvif"],
        kind_name: "i-PRO Face Recognition",
        checks: &[("/Data/Face/Person", "\"Sato\"")],
        images: 0,
        parse_errors: true,
    },
    Expected {
        file: "crowd-json.http",
        events: &["crowd"],
        kind_name: "i-PRO AI Crowd Detection",
        checks: &[
            ("/Data/Crowd/Count", "12"),
            ("/Data/Crowd/State", "\"exceeded\""),
        ],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "crowd-form.http",
        events: &["crowd"],
        kind_name: "i-PRO AI Crowd Detection",
        checks: &[
            ("/Data/Crowd/Count", "\"12\""),
            ("/Data/Crowd/Threshold", "\"10\""),
        ],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "crowd-xml.http",
        events: &["crowd"],
        kind_name: "i-PRO AI Crowd Detection",
        checks: &[
            ("/Data/Crowd/Count", "\"12\""),
            ("/Data/Crowd/Area", "\"1\""),
        ],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "crowd-json-array.http",
        events: &["crowd", "crowd"],
        kind_name: "i-PRO AI Crowd Detection",
        checks: &[("/Data/Crowd/Area", "1")],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "face-json.http",
        events: &["face"],
        kind_name: "i-PRO Face Recognition",
        checks: &[("/Data/Face/Person", "\"Sato\"")],
        images: 0,
        parse_errors: false,
    },
    Expected {
        file: "face-multipart.http",
        events: &["face"],
        kind_name: "i-PRO Face Recognition",
        checks: &[("/Data/Face/Person", "\"Sato\"")],
        images: 1,
        parse_errors: false,
    },
    Expected {
        file: "invalid-json.http",
        events: &["request"],
        kind_name: "i-PRO AI Crowd Detection",
        checks: &[],
        images: 0,
        parse_errors: true,
    },
    Expected {
        file: "unknown-body.http",
        events: &["request"],
        kind_name: "i-PRO AI Crowd Detection",
        checks: &[],
        images: 0,
        parse_errors: true,
    },
];

#[tokio::test]
async fn every_fixture_end_to_end() {
    let hub = TestHub::start(CAMERAS).await;
    let listed: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ipro"))
            .expect("fixtures folder")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".http"))
            .collect();
    for name in &listed {
        assert!(
            FIXTURES.iter().any(|expected| expected.file == name),
            "fixture {name} has no expectation"
        );
    }
    for expected in FIXTURES {
        let file = expected.file;
        let sent = fixture(file);
        let reply = hub
            .client
            .send_raw(&closing(&sent), Duration::from_secs(5))
            .await
            .expect("request");
        let (status, body) = parse_response(&reply);
        assert_eq!(status, 200, "{file}: {}", String::from_utf8_lossy(&reply));
        let found = records_of(&hub, &body).await;
        let events: Vec<&str> = found
            .iter()
            .map(|record| record["Data"]["Event"].as_str().expect("event"))
            .collect();
        assert_eq!(events, expected.events, "{file}");
        let record = &found[0];
        assert_eq!(record["KindName"], expected.kind_name, "{file}");
        for (pointer, value) in expected.checks {
            let want: Value = serde_json::from_str(value).expect("expected value");
            assert_eq!(
                record.pointer(pointer),
                Some(&want),
                "{file} {pointer}: {record}"
            );
        }
        let data = &record["Data"];
        assert_eq!(
            data.get("ParseErrors").is_some(),
            expected.parse_errors,
            "{file}: {data}"
        );

        // The raw request is kept with the body byte for byte.
        let raw = raw_bytes(&hub, &data["Raw"]).await;
        let digest = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&raw));
        assert_eq!(data["Raw"]["Sha256"], digest, "{file}");
        assert_eq!(data["Raw"]["Size"], raw.len(), "{file}");
        let body_of = |bytes: &[u8]| {
            let start = bytes
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
                .expect("head end")
                + 4;
            bytes[start..].to_vec()
        };
        assert_eq!(body_of(&raw), body_of(&sent), "{file}");

        // Every image is stored, and its hash matches its bytes.
        let images = data["Images"].as_array().cloned().unwrap_or_default();
        assert_eq!(images.len(), expected.images, "{file}: {data}");
        for image in images {
            let bytes = file_bytes(&hub, image["Path"].as_str().expect("path")).await;
            assert_eq!(image["Size"], bytes.len(), "{file}");
            assert_eq!(image["MediaType"], "image/jpeg", "{file}");
            assert!(bytes.starts_with(&[0xFF, 0xD8]), "{file}");
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn reload_adds_and_removes_cameras() {
    let hub = TestHub::start(CAMERAS).await;
    let added = r#"
[[cameras]]
name = "added-later"
mac = "02-00-00-00-00-01"
format = "ai-crowd"

[[bindings]]
camera = "added-later"
area = "Lobby"
layer = "Cameras"
"#;
    let before = hub
        .client
        .get("/ipro/02-00-00-00-00-01/ai-crowd", &[])
        .await
        .expect("request");
    assert_eq!(before.status, 404);
    let text = config_text(hub.dir.path(), "", &format!("{CAMERAS}{added}"));
    hub.hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    let after = hub
        .client
        .get("/ipro/02-00-00-00-00-01/ai-crowd?count=3", &[])
        .await
        .expect("request");
    assert_eq!(
        after.status,
        200,
        "{}",
        String::from_utf8_lossy(&after.body)
    );

    // Reloading the original file removes the camera again.
    let text = config_text(hub.dir.path(), "", CAMERAS);
    hub.hub
        .reload(parse(hub.dir.path(), &text))
        .await
        .expect("reload");
    let removed = hub
        .client
        .get("/ipro/02-00-00-00-00-01/ai-crowd", &[])
        .await
        .expect("request");
    assert_eq!(removed.status, 404);
    hub.stop().await;
}

#[tokio::test]
async fn challenge_keeps_the_connection_for_the_retry() {
    let hub = TestHub::start(CAMERAS).await;
    // A camera that sends credentials only after a 401 posts its body first, then retries
    // with credentials on the same connection.
    let body = vec![0u8; 50_000];
    let mut raw = format!(
        "POST /ipro/aa-bb-cc-dd-ee-ff/general HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw.extend_from_slice(
        b"GET /ipro/aa-bb-cc-dd-ee-ff/general?src=AB HTTP/1.1\r\nHost: localhost\r\n\
          Authorization: Basic aXByb2NhbTpzZWNyZXRwdzE=\r\nConnection: close\r\n\r\n",
    );
    let reply = hub
        .client
        .send_raw(&raw, Duration::from_secs(5))
        .await
        .expect("request");
    let text = String::from_utf8_lossy(&reply);
    let challenge = text.find("HTTP/1.1 401").expect("401 first");
    let stored = text
        .find("HTTP/1.1 200")
        .expect("200 on the same connection");
    assert!(challenge < stored, "{text}");
    assert_eq!(hub.stored_rows(), 2);

    // A client that waits for 100 Continue gets the 401 without being asked for the body.
    let raw = b"POST /ipro/aa-bb-cc-dd-ee-ff/general HTTP/1.1\r\nHost: localhost\r\n\
        Content-Type: application/octet-stream\r\nContent-Length: 5000000\r\n\
        Expect: 100-continue\r\n\r\n";
    let reply = hub
        .client
        .send_raw(raw, Duration::from_secs(5))
        .await
        .expect("request");
    let text = String::from_utf8_lossy(&reply).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(!text.contains("100 continue"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");

    // A body over the limit is not read, and the response carries Connection: close.
    let mut raw = b"POST /ipro/aa-bb-cc-dd-ee-06/ai-crowd HTTP/1.1\r\nHost: localhost\r\n\
        Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
        .to_vec();
    raw.extend_from_slice(&[b' '; 5000]);
    let reply = hub
        .client
        .send_raw(&raw, Duration::from_secs(5))
        .await
        .expect("request");
    let text = String::from_utf8_lossy(&reply).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 413"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");
    hub.stop().await;
}

#[tokio::test]
async fn chunked_request_is_kept_replayable() {
    let hub = TestHub::start(CAMERAS).await;
    let raw = b"POST /ipro/aa-bb-cc-dd-ee-02/ai-crowd HTTP/1.1\r\nHost: localhost\r\n\
        Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
        Connection: close\r\n\r\n\
        b\r\n{\"count\": 5\r\n1\r\n}\r\n0\r\n\r\n";
    let reply = hub
        .client
        .send_raw(raw, Duration::from_secs(5))
        .await
        .expect("request");
    let (status, body) = parse_response(&reply);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let found = records_of(&hub, &body).await;
    assert_eq!(found[0]["Data"]["Crowd"]["Count"], 5);
    let kept = raw_bytes(&hub, &found[0]["Data"]["Raw"]).await;
    let text = String::from_utf8_lossy(&kept).into_owned();
    assert!(!text.contains("transfer-encoding"), "{text}");
    assert!(text.contains("content-length: 12\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n{\"count\": 5}"), "{text}");

    // The kept request, sent again, makes the same record.
    let reply = hub
        .client
        .send_raw(&kept, Duration::from_secs(5))
        .await
        .expect("request");
    let (status, body) = parse_response(&reply);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let again = records_of(&hub, &body).await;
    assert_eq!(again[0]["Data"]["Crowd"]["Count"], 5);
    hub.stop().await;
}

#[tokio::test]
async fn long_values_of_large_bodies_are_cut() {
    let hub = TestHub::start(CAMERAS).await;
    let detail = "d".repeat(300_000);
    let body = format!(
        r#"<tt:MetaDataStream xmlns:tt="http://www.onvif.org/ver10/schema"><tt:Event><wsnt:NotificationMessage xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><wsnt:Topic>tns1:AppEvent/App/Event</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2024-12-04T06:00:00Z"><tt:Data><tt:SimpleItem Name="Event detail" Value="{detail}"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tt:Event></tt:MetaDataStream>"#
    );
    let found = post_to_camera(
        &hub,
        "/ipro/aa-bb-cc-dd-ee-02/ai-crowd",
        &[("content-type", "application/xml")],
        body,
    )
    .await;
    let data = &found[0]["Data"];
    let kept = data["Onvif"]["EventDetail"].as_str().expect("event detail");
    assert!(kept.len() < 70_000, "{}", kept.len());
    assert!(
        kept.contains("of 300000 bytes"),
        "{}",
        &kept[kept.len() - 80..]
    );
    assert!(data.to_string().len() < 200_000);
    let raw = raw_bytes(&hub, &data["Raw"]).await;
    assert!(raw.len() > 300_000);
    hub.stop().await;
}
