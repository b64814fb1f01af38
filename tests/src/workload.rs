//! Deterministic, self-verifying entries and the workload `store-worker` runs.
//!
//! Every entry a worker writes is a function of a [`Stamp`] (writer, thread, sequence
//! number, key, variant). The stamp is written as the first line of the body, the rest
//! of the body is a pattern derived from it, and a response header carries the SHA-256
//! of the body. So a reader holding any entry can rebuild exactly what its writer
//! wrote and compare the two field for field ([`verify`]), without knowing anything
//! about the run that produced it.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use httpcache_core::{
    CacheKey, Entry, EntryMeta, Store, StoreError, StoredRequest, StoredResponse, VariantId,
};
use httpcache_fs::FsStore;
use httpcache_lmdb::{LmdbStore, SyncMode};

/// Seconds after the Unix epoch where the stamps' times start.
const ORIGIN_SECONDS: u64 = 1_700_000_000;

/// What every body's first line starts with.
const BODY_MAGIC: &str = "httpcache-worker";

/// The response header holding the body's SHA-256 (lower-case hex).
pub const DIGEST_HEADER: &str = "x-body-sha256";

/// The `n`th key of the shared key space.
pub fn worker_key(n: u64) -> CacheKey {
    CacheKey::hash(format!("httpcache worker key {n}"))
}

/// Who wrote an entry, and which: everything an entry is derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// The writing process's id (given on the worker's command line).
    pub writer: u32,
    /// The writing thread within the process.
    pub thread: u32,
    /// The thread's operation counter.
    pub sequence: u64,
    /// Which key of the shared key space ([`worker_key`]).
    pub key: u64,
    /// Which variant of it.
    pub variant: u64,
}

/// A SplitMix64 step: a well-mixed function of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Stamp {
    fn seed(&self) -> u64 {
        let mut seed = mix(u64::from(self.writer));
        for part in [u64::from(self.thread), self.sequence, self.key, self.variant] {
            seed = mix(seed ^ part);
        }
        seed
    }

    /// The body's length: mostly small, some tens of KiB, a few up to 256 KiB; never
    /// shorter than the stamp line (at most about 150 bytes).
    pub fn body_len(&self) -> usize {
        let seed = self.seed();
        let spread = (seed >> 8) as usize;
        match seed % 100 {
            0..70 => 256 + spread % 3840,
            70..95 => 4096 + spread % 61_440,
            _ => 65_536 + spread % 196_608,
        }
    }

    fn header_line(&self, len: usize) -> String {
        let Stamp { writer, thread, sequence, key, variant } = self;
        format!(
            "{BODY_MAGIC} writer={writer} thread={thread} seq={sequence} key={key} variant={variant} len={len}\n"
        )
    }

    /// The body: the stamp line, then a pattern derived from the stamp.
    pub fn body(&self) -> Bytes {
        let len = self.body_len();
        let line = self.header_line(len);
        let mut body = Vec::with_capacity(len.max(line.len()));
        body.extend_from_slice(line.as_bytes());
        let mut state = self.seed() | 1;
        while body.len() < len {
            state = mix(state);
            let take = (len - body.len()).min(8);
            body.extend_from_slice(&state.to_le_bytes()[..take]);
        }
        Bytes::from(body)
    }

    /// Reads the stamp from a body's first line.
    pub fn parse(body: &[u8]) -> Option<Stamp> {
        let end = body.iter().take(256).position(|&b| b == b'\n')?;
        let line = std::str::from_utf8(&body[..end]).ok()?;
        let mut fields = line.split(' ');
        if fields.next()? != BODY_MAGIC {
            return None;
        }
        let mut value = |name: &str| -> Option<u64> {
            let (field, value) = fields.next()?.split_once('=')?;
            (field == name).then(|| value.parse().ok()).flatten()
        };
        let stamp = Stamp {
            writer: u32::try_from(value("writer")?).ok()?,
            thread: u32::try_from(value("thread")?).ok()?,
            sequence: value("seq")?,
            key: value("key")?,
            variant: value("variant")?,
        };
        let len = value("len")?;
        (len == body.len() as u64).then_some(stamp)
    }

    /// The entry this stamp's writer puts.
    pub fn entry(&self) -> Entry {
        let body = self.body();
        let created = UNIX_EPOCH
            + Duration::from_secs(ORIGIN_SECONDS + self.sequence % 1_000_000_000)
            + Duration::from_nanos(u64::from(self.writer) * 1000 + u64::from(self.thread));
        let mut request_headers = HeaderMap::new();
        request_headers.insert(http::header::ACCEPT_ENCODING, header_value(&format!("v{}", self.variant)));
        let mut response_headers = HeaderMap::new();
        response_headers
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        response_headers.insert(DIGEST_HEADER, header_value(&CacheKey::hash(&body).to_string()));
        response_headers.append(http::header::VARY, HeaderValue::from_static("accept-encoding"));
        response_headers
            .append("x-writer", header_value(&format!("{}/{}/{}", self.writer, self.thread, self.sequence)));
        Entry {
            key: worker_key(self.key),
            variant: VariantId(self.variant),
            request: StoredRequest {
                method: Method::GET,
                url: format!("https://worker.test/item/{}", self.key),
                headers: request_headers,
            },
            response: StoredResponse {
                status: StatusCode::OK,
                version: Version::HTTP_11,
                headers: response_headers,
                body,
                final_url: None,
            },
            request_time: created,
            response_time: created,
            created,
            expires: Some(created + Duration::from_secs(86_400)),
            initial_age: Duration::ZERO,
        }
    }
}

fn header_value(text: &str) -> HeaderValue {
    // Only digits, letters, '/' and '-' are ever passed: always a valid value.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Checks that `entry` is exactly what the writer named in its body wrote: the digest
/// header matches the body, and every field equals the entry rebuilt from the stamp.
pub fn verify(entry: &Entry) -> Result<Stamp, String> {
    let body = &entry.response.body;
    let digest = entry.response.headers.get(DIGEST_HEADER).ok_or("no digest header")?;
    if digest.as_bytes() != CacheKey::hash(body).to_string().as_bytes() {
        return Err(format!("{}: the body ({} bytes) does not match its digest", entry.key, body.len()));
    }
    let stamp =
        Stamp::parse(body).ok_or_else(|| format!("{}: the body's first line is not a stamp", entry.key))?;
    let expected = stamp.entry();
    if (entry.key, entry.variant) != (expected.key, expected.variant) {
        return Err(format!("{}/{:?}: holds the entry of {stamp:?}", entry.key, entry.variant));
    }
    if *entry != expected {
        return Err(format!("{}/{:?}: differs from what {stamp:?} wrote", entry.key, entry.variant));
    }
    Ok(stamp)
}

/// What a worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Puts, refreshes of entries read, gets (verifying every entry read), removes of
    /// variants and keys.
    Mixed,
    /// Puts only, as fast as possible (for crash tests).
    WriteOnly,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mixed" => Ok(Mode::Mixed),
            "write" => Ok(Mode::WriteOnly),
            other => Err(format!("unknown mode {other:?} (mixed, write)")),
        }
    }
}

/// A workload for one process.
#[derive(Debug, Clone)]
pub struct Workload {
    /// This process's writer id (part of every stamp).
    pub writer: u32,
    /// Threads.
    pub threads: u32,
    /// Size of the shared key space.
    pub keys: u64,
    /// Variants per key.
    pub variants: u64,
    /// How long to run.
    pub duration: Duration,
    /// What to do.
    pub mode: Mode,
}

/// Counts from a run or a verification.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Successful puts.
    pub puts: u64,
    /// Successful refreshes.
    pub refreshes: u64,
    /// Successful gets.
    pub gets: u64,
    /// Entries read and verified.
    pub entries_read: u64,
    /// Successful removes (of variants and keys).
    pub removes: u64,
    /// Errors: store calls that failed and entries that did not verify.
    pub errors: u64,
    /// The first few error messages.
    pub messages: Vec<String>,
}

impl Report {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.messages.len() < 20 {
            self.messages.push(message);
        }
    }

    fn merge(&mut self, other: Report) {
        self.puts += other.puts;
        self.refreshes += other.refreshes;
        self.gets += other.gets;
        self.entries_read += other.entries_read;
        self.removes += other.removes;
        self.errors += other.errors;
        for message in other.messages {
            if self.messages.len() < 20 {
                self.messages.push(message);
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "puts={} refreshes={} gets={} entries_read={} removes={} errors={}",
            self.puts, self.refreshes, self.gets, self.entries_read, self.removes, self.errors
        )?;
        for message in &self.messages {
            write!(f, "\n  error: {message}")?;
        }
        Ok(())
    }
}

/// The monotonic clock (test support may read it; the policy core may not).
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> Instant {
    Instant::now()
}

/// Runs `workload` on `store` until its duration has passed.
pub fn run(store: &dyn Store, workload: &Workload) -> Report {
    let deadline = monotonic_now() + workload.duration;
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workload.threads)
            .map(|thread| scope.spawn(move || run_thread(store, workload, thread, deadline)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    let mut report = Report::default();
                    report.error("a worker thread panicked".into());
                    report
                })
            })
            .collect()
    });
    let mut total = Report::default();
    for report in reports {
        total.merge(report);
    }
    total
}

fn run_thread(store: &dyn Store, workload: &Workload, thread: u32, deadline: Instant) -> Report {
    let mut report = Report::default();
    let mut state = mix(u64::from(workload.writer) << 32 | u64::from(thread));
    let mut sequence = 0u64;
    // The last entry read of each (key, variant), for refreshes.
    let mut last_read: HashMap<(u64, u64), Entry> = HashMap::new();
    while monotonic_now() < deadline {
        state = mix(state);
        let key = state % workload.keys.max(1);
        let variant = (state >> 20) % workload.variants.max(1);
        let action = if workload.mode == Mode::WriteOnly { 0 } else { (state >> 40) % 100 };
        match action {
            0..45 => {
                sequence += 1;
                let stamp = Stamp { writer: workload.writer, thread, sequence, key, variant };
                match store.put(&stamp.entry()) {
                    Ok(()) => report.puts += 1,
                    Err(error) => report.error(format!("put {stamp:?}: {error}")),
                }
            }
            // A refresh of an entry read earlier (as a 304 would write it back; here
            // unchanged, so it still verifies), racing other processes' puts of other
            // bodies for the same variant: it must never leave its header fields (the
            // digest) with their body.
            45..55 => {
                let any = (state >> 48) as usize % last_read.len().max(1);
                if let Some(entry) = last_read.get(&(key, variant)).or_else(|| last_read.values().nth(any)) {
                    match store.refresh(entry) {
                        Ok(()) => report.refreshes += 1,
                        Err(error) => report.error(format!("refresh key {key}/{variant}: {error}")),
                    }
                }
            }
            55..90 => match store.get(&worker_key(key)) {
                Ok(entries) => {
                    report.gets += 1;
                    for entry in &entries {
                        report.entries_read += 1;
                        match verify(entry) {
                            Ok(stamp) => {
                                last_read.insert((stamp.key, stamp.variant), entry.clone());
                            }
                            Err(message) => report.error(format!("read: {message}")),
                        }
                    }
                }
                Err(error) => report.error(format!("get key {key}: {error}")),
            },
            90..95 => match store.remove_variant(&worker_key(key), VariantId(variant)) {
                Ok(_) => report.removes += 1,
                Err(error) => report.error(format!("remove_variant key {key}/{variant}: {error}")),
            },
            _ => match store.remove(&worker_key(key)) {
                Ok(_) => report.removes += 1,
                Err(error) => report.error(format!("remove key {key}: {error}")),
            },
        }
    }
    report
}

/// Reads everything in `store` (quiescent): every listed entry must read back, verify,
/// and match its listing; `get` and `scan` must agree.
pub fn verify_store(store: &dyn Store) -> Report {
    let mut report = Report::default();
    let metas = match store.scan() {
        Ok(metas) => metas,
        Err(error) => {
            report.error(format!("scan: {error}"));
            return report;
        }
    };
    let mut keys: Vec<CacheKey> = metas.iter().map(|meta| meta.key).collect();
    keys.sort();
    keys.dedup();
    let mut read: Vec<EntryMeta> = Vec::new();
    for key in keys {
        match store.get(&key) {
            Ok(entries) => {
                report.gets += 1;
                for entry in entries {
                    report.entries_read += 1;
                    if let Err(message) = verify(&entry) {
                        report.error(message);
                    }
                    read.push(entry.meta());
                }
            }
            Err(error) => report.error(format!("get {key}: {error}")),
        }
    }
    let order = |meta: &EntryMeta| (meta.key, meta.variant);
    let mut listed = metas;
    listed.sort_by_key(order);
    read.sort_by_key(order);
    if listed != read {
        report.error(format!("scan lists {} entries but get returns {}", listed.len(), read.len()));
    }
    report
}

/// Where a worker's store is: `lmdb:PATH` (commits flushed to disk, the default),
/// `lmdb-nosync:PATH` (LMDB with [`SyncMode::None`]) or `fs:DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// An LMDB environment directory, and how commits are flushed.
    Lmdb(PathBuf, SyncMode),
    /// A filesystem store directory.
    Fs(PathBuf),
}

impl FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("lmdb", path)) if !path.is_empty() => Ok(StoreSpec::Lmdb(path.into(), SyncMode::Full)),
            Some(("lmdb-nosync", path)) if !path.is_empty() => {
                Ok(StoreSpec::Lmdb(path.into(), SyncMode::None))
            }
            Some(("fs", path)) if !path.is_empty() => Ok(StoreSpec::Fs(path.into())),
            _ => Err(format!("not a store: {s:?} (expected lmdb:PATH or fs:DIR)")),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Lmdb(path, SyncMode::None) => write!(f, "lmdb-nosync:{}", path.display()),
            StoreSpec::Lmdb(path, _) => write!(f, "lmdb:{}", path.display()),
            StoreSpec::Fs(path) => write!(f, "fs:{}", path.display()),
        }
    }
}

/// An open store of either kind.
#[derive(Debug, Clone)]
pub enum OpenedStore {
    /// LMDB.
    Lmdb(LmdbStore),
    /// Filesystem.
    Fs(FsStore),
}

impl StoreSpec {
    /// Opens the store.
    pub fn open(&self) -> Result<OpenedStore, StoreError> {
        match self {
            StoreSpec::Lmdb(path, sync) => {
                Ok(OpenedStore::Lmdb(LmdbStore::builder(path).sync(*sync).open()?))
            }
            StoreSpec::Fs(path) => Ok(OpenedStore::Fs(FsStore::open(path)?)),
        }
    }
}

impl OpenedStore {
    /// The store.
    pub fn store(&self) -> &dyn Store {
        match self {
            OpenedStore::Lmdb(store) => store,
            OpenedStore::Fs(store) => store,
        }
    }

    /// How many records the store holds, counted without decoding any (so without
    /// deleting undecodable ones): entry records for LMDB, key files for fs.
    pub fn raw_count(&self) -> Result<u64, StoreError> {
        match self {
            OpenedStore::Lmdb(store) => Ok(store.stats()?.entries),
            OpenedStore::Fs(store) => Ok(store.paths()?.len() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_their_entries() {
        for sequence in 0..500 {
            let stamp = Stamp { writer: 3, thread: 1, sequence, key: sequence % 7, variant: sequence % 2 };
            let entry = stamp.entry();
            assert_eq!(Stamp::parse(&entry.response.body), Some(stamp));
            assert_eq!(verify(&entry), Ok(stamp));
            assert!(entry.response.body.len() <= 262_144);
        }
    }

    #[test]
    fn verify_catches_damage() {
        let stamp = Stamp { writer: 1, thread: 2, sequence: 3, key: 4, variant: 1 };
        let good = stamp.entry();
        let mut body = good.response.body.to_vec();
        let last = body.len() - 1;
        body[last] ^= 1;
        let mut flipped = good.clone();
        flipped.response.body = Bytes::from(body);
        assert!(verify(&flipped).is_err());
        let mut moved = good.clone();
        moved.variant = VariantId(0);
        assert!(verify(&moved).is_err());
        let mut retimed = good;
        retimed.expires = None;
        assert!(verify(&retimed).is_err());
    }

    #[test]
    fn the_longest_stamp_line_fits_the_shortest_body() {
        let stamp = Stamp {
            writer: u32::MAX,
            thread: u32::MAX,
            sequence: u64::MAX,
            key: u64::MAX,
            variant: u64::MAX,
        };
        assert!(stamp.header_line(262_144).len() <= 256);
        assert_eq!(Stamp::parse(&stamp.body()), Some(stamp));
    }

    #[test]
    fn specs_parse() {
        assert_eq!("lmdb:/tmp/x".parse(), Ok(StoreSpec::Lmdb("/tmp/x".into(), SyncMode::Full)));
        let nosync = StoreSpec::Lmdb("/tmp/y".into(), SyncMode::None);
        assert_eq!("lmdb-nosync:/tmp/y".parse(), Ok(nosync.clone()));
        assert_eq!(nosync.to_string(), "lmdb-nosync:/tmp/y");
        assert_eq!("fs:rel/dir".parse(), Ok(StoreSpec::Fs("rel/dir".into())));
        assert!("redis:x".parse::<StoreSpec>().is_err());
        assert!("lmdb:".parse::<StoreSpec>().is_err());
        assert_eq!(StoreSpec::Lmdb("/a".into(), SyncMode::Full).to_string(), "lmdb:/a");
    }
}
