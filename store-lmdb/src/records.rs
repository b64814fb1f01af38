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

use std::time::{SystemTime, UNIX_EPOCH};

use httpcache_core::{CacheKey, Entry, EntryMeta, VariantId};

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
    /// Length of the encoded entry in the `entries` database.
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
    /// The binary encoding of the entry.
    pub(crate) encoded: Vec<u8>,
    /// The meta record.
    pub(crate) meta: Vec<u8>,
    /// The meta record's header.
    pub(crate) header: MetaHeader,
}

impl PreparedEntry {
    /// Encodes `entry` and builds its meta record.
    pub(crate) fn new(entry: &Entry) -> PreparedEntry {
        let encoded = entry.encode();
        let header = MetaHeader {
            created: nanos(entry.created),
            expires: entry.expires.map(nanos),
            entry_len: encoded.len() as u64,
        };
        // The metadata block leads the encoding; keep only it when the encoding says
        // how long it is, else the whole encoding (decode_prefix reads either).
        let prefix_len = EntryMeta::prefix_len(&encoded[..encoded.len().min(10)])
            .filter(|&len| len <= encoded.len())
            .unwrap_or(encoded.len());
        let mut meta = Vec::with_capacity(META_HEADER_LEN + prefix_len);
        header.write(&mut meta);
        meta.extend_from_slice(&encoded[..prefix_len]);
        PreparedEntry { id: record_id(&entry.key, entry.variant), encoded, meta, header }
    }
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
    fn nanos_saturate() {
        assert_eq!(nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(nanos(from_nanos(12345)), 12345);
    }
}
