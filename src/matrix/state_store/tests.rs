//! Tests of [`SdkStateStore`], over the SDK's in-memory state store.

use std::sync::Arc;

use matrix_sdk::deserialized_responses::DisplayName;
use matrix_sdk::ruma::events::AnySyncStateEvent;
use matrix_sdk::ruma::events::{GlobalAccountDataEventType, StateEventType};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{room_id, user_id, RoomId, UserId};
use matrix_sdk::store::{
    DynStateStore, IntoStateStore, MemoryStore, RoomLoadSettings, StateStoreDataKey,
    StateStoreDataValue,
};
use matrix_sdk::{RoomInfo, RoomMemberships, RoomState, StateChanges, StateStore};

use super::SdkStateStore;
use crate::matrix::state_changes::changes_reads;

fn joins(room: &RoomId, users: &[&UserId]) -> StateChanges {
    let mut changes = StateChanges::default();
    for user in users {
        let raw: Raw<AnySyncStateEvent> = serde_json::from_value(serde_json::json!({
            "type": "m.room.member",
            "state_key": user,
            "sender": user,
            "event_id": format!("$join-{}", user.localpart()),
            "origin_server_ts": 1,
            "content": {"membership": "join"}
        }))
        .unwrap();
        let event = raw.deserialize().unwrap();
        changes.add_state_event(room, event, raw);
    }
    changes
}

async fn joined(
    store: &dyn StateStore<Error = matrix_sdk::StoreError>,
    room: &RoomId,
) -> Vec<String> {
    let mut v: Vec<String> = store
        .get_user_ids(room, RoomMemberships::JOIN)
        .await
        .unwrap()
        .iter()
        .map(|u| u.localpart().to_owned())
        .collect();
    v.sort();
    v
}

fn stores() -> (Arc<DynStateStore>, SdkStateStore) {
    let inner = MemoryStore::new().into_state_store();
    (inner.clone(), SdkStateStore::new(inner))
}

#[tokio::test]
async fn member_lists_are_read_once_and_read_again_after_a_write() {
    let room = room_id!("!r:example.org");
    let (alice, bob, carol) = (
        user_id!("@alice:example.org"),
        user_id!("@bob:example.org"),
        user_id!("@carol:example.org"),
    );
    let (inner, store) = stores();
    store.save_changes(&joins(room, &[alice])).await.unwrap();
    assert_eq!(joined(&store, room).await, ["alice"]);

    // Written behind the wrapper's back: it answers from what it read.
    inner.save_changes(&joins(room, &[bob])).await.unwrap();
    assert_eq!(joined(&store, room).await, ["alice"]);
    // Another filter is another list.
    assert_eq!(
        store
            .get_user_ids(room, RoomMemberships::ACTIVE)
            .await
            .unwrap()
            .len(),
        2
    );

    // A write through it empties the cache; so does removing the room.
    store.save_changes(&joins(room, &[carol])).await.unwrap();
    assert_eq!(joined(&store, room).await, ["alice", "bob", "carol"]);
    store.remove_room(room).await.unwrap();
    assert!(joined(&store, room).await.is_empty());
}

async fn token(store: &dyn StateStore<Error = matrix_sdk::StoreError>) -> Option<String> {
    match store
        .get_kv_data(StateStoreDataKey::SyncToken)
        .await
        .unwrap()
    {
        Some(StateStoreDataValue::SyncToken(t)) => Some(t),
        None => None,
        Some(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_sync_token_alone_waits_for_the_next_save_or_the_stop() {
    let room = room_id!("!r:example.org");
    let (inner, store) = stores();
    store
        .save_changes(&StateChanges::new("t1".into()))
        .await
        .unwrap();
    assert_eq!(token(&*inner).await, None);
    assert_eq!(token(&store).await.as_deref(), Some("t1"));

    // A save that carries something (here without a token of its own) takes it along.
    store
        .save_changes(&joins(room, &[user_id!("@alice:example.org")]))
        .await
        .unwrap();
    assert_eq!(token(&*inner).await.as_deref(), Some("t1"));
    assert_eq!(joined(&*inner, room).await, ["alice"]);

    // One with its own token keeps that one.
    store
        .save_changes(&StateChanges::new("t2".into()))
        .await
        .unwrap();
    let mut c = joins(room, &[user_id!("@bob:example.org")]);
    c.sync_token = Some("t3".into());
    store.save_changes(&c).await.unwrap();
    assert_eq!(token(&*inner).await.as_deref(), Some("t3"));

    // Held, then written at the stop.
    store
        .save_changes(&StateChanges::new("t4".into()))
        .await
        .unwrap();
    store
        .save_changes(&StateChanges::new("t5".into()))
        .await
        .unwrap();
    assert_eq!(token(&*inner).await.as_deref(), Some("t3"));
    store.save_at_stop().await.unwrap();
    assert_eq!(token(&*inner).await.as_deref(), Some("t5"));
    store.save_at_stop().await.unwrap();
    assert_eq!(token(&*inner).await.as_deref(), Some("t5"));
}

#[test]
fn what_changes_can_change_the_caches() {
    let room = room_id!("!r:example.org");
    assert!(!changes_reads(&StateChanges::new("t".into())));
    assert!(!changes_reads(&StateChanges::default()));
    assert!(changes_reads(&joins(room, &[user_id!("@a:example.org")])));
    // Room infos are something to save, though no cache depends on them.
    let mut info = StateChanges::default();
    info.add_room(RoomInfo::new(room, RoomState::Joined));
    assert!(!changes_reads(&info));
}

/// Each room's state and last prev-batch, as `store` has them.
async fn rooms(store: &dyn StateStore<Error = matrix_sdk::StoreError>) -> Vec<String> {
    let mut v: Vec<String> = store
        .get_room_infos(&RoomLoadSettings::All)
        .await
        .unwrap()
        .iter()
        .map(|i| {
            let batch = serde_json::to_value(i).unwrap()["last_prev_batch"].clone();
            format!("{} {:?} {}", i.room_id(), i.state(), batch)
        })
        .collect();
    v.sort();
    v
}

fn info_save(info: &RoomInfo, token: &str) -> StateChanges {
    let mut c = StateChanges::new(token.into());
    c.add_room(info.clone());
    c
}

#[tokio::test]
async fn room_infos_wait_while_their_standing_is_the_one_on_disk() {
    let room = room_id!("!r:example.org");
    let (inner, store) = stores();
    let mut info = RoomInfo::new(room, RoomState::Joined);

    // A room info the wrapper has not seen on disk is written.
    store.save_changes(&info_save(&info, "t1")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined null"]);

    // New figures with the same standing wait, and the wrapper answers with them.
    info.set_prev_batch(Some("p2"));
    store.save_changes(&info_save(&info, "t2")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined null"]);
    assert_eq!(token(&*inner).await.as_deref(), Some("t1"));
    assert_eq!(rooms(&store).await, ["!r:example.org Joined \"p2\""]);
    assert_eq!(token(&store).await.as_deref(), Some("t2"));

    // A change of standing is written at once: membership, member list, encryption.
    info.set_prev_batch(Some("p3"));
    info.mark_as_left();
    store.save_changes(&info_save(&info, "t3")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Left \"p3\""]);
    assert_eq!(token(&*inner).await.as_deref(), Some("t3"));
    info.mark_as_joined();
    store.save_changes(&info_save(&info, "t4")).await.unwrap();
    info.mark_members_synced();
    info.set_prev_batch(Some("p5"));
    store.save_changes(&info_save(&info, "t5")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined \"p5\""]);
    info.mark_encryption_state_synced();
    info.set_prev_batch(Some("p6"));
    store.save_changes(&info_save(&info, "t6")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined \"p6\""]);

    // What waits goes with the next save that is written (which keeps its own newer token)...
    info.set_prev_batch(Some("p7"));
    store.save_changes(&info_save(&info, "t7")).await.unwrap();
    let mut c = joins(room, &[user_id!("@alice:example.org")]);
    c.sync_token = Some("t8".into());
    store.save_changes(&c).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined \"p7\""]);
    assert_eq!(token(&*inner).await.as_deref(), Some("t8"));

    // ... or at the clean stop.
    info.set_prev_batch(Some("p9"));
    store.save_changes(&info_save(&info, "t9")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined \"p7\""]);
    store.save_at_stop().await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined \"p9\""]);
    assert_eq!(token(&*inner).await.as_deref(), Some("t9"));

    // A wrapper that starts over learns the standing on disk from reading the room infos.
    let store = SdkStateStore::new(inner.clone());
    info.set_prev_batch(Some("p10"));
    store.save_changes(&info_save(&info, "t10")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined \"p10\""]);
    info.set_prev_batch(Some("p11"));
    store.save_changes(&info_save(&info, "t11")).await.unwrap();
    assert_eq!(rooms(&*inner).await, ["!r:example.org Joined \"p10\""]);

    // A room removed takes what waits for it along.
    store.remove_room(room).await.unwrap();
    store.save_at_stop().await.unwrap();
    assert!(rooms(&*inner).await.is_empty());
    assert!(rooms(&store).await.is_empty());
}

fn power_levels(room: &RoomId, admin: &UserId) -> StateChanges {
    let raw: Raw<AnySyncStateEvent> = serde_json::from_value(serde_json::json!({
        "type": "m.room.power_levels",
        "state_key": "",
        "sender": admin,
        "event_id": format!("$pl-{}", admin.localpart()),
        "origin_server_ts": 1,
        "content": {"users": {admin.as_str(): 100}}
    }))
    .unwrap();
    let mut changes = StateChanges::default();
    changes.add_state_event(room, raw.deserialize().unwrap(), raw);
    changes
}

fn ignoring(user: &UserId) -> StateChanges {
    let mut changes = StateChanges::default();
    changes.account_data.insert(
        GlobalAccountDataEventType::IgnoredUserList,
        serde_json::from_value(serde_json::json!({
            "type": "m.ignored_user_list",
            "content": {"ignored_users": {user.as_str(): {}}}
        }))
        .unwrap(),
    );
    changes
}

/// The admin in the power levels and the ignored user, as `store` answers.
async fn seen(store: &dyn StateStore<Error = matrix_sdk::StoreError>, room: &RoomId) -> String {
    let pl = store
        .get_state_event(room, StateEventType::RoomPowerLevels, "")
        .await
        .unwrap()
        .map(|e| serde_json::to_value(&e).unwrap()["event_id"].to_string());
    let ignored = store
        .get_account_data_event(GlobalAccountDataEventType::IgnoredUserList)
        .await
        .unwrap()
        .map(|e| e.json().get().contains("@bob"));
    format!("{pl:?} {ignored:?}")
}

#[tokio::test]
async fn state_events_and_account_data_are_kept_until_a_save_that_can_change_them() {
    let room = room_id!("!r:example.org");
    let (alice, bob) = (user_id!("@alice:example.org"), user_id!("@bob:example.org"));
    let (inner, store) = stores();
    inner
        .save_changes(&power_levels(room, alice))
        .await
        .unwrap();
    inner.save_changes(&ignoring(alice)).await.unwrap();
    let first = seen(&store, room).await;
    assert_eq!(first, r#"Some("\"$pl-alice\"") Some(false)"#);

    // Written behind the wrapper's back: it answers from what it read.
    inner.save_changes(&power_levels(room, bob)).await.unwrap();
    inner.save_changes(&ignoring(bob)).await.unwrap();
    assert_eq!(seen(&store, room).await, first);

    // The save after a received message (room info, receipts, token) cannot change them.
    let mut info_only = StateChanges::new("t1".into());
    info_only.add_room(RoomInfo::new(room, RoomState::Joined));
    assert!(!changes_reads(&info_only));
    store.save_changes(&info_only).await.unwrap();
    assert_eq!(seen(&store, room).await, first);

    // A save with a state event can: everything is read again.
    let joined = joins(room, &[bob]);
    assert!(changes_reads(&joined));
    store.save_changes(&joined).await.unwrap();
    assert_eq!(
        seen(&store, room).await,
        r#"Some("\"$pl-bob\"") Some(true)"#
    );
    // So can account data alone.
    store.save_changes(&ignoring(alice)).await.unwrap();
    assert_eq!(
        seen(&store, room).await,
        r#"Some("\"$pl-bob\"") Some(false)"#
    );
}

async fn lookup(store: &SdkStateStore, room: &RoomId, asked: &[DisplayName]) -> String {
    let mut v: Vec<String> = store
        .get_users_with_display_names(room, asked)
        .await
        .unwrap()
        .into_iter()
        .map(|(n, users)| format!("{}={}", n.as_raw_str(), users.len()))
        .collect();
    v.sort();
    v.join(" ")
}

#[tokio::test]
async fn display_name_lookups_answer_as_the_store_does_and_are_kept() {
    let room = room_id!("!r:example.org");
    let (alice, bob) = (user_id!("@alice:example.org"), user_id!("@bob:example.org"));
    let names = |users: &[(&str, &UserId)]| {
        let mut c = StateChanges::default();
        let map = c.ambiguity_maps.entry(room.to_owned()).or_default();
        for (name, user) in users {
            map.entry(DisplayName::new(name))
                .or_default()
                .insert((*user).to_owned());
        }
        c
    };
    let asked = [DisplayName::new("Alice"), DisplayName::new("Bob")];
    let (inner, store) = stores();
    inner
        .save_changes(&names(&[("Alice", alice)]))
        .await
        .unwrap();
    let direct = {
        let m = inner
            .get_users_with_display_names(room, &asked)
            .await
            .unwrap();
        m.len()
    };
    assert_eq!(direct, 1, "the store answers only for names someone holds");
    assert_eq!(lookup(&store, room, &asked).await, "Alice=1");

    // Bob's name behind the wrapper's back: not seen (his absence was kept, too).
    inner.save_changes(&names(&[("Bob", bob)])).await.unwrap();
    assert_eq!(lookup(&store, room, &asked).await, "Alice=1");

    // A save of names through the wrapper: read again.
    store
        .save_changes(&names(&[("Alice", bob), ("Alice", alice)]))
        .await
        .unwrap();
    assert_eq!(lookup(&store, room, &asked).await, "Alice=2 Bob=1");
}
