//! The entry decoders: arbitrary bytes must decode to an entry or to a
//! `DecodeError`, never panic (a bad entry is a miss, DESIGN.md "Entries and stores").
#![no_main]

use bytes::Bytes;
use httpcache_core::{Entry, EntryMeta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Entry::decode(data);
    let _ = Entry::decode_shared(Bytes::copy_from_slice(data));
    // The same bytes as a head and a body kept apart, split where the first byte says.
    let at = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let _ = Entry::decode_split(Bytes::copy_from_slice(&data[..at]), Bytes::copy_from_slice(&data[at..]));
    let _ = EntryMeta::prefix_len(data);
    let _ = EntryMeta::decode_prefix(data);
    let _ = Entry::from_json(data);
});
