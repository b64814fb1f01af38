//! Vary, VariantId and entity tags. The input is split on `\n`: the first line is a
//! `Vary` value, the rest are alternately header lines of a "stored" and a "new"
//! request (`name: value`). Checks: no panics; `Vary::matches` implies equal
//! `VariantId`s; `matches` is reflexive for non-`*` Vary; entity tags round-trip.
#![no_main]

use http::header::{ETAG, IF_NONE_MATCH, VARY};
use http::{HeaderMap, HeaderName, HeaderValue};
use httpcache_core::header::etag::{etag, if_none_match, parse_entity_tag_list};
use httpcache_core::header::{EntityTag, VariantId, Vary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(tag) = EntityTag::parse(data) {
        let printed = tag.to_header_string();
        assert_eq!(EntityTag::parse(printed.as_bytes()), Some(tag.clone()));
        assert!(tag.weak_eq(&tag));
        assert_eq!(tag.strong_eq(&tag), !tag.weak);
    }
    let _ = parse_entity_tag_list(data);

    let mut lines = data.split(|&b| b == b'\n');
    let mut response = HeaderMap::new();
    if let Some(Ok(value)) = lines.next().map(HeaderValue::from_bytes) {
        response.append(VARY, value.clone());
        response.append(ETAG, value.clone());
        response.append(IF_NONE_MATCH, value);
    }
    let vary = Vary::parse(&response);
    let _ = etag(&response);
    let _ = if_none_match(&response);

    let mut stored = HeaderMap::new();
    let mut request = HeaderMap::new();
    for (index, line) in lines.enumerate() {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(&line[colon + 1..]))
        else {
            continue;
        };
        let target = if index % 2 == 0 { &mut stored } else { &mut request };
        target.append(name, value);
    }
    if vary.matches(&stored, &request) {
        assert_eq!(VariantId::compute(&vary, &stored), VariantId::compute(&vary, &request));
    }
    match &vary {
        Vary::Any => {
            assert!(!vary.matches(&stored, &stored));
            assert_eq!(VariantId::compute(&vary, &stored), VariantId(u64::MAX));
        }
        Vary::Fields(fields) => {
            assert!(vary.matches(&stored, &stored));
            if fields.is_empty() {
                assert_eq!(VariantId::compute(&vary, &stored), VariantId(0));
            }
        }
    }
});
