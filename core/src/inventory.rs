//! Cache inspection over any store: count, list, filter, sort, delete, copy.
//!
//! [`Inventory`] wraps a [`Store`] and [`AsyncInventory`] an [`AsyncStore`]; both have
//! the same methods, so sync and async callers differ only by `.await`. Nothing here
//! reads the clock: calls that depend on time take `now: SystemTime`.
//!
//! Most calls read only metadata ([`Store::scan`]). Three read whole entries, because
//! they must: [`Inventory::values`], [`Inventory::copy_into`], and everything about
//! *invalid* entries. An entry is invalid when its full decode fails; stores delete such
//! records when [`Store::get`] meets them, so listing invalid entries
//! ([`Filter::Invalid`]) also purges them, and [`Inventory::delete_invalid`] is
//! "read every key and count what vanished".
//!
//! ```
//! # use std::time::{Duration, SystemTime};
//! # use httpcache_core::{Store, StoreError};
//! use httpcache_core::inventory::{Filter, Inventory, Query, SortBy};
//!
//! fn report(store: &impl Store, now: SystemTime) -> Result<(), StoreError> {
//!     let inventory = Inventory::new(store);
//!     println!("{} entries", inventory.count()?);
//!     // The ten largest entries that are still fresh.
//!     let query = Query::new(Filter::Valid).sort_by(SortBy::Size).reverse().limit(10);
//!     for meta in inventory.list(&query, now)? {
//!         println!("{} {} bytes", meta.url, meta.body_size);
//!     }
//!     let purged = inventory.delete_expired(now)?;
//!     println!("deleted {purged} expired entries");
//!     Ok(())
//! }
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use crate::entry::{Entry, EntryMeta};
use crate::header::VariantId;
use crate::key::{CacheKey, normalize_url, redact_url};
use crate::settings::Settings;
use crate::store::{AsyncStore, Store, StoreError};

/// Which entries [`Inventory::list`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// Every entry the store lists.
    #[default]
    All,
    /// Entries not expired at `now` (by their stored expiry).
    Valid,
    /// Entries expired at `now` (by their stored expiry).
    Expired,
    /// Entries whose full decode fails. Reading them deletes them (see the module docs),
    /// so this listing also purges them.
    Invalid,
    /// Entries first stored more than this long before `now`.
    OlderThan(Duration),
}

/// The order of [`Inventory::list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SortBy {
    /// By expiry time, soonest first; entries that never expire come last.
    Expires,
    /// By body size, smallest first.
    Size,
    /// By creation time, oldest first.
    Created,
}

/// What to list: a filter, an optional order, and an optional limit.
///
/// Without [`Query::sort_by`], entries come ordered by key then variant (a stable,
/// meaningless order). Ties in any order are broken the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Which entries.
    pub filter: Filter,
    /// In which order; `None` = by key.
    pub sort: Option<SortBy>,
    /// Reverse the order (largest / latest first).
    pub reverse: bool,
    /// At most this many, after sorting.
    pub limit: Option<usize>,
}

impl Query {
    /// Every entry passing `filter`, ordered by key.
    pub fn new(filter: Filter) -> Self {
        Query { filter, ..Query::default() }
    }

    /// Orders the result by `by`.
    pub fn sort_by(mut self, by: SortBy) -> Self {
        self.sort = Some(by);
        self
    }

    /// Reverses the order.
    pub fn reverse(mut self) -> Self {
        self.reverse = !self.reverse;
        self
    }

    /// Keeps at most `limit` entries.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// What [`Inventory::copy_into`] did. A failure on one entry is recorded here and the
/// copy goes on.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// How many entries were written to the destination.
    pub copied: usize,
    /// The entries (or keys, when reading them failed) that could not be copied.
    pub failed: Vec<CopyFailure>,
}

/// One entry [`Inventory::copy_into`] could not copy.
#[derive(Debug)]
pub struct CopyFailure {
    /// The key.
    pub key: CacheKey,
    /// The variant; `None` when reading the key from the source failed.
    pub variant: Option<VariantId>,
    /// Why.
    pub error: StoreError,
}

/// Inspection over a blocking [`Store`]. See the [module docs](self).
#[derive(Debug)]
pub struct Inventory<'a, S: ?Sized> {
    store: &'a S,
}

/// Inspection over an [`AsyncStore`]: the same methods as [`Inventory`], returning futures.
#[derive(Debug)]
pub struct AsyncInventory<'a, S: ?Sized> {
    store: &'a S,
}

impl<S: ?Sized> Clone for Inventory<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: ?Sized> Copy for Inventory<'_, S> {}
impl<S: ?Sized> Clone for AsyncInventory<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: ?Sized> Copy for AsyncInventory<'_, S> {}

// ---- pure helpers shared by both inventories ----

/// Whether `meta` passes a metadata-only filter (everything but `Invalid`).
fn passes(meta: &EntryMeta, filter: Filter, now: SystemTime) -> bool {
    match filter {
        Filter::All | Filter::Invalid => true,
        Filter::Valid => !meta.is_expired(now),
        Filter::Expired => meta.is_expired(now),
        Filter::OlderThan(age) => is_older_than(meta, age, now),
    }
}

fn is_older_than(meta: &EntryMeta, age: Duration, now: SystemTime) -> bool {
    now.checked_sub(age).is_some_and(|cutoff| meta.created < cutoff)
}

fn by_key(a: &EntryMeta, b: &EntryMeta) -> Ordering {
    (a.key, a.variant).cmp(&(b.key, b.variant))
}

/// Sorts and truncates `metas` as `query` says.
fn arrange(mut metas: Vec<EntryMeta>, query: &Query) -> Vec<EntryMeta> {
    let primary = |a: &EntryMeta, b: &EntryMeta| -> Ordering {
        match query.sort {
            None => Ordering::Equal,
            // `None` (never expires) sorts after every instant.
            Some(SortBy::Expires) => match (a.expires, b.expires) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            Some(SortBy::Size) => a.body_size.cmp(&b.body_size),
            Some(SortBy::Created) => a.created.cmp(&b.created),
        }
    };
    metas.sort_by(|a, b| {
        let order = primary(a, b).then_with(|| by_key(a, b));
        if query.reverse { order.reverse() } else { order }
    });
    if let Some(limit) = query.limit {
        metas.truncate(limit);
    }
    metas
}

/// Metadata grouped by key.
fn group_by_key(metas: Vec<EntryMeta>) -> BTreeMap<CacheKey, Vec<EntryMeta>> {
    let mut groups: BTreeMap<CacheKey, Vec<EntryMeta>> = BTreeMap::new();
    for meta in metas {
        groups.entry(meta.key).or_default().push(meta);
    }
    groups
}

/// The metas of `listed` that `entries` (what `get` returned for their key) leaves out.
fn vanished(listed: Vec<EntryMeta>, entries: &[Entry]) -> Vec<EntryMeta> {
    let present: HashSet<VariantId> = entries.iter().map(|entry| entry.variant).collect();
    listed.into_iter().filter(|meta| !present.contains(&meta.variant)).collect()
}

/// The normalised forms of `urls`.
fn normalized_set(urls: &[http::Uri], settings: &Settings) -> HashSet<String> {
    urls.iter().map(|url| wanted_url(url, settings)).collect()
}

/// What stored URLs are compared with when `url` is asked for: `url` as it would be
/// stored ([`redact_url`]: a password in it, and the values of ignored parameters,
/// become `REDACTED`), then [`normalize_url`]d, as [`stored_url_is`] does to stored URLs.
/// Without the redaction, a URL with a password would never find what was stored for it.
pub fn wanted_url(url: &http::Uri, settings: &Settings) -> String {
    normalize_stored(&redact_url(url, settings), settings).unwrap_or_else(|| normalize_url(url, settings))
}

/// Whether the stored URL `stored` (as an [`EntryMeta`] lists it) is the one [`wanted_url`]
/// made `wanted` from; a stored URL that does not parse is none.
pub fn stored_url_is(stored: &str, wanted: &str, settings: &Settings) -> bool {
    normalize_stored(stored, settings).is_some_and(|stored| stored == wanted)
}

/// The normalised form of a stored URL, `None` when it does not parse.
fn normalize_stored(url: &str, settings: &Settings) -> Option<String> {
    url.parse::<http::Uri>().ok().map(|uri| normalize_url(&uri, settings))
}

fn sorted_urls(metas: Vec<EntryMeta>) -> Vec<String> {
    metas.into_iter().map(|meta| meta.url).collect::<BTreeSet<_>>().into_iter().collect()
}

fn sorted_keys(metas: &[EntryMeta]) -> Vec<CacheKey> {
    metas.iter().map(|meta| meta.key).collect::<BTreeSet<_>>().into_iter().collect()
}

impl<'a, S: Store + ?Sized> Inventory<'a, S> {
    /// Inspection over `store`.
    pub fn new(store: &'a S) -> Self {
        Inventory { store }
    }

    /// The store inspected.
    pub fn store(&self) -> &'a S {
        self.store
    }

    /// How many entries (variants) the store lists.
    pub fn count(&self) -> Result<usize, StoreError> {
        Ok(self.store.scan()?.len())
    }

    /// Whether any variant is stored under `key` (reads the key: an undecodable record
    /// is deleted and does not count).
    pub fn contains(&self, key: &CacheKey) -> Result<bool, StoreError> {
        Ok(!self.store.get(key)?.is_empty())
    }

    /// Whether an entry is stored for `url`: stored URLs and `url` are compared after
    /// [`normalize_url`] with `settings`, `url` redacted as stored URLs are ([`wanted_url`]);
    /// stored URLs that do not parse are skipped.
    pub fn has_url(&self, url: &http::Uri, settings: &Settings) -> Result<bool, StoreError> {
        let wanted = wanted_url(url, settings);
        Ok(self.store.scan()?.iter().any(|meta| stored_url_is(&meta.url, &wanted, settings)))
    }

    /// Every stored URL (as stored, i.e. redacted), sorted, without duplicates.
    pub fn urls(&self) -> Result<Vec<String>, StoreError> {
        Ok(sorted_urls(self.store.scan()?))
    }

    /// Every key, sorted, without duplicates.
    pub fn keys(&self) -> Result<Vec<CacheKey>, StoreError> {
        Ok(sorted_keys(&self.store.scan()?))
    }

    /// Every decodable entry, bodies included, ordered by key.
    pub fn values(&self) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        for key in self.keys()? {
            let mut variants = self.store.get(&key)?;
            variants.sort_by_key(|entry| entry.variant);
            entries.append(&mut variants);
        }
        Ok(entries)
    }

    /// The metadata of the entries `query` selects, in its order.
    pub fn list(&self, query: &Query, now: SystemTime) -> Result<Vec<EntryMeta>, StoreError> {
        let metas = self.store.scan()?;
        let selected = if query.filter == Filter::Invalid {
            self.invalid(metas)?
        } else {
            metas.into_iter().filter(|meta| passes(meta, query.filter, now)).collect()
        };
        Ok(arrange(selected, query))
    }

    /// Reads every key and returns the listed records that did not decode (now deleted).
    fn invalid(&self, metas: Vec<EntryMeta>) -> Result<Vec<EntryMeta>, StoreError> {
        let mut out = Vec::new();
        for (key, listed) in group_by_key(metas) {
            let entries = self.store.get(&key)?;
            out.extend(vanished(listed, &entries));
        }
        Ok(out)
    }

    /// Deletes every variant under each of `keys`; returns how many entries went.
    pub fn delete_keys(&self, keys: &[CacheKey]) -> Result<usize, StoreError> {
        let mut removed = 0;
        for key in keys {
            removed += self.store.remove(key)?;
        }
        Ok(removed)
    }

    /// Deletes the entries stored for any of `urls` (compared as in [`Self::has_url`]);
    /// returns how many went.
    pub fn delete_urls(&self, urls: &[http::Uri], settings: &Settings) -> Result<usize, StoreError> {
        let wanted = normalized_set(urls, settings);
        let doomed = self.store.scan()?.into_iter().filter(|meta| {
            normalize_stored(&meta.url, settings).is_some_and(|stored| wanted.contains(&stored))
        });
        self.remove_each(doomed)
    }

    /// Deletes the entries expired at `now`; returns how many went.
    pub fn delete_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        let doomed = self.store.scan()?.into_iter().filter(|meta| meta.is_expired(now));
        self.remove_each(doomed)
    }

    /// Deletes the entries first stored more than `age` before `now`; returns how many went.
    pub fn delete_older_than(&self, age: Duration, now: SystemTime) -> Result<usize, StoreError> {
        let doomed = self.store.scan()?.into_iter().filter(|meta| is_older_than(meta, age, now));
        self.remove_each(doomed)
    }

    /// Deletes the entries whose full decode fails; returns how many went.
    pub fn delete_invalid(&self) -> Result<usize, StoreError> {
        Ok(self.invalid(self.store.scan()?)?.len())
    }

    fn remove_each(&self, metas: impl Iterator<Item = EntryMeta>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for meta in metas {
            if self.store.remove_variant(&meta.key, meta.variant)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes everything.
    pub fn clear(&self) -> Result<(), StoreError> {
        self.store.clear()
    }

    /// Copies every decodable entry into `destination` (export, or migration from one
    /// backend to another). A failed write is recorded in the report and the copy goes
    /// on; only a failure to list the source stops it.
    pub fn copy_into<D: Store + ?Sized>(&self, destination: &D) -> Result<CopyReport, StoreError> {
        let mut report = CopyReport::default();
        for key in self.keys()? {
            match self.store.get(&key) {
                Ok(entries) => {
                    for entry in entries {
                        match destination.put(&entry) {
                            Ok(()) => report.copied += 1,
                            Err(error) => {
                                report.failed.push(CopyFailure { key, variant: Some(entry.variant), error })
                            }
                        }
                    }
                }
                Err(error) => report.failed.push(CopyFailure { key, variant: None, error }),
            }
        }
        Ok(report)
    }

    /// Asks the store to reclaim space ([`Store::compact`]).
    pub fn compact(&self) -> Result<(), StoreError> {
        self.store.compact()
    }
}

impl<'a, S: AsyncStore + ?Sized> AsyncInventory<'a, S> {
    /// Inspection over `store`.
    pub fn new(store: &'a S) -> Self {
        AsyncInventory { store }
    }

    /// The store inspected.
    pub fn store(&self) -> &'a S {
        self.store
    }

    /// How many entries (variants) the store lists.
    pub async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.store.scan().await?.len())
    }

    /// Whether any variant is stored under `key`. See [`Inventory::contains`].
    pub async fn contains(&self, key: &CacheKey) -> Result<bool, StoreError> {
        Ok(!self.store.get(key).await?.is_empty())
    }

    /// Whether an entry is stored for `url`. See [`Inventory::has_url`].
    pub async fn has_url(&self, url: &http::Uri, settings: &Settings) -> Result<bool, StoreError> {
        let wanted = wanted_url(url, settings);
        Ok(self.store.scan().await?.iter().any(|meta| stored_url_is(&meta.url, &wanted, settings)))
    }

    /// Every stored URL, sorted, without duplicates.
    pub async fn urls(&self) -> Result<Vec<String>, StoreError> {
        Ok(sorted_urls(self.store.scan().await?))
    }

    /// Every key, sorted, without duplicates.
    pub async fn keys(&self) -> Result<Vec<CacheKey>, StoreError> {
        Ok(sorted_keys(&self.store.scan().await?))
    }

    /// Every decodable entry, bodies included, ordered by key.
    pub async fn values(&self) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        for key in self.keys().await? {
            let mut variants = self.store.get(&key).await?;
            variants.sort_by_key(|entry| entry.variant);
            entries.append(&mut variants);
        }
        Ok(entries)
    }

    /// The metadata of the entries `query` selects. See [`Inventory::list`].
    pub async fn list(&self, query: &Query, now: SystemTime) -> Result<Vec<EntryMeta>, StoreError> {
        let metas = self.store.scan().await?;
        let selected = if query.filter == Filter::Invalid {
            self.invalid(metas).await?
        } else {
            metas.into_iter().filter(|meta| passes(meta, query.filter, now)).collect()
        };
        Ok(arrange(selected, query))
    }

    async fn invalid(&self, metas: Vec<EntryMeta>) -> Result<Vec<EntryMeta>, StoreError> {
        let mut out = Vec::new();
        for (key, listed) in group_by_key(metas) {
            let entries = self.store.get(&key).await?;
            out.extend(vanished(listed, &entries));
        }
        Ok(out)
    }

    /// Deletes every variant under each of `keys`; returns how many entries went.
    pub async fn delete_keys(&self, keys: &[CacheKey]) -> Result<usize, StoreError> {
        let mut removed = 0;
        for key in keys {
            removed += self.store.remove(key).await?;
        }
        Ok(removed)
    }

    /// Deletes the entries stored for any of `urls`. See [`Inventory::delete_urls`].
    pub async fn delete_urls(&self, urls: &[http::Uri], settings: &Settings) -> Result<usize, StoreError> {
        let wanted = normalized_set(urls, settings);
        let doomed: Vec<EntryMeta> = self
            .store
            .scan()
            .await?
            .into_iter()
            .filter(|meta| {
                normalize_stored(&meta.url, settings).is_some_and(|stored| wanted.contains(&stored))
            })
            .collect();
        self.remove_each(doomed).await
    }

    /// Deletes the entries expired at `now`; returns how many went.
    pub async fn delete_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        let doomed: Vec<EntryMeta> =
            self.store.scan().await?.into_iter().filter(|meta| meta.is_expired(now)).collect();
        self.remove_each(doomed).await
    }

    /// Deletes the entries first stored more than `age` before `now`; returns how many went.
    pub async fn delete_older_than(&self, age: Duration, now: SystemTime) -> Result<usize, StoreError> {
        let doomed: Vec<EntryMeta> =
            self.store.scan().await?.into_iter().filter(|meta| is_older_than(meta, age, now)).collect();
        self.remove_each(doomed).await
    }

    /// Deletes the entries whose full decode fails; returns how many went.
    pub async fn delete_invalid(&self) -> Result<usize, StoreError> {
        let metas = self.store.scan().await?;
        Ok(self.invalid(metas).await?.len())
    }

    async fn remove_each(&self, metas: Vec<EntryMeta>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for meta in metas {
            if self.store.remove_variant(&meta.key, meta.variant).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes everything.
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.store.clear().await
    }

    /// Copies every decodable entry into `destination`. See [`Inventory::copy_into`].
    pub async fn copy_into<D: AsyncStore + ?Sized>(&self, destination: &D) -> Result<CopyReport, StoreError> {
        let mut report = CopyReport::default();
        for key in self.keys().await? {
            match self.store.get(&key).await {
                Ok(entries) => {
                    for entry in entries {
                        match destination.put(&entry).await {
                            Ok(()) => report.copied += 1,
                            Err(error) => {
                                report.failed.push(CopyFailure { key, variant: Some(entry.variant), error })
                            }
                        }
                    }
                }
                Err(error) => report.failed.push(CopyFailure { key, variant: None, error }),
            }
        }
        Ok(report)
    }

    /// Asks the store to reclaim space ([`AsyncStore::compact`]).
    pub async fn compact(&self) -> Result<(), StoreError> {
        self.store.compact().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::UNIX_EPOCH;

    use bytes::Bytes;
    use http::{HeaderMap, Method, StatusCode, Version};

    use super::*;
    use crate::entry::{StoredRequest, StoredResponse};
    use crate::store::Inline;

    /// The virtual clock's origin: tests name instants as seconds after it.
    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    fn key(seed: u8) -> CacheKey {
        CacheKey([seed; 32])
    }

    fn entry(seed: u8, variant: u64, url: &str, size: usize, created: u64, expires: Option<u64>) -> Entry {
        Entry {
            key: key(seed),
            variant: VariantId(variant),
            request: StoredRequest { method: Method::GET, url: url.to_string(), headers: HeaderMap::new() },
            response: StoredResponse {
                status: StatusCode::OK,
                version: Version::HTTP_11,
                headers: HeaderMap::new(),
                body: Bytes::from(vec![seed; size]),
                final_url: None,
            },
            request_time: at(created),
            response_time: at(created),
            created: at(created),
            expires: expires.map(at),
            initial_age: Duration::ZERO,
        }
    }

    enum Record {
        Good(Box<Entry>),
        /// A record whose metadata reads but whose full decode fails.
        Corrupt(EntryMeta),
    }

    /// An in-memory store with the contract of a real one: `get` deletes corrupt records.
    #[derive(Default)]
    struct TestStore {
        records: Mutex<BTreeMap<(CacheKey, VariantId), Record>>,
        /// Puts of entries with a body of this size fail.
        failing_size: Option<u64>,
    }

    impl TestStore {
        fn with(entries: &[Entry]) -> Self {
            let store = TestStore::default();
            for entry in entries {
                store.put(entry).unwrap();
            }
            store
        }

        fn corrupt(&self, entry: &Entry) {
            self.records.lock().unwrap().insert((entry.key, entry.variant), Record::Corrupt(entry.meta()));
        }
    }

    impl Store for TestStore {
        fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
            let mut records = self.records.lock().unwrap();
            let mut out = Vec::new();
            let mut corrupt = Vec::new();
            for ((k, variant), record) in records.iter() {
                if k == key {
                    match record {
                        Record::Good(entry) => out.push((**entry).clone()),
                        Record::Corrupt(_) => corrupt.push((*k, *variant)),
                    }
                }
            }
            for id in corrupt {
                records.remove(&id);
            }
            Ok(out)
        }
        fn put(&self, entry: &Entry) -> Result<(), StoreError> {
            if Some(entry.response.body.len() as u64) == self.failing_size {
                return Err(StoreError::Full("test".into()));
            }
            self.records
                .lock()
                .unwrap()
                .insert((entry.key, entry.variant), Record::Good(Box::new(entry.clone())));
            Ok(())
        }
        fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
            let mut records = self.records.lock().unwrap();
            let before = records.len();
            records.retain(|(k, _), _| k != key);
            Ok(before - records.len())
        }
        fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
            Ok(self.records.lock().unwrap().remove(&(*key, variant)).is_some())
        }
        fn clear(&self) -> Result<(), StoreError> {
            self.records.lock().unwrap().clear();
            Ok(())
        }
        fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
            Ok(self
                .records
                .lock()
                .unwrap()
                .values()
                .map(|record| match record {
                    Record::Good(entry) => entry.meta(),
                    Record::Corrupt(meta) => meta.clone(),
                })
                .collect())
        }
    }

    /// Five entries: two variants of key 1, one each for keys 2, 3, 4.
    fn fixture() -> Vec<Entry> {
        vec![
            entry(1, 0, "https://a.example/x", 10, 0, Some(100)),
            entry(1, 7, "https://a.example/x", 30, 50, None),
            entry(2, 0, "https://b.example/", 20, 10, Some(60)),
            entry(3, 0, "https://a.example/x", 5, 200, Some(1000)),
            entry(4, 0, "not a url", 40, 300, Some(400)),
        ]
    }

    fn ids(metas: &[EntryMeta]) -> Vec<(u8, u64)> {
        metas.iter().map(|meta| (meta.key.0[0], meta.variant.0)).collect()
    }

    #[test]
    fn counts_keys_urls_values() {
        let store = TestStore::with(&fixture());
        let inventory = Inventory::new(&store);
        assert_eq!(inventory.count().unwrap(), 5);
        assert_eq!(inventory.keys().unwrap(), vec![key(1), key(2), key(3), key(4)]);
        assert_eq!(inventory.urls().unwrap(), vec!["https://a.example/x", "https://b.example/", "not a url"]);
        assert_eq!(inventory.values().unwrap(), fixture());
        assert!(inventory.contains(&key(2)).unwrap());
        assert!(!inventory.contains(&key(9)).unwrap());
    }

    #[test]
    fn list_filters_on_the_virtual_clock() {
        let store = TestStore::with(&fixture());
        let inventory = Inventory::new(&store);
        let now = at(100);
        let list = |filter| ids(&inventory.list(&Query::new(filter), now).unwrap());
        assert_eq!(list(Filter::All).len(), 5);
        // Expiry at exactly `now` counts as expired.
        assert_eq!(list(Filter::Expired), vec![(1, 0), (2, 0)]);
        assert_eq!(list(Filter::Valid), vec![(1, 7), (3, 0), (4, 0)]);
        // Created strictly more than 60 s before t=100, i.e. before t=40.
        assert_eq!(list(Filter::OlderThan(Duration::from_secs(60))), vec![(1, 0), (2, 0)]);
        // An age larger than the time since the epoch selects nothing rather than panicking.
        assert!(list(Filter::OlderThan(Duration::MAX)).is_empty());
        assert!(list(Filter::Invalid).is_empty());
    }

    #[test]
    fn list_sorts_reverses_and_limits() {
        let store = TestStore::with(&fixture());
        let inventory = Inventory::new(&store);
        let now = at(0);
        let list = |query: Query| ids(&inventory.list(&query, now).unwrap());
        // Never-expiring entries sort last.
        assert_eq!(
            list(Query::new(Filter::All).sort_by(SortBy::Expires)),
            vec![(2, 0), (1, 0), (4, 0), (3, 0), (1, 7)]
        );
        assert_eq!(
            list(Query::new(Filter::All).sort_by(SortBy::Size)),
            vec![(3, 0), (1, 0), (2, 0), (1, 7), (4, 0)]
        );
        assert_eq!(
            list(Query::new(Filter::All).sort_by(SortBy::Size).reverse().limit(2)),
            vec![(4, 0), (1, 7)]
        );
        assert_eq!(
            list(Query::new(Filter::All).sort_by(SortBy::Created).reverse()),
            vec![(4, 0), (3, 0), (1, 7), (2, 0), (1, 0)]
        );
        assert_eq!(list(Query::new(Filter::All).limit(0)), vec![]);
        // Reversing twice is the identity.
        assert_eq!(
            list(Query::new(Filter::All).sort_by(SortBy::Created).reverse().reverse()),
            vec![(1, 0), (2, 0), (1, 7), (3, 0), (4, 0)]
        );
    }

    #[test]
    fn deletes_return_counts() {
        let store = TestStore::with(&fixture());
        let inventory = Inventory::new(&store);
        assert_eq!(inventory.delete_keys(&[key(1), key(9)]).unwrap(), 2);
        assert_eq!(inventory.count().unwrap(), 3);
        assert_eq!(inventory.delete_expired(at(60)).unwrap(), 1); // key 2 expires at 60
        assert_eq!(inventory.delete_expired(at(60)).unwrap(), 0);
        assert_eq!(inventory.delete_older_than(Duration::from_secs(50), at(300)).unwrap(), 1); // key 3
        assert_eq!(ids(&store.scan().unwrap()), vec![(4, 0)]);
        inventory.clear().unwrap();
        assert_eq!(inventory.count().unwrap(), 0);
        inventory.compact().unwrap();
    }

    #[test]
    fn invalid_entries_are_listed_then_gone() {
        let entries = fixture();
        let store = TestStore::with(&entries);
        store.corrupt(&entries[1]);
        store.corrupt(&entries[3]);
        let inventory = Inventory::new(&store);
        assert_eq!(inventory.count().unwrap(), 5, "scan still lists records whose metadata reads");
        let invalid = inventory.list(&Query::new(Filter::Invalid), at(0)).unwrap();
        assert_eq!(ids(&invalid), vec![(1, 7), (3, 0)]);
        assert_eq!(inventory.count().unwrap(), 3, "reading them deleted them");
        assert_eq!(inventory.delete_invalid().unwrap(), 0);

        let store = TestStore::with(&entries);
        store.corrupt(&entries[2]);
        let inventory = Inventory::new(&store);
        assert_eq!(inventory.delete_invalid().unwrap(), 1);
        assert!(!inventory.contains(&key(2)).unwrap());
        assert_eq!(inventory.values().unwrap().len(), 4);
    }

    #[test]
    fn copy_reports_failures_and_goes_on() {
        let entries = fixture();
        let source = TestStore::with(&entries);
        source.corrupt(&entries[4]);
        let destination = TestStore { failing_size: Some(30), ..TestStore::default() };
        let report = Inventory::new(&source).copy_into(&destination).unwrap();
        assert_eq!(report.copied, 3);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].key, key(1));
        assert_eq!(report.failed[0].variant, Some(VariantId(7)));
        assert!(matches!(report.failed[0].error, StoreError::Full(_)));
        let copied = Inventory::new(&destination).values().unwrap();
        assert_eq!(copied, vec![entries[0].clone(), entries[2].clone(), entries[3].clone()]);
    }

    #[test]
    fn async_inventory_has_the_same_answers() {
        let entries = fixture();
        let store = Inline(TestStore::with(&entries));
        store.0.corrupt(&entries[3]);
        let inventory = AsyncInventory::new(&store);
        futures_executor::block_on(async {
            assert_eq!(inventory.count().await.unwrap(), 5);
            assert_eq!(inventory.keys().await.unwrap().len(), 4);
            assert_eq!(inventory.urls().await.unwrap().len(), 3);
            assert!(inventory.contains(&key(1)).await.unwrap());
            let query = Query::new(Filter::All).sort_by(SortBy::Size).reverse().limit(1);
            assert_eq!(ids(&inventory.list(&query, at(0)).await.unwrap()), vec![(4, 0)]);
            assert_eq!(
                ids(&inventory.list(&Query::new(Filter::Expired), at(100)).await.unwrap()),
                [(1, 0), (2, 0)]
            );
            assert_eq!(inventory.delete_invalid().await.unwrap(), 1);
            assert_eq!(inventory.values().await.unwrap().len(), 4);
            let destination = Inline(TestStore::default());
            let report = inventory.copy_into(&destination).await.unwrap();
            assert_eq!((report.copied, report.failed.len()), (4, 0));
            assert_eq!(inventory.delete_expired(at(100)).await.unwrap(), 2);
            assert_eq!(inventory.delete_older_than(Duration::from_secs(1), at(300)).await.unwrap(), 1);
            assert_eq!(inventory.delete_keys(&[key(4)]).await.unwrap(), 1);
            assert_eq!(inventory.count().await.unwrap(), 0);
            assert_eq!(AsyncInventory::new(&destination).count().await.unwrap(), 4);
            inventory.clear().await.unwrap();
            inventory.compact().await.unwrap();
        });
    }

    #[test]
    fn urls_match_after_normalisation() {
        let store = TestStore::with(&fixture());
        let inventory = Inventory::new(&store);
        let settings = Settings::default();
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        assert!(inventory.has_url(&uri("HTTPS://A.EXAMPLE:443/x"), &settings).unwrap());
        assert!(!inventory.has_url(&uri("https://a.example/y"), &settings).unwrap());
        // The unparsable stored URL ("not a url") is skipped, not an error.
        assert_eq!(inventory.delete_urls(&[uri("https://a.example/x")], &settings).unwrap(), 3);
        assert_eq!(ids(&store.scan().unwrap()), vec![(2, 0), (4, 0)]);
        let store = Inline(store);
        futures_executor::block_on(async {
            let inventory = AsyncInventory::new(&store);
            assert!(inventory.has_url(&uri("https://b.example"), &settings).await.unwrap());
            assert_eq!(inventory.delete_urls(&[uri("https://b.example/")], &settings).await.unwrap(), 1);
        });
    }

    // A URL is stored redacted (a password and ignored parameters' values become
    // `REDACTED`): asked for as the caller knows it, with the secrets, it is found.
    #[test]
    fn urls_with_secrets_find_their_redacted_entries() {
        let settings = Settings::default();
        let asked = "https://user:secret@a.example/x?api_key=k1&page=2".parse::<http::Uri>().unwrap();
        let stored = redact_url(&asked, &settings);
        assert_eq!(stored, "https://user:REDACTED@a.example/x?api_key=REDACTED&page=2");
        let other = "https://user:secret@a.example/x?api_key=k1&page=3".parse::<http::Uri>().unwrap();
        let store = TestStore::with(&[entry(1, 0, &stored, 10, 0, None)]);
        let inventory = Inventory::new(&store);
        assert!(inventory.has_url(&asked, &settings).unwrap());
        assert!(!inventory.has_url(&other, &settings).unwrap());
        assert!(stored_url_is(&stored, &wanted_url(&asked, &settings), &settings));
        let store = Inline(store);
        futures_executor::block_on(async {
            let inventory = AsyncInventory::new(&store);
            assert!(inventory.has_url(&asked, &settings).await.unwrap());
            assert_eq!(inventory.delete_urls(&[other], &settings).await.unwrap(), 0);
            assert_eq!(inventory.delete_urls(&[asked], &settings).await.unwrap(), 1);
        });
    }
}
