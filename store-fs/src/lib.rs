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
//! file per *key*), so a hit is one `open` + one `read` whatever the number of variants
//! (plus one for each body kept apart, below); most keys have exactly one. The file of key `abcdef…` (64 hex digits) is
//! `<dir>/ab/abcdef…` in the binary format, `<dir>/ab/abcdef….json` in JSON.
//!
//! * Binary ([`Format::Binary`], the default): a small container, a header and then
//!   each variant's record with its length in front, so [`Store::scan`] reads only each
//!   variant's metadata prefix and seeks past its body. A body of at most 128 KiB is in
//!   its record ([`Entry::encode`]). A longer one is in a file of its own next to the
//!   key's, `<dir>/ab/abcdef…-<generation>.body` (16 hex digits), and the record is a
//!   *head* ([`Entry::encode_head`], the encoding without the body) naming that
//!   generation; a hit on such an entry is two `open` + `read`s. Files written before
//!   bodies were kept apart (every record inline) read as they are, and an entry moves
//!   to the new layout when it is next written.
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
//! A body kept apart is written first, to a file created under a new name
//! (`create_new`, with a random generation), and flushed with `fsync` when that is on;
//! then the key's file is replaced with one whose head names it; the body file of the
//! record replaced is deleted last. A body file is never written again once named, so a
//! generation names one body for good: a crash between the steps leaves at worst a
//! body file no head names, never a head naming a body it does not describe, and a
//! head whose body file is missing or not the recorded length reads as a miss. (A read
//! that finds the body file gone because another handle or process replaced the key's
//! file since it read it, by a put or a refresh, reads the key's file again, and gets
//! the new entry rather than a miss.)
//! [`Store::scan`] and [`Store::compact`] delete body files no head names once they are
//! more than a minute old (younger ones may belong to a put in progress).
//!
//! Adding a variant rewrites its key's file. Two processes writing *different variants
//! of the same key* at the same instant may therefore lose one of them: a later miss,
//! never a corrupt read. Within one process such writes are serialised.
//!
//! A file that is corrupt, truncated, foreign to this format or written by another
//! version is a miss and is deleted when read; a variant that alone fails to decode is
//! dropped and its siblings kept. Files whose *name* is not one of ours (anything but
//! `<2 hex>/<64 hex>[.json]` and, for a binary store, `<2 hex>/<64 hex>-<16 hex>.body`)
//! are never read, listed or deleted.
//!
//! [`Store::compact`] deletes crash leftovers (temporary files and body files no head
//! names, more than a minute old) and empty shard directories.
//!
//! Files are created `0600` and directories `0700` (on Unix). Failures (disk full,
//! permission denied, a missing directory) are [`StoreError::Io`] naming the path.
//!
//! ## Refreshing after a 304
//!
//! [`Store::refresh`] (what the drivers call when a 304 freshens a stored response)
//! rewrites only the key's small file when the entry's body is kept apart and the body
//! file its stored head names holds exactly the entry's body: under the key's write
//! lock, that file is hard-linked under a new generation (its modification time set to
//! now first, so that a sweep takes the new name for a write in progress), the new name is read and
//! compared with the entry's body, and the key's file is replaced with a head naming
//! it (the old name is deleted after). Otherwise, or where hard links are not
//! supported, it writes the whole entry as `put` does. A refresh therefore never pairs
//! the new header fields with another body: a body another writer stored meanwhile has
//! another generation, and the name the refreshed head uses is its own, so no other
//! writer deletes it. JSON files keep bodies inline: there a refresh is a put.
//!
//! A refresh is *written behind*, as in the LMDB store: `refresh` returns once the
//! entry is queued, and a writer thread (started when needed, ended after half a
//! second without work) writes the queue, oldest first, only the last of several
//! refreshes of one variant. The queue belongs to the handle and its clones (each
//! `open` makes a new one, as another process would). A read through them sees a
//! queued refresh at once; every other write (`put`, removals, `clear`, `compact`)
//! first waits for the refreshes queued before it and holds the writer off until it
//! has landed, and every `scan` waits for them too; at most 256 refreshes or 32 MiB
//! wait, and a refresh that finds the queue full waits for room. A refresh not yet
//! written is invisible to other handles and processes, and lost if this process
//! exits first (the entry stays as it was, and its next use revalidates it again):
//! [`Store::flush`] waits for the queue. A refresh whose write fails is logged and
//! dropped, with the same effect. A refresh lands when the writer gets to it (usually
//! within a millisecond): if another process stored a new response for the variant,
//! or removed it, in between, the refresh is written whole, as it would have been had
//! it come a little later.
//!
//! ## Size bound and eviction
//!
//! The store keeps the total size of its files (key files and body files) under
//! `max_bytes` by deleting the least recently used keys first, each key's file with its
//! body files. Recency is the key file's modification time: a write sets it, and a hit
//! refreshes it when it is more than a minute old (one extra `futimens` on the already
//! open file, at most once a minute per file), so the hit path stays one `open` +
//! `read` of the key's file (and of its body files). Each process tracks the total it
//! has seen and, when it passes the bound, lists the directory, deletes the oldest keys
//! down to 90 % of the bound, and takes the listed total as the new count. With several
//! processes writing, the bound is approximate between those walks. A key's file that
//! another handle or process rewrote after the walk listed it (a put, a refresh) is
//! recent now and is not deleted: it is checked just before its deletion.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod async_store;
mod container;

use std::collections::{HashMap, HashSet};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use httpcache_core::behind::overlay;
use httpcache_core::{CacheKey, Entry, EntryMeta, Store, StoreError, VariantId, WriteBehind};

use crate::container::Record;
pub use async_store::AsyncFsStore;

/// The default size bound: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// How long the writer of refreshes waits for more once the queue is empty, before
/// its thread ends.
const WRITER_IDLE: Duration = Duration::from_millis(500);

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
                behind: WriteBehind::default(),
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
                Kind::Entry(_) | Kind::Body(..) => total += file.metadata.len(),
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
    /// The total size of entry and body files, as this process knows it.
    used: AtomicU64,
    /// Held by the thread running an eviction walk.
    evicting: Mutex<()>,
    /// Serialise writes to one key within this process.
    write_locks: Box<[Mutex<()>]>,
    /// Refreshes accepted and not yet written (see [`Store::flush`] on [`FsStore`]).
    behind: WriteBehind<Entry>,
}

/// The kind of a file found in the cache directory.
enum Kind {
    /// A key's file.
    Entry(CacheKey),
    /// A body kept apart: its key and generation (binary stores only).
    Body(CacheKey, u64),
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

/// Whether `now` (a file's metadata) is of the file `walked` describes, unchanged: the
/// same size, modification time and (on Unix) inode.
fn same_file(walked: &fs::Metadata, now: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (walked.dev(), walked.ino()) != (now.dev(), now.ino()) {
            return false;
        }
    }
    walked.len() == now.len() && walked.modified().ok() == now.modified().ok()
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

/// A fresh body generation: 64 bits hashed, with this process's random hash keys, from
/// the process id, a counter and the clock. Unpredictable and almost surely unused;
/// the body file is created with `create_new`, so a name already taken is never
/// reused (another generation is drawn).
fn new_generation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher
        .write_u128(wall_clock().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_nanos()));
    hasher.finish()
}

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

    /// The file that holds (or would hold) the body of `key` kept apart under
    /// `generation` (binary format).
    fn body_path(&self, key: &CacheKey, generation: u64) -> PathBuf {
        let hex = key.to_string();
        self.inner.root.join(&hex[..2]).join(container::body_file_name(key, generation))
    }

    /// Whether `key` may have something to remove: a refresh queued for it, or its file
    /// (anything but "no such file" counts as there). The async store looks on the
    /// calling task and goes to the thread pool only then: a removal is what every
    /// successful unsafe request causes (RFC 9111 §4.4), and most of them target URLs
    /// with nothing stored.
    pub(crate) fn may_hold(&self, key: &CacheKey) -> bool {
        !self.inner.behind.queued_for(key).is_empty()
            || std::fs::symlink_metadata(self.path_of(key))
                .map_or_else(|error| error.kind() != std::io::ErrorKind::NotFound, |_| true)
    }

    /// The file that holds (or would hold) `key`'s variants.
    pub fn path_of(&self, key: &CacheKey) -> PathBuf {
        // Built in one allocation sized for it: every hit and write asks for a path, and
        // joining formatted strings took five.
        let digits = key.to_hex();
        // `to_hex` writes ASCII digits only, so neither fallback is ever taken.
        let hex = std::str::from_utf8(&digits).unwrap_or_default();
        let shard = hex.get(..2).unwrap_or_default();
        let extension = match self.inner.format {
            Format::Binary => "",
            Format::Json => ".json",
        };
        let root = &self.inner.root;
        // The root, two separators, the shard, the name and its extension.
        let mut path =
            PathBuf::with_capacity(root.as_os_str().len() + 2 + shard.len() + hex.len() + extension.len());
        path.push(root);
        path.push(shard);
        path.push(hex);
        path.as_mut_os_string().push(extension);
        path
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

    /// The key and generation of a body file named `name` in shard directory `shard`,
    /// if it is one of ours. A JSON store has none: body files there belong to a
    /// binary store sharing the directory, and are left alone like its entry files.
    fn parse_body_name(&self, shard: &str, name: &str) -> Option<(CacheKey, u64)> {
        if self.inner.format != Format::Binary || !name.starts_with(shard) {
            return None;
        }
        container::parse_body_file_name(name)
    }

    /// Every file of ours in the cache directory: entry files, body files (binary
    /// format) and temporary files.
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
                } else if let Some((key, generation)) = self.parse_body_name(shard_name, name) {
                    Kind::Body(key, generation)
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
        // Files are replaced whole (written aside, then renamed), never grown in place,
        // so the size read here is the file's: reading exactly that much spares the
        // second `read` that would only find the end. (A shorter read leaves a record the
        // container check rejects.)
        let mut data = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        (&mut file).take(metadata.len()).read_to_end(&mut data).map_err(io_error)?;
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

    /// Deletes an unreadable file of `size` bytes, which reads as absent either way: a
    /// file that cannot be deleted (a read-only medium, another user's directory) is
    /// left, with a warning, rather than failing the read or the listing it was met in.
    fn discard_broken(&self, path: &Path, size: u64) {
        match self.remove_file(path) {
            Ok(removed) => {
                if removed {
                    self.add_used(0, size);
                }
            }
            Err(error) => tracing::warn!(%error, "an unreadable cache file could not be deleted"),
        }
    }

    fn add_used(&self, added: u64, removed: u64) {
        let update = |used: u64| Some(used.saturating_add(added).saturating_sub(removed));
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self.inner.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, update);
    }

    /// Deletes the least recently used keys (a key's file with its body files) until the
    /// total is under 90 % of the bound, never `keep` (the key file just written) and
    /// its bodies. A key's recency is its file's; body files without one count by their
    /// own. One eviction at a time per process.
    fn evict(&self, keep: Option<&Path>) -> Result<(), StoreError> {
        let Ok(_evicting) = self.inner.evicting.try_lock() else {
            return Ok(()); // another thread is on it
        };
        #[derive(Default)]
        struct Unit {
            recency: Option<SystemTime>,
            size: u64,
            /// The key's file, and its metadata as the walk found it.
            file: Option<(PathBuf, fs::Metadata)>,
            bodies: Vec<(PathBuf, u64)>,
        }
        let mut units: HashMap<CacheKey, Unit> = HashMap::new();
        for file in self.walk()? {
            let modified = file.metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let size = file.metadata.len();
            match file.kind {
                Kind::Entry(key) => {
                    let unit = units.entry(key).or_default();
                    unit.recency = Some(modified);
                    unit.size += size;
                    unit.file = Some((file.path, file.metadata));
                }
                Kind::Body(key, _) => {
                    let unit = units.entry(key).or_default();
                    if unit.file.is_none() {
                        unit.recency = unit.recency.max(Some(modified));
                    }
                    unit.size += size;
                    unit.bodies.push((file.path, size));
                }
                Kind::Temp => {}
            }
        }
        let mut units: Vec<Unit> = units.into_values().collect();
        let mut total: u64 = units.iter().map(|unit| unit.size).sum();
        let target = self.inner.max_bytes / 10 * 9;
        units.sort_by_key(|unit| unit.recency);
        #[cfg(test)]
        tests::after_eviction_walk();
        for unit in units {
            if total <= target {
                break;
            }
            if unit.file.as_ref().is_some_and(|(file, _)| Some(file.as_path()) == keep) {
                continue;
            }
            // The key's file first: no head is left naming a deleted body. Not when
            // another handle or process has rewritten it since the walk (a put, a
            // refresh after a 304): it is recent now, and its bodies may be new.
            if let Some((file, walked)) = &unit.file {
                match fs::symlink_metadata(file) {
                    Ok(now) if !same_file(walked, &now) => continue,
                    Ok(_) => {
                        if self.remove_file(file)? {
                            let bodies = unit.bodies.iter().map(|(_, size)| size).sum::<u64>();
                            total = total.saturating_sub(unit.size - bodies);
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(StoreError::io(format!("reading {}", file.display()), error));
                    }
                }
            }
            for (body, size) in &unit.bodies {
                if self.remove_file(body)? {
                    total = total.saturating_sub(*size);
                }
            }
        }
        self.inner.used.store(total, Ordering::Relaxed);
        Ok(())
    }

    /// The records of `key`'s file: the file's data, its size, and the byte ranges of its
    /// records. A broken file is deleted and reads as absent (the body files its heads
    /// named, which cannot be read from it, are left to the next `scan` or `compact`).
    fn load(&self, key: &CacheKey, path: &Path, touch: bool) -> Result<Option<Loaded>, StoreError> {
        let Some(data) = self.read_file(path, touch)? else {
            return Ok(None);
        };
        match container::records(self.inner.format, &data) {
            Ok(ranges) => Ok(Some(Loaded { data, ranges })),
            Err(container::Invalid) => {
                tracing::debug!(key = %key, path = %path.display(), "deleting an unreadable cache file");
                self.discard_broken(path, data.len() as u64);
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

    // ---- bodies kept apart (binary format) ----

    /// Whether `entry`'s body goes to a file of its own.
    fn keeps_apart(&self, entry: &Entry) -> bool {
        self.inner.format == Format::Binary && entry.response.body.len() > container::BODY_APART_ABOVE
    }

    /// Writes `body` to a new body file of `key` and returns its generation. The file
    /// is created under a name no file has (`create_new`; a taken name draws another
    /// generation) and written whole, and flushed with `fsync`, before any head names
    /// it; it is never written again.
    fn write_body(&self, key: &CacheKey, body: &[u8]) -> Result<u64, StoreError> {
        let mut attempts = 0;
        loop {
            let generation = new_generation();
            let path = self.body_path(key, generation);
            let error = match create_new(&path) {
                Ok(mut file) => {
                    let written = file
                        .write_all(body)
                        .and_then(|()| if self.inner.fsync { file.sync_all() } else { Ok(()) });
                    drop(file);
                    if let Err(error) = written {
                        let _ = fs::remove_file(&path);
                        return Err(StoreError::io(format!("writing {}", path.display()), error));
                    }
                    self.add_used(body.len() as u64, 0);
                    return Ok(generation);
                }
                Err(error) => error,
            };
            attempts += 1;
            match error.kind() {
                io::ErrorKind::AlreadyExists if attempts < 4 => {}
                io::ErrorKind::NotFound if attempts < 4 => {
                    // The shard directory does not exist yet; the cache directory must.
                    let dir = path.parent().unwrap_or(&self.inner.root);
                    dir_builder(false)
                        .create(dir)
                        .or_else(|error| if dir.is_dir() { Ok(()) } else { Err(error) })
                        .map_err(|error| StoreError::io(format!("creating {}", dir.display()), error))?;
                }
                _ => return Err(StoreError::io(format!("creating {}", path.display()), error)),
            }
        }
    }

    /// The body file of `key` and `generation`, read whole; `None` when there is none.
    /// One `read` of the length the file has (body files never change once named).
    fn read_body(&self, key: &CacheKey, generation: u64) -> Result<Option<Bytes>, StoreError> {
        let path = self.body_path(key, generation);
        let io_error = |error| StoreError::io(format!("reading {}", path.display()), error);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(error)),
        };
        let len = file.metadata().map_err(io_error)?.len();
        let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut data).map_err(io_error)?;
        // A short read means the file is not what its head describes: decoding the
        // record will refuse the length.
        Ok(Some(Bytes::from(data)))
    }

    /// Links the body file of `key` and `stored` under a new generation, which it
    /// returns; `None` when that file is gone or cannot be linked (no hard links on this
    /// file system, say), and the caller writes the body anew. The new name is counted
    /// in the byte total, as a walk of the directory would count it.
    ///
    /// The file's modification time is set to now *before* it is linked: the new name
    /// shares it, and a sweep (which deletes body files no head names once a minute
    /// old) must never see the new name, not yet named by the head the refresh writes,
    /// with the old file's age. (A sweep that saw that age, and the key's file before
    /// the new head, would delete the body the new head names.)
    fn link_body(&self, key: &CacheKey, stored: u64) -> Option<u64> {
        let from = self.body_path(key, stored);
        // Best effort, as for a hit's touch: a failure leaves only the sweep's margin.
        if let Ok(file) = File::open(&from) {
            let _ = file.set_modified(wall_clock());
        }
        for _ in 0..4 {
            let generation = new_generation();
            let to = self.body_path(key, generation);
            match fs::hard_link(&from, &to) {
                Ok(()) => {
                    self.add_used(fs::metadata(&to).map_or(0, |metadata| metadata.len()), 0);
                    return Some(generation);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => {
                    if error.kind() != io::ErrorKind::NotFound {
                        tracing::debug!(path = %from.display(), %error, "cannot link a body file; writing it anew");
                    }
                    return None;
                }
            }
        }
        None
    }

    /// Whether the body file of `key` and `generation` holds exactly `body`: the guard
    /// of a refresh (see [`Store::refresh`] on [`FsStore`]). Reads the file in chunks
    /// and stops at the first difference.
    fn body_file_is(&self, key: &CacheKey, generation: u64, body: &[u8]) -> Result<bool, StoreError> {
        let path = self.body_path(key, generation);
        let io_error = |error| StoreError::io(format!("reading {}", path.display()), error);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(io_error(error)),
        };
        if file.metadata().map_err(io_error)?.len() != body.len() as u64 {
            return Ok(false);
        }
        let mut chunk = vec![0u8; (64 << 10).min(body.len())];
        let mut at = 0;
        while at < body.len() {
            let want = chunk.len().min(body.len() - at);
            let got = container::read_exact_or_short(&mut file, &mut chunk[..want]).map_err(io_error)?;
            if got < want || chunk[..want] != body[at..at + want] {
                return Ok(false);
            }
            at += want;
        }
        Ok(true)
    }

    /// Deletes the body files of `key` with these generations.
    fn remove_bodies(
        &self,
        key: &CacheKey,
        generations: impl IntoIterator<Item = u64>,
    ) -> Result<(), StoreError> {
        for generation in generations {
            let path = self.body_path(key, generation);
            let size = fs::metadata(&path).map_or(0, |metadata| metadata.len());
            if self.remove_file(&path)? {
                self.add_used(0, size);
            }
        }
        Ok(())
    }

    /// The generations the head records among `records` name.
    fn generations<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u64> {
        match self.inner.format {
            Format::Binary => {
                records.into_iter().filter_map(|record| Record::of(record).generation()).collect()
            }
            Format::Json => Vec::new(),
        }
    }

    /// Under `key`'s write lock, with `loaded` its file as read under that lock:
    /// replaces `entry`'s variant with `record` (dropping records whose metadata does
    /// not read), then deletes the body files of the records it replaced or dropped,
    /// except `keep` (the body `record` itself names, when a refresh kept it).
    fn replace_variant(
        &self,
        entry: &Entry,
        path: &Path,
        loaded: Option<Loaded>,
        record: &[u8],
        keep: Option<u64>,
    ) -> Result<(), StoreError> {
        let format = self.inner.format;
        let mut records: Vec<&[u8]> = Vec::new();
        let mut gone: Vec<&[u8]> = Vec::new();
        if let Some(loaded) = &loaded {
            for stored in loaded.records() {
                // Keep the other variants whose metadata reads; drop this one and broken ones.
                if container::record_meta(format, stored, &entry.key)
                    .is_some_and(|meta| meta.variant != entry.variant)
                {
                    records.push(stored);
                } else {
                    gone.push(stored);
                }
            }
        }
        records.push(record);
        let old_size = loaded.as_ref().map_or(0, |loaded| loaded.data.len() as u64);
        self.store_records(path, old_size, &records)?;
        let orphaned = self.generations(gone).into_iter().filter(|generation| Some(*generation) != keep);
        self.remove_bodies(&entry.key, orphaned)
    }

    /// Writes `entry` whole: its body first, to a new body file when kept apart, then
    /// the key's file naming it; the body file of the record it replaces goes last.
    fn put_whole(&self, entry: &Entry) -> Result<(), StoreError> {
        let path = self.path_of(&entry.key);
        let (record, generation) = if self.keeps_apart(entry) {
            let size = entry.response.body.len() as u64;
            if size > self.inner.max_bytes {
                return Err(StoreError::Full(format!(
                    "a body of {size} bytes for {}; this store holds at most {}",
                    path.display(),
                    self.inner.max_bytes
                )));
            }
            let generation = self.write_body(&entry.key, &entry.response.body)?;
            (container::encode_head_record(entry, generation), Some(generation))
        } else {
            (container::encode_record(self.inner.format, entry), None)
        };
        let written = {
            let _write = self.lock_for(&entry.key);
            self.load(&entry.key, &path, false)
                .and_then(|loaded| self.replace_variant(entry, &path, loaded, &record, None))
        };
        if written.is_err()
            && let Some(generation) = generation
        {
            // Named by no head (unless the failure came after the key's file was
            // written): delete it now rather than leave it to a later sweep.
            self.discard_unnamed_body(&entry.key, &path, generation);
        }
        written
    }

    /// After a write of `key` failed: deletes the body file of `generation` (that write's
    /// own) unless the key's file names it after all (the failure came after the file
    /// was written, from the eviction that followed, say). Best effort.
    fn discard_unnamed_body(&self, key: &CacheKey, path: &Path, generation: u64) {
        let named = match self.read_file(path, false) {
            Ok(Some(data)) => container::records(self.inner.format, &data).is_ok_and(|ranges| {
                self.generations(ranges.into_iter().map(|range| &data[range])).contains(&generation)
            }),
            Ok(None) => false,
            // Unreadable: leave it to a sweep rather than risk deleting a named body.
            Err(_) => true,
        };
        if !named {
            let _ = self.remove_bodies(key, [generation]);
        }
    }

    /// Deletes body files no head names, when older than a minute (younger ones may
    /// belong to a put that has not yet written its head). `referenced` holds, per
    /// key, the generations its file names; `bodies` are the body files found.
    fn delete_orphan_bodies(
        &self,
        bodies: Vec<Found>,
        referenced: &HashMap<CacheKey, HashSet<u64>>,
        now: SystemTime,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for file in bodies {
            let Kind::Body(key, generation) = file.kind else { continue };
            let named = referenced.get(&key).is_some_and(|generations| generations.contains(&generation));
            if !named && is_older(&file.metadata, now, STALE_TEMP_AGE) && self.remove_file(&file.path)? {
                tracing::debug!(path = %file.path.display(), "deleted a body file no head names");
                self.add_used(0, file.metadata.len());
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

impl FsStore {
    /// When the entry's body is kept apart (binary format, over 128 KiB) and the body
    /// file its stored head names holds exactly that body, rewrites only the key's
    /// small file, whose new head names a new hard link to that body file; else a whole
    /// [`put`](Self::put).
    ///
    /// Under the key's write lock: the stored head's body file is linked under a new
    /// generation (`hard_link` refuses a name that exists), the new name is read and
    /// compared with the entry's body, stopping at the first difference, and only then
    /// is the key's file replaced and the old name deleted. Comparing bytes is the
    /// proof chosen over a fingerprint (which needs hashing the body anyway and could
    /// collide) or the stored generation (the entry a driver hands over carries none):
    /// reading 1 MiB from the page cache costs a fraction of writing and, with
    /// `fsync`, flushing a new file of it. Body files never change once written, and the
    /// new name belongs to this refresh alone, so the head it writes names exactly the
    /// bytes it compared, even if another process replaces the variant meanwhile (and
    /// deletes the old name). Where hard links are not supported, a refresh is a put.
    ///
    /// Returns whether the stored body was kept (`false`: the whole entry was written).
    fn refresh_entry(&self, entry: &Entry) -> Result<bool, StoreError> {
        if !self.keeps_apart(entry) {
            return self.put_whole(entry).map(|()| false);
        }
        let path = self.path_of(&entry.key);
        {
            let _write = self.lock_for(&entry.key);
            let loaded = self.load(&entry.key, &path, false)?;
            let stored = loaded.as_ref().and_then(|loaded| {
                loaded.records().find_map(|record| {
                    let meta = container::record_meta(Format::Binary, record, &entry.key)?;
                    let generation = Record::of(record).generation()?;
                    (meta.variant == entry.variant && meta.body_size == entry.response.body.len() as u64)
                        .then_some(generation)
                })
            });
            if let Some(stored) = stored
                && let Some(linked) = self.link_body(&entry.key, stored)
            {
                #[cfg(test)]
                tests::after_link();
                let kept = self.body_file_is(&entry.key, linked, &entry.response.body).and_then(|same| {
                    if !same {
                        return Ok(false);
                    }
                    let record = container::encode_head_record(entry, linked);
                    self.replace_variant(entry, &path, loaded, &record, Some(linked)).map(|()| true)
                });
                match kept {
                    Ok(true) => return Ok(true),
                    Ok(false) => self.remove_bodies(&entry.key, [linked])?,
                    Err(error) => {
                        // Named by no head (the key's file could not be written, a full
                        // disk say): delete it now, as a failed put does its body file,
                        // rather than leave it counted until a sweep.
                        self.discard_unnamed_body(&entry.key, &path, linked);
                        return Err(error);
                    }
                }
            }
        }
        self.put_whole(entry).map(|()| false)
    }

    /// The decodable variants in `key`'s file (its broken records dropped), without the
    /// queued refreshes, and without reading the variants in `skip` (those a queued
    /// refresh replaces: their bodies are not read for nothing).
    ///
    /// A head whose body file is gone most likely belongs to a key's file that another
    /// handle or process replaced (a put, or a refresh, deletes the body file the
    /// replaced head named) between the two reads: the key's file is read again, up to
    /// [`REREADS`] times, and the variant is broken only when the file read again is the
    /// same.
    fn read_stored(&self, key: &CacheKey, skip: &[VariantId]) -> Result<Vec<Entry>, StoreError> {
        let path = self.path_of(key);
        let Some(mut loaded) = self.load(key, &path, true)? else {
            return Ok(Vec::new());
        };
        let mut rereads = 0;
        loop {
            match self.decode_stored(key, &path, &loaded, skip, rereads < REREADS)? {
                Decoded::Entries(entries) => return Ok(entries),
                Decoded::BodyGone => match self.load(key, &path, false)? {
                    None => return Ok(Vec::new()),
                    Some(again) => {
                        // The same file: the body is missing for good, and the next
                        // pass takes the variant for broken.
                        if again.data == loaded.data {
                            rereads = REREADS;
                        } else {
                            rereads += 1;
                        }
                        loaded = again;
                    }
                },
            }
        }
    }

    /// The entries of `loaded` (`key`'s file), as [`read_stored`](Self::read_stored)
    /// returns them; with `reread`, [`Decoded::BodyGone`] when a head's body file is
    /// gone, else such a variant is broken.
    fn decode_stored(
        &self,
        key: &CacheKey,
        path: &Path,
        loaded: &Loaded,
        skip: &[VariantId],
        reread: bool,
    ) -> Result<Decoded, StoreError> {
        let format = self.inner.format;
        let mut entries: Vec<Entry> = Vec::with_capacity(loaded.ranges.len());
        let mut broken: Vec<&[u8]> = Vec::new();
        for range in &loaded.ranges {
            let record = &loaded.data[range.clone()];
            if !skip.is_empty()
                && container::record_meta(format, record, key)
                    .is_some_and(|meta| skip.contains(&meta.variant))
            {
                continue;
            }
            let body = match self.generations([record]).first() {
                Some(&generation) => {
                    #[cfg(test)]
                    tests::before_body_read();
                    match self.read_body(key, generation)? {
                        None if reread => return Ok(Decoded::BodyGone),
                        body => body,
                    }
                }
                None => None,
            };
            match container::decode_record(format, &loaded.data, range.clone(), body, key) {
                Some(entry) => {
                    entries.retain(|e| e.variant != entry.variant);
                    entries.push(entry);
                }
                None => broken.push(record),
            }
        }
        if !broken.is_empty() {
            self.drop_records(key, path, &broken)?;
        }
        Ok(Decoded::Entries(entries))
    }

    /// Queues a refresh to be written behind, first waiting for room if the queue is
    /// full.
    pub(crate) fn refresh_behind(&self, entry: Arc<Entry>) {
        self.inner.behind.push(entry, || self.start_writer());
    }

    /// Queues a refresh to be written behind if the queue has room now; gives the
    /// entry back otherwise.
    pub(crate) fn try_refresh_behind(&self, entry: Arc<Entry>) -> Result<(), Arc<Entry>> {
        self.inner.behind.try_push(entry, || self.start_writer())
    }

    /// Whether refreshes are queued and not yet written.
    pub(crate) fn has_queued_refreshes(&self) -> bool {
        !self.inner.behind.is_empty()
    }

    /// Starts the writer of queued refreshes, on a thread of its own (a pool thread
    /// could be starved by the pool tasks waiting for it): it writes them one by one,
    /// oldest first, and ends once none has come for [`WRITER_IDLE`]. A refresh that
    /// fails is logged and dropped; the stored entry stays as it was (its next use
    /// revalidates again). Without a thread, the caller writes them.
    fn start_writer(&self) {
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("httpcache-fs-writer".into())
            .spawn(move || store.write_behind(WRITER_IDLE));
        if let Err(error) = spawned {
            // No thread to write behind: write here, now.
            tracing::warn!(%error, "no writer thread: refreshing inline");
            self.write_behind(Duration::ZERO);
        }
    }

    /// The writer's work: what is queued, written until none has come for `idle`.
    fn write_behind(&self, idle: Duration) {
        self.inner.behind.drain(idle, |batch| {
            for entry in batch {
                if let Err(error) = self.refresh_entry(entry) {
                    tracing::warn!(key = %entry.key, %error, "a refresh written behind failed");
                }
            }
        });
    }

    /// Queues a refresh without starting a writer: it stays queued until the test
    /// calls [`write_queued`](Self::write_queued).
    #[cfg(test)]
    pub(crate) fn queue_refresh_unwritten(&self, entry: &Entry) {
        self.inner.behind.push(Arc::new(entry.clone()), || {});
    }

    /// Writes what is queued, on this thread, as the writer would.
    #[cfg(test)]
    pub(crate) fn write_queued(&self) {
        self.write_behind(Duration::ZERO);
    }

    /// Rewrites `key`'s file without the records in `broken` (compared byte for byte,
    /// under the write lock, so a record a concurrent write in this process replaced
    /// meanwhile is not undone), and deletes the body files they named.
    fn drop_records(&self, key: &CacheKey, path: &Path, broken: &[&[u8]]) -> Result<(), StoreError> {
        tracing::debug!(key = %key, path = %path.display(), "dropping undecodable cache variants");
        let _write = self.lock_for(key);
        let Some(loaded) = self.load(key, path, false)? else {
            return Ok(());
        };
        let (gone, intact): (Vec<&[u8]>, Vec<&[u8]>) =
            loaded.records().partition(|record| broken.contains(record));
        if gone.is_empty() {
            return Ok(());
        }
        self.store_records(path, loaded.data.len() as u64, &intact)?;
        let named: HashSet<u64> = self.generations(intact.iter().copied()).into_iter().collect();
        let orphaned = self.generations(gone).into_iter().filter(|generation| !named.contains(generation));
        self.remove_bodies(key, orphaned)
    }
}

/// How many times a read reads a key's file again after a head's body file was found
/// gone (see `FsStore::read_stored`).
const REREADS: u32 = 4;

/// What `FsStore::decode_stored` made of a key's file.
enum Decoded {
    /// The variants that decoded (broken ones dropped).
    Entries(Vec<Entry>),
    /// A head's body file is gone: read the key's file again.
    BodyGone,
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
    /// The variants in the key's file, with the refreshes queued for them in their
    /// place (looked at first: one written and dequeued after that look is in the file
    /// by the time it is read).
    fn get(&self, key: &CacheKey) -> Result<Vec<Entry>, StoreError> {
        let queued = self.inner.behind.queued_for(key);
        let overlaid: Vec<VariantId> = queued.iter().map(|refresh| refresh.variant).collect();
        let mut entries = self.read_stored(key, &overlaid)?;
        overlay(&mut entries, queued.iter().map(|refresh| Entry::clone(refresh)));
        Ok(entries)
    }

    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        let _settled = self.inner.behind.settle();
        self.put_whole(entry)
    }

    /// When the entry's body is kept apart (binary format, over 128 KiB) and the body
    /// file its stored head names holds exactly that body, rewrites only the key's
    /// small file; else a whole [`put`](Self::put). See `FsStore::refresh_entry`.
    ///
    /// Written behind: returns once the refresh is queued (see
    /// [`flush`](FsStore#method.flush)). A failure to write it is logged, not returned:
    /// the stored entry then stays as it was.
    fn refresh(&self, entry: &Entry) -> Result<(), StoreError> {
        self.refresh_behind(Arc::new(entry.clone()));
        Ok(())
    }

    /// Waits until every refresh queued through this handle (or its clones) before the
    /// call is written; never fails.
    ///
    /// A refresh returns once it is queued and is written behind (see the
    /// [crate docs](crate#refreshing-after-a-304)). Reads through this handle and its
    /// clones see it at once, and every other write and scan waits for it, so only
    /// another handle or process reading the directory, or this process exiting
    /// before it is written (the entry then stays as it was, to be revalidated
    /// again), can tell.
    fn flush(&self) -> Result<(), StoreError> {
        drop(self.inner.behind.settle());
        Ok(())
    }

    fn remove(&self, key: &CacheKey) -> Result<usize, StoreError> {
        let _settled = self.inner.behind.settle();
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
        self.remove_bodies(key, self.generations(loaded.records()))?;
        Ok(count)
    }

    fn remove_variant(&self, key: &CacheKey, variant: VariantId) -> Result<bool, StoreError> {
        let _settled = self.inner.behind.settle();
        let format = self.inner.format;
        let path = self.path_of(key);
        let _write = self.lock_for(key);
        let Some(loaded) = self.load(key, &path, false)? else {
            return Ok(false);
        };
        let mut found = false;
        let mut kept: Vec<&[u8]> = Vec::new();
        let mut gone: Vec<&[u8]> = Vec::new();
        for record in loaded.records() {
            match container::record_meta(format, record, key) {
                Some(meta) if meta.variant == variant => {
                    found = true;
                    gone.push(record);
                }
                Some(_) => kept.push(record),
                None => gone.push(record),
            }
        }
        if found {
            self.store_records(&path, loaded.data.len() as u64, &kept)?;
            self.remove_bodies(key, self.generations(gone))?;
        }
        Ok(found)
    }

    fn clear(&self) -> Result<(), StoreError> {
        let _settled = self.inner.behind.settle();
        // Key files first: no head is left naming a deleted body.
        let (bodies, others): (Vec<Found>, Vec<Found>) =
            self.walk()?.into_iter().partition(|file| matches!(file.kind, Kind::Body(..)));
        for file in others.iter().chain(&bodies) {
            if matches!(file.kind, Kind::Entry(_) | Kind::Body(..)) {
                self.remove_file(&file.path)?;
            }
        }
        self.inner.used.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes temporary files left by crashes (older than a minute), body files no
    /// head names (older than a minute) and empty shard directories, and evicts down
    /// to the bound if this process's count is over it.
    fn compact(&self) -> Result<(), StoreError> {
        let _settled = self.inner.behind.settle();
        let now = wall_clock();
        let mut total = 0;
        let mut bodies = Vec::new();
        let mut keys = HashSet::new();
        for file in self.walk()? {
            match file.kind {
                Kind::Temp if is_older(&file.metadata, now, STALE_TEMP_AGE) => {
                    let _ = fs::remove_file(&file.path);
                }
                Kind::Temp => {}
                Kind::Entry(_) => total += file.metadata.len(),
                Kind::Body(key, _) => {
                    total += file.metadata.len();
                    keys.insert(key);
                    bodies.push(file);
                }
            }
        }
        // Which generations the files of the keys with bodies name.
        let mut referenced: HashMap<CacheKey, HashSet<u64>> = HashMap::new();
        for key in keys {
            let path = self.path_of(&key);
            if let Some(data) = self.read_file(&path, false)?
                && let Ok(ranges) = container::records(self.inner.format, &data)
            {
                let records = ranges.into_iter().map(|range| &data[range]);
                referenced.insert(key, self.generations(records).into_iter().collect());
            }
        }
        self.inner.used.store(total, Ordering::Relaxed);
        self.delete_orphan_bodies(bodies, &referenced, now)?;
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
        if self.used_bytes() > self.inner.max_bytes {
            self.evict(None)?;
        }
        Ok(())
    }

    /// Lists every key's file; in passing deletes broken ones and body files no head
    /// names (older than a minute).
    fn scan(&self) -> Result<Vec<EntryMeta>, StoreError> {
        drop(self.inner.behind.settle());
        let format = self.inner.format;
        let mut metas = Vec::new();
        let mut bodies = Vec::new();
        let mut referenced: HashMap<CacheKey, HashSet<u64>> = HashMap::new();
        for file in self.walk()? {
            let key = match file.kind {
                Kind::Entry(key) => key,
                Kind::Body(..) => {
                    bodies.push(file);
                    continue;
                }
                Kind::Temp => continue,
            };
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
                            let generations = referenced.entry(key).or_default();
                            for record in scanned {
                                generations.extend(record.generation);
                                metas.extend(record.meta);
                            }
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
                self.discard_broken(&file.path, file.metadata.len());
            }
        }
        self.delete_orphan_bodies(bodies, &referenced, wall_clock())?;
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
