use std::path::PathBuf;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/media")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The media fixtures, with the type and extension their content identifies.
const FIXTURES: &[(&str, &str, &str)] = &[
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
];

#[test]
fn signatures_identify_every_fixture() {
    let detector = Detector::without_shared_mime_info();
    for (name, media_type, extension) in FIXTURES {
        let found = detector
            .from_content(&fixture(name))
            .unwrap_or_else(|| panic!("{name} not identified"));
        assert_eq!(found.media_type, *media_type, "{name}");
        assert_eq!(found.extension, *extension, "{name}");
        assert_eq!(found.detected_by, DetectedBy::Signature, "{name}");
    }
}

#[test]
fn signatures_need_only_head_bytes() {
    let detector = Detector::without_shared_mime_info();
    for (name, media_type, _) in FIXTURES {
        let bytes = fixture(name);
        let head = &bytes[..bytes.len().min(HEAD_BYTES)];
        let found = detector.from_content(head).expect("identified");
        assert_eq!(found.media_type, *media_type, "{name}");
    }
}

#[test]
fn content_type_step() {
    let found = from_content_type(Some("image/jpeg")).expect("identified");
    assert_eq!(found.media_type, "image/jpeg");
    assert_eq!(found.extension, "jpg");
    assert_eq!(found.detected_by, DetectedBy::ContentType);

    let with_params = from_content_type(Some("Audio/WAV; rate=8000")).expect("identified");
    assert_eq!(with_params.media_type, "audio/wav");
    assert_eq!(with_params.extension, "wav");
}

#[test]
fn content_type_without_specific_type() {
    for value in [
        None,
        Some(""),
        Some("application/octet-stream"),
        Some("Application/Octet-Stream; name=x"),
        Some("binary/octet-stream"),
        Some("application/x-www-form-urlencoded"),
        Some("image/*"),
        Some("*/*"),
        Some("not a media type"),
        Some("image/"),
        Some("/jpeg"),
    ] {
        assert_eq!(from_content_type(value), None, "{value:?}");
    }
}

#[test]
fn filename_step() {
    for (name, media_type, extension) in [
        ("snapshot.jpg", "image/jpeg", "jpg"),
        ("snapshot.JPEG", "image/jpeg", "jpg"),
        ("voice.wav", "audio/wav", "wav"),
        ("clip.mp4", "video/mp4", "mp4"),
        ("report.pdf", "application/pdf", "pdf"),
    ] {
        let found = from_filename(name).unwrap_or_else(|| panic!("{name} not identified"));
        assert_eq!(found.media_type, media_type, "{name}");
        assert_eq!(found.extension, extension, "{name}");
        assert_eq!(found.detected_by, DetectedBy::Filename, "{name}");
    }
    for name in [
        "noextension",
        ".jpg",
        "trailing.",
        "data.bin",
        "x.unknownext",
    ] {
        assert_eq!(from_filename(name), None, "{name}");
    }
}

#[test]
fn steps_run_in_order() {
    let detector = Detector::without_shared_mime_info();
    let png = fixture("image.png");

    let by_header = detector
        .detect(Some("image/gif"), Some("a.bmp"), &png)
        .expect("identified");
    assert_eq!(by_header.detected_by, DetectedBy::ContentType);
    assert_eq!(by_header.media_type, "image/gif");

    let by_name = detector
        .detect(Some("application/octet-stream"), Some("a.bmp"), &png)
        .expect("identified");
    assert_eq!(by_name.detected_by, DetectedBy::Filename);
    assert_eq!(by_name.media_type, "image/bmp");

    let by_content = detector
        .detect(None, Some("no-extension"), &png)
        .expect("identified");
    assert_eq!(by_content.detected_by, DetectedBy::Signature);
    assert_eq!(by_content.media_type, "image/png");
}

/// A header that lies decides the type: the sender's word comes first, as documented.
#[test]
fn lying_header_wins() {
    let detector = Detector::without_shared_mime_info();
    let found = detector
        .detect(Some("audio/mpeg"), None, &fixture("photo.jpg"))
        .expect("identified");
    assert_eq!(found.media_type, "audio/mpeg");
    assert_eq!(found.extension, "mp3");
}

#[test]
fn filename_extension_disagreeing_with_content() {
    let detector = Detector::without_shared_mime_info();
    let found = detector
        .detect(None, Some("photo.png"), &fixture("photo.jpg"))
        .expect("identified");
    assert_eq!(found.media_type, "image/png");
    assert_eq!(found.detected_by, DetectedBy::Filename);
}

#[test]
fn nothing_identifiable() {
    let detector = Detector::without_shared_mime_info();
    let err = detector
        .detect(
            Some("application/octet-stream"),
            Some("blob"),
            &fixture("unknown.bin"),
        )
        .expect_err("nothing identifies random bytes");
    let message = err.to_string();
    assert!(message.contains("application/octet-stream"), "{message}");
    assert!(message.contains("\"blob\""), "{message}");
    assert!(message.contains("3072 bytes"), "{message}");
    assert!(message.contains("not installed"), "{message}");
}

#[test]
fn empty_body_identifies_nothing() {
    let detector = Detector::without_shared_mime_info();
    assert_eq!(detector.from_content(b""), None);
}

/// Runs only where shared-mime-info is installed, because that is what it tests.
#[test]
fn shared_mime_info_identifies_text() {
    let detector = Detector::new();
    if !detector.has_shared_mime_info() {
        eprintln!("shared-mime-info is not installed; skipping");
        return;
    }
    let found = detector
        .from_content(&fixture("notes.txt"))
        .expect("identified");
    assert_eq!(found.media_type, "text/plain");
    assert_eq!(found.extension, "txt");
    assert_eq!(found.detected_by, DetectedBy::SharedMimeInfo);
    assert_eq!(detector.from_content(&fixture("unknown.bin")), None);
}

#[test]
fn without_shared_mime_info_text_is_unidentified() {
    let detector = Detector::without_shared_mime_info();
    assert_eq!(detector.from_content(&fixture("notes.txt")), None);
}

/// Runs only where shared-mime-info is installed, because that is what it tests.
#[test]
fn binary_without_nul_is_not_text() {
    let detector = Detector::new();
    if !detector.has_shared_mime_info() {
        eprintln!("shared-mime-info is not installed; skipping");
        return;
    }
    let binary: Vec<u8> = (1..=255).cycle().take(4000).collect();
    assert_eq!(detector.from_content(&binary), None);
    assert_eq!(detector.from_content(&[0xff, 0xfe, 0xfd]), None);
}

#[test]
fn text_check() {
    assert!(looks_like_text(b"temperature,humidity\r\n25.5,60\n"));
    assert!(looks_like_text("°C\tok".as_bytes()));
    // A character cut off by the 3 KiB boundary still counts as text.
    assert!(looks_like_text(&"é".as_bytes()[..1]));
    assert!(!looks_like_text(b"\xff\xfe\xfd"));
    assert!(!looks_like_text(b"abc\x01def"));
}
