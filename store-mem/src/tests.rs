use std::sync::Arc;

use httpcache_core::conformance::{self, Fixture};
use httpcache_core::{AsyncStore, Inline};

use super::*;

mod sync_conformance {
    use super::*;

    httpcache_core::store_conformance! {
        store: || Fixture::new(MemoryStore::new(64 << 20)),
        bounded: |max_bytes| Fixture::new(MemoryStore::new(max_bytes)),
    }
}

mod async_conformance {
    use super::*;

    httpcache_core::async_store_conformance! {
        store: || Fixture::new(Inline(MemoryStore::new(64 << 20))),
        bounded: |max_bytes| Fixture::new(Inline(MemoryStore::new(max_bytes))),
    }
}

fn entry(n: u64, variant: u64, size: usize) -> Entry {
    conformance::entry(conformance::key(n), variant, conformance::body(n, size))
}

#[test]
fn stays_within_the_byte_bound() {
    let store = MemoryStore::new(1 << 20);
    for n in 0..200 {
        store.put(&entry(n, 0, 20_000)).unwrap();
        assert!(store.used_bytes() <= store.max_bytes(), "{} > {}", store.used_bytes(), store.max_bytes());
    }
    let kept = store.scan().unwrap().len();
    assert!((30..=52).contains(&kept), "kept {kept} 20 KB entries in 1 MiB");
}

#[test]
fn weight_tracks_encoded_size() {
    let store = MemoryStore::new(64 << 20);
    let e = entry(1, 0, 100_000);
    store.put(&e).unwrap();
    let encoded = e.encode().len() as u64;
    let used = store.used_bytes();
    assert!(used.abs_diff(encoded) < 256, "weight {used} vs encoded {encoded}");
}

#[test]
fn max_entries_bounds_the_number_of_variants() {
    let store = MemoryStore::new(1 << 30).with_max_entries(10);
    assert_eq!(store.max_entries(), Some(10));
    for n in 0..100 {
        store.put(&entry(n, 0, 10)).unwrap();
    }
    let kept = store.scan().unwrap().len();
    assert!((1..=10).contains(&kept), "kept {kept}");
    // Variants of one key count one each.
    store.clear().unwrap();
    for variant in 0..10 {
        store.put(&entry(1, variant, 10)).unwrap();
    }
    assert_eq!(store.get(&conformance::key(1)).unwrap().len(), 10);
    // An eleventh variant makes the key itself too heavy for the bound.
    assert!(matches!(store.put(&entry(1, 10, 10)), Err(StoreError::Full(_))));
    assert_eq!(store.get(&conformance::key(1)).unwrap().len(), 10, "a refused put keeps what was there");
}

#[test]
fn oversized_entry_is_refused_not_stored() {
    let store = MemoryStore::new(10_000);
    let small = entry(1, 0, 100);
    store.put(&small).unwrap();
    let big = entry(1, 1, 20_000);
    match store.put(&big) {
        Err(StoreError::Full(message)) => assert!(message.contains("accepts at most"), "{message}"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(store.get(&small.key).unwrap(), vec![small]);
    assert!(store.max_entry_bytes() <= 10_000);
}

#[test]
fn large_caches_accept_large_entries() {
    // The 16 MiB shard floor: a 64 MiB cache takes a 15 MiB entry.
    let store = MemoryStore::new(64 << 20);
    assert!(store.max_entry_bytes() >= 15 << 20, "{}", store.max_entry_bytes());
    store.put(&entry(1, 0, 15 << 20)).unwrap();
    assert_eq!(store.get(&conformance::key(1)).unwrap().len(), 1);
}

#[test]
fn a_hit_shares_the_body() {
    let store = MemoryStore::new(1 << 20);
    let e = entry(1, 0, 1000);
    store.put(&e).unwrap();
    let first = store.get(&e.key).unwrap();
    let second = store.get(&e.key).unwrap();
    assert_eq!(first[0].response.body.as_ptr(), second[0].response.body.as_ptr(), "no copy of the body");
    assert_eq!(first[0].response.body.as_ptr(), e.response.body.as_ptr());
}

#[test]
fn zero_capacity_refuses_everything() {
    let store = MemoryStore::new(0);
    assert!(matches!(store.put(&entry(1, 0, 0)), Err(StoreError::Full(_))));
    assert!(store.get(&conformance::key(1)).unwrap().is_empty());
}

#[test]
fn frequently_read_entries_survive_a_scan_of_new_ones() {
    let store = MemoryStore::new(1 << 20);
    let hot = entry(10_000, 0, 20_000);
    store.put(&hot).unwrap();
    for n in 0..500 {
        assert_eq!(store.get(&hot.key).unwrap().len(), 1, "hot entry evicted after {n} writes");
        store.put(&entry(n, 0, 20_000)).unwrap();
    }
}

#[test]
fn inline_is_an_async_store_and_shared_across_threads() {
    let store = Arc::new(MemoryStore::new(1 << 20));
    let e = entry(1, 0, 10);
    std::thread::scope(|scope| {
        let store = Arc::clone(&store);
        let e = e.clone();
        scope.spawn(move || store.put(&e).unwrap());
    });
    let inline = Inline(Arc::clone(&store));
    let got = futures_executor::block_on(inline.get(&e.key)).unwrap();
    assert_eq!(got, vec![e]);
    assert!(format!("{store:?}").contains("max_bytes"));
}

#[test]
fn a_refresh_shares_the_body_it_is_given() {
    // RFC 9111 §4.3.4: after a 304 the driver refreshes the entry it read, whose body
    // is a view of the stored one. The default refresh (a put) stores a clone of the
    // entry: the body is shared, never copied, so a refresh costs what a put of the
    // header fields costs, whatever the body's size.
    let store = MemoryStore::new(64 << 20);
    store.put(&entry(1, 0, 1 << 20)).unwrap();
    let read = store.get(&conformance::key(1)).unwrap().remove(0);
    let refreshed = conformance::revalidated(&read, 1);
    store.refresh(&refreshed).unwrap();
    let got = store.get(&conformance::key(1)).unwrap();
    assert_eq!(got, vec![refreshed.clone()]);
    assert_eq!(got[0].response.body.as_ptr(), read.response.body.as_ptr(), "one body in memory");
}
