//! The gateway's routing table: each `/v3/...` path (as etcd's .proto `google.api.http`
//! annotations declare them, every one a POST with the whole body as the request) to its gRPC
//! method, call kind, and the JSON ⇄ protobuf conversions of its request and response types.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::grpc::frame::encode_message;
use crate::grpc::CallKind;
use crate::proto::{etcdserverpb as pb, v3electionpb as election, v3lockpb as lock};

/// A request read from the front of a body: its gRPC-framed protobuf and the JSON bytes it
/// used, `None` if no whole JSON value is there yet, or why the JSON is not a request.
pub type ReadRequest = Result<Option<(Bytes, usize)>, String>;

/// One gateway path.
pub struct Route {
    /// The path under `/v3/` (`kv/range`).
    pub path: &'static str,
    /// The gRPC method it calls (`/etcdserverpb.KV/Range`).
    pub method: &'static str,
    /// Unary, server-streaming or bidirectional.
    pub kind: CallKind,
    /// Reads the next JSON request from `bytes`: the gRPC-framed protobuf and the JSON bytes
    /// it used, `None` if `bytes` holds no whole JSON value yet, or the decoding error.
    pub read_request: fn(&[u8]) -> ReadRequest,
    /// Writes a response's protobuf bytes as JSON.
    pub write_response: fn(&[u8]) -> Result<Vec<u8>, String>,
}

fn read_request<M>(bytes: &[u8]) -> ReadRequest
where
    M: DeserializeOwned + prost::Message,
{
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<M>();
    match values.next() {
        None => Ok(None),
        Some(Ok(message)) => {
            let frame = encode_message(&message).map_err(|status| status.message)?;
            Ok(Some((frame, values.byte_offset())))
        }
        Some(Err(error)) if error.is_eof() => Ok(None),
        Some(Err(error)) => Err(error.to_string()),
    }
}

fn write_response<M>(bytes: &[u8]) -> Result<Vec<u8>, String>
where
    M: Serialize + prost::Message + Default,
{
    let message = M::decode(bytes).map_err(|error| error.to_string())?;
    serde_json::to_vec(&message).map_err(|error| error.to_string())
}

macro_rules! route {
    ($path:literal, $method:literal, $kind:ident, $request:ty, $response:ty) => {
        Route {
            path: $path,
            method: $method,
            kind: CallKind::$kind,
            read_request: read_request::<$request>,
            write_response: write_response::<$response>,
        }
    };
}

/// Every path etcd's gateway serves (3.5's set: 3.4's plus `maintenance/downgrade`).
pub static ROUTES: &[Route] = &[
    route!(
        "kv/range",
        "/etcdserverpb.KV/Range",
        Unary,
        pb::RangeRequest,
        pb::RangeResponse
    ),
    route!(
        "kv/put",
        "/etcdserverpb.KV/Put",
        Unary,
        pb::PutRequest,
        pb::PutResponse
    ),
    route!(
        "kv/deleterange",
        "/etcdserverpb.KV/DeleteRange",
        Unary,
        pb::DeleteRangeRequest,
        pb::DeleteRangeResponse
    ),
    route!(
        "kv/txn",
        "/etcdserverpb.KV/Txn",
        Unary,
        pb::TxnRequest,
        pb::TxnResponse
    ),
    route!(
        "kv/compaction",
        "/etcdserverpb.KV/Compact",
        Unary,
        pb::CompactionRequest,
        pb::CompactionResponse
    ),
    route!(
        "watch",
        "/etcdserverpb.Watch/Watch",
        BidiStream,
        pb::WatchRequest,
        pb::WatchResponse
    ),
    route!(
        "lease/grant",
        "/etcdserverpb.Lease/LeaseGrant",
        Unary,
        pb::LeaseGrantRequest,
        pb::LeaseGrantResponse
    ),
    route!(
        "lease/revoke",
        "/etcdserverpb.Lease/LeaseRevoke",
        Unary,
        pb::LeaseRevokeRequest,
        pb::LeaseRevokeResponse
    ),
    route!(
        "kv/lease/revoke",
        "/etcdserverpb.Lease/LeaseRevoke",
        Unary,
        pb::LeaseRevokeRequest,
        pb::LeaseRevokeResponse
    ),
    route!(
        "lease/keepalive",
        "/etcdserverpb.Lease/LeaseKeepAlive",
        BidiStream,
        pb::LeaseKeepAliveRequest,
        pb::LeaseKeepAliveResponse
    ),
    route!(
        "lease/timetolive",
        "/etcdserverpb.Lease/LeaseTimeToLive",
        Unary,
        pb::LeaseTimeToLiveRequest,
        pb::LeaseTimeToLiveResponse
    ),
    route!(
        "kv/lease/timetolive",
        "/etcdserverpb.Lease/LeaseTimeToLive",
        Unary,
        pb::LeaseTimeToLiveRequest,
        pb::LeaseTimeToLiveResponse
    ),
    route!(
        "lease/leases",
        "/etcdserverpb.Lease/LeaseLeases",
        Unary,
        pb::LeaseLeasesRequest,
        pb::LeaseLeasesResponse
    ),
    route!(
        "kv/lease/leases",
        "/etcdserverpb.Lease/LeaseLeases",
        Unary,
        pb::LeaseLeasesRequest,
        pb::LeaseLeasesResponse
    ),
    route!(
        "cluster/member/add",
        "/etcdserverpb.Cluster/MemberAdd",
        Unary,
        pb::MemberAddRequest,
        pb::MemberAddResponse
    ),
    route!(
        "cluster/member/remove",
        "/etcdserverpb.Cluster/MemberRemove",
        Unary,
        pb::MemberRemoveRequest,
        pb::MemberRemoveResponse
    ),
    route!(
        "cluster/member/update",
        "/etcdserverpb.Cluster/MemberUpdate",
        Unary,
        pb::MemberUpdateRequest,
        pb::MemberUpdateResponse
    ),
    route!(
        "cluster/member/list",
        "/etcdserverpb.Cluster/MemberList",
        Unary,
        pb::MemberListRequest,
        pb::MemberListResponse
    ),
    route!(
        "cluster/member/promote",
        "/etcdserverpb.Cluster/MemberPromote",
        Unary,
        pb::MemberPromoteRequest,
        pb::MemberPromoteResponse
    ),
    route!(
        "maintenance/alarm",
        "/etcdserverpb.Maintenance/Alarm",
        Unary,
        pb::AlarmRequest,
        pb::AlarmResponse
    ),
    route!(
        "maintenance/status",
        "/etcdserverpb.Maintenance/Status",
        Unary,
        pb::StatusRequest,
        pb::StatusResponse
    ),
    route!(
        "maintenance/defragment",
        "/etcdserverpb.Maintenance/Defragment",
        Unary,
        pb::DefragmentRequest,
        pb::DefragmentResponse
    ),
    route!(
        "maintenance/hash",
        "/etcdserverpb.Maintenance/Hash",
        Unary,
        pb::HashRequest,
        pb::HashResponse
    ),
    route!(
        "maintenance/hashkv",
        "/etcdserverpb.Maintenance/HashKV",
        Unary,
        pb::HashKvRequest,
        pb::HashKvResponse
    ),
    route!(
        "maintenance/snapshot",
        "/etcdserverpb.Maintenance/Snapshot",
        ServerStream,
        pb::SnapshotRequest,
        pb::SnapshotResponse
    ),
    route!(
        "maintenance/transfer-leadership",
        "/etcdserverpb.Maintenance/MoveLeader",
        Unary,
        pb::MoveLeaderRequest,
        pb::MoveLeaderResponse
    ),
    route!(
        "maintenance/downgrade",
        "/etcdserverpb.Maintenance/Downgrade",
        Unary,
        pb::DowngradeRequest,
        pb::DowngradeResponse
    ),
    route!(
        "auth/enable",
        "/etcdserverpb.Auth/AuthEnable",
        Unary,
        pb::AuthEnableRequest,
        pb::AuthEnableResponse
    ),
    route!(
        "auth/disable",
        "/etcdserverpb.Auth/AuthDisable",
        Unary,
        pb::AuthDisableRequest,
        pb::AuthDisableResponse
    ),
    route!(
        "auth/status",
        "/etcdserverpb.Auth/AuthStatus",
        Unary,
        pb::AuthStatusRequest,
        pb::AuthStatusResponse
    ),
    route!(
        "auth/authenticate",
        "/etcdserverpb.Auth/Authenticate",
        Unary,
        pb::AuthenticateRequest,
        pb::AuthenticateResponse
    ),
    route!(
        "auth/user/add",
        "/etcdserverpb.Auth/UserAdd",
        Unary,
        pb::AuthUserAddRequest,
        pb::AuthUserAddResponse
    ),
    route!(
        "auth/user/get",
        "/etcdserverpb.Auth/UserGet",
        Unary,
        pb::AuthUserGetRequest,
        pb::AuthUserGetResponse
    ),
    route!(
        "auth/user/list",
        "/etcdserverpb.Auth/UserList",
        Unary,
        pb::AuthUserListRequest,
        pb::AuthUserListResponse
    ),
    route!(
        "auth/user/delete",
        "/etcdserverpb.Auth/UserDelete",
        Unary,
        pb::AuthUserDeleteRequest,
        pb::AuthUserDeleteResponse
    ),
    route!(
        "auth/user/changepw",
        "/etcdserverpb.Auth/UserChangePassword",
        Unary,
        pb::AuthUserChangePasswordRequest,
        pb::AuthUserChangePasswordResponse
    ),
    route!(
        "auth/user/grant",
        "/etcdserverpb.Auth/UserGrantRole",
        Unary,
        pb::AuthUserGrantRoleRequest,
        pb::AuthUserGrantRoleResponse
    ),
    route!(
        "auth/user/revoke",
        "/etcdserverpb.Auth/UserRevokeRole",
        Unary,
        pb::AuthUserRevokeRoleRequest,
        pb::AuthUserRevokeRoleResponse
    ),
    route!(
        "auth/role/add",
        "/etcdserverpb.Auth/RoleAdd",
        Unary,
        pb::AuthRoleAddRequest,
        pb::AuthRoleAddResponse
    ),
    route!(
        "auth/role/get",
        "/etcdserverpb.Auth/RoleGet",
        Unary,
        pb::AuthRoleGetRequest,
        pb::AuthRoleGetResponse
    ),
    route!(
        "auth/role/list",
        "/etcdserverpb.Auth/RoleList",
        Unary,
        pb::AuthRoleListRequest,
        pb::AuthRoleListResponse
    ),
    route!(
        "auth/role/delete",
        "/etcdserverpb.Auth/RoleDelete",
        Unary,
        pb::AuthRoleDeleteRequest,
        pb::AuthRoleDeleteResponse
    ),
    route!(
        "auth/role/grant",
        "/etcdserverpb.Auth/RoleGrantPermission",
        Unary,
        pb::AuthRoleGrantPermissionRequest,
        pb::AuthRoleGrantPermissionResponse
    ),
    route!(
        "auth/role/revoke",
        "/etcdserverpb.Auth/RoleRevokePermission",
        Unary,
        pb::AuthRoleRevokePermissionRequest,
        pb::AuthRoleRevokePermissionResponse
    ),
    route!(
        "lock/lock",
        "/v3lockpb.Lock/Lock",
        Unary,
        lock::LockRequest,
        lock::LockResponse
    ),
    route!(
        "lock/unlock",
        "/v3lockpb.Lock/Unlock",
        Unary,
        lock::UnlockRequest,
        lock::UnlockResponse
    ),
    route!(
        "election/campaign",
        "/v3electionpb.Election/Campaign",
        Unary,
        election::CampaignRequest,
        election::CampaignResponse
    ),
    route!(
        "election/proclaim",
        "/v3electionpb.Election/Proclaim",
        Unary,
        election::ProclaimRequest,
        election::ProclaimResponse
    ),
    route!(
        "election/leader",
        "/v3electionpb.Election/Leader",
        Unary,
        election::LeaderRequest,
        election::LeaderResponse
    ),
    route!(
        "election/observe",
        "/v3electionpb.Election/Observe",
        ServerStream,
        election::LeaderRequest,
        election::LeaderResponse
    ),
    route!(
        "election/resign",
        "/v3electionpb.Election/Resign",
        Unary,
        election::ResignRequest,
        election::ResignResponse
    ),
];

/// The route of a request path: `/v3/kv/range`, or its `/v3beta/` alias (etcd 3.4 and 3.5
/// rewrite `/v3beta/` to `/v3/`). `None` for paths outside the gateway.
pub fn gateway_path(path: &str) -> Option<&str> {
    path.strip_prefix("/v3/")
        .or_else(|| path.strip_prefix("/v3beta/"))
}

/// The route serving `path` (already stripped of `/v3/`).
pub fn find_route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.path == path)
}

#[cfg(test)]
mod tests {
    //! Goal: the JSON is etcd's gateway's, byte for byte on shapes taken from etcd 3.4
    //! (snake_case .proto names, 64-bit integers as strings, base64 bytes, defaults left out),
    //! and requests are read in either naming style, with unknown fields ignored.
    use super::*;
    use crate::proto::mvccpb;

    #[test]
    fn responses_are_written_as_etcd_writes_them() {
        let response = pb::RangeResponse {
            header: Some(pb::ResponseHeader {
                cluster_id: 14841639068965178418,
                member_id: 10276657743932975437,
                revision: 2,
                raft_term: 2,
            }),
            kvs: vec![mvccpb::KeyValue {
                key: b"foo".to_vec(),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                value: b"bar".to_vec(),
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        let json = write_response::<pb::RangeResponse>(&prost::Message::encode_to_vec(&response));
        assert_eq!(
            String::from_utf8(json.unwrap()).unwrap(),
            r#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}"#
        );
        let grant = pb::LeaseGrantResponse {
            id: 7,
            ttl: 30,
            ..Default::default()
        };
        let json = write_response::<pb::LeaseGrantResponse>(&prost::Message::encode_to_vec(&grant));
        assert_eq!(json.unwrap(), br#"{"ID":"7","TTL":"30"}"#);
    }

    #[test]
    fn requests_are_read_in_either_naming_with_unknown_fields_ignored() {
        let body = br#"{"key":"Zm9v","range_end":"Zm9w","keysOnly":true,"sort_order":"DESCEND","limit":5,"nope":{"x":1}} {"key":"YQ=="}"#;
        let (frame, used) = read_request::<pb::RangeRequest>(body).unwrap().unwrap();
        let request: pb::RangeRequest = prost::Message::decode(&frame[5..]).unwrap();
        assert_eq!(request.key, b"foo");
        assert_eq!(request.range_end, b"fop");
        assert!(request.keys_only);
        assert_eq!(request.limit, 5);
        assert_eq!(
            request.sort_order,
            pb::range_request::SortOrder::Descend as i32
        );
        // The next JSON value starts after the bytes used: a stream of requests.
        let (frame, _) = read_request::<pb::RangeRequest>(&body[used..])
            .unwrap()
            .unwrap();
        let next: pb::RangeRequest = prost::Message::decode(&frame[5..]).unwrap();
        assert_eq!(next.key, b"a");
        // Half a value waits for more bytes; a broken one is an error.
        assert_eq!(read_request::<pb::RangeRequest>(br#"{"key":"Zm"#), Ok(None));
        assert!(read_request::<pb::RangeRequest>(br#"{"key":1}"#).is_err());
        // Every route names a method of its service, once per path.
        for route in ROUTES {
            assert!(route.method.starts_with('/'), "{}", route.path);
            assert_eq!(find_route(route.path).unwrap().method, route.method);
        }
        assert_eq!(gateway_path("/v3beta/kv/put"), Some("kv/put"));
        assert_eq!(gateway_path("/health"), None);
    }
}
