//! An HTTP/1.1 request body as it arrives: `Content-Length` bytes, or `Transfer-Encoding:
//! chunked` chunks (a client streaming watch requests: `curl -T -`), decoded incrementally
//! from the connection's buffer so a streaming body is served as it comes.

/// Longest chunk-size or trailer line accepted (Go's net/http allows 4 KiB too).
const LINE_BYTES_MAX: usize = 4096;

/// How a request body is framed, from its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length: n` (or no body at all: 0).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Where the decoder is in the body.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Bytes of a `Content-Length` body still to come.
    Length(usize),
    /// Waiting for a chunk-size line.
    ChunkSize,
    /// Bytes of the current chunk still to come.
    ChunkData(usize),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines until an empty one.
    Trailers,
    /// The whole body was read.
    Done,
}

/// Takes body bytes out of the connection's buffer.
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
}

/// A body that breaks HTTP/1.1's chunked framing.
#[derive(Debug, PartialEq, Eq)]
pub struct BadChunk;

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: BodyFraming) -> BodyDecoder {
        let state = match framing {
            BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(bytes) => State::Length(bytes),
            BodyFraming::Chunked => State::ChunkSize,
        };
        BodyDecoder { state }
    }

    /// True once the whole body has been taken.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Moves the body bytes at the front of `input` to `output`; bytes after the body's end
    /// (a pipelined next request) stay in `input`.
    pub fn decode(&mut self, input: &mut Vec<u8>, output: &mut Vec<u8>) -> Result<(), BadChunk> {
        let mut taken = 0;
        loop {
            let rest = &input[taken..];
            match self.state {
                State::Done => break,
                State::Length(remaining) | State::ChunkData(remaining) => {
                    let moved = remaining.min(rest.len());
                    output.extend_from_slice(&rest[..moved]);
                    taken += moved;
                    let left = remaining - moved;
                    self.state = match (&self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(left),
                        (_, 0) => State::ChunkEnd,
                        (_, _) => State::ChunkData(left),
                    };
                    if moved == 0 {
                        break;
                    }
                }
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(BadChunk);
                    }
                    taken += 2;
                    self.state = State::ChunkSize;
                }
                State::ChunkSize | State::Trailers => {
                    let Some(line_bytes) = rest.windows(2).position(|pair| pair == b"\r\n") else {
                        if rest.len() > LINE_BYTES_MAX {
                            return Err(BadChunk);
                        }
                        break;
                    };
                    let line = &rest[..line_bytes];
                    taken += line_bytes + 2;
                    if self.state == State::Trailers {
                        if line.is_empty() {
                            self.state = State::Done;
                        }
                        continue;
                    }
                    // A size, maybe followed by ";extension".
                    let size_text = line.split(|&byte| byte == b';').next().unwrap_or(b"");
                    let size_text = std::str::from_utf8(size_text).map_err(|_| BadChunk)?;
                    let size = usize::from_str_radix(size_text.trim(), 16).map_err(|_| BadChunk)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
            }
        }
        input.drain(..taken);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Goal: a body decodes the same whatever the split of its bytes, and the bytes after it
    //! stay for the next request.
    use super::*;

    fn decode_split(framing: BodyFraming, wire: &[u8], step: usize) -> (Vec<u8>, Vec<u8>, bool) {
        let mut decoder = BodyDecoder::new(framing);
        let mut input = Vec::new();
        let mut output = Vec::new();
        for piece in wire.chunks(step) {
            input.extend_from_slice(piece);
            decoder.decode(&mut input, &mut output).unwrap();
        }
        (output, input, decoder.is_done())
    }

    #[test]
    fn chunked_and_length_bodies_in_any_split() {
        let wire = b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: v\r\n\r\nGET /";
        for step in 1..wire.len() {
            let (body, rest, done) = decode_split(BodyFraming::Chunked, wire, step);
            assert_eq!(body, b"hello world", "step {step}");
            assert_eq!(rest, b"GET /", "step {step}");
            assert!(done);
            let (body, rest, done) = decode_split(BodyFraming::Length(5), b"helloGET", step);
            assert_eq!(
                (body.as_slice(), rest.as_slice(), done),
                (&b"hello"[..], &b"GET"[..], true)
            );
        }
    }

    #[test]
    fn broken_chunks_are_refused() {
        for wire in [&b"zz\r\n"[..], b"3\r\nabcXX", b"ffffffffffffffffffffff\r\n"] {
            let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
            let mut input = wire.to_vec();
            assert_eq!(
                decoder.decode(&mut input, &mut Vec::new()),
                Err(BadChunk),
                "{wire:?}"
            );
        }
    }
}
