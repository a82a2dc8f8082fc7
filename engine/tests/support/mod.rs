//! Helpers the engine's test binaries share (each includes this module, and uses some of it).
#![allow(dead_code)]

use basalt_engine::{PutRequest, RangeRequest, ReadView};

/// A put of `key` = `value`, nothing else set.
pub fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

/// The value of `key` in `view`, if it is there.
pub fn value_at(view: &ReadView, key: &str) -> Option<Vec<u8>> {
    let response = view
        .range(&RangeRequest {
            key: key.into(),
            ..Default::default()
        })
        .unwrap();
    response.kvs.first().map(|kv| kv.value.clone())
}
