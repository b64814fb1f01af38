//! What the adapters log never holds an ignored parameter's value (an API key): the
//! "origin failed; serving stale" event of ureq and isahc logs the URL as it is stored,
//! redacted, as the core's own events do.
//!
//! The origin answers its first connection with a response that is stale at once and
//! may be served stale on error (RFC 5861 §4), then stops listening: the second request
//! fails to connect, and the stored response is served in its place.

use std::fmt::{Debug, Write as _};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpcache_core::{Cache, Settings};
use httpcache_mem::MemoryStore;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const SECRET: &str = "s3cr3t-key-value";

/// Every event's fields, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

impl Capture {
    fn text(&self) -> String {
        self.0.lock().map(|text| text.clone()).unwrap_or_default()
    }
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if let Ok(mut text) = self.0.lock() {
            event.record(&mut Fields(&mut text));
            text.push('\n');
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// An origin that answers one request, then refuses connections; its URL carries the key.
fn one_shot_origin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/data?api_key={SECRET}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let response = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\
                            Cache-Control: max-age=0, stale-if-error=600\r\n\r\ngood";
            let _ = stream.write_all(response.as_bytes());
        }
        // The listener is dropped here: later connections are refused.
    });
    url
}

fn memory() -> Cache<MemoryStore> {
    Cache::new(MemoryStore::new(16 << 20), Settings::default())
}

/// The captured log of `run`, checked to hold the stale-serving event and no secret.
fn assert_redacted(adapter: &str, run: impl FnOnce() -> String) {
    let capture = Capture::default();
    let body = tracing::subscriber::with_default(capture.clone(), run);
    assert_eq!(body, "good", "{adapter}: the stale response was served");
    let log = capture.text();
    assert!(log.contains("origin failed; serving stale"), "{adapter}: the event was logged:\n{log}");
    assert!(!log.contains(SECRET), "{adapter}: the log holds the API key:\n{log}");
    assert!(log.contains("api_key=REDACTED"), "{adapter}: the URL is logged redacted:\n{log}");
}

#[test]
fn ureq_logs_the_failed_origin_without_the_api_key() {
    let url = one_shot_origin();
    let agent = httpcache_ureq::CachedAgent::with_config(memory(), |config| {
        config.timeout_global(Some(Duration::from_secs(30)))
    });
    assert_eq!(agent.get(&url).call().expect("first").body_mut().read_to_string().expect("body"), "good");
    assert_redacted("ureq", || {
        agent.get(&url).call().expect("stale").body_mut().read_to_string().expect("body")
    });
}

#[test]
fn isahc_logs_the_failed_origin_without_the_api_key() {
    let url = one_shot_origin();
    let client = httpcache_isahc::CachedClient::memory(Settings::default(), 16 << 20).expect("client");
    let mut body = String::new();
    client.get(url.as_str()).expect("first").body_mut().read_to_string(&mut body).expect("body");
    assert_eq!(body, "good");
    assert_redacted("isahc", || {
        let mut body = String::new();
        client.get(url.as_str()).expect("stale").body_mut().read_to_string(&mut body).expect("body");
        body
    });
}

#[test]
fn isahc_async_logs_the_failed_origin_without_the_api_key() {
    use futures_lite::AsyncReadExt;
    let url = one_shot_origin();
    let client = httpcache_isahc::CachedClient::memory(Settings::default(), 16 << 20).expect("client");
    let mut body = String::new();
    client.get(url.as_str()).expect("first").body_mut().read_to_string(&mut body).expect("body");
    assert_eq!(body, "good");
    assert_redacted("isahc async", || {
        futures_lite::future::block_on(async {
            let mut response = client.get_async(url.as_str()).await.expect("stale");
            let mut body = String::new();
            response.body_mut().read_to_string(&mut body).await.expect("body");
            body
        })
    });
}
