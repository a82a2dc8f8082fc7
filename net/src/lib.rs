//! basalt-net: etcd's v3 protobuf types and an HTTP/2 + gRPC server on glommio sockets.

pub mod proto;
