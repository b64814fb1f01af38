//! HTTP-date parsing: arbitrary bytes must parse or be rejected without panicking; a
//! parsed date must format as IMF-fixdate and parse back to the same instant; the
//! header-level helpers must agree with the value-level parser.
#![no_main]

use http::header::{DATE, EXPIRES};
use http::{HeaderMap, HeaderValue};
use httpcache_core::header::date::{ExpiresValue, date_header, expires};
use httpcache_core::header::{format_http_date, parse_http_date};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse_http_date(data);
    if let Some(time) = parsed {
        let formatted = format_http_date(time);
        assert_eq!(formatted.len(), 29, "{formatted}");
        assert!(formatted.ends_with(" GMT"));
        assert_eq!(parse_http_date(formatted.as_bytes()), Some(time), "{formatted}");
    }
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.append(DATE, value.clone());
        headers.append(EXPIRES, value);
        assert_eq!(date_header(&headers, &DATE), parsed);
        let expected = parsed.map_or(ExpiresValue::Invalid, ExpiresValue::At);
        assert_eq!(expires(&headers), Some(expected));
    }
});
