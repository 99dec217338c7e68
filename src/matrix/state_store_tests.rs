//! Tests of [`SdkStateStore`], over the SDK's in-memory state store.

use std::sync::Arc;

use matrix_sdk::deserialized_responses::DisplayName;
use matrix_sdk::ruma::events::AnySyncStateEvent;
use matrix_sdk::ruma::events::{GlobalAccountDataEventType, StateEventType};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{room_id, user_id, RoomId, UserId};
use matrix_sdk::store::{
    DynStateStore, IntoStateStore, MemoryStore, StateStoreDataKey, StateStoreDataValue,
};
use matrix_sdk::{RoomInfo, RoomMemberships, RoomState, StateChanges, StateStore};

use super::{carries, changes_reads, SdkStateStore};

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
fn what_changes_carry() {
    let room = room_id!("!r:example.org");
    assert_eq!(carries(&StateChanges::new("t".into())), (Some("t"), false));
    assert_eq!(carries(&StateChanges::default()), (None, false));
    let mut c = joins(room, &[user_id!("@a:example.org")]);
    assert_eq!(carries(&c), (None, true));
    c.sync_token = Some("t".into());
    assert_eq!(carries(&c), (Some("t"), true));
    // Room infos are something to save, though no cache depends on them.
    let mut info = StateChanges::default();
    info.add_room(RoomInfo::new(room, RoomState::Joined));
    assert_eq!(carries(&info), (None, true));
    assert!(!changes_reads(&info));
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
