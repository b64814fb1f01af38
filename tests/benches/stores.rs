//! Store benchmarks: `get`, `put` and `refresh` of 1 KiB, 64 KiB and 1 MiB entries in
//! the memory, filesystem and LMDB stores (LMDB writes in each [`SyncMode`]); `scan`
//! of 100 000 metadata records; `decode` of a 1 KiB entry's binary encoding; and, as the
//! floor every store is measured against, a `HashMap<CacheKey, Entry>` lookup plus a
//! `Bytes` clone of the body.
//!
//! ```text
//! cargo bench -p httpcache-tests --bench stores -- --warm-up-time 1 --measurement-time 2
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use httpcache_core::{CacheKey, Entry, Store, StoredRequest, StoredResponse, VariantId};
use httpcache_fs::FsStore;
use httpcache_lmdb::{LmdbStore, SyncMode};
use httpcache_mem::MemoryStore;

const SIZES: [(&str, usize); 3] = [("1KiB", 1 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)];
const SCAN_RECORDS: u64 = 100_000;

/// An entry of `n` with a `size`-byte body and a handful of typical headers.
fn bench_entry(n: u64, size: usize) -> Entry {
    let key = CacheKey::hash(format!("bench {n}"));
    let body: Vec<u8> = (0..size).map(|i| (i as u64 ^ n).wrapping_mul(31) as u8).collect();
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("max-age=600"));
    headers.insert(http::header::ETAG, HeaderValue::from_static("\"abcdef0123456789\""));
    headers.insert(http::header::DATE, HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT"));
    let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n);
    Entry {
        key,
        variant: VariantId(0),
        request: StoredRequest {
            method: Method::GET,
            url: format!("https://api.example.com/items/{n}?page=1"),
            headers: HeaderMap::new(),
        },
        response: StoredResponse {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers,
            body: Bytes::from(body),
            final_url: None,
        },
        request_time: time,
        response_time: time,
        created: time,
        expires: Some(time + Duration::from_secs(600)),
        initial_age: Duration::ZERO,
    }
}

/// The three stores, each in its own temporary directory (kept alive alongside).
struct Stores {
    _dir: tempfile::TempDir,
    stores: Vec<(&'static str, Box<dyn Store>)>,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mem = MemoryStore::new(1 << 30);
    let fs = FsStore::builder(dir.path().join("fs")).max_bytes(4 << 30).open().expect("open fs store");
    let lmdb = LmdbStore::builder(dir.path().join("lmdb")).map_size(1 << 30).open().expect("open lmdb store");
    Stores { _dir: dir, stores: vec![("mem", Box::new(mem)), ("fs", Box::new(fs)), ("lmdb", Box::new(lmdb))] }
}

/// [`stores`] plus LMDB in its lighter sync modes: LMDB's writes are bound by their
/// flushes, so the write benchmarks measure those too.
fn write_stores() -> Stores {
    let mut stores = stores();
    for (name, mode) in [("lmdb-relaxed", SyncMode::Relaxed), ("lmdb-nosync", SyncMode::None)] {
        let lmdb =
            LmdbStore::builder(stores._dir.path().join(name)).sync(mode).open().expect("open lmdb store");
        stores.stores.push((name, Box::new(lmdb)));
    }
    stores
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    let stores = stores();
    for (label, size) in SIZES {
        let entry = bench_entry(1, size);
        group.throughput(Throughput::Bytes(size as u64));

        let floor: HashMap<CacheKey, Entry> = HashMap::from([(entry.key, entry.clone())]);
        group.bench_function(BenchmarkId::new("hashmap-floor", label), |b| {
            b.iter(|| black_box(floor.get(black_box(&entry.key)).map(|e| e.response.body.clone())))
        });

        for (name, store) in &stores.stores {
            store.put(&entry).expect("put before get");
            group.bench_function(BenchmarkId::new(*name, label), |b| {
                b.iter(|| {
                    let found = store.get(black_box(&entry.key)).expect("get");
                    assert_eq!(found.len(), 1);
                    black_box(found)
                })
            });
        }
    }
    group.finish();
}

/// Decoding an inline 1 KiB entry from shared bytes, as the LMDB store does on every
/// hit: with the handful of headers of [`bench_entry`], and with a dozen, as real
/// responses often carry.
fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let few = bench_entry(1, 1 << 10);
    let mut many = few.clone();
    for (name, value) in [
        ("server", "nginx"),
        ("vary", "accept-encoding"),
        ("last-modified", "Tue, 14 Nov 2023 22:00:00 GMT"),
        ("x-request-id", "3f2a9c1e-5b7d-4e21-9a0c-1d2e3f405162"),
        ("x-cache", "MISS"),
        ("access-control-allow-origin", "*"),
        ("set-cookie", "session=abc123; Path=/; HttpOnly"),
        ("set-cookie", "theme=dark; Path=/"),
    ] {
        many.response.headers.append(name, HeaderValue::from_static(value));
    }
    for (label, entry) in [("1KiB-4-headers", few), ("1KiB-12-headers", many)] {
        let bytes = Bytes::from(entry.encode());
        group.bench_function(label, |b| {
            b.iter(|| black_box(Entry::decode_shared(black_box(bytes.clone())).expect("decode")))
        });
    }
    group.finish();
}

fn put(c: &mut Criterion) {
    let mut group = c.benchmark_group("put");
    let stores = write_stores();
    for (label, size) in SIZES {
        let entry = bench_entry(2, size);
        group.throughput(Throughput::Bytes(size as u64));
        for (name, store) in &stores.stores {
            group.bench_function(BenchmarkId::new(*name, label), |b| {
                b.iter(|| store.put(black_box(&entry)).expect("put"))
            });
        }
    }
    group.finish();
}

/// `entry` as a 304 freshens it: a new `Date`, later times.
fn revalidated(entry: &Entry, round: u64) -> Entry {
    let mut refreshed = entry.clone();
    let date = format!("Tue, 14 Nov 2023 22:{:02}:20 GMT", round % 60);
    refreshed.response.headers.insert(http::header::DATE, HeaderValue::try_from(date).expect("date"));
    refreshed.request_time = entry.request_time + Duration::from_secs(round);
    refreshed.response_time = entry.response_time + Duration::from_secs(round);
    refreshed
}

/// The write a revalidation makes, beside `put`: [`Store::refresh`] of a stored entry,
/// alternating two freshened copies so each call changes what is stored, timed until
/// it has landed ([`Store::flush`]; the LMDB and fs stores write refreshes behind).
fn refresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("refresh");
    let stores = write_stores();
    for (label, size) in SIZES {
        let entry = bench_entry(3, size);
        group.throughput(Throughput::Bytes(size as u64));
        for (name, store) in &stores.stores {
            store.put(&entry).expect("put before refresh");
            let read = store.get(&entry.key).expect("get").pop().expect("the entry just put");
            let copies = [revalidated(&read, 1), revalidated(&read, 2)];
            let mut round = 0;
            group.bench_function(BenchmarkId::new(*name, label), |b| {
                b.iter(|| {
                    round ^= 1;
                    store.refresh(black_box(&copies[round])).expect("refresh");
                    // Until it has landed: the LMDB and fs stores write refreshes behind.
                    store.flush().expect("flush")
                })
            });
        }
    }
    group.finish();
}

fn scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SCAN_RECORDS));
    let stores = stores();
    let entries: Vec<Entry> = (0..SCAN_RECORDS).map(|n| bench_entry(n, 256)).collect();
    for (name, store) in &stores.stores {
        if *name == "lmdb" {
            // One transaction per 10 000 entries: one fsync each instead of 100 000.
            let dir = stores._dir.path().join("lmdb");
            let lmdb = LmdbStore::open(dir).expect("reopen lmdb store");
            for chunk in entries.chunks(10_000) {
                lmdb.put_batch(chunk).expect("load lmdb");
            }
        } else {
            for entry in &entries {
                store.put(entry).expect("load");
            }
        }
        assert_eq!(store.scan().expect("scan").len() as u64, SCAN_RECORDS, "{name} holds every record");
        group.bench_function(BenchmarkId::new(*name, "100k"), |b| {
            b.iter(|| {
                let metas = store.scan().expect("scan");
                black_box(metas.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, get, decode, put, refresh, scan);
criterion_main!(benches);
