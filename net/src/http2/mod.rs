//! HTTP/2 (RFC 9113) pieces written for basalt: frames, HPACK (RFC 7541) and its Huffman code,
//! shared by the bench's lean client and the server's lean connection.

pub mod driver;
pub mod frame;
pub mod hpack;
pub mod huffman;
pub mod server_connection;
#[cfg(test)]
mod server_connection_tests;
