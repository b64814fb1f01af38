//! Cache-Control (and Pragma) parsing: arbitrary bytes, split on `\n` into field
//! lines, must parse as request and response directives without panicking, and the
//! results must respect the documented invariants.
#![no_main]

use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderValue};
use httpcache_core::header::{
    FieldScope, MAX_DELTA_SECONDS, MaxStale, RequestDirectives, ResponseDirectives,
};
use libfuzzer_sys::fuzz_target;

fn assert_delta(value: Option<std::time::Duration>) {
    if let Some(value) = value {
        assert!(value.as_secs() <= MAX_DELTA_SECONDS && value.subsec_nanos() == 0);
    }
}

fn assert_scope(scope: &Option<FieldScope>) {
    if let Some(FieldScope::Fields(fields)) = scope {
        assert!(!fields.is_empty());
        for name in fields {
            assert_eq!(name.as_str(), name.as_str().to_ascii_lowercase());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(CACHE_CONTROL, value.clone());
            headers.append(PRAGMA, value);
        }
    }
    let response = ResponseDirectives::parse(&headers);
    for value in
        [response.max_age, response.s_maxage, response.stale_while_revalidate, response.stale_if_error]
    {
        assert_delta(value);
    }
    assert_scope(&response.no_cache);
    assert_scope(&response.private);

    let request = RequestDirectives::parse(&headers);
    for value in [request.max_age, request.min_fresh, request.stale_if_error] {
        assert_delta(value);
    }
    if let Some(MaxStale::AtMost(value)) = request.max_stale {
        assert_delta(Some(value));
    }

    // Pragma alone (no Cache-Control) is read as `no-cache` by the request parser.
    headers.remove(CACHE_CONTROL);
    let pragma_only = RequestDirectives::parse(&headers);
    assert_eq!(pragma_only.no_cache, httpcache_core::header::pragma_no_cache(&headers));
});
