//! A real HTTP/1.1 origin server on loopback, for adapter tests.
//!
//! [`Origin::start`] binds `127.0.0.1` on a random port and serves from a Tokio
//! runtime on its own background thread, so blocking and async tests use it alike.
//! It counts requests per route ([`Origin::hits`]), remembers the last request's
//! headers ([`Origin::last_request_headers`]), can be told to fail
//! ([`Origin::set_failing`]), and [`Origin::stop`] (or drop) closes the listener and
//! every open connection, so later requests get "connection refused".
//!
//! Every response carries a `Date` (added by hyper). A *route* is a request's path
//! without the query; a request to any route counts whatever its method.
//!
//! | route | answer |
//! |---|---|
//! | `/max-age/{n}` | 200, `Cache-Control: max-age=n`, body `max-age={n} hit {count}` |
//! | `/expires/{n}` | 200, `Expires` n seconds ahead, body `expires hit {count}` |
//! | `/no-store` | 200, `Cache-Control: no-store`, body `no-store hit {count}` |
//! | `/etag` | 200, `Cache-Control: no-cache`, `ETag: "v1"`, body `etag v1`; 304 to a matching `If-None-Match` |
//! | `/etag-changed` | 200, `Cache-Control: no-cache`, `ETag: "v{count}"`, body `etag-changed hit {count}`; to any `If-None-Match`, a 304 whose `ETag` is the next `"v{count}"`, which selects no stored response (RFC 9111 §4.3.4) |
//! | `/last-modified` | 200, `Last-Modified` (1 Jan 2024, no `Cache-Control`), body `last-modified v1`; 304 to an `If-Modified-Since` not before it |
//! | `/vary/accept` | 200, `max-age=60`, `Vary: Accept`, body `accept={value}` |
//! | `/vary/accept-language` | the same for `Accept-Language` |
//! | `/vary/authorization` | 200, `max-age=60`, `Vary: Authorization`, body `hello {user}` for `Authorization: Bearer {user}-{token}` |
//! | `/redirect/{301,302,303,307,308}/{n}` | that status, `Location` one step closer (`/redirect/{code}/{n-1}`), the last to `/redirect-target` |
//! | `/redirect-target` | 200, `max-age=60`, body `redirect target hit {count}` |
//! | `/status/{code}` | that status (200..=599), body `status {code}` |
//! | `/stale-if-error` | 200, `max-age=1, stale-if-error=600`, body `stale-if-error hit {count}`; 500 while failing |
//! | `/swr` | 200, `max-age=1, stale-while-revalidate=600`, body `swr hit {count}` |
//! | `/slow/{ms}` | waits `ms` (at most 30 s), then 200, `max-age=60`, body `slow hit {count}` |
//! | `/drop` | closes the connection without answering |
//! | `/bytes/{n}` | 200, `max-age=60`, `Content-Length: n`, [`expected_bytes`]`(n)` (n at most 64 MiB) |
//! | `/stream/{n}` | the same bytes, chunked: no `Content-Length` |
//! | `/set-cookie` | 200, `Set-Cookie: session=...`, `max-age=60`, body `cookie set` |
//! | `/echo-query` | 200, `max-age=60`, body `query names: a,b` — the parameter *names* only, so a secret sent as a value can reach a store only through the cached URL |
//! | `/blob/{n}` | as `/bytes/{n}`, but the content is made once per size and shared, so the origin's own cost is the same at every size (for benchmarks) |
//! | `/bytes-etag/{n}` | the `/blob/{n}` content, `Cache-Control: no-cache`, `ETag: "bytes-{n}"`; 304 to a matching `If-None-Match` (every use of a stored copy is a revalidation) |
//! | `/no-store-bytes/{n}` | the `/blob/{n}` content, `Cache-Control: no-store` |
//! | `/lazy/{n}` | 200, `max-age=60`, [`expected_bytes`]`(n)` made lazily chunk by chunk, chunked (no `Content-Length`), any `n` below 2^40: memory stays flat |
//! | `/lazy-length/{n}` | the same with a `Content-Length` |
//! | `/swr-stall` | the first request: 200, `max-age=1, stale-while-revalidate=600`, body `swr-stall`; later ones: the same head, then a body that stalls after 5 of its 10 bytes (as `/stall/5`) |
//! | `/swr-grow/{n}` | 200, `max-age=0, stale-while-revalidate=600`: the first request, body `small`; later ones, [`expected_bytes`]`(n)` made lazily as `/lazy/{n}` (chunked): a stale response whose background revalidation brings a body past `max_entry_bytes` |
//! | `/stall/{n}` | 200, `max-age=60`, `Content-Length: 2n`, the first n bytes of [`expected_bytes`]`(2n)`, then nothing more, ever (until the server stops): a body that stalls half-way |
//! | `/gzip` | 200, `max-age=60`, `Vary: Accept-Encoding`, `ETag: "gz"`, body [`GZIP_TEXT`]: to a request whose `Accept-Encoding` names `gzip`, gzip-coded ([`gzip`]), with `Content-Encoding: gzip` and the coded length as `Content-Length`; 304 to a matching `If-None-Match`, which says `Content-Encoding: gzip` too when the request accepts it |
//! | `/fields` | 200, `max-age=60`, body `fields`, and header fields to carry exactly: two `Set-Cookie`, two `Link`, `Vary: Accept, Accept-Language` over two lines, an obs-text value (`X-Latin1: caf\xE9`), an 8 KiB value, an empty value |
//!
//! While a route is failing (see [`Origin::set_failing`]) it answers 503 (`/stale-if-error`: 500).
//! Anything else is a 404. Request bodies are read up to 1 MiB.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

/// At most this many connections are served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 256;
/// The largest `/bytes/{n}` and `/stream/{n}` (and `/blob/{n}` and friends).
const MAX_BYTES: usize = 64 << 20;
/// The largest `/lazy/{n}` and `/lazy-length/{n}`.
const MAX_LAZY_BYTES: u64 = 1 << 40;
/// The period of [`expected_bytes`]: 36 × 36 bytes.
const PERIOD: usize = 36 * 36;
/// The chunk `/lazy/{n}` sends: a whole number of periods, about 64 KiB.
const LAZY_CHUNK: usize = PERIOD * 50;
/// The longest `/slow/{ms}` wait.
const MAX_SLOW: Duration = Duration::from_secs(30);
/// The largest request body read.
const MAX_REQUEST_BODY: usize = 1 << 20;
/// The `ETag` of `/etag`.
pub const ETAG: &str = "\"v1\"";
/// The `Last-Modified` of `/last-modified`.
pub const LAST_MODIFIED: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

/// The content of `/gzip`, before any coding.
pub const GZIP_TEXT: &str = "gzip route: the same text, decoded, every time";

/// What the origin remembers about one route.
#[derive(Debug, Default)]
struct RouteStats {
    hits: usize,
    last_headers: HeaderMap,
}

#[derive(Debug, Default)]
struct State {
    routes: Mutex<HashMap<String, RouteStats>>,
    failing: Mutex<HashSet<String>>,
    /// The content of `/blob/{n}` and friends, made once per size.
    blobs: Mutex<HashMap<usize, Bytes>>,
}

impl State {
    /// Counts a request to `route`; returns its hit number (1 for the first).
    fn record(&self, route: &str, headers: &HeaderMap) -> usize {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = routes.entry(route.to_owned()).or_default();
        stats.hits += 1;
        stats.last_headers = headers.clone();
        stats.hits
    }

    fn is_failing(&self, route: &str) -> bool {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner).contains(route)
    }

    /// [`expected_bytes`]`(n)`, made on the first call for `n` and shared after.
    fn blob(&self, n: usize) -> Bytes {
        let mut blobs = self.blobs.lock().unwrap_or_else(PoisonError::into_inner);
        blobs.entry(n).or_insert_with(|| Bytes::from(expected_bytes(n))).clone()
    }
}

/// A running origin server. See the [module docs](self) for its routes.
#[derive(Debug)]
pub struct Origin {
    addr: SocketAddr,
    state: Arc<State>,
    running: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Origin {
    /// Starts a server on `127.0.0.1` on a random port.
    ///
    /// # Panics
    /// When the loopback interface cannot be bound or a thread cannot be started
    /// (test setup failures).
    pub fn start() -> Origin {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(State::default());
        let (stop, stopped) = oneshot::channel();
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("origin-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, thread_state, stopped).await,
                        Err(error) => eprintln!("origin: {error}"),
                    }
                });
                // Dropping the runtime cancels every connection task and closes its socket.
                drop(runtime);
            })
            .expect("spawn the origin thread");
        Origin { addr, state, running: Mutex::new(Some((stop, thread))) }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The absolute URL of `path_and_query` (which starts with `/`) on this server.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// How many requests `route` (a path, without the query) received.
    pub fn hits(&self, route: &str) -> usize {
        let routes = self.state.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.get(route).map_or(0, |stats| stats.hits)
    }

    /// How many requests all routes received.
    pub fn total_hits(&self) -> usize {
        let routes = self.state.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.values().map(|stats| stats.hits).sum()
    }

    /// The headers of the last request to `route`, if it received any.
    pub fn last_request_headers(&self, route: &str) -> Option<HeaderMap> {
        let routes = self.state.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.get(route).map(|stats| stats.last_headers.clone())
    }

    /// Makes `route` answer 503 (`/stale-if-error`: 500) while `failing`.
    pub fn set_failing(&self, route: &str, failing: bool) {
        let mut set = self.state.failing.lock().unwrap_or_else(PoisonError::into_inner);
        if failing {
            set.insert(route.to_owned());
        } else {
            set.remove(route);
        }
    }

    /// Stops the server: closes the listener and every connection, and waits for the
    /// server thread. Later requests get "connection refused". Idempotent.
    pub fn stop(&self) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((stop, thread)) = running {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The accept loop: bounded by [`MAX_CONNECTIONS`], ends when `stopped` fires.
async fn serve(listener: TcpListener, state: Arc<State>, mut stopped: oneshot::Receiver<()>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue; // too many connections: this one is dropped
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// The error that makes hyper close a connection without answering (`/drop`).
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// A response body: whole (with a `Content-Length`) or in chunks (without one).
#[derive(Debug)]
pub enum OriginBody {
    /// One chunk, exact size known.
    Whole(Option<Bytes>),
    /// Several chunks, size unknown (sent chunked).
    Chunked(std::collections::VecDeque<Bytes>),
    /// `remaining` bytes of [`expected_bytes`] made lazily from one shared chunk
    /// (`/lazy/{n}`); with `exact`, the size is announced (a `Content-Length`).
    Lazy {
        /// A whole number of [`expected_bytes`] periods, sent again and again.
        chunk: Bytes,
        /// What is left to send.
        remaining: u64,
        /// Whether the size is known up front.
        exact: bool,
    },
    /// `first`, then nothing more, the body never ending: `total` bytes are announced.
    Stall {
        /// What is sent before the body stalls.
        first: Option<Bytes>,
        /// The length announced.
        total: u64,
    },
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.get_mut() {
            OriginBody::Whole(chunk) => chunk.take(),
            OriginBody::Chunked(chunks) => chunks.pop_front(),
            OriginBody::Lazy { chunk, remaining, .. } => {
                let take = usize::try_from(*remaining).map_or(chunk.len(), |left| left.min(chunk.len()));
                *remaining -= take as u64;
                (take > 0).then(|| chunk.slice(..take))
            }
            OriginBody::Stall { first, .. } => match first.take() {
                Some(first) => Some(first),
                // Never woken: the connection stays open, the body unfinished.
                None => return Poll::Pending,
            },
        };
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OriginBody::Whole(chunk) => chunk.is_none(),
            OriginBody::Chunked(chunks) => chunks.is_empty(),
            OriginBody::Lazy { remaining, .. } => *remaining == 0,
            OriginBody::Stall { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OriginBody::Whole(chunk) => SizeHint::with_exact(chunk.as_ref().map_or(0, |c| c.len() as u64)),
            OriginBody::Chunked(_) | OriginBody::Lazy { exact: false, .. } => SizeHint::default(),
            OriginBody::Lazy { remaining, exact: true, .. } => SizeHint::with_exact(*remaining),
            OriginBody::Stall { total, .. } => SizeHint::with_exact(*total),
        }
    }
}

/// `n` bytes of the deterministic content `/bytes/{n}` and `/stream/{n}` send.
pub fn expected_bytes(n: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n).map(|i| ALPHABET[(i + i / ALPHABET.len()) % ALPHABET.len()]).collect()
}

/// `data` gzip-coded (RFC 1952), in stored (uncompressed) deflate blocks: a valid
/// coding any decoder reads, made without a compression library.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let len = chunk.len() as u16;
        out.push(u8::from(chunks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn now() -> SystemTime {
    #[allow(clippy::disallowed_methods)] // the origin is a real server: it reads the wall clock
    SystemTime::now()
}

fn response(
    status: StatusCode,
    headers: &[(header::HeaderName, String)],
    body: impl Into<Bytes>,
) -> Response<OriginBody> {
    let mut response = Response::new(OriginBody::Whole(Some(body.into())));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(name.clone(), value);
        }
    }
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<OriginBody> {
    response(status, &[], body)
}

fn cache_control(value: impl Into<String>) -> (header::HeaderName, String) {
    (header::CACHE_CONTROL, value.into())
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<OriginBody>, DropConnection> {
    let (parts, body) = request.into_parts();
    let route = parts.uri.path().to_owned();
    let hit = state.record(&route, &parts.headers);
    // Read (and discard) the request body, bounded.
    let _ = Limited::new(body, MAX_REQUEST_BODY).collect().await;
    if route == "/drop" {
        return Err(DropConnection);
    }
    if state.is_failing(&route) {
        let status = if route == "/stale-if-error" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok(text(status, "failing"));
    }
    let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let number = |index: usize| segments.get(index).and_then(|s| s.parse::<u64>().ok());
    let headers = &parts.headers;
    let answer = match segments.as_slice() {
        ["max-age", _] => match number(1) {
            Some(n) => response(
                StatusCode::OK,
                &[cache_control(format!("max-age={n}"))],
                format!("max-age={n} hit {hit}"),
            ),
            None => text(StatusCode::BAD_REQUEST, "bad max-age"),
        },
        ["expires", _] => match number(1) {
            Some(n) => {
                let expires = httpdate::fmt_http_date(now() + Duration::from_secs(n.min(1 << 32)));
                response(StatusCode::OK, &[(header::EXPIRES, expires)], format!("expires hit {hit}"))
            }
            None => text(StatusCode::BAD_REQUEST, "bad expires"),
        },
        ["no-store"] => response(StatusCode::OK, &[cache_control("no-store")], format!("no-store hit {hit}")),
        ["etag"] => {
            let validators = [cache_control("no-cache"), (header::ETAG, ETAG.to_owned())];
            let matches = headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .any(|tag| matches!(tag.trim().trim_start_matches("W/"), ETAG | "*"));
            if matches {
                response(StatusCode::NOT_MODIFIED, &validators, Bytes::new())
            } else {
                response(StatusCode::OK, &validators, "etag v1")
            }
        }
        ["etag-changed"] => {
            let validators = [cache_control("no-cache"), (header::ETAG, format!("\"v{hit}\""))];
            if headers.contains_key(header::IF_NONE_MATCH) {
                response(StatusCode::NOT_MODIFIED, &validators, Bytes::new())
            } else {
                response(StatusCode::OK, &validators, format!("etag-changed hit {hit}"))
            }
        }
        ["last-modified"] => {
            let validators = [(header::LAST_MODIFIED, LAST_MODIFIED.to_owned())];
            let since = headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
            let modified = httpdate::parse_http_date(LAST_MODIFIED).ok();
            if since.is_some() && modified.is_some() && since >= modified {
                response(StatusCode::NOT_MODIFIED, &validators, Bytes::new())
            } else {
                response(StatusCode::OK, &validators, "last-modified v1")
            }
        }
        ["vary", "authorization"] => {
            // `Bearer {user}-{token}`: the body names the user, never the token.
            let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
            let user = value.strip_prefix("Bearer ").unwrap_or("").split('-').next().unwrap_or("");
            let vary = (header::VARY, "Authorization".to_owned());
            response(StatusCode::OK, &[cache_control("max-age=60"), vary], format!("hello {user}"))
        }
        ["vary", name @ ("accept" | "accept-language")] => {
            let value = headers.get(*name).and_then(|v| v.to_str().ok()).unwrap_or("");
            let vary = (header::VARY, (*name).to_owned());
            response(StatusCode::OK, &[cache_control("max-age=60"), vary], format!("{name}={value}"))
        }
        ["redirect", code, _] => {
            let status = code.parse::<u16>().ok().filter(|c| matches!(c, 301 | 302 | 303 | 307 | 308));
            match (status.and_then(|s| StatusCode::from_u16(s).ok()), number(2)) {
                (Some(status), Some(n @ 1..=20)) => {
                    let location = if n == 1 {
                        "/redirect-target".to_owned()
                    } else {
                        format!("/redirect/{code}/{}", n - 1)
                    };
                    response(status, &[(header::LOCATION, location)], Bytes::new())
                }
                _ => text(StatusCode::BAD_REQUEST, "bad redirect"),
            }
        }
        ["redirect-target"] => {
            response(StatusCode::OK, &[cache_control("max-age=60")], format!("redirect target hit {hit}"))
        }
        ["status", _] => {
            match number(1).and_then(|code| StatusCode::from_u16(u16::try_from(code).ok()?).ok()) {
                Some(status) if status.as_u16() >= 200 => text(status, format!("status {}", status.as_u16())),
                _ => text(StatusCode::BAD_REQUEST, "bad status"),
            }
        }
        ["stale-if-error"] => response(
            StatusCode::OK,
            &[cache_control("max-age=1, stale-if-error=600")],
            format!("stale-if-error hit {hit}"),
        ),
        ["swr"] => response(
            StatusCode::OK,
            &[cache_control("max-age=1, stale-while-revalidate=600")],
            format!("swr hit {hit}"),
        ),
        ["slow", _] => match number(1) {
            Some(ms) => {
                tokio::time::sleep(Duration::from_millis(ms).min(MAX_SLOW)).await;
                response(StatusCode::OK, &[cache_control("max-age=60")], format!("slow hit {hit}"))
            }
            None => text(StatusCode::BAD_REQUEST, "bad delay"),
        },
        ["bytes" | "stream", _] => {
            match number(1).and_then(|n| usize::try_from(n).ok()).filter(|n| *n <= MAX_BYTES) {
                Some(n) => {
                    let content = Bytes::from(expected_bytes(n));
                    let mut answer = response(StatusCode::OK, &[cache_control("max-age=60")], Bytes::new());
                    *answer.body_mut() = if segments[0] == "bytes" {
                        OriginBody::Whole(Some(content))
                    } else {
                        let chunks = (0..n)
                            .step_by(16 * 1024)
                            .map(|start| content.slice(start..(start + 16 * 1024).min(n)));
                        OriginBody::Chunked(chunks.collect())
                    };
                    answer
                }
                None => text(StatusCode::BAD_REQUEST, "bad size"),
            }
        }
        ["blob" | "bytes-etag" | "no-store-bytes", _] => {
            match number(1).and_then(|n| usize::try_from(n).ok()).filter(|n| *n <= MAX_BYTES) {
                Some(n) => {
                    let etag = format!("\"bytes-{n}\"");
                    let answer_headers = match segments[0] {
                        "blob" => vec![cache_control("max-age=60")],
                        "no-store-bytes" => vec![cache_control("no-store")],
                        _ => vec![cache_control("no-cache"), (header::ETAG, etag.clone())],
                    };
                    let matches = segments[0] == "bytes-etag"
                        && headers.get_all(header::IF_NONE_MATCH).iter().any(|value| value == etag.as_str());
                    if matches {
                        response(StatusCode::NOT_MODIFIED, &answer_headers, Bytes::new())
                    } else {
                        response(StatusCode::OK, &answer_headers, state.blob(n))
                    }
                }
                None => text(StatusCode::BAD_REQUEST, "bad size"),
            }
        }
        ["lazy" | "lazy-length", _] => match number(1).filter(|n| *n <= MAX_LAZY_BYTES) {
            Some(n) => {
                let chunk = state.blob(LAZY_CHUNK);
                let mut answer = response(StatusCode::OK, &[cache_control("max-age=60")], Bytes::new());
                *answer.body_mut() =
                    OriginBody::Lazy { chunk, remaining: n, exact: segments[0] == "lazy-length" };
                answer
            }
            None => text(StatusCode::BAD_REQUEST, "bad size"),
        },
        ["swr-grow", _] => match number(1).filter(|n| *n <= MAX_LAZY_BYTES) {
            Some(n) => {
                let fields = [cache_control("max-age=0, stale-while-revalidate=600")];
                let mut answer = response(StatusCode::OK, &fields, "small");
                if hit > 1 {
                    *answer.body_mut() =
                        OriginBody::Lazy { chunk: state.blob(LAZY_CHUNK), remaining: n, exact: false };
                }
                answer
            }
            None => text(StatusCode::BAD_REQUEST, "bad size"),
        },
        ["swr-stall"] => {
            let mut answer = response(
                StatusCode::OK,
                &[cache_control("max-age=1, stale-while-revalidate=600")],
                "swr-stall",
            );
            if hit > 1 {
                *answer.body_mut() =
                    OriginBody::Stall { first: Some(Bytes::from_static(b"swr-s")), total: 10 };
            }
            answer
        }
        ["stall", _] => match number(1).filter(|n| *n <= MAX_REQUEST_BODY as u64) {
            Some(n) => {
                let total = 2 * n;
                let content = Bytes::from(expected_bytes(total as usize)).slice(..n as usize);
                let mut answer = response(StatusCode::OK, &[cache_control("max-age=60")], Bytes::new());
                *answer.body_mut() = OriginBody::Stall { first: Some(content), total };
                answer
            }
            None => text(StatusCode::BAD_REQUEST, "bad size"),
        },
        ["fields"] => {
            let mut answer = response(StatusCode::OK, &[cache_control("max-age=60")], "fields");
            let fields: [(&str, &[u8]); 8] = [
                ("set-cookie", b"a=1; Path=/"),
                ("link", b"</style.css>; rel=preload"),
                ("vary", b"Accept"),
                ("set-cookie", b"b=2; Path=/; HttpOnly"),
                ("x-latin1", b"caf\xE9"),
                ("link", b"</script.js>; rel=preload"),
                ("vary", b"Accept-Language"),
                ("x-empty", b""),
            ];
            for (name, value) in fields {
                if let Ok(value) = HeaderValue::from_bytes(value) {
                    answer.headers_mut().append(name, value);
                }
            }
            if let Ok(long) = HeaderValue::from_str(&"l".repeat(8 << 10)) {
                answer.headers_mut().append("x-long", long);
            }
            answer
        }
        ["gzip"] => {
            let accepts_gzip = headers
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .any(|coding| coding.split(';').next().is_some_and(|name| name.trim() == "gzip"));
            let mut fields = vec![
                cache_control("max-age=60"),
                (header::VARY, "accept-encoding".to_owned()),
                (header::ETAG, "\"gz\"".to_owned()),
            ];
            if accepts_gzip {
                fields.push((header::CONTENT_ENCODING, "gzip".to_owned()));
            }
            if headers.get_all(header::IF_NONE_MATCH).iter().any(|value| value == "\"gz\"") {
                response(StatusCode::NOT_MODIFIED, &fields, Bytes::new())
            } else if accepts_gzip {
                response(StatusCode::OK, &fields, gzip(GZIP_TEXT.as_bytes()))
            } else {
                response(StatusCode::OK, &fields, GZIP_TEXT)
            }
        }
        ["set-cookie"] => response(
            StatusCode::OK,
            &[(header::SET_COOKIE, "session=cookie-secret; Path=/".to_owned()), cache_control("max-age=60")],
            "cookie set",
        ),
        ["echo-query"] => {
            let names: Vec<&str> = parts
                .uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| pair.split('=').next().unwrap_or(""))
                .collect();
            response(
                StatusCode::OK,
                &[cache_control("max-age=60")],
                format!("query names: {}", names.join(",")),
            )
        }
        _ => text(StatusCode::NOT_FOUND, "no such route"),
    };
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// A minimal HTTP/1.1 GET over a fresh connection; returns the raw answer.
    fn raw_get(origin: &Origin, path: &str, extra: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(origin.addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn routes_answer_and_count() {
        let origin = Origin::start();
        let answer = raw_get(&origin, "/max-age/60", "").unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("cache-control: max-age=60"), "{answer}");
        assert!(answer.ends_with("max-age=60 hit 1"), "{answer}");
        assert!(raw_get(&origin, "/max-age/60?x=1", "").unwrap().ends_with("hit 2"));
        assert_eq!(origin.hits("/max-age/60"), 2);

        let answer = raw_get(&origin, "/etag", &format!("If-None-Match: {ETAG}\r\n")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 304"), "{answer}");
        let answer =
            raw_get(&origin, "/last-modified", &format!("If-Modified-Since: {LAST_MODIFIED}\r\n")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 304"), "{answer}");
        assert!(raw_get(&origin, "/last-modified", "").unwrap().starts_with("HTTP/1.1 200"));
        assert_eq!(
            origin.last_request_headers("/last-modified").unwrap().get("host").unwrap(),
            "x",
            "the headers of the last request are remembered"
        );

        let answer = raw_get(&origin, "/redirect/302/2", "").unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 302") && answer.contains("location: /redirect/302/1"),
            "{answer}"
        );
        let answer = raw_get(&origin, "/bytes/100000", "").unwrap();
        assert!(answer.contains("content-length: 100000"), "{answer:.200}");
        let answer = raw_get(&origin, "/stream/100000", "").unwrap();
        assert!(answer.contains("transfer-encoding: chunked"), "{answer:.200}");
        let answer = raw_get(&origin, "/echo-query?a=1&api_key=secret", "").unwrap();
        assert!(answer.ends_with("query names: a,api_key") && !answer.contains("secret"), "{answer}");

        origin.set_failing("/stale-if-error", true);
        assert!(raw_get(&origin, "/stale-if-error", "").unwrap().starts_with("HTTP/1.1 500"));
        origin.set_failing("/max-age/1", true);
        assert!(raw_get(&origin, "/max-age/1", "").unwrap().starts_with("HTTP/1.1 503"));
        origin.set_failing("/max-age/1", false);
        assert!(raw_get(&origin, "/max-age/1", "").unwrap().starts_with("HTTP/1.1 200"));

        assert_eq!(raw_get(&origin, "/drop", "").unwrap(), "", "the connection closes without an answer");
        assert_eq!(origin.hits("/drop"), 1);
    }

    #[test]
    fn bench_routes_answer() {
        let origin = Origin::start();
        let body = |answer: &str| answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        let expected = String::from_utf8(expected_bytes(5000)).unwrap();

        let answer = raw_get(&origin, "/blob/5000", "").unwrap();
        assert!(answer.contains("content-length: 5000") && answer.contains("max-age=60"), "{answer:.200}");
        assert_eq!(body(&answer), expected);
        assert_eq!(body(&raw_get(&origin, "/blob/5000", "").unwrap()), expected, "the shared copy");

        let answer = raw_get(&origin, "/bytes-etag/5000", "").unwrap();
        assert!(answer.contains("etag: \"bytes-5000\"") && answer.contains("no-cache"), "{answer:.200}");
        assert_eq!(body(&answer), expected);
        let answer = raw_get(&origin, "/bytes-etag/5000", "If-None-Match: \"bytes-5000\"\r\n").unwrap();
        assert!(answer.starts_with("HTTP/1.1 304"), "{answer}");
        let answer = raw_get(&origin, "/bytes-etag/5000", "If-None-Match: \"other\"\r\n").unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");

        let answer = raw_get(&origin, "/no-store-bytes/5000", "").unwrap();
        assert!(answer.contains("no-store"), "{answer:.200}");
        assert_eq!(body(&answer), expected);

        // Lazy: several chunks and a partial one, identical to `expected_bytes`.
        let n = LAZY_CHUNK * 2 + 777;
        let answer = raw_get(&origin, &format!("/lazy-length/{n}"), "").unwrap();
        assert!(answer.contains(&format!("content-length: {n}")), "{answer:.200}");
        assert_eq!(body(&answer).into_bytes(), expected_bytes(n));
        let answer = raw_get(&origin, &format!("/lazy/{n}"), "").unwrap();
        assert!(answer.contains("transfer-encoding: chunked"), "{answer:.200}");
        let answer = raw_get(&origin, &format!("/lazy/{}", MAX_LAZY_BYTES + 1), "").unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }

    #[test]
    fn stop_refuses_connections_even_kept_alive_ones() {
        let origin = Origin::start();
        let mut kept = TcpStream::connect(origin.addr()).unwrap();
        write!(kept, "GET /no-store HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buffer = [0u8; 512];
        assert!(kept.read(&mut buffer).unwrap() > 0);
        origin.stop();
        assert!(TcpStream::connect(origin.addr()).is_err(), "the listener is closed");
        kept.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = write!(kept, "GET /no-store HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(matches!(kept.read(&mut buffer), Ok(0) | Err(_)), "kept-alive connections are closed");
        assert_eq!(origin.hits("/no-store"), 1);
    }
}
