//! etcd's gRPC services (as etcd's `v3rpc`): KV, Lease, Watch, Cluster, Maintenance, Lock,
//! Election, and the backend quota their writes pass. They reach the member only through a
//! `Gateway`; they may import `routing`, `member` (offload), `watch` and `state_machine`.

pub mod auth_service;
pub mod cluster_service;
pub mod concurrency;
pub mod defragment_service;
pub mod defragment_turn;
pub mod downgrade_service;
pub mod election_service;
pub mod health_service;
pub mod kv_service;
pub mod lease_service;
pub mod lock_service;
pub mod maintenance_service;
pub mod probe_service;
pub mod quota;
pub mod read_memory;
pub mod snapshot_service;
pub mod status_service;
pub mod watch_service;
