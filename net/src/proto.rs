//! etcd's v3 protobuf types, generated at build time from `net/proto/*.proto`.
//!
//! Package, message and field names and numbers are etcd's; the Rust names follow prost's rules
//! (`RangeRequest`, `range_request::SortOrder`, field `range_end`, field `ID` becomes `id`).
//! Every message also has serde `Serialize`/`Deserialize` in the protobuf JSON mapping with
//! the .proto's field names (pbjson), as etcd's JSON gateway reads and writes them.

/// etcd's `mvccpb` package: `KeyValue` and `Event`.
pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// etcd's `authpb` package: users, roles, permissions.
pub mod authpb {
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// etcd's `etcdserverpb` package: the KV, Watch, Lease, Cluster, Maintenance and Auth
/// services' requests and responses.
#[allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// etcd's `v3lockpb` package: the Lock service's requests and responses.
pub mod v3lockpb {
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

/// etcd's `v3electionpb` package: the Election service's requests and responses.
pub mod v3electionpb {
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}
