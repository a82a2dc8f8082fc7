//! The executors: the owner core (raft member plus its share of clients), the client cores,
//! the client listeners every core serves and the peer listeners the owner core serves. The
//! top layer: it wires every layer below.

pub mod client_api;
pub mod client_core;
pub mod client_stop;
pub mod metrics_listener;
pub mod owner_core;
pub mod peer_listener;
pub mod stop_signal;
