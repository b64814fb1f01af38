//! The per-key file: a tiny container of that key's variants.
//!
//! Binary (all integers little-endian):
//!
//! ```text
//! CONTAINER_MAGIC (4) | container version u16 | reserved u16 (0) | record count u32
//! then per record:     record length u64 | record (`record length` bytes)
//! ```
//!
//! A record is one of:
//!
//! * inline: one [`Entry::encode`] (it starts with the entry magic `HCE\x01`), for
//!   bodies of at most [`BODY_APART_ABOVE`] bytes, and every record of files written
//!   before bodies were kept apart;
//! * head: [`HEAD_TAG`] | generation u64 | [`Entry::encode_head`] (the encoding without
//!   its body). The body is the file [`body_file_name`]`(key, generation)` next to the
//!   key's file, exactly as long as the head says. That file is created under a name
//!   no other file had (`create_new`), written whole before any head names it, and
//!   never changed: a generation names one body forever.
//!
//! Each record is length-prefixed, so `scan` reads a record's metadata prefix and seeks
//! past its body. JSON: the file is a JSON array of [`Entry::to_json`] objects (bodies
//! always inline).
//!
//! A file whose container is broken (wrong magic or version, a length running past the
//! end, trailing bytes) is invalid as a whole; a record that does not decode is invalid
//! alone and the other records of the file still count.

use std::io::{self, BufRead, Read, Seek};
use std::ops::Range;

use bytes::Bytes;
use httpcache_core::{CacheKey, Entry, EntryMeta};
use serde_json::value::RawValue;

use crate::Format;

/// The first four bytes of a binary container file.
pub(crate) const CONTAINER_MAGIC: [u8; 4] = *b"HCF\x01";

/// The container layout version this build writes and reads.
pub(crate) const CONTAINER_VERSION: u16 = 1;

/// Length of the container header.
const HEADER_LEN: usize = 12;

/// Length of a record's length prefix.
const LENGTH_LEN: usize = 8;

/// Length of the fixed header of an encoded entry, from which `EntryMeta::prefix_len` reads.
const ENTRY_HEADER_LEN: usize = 10;

/// Bodies longer than this (128 KiB) go to a file of their own, so that refreshing the
/// entry after a 304 rewrites the key's small file and not the body.
///
/// Why 128 KiB, where LMDB splits at 16 KiB: here the price of a split is paid on
/// every hit, as a second `open`, `fstat`, `read` and `close`, measured at 3 to 8 µs,
/// as much as reading a whole 64 KiB body (the fs hit must stay within twice LMDB's),
/// while a put's fixed cost (a temporary file, a rename) is large enough that
/// rewriting a body of up to 128 KiB adds little to it (a 64 KiB put measured about
/// 170 µs against 85 µs for 1 KiB). Above it, reading the body dominates a hit and
/// writing it dominates a put, and the split pays.
pub(crate) const BODY_APART_ABOVE: usize = 128 << 10;

/// The first four bytes of a head record (`HCE\x01` starts an inline one).
pub(crate) const HEAD_TAG: [u8; 4] = *b"HCH\x01";

/// Length of a head record's tag and generation.
const HEAD_PREFIX_LEN: usize = HEAD_TAG.len() + 8;

/// The suffix of body files.
pub(crate) const BODY_SUFFIX: &str = ".body";

/// A binary record, by form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    /// A whole encoded entry.
    Inline(&'a [u8]),
    /// The encoding without its body, which is in the body file of `generation`.
    Head {
        /// The body file's generation.
        generation: u64,
        /// Where the head starts in the record.
        offset: usize,
        /// The head.
        head: &'a [u8],
    },
}

impl<'a> Record<'a> {
    /// The form of a binary record. A record that starts with the tag but is too short
    /// for a generation is an (undecodable) inline one.
    pub(crate) fn of(record: &'a [u8]) -> Record<'a> {
        match record.strip_prefix(&HEAD_TAG[..]) {
            Some(rest) if rest.len() >= 8 => {
                let generation = u64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
                Record::Head { generation, offset: HEAD_PREFIX_LEN, head: &rest[8..] }
            }
            _ => Record::Inline(record),
        }
    }

    /// The encoding (or head) the metadata is read from.
    fn encoding(&self) -> &'a [u8] {
        match *self {
            Record::Inline(record) => record,
            Record::Head { head, .. } => head,
        }
    }

    /// The generation of the body file, for a head.
    pub(crate) fn generation(&self) -> Option<u64> {
        match *self {
            Record::Inline(_) => None,
            Record::Head { generation, .. } => Some(generation),
        }
    }
}

/// A head record: the tag, `generation`, then `entry`'s head.
pub(crate) fn encode_head_record(entry: &Entry, generation: u64) -> Vec<u8> {
    let head = entry.encode_head();
    let mut record = Vec::with_capacity(HEAD_PREFIX_LEN + head.len());
    record.extend_from_slice(&HEAD_TAG);
    record.extend_from_slice(&generation.to_le_bytes());
    record.extend_from_slice(&head);
    record
}

/// The name of the body file of `key` and `generation`: `<64 hex>-<16 hex>.body`.
pub(crate) fn body_file_name(key: &CacheKey, generation: u64) -> String {
    format!("{key}-{generation:016x}{BODY_SUFFIX}")
}

/// The key and generation a body file's name holds, if it is one of ours.
pub(crate) fn parse_body_file_name(name: &str) -> Option<(CacheKey, u64)> {
    let (hex, generation) = name.strip_suffix(BODY_SUFFIX)?.split_once('-')?;
    let lower_hex = |text: &str| text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != 64 || generation.len() != 16 || !lower_hex(hex) || !lower_hex(generation) {
        return None;
    }
    Some((hex.parse().ok()?, u64::from_str_radix(generation, 16).ok()?))
}

/// Encodes already-encoded records (binary) or JSON objects (JSON) as one file.
pub(crate) fn encode(format: Format, records: &[&[u8]]) -> Vec<u8> {
    match format {
        Format::Binary => {
            let total: usize = records.iter().map(|record| record.len() + LENGTH_LEN).sum();
            let mut out = Vec::with_capacity(HEADER_LEN + total);
            out.extend_from_slice(&CONTAINER_MAGIC);
            out.extend_from_slice(&CONTAINER_VERSION.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&(records.len() as u32).to_le_bytes());
            for record in records {
                out.extend_from_slice(&(record.len() as u64).to_le_bytes());
                out.extend_from_slice(record);
            }
            out
        }
        Format::Json => {
            let total: usize = records.iter().map(|record| record.len() + 2).sum();
            let mut out = Vec::with_capacity(total + 4);
            out.extend_from_slice(b"[\n");
            for (i, record) in records.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b",\n");
                }
                out.extend_from_slice(record);
            }
            out.extend_from_slice(b"\n]\n");
            out
        }
    }
}

/// Encodes one entry as a record of `format`.
pub(crate) fn encode_record(format: Format, entry: &Entry) -> Vec<u8> {
    match format {
        Format::Binary => entry.encode(),
        Format::Json => entry.to_json(),
    }
}

/// The container is broken as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid;

/// The byte ranges of the records in `data`.
pub(crate) fn records(format: Format, data: &[u8]) -> Result<Vec<Range<usize>>, Invalid> {
    match format {
        Format::Binary => binary_records(data),
        Format::Json => json_records(data),
    }
}

fn binary_records(data: &[u8]) -> Result<Vec<Range<usize>>, Invalid> {
    let count = binary_header(data.get(..HEADER_LEN).ok_or(Invalid)?)?;
    let mut ranges = Vec::new();
    let mut at = HEADER_LEN;
    for _ in 0..count {
        let length_bytes = data.get(at..at + LENGTH_LEN).ok_or(Invalid)?;
        let length = u64::from_le_bytes(length_bytes.try_into().map_err(|_| Invalid)?);
        let start = at + LENGTH_LEN;
        let end = usize::try_from(length).ok().and_then(|length| start.checked_add(length)).ok_or(Invalid)?;
        if end > data.len() {
            return Err(Invalid);
        }
        ranges.push(start..end);
        at = end;
    }
    if at != data.len() {
        return Err(Invalid);
    }
    Ok(ranges)
}

/// Checks a binary container header; returns the record count.
fn binary_header(header: &[u8]) -> Result<u32, Invalid> {
    if header.len() != HEADER_LEN || header[..4] != CONTAINER_MAGIC {
        return Err(Invalid);
    }
    if u16::from_le_bytes([header[4], header[5]]) != CONTAINER_VERSION {
        return Err(Invalid);
    }
    Ok(u32::from_le_bytes([header[8], header[9], header[10], header[11]]))
}

fn json_records(data: &[u8]) -> Result<Vec<Range<usize>>, Invalid> {
    let values: Vec<&RawValue> = serde_json::from_slice(data).map_err(|_| Invalid)?;
    let base = data.as_ptr() as usize;
    values
        .into_iter()
        .map(|value| {
            // A borrowed RawValue is a sub-slice of `data`: recover its range.
            let text = value.get().as_bytes();
            let start = (text.as_ptr() as usize).checked_sub(base).ok_or(Invalid)?;
            let end = start + text.len();
            if end > data.len() { Err(Invalid) } else { Ok(start..end) }
        })
        .collect()
}

/// Decodes one record whose body (if kept apart) is `body`; `None` when it is not a
/// valid entry of `key`, or a head whose body is missing or not the recorded length.
pub(crate) fn decode_record(
    format: Format,
    data: &Bytes,
    range: Range<usize>,
    body: Option<Bytes>,
    key: &CacheKey,
) -> Option<Entry> {
    let entry = match format {
        Format::Binary => match Record::of(&data[range.clone()]) {
            Record::Inline(_) => Entry::decode_shared(data.slice(range)).ok()?,
            Record::Head { offset, .. } => {
                Entry::decode_split(data.slice(range.start + offset..range.end), body?).ok()?
            }
        },
        Format::Json => Entry::from_json(&data[range]).ok()?,
    };
    (entry.key == *key).then_some(entry)
}

/// The metadata of one record without decoding its body (binary), or `None`.
pub(crate) fn record_meta(format: Format, record: &[u8], key: &CacheKey) -> Option<EntryMeta> {
    let meta = match format {
        Format::Binary => EntryMeta::decode_prefix(Record::of(record).encoding()).ok()?,
        Format::Json => Entry::from_json(record).ok()?.meta(),
    };
    (meta.key == *key).then_some(meta)
}

/// What `scan` learns of one binary record: its metadata (when its prefix decodes)
/// and the generation of its body file (when it is a head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub(crate) meta: Option<EntryMeta>,
    pub(crate) generation: Option<u64>,
}

/// Reads the metadata of every record in a binary file, seeking past bodies; a record
/// whose prefix does not decode has no `meta`. `len` is the file's length.
/// `Ok(Err(Invalid))` when the container is broken.
pub(crate) fn scan_binary<R: BufRead + Seek>(
    reader: &mut R,
    len: u64,
    key: &CacheKey,
) -> io::Result<Result<Vec<Scanned>, Invalid>> {
    let mut header = [0u8; HEADER_LEN];
    if read_exact_or_short(reader, &mut header)? < HEADER_LEN {
        return Ok(Err(Invalid));
    }
    let Ok(count) = binary_header(&header) else {
        return Ok(Err(Invalid));
    };
    let mut at = HEADER_LEN as u64;
    let mut scanned = Vec::new();
    for _ in 0..count {
        let mut length = [0u8; LENGTH_LEN];
        if read_exact_or_short(reader, &mut length)? < LENGTH_LEN {
            return Ok(Err(Invalid));
        }
        let length = u64::from_le_bytes(length);
        at += LENGTH_LEN as u64;
        let Some(end) = at.checked_add(length).filter(|&end| end <= len) else {
            return Ok(Err(Invalid));
        };
        // The record's first bytes: a head's tag and generation, and the entry header,
        // which says how long the metadata prefix is.
        let mut prefix = vec![0u8; (HEAD_PREFIX_LEN + ENTRY_HEADER_LEN).min(length as usize)];
        let got = read_exact_or_short(reader, &mut prefix)?;
        prefix.truncate(got);
        let mut consumed = got as u64;
        let (generation, offset) = match Record::of(&prefix) {
            Record::Head { generation, offset, .. } => (Some(generation), offset),
            Record::Inline(_) => (None, 0),
        };
        let prefix_len = prefix
            .get(offset..offset + ENTRY_HEADER_LEN)
            .and_then(EntryMeta::prefix_len)
            .and_then(|n| n.checked_add(offset))
            .filter(|&n| n as u64 <= length);
        let mut meta = None;
        if let Some(prefix_len) = prefix_len {
            let read = prefix.len();
            if prefix_len > read {
                prefix.resize(prefix_len, 0);
                let rest = read_exact_or_short(reader, &mut prefix[read..])?;
                consumed += rest as u64;
                prefix.truncate(read + rest);
            } else {
                prefix.truncate(prefix_len);
            }
            meta = prefix
                .get(offset..)
                .and_then(|encoding| EntryMeta::decode_prefix(encoding).ok())
                .filter(|meta| meta.key == *key);
        }
        scanned.push(Scanned { meta, generation });
        let skip = length - consumed;
        reader.seek_relative(i64::try_from(skip).map_err(|_| io::Error::other("record too long"))?)?;
        at = end;
    }
    if at != len {
        return Ok(Err(Invalid));
    }
    Ok(Ok(scanned))
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn read_exact_or_short<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use httpcache_core::conformance::{body, entry, key};

    use super::*;

    #[test]
    fn binary_round_trip_and_scan() {
        let a = entry(key(1), 1, body(1, 5000));
        let b = entry(key(1), 2, body(2, 0));
        let (ea, eb) = (a.encode(), b.encode());
        let file = encode(Format::Binary, &[&ea, &eb]);
        let data = Bytes::from(file);
        let ranges = records(Format::Binary, &data).unwrap();
        assert_eq!(ranges.len(), 2);
        assert_eq!(decode_record(Format::Binary, &data, ranges[0].clone(), None, &key(1)), Some(a.clone()));
        assert_eq!(decode_record(Format::Binary, &data, ranges[1].clone(), None, &key(1)), Some(b.clone()));
        assert_eq!(decode_record(Format::Binary, &data, ranges[1].clone(), None, &key(2)), None, "wrong key");
        let scanned = scan_binary(&mut Cursor::new(&data[..]), data.len() as u64, &key(1)).unwrap().unwrap();
        let metas: Vec<_> = scanned.into_iter().map(|s| s.meta.unwrap()).collect();
        assert_eq!(metas, vec![a.meta(), b.meta()]);
    }

    #[test]
    fn head_records_round_trip_and_scan() {
        let a = entry(key(1), 1, body(1, 50_000));
        let b = entry(key(1), 2, body(2, 10));
        let head = encode_head_record(&a, 0x0123_4567_89ab_cdef);
        let inline = b.encode();
        let data = Bytes::from(encode(Format::Binary, &[&head, &inline]));
        let ranges = records(Format::Binary, &data).unwrap();
        let record = Record::of(&data[ranges[0].clone()]);
        assert_eq!(record.generation(), Some(0x0123_4567_89ab_cdef));
        assert_eq!(record_meta(Format::Binary, &data[ranges[0].clone()], &key(1)), Some(a.meta()));
        let body = a.response.body.clone();
        let decoded = decode_record(Format::Binary, &data, ranges[0].clone(), Some(body.clone()), &key(1));
        assert_eq!(decoded, Some(a.clone()));
        assert_eq!(decode_record(Format::Binary, &data, ranges[0].clone(), None, &key(1)), None, "no body");
        let short = body.slice(1..);
        assert_eq!(decode_record(Format::Binary, &data, ranges[0].clone(), Some(short), &key(1)), None);
        let scanned = scan_binary(&mut Cursor::new(&data[..]), data.len() as u64, &key(1)).unwrap().unwrap();
        assert_eq!(
            scanned,
            vec![
                Scanned { meta: Some(a.meta()), generation: Some(0x0123_4567_89ab_cdef) },
                Scanned { meta: Some(b.meta()), generation: None },
            ]
        );
    }

    #[test]
    fn body_file_names_round_trip_and_reject_others() {
        let name = body_file_name(&key(1), 42);
        assert_eq!(parse_body_file_name(&name), Some((key(1), 42)));
        let hex = key(1).to_string();
        for other in [
            hex.clone(),
            format!("{hex}-000000000000002a"),
            format!("{hex}-00000000000002a.body"),
            format!("{hex}-000000000000002A.body"),
            format!("{}-000000000000002a.body", &hex[1..]),
            format!("{hex}.body"),
            format!("{}-000000000000002a.body", hex.to_uppercase()),
        ] {
            assert_eq!(parse_body_file_name(&other), None, "{other}");
        }
    }

    #[test]
    fn broken_binary_containers_are_invalid() {
        let a = entry(key(1), 1, body(1, 100)).encode();
        let good = encode(Format::Binary, &[&a]);
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), good[..11].to_vec(), good[..good.len() - 1].to_vec()];
        let mut trailing = good.clone();
        trailing.push(0);
        cases.push(trailing);
        let mut magic = good.clone();
        magic[0] = b'X';
        cases.push(magic);
        let mut version = good.clone();
        version[4] = 9;
        cases.push(version);
        let mut huge = good.clone();
        huge[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        cases.push(huge);
        let mut many = good.clone();
        many[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(many);
        for case in cases {
            assert_eq!(records(Format::Binary, &case), Err(Invalid), "{case:?}");
            let scanned = scan_binary(&mut Cursor::new(&case[..]), case.len() as u64, &key(1)).unwrap();
            assert!(scanned.is_err());
        }
    }

    #[test]
    fn bad_records_are_skipped_by_scan() {
        let a = entry(key(1), 1, body(1, 100)).encode();
        let file = encode(Format::Binary, &[b"", b"garbage that is not an entry", &a[..a.len() - 1], &a]);
        let scanned = scan_binary(&mut Cursor::new(&file[..]), file.len() as u64, &key(1)).unwrap().unwrap();
        // The truncated record's prefix is intact: scan lists it (get will drop it).
        assert_eq!(scanned.iter().filter(|s| s.meta.is_some()).count(), 2);
    }

    #[test]
    fn json_round_trip() {
        let a = entry(key(1), 1, body(1, 50));
        let b = entry(key(1), 2, Bytes::from_static(b"hello"));
        let (ja, jb) = (a.to_json(), b.to_json());
        let file = Bytes::from(encode(Format::Json, &[&ja, &jb]));
        let parsed: serde_json::Value = serde_json::from_slice(&file).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(2), "a JSON array a human can read");
        let ranges = records(Format::Json, &file).unwrap();
        assert_eq!(decode_record(Format::Json, &file, ranges[0].clone(), None, &key(1)), Some(a.clone()));
        assert_eq!(decode_record(Format::Json, &file, ranges[1].clone(), None, &key(1)), Some(b.clone()));
        assert_eq!(record_meta(Format::Json, &file[ranges[1].clone()], &key(1)), Some(b.meta()));
        assert_eq!(records(Format::Json, b"[1, {\"x\": [2]}]").map(|r| r.len()), Ok(2));
        assert_eq!(records(Format::Json, b"{}"), Err(Invalid));
        assert_eq!(records(Format::Json, b""), Err(Invalid));
        assert_eq!(records(Format::Json, &encode(Format::Json, &[])).map(|r| r.len()), Ok(0));
    }
}
