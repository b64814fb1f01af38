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

/// The header fields of `response`, but those a cache adds to a hit (`Age`,
/// `Cache-Status`), as (name, value bytes) in order.
fn fields_of(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| *name != "age" && *name != "cache-status")
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// RFC 9111 §3.1, §4 (a stored response is served with its header fields as received,
/// but hop-by-hop ones), RFC 9110 §5.2, §5.3 (repeated fields kept in order), §5.5
/// (obs-text and empty values): through every adapter and the binary (fs) and LMDB
/// encodings, a hit carries exactly the fields of the miss that stored it.
#[test]
fn a_hit_carries_the_fields_of_its_miss_byte_for_byte() {
    let origin = Origin::start();
    let url = origin.url("/fields");
    let check = |name: &str, miss: (Vec<(String, Vec<u8>)>, bool), hit: (Vec<(String, Vec<u8>)>, bool)| {
        assert!(!miss.1 && hit.1, "{name}: a miss, then a hit");
        assert_eq!(hit.0, miss.0, "{name}");
        let values = |field: &str| miss.0.iter().filter(|(n, _)| n == field).count();
        assert_eq!((values("set-cookie"), values("link"), values("vary")), (2, 2, 2), "{name}: {:?}", miss.0);
        assert!(miss.0.iter().any(|(n, v)| n == "x-latin1" && v == b"caf\xE9"), "{name}");
        assert!(miss.0.iter().any(|(n, v)| n == "x-empty" && v.is_empty()), "{name}");
        assert!(miss.0.iter().any(|(n, v)| n == "x-long" && v.len() == 8 << 10), "{name}");
    };
    // Each adapter over its own LMDB store, and reqwest over an fs store too.
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let (reqwest, _, _) = lmdb_clients(dirs[0].path());
    let (_, ureq, _) = lmdb_clients(dirs[1].path());
    let (_, _, isahc) = lmdb_clients(dirs[2].path());
    let reqwest_fs =
        httpcache_reqwest::blocking::CachedClient::fs(dirs[3].path(), Settings::default()).expect("fs");
    let via_reqwest =
        |response: reqwest::blocking::Response| (fields_of(response.headers()), response.from_cache());
    let lmdb = || via_reqwest(reqwest.get(&url).send().expect("reqwest request"));
    check("reqwest lmdb", lmdb(), lmdb());
    let fs = || via_reqwest(reqwest_fs.get(&url).send().expect("reqwest request"));
    check("reqwest fs", fs(), fs());
    let via_ureq = || {
        let response = ureq.get(&url).call().expect("ureq request");
        (fields_of(response.headers()), response.from_cache())
    };
    check("ureq lmdb", via_ureq(), via_ureq());
    let via_isahc = || {
        let response = isahc.get(url.as_str()).expect("isahc request");
        (fields_of(response.headers()), response.from_cache())
    };
    check("isahc lmdb", via_isahc(), via_isahc());
}
