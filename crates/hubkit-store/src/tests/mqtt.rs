//! MQTT writes: redelivery detection, dead letters and their pages.

use super::{open, sample, tempdir, time};
use crate::{InboxKey, MqttWrite, NewDeadLetter, RecordQuery};

fn key(pkid: u16, payload: &[u8], dup: bool) -> InboxKey {
    use sha2::Digest;
    InboxKey {
        session: "hubkit-1@127.0.0.1:1883".into(),
        pkid,
        topic: "sensors/room1".into(),
        payload_sha256: sha2::Sha256::digest(payload).into(),
        dup,
    }
}

fn letter(reason: &str) -> NewDeadLetter {
    NewDeadLetter {
        received_at: time(0),
        protocol: "mqtt".into(),
        broker: "local".into(),
        device: "sensors".into(),
        topic: "sensors/room1".into(),
        qos: 1,
        retain: false,
        payload: b"{not json".to_vec(),
        reason: reason.into(),
    }
}

fn write(pkid: u16, payload: &[u8], dup: bool) -> MqttWrite {
    MqttWrite {
        records: vec![sample(0)],
        dead_letters: Vec::new(),
        inbox: Some(key(pkid, payload, dup)),
        runs: Vec::new(),
    }
}

async fn record_count(store: &crate::Store) -> usize {
    store
        .query(RecordQuery::default())
        .await
        .expect("query succeeds")
        .records
        .len()
}

#[tokio::test]
async fn redelivery_with_dup_is_skipped() {
    let folder = tempdir();
    let store = open(&folder);
    let first = store
        .insert_mqtt(write(7, b"25.5", false))
        .await
        .expect("insert");
    assert_eq!(first.cursors.len(), 1);
    assert!(!first.duplicate);
    let again = store
        .insert_mqtt(write(7, b"25.5", true))
        .await
        .expect("insert");
    assert!(again.duplicate);
    assert!(again.cursors.is_empty());
    assert_eq!(record_count(&store).await, 1);
}

#[tokio::test]
async fn same_content_without_dup_is_new() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert_mqtt(write(7, b"25.5", false))
        .await
        .expect("insert");
    let second = store
        .insert_mqtt(write(7, b"25.5", false))
        .await
        .expect("insert");
    assert!(!second.duplicate);
    assert_eq!(record_count(&store).await, 2);
}

#[tokio::test]
async fn dup_with_other_payload_or_pkid_is_new() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert_mqtt(write(7, b"25.5", false))
        .await
        .expect("insert");
    let other_payload = store
        .insert_mqtt(write(7, b"26.0", true))
        .await
        .expect("insert");
    assert!(!other_payload.duplicate);
    let other_pkid = store
        .insert_mqtt(write(8, b"26.0", true))
        .await
        .expect("insert");
    assert!(!other_pkid.duplicate);
    assert_eq!(record_count(&store).await, 3);
    // The inbox now remembers pkid 7 with the newer payload.
    let repeat = store
        .insert_mqtt(write(7, b"26.0", true))
        .await
        .expect("insert");
    assert!(repeat.duplicate);
}

#[tokio::test]
async fn dead_letters_are_stored_and_paged() {
    let folder = tempdir();
    let store = open(&folder);
    for n in 0..5 {
        let write = MqttWrite {
            records: Vec::new(),
            dead_letters: vec![letter(&format!("reason {n}"))],
            inbox: Some(key(n, format!("p{n}").as_bytes(), false)),
            runs: Vec::new(),
        };
        let written = store.insert_mqtt(write).await.expect("insert");
        assert!(written.cursors.is_empty());
        assert!(!written.duplicate);
    }
    assert_eq!(store.dead_letter_count().expect("count"), 5);
    let page = store.dead_letters(None, 2).await.expect("page");
    let reasons: Vec<&str> = page
        .letters
        .iter()
        .map(|l| l.letter.reason.as_str())
        .collect();
    assert_eq!(reasons, ["reason 4", "reason 3"]);
    assert_eq!(page.letters[0].letter.payload, b"{not json");
    assert_eq!(page.letters[0].payload_bytes, 9);
    let next = store
        .dead_letters(page.next_before, 10)
        .await
        .expect("page");
    assert_eq!(next.letters.len(), 3);
    assert_eq!(next.next_before, None);
}

#[tokio::test]
async fn redelivered_dead_letter_is_not_stored_twice() {
    let folder = tempdir();
    let store = open(&folder);
    let write = |dup| MqttWrite {
        records: Vec::new(),
        dead_letters: vec![letter("invalid JSON")],
        inbox: Some(key(3, b"{not json", dup)),
        runs: Vec::new(),
    };
    store.insert_mqtt(write(false)).await.expect("insert");
    let again = store.insert_mqtt(write(true)).await.expect("insert");
    assert!(again.duplicate);
    assert_eq!(store.dead_letter_count().expect("count"), 1);
}

#[tokio::test]
async fn session_reset_forgets_committed_messages() {
    let folder = tempdir();
    let store = open(&folder);
    store
        .insert_mqtt(write(1, b"open", false))
        .await
        .expect("insert");
    store
        .reset_mqtt_session("hubkit-1@127.0.0.1:1883")
        .await
        .expect("reset");
    let again = store
        .insert_mqtt(write(1, b"open", true))
        .await
        .expect("insert");
    assert!(!again.duplicate, "a message of the new session is new");
    assert_eq!(record_count(&store).await, 2);
}

#[tokio::test]
async fn dead_letter_page_has_payload_preview() {
    let folder = tempdir();
    let store = open(&folder);
    let mut big = letter("too large");
    big.payload = vec![b'x'; 5000];
    // SQLite's substr of an empty blob is NULL, which the page must still read.
    let mut empty = letter("payload is empty");
    empty.payload = Vec::new();
    let write = MqttWrite {
        records: Vec::new(),
        dead_letters: vec![empty, big],
        inbox: None,
        runs: Vec::new(),
    };
    store.insert_mqtt(write).await.expect("insert");
    let page = store.dead_letters(None, 10).await.expect("page");
    assert_eq!(page.letters[1].payload_bytes, 0);
    assert!(page.letters[1].letter.payload.is_empty());
    let listed = &page.letters[0];
    assert_eq!(listed.payload_bytes, 5000);
    assert_eq!(
        listed.letter.payload.len(),
        crate::DEAD_LETTER_PREVIEW_BYTES
    );
    let whole = store
        .dead_letter_payload(listed.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(whole.len(), 5000);
    assert_eq!(
        store
            .dead_letter_payload(listed.id + 1)
            .await
            .expect("read"),
        None
    );
}
