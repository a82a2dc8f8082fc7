//! HPACK (RFC 7541): a decoder for header blocks (indexed fields, literals with and without
//! indexing, Huffman-coded strings, and the dynamic table with its size updates), used by the
//! lean client for responses and by the lean server for requests; and the server's small
//! encoder for response headers and trailers (static indexes and raw literals, no table).

use std::borrow::Cow;
use std::collections::VecDeque;

use super::huffman;

/// The dynamic table size the client allows (SETTINGS_HEADER_TABLE_SIZE's default).
pub const TABLE_SIZE_DEFAULT: usize = 4096;
/// Bytes an entry costs beyond its name and value (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;
/// Longest string literal accepted: a bound so a corrupt length cannot ask for gigabytes.
const STRING_BYTES_LIMIT: usize = 1 << 20;

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// A decoded (name, value), borrowed from the block when it was a raw literal.
type Field<'b> = (Cow<'b, [u8]>, Cow<'b, [u8]>);

/// Why a header block did not decode (a connection error: the table state is lost).
#[derive(Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block ended inside a field.
    Truncated,
    /// An integer does not fit the decoder's bounds.
    IntegerOverflow,
    /// An index names no entry of either table.
    BadIndex(usize),
    /// A string literal is longer than `STRING_BYTES_LIMIT`.
    StringTooLong(usize),
    /// A Huffman string is malformed.
    Huffman(huffman::HuffmanError),
    /// A table size update above the limit the client announced.
    TableSizeTooLarge(usize),
    /// A table size update after a field of its block: RFC 7541 §4.2 allows them only at the
    /// start of a block.
    SizeUpdateAfterField,
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HPACK decoding failed: {self:?}")
    }
}

/// The decoding state of one connection's response header blocks.
pub struct Decoder {
    /// Newest entry first (index 62 is `table[0]`).
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    table_size: usize,
    table_size_max: usize,
    table_size_limit: usize,
}

impl Decoder {
    /// A decoder whose peer may use at most `table_size_limit` bytes of dynamic table.
    pub fn new(table_size_limit: usize) -> Self {
        Decoder {
            table: VecDeque::new(),
            table_size: 0,
            table_size_max: table_size_limit,
            table_size_limit,
        }
    }

    /// Decodes one complete header block, calling `emit(name, value)` for each field in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut emit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut rest = block;
        let mut field_seen = false;
        while let Some(&first) = rest.first() {
            let is_size_update = first & 0xe0 == 0x20;
            if is_size_update && field_seen {
                return Err(HpackError::SizeUpdateAfterField);
            }
            field_seen |= !is_size_update;
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = read_integer(&mut rest, 7)?;
                let (name, value) = self.entry(index)?;
                emit(name, value);
            } else if first & 0xc0 == 0x40 {
                // Literal with incremental indexing (§6.2.1).
                let (name, value) = self.literal(&mut rest, 6)?;
                emit(&name, &value);
                self.insert(name.into_owned(), value.into_owned());
            } else if is_size_update {
                // Dynamic table size update (§6.3).
                let size = read_integer(&mut rest, 5)?;
                if size > self.table_size_limit {
                    return Err(HpackError::TableSizeTooLarge(size));
                }
                self.table_size_max = size;
                self.evict_to(size);
            } else {
                // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
                let (name, value) = self.literal(&mut rest, 4)?;
                emit(&name, &value);
            }
        }
        Ok(())
    }

    /// Entry `index` of the static table (1..=61) or the dynamic table (62..).
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        match index {
            0 => Err(HpackError::BadIndex(0)),
            1..=61 => {
                let (name, value) = STATIC_TABLE[index - 1];
                Ok((name.as_bytes(), value.as_bytes()))
            }
            _ => self
                .table
                .get(index - 62)
                .map(|(name, value)| (name.as_slice(), value.as_slice()))
                .ok_or(HpackError::BadIndex(index)),
        }
    }

    /// A literal field whose name index has a `prefix_bits`-bit prefix (0: a literal name).
    fn literal<'b>(&self, rest: &mut &'b [u8], prefix_bits: u32) -> Result<Field<'b>, HpackError> {
        let name_index = read_integer(rest, prefix_bits)?;
        let name = if name_index == 0 {
            read_string(rest)?
        } else {
            Cow::Owned(self.entry(name_index)?.0.to_vec())
        };
        let value = read_string(rest)?;
        Ok((name, value))
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        // An entry larger than the table empties it and is not added (§4.4).
        self.evict_to(self.table_size_max.saturating_sub(size));
        if size <= self.table_size_max {
            self.table.push_front((name, value));
            self.table_size += size;
        }
    }

    fn evict_to(&mut self, size: usize) {
        while self.table_size > size {
            let (name, value) = self.table.pop_back().expect("size counts entries");
            self.table_size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Appends `:status` (§6.1 from the static table when it has it, else a literal without
/// indexing of static name 8).
pub fn encode_status(out: &mut Vec<u8>, status: u16) {
    let index = match status {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => {
            out.push(0x08);
            encode_string(out, status.to_string().as_bytes());
            return;
        }
    };
    out.push(0x80 | index);
}

/// Appends a literal field without indexing and with a literal name (§6.2.2): the server's
/// encoder keeps no dynamic table, so a client's table size never matters to it.
pub fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_string(out, name);
    encode_string(out, value);
}

/// Appends a raw (not Huffman-coded) string literal (§5.2).
pub fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_integer(out, 7, 0x00, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends an integer with an N-bit prefix (§5.1), the first byte's other bits set to
/// `flags`.
pub fn encode_integer(out: &mut Vec<u8>, prefix_bits: u32, flags: u8, value: usize) {
    let prefix_max = (1usize << prefix_bits) - 1;
    if value < prefix_max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | prefix_max as u8);
    let mut rest = value - prefix_max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// An HPACK integer with an N-bit prefix (§5.1); consumes its bytes.
fn read_integer(rest: &mut &[u8], prefix_bits: u32) -> Result<usize, HpackError> {
    let (&first, mut tail) = rest.split_first().ok_or(HpackError::Truncated)?;
    let prefix_max = (1usize << prefix_bits) - 1;
    let mut value = usize::from(first) & prefix_max;
    if value == prefix_max {
        let mut shift = 0u32;
        loop {
            let (&byte, after) = tail.split_first().ok_or(HpackError::Truncated)?;
            tail = after;
            if shift > 28 {
                return Err(HpackError::IntegerOverflow);
            }
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    *rest = tail;
    Ok(value)
}

/// A string literal (§5.2): borrowed when raw, decoded when Huffman-coded.
fn read_string<'b>(rest: &mut &'b [u8]) -> Result<Cow<'b, [u8]>, HpackError> {
    let huffman_coded = rest.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
    let length = read_integer(rest, 7)?;
    if length > STRING_BYTES_LIMIT {
        return Err(HpackError::StringTooLong(length));
    }
    if rest.len() < length {
        return Err(HpackError::Truncated);
    }
    let (raw, tail) = rest.split_at(length);
    *rest = tail;
    if !huffman_coded {
        return Ok(Cow::Borrowed(raw));
    }
    let mut decoded = Vec::with_capacity(length * 8 / 5);
    huffman::decode(raw, &mut decoded).map_err(HpackError::Huffman)?;
    Ok(Cow::Owned(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(decoder: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        decoder
            .decode(block, |name, value| {
                out.push((
                    String::from_utf8(name.to_vec()).unwrap(),
                    String::from_utf8(value.to_vec()).unwrap(),
                ))
            })
            .unwrap();
        out
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    // Goal: RFC 7541 C.4 (requests with Huffman coding): Huffman literals go into the dynamic
    // table and a later block refers to them by index 62 onwards.
    #[test]
    fn rfc_requests_with_huffman_and_dynamic_table() {
        let mut decoder = Decoder::new(TABLE_SIZE_DEFAULT);
        let first = [
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ];
        assert_eq!(
            fields(&mut decoder, &first),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ])
        );
        assert_eq!(decoder.table_size, 57);
        let second = [
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
        ];
        assert_eq!(
            fields(&mut decoder, &second),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ])
        );
        assert_eq!(decoder.table_size, 110);
        // Index 62 is now the newest entry, 63 the older one.
        assert_eq!(
            fields(&mut decoder, &[0xbe, 0xbf]),
            pairs(&[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ])
        );
    }

    // Goal: what a gRPC server sends for a response and its trailers decodes: a literal new
    // name with incremental indexing (raw), then the same field by index, a never-indexed
    // literal, and a multi-byte integer index.
    #[test]
    fn grpc_response_fields_and_indexing() {
        let mut decoder = Decoder::new(TABLE_SIZE_DEFAULT);
        let mut trailers = vec![0x40, 11];
        trailers.extend_from_slice(b"grpc-status");
        trailers.push(1);
        trailers.extend_from_slice(b"0");
        trailers.extend_from_slice(&[0x10, 12]);
        trailers.extend_from_slice(b"grpc-message");
        let fine = huffman::encode(b"fine");
        trailers.push(0x80 | fine.len() as u8);
        trailers.extend_from_slice(&fine);
        // :status 200 indexed, then content-type (static 31: 15 + 16) without indexing.
        trailers.extend_from_slice(&[0x88, 0x0f, 0x10, 3]);
        trailers.extend_from_slice(b"x/y");
        assert_eq!(
            fields(&mut decoder, &trailers),
            pairs(&[
                ("grpc-status", "0"),
                ("grpc-message", "fine"),
                (":status", "200"),
                ("content-type", "x/y"),
            ])
        );
        assert_eq!(
            fields(&mut decoder, &[0xbe]),
            pairs(&[("grpc-status", "0")])
        );
    }

    // Goal: a size update evicts old entries, one above the announced limit is refused, and
    // bad indices and truncated blocks are errors rather than panics.
    #[test]
    fn size_updates_evict_and_bad_blocks_are_errors() {
        let mut decoder = Decoder::new(TABLE_SIZE_DEFAULT);
        let mut block = vec![0x40, 1, b'a', 1, b'b'];
        block.extend_from_slice(&[0x40, 1, b'c', 1, b'd']);
        fields(&mut decoder, &block);
        assert_eq!(decoder.table.len(), 2);
        // Size update to 40 bytes: room for one 34-byte entry only (the newest stays).
        fields(&mut decoder, &[0x3f, 40 - 31]);
        assert_eq!(decoder.table.len(), 1);
        assert_eq!(fields(&mut decoder, &[0xbe]), pairs(&[("c", "d")]));
        assert_eq!(
            decoder.decode(&[0xbf], |_, _| {}),
            Err(HpackError::BadIndex(63))
        );
        assert_eq!(
            decoder.decode(&[0x3f, 0xe2, 0x1f], |_, _| {}),
            Err(HpackError::TableSizeTooLarge(4096 + 1))
        );
        assert_eq!(
            decoder.decode(&[0x40, 5, b'a'], |_, _| {}),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            decoder.decode(&[0x80], |_, _| {}),
            Err(HpackError::BadIndex(0))
        );
    }

    // Goal: size updates are taken at the start of a block (two in a row, as a reduction then
    // a new size is signalled) and refused after a field of the block (RFC 7541 §4.2).
    #[test]
    fn a_size_update_is_refused_after_a_field() {
        let mut decoder = Decoder::new(TABLE_SIZE_DEFAULT);
        assert_eq!(
            fields(&mut decoder, &[0x20, 0x3f, 40 - 31, 0x40, 1, b'a', 1, b'b']),
            pairs(&[("a", "b")])
        );
        assert_eq!(decoder.table_size_max, 40);
        assert_eq!(
            decoder.decode(&[0x82, 0x3f, 40 - 31], |_, _| {}),
            Err(HpackError::SizeUpdateAfterField)
        );
    }
}
