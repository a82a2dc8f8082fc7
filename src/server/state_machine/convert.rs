//! Conversion between etcd's wire messages (`etcdserverpb`, `mvccpb`) and the engine's request
//! and response types. Field by field, both ways; the one place the two vocabularies meet.

use basalt_engine as engine;
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::proto::mvccpb;

/// etcd's RangeRequest as the engine's.
pub fn range_request(request: &pb::RangeRequest) -> engine::RangeRequest {
    use pb::range_request::{SortOrder, SortTarget};
    engine::RangeRequest {
        key: request.key.clone(),
        range_end: request.range_end.clone(),
        limit: request.limit,
        revision: request.revision,
        sort_order: match SortOrder::try_from(request.sort_order).unwrap_or(SortOrder::None) {
            SortOrder::None => engine::SortOrder::None,
            SortOrder::Ascend => engine::SortOrder::Ascend,
            SortOrder::Descend => engine::SortOrder::Descend,
        },
        sort_target: match SortTarget::try_from(request.sort_target).unwrap_or(SortTarget::Key) {
            SortTarget::Key => engine::SortTarget::Key,
            SortTarget::Version => engine::SortTarget::Version,
            SortTarget::Create => engine::SortTarget::Create,
            SortTarget::Mod => engine::SortTarget::Mod,
            SortTarget::Value => engine::SortTarget::Value,
        },
        keys_only: request.keys_only,
        count_only: request.count_only,
        min_mod_revision: request.min_mod_revision,
        max_mod_revision: request.max_mod_revision,
        min_create_revision: request.min_create_revision,
        max_create_revision: request.max_create_revision,
    }
}

/// The engine's KeyValue as etcd's.
pub fn key_value(kv: engine::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

/// The engine's RangeResponse as etcd's (the header is filled by the caller).
pub fn range_response(
    response: engine::RangeResponse,
    header: pb::ResponseHeader,
) -> pb::RangeResponse {
    pb::RangeResponse {
        header: Some(pb::ResponseHeader {
            revision: response.header_revision,
            ..header
        }),
        kvs: response.kvs.into_iter().map(key_value).collect(),
        more: response.more,
        count: response.count,
    }
}

/// etcd's PutRequest as the engine's.
pub fn put_request(request: &pb::PutRequest) -> engine::PutRequest {
    engine::PutRequest {
        key: request.key.clone(),
        value: request.value.clone(),
        lease: request.lease,
        prev_kv: request.prev_kv,
        ignore_value: request.ignore_value,
        ignore_lease: request.ignore_lease,
    }
}

/// The engine's PutResponse as etcd's.
pub fn put_response(response: engine::PutResponse, header: pb::ResponseHeader) -> pb::PutResponse {
    pb::PutResponse {
        header: Some(pb::ResponseHeader {
            revision: response.header_revision,
            ..header
        }),
        prev_kv: response.prev_kv.map(key_value),
    }
}

/// etcd's DeleteRangeRequest as the engine's.
pub fn delete_range_request(request: &pb::DeleteRangeRequest) -> engine::DeleteRangeRequest {
    engine::DeleteRangeRequest {
        key: request.key.clone(),
        range_end: request.range_end.clone(),
        prev_kv: request.prev_kv,
    }
}

/// The engine's DeleteRangeResponse as etcd's.
pub fn delete_range_response(
    response: engine::DeleteRangeResponse,
    header: pb::ResponseHeader,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: Some(pb::ResponseHeader {
            revision: response.header_revision,
            ..header
        }),
        deleted: response.deleted,
        prev_kvs: response.prev_kvs.into_iter().map(key_value).collect(),
    }
}

/// etcd's TxnRequest as the engine's; `None` for a request op or compare with no content.
pub fn txn_request(request: &pb::TxnRequest) -> Option<engine::TxnRequest> {
    Some(engine::TxnRequest {
        compare: request.compare.iter().map(compare).collect::<Option<_>>()?,
        success: request
            .success
            .iter()
            .map(request_op)
            .collect::<Option<_>>()?,
        failure: request
            .failure
            .iter()
            .map(request_op)
            .collect::<Option<_>>()?,
    })
}

fn compare(compare: &pb::Compare) -> Option<engine::Compare> {
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    let result = match CompareResult::try_from(compare.result).ok()? {
        CompareResult::Equal => engine::CompareResult::Equal,
        CompareResult::Greater => engine::CompareResult::Greater,
        CompareResult::Less => engine::CompareResult::Less,
        CompareResult::NotEqual => engine::CompareResult::NotEqual,
    };
    // etcd reads the operand that matches `target`; an absent one compares against zero/empty.
    let union = compare.target_union.as_ref();
    let target = match CompareTarget::try_from(compare.target).ok()? {
        CompareTarget::Version => engine::CompareTarget::Version(match union {
            Some(TargetUnion::Version(v)) => *v,
            _ => 0,
        }),
        CompareTarget::Create => engine::CompareTarget::Create(match union {
            Some(TargetUnion::CreateRevision(v)) => *v,
            _ => 0,
        }),
        CompareTarget::Mod => engine::CompareTarget::Mod(match union {
            Some(TargetUnion::ModRevision(v)) => *v,
            _ => 0,
        }),
        CompareTarget::Value => engine::CompareTarget::Value(match union {
            Some(TargetUnion::Value(v)) => v.clone(),
            _ => Vec::new(),
        }),
        CompareTarget::Lease => engine::CompareTarget::Lease(match union {
            Some(TargetUnion::Lease(v)) => *v,
            _ => 0,
        }),
    };
    Some(engine::Compare {
        result,
        target,
        key: compare.key.clone(),
        range_end: compare.range_end.clone(),
    })
}

fn request_op(op: &pb::RequestOp) -> Option<engine::RequestOp> {
    use pb::request_op::Request;
    Some(match op.request.as_ref()? {
        Request::RequestRange(r) => engine::RequestOp::Range(range_request(r)),
        Request::RequestPut(r) => engine::RequestOp::Put(put_request(r)),
        Request::RequestDeleteRange(r) => engine::RequestOp::DeleteRange(delete_range_request(r)),
        Request::RequestTxn(r) => engine::RequestOp::Txn(txn_request(r)?),
    })
}

/// The engine's TxnResponse as etcd's; nested responses carry the same header as the txn.
pub fn txn_response(response: engine::TxnResponse, header: pb::ResponseHeader) -> pb::TxnResponse {
    use pb::response_op::Response;
    let header = pb::ResponseHeader {
        revision: response.header_revision,
        ..header
    };
    let responses = response
        .responses
        .into_iter()
        .map(|op| pb::ResponseOp {
            response: Some(match op {
                engine::ResponseOp::Range(r) => Response::ResponseRange(range_response(r, header)),
                engine::ResponseOp::Put(r) => Response::ResponsePut(put_response(r, header)),
                engine::ResponseOp::DeleteRange(r) => {
                    Response::ResponseDeleteRange(delete_range_response(r, header))
                }
                engine::ResponseOp::Txn(r) => Response::ResponseTxn(txn_response(r, header)),
            }),
        })
        .collect();
    pb::TxnResponse {
        header: Some(header),
        succeeded: response.succeeded,
        responses,
    }
}

/// Counts the operations of a txn the way etcd limits them (`--max-txn-ops`): the most of its
/// compares, success ops and failure ops, at each level.
pub fn txn_ops(request: &pb::TxnRequest) -> usize {
    request
        .compare
        .len()
        .max(request.success.len())
        .max(request.failure.len())
}
