//! [`DualStore`]: one store with a blocking and an async face, so one
//! [`CachedClient`](crate::CachedClient) can serve both `send` and `send_async`.

use httpcache_core::{AsyncStore, CacheKey, Entry, EntryMeta, Store, StoreError, VariantId};

/// A store seen two ways: `blocking` answers [`Store`] calls (from
/// [`CachedClient::send`](crate::CachedClient::send)) and `asynchronous` answers
/// [`AsyncStore`] calls (from [`CachedClient::send_async`](crate::CachedClient::send_async)).
/// Both must be views of the same entries, e.g. an `LmdbStore` and its
/// `AsyncLmdbStore`; then both kinds of request share one cache, and identical
/// concurrent misses are coalesced whichever way they were sent.
///
/// ```
/// use httpcache_core::Inline;
/// use httpcache_isahc::DualStore;
/// use httpcache_mem::MemoryStore;
/// use std::sync::Arc;
///
/// let memory = Arc::new(MemoryStore::new(16 << 20));
/// let store = DualStore::new(memory.clone(), Inline(memory));
/// # let _ = store;
/// ```
#[derive(Debug, Clone, Default)]
pub struct DualStore<B, A> {
    blocking: B,
    asynchronous: A,
}

impl<B, A> DualStore<B, A> {
    /// Pairs two views of the same entries.
    pub fn new(blocking: B, asynchronous: A) -> Self {
        DualStore { blocking, asynchronous }
    }

    /// The blocking view.
    pub fn blocking(&self) -> &B {
        &self.blocking
    }

    /// The async view.
    pub fn asynchronous(&self) -> &A {
        &self.asynchronous
    }
}

/// The LMDB store, blocking and async.
#[cfg(feature = "lmdb")]
pub type LmdbStores = DualStore<httpcache_lmdb::LmdbStore, httpcache_lmdb::AsyncLmdbStore>;

#[cfg(feature = "lmdb")]
impl From<httpcache_lmdb::LmdbStore> for LmdbStores {
    fn from(store: httpcache_lmdb::LmdbStore) -> Self {
        DualStore::new(store.clone(), store.into_async())
    }
}

/// The memory store, blocking and async (inline: its calls never wait).
#[cfg(feature = "mem")]
pub type MemoryStores = DualStore<
    std::sync::Arc<httpcache_mem::MemoryStore>,
    httpcache_core::Inline<std::sync::Arc<httpcache_mem::MemoryStore>>,
>;

#[cfg(feature = "mem")]
impl From<httpcache_mem::MemoryStore> for MemoryStores {
    fn from(store: httpcache_mem::MemoryStore) -> Self {
        let store = std::sync::Arc::new(store);
        DualStore::new(store.clone(), httpcache_core::Inline(store))
    }
}

/// The filesystem store, blocking and async.
#[cfg(feature = "fs")]
pub type FsStores = DualStore<httpcache_fs::FsStore, httpcache_fs::AsyncFsStore>;

#[cfg(feature = "fs")]
impl From<httpcache_fs::FsStore> for FsStores {
    fn from(store: httpcache_fs::FsStore) -> Self {
        DualStore::new(store.clone(), store.into_async())
    }
}

impl<B: Store, A: Send + Sync> Store for DualStore<B, A> {
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        self.blocking.get(key)
    }
    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.blocking.put(entry)
    }
    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        self.blocking.remove(key)
    }
    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        self.blocking.remove_variant(key, variant)
    }
    fn clear(&self) -> Result<(), StoreError> {
        self.blocking.clear()
    }
    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        self.blocking.scan()
    }
    fn compact(&self) -> Result<(), StoreError> {
        self.blocking.compact()
    }
}

impl<B: Send + Sync, A: AsyncStore> AsyncStore for DualStore<B, A> {
    async fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        self.asynchronous.get(key).await
    }
    async fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.asynchronous.put(entry).await
    }
    async fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        self.asynchronous.remove(key).await
    }
    async fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        self.asynchronous.remove_variant(key, variant).await
    }
    async fn clear(&self) -> Result<(), StoreError> {
        self.asynchronous.clear().await
    }
    async fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        self.asynchronous.scan().await
    }
    async fn compact(&self) -> Result<(), StoreError> {
        self.asynchronous.compact().await
    }
}
