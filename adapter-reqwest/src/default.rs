//! The ready-made client, like niquests-cache's `cached_session()`: LMDB under the
//! user's cache directory ([`httpcache_lmdb::default_cache_dir`]), a 10 minute default
//! TTL ([`Settings::session`]), and a `no_cache` switch.

use httpcache_core::{AsyncStore, CacheKey, Entry, EntryMeta, Settings, StoreError, VariantId, Variants};
use httpcache_lmdb::{AsyncLmdbStore, DEFAULT_APP_NAME, LmdbStore, default_cache_dir};

use crate::{CachedClient, Error};

/// The store of [`cached_client`]: LMDB, or nothing at all for a `no_cache` client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DefaultStore {
    /// An LMDB environment.
    Lmdb(AsyncLmdbStore),
    /// No storage: every read misses and every write is dropped (a `no_cache` client,
    /// whose cache is also disabled).
    Off,
}

impl AsyncStore for DefaultStore {
    async fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.get(key).await,
            DefaultStore::Off => Ok(Vec::new()),
        }
    }
    fn read_now(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) -> bool {
        match self {
            DefaultStore::Lmdb(store) => store.read_now(key, read),
            DefaultStore::Off => {
                read(Ok(Variants::default()));
                true
            }
        }
    }
    async fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.put(entry).await,
            DefaultStore::Off => Ok(()),
        }
    }
    async fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.refresh(entry).await,
            DefaultStore::Off => Ok(()),
        }
    }
    async fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.remove(key).await,
            DefaultStore::Off => Ok(0),
        }
    }
    async fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.remove_variant(key, variant).await,
            DefaultStore::Off => Ok(false),
        }
    }
    async fn clear(&self) -> Result<(), StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.clear().await,
            DefaultStore::Off => Ok(()),
        }
    }
    async fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.scan().await,
            DefaultStore::Off => Ok(Vec::new()),
        }
    }
    async fn compact(&self) -> Result<(), StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.compact().await,
            DefaultStore::Off => Ok(()),
        }
    }
    async fn flush(&self) -> Result<(), StoreError> {
        match self {
            DefaultStore::Lmdb(store) => store.flush().await,
            DefaultStore::Off => Ok(()),
        }
    }
}

/// A caching client with the defaults: LMDB in [`default_cache_dir`]`("httpcache")`,
/// responses without freshness information kept 10 minutes ([`Settings::session`]).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = httpcache_reqwest::cached_client()?;
/// let body = client.get("http://localhost:8080/").send().await?.text().await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// When there is no user cache directory or the store cannot be opened.
pub fn cached_client() -> Result<CachedClient, Error> {
    cached_client_with(DEFAULT_APP_NAME, false)
}

/// [`cached_client`] for application `app` (the cache lives in [`default_cache_dir`]`(app)`).
/// With `no_cache`, a plain pass-through client: nothing is read or written, and no
/// directory is created.
///
/// # Errors
/// As [`cached_client`] (never with `no_cache`, unless reqwest cannot build a client).
pub fn cached_client_with(app: &str, no_cache: bool) -> Result<CachedClient, Error> {
    let client = reqwest::Client::builder().build()?;
    if no_cache {
        let settings = Settings { disabled: true, ..Settings::default() };
        return Ok(CachedClient::wrap(client, DefaultStore::Off, settings));
    }
    let dir = default_cache_dir(app).ok_or(Error::NoCacheDir)?;
    let store = LmdbStore::open(dir).map_err(StoreError::from)?.into_async();
    Ok(CachedClient::wrap(client, DefaultStore::Lmdb(store), Settings::session()))
}
