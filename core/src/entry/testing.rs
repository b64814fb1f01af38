//! Entries for tests: a fixed [`sample_entry`] for store tests and an
//! [`arbitrary_entry`] proptest strategy for property tests.
//!
//! Available to this crate's tests and, with the `conformance` feature, to other
//! crates' tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use proptest::prelude::*;

use super::{Entry, StoredRequest, StoredResponse};
use crate::header::VariantId;
use crate::key::CacheKey;

/// The instant [`sample_entry`] was "fetched": 2023-11-14T22:13:20Z (Unix 1 700 000 000).
pub fn sample_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A plausible stored `GET https://example.com/resource` 200 response with `body`,
/// fetched at [`sample_time`] and fresh for 60 seconds (`expires` = `sample_time() + 60 s`).
/// The request has an `accept` header; the response has `content-type`,
/// `cache-control: max-age=60`, `date` and `content-length`.
///
/// ```
/// use bytes::Bytes;
/// use httpcache_core::entry::testing::sample_entry;
/// use httpcache_core::{CacheKey, Entry, VariantId};
///
/// let entry = sample_entry(CacheKey::hash("a"), VariantId(0), Bytes::from_static(b"hi"));
/// assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
/// ```
pub fn sample_entry(key: CacheKey, variant: VariantId, body: Bytes) -> Entry {
    let mut request_headers = HeaderMap::new();
    request_headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    let mut response_headers = HeaderMap::new();
    response_headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    response_headers.insert(http::header::DATE, HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT"));
    response_headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Entry {
        key,
        variant,
        request: StoredRequest {
            method: Method::GET,
            url: "https://example.com/resource".to_owned(),
            headers: request_headers,
        },
        response: StoredResponse {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: response_headers,
            body,
            final_url: None,
        },
        request_time: sample_time(),
        response_time: sample_time(),
        created: sample_time(),
        expires: Some(sample_time() + Duration::from_secs(60)),
        // `Date` is the receipt time and there is no `Age` (RFC 9111 §4.2.3).
        initial_age: Duration::ZERO,
    }
}

/// Any method: the standard ones and arbitrary extension tokens.
pub fn arbitrary_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::PATCH,
        ]),
        "[A-Z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,11}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

/// A time at or after the epoch with nanosecond precision, up to about the year 11 000
/// (past the last instant an HTTP date can show).
pub fn arbitrary_time() -> impl Strategy<Value = SystemTime> {
    (0u64..300_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| UNIX_EPOCH + Duration::new(secs, nanos))
}

/// A header map with repeated fields, standard and extension names, and values that
/// include bytes that are not UTF-8 or not visible ASCII.
pub fn arbitrary_headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        prop::sample::select(vec!["content-type", "set-cookie", "cache-control", "vary", "etag", "accept"])
            .prop_map(HeaderName::from_static),
        "[a-z][a-z0-9-]{0,15}".prop_map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap()),
    ];
    let value_byte = prop_oneof![Just(b'\t'), 0x20u8..0x7F, 0x80u8..=0xFF];
    let value = prop::collection::vec(value_byte, 0..24).prop_map(|v| HeaderValue::from_bytes(&v).unwrap());
    prop::collection::vec((name, value), 0..8).prop_map(|fields| {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(name, value);
        }
        map
    })
}

/// A body: empty, UTF-8 text, or arbitrary bytes.
pub fn arbitrary_body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        any::<String>().prop_map(Bytes::from),
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Bytes::from),
    ]
}

/// Any entry the encodings must round-trip: every field arbitrary, times at or after
/// the epoch (earlier ones are clamped by the binary format).
pub fn arbitrary_entry() -> impl Strategy<Value = Entry> {
    let request = (arbitrary_method(), any::<String>(), arbitrary_headers())
        .prop_map(|(method, url, headers)| StoredRequest { method, url, headers });
    let response = (
        100u16..1000,
        prop::sample::select(vec![
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ]),
        arbitrary_headers(),
        arbitrary_body(),
        proptest::option::of(any::<String>()),
    )
        .prop_map(|(status, version, headers, body, final_url)| StoredResponse {
            status: StatusCode::from_u16(status).unwrap(),
            version,
            headers,
            body,
            final_url,
        });
    let times = (
        arbitrary_time(),
        arbitrary_time(),
        arbitrary_time(),
        proptest::option::of(arbitrary_time()),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(secs, nanos)| Duration::new(secs, nanos)),
    );
    (any::<[u8; 32]>(), any::<u64>(), request, response, times).prop_map(
        |(key, variant, request, response, (request_time, response_time, created, expires, initial_age))| {
            Entry {
                key: CacheKey(key),
                variant: VariantId(variant),
                request,
                response,
                request_time,
                response_time,
                created,
                expires,
                initial_age,
            }
        },
    )
}
