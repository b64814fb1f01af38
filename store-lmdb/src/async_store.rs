//! [`AsyncLmdbStore`]: the [`AsyncStore`] over an [`LmdbStore`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use httpcache_core::{AsyncStore, CacheKey, Entry, EntryMeta, StoreError, VariantId, Variants};

use crate::error::LmdbError;
use crate::records::PreparedEntry;
use crate::store::LmdbStore;

/// An [`AsyncStore`] over an [`LmdbStore`], for any executor.
///
/// Reads (`get`) run inline on the calling task: an LMDB read transaction never waits
/// for writers and takes microseconds. A refresh is queued on the calling task and
/// written behind (see [`Store::flush`](httpcache_core::Store::flush)). Everything
/// that can wait — writes, which queue on LMDB's single-writer lock (possibly held by
/// another process) and may `fsync`, and full scans — runs on the executor-agnostic
/// thread pool of the [`blocking`] crate, so it never stalls the executor. The entry
/// is encoded on the calling task before its write is handed over.
#[derive(Debug, Clone)]
pub struct AsyncLmdbStore {
    store: LmdbStore,
}

impl AsyncLmdbStore {
    /// Wraps a store.
    pub fn new(store: LmdbStore) -> AsyncLmdbStore {
        AsyncLmdbStore { store }
    }

    /// Opens the store in directory `path` with default options, off the executor.
    pub async fn open(path: impl Into<PathBuf>) -> Result<AsyncLmdbStore, LmdbError> {
        let path = path.into();
        blocking::unblock(move || LmdbStore::open(path)).await.map(AsyncLmdbStore::new)
    }

    /// The blocking store underneath.
    pub fn blocking(&self) -> &LmdbStore {
        &self.store
    }

    /// [`LmdbStore::purge_expired`], off the executor.
    pub async fn purge_expired(&self, now: SystemTime) -> Result<usize, LmdbError> {
        let store = self.store.clone();
        blocking::unblock(move || store.purge_expired(now)).await
    }
}

impl From<LmdbStore> for AsyncLmdbStore {
    fn from(store: LmdbStore) -> Self {
        AsyncLmdbStore::new(store)
    }
}

impl AsyncStore for AsyncLmdbStore {
    async fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        let lookup = self.store.lookup(key)?;
        if !lookup.corrupt.is_empty() {
            let store = self.store.clone();
            blocking::unblock(move || store.remove_corrupt(&lookup.corrupt)).await;
        }
        Ok(lookup.entries)
    }

    /// The read transaction runs here, as in [`get`](AsyncStore::get); `false` only when
    /// it found undecodable records, which `get` then deletes off the executor.
    fn read_now(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) -> bool {
        match self.store.lookup(key) {
            Ok(lookup) if lookup.corrupt.is_empty() => read(Ok(Variants::Owned(lookup.entries))),
            Ok(_) => return false,
            Err(error) => read(Err(error.into())),
        }
        true
    }

    async fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        let prepared = PreparedEntry::new(entry);
        let store = self.store.clone();
        Ok(blocking::unblock(move || store.put_prepared(&prepared)).await?)
    }

    /// Written behind, as [`LmdbStore`]'s refresh (see
    /// [`Store::flush`](httpcache_core::Store::flush)): queued
    /// here, or, when the queue is full, from the [`blocking`] pool once there is room.
    async fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        if let Err(prepared) = self.store.try_refresh_behind(Arc::new(PreparedEntry::new(entry))) {
            let store = self.store.clone();
            blocking::unblock(move || store.refresh_behind(prepared)).await;
        }
        Ok(())
    }

    /// Looks on the calling task, as a read does, and goes to the [`blocking`] pool to
    /// write only when there is something to remove.
    async fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        if !self.store.holds(key, None)? {
            return Ok(0);
        }
        let (store, key) = (self.store.clone(), *key);
        Ok(blocking::unblock(move || store.remove_held(&key)).await?)
    }

    /// As [`remove`](AsyncStore::remove).
    async fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        if !self.store.holds(key, Some(variant))? {
            return Ok(false);
        }
        let (store, key) = (self.store.clone(), *key);
        Ok(blocking::unblock(move || store.remove_one_held(&key, variant)).await?)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(blocking::unblock(move || store.clear_all()).await?)
    }

    async fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        let store = self.store.clone();
        let listing = blocking::unblock(move || {
            let listing = store.listing()?;
            store.remove_corrupt(&listing.corrupt);
            Ok::<_, LmdbError>(listing.metas)
        });
        Ok(listing.await?)
    }

    async fn compact(&self) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(blocking::unblock(move || store.compact_now()).await?)
    }

    /// Waits, off the executor, for the refreshes queued so far
    /// ([`Store::flush`](httpcache_core::Store::flush)).
    async fn flush(&self) -> Result<(), StoreError> {
        if self.store.queued_refreshes() > 0 {
            let store = self.store.clone();
            blocking::unblock(move || store.settle_refreshes()).await;
        }
        Ok(())
    }
}
