//! Tests of [`SdkCryptoStore`], over the SDK's in-memory crypto store (the cache mechanism
//! itself: `read_cache.rs`).

use std::sync::Arc;

use matrix_sdk::ruma::events::secret::request::SecretName;
use matrix_sdk::ruma::{device_id, user_id, DeviceId, UserId};
use matrix_sdk_crypto::store::types::{Changes, DeviceChanges, PendingChanges};
use matrix_sdk_crypto::store::{CryptoStore, DynCryptoStore, IntoCryptoStore, MemoryStore};
use matrix_sdk_crypto::{Account, DeviceData, GossipRequest, SecretInfo};

use super::{hold_token, SdkCryptoStore};

fn device(user: &UserId, id: &DeviceId) -> DeviceData {
    DeviceData::from_account(&Account::with_device_id(user, id))
}

fn new_devices(devices: Vec<DeviceData>) -> Changes {
    Changes {
        devices: DeviceChanges {
            new: devices,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn store() -> (Arc<DynCryptoStore>, SdkCryptoStore) {
    let inner = MemoryStore::new().into_crypto_store();
    (inner.clone(), SdkCryptoStore::new(inner))
}

fn ids(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn devices_are_read_once_and_read_again_after_a_write() {
    let alice = user_id!("@alice:example.org");
    let (inner, store) = store();
    store
        .save_changes(new_devices(vec![device(alice, device_id!("ONE"))]))
        .await
        .unwrap();
    assert_eq!(store.get_user_devices(alice).await.unwrap().len(), 1);

    // Written behind the wrapper's back: the wrapper answers from what it read.
    inner
        .save_changes(new_devices(vec![device(alice, device_id!("TWO"))]))
        .await
        .unwrap();
    assert_eq!(store.get_user_devices(alice).await.unwrap().len(), 1);
    assert!(store
        .get_device(alice, device_id!("TWO"))
        .await
        .unwrap()
        .is_none());

    // A write through the wrapper (of anything) empties the cache.
    let bob = user_id!("@bob:example.org");
    store
        .save_changes(new_devices(vec![device(bob, device_id!("B1"))]))
        .await
        .unwrap();
    let all = store.get_user_devices(alice).await.unwrap();
    assert_eq!(
        ids(all.keys().map(|d| d.to_string()).collect()),
        vec!["ONE", "TWO"]
    );
    let two = store.get_device(alice, device_id!("TWO")).await.unwrap();
    assert_eq!(two.unwrap().device_id(), device_id!("TWO"));
    assert!(store
        .get_device(alice, device_id!("NONE"))
        .await
        .unwrap()
        .is_none());
    assert!(store.get_user_identity(bob).await.unwrap().is_none());
}

fn save_account(account: &Account) -> PendingChanges {
    PendingChanges {
        account: Some(account.deep_clone()),
    }
}

async fn uploaded_on_disk(inner: &DynCryptoStore) -> u64 {
    inner
        .load_account()
        .await
        .unwrap()
        .unwrap()
        .uploaded_key_count()
}

#[tokio::test]
async fn an_unchanged_account_is_not_written_again() {
    let (inner, store) = store();
    let mut account = Account::with_device_id(user_id!("@bot:example.org"), device_id!("BOT"));
    account.generate_one_time_keys(3);
    assert!(super::account_digest(&account).is_some());
    account.update_uploaded_key_count(50);
    store
        .save_pending_changes(save_account(&account))
        .await
        .unwrap();
    assert_eq!(uploaded_on_disk(&*inner).await, 50);

    // Changed on disk behind the wrapper's back, then saved unchanged through it: not written.
    let mut other = account.deep_clone();
    other.update_uploaded_key_count(7);
    inner
        .save_pending_changes(save_account(&other))
        .await
        .unwrap();
    store
        .save_pending_changes(save_account(&account))
        .await
        .unwrap();
    assert_eq!(uploaded_on_disk(&*inner).await, 7);

    // Any change is written.
    account.update_uploaded_key_count(49);
    store
        .save_pending_changes(save_account(&account))
        .await
        .unwrap();
    assert_eq!(uploaded_on_disk(&*inner).await, 49);
    account.mark_as_shared();
    store
        .save_pending_changes(save_account(&account))
        .await
        .unwrap();
    assert!(inner.load_account().await.unwrap().unwrap().shared());

    // A loaded account counts as on disk: saving it back unchanged writes nothing.
    let (inner2, store2) = self::store();
    inner2
        .save_pending_changes(save_account(&account))
        .await
        .unwrap();
    let loaded = store2.load_account().await.unwrap().unwrap();
    inner2
        .save_pending_changes(save_account(&other))
        .await
        .unwrap();
    store2
        .save_pending_changes(save_account(&loaded))
        .await
        .unwrap();
    assert_eq!(uploaded_on_disk(&*inner2).await, 7);
}

fn token(t: &str) -> Changes {
    Changes {
        next_batch_token: Some(t.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_save_of_only_the_sync_token_waits_for_the_next_save_or_the_stop() {
    let (inner, store) = store();
    store.save_changes(token("t1")).await.unwrap();
    assert_eq!(inner.next_batch_token().await.unwrap(), None);
    assert_eq!(
        store.next_batch_token().await.unwrap().as_deref(),
        Some("t1")
    );

    // The next real save carries it.
    let alice = user_id!("@alice:example.org");
    store
        .save_changes(new_devices(vec![device(alice, device_id!("ONE"))]))
        .await
        .unwrap();
    assert_eq!(
        inner.next_batch_token().await.unwrap().as_deref(),
        Some("t1")
    );

    // Held again, written at the stop.
    store.save_changes(token("t2")).await.unwrap();
    store.save_changes(token("t3")).await.unwrap();
    assert_eq!(
        inner.next_batch_token().await.unwrap().as_deref(),
        Some("t1")
    );
    assert_eq!(store.save_at_stop().await.unwrap(), 0);
    assert_eq!(
        inner.next_batch_token().await.unwrap().as_deref(),
        Some("t3")
    );
}

#[test]
fn a_token_held_is_replaced_by_a_newer_one() {
    let mut held = Some("old".to_owned());
    let mut c = new_devices(vec![]);
    c.next_batch_token = Some("new".to_owned());
    c.devices
        .new
        .push(device(user_id!("@a:b.c"), device_id!("D")));
    let out = hold_token(c, &mut held).unwrap();
    assert_eq!(out.next_batch_token.as_deref(), Some("new"));
    assert_eq!(held, None);
    assert!(hold_token(Changes::default(), &mut held).is_none());
    assert_eq!(held, None);
}

#[tokio::test]
async fn tracked_users_are_read_once_and_read_again_after_a_write() {
    let (alice, bob) = (user_id!("@alice:example.org"), user_id!("@bob:example.org"));
    let (inner, store) = store();
    store.save_tracked_users(&[(alice, false)]).await.unwrap();
    let names = |v: Vec<matrix_sdk_crypto::store::types::TrackedUser>| {
        ids(v
            .into_iter()
            .map(|t| format!("{}:{}", t.user_id.localpart(), t.dirty))
            .collect())
    };
    assert_eq!(
        names(store.load_tracked_users().await.unwrap()),
        ["alice:false"]
    );
    inner.save_tracked_users(&[(bob, false)]).await.unwrap();
    assert_eq!(
        names(store.load_tracked_users().await.unwrap()),
        ["alice:false"]
    );
    store.save_tracked_users(&[(alice, true)]).await.unwrap();
    assert_eq!(
        names(store.load_tracked_users().await.unwrap()),
        ["alice:true", "bob:false"]
    );
}

fn secret_request(id: &str) -> GossipRequest {
    GossipRequest {
        request_recipient: user_id!("@bot:example.org").to_owned(),
        request_id: id.into(),
        info: SecretInfo::SecretRequest(SecretName::RecoveryKey),
        sent_out: false,
    }
}

async fn save_request(store: &DynCryptoStore, r: GossipRequest) {
    let changes = Changes {
        key_requests: vec![r],
        ..Default::default()
    };
    store.save_changes(changes).await.unwrap();
}

async fn unsent(store: &SdkCryptoStore) -> Vec<String> {
    let v = store.get_unsent_secret_requests().await.unwrap();
    ids(v.iter().map(|r| r.request_id.to_string()).collect())
}

#[tokio::test]
async fn unsent_secret_requests_are_read_once_and_read_again_after_a_write() {
    let (inner, store) = store();
    save_request(&store, secret_request("a")).await;
    assert_eq!(unsent(&store).await, ["a"]);
    save_request(&*inner, secret_request("b")).await;
    assert_eq!(unsent(&store).await, ["a"]);
    // A save through the wrapper, and a deletion, are read again.
    let mut sent = secret_request("a");
    sent.sent_out = true;
    save_request(&store, sent).await;
    assert_eq!(unsent(&store).await, ["b"]);
    store
        .delete_outgoing_secret_requests("b".into())
        .await
        .unwrap();
    assert!(unsent(&store).await.is_empty());
}

/// Change sets the SDK's own `Changes::is_empty` calls empty: the wrapper writes them.
#[tokio::test]
async fn a_pending_key_bundle_or_a_downloaded_backup_alone_is_written() {
    use matrix_sdk::ruma::{room_id, MilliSecondsSinceUnixEpoch};
    use matrix_sdk_crypto::store::types::RoomPendingKeyBundleDetails;

    let room = room_id!("!room:example.org");
    let (inner, store) = store();
    // What the SDK saves when the bot accepts an invite.
    let details = RoomPendingKeyBundleDetails {
        room_id: room.to_owned(),
        invite_accepted_at: MilliSecondsSinceUnixEpoch::now(),
        inviter: user_id!("@alice:example.org").to_owned(),
    };
    store
        .save_changes(Changes {
            rooms_pending_key_bundle: [(room.to_owned(), Some(details))].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let saved = inner.get_pending_key_bundle_details_for_room(room).await;
    assert_eq!(
        saved.unwrap().map(|d| d.inviter.to_string()).as_deref(),
        Some("@alice:example.org")
    );

    store
        .save_changes(Changes {
            room_key_backups_fully_downloaded: [room.to_owned()].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(inner.has_downloaded_all_room_keys(room).await.unwrap());
}
