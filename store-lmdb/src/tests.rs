//! Unit tests and the store conformance suite (sync and async).

use std::time::Duration;

use bytes::Bytes;
use httpcache_core::conformance::{at, body, entry, key, revalidated};
use httpcache_core::{AsyncStore, Entry, Store, StoreError, VariantId};

use crate::pages::{EMPTY_STORE_PAGES, WRITE_OVERHEAD_PAGES};
use crate::records::{BODY_APART_ABOVE, HEAD_TAG, MetaHeader, PreparedEntry};
use crate::{AsyncLmdbStore, LmdbError, LmdbStore, SyncMode};

fn temp_store() -> (tempfile::TempDir, LmdbStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LmdbStore::open(dir.path().join("cache")).expect("open");
    (dir, store)
}

mod sync_conformance {
    use httpcache_core::conformance::Fixture;

    use crate::LmdbStore;

    fn open(max_bytes: Option<u64>) -> Fixture<LmdbStore> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut builder = LmdbStore::builder(dir.path()).map_size(64 << 20);
        if let Some(max_bytes) = max_bytes {
            builder = builder.max_bytes(max_bytes);
        }
        Fixture::with_guard(builder.open().expect("open"), dir)
    }

    httpcache_core::store_conformance! {
        store: || open(None),
        bounded: |max_bytes| open(Some(max_bytes)),
        corrupt: |store: &LmdbStore, key, variant, bytes| store.write_raw(key, variant, bytes),
    }
}

mod async_conformance {
    use httpcache_core::conformance::Fixture;

    use crate::{AsyncLmdbStore, LmdbStore};

    fn open(max_bytes: Option<u64>) -> Fixture<AsyncLmdbStore> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut builder = LmdbStore::builder(dir.path()).map_size(64 << 20);
        if let Some(max_bytes) = max_bytes {
            builder = builder.max_bytes(max_bytes);
        }
        Fixture::with_guard(builder.open().expect("open").into_async(), dir)
    }

    httpcache_core::async_store_conformance! {
        store: || open(None),
        bounded: |max_bytes| open(Some(max_bytes)),
        corrupt: |store: &AsyncLmdbStore, key, variant, bytes| store.blocking().write_raw(key, variant, bytes),
    }
}

#[test]
fn a_full_map_grows() {
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::builder(dir.path()).map_size(256 << 10).max_map_size(16 << 20).open().unwrap();
    let entries: Vec<_> = (0..40).map(|n| entry(key(n), 0, body(n, 100 << 10))).collect();
    for e in &entries {
        store.put(e).expect("a put that fits after growing succeeds");
    }
    for e in &entries {
        assert_eq!(store.get(&e.key).unwrap(), std::slice::from_ref(e), "nothing was evicted");
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.entries, 40);
    assert!(stats.map_size > 256 << 10, "the map grew: {stats:?}");
    assert!(stats.map_size <= 16 << 20, "within the maximum: {stats:?}");
}

#[test]
fn a_full_map_at_its_maximum_evicts_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::builder(dir.path()).map_size(1 << 20).max_map_size(1 << 20).open().unwrap();
    let entries: Vec<_> = (0..60)
        .map(|n| {
            let mut e = entry(key(n), 0, body(n, 64 << 10));
            e.created = at(n);
            e.expires = None;
            e
        })
        .collect();
    for e in &entries {
        store.put(e).expect("a put never fails for fullness when eviction can make room");
    }
    let newest = &entries[59];
    assert_eq!(store.get(&newest.key).unwrap(), std::slice::from_ref(newest));
    let stats = store.stats().unwrap();
    assert!(stats.entries < 60, "some entries were evicted: {stats:?}");
    assert!(store.get(&entries[0].key).unwrap().is_empty(), "the oldest went first");
    assert_eq!(store.scan().unwrap().len() as u64, stats.entries);
    // An entry bigger than the whole map cannot fit, however much is evicted.
    let huge = entry(key(1000), 0, body(1000, 4 << 20));
    assert!(matches!(store.put(&huge), Err(StoreError::Full(_))));
    assert_eq!(store.stats().unwrap().entries, stats.entries, "and evicts nothing for it");
    assert_no_orphans(&store, "evicted for a full map");
}

#[test]
fn max_bytes_evicts_expired_first_then_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let size = entry(key(0), 0, body(0, 1000)).encode().len() as u64;
    let store = LmdbStore::builder(dir.path()).max_bytes(size * 3).open().unwrap();
    let make = |n: u64, created: u64, expires: Option<Duration>| {
        let mut e = entry(key(n), 0, body(n, 1000));
        e.created = at(created);
        e.expires = expires.map(|d| std::time::UNIX_EPOCH + d);
        e
    };
    // Already expired in wall-clock terms (1970), but created last.
    let expired = make(1, 30, Some(Duration::from_secs(1)));
    let old = make(2, 10, None);
    let middle = make(3, 20, None);
    for e in [&expired, &old, &middle] {
        store.put(e).unwrap();
    }
    let (fourth, fifth) = (make(4, 40, None), make(5, 50, None));
    store.put(&fourth).unwrap();
    assert!(store.get(&expired.key).unwrap().is_empty(), "the expired entry went first");
    assert_eq!(store.get(&old.key).unwrap().len(), 1);
    store.put(&fifth).unwrap();
    assert!(store.get(&old.key).unwrap().is_empty(), "then the oldest by creation");
    assert_eq!(store.get(&middle.key).unwrap().len(), 1);
    let stats = store.stats().unwrap();
    let kept: u64 = [&middle, &fourth, &fifth].iter().map(|e| e.encode().len() as u64).sum();
    assert_eq!((stats.entries, stats.bytes), (3, kept));

    let too_big = entry(key(9), 0, body(9, 10_000));
    assert!(matches!(store.put(&too_big), Err(StoreError::Full(_))));
    assert_eq!(store.stats().unwrap().entries, 3, "a refused put evicts nothing");
}

#[test]
fn corrupt_record_is_a_miss_and_removed() {
    let (_dir, store) = temp_store();
    let good = entry(key(1), 1, body(1, 500));
    let sibling = entry(key(1), 2, body(2, 500));
    store.put(&good).unwrap();
    store.put(&sibling).unwrap();
    let encoded = good.encode();
    store.write_raw(&good.key, good.variant, &encoded[..encoded.len() - 3]);
    assert_eq!(store.get(&key(1)).unwrap(), std::slice::from_ref(&sibling));
    assert_eq!(store.stats().unwrap().entries, 1, "the corrupt record was deleted");
    assert_eq!(store.index_lengths(), (1, 1), "with its index keys");
    assert_eq!(store.stats().unwrap().bytes, sibling.encode().len() as u64);

    // A record whose metadata is garbage is dropped by scan too.
    store.write_raw(&key(2), VariantId(0), b"not an entry");
    let metas = store.scan().unwrap();
    assert_eq!(metas, [sibling.meta()]);
    assert_eq!(store.stats().unwrap().entries, 1);
}

#[test]
fn purge_expired_walks_the_index() {
    let (_dir, store) = temp_store();
    let mut entries = Vec::new();
    for n in 0..10u64 {
        let mut e = entry(key(n), n % 2, body(n, 100));
        e.expires = if n == 9 { None } else { Some(at(100 + n)) };
        store.put(&e).unwrap();
        entries.push(e);
    }
    assert_eq!(store.index_lengths(), (9, 10));
    assert_eq!(store.purge_expired(at(99)).unwrap(), 0);
    // expires <= now is expired (EntryMeta::is_expired).
    assert_eq!(store.purge_expired(at(103)).unwrap(), 4);
    assert_eq!(store.index_lengths(), (5, 6));
    for e in &entries {
        let present = !store.get(&e.key).unwrap().is_empty();
        assert_eq!(present, !e.is_expired(at(103)), "entry {}", e.key);
    }
    // Overwriting an entry with a later expiry moves its index key.
    let mut moved = entries[5].clone();
    moved.expires = Some(at(1000));
    store.put(&moved).unwrap();
    assert_eq!(store.purge_expired(at(200)).unwrap(), 4);
    assert_eq!(store.get(&moved.key).unwrap(), std::slice::from_ref(&moved));
    assert_eq!(store.get(&entries[9].key).unwrap().len(), 1, "never-expiring entries stay");
    assert_eq!(store.index_lengths(), (1, 2));
    assert_eq!(store.purge_expired(std::time::UNIX_EPOCH + Duration::from_nanos(u64::MAX)).unwrap(), 1);
    assert_eq!(store.stats().unwrap().entries, 1);
}

#[test]
fn reopening_shares_one_environment_and_handles_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let first = LmdbStore::open(dir.path()).unwrap();
    // Through another spelling of the same path.
    let second = LmdbStore::open(dir.path().join(".")).unwrap();
    assert!(first.same_environment(&second));
    let e = entry(key(1), 0, body(1, 100));
    first.put(&e).unwrap();
    assert_eq!(second.get(&e.key).unwrap(), std::slice::from_ref(&e));
    assert_eq!(second.remove(&e.key).unwrap(), 1);
    assert!(first.get(&e.key).unwrap().is_empty());

    // After every handle is gone, the path opens again, with what was written.
    second.put(&e).unwrap();
    drop(first);
    drop(second);
    let third = LmdbStore::open(dir.path()).unwrap();
    assert_eq!(third.get(&e.key).unwrap(), std::slice::from_ref(&e));
}

#[test]
fn open_from_many_threads_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<LmdbStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| LmdbStore::open(dir.path()).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(stores.iter().all(|s| s.same_environment(&stores[0])));
    // Open and drop in a loop from several threads: no EnvAlreadyOpened.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    let other = tempfile::tempdir().unwrap();
                    drop(LmdbStore::open(other.path()).unwrap());
                    drop(LmdbStore::open(dir.path()).unwrap());
                }
            });
        }
    });
}

#[test]
fn refuses_what_is_not_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"hello").unwrap();
    assert!(matches!(LmdbStore::open(&file), Err(LmdbError::NotACache(_))));

    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("data.mdb"), vec![0x5a; 64 << 10]).unwrap();
    let error = LmdbStore::open(&garbage).unwrap_err();
    assert!(matches!(StoreError::from(error), StoreError::NotACache(_)));

    // An LMDB environment of another program.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    {
        // SAFETY: a fresh directory, opened once, closed before the store opens it.
        let env = unsafe { heed::EnvOpenOptions::new().map_size(1 << 20).max_dbs(2).open(&foreign) }.unwrap();
        let wtxn = env.write_txn().unwrap();
        let db = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                opener
                    .create_database::<heed::types::Str, heed::types::Str>(wtxn, Some("theirs"))
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })
            .unwrap()
            .unwrap_commit();
        let mut wtxn = env.write_txn().unwrap();
        db.put(&mut wtxn, "hello", "world").unwrap();
        wtxn.commit().unwrap();
        env.prepare_for_closing().wait();
    }
    assert!(matches!(LmdbStore::open(&foreign), Err(LmdbError::NotACache(_))));
}

#[cfg(unix)]
#[test]
fn permission_denied_is_an_io_error_with_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root ignores permissions; only check where they apply.
    if std::fs::write(locked.join("probe"), b"").is_ok() {
        return;
    }
    let error = StoreError::from(LmdbStore::open(locked.join("cache")).unwrap_err());
    let StoreError::Io { context, source } = error else { panic!("expected an I/O error, got {error:?}") };
    assert!(context.contains("locked"), "{context}");
    assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
}

#[test]
fn async_store_reads_inline_and_writes_off_thread() {
    let (_dir, store) = temp_store();
    let store = AsyncLmdbStore::from(store);
    let e = entry(key(1), 0, body(1, 1 << 20));
    futures_executor::block_on(async {
        store.put(&e).await.unwrap();
        assert_eq!(store.get(&e.key).await.unwrap(), std::slice::from_ref(&e));
        assert_eq!(store.scan().await.unwrap(), [e.meta()]);
        assert_eq!(store.purge_expired(at(1_000)).await.unwrap(), 1);
        assert!(store.get(&e.key).await.unwrap().is_empty());
        let reopened = AsyncLmdbStore::open(store.blocking().path().to_path_buf()).await.unwrap();
        assert!(reopened.blocking().same_environment(store.blocking()));
    });
}

#[test]
fn get_copies_each_value_once_into_shared_bytes() {
    let (_dir, store) = temp_store();
    let e = entry(key(1), 0, body(1, 64 << 10));
    store.put(&e).unwrap();
    let got = store.get(&e.key).unwrap();
    // The body is a view into the one buffer the record was copied into.
    let body = &got[0].response.body;
    assert_eq!(body, &e.response.body);
    let other = store.get(&e.key).unwrap();
    assert_ne!(body.as_ptr(), other[0].response.body.as_ptr(), "each read has its own copy");
}

#[test]
fn put_batch_writes_everything_in_one_transaction() {
    let (_dir, store) = temp_store();
    let entries: Vec<_> = (0..500).map(|n| entry(key(n), n % 3, body(n, 200))).collect();
    store.put_batch(&entries).unwrap();
    assert_eq!(store.stats().unwrap().entries, 500);
    assert_eq!(store.scan().unwrap().len(), 500);
    for e in entries.iter().step_by(37) {
        assert_eq!(store.get(&e.key).unwrap(), std::slice::from_ref(e));
    }
    // Replacing within a batch keeps one record per (key, variant).
    store.put_batch([&entries[0], &entries[0]]).unwrap();
    assert_eq!(store.stats().unwrap().entries, 500);
    let expected: u64 = entries.iter().map(|e| e.encode().len() as u64).sum();
    assert_eq!(store.stats().unwrap().bytes, expected);
}

#[test]
fn every_sync_mode_stores_and_reads() {
    for mode in [crate::SyncMode::Full, crate::SyncMode::Relaxed, crate::SyncMode::None] {
        let dir = tempfile::tempdir().unwrap();
        let store = LmdbStore::builder(dir.path()).sync(mode).open().unwrap();
        let e = entry(key(1), 0, body(1, 10_000));
        store.put(&e).unwrap();
        drop(store);
        let store = LmdbStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&e.key).unwrap(), std::slice::from_ref(&e), "{mode:?}");
    }
}

/// The bytes `entry` takes in the store (record, and body when kept apart).
fn stored_len(entry: &Entry) -> u64 {
    PreparedEntry::new(entry).stored_len()
}

/// Refreshes `entry`; returns whether the stored body was kept.
fn refresh_keeps_body(store: &LmdbStore, entry: &Entry) -> bool {
    store.refresh_prepared(&PreparedEntry::new(entry)).expect("refresh")
}

/// `bytes` with its last byte changed.
fn last_byte_flipped(bytes: &Bytes) -> Bytes {
    let mut bytes = bytes.to_vec();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    Bytes::from(bytes)
}

/// Every long body has its one record in `bodies`, no other is there, and the byte
/// count is the sum of what the listed entries take.
#[track_caller]
fn assert_no_orphans(store: &LmdbStore, what: &str) {
    let metas = store.scan().unwrap();
    let apart = metas.iter().filter(|meta| meta.body_size > BODY_APART_ABOVE as u64).count() as u64;
    assert_eq!(store.body_count(), apart, "{what}: one body per long entry, and no other");
    let mut bytes = 0;
    for k in metas.iter().map(|meta| meta.key).collect::<std::collections::BTreeSet<_>>() {
        bytes += store.get(&k).unwrap().iter().map(stored_len).sum::<u64>();
    }
    let stats = store.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes), (metas.len() as u64, bytes), "{what}: counts");
}

#[test]
fn a_refresh_rewrites_only_the_head_when_the_stored_body_is_its_own() {
    // RFC 9111 §4.3.4: a 304 freshens the stored response; its body does not change.
    let (_dir, store) = temp_store();
    let stored = entry(key(1), 0, body(1, 1 << 20));
    store.put(&stored).unwrap();
    assert_eq!(store.body_count(), 1, "a 1 MiB body is kept apart");
    let first = revalidated(&stored, 1);
    assert!(refresh_keeps_body(&store, &first), "the stored body is the entry's: kept");
    assert_eq!(store.get(&key(1)).unwrap(), std::slice::from_ref(&first));
    assert!(refresh_keeps_body(&store, &revalidated(&first, 2)), "and again");
    assert_no_orphans(&store, "after refreshes");

    // Another writer stored another body of the same length: the late refresh of the
    // old copy is written whole, its own body with it.
    store.put(&entry(key(1), 0, last_byte_flipped(&stored.response.body))).unwrap();
    let late = revalidated(&stored, 3);
    assert!(!refresh_keeps_body(&store, &late), "another body is stored: written whole");
    assert_eq!(store.get(&key(1)).unwrap(), std::slice::from_ref(&late));

    // Removed meanwhile: written whole.
    assert_eq!(store.remove(&key(1)).unwrap(), 1);
    let revived = revalidated(&late, 4);
    assert!(!refresh_keeps_body(&store, &revived));
    assert_eq!(store.get(&key(1)).unwrap(), [revived]);

    // A short body lives inline: a refresh rewrites the record, body and all.
    let short = entry(key(2), 0, body(2, BODY_APART_ABOVE));
    store.put(&short).unwrap();
    assert!(!refresh_keeps_body(&store, &revalidated(&short, 1)));
    assert_eq!(store.body_count(), 1);
    assert_no_orphans(&store, "at the end");
}

#[test]
fn a_cache_directory_of_the_previous_layout_still_reads() {
    use heed::types::{Bytes as Raw, Str, Unit};

    use crate::records::{index_key, meta_record, nanos, record_id};

    // The environment the previous version wrote: five databases (no `bodies`), every
    // entry record inline, the long ones too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    std::fs::create_dir(&path).unwrap();
    let old = [
        entry(key(1), 0, body(1, 1 << 20)),
        entry(key(2), 0, body(2, 1000)),
        entry(key(2), 5, body(3, 64 << 10)),
    ];
    let mut total = 0u64;
    {
        // SAFETY: a fresh directory, opened once, closed before the store opens it.
        let env = unsafe { heed::EnvOpenOptions::new().map_size(64 << 20).max_dbs(8).open(&path) }.unwrap();
        let wtxn = env.write_txn().unwrap();
        let (info, entries, metas, by_expiry, by_created) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                Ok(heed::CommitOrAbort::<_, ()>::Commit((
                    opener.create_database::<Str, Raw>(wtxn, Some("info"))?,
                    opener.create_database::<Raw, Raw>(wtxn, Some("entries"))?,
                    opener.create_database::<Raw, Raw>(wtxn, Some("metas"))?,
                    opener.create_database::<Raw, Unit>(wtxn, Some("by-expiry"))?,
                    opener.create_database::<Raw, Unit>(wtxn, Some("by-created"))?,
                )))
            })
            .unwrap()
            .unwrap_commit();
        let mut txn = env.write_txn().unwrap();
        info.put(&mut txn, "format", b"httpcache-lmdb/1").unwrap();
        for e in &old {
            let id = record_id(&e.key, e.variant);
            let encoded = e.encode();
            let header = MetaHeader {
                created: nanos(e.created),
                expires: e.expires.map(nanos),
                entry_len: encoded.len() as u64,
            };
            entries.put(&mut txn, &id, &encoded).unwrap();
            metas.put(&mut txn, &id, &meta_record(&header, &encoded)).unwrap();
            by_expiry.put(&mut txn, &index_key(header.expires.unwrap(), &id), &()).unwrap();
            by_created.put(&mut txn, &index_key(header.created, &id), &()).unwrap();
            total += encoded.len() as u64;
        }
        info.put(&mut txn, "bytes", &total.to_be_bytes()).unwrap();
        txn.commit().unwrap();
        env.prepare_for_closing().wait();
    }

    let store = LmdbStore::open(&path).unwrap();
    assert_eq!(store.get(&key(1)).unwrap(), [old[0].clone()], "a 1 MiB inline record reads");
    let mut both = store.get(&key(2)).unwrap();
    both.sort_by_key(|e| e.variant);
    assert_eq!(both, [old[1].clone(), old[2].clone()]);
    let mut metas = store.scan().unwrap();
    metas.sort_by_key(|meta| (meta.key, meta.variant));
    let mut want: Vec<_> = old.iter().map(Entry::meta).collect();
    want.sort_by_key(|meta| (meta.key, meta.variant));
    assert_eq!(metas, want);
    let stats = store.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes), (3, total));
    assert_eq!(store.body_count(), 0);

    // Refreshing an inline record writes it whole, in the new layout; the next
    // refresh keeps its body.
    let refreshed = revalidated(&old[0], 1);
    assert!(!refresh_keeps_body(&store, &refreshed), "an inline record holds no body apart");
    assert_eq!(store.body_count(), 1);
    assert_eq!(store.get(&key(1)).unwrap(), std::slice::from_ref(&refreshed));
    assert!(refresh_keeps_body(&store, &revalidated(&refreshed, 2)));
    let converted = stored_len(&refreshed);
    let unconverted: u64 = old[1..].iter().map(|e| e.encode().len() as u64).sum();
    assert_eq!(store.stats().unwrap().bytes, converted + unconverted);

    // Old records are removed, purged and counted like new ones.
    assert_eq!(store.remove(&key(2)).unwrap(), 2);
    assert_no_orphans(&store, "after removing the old records");
    assert_eq!(store.purge_expired(at(1_000_000)).unwrap(), 1);
    assert_eq!(store.stats().unwrap().bytes, 0);
}

#[test]
fn bodies_kept_apart_are_never_orphaned() {
    let (_dir, store) = temp_store();
    let long = |n: u64, variant: u64| entry(key(n), variant, body(n * 10 + variant, 40 << 10));
    let short = |n: u64, variant: u64| entry(key(n), variant, body(n * 10 + variant, 500));
    for e in [long(1, 0), long(1, 1), short(2, 0)] {
        store.put(&e).unwrap();
    }
    assert_no_orphans(&store, "after puts");
    store.put(&entry(key(1), 0, body(99, 50 << 10))).unwrap();
    assert_no_orphans(&store, "long over long");
    store.put(&short(1, 1)).unwrap();
    assert_no_orphans(&store, "short over long");
    store.put(&long(2, 0)).unwrap();
    assert_no_orphans(&store, "long over short");
    assert!(store.remove_variant(&key(1), VariantId(0)).unwrap());
    assert_no_orphans(&store, "remove_variant");
    assert_eq!(store.remove(&key(2)).unwrap(), 1);
    assert_no_orphans(&store, "remove");
    for n in 3..8 {
        let mut e = long(n, 0);
        e.expires = Some(at(n));
        store.put(&e).unwrap();
    }
    assert_eq!(store.purge_expired(at(5)).unwrap(), 3);
    assert_no_orphans(&store, "purge_expired");
    store.put_batch(&[long(8, 0), long(8, 0), short(8, 1)]).unwrap();
    assert_no_orphans(&store, "put_batch");
    store.clear().unwrap();
    assert_eq!(store.body_count(), 0, "clear");
    assert_no_orphans(&store, "clear");

    // Eviction under max_bytes takes the bodies with their heads.
    let dir = tempfile::tempdir().unwrap();
    let bounded = LmdbStore::builder(dir.path()).max_bytes(500 << 10).open().unwrap();
    for n in 0..30 {
        bounded.put(&entry(key(n), 0, body(n, 100 << 10))).unwrap();
    }
    assert!(bounded.stats().unwrap().bytes <= 500 << 10);
    assert_no_orphans(&bounded, "eviction");
}

#[test]
fn a_corrupt_body_is_a_clean_miss() {
    let (_dir, store) = temp_store();
    let victim = entry(key(1), 1, body(1, 100 << 10));
    let sibling = entry(key(1), 2, body(2, 100 << 10));
    let good = victim.response.body.to_vec();
    let cases = httpcache_core::conformance::corrupt_bodies(&good);
    for (what, bytes) in cases {
        store.clear().unwrap();
        store.put(&victim).unwrap();
        store.put(&sibling).unwrap();
        store.write_raw_body(&key(1), VariantId(1), bytes.as_deref());
        assert_eq!(
            store.get(&key(1)).unwrap(),
            std::slice::from_ref(&sibling),
            "{what}: a miss for that variant"
        );
        assert_eq!(store.index_lengths(), (1, 1), "{what}: its index keys went");
        assert_no_orphans(&store, what);
        // The variant can be stored again, by a refresh too.
        let refreshed = revalidated(&victim, 1);
        assert!(!refresh_keeps_body(&store, &refreshed), "{what}");
        let mut got = store.get(&key(1)).unwrap();
        got.sort_by_key(|e| e.variant);
        assert_eq!(got, [refreshed, sibling.clone()], "{what}: stored again");
    }

    // A head cut short is a miss too, its body deleted with it.
    store.clear().unwrap();
    store.put(&victim).unwrap();
    store.put(&sibling).unwrap();
    let head = [&HEAD_TAG[..], &victim.encode_head()].concat();
    store.write_raw(&key(1), VariantId(1), &head[..head.len() / 2]);
    assert_eq!(store.get(&key(1)).unwrap(), std::slice::from_ref(&sibling));
    assert_no_orphans(&store, "a head cut short");

    // A body left without its head (by an older build) is deleted by compact, or
    // with its key.
    store.put(&victim).unwrap();
    store.delete_all_but_the_body(&key(1), VariantId(1));
    assert_eq!(store.body_count(), 2);
    assert_eq!(store.get(&key(1)).unwrap(), std::slice::from_ref(&sibling));
    store.compact().unwrap();
    assert_no_orphans(&store, "compact");
    store.put(&victim).unwrap();
    store.delete_all_but_the_body(&key(1), VariantId(1));
    assert_eq!(store.remove(&key(1)).unwrap(), 1, "only the sibling was an entry");
    assert_eq!(store.body_count(), 0);
    assert_no_orphans(&store, "remove");
}

#[test]
fn async_refresh_keeps_the_body_too() {
    let (_dir, store) = temp_store();
    let stored = entry(key(1), 0, body(1, 256 << 10));
    let store = store.into_async();
    futures_executor::block_on(async {
        store.put(&stored).await.unwrap();
        let refreshed = revalidated(&stored, 1);
        store.refresh(&refreshed).await.unwrap();
        assert_eq!(store.get(&key(1)).await.unwrap(), [refreshed]);
    });
    assert_no_orphans(store.blocking(), "async");
}

#[test]
fn a_refresh_written_behind_is_read_at_once_and_lands_with_its_stored_body() {
    // RFC 9111 §4.3.4: a 304 freshens the stored response; a read right after it must
    // see the freshened fields, whether or not the write has landed.
    let (_dir, store) = temp_store();
    let long = entry(key(1), 0, body(1, 1 << 20));
    let short = entry(key(1), 1, body(2, 1_000));
    let other = entry(key(2), 0, body(3, 1_000));
    for stored in [&long, &short, &other] {
        store.put(stored).unwrap();
    }
    let (long2, short2) = (revalidated(&long, 1), revalidated(&short, 1));
    store.queue_refresh_unwritten(&long2);
    store.queue_refresh_unwritten(&short2);
    assert_eq!(store.queued_refreshes(), 2);

    let mut read = store.get(&key(1)).unwrap();
    read.sort_by_key(|entry| entry.variant);
    assert_eq!(read, [long2.clone(), short2.clone()], "queued refreshes are what a read sees");
    let mut in_map = store.get_from_map(&key(1));
    in_map.sort_by_key(|entry| entry.variant);
    assert_eq!(in_map, [long.clone(), short.clone()], "and the map still has the old ones");
    assert_eq!(store.get(&key(2)).unwrap(), std::slice::from_ref(&other), "other keys are untouched");

    store.write_queued();
    assert_eq!(store.queued_refreshes(), 0);
    let mut in_map = store.get_from_map(&key(1));
    in_map.sort_by_key(|entry| entry.variant);
    assert_eq!(in_map, [long2, short2], "written");
    assert_eq!(store.body_count(), 1, "the long body was kept, not written again");
    assert_no_orphans(&store, "after the writer");
}

#[test]
fn a_queued_refresh_of_a_removed_variant_reads_as_stored() {
    // Nothing in the map (removed by another process, say): the queued refresh is the
    // variant, and its write is a whole put.
    let (_dir, store) = temp_store();
    let refreshed = revalidated(&entry(key(3), 4, body(4, 40_000)), 1);
    store.queue_refresh_unwritten(&refreshed);
    assert_eq!(store.get(&key(3)).unwrap(), std::slice::from_ref(&refreshed));
    assert!(store.get_from_map(&key(3)).is_empty());
    store.write_queued();
    assert_eq!(store.get_from_map(&key(3)), [refreshed]);
    assert_no_orphans(&store, "after a whole write");
}

#[test]
fn a_refresh_that_cannot_be_written_costs_no_other_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::builder(dir.path()).max_bytes(100_000).open().unwrap();
    let small = entry(key(6), 0, body(6, 1_000));
    store.put(&small).unwrap();
    // Larger than max_bytes: it can never be written.
    let huge = revalidated(&entry(key(7), 0, body(7, 200_000)), 1);
    let small2 = revalidated(&small, 1);
    store.queue_refresh_unwritten(&huge);
    store.queue_refresh_unwritten(&small2);
    store.write_queued();
    assert_eq!(store.queued_refreshes(), 0, "both left the queue");
    assert_eq!(store.get(&key(6)).unwrap(), [small2], "the writable one was written");
    assert!(store.get(&key(7)).unwrap().is_empty(), "the other was dropped");
}

#[test]
fn the_async_store_writes_refreshes_behind_too() {
    let (_dir, store) = temp_store();
    let stored = entry(key(20), 0, body(20, 30_000));
    store.put(&stored).unwrap();
    let store = store.into_async();
    let refreshed = revalidated(&stored, 1);
    futures_executor::block_on(async {
        AsyncStore::refresh(&store, &refreshed).await.unwrap();
        assert_eq!(AsyncStore::get(&store, &key(20)).await.unwrap(), std::slice::from_ref(&refreshed));
    });
    store.blocking().flush().unwrap();
    assert_eq!(store.blocking().get_from_map(&key(20)), [refreshed]);
}

#[test]
fn an_async_refresh_that_finds_the_queue_full_waits_off_the_executor_for_room() {
    let (_dir, store) = temp_store();
    let stored = entry(key(21), 0, body(21, 1_000));
    store.put(&stored).unwrap();
    // Fill the queue with refreshes no writer takes yet.
    for round in 0..httpcache_core::behind::DEFAULT_MAX_QUEUED as u64 {
        store.queue_refresh_unwritten(&revalidated(&entry(key(1_000 + round), 0, body(round, 100)), 1));
    }
    let store = store.into_async();
    let refreshed = revalidated(&stored, 1);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            futures_executor::block_on(AsyncStore::refresh(&store, &refreshed)).unwrap();
            done.send(()).unwrap();
        });
        // Not a timing assertion: a refresh that did not wait would only fail it.
        assert!(
            finished.recv_timeout(std::time::Duration::from_millis(50)).is_err(),
            "the refresh waits for room"
        );
        store.blocking().write_queued();
        finished.recv().expect("queued once there was room");
    });
    assert_eq!(store.blocking().get(&key(21)).unwrap(), std::slice::from_ref(&refreshed), "read at once");
    store.blocking().flush().unwrap();
    assert_eq!(store.blocking().get_from_map(&key(21)), [refreshed], "and written");
}

#[test]
fn a_read_does_not_copy_out_a_variant_a_queued_refresh_replaces() {
    // The map's record for the variant is never read while a refresh of it is queued:
    // here it is undecodable, and the read neither reports nor deletes it.
    let (_dir, store) = temp_store();
    let stored = entry(key(30), 0, body(30, 40_000));
    store.put(&stored).unwrap();
    store.write_raw(&key(30), VariantId(0), b"not an entry");
    let refreshed = revalidated(&stored, 1);
    store.queue_refresh_unwritten(&refreshed);
    assert_eq!(store.get(&key(30)).unwrap(), std::slice::from_ref(&refreshed));
    assert_eq!(store.index_lengths().1, 1, "the record was not read, so not deleted as corrupt");
    store.write_queued();
    assert_eq!(store.get_from_map(&key(30)), [refreshed], "the refresh replaced it");
}

#[test]
fn a_thread_keeps_its_reader_slot_until_it_exits() {
    // A reader table of one slot. Reads use the thread's own slot (no MDB_NOTLS): the
    // first thread to read holds it while it lives, another thread's read is an error
    // that names the limit (never a panic, never a wrong answer), and once the first
    // thread has exited the slot serves the next.
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::builder(dir.path()).max_readers(1).open().unwrap();
    let stored = entry(key(1), 0, body(1, 100));
    store.put(&stored).unwrap();
    let (read, exit) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|scope| {
        let holder = scope.spawn(|| {
            assert_eq!(store.get(&stored.key).unwrap(), vec![stored.clone()]);
            // Reads again with the same slot.
            assert_eq!(store.get(&stored.key).unwrap(), vec![stored.clone()]);
            read.wait();
            exit.wait();
        });
        read.wait();
        let refused = scope.spawn(|| store.get(&stored.key)).join().unwrap();
        match refused {
            Err(StoreError::Backend(message)) => assert!(message.contains("max_readers"), "{message}"),
            other => panic!("a full reader table gave {other:?}"),
        }
        exit.wait();
        holder.join().unwrap();
    });
    let after = std::thread::scope(|scope| scope.spawn(|| store.get(&stored.key)).join().unwrap());
    assert_eq!(after.unwrap(), vec![stored]);
}

#[test]
fn a_removal_looks_for_the_key_first_and_finds_what_is_only_queued() {
    // RFC 9111 §4.4: every successful unsafe request removes what is stored for its
    // URLs, mostly nothing; `holds` answers that without a write transaction.
    let (_dir, store) = temp_store();
    assert!(!store.holds(&key(30), None).unwrap());
    assert_eq!(store.remove(&key(30)).unwrap(), 0);
    assert!(!store.remove_variant(&key(30), VariantId(4)).unwrap());
    // A refresh queued for a key with nothing in the map yet is something to remove.
    let refreshed = revalidated(&entry(key(30), 4, body(30, 1_000)), 1);
    store.queue_refresh_unwritten(&refreshed);
    assert!(store.holds(&key(30), None).unwrap());
    assert!(store.holds(&key(30), Some(VariantId(4))).unwrap());
    assert!(!store.holds(&key(30), Some(VariantId(5))).unwrap(), "another variant is not held");
    store.write_queued();
    assert!(store.holds(&key(30), Some(VariantId(4))).unwrap(), "written to the map");
    assert_eq!(store.remove(&key(30)).unwrap(), 1);
    assert!(!store.holds(&key(30), None).unwrap());
    // A stored variant, and the async store's removals, which look on the calling task.
    store.put(&entry(key(31), 0, body(31, 1_000))).unwrap();
    assert!(store.holds(&key(31), Some(VariantId(0))).unwrap());
    assert!(!store.holds(&key(31), Some(VariantId(1))).unwrap());
    let store = store.into_async();
    futures_executor::block_on(async {
        assert!(!AsyncStore::remove_variant(&store, &key(31), VariantId(1)).await.unwrap());
        assert_eq!(AsyncStore::remove(&store, &key(32)).await.unwrap(), 0);
        assert!(AsyncStore::remove_variant(&store, &key(31), VariantId(0)).await.unwrap());
        assert!(AsyncStore::get(&store, &key(31)).await.unwrap().is_empty());
    });
}

/// A store whose map is 1 MiB and may not grow: full after a few entries.
fn one_mib_store() -> (tempfile::TempDir, LmdbStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LmdbStore::builder(dir.path()).map_size(1 << 20).max_map_size(1 << 20).open().expect("open");
    (dir, store)
}

/// An entry created at `at(n)` that never expires: eviction takes such entries oldest
/// first.
fn aged(n: u64, body_len: usize) -> Entry {
    let mut aged = entry(key(n), 0, body(n, body_len));
    aged.created = at(n);
    aged.expires = None;
    aged
}

#[test]
fn an_empty_store_takes_four_pages() {
    // LMDB's two meta pages, the main database's root (naming the six databases) and
    // `info`'s leaf; the five other databases, empty, have no page yet.
    let (_dir, store) = one_mib_store();
    let (_, last_page) = store.page_size_and_last_page();
    assert_eq!(last_page + 1, EMPTY_STORE_PAGES);
}

#[test]
fn a_put_that_cannot_fit_does_not_wipe_the_cache() {
    let (_dir, store) = one_mib_store();
    let small: Vec<_> = (0..5).map(|n| entry(key(n), 0, body(n, 1000))).collect();
    for e in &small {
        store.put(e).unwrap();
    }
    assert_eq!(store.stats().unwrap().entries, 5);
    // Smaller than the map, but not once LMDB's own pages are counted.
    let almost = entry(key(100), 0, body(100, (1 << 20) - (8 << 10)));
    let put = store.put(&almost);
    assert!(matches!(put, Err(StoreError::Full(_))), "{put:?}");
    assert_eq!(store.stats().unwrap().entries, 5, "a put that fails anyway evicted the whole cache");
    for e in &small {
        assert_eq!(store.get(&e.key).unwrap(), std::slice::from_ref(e));
    }
}

#[test]
fn the_largest_entry_admitted_into_an_empty_map_is_stored_and_one_byte_more_is_refused_without_evicting() {
    let (_dir, store) = one_mib_store();
    let (mut admitted, mut refused) = (0, 1 << 20);
    while refused - admitted > 1 {
        let len = (admitted + refused) / 2;
        if store.could_fit_in_an_empty_map(&entry(key(1), 0, body(1, len))) {
            admitted = len;
        } else {
            refused = len;
        }
    }
    let (page_size, _) = store.page_size_and_last_page();
    if page_size == 4096 {
        // A body on 215 overflow pages (`(len + 16) / 4096` rounded up): of the 255
        // pages a 1 MiB map can use, the empty store takes 4, the entry's other records
        // a leaf in each of five databases, every write 4 more, the free list 1, and the
        // eviction reserve of a store holding one entry 26 more (measured: once it is
        // stored, a write still finds those 26 pages free).
        assert_eq!(admitted, 215 * 4096 - 16);
    }
    let largest = entry(key(1), 0, body(1, admitted));
    store.put(&largest).expect("the largest entry admitted fits in an empty map");
    assert_eq!(store.get(&largest.key).unwrap(), std::slice::from_ref(&largest));

    let over = entry(key(2), 0, body(2, admitted + 1));
    let put = store.put(&over);
    assert!(matches!(put, Err(StoreError::Full(_))), "{put:?}");
    assert_eq!(store.get(&largest.key).unwrap(), [largest], "nothing was evicted for it");
    assert_eq!(store.stats().unwrap().entries, 1);
}

#[test]
fn an_entry_that_fits_only_after_evicting_others_is_still_stored() {
    // Seven entries of 100 KiB fill a 1 MiB map up to its eviction reserve (an eighth
    // would go into it).
    let (_dir, store) = one_mib_store();
    let old: Vec<_> = (0..7).map(|n| aged(n, 100 << 10)).collect();
    for e in &old {
        store.put(e).unwrap();
    }
    assert_eq!(store.stats().unwrap().entries, 7, "all fit before the new one");
    let newer = aged(100, 150 << 10);
    store.put(&newer).expect("eviction makes room");
    assert_eq!(store.get(&newer.key).unwrap(), std::slice::from_ref(&newer));
    let left = store.stats().unwrap().entries;
    assert!((2..8).contains(&left), "some, not all, were evicted: {left} left");
    assert!(store.get(&old[0].key).unwrap().is_empty(), "the oldest went first");
    assert_eq!(store.get(&old[6].key).unwrap(), std::slice::from_ref(&old[6]), "the newest stayed");
    assert_no_orphans(&store, "evicted to make room");
}

#[test]
fn a_put_eviction_cannot_make_room_for_is_refused_before_evicting() {
    // A 600 KiB body needs 151 consecutive pages. Five 100 KiB entries use the map up
    // to page 155 (4 KiB pages) and leave 99 never used above it; LMDB never joins
    // those to pages freed below them, and, measured, with all five evicted no run of
    // freed pages was long enough either: the put would empty the cache and fail
    // anyway. Eviction is counted on for a quarter of the 152 pages below the mark, 38:
    // refused while the five are still there.
    let (_dir, store) = one_mib_store();
    let old: Vec<_> = (0..5).map(|n| aged(n, 100 << 10)).collect();
    for e in &old {
        store.put(e).unwrap();
    }
    let big = aged(100, 600 << 10);
    assert!(store.could_fit_in_an_empty_map(&big), "an empty map would hold it");
    match store.put(&big) {
        Err(StoreError::Full(message)) => assert!(message.contains("nothing evicted"), "{message}"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(store.stats().unwrap().entries, 5, "nothing was evicted for it");
    for e in &old {
        assert_eq!(store.get(&e.key).unwrap(), std::slice::from_ref(e));
    }
}

#[test]
fn batches_and_refreshes_that_cannot_fit_do_not_wipe_the_cache_either() {
    let (_dir, store) = one_mib_store();
    let small: Vec<_> = (0..5).map(|n| entry(key(n), 0, body(n, 1000))).collect();
    for e in &small {
        store.put(e).unwrap();
    }
    // Each fits in an empty map; together they do not.
    let pair = [entry(key(100), 0, body(100, 600 << 10)), entry(key(101), 0, body(101, 600 << 10))];
    assert!(pair.iter().all(|e| store.could_fit_in_an_empty_map(e)));
    let batch = store.put_batch(&pair);
    assert!(matches!(batch, Err(LmdbError::Full(_))), "{batch:?}");
    assert_eq!(store.stats().unwrap().entries, 5, "the batch evicted nothing");

    // A refresh whose entry could never fit is dropped, and costs nothing stored.
    let almost = revalidated(&entry(key(102), 0, body(102, (1 << 20) - (8 << 10))), 1);
    store.queue_refresh_unwritten(&almost);
    store.write_queued();
    assert!(store.get(&key(102)).unwrap().is_empty());
    assert_eq!(store.stats().unwrap().entries, 5, "the refresh evicted nothing");
}

#[test]
fn one_commit_makes_the_pages_an_eviction_freed_reusable() {
    // LMDB reuses a page only in a transaction at least two after the one that freed
    // it: the commit between an eviction and the retried write must be a real one,
    // even though it rewrites the byte counter as it was.
    let (_dir, store) = one_mib_store();
    store.put(&entry(key(1), 0, body(1, 1000))).unwrap();
    assert_eq!(store.commits_to_make_freed_pages_reusable(), 1);
    assert_eq!(store.stats().unwrap().bytes, stored_len(&entry(key(1), 0, body(1, 1000))));
}

/// A 1 MiB map that may not grow, its commits not flushed (what a write takes of the
/// map is the same in every sync mode): full after a few hundred small entries.
fn one_mib_unflushed_store() -> (tempfile::TempDir, LmdbStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LmdbStore::builder(dir.path())
        .map_size(1 << 20)
        .max_map_size(1 << 20)
        .sync(SyncMode::None)
        .open()
        .expect("open");
    (dir, store)
}

/// When every seventh [`small`] entry expires: long after the wall clock's now, so
/// that eviction takes them by age like the others, and a purge at
/// [`after_the_small_ones_expire`] finds them.
const SMALL_EXPIRY: Duration = Duration::from_secs(4_000_000_000);

fn after_the_small_ones_expire() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + SMALL_EXPIRY + Duration::from_secs(1)
}

/// The `n`th small entry: a body of 200 to 799 bytes, created at `at(n)`; every
/// seventh expires at [`SMALL_EXPIRY`], the others never.
fn small(n: u64) -> Entry {
    let mut small = aged(n, 200 + (n as usize * 37) % 600);
    if n.is_multiple_of(7) {
        small.expires = Some(std::time::UNIX_EPOCH + SMALL_EXPIRY);
    }
    small
}

#[test]
fn a_map_full_of_small_entries_keeps_storing_them() {
    // Before the eviction reserve, the first put that found such a map full failed
    // ("evict …: the LMDB map is full": the eviction's own transaction found no free
    // page to copy the pages it changes into), and within a few dozen puts so did every
    // put after it, and removals and purges too: only `clear` got the store going again.
    let (_dir, store) = one_mib_unflushed_store();
    let puts = 3000;
    for n in 0..puts {
        if let Err(error) = store.put(&small(n)) {
            panic!("put {n}, of a {}-byte body, failed: {error}", small(n).response.body.len());
        }
    }
    let stats = store.stats().unwrap();
    assert!((100..puts / 2).contains(&stats.entries), "the map filled and eviction made room: {stats:?}");
    let newest = small(puts - 1);
    assert_eq!(store.get(&newest.key).unwrap(), std::slice::from_ref(&newest));
    assert!(store.get(&small(0).key).unwrap().is_empty(), "the oldest went");
    assert_no_orphans(&store, "after evicting for thousands of puts");

    // Removals, purges and `clear` still free space in it.
    assert_eq!(store.remove(&newest.key).unwrap(), 1);
    let expiring = store.scan().unwrap().iter().filter(|meta| meta.expires.is_some()).count();
    assert!(expiring > 0, "some stored entries expire");
    assert_eq!(store.purge_expired(after_the_small_ones_expire()).unwrap(), expiring);
    assert_eq!(store.stats().unwrap().entries, stats.entries - 1 - expiring as u64);
    store.clear().unwrap();
    assert_eq!(store.stats().unwrap().entries, 0);
    store.put(&newest).unwrap();
    assert_eq!(store.get(&newest.key).unwrap(), [newest]);
}

#[test]
fn puts_into_a_full_map_leave_the_eviction_reserve_free() {
    let (_dir, store) = one_mib_unflushed_store();
    let mut least_above = u64::MAX;
    for n in 0..1000 {
        store.put(&small(n)).unwrap();
        let (left, reserve) = store.pages_left_and_reserve(1000);
        // Each put found the reserve free before committing; its commit takes at most
        // a commit's pages of it.
        assert!(left + WRITE_OVERHEAD_PAGES >= reserve, "put {n} left {left} pages free, reserve {reserve}");
        least_above = least_above.min(left.saturating_sub(reserve));
    }
    // Without the reserve, puts took the map down to 5 to 7 free pages, fewer than
    // evicting one record takes.
    assert!(least_above <= 8, "puts went up to the reserve and stopped there: {least_above} pages above it");
    assert!(store.stats().unwrap().entries < 1000, "and evicted once there");
}

#[test]
fn the_largest_entry_admitted_can_still_be_evicted() {
    // It leaves the reserve free: before, the largest entry an empty map admitted left
    // 1 page, and every put after it failed for want of pages to evict it with.
    let (_dir, store) = one_mib_unflushed_store();
    let mut largest = entry(key(1000), 0, body(1000, 215 * 4096 - 16));
    largest.created = at(0);
    largest.expires = None;
    assert!(store.could_fit_in_an_empty_map(&largest));
    store.put(&largest).unwrap();
    for n in 1..200 {
        store.put(&small(n)).unwrap_or_else(|error| panic!("small put {n} after the largest: {error}"));
    }
    assert!(store.get(&largest.key).unwrap().is_empty(), "the largest was evicted for them");
    assert_eq!(store.stats().unwrap().entries, 199, "and only it");
    assert_no_orphans(&store, "after evicting the largest");
}

/// A tmpfs of `size` mounted on a new temporary directory, unmounted when dropped;
/// `None` where mounting is not allowed (not root, not Linux).
struct TinyDisk(tempfile::TempDir);

impl TinyDisk {
    fn mount(size: &str) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(TinyDisk(dir))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

// A disk that fills before the map does: a put that does not fit fails with an error
// (no crash: LMDB writes pages with `pwrite`, not through the map), what was stored
// before still reads, and the store goes on working once room is made. (Runs only
// where a tmpfs can be mounted, as root.)
#[test]
fn a_full_disk_fails_puts_cleanly_and_keeps_what_was_stored() {
    let Some(disk) = TinyDisk::mount("1m") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let store = LmdbStore::builder(disk.0.path().join("cache")).map_size(64 << 20).open().expect("open");
    let mut stored = Vec::new();
    let mut failed = None;
    for n in 0..200 {
        let entry = entry(key(n), 0, body(n, 30_000));
        match store.put(&entry) {
            Ok(()) => stored.push(entry),
            Err(error) => {
                failed = Some((entry, error));
                break;
            }
        }
    }
    let (entry_failed, error) = failed.expect("the disk fills up");
    eprintln!("{error}");
    assert!(store.get(&entry_failed.key).unwrap().is_empty(), "the put that failed stored nothing");
    for entry in &stored {
        assert_eq!(
            store.get(&entry.key).unwrap(),
            std::slice::from_ref(entry),
            "stored before the disk filled"
        );
    }
    // Room made: removals are commits too, on a full disk.
    for entry in &stored[..stored.len() / 2] {
        let _ = store.remove(&entry.key);
    }
    let _ = store.scan();
    for entry in &stored[stored.len() / 2..] {
        assert_eq!(store.get(&entry.key).unwrap(), std::slice::from_ref(entry), "still readable");
    }
    for (n, entry) in stored[..stored.len() / 2].iter().enumerate() {
        assert!(store.get(&entry.key).unwrap().is_empty(), "removed");
        let small = crate::tests::entry(key(1_000 + n as u64), 0, body(1, 100));
        store.put(&small).expect("a small put once room is made");
        assert_eq!(store.get(&small.key).unwrap(), [small]);
    }
}

/// The child side of `a_reader_killed_mid_read_does_not_pin_the_map`: holds a read
/// transaction open on the store in `HTTPCACHE_HOLD_READ`, says so, and waits to be
/// killed. Does nothing when run as a test of its own.
#[test]
fn child_holding_a_read_transaction() {
    use std::io::Write;
    let Some(path) = std::env::var_os("HTTPCACHE_HOLD_READ") else { return };
    let store = LmdbStore::open(std::path::PathBuf::from(path)).expect("open in the child");
    store.hold_a_read_transaction(|| {
        println!("reading");
        let _ = std::io::stdout().flush();
    });
}

/// Starts a child process that opens the store in `dir` and holds a read transaction
/// open, and kills it (SIGKILL) once it does.
fn kill_a_reader_mid_read(dir: &std::path::Path) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "tests::child_holding_a_read_transaction", "--nocapture", "--test-threads=1"])
        .env("HTTPCACHE_HOLD_READ", dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let reading = stdout.lines().map_while(Result::ok).any(|line| line.trim_end().ends_with("reading"));
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    assert!(reading, "the child held a read transaction before it was killed");
}

#[test]
fn a_reader_killed_mid_read_does_not_grow_the_map() {
    // As below, with room to grow: a store bounded by `max_bytes` churns through entries
    // and reuses the pages it frees; it must not grow its map (and file) instead, for
    // want of pages a dead reader pins.
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LmdbStore::builder(dir.path())
        .map_size(1 << 20)
        .max_map_size(64 << 20)
        .max_bytes(256 << 10)
        .open()
        .unwrap();
    store.put(&aged(0, 1000)).unwrap();
    kill_a_reader_mid_read(dir.path());
    for n in 1..400 {
        store.put(&aged(n, 16 << 10)).unwrap();
    }
    let stats = store.stats().unwrap();
    assert!(stats.map_size <= 2 << 20, "the map grew to {} bytes for 256 KiB of entries", stats.map_size);
}

#[test]
fn a_reader_killed_mid_read_does_not_pin_the_map() {
    // A process sharing the store dies (SIGKILL, or Ctrl-C: no unwinding) while it reads:
    // its reader slot keeps the snapshot it read, and LMDB reuses no page freed after it
    // until the slot is cleared. A process that goes on writing must not fill its map
    // for good: a put that finds it full clears the dead readers' slots, then evicts.
    let (dir, store) = one_mib_store();
    store.put(&aged(0, 1000)).unwrap();
    kill_a_reader_mid_read(dir.path());
    for n in 1..400 {
        store
            .put(&aged(n, 16 << 10))
            .unwrap_or_else(|error| panic!("put {n} after the reader died: {error}"));
    }
    assert!(store.stats().unwrap().entries > 10);
}

/// The documented layout, `<user cache dir>/<app name>/`: a name that is not one
/// directory name would put the store in the user cache directory itself, or outside
/// it, so it has no directory, and `open_default` refuses it before creating anything.
#[test]
fn the_default_directory_is_one_level_under_the_user_cache_directory() {
    for bad in ["", ".", "..", "../elsewhere", "a/b", "/tmp/abs", "a\\b"] {
        assert_eq!(crate::default_cache_dir(bad), None, "{bad:?}");
        let error = LmdbStore::open_default(bad).expect_err(bad);
        assert!(error.to_string().contains("one directory name"), "{bad:?}: {error}");
    }
    if let Some(root) = dirs::cache_dir() {
        for good in ["httpcache", "my app", "app.v2"] {
            assert_eq!(crate::default_cache_dir(good), Some(root.join(good)));
        }
    }
}

/// Writes a file into `dir` until the disk is full.
fn fill_the_disk(dir: &std::path::Path) {
    let mut filler = std::fs::File::create(dir.join("filler")).expect("a filler file");
    let chunk = vec![7u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
}

/// The child side of the full-disk tests below, which run it in a process of its own
/// (a `SIGBUS` ends the process it hits): in the directory `HTTPCACHE_FULL_DISK`
/// names, on a tiny tmpfs, `open` opens a store on a disk already full; `readers`
/// opens one on a disk with room, then fills the disk and reads from 200 threads at once
/// (each takes a slot of LMDB's reader table, across several pages of its lock file).
/// Prints what it saw. Does nothing when run as a test of its own.
#[test]
fn child_on_a_full_disk() {
    let Some(dir) = std::env::var_os("HTTPCACHE_FULL_DISK") else { return };
    let dir = std::path::PathBuf::from(dir);
    match std::env::var("HTTPCACHE_FULL_DISK_CASE").as_deref() {
        Ok("open") => {
            fill_the_disk(&dir);
            let opened = LmdbStore::open(dir.join("cache"));
            println!("opened: {}", opened.map_or_else(|error| error.to_string(), |_| "ok".to_owned()));
        }
        Ok("readers") => {
            let store = LmdbStore::open(dir.join("cache")).expect("open with room");
            let stored = entry(key(1), 0, body(1, 100));
            store.put(&stored).expect("a put with room");
            fill_the_disk(&dir);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(200));
            let readers: Vec<_> = (0..200)
                .map(|_| {
                    let (store, barrier, stored) = (store.clone(), barrier.clone(), stored.clone());
                    std::thread::spawn(move || {
                        let read = store.get(&stored.key).expect("a read");
                        barrier.wait();
                        read == [stored]
                    })
                })
                .collect();
            let all = readers.into_iter().all(|reader| reader.join().expect("a reader"));
            println!("read: {all}");
        }
        _ => {}
    }
}

/// Runs [`child_on_a_full_disk`] for `case` on a tiny tmpfs; its exit status and output.
fn on_a_full_disk(case: &str) -> Option<(std::process::ExitStatus, String)> {
    let disk = TinyDisk::mount("512k")?;
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "tests::child_on_a_full_disk", "--nocapture", "--test-threads=1"])
        .env("HTTPCACHE_FULL_DISK", disk.0.path())
        .env("HTTPCACHE_FULL_DISK_CASE", case)
        .output()
        .expect("run the child");
    Some((output.status, String::from_utf8_lossy(&output.stdout).into_owned()))
}

// LMDB writes its lock file (mutexes, reader table) through a memory map of a file it
// only sizes: on a full disk, the first write to a page no block backs is a SIGBUS.
// Opening a store on a full disk is an error, not a crash. (Runs only where a tmpfs can
// be mounted, as root.)
#[test]
fn opening_a_store_on_a_full_disk_is_an_error_not_a_crash() {
    let Some((status, output)) = on_a_full_disk("open") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    assert!(status.success(), "the child died ({status}): {output}");
    let opened = output.lines().find_map(|line| line.split_once("opened: ")).expect("the child's verdict").1;
    assert_ne!(opened, "ok", "no room for the store, yet it opened");
}

// And a store opened while the disk had room keeps reading once it is full, from threads
// that take reader slots in pages of the lock file not touched before.
#[test]
fn a_store_keeps_reading_from_new_threads_once_the_disk_is_full() {
    let Some((status, output)) = on_a_full_disk("readers") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    assert!(status.success(), "the child died ({status}): {output}");
    assert!(output.contains("read: true"), "{output}");
}
