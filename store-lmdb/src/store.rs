//! [`LmdbStore`]: environment registry, transactions, map growth and eviction.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use heed::types::{Bytes as Raw, DecodeIgnore, Str, Unit};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, MdbError, RoTxn, RwTxn, WithTls};
use httpcache_core::behind::overlay;
use httpcache_core::{
    CacheKey, DecodeError, Entry, EntryMeta, Queued, Store, StoreError, VariantId, WriteBehind,
};

use crate::error::LmdbError;
use crate::pages::{COMMIT_RESERVE, Geometry, ONE_ENTRY_DEPTHS, TreeDepths, WritePages, eviction_reserve};
use crate::records::{
    EntryRecord, MetaHeader, PreparedEntry, RecordId, decode_meta_record, index_key, nanos, parse_index_key,
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

/// How long the writer of refreshes waits for more once the queue is empty, before
/// its thread ends (and with it its handle on the environment).
const WRITER_IDLE: Duration = Duration::from_millis(500);

/// Extra room asked for, beyond the entry, when evicting because the map is full.
const EVICTION_SLACK: u64 = 256 << 10;

/// Named databases.
const ENTRIES: &str = "entries";
const BODIES: &str = "bodies";
const METAS: &str = "metas";
const BY_EXPIRY: &str = "by-expiry";
const BY_CREATED: &str = "by-created";
const INFO: &str = "info";

/// `info` keys.
const FORMAT_KEY: &str = "format";
const BYTES_KEY: &str = "bytes";
/// The first byte of the keys [`Shared::pages_left`] writes in `info`, in a transaction
/// it aborts: not UTF-8, so no `info` key has it.
const PROBE_KEY_TAG: u8 = 0xFF;
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
    /// than `map_size`). Once it is reached, writes evict entries to make room; a
    /// write eviction could not make room for is refused instead.
    ///
    /// The map (and the file) may grow to `max_map_size`, but entries fill it only up
    /// to `max_map_size` less an *eviction reserve*: pages a put must leave free so
    /// that evicting for the next one can always run (LMDB copies the pages a deletion
    /// changes too). 30 to 34 pages (120 to 136 KiB of 4 KiB pages) in a map of a few
    /// MiB of small entries, about 60 in one of several GiB; see the [crate docs](crate#size).
    pub fn max_map_size(mut self, bytes: usize) -> Self {
        self.max_map_size = bytes;
        self
    }

    /// Bounds the total size of the stored entries (records and bodies kept apart,
    /// about their encoded size): a put that goes over evicts
    /// expired entries first, then the oldest by creation time. Default: unbounded
    /// (only the map size limits the store).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// The size of LMDB's reader table: how many threads, across all processes, may
    /// read the cache (default 1024). A thread takes a slot at its first read and keeps
    /// it until it exits, so reads take no lock; a read on a thread that finds the table
    /// full fails (a miss for the drivers, with a warning) until some reading thread
    /// exits. Fixed by the first process to open the path.
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
    /// The total size of their records, bodies kept apart included, in bytes (what
    /// `max_bytes` bounds).
    pub bytes: u64,
    /// The current size of this process's memory map, in bytes.
    pub map_size: usize,
}

/// The databases of one environment.
#[derive(Clone, Copy)]
struct Databases {
    /// Record id → entry record: the whole encoding, or a head whose body is in `bodies`.
    entries: Database<'static, Raw, Raw>,
    /// Record id → the body of an entry whose record is a head.
    bodies: Database<'static, Raw, Raw>,
    /// Record id → meta record.
    metas: Database<'static, Raw, Raw>,
    /// Expires ++ record id → ().
    by_expiry: Database<'static, Raw, Unit>,
    /// Created ++ record id → ().
    by_created: Database<'static, Raw, Unit>,
    /// Format marker and byte counter.
    info: Database<'static, Str, Raw>,
}

/// How [`LmdbStore::put_all`] writes its entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Whole.
    Put,
    /// Reusing the stored body when it is provably the entry's.
    Refresh,
}

/// Which index an eviction candidate came from.
#[derive(Clone, Copy)]
enum Index {
    Expiry,
    Created,
}

/// What a write transaction leaves free of a map that cannot grow, for the writes after
/// it: LMDB copies every page a write changes, deletions included, so a map with no free
/// page cannot be written at all, not even to evict (see the [crate docs](crate#size)).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Keep {
    /// The eviction reserve ([`eviction_reserve`]): what puts and refreshes leave, so
    /// that evicting for the next put, and the commits around it, find their pages.
    Reserve,
    /// One more commit ([`COMMIT_RESERVE`]): what evictions, removals, purges and
    /// `clear` leave, so that the commit after them, which lets the pages they freed be
    /// reused, can be made.
    Commit,
    /// Nothing: the commit that lets freed pages be reused, whose pages the others keep.
    Nothing,
}

/// How many transactions [`Shared::delete_in_batches`] commits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Batches {
    /// One: an eviction, which the put it makes room for then retries.
    One,
    /// As many as it takes to delete everything asked for: a purge.
    UntilDone,
}

/// What the process shares for one path.
struct Shared {
    env: Env<WithTls>,
    dbs: Databases,
    /// Held shared by every transaction, exclusively by a map resize: LMDB allows a
    /// resize only while this process has no transaction open. Sharded by thread, so
    /// that readers on different threads take different locks (a lock they all took
    /// would pass its cache line between their cores on every read).
    gate: ShardedLock<()>,
    path: PathBuf,
    max_map_size: usize,
    max_bytes: Option<u64>,
    /// The environment's page size, read once at open: what [`WritePages`] counts in.
    geometry: Geometry,
    /// Refreshes accepted and not yet written (see [`Store::flush`]).
    behind: WriteBehind<PreparedEntry>,
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
        // Read transactions use the thread's own reader slot (LMDB without `MDB_NOTLS`):
        // a thread takes one slot once, where a transaction of its own would take a slot
        // under the reader table's mutex at every read. Measured on 2 cores, 1 KiB hits
        // from two threads: about 20 % more hits per second. The rule that comes with
        // it, one transaction per thread at a time, holds: every transaction lives
        // inside `read` or `write`, and no closure they run opens another.
        let mut options = EnvOpenOptions::new();
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

        reserve_lock_file(&path, builder.max_readers)?;
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
        // The page size LMDB uses (`ms_psize`), from the environment itself: no
        // transaction needed.
        let geometry = Geometry::new(env.unnamed_database_stat().page_size);
        Ok(Shared {
            env,
            dbs,
            gate: ShardedLock::new(()),
            path,
            max_map_size,
            max_bytes: builder.max_bytes,
            geometry,
            behind: WriteBehind::default(),
        })
    }

    /// Creates (or opens) the named databases, refusing environments that are not ours.
    fn open_databases(env: &Env<WithTls>, path: &Path) -> Result<Databases, LmdbError> {
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
                // Absent from environments written by the previous layout: created here.
                let bodies = opener.create_database::<Raw, Raw>(wtxn, Some(BODIES))?;
                let metas = opener.create_database::<Raw, Raw>(wtxn, Some(METAS))?;
                let by_expiry = opener.create_database::<Raw, Unit>(wtxn, Some(BY_EXPIRY))?;
                let by_created = opener.create_database::<Raw, Unit>(wtxn, Some(BY_CREATED))?;
                Ok(CommitOrAbort::Commit((entries, bodies, metas, by_expiry, by_created, info)))
            })
            .map_err(not_ours)?;
        match opened {
            CommitOrAbort::Commit((entries, bodies, metas, by_expiry, by_created, info)) => {
                Ok(Databases { entries, bodies, metas, by_expiry, by_created, info })
            }
            CommitOrAbort::Abort(reason) => {
                Err(LmdbError::NotACache(format!("{}: {reason}", path.display())))
            }
        }
    }

    fn gate(&self) -> ShardedLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, what: &str, error: heed::Error) -> LmdbError {
        LmdbError::from_heed(what, &self.path, error)
    }

    /// Runs `f` in a read transaction, retrying after another process grew the map.
    /// `f` must copy out what it returns, and must not open another transaction.
    fn read<R>(
        &self,
        what: &str,
        mut f: impl FnMut(&RoTxn<'_, WithTls>) -> heed::Result<R>,
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

    /// Runs `f` in a write transaction and commits it, if it leaves what `keep` says
    /// free ([`keep_room`](Self::keep_room)). When the map is full (or that room is not
    /// left) it grows (up to `max_map_size`) and retries; when it cannot grow, the error
    /// is [`LmdbError::Full`] and nothing was written. `f` must not open another
    /// transaction.
    ///
    /// Before it grows a full map or gives up on it, it clears the reader slots of
    /// processes that died mid-read (killed, or stopped by a signal without unwinding),
    /// once: such a slot keeps the snapshot its reader had, and LMDB reuses no page freed
    /// after it, so the map would grow to its largest, then stay full for every write of
    /// every process until the store is opened again (or compacted).
    fn write<R>(
        &self,
        what: &str,
        keep: Keep,
        mut f: impl FnMut(&mut RwTxn<'_>) -> heed::Result<R>,
    ) -> Result<R, LmdbError> {
        let mut dead_readers_cleared = false;
        for _ in 0..MAX_ATTEMPTS {
            let (outcome, map_size) = {
                let _shared = self.gate();
                let map_size = self.env.info().map_size;
                let outcome = match self.env.write_txn() {
                    Ok(mut txn) => f(&mut txn)
                        .and_then(|value| self.keep_room(&mut txn, keep, map_size).map(|()| value))
                        .and_then(|value| txn.commit().map(|()| value)),
                    Err(error) => Err(error),
                };
                (outcome, map_size)
            };
            match outcome {
                Err(heed::Error::Mdb(MdbError::MapResized)) => self.adopt_map_size(what)?,
                Err(heed::Error::Mdb(MdbError::MapFull)) => {
                    if !dead_readers_cleared {
                        dead_readers_cleared = true;
                        if self.clear_dead_readers() {
                            continue;
                        }
                    }
                    if !self.grow(what, map_size)? {
                        return Err(self.error(what, heed::Error::Mdb(MdbError::MapFull)));
                    }
                }
                other => return other.map_err(|error| self.error(what, error)),
            }
        }
        Err(LmdbError::Lmdb { context: what.to_owned(), message: "the map kept being resized".into() })
    }

    /// Clears the reader slots of dead processes; whether there were any.
    fn clear_dead_readers(&self) -> bool {
        match self.env.clear_stale_readers() {
            Ok(0) => false,
            Ok(cleared) => {
                tracing::debug!(path = %self.path.display(), cleared, "cleared the reader slots of dead processes");
                true
            }
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "could not clear stale LMDB readers");
                false
            }
        }
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

    /// Fails with `MDB_MAP_FULL`, as LMDB would, unless the map (`map_size` bytes now,
    /// able to grow to `max_map_size`) keeps what `keep` says free after this write
    /// transaction's changes: pages it could still take now, or by growing the map. A
    /// write failing so grows the map, or at its largest is [`LmdbError::Full`], which
    /// makes a put evict first.
    fn keep_room(&self, txn: &mut RwTxn<'_>, keep: Keep, map_size: usize) -> heed::Result<()> {
        let pages = match keep {
            Keep::Nothing => return Ok(()),
            Keep::Commit => COMMIT_RESERVE,
            Keep::Reserve => eviction_reserve(self.tree_depths(txn)?),
        };
        let growth = self.max_map_size.saturating_sub(map_size) as u64 / self.geometry.page_size();
        let wanted = pages.saturating_sub(growth);
        if wanted == 0 || self.pages_left(txn, wanted)? == wanted {
            Ok(())
        } else {
            Err(heed::Error::Mdb(MdbError::MapFull))
        }
    }

    /// The depths of the five B-trees a write changes, as this transaction sees them.
    fn tree_depths(&self, txn: &RoTxn<'_>) -> heed::Result<TreeDepths> {
        let depth = |stat: heed::DatabaseStat| u64::from(stat.depth);
        Ok([
            depth(self.dbs.entries.stat(txn)?),
            depth(self.dbs.bodies.stat(txn)?),
            depth(self.dbs.metas.stat(txn)?),
            depth(self.dbs.by_expiry.stat(txn)?),
            depth(self.dbs.by_created.stat(txn)?),
        ])
    }

    /// How many of `wanted` more pages this write transaction could still take (up to
    /// `wanted`): it takes them, in a nested transaction that is then aborted, one page
    /// at a time (values of one overflow page each, in `info` under keys no record has),
    /// the way the pages of the writes after it will be taken: from pages freed by
    /// commits at least two before, or from the never-used end of the map. Exact where
    /// counting would not be: LMDB reports neither how many pages the free list holds
    /// nor which of them are reusable yet.
    fn pages_left(&self, txn: &mut RwTxn<'_>, wanted: u64) -> heed::Result<u64> {
        let info = self.dbs.info.remap_key_type::<Raw>();
        // `(len + 16) / page size` rounded up: one overflow page.
        let value = vec![0u8; (self.geometry.page_size() - 16) as usize];
        let mut probe = self.env.nested_write_txn(txn)?;
        for n in 0..wanted {
            let mut key = [PROBE_KEY_TAG; 9];
            key[1..].copy_from_slice(&n.to_be_bytes());
            match info.put(&mut probe, &key, &value) {
                Ok(()) => {}
                Err(heed::Error::Mdb(MdbError::MapFull)) => return Ok(n),
                Err(error) => return Err(error),
            }
        }
        // Dropping `probe` aborts it: the parent transaction is as it was.
        Ok(wanted)
    }

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

    /// Deletes the record `id`: its entry record, its body (unless `keep_body`), its
    /// meta record and its index keys. A body with no head in front of it (left by an
    /// older build, which deleted heads it could not read) goes too.
    fn unlink(&self, txn: &mut RwTxn<'_>, id: &[u8], keep_body: bool) -> heed::Result<Unlinked> {
        let header = self.dbs.metas.get(txn, id)?.and_then(MetaHeader::read);
        let record_len = self.dbs.entries.get(txn, id)?.map(|record| record.len() as u64);
        if let (Some(header), Ok(id)) = (header, RecordId::try_from(id)) {
            if let Some(expires) = header.expires {
                self.dbs.by_expiry.delete(txn, &index_key(expires, &id))?;
            }
            self.dbs.by_created.delete(txn, &index_key(header.created, &id))?;
        }
        self.dbs.metas.delete(txn, id)?;
        self.dbs.entries.delete(txn, id)?;
        let mut freed = record_len.unwrap_or(0);
        if !keep_body && let Some(body) = self.dbs.bodies.get(txn, id)? {
            freed = freed.saturating_add(body.len() as u64);
            self.dbs.bodies.delete(txn, id)?;
        }
        Ok(Unlinked { existed: record_len.is_some(), freed })
    }

    /// Writes a prepared entry, replacing the record with the same id, then evicts
    /// down to `max_bytes` (sparing the new record). With `reuse_body`, the body
    /// stored under the id stays and is not written again: only for a refresh that
    /// proved it is this entry's ([`Shared::stored_body_is`]).
    fn put_in(
        &self,
        txn: &mut RwTxn<'_>,
        entry: &PreparedEntry,
        now: u64,
        reuse_body: bool,
    ) -> heed::Result<()> {
        let mut total = self.total_bytes(txn)?;
        total = total.saturating_sub(self.unlink(txn, &entry.id, reuse_body)?.freed);
        self.dbs.entries.put(txn, &entry.id, &entry.record)?;
        let mut added = entry.record.len() as u64;
        if !reuse_body && let Some(body) = &entry.body {
            self.dbs.bodies.put(txn, &entry.id, body)?;
            added = added.saturating_add(body.len() as u64);
        }
        self.dbs.metas.put(txn, &entry.id, &entry.meta)?;
        if let Some(expires) = entry.header.expires {
            self.dbs.by_expiry.put(txn, &index_key(expires, &entry.id), &())?;
        }
        self.dbs.by_created.put(txn, &index_key(entry.header.created, &entry.id), &())?;
        total = total.saturating_add(added);
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

    /// Whether the body stored under `entry`'s id is, byte for byte, the body `entry`
    /// keeps apart: the guard of a refresh, run inside its write transaction so that
    /// no other writer can change the answer before the head is written.
    ///
    /// Comparing the bytes is the proof chosen over a fingerprint or a generation
    /// recorded at put time: it cannot be fooled by a collision, needs nothing new in
    /// the format (old records and the `Entry` a driver holds carry no generation),
    /// and reads pages that are mapped and usually cached, which costs far less than
    /// writing them (1 MiB compared is 256 pages read, against 256 pages dirtied,
    /// copied and flushed). The stored record must also be a head: a body under an
    /// inline record is a leftover, not this variant's body.
    fn stored_body_is(&self, txn: &RoTxn<'_>, entry: &PreparedEntry) -> heed::Result<bool> {
        let Some(body) = &entry.body else { return Ok(false) };
        let is_head =
            matches!(self.dbs.entries.get(txn, &entry.id)?.map(EntryRecord::of), Some(EntryRecord::Head(_)));
        Ok(is_head && self.dbs.bodies.get(txn, &entry.id)? == Some(&body[..]))
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
            Some(id) => self.unlink(txn, &id, false)?.freed,
            None => 0,
        };
        match index {
            Index::Expiry => self.dbs.by_expiry.delete(txn, &key)?,
            Index::Created => self.dbs.by_created.delete(txn, &key)?,
        };
        Ok(Some(freed))
    }

    /// Evicts records until `needed` bytes are freed or nothing is left, in one batch
    /// ([`delete_in_batches`](Self::delete_in_batches): fewer records when the map has
    /// no room to delete that many); returns how many records went.
    fn evict_bytes(&self, needed: u64, now: u64) -> Result<usize, LmdbError> {
        self.delete_in_batches("evict", Batches::One, |txn, limit, evicted| {
            let mut total = self.total_bytes(txn)?;
            let mut freed = 0u64;
            while freed < needed && *evicted < limit {
                match self.evict_one(txn, now, None)? {
                    Some(bytes) => {
                        freed = freed.saturating_add(bytes);
                        total = total.saturating_sub(bytes);
                        *evicted += 1;
                    }
                    None => break,
                }
            }
            self.set_total_bytes(txn, total)?;
            Ok((*evicted, true))
        })
    }

    /// Deletes records in write transactions that leave one more commit's pages
    /// ([`Keep::Commit`]), as many per transaction as the map has room to delete: LMDB
    /// copies every page a deletion changes, so in a full map a deletion of many records
    /// (spread over many leaves) can need more pages than are free, even though it
    /// frees more. `delete` deletes at most `limit` records (index keys, for a purge)
    /// in the transaction it is given, counting them in its last argument, and returns
    /// what it reports and whether nothing is left to delete.
    ///
    /// The first transaction has no limit; one the map has no room for is retried on
    /// half as many records as it got through, down to one (which the eviction reserve
    /// is counted for), and should even that find no room, once more after a commit
    /// that lets the pages freed by the last commit be reused (a write that kept less
    /// than the reserve, a removal or an older build's, may have come last). With
    /// [`Batches::UntilDone`], transactions follow one another, the limit doubling after
    /// each, until `delete` says it is done; the reports of the committed ones are
    /// summed.
    fn delete_in_batches(
        &self,
        what: &str,
        batches: Batches,
        mut delete: impl FnMut(&mut RwTxn<'_>, usize, &mut usize) -> heed::Result<(usize, bool)>,
    ) -> Result<usize, LmdbError> {
        let (mut limit, mut reported, mut freed_pages_made_reusable) = (usize::MAX, 0usize, false);
        loop {
            let mut deleted = 0;
            let outcome = self.write(what, Keep::Commit, |txn| {
                deleted = 0;
                delete(txn, limit, &mut deleted)
            });
            match outcome {
                Ok((report, done)) => {
                    reported = reported.saturating_add(report);
                    if done || batches == Batches::One {
                        return Ok(reported);
                    }
                    limit = limit.saturating_mul(2);
                    freed_pages_made_reusable = false;
                }
                Err(LmdbError::Full(_)) if limit > 1 => limit = (deleted / 2).clamp(1, limit - 1),
                Err(LmdbError::Full(_)) if !freed_pages_made_reusable => {
                    self.make_freed_pages_reusable()?;
                    freed_pages_made_reusable = true;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The map's size (the largest it may grow to, or the size another process gave it
    /// if that is larger) and the number of its last page used (its high-water mark:
    /// LMDB never lowers it), read without a transaction.
    fn map_extent(&self) -> (u64, u64) {
        // Under the gate: a resize by another thread of this process remaps the meta
        // pages `info` reads.
        let _shared = self.gate();
        let info = self.env.info();
        (self.max_map_size.max(info.map_size) as u64, info.last_page_number as u64)
    }

    /// Refuses a write that could not fit even in an empty map: its records need more
    /// pages than such a map has room for, counted as [`WritePages`] and
    /// [`Geometry::room_in_empty_map`] do. Arithmetic only, so it runs before every
    /// write, and before anything is written or evicted for it.
    fn refuse_what_never_fits(&self, write: &WritePages, bytes: u64) -> Result<(), LmdbError> {
        let (map_size, _) = self.map_extent();
        let room = self.geometry.room_for_entries(map_size);
        if write.pages <= room {
            return Ok(());
        }
        Err(LmdbError::Full(format!(
            "{bytes} bytes of entries take {} pages of {} bytes, and an empty {map_size}-byte LMDB map \
             has room for {room}: {}",
            write.pages,
            self.geometry.page_size(),
            self.path.display()
        )))
    }

    /// Refuses a write that found the map full, before anything is evicted for it, when
    /// eviction is not counted on to make room: its longest record needs a longer run of
    /// consecutive pages than [`Geometry::run_after_eviction`], a quarter of those below
    /// the map's high-water mark (LMDB gives such a run from pages freed there, or from
    /// the never-used end, never from both; and the write found the end too short). The
    /// pages of the eviction reserve, which the write must leave free, are not counted
    /// among them (those of a store holding one entry, [`ONE_ENTRY_DEPTHS`]: the store
    /// is emptied before the count can err).
    fn refuse_what_eviction_cannot_place(&self, write: &WritePages, bytes: u64) -> Result<(), LmdbError> {
        let (map_size, last_page) = self.map_extent();
        let run =
            self.geometry.run_after_eviction(last_page.saturating_sub(eviction_reserve(ONE_ENTRY_DEPTHS)));
        if write.longest_run <= run {
            return Ok(());
        }
        Err(LmdbError::Full(format!(
            "{bytes} bytes of entries need a run of {} consecutive pages, and evicting from the \
             {map_size}-byte LMDB map (used up to page {last_page}) is counted on for {run}: \
             nothing evicted for them: {}",
            write.longest_run,
            self.path.display()
        )))
    }

    /// Commits a write that changes nothing (the byte counter, rewritten as it is), so
    /// that the pages the last commit freed can be reused: LMDB reuses a page only in a
    /// transaction at least two after the one that freed it (the snapshot before that
    /// one must stay whole until another commit replaces it), so without this the write
    /// right after an eviction cannot use a page the eviction freed.
    fn make_freed_pages_reusable(&self) -> Result<(), LmdbError> {
        self.write("let freed pages be reused", Keep::Nothing, |txn| {
            let total = self.total_bytes(txn)?;
            self.set_total_bytes(txn, total)
        })
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
        let outcome = self.write("delete corrupt records", Keep::Commit, |txn| {
            let mut total = self.total_bytes(txn)?;
            for (id, seen, is_meta) in records {
                let db = if *is_meta { self.dbs.metas } else { self.dbs.entries };
                if db.get(txn, id)? == Some(&seen[..]) {
                    total = total.saturating_sub(self.unlink(txn, id, false)?.freed);
                }
            }
            self.set_total_bytes(txn, total)
        });
        if let Err(error) = outcome {
            tracing::warn!(path = %self.path.display(), %error, "could not delete undecodable records");
        }
    }
}

/// What [`Shared::unlink`] deleted.
#[derive(Debug, Clone, Copy)]
struct Unlinked {
    /// Whether there was an entry record.
    existed: bool,
    /// The bytes freed (entry record and body).
    freed: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Has the file system back all of LMDB's lock file (`lock.mdb` in `dir`, created if
/// need be) with blocks before LMDB opens it.
///
/// LMDB sizes its lock file with `ftruncate`, which allocates nothing, and writes its
/// mutexes and reader table through a shared memory map of it. On a full disk, the
/// first write to a page of the map that no block backs yet kills the process with
/// `SIGBUS`: at the open itself (the first process to open an environment initialises
/// the table), or later, when a thread takes a reader slot in a page not touched before.
/// The blocks of the largest table `max_readers` slots make (64 bytes a slot, and up to
/// 4 KiB of header), or of the whole file when it is larger already (LMDB then keeps its
/// size), are allocated here without changing the file's length
/// (`FALLOC_FL_KEEP_SIZE`), so LMDB still sizes the file as it would, and they are in
/// place when it does. Nothing in the file changes: an environment that other processes
/// have open is safe. A disk without room for them fails the open with an I/O error
/// instead of a crash; a file system that cannot allocate ahead (no `fallocate`) is left
/// as it was.
#[cfg(target_os = "linux")]
fn reserve_lock_file(dir: &Path, max_readers: u32) -> Result<(), LmdbError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("lock.mdb");
    // As LMDB creates it (heed opens environments with mode 0600).
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path);
    let Ok(file) = opened else {
        // LMDB's own open reports what is wrong with the file, as before.
        return Ok(());
    };
    // A lock file made larger before (by a process with more readers) is kept at its
    // size by LMDB: all of it.
    let table = u64::from(max_readers).saturating_mul(64).saturating_add(4096);
    let length = file.metadata().map_or(0, |metadata| metadata.len()).max(table);
    match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::KEEP_SIZE, 0, length) {
        Ok(()) => Ok(()),
        Err(error) if error == rustix::io::Errno::NOSPC || error == rustix::io::Errno::DQUOT => {
            Err(LmdbError::Io { context: format!("allocating {}", path.display()), source: error.into() })
        }
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "cannot allocate the lock file ahead");
            Ok(())
        }
    }
}

/// Elsewhere, LMDB's lock file is left to LMDB.
#[cfg(not(target_os = "linux"))]
fn reserve_lock_file(_dir: &Path, _max_readers: u32) -> Result<(), LmdbError> {
    Ok(())
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
    ///
    /// One write transaction, unless the map is too full to delete them all at once
    /// (LMDB copies every page a deletion changes): then several, each deleting as many
    /// as the map has room for.
    pub fn purge_expired(&self, now: SystemTime) -> Result<usize, LmdbError> {
        let shared = &self.shared;
        let _settled = shared.behind.settle();
        let now = nanos(now);
        shared.delete_in_batches("purge expired", Batches::UntilDone, |txn, limit, visited| {
            let (expired, done) = {
                let upper = now.checked_add(1).map(u64::to_be_bytes);
                let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
                    Bound::Unbounded,
                    upper.as_ref().map_or(Bound::Unbounded, |upper| Bound::Excluded(&upper[..])),
                );
                let mut keys = Vec::new();
                let mut done = true;
                for item in shared.dbs.by_expiry.range(txn, &bounds)? {
                    if keys.len() == limit {
                        done = false;
                        break;
                    }
                    keys.push(item?.0.to_vec());
                }
                (keys, done)
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
                    if current {
                        let unlinked = shared.unlink(txn, &id, false)?;
                        total = total.saturating_sub(unlinked.freed);
                        removed += usize::from(unlinked.existed);
                    }
                }
                shared.dbs.by_expiry.delete(txn, key)?;
                *visited += 1;
            }
            shared.set_total_bytes(txn, total)?;
            Ok((removed, done))
        })
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<LmdbStats, LmdbError> {
        let shared = &self.shared;
        drop(shared.behind.settle());
        let (entries, bytes) =
            shared.read("stats", |txn| Ok((shared.dbs.entries.len(txn)?, shared.total_bytes(txn)?)))?;
        // `info` reads the meta pages, in the map: under the gate, so that no resize by
        // another thread remaps them meanwhile.
        let map_size = {
            let _shared = shared.gate();
            shared.env.info().map_size
        };
        Ok(LmdbStats { entries, bytes, map_size })
    }

    /// Reads every variant of `key` in one read transaction: each record, and each
    /// body kept apart, is copied out of the map once and decoded in place
    /// ([`Entry::decode_shared`], [`Entry::decode_split`]) while the transaction is
    /// open, so nothing else is allocated per variant (an undecodable record is copied
    /// a second time, to be deleted).
    ///
    /// A refresh queued and not yet written takes the place of the variant read from
    /// the map (or is added, if the map has none).
    pub(crate) fn lookup(&self, key: &CacheKey) -> Result<Lookup, LmdbError> {
        // Queued refreshes first: one written and dequeued after this look is in the
        // map by the time the read transaction starts.
        let queued = self.shared.behind.queued_for(key);
        let overlaid: Vec<RecordId> = queued.iter().map(|refresh| refresh.id).collect();
        let mut lookup = self.read_map(key, &overlaid)?;
        // Decodes: it was encoded here from an entry.
        overlay(&mut lookup.entries, queued.iter().filter_map(|refresh| refresh.decode().ok()));
        Ok(lookup)
    }

    /// [`lookup`](Self::lookup) in the map alone, without the queued refreshes, and
    /// without reading the records in `skip` (those a queued refresh replaces: their
    /// bodies are not copied out for nothing).
    fn read_map(&self, key: &CacheKey, skip: &[RecordId]) -> Result<Lookup, LmdbError> {
        let shared = &self.shared;
        shared.read("get", |txn| {
            // Most keys have one variant.
            let mut lookup = Lookup { entries: Vec::with_capacity(1), corrupt: Vec::new() };
            for item in shared.dbs.entries.prefix_iter(txn, key.as_bytes())? {
                let (id, value) = item?;
                if skip.iter().any(|skipped| skipped[..] == id[..]) {
                    continue;
                }
                let decoded = match EntryRecord::of(value) {
                    EntryRecord::Inline(_) => Entry::decode_shared(Bytes::copy_from_slice(value)),
                    EntryRecord::Head(head) => match shared.dbs.bodies.get(txn, id)? {
                        Some(body) => {
                            Entry::decode_split(Bytes::copy_from_slice(head), Bytes::copy_from_slice(body))
                        }
                        // A head without its body.
                        None => Err(DecodeError::Truncated),
                    },
                };
                match decoded {
                    Ok(entry) if record_id(&entry.key, entry.variant)[..] == id[..] => {
                        lookup.entries.push(entry);
                    }
                    _ => lookup.corrupt.push((id.to_vec(), Bytes::copy_from_slice(value), false)),
                }
            }
            Ok(lookup)
        })
    }

    /// Reads every meta record in one read transaction.
    pub(crate) fn listing(&self) -> Result<Listing, LmdbError> {
        let shared = &self.shared;
        drop(shared.behind.settle());
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

    /// Writes an encoded entry, evicting to make room as [`put_all`](Self::put_all)
    /// does (see there for when it fails instead).
    pub(crate) fn put_prepared(&self, entry: &PreparedEntry) -> Result<(), LmdbError> {
        let _settled = self.shared.behind.settle();
        self.put_all(std::slice::from_ref(entry), Write::Put).map(drop)
    }

    /// Writes an encoded entry freshened by a validation, in one write transaction:
    /// only its head, meta record and index keys when the body stored under its id is
    /// provably its own ([`Shared::stored_body_is`]), else the whole entry as
    /// [`put_prepared`](Self::put_prepared) does. Returns whether the stored body was
    /// kept (`false`: the whole entry was written).
    #[cfg(test)]
    pub(crate) fn refresh_prepared(&self, entry: &PreparedEntry) -> Result<bool, LmdbError> {
        let _settled = self.shared.behind.settle();
        self.put_all(std::slice::from_ref(entry), Write::Refresh).map(|kept| kept > 0)
    }

    /// Queues a refresh to be written behind (see [`Store::flush`]), first waiting for
    /// room if the queue is full.
    pub(crate) fn refresh_behind(&self, entry: Arc<PreparedEntry>) {
        self.shared.behind.push(entry, || self.start_writer());
    }

    /// Queues a refresh to be written behind if the queue has room now; gives the
    /// entry back otherwise.
    pub(crate) fn try_refresh_behind(&self, entry: Arc<PreparedEntry>) -> Result<(), Arc<PreparedEntry>> {
        self.shared.behind.try_push(entry, || self.start_writer())
    }

    /// Starts the writer of queued refreshes, on a thread of its own (a pool thread
    /// could be starved by the pool tasks waiting for it); it ends once no refresh has
    /// come for [`WRITER_IDLE`]. Without a thread, the caller writes them.
    fn start_writer(&self) {
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("httpcache-lmdb-writer".into())
            .spawn(move || store.write_behind(WRITER_IDLE));
        if let Err(error) = spawned {
            // No thread to write behind: write here, now.
            tracing::warn!(path = %self.shared.path.display(), %error, "no writer thread: refreshing inline");
            self.write_behind(Duration::ZERO);
        }
    }

    /// The writer: writes what is queued, in one transaction per batch, until nothing
    /// has come for `idle`. A batch that fails is retried an entry at a time, so that one
    /// entry that cannot be written (larger than `max_bytes`, say) costs no other;
    /// an entry that still fails is dropped with a warning, and the stored entry stays
    /// as it was (its next use revalidates it again).
    fn write_behind(&self, idle: Duration) {
        self.shared.behind.drain(idle, |batch| {
            if let Err(error) = self.put_all(batch, Write::Refresh) {
                if batch.len() == 1 {
                    self.refresh_failed(&error);
                } else {
                    for entry in batch {
                        if let Err(error) = self.put_all(std::slice::from_ref(entry), Write::Refresh) {
                            self.refresh_failed(&error);
                        }
                    }
                }
            }
        });
    }

    fn refresh_failed(&self, error: &LmdbError) {
        tracing::warn!(path = %self.shared.path.display(), %error, "a refresh written behind failed");
    }

    /// Waits until the refreshes queued before the call are written
    /// ([`Store::flush`](LmdbStore#method.flush)).
    pub(crate) fn settle_refreshes(&self) {
        drop(self.shared.behind.settle());
    }

    /// How many refreshes are queued and not yet written.
    pub fn queued_refreshes(&self) -> usize {
        self.shared.behind.len()
    }

    /// Writes encoded entries in one transaction; returns how many stored bodies a
    /// refresh kept.
    ///
    /// When the map is full and cannot grow any more, evicts expired then oldest
    /// entries until the write fits and leaves the eviction reserve free
    /// ([`Keep::Reserve`]). Fails for lack of room ([`LmdbError::Full`]):
    ///
    /// * before anything is written, when one entry alone exceeds `max_bytes`, or when
    ///   the entries could not fit even in an empty map: their records take more pages
    ///   than a map of `max_map_size` has once LMDB's own and the reserve are counted
    ///   ([`Shared::refuse_what_never_fits`]);
    /// * once the map is found full, before anything is evicted, when eviction is not
    ///   counted on to make room: a record needs a longer run of consecutive pages than
    ///   a quarter of those the map has used, the reserve's excepted
    ///   ([`Shared::refuse_what_eviction_cannot_place`]);
    /// * after evicting, only when these counts were wrong: the store is then empty and
    ///   the write still does not fit (LMDB found no run of free pages long enough where
    ///   one was counted on). The one case where a write that fails has evicted entries.
    fn put_all<E: Borrow<PreparedEntry>>(&self, entries: &[E], how: Write) -> Result<usize, LmdbError> {
        let shared = &self.shared;
        let mut size = 0u64;
        for entry in entries {
            let entry_size = entry.borrow().stored_len();
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
        // Every body counted, whether or not a refresh keeps it: a body that cannot fit
        // in an empty map cannot be the one stored.
        let whole = WritePages::of(&shared.geometry, entries.iter().map(|entry| (entry.borrow(), true)));
        shared.refuse_what_never_fits(&whole, size)?;
        let now = nanos(wall_clock());
        let what = match how {
            Write::Put => "put",
            Write::Refresh => "refresh",
        };
        // Which bodies the last attempt kept (a refresh's), to count what it wrote.
        let mut kept_bodies = vec![false; entries.len()];
        let mut checked = false;
        let mut just_evicted = false;
        loop {
            let outcome = shared.write(what, Keep::Reserve, |txn| {
                kept_bodies.fill(false);
                for (entry, kept) in entries.iter().zip(&mut kept_bodies) {
                    let entry = entry.borrow();
                    *kept = how == Write::Refresh && shared.stored_body_is(txn, entry)?;
                    shared.put_in(txn, entry, now, *kept)?;
                }
                Ok(kept_bodies.iter().filter(|&&kept| kept).count())
            });
            match outcome {
                Err(LmdbError::Full(message)) => {
                    if !checked {
                        let written = WritePages::of(
                            &shared.geometry,
                            entries.iter().zip(&kept_bodies).map(|(entry, &kept)| (entry.borrow(), !kept)),
                        );
                        shared.refuse_what_eviction_cannot_place(&written, size)?;
                        checked = true;
                    }
                    // The write right after an eviction cannot reuse the pages it freed
                    // (see `make_freed_pages_reusable`): one more commit, then one more
                    // try, before evicting more. Should that commit find no free page
                    // either, the next eviction's commit does its work.
                    if just_evicted {
                        just_evicted = false;
                        if shared.make_freed_pages_reusable().is_ok() {
                            continue;
                        }
                    }
                    let needed = size.saturating_mul(2).saturating_add(EVICTION_SLACK);
                    if shared.evict_bytes(needed, now)? == 0 {
                        return Err(LmdbError::Full(message));
                    }
                    just_evicted = true;
                }
                other => return other,
            }
        }
    }

    /// Stores several entries in one write transaction: all or none are written, and
    /// the cost of committing (an `fsync`) is paid once. Same rules as
    /// [`Store::put`] otherwise, the batch counted as one write: a batch that could
    /// not fit in an empty map is refused before anything is evicted (see the
    /// [crate docs](crate#size)). Under `max_bytes`, later entries of the batch may
    /// evict earlier ones. Meant for imports and copies, in batches of up to some
    /// tens of thousands of entries (LMDB bounds how much one transaction may change).
    pub fn put_batch<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) -> Result<(), LmdbError> {
        let prepared: Vec<PreparedEntry> = entries.into_iter().map(PreparedEntry::new).collect();
        let _settled = self.shared.behind.settle();
        self.put_all(&prepared, Write::Put).map(drop)
    }

    /// Whether anything is stored or queued under `key` (or, given a variant, under that
    /// variant of it): a removal that would find nothing is answered without a write
    /// transaction, and the async store answers it without leaving the task. A removal
    /// is what every successful unsafe request causes (RFC 9111 §4.4), and most of them
    /// target URLs with nothing stored.
    pub(crate) fn holds(&self, key: &CacheKey, variant: Option<VariantId>) -> Result<bool, LmdbError> {
        let queued = self.shared.behind.queued_for(key);
        if queued.iter().any(|write| variant.is_none_or(|variant| write.variant() == variant)) {
            return Ok(true);
        }
        let id = variant.map(|variant| record_id(key, variant));
        let prefix = id.as_ref().map_or(&key.as_bytes()[..], |id| &id[..]);
        let shared = &self.shared;
        // The entry records alone: every variant has one (its meta and body are written
        // with it, in one transaction), and a body without one is what `compact`
        // deletes.
        shared.read("look for a key", |txn| {
            Ok(shared.dbs.entries.prefix_iter(txn, prefix)?.next().transpose()?.is_some())
        })
    }

    /// Removes every variant of `key`; how many there were.
    pub(crate) fn remove_key(&self, key: &CacheKey) -> Result<usize, LmdbError> {
        if !self.holds(key, None)? {
            return Ok(0);
        }
        self.remove_held(key)
    }

    /// [`remove_key`](Self::remove_key) once [`holds`](Self::holds) found something.
    pub(crate) fn remove_held(&self, key: &CacheKey) -> Result<usize, LmdbError> {
        let shared = &self.shared;
        let _settled = shared.behind.settle();
        shared.write("remove", Keep::Commit, |txn| {
            let mut ids = Vec::new();
            for db in [shared.dbs.entries, shared.dbs.metas, shared.dbs.bodies] {
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
                let unlinked = shared.unlink(txn, id, false)?;
                total = total.saturating_sub(unlinked.freed);
                removed += usize::from(unlinked.existed);
            }
            shared.set_total_bytes(txn, total)?;
            Ok(removed)
        })
    }

    /// Removes one variant of `key`; whether it was there.
    pub(crate) fn remove_one(&self, key: &CacheKey, variant: VariantId) -> Result<bool, LmdbError> {
        if !self.holds(key, Some(variant))? {
            return Ok(false);
        }
        self.remove_one_held(key, variant)
    }

    /// [`remove_one`](Self::remove_one) once [`holds`](Self::holds) found the variant.
    pub(crate) fn remove_one_held(&self, key: &CacheKey, variant: VariantId) -> Result<bool, LmdbError> {
        let shared = &self.shared;
        let _settled = shared.behind.settle();
        let id = record_id(key, variant);
        shared.write("remove variant", Keep::Commit, |txn| {
            let unlinked = shared.unlink(txn, &id, false)?;
            if unlinked.freed > 0 {
                let total = shared.total_bytes(txn)?;
                shared.set_total_bytes(txn, total.saturating_sub(unlinked.freed))?;
            }
            Ok(unlinked.existed)
        })
    }

    pub(crate) fn clear_all(&self) -> Result<(), LmdbError> {
        let shared = &self.shared;
        let _settled = shared.behind.settle();
        shared.write("clear", Keep::Commit, |txn| {
            shared.dbs.entries.clear(txn)?;
            shared.dbs.bodies.clear(txn)?;
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

    /// Deletes bodies that no head refers to; returns how many. This store never
    /// leaves one (every change is one transaction), but an older build that finds a
    /// head it cannot read deletes the record and not the body it does not know of.
    /// Looked for in a read transaction; the write happens only when there are some.
    pub(crate) fn delete_orphan_bodies(&self) -> Result<usize, LmdbError> {
        let shared = &self.shared;
        let has_head = |txn: &RoTxn<'_>, id: &[u8]| -> heed::Result<bool> {
            Ok(matches!(shared.dbs.entries.get(txn, id)?.map(EntryRecord::of), Some(EntryRecord::Head(_))))
        };
        let orphans = shared.read("look for orphan bodies", |txn| {
            let mut orphans = Vec::new();
            for item in shared.dbs.bodies.iter(txn)? {
                let (id, _) = item?;
                if !has_head(txn, id)? {
                    orphans.push(id.to_vec());
                }
            }
            Ok(orphans)
        })?;
        if orphans.is_empty() {
            return Ok(0);
        }
        shared.write("delete orphan bodies", Keep::Commit, |txn| {
            let mut total = shared.total_bytes(txn)?;
            let mut deleted = 0;
            for id in &orphans {
                // Still an orphan: a put may have given it a head since.
                if has_head(txn, id)? {
                    continue;
                }
                if let Some(body) = shared.dbs.bodies.get(txn, id)? {
                    total = total.saturating_sub(body.len() as u64);
                    shared.dbs.bodies.delete(txn, id)?;
                    deleted += 1;
                }
            }
            shared.set_total_bytes(txn, total)?;
            Ok(deleted)
        })
    }

    /// What `compact` does: clear stale reader slots, delete orphan bodies.
    pub(crate) fn compact_now(&self) -> Result<(), LmdbError> {
        let _settled = self.shared.behind.settle();
        self.clear_stale_readers()?;
        let deleted = self.delete_orphan_bodies()?;
        if deleted > 0 {
            tracing::debug!(path = %self.shared.path.display(), deleted, "deleted orphan LMDB bodies");
        }
        Ok(())
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

    /// One write transaction that rewrites only the entry's head, meta record and index
    /// keys when its body is kept apart and the stored body is byte for byte the
    /// entry's (else a whole put). See the [crate docs](crate#refreshing-after-a-304).
    ///
    /// Written behind: returns once the refresh is queued (see
    /// [`Store::flush`]).
    /// A failure to write it is logged, not returned: the stored entry then stays as it
    /// was.
    fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        self.refresh_behind(Arc::new(PreparedEntry::new(entry)));
        Ok(())
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
    /// clears reader slots left by dead processes and deletes bodies no head refers to
    /// (which only an older build leaves behind).
    fn compact(&self) -> Result<(), StoreError> {
        Ok(self.compact_now()?)
    }

    /// Waits until every refresh this process queued before the call is written;
    /// never fails.
    ///
    /// A refresh ([`Store::refresh`], what the drivers call when a 304 freshens a
    /// stored response) returns once it is queued, and is written behind, batched with
    /// the refreshes queued meanwhile (see the [crate docs](crate#refreshing-after-a-304)).
    /// Reads through this process's handles see it at once, and every other write and
    /// scan waits for it, so only two things can notice that it has not landed yet:
    /// another process reading the same directory, and a process that exits right
    /// after a response was revalidated (the refresh is lost: the entry stays as it
    /// was, and its next use revalidates it again). Call `flush` before exiting to
    /// keep it.
    fn flush(&self) -> Result<(), StoreError> {
        self.settle_refreshes();
        Ok(())
    }
}

#[cfg(test)]
impl LmdbStore {
    /// Opens a read transaction, calls `opened`, and never returns: for a process that
    /// is to be killed mid-read.
    pub(crate) fn hold_a_read_transaction(&self, opened: impl Fn()) -> ! {
        let _ = self.shared.read("hold a read transaction", |_| -> heed::Result<()> {
            opened();
            loop {
                std::thread::park();
            }
        });
        unreachable!("the read never ends")
    }

    /// Queues a refresh without starting a writer: it stays queued until the test
    /// calls [`write_queued`](Self::write_queued).
    pub(crate) fn queue_refresh_unwritten(&self, entry: &Entry) {
        self.shared.behind.push(Arc::new(PreparedEntry::new(entry)), || {});
    }

    /// Writes what is queued, on this thread, as the writer would.
    pub(crate) fn write_queued(&self) {
        self.write_behind(Duration::ZERO);
    }

    /// The variants of `key` in the map, without the queued refreshes.
    pub(crate) fn get_from_map(&self, key: &CacheKey) -> Vec<Entry> {
        self.read_map(key, &[]).expect("read the map").entries
    }

    /// Writes `bytes` as the record of (`key`, `variant`) the way `put` would have
    /// stored them (entry and meta record both derived from `bytes`), bypassing the
    /// encoder: how a record that went bad looks to the store.
    pub(crate) fn write_raw(&self, key: &CacheKey, variant: VariantId, bytes: &[u8]) {
        let shared = &self.shared;
        let id = record_id(key, variant);
        let header = MetaHeader { created: 0, expires: None, entry_len: bytes.len() as u64 };
        let meta = crate::records::meta_record(&header, bytes);
        shared
            .write("write raw", Keep::Reserve, |txn| {
                let total = shared.total_bytes(txn)?;
                let total = total.saturating_sub(shared.unlink(txn, &id, false)?.freed);
                shared.dbs.entries.put(txn, &id, bytes)?;
                shared.dbs.metas.put(txn, &id, &meta)?;
                shared.dbs.by_created.put(txn, &index_key(0, &id), &())?;
                shared.set_total_bytes(txn, total + bytes.len() as u64)
            })
            .expect("write a raw record");
    }

    /// Replaces the body kept apart for (`key`, `variant`) with `bytes` (`None`:
    /// deletes it), leaving its head alone: a body record gone bad, or an orphan.
    pub(crate) fn write_raw_body(&self, key: &CacheKey, variant: VariantId, bytes: Option<&[u8]>) {
        let shared = &self.shared;
        let id = record_id(key, variant);
        shared
            .write("write a raw body", Keep::Reserve, |txn| {
                let before = shared.dbs.bodies.get(txn, &id)?.map_or(0, |body| body.len() as u64);
                let after = bytes.map_or(0, |bytes| bytes.len() as u64);
                match bytes {
                    Some(bytes) => shared.dbs.bodies.put(txn, &id, bytes)?,
                    None => drop(shared.dbs.bodies.delete(txn, &id)?),
                }
                let total = shared.total_bytes(txn)?;
                shared.set_total_bytes(txn, total.saturating_sub(before).saturating_add(after))
            })
            .expect("write a raw body");
    }

    /// Deletes the record of (`key`, `variant`) but not its body, as an older build
    /// does with a head it cannot read (leaving the body an orphan).
    pub(crate) fn delete_all_but_the_body(&self, key: &CacheKey, variant: VariantId) {
        let shared = &self.shared;
        let id = record_id(key, variant);
        shared
            .write("delete all but the body", Keep::Commit, |txn| {
                let freed = shared.unlink(txn, &id, true)?.freed;
                let total = shared.total_bytes(txn)?;
                shared.set_total_bytes(txn, total.saturating_sub(freed))
            })
            .expect("delete a record but its body");
    }

    /// How many bodies are kept apart.
    pub(crate) fn body_count(&self) -> u64 {
        let shared = &self.shared;
        shared.read("count bodies", |txn| shared.dbs.bodies.len(txn)).expect("count bodies")
    }

    /// The environment's page size, and the number of the last page its map uses.
    pub(crate) fn page_size_and_last_page(&self) -> (u64, u64) {
        (self.shared.geometry.page_size(), self.shared.map_extent().1)
    }

    /// Whether a put of `entry` passes the check made before anything is written
    /// (that it could fit in an empty map).
    pub(crate) fn could_fit_in_an_empty_map(&self, entry: &Entry) -> bool {
        let prepared = PreparedEntry::new(entry);
        let pages = WritePages::of(&self.shared.geometry, [(&prepared, true)]);
        self.shared.refuse_what_never_fits(&pages, prepared.stored_len()).is_ok()
    }

    /// How many transactions [`Shared::make_freed_pages_reusable`] commits.
    pub(crate) fn commits_to_make_freed_pages_reusable(&self) -> usize {
        let shared = &self.shared;
        let last_commit = || {
            let _shared = shared.gate();
            shared.env.info().last_txn_id
        };
        let before = last_commit();
        shared.make_freed_pages_reusable().expect("commit");
        last_commit() - before
    }

    /// How many pages a write transaction could take now, up to `limit` (without
    /// committing anything), and the eviction reserve the store's trees call for.
    pub(crate) fn pages_left_and_reserve(&self, limit: u64) -> (u64, u64) {
        let shared = &self.shared;
        let _shared = shared.gate();
        let mut txn = shared.env.write_txn().expect("a write transaction");
        let left = shared.pages_left(&mut txn, limit).expect("probe");
        let reserve = eviction_reserve(shared.tree_depths(&txn).expect("depths"));
        (left, reserve)
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
