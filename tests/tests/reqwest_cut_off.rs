//! A body the origin cuts off, through the reqwest adapter's clients: an error for the
//! caller, as it is for plain reqwest, and nothing stored.
//!
//! RFC 9112 §8: a body shorter than its `Content-Length`, or a chunked body without its
//! last (zero-sized) chunk, is incomplete; plain reqwest reports it as an error when the
//! body is read. RFC 9111 §3.3: a cache must not use an incomplete response as if it
//! were complete; this one stores none. The local origin (`httpcache_tests::origin`) is
//! a well-behaved hyper server, so these tests answer from a raw socket.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use httpcache_core::{CacheStatus, Reason, Settings};

/// Announces 100 bytes of body, sends 50, and closes.
const SHORT_CONTENT_LENGTH: &str = "/short-content-length";
/// Sends one chunk of a chunked body, and closes without the last chunk.
const UNTERMINATED_CHUNKED: &str = "/unterminated-chunked";

/// A raw HTTP/1.1 origin that cuts its bodies off: each connection gets one answer,
/// then is closed. Both answers would be fresh for ten minutes, were they complete.
struct CuttingOrigin {
    url: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl CuttingOrigin {
    fn start() -> CuttingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counted = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counted = counted.clone();
                std::thread::spawn(move || answer(stream, &counted));
            }
        });
        CuttingOrigin { url, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// How many requests `path` received.
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap_or_else(PoisonError::into_inner).get(path).copied().unwrap_or(0)
    }
}

/// Reads one request head from `stream`, counts it, answers with a cut-off body, closes.
fn answer(mut stream: std::net::TcpStream, hits: &Mutex<HashMap<String, usize>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let fresh = "Cache-Control: max-age=600\r\nConnection: close\r\n";
    let answer = match path.as_str() {
        SHORT_CONTENT_LENGTH => {
            format!("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n{fresh}\r\n{}", "a".repeat(50))
        }
        UNTERMINATED_CHUNKED => {
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{fresh}\r\n5\r\nhello\r\n")
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    };
    *hits.lock().unwrap_or_else(PoisonError::into_inner).entry(path).or_default() += 1;
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// What the origin sends of each cut-off body before closing.
fn prefix(path: &str) -> &'static [u8] {
    match path {
        SHORT_CONTENT_LENGTH => &[b'a'; 50],
        _ => b"hello",
    }
}

/// Plain `reqwest::blocking` reports a cut-off body as an error when it is read; so does
/// the blocking cached client, both through `bytes()` and through `Read` (whose
/// reqwest reader ends the body after giving an error once, so an error the cache met
/// must reach the caller in its own body). The caller gets what came first, the
/// response says the origin failed (in its `CacheStatus` extension and in its
/// `Cache-Status` field alike, RFC 9211 §2), and nothing is stored: the next request
/// goes to the origin again.
#[test]
fn the_blocking_client_reports_a_cut_off_body() {
    let origin = CuttingOrigin::start();
    let client = httpcache_reqwest::blocking::CachedClient::memory(Settings::default(), 1 << 20)
        .expect("blocking client");
    for path in [SHORT_CONTENT_LENGTH, UNTERMINATED_CHUNKED] {
        let url = origin.url(path);
        let plain = reqwest::blocking::get(&url).and_then(|response| response.bytes());
        assert!(plain.is_err(), "{path}: plain reqwest: {plain:?}");

        let response = client.get(&url).send().expect("the head arrived whole");
        assert_eq!(response.status(), 200, "{path}");
        let status = response.extensions().get::<CacheStatus>().expect("the verdict");
        assert_eq!((status.reason, status.stored), (Reason::OriginError, false), "{path}");
        let field = response.headers().get("cache-status").map(|value| value.as_bytes().to_vec());
        assert_eq!(field.as_deref(), Some(&b"httpcache; fwd=miss; detail=origin-error"[..]), "{path}");
        let bytes = response.bytes();
        assert!(bytes.is_err(), "{path}: bytes() of the cached response: {bytes:?}");

        let mut response = client.get(&url).send().expect("the head arrived whole");
        let mut body = Vec::new();
        let read = response.read_to_end(&mut body);
        assert!(read.is_err(), "{path}: read_to_end of the cached response: {read:?}");
        assert_eq!(body, prefix(path), "{path}: what came before the error");
        assert_eq!(origin.hits(path), 3, "{path}: plain, then twice through the cache (nothing stored)");
    }
}

/// A body that grows past `max_entry_bytes` is passed on as the buffered prefix, then the
/// rest as it is read from the origin (not stored); when the origin cuts that rest off,
/// the caller meets the error too.
#[test]
fn the_blocking_client_reports_a_body_cut_off_past_max_entry_bytes() {
    let origin = CuttingOrigin::start();
    let settings = Settings { max_entry_bytes: 3, ..Settings::default() };
    let client = httpcache_reqwest::blocking::CachedClient::memory(settings, 1 << 20).expect("client");
    let url = origin.url(UNTERMINATED_CHUNKED);
    let mut response = client.get(&url).send().expect("the head arrived whole");
    let mut body = Vec::new();
    let read = response.read_to_end(&mut body);
    assert!(read.is_err(), "read_to_end: {read:?}");
    assert_eq!(body, b"hello", "the prefix past the limit, before the error");
    assert!(client.get(&url).send().and_then(|response| response.bytes()).is_err());
    assert_eq!(origin.hits(UNTERMINATED_CHUNKED), 2, "nothing stored");
}

/// The async client, for comparison: its error comes from `send` or from the body, and
/// nothing is stored either.
#[test]
fn the_async_client_reports_a_cut_off_body() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let origin = CuttingOrigin::start();
    let client = httpcache_reqwest::CachedClient::memory(Settings::default(), 1 << 20);
    for path in [SHORT_CONTENT_LENGTH, UNTERMINATED_CHUNKED] {
        for _ in 0..2 {
            let body = runtime.block_on(async {
                let response = client.get(origin.url(path)).send().await?;
                response.bytes().await
            });
            assert!(body.is_err(), "{path}: {body:?}");
        }
        assert_eq!(origin.hits(path), 2, "{path}: nothing stored");
    }
}

/// The isahc adapter too, blocking and async: a cut-off body is an error (isahc reports
/// the failed transfer at the end of the body), and nothing is stored.
#[test]
fn the_isahc_clients_report_a_cut_off_body() {
    use futures_lite::AsyncReadExt;
    let origin = CuttingOrigin::start();
    let client = httpcache_isahc::CachedClient::memory(Settings::default(), 1 << 20).expect("isahc");
    for path in [SHORT_CONTENT_LENGTH, UNTERMINATED_CHUNKED] {
        let url = origin.url(path);
        for _ in 0..2 {
            let blocking = client.get(url.as_str()).and_then(|mut response| {
                let mut body = Vec::new();
                std::io::Read::read_to_end(response.body_mut(), &mut body)?;
                Ok(body)
            });
            assert!(blocking.is_err(), "{path}: blocking: {blocking:?}");
            let asynchronous = futures_lite::future::block_on(async {
                let mut response = client.get_async(url.as_str()).await?;
                let mut body = Vec::new();
                response.body_mut().read_to_end(&mut body).await?;
                Ok::<_, isahc::Error>(body)
            });
            assert!(asynchronous.is_err(), "{path}: async: {asynchronous:?}");
        }
        assert_eq!(origin.hits(path), 4, "{path}: nothing stored");
    }
}

/// The ureq adapter too: a cut-off body is an error, as it is for plain ureq, and
/// nothing is stored (RFC 9111 §3.3).
#[test]
fn the_ureq_agent_reports_a_cut_off_body() {
    let origin = CuttingOrigin::start();
    let cache = httpcache_core::Cache::new(httpcache_mem::MemoryStore::new(1 << 20), Settings::default());
    let agent = httpcache_ureq::CachedAgent::new(cache);
    for path in [SHORT_CONTENT_LENGTH, UNTERMINATED_CHUNKED] {
        let url = origin.url(path);
        let plain = ureq::get(&url).call().and_then(|mut response| response.body_mut().read_to_vec());
        assert!(plain.is_err(), "{path}: plain ureq: {plain:?}");
        for _ in 0..2 {
            let cached = agent.get(&url).call().and_then(|mut response| response.body_mut().read_to_vec());
            assert!(cached.is_err(), "{path}: {cached:?}");
        }
        assert_eq!(origin.hits(path), 3, "{path}: plain, then twice through the cache (nothing stored)");
    }
}
