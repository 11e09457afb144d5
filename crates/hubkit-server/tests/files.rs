//! File reception over HTTPS: detection, layout, hostile names, limits, the files API and
//! retention, against a running hub with a real SQLite file and files folder.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use common::{TestHub, admin};
use http::Method;
use hubkit_testkit::TestResponse;
use serde_json::Value;

/// One area with a camera layer and three file webhooks: one with a 4 KiB limit, one with
/// retention by total size.
const CONFIG: &str = r#"
[[areas]]
name = "Entrance"
  [[areas.layers]]
  name = "Camera"
  kind = "webhook-json"

[[webhooks]]
name = "camera-upload"
custom_path = "camera-upload"
payload_format = "json"

[[webhooks]]
name = "small-files"
custom_path = "small-files"
payload_format = "json"
files = { max_bytes = 4096 }

[[webhooks]]
name = "kept-small"
custom_path = "kept-small"
payload_format = "json"
files = { max_total_bytes = 2000, max_age_hours = 1 }

[[bindings]]
webhook = "camera-upload"
area = "Entrance"
layer = "Camera"

[[bindings]]
webhook = "small-files"
area = "Entrance"
layer = "Camera"

[[bindings]]
webhook = "kept-small"
area = "Entrance"
layer = "Camera"
"#;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/media")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

async fn upload(
    hub: &TestHub,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> TestResponse {
    hub.client
        .send(Method::POST, path, headers, body)
        .await
        .expect("request")
}

/// Returns every file under the files folder, relative to it, temporary files included.
fn files_on_disk(hub: &TestHub) -> Vec<String> {
    fn walk(root: &Path, folder: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(folder)
            .expect("readable folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let root = hub.hub.files_dir().to_owned();
    let mut found = Vec::new();
    walk(&root, &root, &mut found);
    found.sort();
    found
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

fn short_id(name: &str) -> String {
    hubkit_model::ShortId::derive("webhook", name).to_string()
}

/// Checks that `path` is `<short id of webhook>/<YYYYMMDD>/<name>` with the day of
/// receipt, and returns the name. Yesterday's date is accepted too, so a test that runs
/// across midnight UTC still passes.
fn stored_name(path: &str, webhook: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(parts.len(), 3, "{path}");
    assert_eq!(parts[0], short_id(webhook), "{path}");
    let now = Utc::now();
    let days = [now, now - chrono::Duration::days(1)].map(|at| at.format("%Y%m%d").to_string());
    assert!(days.contains(&parts[1].to_owned()), "{path}");
    parts[2].to_owned()
}

#[tokio::test]
async fn jpeg_with_content_type_is_stored() {
    let hub = TestHub::start(CONFIG).await;
    let photo = fixture("photo.jpg");
    let response = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-type", "image/jpeg")],
        photo.clone(),
    )
    .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let file = &response.json()["File"];
    let path = file["Path"].as_str().expect("path");
    let name = stored_name(path, "camera-upload");
    let day = path.split('/').nth(1).expect("day");
    assert!(name.starts_with(&format!("data-{day}T")), "{path}");
    assert!(name.ends_with("Z.jpg"), "{path}");
    assert_eq!(file["Size"], photo.len());
    assert_eq!(file["MediaType"], "image/jpeg");
    assert_eq!(file["DetectedBy"], "content-type");
    assert_eq!(file["OriginalFilename"], Value::Null);
    assert_eq!(
        file["Sha256"],
        "ae035a80637842ced975b5404cc23f4a9f23a4a5c67666b8817574b2d71c78c0"
    );
    let on_disk = std::fs::read(hub.hub.files_dir().join(path)).expect("stored file");
    assert_eq!(on_disk, photo);

    let stored = records(&hub).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["DataType"], "file");
    assert_eq!(stored[0]["Data"], *file);
    assert_eq!(stored[0]["LayerName"], "Camera");
    assert_eq!(stored[0]["PhysicalDeviceName"], "camera-upload");
    hub.stop().await;
}

#[tokio::test]
async fn content_disposition_names_the_file() {
    let hub = TestHub::start(CONFIG).await;
    let headers = [
        ("content-type", "image/jpeg"),
        (
            "content-disposition",
            "attachment; filename=\"snapshot.jpg\"",
        ),
    ];
    let mut paths = Vec::new();
    for _ in 0..2 {
        let response = upload(
            &hub,
            "/webhook/urls/camera-upload",
            &headers,
            fixture("photo.jpg"),
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["File"]["OriginalFilename"], "snapshot.jpg");
        paths.push(
            response.json()["File"]["Path"]
                .as_str()
                .expect("path")
                .to_owned(),
        );
    }
    let names: Vec<String> = paths
        .iter()
        .map(|path| stored_name(path, "camera-upload"))
        .collect();
    assert_eq!(names, vec!["snapshot.jpg", "snapshot-1.jpg"]);
    paths.sort();
    assert_eq!(files_on_disk(&hub), paths);
    hub.stop().await;
}

#[tokio::test]
async fn every_fixture_is_detected_by_signature() {
    let hub = TestHub::start(CONFIG).await;
    for (name, media_type, extension) in [
        ("photo.jpg", "image/jpeg", "jpg"),
        ("image.png", "image/png", "png"),
        ("image.gif", "image/gif", "gif"),
        ("image.webp", "image/webp", "webp"),
        ("image.bmp", "image/bmp", "bmp"),
        ("image.tiff", "image/tiff", "tiff"),
        ("sound.wav", "audio/wav", "wav"),
        ("sound.mp3", "audio/mpeg", "mp3"),
        ("sound.ogg", "audio/opus", "opus"),
        ("clip.mp4", "video/mp4", "mp4"),
        ("document.pdf", "application/pdf", "pdf"),
        ("archive.zip", "application/zip", "zip"),
    ] {
        let response = upload(
            &hub,
            "/webhook/urls/camera-upload",
            &[("content-type", "application/octet-stream")],
            fixture(name),
        )
        .await;
        assert_eq!(response.status, 200, "{name}: {:?}", response.body);
        let file = &response.json()["File"];
        assert_eq!(file["MediaType"], media_type, "{name}");
        assert_eq!(file["DetectedBy"], "signature", "{name}");
        let path = file["Path"].as_str().expect("path");
        assert!(path.ends_with(&format!(".{extension}")), "{name}: {path}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn filename_extension_decides_before_content() {
    let hub = TestHub::start(CONFIG).await;
    let response = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-disposition", "attachment; filename=\"voice.wav\"")],
        fixture("photo.jpg"),
    )
    .await;
    assert_eq!(response.status, 200);
    let file = &response.json()["File"];
    assert_eq!(file["MediaType"], "audio/wav");
    assert_eq!(file["DetectedBy"], "filename");
    hub.stop().await;
}

#[tokio::test]
async fn unidentifiable_body_is_rejected_and_nothing_kept() {
    let hub = TestHub::start(CONFIG).await;
    let response = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-type", "application/octet-stream")],
        fixture("unknown.bin"),
    )
    .await;
    assert_eq!(response.status, 415);
    let problem = response.json();
    assert_eq!(problem["type"], "urn:hubkit:problem:file-type-unknown");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("application/octet-stream"), "{detail}");
    assert!(detail.contains("first 3072 bytes"), "{detail}");
    assert!(files_on_disk(&hub).is_empty(), "{:?}", files_on_disk(&hub));
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn empty_body_is_rejected() {
    let hub = TestHub::start(CONFIG).await;
    let response = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-type", "image/jpeg")],
        Vec::new(),
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["type"], "urn:hubkit:problem:empty-body");
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

/// Hostile `Content-Disposition` values and the name each file is stored under.
#[tokio::test]
async fn hostile_filenames_stay_in_their_folder() {
    let hub = TestHub::start(CONFIG).await;
    let cases = [
        ("attachment; filename=\"../../../etc/passwd\"", "passwd.jpg"),
        (
            "attachment; filename=\"..\\\\..\\\\win.ini\"",
            "win.ini.jpg",
        ),
        ("attachment; filename=\"evil.html\"", "evil.html.jpg"),
        ("attachment; filename=\"/abs/path.jpg\"", "path.jpg"),
        (
            "attachment; filename*=UTF-8''..%2F..%2Fescape.jpg",
            "escape.jpg",
        ),
        ("attachment; filename*=UTF-8''a%00b%0Ac.jpg", "a_b_c.jpg"),
        ("attachment; filename=\".hidden\"", "_hidden.jpg"),
        ("attachment; filename=\"a:b*c?.jpg\"", "a_b_c_.jpg"),
        (
            "attachment; filename*=UTF-8''%E5%86%99%E7%9C%9F.jpg",
            "写真.jpg",
        ),
    ];
    for (header, expected) in cases {
        let response = upload(
            &hub,
            "/webhook/urls/camera-upload",
            &[
                ("content-type", "image/jpeg"),
                ("content-disposition", header),
            ],
            fixture("photo.jpg"),
        )
        .await;
        assert_eq!(response.status, 200, "{header}: {:?}", response.body);
        let path = response.json()["File"]["Path"]
            .as_str()
            .expect("path")
            .to_owned();
        assert_eq!(stored_name(&path, "camera-upload"), expected, "{header}");
    }
    let on_disk = files_on_disk(&hub);
    assert_eq!(on_disk.len(), cases.len());
    for path in &on_disk {
        stored_name(path, "camera-upload");
    }

    // A name made only of unsafe parts falls back to the default name.
    let response = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[
            ("content-type", "image/jpeg"),
            ("content-disposition", "attachment; filename=\"..\""),
        ],
        fixture("photo.jpg"),
    )
    .await;
    let path = response.json()["File"]["Path"]
        .as_str()
        .expect("path")
        .to_owned();
    let name = stored_name(&path, "camera-upload");
    assert!(name.starts_with("data-"), "{path}");
    hub.stop().await;
}

#[tokio::test]
async fn malformed_content_disposition_is_rejected() {
    let hub = TestHub::start(CONFIG).await;
    let long = format!("attachment; filename=\"{}.jpg\"", "a".repeat(1100));
    for header in [
        long.as_str(),
        "attachment; filename=\"unterminated.jpg",
        "attachment; filename=a.jpg; filename=b.jpg",
        "attachment; filename*=UTF-8''%ZZ.jpg",
    ] {
        let response = upload(
            &hub,
            "/webhook/urls/camera-upload",
            &[
                ("content-type", "image/jpeg"),
                ("content-disposition", header),
            ],
            fixture("photo.jpg"),
        )
        .await;
        assert_eq!(response.status, 400, "{header}");
        let problem = response.json();
        assert_eq!(
            problem["type"],
            "urn:hubkit:problem:invalid-content-disposition"
        );
    }
    assert!(files_on_disk(&hub).is_empty());
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn over_limit_with_content_length_is_rejected() {
    let hub = TestHub::start(CONFIG).await;
    let response = upload(
        &hub,
        "/webhook/urls/small-files",
        &[("content-type", "image/bmp")],
        fixture("image.bmp"),
    )
    .await;
    assert_eq!(response.status, 413);
    let detail = response.json()["detail"]
        .as_str()
        .expect("detail")
        .to_owned();
    assert!(detail.contains("4096 bytes"), "{detail}");
    assert!(files_on_disk(&hub).is_empty());
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn over_limit_chunked_upload_rejected() {
    let hub = TestHub::start(CONFIG).await;
    let chunk = vec![b'x'; 1000];
    let mut raw = b"POST /webhook/urls/small-files HTTP/1.1\r\nHost: localhost\r\n\
        Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for _ in 0..10 {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(&chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = hub
        .client
        .send_raw(&raw, Duration::from_secs(5))
        .await
        .expect("response");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
    // The blocking writer removes its temporary file after the response is sent.
    for _ in 0..100 {
        if files_on_disk(&hub).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(files_on_disk(&hub).is_empty(), "{:?}", files_on_disk(&hub));
    assert_eq!(hub.stored_rows(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_uploads_get_distinct_files() {
    let hub = TestHub::start(CONFIG).await;
    let photo = fixture("photo.jpg");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = hub.client.clone();
        let mut body = photo.clone();
        // A different trailing byte per upload gives each file its own hash.
        body.push(i);
        tasks.push(tokio::spawn(async move {
            let mut headers = vec![("content-type", "image/jpeg")];
            if i % 2 == 0 {
                headers.push(("content-disposition", "attachment; filename=\"same.jpg\""));
            }
            let response = client
                .send(Method::POST, "/webhook/urls/camera-upload", &headers, body)
                .await
                .expect("request");
            assert_eq!(response.status, 200);
            let file = &response.json()["File"];
            (
                file["Path"].as_str().expect("path").to_owned(),
                file["Sha256"].as_str().expect("hash").to_owned(),
            )
        }));
    }

    let mut paths = HashSet::new();
    let mut hashes = HashSet::new();
    for task in tasks {
        let (path, hash) = task.await.expect("task");
        paths.insert(path);
        hashes.insert(hash);
    }
    assert_eq!(paths.len(), 50);
    assert_eq!(hashes.len(), 50);

    let on_disk: HashSet<String> = files_on_disk(&hub).into_iter().collect();
    assert_eq!(on_disk, paths);
    assert_eq!(hub.stored_rows(), 50);
    let stored = records(&hub).await;
    let recorded: HashSet<String> = stored
        .iter()
        .map(|record| record["Data"]["Path"].as_str().expect("path").to_owned())
        .collect();
    assert_eq!(recorded, paths);
    hub.stop().await;
}

#[tokio::test]
async fn files_api_streams_stored_file() {
    let hub = TestHub::start(CONFIG).await;
    let pdf = fixture("document.pdf");
    let response = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[
            ("content-type", "application/pdf"),
            (
                "content-disposition",
                "attachment; filename=\"report 1.pdf\"",
            ),
        ],
        pdf.clone(),
    )
    .await;
    let path = response.json()["File"]["Path"]
        .as_str()
        .expect("path")
        .to_owned();
    let encoded = path.replace(' ', "%20");
    let (name, value) = admin();

    let served = hub
        .client
        .get(&format!("/api/v1/files/{encoded}"), &[(name, &value)])
        .await
        .expect("request");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), "application/pdf");
    assert_eq!(served.header("content-length"), pdf.len().to_string());
    assert_eq!(served.header("x-content-type-options"), "nosniff");
    assert_eq!(&served.body[..], &pdf[..]);

    let unauthorized = hub
        .client
        .get(&format!("/api/v1/files/{encoded}"), &[])
        .await
        .expect("request");
    assert_eq!(unauthorized.status, 401);

    for (bad, status) in [
        ("..%2F..%2Fhubkit.db", 400),
        ("a/20261204/..", 400),
        ("a/2026/x.jpg", 400),
        ("abc/20261204/.upload-x.part", 400),
        ("abc/20261204/missing.jpg", 404),
        ("%ff/20261204/x.jpg", 400),
    ] {
        let response = hub
            .client
            .get(&format!("/api/v1/files/{bad}"), &[(name, &value)])
            .await
            .expect("request");
        assert_eq!(response.status, status, "{bad}: {:?}", response.body);
    }

    // A database file next to the files folder is never reachable.
    let outside = hub
        .client
        .get("/api/v1/files/../hubkit.db", &[(name, &value)])
        .await
        .expect("request");
    assert_ne!(outside.status, 200);
    hub.stop().await;
}

#[tokio::test]
async fn retention_removes_oldest_and_marks_records() {
    let hub = TestHub::start(CONFIG).await;
    let mut paths = Vec::new();
    for _ in 0..3 {
        let response = upload(
            &hub,
            "/webhook/urls/kept-small",
            &[("content-type", "image/jpeg")],
            fixture("photo.jpg"),
        )
        .await;
        assert_eq!(response.status, 200);
        paths.push(
            response.json()["File"]["Path"]
                .as_str()
                .expect("path")
                .to_owned(),
        );
    }
    // Three files of 834 bytes exceed 2000 bytes: the oldest goes.
    let removed = hub.hub.enforce_retention(Utc::now()).await;
    assert_eq!(removed, 1);
    let on_disk = files_on_disk(&hub);
    assert_eq!(on_disk, paths[1..].to_vec());

    let stored = records(&hub).await;
    let oldest = stored
        .iter()
        .find(|record| record["Data"]["Path"] == paths[0].as_str())
        .expect("record of the removed file");
    assert_eq!(oldest["Data"]["Removed"]["Reason"], "max-total-bytes");
    let (name, value) = admin();
    let removed_file = hub
        .client
        .get(&format!("/api/v1/files/{}", paths[0]), &[(name, &value)])
        .await
        .expect("request");
    assert_eq!(removed_file.status, 404);

    // Two hours later every file is older than max_age_hours = 1.
    let later = Utc::now() + chrono::Duration::hours(2);
    assert_eq!(hub.hub.enforce_retention(later).await, 2);
    assert!(files_on_disk(&hub).is_empty(), "{:?}", files_on_disk(&hub));
    let stored = records(&hub).await;
    let reasons: Vec<&Value> = stored
        .iter()
        .map(|record| &record["Data"]["Removed"]["Reason"])
        .collect();
    assert_eq!(reasons.iter().filter(|r| **r == "max-age").count(), 2);
    let metrics = hub.client.get("/metrics", &[]).await.expect("request");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("hubkit_files_removed_total{reason=\"max-age\"} 2"),
        "{text}"
    );
    assert!(text.contains("hubkit_files_stored_total 3"), "{text}");
    hub.stop().await;
}

#[tokio::test]
async fn files_api_ranges_and_etag() {
    let hub = TestHub::start(CONFIG).await;
    let mp4 = fixture("clip.mp4");
    let response = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-type", "video/mp4")],
        mp4.clone(),
    )
    .await;
    let path = response.json()["File"]["Path"]
        .as_str()
        .expect("path")
        .to_owned();
    let (name, value) = admin();
    let size = mp4.len();
    let get = |range: &'static str| {
        let client = hub.client.clone();
        let url = format!("/api/v1/files/{path}");
        let value = value.clone();
        async move {
            client
                .get(&url, &[(name, &value), ("range", range)])
                .await
                .expect("request")
        }
    };

    let first = get("bytes=0-9").await;
    assert_eq!(first.status, 206);
    assert_eq!(first.header("content-range"), format!("bytes 0-9/{size}"));
    assert_eq!(first.header("content-length"), "10");
    assert_eq!(&first.body[..], &mp4[..10]);

    let suffix = get("bytes=-5").await;
    assert_eq!(suffix.status, 206);
    assert_eq!(&suffix.body[..], &mp4[size - 5..]);

    let open_ended = get("bytes=100-").await;
    assert_eq!(open_ended.status, 206);
    assert_eq!(&open_ended.body[..], &mp4[100..]);

    let past_end = get("bytes=100000-").await;
    assert_eq!(past_end.status, 416);
    assert_eq!(past_end.header("content-range"), format!("bytes */{size}"));

    let etag = first.header("etag").to_owned();
    let unchanged = hub
        .client
        .get(
            &format!("/api/v1/files/{path}"),
            &[(name, &value), ("if-none-match", &etag)],
        )
        .await
        .expect("request");
    assert_eq!(unchanged.status, 304);
    assert!(unchanged.body.is_empty());

    let mismatched = hub
        .client
        .get(
            &format!("/api/v1/files/{path}"),
            &[
                (name, &value),
                ("range", "bytes=0-9"),
                ("if-range", "\"other\""),
            ],
        )
        .await
        .expect("request");
    assert_eq!(
        mismatched.status, 200,
        "a stale If-Range gets the whole file"
    );
    assert_eq!(&mismatched.body[..], &mp4[..]);
    let precondition = hub
        .client
        .get(
            &format!("/api/v1/files/{path}"),
            &[(name, &value), ("if-match", "\"other\"")],
        )
        .await
        .expect("request");
    assert_eq!(precondition.status, 412);
    for malformed in ["bytes=-", "bytes=--5", "bytes=+0-9", "items=0-9"] {
        let whole = get(malformed).await;
        assert_eq!(whole.status, 200, "{malformed}");
    }
    let upper = get("BYTES=0-9").await;
    assert_eq!(upper.status, 206);
    let huge_suffix = get("bytes=-18446744073709551616").await;
    assert_eq!(huge_suffix.status, 206);
    assert_eq!(huge_suffix.body.len(), size);

    let several = get("bytes=0-1,5-6").await;
    assert_eq!(several.status, 200);
    assert_eq!(&several.body[..], &mp4[..]);
    assert_eq!(several.header("accept-ranges"), "bytes");
    hub.stop().await;
}

#[tokio::test]
async fn json_without_content_type_is_rejected() {
    let hub = TestHub::start(CONFIG).await;
    for headers in [
        vec![],
        vec![("content-type", "application/x-www-form-urlencoded")],
    ] {
        let response = upload(
            &hub,
            "/webhook/urls/camera-upload",
            &headers,
            b" {\"temperature\": 25.5}".to_vec(),
        )
        .await;
        assert_eq!(response.status, 415, "{headers:?}");
        let problem = response.json();
        assert_eq!(
            problem["type"],
            "urn:hubkit:problem:json-without-content-type"
        );
    }
    let with_bom = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[],
        b"\xEF\xBB\xBF{\"temperature\": 25.5}".to_vec(),
    )
    .await;
    assert_eq!(with_bom.status, 415);
    let form = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"temperature=25.5&humidity=60".to_vec(),
    )
    .await;
    assert_eq!(form.status, 415);
    assert_eq!(form.json()["type"], "urn:hubkit:problem:form-not-supported");
    // An INI file starts with `[` but is no JSON, so it is a file of its own type.
    let ini = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-type", "text/plain")],
        b"[section]\nkey = value\n".to_vec(),
    )
    .await;
    assert_eq!(ini.status, 200);
    let legacy_json = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[("content-type", "text/json")],
        b"{\"temperature\": 25.5}".to_vec(),
    )
    .await;
    assert_eq!(legacy_json.status, 200);
    assert!(
        legacy_json.json().get("File").is_none(),
        "text/json is JSON"
    );
    assert_eq!(hub.stored_rows(), 2);

    // With a filename the sender means a file.
    let named = upload(
        &hub,
        "/webhook/urls/camera-upload",
        &[(
            "content-disposition",
            "attachment; filename=\"reading.json\"",
        )],
        b"{\"temperature\": 25.5}".to_vec(),
    )
    .await;
    assert_eq!(named.status, 200);
    assert_eq!(named.json()["File"]["MediaType"], "application/json");
    assert_eq!(hub.stored_rows(), 3);
    hub.stop().await;
}
