//! Tests of [`SdkStateStore`], over the SDK's in-memory state store.

use std::sync::Arc;

use matrix_sdk::ruma::events::AnySyncStateEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{room_id, user_id, RoomId, UserId};
use matrix_sdk::store::{
    DynStateStore, IntoStateStore, MemoryStore, StateStoreDataKey, StateStoreDataValue,
};
use matrix_sdk::{RoomMemberships, StateChanges, StateStore};

use super::{carries, SdkStateStore};

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
}
