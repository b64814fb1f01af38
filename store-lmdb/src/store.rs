//! [`LmdbStore`]: environment registry, transactions, map growth and eviction.

use std::collections::HashMap;
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use heed::types::{Bytes as Raw, DecodeIgnore, Str, Unit};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, MdbError, RoTxn, RwTxn, WithoutTls};
use httpcache_core::{CacheKey, Entry, EntryMeta, Store, StoreError, VariantId};

use crate::error::LmdbError;
use crate::records::{
    ID_LEN, MetaHeader, PreparedEntry, RecordId, decode_meta_record, index_key, nanos, parse_index_key,
    record_id,
};

/// The map size a new environment starts with: 1 GiB of address space (the file
/// itself only grows as data is written).
pub const DEFAULT_MAP_SIZE: usize = 1 << 30;

/// How far the map may grow by default when it fills up: 8 GiB on 64-bit targets,
/// 1 GiB elsewhere.
pub const DEFAULT_MAX_MAP_SIZE: usize = if usize::BITS >= 64 { (8u64 << 30) as usize } else { 1 << 30 };

/// Map sizes are rounded up to a multiple of this, which is a multiple of every
/// common page size (4, 16 and 64 KiB).
const MAP_GRANULE: usize = 64 << 10;

/// How many times a transaction is retried after the map was resized or grown.
const MAX_ATTEMPTS: usize = 64;

/// Extra room asked for, beyond the entry, when evicting because the map is full.
const EVICTION_SLACK: u64 = 256 << 10;

/// Named databases.
const ENTRIES: &str = "entries";
const METAS: &str = "metas";
const BY_EXPIRY: &str = "by-expiry";
const BY_CREATED: &str = "by-created";
const INFO: &str = "info";

/// `info` keys.
const FORMAT_KEY: &str = "format";
const BYTES_KEY: &str = "bytes";
/// The value of `info["format"]`: marks the environment as ours.
const FORMAT: &[u8] = b"httpcache-lmdb/1";

/// One environment per canonical path per process (heed refuses to open a path twice).
static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = LazyLock::new(Default::default);

/// The wall clock. Stores are I/O edges: eviction of expired entries needs the time.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// `n` rounded up to a multiple of [`MAP_GRANULE`], at least one granule.
fn round_map_size(n: usize) -> usize {
    let granules = n.div_ceil(MAP_GRANULE).max(1);
    granules.checked_mul(MAP_GRANULE).unwrap_or(usize::MAX - usize::MAX % MAP_GRANULE)
}

/// How hard a commit pushes its writes to disk. Whatever the mode, a process that
/// crashes or is killed never leaves a partial write behind: the modes differ only in
/// what a crash of the *operating system* (or a power cut) may cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncMode {
    /// Every commit is flushed to disk before `put` returns (two `fsync`s): nothing is
    /// lost even if the machine goes down.
    Full,
    /// One flush per commit, the metadata page's flush deferred (LMDB's
    /// `MDB_NOMETASYNC`): the environment stays consistent after a system crash, which
    /// may undo the last committed write. The default: for a cache, losing the last
    /// write to a power cut costs one refetch, while a `Full` commit costs a second
    /// `fsync` on every miss (measured here: about 2 ms instead of 4 to 8 ms per put).
    #[default]
    Relaxed,
    /// No flush: the operating system writes pages back when it likes (LMDB's
    /// `MDB_NOSYNC`). Fastest. A system crash may lose recent writes, and on file
    /// systems that reorder writes may corrupt the environment (delete the directory
    /// to recover). For caches that are cheap to refill.
    None,
}

/// Options for opening an [`LmdbStore`]; see [`LmdbStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LmdbBuilder {
    path: PathBuf,
    map_size: usize,
    max_map_size: usize,
    max_bytes: Option<u64>,
    max_readers: u32,
    sync: SyncMode,
}

impl LmdbBuilder {
    /// The initial size of the memory map, in bytes (rounded up to 64 KiB; default
    /// [`DEFAULT_MAP_SIZE`]). The map grows, doubling, when a write fills it.
    pub fn map_size(mut self, bytes: usize) -> Self {
        self.map_size = bytes;
        self
    }

    /// The largest the map may grow to (default [`DEFAULT_MAX_MAP_SIZE`], never less
    /// than `map_size`). Once it is reached, writes evict entries to make room.
    pub fn max_map_size(mut self, bytes: usize) -> Self {
        self.max_map_size = bytes;
        self
    }

    /// Bounds the total size of the encoded entries: a put that goes over evicts
    /// expired entries first, then the oldest by creation time. Default: unbounded
    /// (only the map size limits the store).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// The size of LMDB's reader table: how many read transactions may be open at
    /// once across all processes (default 1024). Fixed by the first process to open
    /// the path.
    pub fn max_readers(mut self, readers: u32) -> Self {
        self.max_readers = readers.max(1);
        self
    }

    /// How commits are flushed to disk (default [`SyncMode::Relaxed`]).
    pub fn sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }

    /// Opens (creating when needed) the store. If this process already has the path
    /// open, the existing environment is shared and these options are ignored.
    pub fn open(self) -> Result<LmdbStore, LmdbError> {
        Shared::open(&self).map(|shared| LmdbStore { shared })
    }
}

/// Sizes and counts, from [`LmdbStore::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LmdbStats {
    /// How many entry records are stored.
    pub entries: u64,
    /// The total size of their encodings, in bytes (what `max_bytes` bounds).
    pub bytes: u64,
    /// The current size of this process's memory map, in bytes.
    pub map_size: usize,
}

/// The databases of one environment.
#[derive(Clone, Copy)]
struct Databases {
    /// Record id → encoded entry.
    entries: Database<'static, Raw, Raw>,
    /// Record id → meta record.
    metas: Database<'static, Raw, Raw>,
    /// Expires ++ record id → ().
    by_expiry: Database<'static, Raw, Unit>,
    /// Created ++ record id → ().
    by_created: Database<'static, Raw, Unit>,
    /// Format marker and byte counter.
    info: Database<'static, Str, Raw>,
}

/// Which index an eviction candidate came from.
#[derive(Clone, Copy)]
enum Index {
    Expiry,
    Created,
}

/// What the process shares for one path.
struct Shared {
    env: Env<WithoutTls>,
    dbs: Databases,
    /// Held shared by every transaction, exclusively by a map resize: LMDB allows a
    /// resize only while this process has no transaction open.
    gate: RwLock<()>,
    path: PathBuf,
    max_map_size: usize,
    max_bytes: Option<u64>,
}

impl Shared {
    /// The registry's environment for the builder's path, opened when needed.
    fn open(builder: &LmdbBuilder) -> Result<Arc<Shared>, LmdbError> {
        let path = &builder.path;
        let io = |what: &str, source| LmdbError::Io { context: format!("{what} {}", path.display()), source };
        if path.is_file() {
            return Err(LmdbError::NotACache(format!("{} is a file, not a directory", path.display())));
        }
        std::fs::create_dir_all(path).map_err(|e| io("create directory", e))?;
        let canonical = std::fs::canonicalize(path).map_err(|e| io("resolve", e))?;

        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        registry.retain(|_, shared| shared.strong_count() > 0);
        if let Some(shared) = registry.get(&canonical).and_then(Weak::upgrade) {
            return Ok(shared);
        }
        let shared = Arc::new(Shared::open_new(builder, canonical.clone())?);
        registry.insert(canonical, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// Opens the environment at `path` (not open in this process) and its databases.
    fn open_new(builder: &LmdbBuilder, path: PathBuf) -> Result<Shared, LmdbError> {
        let map_size = round_map_size(builder.map_size);
        let max_map_size = round_map_size(builder.max_map_size).max(map_size);
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(map_size).max_dbs(8).max_readers(builder.max_readers);
        let flags = match builder.sync {
            SyncMode::Full => EnvFlags::empty(),
            SyncMode::Relaxed => EnvFlags::NO_META_SYNC,
            SyncMode::None => EnvFlags::NO_SYNC,
        };
        // SAFETY: heed marks these flags unsafe because they weaken durability: with
        // them a crash of the operating system may lose (NO_META_SYNC: the last) or,
        // for NO_SYNC on file systems that reorder writes, damage committed data. They
        // do not affect memory safety or what a process crash leaves behind. The user
        // chose them through `SyncMode`, whose documentation states these costs.
        unsafe { options.flags(flags) };

        let mut attempts = 0;
        let env = loop {
            // SAFETY: LMDB maps `data.mdb` into memory; the mapping stays valid as long
            // as the file is changed only through LMDB with its lock file intact. We
            // open without `NO_LOCK` or other unsafe flags, so every process that opens
            // the path coordinates through LMDB's locks; this process opens each path
            // once (the registry above, keyed by canonical path); and no transaction
            // outlives `Shared`, which owns the environment. Programs that rewrite the
            // file behind LMDB's back are outside what a memory-mapped store can defend
            // against.
            match unsafe { options.open(&path) } {
                Ok(env) => break env,
                // A previous environment for this path is still being closed by the
                // thread that dropped the last handle: wait for it, then retry.
                Err(heed::Error::EnvAlreadyOpened) if attempts < 3 => {
                    attempts += 1;
                    if let Some(closing) = heed::env_closing_event(&path) {
                        closing.wait_timeout(Duration::from_secs(5));
                    }
                }
                Err(error) => return Err(LmdbError::from_heed("open", &path, error)),
            }
        };
        match env.clear_stale_readers() {
            Ok(0) => {}
            Ok(cleared) => tracing::debug!(path = %path.display(), cleared, "cleared stale LMDB readers"),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "could not clear stale LMDB readers")
            }
        }
        let dbs = Self::open_databases(&env, &path)?;
        Ok(Shared { env, dbs, gate: RwLock::new(()), path, max_map_size, max_bytes: builder.max_bytes })
    }

    /// Creates (or opens) the named databases, refusing environments that are not ours.
    fn open_databases(env: &Env<WithoutTls>, path: &Path) -> Result<Databases, LmdbError> {
        let not_ours = |error: heed::Error| match error {
            heed::Error::Mdb(MdbError::Incompatible) => {
                LmdbError::NotACache(format!("{} holds databases of another program", path.display()))
            }
            other => LmdbError::from_heed("open databases", path, other),
        };
        let wtxn = env.write_txn().map_err(not_ours)?;
        let opened = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                match opener.open_database::<Str, Raw>(wtxn, Some(INFO))? {
                    Some(info) => {
                        if info.get(wtxn, FORMAT_KEY)? != Some(FORMAT) {
                            return Ok(CommitOrAbort::Abort("its format marker is missing or foreign"));
                        }
                    }
                    None => {
                        let unnamed = opener.open_database::<Raw, DecodeIgnore>(wtxn, None)?;
                        if let Some(unnamed) = unnamed
                            && !unnamed.is_empty(wtxn)?
                        {
                            return Ok(CommitOrAbort::Abort("it holds data of another program"));
                        }
                    }
                }
                let info = opener.create_database::<Str, Raw>(wtxn, Some(INFO))?;
                if info.get(wtxn, FORMAT_KEY)?.is_none() {
                    info.put(wtxn, FORMAT_KEY, FORMAT)?;
                }
                let entries = opener.create_database::<Raw, Raw>(wtxn, Some(ENTRIES))?;
                let metas = opener.create_database::<Raw, Raw>(wtxn, Some(METAS))?;
                let by_expiry = opener.create_database::<Raw, Unit>(wtxn, Some(BY_EXPIRY))?;
                let by_created = opener.create_database::<Raw, Unit>(wtxn, Some(BY_CREATED))?;
                Ok(CommitOrAbort::Commit((entries, metas, by_expiry, by_created, info)))
            })
            .map_err(not_ours)?;
        match opened {
            CommitOrAbort::Commit((entries, metas, by_expiry, by_created, info)) => {
                Ok(Databases { entries, metas, by_expiry, by_created, info })
            }
            CommitOrAbort::Abort(reason) => {
                Err(LmdbError::NotACache(format!("{}: {reason}", path.display())))
            }
        }
    }

    fn gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, what: &str, error: heed::Error) -> LmdbError {
        LmdbError::from_heed(what, &self.path, error)
    }

    /// Runs `f` in a read transaction, retrying after another process grew the map.
    /// `f` must copy out what it returns.
    fn read<R>(
        &self,
        what: &str,
        mut f: impl FnMut(&RoTxn<'_, WithoutTls>) -> heed::Result<R>,
    ) -> Result<R, LmdbError> {
        for _ in 0..MAX_ATTEMPTS {
            let outcome = {
                let _shared = self.gate();
                match self.env.read_txn() {
                    Ok(txn) => f(&txn),
                    Err(error) => Err(error),
                }
            };
            match outcome {
                Err(heed::Error::Mdb(MdbError::MapResized)) => self.adopt_map_size(what)?,
                other => return other.map_err(|error| self.error(what, error)),
            }
        }
        Err(LmdbError::Lmdb { context: what.to_owned(), message: "the map kept being resized".into() })
    }

    /// Runs `f` in a write transaction and commits it. When the map is full it grows
    /// (up to `max_map_size`) and retries; when it cannot grow, the error is
    /// [`LmdbError::Full`] and nothing was written.
    fn write<R>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut RwTxn<'_>) -> heed::Result<R>,
    ) -> Result<R, LmdbError> {
        for _ in 0..MAX_ATTEMPTS {
            let (outcome, map_size) = {
                let _shared = self.gate();
                let map_size = self.env.info().map_size;
                let outcome = match self.env.write_txn() {
                    Ok(mut txn) => f(&mut txn).and_then(|value| txn.commit().map(|()| value)),
                    Err(error) => Err(error),
                };
                (outcome, map_size)
            };
            match outcome {
                Err(heed::Error::Mdb(MdbError::MapResized)) => self.adopt_map_size(what)?,
                Err(heed::Error::Mdb(MdbError::MapFull)) => {
                    if !self.grow(what, map_size)? {
                        return Err(self.error(what, heed::Error::Mdb(MdbError::MapFull)));
                    }
                }
                other => return other.map_err(|error| self.error(what, error)),
            }
        }
        Err(LmdbError::Lmdb { context: what.to_owned(), message: "the map kept being resized".into() })
    }

    /// Adopts the map size another process set (after `MDB_MAP_RESIZED`).
    fn adopt_map_size(&self, what: &str) -> Result<(), LmdbError> {
        let _exclusive = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: LMDB allows changing the map size while the calling process has no
        // transaction open in the environment. Every transaction of this environment is
        // opened by `read` or `write` while holding `gate` shared, and ended before the
        // guard is released; we hold `gate` exclusively, so none is open. The
        // environment is private to `Shared` (one per path per process, by the
        // registry), so no other code can open a transaction on it. Size 0 means "the
        // size recorded in the environment".
        unsafe { self.env.resize(0) }.map_err(|error| self.error(what, error))
    }

    /// Doubles the map, up to `max_map_size`. `seen` is the map size when the write
    /// failed: if another thread grew it since, there is nothing to do. Returns whether
    /// there is now more room.
    fn grow(&self, what: &str, seen: usize) -> Result<bool, LmdbError> {
        let _exclusive = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let current = self.env.info().map_size;
        if current > seen {
            return Ok(true);
        }
        if current >= self.max_map_size {
            return Ok(false);
        }
        let target = round_map_size(current.saturating_mul(2)).min(self.max_map_size);
        tracing::debug!(path = %self.path.display(), from = current, to = target, "growing the LMDB map");
        // SAFETY: as in `adopt_map_size`: `gate` is held exclusively, so this process
        // has no transaction open in the environment.
        unsafe { self.env.resize(target) }.map_err(|error| self.error(what, error))?;
        Ok(true)
    }

    // ---- helpers running inside a write transaction ----

    fn total_bytes(&self, txn: &RoTxn<'_>) -> heed::Result<u64> {
        Ok(self
            .dbs
            .info
            .get(txn, BYTES_KEY)?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn set_total_bytes(&self, txn: &mut RwTxn<'_>, total: u64) -> heed::Result<()> {
        self.dbs.info.put(txn, BYTES_KEY, &total.to_be_bytes())
    }

    /// Deletes the record `id`, its meta record and its index keys. Returns the size of
    /// the deleted entry, or `None` when there was no entry record.
    fn unlink(&self, txn: &mut RwTxn<'_>, id: &[u8]) -> heed::Result<Option<u64>> {
        let header = self.dbs.metas.get(txn, id)?.and_then(MetaHeader::read);
        let entry_len = self.dbs.entries.get(txn, id)?.map(|entry| entry.len() as u64);
        if let (Some(header), Ok(id)) = (header, RecordId::try_from(id)) {
            if let Some(expires) = header.expires {
                self.dbs.by_expiry.delete(txn, &index_key(expires, &id))?;
            }
            self.dbs.by_created.delete(txn, &index_key(header.created, &id))?;
        }
        self.dbs.metas.delete(txn, id)?;
        self.dbs.entries.delete(txn, id)?;
        Ok(entry_len)
    }

    /// Writes a prepared entry, replacing the record with the same id, then evicts
    /// down to `max_bytes` (sparing the new record).
    fn put_in(&self, txn: &mut RwTxn<'_>, entry: &PreparedEntry, now: u64) -> heed::Result<()> {
        let mut total = self.total_bytes(txn)?;
        total = total.saturating_sub(self.unlink(txn, &entry.id)?.unwrap_or(0));
        self.dbs.entries.put(txn, &entry.id, &entry.encoded)?;
        self.dbs.metas.put(txn, &entry.id, &entry.meta)?;
        if let Some(expires) = entry.header.expires {
            self.dbs.by_expiry.put(txn, &index_key(expires, &entry.id), &())?;
        }
        self.dbs.by_created.put(txn, &index_key(entry.header.created, &entry.id), &())?;
        total = total.saturating_add(entry.encoded.len() as u64);
        if let Some(max_bytes) = self.max_bytes {
            while total > max_bytes {
                match self.evict_one(txn, now, Some(&entry.id))? {
                    Some(freed) => total = total.saturating_sub(freed),
                    None => break,
                }
            }
        }
        self.set_total_bytes(txn, total)
    }

    /// Evicts one record: the soonest-expired one if any has expired by `now`, else the
    /// oldest by creation time, never `spare`. Returns the bytes freed, `None` when
    /// there is nothing left to evict. Index keys without a record are dropped on the way.
    fn evict_one(
        &self,
        txn: &mut RwTxn<'_>,
        now: u64,
        spare: Option<&RecordId>,
    ) -> heed::Result<Option<u64>> {
        let candidate = {
            let upper = now.checked_add(1).map(u64::to_be_bytes);
            let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
                Bound::Unbounded,
                upper.as_ref().map_or(Bound::Unbounded, |upper| Bound::Excluded(&upper[..])),
            );
            let mut candidate = None;
            for item in self.dbs.by_expiry.range(txn, &bounds)? {
                let (key, ()) = item?;
                let id = parse_index_key(key).map(|(_, id)| id);
                if id.is_none() || id.as_ref() != spare {
                    candidate = Some((Index::Expiry, key.to_vec(), id));
                    break;
                }
            }
            if candidate.is_none() {
                for item in self.dbs.by_created.iter(txn)? {
                    let (key, ()) = item?;
                    let id = parse_index_key(key).map(|(_, id)| id);
                    if id.is_none() || id.as_ref() != spare {
                        candidate = Some((Index::Created, key.to_vec(), id));
                        break;
                    }
                }
            }
            candidate
        };
        let Some((index, key, id)) = candidate else { return Ok(None) };
        let freed = match id {
            Some(id) => self.unlink(txn, &id)?.unwrap_or(0),
            None => 0,
        };
        match index {
            Index::Expiry => self.dbs.by_expiry.delete(txn, &key)?,
            Index::Created => self.dbs.by_created.delete(txn, &key)?,
        };
        Ok(Some(freed))
    }

    /// Evicts records until `needed` bytes are freed or nothing is left; returns how
    /// many records went.
    fn evict_bytes(&self, needed: u64, now: u64) -> Result<usize, LmdbError> {
        let batch = self.write("evict", |txn| {
            let mut total = self.total_bytes(txn)?;
            let (mut freed, mut evicted) = (0u64, 0usize);
            while freed < needed {
                match self.evict_one(txn, now, None)? {
                    Some(bytes) => {
                        freed = freed.saturating_add(bytes);
                        total = total.saturating_sub(bytes);
                        evicted += 1;
                    }
                    None => break,
                }
            }
            self.set_total_bytes(txn, total)?;
            Ok(evicted)
        });
        match batch {
            // A big deletion needs pages of its own: fall back to one record at a time.
            Err(LmdbError::Full(_)) => self.write("evict", |txn| {
                let total = self.total_bytes(txn)?;
                let freed = self.evict_one(txn, now, None)?;
                self.set_total_bytes(txn, total.saturating_sub(freed.unwrap_or(0)))?;
                Ok(usize::from(freed.is_some()))
            }),
            other => other,
        }
    }

    /// Deletes records found undecodable, if they still hold the bytes that failed.
    /// `records` are (record id, the bytes seen, whether those were the meta record).
    fn remove_corrupt(&self, records: &[(Vec<u8>, Bytes, bool)]) {
        for (id, _, is_meta) in records {
            tracing::warn!(
                path = %self.path.display(),
                id = %hex(id),
                record = if *is_meta { "meta" } else { "entry" },
                "deleting an undecodable cache record"
            );
        }
        let outcome = self.write("delete corrupt records", |txn| {
            let mut total = self.total_bytes(txn)?;
            for (id, seen, is_meta) in records {
                let db = if *is_meta { self.dbs.metas } else { self.dbs.entries };
                if db.get(txn, id)? == Some(&seen[..]) {
                    total = total.saturating_sub(self.unlink(txn, id)?.unwrap_or(0));
                }
            }
            self.set_total_bytes(txn, total)
        });
        if let Err(error) = outcome {
            tracing::warn!(path = %self.path.display(), %error, "could not delete undecodable records");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The result of reading a key: the decoded variants and the records that failed.
pub(crate) struct Lookup {
    pub(crate) entries: Vec<Entry>,
    pub(crate) corrupt: Vec<(Vec<u8>, Bytes, bool)>,
}

/// The result of a scan: the metadata and the meta records that failed.
pub(crate) struct Listing {
    pub(crate) metas: Vec<EntryMeta>,
    pub(crate) corrupt: Vec<(Vec<u8>, Bytes, bool)>,
}

/// The LMDB store: entries in one memory-mapped environment shared by every thread
/// and process that opens the same directory. Cheap to clone (a handle).
///
/// See the [crate docs](crate) for the layout, growth and eviction rules.
#[derive(Clone)]
pub struct LmdbStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for LmdbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LmdbStore").field("path", &self.shared.path).finish_non_exhaustive()
    }
}

impl LmdbStore {
    /// Opens (creating when needed) the store in directory `path`, with the default
    /// options. Equivalent to `LmdbStore::builder(path).open()`.
    pub fn open(path: impl Into<PathBuf>) -> Result<LmdbStore, LmdbError> {
        Self::builder(path).open()
    }

    /// Options for opening the store in directory `path`.
    pub fn builder(path: impl Into<PathBuf>) -> LmdbBuilder {
        LmdbBuilder {
            path: path.into(),
            map_size: DEFAULT_MAP_SIZE,
            max_map_size: DEFAULT_MAX_MAP_SIZE,
            max_bytes: None,
            max_readers: 1024,
            sync: SyncMode::default(),
        }
    }

    /// The directory of the environment (canonical).
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Whether `self` and `other` share one environment.
    pub fn same_environment(&self, other: &LmdbStore) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// An [`AsyncStore`](httpcache_core::AsyncStore) over this store.
    pub fn into_async(self) -> crate::AsyncLmdbStore {
        crate::AsyncLmdbStore::new(self)
    }

    /// Deletes every entry whose expiry is at or before `now`, walking the expiry
    /// index (entries that never expire are not visited). Returns how many went.
    pub fn purge_expired(&self, now: SystemTime) -> Result<usize, LmdbError> {
        let shared = &self.shared;
        let now = nanos(now);
        shared.write("purge expired", |txn| {
            let expired: Vec<Vec<u8>> = {
                let upper = now.checked_add(1).map(u64::to_be_bytes);
                let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
                    Bound::Unbounded,
                    upper.as_ref().map_or(Bound::Unbounded, |upper| Bound::Excluded(&upper[..])),
                );
                let mut keys = Vec::new();
                for item in shared.dbs.by_expiry.range(txn, &bounds)? {
                    keys.push(item?.0.to_vec());
                }
                keys
            };
            let mut total = shared.total_bytes(txn)?;
            let mut removed = 0;
            for key in &expired {
                if let Some((expires, id)) = parse_index_key(key) {
                    // Only when the record still expires then (the index key is not stale).
                    let header = shared.dbs.metas.get(txn, &id)?.map(MetaHeader::read);
                    let current = match header {
                        Some(Some(header)) => header.expires == Some(expires),
                        Some(None) => true, // an unreadable meta record: drop the entry
                        None => false,
                    };
                    if current && let Some(freed) = shared.unlink(txn, &id)? {
                        total = total.saturating_sub(freed);
                        removed += 1;
                    }
                }
                shared.dbs.by_expiry.delete(txn, key)?;
            }
            shared.set_total_bytes(txn, total)?;
            Ok(removed)
        })
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<LmdbStats, LmdbError> {
        let shared = &self.shared;
        let (entries, bytes) =
            shared.read("stats", |txn| Ok((shared.dbs.entries.len(txn)?, shared.total_bytes(txn)?)))?;
        Ok(LmdbStats { entries, bytes, map_size: shared.env.info().map_size })
    }

    /// Reads every variant of `key` in one read transaction: each value is copied out
    /// of the map once and decoded in place ([`Entry::decode_shared`]).
    pub(crate) fn lookup(&self, key: &CacheKey) -> Result<Lookup, LmdbError> {
        let shared = &self.shared;
        let raw = shared.read("get", |txn| {
            let mut raw = Vec::new();
            for item in shared.dbs.entries.prefix_iter(txn, key.as_bytes())? {
                let (id, value) = item?;
                raw.push((id.to_vec(), Bytes::copy_from_slice(value)));
            }
            Ok(raw)
        })?;
        let mut lookup = Lookup { entries: Vec::with_capacity(raw.len()), corrupt: Vec::new() };
        for (id, value) in raw {
            match Entry::decode_shared(value.clone()) {
                Ok(entry) if id.len() == ID_LEN && record_id(&entry.key, entry.variant)[..] == id[..] => {
                    lookup.entries.push(entry);
                }
                _ => lookup.corrupt.push((id, value, false)),
            }
        }
        Ok(lookup)
    }

    /// Reads every meta record in one read transaction.
    pub(crate) fn listing(&self) -> Result<Listing, LmdbError> {
        let shared = &self.shared;
        shared.read("scan", |txn| {
            let mut listing = Listing { metas: Vec::new(), corrupt: Vec::new() };
            for item in shared.dbs.metas.iter(txn)? {
                let (id, record) = item?;
                match decode_meta_record(id, record) {
                    Some(meta) => listing.metas.push(meta),
                    None => listing.corrupt.push((id.to_vec(), Bytes::copy_from_slice(record), true)),
                }
            }
            Ok(listing)
        })
    }

    /// Deletes undecodable records found by [`lookup`](Self::lookup) or [`listing`](Self::listing).
    pub(crate) fn remove_corrupt(&self, records: &[(Vec<u8>, Bytes, bool)]) {
        if !records.is_empty() {
            self.shared.remove_corrupt(records);
        }
    }

    /// Writes an encoded entry. When the map cannot grow any more, evicts expired then
    /// oldest entries until the write fits; fails only when the store is empty and the
    /// entry still does not fit (or it alone exceeds `max_bytes`).
    pub(crate) fn put_prepared(&self, entry: &PreparedEntry) -> Result<(), LmdbError> {
        self.put_all(std::slice::from_ref(entry))
    }

    /// Writes encoded entries in one transaction. When the map cannot grow any more,
    /// evicts expired then oldest entries until the write fits; fails only when the
    /// store is empty and the entries still do not fit (or one alone exceeds `max_bytes`).
    fn put_all(&self, entries: &[PreparedEntry]) -> Result<(), LmdbError> {
        let shared = &self.shared;
        let mut size = 0u64;
        for entry in entries {
            let entry_size = entry.encoded.len() as u64;
            if let Some(max_bytes) = shared.max_bytes
                && entry_size > max_bytes
            {
                return Err(LmdbError::Full(format!(
                    "an entry of {entry_size} bytes exceeds max_bytes ({max_bytes}) of {}",
                    shared.path.display()
                )));
            }
            size = size.saturating_add(entry_size);
        }
        if size >= shared.max_map_size as u64 {
            return Err(LmdbError::Full(format!(
                "{size} bytes of entries cannot fit in the {}-byte map of {}",
                shared.max_map_size,
                shared.path.display()
            )));
        }
        let now = nanos(wall_clock());
        loop {
            let outcome = shared.write("put", |txn| {
                for entry in entries {
                    shared.put_in(txn, entry, now)?;
                }
                Ok(())
            });
            match outcome {
                Err(LmdbError::Full(message)) => {
                    let needed = size.saturating_mul(2).saturating_add(EVICTION_SLACK);
                    if shared.evict_bytes(needed, now)? == 0 {
                        return Err(LmdbError::Full(message));
                    }
                }
                other => return other,
            }
        }
    }

    /// Stores several entries in one write transaction: all or none are written, and
    /// the cost of committing (an `fsync`) is paid once. Same rules as
    /// [`Store::put`] otherwise; under `max_bytes`, later entries of the batch may
    /// evict earlier ones. Meant for imports and copies, in batches of up to some
    /// tens of thousands of entries (LMDB bounds how much one transaction may change).
    pub fn put_batch<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) -> Result<(), LmdbError> {
        let prepared: Vec<PreparedEntry> = entries.into_iter().map(PreparedEntry::new).collect();
        self.put_all(&prepared)
    }

    pub(crate) fn remove_key(&self, key: &CacheKey) -> Result<usize, LmdbError> {
        let shared = &self.shared;
        shared.write("remove", |txn| {
            let mut ids = Vec::new();
            for db in [shared.dbs.entries, shared.dbs.metas] {
                for item in db.prefix_iter(txn, key.as_bytes())? {
                    let id = item?.0;
                    if !ids.iter().any(|seen: &Vec<u8>| seen[..] == id[..]) {
                        ids.push(id.to_vec());
                    }
                }
            }
            let mut total = shared.total_bytes(txn)?;
            let mut removed = 0;
            for id in &ids {
                if let Some(freed) = shared.unlink(txn, id)? {
                    total = total.saturating_sub(freed);
                    removed += 1;
                }
            }
            shared.set_total_bytes(txn, total)?;
            Ok(removed)
        })
    }

    pub(crate) fn remove_one(&self, key: &CacheKey, variant: VariantId) -> Result<bool, LmdbError> {
        let shared = &self.shared;
        let id = record_id(key, variant);
        shared.write("remove variant", |txn| {
            let freed = shared.unlink(txn, &id)?;
            if let Some(freed) = freed {
                let total = shared.total_bytes(txn)?;
                shared.set_total_bytes(txn, total.saturating_sub(freed))?;
            }
            Ok(freed.is_some())
        })
    }

    pub(crate) fn clear_all(&self) -> Result<(), LmdbError> {
        let shared = &self.shared;
        shared.write("clear", |txn| {
            shared.dbs.entries.clear(txn)?;
            shared.dbs.metas.clear(txn)?;
            shared.dbs.by_expiry.clear(txn)?;
            shared.dbs.by_created.clear(txn)?;
            shared.set_total_bytes(txn, 0)
        })
    }

    /// Clears reader slots left by processes that died mid-read.
    pub(crate) fn clear_stale_readers(&self) -> Result<(), LmdbError> {
        let shared = &self.shared;
        shared.env.clear_stale_readers().map(drop).map_err(|error| shared.error("clear stale readers", error))
    }
}

impl Store for LmdbStore {
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        let lookup = self.lookup(key)?;
        self.remove_corrupt(&lookup.corrupt);
        Ok(lookup.entries)
    }

    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        Ok(self.put_prepared(&PreparedEntry::new(entry))?)
    }

    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        Ok(self.remove_key(key)?)
    }

    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        Ok(self.remove_one(key, variant)?)
    }

    fn clear(&self) -> Result<(), StoreError> {
        Ok(self.clear_all()?)
    }

    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        let listing = self.listing()?;
        self.remove_corrupt(&listing.corrupt);
        Ok(listing.metas)
    }

    /// LMDB reuses freed pages itself and cannot shrink its file in place; compacting
    /// clears reader slots left by dead processes.
    fn compact(&self) -> Result<(), StoreError> {
        Ok(self.clear_stale_readers()?)
    }
}

#[cfg(test)]
impl LmdbStore {
    /// Writes `bytes` as the record of (`key`, `variant`) the way `put` would have
    /// stored them (entry and meta record both derived from `bytes`), bypassing the
    /// encoder: how a record that went bad looks to the store.
    pub(crate) fn write_raw(&self, key: &CacheKey, variant: VariantId, bytes: &[u8]) {
        let shared = &self.shared;
        let id = record_id(key, variant);
        let prefix_len = EntryMeta::prefix_len(&bytes[..bytes.len().min(10)])
            .filter(|&len| len <= bytes.len())
            .unwrap_or(bytes.len());
        let header = MetaHeader { created: 0, expires: None, entry_len: bytes.len() as u64 };
        let mut meta = Vec::new();
        header.write(&mut meta);
        meta.extend_from_slice(&bytes[..prefix_len]);
        shared
            .write("write raw", |txn| {
                let total = shared.total_bytes(txn)?;
                let total = total.saturating_sub(shared.unlink(txn, &id)?.unwrap_or(0));
                shared.dbs.entries.put(txn, &id, bytes)?;
                shared.dbs.metas.put(txn, &id, &meta)?;
                shared.dbs.by_created.put(txn, &index_key(0, &id), &())?;
                shared.set_total_bytes(txn, total + bytes.len() as u64)
            })
            .expect("write a raw record");
    }

    /// How many keys each index holds: (by expiry, by creation).
    pub(crate) fn index_lengths(&self) -> (u64, u64) {
        let shared = &self.shared;
        shared
            .read("index lengths", |txn| {
                Ok((shared.dbs.by_expiry.len(txn)?, shared.dbs.by_created.len(txn)?))
            })
            .expect("read index lengths")
    }
}
