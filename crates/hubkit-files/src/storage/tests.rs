use std::collections::HashSet;

use chrono::TimeZone;

use super::*;

fn received() -> DateTime<Utc> {
    Utc.timestamp_opt(1_796_376_615, 123_456_789)
        .single()
        .expect("valid time")
}

fn store() -> (tempfile::TempDir, FileStore) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = FileStore::open(folder.path().join("files")).expect("open store");
    (folder, store)
}

/// Lists every entry under the store's root, relative to it.
fn entries(store: &FileStore) -> Vec<String> {
    let mut found = Vec::new();
    for owner in read_folders(store.root()) {
        for day in read_folders(&owner) {
            for entry in fs::read_dir(&day).expect("readable").flatten() {
                let path = entry.path();
                let relative = path.strip_prefix(store.root()).expect("under root");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn upload_stores_file_with_hash() {
    let (_folder, store) = store();
    let mut upload = store
        .begin("a1b2c3d4e5f6", received(), 1024)
        .expect("begin");
    upload.write(b"hello ").expect("write");
    upload.write(b"world").expect("write");
    let stored = upload.finish("greeting.txt").expect("finish");

    assert_eq!(stored.relative_path, "a1b2c3d4e5f6/20261204/greeting.txt");
    assert_eq!(stored.size, 11);
    assert_eq!(
        stored.sha256,
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    let path = store.resolve(&stored.relative_path).expect("valid path");
    assert_eq!(fs::read(path).expect("readable"), b"hello world");
    assert_eq!(entries(&store), vec!["a1b2c3d4e5f6/20261204/greeting.txt"]);
}

#[test]
fn existing_name_is_never_replaced() {
    let (_folder, store) = store();
    let mut names = Vec::new();
    for content in [&b"first"[..], b"second", b"third"] {
        let mut upload = store.begin("owner", received(), 1024).expect("begin");
        upload.write(content).expect("write");
        names.push(upload.finish("snapshot.jpg").expect("finish").name);
    }
    assert_eq!(
        names,
        vec!["snapshot.jpg", "snapshot-1.jpg", "snapshot-2.jpg"]
    );
    let first = store.resolve("owner/20261204/snapshot.jpg").expect("valid");
    assert_eq!(fs::read(first).expect("readable"), b"first");
}

#[test]
fn name_taken_by_another_writer_is_skipped() {
    let (_folder, store) = store();
    let folder = store.root().join("owner/20261204");
    fs::create_dir_all(&folder).expect("folder");
    fs::write(folder.join("photo.jpg"), b"not ours").expect("write");
    fs::write(folder.join("photo-1.jpg"), b"not ours").expect("write");

    let mut upload = store.begin("owner", received(), 1024).expect("begin");
    upload.write(b"ours").expect("write");
    let stored = upload.finish("photo.jpg").expect("finish");
    assert_eq!(stored.name, "photo-2.jpg");
    assert_eq!(
        fs::read(folder.join("photo.jpg")).expect("read"),
        b"not ours"
    );
}

#[test]
fn over_limit_write_is_rejected() {
    let (_folder, store) = store();
    let mut upload = store.begin("owner", received(), 10).expect("begin");
    upload.write(b"0123456789").expect("exactly the limit");
    let err = upload.write(b"x").expect_err("over the limit");
    assert!(matches!(err, FileError::TooLarge { limit: 10 }), "{err}");
    drop(upload);
    assert!(entries(&store).is_empty(), "{:?}", entries(&store));
}

#[test]
fn dropped_upload_leaves_nothing() {
    let (_folder, store) = store();
    let mut upload = store.begin("owner", received(), 1024).expect("begin");
    upload.write(b"partial").expect("write");
    assert_eq!(entries(&store).len(), 1, "the temporary file exists");
    drop(upload);
    assert!(entries(&store).is_empty(), "{:?}", entries(&store));
}

#[test]
fn partial_uploads_are_removed_at_start() {
    let (_folder, store) = store();
    let mut upload = store.begin("owner", received(), 1024).expect("begin");
    upload.write(b"partial").expect("write");
    // A crash leaves the temporary file: forget the upload so its drop does not run.
    std::mem::forget(upload);
    let mut done = store.begin("owner", received(), 1024).expect("begin");
    done.write(b"done").expect("write");
    done.finish("kept.txt").expect("finish");

    let reopened = FileStore::open(store.root()).expect("open");
    assert_eq!(reopened.remove_partial_uploads(), 1);
    assert_eq!(entries(&reopened), vec!["owner/20261204/kept.txt"]);
}

#[test]
fn unsafe_owner_is_rejected() {
    let (_folder, store) = store();
    for owner in ["", "..", "a/b", "a\\b", ".hidden", &"x".repeat(65)] {
        let err = store
            .begin(owner, received(), 10)
            .expect_err("unsafe owner");
        assert!(
            matches!(err, FileError::InvalidOwner { .. }),
            "{owner:?}: {err}"
        );
    }
}

#[test]
fn resolve_accepts_layout_paths_only() {
    let (_folder, store) = store();
    let ok = store.resolve("a1b2/20261204/photo.jpg").expect("valid");
    assert_eq!(ok, store.root().join("a1b2/20261204/photo.jpg"));
    for (path, reason) in [
        ("../etc/passwd", "owner"),
        ("a1b2/20261204/../../../etc/passwd", "three parts"),
        ("/etc/passwd/x", "owner"),
        ("a1b2/../photo.jpg", "eight digits"),
        ("a1b2/20261204/..", "dot"),
        ("a1b2/20261204/.upload-x.part", "dot"),
        ("a1b2/20261204/", "empty"),
        ("a1b2/2026120/photo.jpg", "eight digits"),
        ("a1b2/20261204/a\\b", "backslash"),
        ("a1b2/20261204/a\0b", "backslash"),
        ("a1b2/20261204", "three parts"),
        ("", "three parts"),
    ] {
        let err = store.resolve(path).expect_err(path);
        assert!(err.to_string().contains(reason), "{path:?}: {err}");
    }
}

#[test]
fn remove_deletes_file_and_old_empty_folder() {
    let (_folder, store) = store();
    let mut upload = store.begin("owner", received(), 1024).expect("begin");
    upload.write(b"old").expect("write");
    let stored = upload.finish("old.txt").expect("finish");

    let later = received() + chrono::Duration::days(2);
    assert!(store.remove(&stored.relative_path, later).expect("removed"));
    assert!(!store.root().join("owner/20261204").exists());
    assert!(
        !store
            .remove(&stored.relative_path, later)
            .expect("already gone")
    );
}

#[test]
fn remove_keeps_todays_folder() {
    let (_folder, store) = store();
    let mut upload = store.begin("owner", received(), 1024).expect("begin");
    upload.write(b"new").expect("write");
    let stored = upload.finish("new.txt").expect("finish");
    assert!(
        store
            .remove(&stored.relative_path, received())
            .expect("removed")
    );
    assert!(store.root().join("owner/20261204").is_dir());
}

#[test]
fn concurrent_uploads_get_distinct_names() {
    let (_folder, store) = store();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut upload = store.begin("owner", received(), 1024).expect("begin");
                upload
                    .write(format!("upload {i}").as_bytes())
                    .expect("write");
                upload.finish("same.txt").expect("finish")
            })
        })
        .collect();
    let names: HashSet<String> = handles
        .into_iter()
        .map(|handle| handle.join().expect("thread").relative_path)
        .collect();
    assert_eq!(names.len(), 50);
    assert_eq!(entries(&store).len(), 50);
}

#[tokio::test]
async fn background_upload_streams_and_finishes() {
    let (_folder, store) = store();
    let upload = store.begin("owner", received(), 1 << 20).expect("begin");
    let mut background = crate::BackgroundUpload::spawn(upload, 1 << 20);
    for _ in 0..100 {
        background
            .write(bytes::Bytes::from_static(&[7; 1000]))
            .await
            .expect("write");
    }
    let stored = background.finish("big.bin".into()).await.expect("finish");
    assert_eq!(stored.size, 100_000);
    let path = store.resolve(&stored.relative_path).expect("valid");
    assert_eq!(fs::metadata(path).expect("exists").len(), 100_000);
}

#[tokio::test]
async fn background_upload_over_limit_and_dropped() {
    let (_folder, store) = store();
    let upload = store.begin("owner", received(), 1500).expect("begin");
    let mut background = crate::BackgroundUpload::spawn(upload, 1500);
    background
        .write(bytes::Bytes::from_static(&[1; 1000]))
        .await
        .expect("under the limit");
    let err = background
        .write(bytes::Bytes::from_static(&[1; 1000]))
        .await
        .expect_err("over the limit");
    assert!(matches!(err, FileError::TooLarge { limit: 1500 }), "{err}");
    drop(background);
    // The blocking task removes the temporary file once it finds the channel closed.
    for _ in 0..100 {
        if entries(&store).is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("temporary file left: {:?}", entries(&store));
}

#[test]
fn large_upload_syncs_while_writing() {
    let (_folder, store) = store();
    let mut upload = store.begin("owner", received(), 64 << 20).expect("begin");
    let chunk: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    let mut expected = Sha256::new();
    for _ in 0..320 {
        upload.write(&chunk).expect("write");
        expected.update(&chunk);
    }
    assert!(upload.flusher.is_some(), "20 MiB start a writeback thread");
    let stored = upload.finish("big.bin").expect("finish");
    assert_eq!(stored.size, 320 * 64 * 1024);
    assert_eq!(stored.sha256, format!("{:x}", expected.finalize()));
    let path = store.resolve(&stored.relative_path).expect("valid");
    assert_eq!(fs::metadata(path).expect("exists").len(), stored.size);
    assert_eq!(entries(&store).len(), 1, "{:?}", entries(&store));
}

#[tokio::test]
async fn background_upload_hash_matches_content() {
    let (_folder, store) = store();
    let upload = store.begin("owner", received(), 64 << 20).expect("begin");
    let mut background = crate::BackgroundUpload::spawn(upload, 64 << 20);
    let mut expected = Sha256::new();
    for i in 0..200u32 {
        let chunk = bytes::Bytes::from(vec![(i % 251) as u8; 50_000 + i as usize]);
        expected.update(&chunk);
        background.write(chunk).await.expect("write");
    }
    let stored = background
        .finish("hashed.bin".into())
        .await
        .expect("finish");
    assert_eq!(stored.sha256, format!("{:x}", expected.finalize()));
    let path = store.resolve(&stored.relative_path).expect("valid");
    let content = fs::read(path).expect("readable");
    assert_eq!(content.len() as u64, stored.size);
    assert_eq!(format!("{:x}", Sha256::digest(&content)), stored.sha256);
}

#[test]
fn symlinked_folders_are_refused() {
    let (folder, store) = store();
    let elsewhere = folder.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("folder");
    std::os::unix::fs::symlink(&elsewhere, store.root().join("owner")).expect("symlink");

    let err = store
        .begin("owner", received(), 10)
        .expect_err("a symlinked owner folder is refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    let err = store
        .resolve("owner/20261204/photo.jpg")
        .expect_err("a path through a symlink is refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(fs::read_dir(&elsewhere).expect("readable").next().is_none());
}
