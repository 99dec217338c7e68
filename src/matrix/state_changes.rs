//! What a save of matrix-sdk's state carries, as [`super::state_store::SdkStateStore`] judges
//! it: whether it can change the reads the wrapper keeps ([`changes_reads`]), a room's
//! [`Standing`], and what waits to be written ([`Held`]). Plain data and functions; the wrapper's
//! module doc says why each rule holds.

use std::collections::BTreeMap;

use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::{RoomInfo, RoomState, StateChanges};

/// What of a room's info decides whether a save of it may wait: a room info with the standing
/// last written only changed figures the relay never reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    state: RoomState,
    encrypted: bool,
    encryption_known: bool,
    members_synced: bool,
}

impl Standing {
    pub fn of(info: &RoomInfo) -> Self {
        let encryption = info.encryption_state();
        Self {
            state: info.state(),
            encrypted: encryption.is_encrypted(),
            encryption_known: !encryption.is_unknown(),
            members_synced: info.are_members_synced(),
        }
    }
}

/// What waits to be written: the newest sync token and room infos (one per room).
#[derive(Debug, Default, Clone)]
pub struct Held {
    pub token: Option<String>,
    pub room_infos: BTreeMap<OwnedRoomId, RoomInfo>,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.token.is_none() && self.room_infos.is_empty()
    }

    /// Takes in the token and room infos of `changes` (newer than what is held).
    pub fn take_in(&mut self, changes: &StateChanges) {
        if let Some(t) = &changes.sync_token {
            self.token = Some(t.clone());
        }
        for (room, info) in &changes.room_infos {
            self.room_infos.insert(room.clone(), info.clone());
        }
    }

    /// Adds what is held to `changes`, where they carry nothing newer.
    pub fn add_to(self, changes: &mut StateChanges) {
        self.fill(&mut changes.sync_token, &mut changes.room_infos);
    }

    /// Puts back what a failed write was to carry, unless something newer came meanwhile.
    pub fn restore(&mut self, failed: Held) {
        failed.fill(&mut self.token, &mut self.room_infos);
    }

    /// Fills in, from this older state, what `token` and `room_infos` lack.
    fn fill(self, token: &mut Option<String>, room_infos: &mut BTreeMap<OwnedRoomId, RoomInfo>) {
        if token.is_none() {
            *token = self.token;
        }
        for (room, info) in self.room_infos {
            room_infos.entry(room).or_insert(info);
        }
    }
}

/// Whether `changes` may change what the state store wrapper keeps of its reads: everything
/// but the room infos, the read receipts and the sync token may. (The pattern names every field, so that a field added by a
/// newer matrix-sdk stops the build instead of being missed.)
pub fn changes_reads(changes: &StateChanges) -> bool {
    let StateChanges {
        sync_token: _,
        room_infos: _,
        receipts: _,
        account_data,
        presence,
        profiles,
        profiles_to_delete,
        state,
        room_account_data,
        redactions,
        stripped_state,
        ambiguity_maps,
    } = changes;
    !(account_data.is_empty()
        && presence.is_empty()
        && profiles.is_empty()
        && profiles_to_delete.is_empty()
        && state.is_empty()
        && room_account_data.is_empty()
        && redactions.is_empty()
        && stripped_state.is_empty()
        && ambiguity_maps.is_empty())
}

#[cfg(test)]
mod tests {
    use matrix_sdk::ruma::room_id;

    use super::*;

    fn held(token: Option<&str>, rooms: &[(&str, &str)]) -> Held {
        let mut h = Held::default();
        let mut c = StateChanges {
            sync_token: token.map(str::to_owned),
            ..Default::default()
        };
        for (room, batch) in rooms {
            let mut info = RoomInfo::new(
                <&matrix_sdk::ruma::RoomId>::try_from(*room).unwrap(),
                RoomState::Joined,
            );
            info.set_prev_batch(Some(batch));
            c.add_room(info);
        }
        h.take_in(&c);
        h
    }

    fn batches(infos: &BTreeMap<OwnedRoomId, RoomInfo>) -> Vec<String> {
        infos
            .values()
            .map(|i| {
                let batch = serde_json::to_value(i).unwrap()["last_prev_batch"].clone();
                format!("{} {batch}", i.room_id())
            })
            .collect()
    }

    #[test]
    fn what_is_newer_wins_and_what_is_older_fills_the_gaps() {
        // Held under changes that carry their own token and one of the two rooms.
        let mut changes = StateChanges::new("t2".into());
        let mut info = RoomInfo::new(room_id!("!a:x"), RoomState::Joined);
        info.set_prev_batch(Some("new"));
        changes.add_room(info);
        held(Some("t1"), &[("!a:x", "old"), ("!b:x", "old")]).add_to(&mut changes);
        assert_eq!(changes.sync_token.as_deref(), Some("t2"));
        assert_eq!(
            batches(&changes.room_infos),
            ["!a:x \"new\"", "!b:x \"old\""]
        );
        let mut none = StateChanges::default();
        held(Some("t1"), &[]).add_to(&mut none);
        assert_eq!(none.sync_token.as_deref(), Some("t1"));

        // A failed write's held state comes back under what was held meanwhile.
        let mut now = held(None, &[("!a:x", "new")]);
        now.restore(held(Some("t1"), &[("!a:x", "old"), ("!b:x", "old")]));
        assert_eq!(now.token.as_deref(), Some("t1"));
        assert_eq!(batches(&now.room_infos), ["!a:x \"new\"", "!b:x \"old\""]);
        let mut newer = held(Some("t3"), &[]);
        newer.restore(held(Some("t1"), &[]));
        assert_eq!(newer.token.as_deref(), Some("t3"));
        assert!(!newer.is_empty() && Held::default().is_empty());
    }
}
