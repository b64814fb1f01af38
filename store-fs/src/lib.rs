//! # httpcache-fs
//!
//! A filesystem [`Store`] for httpcache: plain files under a cache directory, safe for
//! many threads and many processes at once, bounded by total bytes.
//!
//! ```
//! use httpcache_core::Store;
//! use httpcache_fs::{FsStore, Format};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let cache_dir = dir.path().join("cache");
//! // Binary files, at most 1 GiB (the defaults):
//! let store = FsStore::open(&cache_dir)?;
//! assert!(store.scan()?.is_empty());
//!
//! // JSON files a human can read, 100 MiB, each write flushed to disk before it counts:
//! let readable = FsStore::builder(dir.path().join("readable"))
//!     .format(Format::Json)
//!     .max_bytes(100 << 20)
//!     .fsync(true)
//!     .open()?;
//!
//! // For async drivers: blocking work runs on the `blocking` thread pool.
//! let async_store = readable.into_async();
//! # let _ = async_store;
//! # Ok::<(), httpcache_core::StoreError>(())
//! ```
//!
//! ## Layout
//!
//! DESIGN.md says "one file per entry". Here the variants of one key share a file (one
//! file per *key*), so a hit is one `open` + one `read` whatever the number of variants;
//! most keys have exactly one. The file of key `abcdef…` (64 hex digits) is
//! `<dir>/ab/abcdef…` in the binary format, `<dir>/ab/abcdef….json` in JSON.
//!
//! * Binary ([`Format::Binary`], the default): a small container, a header and then
//!   each variant's [`Entry::encode`] with its length in front, so [`Store::scan`] reads
//!   only each variant's metadata prefix and seeks past its body.
//! * JSON ([`Format::Json`]): the file is a JSON array of [`Entry::to_json`] objects.
//!   Listing reads whole files. A store reads only files of its own format: the other
//!   format's files are left alone (convert with
//!   [`Inventory::copy_into`](httpcache_core::inventory::Inventory::copy_into)).
//!
//! ## Writes, crashes and several processes
//!
//! Every write goes to a temporary file (`.tmp.*`) in the same directory, which is then
//! renamed over the entry's file: a reader sees the old file or the new one, never half
//! of one. With [`FsStoreBuilder::fsync`] the data (and then the directory) is flushed
//! before the write returns. There are no lock files, so a crash leaves nothing locked;
//! it may leave a temporary file, which [`FsStore::open`] deletes once it is more than a
//! minute old.
//!
//! Adding a variant rewrites its key's file. Two processes writing *different variants
//! of the same key* at the same instant may therefore lose one of them: a later miss,
//! never a corrupt read. Within one process such writes are serialised.
//!
//! A file that is corrupt, truncated, foreign to this format or written by another
//! version is a miss and is deleted when read; a variant that alone fails to decode is
//! dropped and its siblings kept. Files whose *name* is not one of ours (anything but
//! `<2 hex>/<64 hex>[.json]`) are never read, listed or deleted.
//!
//! [`Store::compact`] deletes crash leftovers and empty shard directories.
//!
//! Files are created `0600` and directories `0700` (on Unix). Failures (disk full,
//! permission denied, a missing directory) are [`StoreError::Io`] naming the path.
//!
//! ## Size bound and eviction
//!
//! The store keeps the total size of its files under `max_bytes` by deleting the least
//! recently used files first. Recency is the file's modification time: a write sets it,
//! and a hit refreshes it when it is more than a minute old (one extra `futimens` on the
//! already open file, at most once a minute per file), so the hit path stays one
//! `open` + `read`. Each process tracks the total it has seen and, when it passes the
//! bound, lists the directory, deletes the oldest files down to 90 % of the bound, and
//! takes the listed total as the new count. With several processes writing, the bound
//! is approximate between those walks.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod async_store;
mod container;

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use httpcache_core::{CacheKey, Entry, EntryMeta, Store, StoreError, VariantId};

pub use async_store::AsyncFsStore;

/// The default size bound: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Temporary files older than this are leftovers of a crash, deleted at open.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// A hit refreshes a file's modification time when it is older than this.
const TOUCH_AFTER: Duration = Duration::from_secs(60);

/// The prefix of temporary files.
const TEMP_PREFIX: &str = ".tmp.";

/// Number of in-process write-lock stripes.
const WRITE_STRIPES: usize = 64;

/// How entries are written to files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The compact, versioned binary encoding (the default).
    #[default]
    Binary,
    /// JSON a human can read (larger; listing reads whole files).
    Json,
}

/// Configures and opens an [`FsStore`]. Made by [`FsStore::builder`].
#[derive(Debug, Clone)]
#[must_use = "call .open() to open the store"]
pub struct FsStoreBuilder {
    dir: PathBuf,
    format: Format,
    fsync: bool,
    max_bytes: u64,
}

impl FsStoreBuilder {
    /// The file format (default [`Format::Binary`]).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Flush every write to disk before it returns (default off: a crash may lose recent
    /// writes, never corrupt older ones).
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// The size bound in bytes of files (default [`DEFAULT_MAX_BYTES`]; `u64::MAX` for none).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Opens the store, creating the directory (`0700`) if needed, deleting temporary
    /// files left by a crash, and evicting if the directory is over the bound.
    pub fn open(self) -> Result<FsStore, StoreError> {
        let root = self.dir;
        match fs::metadata(&root) {
            Ok(metadata) if !metadata.is_dir() => {
                return Err(StoreError::NotACache(format!("{} is not a directory", root.display())));
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                dir_builder(true).create(&root).map_err(|error| {
                    StoreError::io(format!("creating cache directory {}", root.display()), error)
                })?;
            }
            Err(error) => {
                return Err(StoreError::io(format!("opening cache directory {}", root.display()), error));
            }
        }
        let store = FsStore {
            inner: Arc::new(Inner {
                root,
                format: self.format,
                fsync: self.fsync,
                max_bytes: self.max_bytes,
                used: AtomicU64::new(0),
                evicting: Mutex::new(()),
                write_locks: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            }),
        };
        let now = wall_clock();
        let mut total = 0;
        for file in store.walk()? {
            match file.kind {
                Kind::Temp if is_older(&file.metadata, now, STALE_TEMP_AGE) => {
                    let _ = fs::remove_file(&file.path);
                }
                Kind::Temp => {}
                Kind::Entry(_) => total += file.metadata.len(),
            }
        }
        store.inner.used.store(total, Ordering::Relaxed);
        if total > store.inner.max_bytes {
            store.evict(None)?;
        }
        Ok(store)
    }
}

/// A filesystem store. Cheap to clone (clones share state). See the [crate docs](crate).
#[derive(Debug, Clone)]
pub struct FsStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    format: Format,
    fsync: bool,
    max_bytes: u64,
    /// The total size of entry files, as this process knows it.
    used: AtomicU64,
    /// Held by the thread running an eviction walk.
    evicting: Mutex<()>,
    /// Serialise writes to one key within this process.
    write_locks: Box<[Mutex<()>]>,
}

/// The kind of a file found in the cache directory.
enum Kind {
    Entry(CacheKey),
    Temp,
}

struct Found {
    path: PathBuf,
    kind: Kind,
    metadata: fs::Metadata,
}

/// The current time. Stores do I/O and may read the clock (only the policy core may not):
/// it dates temporary files and refreshes recency.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

fn is_older(metadata: &fs::Metadata, now: SystemTime, age: Duration) -> bool {
    metadata
        .modified()
        .ok()
        .and_then(|modified| now.duration_since(modified).ok())
        .is_some_and(|elapsed| elapsed > age)
}

fn dir_builder(recursive: bool) -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(recursive);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
}

fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A process-wide counter making temporary file names unique.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn is_hex_lower(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

impl FsStore {
    /// Opens (creating if needed) a binary store in `dir` with the default bound.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(dir.as_ref()).open()
    }

    /// A builder for a store in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> FsStoreBuilder {
        FsStoreBuilder { dir: dir.into(), format: Format::Binary, fsync: false, max_bytes: DEFAULT_MAX_BYTES }
    }

    /// The cache directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// The file format.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    /// The size bound.
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// The total size of entry files as this process knows it (exact after an eviction
    /// walk; other processes' writes since then are not counted).
    pub fn used_bytes(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// This store for async drivers (blocking work runs on the `blocking` thread pool).
    pub fn into_async(self) -> AsyncFsStore {
        AsyncFsStore::new(self)
    }

    /// The file that holds (or would hold) `key`'s variants.
    pub fn path_of(&self, key: &CacheKey) -> PathBuf {
        let hex = key.to_string();
        let name = match self.inner.format {
            Format::Binary => hex.clone(),
            Format::Json => format!("{hex}.json"),
        };
        self.inner.root.join(&hex[..2]).join(name)
    }

    /// Every entry file, sorted.
    pub fn paths(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut paths: Vec<PathBuf> = self
            .walk()?
            .into_iter()
            .filter(|file| matches!(file.kind, Kind::Entry(_)))
            .map(|file| file.path)
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// The key of an entry file named `name` in shard directory `shard`, if it is one of ours.
    fn parse_name(&self, shard: &str, name: &str) -> Option<CacheKey> {
        let hex = match self.inner.format {
            Format::Binary => name,
            Format::Json => name.strip_suffix(".json")?,
        };
        if hex.len() != 64 || !is_hex_lower(hex.as_bytes()) || !hex.starts_with(shard) {
            return None;
        }
        hex.parse().ok()
    }

    /// Every file of ours in the cache directory: entry files and temporary files.
    fn walk(&self) -> Result<Vec<Found>, StoreError> {
        let root = &self.inner.root;
        let io_error = |path: &Path, error| StoreError::io(format!("listing {}", path.display()), error);
        let mut found = Vec::new();
        for shard in fs::read_dir(root).map_err(|error| io_error(root, error))? {
            let shard = shard.map_err(|error| io_error(root, error))?;
            let shard_name = shard.file_name();
            let Some(shard_name) = shard_name.to_str() else { continue };
            if shard_name.len() != 2 || !is_hex_lower(shard_name.as_bytes()) {
                continue;
            }
            if !shard.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            let shard_path = shard.path();
            let files = match fs::read_dir(&shard_path) {
                Ok(files) => files,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io_error(&shard_path, error)),
            };
            for file in files {
                let file = file.map_err(|error| io_error(&shard_path, error))?;
                let name = file.file_name();
                let Some(name) = name.to_str() else { continue };
                let kind = if name.starts_with(TEMP_PREFIX) {
                    Kind::Temp
                } else if let Some(key) = self.parse_name(shard_name, name) {
                    Kind::Entry(key)
                } else {
                    continue;
                };
                // Not following symlinks: a link is not a file we wrote.
                let Ok(metadata) = file.metadata() else { continue };
                if !metadata.is_file() {
                    continue;
                }
                found.push(Found { path: file.path(), kind, metadata });
            }
        }
        Ok(found)
    }

    fn lock_for(&self, key: &CacheKey) -> MutexGuard<'_, ()> {
        let stripe = usize::from(key.0[0]) % self.inner.write_locks.len();
        // The lock guards no data, so a poisoned lock is as good as a healthy one.
        self.inner.write_locks[stripe].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads a whole file; `None` when it does not exist. Refreshes its recency when stale.
    fn read_file(&self, path: &Path, touch: bool) -> Result<Option<Bytes>, StoreError> {
        let io_error = |error| StoreError::io(format!("reading {}", path.display()), error);
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(error)),
        };
        let metadata = file.metadata().map_err(io_error)?;
        let mut data = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0).saturating_add(1));
        file.read_to_end(&mut data).map_err(io_error)?;
        if touch {
            let now = wall_clock();
            if is_older(&metadata, now, TOUCH_AFTER) {
                // Best effort: recency is a hint, a failure changes nothing else.
                let _ = file.set_modified(now);
            }
        }
        Ok(Some(Bytes::from(data)))
    }

    /// Writes `data` as `path` through a temporary file and a rename.
    fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(&self.inner.root);
        let (temp, mut file) = self.create_temp(dir, path)?;
        let written =
            file.write_all(data).and_then(|()| if self.inner.fsync { file.sync_all() } else { Ok(()) });
        drop(file);
        let renamed = written.and_then(|()| fs::rename(&temp, path));
        if let Err(error) = renamed {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io(format!("writing {}", path.display()), error));
        }
        if self.inner.fsync {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|error| StoreError::io(format!("flushing {}", dir.display()), error))?;
        }
        Ok(())
    }

    /// Creates a new temporary file next to `path`, creating the shard directory if
    /// needed. Names hold the process id, a counter and the clock's nanoseconds, so they
    /// do not collide even across PID namespaces sharing a volume; a collision is retried.
    fn create_temp(&self, dir: &Path, path: &Path) -> Result<(PathBuf, File), StoreError> {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("entry");
        let mut attempts = 0;
        loop {
            let nanos =
                wall_clock().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.subsec_nanos());
            let temp = dir.join(format!(
                "{TEMP_PREFIX}{name}.{}.{}.{nanos}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let error = match create_new(&temp) {
                Ok(file) => return Ok((temp, file)),
                Err(error) => error,
            };
            attempts += 1;
            match error.kind() {
                io::ErrorKind::AlreadyExists if attempts < 4 => {}
                io::ErrorKind::NotFound if attempts < 4 => {
                    // The shard directory does not exist yet; the cache directory must.
                    dir_builder(false)
                        .create(dir)
                        .or_else(|error| if dir.is_dir() { Ok(()) } else { Err(error) })
                        .map_err(|error| StoreError::io(format!("creating {}", dir.display()), error))?;
                }
                _ => return Err(StoreError::io(format!("creating {}", temp.display()), error)),
            }
        }
    }

    fn remove_file(&self, path: &Path) -> Result<bool, StoreError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(StoreError::io(format!("deleting {}", path.display()), error)),
        }
    }

    fn add_used(&self, added: u64, removed: u64) {
        let update = |used: u64| Some(used.saturating_add(added).saturating_sub(removed));
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self.inner.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, update);
    }

    /// Deletes the least recently used files until the total is under 90 % of the bound,
    /// never `keep` (the file just written). One eviction at a time per process.
    fn evict(&self, keep: Option<&Path>) -> Result<(), StoreError> {
        let Ok(_evicting) = self.inner.evicting.try_lock() else {
            return Ok(()); // another thread is on it
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = self
            .walk()?
            .into_iter()
            .filter(|file| matches!(file.kind, Kind::Entry(_)))
            .map(|file| {
                (file.metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH), file.metadata.len(), file.path)
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
        let target = self.inner.max_bytes / 10 * 9;
        files.sort();
        for (_, size, path) in files {
            if total <= target {
                break;
            }
            if Some(path.as_path()) == keep {
                continue;
            }
            if self.remove_file(&path)? {
                total = total.saturating_sub(size);
            }
        }
        self.inner.used.store(total, Ordering::Relaxed);
        Ok(())
    }

    /// The records of `key`'s file: the file's data, its size, and the byte ranges of its
    /// records. A broken file is deleted and reads as absent.
    fn load(&self, key: &CacheKey, path: &Path, touch: bool) -> Result<Option<Loaded>, StoreError> {
        let Some(data) = self.read_file(path, touch)? else {
            return Ok(None);
        };
        match container::records(self.inner.format, &data) {
            Ok(ranges) => Ok(Some(Loaded { data, ranges })),
            Err(container::Invalid) => {
                tracing::debug!(key = %key, path = %path.display(), "deleting an unreadable cache file");
                if self.remove_file(path)? {
                    self.add_used(0, data.len() as u64);
                }
                Ok(None)
            }
        }
    }

    /// Replaces `key`'s file with `records`, or deletes it when there are none.
    fn store_records(&self, path: &Path, old_size: u64, records: &[&[u8]]) -> Result<(), StoreError> {
        if records.is_empty() {
            if self.remove_file(path)? {
                self.add_used(0, old_size);
            }
            return Ok(());
        }
        let data = container::encode(self.inner.format, records);
        if data.len() as u64 > self.inner.max_bytes {
            return Err(StoreError::Full(format!(
                "{} would take {} bytes; this store holds at most {}",
                path.display(),
                data.len(),
                self.inner.max_bytes
            )));
        }
        self.write_file(path, &data)?;
        self.add_used(data.len() as u64, old_size);
        if self.used_bytes() > self.inner.max_bytes {
            self.evict(Some(path))?;
        }
        Ok(())
    }
}

impl FsStore {
    /// Rewrites `key`'s file without the records that do not decode (read again under
    /// the write lock, so a concurrent write in this process is not undone).
    fn drop_undecodable(&self, key: &CacheKey, path: &Path) -> Result<(), StoreError> {
        tracing::debug!(key = %key, path = %path.display(), "dropping undecodable cache variants");
        let _write = self.lock_for(key);
        let Some(loaded) = self.load(key, path, false)? else {
            return Ok(());
        };
        let intact: Vec<&[u8]> = loaded
            .ranges
            .iter()
            .filter(|range| {
                container::decode_record(self.inner.format, &loaded.data, (*range).clone(), key).is_some()
            })
            .map(|range| &loaded.data[range.clone()])
            .collect();
        if intact.len() != loaded.ranges.len() {
            self.store_records(path, loaded.data.len() as u64, &intact)?;
        }
        Ok(())
    }
}

struct Loaded {
    data: Bytes,
    ranges: Vec<std::ops::Range<usize>>,
}

impl Loaded {
    fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges.iter().map(|range| &self.data[range.clone()])
    }
}

impl Store for FsStore {
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        let path = self.path_of(key);
        let Some(loaded) = self.load(key, &path, true)? else {
            return Ok(Vec::new());
        };
        let format = self.inner.format;
        let mut entries: Vec<Entry> = Vec::with_capacity(loaded.ranges.len());
        let mut intact: Vec<&[u8]> = Vec::with_capacity(loaded.ranges.len());
        for range in &loaded.ranges {
            if let Some(entry) = container::decode_record(format, &loaded.data, range.clone(), key) {
                entries.retain(|e| e.variant != entry.variant);
                entries.push(entry);
                intact.push(&loaded.data[range.clone()]);
            }
        }
        if intact.len() != loaded.ranges.len() {
            drop(intact);
            self.drop_undecodable(key, &path)?;
        }
        Ok(entries)
    }

    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        let format = self.inner.format;
        let path = self.path_of(&entry.key);
        let new_record = container::encode_record(format, entry);
        let _write = self.lock_for(&entry.key);
        let loaded = self.load(&entry.key, &path, false)?;
        let mut records: Vec<&[u8]> = Vec::new();
        if let Some(loaded) = &loaded {
            for record in loaded.records() {
                // Keep the other variants whose metadata reads; drop this one and broken ones.
                if container::record_meta(format, record, &entry.key)
                    .is_some_and(|meta| meta.variant != entry.variant)
                {
                    records.push(record);
                }
            }
        }
        records.push(&new_record);
        let old_size = loaded.as_ref().map_or(0, |loaded| loaded.data.len() as u64);
        self.store_records(&path, old_size, &records)
    }

    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        let path = self.path_of(key);
        let _write = self.lock_for(key);
        let Some(loaded) = self.load(key, &path, false)? else {
            return Ok(0);
        };
        let count = loaded
            .records()
            .filter(|record| container::record_meta(self.inner.format, record, key).is_some())
            .count();
        if self.remove_file(&path)? {
            self.add_used(0, loaded.data.len() as u64);
        }
        Ok(count)
    }

    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        let format = self.inner.format;
        let path = self.path_of(key);
        let _write = self.lock_for(key);
        let Some(loaded) = self.load(key, &path, false)? else {
            return Ok(false);
        };
        let mut found = false;
        let mut kept: Vec<&[u8]> = Vec::new();
        for record in loaded.records() {
            match container::record_meta(format, record, key) {
                Some(meta) if meta.variant == variant => found = true,
                Some(_) => kept.push(record),
                None => {}
            }
        }
        if found {
            self.store_records(&path, loaded.data.len() as u64, &kept)?;
        }
        Ok(found)
    }

    fn clear(&self) -> Result<(), StoreError> {
        for file in self.walk()? {
            if matches!(file.kind, Kind::Entry(_)) {
                self.remove_file(&file.path)?;
            }
        }
        self.inner.used.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes temporary files left by crashes (older than a minute) and empty shard
    /// directories, and evicts down to the bound if this process's count is over it.
    fn compact(&self) -> Result<(), StoreError> {
        let now = wall_clock();
        let mut total = 0;
        for file in self.walk()? {
            match file.kind {
                Kind::Temp if is_older(&file.metadata, now, STALE_TEMP_AGE) => {
                    let _ = fs::remove_file(&file.path);
                }
                Kind::Temp => {}
                Kind::Entry(_) => total += file.metadata.len(),
            }
        }
        let root = &self.inner.root;
        let entries = fs::read_dir(root)
            .map_err(|error| StoreError::io(format!("listing {}", root.display()), error))?;
        for shard in entries.flatten() {
            let name = shard.file_name();
            let ours = name.to_str().is_some_and(|name| name.len() == 2 && is_hex_lower(name.as_bytes()));
            if ours && shard.file_type().is_ok_and(|kind| kind.is_dir()) {
                // Fails, harmlessly, unless the directory is empty.
                let _ = fs::remove_dir(shard.path());
            }
        }
        self.inner.used.store(total, Ordering::Relaxed);
        if total > self.inner.max_bytes {
            self.evict(None)?;
        }
        Ok(())
    }

    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        let format = self.inner.format;
        let mut metas = Vec::new();
        for file in self.walk()? {
            let Kind::Entry(key) = file.kind else { continue };
            let broken = match format {
                Format::Binary => {
                    let io_error = |error| StoreError::io(format!("reading {}", file.path.display()), error);
                    let handle = match File::open(&file.path) {
                        Ok(handle) => handle,
                        Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                        Err(error) => return Err(io_error(error)),
                    };
                    let len = handle.metadata().map_err(io_error)?.len();
                    let mut reader = BufReader::with_capacity(8 << 10, handle);
                    match container::scan_binary(&mut reader, len, &key).map_err(io_error)? {
                        Ok(scanned) => {
                            metas.extend(scanned);
                            false
                        }
                        Err(container::Invalid) => true,
                    }
                }
                Format::Json => match self.read_file(&file.path, false)? {
                    None => continue,
                    Some(data) => match container::records(format, &data) {
                        Ok(ranges) => {
                            metas.extend(
                                ranges
                                    .into_iter()
                                    .filter_map(|range| container::record_meta(format, &data[range], &key)),
                            );
                            false
                        }
                        Err(container::Invalid) => true,
                    },
                },
            };
            if broken {
                tracing::debug!(path = %file.path.display(), "deleting an unreadable cache file");
                if self.remove_file(&file.path)? {
                    self.add_used(0, file.metadata.len());
                }
            }
        }
        Ok(metas)
    }
}

/// The blocking and async faces of one cache directory, for a
/// [`Cache`](httpcache_core::Cache) serving both blocking and async requests.
impl From<FsStore> for httpcache_core::DualStore<FsStore, AsyncFsStore> {
    fn from(store: FsStore) -> Self {
        httpcache_core::DualStore::new(store.clone(), store.into_async())
    }
}

#[cfg(test)]
mod tests;
