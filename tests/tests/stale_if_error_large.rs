//! Stale-if-error when the origin's error page is larger than `max_entry_bytes`, through
//! every adapter: the stored response is served, as it is for a small error page.
//!
//! RFC 5861 §4: when stale-if-error allows, a cache may serve the stale stored response
//! in place of a 500, 502, 503 or 504. The error's body is never stored, so its size has
//! nothing to do with that choice; an adapter that gave up buffering a large error page
//! once passed the error through instead. The origin answers from a raw socket: the
//! first connection a storable 200 that is stale at once, every later one a 500 whose
//! page is `PAGE` bytes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use httpcache_core::{Cache, CacheStatus, Reason, Settings};
use httpcache_mem::MemoryStore;

/// The entry limit, and the error pages' sizes: one under it, one over it.
const LIMIT: u64 = 10_000;
const PAGES: [usize; 2] = [2_000, 20_000];

/// Starts the origin for a `page`-byte error page; returns its URL and its request count.
fn origin(page: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/page", listener.local_addr().expect("address"));
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let (status, extra, body) = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                ("200 OK", "Cache-Control: max-age=0, stale-if-error=600\r\n", b"good".to_vec())
            } else {
                ("500 Internal Server Error", "Content-Type: text/html\r\n", vec![b'x'; page])
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    (url, count)
}

fn settings() -> Settings {
    Settings { max_entry_bytes: LIMIT, ..Settings::default() }
}

fn memory() -> Cache<MemoryStore> {
    Cache::new(MemoryStore::new(16 << 20), settings())
}

/// What each adapter's second response was: status, body, and the cache's reason.
fn assert_stale(adapter: &str, page: usize, status: u16, body: &str, cache_status: Option<&CacheStatus>) {
    let reason = cache_status.map(|status| status.reason);
    assert_eq!(
        (status, body, reason),
        (200, "good", Some(Reason::StaleIfError)),
        "{adapter}, {page}-byte page"
    );
}

#[test]
fn reqwest_serves_stale_for_an_error_page_of_any_size() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for page in PAGES {
        let (url, count) = origin(page);
        let client = httpcache_reqwest::CachedClient::memory(settings(), 16 << 20);
        let (status, body, cache_status) = runtime.block_on(async {
            let first = client.get(&url).send().await.expect("first").text().await.expect("body");
            assert_eq!(first, "good");
            let second = client.get(&url).send().await.expect("second");
            let cache_status = second.extensions().get::<CacheStatus>().cloned();
            (second.status().as_u16(), second.text().await.expect("body"), cache_status)
        });
        assert_stale("reqwest", page, status, &body, cache_status.as_ref());
        assert_eq!(count.load(Ordering::SeqCst), 2, "the 500 was asked for");
    }
}

#[test]
fn reqwest_blocking_serves_stale_for_an_error_page_of_any_size() {
    for page in PAGES {
        let (url, _) = origin(page);
        let client = httpcache_reqwest::blocking::CachedClient::memory(settings(), 16 << 20).expect("client");
        assert_eq!(client.get(&url).send().and_then(|r| r.text()).expect("first"), "good");
        let second = client.get(&url).send().expect("second");
        let cache_status = second.extensions().get::<CacheStatus>().cloned();
        let status = second.status().as_u16();
        assert_stale("reqwest blocking", page, status, &second.text().expect("body"), cache_status.as_ref());
    }
}

#[test]
fn ureq_serves_stale_for_an_error_page_of_any_size() {
    for page in PAGES {
        let (url, _) = origin(page);
        let agent = httpcache_ureq::CachedAgent::with_config(memory(), |config| {
            config.timeout_global(Some(Duration::from_secs(30))).http_status_as_error(false)
        });
        let mut first = agent.get(&url).call().expect("first");
        assert_eq!(first.body_mut().read_to_string().expect("body"), "good");
        let mut second = agent.get(&url).call().expect("second");
        let cache_status = second.extensions().get::<CacheStatus>().cloned();
        let status = second.status().as_u16();
        let body = second.body_mut().read_to_string().expect("body");
        assert_stale("ureq", page, status, &body, cache_status.as_ref());
    }
}

#[test]
fn isahc_serves_stale_for_an_error_page_of_any_size() {
    for page in PAGES {
        let (url, _) = origin(page);
        let client = httpcache_isahc::CachedClient::memory(settings(), 16 << 20).expect("client");
        let mut first = client.get(url.as_str()).expect("first");
        let mut body = String::new();
        first.body_mut().read_to_string(&mut body).expect("body");
        assert_eq!(body, "good");
        let mut second = client.get(url.as_str()).expect("second");
        let cache_status = second.extensions().get::<CacheStatus>().cloned();
        let mut body = String::new();
        second.body_mut().read_to_string(&mut body).expect("body");
        assert_stale("isahc", page, second.status().as_u16(), &body, cache_status.as_ref());
    }
}

#[test]
fn isahc_async_serves_stale_for_an_error_page_of_any_size() {
    use futures_lite::AsyncReadExt;
    for page in PAGES {
        let (url, _) = origin(page);
        let client = httpcache_isahc::CachedClient::memory(settings(), 16 << 20).expect("client");
        futures_lite::future::block_on(async {
            let mut first = client.get_async(url.as_str()).await.expect("first");
            let mut body = String::new();
            first.body_mut().read_to_string(&mut body).await.expect("body");
            assert_eq!(body, "good");
            let mut second = client.get_async(url.as_str()).await.expect("second");
            let cache_status = second.extensions().get::<CacheStatus>().cloned();
            let mut body = String::new();
            second.body_mut().read_to_string(&mut body).await.expect("body");
            assert_stale("isahc async", page, second.status().as_u16(), &body, cache_status.as_ref());
        });
    }
}
