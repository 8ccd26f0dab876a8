use std::sync::Arc;

use serde_json::value::RawValue;

use super::*;

#[test]
fn the_page_cache_counts_keys_json_and_stamps_against_its_bound() {
    let cache = PageCache::default();
    // Pages of 500 short rows: 3 KB of JSON, about 40 KB of names and `modified`.
    let page = |i: usize| {
        let stamps: Vec<[Option<String>; 2]> = (0..500)
            .map(|r| {
                [
                    Some(format!("n{r}")),
                    Some("2026-11-28 08:35:16.132698".to_string()),
                ]
            })
            .collect();
        let json = format!("[{}]", vec!["[1]"; 500].join(","));
        let json = Arc::new(RawValue::from_string(json).unwrap());
        (PageKey(format!("page {i}")), stamps, json)
    };
    let (key, stamps, json) = page(0);
    let one = key.0.len()
        + Page {
            stamps: stamps.clone(),
            json: json.clone(),
        }
        .bytes();
    assert!(one > 30_000, "stamps are counted: {one}");
    for i in 0..1_000 {
        let (key, stamps, json) = page(i);
        cache.put(key, stamps, json);
        let (pages, bytes) = cache.held();
        assert!(bytes <= MAX_CACHE_BYTES, "{bytes} bytes");
        assert!(
            pages * one <= MAX_CACHE_BYTES,
            "{pages} pages of {one} bytes"
        );
    }
    assert!(cache.held().0 > 0, "pages of this size are cached");
}
