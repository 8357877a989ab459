//! Fuzz body for what reaches the chat service from outside: a client's
//! text frames, and the entries a Redis relay reads back (another writer
//! may have put anything in the Stream).

use crate::entry::Entry;
use crate::id::EntryId;
use crate::room::RoomState;

/// Any bytes as a client frame and as Redis Stream entries (`id`, then
/// `field=value` pairs, one entry per line). Never a panic; entries that
/// parse are applied to a room in order, which stays within its bounds
/// and renders a join that parses back.
pub fn fuzz_chat(data: &[u8]) {
    livecdn_shared::chat::fuzz_client_msg(data);
    let text = String::from_utf8_lossy(data);
    let mut room = RoomState::new("fuzz", 4);
    let mut last = EntryId::ZERO;
    for line in text.lines().take(64) {
        let mut parts = line.split(' ');
        let Some(Ok(id)) = parts.next().map(str::parse::<EntryId>) else {
            continue;
        };
        let fields: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let get = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| *v);
        if let Some(entry) = Entry::from_fields(id, get) {
            let applied = room.apply(&entry, 0).is_some();
            assert!(!applied || id > last, "{id} applied after {last}");
            last = last.max(id);
        }
    }
    let join = room.join_event(None);
    assert!(serde_json::from_str::<livecdn_shared::chat::ServerEvent>(join.as_str()).is_ok());
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_survive() {
        for seed in [
            &b"1-0 k=m u=a n=A r=viewer t=hi ts=1\n2-0 k=d id=1-0\n1-5 k=m u=b n=B r=x t=y ts=2"[..],
            b"3-0 k=b u=a until=\n4-0 k=m u=a n=A r=viewer t=x ts=3\n5-0 k=x u=a",
            br#"{"type":"message","text":"hi"}"#,
            b"\xff\xfe 1-",
        ] {
            super::fuzz_chat(seed);
        }
    }
}
