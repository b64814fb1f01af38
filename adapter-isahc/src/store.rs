//! The [`DualStore`]s of the constructors: each store crate's blocking store with its
//! async face, so one [`CachedClient`](crate::CachedClient) serves both `send` and
//! `send_async` from one cache.

#[cfg(any(feature = "lmdb", feature = "mem", feature = "fs"))]
use httpcache_core::DualStore;

/// The LMDB store, blocking and async (`LmdbStores::from(store)`).
#[cfg(feature = "lmdb")]
pub type LmdbStores = DualStore<httpcache_lmdb::LmdbStore, httpcache_lmdb::AsyncLmdbStore>;

/// The memory store, blocking and async (inline: its calls never wait);
/// `MemoryStores::from(store)`.
#[cfg(feature = "mem")]
pub type MemoryStores = DualStore<
    std::sync::Arc<httpcache_mem::MemoryStore>,
    httpcache_core::Inline<std::sync::Arc<httpcache_mem::MemoryStore>>,
>;

/// The filesystem store, blocking and async:
/// `DualStore::new(store.clone(), store.into_async())`.
#[cfg(feature = "fs")]
pub type FsStores = DualStore<httpcache_fs::FsStore, httpcache_fs::AsyncFsStore>;
