//! The JSON encoding, for caches a human wants to read. Text bodies are stored as
//! strings, others as base64; times as Unix nanoseconds plus an HTTP date for reading.

use super::{DecodeError, Entry};

impl Entry {
    /// Encodes the entry as pretty-printed JSON.
    pub fn to_json(&self) -> Vec<u8> {
        todo!("entry: to_json")
    }

    /// Decodes JSON written by [`Entry::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let _ = bytes;
        todo!("entry: from_json")
    }
}
