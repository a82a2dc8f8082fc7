//! basalt's integration tests, one crate so they build and link once: the real `basalt`
//! binary driven by Debian's etcdctl and the etcd-client crate, the configuration as etcd
//! reads it, and the deterministic simulation of the raft node. Each module is one subject;
//! `support` starts members and clients.

mod support;

mod auth;
mod auto_compaction;
mod binary;
mod checkpoint;
mod cluster;
mod cluster_faults;
mod cluster_learner_catch_up;
mod cluster_membership_load;
mod cluster_partition;
mod cluster_rolling_restart;
mod cluster_snapshot;
mod compaction_physical;
mod concurrency_api;
mod config_file;
mod config_flags;
mod defragment;
mod etcdctl_e2e;
mod graceful_stop;
mod honoured_flags;
mod json_gateway;
mod kill9_durability;
mod kv_errors;
mod large_ranges;
mod lease_api;
mod lease_cluster;
mod lease_etcdctl;
mod lease_restart;
mod maintenance_client;
mod maintenance_etcdctl;
mod members;
mod memory_bounds;
mod metrics_cluster;
mod metrics_e2e;
mod multi_core;
mod node_simulation;
mod peer_port;
mod peer_tls;
mod port_reuse;
mod tls_e2e;
mod watch_e2e;
