//! A write txn's ranges are charged to a response budget: past it the ranges answer nothing,
//! the writes still apply, and the budget reports the overrun for the caller to refuse.

use basalt_engine::{
    Engine, PutRequest, RangeRequest, RequestOp, ResponseBudget, ResponseOp, TxnRequest,
};

fn put(key: &str, value: Vec<u8>) -> PutRequest {
    PutRequest {
        key: key.as_bytes().to_vec(),
        value,
        ..Default::default()
    }
}

fn get(key: &str) -> RequestOp {
    RequestOp::Range(RangeRequest {
        key: key.as_bytes().to_vec(),
        ..Default::default()
    })
}

#[test]
fn a_write_txn_past_its_budget_applies_its_writes_and_reports_the_overrun() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    batch.put(&put("big", vec![b'v'; 10_000])).unwrap();
    let request = TxnRequest {
        success: vec![
            get("big"),
            RequestOp::Put(put("w", b"1".to_vec())),
            get("big"),
            get("big"),
        ],
        ..Default::default()
    };
    let mut budget = ResponseBudget::new(15_000);
    let (response, events) = batch.txn_within(&request, &mut budget).unwrap();
    assert!(budget.is_exceeded());
    assert!(budget.check().is_err());
    assert_eq!(events.len(), 1, "the put applied");
    let ranges: Vec<usize> = response
        .responses
        .iter()
        .filter_map(|op| match op {
            ResponseOp::Range(r) => Some(r.kvs.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        ranges,
        vec![1, 0, 0],
        "the first range fits, the later ones answer nothing"
    );
    // The batch is not poisoned: it goes on, and the write is there.
    let mut enough = ResponseBudget::new(1 << 20);
    let (whole, _) = batch.txn_within(&request, &mut enough).unwrap();
    assert!(enough.check().is_ok());
    assert!(whole.responses.iter().all(|op| match op {
        ResponseOp::Range(r) => r.kvs.len() == 1,
        _ => true,
    }));
    batch.commit().unwrap();
    let read = engine.read().unwrap();
    assert_eq!(
        read.range(&RangeRequest {
            key: b"w".to_vec(),
            ..Default::default()
        })
        .unwrap()
        .kvs
        .len(),
        1
    );
}
