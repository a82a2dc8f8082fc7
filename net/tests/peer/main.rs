//! The peer transport (`basalt_net::peer`) between transports on loopback, each on a glommio
//! executor, with bounded waits.

mod support;

mod batching;
mod delivery;
mod failures;
mod handshake;
mod http;
mod lanes;
mod membership;
mod snapshots;
mod tls;

#[allow(dead_code)]
#[path = "../tls/pki.rs"]
mod pki;
