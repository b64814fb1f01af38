//! Shared helpers for the core's integration tests: a virtual clock, request and
//! response builders, and a store-through-the-machine helper.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, StatusCode, request, response};
use httpcache_core::machine::{Exchange, Outcome, store};
use httpcache_core::{CacheKey, Entry, RequestOptions, Settings, cache_key};

/// The virtual epoch all core tests count from: 2023-11-14T22:13:20Z.
pub const T0_SECS: u64 = 1_700_000_000;

/// `T0 + secs`.
pub fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0_SECS + secs)
}

/// An IMF-fixdate for `at(secs)`.
pub fn date(secs: u64) -> String {
    httpcache_core::header::format_http_date(at(secs))
}

/// A request head.
pub fn req(method: Method, url: &str, headers: &[(&str, &str)]) -> request::Parts {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid test request").into_parts().0
}

/// A GET request head.
pub fn get(url: &str, headers: &[(&str, &str)]) -> request::Parts {
    req(Method::GET, url, headers)
}

/// A response head.
pub fn resp(status: u16, headers: &[(&str, &str)]) -> response::Parts {
    let mut builder = http::Response::builder().status(StatusCode::from_u16(status).expect("valid status"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid test response").into_parts().0
}

/// The key of a request under `settings`.
pub fn key_of(request: &request::Parts, settings: &Settings) -> CacheKey {
    cache_key(request, &[], settings)
}

/// Runs `store` for a response received at `at(secs)` (sent at the same instant).
pub fn outcome(
    secs: u64,
    request: &request::Parts,
    response: &response::Parts,
    body: &'static [u8],
    stored: Option<&Entry>,
    settings: &Settings,
    options: &RequestOptions,
) -> Outcome {
    outcome_after(secs, 0, request, response, body, stored, settings, options)
}

/// [`outcome`] for a request sent at `at(sent)` whose response arrived `delay` seconds
/// later (the response delay of RFC 9111 §4.2.3).
#[allow(clippy::too_many_arguments)]
pub fn outcome_after(
    sent: u64,
    delay: u64,
    request: &request::Parts,
    response: &response::Parts,
    body: &'static [u8],
    stored: Option<&Entry>,
    settings: &Settings,
    options: &RequestOptions,
) -> Outcome {
    let body = Bytes::from_static(body);
    let exchange = Exchange {
        request,
        key: key_of(request, settings),
        response,
        body: &body,
        request_time: at(sent),
        response_time: at(sent + delay),
        final_url: None,
    };
    store(at(sent + delay), &exchange, stored, settings, options)
}

/// Stores a response received at `at(secs)` and returns the entry, panicking with the
/// reason if the machine refuses.
pub fn entry(
    secs: u64,
    request: &request::Parts,
    response: &response::Parts,
    body: &'static [u8],
    settings: &Settings,
) -> Entry {
    match outcome(secs, request, response, body, None, settings, &RequestOptions::default()) {
        Outcome::Store { entry, .. } => *entry,
        other => panic!("expected the response to be stored, got {other:?}"),
    }
}
