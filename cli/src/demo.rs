//! `httpcache demo`: a miss, a hit, a revalidation and a stale-if-error answer against
//! a small origin on 127.0.0.1, through the same client and store `get` uses.
//! No network, no sleeping: per-request options force the revalidations.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use httpcache_core::{Expiry, RequestOptions, Settings};
use httpcache_reqwest::{CacheRequestExt, CacheStatusExt};

use crate::clock;
use crate::error::{CliError, chain};
use crate::fetch::{client_from, label};
use crate::format::{self, Align};
use crate::store::{self, Access, Location, StoreKind};

/// The origin's one route.
const PATH: &str = "/demo";
/// Its validator.
const ETAG: &str = "\"demo-v1\"";
/// Its freshness: a minute, and usable for ten minutes after that if the origin fails.
const CACHE_CONTROL: &str = "max-age=60, stale-if-error=600";
/// Its body.
const BODY: &str = "Hello from the demo origin.\n";
/// The largest request head the origin reads.
const MAX_HEAD: usize = 16 * 1024;

/// A tiny HTTP/1.1 origin: one request per connection, answered on one thread.
struct DemoOrigin {
    addr: SocketAddr,
    failing: Arc<AtomicBool>,
    /// The status of every answer, in order.
    answers: Arc<Mutex<Vec<u16>>>,
}

impl DemoOrigin {
    fn start() -> io::Result<DemoOrigin> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let failing = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (thread_failing, thread_answers) = (failing.clone(), answers.clone());
        // Detached: it ends with the process, right after the demo.
        std::thread::Builder::new().name("httpcache-demo-origin".into()).spawn(move || {
            for stream in listener.incoming().flatten() {
                // The answer is recorded before it is sent: once the client has it, the
                // demo's table finds it in the log (recorded after, it could miss it).
                let record =
                    |status| thread_answers.lock().unwrap_or_else(PoisonError::into_inner).push(status);
                let _ = answer(stream, thread_failing.load(Ordering::SeqCst), record);
            }
        })?;
        Ok(DemoOrigin { addr, failing, answers })
    }

    fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    fn answered(&self) -> usize {
        self.answers.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn answers_since(&self, start: usize) -> Vec<u16> {
        self.answers.lock().unwrap_or_else(PoisonError::into_inner).get(start..).unwrap_or_default().to_vec()
    }
}

/// Reads one request head and answers it: 503 while failing, 304 to a matching
/// `If-None-Match`, else 200. The status goes to `record` before the answer is sent.
fn answer(mut stream: TcpStream, failing: bool, record: impl FnOnce(u16)) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut chunk = [0; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let head = String::from_utf8_lossy(&head);
    let matches = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("if-none-match"))
        .flat_map(|(_, value)| value.split(','))
        .any(|tag| tag.trim() == ETAG || tag.trim() == "*");
    let (status, reason, body, cached) = if failing {
        (503, "Service Unavailable", "the origin is failing\n", false)
    } else if matches {
        (304, "Not Modified", "", true)
    } else {
        (200, "OK", BODY, true)
    };
    let mut response = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    if cached {
        response.push_str(&format!("Cache-Control: {CACHE_CONTROL}\r\nETag: {ETAG}\r\n"));
    }
    if status != 304 {
        response.push_str(&format!("Content-Type: text/plain\r\nContent-Length: {}\r\n", body.len()));
    }
    response.push_str("\r\n");
    response.push_str(body);
    record(status);
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// One request of the demo.
struct Step {
    request: &'static str,
    options: RequestOptions,
    failing: bool,
    expected: &'static str,
}

/// `httpcache demo`, on a store of `kind` in a temporary directory.
pub fn run(kind: StoreKind) -> Result<(), CliError> {
    let dir = tempfile::tempdir()
        .map_err(|error| CliError::Store(format!("creating a temporary directory: {error}")))?;
    let location = Location { kind, path: dir.path().join("cache") };
    let origin = DemoOrigin::start()
        .map_err(|error| CliError::Http(format!("starting the demo origin on 127.0.0.1: {error}")))?;
    // Straight to the origin on loopback: a proxy the environment names (`HTTP_PROXY`,
    // `ALL_PROXY`...) would take the demo's requests to the network, or fail them.
    let builder = reqwest::blocking::Client::builder().no_proxy();
    let client = client_from(builder, store::open(&location, Access::Write)?, Settings::default())?;
    let url = origin.url();

    let mut out = String::new();
    let _ = writeln!(out, "httpcache demo: no network. A local origin serves {url}");
    let _ = writeln!(
        out,
        "  with Cache-Control: {CACHE_CONTROL} and ETag: {ETAG} (304 to a matching If-None-Match)."
    );
    let _ = writeln!(out, "  The cache is {location} (deleted afterwards).");
    out.push('\n');

    let steps = [
        Step { request: "GET", options: RequestOptions::default(), failing: false, expected: "MISS" },
        Step { request: "GET again", options: RequestOptions::default(), failing: false, expected: "HIT" },
        Step {
            request: "GET --refresh",
            options: RequestOptions { refresh: true, ..RequestOptions::default() },
            failing: false,
            expected: "REVALIDATED",
        },
        Step {
            request: "GET --expire-after 0, origin failing",
            options: RequestOptions { expire_after: Some(Expiry::Immediately), ..RequestOptions::default() },
            failing: true,
            expected: "STALE",
        },
    ];
    let mut rows = Vec::new();
    let mut unexpected = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        origin.failing.store(step.failing, Ordering::SeqCst);
        let before = origin.answered();
        let started = clock::stopwatch();
        let response = client
            .get(url.as_str())
            .cache_options(step.options)
            .send()
            .map_err(|error| CliError::Http(chain(&error)))?;
        let (http, status) = (response.status(), response.cache_status().cloned());
        response.bytes().map_err(|error| CliError::Http(chain(&error)))?;
        let elapsed = started.elapsed();
        let answers = origin.answers_since(before);
        let said = if answers.is_empty() {
            "-".to_owned()
        } else {
            answers.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
        };
        let label = label(status.as_ref());
        if label != step.expected {
            unexpected.push(format!("step {} was {label}, expected {}", index + 1, step.expected));
        }
        rows.push(vec![
            (index + 1).to_string(),
            step.request.to_owned(),
            said,
            label.to_owned(),
            http.as_u16().to_string(),
            format::elapsed(elapsed),
            status.map_or_else(|| "-".to_owned(), |status| status.reason.to_string()),
        ]);
    }
    let headers = [
        ("#", Align::Right),
        ("REQUEST", Align::Left),
        ("ORIGIN", Align::Left),
        ("CACHE", Align::Left),
        ("STATUS", Align::Left),
        ("TIME", Align::Right),
        ("REASON", Align::Left),
    ];
    let _ = write!(out, "{}", format::table(&headers, &rows));
    out.push('\n');
    let _ = writeln!(
        out,
        "{} responses, {} of them from the origin with a body; the rest came from the cache.",
        steps.len(),
        origin.answers_since(0).iter().filter(|status| **status == 200).count()
    );
    let _ = writeln!(out, "Try it on a URL of yours: httpcache get URL, then httpcache ls.");
    crate::emit(&out)?;
    if unexpected.is_empty() {
        Ok(())
    } else {
        Err(CliError::Http(format!("the demo did not go as expected: {}", unexpected.join("; "))))
    }
}
