//! The storage traits. [`Store`] (blocking) and [`AsyncStore`] have the same method
//! names, so sync and async drivers differ only by `.await`.
//!
//! Records are addressed by primary key and [`VariantId`]: `put` replaces the variant
//! with the same id under the entry's key and keeps the others. A record that fails
//! to decode is a miss: `get` deletes it and leaves it out, never returns an error for it.
//!
//! Reads have a borrowing form beside `get`: [`Store::read_with`] (and
//! [`AsyncStore::read_now`], which also says whether the store could read without
//! waiting) lend the variants to a callback as [`Variants`], so that a store keeping
//! decoded entries in memory need not clone whole entries for a hit, of which the
//! response uses only the response part. `read_with`'s default calls `get`;
//! `read_now`'s reads nothing, and the caller awaits `get`.
//!
//! `refresh` is `put` for an entry freshened by a validation (a 304): the same result,
//! but a store that keeps bodies apart may skip rewriting the body when it can prove
//! the stored one is the entry's (see [`Store::refresh`]).

use std::future::Future;
use std::sync::Arc;

use crate::entry::{Entry, EntryMeta, StoredResponse};
use crate::header::VariantId;
use crate::key::CacheKey;

/// A storage failure. The drivers never fail a request because of one: they return
/// the origin's response and trace the error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O error (disk full, permission denied, missing directory...).
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing, with the path when there is one.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store is at its size limit and could not make room.
    #[error("store full: {0}")]
    Full(String),
    /// Another process holds a lock the store needs.
    #[error("store locked: {0}")]
    Locked(String),
    /// The path is not a cache of this kind.
    #[error("not a cache: {0}")]
    NotACache(String),
    /// Any other backend error.
    #[error("{0}")]
    Backend(String),
}

impl StoreError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io { context: context.into(), source }
    }
}

/// The variants stored under one key as a read hands them over: the store's own
/// copies ([`Variants::Owned`], what [`Store::get`] returns), or a view of entries the
/// store keeps ([`Variants::Borrowed`], from [`Store::read_with`]). Either way, a reader
/// takes out only what it needs: [`Variants::take`] moves an owned entry out and clones
/// a borrowed one.
#[derive(Debug)]
pub enum Variants<'a> {
    /// Entries the reader owns.
    Owned(Vec<Entry>),
    /// Entries the store lends for the duration of the read.
    Borrowed(&'a [Entry]),
}

impl Default for Variants<'_> {
    /// No variants (a miss).
    fn default() -> Self {
        Variants::Owned(Vec::new())
    }
}

impl std::ops::Deref for Variants<'_> {
    type Target = [Entry];

    fn deref(&self) -> &[Entry] {
        match self {
            Variants::Owned(entries) => entries,
            Variants::Borrowed(entries) => entries,
        }
    }
}

impl Variants<'_> {
    /// The entry at `index`: moved out when owned (the others stay, in another order),
    /// cloned when borrowed. `None` past the end.
    pub fn take(&mut self, index: usize) -> Option<Entry> {
        match self {
            Variants::Owned(entries) => (index < entries.len()).then(|| entries.swap_remove(index)),
            Variants::Borrowed(entries) => entries.get(index).cloned(),
        }
    }

    /// The response part of the entry at `index`, moved out or copied as
    /// [`take`](Variants::take) does, for a reader that needs no more (a response
    /// served from the entry): a borrowed entry's request part is not copied, and the
    /// copy of its header map has room for the two fields the cache adds when it serves
    /// a response (`Age`, `Cache-Status`).
    pub fn take_response(&mut self, index: usize) -> Option<StoredResponse> {
        match self {
            Variants::Owned(_) => self.take(index).map(|entry| entry.response),
            Variants::Borrowed(entries) => entries.get(index).map(|entry| entry.response.clone_to_serve()),
        }
    }

    /// The entries, owned (cloned when borrowed).
    pub fn into_vec(self) -> Vec<Entry> {
        match self {
            Variants::Owned(entries) => entries,
            Variants::Borrowed(entries) => entries.to_vec(),
        }
    }
}

/// A blocking store, safe to share between threads.
pub trait Store: Send + Sync {
    /// Every decodable variant stored under `key` (undecodable ones are deleted).
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError>;
    /// Calls `read` once with what [`get`](Store::get) would return: the variants
    /// stored under `key` (or the error). A store that keeps decoded entries in memory
    /// lends them ([`Variants::Borrowed`]) rather than cloning them, so that a hit copies
    /// only what its response needs. The default calls `get`.
    fn read_with(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) {
        read(self.get(key).map(Variants::Owned));
    }
    /// Stores `entry` under `entry.key`, replacing the variant with the same id.
    fn put(&self, entry: &Entry) -> Result<(), StoreError>;
    /// [`put`](Store::put), handing the entry over: what the drivers call, since they
    /// need the entry no more. A store that keeps decoded entries (the memory store)
    /// keeps this one instead of a copy. It must leave exactly what `put(&entry)` would;
    /// the default calls it.
    fn put_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.put(&entry)
    }
    /// Stores `entry`, a stored variant freshened by a validation (RFC 9111 §4.3.4: a
    /// 304, or a HEAD response, updated its header fields, times and expiry) whose body
    /// is the one already stored for `(entry.key, entry.variant)`. The drivers call it
    /// instead of [`put`](Store::put) when they write back a revalidated entry.
    ///
    /// It must leave exactly what `put(entry)` would; only the cost may differ. A store
    /// that keeps bodies apart from the rest of an entry may rewrite just the small
    /// part, *but only after proving, within the same write, that the body stored now
    /// is `entry`'s*: since the entry was read, another writer (another process) may
    /// have stored a new response for that variant, or it may have been removed or
    /// evicted, and pairing `entry`'s header fields (its `ETag`, `Content-Length`...)
    /// with another body would serve a wrong response. When it cannot prove it, or
    /// nothing is stored, it writes the whole entry, as `put` does; `entry` always
    /// carries its full body (a shared `Bytes`) for that.
    ///
    /// A store may write a refresh *behind*, returning before it lands, so that a
    /// revalidated response does not wait for a disk flush, provided nothing read
    /// through the store can tell: reads see the refresh from the moment `refresh`
    /// returns, and the writes and scans asked for after it land after it. Such a store
    /// reports a failed write in its logs rather than here, so the response already
    /// served does not say it (its [`CacheStatus::stored`](crate::CacheStatus::stored)
    /// stays `true`, where a failed refresh returned here sets it `false`); the stored
    /// entry then stays as it was, to be revalidated again. It documents what a
    /// process exiting with refreshes still queued loses. The LMDB and fs stores do this
    /// ([`WriteBehind`](crate::WriteBehind) is the queue they share).
    ///
    /// The default is `put`, right for every store that rewrites entries whole.
    fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        self.put(entry)
    }
    /// [`refresh`](Store::refresh), handing the entry over, as
    /// [`put_owned`](Store::put_owned) is to `put`. The default calls `refresh(&entry)`,
    /// so a store that overrides only `refresh` keeps its refreshes; a store whose
    /// `refresh` is `put` should make this `put_owned`.
    fn refresh_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.refresh(&entry)
    }
    /// Removes every variant under `key`; returns how many were removed.
    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError>;
    /// Removes one variant; returns whether it was there.
    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError>;
    /// Removes everything.
    fn clear(&self) -> Result<(), StoreError>;
    /// The metadata of every entry, without reading bodies.
    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError>;
    /// Reclaims space where the backend can (default: nothing to do).
    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Waits until every write this store accepted before the call has landed. Only a
    /// store that writes refreshes behind (see [`refresh`](Store::refresh)) has
    /// anything to wait for; the default returns at once. Call it before a process
    /// exits to keep the refreshes of its last revalidations.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A non-blocking store. Same methods as [`Store`], returning futures.
pub trait AsyncStore: Send + Sync {
    /// Every decodable variant stored under `key` (undecodable ones are deleted).
    fn get(&self, key: &CacheKey) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;
    /// [`get`](AsyncStore::get) without suspending, in the borrowing form of
    /// [`Store::read_with`], for a store that can read without waiting: calls `read` once
    /// with the variants stored under `key` (or the error) and returns `true`; or returns
    /// `false` without calling it, to have the caller await `get`. The drivers try it
    /// first, so that a request the store can answer at once is planned without building
    /// and polling a future (see [`Cache::plan_now`](crate::Cache::plan_now)).
    ///
    /// Read at once only when the read cannot block for long (a memory lookup, an LMDB
    /// read transaction); a store that reads the network keeps the default, `false`.
    fn read_now(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) -> bool {
        let _ = (key, read);
        false
    }
    /// The blocking face of this store, for a store whose writes never wait for long (a
    /// memory store run [`Inline`]): the async drivers then make a completion's writes
    /// through it at once, when the completion is made, rather than in a future built,
    /// boxed and polled for them (see [`Cache::complete_async`](crate::Cache::complete_async)).
    /// It must be a view of the same entries as this store.
    ///
    /// Write at once only when a write cannot block for long; a store whose writes
    /// touch a disk or the network keeps the default, `None`, and its writes are awaited.
    fn write_now(&self) -> Option<&dyn Store> {
        None
    }
    /// Stores `entry` under `entry.key`, replacing the variant with the same id.
    fn put(&self, entry: &Entry) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores `entry`, a stored variant freshened by a validation, whose body is the
    /// one already stored: [`Store::refresh`] (same contract). The default is `put`.
    fn refresh(&self, entry: &Entry) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.put(entry)
    }
    /// [`put`](AsyncStore::put), handing the entry over: [`Store::put_owned`] (same
    /// contract). The default awaits `put(&entry)`.
    fn put_owned(&self, entry: Entry) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { self.put(&entry).await }
    }
    /// [`refresh`](AsyncStore::refresh), handing the entry over: [`Store::refresh_owned`]
    /// (same contract). The default awaits `refresh(&entry)`.
    fn refresh_owned(&self, entry: Entry) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { self.refresh(&entry).await }
    }
    /// Removes every variant under `key`; returns how many were removed.
    fn remove(&self, key: &CacheKey) -> impl Future<Output = Result<usize, StoreError>> + Send;
    /// Removes one variant; returns whether it was there.
    fn remove_variant(
        &self,
        key: &CacheKey,
        variant: VariantId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes everything.
    fn clear(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The metadata of every entry, without reading bodies.
    fn scan(&self) -> impl Future<Output = Result<Vec<EntryMeta>, StoreError>> + Send;
    /// Reclaims space where the backend can (default: nothing to do).
    fn compact(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
    /// Waits until every write this store accepted before the call has landed:
    /// [`Store::flush`]. The default returns at once.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
}

/// Runs a [`Store`] inline as an [`AsyncStore`]. Right for stores whose calls never
/// block for long (the memory store); disk stores offer their own `AsyncStore`,
/// which moves blocking work off the executor.
#[derive(Debug, Clone, Default)]
pub struct Inline<S>(pub S);

impl<S: Store> AsyncStore for Inline<S> {
    async fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        self.0.get(key)
    }
    /// Always reads: the blocking store's [`Store::read_with`], run here.
    fn read_now(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) -> bool {
        self.0.read_with(key, read);
        true
    }
    /// Always the blocking store: its writes are made at once, with no future.
    fn write_now(&self) -> Option<&dyn Store> {
        Some(&self.0)
    }
    async fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.0.put(entry)
    }
    async fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        self.0.refresh(entry)
    }
    async fn put_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.0.put_owned(entry)
    }
    async fn refresh_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.0.refresh_owned(entry)
    }
    async fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        self.0.remove(key)
    }
    async fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        self.0.remove_variant(key, variant)
    }
    async fn clear(&self) -> Result<(), StoreError> {
        self.0.clear()
    }
    async fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        self.0.scan()
    }
    async fn compact(&self) -> Result<(), StoreError> {
        self.0.compact()
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()
    }
}

/// `Store` for smart pointers to a store: every call goes to the pointee.
macro_rules! forward_store {
    ($pointer:ident) => {
        impl<S: Store + ?Sized> Store for $pointer<S> {
            fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
                (**self).get(key)
            }
            fn read_with(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) {
                (**self).read_with(key, read)
            }
            fn put(&self, entry: &Entry) -> Result<(), StoreError> {
                (**self).put(entry)
            }
            fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
                (**self).refresh(entry)
            }
            fn put_owned(&self, entry: Entry) -> Result<(), StoreError> {
                (**self).put_owned(entry)
            }
            fn refresh_owned(&self, entry: Entry) -> Result<(), StoreError> {
                (**self).refresh_owned(entry)
            }
            fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
                (**self).remove(key)
            }
            fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
                (**self).remove_variant(key, variant)
            }
            fn clear(&self) -> Result<(), StoreError> {
                (**self).clear()
            }
            fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
                (**self).scan()
            }
            fn compact(&self) -> Result<(), StoreError> {
                (**self).compact()
            }
            fn flush(&self) -> Result<(), StoreError> {
                (**self).flush()
            }
        }
    };
}

forward_store!(Arc);
forward_store!(Box);

/// One cache seen two ways: `blocking` answers [`Store`] calls and `asynchronous`
/// answers [`AsyncStore`] calls. A [`Cache`](crate::Cache) over a `DualStore` serves
/// both its blocking steps (`plan`, `complete`) and its async ones (`plan_async`,
/// `complete_async`), so a client with a blocking and an async face (isahc's `send`
/// and `send_async`, say) shares one cache, and identical concurrent misses are
/// coalesced whichever way they were sent.
///
/// Both must be views of the same entries, e.g. an LMDB store and its async flavour
/// (`httpcache_lmdb` implements `From<LmdbStore>` for that pair). Any [`Store`] whose
/// calls never wait long (the memory store) becomes one with `From`: shared through an
/// [`Arc`], run [`Inline`] for the async face.
///
/// ```
/// use std::sync::Arc;
/// use httpcache_core::{DualStore, Inline, Store};
///
/// // What `From` does for a store run inline (e.g. `httpcache_mem::MemoryStore`).
/// fn both_faces<S: Store>(store: S) -> DualStore<Arc<S>, Inline<Arc<S>>> {
///     let store = Arc::new(store);
///     DualStore::new(store.clone(), Inline(store))
/// }
/// # let _ = both_faces::<Box<dyn Store>>;
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

impl<S: Store> From<S> for DualStore<Arc<S>, Inline<Arc<S>>> {
    fn from(store: S) -> Self {
        let store = Arc::new(store);
        DualStore::new(store.clone(), Inline(store))
    }
}

impl<B: Store, A: Send + Sync> Store for DualStore<B, A> {
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        self.blocking.get(key)
    }
    fn read_with(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) {
        self.blocking.read_with(key, read);
    }
    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.blocking.put(entry)
    }
    fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        self.blocking.refresh(entry)
    }
    fn put_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.blocking.put_owned(entry)
    }
    fn refresh_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.blocking.refresh_owned(entry)
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
    fn flush(&self) -> Result<(), StoreError> {
        self.blocking.flush()
    }
}

impl<B: Send + Sync, A: AsyncStore> AsyncStore for DualStore<B, A> {
    async fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        self.asynchronous.get(key).await
    }
    fn read_now(&self, key: &CacheKey, read: &mut dyn FnMut(Result<Variants<'_>, StoreError>)) -> bool {
        self.asynchronous.read_now(key, read)
    }
    fn write_now(&self) -> Option<&dyn Store> {
        self.asynchronous.write_now()
    }
    async fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.asynchronous.put(entry).await
    }
    async fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        self.asynchronous.refresh(entry).await
    }
    async fn put_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.asynchronous.put_owned(entry).await
    }
    async fn refresh_owned(&self, entry: Entry) -> Result<(), StoreError> {
        self.asynchronous.refresh_owned(entry).await
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
    async fn flush(&self) -> Result<(), StoreError> {
        self.asynchronous.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::testing::sample_entry;

    /// Three variants of one key, told apart by their status and request URL.
    fn three() -> Vec<Entry> {
        (0..3u16)
            .map(|i| {
                let key = CacheKey::hash("https://example.com/");
                let mut entry =
                    sample_entry(key, VariantId(u64::from(i)), bytes::Bytes::from_static(b"body"));
                entry.request.url = format!("https://example.com/{i}");
                entry.response.status = http::StatusCode::from_u16(200 + i).expect("status");
                entry
            })
            .collect()
    }

    // Owned variants give up the entry taken; borrowed ones lend a copy and stay whole.
    #[test]
    fn take_moves_owned_and_clones_borrowed() {
        let stored = three();
        let mut owned = Variants::Owned(three());
        assert_eq!(owned.take(1).as_ref(), Some(&stored[1]));
        assert_eq!(owned.len(), 2);
        assert!(!owned.iter().any(|entry| entry.variant == VariantId(1)));
        assert_eq!(owned.take(5), None);

        let mut borrowed = Variants::Borrowed(&stored);
        assert_eq!(borrowed.take(1).as_ref(), Some(&stored[1]));
        assert_eq!(borrowed.len(), 3);
        assert_eq!(borrowed.take(3), None);
        assert_eq!(borrowed.into_vec(), stored);
    }

    // A response served from a stored entry needs its response part only (RFC 9111 §4).
    #[test]
    fn take_response_is_the_entry_response() {
        let stored = three();
        let mut owned = Variants::Owned(three());
        assert_eq!(owned.take_response(2), Some(stored[2].response.clone()));
        let mut borrowed = Variants::Borrowed(&stored);
        assert_eq!(borrowed.take_response(0), Some(stored[0].response.clone()));
        assert_eq!(borrowed.take_response(3), None);
        assert!(Variants::default().is_empty());
    }

    // The default reads go through `get`; `Inline` reads at once through `read_with`.
    #[test]
    fn default_reads_go_through_get() {
        #[derive(Debug)]
        struct Fixed(Vec<Entry>);
        impl Store for Fixed {
            fn get(&self, _: &CacheKey) -> Result<Vec<Entry>, StoreError> {
                Ok(self.0.clone())
            }
            fn put(&self, _: &Entry) -> Result<(), StoreError> {
                Ok(())
            }
            fn remove(&self, _: &CacheKey) -> Result<usize, StoreError> {
                Ok(0)
            }
            fn remove_variant(&self, _: &CacheKey, _: VariantId) -> Result<bool, StoreError> {
                Ok(false)
            }
            fn clear(&self) -> Result<(), StoreError> {
                Ok(())
            }
            fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
                Ok(Vec::new())
            }
        }
        let store = Fixed(three());
        let key = store.0[0].key;
        let mut seen = Vec::new();
        store.read_with(&key, &mut |read| seen.push(read.map(Variants::into_vec).expect("read")));
        assert_eq!(seen, vec![three()]);
        seen.clear();
        assert!(
            Inline(store).read_now(&key, &mut |read| seen.push(read.map(Variants::into_vec).expect("read")))
        );
        assert_eq!(seen, vec![three()]);
    }
}
