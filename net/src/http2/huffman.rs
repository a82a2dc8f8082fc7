//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B): decoding string literals a server sent.
//!
//! The code is a binary tree built once from the RFC's (code, length) table; decoding walks
//! it bit by bit. That is slow per byte, but a server's encoder sends each Huffman-coded
//! header once and then refers to it through the dynamic table, so the walk is off the hot
//! path. `encode` exists for the tests (a round trip over every symbol).

use std::sync::OnceLock;

/// The end-of-string symbol: never valid inside a string (RFC 7541 §5.2).
const EOS: usize = 256;

/// (code, length in bits) of every symbol 0..=256, from RFC 7541 Appendix B.
#[rustfmt::skip]
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28),
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24),
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28),
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28),
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10), (0xf9, 8),
    (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), (0x2, 5),
    (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7),
    (0xfb, 8), (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
    (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7),
    (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7),
    (0x6d, 7), (0x6e, 7), (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), (0x7ffd, 15),
    (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5),
    (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7),
    (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), (0x79, 7), (0x7a, 7),
    (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28),
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22),
    (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24), (0xffffed, 24),
    (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23),
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23),
    (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22),
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22),
    (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23),
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), (0x7fffed, 23), (0x3fffe1, 22),
    (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22),
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26),
    (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22),
    (0x1ffffec, 25), (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19),
    (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26),
    (0x7ffffe2, 27), (0xfffff2, 24), (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26),
    (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27),
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21),
    (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25),
    (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27),
    (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28),
    (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27),
    (0x3ffffee, 26), (0x3fffffff, 30),
];

/// Why a Huffman string did not decode.
#[derive(Debug, PartialEq, Eq)]
pub enum HuffmanError {
    /// The string holds the EOS symbol.
    Eos,
    /// The padding is longer than 7 bits or is not the most significant bits of EOS.
    BadPadding,
}

/// A node's two children: an inner node's index, or a leaf's symbol.
#[derive(Clone, Copy)]
enum Child {
    Missing,
    Node(u16),
    Symbol(u16),
}

fn tree() -> &'static [[Child; 2]] {
    static TREE: OnceLock<Vec<[Child; 2]>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut nodes = vec![[Child::Missing; 2]];
        for (symbol, &(code, length)) in CODES.iter().enumerate() {
            let mut node = 0;
            for bit_index in (0..length).rev() {
                let bit = ((code >> bit_index) & 1) as usize;
                if bit_index == 0 {
                    assert!(
                        matches!(nodes[node][bit], Child::Missing),
                        "prefix-free code"
                    );
                    nodes[node][bit] = Child::Symbol(symbol as u16);
                    break;
                }
                node = match nodes[node][bit] {
                    Child::Node(next) => next as usize,
                    Child::Missing => {
                        nodes.push([Child::Missing; 2]);
                        let next = nodes.len() - 1;
                        nodes[node][bit] = Child::Node(next as u16);
                        next
                    }
                    Child::Symbol(_) => panic!("prefix-free code"),
                };
            }
        }
        nodes
    })
}

/// Appends the decoding of `encoded` to `out`.
pub fn decode(encoded: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let tree = tree();
    let mut node = 0usize;
    // Bits consumed since the last symbol, and whether they were all ones (valid padding).
    let mut pending_bits = 0u32;
    let mut pending_all_ones = true;
    for &byte in encoded {
        for bit_index in (0..8).rev() {
            let bit = ((byte >> bit_index) & 1) as usize;
            pending_bits += 1;
            pending_all_ones &= bit == 1;
            match tree[node][bit] {
                Child::Node(next) => node = next as usize,
                Child::Symbol(symbol) if symbol as usize == EOS => return Err(HuffmanError::Eos),
                Child::Symbol(symbol) => {
                    out.push(symbol as u8);
                    node = 0;
                    pending_bits = 0;
                    pending_all_ones = true;
                }
                // Every path of 30 bits reaches a symbol: the code is complete.
                Child::Missing => unreachable!("the HPACK code is complete"),
            }
        }
    }
    if pending_bits > 7 || !pending_all_ones {
        return Err(HuffmanError::BadPadding);
    }
    Ok(())
}

/// The Huffman encoding of `plain`, padded with ones (for tests).
#[cfg(test)]
pub fn encode(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut accumulator, mut bits) = (0u64, 0u32);
    for &byte in plain {
        let (code, length) = CODES[byte as usize];
        accumulator = (accumulator << length) | u64::from(code);
        bits += u32::from(length);
        while bits >= 8 {
            bits -= 8;
            out.push((accumulator >> bits) as u8);
        }
    }
    if bits > 0 {
        let padding = 8 - bits;
        out.push(((accumulator << padding) | ((1 << padding) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(encoded: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        decode(encoded, &mut out).map(|()| out)
    }

    // Goal: the RFC's own examples decode (Appendix C.4.1: "www.example.com"; C.4.2:
    // "no-cache"), so the table is the RFC's and not merely self-consistent.
    #[test]
    fn rfc_examples_decode() {
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(decoded(&www).unwrap(), b"www.example.com");
        let no_cache = [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        assert_eq!(decoded(&no_cache).unwrap(), b"no-cache");
    }

    // Goal: every byte value survives a round trip, alone and in a long string.
    #[test]
    fn every_symbol_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(decoded(&encode(&all)).unwrap(), all);
        for byte in 0..=255u8 {
            assert_eq!(decoded(&encode(&[byte])).unwrap(), [byte]);
        }
    }

    // Goal: bad padding (zeros, or a whole byte of ones) and an embedded EOS are refused.
    #[test]
    fn bad_padding_and_eos_are_refused() {
        // '0' is 00000 (5 bits); padding with zeros instead of ones.
        assert_eq!(decoded(&[0b0000_0000]), Err(HuffmanError::BadPadding));
        // "0" then a whole byte of ones: padding longer than 7 bits.
        assert_eq!(decoded(&[0b0000_0111, 0xff]), Err(HuffmanError::BadPadding));
        // EOS: 30 ones.
        assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xff]), Err(HuffmanError::Eos));
    }
}
