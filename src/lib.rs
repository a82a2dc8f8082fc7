//! The `basalt` server: an etcd v3 compatible member. The binary (`src/main.rs`) is a thin
//! shell over this library so that tests and other crates can use its parts.

/// etcd's flags, variables and config file (the `basalt-config` crate).
pub use basalt_config as config;
pub mod node;
pub mod server;
