//! # httpcache-core
//!
//! The pure heart of httpcache: RFC 9111 HTTP caching policy as a state machine
//! with no I/O. No clock, no files, no sockets: time comes in as `now`, stored
//! entries come in as data, and what to do comes out as data.
//!
//! * [`settings`]: what users configure ([`Settings`], [`RequestOptions`]).
//! * [`key`]: cache keys, URL normalisation, redaction of ignored parameters.
//! * [`header`]: tolerant parsers for the headers caching reads.
//! * [`freshness`]: age and freshness arithmetic (RFC 9111 §4.2).
//! * [`entry`]: [`Entry`], its binary and JSON encodings.
//! * [`machine`]: [`decide`] and [`store()`], the two entry points of the policy.
//! * [`mod@store`]: the [`Store`] / [`AsyncStore`] traits, and [`DualStore`] (one
//!   store with both faces).
//! * [`inventory`]: listing, filtering, sorting, deleting and copying entries.
//! * [`driver`]: [`Cache`], the loop adapters call.
//! * [`status`]: [`CacheStatus`], the RFC 9211 `Cache-Status` header, and
//!   [`CacheStatusExt`] to read them from a response.
//! * [`options`]: [`CacheRequestExt`], the per-request controls on request builders.
//!
//! ## The driver contract
//!
//! Every driver runs this loop; [`Cache`] runs it for you over a [`Store`] or an
//! [`AsyncStore`]. **The machine never fails and never reads a clock**: the driver
//! reads the clock, records when the request left (`request_time`) and when the
//! response arrived (`response_time`, RFC 9111 §4.2.3), and performs the verbs.
//! **A storage error never fails a request.**
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::{Duration, SystemTime};
//! use bytes::Bytes;
//! use httpcache_core::machine::{Action, Exchange, Outcome, decide, store};
//! use httpcache_core::{CacheKey, Entry, RequestOptions, Settings, cache_key};
//!
//! // The "store": variants by key. The origin: always 200, fresh for a minute.
//! let mut storage: HashMap<CacheKey, Vec<Entry>> = HashMap::new();
//! let origin = |_: &http::request::Parts| {
//!     http::Response::builder().header("cache-control", "max-age=60").body(()).unwrap().into_parts().0
//! };
//! let settings = Settings::default();
//! let options = RequestOptions::default();
//! let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let (request, ()) = http::Request::get("https://example.com/").body(()).unwrap().into_parts();
//!
//! let mut origin_calls = 0;
//! for now in [t0, t0 + Duration::from_secs(30)] {
//!     // 1. key, 2. read
//!     let key = cache_key(&request, &[], &settings);
//!     let variants = storage.get(&key).cloned().unwrap_or_default();
//!     // 3. decide
//!     let stored = match decide(now, &request, &variants, &settings, &options) {
//!         Action::Serve(serve) => {
//!             assert_eq!(serve.age, Duration::from_secs(30)); // becomes the Age header
//!             continue;
//!         }
//!         Action::GatewayTimeout(_) => continue, // answer 504
//!         Action::PassThrough(_) => { origin(&request); continue; }
//!         Action::Revalidate(revalidate) => Some(variants[revalidate.index].clone()),
//!         Action::Fetch(_) => None,
//!     };
//!     // 4. send (when revalidating, with `revalidate.conditional.add_to(headers)`)
//!     let (request_time, response) = (now, origin(&request));
//!     origin_calls += 1;
//!     // 5. store
//!     let body = Bytes::from_static(b"hello");
//!     let exchange = Exchange {
//!         request: &request, key, response: &response, body: &body,
//!         request_time, response_time: now, final_url: None,
//!     };
//!     // 6. write
//!     match store(now, &exchange, stored.as_ref(), &settings, &options) {
//!         Outcome::Store { entry, invalidate, .. } => {
//!             invalidate.iter().for_each(|key| drop(storage.remove(key)));
//!             storage.entry(entry.key).or_default().push(*entry);
//!         }
//!         // Serve the freshened entry; when `persist`, write it back with
//!         // `Store::refresh` (its body is already stored).
//!         Outcome::Refresh { .. } => {}
//!         Outcome::ServeStale { .. } => { /* serve the stored entry */ }
//!         Outcome::Invalidate { keys, .. } => keys.iter().for_each(|key| drop(storage.remove(key))),
//!         Outcome::Retry(_) => { /* send again without conditional headers */ }
//!         Outcome::Skip(_) => { /* return the origin's response as it is */ }
//!     }
//! }
//! assert_eq!(origin_calls, 1);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod behind;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod driver;
pub mod entry;
pub mod freshness;
pub mod header;
pub mod inventory;
pub mod key;
pub mod machine;
pub mod options;
pub mod settings;
pub mod status;
pub mod store;

pub use behind::{Queued, Settled, WriteBehind};
pub use driver::{Cache, Completion, Forward, PendingPlan, Plan, Revalidating};
pub use entry::{DecodeError, Entry, EntryMeta, StoredRequest, StoredResponse};
pub use header::VariantId;
pub use key::{CacheKey, cache_key};
pub use machine::{Action, Conditional, Outcome, Reason, decide, store};
pub use options::CacheRequestExt;
pub use settings::{Expiry, MatchHeaders, RequestOptions, Settings, StaleAllowance, UrlPattern};
pub use status::{CacheStatus, CacheStatusExt};
pub use store::{AsyncStore, DualStore, Inline, Store, StoreError, Variants};
