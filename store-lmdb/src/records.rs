//! The byte layouts of the records kept beside each entry.
//!
//! * Record id (key of the `entries` and `metas` databases): the 32-byte cache key
//!   followed by the variant id as a big-endian `u64`, so all variants of a key are
//!   one contiguous range.
//! * Index keys (`by_expiry`, `by_created`): a big-endian `u64` of nanoseconds since
//!   the Unix epoch followed by the record id, so a range scan from the start visits
//!   records oldest (or soonest-expiring) first.
//! * Meta record (value of `metas`): a fixed header ([`MetaHeader`]) followed by the
//!   leading bytes of the encoded entry that [`EntryMeta::decode_prefix`] reads.
//! * Entry record (value of `entries`), one of two forms told apart by their first
//!   four bytes:
//!   - inline: the whole [`Entry::encode`], starting with the entry magic `HCE\x01`.
//!     Every record of the previous layout is one, and so is every entry whose body
//!     is at most [`BODY_APART_ABOVE`] bytes;
//!   - head: [`HEAD_TAG`] followed by [`Entry::encode_head`] (the encoding without
//!     its body), for longer bodies. The body is the value of `bodies` under the same
//!     record id, exactly as long as the head says.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use httpcache_core::{CacheKey, DecodeError, Entry, EntryMeta, Queued, VariantId};

/// Bodies longer than this (16 KiB) are kept apart from the rest of their entry, in
/// `bodies`, so that refreshing the entry after a 304 rewrites a record of a few
/// hundred bytes instead of the whole body.
///
/// Why 16 KiB: LMDB keeps values up to about half a page (2 KiB of a 4 KiB page)
/// inside a leaf and gives longer ones their own overflow pages, so an inline entry of
/// 16 KiB costs at most five pages to rewrite, against one or two for a head alone, a
/// difference lost in the commit's flush; from there on the pages a rewrite dirties
/// grow with the body (256 for 1 MiB). Below it, keeping the body inline spares each
/// hit a second B-tree lookup and each put a second record, which for small entries
/// are a visible part of their cost.
pub(crate) const BODY_APART_ABOVE: usize = 16 << 10;

/// The first four bytes of an entry record whose body is kept apart (`HCE\x01` starts
/// an inline one).
pub(crate) const HEAD_TAG: [u8; 4] = *b"HCH\x01";

/// An entry record, by form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryRecord<'a> {
    /// The whole encoding.
    Inline(&'a [u8]),
    /// The encoding without its body (the tag removed); the body is in `bodies`.
    Head(&'a [u8]),
}

impl<'a> EntryRecord<'a> {
    /// The form of an `entries` value.
    pub(crate) fn of(value: &'a [u8]) -> EntryRecord<'a> {
        match value.strip_prefix(&HEAD_TAG[..]) {
            Some(head) => EntryRecord::Head(head),
            None => EntryRecord::Inline(value),
        }
    }
}

/// Length of a record id: cache key + variant.
pub(crate) const ID_LEN: usize = 40;
/// Length of an index key: timestamp + record id.
pub(crate) const INDEX_KEY_LEN: usize = 8 + ID_LEN;

/// A record id: the cache key followed by the big-endian variant.
pub(crate) type RecordId = [u8; ID_LEN];

/// The record id of `key` / `variant`.
pub(crate) fn record_id(key: &CacheKey, variant: VariantId) -> RecordId {
    let mut id = [0u8; ID_LEN];
    id[..32].copy_from_slice(key.as_bytes());
    id[32..].copy_from_slice(&variant.0.to_be_bytes());
    id
}

/// Splits a record id back into key and variant; `None` when `bytes` is not one.
pub(crate) fn parse_record_id(bytes: &[u8]) -> Option<(CacheKey, VariantId)> {
    let key: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    let variant: [u8; 8] = bytes.get(32..ID_LEN)?.try_into().ok()?;
    (bytes.len() == ID_LEN).then_some((CacheKey(key), VariantId(u64::from_be_bytes(variant))))
}

/// Nanoseconds since the Unix epoch, saturating (times before 1970 are 0).
pub(crate) fn nanos(time: SystemTime) -> u64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => u64::try_from(since.as_nanos()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

/// The instant `nanos` nanoseconds after the Unix epoch.
#[cfg(test)]
pub(crate) fn from_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_nanos(nanos)
}

/// An index key: `time` (big-endian nanoseconds) then the record id.
pub(crate) fn index_key(time: u64, id: &RecordId) -> [u8; INDEX_KEY_LEN] {
    let mut out = [0u8; INDEX_KEY_LEN];
    out[..8].copy_from_slice(&time.to_be_bytes());
    out[8..].copy_from_slice(id);
    out
}

/// Splits an index key into its time and record id.
pub(crate) fn parse_index_key(bytes: &[u8]) -> Option<(u64, RecordId)> {
    if bytes.len() != INDEX_KEY_LEN {
        return None;
    }
    let time: [u8; 8] = bytes[..8].try_into().ok()?;
    let id: RecordId = bytes[8..].try_into().ok()?;
    Some((u64::from_be_bytes(time), id))
}

/// The fixed part of a meta record: what index maintenance and byte accounting need,
/// readable without decoding the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetaHeader {
    /// `created`, nanoseconds since the epoch.
    pub(crate) created: u64,
    /// `expires`, nanoseconds since the epoch; `None` = never.
    pub(crate) expires: Option<u64>,
    /// The bytes the entry takes: its `entries` record plus its body in `bodies`
    /// when kept apart (the length of the `entries` record alone in the previous
    /// layout, where it held everything).
    pub(crate) entry_len: u64,
}

/// Tag of the current meta-record layout.
const META_TAG: u8 = 1;
/// Length of the encoded [`MetaHeader`].
pub(crate) const META_HEADER_LEN: usize = 1 + 8 + 1 + 8 + 8;

impl MetaHeader {
    /// Writes the header.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(META_TAG);
        out.extend_from_slice(&self.created.to_be_bytes());
        out.push(u8::from(self.expires.is_some()));
        out.extend_from_slice(&self.expires.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.entry_len.to_be_bytes());
    }

    /// Reads the header at the start of a meta record; `None` when malformed.
    pub(crate) fn read(record: &[u8]) -> Option<MetaHeader> {
        let header = record.get(..META_HEADER_LEN)?;
        if header[0] != META_TAG {
            return None;
        }
        let u64_at =
            |at: usize| header.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        let created = u64_at(1)?;
        let expires = match header[9] {
            0 => None,
            1 => Some(u64_at(10)?),
            _ => return None,
        };
        let entry_len = u64_at(18)?;
        Some(MetaHeader { created, expires, entry_len })
    }
}

/// Decodes the [`EntryMeta`] of a meta record stored under `id`; `None` when the
/// record is malformed or belongs to another id.
pub(crate) fn decode_meta_record(id: &[u8], record: &[u8]) -> Option<EntryMeta> {
    let (key, variant) = parse_record_id(id)?;
    MetaHeader::read(record)?;
    let meta = EntryMeta::decode_prefix(record.get(META_HEADER_LEN..)?).ok()?;
    (meta.key == key && meta.variant == variant).then_some(meta)
}

/// An entry encoded and ready to be written: everything a write transaction needs,
/// prepared outside it (and, for the async store, on the caller's thread).
#[derive(Debug)]
pub(crate) struct PreparedEntry {
    /// Record id.
    pub(crate) id: RecordId,
    /// The `entries` record: the whole encoding, or [`HEAD_TAG`] and the head.
    pub(crate) record: Vec<u8>,
    /// The body, when kept apart (a shared view of the entry's, not a copy).
    pub(crate) body: Option<Bytes>,
    /// The meta record.
    pub(crate) meta: Vec<u8>,
    /// The meta record's header.
    pub(crate) header: MetaHeader,
}

/// Queued by its key, weighing what it keeps alive (the records and the body).
impl Queued for PreparedEntry {
    fn key(&self) -> CacheKey {
        let mut key = [0; 32];
        key.copy_from_slice(&self.id[..32]);
        CacheKey(key)
    }
    fn variant(&self) -> VariantId {
        let mut variant = [0; 8];
        variant.copy_from_slice(&self.id[32..]);
        VariantId(u64::from_be_bytes(variant))
    }
    fn weight(&self) -> u64 {
        self.stored_len().saturating_add(self.meta.len() as u64)
    }
}

impl PreparedEntry {
    /// Encodes `entry` (its body apart when longer than [`BODY_APART_ABOVE`]) and
    /// builds its meta record.
    pub(crate) fn new(entry: &Entry) -> PreparedEntry {
        let (record, body, encoding_at) = if entry.response.body.len() > BODY_APART_ABOVE {
            let head = entry.encode_head();
            let mut record = Vec::with_capacity(HEAD_TAG.len() + head.len());
            record.extend_from_slice(&HEAD_TAG);
            record.extend_from_slice(&head);
            (record, Some(entry.response.body.clone()), HEAD_TAG.len())
        } else {
            (entry.encode(), None, 0)
        };
        let body_len = body.as_ref().map_or(0, Bytes::len);
        let header = MetaHeader {
            created: nanos(entry.created),
            expires: entry.expires.map(nanos),
            entry_len: (record.len() + body_len) as u64,
        };
        let meta = meta_record(&header, &record[encoding_at..]);
        PreparedEntry { id: record_id(&entry.key, entry.variant), record, body, meta, header }
    }

    /// The bytes the entry takes once written (see [`MetaHeader::entry_len`]).
    pub(crate) fn stored_len(&self) -> u64 {
        self.header.entry_len
    }

    /// The entry back, decoded from the records as a read of them once written would
    /// (the body shared, not copied).
    pub(crate) fn decode(&self) -> Result<Entry, DecodeError> {
        match &self.body {
            None => Entry::decode_shared(Bytes::copy_from_slice(&self.record)),
            Some(body) => {
                Entry::decode_split(Bytes::copy_from_slice(&self.record[HEAD_TAG.len()..]), body.clone())
            }
        }
    }
}

/// The meta record of an entry whose encoding (or head) is `encoding`: the header,
/// then the metadata block that leads the encoding when the encoding says how long it
/// is, else the whole encoding (decode_prefix reads either).
pub(crate) fn meta_record(header: &MetaHeader, encoding: &[u8]) -> Vec<u8> {
    let prefix_len = EntryMeta::prefix_len(&encoding[..encoding.len().min(10)])
        .filter(|&len| len <= encoding.len())
        .unwrap_or(encoding.len());
    let mut meta = Vec::with_capacity(META_HEADER_LEN + prefix_len);
    header.write(&mut meta);
    meta.extend_from_slice(&encoding[..prefix_len]);
    meta
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn record_ids_round_trip_and_sort_by_key_then_variant() {
        let key = CacheKey([7; 32]);
        let a = record_id(&key, VariantId(1));
        let b = record_id(&key, VariantId(256));
        assert!(a < b);
        assert_eq!(parse_record_id(&a), Some((key, VariantId(1))));
        assert_eq!(parse_record_id(&a[..39]), None);
    }

    #[test]
    fn index_keys_sort_by_time() {
        let id = record_id(&CacheKey([1; 32]), VariantId(0));
        let early = index_key(5, &id);
        let late = index_key(256, &id);
        assert!(early < late);
        assert_eq!(parse_index_key(&late), Some((256, id)));
        assert_eq!(parse_index_key(&late[1..]), None);
    }

    #[test]
    fn meta_headers_round_trip_and_reject_garbage() {
        for header in [
            MetaHeader { created: 1, expires: None, entry_len: 10 },
            MetaHeader { created: u64::MAX, expires: Some(42), entry_len: 0 },
        ] {
            let mut out = Vec::new();
            header.write(&mut out);
            assert_eq!(out.len(), META_HEADER_LEN);
            assert_eq!(MetaHeader::read(&out), Some(header));
        }
        assert_eq!(MetaHeader::read(&[1, 2, 3]), None);
        assert_eq!(MetaHeader::read(&[9; META_HEADER_LEN]), None);
    }

    #[test]
    fn long_bodies_are_prepared_apart_and_short_ones_inline() {
        use httpcache_core::conformance::{body, entry};
        let key = CacheKey([3; 32]);
        let short = entry(key, 0, body(1, BODY_APART_ABOVE));
        let prepared = PreparedEntry::new(&short);
        assert_eq!(prepared.record, short.encode());
        assert_eq!(EntryRecord::of(&prepared.record), EntryRecord::Inline(&prepared.record[..]));
        assert!(prepared.body.is_none());
        assert_eq!(prepared.stored_len(), short.encode().len() as u64);

        let long = entry(key, 0, body(1, BODY_APART_ABOVE + 1));
        let prepared = PreparedEntry::new(&long);
        let head = long.encode_head();
        assert_eq!(EntryRecord::of(&prepared.record), EntryRecord::Head(&head[..]));
        let body = prepared.body.as_ref().expect("a long body is kept apart");
        assert_eq!(body.as_ptr(), long.response.body.as_ptr(), "shared, not copied");
        assert_eq!(prepared.stored_len(), (HEAD_TAG.len() + long.encode().len()) as u64);
        assert_eq!(decode_meta_record(&prepared.id, &prepared.meta), Some(long.meta()));
    }

    #[test]
    fn nanos_saturate() {
        assert_eq!(nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(nanos(from_nanos(12345)), 12345);
    }
}
