//! One cache, three clients: an entry written through one adapter is served to the
//! others from the same store (LMDB and fs), without asking the origin again.

use std::path::Path;

use httpcache_core::{Cache, CacheStatusExt, Settings};
use httpcache_tests::origin::Origin;
use isahc::ReadResponseExt;

const ROUTE: &str = "/max-age/600";

/// One client's view of a GET: the body, and whether it came from the cache.
type Fetch<'a> = &'a dyn Fn(&str) -> (Vec<u8>, bool);

/// What each client saw: body, and whether it came from the cache.
fn via_reqwest(
    client: &httpcache_reqwest::blocking::CachedClient<impl httpcache_core::Store + 'static>,
    url: &str,
) -> (Vec<u8>, bool) {
    let response = client.get(url).send().expect("reqwest request");
    let from_cache = response.from_cache();
    (response.bytes().expect("reqwest body").to_vec(), from_cache)
}

fn via_ureq<S: httpcache_core::Store + 'static>(
    agent: &httpcache_ureq::CachedAgent<S>,
    url: &str,
) -> (Vec<u8>, bool) {
    let mut response = agent.get(url).call().expect("ureq request");
    let from_cache = response.from_cache();
    (response.body_mut().read_to_vec().expect("ureq body"), from_cache)
}

fn via_isahc<S>(client: &httpcache_isahc::CachedClient<S>, url: &str) -> (Vec<u8>, bool)
where
    S: httpcache_core::Store + httpcache_core::AsyncStore + 'static,
{
    let mut response = client.get(url).expect("isahc request");
    let from_cache = response.from_cache();
    (response.bytes().expect("isahc body"), from_cache)
}

/// Writes through `first`, then reads through the two others, checking the origin was
/// asked once and every client got the same bytes.
fn shared(origin: &Origin, path: &str, first: impl Fn(&str) -> (Vec<u8>, bool), others: [Fetch<'_>; 2]) {
    let url = origin.url(path);
    let (body, from_cache) = first(&url);
    assert!(!from_cache, "the first request is a miss");
    for other in others {
        let (again, from_cache) = other(&url);
        assert!(from_cache, "written by another adapter, served from the shared store");
        assert_eq!(again, body);
    }
    assert_eq!(origin.hits(ROUTE), 1);
}

fn lmdb_clients(
    dir: &Path,
) -> (
    httpcache_reqwest::blocking::CachedClient<httpcache_lmdb::LmdbStore>,
    httpcache_ureq::CachedAgent<httpcache_lmdb::LmdbStore>,
    httpcache_isahc::CachedClient<httpcache_isahc::LmdbStores>,
) {
    let settings = Settings::default();
    let reqwest = httpcache_reqwest::blocking::CachedClient::lmdb(dir, settings.clone()).expect("lmdb");
    let store = httpcache_lmdb::LmdbStore::open(dir).expect("lmdb");
    let ureq = httpcache_ureq::CachedAgent::new(Cache::new(store, settings.clone()));
    let isahc = httpcache_isahc::CachedClient::lmdb(dir, settings).expect("lmdb");
    (reqwest, ureq, isahc)
}

#[test]
fn lmdb_written_by_reqwest_is_served_to_ureq_and_isahc() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (reqwest, ureq, isahc) = lmdb_clients(dir.path());
    shared(
        &origin,
        ROUTE,
        |url| via_reqwest(&reqwest, url),
        [&|url| via_ureq(&ureq, url), &|url| via_isahc(&isahc, url)],
    );
}

#[test]
fn lmdb_written_by_isahc_is_served_to_reqwest_and_ureq() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (reqwest, ureq, isahc) = lmdb_clients(dir.path());
    shared(
        &origin,
        ROUTE,
        |url| via_isahc(&isahc, url),
        [&|url| via_reqwest(&reqwest, url), &|url| via_ureq(&ureq, url)],
    );
}

#[test]
fn fs_written_by_ureq_is_served_to_reqwest_and_isahc() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings::default();
    let reqwest = httpcache_reqwest::blocking::CachedClient::fs(dir.path(), settings.clone()).expect("fs");
    let store = httpcache_fs::FsStore::open(dir.path()).expect("fs");
    let ureq = httpcache_ureq::CachedAgent::new(Cache::new(store, settings.clone()));
    let isahc = httpcache_isahc::CachedClient::fs(dir.path(), settings).expect("fs");
    shared(
        &origin,
        ROUTE,
        |url| via_ureq(&ureq, url),
        [&|url| via_reqwest(&reqwest, url), &|url| via_isahc(&isahc, url)],
    );
}
