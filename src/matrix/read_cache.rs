//! What the wrappers of the SDK's stores ([`super::crypto_store`], [`super::state_store`]) keep
//! of their reads: [`ReadCache`], valid until the next write that can change it, and
//! [`read_through`].
//!
//! A read that overlaps a write must not leave what it read behind: every such write empties the
//! cache before and after it (each time a new generation), and a read's result is kept only if
//! the generation did not move while it ran.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

/// Values read from a store, by key, at most `cap` of them (beyond that it starts again empty).
#[derive(Debug)]
pub struct ReadCache<K, V> {
    generation: u64,
    entries: HashMap<K, V>,
    cap: usize,
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    pub fn new(cap: usize) -> Self {
        Self {
            generation: 0,
            entries: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The generation now (for a read about to start).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets everything (a write is starting or has ended).
    pub fn invalidate(&mut self) {
        self.generation += 1;
        self.entries.clear();
    }

    /// Keeps `value` if nothing was written since `generation`.
    pub fn keep(&mut self, generation: u64, key: K, value: &V) {
        if generation == self.generation {
            if self.entries.len() >= self.cap {
                self.entries.clear();
            }
            self.entries.insert(key, value.clone());
        }
    }
}

/// The value of `key` from `cache`, or else from `read` (kept unless a write overlapped it).
pub async fn read_through<K, Q, V, E>(
    cache: &Mutex<ReadCache<K, V>>,
    key: &Q,
    read: impl Future<Output = Result<V, E>>,
) -> Result<V, E>
where
    K: Borrow<Q> + Eq + Hash,
    Q: ToOwned<Owned = K> + Eq + Hash + ?Sized,
    V: Clone,
{
    let generation = {
        let c = cache.lock().unwrap();
        if let Some(v) = c.get(key) {
            return Ok(v.clone());
        }
        c.generation()
    };
    let value = read.await?;
    cache
        .lock()
        .unwrap()
        .keep(generation, key.to_owned(), &value);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_overlapped_a_write_is_not_kept() {
        let mut cache = ReadCache::<String, u32>::new(8);
        let before = cache.generation();
        cache.invalidate(); // a write started (and ended) while the read ran
        cache.keep(before, "a".into(), &1);
        assert!(cache.is_empty());

        let now = cache.generation();
        cache.keep(now, "a".into(), &1);
        assert_eq!(cache.get("a"), Some(&1));
        cache.invalidate();
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = ReadCache::<u32, u32>::new(4);
        for i in 0..=4 {
            cache.keep(cache.generation(), i, &i);
            assert!(cache.len() <= 4);
        }
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&4), Some(&4));
    }

    #[tokio::test]
    async fn reads_go_to_the_store_once_until_a_write() {
        let cache = Mutex::new(ReadCache::<String, u32>::new(8));
        let read = |v: u32| async move { Ok::<u32, ()>(v) };
        assert_eq!(read_through(&cache, "a", read(1)).await, Ok(1));
        assert_eq!(read_through(&cache, "a", read(2)).await, Ok(1));
        cache.lock().unwrap().invalidate();
        assert_eq!(read_through(&cache, "a", read(3)).await, Ok(3));
        // A failed read leaves nothing behind.
        cache.lock().unwrap().invalidate();
        assert_eq!(read_through(&cache, "a", async { Err(()) }).await, Err(()));
        assert!(cache.lock().unwrap().is_empty());
    }
}
