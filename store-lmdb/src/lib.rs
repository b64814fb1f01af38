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
//! Five named databases in one environment, kept consistent by doing every change in
//! one write transaction:
//!
//! * `entries`: record id (32-byte key ++ big-endian variant) → the binary entry
//!   ([`Entry::encode`](httpcache_core::Entry::encode)). `get` is one range over the
//!   key's 32 bytes.
//! * `metas`: record id → a small record (creation and expiry times, entry size, and
//!   the metadata block of the encoding), so `scan` never reads bodies.
//! * `by-expiry` and `by-created`: time ++ record id → (), so purging expired entries
//!   and evicting the oldest visit only what they delete.
//! * `info`: a format marker (an environment without it that holds data is refused as
//!   [`LmdbError::NotACache`]) and the total size of the stored entries.
//!
//! A record that fails to decode is a miss: it is deleted and left out.
//!
//! ## Size
//!
//! The map starts at [`DEFAULT_MAP_SIZE`] (address space; the file grows only with
//! the data). A write that fills it doubles the map, up to [`DEFAULT_MAX_MAP_SIZE`]
//! or [`LmdbBuilder::max_map_size`]; past that, expired entries and then the oldest
//! are evicted until the write fits. [`LmdbBuilder::max_bytes`] bounds the total
//! size of the entries the same way. A put fails for lack of room only when the
//! entry alone is too big.
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
//! opens it. Any number of processes may read and write the same directory at once;
//! LMDB's own locks coordinate them.
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
mod records;
mod store;

pub use async_store::AsyncLmdbStore;
pub use default::{DEFAULT_APP_NAME, default_cache_dir};
pub use error::LmdbError;
pub use store::{DEFAULT_MAP_SIZE, DEFAULT_MAX_MAP_SIZE, LmdbBuilder, LmdbStats, LmdbStore, SyncMode};

#[cfg(test)]
mod tests;
