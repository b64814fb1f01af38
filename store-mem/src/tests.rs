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

// An entry weighs its encoding's bytes plus what a decoded entry adds in memory: the
// same for a small body as for a large one, more than nothing, and not more than a
// small entry's resident size (about 1.3 KiB, measured through reqwest).
#[test]
fn weight_is_the_encoding_plus_a_decoded_entrys_own_overhead() {
    let weigh = |size: usize| {
        let store = MemoryStore::new(64 << 20);
        let e = entry(1, 0, size);
        store.put(&e).unwrap();
        (store.used_bytes(), e.encode().len() as u64)
    };
    let (small, small_encoded) = weigh(100);
    let (large, large_encoded) = weigh(100_000);
    assert_eq!(large - small, large_encoded - small_encoded, "a body weighs its length");
    let overhead = small - small_encoded;
    let entry_itself = std::mem::size_of::<Entry>() as u64;
    assert!((entry_itself..2048).contains(&overhead), "overhead {overhead} beside the encoding");
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

// ---------------------------------------------------------------------------------
// Near copies: a thread's own copy of an item it reads again (see `near.rs`)
// ---------------------------------------------------------------------------------

/// Where a lent entry's bytes live: its first response header value and its body.
type Addresses = (*const u8, *const u8);

/// What `read_with` lends for `key`: owned copies of the entries, and where the first
/// one's bytes live.
fn lent(store: &MemoryStore, key: &CacheKey) -> (Vec<Entry>, Option<Addresses>) {
    let mut out = (Vec::new(), None);
    store.read_with(key, &mut |read| {
        let entries = read.expect("the memory store cannot fail a read");
        out.1 = entries.first().map(|entry| {
            let value = entry.response.headers.iter().next().expect("a header").1;
            (value.as_bytes().as_ptr(), entry.response.body.as_ptr())
        });
        out.0 = entries.to_vec();
    });
    out
}

/// Where `store`'s own item for `key` keeps those bytes (`get` clones share them).
fn stored_addresses(store: &MemoryStore, key: &CacheKey) -> Addresses {
    let entries = store.get(key).unwrap();
    let value = entries[0].response.headers.iter().next().expect("a header").1;
    (value.as_bytes().as_ptr(), entries[0].response.body.as_ptr())
}

#[test]
fn a_thread_reading_an_item_again_gets_a_copy_of_its_own() {
    let store = MemoryStore::new(64 << 20);
    let mut small = entry(1, 0, 1000);
    small.response.headers.get_mut("set-cookie").expect("set-cookie").set_sensitive(true);
    let large = entry(2, 0, near::MAX_COPIED_BODY + 1);
    for e in [&small, &large] {
        store.put(e).unwrap();
        let shared = stored_addresses(&store, &e.key);
        // The first read lends the store's item itself.
        let (first, at) = lent(&store, &e.key);
        assert_eq!(first, vec![e.clone()]);
        assert_eq!(at, Some(shared));
        // The second makes the thread's copy: equal entries, header bytes elsewhere.
        let (second, copy) = lent(&store, &e.key);
        assert_eq!(second, vec![e.clone()]);
        let copy = copy.expect("an entry");
        assert_ne!(copy.0, shared.0, "header values of the thread's own");
        // A small body is copied too; a large one is never copied.
        assert_eq!(copy.1 == shared.1, e.response.body.len() > near::MAX_COPIED_BODY);
        // Later reads lend that same copy.
        let (third, again) = lent(&store, &e.key);
        assert_eq!(third, vec![e.clone()]);
        assert_eq!(again, Some(copy));
    }
    let (copied, _) = lent(&store, &small.key);
    let sensitive: Vec<bool> =
        copied[0].response.headers.iter().map(|(_, value)| value.is_sensitive()).collect();
    let expected: Vec<bool> = small.response.headers.iter().map(|(_, value)| value.is_sensitive()).collect();
    assert_eq!(sensitive, expected, "a copy keeps which values are sensitive");
}

#[test]
fn items_too_heavy_for_a_copy_are_always_lent_from_the_store() {
    let store = MemoryStore::new(64 << 20);
    let heavy = entry(1, 0, near::MAX_WEIGHT as usize);
    store.put(&heavy).unwrap();
    let shared = stored_addresses(&store, &heavy.key);
    for _ in 0..3 {
        assert_eq!(lent(&store, &heavy.key), (vec![heavy.clone()], Some(shared)));
    }
}

/// Makes this thread hold a copy of `key`'s item (two reads), checking it is lent.
fn hold_a_copy(store: &MemoryStore, key: &CacheKey) {
    lent(store, key);
    lent(store, key);
    let (_, copy) = lent(store, key);
    assert_ne!(copy.map(|at| at.0), Some(stored_addresses(store, key).0), "a copy of the thread's own");
}

/// One write to a store, as a test runs it.
type Write = dyn Fn(&MemoryStore);

#[test]
fn every_write_is_seen_by_a_thread_holding_a_copy() {
    let first = entry(1, 0, 1000);
    let second_variant = entry(1, 1, 500);
    let neighbour = entry(65, 0, 10);
    let writes: Vec<(&str, Box<Write>)> = vec![
        ("a put replacing the variant", Box::new(|s| s.put(&entry(1, 0, 700)).unwrap())),
        ("an owned put", Box::new(|s| s.put_owned(entry(1, 0, 300)).unwrap())),
        ("a put adding a variant", Box::new(|s| s.put(&entry(1, 2, 10)).unwrap())),
        ("a refresh", Box::new(|s| s.refresh(&conformance::revalidated(&entry(1, 0, 1000), 1)).unwrap())),
        (
            "an owned refresh",
            Box::new(|s| s.refresh_owned(conformance::revalidated(&entry(1, 0, 1000), 2)).unwrap()),
        ),
        ("a removal", Box::new(|s| assert_eq!(s.remove(&conformance::key(1)).unwrap(), 2))),
        (
            "a variant's removal",
            Box::new(|s| assert!(s.remove_variant(&conformance::key(1), VariantId(0)).unwrap())),
        ),
        ("a clear", Box::new(|s| s.clear().unwrap())),
    ];
    for (what, write) in writes {
        let store = MemoryStore::new(64 << 20);
        for e in [&first, &second_variant, &neighbour] {
            store.put(e).unwrap();
        }
        hold_a_copy(&store, &first.key);
        hold_a_copy(&store, &neighbour.key);
        write(&store);
        for key in [first.key, neighbour.key] {
            let (now, _) = lent(&store, &key);
            assert_eq!(by_variant(now), by_variant(store.get(&key).unwrap()), "after {what}");
        }
    }
}

/// `entries` in variant order (a store keeps variants in no particular order).
fn by_variant(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(|entry| entry.variant.0);
    entries
}

#[test]
fn an_evicted_item_is_not_lent_from_a_copy() {
    // A store of one small shard: new entries evict the old ones.
    let store = MemoryStore::new(100_000);
    let old = entry(0, 0, 1000);
    store.put(&old).unwrap();
    hold_a_copy(&store, &old.key);
    // New entries in other write stripes: only the eviction itself can tell the copy.
    let stripe = |key: &CacheKey| near::stripe(key, WRITE_STRIPES);
    let mut others = (1..1000).map(|n| entry(n, 0, 9_000)).filter(|e| stripe(&e.key) != stripe(&old.key));
    // `scan`, unlike `get`, does not count as a read that keeps the entry.
    while store.scan().unwrap().iter().any(|meta| meta.key == old.key) {
        store.put(&others.next().expect("the old entry was never evicted")).unwrap();
    }
    assert_eq!(lent(&store, &old.key), (Vec::new(), None));
}

#[test]
fn a_write_on_another_thread_is_seen_after_joining_it() {
    let store = MemoryStore::new(64 << 20);
    store.put(&entry(1, 0, 1000)).unwrap();
    hold_a_copy(&store, &conformance::key(1));
    let newer = entry(1, 0, 2000);
    std::thread::scope(|scope| {
        scope.spawn(|| store.put(&newer).unwrap());
    });
    assert_eq!(lent(&store, &conformance::key(1)).0, vec![newer]);
}

#[test]
fn two_stores_copies_never_mix() {
    let (a, b) = (MemoryStore::new(64 << 20), MemoryStore::new(64 << 20));
    let (in_a, in_b) = (entry(1, 0, 100), entry(1, 0, 200));
    a.put(&in_a).unwrap();
    b.put(&in_b).unwrap();
    for _ in 0..3 {
        assert_eq!(lent(&a, &in_a.key).0, vec![in_a.clone()]);
        assert_eq!(lent(&b, &in_b.key).0, vec![in_b.clone()]);
    }
    // A store that has never held the key lends nothing, whatever the thread copied.
    assert_eq!(lent(&MemoryStore::new(64 << 20), &in_a.key), (Vec::new(), None));
}

#[test]
fn a_read_inside_a_read_is_answered() {
    let store = MemoryStore::new(64 << 20);
    let (outer, inner) = (entry(1, 0, 100), entry(2, 0, 100));
    store.put(&outer).unwrap();
    store.put(&inner).unwrap();
    for _ in 0..3 {
        let mut seen = Vec::new();
        store.read_with(&outer.key, &mut |read| {
            seen.extend(read.unwrap().iter().cloned());
            // The thread's copies are in use: these reads go to the shared store.
            seen.extend(lent(&store, &inner.key).0);
            seen.extend(lent(&store, &outer.key).0);
        });
        assert_eq!(seen, vec![outer.clone(), inner.clone(), outer.clone()]);
    }
}

#[test]
fn more_items_than_slots_are_all_read_right() {
    let store = MemoryStore::new(64 << 20);
    let entries: Vec<Entry> = (0..near::SLOTS as u64 * 3).map(|n| entry(n, 0, 100 + n as usize)).collect();
    for e in &entries {
        store.put(e).unwrap();
    }
    for round in 0..4 {
        for e in entries.iter().chain(entries.iter().take(3)) {
            assert_eq!(lent(&store, &e.key).0, vec![e.clone()], "round {round}");
        }
    }
}

#[test]
fn hot_items_read_through_copies_survive_a_scan_of_new_ones() {
    // As `frequently_read_entries_survive_a_scan_of_new_ones`, reading as the drivers do.
    // The new ones are all in other write stripes, so the hot entry's copy stays
    // current and its reads no longer reach the store's own lookup.
    let store = MemoryStore::new(1 << 20);
    let hot = entry(10_000, 0, 20_000);
    store.put(&hot).unwrap();
    let stripe = |key: &CacheKey| near::stripe(key, WRITE_STRIPES);
    let others = (0..).map(|n| entry(n, 0, 20_000)).filter(|e| stripe(&e.key) != stripe(&hot.key));
    for (n, other) in others.take(500).enumerate() {
        for _ in 0..3 {
            assert_eq!(lent(&store, &hot.key).0.len(), 1, "hot entry evicted after {n} writes");
        }
        store.put(&other).unwrap();
    }
}

mod near_model {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Put { key: u64, variant: u64, size: usize },
        Refresh { key: u64, variant: u64, round: u64 },
        Remove { key: u64 },
        RemoveVariant { key: u64, variant: u64 },
        Clear,
        Read { key: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0u64..6;
        prop_oneof![
            3 => (key.clone(), 0u64..3, 0usize..20_000).prop_map(|(key, variant, size)| Op::Put { key, variant, size }),
            1 => (key.clone(), 0u64..3, 0u64..100).prop_map(|(key, variant, round)| Op::Refresh { key, variant, round }),
            1 => key.clone().prop_map(|key| Op::Remove { key }),
            1 => (key.clone(), 0u64..3).prop_map(|(key, variant)| Op::RemoveVariant { key, variant }),
            1 => Just(Op::Clear),
            6 => key.prop_map(|key| Op::Read { key }),
        ]
    }

    proptest! {
        /// Whatever the writes (and the evictions of a store of 60 KB), a read through
        /// `read_with`, from this thread's copy or from the store, lends exactly what
        /// `get` returns.
        #[test]
        fn reads_always_lend_what_the_store_holds(ops in prop::collection::vec(op(), 1..60)) {
            let store = MemoryStore::new(60_000);
            for op in ops {
                match op {
                    Op::Put { key, variant, size } => {
                        let _ = store.put(&entry(key, variant, size));
                    }
                    Op::Refresh { key, variant, round } => {
                        let _ = store.refresh(&conformance::revalidated(&entry(key, variant, 10), round));
                    }
                    Op::Remove { key } => {
                        store.remove(&conformance::key(key)).unwrap();
                    }
                    Op::RemoveVariant { key, variant } => {
                        store.remove_variant(&conformance::key(key), VariantId(variant)).unwrap();
                    }
                    Op::Clear => store.clear().unwrap(),
                    Op::Read { key } => {
                        let key = conformance::key(key);
                        let (read, _) = lent(&store, &key);
                        prop_assert_eq!(by_variant(read), by_variant(store.get(&key).unwrap()));
                    }
                }
            }
            for key in 0..6 {
                let key = conformance::key(key);
                for _ in 0..2 {
                    let (read, _) = lent(&store, &key);
                    prop_assert_eq!(by_variant(read), by_variant(store.get(&key).unwrap()));
                }
            }
        }
    }
}

#[test]
fn no_thread_reads_an_older_version_than_one_it_has_read() {
    // One writer stores versions 1, 2, 3... of one entry (the version in `created`);
    // readers holding copies must see them in order, and the last one once the writer
    // has finished.
    const VERSIONS: u64 = 3000;
    let store = MemoryStore::new(64 << 20);
    let version = |v: u64| Entry { created: conformance::at(v), ..entry(1, 0, 100) };
    let key = conformance::key(1);
    store.put(&version(0)).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let (mut last, mut reads) = (0, 0u64);
                    while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                        let read = lent(&store, &key).0;
                        let seen = read[0].created.duration_since(conformance::at(0)).unwrap().as_secs();
                        assert!(seen >= last, "read version {seen} after version {last}");
                        (last, reads) = (seen, reads + 1);
                    }
                    // The writer is done: what it stored last is what a read lends.
                    assert_eq!(lent(&store, &key).0, vec![version(VERSIONS)]);
                })
            })
            .collect();
        for v in 1..=VERSIONS {
            store.put(&version(v)).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        for reader in readers {
            reader.join().expect("a reader failed");
        }
    });
}
