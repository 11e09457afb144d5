use chrono::TimeZone;

use super::*;
use crate::DetectedBy;

fn jpeg() -> FileType {
    FileType {
        media_type: "image/jpeg".into(),
        extension: "jpg".into(),
        detected_by: DetectedBy::ContentType,
    }
}

#[test]
fn default_name_format() {
    let at = Utc
        .timestamp_opt(1_796_376_615, 123_456_789)
        .single()
        .expect("valid time");
    assert_eq!(
        default_name(at, "jpg"),
        "data-20261204T093015.123456789Z.jpg"
    );
}

#[test]
fn default_name_pads_nanoseconds() {
    let at = Utc
        .timestamp_opt(1_796_376_615, 5)
        .single()
        .expect("valid time");
    assert_eq!(
        default_name(at, "png"),
        "data-20261204T093015.000000005Z.png"
    );
}

/// Hostile filenames and the name each is stored under (`jpg` is the detected type).
#[test]
fn hostile_filenames() {
    let long_stem = "a".repeat(300);
    let long_expected = format!("{}.jpg", "a".repeat(MAX_NAME_BYTES - 4));
    let cases: &[(&str, Option<&str>)] = &[
        ("snapshot.jpg", Some("snapshot.jpg")),
        ("snapshot.JPEG", Some("snapshot.JPEG")),
        ("../../etc/passwd", Some("passwd.jpg")),
        ("..\\..\\windows\\win.ini", Some("win.ini.jpg")),
        ("/etc/shadow", Some("shadow.jpg")),
        ("C:\\Users\\x\\photo.png", Some("photo.png.jpg")),
        ("evil.html", Some("evil.html.jpg")),
        ("shell.php", Some("shell.php.jpg")),
        ("..", None),
        (".", None),
        ("...", None),
        ("", None),
        ("   ", None),
        ("dir/", None),
        (".hidden", Some("_hidden.jpg")),
        ("..secret.jpg", Some("__secret.jpg")),
        ("a\0b.jpg", Some("a_b.jpg")),
        ("line\r\nbreak.jpg", Some("line__break.jpg")),
        ("tab\there.jpg", Some("tab_here.jpg")),
        ("del\u{7f}.jpg", Some("del_.jpg")),
        ("what?.jpg", Some("what_.jpg")),
        ("a<b>c:d|e*f\".jpg", Some("a_b_c_d_e_f_.jpg")),
        ("evil\u{202e}gpj.exe", Some("evil_gpj.exe.jpg")),
        ("x.jpg\u{200b}", Some("x.jpg_.jpg")),
        ("\u{feff}bom.jpg", Some("_bom.jpg")),
        ("line\u{2028}sep.jpg", Some("line_sep.jpg")),
        ("CON", Some("_CON.jpg")),
        ("nul.jpg", Some("_nul.jpg")),
        ("NUL.tar.jpg", Some("_NUL.tar.jpg")),
        ("com\u{b9}.jpg", Some("_com\u{b9}.jpg")),
        ("console.jpg", Some("console.jpg")),
        ("trailing. . .", Some("trailing.jpg")),
        ("  spaced name.jpg  ", Some("spaced name.jpg")),
        ("café €.jpg", Some("café €.jpg")),
        ("noextension", Some("noextension.jpg")),
        ("?", None),
        ("_", Some("_.jpg")),
        (long_stem.as_str(), Some(long_expected.as_str())),
    ];
    for (filename, expected) in cases {
        let stored = safe_name(filename, &jpeg());
        assert_eq!(stored.as_deref(), *expected, "filename {filename:?}");
    }
}

#[test]
fn long_name_keeps_extension() {
    let name = format!("{}.jpeg", "x".repeat(500));
    let stored = safe_name(&name, &jpeg()).expect("a name is left");
    assert_eq!(stored.len(), MAX_NAME_BYTES);
    assert!(stored.ends_with(".jpeg"), "{stored}");
}

#[test]
fn long_multibyte_name_cut_at_char_boundary() {
    let name = format!("{}.jpg", "é".repeat(300));
    let stored = safe_name(&name, &jpeg()).expect("a name is left");
    assert!(stored.len() <= MAX_NAME_BYTES, "{}", stored.len());
    assert!(stored.ends_with("é.jpg"), "{stored}");
}

#[test]
fn long_extension_cut_with_name() {
    let name = format!("a.{}", "b".repeat(400));
    let stored = safe_name(&name, &jpeg()).expect("a name is left");
    assert_eq!(stored.len(), MAX_NAME_BYTES);
    assert!(stored.starts_with("a.b"), "{stored}");
}

#[test]
fn numbered_names() {
    assert_eq!(numbered_name("snapshot.jpg", 1), "snapshot-1.jpg");
    assert_eq!(numbered_name("archive.tar.gz", 2), "archive.tar-2.gz");
    assert_eq!(numbered_name("noext", 3), "noext-3");
}

#[test]
fn alias_and_unknown_types_keep_fitting_names() {
    let detected = |media_type: &str| {
        let media_type = crate::canonical_media_type(media_type).to_owned();
        FileType {
            extension: crate::extension_for(&media_type),
            media_type,
            detected_by: DetectedBy::ContentType,
        }
    };
    for (media_type, filename, expected) in [
        ("image/jpg", "photo.jpeg", "photo.jpeg"),
        ("application/x-pdf", "doc.pdf", "doc.pdf"),
        ("audio/opus", "s.ogg", "s.ogg"),
        ("video/mp4", "c.m4v", "c.m4v"),
        ("application/gzip", "a.tgz", "a.tgz"),
        ("foo/bar", "x.dat", "x.dat"),
        ("foo/bar", "noext", "noext.bin"),
    ] {
        let stored = safe_name(filename, &detected(media_type));
        assert_eq!(stored.as_deref(), Some(expected), "{media_type} {filename}");
    }
}

#[test]
fn more_reserved_and_invisible_names() {
    for (filename, expected) in [
        ("COM0.jpg", "_COM0.jpg"),
        ("conin$.jpg", "_conin$.jpg"),
        ("CLOCK$.jpg", "_CLOCK$.jpg"),
        ("x\u{61c}y.jpg", "x_y.jpg"),
        ("a\u{3164}b.jpg", "a_b.jpg"),
        ("a\u{fe0f}.jpg", "a_.jpg"),
        ("a\u{e0001}.jpg", "a_.jpg"),
    ] {
        assert_eq!(
            safe_name(filename, &jpeg()).as_deref(),
            Some(expected),
            "{filename:?}"
        );
    }
}
