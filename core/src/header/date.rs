//! HTTP dates (RFC 9110 §5.6.7): parse IMF-fixdate, obsolete RFC 850 and asctime
//! forms; always emit IMF-fixdate with `GMT`.

use std::time::SystemTime;

use http::HeaderMap;
use http::header::HeaderName;

/// Parses an HTTP date in any of the three forms; `None` when it is not one.
pub fn parse_http_date(value: &[u8]) -> Option<SystemTime> {
    let _ = value;
    todo!("header: parse_http_date")
}

/// Formats `time` as IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
/// (sub-second parts dropped; times before 1970 print as the epoch).
pub fn format_http_date(time: SystemTime) -> String {
    let _ = time;
    todo!("header: format_http_date")
}

/// The date in header `name` (e.g. `Date`, `Last-Modified`): `None` when absent,
/// invalid, or present more than once with different values.
pub fn date_header(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let _ = (headers, name);
    todo!("header: date_header")
}

/// What `Expires` says (RFC 9111 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresValue {
    /// A valid date.
    At(SystemTime),
    /// Present but invalid (including `0`, or several lines that disagree):
    /// the response is already expired.
    Invalid,
}

/// The `Expires` header, `None` when absent.
pub fn expires(headers: &HeaderMap) -> Option<ExpiresValue> {
    let _ = headers;
    todo!("header: expires")
}
