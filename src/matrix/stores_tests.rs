//! Tests of the read cache of [`OutboundInMemory`], over the SDK's in-memory crypto store.

use std::sync::Arc;

use matrix_sdk::ruma::{device_id, user_id, DeviceId, UserId};
use matrix_sdk_crypto::store::types::{Changes, DeviceChanges};
use matrix_sdk_crypto::store::{CryptoStore, DynCryptoStore, IntoCryptoStore, MemoryStore};
use matrix_sdk_crypto::{Account, DeviceData};

use super::{OutboundInMemory, ReadCache};

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

fn store() -> (Arc<DynCryptoStore>, OutboundInMemory) {
    let inner = MemoryStore::new().into_crypto_store();
    (inner.clone(), OutboundInMemory::new(inner))
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

#[test]
fn a_read_that_overlapped_a_write_is_not_kept() {
    let alice = user_id!("@alice:example.org");
    let mut cache = ReadCache::default();
    let before = cache.generation;
    let devices = [(
        device_id!("ONE").to_owned(),
        device(alice, device_id!("ONE")),
    )]
    .into_iter()
    .collect();
    cache.invalidate(); // a write started (and ended) while the read ran
    cache.keep_devices(before, alice, &devices);
    cache.keep_identity(before, alice, &None);
    assert!(cache.devices.is_empty() && cache.identities.is_empty());

    let now = cache.generation;
    cache.keep_devices(now, alice, &devices);
    cache.keep_identity(now, alice, &None);
    assert_eq!(cache.devices[alice].len(), 1);
    assert!(cache.identities.contains_key(alice));
    cache.invalidate();
    assert!(cache.devices.is_empty() && cache.identities.is_empty());
}

#[test]
fn the_cache_is_bounded() {
    let mut cache = ReadCache::default();
    let g = cache.generation;
    for i in 0..=super::READ_CACHE_USERS {
        let user = UserId::parse(format!("@u{i}:example.org")).unwrap();
        cache.keep_devices(g, &user, &Default::default());
        cache.keep_identity(g, &user, &None);
        assert!(cache.devices.len() <= super::READ_CACHE_USERS);
        assert!(cache.identities.len() <= super::READ_CACHE_USERS);
    }
    assert_eq!(cache.devices.len(), 1);
}
