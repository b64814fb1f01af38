//! # httpcache-lmdb
//!
//! The default httpcache store: entries in an [LMDB] environment (through [`heed`]),
//! one memory-mapped file shared by every thread and every process that opens the
//! same directory. Reads never wait for writers; writes are atomic transactions, so
//! a process killed mid-write leaves every entry either absent or whole.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//!
//! use httpcache_core::{CacheKey, Entry, Store, StoredRequest, StoredResponse, VariantId};
//! use httpcache_lmdb::LmdbStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let cache_dir = dir.path().join("cache");
//! // `LmdbStore::open(cache_dir)` takes the defaults; the builder bounds the size.
//! let store = LmdbStore::builder(cache_dir).max_bytes(256 << 20).open()?;
//!
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let entry = Entry {
//!     key: CacheKey::hash("GET https://example.com/"),
//!     variant: VariantId(0),
//!     request: StoredRequest {
//!         method: http::Method::GET,
//!         url: "https://example.com/".into(),
//!         headers: http::HeaderMap::new(),
//!     },
//!     response: StoredResponse {
//!         status: http::StatusCode::OK,
//!         version: http::Version::HTTP_11,
//!         headers: http::HeaderMap::new(),
//!         body: bytes::Bytes::from_static(b"hello"),
//!         final_url: None,
//!     },
//!     request_time: now,
//!     response_time: now,
//!     created: now,
//!     expires: Some(now + Duration::from_secs(600)),
//!     initial_age: Duration::ZERO,
//! };
//! store.put(&entry)?;
//! assert_eq!(store.get(&entry.key)?, vec![entry.clone()]);
//!
//! // Expired entries are found through an index, without scanning the store.
//! assert_eq!(store.purge_expired(now + Duration::from_secs(601))?, 1);
//! assert!(store.get(&entry.key)?.is_empty());
//! # Ok(()) }
//! ```
//!
//! For async code, [`AsyncLmdbStore`] (from [`LmdbStore::into_async`]) implements
//! [`AsyncStore`](httpcache_core::AsyncStore): reads run inline, writes and scans on
//! the [`blocking`] crate's thread pool, whatever the executor.
//!
//! [`LmdbStore::open_default`] opens the store the ready-made clients of the adapters
//! use, in [`default_cache_dir`]`(`[`DEFAULT_APP_NAME`]`)`.
//!
//! ## Layout
//!
//! Six named databases in one environment, kept consistent by doing every change in
//! one write transaction:
//!
//! * `entries`: record id (32-byte key ++ big-endian variant) → the entry. An entry
//!   whose body is at most 16 KiB is stored whole, inline
//!   ([`Entry::encode`](httpcache_core::Entry::encode)); a longer one as a *head*
//!   (a 4-byte tag and [`Entry::encode_head`](httpcache_core::Entry::encode_head),
//!   the encoding without the body). `get` is one range over the key's 32 bytes, plus
//!   one lookup in `bodies` per head; each record and body is copied out of the map
//!   once.
//! * `bodies`: record id → the body of an entry stored as a head, exactly as long as
//!   the head says.
//! * `metas`: record id → a small record (creation and expiry times, entry size, and
//!   the metadata block of the encoding), so `scan` never reads bodies.
//! * `by-expiry` and `by-created`: time ++ record id → (), so purging expired entries
//!   and evicting the oldest visit only what they delete.
//! * `info`: a format marker (an environment without it that holds data is refused as
//!   [`LmdbError::NotACache`]) and the total size of the stored entries.
//!
//! A record that fails to decode is a miss: it is deleted and left out, with its body.
//! A head whose body is missing or not the recorded length is such a record.
//!
//! Environments written before bodies were kept apart hold only inline records and no
//! `bodies` database: they open and read as they are (the database is created), and
//! each entry moves to the new layout when it is next written. An older build reading
//! this layout takes a head for an undecodable record and deletes it, leaving its
//! body; [`Store::compact`](httpcache_core::Store::compact) deletes such orphans.
//!
//! ## Refreshing after a 304
//!
//! [`Store::refresh`](httpcache_core::Store::refresh) (what the drivers call when a
//! 304 freshens a stored response) is one write transaction that, when the entry's
//! body is kept apart *and the body stored under its id is byte for byte the entry's*,
//! rewrites only the head, the meta record and the index keys: a few hundred bytes,
//! whatever the body's size. The comparison runs inside the write transaction against
//! the mapped pages, so no other writer can slip another response in between; if
//! another process stored a new response for the variant since it was read, or it was
//! evicted, the refresh writes the whole entry as `put` does. It never pairs the
//! refreshed header fields with a body they do not describe.
//!
//! A refresh is *written behind*: `refresh` returns once the entry is queued, so a
//! revalidated response does not wait for the commit's flush to disk, and a writer
//! thread (started when needed, ended after half a second without work) writes
//! everything queued in one transaction (a burst of revalidations costs one commit,
//! and of several refreshes of one variant only the last is written). Nothing read
//! through this process's handles can tell:
//!
//! * a read sees a queued refresh at once, in place of the variant in the map;
//! * every other write of this process (`put`, `remove`, `clear`, purges,
//!   compaction) first waits for the refreshes queued before it, and holds the writer
//!   off until it has committed, so they land in the order they were asked for; every
//!   scan waits for them too;
//! * at most 256 refreshes or 32 MiB of entries wait; a refresh that finds the queue
//!   full waits for room (off the executor, for [`AsyncLmdbStore`]).
//!
//! What is not yet written is invisible to other processes, and lost if this process
//! exits first: the entry then stays as it was, and its next use revalidates it again.
//! A refresh lands when the writer gets to it (usually within a millisecond): if
//! another process stored a new response for the variant, or removed it, in between,
//! the refresh is written whole, as it would have been had it come a little later.
//! [`Store::flush`](httpcache_core::Store::flush) waits for the queue; call it before exiting to keep every
//! refresh. A refresh whose write fails is logged (`tracing`, level warn) and dropped,
//! with the same effect; the others queued with it are still written.
//!
//! ## Size
//!
//! The map starts at [`DEFAULT_MAP_SIZE`] (address space; the file grows only with
//! the data). A write that fills it doubles the map, up to [`DEFAULT_MAX_MAP_SIZE`]
//! or [`LmdbBuilder::max_map_size`]; past that, expired entries and then the oldest
//! are evicted until the write fits. [`LmdbBuilder::max_bytes`] bounds the total
//! size of the entries (records and bodies) the same way.
//!
//! Once the map is at its largest, puts keep an *eviction reserve* of it free: a put
//! that would leave fewer pages free is treated as not fitting, and evicts first. LMDB
//! copies every page a write changes, deletions included, and reuses the pages a commit
//! frees only two commits later, so a map with no free page cannot be written at all: a
//! put that finds it full cannot evict for itself, nor can any put after it, and
//! removals and purges fail too; only `clear` got such a map going again (before the
//! reserve, all of 60 maps of 256 KiB to 4 MiB filled with small entries ended so,
//! within a few dozen puts of filling). So the map may grow to `max_map_size`, but
//! entries fill it only up to `max_map_size` less the reserve; evictions, removals,
//! purges and `clear` may use it, leaving the pages of their commit and one more (8
//! pages). The reserve is what evicting one record and the commits around it take,
//! counted from the depths of the B-trees an entry goes to (five):
//!
//! * for each tree, twice its depth: the path to the record, copied, and a neighbour
//!   per level when the deletion leaves a leaf less than a quarter full (LMDB merges
//!   it);
//! * 4 pages for each of three commits (the put's, the eviction's and the one after it,
//!   which lets the pages the eviction freed be reused): the copies of the main
//!   database's root and of `info`'s leaf, and the free list's leaf and its copy;
//! * and 4 pages of margin (a deeper or longer free list, a split).
//!
//! That is 26 pages in a store holding one entry, 30 to 34 (120 to 136 KiB of 4 KiB
//! pages) in a map of a few MiB of small entries, and about 60 by the same count in one
//! of several GiB, whose trees are deeper. Whether a put leaves it is not estimated but
//! tried: in a transaction nested in the put's, then aborted, LMDB is asked for that
//! many pages, one at a time, from where the writes after it will take theirs (no I/O;
//! only while the map cannot grow by the reserve).
//!
//! A put fails for lack of room ([`LmdbError::Full`]), without evicting anything, in
//! three cases:
//!
//! * the entry alone exceeds `max_bytes`;
//! * or it could not fit even in an empty map of `max_map_size`, counted in LMDB's
//!   pages: a value longer than about half a page (about 2 KiB of a 4 KiB page) takes
//!   overflow pages of its own, `(length + 16) / page size` rounded up; the entry's
//!   other records take a leaf page in each of the five databases they go to; an empty
//!   store takes 4 pages (two meta pages, the main database's root, the leaf of
//!   `info`); every write copies the pages it changes and rewrites the free list; and
//!   the eviction reserve of a store holding one entry stays free. With 4 KiB pages, a
//!   1 MiB map takes a body of at most 215 pages (880,624 bytes);
//! * or, when the map at its largest has no room for it, its longest record needs more
//!   consecutive pages than eviction is counted on to free: a quarter of the pages the
//!   map has used so far, the empty store's and the reserve's excepted. LMDB puts a
//!   long value on one run of pages, taken from the never-used end of the map or from
//!   pages freed below it, never from both, and the pages an emptied store still uses
//!   can lie anywhere among the freed ones. In a map that has filled, that refuses a
//!   body of more than about a quarter of the map (a fifth of a 1 MiB one).
//!
//! Only when these counts err (the store is emptied and LMDB still finds no run of
//! free pages long enough) does a put that fails leave entries evicted.
//! [`LmdbStore::put_batch`] counts its entries together, and a refresh that keeps the
//! stored body (see below) is not refused for the body's run.
//!
//! Each put is one transaction. By default ([`SyncMode::Relaxed`]) a commit is flushed
//! with one `fsync` and the metadata page's flush is deferred: the environment stays
//! consistent after a crash of the machine, which may undo the last write.
//! [`LmdbBuilder::sync`] chooses [`SyncMode::Full`] (nothing lost, two `fsync`s) or
//! [`SyncMode::None`] (no flush; fastest). A killed process never leaves a partial
//! write in any mode, and [`LmdbStore::put_batch`] writes many entries in one
//! transaction.
//!
//! ## Processes and threads
//!
//! Each process keeps one environment per directory (opening a path twice returns
//! handles to the same one) and clears reader slots left by dead processes when it
//! opens it, and again when a write finds the map full, before growing it (a process
//! killed mid-read leaves the snapshot it read pinned, and no page freed since could be
//! reused until then). Any number of processes may read and write the same directory at once;
//! LMDB's own locks coordinate them.
//!
//! A thread reads through a slot of LMDB's reader table that it takes at its first read
//! and keeps until it exits, so reads from many threads take no lock in common. The
//! table has [`LmdbBuilder::max_readers`] slots (1024 by default) for all the threads
//! of all the processes that read the directory; a read on a thread that finds it full
//! fails with an error naming that limit (the drivers treat it as a miss).
//!
//! A full disk makes writes fail with an error, never the process. LMDB keeps its reader
//! table in a lock file (`lock.mdb`) it writes through a memory map, where a page no disk
//! block backs would end the process with `SIGBUS` on a full disk; on Linux the open
//! allocates the file's blocks first, and fails with an I/O error when there is no room
//! for them.
//!
//! [LMDB]: http://www.lmdb.tech/doc/
#![warn(missing_docs)]
// heed marks opening an environment (and setting its sync flags) and resizing its map
// `unsafe`; those calls, in `store.rs`, are the only unsafe code here, each with its
// SAFETY argument.
#![allow(unsafe_code)]

mod async_store;
mod default;
mod error;
mod pages;
mod records;
mod store;

pub use async_store::AsyncLmdbStore;
pub use default::{DEFAULT_APP_NAME, default_cache_dir};
pub use error::LmdbError;
pub use store::{DEFAULT_MAP_SIZE, DEFAULT_MAX_MAP_SIZE, LmdbBuilder, LmdbStats, LmdbStore, SyncMode};

#[cfg(test)]
mod tests;
