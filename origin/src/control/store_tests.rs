#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use super::*;
use livecdn_shared::config::LadderChoice;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn channel(name: &str) -> NewChannel {
    NewChannel {
        name: name.to_string(),
        latency_mode: LatencyMode::Low,
        ladder: LadderChoice::Full,
        recording: Some(false),
        authorized: false,
        key_ttl_seconds: None,
    }
}

fn active_channel(l: KeyLookup) -> String {
    match l {
        KeyLookup::Active { channel, .. } => channel.name,
        other => panic!("not active: {other:?}"),
    }
}

#[test]
fn a_channel_and_its_key_survive_reopening_the_file() {
    let dir = std::env::temp_dir().join(format!("livecdn-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("control.db");
    let _ = std::fs::remove_file(&path);
    let key = {
        let store = Store::open(&path).unwrap();
        let mut new = channel("studio");
        new.ladder = LadderChoice::SourceOnly;
        new.authorized = true;
        let (c, key) = store.create(&new, 1_000, DAY).unwrap();
        assert_eq!(c.name, "studio");
        assert_eq!((c.created_at, c.updated_at), (1_000, 1_000));
        assert_eq!(key.record.expires_at, 1_000 + 86_400_000);
        key.value
    };
    let store = Store::open(&path).unwrap();
    let c = store.get("studio").unwrap().unwrap();
    assert_eq!(c.ladder, LadderChoice::SourceOnly);
    assert!(c.authorized);
    assert_eq!(
        active_channel(store.find_key(&key, 2_000).unwrap()),
        "studio"
    );
    // The file holds the digest, not the key.
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.join("control.db-wal")).unwrap_or_default();
    for b in [&bytes, &wal] {
        assert!(!b.windows(key.len()).any(|w| w == key.as_bytes()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn names_are_unique_and_updates_touch_only_what_they_name() {
    let s = Store::open_in_memory().unwrap();
    s.create(&channel("a"), 10, DAY).unwrap();
    assert!(matches!(
        s.create(&channel("a"), 11, DAY),
        Err(StoreError::Exists(_))
    ));
    let patch = ChannelPatch {
        latency_mode: Some(LatencyMode::Normal),
        ..ChannelPatch::default()
    };
    let c = s.update("a", &patch, 20).unwrap();
    assert_eq!(c.latency_mode, LatencyMode::Normal);
    assert_eq!(c.ladder, LadderChoice::Full);
    assert_eq!((c.created_at, c.updated_at), (10, 20));
    assert_eq!(s.get("a").unwrap().unwrap(), c);
    assert!(matches!(
        s.update("b", &patch, 20),
        Err(StoreError::NoChannel(_))
    ));
    s.create(&channel("b"), 30, DAY).unwrap();
    let names: Vec<_> = s.list().unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn expired_revoked_and_unknown_keys_are_told_apart() {
    let s = Store::open_in_memory().unwrap();
    let (_, key) = s
        .create(&channel("cam"), 0, Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        active_channel(s.find_key(&key.value, 59_999).unwrap()),
        "cam"
    );
    assert!(matches!(
        s.find_key(&key.value, 60_000).unwrap(),
        KeyLookup::Expired { .. }
    ));
    assert_eq!(s.find_key("lsk_nothing", 0).unwrap(), KeyLookup::Unknown);
    let r = s.revoke("cam", &key.record.id, 100).unwrap();
    assert_eq!(r.revoked_at, Some(100));
    // Revoking again keeps the first time.
    assert_eq!(
        s.revoke("cam", &key.record.id, 200).unwrap().revoked_at,
        Some(100)
    );
    assert!(matches!(
        s.find_key(&key.value, 10).unwrap(),
        KeyLookup::Revoked { .. }
    ));
    assert!(matches!(
        s.revoke("cam", "kmissing", 1),
        Err(StoreError::NoKey(_))
    ));
    // Another channel's key id is not this channel's.
    s.create(&channel("other"), 0, DAY).unwrap();
    assert!(matches!(
        s.revoke("other", &key.record.id, 1),
        Err(StoreError::NoKey(_))
    ));
}

#[test]
fn rotation_revokes_every_usable_key_and_deleting_a_channel_drops_its_keys() {
    let s = Store::open_in_memory().unwrap();
    let (_, first) = s.create(&channel("cam"), 0, DAY).unwrap();
    let (second, revoked) = s.rotate("cam", 1_000, DAY).unwrap();
    assert_eq!(revoked, std::slice::from_ref(&first.record.id));
    assert!(matches!(
        s.find_key(&first.value, 2_000).unwrap(),
        KeyLookup::Revoked { .. }
    ));
    assert_eq!(
        active_channel(s.find_key(&second.value, 2_000).unwrap()),
        "cam"
    );
    let keys = s.keys("cam").unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].id, second.record.id, "newest first");
    assert!(keys[0].is_active(2_000) && !keys[1].is_active(2_000));
    assert!(s.delete("cam").unwrap());
    assert!(!s.delete("cam").unwrap());
    assert_eq!(
        s.find_key(&second.value, 2_000).unwrap(),
        KeyLookup::Unknown
    );
    assert!(matches!(s.keys("cam"), Err(StoreError::NoChannel(_))));
    assert!(matches!(
        s.rotate("cam", 1, DAY),
        Err(StoreError::NoChannel(_))
    ));
}

#[test]
fn a_database_from_a_newer_release_is_refused() {
    let dir = std::env::temp_dir().join(format!("livecdn-store-new-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("control.db");
    let _ = std::fs::remove_file(&path);
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(Store::open(&path), Err(StoreError::Migrate(_))));
    let _ = std::fs::remove_dir_all(&dir);
}
