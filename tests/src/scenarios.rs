//! The adapter × store scenario suite: one set of end-to-end scenarios against the
//! loopback [`Origin`], run for every adapter over every store.
//!
//! An adapter plugs in with an implementation of [`ClientUnderTest`] (an async
//! adapter blocks on its own runtime) and a [`Factory`] building one over a
//! [`TestStore`]; then, in a test file:
//!
//! ```ignore
//! fn new_client(store: &TestStore, settings: Settings) -> Box<dyn ClientUnderTest> {
//!     Box::new(MyClient::new(store.asynchronous(), settings))
//! }
//! httpcache_tests::scenario_tests!(my_adapter, new_client);
//! ```
//!
//! which expands to `my_adapter::<scenario>::{memory, fs, lmdb}`: one `#[test]` per
//! scenario per [`StoreKind`], each with a fresh origin and a fresh store in its own
//! temporary directory.
//!
//! No scenario sleeps to make time pass: entries are made stale with
//! [`Expiry::Immediately`] (per request or in the settings). Only
//! [`stale_while_revalidate_directive`] waits for a real `max-age=1` to run out, by
//! polling with a bound.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use httpcache_core::inventory::Inventory;
use httpcache_core::settings::{MatchHeaders, StaleAllowance, UrlPattern};
use httpcache_core::{
    AsyncStore, CacheKey, CacheStatus, Entry, EntryMeta, Expiry, Inline, RequestOptions, Settings, Store,
    StoreError, VariantId, Variants,
};
use httpcache_fs::{AsyncFsStore, FsStore};
use httpcache_lmdb::{AsyncLmdbStore, LmdbStore};
use httpcache_mem::MemoryStore;

use crate::origin::{ETAG, LAST_MODIFIED, Origin, expected_bytes};

/// Which store a scenario runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// [`MemoryStore`] (64 MiB).
    Memory,
    /// [`FsStore`] in a temporary directory.
    Fs,
    /// [`LmdbStore`] in a temporary directory.
    Lmdb,
}

/// Any of the three stores, as one blocking [`Store`]. Clones share the same entries.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The memory store.
    Memory(Arc<MemoryStore>),
    /// The filesystem store.
    Fs(FsStore),
    /// The LMDB store.
    Lmdb(LmdbStore),
}

macro_rules! each_store {
    ($value:expr, $store:ident => $body:expr) => {
        match $value {
            AnyStore::Memory($store) => $body,
            AnyStore::Fs($store) => $body,
            AnyStore::Lmdb($store) => $body,
        }
    };
}

impl Store for AnyStore {
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        each_store!(self, store => store.get(key))
    }
    fn read_with(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) {
        each_store!(self, store => store.read_with(key, read))
    }
    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        each_store!(self, store => store.put(entry))
    }
    fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        each_store!(self, store => store.refresh(entry))
    }
    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        each_store!(self, store => store.remove(key))
    }
    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        each_store!(self, store => store.remove_variant(key, variant))
    }
    fn clear(&self) -> Result<(), StoreError> {
        each_store!(self, store => store.clear())
    }
    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        each_store!(self, store => store.scan())
    }
    fn compact(&self) -> Result<(), StoreError> {
        each_store!(self, store => store.compact())
    }
    fn flush(&self) -> Result<(), StoreError> {
        each_store!(self, store => store.flush())
    }
}

/// Any of the three stores, as one [`AsyncStore`] (each store's own async flavour).
#[derive(Debug, Clone)]
pub enum AnyAsyncStore {
    /// The memory store, inline.
    Memory(Inline<Arc<MemoryStore>>),
    /// The filesystem store.
    Fs(AsyncFsStore),
    /// The LMDB store.
    Lmdb(AsyncLmdbStore),
}

macro_rules! each_async_store {
    ($value:expr, $store:ident => $body:expr) => {
        match $value {
            AnyAsyncStore::Memory($store) => $body,
            AnyAsyncStore::Fs($store) => $body,
            AnyAsyncStore::Lmdb($store) => $body,
        }
    };
}

impl AsyncStore for AnyAsyncStore {
    async fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        each_async_store!(self, store => store.get(key).await)
    }
    fn read_now(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) -> bool {
        each_async_store!(self, store => store.read_now(key, read))
    }
    fn write_now(&self) -> Option<&dyn httpcache_core::Store> {
        each_async_store!(self, store => store.write_now())
    }
    async fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        each_async_store!(self, store => store.put(entry).await)
    }
    async fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        each_async_store!(self, store => store.refresh(entry).await)
    }
    async fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        each_async_store!(self, store => store.remove(key).await)
    }
    async fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        each_async_store!(self, store => store.remove_variant(key, variant).await)
    }
    async fn clear(&self) -> Result<(), StoreError> {
        each_async_store!(self, store => store.clear().await)
    }
    async fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        each_async_store!(self, store => store.scan().await)
    }
    async fn compact(&self) -> Result<(), StoreError> {
        each_async_store!(self, store => store.compact().await)
    }
    async fn flush(&self) -> Result<(), StoreError> {
        each_async_store!(self, store => store.flush().await)
    }
}

/// A fresh store for one scenario, in its own temporary directory (removed on drop).
#[derive(Debug)]
pub struct TestStore {
    kind: StoreKind,
    store: AnyStore,
    dir: tempfile::TempDir,
}

impl TestStore {
    /// Opens a fresh store of `kind`.
    ///
    /// # Panics
    /// When the temporary directory or the store cannot be created (setup failures).
    pub fn new(kind: StoreKind) -> TestStore {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("cache");
        let store = match kind {
            StoreKind::Memory => AnyStore::Memory(Arc::new(MemoryStore::new(64 << 20))),
            StoreKind::Fs => AnyStore::Fs(FsStore::open(&path).expect("open the fs store")),
            StoreKind::Lmdb => AnyStore::Lmdb(LmdbStore::open(&path).expect("open the lmdb store")),
        };
        TestStore { kind, store, dir }
    }

    /// Which store this is.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The store, blocking (a clone sharing the entries).
    pub fn blocking(&self) -> AnyStore {
        self.store.clone()
    }

    /// The store, async (a clone sharing the entries).
    pub fn asynchronous(&self) -> AnyAsyncStore {
        match &self.store {
            AnyStore::Memory(store) => AnyAsyncStore::Memory(Inline(store.clone())),
            AnyStore::Fs(store) => AnyAsyncStore::Fs(store.clone().into_async()),
            AnyStore::Lmdb(store) => AnyAsyncStore::Lmdb(store.clone().into_async()),
        }
    }

    /// The temporary directory the store lives in (empty for the memory store).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every stored entry.
    pub fn entries(&self) -> Vec<Entry> {
        Inventory::new(&self.store).values().expect("read the store")
    }

    /// Whether `needle` occurs anywhere in what is stored: in every file under the
    /// store's directory (fs, LMDB) and in the encoding of every entry (all stores).
    pub fn stored_bytes_contain(&self, needle: &[u8]) -> bool {
        let found = |haystack: &[u8]| haystack.windows(needle.len()).any(|window| window == needle);
        let mut pending = vec![self.dir.path().to_path_buf()];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                if let Ok(read) = std::fs::read_dir(&path) {
                    pending.extend(read.flatten().map(|entry| entry.path()));
                }
            } else if std::fs::read(&path).is_ok_and(|bytes| found(&bytes)) {
                return true;
            }
        }
        self.entries().iter().any(|entry| found(&entry.encode()) || found(&entry.to_json()))
    }
}

/// A response as a scenario sees it.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
    /// The headers (including `Cache-Status`).
    pub headers: HeaderMap,
    /// The cache's account of the response, from its extensions.
    pub cache: CacheStatus,
    /// The response's URL as the client reports it (the final URL after redirects).
    pub url: String,
}

impl Fetched {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Something held for its `Drop` (a scoped disable guard).
pub trait Guard {}
impl<T> Guard for T {}

/// A cached client, as the scenarios drive it. Implementations block: an async
/// adapter runs each call on its own runtime (a multi-threaded one, so background
/// revalidations keep running between calls). Calls come from several threads at
/// once in [`coalescing`].
pub trait ClientUnderTest: Send + Sync {
    /// GET `url` with per-request `options` and extra request `headers`; the body is read whole.
    /// `Err` is a transport error (connection refused...), as text.
    fn get(&self, url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Fetched, String>;
    /// POST `body` to `url`.
    fn post(&self, url: &str, body: &[u8]) -> Result<Fetched, String>;
    /// Changes the client's settings at runtime.
    fn update_settings(&self, change: &dyn Fn(&mut Settings));
    /// Disables the cache until the returned guard is dropped.
    fn disable(&self) -> Box<dyn Guard + '_>;
    /// Waits, at most `timeout`, for the client's background (stale-while-revalidate)
    /// revalidations, through the adapter's own call for it; whether none is left.
    fn wait_for_revalidations(&self, timeout: Duration) -> bool;
}

/// Builds a client under test over `store` with `settings`.
pub type Factory = fn(&TestStore, Settings) -> Box<dyn ClientUnderTest>;

/// What each scenario starts with.
pub struct Setup {
    /// A fresh origin.
    pub origin: Origin,
    /// A fresh store.
    pub store: TestStore,
    /// The client under test, over `store`.
    pub client: Box<dyn ClientUnderTest>,
}

impl Setup {
    /// A fresh origin, a fresh store of `kind` and a client over it.
    pub fn new(factory: Factory, kind: StoreKind, settings: Settings) -> Setup {
        let origin = Origin::start();
        let store = TestStore::new(kind);
        let client = factory(&store, settings);
        Setup { origin, store, client }
    }

    /// GET `path` on the origin with default options and no extra headers.
    pub fn get(&self, path: &str) -> Fetched {
        self.get_with(path, RequestOptions::default(), &[])
    }

    /// GET `path` on the origin.
    ///
    /// # Panics
    /// On a transport error.
    pub fn get_with(&self, path: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Fetched {
        let url = self.origin.url(path);
        self.client.get(&url, options, headers).unwrap_or_else(|error| panic!("GET {url}: {error}"))
    }
}

fn options(change: impl FnOnce(&mut RequestOptions)) -> RequestOptions {
    let mut options = RequestOptions::default();
    change(&mut options);
    options
}

fn immediately() -> RequestOptions {
    options(|o| o.expire_after = Some(Expiry::Immediately))
}

/// Polls `condition` every 20 ms for at most 10 s; `false` if it never held.
pub fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    #[allow(clippy::disallowed_methods)] // a bounded wait in a test, not the cache's clock
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if condition() {
            return true;
        }
        #[allow(clippy::disallowed_methods)]
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_miss_stored(fetched: &Fetched) {
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert!(!fetched.cache.from_cache, "a miss comes from the origin: {:?}", fetched.cache);
    assert!(fetched.cache.stored, "the response is stored: {:?}", fetched.cache);
}

fn assert_hit(fetched: &Fetched) {
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert!(fetched.cache.from_cache && !fetched.cache.revalidated, "a hit: {:?}", fetched.cache);
    let header = fetched.headers.get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(header.starts_with("httpcache; hit"), "Cache-Status on a hit: {header:?}");
    assert!(fetched.headers.contains_key("age"), "a hit carries Age");
}

/// A miss is stored; the same request is then served without touching the origin.
pub fn miss_then_hit(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    let first = setup.get("/max-age/60");
    assert_miss_stored(&first);
    assert_eq!(first.text(), "max-age=60 hit 1");
    let second = setup.get("/max-age/60");
    assert_hit(&second);
    assert_eq!(second.text(), "max-age=60 hit 1");
    assert_eq!(setup.origin.hits("/max-age/60"), 1);
    assert!(second.cache.cache_key.is_some() && second.cache.cache_key == first.cache.cache_key);
    assert!(second.cache.expires.is_some() && !second.cache.is_expired);
    assert_eq!(setup.store.entries().len(), 1);
    // `no-store` is never stored, `Expires` is honoured.
    assert!(!setup.get("/no-store").cache.stored);
    assert!(!setup.get("/no-store").cache.from_cache);
    assert_eq!(setup.origin.hits("/no-store"), 2);
    setup.get("/expires/60");
    assert_hit(&setup.get("/expires/60"));
    assert_eq!(setup.origin.hits("/expires/60"), 1);
}

/// `no-cache` + `ETag`: every use is revalidated with `If-None-Match`; a 304 serves the stored body.
pub fn revalidate_etag(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    assert_miss_stored(&setup.get("/etag"));
    let second = setup.get("/etag");
    assert_eq!(second.status, 200);
    assert!(second.cache.from_cache && second.cache.revalidated, "{:?}", second.cache);
    assert_eq!(second.text(), "etag v1");
    assert_eq!(setup.origin.hits("/etag"), 2);
    let sent = setup.origin.last_request_headers("/etag").unwrap_or_default();
    assert_eq!(sent.get("if-none-match").map(|v| v.as_bytes()), Some(ETAG.as_bytes()));
}

/// RFC 9111 §4.3.4: a 304 whose `ETag` selects no stored response updates nothing; the
/// request is sent again without its conditions, and the full response it gets is
/// served and stored.
pub fn revalidate_304_selecting_nothing(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    assert_miss_stored(&setup.get("/etag-changed"));
    let second = setup.get("/etag-changed");
    assert_eq!(second.status, 200);
    // Hits: the first request, the conditional one (answered 304, `"v2"`), the retry.
    assert_eq!(setup.origin.hits("/etag-changed"), 3);
    assert_eq!(second.text(), "etag-changed hit 3", "the retry's response, not the stored one");
    assert!(!second.cache.from_cache, "{:?}", second.cache);
    let sent = setup.origin.last_request_headers("/etag-changed").unwrap_or_default();
    assert!(!sent.contains_key("if-none-match"), "the retry is unconditional: {sent:?}");
    // The retry's response replaced the stored one (its writes may land after the
    // response, in a write-behind store).
    let stored = || {
        let entries = setup.store.entries();
        entries.len() == 1
            && entries[0].response.body.as_ref() == b"etag-changed hit 3"
            && entries[0].response.headers.get("etag").is_some_and(|tag| tag == "\"v3\"")
    };
    assert!(eventually(stored), "{:?}", setup.store.entries());
}

/// `Last-Modified`: a stale entry (per-request `Expiry::Immediately`) is revalidated with `If-Modified-Since`.
pub fn revalidate_last_modified(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    assert_miss_stored(&setup.get("/last-modified"));
    // Heuristic freshness (10% of the time since Last-Modified) makes it a hit...
    assert_hit(&setup.get("/last-modified"));
    // ...unless this request says it is stale at once.
    let revalidated = setup.get_with("/last-modified", immediately(), &[]);
    assert!(revalidated.cache.revalidated, "{:?}", revalidated.cache);
    assert_eq!(revalidated.text(), "last-modified v1");
    assert_eq!(setup.origin.hits("/last-modified"), 2);
    let sent = setup.origin.last_request_headers("/last-modified").unwrap_or_default();
    assert_eq!(sent.get("if-modified-since").map(|v| v.as_bytes()), Some(LAST_MODIFIED.as_bytes()));
}

/// RFC 9111 §4.3.2: the client's own conditional GET is answered from a fresh stored
/// response, a 304 when the client's copy is current and the stored 200 when it is not,
/// without asking the origin; with a stored response that must be revalidated, the
/// request goes to the origin as the client made it, and its 304 comes back as it is.
pub fn client_conditional(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    let none = RequestOptions::default();
    // Fresh by the heuristic (10% of the time since its Last-Modified).
    assert_miss_stored(&setup.get("/last-modified"));
    let current = setup.get_with("/last-modified", none, &[("if-modified-since", LAST_MODIFIED)]);
    assert_eq!(current.status, 304, "{:?}", current.cache);
    assert!(current.body.is_empty() && current.cache.from_cache);
    assert_eq!(current.headers.get("last-modified").map(|v| v.as_bytes()), Some(LAST_MODIFIED.as_bytes()));
    let older = "Sun, 01 Jan 2023 00:00:00 GMT";
    let outdated = setup.get_with("/last-modified", none, &[("if-modified-since", older)]);
    assert_eq!((outdated.status, outdated.text().as_str()), (200, "last-modified v1"));
    assert!(outdated.cache.from_cache);
    assert_eq!(setup.origin.hits("/last-modified"), 1, "answered from the cache");
    // `no-cache`: every use needs the origin, so the client's request goes there as it is.
    assert_miss_stored(&setup.get("/etag"));
    let forwarded = setup.get_with("/etag", none, &[("if-none-match", ETAG)]);
    assert_eq!(forwarded.status, 304);
    assert!(!forwarded.cache.from_cache, "the origin's own answer: {:?}", forwarded.cache);
    assert_eq!(setup.origin.hits("/etag"), 2);
    let sent = setup.origin.last_request_headers("/etag").unwrap_or_default();
    assert_eq!(sent.get("if-none-match").map(|v| v.as_bytes()), Some(ETAG.as_bytes()));
    // The stored response is still served in full to a request without preconditions.
    let full = setup.get("/etag");
    assert_eq!((full.status, full.text().as_str()), (200, "etag v1"));
}

/// Expiry from the settings (changed at runtime), from URL patterns, and per request.
pub fn expiry_settings_patterns_and_per_request(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    // No freshness information and no validator: never stored by default.
    assert!(!setup.get("/status/200").cache.stored);
    assert!(!setup.get("/status/200").cache.from_cache);
    assert_eq!(setup.origin.hits("/status/200"), 2);
    // Session expiry.
    setup.client.update_settings(&|s| s.expire_after = Some(Expiry::After(Duration::from_secs(60))));
    assert_miss_stored(&setup.get("/status/200"));
    assert_hit(&setup.get("/status/200"));
    assert_eq!(setup.origin.hits("/status/200"), 3);
    // URL patterns beat the session expiry.
    let pattern = format!("{}/status/*", setup.origin.addr());
    setup.client.update_settings(&|s| {
        s.expire_after = Some(Expiry::DoNotCache);
        s.urls_expire_after = vec![(UrlPattern::new(pattern.clone()), Expiry::Never)];
    });
    assert_miss_stored(&setup.get("/status/200?pattern"));
    let hit = setup.get("/status/200?pattern");
    assert_hit(&hit);
    assert_eq!(hit.cache.expires, None, "Expiry::Never");
    assert!(!setup.get("/last-modified").cache.stored, "DoNotCache beats the heuristic");
    // Per request: beats the settings, and a later request's expiry makes it stale.
    let per_request = options(|o| o.expire_after = Some(Expiry::After(Duration::from_secs(60))));
    setup.client.update_settings(&|s| s.urls_expire_after.clear());
    assert_miss_stored(&setup.get_with("/status/200?request", per_request, &[]));
    assert_hit(&setup.get("/status/200?request"));
    let before = setup.origin.hits("/status/200");
    let refetched = setup.get_with("/status/200?request", immediately(), &[]);
    assert!(!refetched.cache.from_cache);
    assert_eq!(setup.origin.hits("/status/200"), before + 1);
}

/// only-if-cached: a 504 without touching the origin on a miss; the stored response otherwise.
pub fn only_if_cached(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    let only = options(|o| o.only_if_cached = true);
    let miss = setup.get_with("/max-age/60", only, &[]);
    assert_eq!(miss.status, 504);
    assert!(!miss.cache.from_cache);
    assert_eq!(setup.origin.total_hits(), 0);
    setup.get("/max-age/60");
    let hit = setup.get_with("/max-age/60", only, &[]);
    assert_eq!((hit.status, hit.text().as_str()), (200, "max-age=60 hit 1"));
    assert!(hit.cache.from_cache);
    // Even when this request would not accept it as fresh, rather than asking the origin.
    let stale = setup.get_with(
        "/max-age/60",
        options(|o| {
            o.only_if_cached = true;
            o.expire_after = Some(Expiry::Immediately)
        }),
        &[],
    );
    assert!(stale.cache.from_cache);
    assert_eq!(setup.origin.hits("/max-age/60"), 1);
}

/// refresh revalidates before use; force_refresh skips the read and overwrites the entry.
pub fn refresh_and_force_refresh(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    setup.get("/max-age/60");
    let refreshed = setup.get_with("/max-age/60", options(|o| o.refresh = true), &[]);
    assert_eq!(refreshed.text(), "max-age=60 hit 2", "refresh asked the origin");
    assert!(!refreshed.cache.from_cache);
    assert_eq!(setup.get("/max-age/60").text(), "max-age=60 hit 2", "and stored its answer");
    // refresh with a validator: a 304.
    setup.get("/etag");
    let revalidated = setup.get_with("/etag", options(|o| o.refresh = true), &[]);
    assert!(revalidated.cache.revalidated);
    // force_refresh: no conditional request, the entry is overwritten.
    let forced = setup.get_with("/max-age/60", options(|o| o.force_refresh = true), &[]);
    assert_eq!(forced.text(), "max-age=60 hit 3");
    assert!(!forced.cache.from_cache && forced.cache.stored);
    let after = setup.get("/max-age/60");
    assert_hit(&after);
    assert_eq!(after.text(), "max-age=60 hit 3");
    let forced_etag = setup.get_with("/etag", options(|o| o.force_refresh = true), &[]);
    assert!(!forced_etag.cache.revalidated);
    let sent = setup.origin.last_request_headers("/etag").unwrap_or_default();
    assert!(!sent.contains_key("if-none-match"), "force_refresh sends no validator");
    assert_eq!(setup.origin.hits("/max-age/60"), 3);
}

/// stale-if-error: a stale response stands in for a 500 (the origin's directive); without it, the 503 is returned.
pub fn stale_if_error_on_server_error(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    assert_miss_stored(&setup.get("/stale-if-error"));
    setup.origin.set_failing("/stale-if-error", true);
    let stale = setup.get_with("/stale-if-error", immediately(), &[]);
    assert_eq!((stale.status, stale.text().as_str()), (200, "stale-if-error hit 1"));
    assert!(stale.cache.from_cache && stale.cache.stale, "{:?}", stale.cache);
    assert_eq!(setup.origin.hits("/stale-if-error"), 2, "the origin was asked");
    // No stale-if-error: the error is the answer.
    setup.get("/max-age/60");
    setup.origin.set_failing("/max-age/60", true);
    let error = setup.get_with("/max-age/60", immediately(), &[]);
    assert_eq!(error.status, 503);
    assert!(!error.cache.from_cache);
    // The setting allows it for any response.
    setup.client.update_settings(&|s| s.stale_if_error = StaleAllowance::Always);
    let stale = setup.get_with("/max-age/60", immediately(), &[]);
    assert_eq!((stale.status, stale.text().as_str()), (200, "max-age=60 hit 1"));
}

/// stale-if-error when the origin cannot be reached at all (connection refused).
pub fn stale_if_error_on_refused_connection(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    setup.get("/stale-if-error");
    setup.get("/max-age/60");
    let never_stored = setup.origin.url("/max-age/61");
    setup.origin.stop();
    let stale = setup.get_with("/stale-if-error", immediately(), &[]);
    assert_eq!((stale.status, stale.text().as_str()), (200, "stale-if-error hit 1"));
    assert!(stale.cache.stale);
    let error = setup.client.get(&setup.origin.url("/max-age/60"), immediately(), &[]);
    assert!(error.is_err(), "no stale-if-error: the transport error surfaces: {error:?}");
    assert!(setup.client.get(&never_stored, RequestOptions::default(), &[]).is_err());
    assert_hit(&setup.get("/max-age/60"));
}

/// stale-while-revalidate (by the settings): the stale response returns at once, even
/// from a slow origin; the background revalidation then lands in the store.
pub fn stale_while_revalidate(factory: Factory, kind: StoreKind) {
    let settings = Settings {
        cache_control: false,
        expire_after: Some(Expiry::Immediately),
        stale_while_revalidate: StaleAllowance::Always,
        ..Settings::default()
    };
    let setup = Setup::new(factory, kind, settings);
    assert_eq!(setup.get("/slow/1500").text(), "slow hit 1");
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let stale = setup.get("/slow/1500");
    let took = started.elapsed();
    assert_eq!(stale.text(), "slow hit 1");
    assert!(stale.cache.from_cache && stale.cache.stale, "{:?}", stale.cache);
    assert!(took < Duration::from_millis(1000), "served without waiting for the origin: {took:?}");
    // The adapter's wait returns once the revalidation has landed, and not before: a
    // short-lived program calls it before exiting.
    assert!(setup.client.wait_for_revalidations(Duration::from_secs(30)), "the revalidation ended");
    assert_eq!(setup.origin.hits("/slow/1500"), 2, "the background revalidation was sent");
    let landed = setup.store.entries().iter().any(|entry| entry.response.body.as_ref() == b"slow hit 2");
    assert!(landed, "the background revalidation was stored by the time the wait returned");
}

/// stale-while-revalidate from the origin's directive (`max-age=1, stale-while-revalidate=600`).
pub fn stale_while_revalidate_directive(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    assert_miss_stored(&setup.get("/swr"));
    // The one real wait of the suite: until max-age=1 runs out (only-if-cached never asks the origin).
    let stale = || setup.get_with("/swr", options(|o| o.only_if_cached = true), &[]).cache.stale;
    assert!(eventually(stale), "the entry goes stale");
    let served = setup.get("/swr");
    assert_eq!(served.text(), "swr hit 1");
    assert!(served.cache.stale && served.cache.from_cache);
    assert!(setup.client.wait_for_revalidations(Duration::from_secs(30)), "the revalidation ended");
    let landed = setup.store.entries().iter().any(|entry| entry.response.body.as_ref() == b"swr hit 2");
    assert!(landed, "the background revalidation was stored by the time the wait returned");
    assert_eq!(setup.origin.hits("/swr"), 2);
}

/// Ignored parameters (`api_key`, `X-API-Key`) stay out of the key and out of the stored bytes.
pub fn ignored_parameters(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    let first = setup.get_with(
        "/echo-query?q=1&api_key=QUERYSECRET1",
        RequestOptions::default(),
        &[("x-api-key", "HEADERSECRET")],
    );
    assert_miss_stored(&first);
    assert_eq!(first.text(), "query names: q,api_key");
    let second = setup.get("/echo-query?api_key=QUERYSECRET2&q=1");
    assert_hit(&second);
    assert_eq!(setup.origin.hits("/echo-query"), 1);
    let sent = setup.origin.last_request_headers("/echo-query").unwrap_or_default();
    assert_eq!(
        sent.get("x-api-key").map(|v| v.as_bytes()),
        Some(&b"HEADERSECRET"[..]),
        "the origin got the secret"
    );
    for secret in ["QUERYSECRET1", "QUERYSECRET2", "HEADERSECRET"] {
        assert!(!setup.store.stored_bytes_contain(secret.as_bytes()), "{secret} reached the store");
    }
    let entries = setup.store.entries();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].request.url.contains("q=1"), "{}", entries[0].request.url);
    // A parameter that is not ignored is part of the key.
    assert_miss_stored(&setup.get("/echo-query?q=2"));
}

/// match_headers: the listed request headers are part of the key.
pub fn match_headers(factory: Factory, kind: StoreKind) {
    let settings = Settings {
        match_headers: MatchHeaders::List(vec![http::HeaderName::from_static("x-tenant")]),
        ..Settings::default()
    };
    let setup = Setup::new(factory, kind, settings);
    let none = RequestOptions::default();
    assert_miss_stored(&setup.get_with("/max-age/60", none, &[("x-tenant", "a")]));
    assert_miss_stored(&setup.get_with("/max-age/60", none, &[("x-tenant", "b")]));
    let a = setup.get_with("/max-age/60", none, &[("x-tenant", "a")]);
    assert_hit(&a);
    assert_eq!(a.text(), "max-age=60 hit 1");
    assert_eq!(setup.get_with("/max-age/60", none, &[("x-tenant", "b")]).text(), "max-age=60 hit 2");
    // Other headers are not.
    assert_hit(&setup.get_with("/max-age/60", none, &[("x-tenant", "a"), ("x-other", "z")]));
    assert_eq!(setup.origin.hits("/max-age/60"), 2);
}

/// match_headers listing `Authorization`, one of the ignored parameters: the key holds
/// its value (hashed), so a response with `Vary: Authorization` is stored for each user
/// and served to that user alone (RFC 9111 §4.1), and no token reaches the store.
pub fn match_headers_redacted_vary(factory: Factory, kind: StoreKind) {
    let settings = Settings {
        match_headers: MatchHeaders::List(vec![http::header::AUTHORIZATION]),
        ..Settings::default()
    };
    let setup = Setup::new(factory, kind, settings);
    let none = RequestOptions::default();
    let route = "/vary/authorization";
    let users = [("alice", "Bearer alice-TOKENSECRETA"), ("bob", "Bearer bob-TOKENSECRETB")];
    for (user, token) in users {
        let fetched = setup.get_with(route, none, &[("authorization", token)]);
        assert_miss_stored(&fetched);
        assert_eq!(fetched.text(), format!("hello {user}"));
    }
    for (user, token) in users.iter().rev() {
        let fetched = setup.get_with(route, none, &[("authorization", token)]);
        assert_hit(&fetched);
        assert_eq!(fetched.text(), format!("hello {user}"));
    }
    assert_eq!(setup.origin.hits(route), 2);
    for secret in ["TOKENSECRETA", "TOKENSECRETB"] {
        assert!(!setup.store.stored_bytes_contain(secret.as_bytes()), "{secret} reached the store");
    }
}

/// Vary: variants for different `Accept` / `Accept-Language` values live side by side.
pub fn vary_variants(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    let none = RequestOptions::default();
    for (route, name) in [("/vary/accept", "accept"), ("/vary/accept-language", "accept-language")] {
        for value in ["text/plain", "application/json"] {
            let fetched = setup.get_with(route, none, &[(name, value)]);
            assert_miss_stored(&fetched);
            assert_eq!(fetched.text(), format!("{name}={value}"));
        }
        for value in ["application/json", "text/plain"] {
            let fetched = setup.get_with(route, none, &[(name, value)]);
            assert_hit(&fetched);
            assert_eq!(fetched.text(), format!("{name}={value}"));
        }
        assert_eq!(setup.origin.hits(route), 2);
    }
    assert_eq!(setup.store.entries().len(), 4);
}

/// read_only: reads the cache, never writes it.
pub fn read_only(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings { read_only: true, ..Settings::default() });
    assert!(!setup.get("/max-age/60").cache.stored);
    assert!(!setup.get("/max-age/60").cache.from_cache);
    assert!(setup.store.entries().is_empty());
    setup.client.update_settings(&|s| s.read_only = false);
    assert_miss_stored(&setup.get("/max-age/60"));
    setup.client.update_settings(&|s| s.read_only = true);
    assert_hit(&setup.get("/max-age/60"));
    // A forced refresh in read-only mode does not overwrite.
    setup.get_with("/max-age/60", options(|o| o.force_refresh = true), &[]);
    assert_eq!(setup.get("/max-age/60").text(), "max-age=60 hit 3");
}

/// disabled (in the settings and through the scoped guard): the cache is bypassed.
pub fn disabled(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings { disabled: true, ..Settings::default() });
    let bypassed = setup.get("/max-age/60");
    assert!(!bypassed.cache.from_cache && !bypassed.cache.stored);
    setup.get("/max-age/60");
    assert_eq!(setup.origin.hits("/max-age/60"), 2);
    assert!(setup.store.entries().is_empty());
    setup.client.update_settings(&|s| s.disabled = false);
    assert_miss_stored(&setup.get("/max-age/60"));
    {
        let _guard = setup.client.disable();
        let bypassed = setup.get("/max-age/60");
        assert!(!bypassed.cache.from_cache, "disabled while the guard lives");
        assert_eq!(bypassed.text(), "max-age=60 hit 4");
    }
    let hit = setup.get("/max-age/60");
    assert_hit(&hit);
    assert_eq!(hit.text(), "max-age=60 hit 3", "enabled again, the entry untouched");
}

/// Concurrent identical misses are coalesced: one origin request.
pub fn coalescing(factory: Factory, kind: StoreKind) {
    const CLIENTS: usize = 8;
    let setup = Setup::new(factory, kind, Settings::default());
    let url = setup.origin.url("/slow/300");
    let barrier = Barrier::new(CLIENTS);
    let results: Vec<Result<Fetched, String>> = std::thread::scope(|scope| {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    setup.client.get(&url, RequestOptions::default(), &[])
                })
            })
            .collect();
        tasks.into_iter().map(|task| task.join().unwrap_or_else(|_| Err("panicked".into()))).collect()
    });
    let results: Vec<Fetched> = results.into_iter().map(|r| r.expect("GET /slow/300")).collect();
    assert!(results.iter().all(|r| r.status == 200 && r.text() == "slow hit 1"), "{results:?}");
    assert_eq!(setup.origin.hits("/slow/300"), 1, "coalesced into one origin request");
    assert_eq!(results.iter().filter(|r| r.cache.from_cache).count(), CLIENTS - 1);
}

/// Redirects: the entry is keyed by the asked URL and remembers the final URL; asking
/// for the final URL directly is a hit too.
pub fn redirects(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    let target = setup.origin.url("/redirect-target");
    let first = setup.get("/redirect/302/2");
    assert_miss_stored(&first);
    assert_eq!(first.text(), "redirect target hit 1");
    assert_eq!(first.url, target);
    let second = setup.get("/redirect/302/2");
    assert_hit(&second);
    assert_eq!(second.url, target, "the final URL is remembered");
    assert_eq!(setup.origin.hits("/redirect/302/2"), 1);
    let direct = setup.get("/redirect-target");
    assert_hit(&direct);
    assert_eq!(direct.url, target);
    assert_eq!(setup.origin.hits("/redirect-target"), 1);
    // A permanent redirect is followed and cached the same way.
    assert_miss_stored(&setup.get("/redirect/308/1"));
    assert_hit(&setup.get("/redirect/308/1"));
}

/// A body larger than max_entry_bytes is returned whole and not stored, with or without `Content-Length`.
pub fn too_large(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings { max_entry_bytes: 100_000, ..Settings::default() });
    for route in ["/bytes/300000", "/stream/300000"] {
        for _ in 0..2 {
            let fetched = setup.get(route);
            assert_eq!(fetched.status, 200);
            assert!(fetched.body.as_ref() == expected_bytes(300_000).as_slice(), "{route}: the whole body");
            assert!(!fetched.cache.stored && !fetched.cache.from_cache, "{route}: {:?}", fetched.cache);
        }
        assert_eq!(setup.origin.hits(route), 2);
    }
    for route in ["/bytes/50000", "/stream/50000"] {
        assert_miss_stored(&setup.get(route));
        let hit = setup.get(route);
        assert_hit(&hit);
        assert!(hit.body.as_ref() == expected_bytes(50_000).as_slice());
    }
    assert_eq!(setup.store.entries().len(), 2);
}

/// A successful POST invalidates the stored GET for its URL (RFC 9111 §4.4).
pub fn post_invalidates(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    setup.get("/max-age/60");
    assert_hit(&setup.get("/max-age/60"));
    let url = setup.origin.url("/max-age/60");
    let posted = setup.client.post(&url, b"form=1").expect("POST");
    assert_eq!(posted.status, 200);
    assert!(!posted.cache.stored && !posted.cache.from_cache);
    let after = setup.get("/max-age/60");
    assert_eq!(after.text(), "max-age=60 hit 3", "the stored GET was invalidated");
    assert!(!after.cache.from_cache);
    // A failed POST invalidates nothing.
    let failing = setup.origin.url("/status/500");
    setup.get("/max-age/61");
    setup.client.post(&failing, b"x").expect("POST");
    assert_hit(&setup.get("/max-age/61"));
}

/// Set-Cookie responses are stored by a private cache (the default), cookie included.
pub fn set_cookie_private(factory: Factory, kind: StoreKind) {
    let setup = Setup::new(factory, kind, Settings::default());
    let first = setup.get("/set-cookie");
    assert_miss_stored(&first);
    let hit = setup.get("/set-cookie");
    assert_hit(&hit);
    let cookie = hit.headers.get("set-cookie").map(|v| v.as_bytes().to_vec());
    assert_eq!(cookie.as_deref(), Some(&b"session=cookie-secret; Path=/"[..]));
    assert_eq!(setup.origin.hits("/set-cookie"), 1);
}

/// Expands to one `#[test]` per scenario per store kind:
/// `$module::<scenario>::{memory, fs, lmdb}`. `$factory` is a [`Factory`]
/// (a path or a non-capturing closure) visible where the macro is called.
#[macro_export]
macro_rules! scenario_tests {
    ($module:ident, $factory:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::scenario_tests!(@each $factory;
                miss_then_hit, revalidate_etag, revalidate_304_selecting_nothing, revalidate_last_modified,
                client_conditional,
                expiry_settings_patterns_and_per_request, only_if_cached, refresh_and_force_refresh,
                stale_if_error_on_server_error, stale_if_error_on_refused_connection,
                stale_while_revalidate, stale_while_revalidate_directive, ignored_parameters,
                match_headers, match_headers_redacted_vary, vary_variants, read_only, disabled, coalescing, redirects, too_large,
                post_invalidates, set_cookie_private
            );
        }
    };
    (@each $factory:expr; $($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[allow(unused_imports)]
                use super::*;
                #[test]
                fn memory() {
                    $crate::scenarios::$scenario($factory, $crate::scenarios::StoreKind::Memory);
                }
                #[test]
                fn fs() {
                    $crate::scenarios::$scenario($factory, $crate::scenarios::StoreKind::Fs);
                }
                #[test]
                fn lmdb() {
                    $crate::scenarios::$scenario($factory, $crate::scenarios::StoreKind::Lmdb);
                }
            }
        )*
    };
}
