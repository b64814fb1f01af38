//! The versioned binary encoding. Layout (all integers little-endian):
//! `MAGIC` (4) | version u16 | meta length u32 | meta block | checksum of the
//! meta block and headers (u32) | request headers | response version + headers |
//! final URL | body length u64 | body.

use bytes::Bytes;

use super::{DecodeError, Entry, EntryMeta};

/// The first four bytes of every binary entry.
pub const MAGIC: [u8; 4] = *b"HCE\x01";

/// The binary format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

impl Entry {
    /// Encodes the entry in the binary format.
    pub fn encode(&self) -> Vec<u8> {
        todo!("entry: encode")
    }

    /// Decodes a binary entry, copying what it needs out of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let _ = bytes;
        todo!("entry: decode")
    }

    /// Decodes a binary entry held in shared memory: the body and header values
    /// point into `bytes` without copying.
    pub fn decode_shared(bytes: Bytes) -> Result<Entry, DecodeError> {
        let _ = bytes;
        todo!("entry: decode_shared")
    }
}

impl EntryMeta {
    /// How many leading bytes of an encoded entry [`EntryMeta::decode_prefix`] needs,
    /// read from the first 10 bytes; `None` when those are not an entry header.
    pub fn prefix_len(header: &[u8]) -> Option<usize> {
        let _ = header;
        todo!("entry: prefix_len")
    }

    /// Decodes the metadata from the start of an encoded entry, without the body.
    pub fn decode_prefix(bytes: &[u8]) -> Result<EntryMeta, DecodeError> {
        let _ = bytes;
        todo!("entry: decode_prefix")
    }
}
