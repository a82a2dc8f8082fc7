//! What the lean client sends for a call: the HPACK block of a unary gRPC request (indexed
//! after a connection's first call, as grpc-go's) and the length-prefixed protobuf message.

use basalt_net::http2::hpack;

/// The gRPC method of a put.
pub const PUT_PATH: &str = "/etcdserverpb.KV/Put";
/// The gRPC method of a range.
pub const RANGE_PATH: &str = "/etcdserverpb.KV/Range";
/// The gRPC method of a transaction.
pub const TXN_PATH: &str = "/etcdserverpb.KV/Txn";

/// The header blocks of a connection's unary calls to `path` on `authority`, as grpc-go sends
/// them: the first call's fields go into the server's dynamic table (literals with incremental
/// indexing), and every later call names them by index, one byte each. A server decoding
/// literals on every call (as the lean client once sent them) spent noticeably more per call
/// than it does for grpc-go's clients.
#[derive(Clone, Debug)]
pub struct CallHeaders {
    /// The first call's block: adds `:path`, `:authority`, `content-type` and `te` to the
    /// server's dynamic table, in that order.
    pub first: Vec<u8>,
    /// Every later call's block: those four by their dynamic-table index.
    pub indexed: Vec<u8>,
    /// Bytes the four entries take in the server's dynamic table (RFC 7541 §4.1: name + value
    /// + 32 each).
    pub table_bytes: usize,
    /// The fields as literals without indexing, for a server whose table cannot hold them.
    pub literal: Vec<u8>,
}

impl CallHeaders {
    /// The block for the next call: `first` until it has been sent once on a connection whose
    /// server's table (`table_size`, its SETTINGS_HEADER_TABLE_SIZE) holds the four entries,
    /// then `indexed`; literals without indexing when the table cannot hold them.
    pub fn block(&self, sent_first: bool, table_size: usize) -> &[u8] {
        if table_size < self.table_bytes {
            &self.literal
        } else if sent_first {
            &self.indexed
        } else {
            &self.first
        }
    }
}

/// A dynamic table size update to `size` (RFC 7541 §6.3): the start of the first block after
/// the server changed its SETTINGS_HEADER_TABLE_SIZE, as §4.2 requires of an encoder.
pub fn table_size_update(size: usize) -> Vec<u8> {
    let mut block = Vec::new();
    hpack::encode_integer(&mut block, 5, 0x20, size);
    block
}

/// The header blocks of unary calls to `path` on `authority` (see [`CallHeaders`]).
pub fn call_headers(path: &str, authority: &str) -> CallHeaders {
    let fields: [(usize, &[u8], &[u8]); 4] = [
        (4, b":path", path.as_bytes()),
        (1, b":authority", authority.as_bytes()),
        (31, b"content-type", b"application/grpc"),
        (0, b"te", b"trailers"),
    ];
    let mut first = vec![0x83, 0x86]; // static 3 ":method: POST", static 6 ":scheme: http"
    let mut literal = first.clone();
    let mut table_bytes = 0;
    for (static_name, name, value) in fields {
        table_bytes += name.len() + value.len() + 32;
        if static_name == 0 {
            first.push(0x40);
            hpack::encode_string(&mut first, name);
            hpack::encode_literal(&mut literal, name, value);
        } else {
            hpack::encode_integer(&mut first, 6, 0x40, static_name);
            literal_with_static_name(&mut literal, static_name, value);
        }
        hpack::encode_string(&mut first, value);
    }
    // The newest entry is index 62: te, content-type, :authority, :path from 62 up.
    let mut indexed = vec![0x83, 0x86];
    for index in [65, 64, 63, 62] {
        hpack::encode_integer(&mut indexed, 7, 0x80, index);
    }
    CallHeaders {
        first,
        indexed,
        table_bytes,
        literal,
    }
}

/// A literal without indexing whose name is static entry `index` (4-bit prefix, §6.2.2).
fn literal_with_static_name(block: &mut Vec<u8>, index: usize, value: &[u8]) {
    hpack::encode_integer(block, 4, 0x00, index);
    hpack::encode_string(block, value);
}

/// Appends a gRPC message: the uncompressed flag, the 4-byte length, then the protobuf
/// `body` writes.
pub fn grpc_message(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 5]);
    body(out);
    let body_len = out.len() - start - 5;
    out[start + 1..start + 5].copy_from_slice(&(body_len as u32).to_be_bytes());
}

/// Appends an `etcdserverpb.PutRequest { key, value }` with every other field at its default,
/// which proto3 leaves out: the bytes prost writes for `client.put(key, value, None)`.
pub fn put_request(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    write_bytes_field(out, 1, key);
    write_bytes_field(out, 2, value);
}

/// Appends a gRPC message holding a PutRequest (see `put_request`).
pub fn put_message(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    grpc_message(out, |body| put_request(body, key, value));
}

/// The fields of an `etcdserverpb.RangeRequest` the range workload sets.
#[derive(Clone, Debug, Default)]
pub struct RangeFields {
    pub key: Vec<u8>,
    /// Empty: one key.
    pub range_end: Vec<u8>,
    /// 0: no limit.
    pub limit: i64,
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
}

/// Appends an `etcdserverpb.RangeRequest` (field numbers from etcd's rpc.proto).
pub fn range_request(out: &mut Vec<u8>, range: &RangeFields) {
    write_bytes_field(out, 1, &range.key);
    write_bytes_field(out, 2, &range.range_end);
    write_varint_field(out, 3, range.limit as u64);
    write_varint_field(out, 7, u64::from(range.serializable));
    write_varint_field(out, 8, u64::from(range.keys_only));
    write_varint_field(out, 9, u64::from(range.count_only));
}

/// Appends an `etcdserverpb.TxnRequest` with no compare and one `RequestOp { request_put }`
/// per (key, value) in `success`.
pub fn txn_put_request<'a>(
    out: &mut Vec<u8>,
    success: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) {
    let (mut put, mut op) = (Vec::new(), Vec::new());
    for (key, value) in success {
        put.clear();
        put_request(&mut put, key, value);
        op.clear();
        write_bytes_field(&mut op, 2, &put); // RequestOp.request_put
        write_bytes_field(out, 2, &op); // TxnRequest.success
    }
}

/// A varint field (left out at 0, as proto3 does).
fn write_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        write_varint(out, u64::from(field << 3));
        write_varint(out, value);
    }
}

fn write_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    write_varint(out, u64::from(field << 3 | 2));
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_net::http2::hpack;

    // Goal: each of a connection's blocks decodes, with one decoder carried across them as a
    // server's is, into exactly the fields of a gRPC unary call: the first one (which fills the
    // dynamic table), the indexed ones after it, and the literal one (content-type's static
    // index 31 takes a second byte); the indexed block is one byte per field.
    #[test]
    fn call_headers_decode_to_a_grpc_request() {
        let authority = "a-rather-long-host-name-for-a-test-of-lengths.example:2379";
        let headers = call_headers(PUT_PATH, authority);
        let expected = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", PUT_PATH),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let mut decoder = hpack::Decoder::new(hpack::TABLE_SIZE_DEFAULT);
        let mut decode = |block: &[u8]| {
            let mut fields = Vec::new();
            decoder
                .decode(block, |name, value| {
                    fields.push((
                        String::from_utf8(name.to_vec()).unwrap(),
                        String::from_utf8(value.to_vec()).unwrap(),
                    ))
                })
                .unwrap();
            fields
        };
        assert_eq!(decode(&headers.first), expected, "the first block");
        assert_eq!(decode(&headers.indexed), expected, "an indexed block");
        assert_eq!(decode(&headers.indexed), expected, "the next indexed block");
        assert_eq!(decode(&headers.literal), expected, "the literal block");
        assert_eq!(
            decode(&headers.indexed),
            expected,
            "literals left the table alone"
        );
        // A server that shrank its table to nothing, then grew it back (the blocks a
        // connection sends then): the first block refills it, and indexing works again.
        let shrunk = [table_size_update(0), headers.literal.clone()].concat();
        assert_eq!(
            decode(&shrunk),
            expected,
            "literals after a size update to 0"
        );
        let regrown = [table_size_update(4096), headers.first.clone()].concat();
        assert_eq!(
            decode(&regrown),
            expected,
            "the first block after growing back"
        );
        assert_eq!(decode(&headers.indexed), expected, "indexed again");
        assert_eq!(headers.indexed.len(), 6);
        assert_eq!(
            headers.table_bytes,
            PUT_PATH.len() + 5 + authority.len() + 10 + 16 + 12 + 8 + 2 + 4 * 32
        );
    }

    // Goal: the block for a call is the first one until it has been sent, then the indexed
    // one, and the literal one whenever the server's table cannot hold the fields.
    #[test]
    fn the_block_follows_what_the_server_table_holds() {
        let headers = call_headers(PUT_PATH, "127.0.0.1:2379");
        let table = hpack::TABLE_SIZE_DEFAULT;
        assert_eq!(headers.block(false, table), headers.first.as_slice());
        assert_eq!(headers.block(true, table), headers.indexed.as_slice());
        let small = headers.table_bytes - 1;
        assert_eq!(headers.block(false, small), headers.literal.as_slice());
        assert_eq!(headers.block(true, small), headers.literal.as_slice());
    }

    // Goal: a range request sets exactly the fields asked (defaults left out), and a txn
    // nests each put as TxnRequest.success[i].request_put.
    #[test]
    fn range_and_txn_requests_encode_etcd_fields() {
        let mut out = Vec::new();
        let range = RangeFields {
            key: b"a".to_vec(),
            range_end: b"b".to_vec(),
            limit: 300,
            serializable: true,
            keys_only: false,
            count_only: true,
        };
        range_request(&mut out, &range);
        let expected = [
            0x0a, 1, b'a', 0x12, 1, b'b', 0x18, 0xac, 0x02, 0x38, 1, 0x48, 1,
        ];
        assert_eq!(out, expected);
        out.clear();
        range_request(
            &mut out,
            &RangeFields {
                key: b"k".to_vec(),
                ..RangeFields::default()
            },
        );
        assert_eq!(out, [0x0a, 1, b'k']);
        out.clear();
        txn_put_request(&mut out, [(&b"k"[..], &b"v"[..]), (&b"l"[..], &b""[..])]);
        let first = [0x12, 8, 0x12, 6, 0x0a, 1, b'k', 0x12, 1, b'v'];
        let second = [0x12, 5, 0x12, 3, 0x0a, 1, b'l'];
        assert_eq!(out, [&first[..], &second[..]].concat());
    }

    // Goal: the message is prost's encoding of PutRequest, framed with gRPC's 5-byte prefix,
    // with varint lengths past one byte and an empty value left out.
    #[test]
    fn put_message_is_a_framed_put_request() {
        let mut out = Vec::new();
        put_message(&mut out, b"k1", b"vv");
        assert_eq!(
            out,
            [0, 0, 0, 0, 8, 0x0a, 2, b'k', b'1', 0x12, 2, b'v', b'v']
        );
        out.clear();
        let value = vec![b'v'; 300];
        put_message(&mut out, b"k", &value);
        assert_eq!(&out[..5], [0, 0, 0, 1, 50]); // 3 + (1 + 2 + 300) = 256 + 50
        assert_eq!(&out[8..11], [0x12, 0xac, 0x02]);
        out.clear();
        put_message(&mut out, b"k", b"");
        assert_eq!(out, [0, 0, 0, 0, 3, 0x0a, 1, b'k']);
    }
}
