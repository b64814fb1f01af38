//! The versioned binary encoding. All integers are little-endian.
//!
//! ```text
//! MAGIC (4) | version u16 | meta length u32      the 10-byte header
//! meta block (meta length bytes)                 key (32) | variant u64 | method (str)
//!                                                | url (str) | status u16 | body size u64
//!                                                | created (time) | expires (u8 flag, time)
//!                                                | response_time (time) | request_time (time)
//!                                                | initial age (duration)
//! meta checksum u32                              CRC-32 of every byte before it
//! request headers                                count u32, then (name str, value str) pairs
//! response version u8                            0 = 0.9, 1 = 1.0, 2 = 1.1, 3 = 2, 4 = 3
//! response headers                               as the request headers
//! final URL                                      u8 flag (0 = none, 1 = some), then a str
//! body length u64
//! checksum u32                                   CRC-32 of every byte before it
//! body                                           exactly `body length` bytes, nothing after
//! ```
//!
//! A `str` is a u32 length followed by that many bytes. A `time` is u64 seconds plus
//! u32 nanoseconds since the Unix epoch; times before the epoch are written as the
//! epoch itself (HTTP dates cannot be earlier, so nothing real is lost). A `duration`
//! is u64 seconds plus u32 nanoseconds. Headers are written in
//! [`http::HeaderMap::iter`] order, so repeated fields keep their order.
//!
//! Versions: this build writes version 2 and reads versions 1 and 2. Version 1 has no
//! initial age in its meta block; decoding one computes [`Entry::initial_age`] from
//! its stored fields and times ([`Entry::computed_initial_age`]), so caches written by
//! earlier builds keep serving.
//!
//! Integrity: the meta checksum lets [`EntryMeta::decode_prefix`] check a listing
//! without reading further; the second checksum covers everything except the body.
//! The body is deliberately *not* checksummed: hashing megabytes on every cache hit
//! would cost more than the lookup itself. Its integrity rests on its exact length:
//! a short body is [`DecodeError::Truncated`], trailing bytes are
//! [`DecodeError::Corrupt`]. Storage that can flip bits inside a body needs its own
//! protection (LMDB does not checksum its pages, nor do most file systems).
//!
//! Stores that keep large bodies apart from the rest of an entry (so that freshening
//! it after a 304 rewrites a small record, see [`Store::refresh`](crate::Store::refresh))
//! write [`Entry::encode_head`], which is this encoding without its trailing body
//! bytes, and read it back with [`Entry::decode_split`], which checks the body it is
//! given against the `body length` the head records exactly as the inline form checks
//! the bytes that follow: `encode()` is `encode_head()` followed by the body.
//!
//! Decoding never panics and never allocates according to a length it has not first
//! checked against the bytes actually present.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::{DecodeError, Entry, EntryMeta, SERVED_FIELDS, StoredRequest, StoredResponse};
use crate::header::VariantId;
use crate::key::CacheKey;

/// The first four bytes of every binary entry.
pub const MAGIC: [u8; 4] = *b"HCE\x01";

/// The binary format version this build writes. It also reads
/// [`OLDEST_READ_VERSION`] and every version between.
pub const FORMAT_VERSION: u16 = 2;

/// The oldest binary format version this build reads: version 1, which did not keep
/// [`Entry::initial_age`].
pub const OLDEST_READ_VERSION: u16 = 1;

/// Whether this build reads `version`.
fn readable(version: u16) -> bool {
    (OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version)
}

/// Length of the fixed header: magic, version, meta length.
const HEADER_LEN: usize = 10;

/// Length of a checksum field.
const CHECKSUM_LEN: usize = 4;

/// The fewest bytes a header field takes: the lengths of its name and value.
const MIN_FIELD_LEN: usize = 8;

/// The most header fields a map is sized for before its fields are read; a block with
/// more grows the map as they are.
const MAX_RESERVED_FIELDS: usize = 64;

impl Entry {
    /// Encodes the entry in the binary format (see the module docs for the layout).
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
    /// let bytes = entry.encode();
    /// assert_eq!(Entry::decode(&bytes)?, entry);
    /// assert_eq!(Entry::decode_shared(Bytes::from(bytes))?, entry);
    /// # Ok::<(), httpcache_core::DecodeError>(())
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head_len_estimate() + self.response.body.len());
        self.encode_head_into(&mut out);
        out.extend_from_slice(&self.response.body);
        out
    }

    /// The binary encoding without the body: every byte of [`Entry::encode`] except
    /// the trailing `body length` bytes of the body, so `encode()` is exactly
    /// `encode_head()` followed by `response.body`. For stores that keep bodies apart;
    /// [`Entry::decode_split`] reads it back with the body, and
    /// [`EntryMeta::decode_prefix`] reads its metadata as it does the whole encoding's.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use httpcache_core::{CacheKey, Entry, VariantId};
    /// # use httpcache_core::entry::{StoredRequest, StoredResponse};
    /// # use std::time::{Duration, UNIX_EPOCH};
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
    /// #     request_time: UNIX_EPOCH,
    /// #     response_time: UNIX_EPOCH,
    /// #     created: UNIX_EPOCH,
    /// #     expires: None,
    /// #     initial_age: Duration::ZERO,
    /// # };
    /// let head = entry.encode_head();
    /// assert_eq!([&head[..], b"hello"].concat(), entry.encode());
    /// let body = entry.response.body.clone();
    /// assert_eq!(Entry::decode_split(Bytes::from(head), body)?, entry);
    /// # Ok::<(), httpcache_core::DecodeError>(())
    /// ```
    pub fn encode_head(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head_len_estimate());
        self.encode_head_into(&mut out);
        out
    }

    /// Appends the encoding up to (not including) the body to `out`.
    fn encode_head_into(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.extend_from_slice(&MAGIC);
        put_u16(out, FORMAT_VERSION);
        put_u32(out, 0); // meta length, filled in below

        out.extend_from_slice(self.key.as_bytes());
        put_u64(out, self.variant.0);
        put_str(out, self.request.method.as_str().as_bytes());
        put_str(out, self.request.url.as_bytes());
        put_u16(out, self.response.status.as_u16());
        put_u64(out, self.response.body.len() as u64);
        put_time(out, self.created);
        match self.expires {
            None => out.push(0),
            Some(expires) => {
                out.push(1);
                put_time(out, expires);
            }
        }
        put_time(out, self.response_time);
        put_time(out, self.request_time);
        put_duration(out, self.initial_age);

        let meta_len = len_u32(out.len() - base - HEADER_LEN);
        out[base + 6..base + HEADER_LEN].copy_from_slice(&meta_len.to_le_bytes());
        let crc = Crc32::new().update(&out[base..]);
        put_u32(out, crc.finish());
        let checked_from = out.len() - CHECKSUM_LEN;

        put_headers(out, &self.request.headers);
        out.push(version_code(self.response.version));
        put_headers(out, &self.response.headers);
        match &self.response.final_url {
            None => out.push(0),
            Some(url) => {
                out.push(1);
                put_str(out, url.as_bytes());
            }
        }
        put_u64(out, self.response.body.len() as u64);
        let crc = crc.update(&out[checked_from..]).finish();
        put_u32(out, crc);
    }

    /// Decodes a binary entry, copying what it needs out of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        decode_entry(bytes, None, None)
    }

    /// Decodes a binary entry held in shared memory: the body and header values
    /// point into `bytes` without copying.
    pub fn decode_shared(bytes: Bytes) -> Result<Entry, DecodeError> {
        decode_entry(&bytes, Some(&bytes), None)
    }

    /// Decodes an entry kept in two parts: `head`, as [`Entry::encode_head`] wrote it
    /// (nothing may follow it), and `body`. Header values point into `head` and the
    /// body is `body`, without copying. The body must be exactly as long as the head
    /// says: a shorter one is [`DecodeError::Truncated`], a longer one
    /// [`DecodeError::Corrupt`] (the body itself is not checksummed, as in the inline
    /// form; see the module docs).
    pub fn decode_split(head: Bytes, body: Bytes) -> Result<Entry, DecodeError> {
        decode_entry(&head, Some(&head), Some(body))
    }

    /// A cheap upper-ish estimate of the encoded size without the body.
    pub(crate) fn head_len_estimate(&self) -> usize {
        let headers = |map: &HeaderMap| -> usize {
            map.iter().map(|(name, value)| 8 + name.as_str().len() + value.len()).sum::<usize>()
        };
        128 + self.request.url.len()
            + self.request.method.as_str().len()
            + headers(&self.request.headers)
            + headers(&self.response.headers)
            + self.response.final_url.as_ref().map_or(0, String::len)
    }
}

impl EntryMeta {
    /// How many leading bytes of an encoded entry [`EntryMeta::decode_prefix`] needs,
    /// read from the first 10 bytes; `None` when those are not an entry header (too
    /// short, wrong magic, or another format version).
    ///
    /// The prefix is the 10-byte header, the meta block and its checksum.
    pub fn prefix_len(header: &[u8]) -> Option<usize> {
        if header.len() < HEADER_LEN || header[..4] != MAGIC || !readable(read_u16(&header[4..6])) {
            return None;
        }
        let meta_len = usize::try_from(read_u32(&header[6..HEADER_LEN])).ok()?;
        HEADER_LEN.checked_add(meta_len)?.checked_add(CHECKSUM_LEN)
    }

    /// Decodes the metadata from the start of an encoded entry, without the body.
    /// `bytes` may be just the prefix ([`EntryMeta::prefix_len`]) or the whole entry.
    pub fn decode_prefix(bytes: &[u8]) -> Result<EntryMeta, DecodeError> {
        let (meta_end, version) = check_header(bytes)?;
        check_meta_checksum(bytes, meta_end)?;
        Ok(decode_meta(&bytes[HEADER_LEN..meta_end], version)?.meta)
    }
}

// ---------------------------------------------------------------------------
// Decoding

/// Checks magic and version; returns the end of the meta block and the version,
/// after making sure the meta block and its checksum are present.
fn check_header(bytes: &[u8]) -> Result<(usize, u16), DecodeError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(DecodeError::Foreign);
    }
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let version = read_u16(&bytes[4..6]);
    if !readable(version) {
        return Err(DecodeError::Version { found: version, expected: FORMAT_VERSION });
    }
    let meta_len = usize::try_from(read_u32(&bytes[6..HEADER_LEN])).map_err(|_| DecodeError::Truncated)?;
    let meta_end = HEADER_LEN.checked_add(meta_len).ok_or(DecodeError::Truncated)?;
    match meta_end.checked_add(CHECKSUM_LEN) {
        Some(needed) if needed <= bytes.len() => Ok((meta_end, version)),
        _ => Err(DecodeError::Truncated),
    }
}

/// Verifies the meta checksum stored at `meta_end`; returns the running checksum
/// state over everything up to and including it.
fn check_meta_checksum(bytes: &[u8], meta_end: usize) -> Result<Crc32, DecodeError> {
    let crc = Crc32::new().update(&bytes[..meta_end]);
    let stored = read_u32(&bytes[meta_end..meta_end + CHECKSUM_LEN]);
    if crc.finish() != stored {
        return Err(DecodeError::Corrupt("meta checksum mismatch"));
    }
    Ok(crc.update(&bytes[meta_end..meta_end + CHECKSUM_LEN]))
}

/// A decoded meta block: the [`EntryMeta`] and the times only [`Entry`] keeps.
struct Meta {
    meta: EntryMeta,
    request_time: SystemTime,
    /// `None` in version 1, which did not keep it.
    initial_age: Option<Duration>,
}

/// Parses a whole meta block of `version` (which must be consumed exactly).
fn decode_meta(block: &[u8], version: u16) -> Result<Meta, DecodeError> {
    let mut r = Reader { buf: block, pos: 0 };
    let mut key = [0u8; 32];
    key.copy_from_slice(r.take(32)?);
    let variant = VariantId(r.u64()?);
    let method = Method::from_bytes(r.str()?).map_err(|_| DecodeError::Corrupt("invalid method"))?;
    let url = utf8(r.str()?, "URL is not UTF-8")?;
    let status = StatusCode::from_u16(r.u16()?).map_err(|_| DecodeError::Corrupt("invalid status"))?;
    let body_size = r.u64()?;
    let created = r.time()?;
    let expires = match r.u8()? {
        0 => None,
        1 => Some(r.time()?),
        _ => return Err(DecodeError::Corrupt("invalid expires flag")),
    };
    let response_time = r.time()?;
    let request_time = r.time()?;
    let initial_age = if version >= 2 { Some(r.duration()?) } else { None };
    if r.pos != block.len() {
        return Err(DecodeError::Corrupt("unexpected bytes in the meta block"));
    }
    let meta = EntryMeta {
        key: CacheKey(key),
        variant,
        method,
        url,
        status,
        body_size,
        created,
        expires,
        response_time,
    };
    Ok(Meta { meta, request_time, initial_age })
}

/// Decodes `bytes`: the whole encoding when `apart` is `None`, else the head alone
/// with `apart` as its body.
fn decode_entry(bytes: &[u8], shared: Option<&Bytes>, apart: Option<Bytes>) -> Result<Entry, DecodeError> {
    let (meta_end, version) = check_header(bytes)?;
    let crc = check_meta_checksum(bytes, meta_end)?;
    let Meta { meta, request_time, initial_age } = decode_meta(&bytes[HEADER_LEN..meta_end], version)?;

    let rest_start = meta_end + CHECKSUM_LEN;
    let mut r = Reader { buf: bytes, pos: rest_start };
    let request_headers = r.headers(shared, 0)?;
    let version = version_from_code(r.u8()?)?;
    let response_headers = r.headers(shared, SERVED_FIELDS)?;
    let final_url = match r.u8()? {
        0 => None,
        1 => Some(utf8(r.str()?, "final URL is not UTF-8")?),
        _ => return Err(DecodeError::Corrupt("invalid final URL flag")),
    };
    let body_len = r.u64()?;
    let checksum_at = r.pos;
    let stored = r.u32()?;
    if crc.update(&bytes[rest_start..checksum_at]).finish() != stored {
        return Err(DecodeError::Corrupt("checksum mismatch"));
    }
    let (body_present, trailing) = match &apart {
        None => ((bytes.len() - r.pos) as u64, "trailing bytes after the body"),
        Some(body) => {
            if r.pos != bytes.len() {
                return Err(DecodeError::Corrupt("trailing bytes after the head"));
            }
            (body.len() as u64, "body longer than the head says")
        }
    };
    if body_present < body_len {
        return Err(DecodeError::Truncated);
    }
    if body_present > body_len {
        return Err(DecodeError::Corrupt(trailing));
    }
    if body_len != meta.body_size {
        return Err(DecodeError::Corrupt("body length differs from the meta block"));
    }
    let body = match apart {
        None => slice_bytes(bytes, shared, r.pos..bytes.len()),
        Some(body) => body,
    };

    let mut entry = Entry {
        key: meta.key,
        variant: meta.variant,
        request: StoredRequest { method: meta.method, url: meta.url, headers: request_headers },
        response: StoredResponse { status: meta.status, version, headers: response_headers, body, final_url },
        request_time,
        response_time: meta.response_time,
        created: meta.created,
        expires: meta.expires,
        initial_age: Duration::ZERO,
    };
    entry.initial_age = initial_age.unwrap_or_else(|| entry.computed_initial_age());
    Ok(entry)
}

/// A cursor over the input. Every read checks the remaining length first.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take_range(&mut self, n: usize) -> Result<Range<usize>, DecodeError> {
        let end =
            self.pos.checked_add(n).filter(|&end| end <= self.buf.len()).ok_or(DecodeError::Truncated)?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let range = self.take_range(n)?;
        Ok(&self.buf[range])
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(read_u16(self.take(2)?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(read_u32(self.take(4)?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(raw))
    }

    /// The range of a length-prefixed string.
    fn str_range(&mut self) -> Result<Range<usize>, DecodeError> {
        let len = usize::try_from(self.u32()?).map_err(|_| DecodeError::Truncated)?;
        self.take_range(len)
    }

    fn str(&mut self) -> Result<&'a [u8], DecodeError> {
        let range = self.str_range()?;
        Ok(&self.buf[range])
    }

    fn duration(&mut self) -> Result<Duration, DecodeError> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(DecodeError::Corrupt("invalid nanoseconds"));
        }
        Ok(Duration::new(secs, nanos))
    }

    fn time(&mut self) -> Result<SystemTime, DecodeError> {
        UNIX_EPOCH.checked_add(self.duration()?).ok_or(DecodeError::Corrupt("time out of range"))
    }

    /// A header block, in a map with room for `extra` more fields (those the driver
    /// adds when it serves a response), so that they do not make it grow. The map is
    /// sized up front for at most as many fields as the bytes left could hold (each
    /// takes at least [`MIN_FIELD_LEN`] bytes) and at most [`MAX_RESERVED_FIELDS`];
    /// each field is read (and its length checked) before it is stored, so a lying
    /// count costs a short error, not a large allocation.
    fn headers(&mut self, shared: Option<&Bytes>, extra: usize) -> Result<HeaderMap, DecodeError> {
        let count = self.u32()?;
        if count == 0 && extra == 0 {
            return Ok(HeaderMap::new());
        }
        let possible = self.buf.len().saturating_sub(self.pos) / MIN_FIELD_LEN;
        let reserved = usize::try_from(count).unwrap_or(usize::MAX).min(possible).min(MAX_RESERVED_FIELDS);
        // `with_capacity` panics only above the map's maximum size (32 768), far above
        // `MAX_RESERVED_FIELDS` plus the few `extra` fields.
        let mut map = HeaderMap::with_capacity(reserved + extra);
        for _ in 0..count {
            let name = HeaderName::from_bytes(self.str()?)
                .map_err(|_| DecodeError::Corrupt("invalid header name"))?;
            let range = self.str_range()?;
            let value = match shared {
                Some(shared) => HeaderValue::from_maybe_shared(shared.slice(range)),
                None => HeaderValue::from_bytes(&self.buf[range]),
            }
            .map_err(|_| DecodeError::Corrupt("invalid header value"))?;
            map.try_append(name, value).map_err(|_| DecodeError::Corrupt("too many headers"))?;
        }
        Ok(map)
    }
}

fn slice_bytes(bytes: &[u8], shared: Option<&Bytes>, range: Range<usize>) -> Bytes {
    match shared {
        Some(shared) => shared.slice(range),
        None => Bytes::copy_from_slice(&bytes[range]),
    }
}

fn utf8(raw: &[u8], what: &'static str) -> Result<String, DecodeError> {
    std::str::from_utf8(raw).map(str::to_owned).map_err(|_| DecodeError::Corrupt(what))
}

fn read_u16(raw: &[u8]) -> u16 {
    u16::from_le_bytes([raw[0], raw[1]])
}

fn read_u32(raw: &[u8]) -> u32 {
    u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])
}

fn version_from_code(code: u8) -> Result<Version, DecodeError> {
    Ok(match code {
        0 => Version::HTTP_09,
        1 => Version::HTTP_10,
        2 => Version::HTTP_11,
        3 => Version::HTTP_2,
        4 => Version::HTTP_3,
        _ => return Err(DecodeError::Corrupt("invalid HTTP version")),
    })
}

// ---------------------------------------------------------------------------
// Encoding

/// The one-byte code of an HTTP version (unknown future versions are written as 1.1).
fn version_code(version: Version) -> u8 {
    match version {
        Version::HTTP_09 => 0,
        Version::HTTP_10 => 1,
        Version::HTTP_2 => 3,
        Version::HTTP_3 => 4,
        _ => 2,
    }
}

/// A length as u32. Nothing the cache stores comes near 4 GiB per field; a longer
/// one is written with a saturated length, which fails to decode (a miss) rather
/// than panicking here.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, raw: &[u8]) {
    put_u32(out, len_u32(raw.len()));
    out.extend_from_slice(raw);
}

/// Seconds and nanoseconds since the epoch; earlier times are clamped to the epoch.
fn put_time(out: &mut Vec<u8>, time: SystemTime) {
    put_duration(out, time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO));
}

/// Seconds and nanoseconds.
fn put_duration(out: &mut Vec<u8>, duration: Duration) {
    put_u64(out, duration.as_secs());
    put_u32(out, duration.subsec_nanos());
}

fn put_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    put_u32(out, len_u32(headers.len()));
    for (name, value) in headers {
        put_str(out, name.as_str().as_bytes());
        put_str(out, value.as_bytes());
    }
}

// ---------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), computed eight bytes at a
// time ("slicing by 8") from tables built at compile time.
//
// `CRC_TABLES[0]` is the classic byte-at-a-time table: the CRC state after feeding one
// byte `i` into a zero state. `CRC_TABLES[k][i]` is the same byte followed by `k` zero
// bytes, so the contributions of eight input bytes can be looked up independently and
// XORed together: one step per eight bytes instead of eight dependent steps.

const CRC_TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        tables[0][i] = c;
        i += 1;
    }
    let mut slice = 1;
    while slice < 8 {
        let mut i = 0;
        while i < 256 {
            let previous = tables[slice - 1][i];
            tables[slice][i] = (previous >> 8) ^ tables[0][(previous & 0xFF) as usize];
            i += 1;
        }
        slice += 1;
    }
    tables
};

/// A running CRC-32.
#[derive(Clone, Copy)]
struct Crc32(u32);

impl Crc32 {
    fn new() -> Self {
        Crc32(!0)
    }

    fn update(self, data: &[u8]) -> Self {
        let table = |slice: usize, index: u32| CRC_TABLES[slice][(index & 0xFF) as usize];
        let mut c = self.0;
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            let low = c ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            c = table(7, low)
                ^ table(6, low >> 8)
                ^ table(5, low >> 16)
                ^ table(4, low >> 24)
                ^ table(3, high)
                ^ table(2, high >> 8)
                ^ table(1, high >> 16)
                ^ table(0, high >> 24);
        }
        for &byte in chunks.remainder() {
            c = table(0, c ^ u32::from(byte)) ^ (c >> 8);
        }
        Crc32(c)
    }

    fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::testing::{arbitrary_entry, sample_entry, sample_time};
    use proptest::prelude::*;

    fn entry_with_headers() -> Entry {
        let mut entry = sample_entry(CacheKey::hash("k"), VariantId(7), Bytes::from_static(b"hello world"));
        entry.request.headers.append("accept", HeaderValue::from_static("text/html"));
        entry.response.headers.append("set-cookie", HeaderValue::from_static("a=1"));
        entry.response.headers.append("set-cookie", HeaderValue::from_static("b=2"));
        entry.response.headers.append("x-bin", HeaderValue::from_bytes(b"\xff\xfe ok").unwrap());
        entry.response.headers.append("set-cookie", HeaderValue::from_static("c=3"));
        entry.response.final_url = Some("http://example.com/final".into());
        entry
    }

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(Crc32::new().update(b"123456789").finish(), 0xCBF4_3926);
    }

    /// The CRC one bit at a time, straight from the definition: the reference the
    /// table-driven one is checked against.
    fn crc32_bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &byte in data {
            c ^= u32::from(byte);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn crc32_matches_the_bitwise_definition_at_every_length_and_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in 0..data.len() {
            let whole = &data[..len];
            let expected = crc32_bitwise(whole);
            assert_eq!(Crc32::new().update(whole).finish(), expected, "length {len}");
            // Updating in two parts, split anywhere (so at any alignment), is the same.
            for split in [0, 1, 3, 7, 8, 9, len / 2, len] {
                let split = split.min(len);
                let (a, b) = whole.split_at(split);
                assert_eq!(Crc32::new().update(a).update(b).finish(), expected, "length {len} split {split}");
            }
        }
    }

    /// `entry` encodes and decodes back to itself, copied out and shared.
    fn assert_round_trips(entry: &Entry) {
        let bytes = entry.encode();
        assert_eq!(&Entry::decode(&bytes).unwrap(), entry);
        assert_eq!(&Entry::decode_shared(Bytes::from(bytes)).unwrap(), entry);
    }

    #[test]
    fn round_trips() {
        let entry = entry_with_headers();
        assert_round_trips(&entry);
    }

    #[test]
    fn repeated_headers_keep_their_order() {
        let entry = entry_with_headers();
        let decoded = Entry::decode(&entry.encode()).unwrap();
        let cookies: Vec<_> = decoded.response.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2", "c=3"]);
    }

    #[test]
    fn empty_and_large_bodies() {
        for body in [Bytes::new(), Bytes::from(vec![0xA5u8; 1 << 20])] {
            assert_round_trips(&sample_entry(CacheKey::hash("k"), VariantId(0), body));
        }
    }

    #[test]
    fn decode_shared_does_not_copy() {
        let entry = entry_with_headers();
        let bytes = Bytes::from(entry.encode());
        let range = bytes.as_ptr_range();
        let decoded = Entry::decode_shared(bytes.clone()).unwrap();
        assert!(range.contains(&decoded.response.body.as_ptr()));
        let value = decoded.response.headers.get("x-bin").unwrap();
        assert!(range.contains(&value.as_bytes().as_ptr()));
    }

    #[test]
    fn the_head_is_the_encoding_without_the_body() {
        for body in [Bytes::new(), Bytes::from_static(b"hello world"), Bytes::from(vec![0x5Au8; 100_000])] {
            let mut entry = entry_with_headers();
            entry.response.body = body.clone();
            let head = entry.encode_head();
            assert_eq!([&head[..], &body[..]].concat(), entry.encode());
            let len = EntryMeta::prefix_len(&head).unwrap();
            assert_eq!(EntryMeta::decode_prefix(&head[..len]).unwrap(), entry.meta());
            assert_eq!(EntryMeta::decode_prefix(&head).unwrap(), entry.meta());
        }
    }

    #[test]
    fn split_round_trips_without_copying() {
        let entry = entry_with_headers();
        let head = Bytes::from(entry.encode_head());
        let body = Bytes::copy_from_slice(&entry.response.body);
        let decoded = Entry::decode_split(head.clone(), body.clone()).unwrap();
        assert_eq!(decoded, entry);
        assert_eq!(decoded.response.body.as_ptr(), body.as_ptr(), "the body is the one given");
        let value = decoded.response.headers.get("x-bin").unwrap();
        assert!(head.as_ptr_range().contains(&value.as_bytes().as_ptr()));
    }

    #[test]
    fn split_bodies_must_have_the_recorded_length() {
        let entry = entry_with_headers();
        let head = Bytes::from(entry.encode_head());
        let body = &entry.response.body;
        let short = body.slice(..body.len() - 1);
        assert_eq!(Entry::decode_split(head.clone(), short), Err(DecodeError::Truncated));
        assert_eq!(Entry::decode_split(head.clone(), Bytes::new()), Err(DecodeError::Truncated));
        let long = Bytes::from([&body[..], b"!"].concat());
        assert!(matches!(Entry::decode_split(head.clone(), long), Err(DecodeError::Corrupt(_))));
        // A whole inline encoding is not a head: the body bytes after it are refused.
        let whole = Bytes::from(entry.encode());
        assert!(matches!(Entry::decode_split(whole, body.clone()), Err(DecodeError::Corrupt(_))));
        // And a head is not a whole encoding: its body is missing.
        assert_eq!(Entry::decode(&head), Err(DecodeError::Truncated));
        for len in 0..head.len() {
            assert_eq!(Entry::decode_split(head.slice(..len), body.clone()), Err(DecodeError::Truncated));
        }
    }

    #[test]
    fn times_before_the_epoch_are_clamped() {
        let mut entry = sample_entry(CacheKey::hash("k"), VariantId(0), Bytes::new());
        entry.created = UNIX_EPOCH - Duration::from_secs(10);
        let decoded = Entry::decode(&entry.encode()).unwrap();
        assert_eq!(decoded.created, UNIX_EPOCH);
    }

    #[test]
    fn wrong_magic_is_foreign() {
        let mut bytes = entry_with_headers().encode();
        bytes[0] = b'X';
        assert_eq!(Entry::decode(&bytes), Err(DecodeError::Foreign));
        assert_eq!(EntryMeta::decode_prefix(&bytes), Err(DecodeError::Foreign));
        assert_eq!(EntryMeta::prefix_len(&bytes), None);
        assert_eq!(Entry::decode(b"{\"format\":1}"), Err(DecodeError::Foreign));
    }

    #[test]
    fn other_version_is_reported() {
        for version in [0, FORMAT_VERSION + 1, u16::MAX] {
            let mut bytes = entry_with_headers().encode();
            bytes[4..6].copy_from_slice(&version.to_le_bytes());
            let expected = DecodeError::Version { found: version, expected: FORMAT_VERSION };
            assert_eq!(Entry::decode(&bytes), Err(expected.clone()));
            assert_eq!(EntryMeta::decode_prefix(&bytes), Err(expected));
            assert_eq!(EntryMeta::prefix_len(&bytes), None);
        }
    }

    /// `entry` as version 1 wrote it: no initial age in the meta block. Built from the
    /// current encoding by dropping that field and re-sealing both checksums.
    fn encode_version_1(entry: &Entry) -> Vec<u8> {
        const INITIAL_AGE_LEN: usize = 12;
        let current = entry.encode();
        let meta_end = EntryMeta::prefix_len(&current).unwrap() - CHECKSUM_LEN;
        let mut old = current[..meta_end - INITIAL_AGE_LEN].to_vec();
        old[4..6].copy_from_slice(&1u16.to_le_bytes());
        let meta_len = len_u32(old.len() - HEADER_LEN);
        old[6..HEADER_LEN].copy_from_slice(&meta_len.to_le_bytes());
        let meta_crc = Crc32::new().update(&old).finish();
        put_u32(&mut old, meta_crc);
        let checksum_at = current.len() - entry.response.body.len() - CHECKSUM_LEN;
        old.extend_from_slice(&current[meta_end + CHECKSUM_LEN..checksum_at]);
        let crc = Crc32::new().update(&old).finish();
        put_u32(&mut old, crc);
        old.extend_from_slice(&entry.response.body);
        old
    }

    // RFC 9111 §4.2.3: an entry written by version 1 (before the initial age was kept)
    // still decodes, every way, with the corrected initial age its `Date`, `Age` and
    // times give: caches written by earlier builds keep serving, with the right `Age`.
    #[test]
    fn version_1_entries_decode_with_the_initial_age_computed() {
        let mut entry = entry_with_headers();
        // Arrived 2 s after it was asked for, 5 s after its `Date`, saying `Age: 30`:
        // the corrected initial age is 30 + 2 s (larger than the apparent 5 s).
        entry.request_time = sample_time() + Duration::from_secs(3);
        entry.response_time = sample_time() + Duration::from_secs(5);
        entry.response.headers.insert(http::header::AGE, HeaderValue::from_static("30"));
        entry.initial_age = Duration::from_secs(32);
        assert_eq!(entry.computed_initial_age(), entry.initial_age);

        let old = encode_version_1(&entry);
        assert_eq!(read_u16(&old[4..6]), 1);
        assert_eq!(Entry::decode(&old), Ok(entry.clone()));
        assert_eq!(Entry::decode_shared(Bytes::from(old.clone())), Ok(entry.clone()));
        let head = Bytes::copy_from_slice(&old[..old.len() - entry.response.body.len()]);
        assert_eq!(Entry::decode_split(head, entry.response.body.clone()), Ok(entry.clone()));
        assert_eq!(
            EntryMeta::prefix_len(&old).map(|len| EntryMeta::decode_prefix(&old[..len])),
            Some(Ok(entry.meta()))
        );
        // The current version keeps what it was given, even where the fields disagree.
        entry.initial_age = Duration::from_secs(7);
        assert_eq!(
            Entry::decode(&entry.encode()).map(|decoded| decoded.initial_age),
            Ok(Duration::from_secs(7))
        );
        assert_eq!(
            Entry::decode(&encode_version_1(&entry)).map(|decoded| decoded.initial_age),
            Ok(Duration::from_secs(32))
        );
    }

    // Both versions stay checked: a flipped byte anywhere before the body of a
    // version 1 entry is an error, never an entry.
    #[test]
    fn a_flipped_version_1_byte_is_an_error() {
        let entry = entry_with_headers();
        let old = encode_version_1(&entry);
        assert_eq!(Entry::decode(&old), Ok(entry.clone()));
        for i in 0..old.len() - entry.response.body.len() {
            let mut flipped = old.clone();
            flipped[i] ^= 0x40;
            assert!(Entry::decode(&flipped).is_err(), "byte {i}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = entry_with_headers().encode();
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            assert_eq!(Entry::decode(cut), Err(DecodeError::Truncated), "cut at {len}");
            assert_eq!(Entry::decode_shared(Bytes::copy_from_slice(cut)), Err(DecodeError::Truncated));
        }
        let prefix = EntryMeta::prefix_len(&bytes).unwrap();
        for len in 0..prefix {
            assert_eq!(EntryMeta::decode_prefix(&bytes[..len]), Err(DecodeError::Truncated));
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = entry_with_headers().encode();
        bytes.push(0);
        assert!(matches!(Entry::decode(&bytes), Err(DecodeError::Corrupt(_))));
    }

    #[test]
    fn a_flipped_meta_byte_is_corrupt() {
        let bytes = entry_with_headers().encode();
        let prefix = EntryMeta::prefix_len(&bytes).unwrap();
        for i in HEADER_LEN..prefix {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            assert!(matches!(Entry::decode(&flipped), Err(DecodeError::Corrupt(_))), "byte {i}");
            assert!(matches!(EntryMeta::decode_prefix(&flipped), Err(DecodeError::Corrupt(_))), "byte {i}");
        }
    }

    #[test]
    fn a_flipped_header_byte_is_an_error() {
        let entry = entry_with_headers();
        let bytes = entry.encode();
        let prefix = EntryMeta::prefix_len(&bytes).unwrap();
        let body_start = bytes.len() - entry.response.body.len();
        for i in 0..body_start {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x40;
            assert!(Entry::decode(&flipped).is_err(), "byte {i} (prefix ends at {prefix})");
        }
    }

    #[test]
    fn prefix_is_enough_for_meta() {
        let entry = entry_with_headers();
        let bytes = entry.encode();
        let len = EntryMeta::prefix_len(&bytes[..HEADER_LEN]).unwrap();
        assert_eq!(EntryMeta::decode_prefix(&bytes[..len]).unwrap(), entry.meta());
        assert_eq!(EntryMeta::decode_prefix(&bytes).unwrap(), entry.meta());
        assert_eq!(EntryMeta::prefix_len(&bytes[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn huge_lengths_do_not_allocate_or_panic() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0xFF; 64]);
        assert_eq!(Entry::decode(&bytes), Err(DecodeError::Truncated));
        assert_eq!(EntryMeta::decode_prefix(&bytes), Err(DecodeError::Truncated));
    }

    #[test]
    fn more_headers_than_are_reserved_round_trip() {
        let mut entry = entry_with_headers();
        for i in 0..MAX_RESERVED_FIELDS * 2 {
            entry.response.headers.append("x-many", HeaderValue::from(i));
            entry
                .request
                .headers
                .append(format!("x-request-{i}").parse::<HeaderName>().unwrap(), "v".parse().unwrap());
        }
        assert_round_trips(&entry);
    }

    #[test]
    fn a_lying_header_count_is_an_error_not_an_allocation() {
        let entry = entry_with_headers();
        let bytes = entry.encode();
        // The request header count follows the meta checksum.
        let request_count_at = EntryMeta::prefix_len(&bytes).unwrap();
        let request_fields = u32::try_from(entry.request.headers.len()).unwrap();
        assert_eq!(read_u32(&bytes[request_count_at..]), request_fields);
        for count in [request_fields + 1, 1 << 16, u32::MAX] {
            let mut lying = bytes.clone();
            lying[request_count_at..request_count_at + 4].copy_from_slice(&count.to_le_bytes());
            assert!(Entry::decode(&lying).is_err(), "count {count}");
            assert!(Entry::decode_shared(Bytes::from(lying)).is_err(), "count {count}");
        }
        // A head with a lying count, its fields cut off.
        let head = entry.encode_head();
        let mut cut = head[..request_count_at + 4].to_vec();
        cut[request_count_at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Entry::decode_split(Bytes::from(cut), entry.response.body.clone()),
            Err(DecodeError::Truncated)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn encode_decode_is_identity(entry in arbitrary_entry()) {
            let bytes = entry.encode();
            prop_assert_eq!(&Entry::decode(&bytes).unwrap(), &entry);
            let len = EntryMeta::prefix_len(&bytes).unwrap();
            prop_assert_eq!(EntryMeta::decode_prefix(&bytes[..len]).unwrap(), entry.meta());
            prop_assert_eq!(Entry::decode_shared(Bytes::from(bytes)).unwrap(), entry);
        }

        #[test]
        fn crc32_is_the_bitwise_definition(data in proptest::collection::vec(any::<u8>(), 0..256), split in any::<prop::sample::Index>()) {
            let split = split.index(data.len() + 1);
            let expected = crc32_bitwise(&data);
            prop_assert_eq!(Crc32::new().update(&data).finish(), expected);
            prop_assert_eq!(Crc32::new().update(&data[..split]).update(&data[split..]).finish(), expected);
        }

        #[test]
        fn split_decode_is_identity(entry in arbitrary_entry()) {
            let head = Bytes::from(entry.encode_head());
            prop_assert_eq!(Entry::decode_split(head, entry.response.body.clone()).unwrap(), entry);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Entry::decode(&bytes);
            let _ = Entry::decode_shared(Bytes::from(bytes.clone()));
            let half = bytes.len() / 2;
            let _ = Entry::decode_split(Bytes::copy_from_slice(&bytes[..half]), Bytes::copy_from_slice(&bytes[half..]));
            let _ = EntryMeta::decode_prefix(&bytes);
            let _ = EntryMeta::prefix_len(&bytes);
        }

        #[test]
        fn mutated_entries_never_panic(
            entry in arbitrary_entry(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = entry.encode();
            for (index, byte) in edits {
                let i = index.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = Entry::decode(&bytes);
            let _ = EntryMeta::decode_prefix(&bytes);
        }
    }
}
