//! The keys whose last response was not stored, remembered for a while.
//!
//! A request whose key has nothing stored goes to the origin; when the response is not
//! stored either (`no-store`, a status that is not stored, too large, turned down by
//! `filter_fn`...), the next request for that key will most likely find the store as
//! empty, and its read (a lookup in memory, an LMDB read transaction, a failed `open`
//! in the fs store) only adds to the time to the origin. Planning skips that read for
//! a key remembered here, within [`Settings::remember_not_stored`] of when it was
//! remembered, and does not hold identical requests back behind it (they would only
//! wait for a response that will not be stored). HTTP caches call this "hit-for-pass".
//! A request planned so does not remember its key again when its response is not
//! stored either: the next one after the lifetime reads the store, so a key costs one
//! read per lifetime.
//!
//! What is remembered is only that this cache found nothing under the key and stored
//! nothing: this cache forgets the key when it stores under it, and a request still
//! goes to the origin, so a response that has become storable is stored at once. An
//! entry that someone else put under the key since (another process on a shared
//! store, another cache over the same store) goes unread until the memory expires:
//! those requests are misses, never wrong answers. A request that is not to reach the
//! origin (`only-if-cached`) always reads the store.
//!
//! [`SLOTS`] keys at most, one per slot, chosen by the key's hash: a key that lands on
//! an occupied slot takes it over, and the one it replaces is read again next time.
//! No lock: a slot is two atomic words, written apart. A reader that sees one writer's
//! key with another's time gets a memory off by at most one lifetime for one key,
//! which costs a miss or a read, as any forgotten key does.
//!
//! [`Settings::remember_not_stored`]: crate::Settings::remember_not_stored

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use crate::key::CacheKey;

/// How many keys are remembered at most.
pub(crate) const SLOTS: usize = 256;

/// One remembered key.
#[derive(Default)]
struct Slot {
    /// The key's [`CacheKey::fingerprint`] (never 0), or 0 for none.
    fingerprint: AtomicU64,
    /// When it was remembered, in milliseconds since the Unix epoch.
    since: AtomicU64,
}

/// The keys whose last response was not stored (see the module's documentation).
pub(crate) struct NotStored {
    /// Whether any key was ever remembered: until one is, a lookup reads nothing else,
    /// so a cache whose responses are all stored pays one load per request.
    used: AtomicBool,
    slots: Box<[Slot; SLOTS]>,
}

impl Default for NotStored {
    fn default() -> Self {
        NotStored { used: AtomicBool::new(false), slots: Box::new(std::array::from_fn(|_| Slot::default())) }
    }
}

impl std::fmt::Debug for NotStored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remembered = self.slots.iter().filter(|slot| slot.fingerprint.load(Relaxed) != 0).count();
        f.debug_struct("NotStored").field("remembered", &remembered).finish()
    }
}

impl NotStored {
    /// The slot `fingerprint` lives in.
    fn slot(&self, fingerprint: u64) -> &Slot {
        // The top bits: the fingerprint's mixing carries every input bit up to them.
        &self.slots[(fingerprint >> (64 - SLOTS.trailing_zeros())) as usize]
    }

    /// When `key` was remembered, if it is (however long ago: the lifetime is the
    /// caller's to apply, with its clock).
    pub(crate) fn remembered(&self, key: &CacheKey) -> Option<SystemTime> {
        if !self.used.load(Relaxed) {
            return None;
        }
        let fingerprint = key.fingerprint();
        let slot = self.slot(fingerprint);
        (slot.fingerprint.load(Relaxed) == fingerprint)
            .then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(slot.since.load(Relaxed)))
    }

    /// Remembers that `key`'s response at `now` was not stored, with nothing stored
    /// under it before.
    pub(crate) fn remember(&self, key: &CacheKey, now: SystemTime) {
        let fingerprint = key.fingerprint();
        let slot = self.slot(fingerprint);
        slot.since.store(millis(now), Relaxed);
        slot.fingerprint.store(fingerprint, Relaxed);
        if !self.used.load(Relaxed) {
            self.used.store(true, Relaxed);
        }
    }

    /// Forgets `key` (something is stored under it now).
    pub(crate) fn forget(&self, key: &CacheKey) {
        if !self.used.load(Relaxed) {
            return;
        }
        let fingerprint = key.fingerprint();
        // Only this key's memory: another key that took the slot meanwhile stays.
        let _ = self.slot(fingerprint).fingerprint.compare_exchange(fingerprint, 0, Relaxed, Relaxed);
    }
}

/// `time` in milliseconds since the Unix epoch (0 before it).
fn millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    #[test]
    fn a_key_is_remembered_with_its_time_until_forgotten() {
        let memory = NotStored::default();
        let key = CacheKey::hash("https://example.com/a");
        let other = CacheKey::hash("https://example.com/b");
        assert_eq!(memory.remembered(&key), None);
        memory.remember(&key, at(0) + Duration::from_millis(250));
        assert_eq!(memory.remembered(&key), Some(at(0) + Duration::from_millis(250)));
        assert_eq!(memory.remembered(&other), None);
        // Remembering again moves the time.
        memory.remember(&key, at(5));
        assert_eq!(memory.remembered(&key), Some(at(5)));
        // Forgetting another key leaves this one.
        memory.forget(&other);
        assert_eq!(memory.remembered(&key), Some(at(5)));
        memory.forget(&key);
        assert_eq!(memory.remembered(&key), None);
    }

    #[test]
    fn a_key_that_takes_over_a_slot_replaces_the_one_there() {
        let memory = NotStored::default();
        let first = CacheKey([0; 32]);
        let slot = |key: &CacheKey| key.fingerprint() >> (64 - SLOTS.trailing_zeros());
        // Hand-made keys (as a `key_fn` may make) until one lands on the same slot.
        let second = (1..=u8::MAX)
            .flat_map(|a| (0..=u8::MAX).map(move |b| CacheKey(std::array::from_fn(|i| [a, b][i % 2]))))
            .find(|key| slot(key) == slot(&first))
            .expect("65,280 keys over 256 slots reach every slot");
        memory.remember(&first, at(0));
        memory.remember(&second, at(1));
        assert_eq!(memory.remembered(&second), Some(at(1)));
        assert_eq!(memory.remembered(&first), None);
        // Forgetting the replaced key does not clear its successor.
        memory.forget(&first);
        assert_eq!(memory.remembered(&second), Some(at(1)));
    }
}
