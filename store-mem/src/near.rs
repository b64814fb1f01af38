//! Each thread's private copies of the items it reads again ("near copies").
//!
//! Every clone of a stored header value or body updates a reference count inside it, and
//! so do the shard's read lock and the item's `Arc`. When two threads hit the same
//! entry, those counters' cache lines travel between the cores on every hit: measured on
//! a 2-core machine, two threads cloning one response's header map get 0.6× the clones
//! per second of one thread alone, and with a map each, 1.95×. A thread that reads an
//! item a second time therefore keeps a copy of its own (header names and values copied
//! into one buffer the thread allocated; a small body copied, a larger one shared) and
//! lends that copy on its later reads: no lock, no shared counter but a large body's.
//!
//! Copies are checked against a generation per write stripe. A write to the store (put,
//! refresh, removal, clear) makes the stripe of each key it changes odd before the
//! change and even again after it; an eviction moves it two on, under the shard's lock.
//! A copy is taken only at an even generation read before reading the store, and lent
//! only while the stripe still has it: once a thread could have seen a write in the
//! store (or heard of it from a thread that saw it), it no longer gets a copy from
//! before that write.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use httpcache_core::header::Copies;
use httpcache_core::{CacheKey, Entry, StoredRequest, StoredResponse};

/// How many items each thread keeps copies of (and remembers having read once).
pub(crate) const SLOTS: usize = 8;

/// Items weighing more than this are always read from the shared store: a copy keeps
/// its body alive after the store has evicted it, so copies are kept small to bound
/// what a thread can hold beyond the store's budget (`SLOTS` × this).
pub(crate) const MAX_WEIGHT: u64 = 64 << 10;

/// Bodies up to this size are copied into a thread's copy; larger ones are shared.
/// Every hit clones the body, and a shared body's reference count is one more cache
/// line the threads pass between them: on the 2-core development machine, the same
/// URL's 1 KiB hits from two threads went from about ×1.73 to about ×1.82 of one
/// thread's rate with the copy. A copy is made once per thread and write, not per hit;
/// this bounds the memory it costs at `SLOTS` × this per thread.
pub(crate) const MAX_COPIED_BODY: usize = 16 << 10;

/// Numbers the stores, so that one thread's copies of two stores never mix.
static NEXT_STORE: AtomicU64 = AtomicU64::new(0);

/// A fresh store number.
pub(crate) fn store_id() -> u64 {
    NEXT_STORE.fetch_add(1, Ordering::Relaxed)
}

/// Which of `stripes` stripes `key` is in. The store's write locks and its generations
/// must stripe keys alike: a generation stays odd for the whole of a write only if the
/// writes to its stripe are serialised by one lock.
pub(crate) fn stripe(key: &CacheKey, stripes: usize) -> usize {
    usize::from(key.0[0]) % stripes.max(1)
}

/// A counter alone on its cache line, so that writes to one stripe leave the readers
/// of the others undisturbed.
#[repr(align(64))]
struct Generation(AtomicU64);

/// The write generations of a store, one per write stripe.
pub(crate) struct Generations(Box<[Generation]>);

impl Generations {
    /// `stripes` generations, all at 0.
    pub(crate) fn new(stripes: usize) -> Self {
        Generations((0..stripes.max(1)).map(|_| Generation(AtomicU64::new(0))).collect())
    }

    fn of(&self, key: &CacheKey) -> &AtomicU64 {
        &self.0[stripe(key, self.0.len())].0
    }

    /// The generation of `key`'s stripe, read before reading the store; `None` while
    /// a write to that stripe is under way (then no copy may be lent or taken).
    pub(crate) fn current(&self, key: &CacheKey) -> Option<u64> {
        Some(self.of(key).load(Ordering::Acquire)).filter(|generation| generation % 2 == 0)
    }

    /// Marks a write to `key` under way until the returned guard drops (call it with
    /// the key's write lock held, and drop it before releasing the lock): the stripe's
    /// generation is odd from before the change until after it. A reader that saw the
    /// change in the store, or heard of it from a thread that did, reads a generation
    /// other than the one its copy was taken at.
    pub(crate) fn changing(&self, key: &CacheKey) -> Changing<'_> {
        let generation = self.of(key);
        generation.fetch_add(1, Ordering::AcqRel);
        Changing(generation)
    }

    /// Marks `key`'s copies out of date after a change made under the shard's lock, not
    /// the key's write lock (an eviction): its stripe moves two on, so that a write to
    /// it under way stays marked.
    pub(crate) fn evicted(&self, key: &CacheKey) {
        self.of(key).fetch_add(2, Ordering::Release);
    }

    /// Marks every copy out of date until the returned guards drop.
    pub(crate) fn changing_all(&self) -> Vec<Changing<'_>> {
        self.0
            .iter()
            .map(|generation| {
                generation.0.fetch_add(1, Ordering::AcqRel);
                Changing(&generation.0)
            })
            .collect()
    }
}

/// A write under way to one stripe (see [`Generations::changing`]).
pub(crate) struct Changing<'a>(&'a AtomicU64);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// One remembered item: a copy, or only the fact that it was read once (a ghost).
struct Slot {
    store: u64,
    key: CacheKey,
    generation: u64,
    /// The copy; `None` for an item read once.
    entries: Option<Box<[Entry]>>,
    /// Lent since the replacement hand last passed (a second chance).
    used: bool,
    /// How many times the copy was lent.
    lends: u32,
}

/// A thread's slots, replaced in clock order.
struct Near {
    slots: Vec<Slot>,
    hand: usize,
}

impl Near {
    /// Where `store`'s item for `key` is remembered.
    fn position(&self, store: u64, key: &CacheKey) -> Option<usize> {
        self.slots.iter().position(|slot| slot.store == store && slot.key == *key)
    }

    /// Remembers `slot` at `at` (where [`Near::position`] found the same item), else in
    /// a free place, else in the first slot the clock finds unused since it last passed
    /// (ghosts are never "used").
    fn remember(&mut self, at: Option<usize>, slot: Slot) -> &Slot {
        let at = match at {
            Some(at) => at,
            None if self.slots.len() < SLOTS => {
                self.slots.push(slot);
                return &self.slots[self.slots.len() - 1];
            }
            None => loop {
                let at = self.hand;
                self.hand = (self.hand + 1) % SLOTS;
                if !std::mem::take(&mut self.slots[at].used) {
                    break at;
                }
            },
        };
        self.slots[at] = slot;
        &self.slots[at]
    }
}

thread_local! {
    static NEAR: RefCell<Near> = const { RefCell::new(Near { slots: Vec::new(), hand: 0 }) };
}

/// Every this many lends of a copy, the store is told of a read of its item (see
/// [`Lent::Touch`]).
pub(crate) const TOUCH_EVERY: u32 = 32;

/// What [`lend`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lent {
    /// Nothing: no current copy (read the store).
    No,
    /// Lent the copy.
    Yes,
    /// Lent the copy, and its item should count as read in the store's eviction
    /// policy: reads lent from copies never reach the store, which would otherwise take
    /// the item for one read once a thread has its copy.
    Touch,
}

/// Lends this thread's copy of `key`'s item in `store` to `read` if the copy is of
/// `generation`.
pub(crate) fn lend(store: u64, key: &CacheKey, generation: u64, read: &mut dyn FnMut(&[Entry])) -> Lent {
    NEAR.try_with(|near| {
        // Taken already: `read` is reading the store again from inside a read.
        let Ok(mut near) = near.try_borrow_mut() else { return Lent::No };
        let Some(at) = near.position(store, key) else { return Lent::No };
        let slot = &mut near.slots[at];
        let Some(entries) = slot.entries.as_ref().filter(|_| slot.generation == generation) else {
            return Lent::No;
        };
        slot.used = true;
        slot.lends = slot.lends.wrapping_add(1);
        let touch = slot.lends % TOUCH_EVERY == 0;
        // `read` runs with the slots borrowed; a read it makes goes to the shared store.
        read(entries);
        if touch { Lent::Touch } else { Lent::Yes }
    })
    .unwrap_or(Lent::No)
}

/// Lends `entries` (`key`'s item in `store`, read after `generation` was) to `read`:
/// the first time this thread reads them, as they are, and remembers the read; the
/// second time, through a copy of this thread's own, which [`lend`] lends afterwards.
pub(crate) fn read_through(
    store: u64,
    key: &CacheKey,
    generation: u64,
    entries: &[Entry],
    read: &mut dyn FnMut(&[Entry]),
) {
    let copied = NEAR.try_with(|near| {
        let Ok(mut near) = near.try_borrow_mut() else { return false };
        // One search: the slot found here is the one replaced.
        let at = near.position(store, key);
        let seen = at.is_some_and(|at| near.slots[at].generation == generation);
        let copy = seen.then(|| entries.iter().map(private_copy).collect());
        let slot =
            near.remember(at, Slot { store, key: *key, generation, entries: copy, used: false, lends: 0 });
        match &slot.entries {
            Some(copy) => {
                read(copy);
                true
            }
            None => false,
        }
    });
    if copied != Ok(true) {
        read(entries);
    }
}

/// `entry` with header names and values of its own: one new buffer holds every value,
/// so cloning them touches reference counts no other thread's copy shares. So does a
/// body up to [`MAX_COPIED_BODY`]; a larger one stays shared.
fn private_copy(entry: &Entry) -> Entry {
    Entry {
        key: entry.key,
        variant: entry.variant,
        request: StoredRequest {
            method: entry.request.method.clone(),
            url: entry.request.url.clone(),
            headers: private_headers(&entry.request.headers),
        },
        response: StoredResponse {
            status: entry.response.status,
            version: entry.response.version,
            headers: private_headers(&entry.response.headers),
            body: private_body(&entry.response.body),
            final_url: entry.response.final_url.clone(),
        },
        request_time: entry.request_time,
        response_time: entry.response_time,
        created: entry.created,
        expires: entry.expires,
        initial_age: entry.initial_age,
    }
}

/// `body` itself when larger than [`MAX_COPIED_BODY`], else a copy of it.
fn private_body(body: &Bytes) -> Bytes {
    if body.len() > MAX_COPIED_BODY { body.clone() } else { Bytes::copy_from_slice(body) }
}

/// A copy of `headers` whose values are slices of one new buffer
/// ([`httpcache_core::header::Copies`]) and whose names are rebuilt (a standard name is
/// a constant; a custom one gets its own bytes). Every line is kept, in order.
fn private_headers(headers: &HeaderMap) -> HeaderMap {
    let mut copies = Copies::of(|| headers.values());
    let mut copy = HeaderMap::with_capacity(headers.keys_len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        copy.append(name, copies.next(value));
    }
    copy
}

#[cfg(test)]
mod tests {
    use httpcache_core::conformance;

    use super::*;

    #[test]
    fn every_32nd_lend_of_a_copy_asks_for_a_touch() {
        let (store, key) = (store_id(), conformance::key(1));
        let entries = [conformance::entry(key, 0, conformance::body(1, 10))];
        // A ghost, then the copy (the second read lends it through `read_through`).
        for _ in 0..2 {
            read_through(store, &key, 0, &entries, &mut |_| {});
        }
        let lent: Vec<Lent> = (0..TOUCH_EVERY * 2).map(|_| lend(store, &key, 0, &mut |_| {})).collect();
        for (n, lent) in lent.iter().enumerate() {
            let expected = if (n as u32 + 1).is_multiple_of(TOUCH_EVERY) { Lent::Touch } else { Lent::Yes };
            assert_eq!(*lent, expected, "lend {n}");
        }
        // Another generation: no copy to lend.
        assert_eq!(lend(store, &key, 2, &mut |_| panic!("lent an old copy")), Lent::No);
    }
}
