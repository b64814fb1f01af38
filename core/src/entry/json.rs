//! The JSON encoding, for caches a human wants to read. Text bodies are stored as
//! strings, others as base64; times as Unix nanoseconds plus an HTTP date for reading.
//!
//! ```json
//! {
//!   "format": "httpcache-entry",
//!   "version": 1,
//!   "key": "<64 hex digits>",
//!   "variant": 0,
//!   "request": { "method": "GET", "url": "https://example.com/", "headers": [["accept", "*/*"]] },
//!   "response": {
//!     "status": 200,
//!     "version": "HTTP/1.1",
//!     "headers": [["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-raw", {"base64": "/w=="}]],
//!     "final_url": null,
//!     "body": "hello"
//!   },
//!   "request_time": { "unix_nanos": 1700000000000000000, "http_date": "Tue, 14 Nov 2023 22:13:20 GMT" },
//!   "response_time": { "unix_nanos": 1700000000000000000, "http_date": "..." },
//!   "created": { "unix_nanos": 1700000000000000000, "http_date": "..." },
//!   "expires": null,
//!   "initial_age_nanos": 0
//! }
//! ```
//!
//! Headers are `[name, value]` pairs in order (repeated fields kept). A value that is
//! not UTF-8 is written as `{"base64": "..."}`; a body that is not UTF-8 is written as
//! `"body_base64"` instead of `"body"`. `unix_nanos` is what is read back (exactly);
//! `http_date` is for people and is ignored when reading (it is `null` for times an
//! HTTP date cannot show). Times before the epoch are written as the epoch.
//! `initial_age_nanos` is [`Entry::initial_age`]; documents written before it was
//! kept have none, and reading one computes it ([`Entry::computed_initial_age`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use serde::{Deserialize, Serialize};

use super::{DecodeError, Entry, StoredRequest, StoredResponse};
use crate::header::VariantId;
use crate::key::CacheKey;

/// The value of the `"format"` field.
const FORMAT_NAME: &str = "httpcache-entry";

/// The JSON format version this build writes and reads.
const JSON_VERSION: u16 = 1;

impl Entry {
    /// Encodes the entry as pretty-printed JSON.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use httpcache_core::{CacheKey, Entry, VariantId};
    /// # use httpcache_core::entry::{StoredRequest, StoredResponse};
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// # let entry = Entry {
    /// #     key: CacheKey::hash("GET http://example.com/"),
    /// #     variant: VariantId(0),
    /// #     request: StoredRequest {
    /// #         method: http::Method::GET,
    /// #         url: "http://example.com/".into(),
    /// #         headers: http::HeaderMap::new(),
    /// #     },
    /// #     response: StoredResponse {
    /// #         status: http::StatusCode::OK,
    /// #         version: http::Version::HTTP_11,
    /// #         headers: http::HeaderMap::new(),
    /// #         body: Bytes::from_static(b"hello"),
    /// #         final_url: None,
    /// #     },
    /// #     request_time: t,
    /// #     response_time: t,
    /// #     created: t,
    /// #     expires: None,
    /// #     initial_age: Duration::ZERO,
    /// # };
    /// let json = entry.to_json();
    /// assert!(std::str::from_utf8(&json).unwrap().contains("\"body\": \"hello\""));
    /// assert_eq!(Entry::from_json(&json)?, entry);
    /// # Ok::<(), httpcache_core::DecodeError>(())
    /// ```
    pub fn to_json(&self) -> Vec<u8> {
        let (body, body_base64) = match std::str::from_utf8(&self.response.body) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(base64_encode(&self.response.body))),
        };
        let document = JsonEntry {
            format: FORMAT_NAME.to_owned(),
            version: JSON_VERSION,
            key: self.key.to_string(),
            variant: self.variant.0,
            request: JsonRequest {
                method: self.request.method.as_str().to_owned(),
                url: self.request.url.clone(),
                headers: headers_to_json(&self.request.headers),
            },
            response: JsonResponse {
                status: self.response.status.as_u16(),
                version: version_name(self.response.version).to_owned(),
                headers: headers_to_json(&self.response.headers),
                final_url: self.response.final_url.clone(),
                body,
                body_base64,
            },
            request_time: JsonTime::from(self.request_time),
            response_time: JsonTime::from(self.response_time),
            created: JsonTime::from(self.created),
            expires: self.expires.map(JsonTime::from),
            initial_age_nanos: Some(self.initial_age.as_nanos()),
        };
        // Serialising plain strings, numbers and vectors cannot fail; fall back to an
        // empty document (which decodes as an error, a miss) rather than panicking.
        serde_json::to_vec_pretty(&document).unwrap_or_default()
    }

    /// Decodes JSON written by [`Entry::to_json`].
    ///
    /// Not JSON, or JSON without `"format": "httpcache-entry"`, is
    /// [`DecodeError::Foreign`]; another `"version"` is [`DecodeError::Version`]; JSON
    /// cut short is [`DecodeError::Truncated`]; anything else wrong is
    /// [`DecodeError::Corrupt`].
    pub fn from_json(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let document: JsonEntry = match serde_json::from_slice(bytes) {
            Ok(document) => document,
            Err(error) if error.is_eof() => return Err(DecodeError::Truncated),
            Err(_) => return Err(classify_invalid(bytes)),
        };
        if document.format != FORMAT_NAME {
            return Err(DecodeError::Foreign);
        }
        if document.version != JSON_VERSION {
            return Err(DecodeError::Version { found: document.version, expected: JSON_VERSION });
        }
        let key = document.key.parse::<CacheKey>().map_err(|_| DecodeError::Corrupt("invalid key"))?;
        let request = StoredRequest {
            method: Method::from_bytes(document.request.method.as_bytes())
                .map_err(|_| DecodeError::Corrupt("invalid method"))?,
            url: document.request.url,
            headers: headers_from_json(document.request.headers)?,
        };
        let body = match (document.response.body, document.response.body_base64) {
            (Some(text), None) => Bytes::from(text),
            (None, Some(encoded)) => Bytes::from(base64_decode(&encoded)?),
            _ => return Err(DecodeError::Corrupt("exactly one of body and body_base64 is needed")),
        };
        let response = StoredResponse {
            status: StatusCode::from_u16(document.response.status)
                .map_err(|_| DecodeError::Corrupt("invalid status"))?,
            version: version_from_name(&document.response.version)?,
            headers: headers_from_json(document.response.headers)?,
            body,
            final_url: document.response.final_url,
        };
        let mut entry = Entry {
            key,
            variant: VariantId(document.variant),
            request,
            response,
            request_time: document.request_time.to_time()?,
            response_time: document.response_time.to_time()?,
            created: document.created.to_time()?,
            expires: document.expires.map(|t| t.to_time()).transpose()?,
            initial_age: Duration::ZERO,
        };
        entry.initial_age = match document.initial_age_nanos {
            Some(nanos) => duration_from_nanos(nanos)?,
            None => entry.computed_initial_age(),
        };
        Ok(entry)
    }
}

/// Why valid-looking input did not parse as an entry: not ours, another version, or
/// ours but broken.
fn classify_invalid(bytes: &[u8]) -> DecodeError {
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
        version: Option<u64>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe { format: Some(format), version }) if format == FORMAT_NAME => match version {
            Some(found) if found != u64::from(JSON_VERSION) => DecodeError::Version {
                found: u16::try_from(found).unwrap_or(u16::MAX),
                expected: JSON_VERSION,
            },
            _ => DecodeError::Corrupt("invalid JSON entry"),
        },
        _ => DecodeError::Foreign,
    }
}

#[derive(Serialize, Deserialize)]
struct JsonEntry {
    format: String,
    version: u16,
    key: String,
    variant: u64,
    request: JsonRequest,
    response: JsonResponse,
    request_time: JsonTime,
    response_time: JsonTime,
    created: JsonTime,
    expires: Option<JsonTime>,
    /// Absent in documents written before [`Entry::initial_age`] was kept.
    #[serde(default)]
    initial_age_nanos: Option<u128>,
}

#[derive(Serialize, Deserialize)]
struct JsonRequest {
    method: String,
    url: String,
    headers: Vec<(String, JsonHeaderValue)>,
}

#[derive(Serialize, Deserialize)]
struct JsonResponse {
    status: u16,
    version: String,
    headers: Vec<(String, JsonHeaderValue)>,
    final_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum JsonHeaderValue {
    Text(String),
    Binary { base64: String },
}

#[derive(Serialize, Deserialize)]
struct JsonTime {
    unix_nanos: u128,
    #[serde(default)]
    http_date: Option<String>,
}

/// The first instant an HTTP date cannot show (year 10 000).
const HTTP_DATE_LIMIT_SECS: u64 = 253_402_300_800;

impl From<SystemTime> for JsonTime {
    fn from(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let http_date =
            (since.as_secs() < HTTP_DATE_LIMIT_SECS).then(|| httpdate::fmt_http_date(UNIX_EPOCH + since));
        JsonTime { unix_nanos: since.as_nanos(), http_date }
    }
}

impl JsonTime {
    fn to_time(&self) -> Result<SystemTime, DecodeError> {
        UNIX_EPOCH
            .checked_add(duration_from_nanos(self.unix_nanos)?)
            .ok_or(DecodeError::Corrupt("time out of range"))
    }
}

/// `nanos` nanoseconds, when a `Duration` can hold them.
fn duration_from_nanos(nanos: u128) -> Result<Duration, DecodeError> {
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| DecodeError::Corrupt("time out of range"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

fn headers_to_json(headers: &HeaderMap) -> Vec<(String, JsonHeaderValue)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = match std::str::from_utf8(value.as_bytes()) {
                Ok(text) => JsonHeaderValue::Text(text.to_owned()),
                Err(_) => JsonHeaderValue::Binary { base64: base64_encode(value.as_bytes()) },
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

fn headers_from_json(fields: Vec<(String, JsonHeaderValue)>) -> Result<HeaderMap, DecodeError> {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| DecodeError::Corrupt("invalid header name"))?;
        let value = match value {
            JsonHeaderValue::Text(text) => HeaderValue::from_bytes(text.as_bytes()),
            JsonHeaderValue::Binary { base64 } => HeaderValue::from_bytes(&base64_decode(&base64)?),
        }
        .map_err(|_| DecodeError::Corrupt("invalid header value"))?;
        map.try_append(name, value).map_err(|_| DecodeError::Corrupt("too many headers"))?;
    }
    Ok(map)
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn version_from_name(name: &str) -> Result<Version, DecodeError> {
    Ok(match name {
        "HTTP/0.9" => Version::HTTP_09,
        "HTTP/1.0" => Version::HTTP_10,
        "HTTP/1.1" => Version::HTTP_11,
        "HTTP/2.0" | "HTTP/2" => Version::HTTP_2,
        "HTTP/3.0" | "HTTP/3" => Version::HTTP_3,
        _ => return Err(DecodeError::Corrupt("invalid HTTP version")),
    })
}

// ---------------------------------------------------------------------------
// Base64 (RFC 4648 standard alphabet, with padding).

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[((n >> (18 - 6 * i)) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    const BAD: DecodeError = DecodeError::Corrupt("invalid base64");
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let raw = text.as_bytes();
    if !raw.len().is_multiple_of(4) {
        return Err(BAD);
    }
    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
    let chunks = raw.len() / 4;
    for (index, chunk) in raw.chunks_exact(4).enumerate() {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != chunks) {
            return Err(BAD);
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            n = (n << 6) | sextet(c).ok_or(BAD)?;
        }
        n <<= 6 * padding as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - padding]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::testing::{arbitrary_entry, sample_entry};
    use proptest::prelude::*;

    fn text(json: &[u8]) -> &str {
        std::str::from_utf8(json).unwrap()
    }

    #[test]
    fn base64_known_values() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg=", "Zg=a", "Z===", "Zm9v!A==", "Zg==Zg=="] {
            assert!(base64_decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_body_is_a_string_and_binary_body_is_base64() {
        let entry =
            sample_entry(CacheKey::hash("k"), VariantId(1), Bytes::from_static(b"hello \xE2\x9C\x93"));
        let json = entry.to_json();
        assert!(text(&json).contains("\"body\": \"hello \u{2713}\""));
        assert!(!text(&json).contains("body_base64"));
        assert_eq!(Entry::from_json(&json).unwrap(), entry);

        let entry = sample_entry(CacheKey::hash("k"), VariantId(1), Bytes::from_static(b"\xFF\x00\x01"));
        let json = entry.to_json();
        assert!(text(&json).contains("\"body_base64\": \"/wAB\""));
        assert_eq!(Entry::from_json(&json).unwrap(), entry);
    }

    #[test]
    fn non_utf8_header_values_use_base64() {
        let mut entry = sample_entry(CacheKey::hash("k"), VariantId(1), Bytes::new());
        entry.response.headers.append("x-raw", HeaderValue::from_bytes(b"\xFF").unwrap());
        entry.response.headers.append("set-cookie", HeaderValue::from_static("a=1"));
        entry.response.headers.append("set-cookie", HeaderValue::from_static("b=2"));
        let json = entry.to_json();
        assert!(text(&json).contains("\"base64\": \"/w==\""));
        let decoded = Entry::from_json(&json).unwrap();
        assert_eq!(decoded, entry);
        let cookies: Vec<_> = decoded.response.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn times_are_exact_and_readable() {
        let mut entry = sample_entry(CacheKey::hash("k"), VariantId(1), Bytes::new());
        entry.response_time += Duration::from_nanos(123_456_789);
        let json = entry.to_json();
        assert!(text(&json).contains("\"unix_nanos\": 1700000000123456789"));
        assert!(text(&json).contains("\"http_date\": \"Tue, 14 Nov 2023 22:13:20 GMT\""));
        assert_eq!(Entry::from_json(&json).unwrap(), entry);
    }

    // RFC 9111 §4.2.3: a document written before the initial age was kept reads with
    // the one its `Date`, `Age` and times give; one that has it keeps it as written.
    #[test]
    fn initial_age_is_kept_or_computed_when_absent() {
        let mut entry = sample_entry(CacheKey::hash("k"), VariantId(1), Bytes::new());
        entry.request_time += Duration::from_secs(1);
        entry.response_time += Duration::from_secs(4);
        entry.response.headers.insert(http::header::AGE, HeaderValue::from_static("10"));
        entry.initial_age = Duration::from_nanos(1_500_000_001);
        let json = entry.to_json();
        assert!(text(&json).contains("\"initial_age_nanos\": 1500000001"));
        assert_eq!(Entry::from_json(&json), Ok(entry.clone()));

        let mut document: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert!(document.as_object_mut().unwrap().remove("initial_age_nanos").is_some());
        let older = serde_json::to_vec(&document).unwrap();
        // `Age: 10` plus the 3 s response delay, larger than the apparent 4 s.
        assert_eq!(Entry::from_json(&older).map(|read| read.initial_age), Ok(Duration::from_secs(13)));
        assert_eq!(entry.computed_initial_age(), Duration::from_secs(13));

        // More seconds than a `Duration` holds: corrupt, not a panic.
        let too_long = u128::from(u64::MAX) * 1_000_000_000 + 1_000_000_000;
        let too_long = text(&json).replace("1500000001", &too_long.to_string());
        assert_eq!(Entry::from_json(too_long.as_bytes()), Err(DecodeError::Corrupt("time out of range")));
    }

    #[test]
    fn error_classes() {
        assert_eq!(Entry::from_json(b"not json"), Err(DecodeError::Foreign));
        assert_eq!(Entry::from_json(b"{\"hello\": 1}"), Err(DecodeError::Foreign));
        assert_eq!(
            Entry::from_json(&sample_entry(CacheKey::hash("k"), VariantId(0), Bytes::new()).encode()),
            Err(DecodeError::Foreign)
        );

        let json = sample_entry(CacheKey::hash("k"), VariantId(0), Bytes::new()).to_json();
        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value["version"] = 2.into();
        assert_eq!(
            Entry::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(DecodeError::Version { found: 2, expected: 1 })
        );
        value["version"] = 1.into();
        value["key"] = "zz".into();
        assert!(matches!(
            Entry::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(DecodeError::Corrupt(_))
        ));
        value["key"] = CacheKey::hash("k").to_string().into();
        value["response"]["status"] = 42.into();
        assert!(matches!(
            Entry::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(DecodeError::Corrupt(_))
        ));
        value["response"]["status"] = 200.into();
        value["response"]["headers"] = serde_json::json!([["bad name", "x"]]);
        assert!(matches!(
            Entry::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(DecodeError::Corrupt(_))
        ));

        for len in 0..json.len() {
            assert!(Entry::from_json(&json[..len]).is_err(), "cut at {len}");
        }
        assert_eq!(Entry::from_json(&json[..json.len() / 2]), Err(DecodeError::Truncated));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn json_round_trips(entry in arbitrary_entry()) {
            prop_assert_eq!(Entry::from_json(&entry.to_json()).unwrap(), entry);
        }

        #[test]
        fn arbitrary_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Entry::from_json(&bytes);
        }
    }
}
