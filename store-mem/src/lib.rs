//! # httpcache-mem
//!
//! An in-process [`Store`] for httpcache, bounded by total bytes (and optionally by
//! number of entries), safe to share between threads.
//!
//! ```
//! use httpcache_core::{Inline, Store};
//! use httpcache_mem::MemoryStore;
//!
//! // At most 64 MiB of entries, and at most 10 000 of them.
//! let store = MemoryStore::new(64 << 20).with_max_entries(10_000);
//! assert!(store.scan().unwrap().is_empty());
//!
//! // The same store for async drivers: its calls never block for long, so it runs
//! // inline on the executor through `httpcache_core::Inline`.
//! let async_store = Inline(store);
//! # let _ = async_store;
//! ```
//!
//! ## How it works
//!
//! Entries live decoded, in a concurrent sharded cache ([`quick_cache`]), one item per
//! [`CacheKey`] holding all that key's variants. [`Store::get`] is one lookup under the
//! shard's read lock and returns clones: an [`Entry`] clone shares its body (a
//! `bytes::Bytes`) and header values, so no body is ever copied. [`Store::read_with`]
//! lends entries instead, so a hit through the drivers copies only the response part it
//! serves (no request part, no list of variants). Writes to one key are serialised by a
//! small striped lock (readers never take it), so concurrent puts of two variants of a
//! key both land.
//!
//! ## Reads from many threads
//!
//! Cloning a shared `Bytes` (a body, or a header value) updates a reference count
//! inside it, as taking the shard's read lock updates the lock. When threads hit the
//! same entry, those counters pass from core to core on every hit; on the 2-core
//! development machine, two threads hitting one entry made about 1.5× the hits per
//! second of one thread. So [`Store::read_with`] keeps, per thread, copies of the
//! items that thread reads again (up to 8 items of at most 64 KiB each): the second
//! read of an item takes a copy whose header names and values live in one buffer of
//! the thread's own, with the body copied too when it is at most 16 KiB (a larger one
//! stays shared), and later reads lend that copy, taking no lock and touching no
//! counter another thread's copy uses. The same hits then make about 1.8×.
//!
//! A copy is made once per thread and write, never per hit, and holds at most
//! 8 × 64 KiB per thread beyond `max_bytes` (a copy keeps its body alive after an
//! eviction until the thread reads another item in its place). A copy is never lent
//! once a write to its key (put, refresh, removal, clear, eviction) could have been
//! seen: every write marks its keys' stripe of the store (one of 64) before and after
//! it, and a copy is lent only while its stripe is unmarked and unchanged since the
//! copy was taken. Reads lent from copies are counted by the eviction policy one time
//! in 32, so an item read mostly from copies stays among the valuable ones.
//!
//! [`Store::refresh`] (a 304 freshening a stored entry) is the default, a put: it
//! stores the refreshed entry, whose body is the `Bytes` the hit returned, so it costs
//! the same small insert whatever the body's size, and it can never pair the new header
//! fields with another body. The drivers hand their entries over
//! ([`Store::put_owned`], [`Store::refresh_owned`]), and the store keeps the very entry
//! they built: a write copies no entry (`put(&entry)` copies it, sharing its body).
//! The core builds those entries with header values of their own (one buffer per
//! entry, not slices of the client's read buffer) and the adapters hand over bodies
//! without spare room, so an entry holds about what it weighs. An entry put directly
//! is kept as given: its values and body should own their bytes too.
//!
//! ## Bounds and eviction
//!
//! Each item weighs about the memory its variants take: their binary encoding's size
//! (fields, body, URL) plus what a decoded entry adds (the entry itself, its header
//! tables, the allocator's headers; about 0.9 KiB). A small entry, 100 bytes of body
//! and a few fields through reqwest, weighs 1,313 bytes and grew the resident set by
//! 1,336 (measured over 3,000 of them); weighed by its encoding alone it was 381 bytes,
//! so the store held 3.5 times `max_bytes` when full of such entries. When the total
//! would pass `max_bytes`, the cache evicts the least valuable items first: quick_cache's
//! CLOCK-Pro-like policy keeps entries that are read again over entries written once.
//! The cache is split into shards (at most 4 per core), each holding an equal part of
//! the budget; shards are never smaller than 16 MiB (fewer shards for a smaller cache),
//! and an entry that does not fit in one shard is refused with [`StoreError::Full`].
//!
//! With [`MemoryStore::with_max_entries`], every variant weighs at least
//! `max_bytes / max_entries`, so at most about `max_entries` variants are kept.
//!
//! Nothing is persisted: the store is empty when the process starts.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use httpcache_core::{CacheKey, Entry, EntryMeta, Store, StoreError, VariantId, Variants};
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

mod near;

use near::Generations;

/// Fraction of each shard quick_cache reserves for its "hot" items; an item larger than
/// this part of a shard is never admitted.
const HOT_ALLOCATION: f64 = 0.97;

/// Shards are at least this large, so a cache of at least this size accepts an entry
/// of up to about this size.
const MIN_SHARD_BYTES: u64 = 16 << 20;

/// Fixed per-entry overhead of the binary encoding (lengths, times, checksums...).
const ENTRY_OVERHEAD: u64 = 144;

/// What one line of a header map takes in its tables besides the name and value
/// themselves: its hash and links (an estimate; `http` keeps the layout private).
const HEADER_LINE_EXTRA: usize = 32;

/// What a header map's index takes per line it has room for (4-byte positions, a
/// quarter of them spare).
const HEADER_INDEX: usize = 6;

/// The allocations a kept entry makes (its header tables and value buffers, body,
/// URL, the item's slice and `Arc`) times the allocator's header on each (glibc: 16
/// bytes, and sizes rounded up to 16).
const ALLOCATIONS_EXTRA: usize = 10 * 16;

/// Number of write-lock stripes.
const WRITE_STRIPES: usize = 64;

/// The variants stored under one key, with their weight computed once.
#[derive(Clone)]
struct Item(Arc<ItemInner>);

struct ItemInner {
    entries: Box<[Entry]>,
    weight: u64,
}

#[derive(Clone)]
struct ItemWeighter;

impl Weighter<CacheKey, Item> for ItemWeighter {
    fn weight(&self, _key: &CacheKey, value: &Item) -> u64 {
        value.0.weight
    }
}

/// Tells the near copies of an evicted item that it is gone (a bump of its key's
/// stripe), and drops up to two evicted items after the shard's lock is released.
#[derive(Clone)]
struct Evictions(Arc<Generations>);

impl Lifecycle<CacheKey, Item> for Evictions {
    type RequestState = [Option<Item>; 2];

    fn on_evict(&self, state: &mut Self::RequestState, key: CacheKey, value: Item) {
        self.0.evicted(&key);
        if let Some(free) = state.iter_mut().find(|held| held.is_none()) {
            *free = Some(value);
        }
    }
}

type Inner = Cache<CacheKey, Item, ItemWeighter, DefaultHashBuilder, Evictions>;

/// An in-process store bounded by total bytes. See the [crate docs](crate).
pub struct MemoryStore {
    cache: Inner,
    write_locks: Box<[Mutex<()>]>,
    /// One per write lock (keys striped alike): odd while a key of that stripe changes.
    generations: Arc<Generations>,
    /// This store's number among the threads' near copies.
    id: u64,
    max_bytes: u64,
    max_entries: Option<u64>,
    /// Every variant weighs at least this (from `max_entries`).
    min_entry_weight: u64,
    /// The largest item a shard admits.
    admit_limit: u64,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_bytes", &self.max_bytes)
            .field("max_entries", &self.max_entries)
            .field("used_bytes", &self.used_bytes())
            .field("keys", &self.cache.len())
            .finish()
    }
}

/// The bytes one header map takes in the encoding: each line's name and value and
/// their two length prefixes.
fn header_bytes(headers: &http::HeaderMap) -> u64 {
    headers.iter().map(|(name, value)| (name.as_str().len() + value.len() + 8) as u64).sum()
}

/// What `entry` weighs: about what it takes in memory, decoded. That is its binary
/// encoding's size (fields, body, URL) and what a decoded entry adds: the `Entry`
/// itself, its header maps' tables (a name, a value and links per line, an index slot
/// per line of room), and the allocator's headers. For a 100-byte body with a few
/// fields the additions are about twice the encoding; beside a large body they vanish.
fn weight_of(entry: &Entry) -> u64 {
    let line = std::mem::size_of::<http::HeaderName>()
        + std::mem::size_of::<http::HeaderValue>()
        + HEADER_LINE_EXTRA;
    let table = |headers: &http::HeaderMap| headers.len() * line + headers.capacity() * HEADER_INDEX;
    let tables = table(&entry.request.headers) + table(&entry.response.headers);
    approximate_size(entry) + (std::mem::size_of::<Entry>() + tables + ALLOCATIONS_EXTRA) as u64
}

/// The approximate size of `entry`'s binary encoding.
fn approximate_size(entry: &Entry) -> u64 {
    let strings = entry.request.method.as_str().len()
        + entry.request.url.len()
        + entry.response.final_url.as_ref().map_or(0, String::len);
    ENTRY_OVERHEAD
        + header_bytes(&entry.request.headers)
        + header_bytes(&entry.response.headers)
        + strings as u64
        + entry.response.body.len() as u64
}

impl MemoryStore {
    /// A store holding at most about `max_bytes` of entries (as they take in memory; see
    /// the [crate docs](crate)).
    pub fn new(max_bytes: u64) -> Self {
        Self::build(max_bytes, None)
    }

    /// The same store, also holding at most about `max_entries` entries (variants).
    /// Replaces the store: call it when building, before storing anything.
    pub fn with_max_entries(self, max_entries: u64) -> Self {
        Self::build(self.max_bytes, Some(max_entries.max(1)))
    }

    fn build(max_bytes: u64, max_entries: Option<u64>) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(4, NonZeroUsize::get) as u64;
        let mut shards = (parallelism * 4).min(max_bytes / MIN_SHARD_BYTES).max(1);
        if let Some(max_entries) = max_entries {
            // At least 32 entries per shard, so the per-shard entry budget is meaningful.
            shards = shards.min((max_entries / 32).max(1));
        }
        // A power of two no larger than asked (quick_cache rounds up otherwise).
        let shards = 1u64 << (63 - shards.leading_zeros());
        let shard_capacity = max_bytes / shards;
        let admit_limit =
            ((shard_capacity as f64 * HOT_ALLOCATION) as u64).clamp(shard_capacity.min(1), shard_capacity);
        let min_entry_weight = max_entries.map_or(1, |n| {
            let per_entry = (max_bytes / n).max(1);
            ((per_entry as f64 * HOT_ALLOCATION) as u64).clamp(1, per_entry)
        });
        let estimated_items =
            max_entries.unwrap_or(max_bytes / (16 << 10)).max(32 * shards).min(usize::MAX as u64) as usize;
        let options = OptionsBuilder::new()
            .shards(shards as usize)
            .estimated_items_capacity(estimated_items)
            .weight_capacity(shard_capacity * shards)
            .hot_allocation(HOT_ALLOCATION)
            .build();
        let generations = Arc::new(Generations::new(WRITE_STRIPES));
        let (hasher, lifecycle) = (DefaultHashBuilder::default(), Evictions(generations.clone()));
        let cache = match options {
            Ok(options) => Cache::with_options(options, ItemWeighter, hasher, lifecycle),
            // Cannot happen: both required options are set above. Fall back to the plain
            // constructor rather than panicking.
            Err(_) => Cache::with(estimated_items, max_bytes, ItemWeighter, hasher, lifecycle),
        };
        MemoryStore {
            cache,
            write_locks: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            generations,
            id: near::store_id(),
            max_bytes,
            max_entries,
            min_entry_weight,
            admit_limit,
        }
    }

    /// The byte bound given to [`MemoryStore::new`].
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The entry bound given to [`MemoryStore::with_max_entries`], if any.
    pub fn max_entries(&self) -> Option<u64> {
        self.max_entries
    }

    /// The total weight held now: about the memory every entry takes (more when
    /// [`MemoryStore::with_max_entries`] raises small entries' weight).
    pub fn used_bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// The largest entry (or set of variants of one key) this store accepts.
    pub fn max_entry_bytes(&self) -> u64 {
        self.admit_limit
    }

    fn lock_for(&self, key: &CacheKey) -> MutexGuard<'_, ()> {
        hold(&self.write_locks[near::stripe(key, self.write_locks.len())])
    }

    fn variants(&self, entries: Vec<Entry>) -> Item {
        let size: u64 = entries.iter().map(weight_of).sum();
        let floor = self.min_entry_weight.saturating_mul(entries.len() as u64);
        Item(Arc::new(ItemInner { weight: size.max(floor).max(1), entries: entries.into_boxed_slice() }))
    }

    /// Stores `entry` under its key, replacing the variant with the same id.
    fn keep(&self, entry: Entry) -> Result<(), StoreError> {
        let _write = self.lock_for(&entry.key);
        let _changing = self.generations.changing(&entry.key);
        let current = self.cache.peek(&entry.key);
        let stored = current.as_ref().map_or(&[][..], |current| &current.0.entries[..]);
        let mut entries = others(stored, entry.variant, 1);
        let key = entry.key;
        entries.push(entry);
        let value = self.variants(entries);
        let weight = value.0.weight;
        if weight > self.admit_limit {
            return Err(StoreError::Full(format!(
                "entry {key} weighs {weight} bytes (with its other variants); this memory store accepts at most {}",
                self.admit_limit
            )));
        }
        self.cache.insert(key, value);
        Ok(())
    }
}

/// Takes a write lock. The locks guard no data, so a poisoned lock is as good as a
/// healthy one.
fn hold(lock: &Mutex<()>) -> MutexGuard<'_, ()> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Copies of the `stored` variants other than `variant`, in a list sized exactly for
/// them and `room` more, so that it becomes an item's boxed slice without reallocating.
fn others(stored: &[Entry], variant: VariantId, room: usize) -> Vec<Entry> {
    let other = |e: &&Entry| e.variant != variant;
    let mut entries = Vec::with_capacity(stored.iter().filter(other).count() + room);
    entries.extend(stored.iter().filter(other).cloned());
    entries
}

impl Store for MemoryStore {
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        Ok(self.cache.get(key).map(|variants| variants.0.entries.to_vec()).unwrap_or_default())
    }

    /// Lends the stored entries themselves, or this thread's copy of them (see the
    /// [crate docs](crate)): a hit copies only its response part.
    fn read_with(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) {
        let generation = self.generations.current(key);
        let mut lend = |entries: &[Entry]| read(Ok(Variants::Borrowed(entries)));
        match generation.map(|generation| near::lend(self.id, key, generation, &mut lend)) {
            Some(near::Lent::Yes) => return,
            Some(near::Lent::Touch) => {
                self.cache.get(key);
                return;
            }
            Some(near::Lent::No) | None => {}
        }
        match (self.cache.get(key), generation) {
            (Some(item), Some(generation)) if item.0.weight <= near::MAX_WEIGHT => {
                near::read_through(self.id, key, generation, &item.0.entries, &mut lend);
            }
            (Some(item), _) => lend(&item.0.entries),
            (None, _) => read(Ok(Variants::default())),
        }
    }

    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.keep(entry.clone())
    }

    /// Keeps `entry` itself: no copy.
    fn put_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.keep(entry)
    }

    /// A refresh is a put here (see the [crate docs](crate)).
    fn refresh_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.keep(entry)
    }

    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        let _write = self.lock_for(key);
        let _changing = self.generations.changing(key);
        Ok(self.cache.remove(key).map_or(0, |(_, variants)| variants.0.entries.len()))
    }

    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        let _write = self.lock_for(key);
        let _changing = self.generations.changing(key);
        let Some(current) = self.cache.peek(key) else {
            return Ok(false);
        };
        if !current.0.entries.iter().any(|e| e.variant == variant) {
            return Ok(false);
        }
        let rest = others(&current.0.entries, variant, 0);
        if rest.is_empty() {
            self.cache.remove(key);
        } else {
            // `Err` means the key was evicted meanwhile: the variant is gone either way.
            let _ = self.cache.replace(*key, self.variants(rest), true);
        }
        Ok(true)
    }

    fn clear(&self) -> Result<(), StoreError> {
        // Every write lock (in order; a writer holds one at most), so that no write to
        // any stripe is under way while the generations are odd for the clear.
        let _writes: Vec<MutexGuard<'_, ()>> = self.write_locks.iter().map(hold).collect();
        let _changing = self.generations.changing_all();
        self.cache.clear();
        Ok(())
    }

    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        Ok(self
            .cache
            .iter()
            .flat_map(|(_, variants)| variants.0.entries.iter().map(Entry::meta).collect::<Vec<_>>())
            .collect())
    }
}

#[cfg(test)]
mod tests;
