//! # httpcache-core
//!
//! The pure heart of httpcache: RFC 9111 HTTP caching policy as a state machine
//! with no I/O. No clock, no files, no sockets: time comes in as `now`, stored
//! entries come in as data, and what to do comes out as data.
//!
//! * [`settings`]: what users configure ([`Settings`], [`RequestOptions`]).
//! * [`key`]: cache keys, URL normalisation, redaction of ignored parameters.
//! * [`header`]: tolerant parsers for the headers caching reads.
//! * [`entry`]: [`Entry`], its binary and JSON encodings.
//! * [`machine`]: [`decide`] and [`store`], the two entry points of the policy.
//! * [`store`](mod@store): the [`Store`] / [`AsyncStore`] traits.
//! * [`inventory`]: listing, filtering, sorting, deleting and copying entries.
//! * [`driver`]: the loop adapters call: key → read → decide → send → store → write.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod entry;
pub mod header;
pub mod inventory;
pub mod key;
pub mod settings;
pub mod store;

pub use entry::{DecodeError, Entry, EntryMeta, StoredRequest, StoredResponse};
pub use header::VariantId;
pub use key::{CacheKey, cache_key};
pub use settings::{Expiry, MatchHeaders, RequestOptions, Settings, StaleAllowance, UrlPattern};
pub use store::{AsyncStore, Inline, Store, StoreError};
