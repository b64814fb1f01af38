//! Tolerant parsers for the headers HTTP caching reads. A malformed value counts as
//! absent (or, for `Expires`, as already expired, RFC 9111 §5.3); nothing here panics.

pub mod cache_control;
pub mod date;
pub mod etag;
pub mod vary;

use std::time::Duration;

use http::HeaderMap;

pub use cache_control::{FieldScope, MaxStale, RequestDirectives, ResponseDirectives};
pub use date::{format_http_date, parse_http_date};
pub use etag::EntityTag;
pub use vary::{VariantId, Vary};

/// The largest delta-seconds a cache must represent (RFC 9111 §1.2.2): 2^31 seconds.
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// Parses delta-seconds (RFC 9111 §1.2.2): ASCII digits only; values beyond
/// [`MAX_DELTA_SECONDS`] are capped to it. Anything else is `None`.
pub fn parse_delta_seconds(value: &[u8]) -> Option<Duration> {
    let _ = value;
    todo!("header: parse_delta_seconds")
}

/// The `Age` header (RFC 9111 §5.1): the first line, when it is valid delta-seconds.
pub fn age(headers: &HeaderMap) -> Option<Duration> {
    let _ = headers;
    todo!("header: age")
}

/// Whether `Pragma` contains `no-cache` (RFC 9111 §5.4).
pub fn pragma_no_cache(headers: &HeaderMap) -> bool {
    let _ = headers;
    todo!("header: pragma_no_cache")
}

/// Removes hop-by-hop fields (RFC 9110 §7.6.1: `Connection` and the fields it names,
/// `Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`,
/// `Proxy-Authenticate`, `Proxy-Authorization`, `Trailer`) before a response is stored
/// (RFC 9111 §3.1).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let _ = headers;
    todo!("header: strip_hop_by_hop")
}
