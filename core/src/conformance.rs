//! The store conformance suite, shared by every store crate's tests.
//!
//! Every check is a public function taking a store (or two), so a store crate can call
//! them one by one; the [`store_conformance!`](crate::store_conformance) and
//! [`async_store_conformance!`](crate::async_store_conformance) macros generate one
//! `#[test]` per check. A store's test builds each store through a factory returning a
//! [`Fixture`]: the store plus whatever must outlive it (a temporary directory).
//!
//! ```
//! // In a store crate: `httpcache-core = { ..., features = ["conformance"] }` in
//! // [dev-dependencies], then in its tests:
//! # use std::sync::Mutex;
//! # use httpcache_core::{CacheKey, Entry, EntryMeta, Store, StoreError, VariantId};
//! /// The store under test (here a toy one, unbounded, that never corrupts).
//! #[derive(Default)]
//! pub struct ToyStore(Mutex<Vec<Entry>>);
//!
//! impl Store for ToyStore {
//!     fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
//!         Ok(self.0.lock().unwrap().iter().filter(|e| e.key == *key).cloned().collect())
//!     }
//!     fn put(&self, entry: &Entry) -> Result<(), StoreError> {
//!         let mut entries = self.0.lock().unwrap();
//!         entries.retain(|e| (e.key, e.variant) != (entry.key, entry.variant));
//!         entries.push(entry.clone());
//!         Ok(())
//!     }
//!     fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
//!         let mut entries = self.0.lock().unwrap();
//!         let before = entries.len();
//!         entries.retain(|e| e.key != *key);
//!         Ok(before - entries.len())
//!     }
//!     fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
//!         let mut entries = self.0.lock().unwrap();
//!         let before = entries.len();
//!         entries.retain(|e| (e.key, e.variant) != (*key, variant));
//!         Ok(before != entries.len())
//!     }
//!     fn clear(&self) -> Result<(), StoreError> {
//!         self.0.lock().unwrap().clear();
//!         Ok(())
//!     }
//!     fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
//!         Ok(self.0.lock().unwrap().iter().map(Entry::meta).collect())
//!     }
//! }
//!
//! mod conformance {
//!     use httpcache_core::conformance::Fixture;
//!     use super::ToyStore;
//!
//!     httpcache_core::store_conformance! {
//!         // Required: a fresh, empty store with room for an 8 MiB entry. A store that
//!         // needs a temporary directory returns `Fixture::with_guard(store, dir)`.
//!         store: || Fixture::new(ToyStore::default()),
//!         // Optional: a store bounded to `max_bytes` (runs `eviction_keeps_byte_bound`).
//!         //   bounded: |max_bytes| open_bounded(max_bytes),
//!         // Optional: write `bytes` as the raw record of (key, variant), replacing that
//!         // variant's record and keeping the key's others (runs the corruption checks).
//!         //   corrupt: |store: &MyStore, key, variant, bytes| store.write_raw(key, variant, bytes),
//!     }
//! }
//!
//! // The same for an async store, here the toy store run inline:
//! mod async_conformance {
//!     use httpcache_core::{Inline, conformance::Fixture};
//!     use super::ToyStore;
//!
//!     httpcache_core::async_store_conformance! {
//!         store: || Fixture::new(Inline(ToyStore::default())),
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! [`async_store_conformance!`](crate::async_store_conformance) takes the same
//! arguments for an [`AsyncStore`] (the `corrupt` hook gets the async store) and drives
//! it with a blocking executor through [`BlockOn`].
//!
//! The checks compare whole [`Entry`] values, so a store must give back exactly what it
//! was given: every header line in order, binary bodies, times to the nanosecond. The
//! `refresh_*` checks hold [`Store::refresh`] to its contract (RFC 9111 §4.3.4): it
//! leaves what `put` would, keeping the stored body only when it is the entry's own.
//! [`key`], [`body`] and [`entry`] build the test data, for a store's own tests too.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};

use crate::entry::{Entry, EntryMeta, StoredRequest, StoredResponse};
use crate::header::VariantId;
use crate::inventory::{AsyncInventory, Filter, Inventory, Query, SortBy};
use crate::key::CacheKey;
use crate::settings::Settings;
use crate::store::{AsyncStore, Store, StoreError, Variants};

/// The byte bound the eviction check gives the `bounded` factory (1 MiB).
pub const EVICTION_MAX_BYTES: u64 = 1 << 20;

/// Threads in the concurrency check.
pub const CONCURRENT_THREADS: u64 = 8;

/// Operations per thread in the concurrency check.
pub const CONCURRENT_OPS_PER_THREAD: u64 = 150;

/// A store under test and what must outlive it. The store is dropped first.
pub struct Fixture<S> {
    /// The store.
    pub store: S,
    _guard: Box<dyn Any>,
}

impl<S> Fixture<S> {
    /// A store that needs nothing else.
    pub fn new(store: S) -> Self {
        Fixture { store, _guard: Box::new(()) }
    }

    /// A store and something to keep alive until after it is dropped (a temporary directory).
    pub fn with_guard(store: S, guard: impl Any) -> Self {
        Fixture { store, _guard: Box::new(guard) }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").field("store", &self.store).finish_non_exhaustive()
    }
}

/// A blocking [`Store`] over an [`AsyncStore`]: every call runs the future to completion
/// on the calling thread. The async suite runs the sync checks through it.
#[derive(Debug)]
pub struct BlockOn<'a, S: ?Sized>(pub &'a S);

impl<S: AsyncStore + ?Sized> Store for BlockOn<'_, S> {
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        futures_executor::block_on(self.0.get(key))
    }
    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        futures_executor::block_on(self.0.put(entry))
    }
    fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        futures_executor::block_on(self.0.refresh(entry))
    }
    fn put_owned(&self, entry: Entry) -> Result<(), StoreError> {
        futures_executor::block_on(self.0.put_owned(entry))
    }
    fn refresh_owned(&self, entry: Entry) -> Result<(), StoreError> {
        futures_executor::block_on(self.0.refresh_owned(entry))
    }
    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        futures_executor::block_on(self.0.remove(key))
    }
    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        futures_executor::block_on(self.0.remove_variant(key, variant))
    }
    fn clear(&self) -> Result<(), StoreError> {
        futures_executor::block_on(self.0.clear())
    }
    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        futures_executor::block_on(self.0.scan())
    }
    fn compact(&self) -> Result<(), StoreError> {
        futures_executor::block_on(self.0.compact())
    }
    fn flush(&self) -> Result<(), StoreError> {
        futures_executor::block_on(self.0.flush())
    }
}

/// What the macros' store wrappers give the checks: `&S` itself for a sync store,
/// a [`BlockOn`] for an async one.
#[doc(hidden)]
pub trait AsStore {
    /// The [`Store`] to drive.
    type Target: Store + ?Sized;
    /// The store.
    fn as_store(&self) -> &Self::Target;
}

impl<S: Store + ?Sized> AsStore for &S {
    type Target = S;
    fn as_store(&self) -> &S {
        self
    }
}

impl<'a, S: AsyncStore + ?Sized> AsStore for BlockOn<'a, S> {
    type Target = BlockOn<'a, S>;
    fn as_store(&self) -> &Self::Target {
        self
    }
}

/// Gives a `corrupt` closure its signature (used by the macros).
#[doc(hidden)]
pub fn hook_for<S: ?Sized, F: Fn(&S, &CacheKey, VariantId, &[u8])>(_store: &S, hook: F) -> F {
    hook
}

// ---------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------

/// The `n`th test key.
pub fn key(n: u64) -> CacheKey {
    CacheKey::hash(format!("httpcache conformance key {n}"))
}

/// An instant on the suite's virtual clock: `seconds` after a fixed origin.
pub fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

/// `len` deterministic pseudo-random bytes (every byte value occurs), different per `seed`.
pub fn body(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&word[..take]);
    }
    Bytes::from(out)
}

fn header(name: &'static str, value: &[u8]) -> (HeaderName, HeaderValue) {
    // Cannot fail: every name and value passed here is a valid constant.
    (HeaderName::from_static(name), HeaderValue::from_bytes(value).expect("valid test header value"))
}

/// A realistic entry under `key`/`variant` with `body`: repeated request and response
/// header lines (order matters), an obs-text header value, a final URL, sub-second times.
pub fn entry(key: CacheKey, variant: u64, body: Bytes) -> Entry {
    let mut request_headers = HeaderMap::new();
    for (name, value) in [
        header("accept-encoding", b"gzip, br"),
        header("accept-language", b"en"),
        header("accept-language", b"fr;q=0.5"),
    ] {
        request_headers.append(name, value);
    }
    let mut response_headers = HeaderMap::new();
    for (name, value) in [
        header("content-type", b"application/octet-stream"),
        header("set-cookie", b"a=1; Path=/"),
        header("set-cookie", b"b=2"),
        header("cache-control", b"max-age=60"),
        header("set-cookie", b"c=3; HttpOnly"),
        header("vary", b"accept-encoding"),
        header("x-opaque", b"caf\xe9 \x80\xff"),
        header("etag", b"\"v1\""),
    ] {
        response_headers.append(name, value);
    }
    let hex = key.to_string();
    Entry {
        key,
        variant: VariantId(variant),
        request: StoredRequest {
            method: Method::GET,
            url: format!("https://example.com/r/{}?v={variant}", &hex[..12]),
            headers: request_headers,
        },
        response: StoredResponse {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: response_headers,
            body,
            final_url: Some(format!("https://cdn.example.com/r/{}", &hex[..12])),
        },
        request_time: at(10) + Duration::from_nanos(123_456_789),
        response_time: at(11) + Duration::from_nanos(987_654_321),
        created: at(11) + Duration::from_nanos(987_654_321),
        expires: Some(at(71) + Duration::from_nanos(1)),
        // No `Date` or `Age`: the response delay (RFC 9111 §4.2.3).
        initial_age: Duration::new(1, 864_197_532),
    }
}

/// `stored` as a validation freshens it (RFC 9111 §4.3.4): the 304's header fields
/// replace the stored ones (another `Cache-Control`, a later `Date`, a field the 304
/// adds), the request and response times and the expiry move on; key, variant,
/// `created` and the body stay. Each `round` gives different fields and times.
pub fn revalidated(stored: &Entry, round: u64) -> Entry {
    let mut entry = stored.clone();
    let value = |text: String| HeaderValue::try_from(text).expect("valid test header value");
    let headers = &mut entry.response.headers;
    headers.insert(http::header::CACHE_CONTROL, value(format!("max-age={}", 60 + round)));
    headers.insert(http::header::DATE, value(format!("round {round}")));
    headers.insert(HeaderName::from_static("x-revalidated"), value(format!("{round}")));
    let later = Duration::from_secs(100 * (round + 1)) + Duration::from_nanos(round % 1_000_000_000);
    entry.request_time = stored.request_time + later;
    entry.response_time = stored.response_time + later;
    entry.expires = Some(entry.response_time + Duration::from_secs(60 + round));
    // As a 304 with an `Age` would make it: a store must keep the new one.
    entry.initial_age = Duration::from_secs(round + 2);
    entry
}

/// A small entry with the listing fields the inventory checks sort and filter on.
fn listed(n: u64, variant: u64, url: &str, size: usize, created: u64, expires: Option<u64>) -> Entry {
    let mut entry = entry(key(n), variant, body(n * 100 + variant, size));
    entry.request.url = url.to_string();
    entry.created = at(created);
    entry.response_time = at(created);
    entry.request_time = at(created);
    entry.expires = expires.map(at);
    entry
}

// ---------------------------------------------------------------------------------
// Comparison helpers (never print an 8 MiB body)
// ---------------------------------------------------------------------------------

/// The first field where two entries differ, described briefly.
fn difference(got: &Entry, want: &Entry) -> Option<String> {
    if got.key != want.key {
        return Some(format!("key {} != {}", got.key, want.key));
    }
    if got.variant != want.variant {
        return Some(format!("variant {:?} != {:?}", got.variant, want.variant));
    }
    if got.request != want.request {
        return Some(format!("request {:?} != {:?}", got.request, want.request));
    }
    let (g, w) = (&got.response, &want.response);
    if (g.status, g.version) != (w.status, w.version) {
        return Some(format!(
            "status/version {:?} {:?} != {:?} {:?}",
            g.status, g.version, w.status, w.version
        ));
    }
    if g.headers != w.headers {
        return Some(format!("response headers {:?} != {:?}", g.headers, w.headers));
    }
    if g.final_url != w.final_url {
        return Some(format!("final_url {:?} != {:?}", g.final_url, w.final_url));
    }
    if g.body != w.body {
        let first = g.body.iter().zip(w.body.iter()).position(|(a, b)| a != b);
        return Some(format!(
            "body: {} bytes != {} bytes, first difference at {first:?}",
            g.body.len(),
            w.body.len()
        ));
    }
    let times = |e: &Entry| (e.request_time, e.response_time, e.created, e.expires, e.initial_age);
    if times(got) != times(want) {
        return Some(format!("times {:?} != {:?}", times(got), times(want)));
    }
    None
}

/// Asserts `got` holds exactly `want` (in any order).
#[track_caller]
fn assert_entries(got: &[Entry], want: &[&Entry], what: &str) {
    let mut got: Vec<&Entry> = got.iter().collect();
    let mut want = want.to_vec();
    got.sort_by_key(|entry| entry.variant);
    want.sort_by_key(|entry| entry.variant);
    let ids = |entries: &[&Entry]| entries.iter().map(|e| (e.key, e.variant)).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&want), "{what}: wrong (key, variant) set");
    for (g, w) in got.iter().zip(&want) {
        if let Some(difference) = difference(g, w) {
            panic!("{what}: entry {} / {:?} differs: {difference}", w.key, w.variant);
        }
    }
}

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

fn sorted_metas(mut metas: Vec<EntryMeta>) -> Vec<EntryMeta> {
    metas.sort_by_key(|meta| (meta.key, meta.variant));
    metas
}

fn meta_ids(metas: &[EntryMeta]) -> BTreeSet<(CacheKey, VariantId)> {
    metas.iter().map(|meta| (meta.key, meta.variant)).collect()
}

// ---------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------

/// Entries with bodies of 0 B, 1 KiB, 64 KiB and 8 MiB (every byte value) and repeated
/// header lines come back exactly as stored.
pub fn round_trip<S: Store + ?Sized>(store: &S) {
    let sizes = [0usize, 1 << 10, 64 << 10, 8 << 20];
    let entries: Vec<Entry> =
        sizes.iter().enumerate().map(|(i, &size)| entry(key(i as u64), 0, body(i as u64, size))).collect();
    for entry in &entries {
        ok(store.put(entry), "put");
    }
    for (entry, size) in entries.iter().zip(sizes) {
        let got = ok(store.get(&entry.key), "get");
        assert_entries(&got, &[entry], &format!("round trip of a {size}-byte body"));
        let cookies: Vec<&[u8]> =
            got[0].response.headers.get_all("set-cookie").iter().map(|v| v.as_bytes()).collect();
        assert_eq!(cookies, [&b"a=1; Path=/"[..], b"b=2", b"c=3; HttpOnly"], "repeated lines in order");
    }
    // Reading twice gives the same answer.
    assert_entries(&ok(store.get(&entries[2].key), "get"), &[&entries[2]], "second read");
}

/// A key never stored reads as empty, and removing it removes nothing.
pub fn missing_key_is_empty<S: Store + ?Sized>(store: &S) {
    assert!(ok(store.get(&key(404)), "get").is_empty());
    assert_eq!(ok(store.remove(&key(404)), "remove"), 0);
    assert!(!ok(store.remove_variant(&key(404), VariantId(0)), "remove_variant"));
    assert!(ok(store.scan(), "scan").is_empty());
}

/// Several variants of one key coexist, and do not leak into other keys.
pub fn variants_coexist<S: Store + ?Sized>(store: &S) {
    let variants: Vec<Entry> = [0u64, 1, u64::MAX].iter().map(|&v| entry(key(1), v, body(v, 100))).collect();
    let other = entry(key(2), 1, body(99, 10));
    for entry in variants.iter().chain([&other]) {
        ok(store.put(entry), "put");
    }
    let want: Vec<&Entry> = variants.iter().collect();
    assert_entries(&ok(store.get(&key(1)), "get"), &want, "three variants of one key");
    assert_entries(&ok(store.get(&key(2)), "get"), &[&other], "the other key");
}

/// Putting the same (key, variant) again replaces it and keeps the other variants.
pub fn overwrite_replaces_variant<S: Store + ?Sized>(store: &S) {
    let first = entry(key(1), 7, body(1, 5000));
    let sibling = entry(key(1), 8, body(2, 10));
    ok(store.put(&first), "put");
    ok(store.put(&sibling), "put");
    let mut second = entry(key(1), 7, body(3, 20));
    second.response.status = StatusCode::NOT_FOUND;
    second.expires = None;
    ok(store.put(&second), "put");
    assert_entries(&ok(store.get(&key(1)), "get"), &[&second, &sibling], "after overwrite");
    let metas = ok(store.scan(), "scan");
    assert_eq!(metas.len(), 2, "an overwrite does not add a record: {metas:?}");
}

/// `remove` deletes every variant of a key and says how many.
pub fn remove_counts_variants<S: Store + ?Sized>(store: &S) {
    for variant in 0..3 {
        ok(store.put(&entry(key(1), variant, body(variant, 10))), "put");
    }
    let other = entry(key(2), 0, body(9, 10));
    ok(store.put(&other), "put");
    assert_eq!(ok(store.remove(&key(1)), "remove"), 3);
    assert!(ok(store.get(&key(1)), "get").is_empty());
    assert_eq!(ok(store.remove(&key(1)), "remove"), 0);
    assert_entries(&ok(store.get(&key(2)), "get"), &[&other], "the other key survives");
    assert_eq!(meta_ids(&ok(store.scan(), "scan")), BTreeSet::from([(key(2), VariantId(0))]));
}

/// `remove_variant` deletes one variant, says whether it was there, keeps the others.
pub fn remove_variant_keeps_others<S: Store + ?Sized>(store: &S) {
    let a = entry(key(1), 1, body(1, 10));
    let b = entry(key(1), 2, body(2, 10));
    ok(store.put(&a), "put");
    ok(store.put(&b), "put");
    assert!(ok(store.remove_variant(&key(1), VariantId(1)), "remove_variant"));
    assert!(!ok(store.remove_variant(&key(1), VariantId(1)), "remove_variant again"));
    assert!(!ok(store.remove_variant(&key(1), VariantId(3)), "remove_variant of an absent variant"));
    assert_entries(&ok(store.get(&key(1)), "get"), &[&b], "the other variant survives");
    assert!(ok(store.remove_variant(&key(1), VariantId(2)), "remove the last variant"));
    assert!(ok(store.get(&key(1)), "get").is_empty());
    assert!(ok(store.scan(), "scan").is_empty());
    assert_eq!(ok(store.remove(&key(1)), "remove"), 0);
}

/// `clear` deletes everything, and the store stays usable.
pub fn clear_removes_everything<S: Store + ?Sized>(store: &S) {
    for n in 0..5 {
        ok(store.put(&entry(key(n), n % 2, body(n, 100))), "put");
    }
    ok(store.clear(), "clear");
    assert!(ok(store.scan(), "scan").is_empty());
    for n in 0..5 {
        assert!(ok(store.get(&key(n)), "get").is_empty());
    }
    let after = entry(key(1), 0, body(1, 1));
    ok(store.put(&after), "put after clear");
    assert_entries(&ok(store.get(&key(1)), "get"), &[&after], "put after clear");
    ok(store.compact(), "compact");
}

/// `scan` returns, for every stored entry, metadata equal to [`Entry::meta`].
pub fn scan_lists_metadata<S: Store + ?Sized>(store: &S) {
    let mut entries = Vec::new();
    for n in 0..6u64 {
        for variant in 0..(n % 3 + 1) {
            let mut e = entry(key(n), variant, body(n * 10 + variant, (n * 1000 + variant) as usize));
            e.request.method = if n == 5 { Method::HEAD } else { Method::GET };
            e.response.status = if n == 4 { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
            e.expires = if n == 3 { None } else { Some(at(100 + n)) };
            entries.push(e);
        }
    }
    for e in &entries {
        ok(store.put(e), "put");
    }
    let want = sorted_metas(entries.iter().map(Entry::meta).collect());
    assert_eq!(sorted_metas(ok(store.scan(), "scan")), want);
    assert!(ok(store.remove_variant(&key(2), VariantId(1)), "remove_variant"));
    let want: Vec<EntryMeta> =
        want.into_iter().filter(|meta| (meta.key, meta.variant) != (key(2), VariantId(1))).collect();
    assert_eq!(sorted_metas(ok(store.scan(), "scan")), want, "scan after remove_variant");
}

/// The body sizes the `refresh_*` checks use: inline and kept-apart bodies alike in
/// every store that splits them (the LMDB and fs stores split at 16 and 128 KiB).
const REFRESH_SIZES: [usize; 4] = [0, 1 << 10, 64 << 10, 256 << 10];

/// RFC 9111 §4.3.4: `refresh` of a freshened copy of a stored variant updates its
/// header fields, times and expiry and keeps its body, whatever the body's size; the
/// key's other variants are untouched, `scan` lists the new metadata, and a later
/// `refresh` or `put` works as usual.
pub fn refresh_updates_metadata_and_keeps_body<S: Store + ?Sized>(store: &S) {
    for (n, size) in REFRESH_SIZES.into_iter().enumerate() {
        let n = n as u64;
        let stored = entry(key(n), 1, body(n, size));
        let sibling = entry(key(n), 2, body(n + 100, 100));
        ok(store.put(&stored), "put");
        ok(store.put(&sibling), "put");
        let first = revalidated(&stored, 1);
        ok(store.refresh(&first), "refresh");
        let what = format!("after refreshing a {size}-byte body");
        assert_entries(&ok(store.get(&key(n)), "get"), &[&first, &sibling], &what);
        let second = revalidated(&first, 2);
        ok(store.refresh(&second), "refresh again");
        let what = format!("after refreshing a {size}-byte body twice");
        assert_entries(&ok(store.get(&key(n)), "get"), &[&second, &sibling], &what);
        let listed: Vec<EntryMeta> =
            ok(store.scan(), "scan").into_iter().filter(|meta| meta.key == key(n)).collect();
        assert_eq!(sorted_metas(listed), sorted_metas(vec![second.meta(), sibling.meta()]), "{what}: scan");
        // A put after a refresh replaces the variant as usual.
        let replaced = entry(key(n), 1, body(n + 200, size / 2));
        ok(store.put(&replaced), "put after refresh");
        assert_entries(&ok(store.get(&key(n)), "get"), &[&replaced, &sibling], "put after refresh");
    }
}

/// The owned writes the drivers make, `put_owned` and `refresh_owned`, leave exactly
/// what `put` and `refresh` leave: a new variant beside the others, a replaced one, a
/// refreshed one keeping its body, and a refresh of a removed variant stored whole.
pub fn owned_writes_match_borrowed<S: Store + ?Sized>(store: &S) {
    for (n, size) in REFRESH_SIZES.into_iter().enumerate() {
        let n = n as u64;
        let stored = entry(key(n), 1, body(n, size));
        let sibling = entry(key(n), 2, body(n + 100, 100));
        ok(store.put_owned(stored.clone()), "put_owned");
        ok(store.put_owned(sibling.clone()), "put_owned");
        let what = format!("two variants put owned, a {size}-byte body");
        assert_entries(&ok(store.get(&key(n)), "get"), &[&stored, &sibling], &what);
        let refreshed = revalidated(&stored, 1);
        ok(store.refresh_owned(refreshed.clone()), "refresh_owned");
        let what = format!("after refresh_owned of a {size}-byte body");
        assert_entries(&ok(store.get(&key(n)), "get"), &[&refreshed, &sibling], &what);
        let mut replaced = entry(key(n), 1, body(n + 200, size / 2));
        replaced.response.status = StatusCode::NOT_FOUND;
        ok(store.put_owned(replaced.clone()), "put_owned over a variant");
        assert_entries(&ok(store.get(&key(n)), "get"), &[&replaced, &sibling], "put_owned over a variant");
        ok(store.remove_variant(&key(n), VariantId(1)).map(drop), "remove_variant");
        let revived = revalidated(&replaced, 2);
        ok(store.refresh_owned(revived.clone()), "refresh_owned of a removed variant");
        assert_entries(
            &ok(store.get(&key(n)), "get"),
            &[&revived, &sibling],
            "refresh_owned of a removed variant",
        );
        let listed: Vec<EntryMeta> =
            ok(store.scan(), "scan").into_iter().filter(|meta| meta.key == key(n)).collect();
        assert_eq!(sorted_metas(listed), sorted_metas(vec![revived.meta(), sibling.meta()]), "scan");
    }
}

/// `refresh` when nothing is stored for the variant any more (removed, its key
/// removed, the store cleared, or never stored at all) stores the whole entry, body
/// included: a miss is never left behind, and no stale body is revived.
pub fn refresh_of_a_removed_entry_stores_it_whole<S: Store + ?Sized>(store: &S) {
    for (n, size) in REFRESH_SIZES.into_iter().enumerate() {
        let n = n as u64;
        let stored = entry(key(n), 0, body(n, size));
        let removals = ["remove_variant", "remove", "clear", "nothing ever stored"];
        for (round, removal) in removals.into_iter().enumerate() {
            match removal {
                "remove_variant" => {
                    ok(store.put(&stored), "put");
                    assert!(ok(store.remove_variant(&key(n), VariantId(0)), "remove_variant"));
                }
                "remove" => {
                    ok(store.put(&stored), "put");
                    assert_eq!(ok(store.remove(&key(n)), "remove"), 1);
                }
                "clear" => {
                    ok(store.put(&stored), "put");
                    ok(store.clear(), "clear");
                }
                _ => {}
            }
            let refreshed = revalidated(&stored, round as u64);
            ok(store.refresh(&refreshed), "refresh");
            let what = format!("refresh of a {size}-byte entry after {removal}");
            assert_entries(&ok(store.get(&key(n)), "get"), &[&refreshed], &what);
            assert_eq!(ok(store.scan(), "scan").iter().filter(|m| m.key == key(n)).count(), 1, "{what}");
            // Removed, though it may be queued still (a store that writes refreshes
            // behind must not take a key with nothing written yet for an absent one).
            if round % 2 == 0 {
                assert_eq!(ok(store.remove(&key(n)), "remove"), 1, "{what}");
            } else {
                assert!(ok(store.remove_variant(&key(n), VariantId(0)), "remove_variant"), "{what}");
            }
            assert!(ok(store.get(&key(n)), "get").is_empty(), "{what}: removed");
        }
    }
}

/// The race `refresh` must survive: a process reads a variant (body B1) and
/// revalidates it; meanwhile another stores a new response for the same variant
/// (body B2); then the refresh arrives. The store must end up holding the refreshed
/// entry *with B1*, never its header fields with B2 (which its `ETag` and
/// `Content-Length` do not describe): B2 differs from B1 in the last byte only, in
/// the first only, is shorter, longer, or empty.
pub fn refresh_never_pairs_headers_with_another_body<S: Store + ?Sized>(store: &S) {
    for (n, size) in REFRESH_SIZES.into_iter().enumerate().skip(1) {
        let n = n as u64;
        let read = entry(key(n), 3, body(n, size));
        let b1 = &read.response.body;
        let flip = |at: usize| {
            let mut bytes = b1.to_vec();
            bytes[at] ^= 0x01;
            Bytes::from(bytes)
        };
        let others: [(&str, Bytes); 5] = [
            ("last byte differs", flip(size - 1)),
            ("first byte differs", flip(0)),
            ("shorter", b1.slice(..size / 2)),
            ("longer", Bytes::from([&b1[..], &body(n + 7, 4096)[..]].concat())),
            ("empty", Bytes::new()),
        ];
        for (round, (how, b2)) in others.into_iter().enumerate() {
            ok(store.put(&read), "put");
            let mut meanwhile = entry(key(n), 3, b2);
            meanwhile.response.headers.insert(http::header::ETAG, HeaderValue::from_static("\"v2\""));
            ok(store.put(&meanwhile), "the other writer's put");
            let refreshed = revalidated(&read, round as u64);
            ok(store.refresh(&refreshed), "refresh");
            let what = format!("{size}-byte body refreshed after another writer stored one ({how})");
            assert_entries(&ok(store.get(&key(n)), "get"), &[&refreshed], &what);
            let listed: Vec<EntryMeta> =
                ok(store.scan(), "scan").into_iter().filter(|meta| meta.key == key(n)).collect();
            assert_eq!(listed, [refreshed.meta()], "{what}: scan");
        }
        ok(store.remove(&key(n)), "remove");
    }
}

/// A store may write refreshes behind (see [`Store::refresh`]), but nothing read
/// through it may tell: a refresh is read at once, and a `put`, `remove`,
/// `remove_variant` or `clear` asked for after it lands after it, so the refresh never
/// brings back what they replaced or removed, before or after [`Store::flush`]. Threads
/// refreshing their own keys each read their own latest refresh.
pub fn refresh_is_ordered_with_later_writes<S: Store + ?Sized>(store: &S) {
    let size = REFRESH_SIZES[REFRESH_SIZES.len() - 1];
    let stored = entry(key(40), 0, body(40, size));
    for round in 1..=3u64 {
        let what = format!("round {round}");
        ok(store.put(&stored), "put");
        ok(store.refresh(&revalidated(&stored, round)), "refresh");
        let replaced = entry(key(40), 0, body(40 + round, size / 2));
        ok(store.put(&replaced), "put after refresh");
        assert_entries(&ok(store.get(&key(40)), "get"), &[&replaced], &format!("{what}: the later put"));
        ok(store.refresh(&revalidated(&replaced, round)), "refresh");
        assert!(ok(store.remove_variant(&key(40), VariantId(0)), "remove_variant"), "{what}");
        assert!(ok(store.get(&key(40)), "get").is_empty(), "{what}: removed after the refresh");
        ok(store.put(&stored), "put");
        ok(store.refresh(&revalidated(&stored, round)), "refresh");
        assert_eq!(ok(store.remove(&key(40)), "remove"), 1, "{what}");
        assert!(ok(store.get(&key(40)), "get").is_empty(), "{what}: removed after the refresh");
        ok(store.put(&stored), "put");
        ok(store.refresh(&revalidated(&stored, round)), "refresh");
        ok(store.clear(), "clear");
        ok(store.flush(), "flush");
        assert!(ok(store.get(&key(40)), "get").is_empty(), "{what}: cleared after the refresh");
        assert!(ok(store.scan(), "scan").is_empty(), "{what}: nothing listed");
    }
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            scope.spawn(move || {
                let stored = entry(key(50 + thread), 0, body(thread, size));
                ok(store.put(&stored), "put");
                for round in 1..=10 {
                    let refreshed = revalidated(&stored, round);
                    ok(store.refresh(&refreshed), "refresh");
                    let what = format!("thread {thread}, round {round}");
                    assert_entries(&ok(store.get(&stored.key), "get"), &[&refreshed], &what);
                }
            });
        }
    });
    ok(store.flush(), "flush");
    for thread in 0..4u64 {
        let last = revalidated(&entry(key(50 + thread), 0, body(thread, size)), 10);
        assert_entries(&ok(store.get(&last.key), "get"), &[&last], &format!("thread {thread}: flushed"));
    }
    assert_eq!(ok(store.scan(), "scan").len(), 4);
}

fn inventory_fixture() -> Vec<Entry> {
    vec![
        listed(1, 0, "https://example.com/a", 10, 0, Some(100)),
        listed(1, 7, "https://example.com/a", 30, 50, None),
        listed(2, 0, "https://example.org/b?x=1", 20, 10, Some(60)),
        listed(3, 0, "https://example.com/a", 5, 200, Some(1000)),
        listed(4, 0, "https://example.net/c", 40, 300, Some(400)),
    ]
}

fn listing(metas: &[EntryMeta]) -> Vec<(CacheKey, u64)> {
    metas.iter().map(|meta| (meta.key, meta.variant.0)).collect()
}

/// Counting, listing, filtering and sorting through [`Inventory`].
pub fn inventory_lists<S: Store + ?Sized>(store: &S) {
    let entries = inventory_fixture();
    for e in &entries {
        ok(store.put(e), "put");
    }
    let inventory = Inventory::new(store);
    assert_eq!(ok(inventory.count(), "count"), 5);
    let mut keys = vec![key(1), key(2), key(3), key(4)];
    keys.sort();
    assert_eq!(ok(inventory.keys(), "keys"), keys);
    assert_eq!(
        ok(inventory.urls(), "urls"),
        ["https://example.com/a", "https://example.net/c", "https://example.org/b?x=1"]
    );
    let values = ok(inventory.values(), "values");
    assert_eq!(values.len(), 5);
    for e in &entries {
        let found: Vec<Entry> =
            values.iter().filter(|v| (v.key, v.variant) == (e.key, e.variant)).cloned().collect();
        assert_entries(&found, &[e], "values");
    }
    assert!(ok(inventory.contains(&key(2)), "contains"));
    assert!(!ok(inventory.contains(&key(9)), "contains"));

    let now = at(100);
    let list = |query: Query| listing(&ok(inventory.list(&query, now), "list"));
    let set = |query: Query| list(query).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(set(Query::new(Filter::Expired)), BTreeSet::from([(key(1), 0), (key(2), 0)]));
    assert_eq!(set(Query::new(Filter::Valid)), BTreeSet::from([(key(1), 7), (key(3), 0), (key(4), 0)]));
    assert_eq!(
        set(Query::new(Filter::OlderThan(Duration::from_secs(60)))),
        BTreeSet::from([(key(1), 0), (key(2), 0)])
    );
    assert!(list(Query::new(Filter::Invalid)).is_empty());
    assert_eq!(
        list(Query::new(Filter::All).sort_by(SortBy::Expires)),
        [(key(2), 0), (key(1), 0), (key(4), 0), (key(3), 0), (key(1), 7)]
    );
    assert_eq!(
        list(Query::new(Filter::All).sort_by(SortBy::Size).reverse().limit(3)),
        [(key(4), 0), (key(1), 7), (key(2), 0)]
    );
    assert_eq!(
        list(Query::new(Filter::Valid).sort_by(SortBy::Created)),
        [(key(1), 7), (key(3), 0), (key(4), 0)]
    );
}

/// Deleting by key, URL, expiry and age through [`Inventory`], with exact counts.
pub fn inventory_deletes<S: Store + ?Sized>(store: &S) {
    for e in &inventory_fixture() {
        ok(store.put(e), "put");
    }
    let inventory = Inventory::new(store);
    let settings = Settings::default();
    let uri = |s: &str| s.parse::<http::Uri>().expect("test URL");
    assert!(ok(inventory.has_url(&uri("HTTPS://Example.COM:443/a"), &settings), "has_url"));
    assert!(!ok(inventory.has_url(&uri("https://example.com/z"), &settings), "has_url"));
    assert_eq!(ok(inventory.delete_keys(&[key(4), key(9)]), "delete_keys"), 1);
    assert_eq!(ok(inventory.delete_expired(at(60)), "delete_expired"), 1); // key 2
    assert_eq!(ok(inventory.delete_expired(at(60)), "delete_expired again"), 0);
    assert_eq!(ok(inventory.delete_older_than(Duration::from_secs(100), at(150)), "delete_older_than"), 1); // 1/0
    assert_eq!(ok(inventory.count(), "count"), 2);
    assert_eq!(ok(inventory.delete_urls(&[uri("https://example.com/a")], &settings), "delete_urls"), 2);
    assert_eq!(ok(inventory.count(), "count"), 0);
    for e in &inventory_fixture() {
        ok(store.put(e), "put");
    }
    ok(inventory.clear(), "clear");
    assert_eq!(ok(inventory.count(), "count"), 0);
    ok(inventory.compact(), "compact");
}

/// [`Inventory::copy_into`] copies every entry into another store of the same kind.
pub fn inventory_copies<S: Store + ?Sized, D: Store + ?Sized>(source: &S, destination: &D) {
    let entries = inventory_fixture();
    for e in &entries {
        ok(source.put(e), "put");
    }
    let report = ok(Inventory::new(source).copy_into(destination), "copy_into");
    assert_eq!(report.copied, 5, "failures: {:?}", report.failed);
    assert!(report.failed.is_empty());
    for n in 1..=4 {
        let want: Vec<&Entry> = entries.iter().filter(|e| e.key == key(n)).collect();
        assert_entries(&ok(destination.get(&key(n)), "get"), &want, "copied");
    }
    assert_eq!(sorted_metas(ok(destination.scan(), "scan")), sorted_metas(ok(source.scan(), "scan")));
}

/// [`AsyncInventory`] over an async store gives the answers [`Inventory`] gives.
pub fn async_inventory<S: AsyncStore + ?Sized, D: AsyncStore + ?Sized>(store: &S, destination: &D) {
    let entries = inventory_fixture();
    futures_executor::block_on(async {
        for e in &entries {
            ok(store.put(e).await, "put");
        }
        let inventory = AsyncInventory::new(store);
        assert_eq!(ok(inventory.count().await, "count"), 5);
        assert_eq!(ok(inventory.keys().await, "keys").len(), 4);
        assert_eq!(ok(inventory.values().await, "values").len(), 5);
        let query = Query::new(Filter::Expired).sort_by(SortBy::Expires);
        assert_eq!(listing(&ok(inventory.list(&query, at(100)).await, "list")), [(key(2), 0), (key(1), 0)]);
        let report = ok(inventory.copy_into(destination).await, "copy_into");
        assert_eq!((report.copied, report.failed.len()), (5, 0));
        assert_eq!(ok(inventory.delete_expired(at(100)).await, "delete_expired"), 2);
        assert_eq!(ok(inventory.delete_invalid().await, "delete_invalid"), 0);
        assert_eq!(ok(inventory.count().await, "count"), 3);
        assert_eq!(ok(AsyncInventory::new(destination).count().await, "count"), 5);
    });
}

/// Eight threads put, refresh (freshened copies of what they read, §4.3.4), get and
/// remove overlapping keys and variants, a sixth of the bodies large (136 KiB, over
/// the thresholds above which the LMDB and fs stores keep bodies apart) and all of
/// those the same length, so refreshes race with puts of other bodies; every entry read,
/// during and after, is one a writer wrote, whole (never a refresh's header fields
/// with another put's body); `scan` agrees with `get` afterwards.
pub fn concurrent_writers<S: Store + ?Sized>(store: &S) {
    const KEYS: u64 = 5;
    const VARIANTS: u64 = 3;
    type Log = (Vec<Entry>, Vec<Entry>);
    let logs: Vec<Log> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CONCURRENT_THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let (mut written, mut read) = (Vec::new(), Vec::new());
                    let mut last_read: HashMap<(CacheKey, VariantId), Entry> = HashMap::new();
                    let mut state = thread.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for op in 0..CONCURRENT_OPS_PER_THREAD {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let k = key(state % KEYS);
                        let variant = (state >> 8) % VARIANTS;
                        match (state >> 16) % 20 {
                            0..=8 => {
                                let seed = thread * 1_000_000 + op;
                                let size =
                                    if seed % 6 == 0 { 136 << 10 } else { 16 + (seed % 3000) as usize };
                                let e = entry(k, variant, body(seed, size));
                                ok(store.put(&e), "concurrent put");
                                written.push(e);
                            }
                            9..=10 => {
                                if let Some(seen) = last_read.get(&(k, VariantId(variant))) {
                                    let refreshed = revalidated(seen, thread * 1_000_000 + op);
                                    ok(store.refresh(&refreshed), "concurrent refresh");
                                    written.push(refreshed);
                                }
                            }
                            11..=16 => {
                                let got = ok(store.get(&k), "concurrent get");
                                for e in &got {
                                    last_read.insert((e.key, e.variant), e.clone());
                                }
                                read.extend(got);
                            }
                            17..=18 => {
                                ok(store.remove_variant(&k, VariantId(variant)), "concurrent remove_variant");
                            }
                            _ => {
                                ok(store.remove(&k), "concurrent remove");
                            }
                        }
                    }
                    (written, read)
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("a conformance thread panicked")).collect()
    });
    let mut written: HashMap<(CacheKey, VariantId), Vec<Entry>> = HashMap::new();
    let mut reads = Vec::new();
    for (w, r) in logs {
        for e in w {
            written.entry((e.key, e.variant)).or_default().push(e);
        }
        reads.extend(r);
    }
    let check = |e: &Entry, when: &str| {
        let candidates = written.get(&(e.key, e.variant)).map(Vec::as_slice).unwrap_or_default();
        assert!(
            candidates.iter().any(|c| difference(e, c).is_none()),
            "{when}: entry {} / {:?} ({} body bytes) is not one any writer wrote",
            e.key,
            e.variant,
            e.response.body.len()
        );
    };
    for e in &reads {
        check(e, "read during the run");
    }
    let metas = ok(store.scan(), "scan");
    let mut from_get = Vec::new();
    for k in metas.iter().map(|meta| meta.key).collect::<BTreeSet<_>>() {
        for e in ok(store.get(&k), "get") {
            check(&e, "read after the run");
            from_get.push(e.meta());
        }
    }
    assert_eq!(sorted_metas(metas), sorted_metas(from_get), "scan and get agree after the run");
}

/// A store bounded to `max_bytes` ([`EVICTION_MAX_BYTES`] from the macro), written with
/// four times that, keeps the total body bytes it lists within the bound, keeps the
/// newest entry, and everything it keeps reads back whole.
pub fn eviction_keeps_byte_bound<S: Store + ?Sized>(store: &S, max_bytes: u64) {
    let entry_body = (max_bytes / 16) as usize;
    let count = 64u64;
    let entries: Vec<Entry> = (0..count).map(|n| entry(key(n), 0, body(n, entry_body))).collect();
    for e in &entries {
        match store.put(e) {
            Ok(()) | Err(StoreError::Full(_)) => {}
            Err(error) => panic!("put into a bounded store failed: {error}"),
        }
    }
    let metas = ok(store.scan(), "scan");
    let total: u64 = metas.iter().map(|meta| meta.body_size).sum();
    assert!(total <= max_bytes, "{total} body bytes listed in a store bounded to {max_bytes}");
    assert!(!metas.is_empty(), "a bounded store evicted everything");
    let newest = &entries[entries.len() - 1];
    assert_entries(&ok(store.get(&newest.key), "get"), &[newest], "the newest entry survives eviction");
    for meta in &metas {
        let n = entries.iter().position(|e| e.key == meta.key).expect("listed key was written");
        let got = ok(store.get(&meta.key), "get");
        // It may have been evicted between scan and get by nothing else; it must be whole.
        assert_entries(&got, &[&entries[n]], "a kept entry");
    }
}

/// What a body kept apart from its head can be found to hold instead of `good`, with a
/// name each: nothing (`None`: the body is gone), empty, one byte short, one byte long,
/// another body. A store that keeps bodies apart must read each as a clean miss.
pub fn corrupt_bodies(good: &[u8]) -> [(&'static str, Option<Vec<u8>>); 5] {
    [
        ("missing", None),
        ("empty", Some(Vec::new())),
        ("cut short", Some(good[..good.len().saturating_sub(1)].to_vec())),
        ("too long", Some([good, b"!"].concat())),
        ("another", Some(body(9, 10).to_vec())),
    ]
}

/// Byte strings that are not a valid encoding of `victim`, with a name each: empty,
/// garbage, cut short in several places, wrong magic, another format version, a flipped
/// byte in the metadata block.
pub fn corrupt_payloads(victim: &Entry) -> Vec<(&'static str, Vec<u8>)> {
    let good = victim.encode();
    let mut payloads = vec![
        ("empty", Vec::new()),
        ("garbage", body(4242, 1000).to_vec()),
        ("first 10 bytes", good[..good.len().min(10)].to_vec()),
        ("first half", good[..good.len() / 2].to_vec()),
        ("last byte missing", good[..good.len() - 1].to_vec()),
    ];
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xFF;
    payloads.push(("wrong magic", bad_magic));
    if good.len() >= 6 {
        let mut other_version = good.clone();
        other_version[4] = 0xFE;
        other_version[5] = 0xFF;
        payloads.push(("another format version", other_version));
    }
    if good.len() >= 10 {
        let meta_len = u32::from_le_bytes([good[6], good[7], good[8], good[9]]) as usize;
        let at = 10 + meta_len / 2;
        if meta_len > 0 && at < good.len() {
            let mut flipped = good.clone();
            flipped[at] ^= 0x55;
            payloads.push(("flipped metadata byte", flipped));
        }
    }
    payloads
}

/// Entries sorted by variant, for comparing two reads.
fn by_variant(read: Result<Vec<Entry>, StoreError>) -> Vec<Entry> {
    let mut entries = read.expect("read");
    entries.sort_by_key(|entry| entry.variant.0);
    entries
}

/// The writes the read agreement checks run between their reads (`check`): a key never
/// stored, one variant, three (one large), after a refresh, after removing a variant and
/// the key, and another key left alone.
struct Writes<'a> {
    put: &'a dyn Fn(&Entry),
    refresh: &'a dyn Fn(&Entry),
    remove_variant: &'a dyn Fn(&CacheKey, VariantId),
    remove: &'a dyn Fn(&CacheKey),
}

fn read_agreement(writes: &Writes<'_>, check: &dyn Fn(&CacheKey, &str)) {
    let (one, two) = (key(9_001), key(9_002));
    check(&one, "never stored");
    let first = entry(one, 1, body(1, 100));
    (writes.put)(&first);
    check(&one, "one variant");
    for variant in 2..=3 {
        (writes.put)(&entry(one, variant, body(variant, 200_000)));
    }
    (writes.put)(&entry(two, 1, body(7, 10)));
    check(&one, "three variants, one of them large");
    (writes.refresh)(&revalidated(&first, 1));
    check(&one, "after a refresh");
    (writes.remove_variant)(&one, VariantId(2));
    check(&one, "after removing a variant");
    (writes.remove)(&one);
    check(&one, "after removing the key");
    check(&two, "another key, untouched");
}

/// What a read through a callback (`read_with`, `read_now`) lent, as owned entries,
/// checking that it called back exactly once when it says it read.
fn lent(read: impl FnOnce(&mut dyn FnMut(Result<Variants<'_>, StoreError>)) -> bool) -> Option<Vec<Entry>> {
    let (mut calls, mut lent) = (0, None);
    let read_now = read(&mut |read| {
        calls += 1;
        lent = Some(by_variant(read.map(Variants::into_vec)));
    });
    assert_eq!(calls, usize::from(read_now), "a read that answers calls back exactly once");
    lent
}

/// [`Store::read_with`] lends what `get` returns: for a key never stored, one variant,
/// several, after a refresh, and after removals.
pub fn read_with_agrees<S: Store + ?Sized>(store: &S) {
    blocking_agreement(store, &|key, what| {
        let lent = lent(|read| {
            store.read_with(key, read);
            true
        });
        assert_eq!(lent, Some(by_variant(store.get(key))), "read_with and get disagree: {what}");
    });
}

/// [`read_agreement`] with the writes made through the blocking `store`.
fn blocking_agreement<S: Store + ?Sized>(store: &S, check: &dyn Fn(&CacheKey, &str)) {
    let writes = Writes {
        put: &|entry| store.put(entry).expect("put"),
        refresh: &|entry| store.refresh(entry).expect("refresh"),
        remove_variant: &|key, variant| {
            store.remove_variant(key, variant).expect("remove_variant");
        },
        remove: &|key| {
            store.remove(key).expect("remove");
        },
    };
    read_agreement(&writes, check);
}

/// [`AsyncStore::read_now`], where a store answers it, lends what `get` returns: for a
/// key never stored, one variant, several, after a refresh, and after removals.
pub fn read_now_agrees<S: AsyncStore + ?Sized>(store: &S) {
    use futures_executor::block_on;
    let writes = Writes {
        put: &|entry| block_on(store.put(entry)).expect("put"),
        refresh: &|entry| block_on(store.refresh(entry)).expect("refresh"),
        remove_variant: &|key, variant| {
            block_on(store.remove_variant(key, variant)).expect("remove_variant");
        },
        remove: &|key| {
            block_on(store.remove(key)).expect("remove");
        },
    };
    read_agreement(&writes, &|key, what| {
        let awaited = by_variant(block_on(store.get(key)));
        if let Some(lent) = lent(|read| store.read_now(key, read)) {
            assert_eq!(lent, awaited, "read_now and get disagree: {what}");
        }
    });
}

/// [`AsyncStore::write_now`], where a store offers it, is a view of the same entries:
/// what is put, refreshed and removed through it is what `get` then returns (for a key
/// never stored, one variant, several, after a refresh, and after removals).
pub fn write_now_agrees<S: AsyncStore + ?Sized>(store: &S) {
    use futures_executor::block_on;
    let Some(blocking) = store.write_now() else {
        return;
    };
    blocking_agreement(blocking, &|key, what| {
        let awaited = by_variant(block_on(store.get(key)));
        assert_eq!(awaited, by_variant(blocking.get(key)), "write_now's store and get disagree: {what}");
    });
}

/// After `corrupt` overwrites one variant's record with each of [`corrupt_payloads`],
/// `get` returns only the intact variants (or a miss), never a corrupt entry and never
/// an error; once read, the corrupt record is gone from `scan`; other keys are untouched;
/// a key whose only record is corrupt is a miss and leaves nothing behind.
pub fn corrupt_records_are_misses<S: Store + ?Sized>(
    store: &S,
    corrupt: impl Fn(&S, &CacheKey, VariantId, &[u8]),
) {
    let victim = entry(key(1), 1, body(1, 3000));
    let sibling = entry(key(1), 2, body(2, 300));
    let bystander = entry(key(2), 0, body(3, 30));
    for (name, payload) in corrupt_payloads(&victim) {
        ok(store.clear(), "clear");
        for e in [&victim, &sibling, &bystander] {
            ok(store.put(e), "put");
        }
        corrupt(store, &key(1), VariantId(1), &payload);
        let got = ok(store.get(&key(1)), &format!("get after corruption ({name})"));
        assert!(got.len() <= 1, "{name}: {} entries for a key with one intact variant", got.len());
        if !got.is_empty() {
            assert_entries(&got, &[&sibling], &format!("intact variant after corruption ({name})"));
        }
        let again = ok(store.get(&key(1)), "get again");
        assert_eq!(again.len(), got.len(), "{name}: a second read changed the answer");
        let ids = meta_ids(&ok(store.scan(), "scan"));
        assert!(!ids.contains(&(key(1), VariantId(1))), "{name}: the corrupt record is still listed");
        assert_eq!(ids.contains(&(key(1), VariantId(2))), !got.is_empty(), "{name}: scan disagrees with get");
        assert_entries(&ok(store.get(&key(2)), "get"), &[&bystander], &format!("bystander ({name})"));

        corrupt(store, &key(2), VariantId(0), &payload);
        assert!(ok(store.get(&key(2)), "get").is_empty(), "{name}: a lone corrupt record is a miss");
        assert!(
            !meta_ids(&ok(store.scan(), "scan")).iter().any(|(k, _)| *k == key(2)),
            "{name}: still listed"
        );
        assert_eq!(ok(store.remove(&key(2)), "remove"), 0, "{name}: the corrupt record was not deleted");
        // The store still works for that key.
        ok(store.put(&bystander), "put after corruption");
        assert_entries(&ok(store.get(&key(2)), "get"), &[&bystander], "rewritten after corruption");
    }
}

/// [`Inventory::delete_invalid`] removes records whose metadata reads but whose full
/// decode fails, and counts exactly what disappeared from `scan`.
pub fn corrupt_records_are_invalid<S: Store + ?Sized>(
    store: &S,
    corrupt: impl Fn(&S, &CacheKey, VariantId, &[u8]),
) {
    let victim = entry(key(1), 1, body(1, 3000));
    let sibling = entry(key(1), 2, body(2, 300));
    let bystander = entry(key(2), 0, body(3, 30));
    for e in [&victim, &sibling, &bystander] {
        ok(store.put(e), "put");
    }
    let good = victim.encode();
    corrupt(store, &key(1), VariantId(1), &good[..good.len() - 1]);
    let inventory = Inventory::new(store);
    let before = ok(store.scan(), "scan");
    let removed = ok(inventory.delete_invalid(), "delete_invalid");
    let after = ok(store.scan(), "scan");
    assert!(removed <= 1, "{removed} invalid entries reported, one was corrupted");
    assert_eq!(removed, before.len() - after.len(), "delete_invalid counts what left the listing");
    assert!(!meta_ids(&after).contains(&(key(1), VariantId(1))));
    assert!(ok(inventory.list(&Query::new(Filter::Invalid), at(0)), "list").is_empty());
    assert_eq!(ok(inventory.values(), "values").len(), after.len());
    assert_entries(&ok(store.get(&key(2)), "get"), &[&bystander], "bystander");
}

/// One `#[test]` per conformance check for a [`Store`].
///
/// Arguments (closures, written inline):
/// * `store: || -> Fixture<S>` (required): a fresh, empty store with room for an
///   8 MiB entry. Called once per test (twice for the copy check).
/// * `bounded: |max_bytes: u64| -> Fixture<S>` (optional): a fresh store bounded to
///   `max_bytes`; enables `eviction_keeps_byte_bound`.
/// * `corrupt: |store: &S, key: &CacheKey, variant: VariantId, bytes: &[u8]|` (optional):
///   writes `bytes` as the raw record of (`key`, `variant`), replacing that variant's
///   record and keeping the key's other records; enables the two corruption checks.
///
/// Invoke it inside a module of your tests; see the [module docs](crate::conformance).
#[macro_export]
macro_rules! store_conformance {
    (
        store: $store:expr
        $(, bounded: $bounded:expr)?
        $(, corrupt: $corrupt:expr)?
        $(,)?
    ) => {
        $crate::__conformance_tests! { [$store] [|s| s] $(bounded: [$bounded])? }

        #[test]
        fn inventory_copies() {
            let source = ($store)();
            let destination = ($store)();
            $crate::conformance::inventory_copies(&source.store, &destination.store);
        }

        #[test]
        fn read_with_agrees() {
            let fixture = ($store)();
            $crate::conformance::read_with_agrees(&fixture.store);
        }

        $(
            #[test]
            fn corrupt_records_are_misses() {
                let fixture = ($store)();
                $crate::conformance::corrupt_records_are_misses(&fixture.store, $corrupt);
            }

            #[test]
            fn corrupt_records_are_invalid() {
                let fixture = ($store)();
                $crate::conformance::corrupt_records_are_invalid(&fixture.store, $corrupt);
            }
        )?
    };
}

/// One `#[test]` per conformance check for an [`AsyncStore`], driven
/// by a blocking executor through [`BlockOn`]. Same
/// arguments as [`store_conformance!`](crate::store_conformance), with `S` the async
/// store (the `corrupt` hook receives `&S`).
#[macro_export]
macro_rules! async_store_conformance {
    (
        store: $store:expr
        $(, bounded: $bounded:expr)?
        $(, corrupt: $corrupt:expr)?
        $(,)?
    ) => {
        $crate::__conformance_tests! {
            [$store] [|s| $crate::conformance::BlockOn(s)] $(bounded: [$bounded])?
        }

        #[test]
        fn inventory_copies() {
            let source = ($store)();
            let destination = ($store)();
            $crate::conformance::inventory_copies(
                &$crate::conformance::BlockOn(&source.store),
                &$crate::conformance::BlockOn(&destination.store),
            );
        }

        #[test]
        fn read_now_agrees() {
            let fixture = ($store)();
            $crate::conformance::read_now_agrees(&fixture.store);
        }

        #[test]
        fn write_now_agrees() {
            let fixture = ($store)();
            $crate::conformance::write_now_agrees(&fixture.store);
        }

        #[test]
        fn async_inventory() {
            let source = ($store)();
            let destination = ($store)();
            $crate::conformance::async_inventory(&source.store, &destination.store);
        }

        $(
            #[test]
            fn corrupt_records_are_misses() {
                let fixture = ($store)();
                let hook = $crate::conformance::hook_for(&fixture.store, $corrupt);
                $crate::conformance::corrupt_records_are_misses(
                    &$crate::conformance::BlockOn(&fixture.store),
                    |blocking, key, variant, bytes| {
                        hook(blocking.0, key, variant, bytes)
                    },
                );
            }

            #[test]
            fn corrupt_records_are_invalid() {
                let fixture = ($store)();
                let hook = $crate::conformance::hook_for(&fixture.store, $corrupt);
                $crate::conformance::corrupt_records_are_invalid(
                    &$crate::conformance::BlockOn(&fixture.store),
                    |blocking, key, variant, bytes| {
                        hook(blocking.0, key, variant, bytes)
                    },
                );
            }
        )?
    };
}

/// The tests both macros share. `$wrap` turns `&S` into the `Store` the checks drive.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ([$store:expr] [$wrap:expr] $(bounded: [$bounded:expr])?) => {
        $crate::__conformance_tests!(@one $store, $wrap,
            round_trip missing_key_is_empty variants_coexist overwrite_replaces_variant
            remove_counts_variants remove_variant_keeps_others clear_removes_everything
            scan_lists_metadata inventory_lists inventory_deletes concurrent_writers
            refresh_updates_metadata_and_keeps_body refresh_of_a_removed_entry_stores_it_whole
            refresh_never_pairs_headers_with_another_body refresh_is_ordered_with_later_writes
            owned_writes_match_borrowed);

        $(
            #[test]
            fn eviction_keeps_byte_bound() {
                let max_bytes = $crate::conformance::EVICTION_MAX_BYTES;
                let fixture = ($bounded)(max_bytes);
                let store = ($wrap)(&fixture.store);
                $crate::conformance::eviction_keeps_byte_bound(
                    $crate::conformance::AsStore::as_store(&store),
                    max_bytes,
                );
            }
        )?
    };
    (@one $store:expr, $wrap:expr, $($check:ident)*) => {
        $(
            #[test]
            fn $check() {
                let fixture = ($store)();
                let store = ($wrap)(&fixture.store);
                $crate::conformance::$check($crate::conformance::AsStore::as_store(&store));
            }
        )*
    };
}
