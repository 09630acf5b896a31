//! A shim in front of the plugin-registration gRPC server that makes kubelet's requests
//! acceptable to it.
//!
//! Kubelet's plugin watcher dials the registration socket with grpc-go and no authority
//! override, so every request carries the socket's path, percent-escaped, as its
//! `:authority` (`%2Fvar%2Flib%2Fkubelet%2Fplugins_registry%2F...`). The `http` crate
//! refuses `%` in an authority, and h2 (under tonic) answers such a request with
//! `RST_STREAM PROTOCOL_ERROR`: kubelet logs "failed to get plugin info" and never
//! registers the driver. (Kubelet's CSI client sets `localhost`; only the watcher does not.)
//!
//! The shim copies the HTTP/2 connection both ways and changes one thing: the `:authority`
//! of each request header block from the client becomes `localhost`. Header blocks are
//! decoded with the client's HPACK state and re-encoded as literals that never touch the
//! server's dynamic table; every other frame passes unchanged.
//!
//! Owns HTTP/2 framing of the client→server direction. It must not look at gRPC messages.

use loona_hpack::Decoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Largest frame payload read or written: HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which
/// neither side of this connection raises.
const MAX_FRAME: usize = 16_384;
/// Largest header block accepted (kubelet's are a few hundred bytes).
const MAX_BLOCK: usize = 64 * 1024;
/// What `:authority` becomes.
pub const AUTHORITY: &str = "localhost";

/// Why the shim gave up on a connection.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// Not an HTTP/2 client.
    #[error("the client did not open with the HTTP/2 connection preface")]
    Preface,
    /// A frame above the default maximum size.
    #[error("a frame of {0} bytes is larger than {MAX_FRAME}")]
    FrameTooLarge(usize),
    /// A header block above [`MAX_BLOCK`].
    #[error("a header block is larger than {MAX_BLOCK} bytes")]
    BlockTooLarge,
    /// A header block not continued by CONTINUATION frames of its stream.
    #[error("a header block was interrupted by another frame")]
    Interrupted,
    /// Padding or priority fields longer than the frame.
    #[error("a HEADERS frame is shorter than its padding and priority fields")]
    Malformed,
    /// HPACK the decoder refused.
    #[error("a header block could not be decoded: {0:?}")]
    Hpack(loona_hpack::decoder::DecoderError),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Clone, Copy, Debug)]
struct FrameHeader {
    length: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHeader {
    fn parse(b: &[u8; 9]) -> Self {
        FrameHeader {
            length: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    fn bytes(&self) -> [u8; 9] {
        let l = self.length;
        let s = self.stream.to_be_bytes();
        [
            (l >> 16) as u8,
            (l >> 8) as u8,
            l as u8,
            self.kind,
            self.flags,
            s[0],
            s[1],
            s[2],
            s[3],
        ]
    }
}

/// Copies the client's side of an HTTP/2 connection from `from` to `to`, rewriting the
/// `:authority` of every header block to [`AUTHORITY`]. Returns when the client closes.
pub async fn rewrite_client<R, W>(mut from: R, mut to: W) -> Result<(), ShimError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut preface = [0u8; 24];
    from.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(ShimError::Preface);
    }
    to.write_all(&preface).await?;
    let mut decoder = Decoder::new();
    while let Some((header, payload)) = read_frame(&mut from).await? {
        if header.kind != HEADERS {
            to.write_all(&header.bytes()).await?;
            to.write_all(&payload).await?;
            continue;
        }
        let mut block = fragment(header.flags, &payload)?.to_vec();
        let mut end = header.flags & END_HEADERS != 0;
        while !end {
            let (next, more) = read_frame(&mut from).await?.ok_or(ShimError::Interrupted)?;
            if next.kind != CONTINUATION || next.stream != header.stream {
                return Err(ShimError::Interrupted);
            }
            block.extend_from_slice(&more);
            if block.len() > MAX_BLOCK {
                return Err(ShimError::BlockTooLarge);
            }
            end = next.flags & END_HEADERS != 0;
        }
        let fields = decoder.decode(&block).map_err(ShimError::Hpack)?;
        let encoded = encode(fields.into_iter().map(|(name, value)| {
            if name == b":authority" {
                (name, AUTHORITY.as_bytes().to_vec())
            } else {
                (name, value)
            }
        }));
        write_block(&mut to, header.stream, header.flags & END_STREAM, &encoded).await?;
    }
    to.shutdown().await?;
    Ok(())
}

/// The next frame, or `None` when the client closed between frames.
async fn read_frame<R: AsyncRead + Unpin>(
    from: &mut R,
) -> Result<Option<(FrameHeader, Vec<u8>)>, ShimError> {
    let mut head = [0u8; 9];
    let first = from.read(&mut head[..1]).await?;
    if first == 0 {
        return Ok(None);
    }
    from.read_exact(&mut head[1..]).await?;
    let header = FrameHeader::parse(&head);
    if header.length > MAX_FRAME {
        return Err(ShimError::FrameTooLarge(header.length));
    }
    let mut payload = vec![0u8; header.length];
    from.read_exact(&mut payload).await?;
    Ok(Some((header, payload)))
}

/// The header block fragment of a HEADERS frame, without padding and priority fields.
fn fragment(flags: u8, payload: &[u8]) -> Result<&[u8], ShimError> {
    let mut body = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, rest) = body.split_first().ok_or(ShimError::Malformed)?;
        pad = usize::from(n);
        body = rest;
    }
    if flags & PRIORITY != 0 {
        body = body.get(5..).ok_or(ShimError::Malformed)?;
    }
    body.get(..body.len().checked_sub(pad).ok_or(ShimError::Malformed)?)
        .ok_or(ShimError::Malformed)
}

/// HPACK: every field a "literal header field without indexing, new name" (RFC 7541
/// §6.2.2) with plain (not Huffman) strings, so the server's dynamic table is never used.
fn encode(fields: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        string(&mut out, &name);
        string(&mut out, &value);
    }
    out
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, s.len(), 7, 0x00);
    out.extend_from_slice(s);
}

/// An integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the bits above the prefix.
fn integer(out: &mut Vec<u8>, mut value: usize, prefix_bits: u8, high: u8) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// Writes a header block as one HEADERS frame and as many CONTINUATION frames as needed.
async fn write_block<W: AsyncWrite + Unpin>(
    to: &mut W,
    stream: u32,
    end_stream: u8,
    block: &[u8],
) -> Result<(), ShimError> {
    let chunks: Vec<&[u8]> = if block.is_empty() {
        vec![&[]]
    } else {
        block.chunks(MAX_FRAME).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut flags = if i == last { END_HEADERS } else { 0 };
        let kind = if i == 0 {
            flags |= end_stream;
            HEADERS
        } else {
            CONTINUATION
        };
        let header = FrameHeader {
            length: chunk.len(),
            kind,
            flags,
            stream,
        };
        to.write_all(&header.bytes()).await?;
        to.write_all(chunk).await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = FrameHeader {
            length: payload.len(),
            kind,
            flags,
            stream,
        }
        .bytes()
        .to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn request_fields(authority: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/pluginregistration.Registration/GetInfo"),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
    }

    /// Frames of the rewritten stream: (header, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
        let mut out = Vec::new();
        while bytes.len() >= 9 {
            let header = FrameHeader::parse(bytes[..9].try_into().unwrap());
            out.push((header, bytes[9..9 + header.length].to_vec()));
            bytes = &bytes[9 + header.length..];
        }
        assert!(bytes.is_empty(), "a partial frame at the end");
        out
    }

    async fn rewrite(input: Vec<u8>) -> Result<Vec<u8>, ShimError> {
        let mut out = Vec::new();
        rewrite_client(&input[..], &mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn the_authority_of_every_request_becomes_localhost_and_all_else_passes() {
        let path = "%2Fvar%2Flib%2Fkubelet%2Fplugins_registry%2Fcsi.tlsmint.io-reg.sock";
        // The client's own encoder indexes and Huffman-codes: two requests on one
        // connection exercise its dynamic table.
        let mut encoder = loona_hpack::Encoder::new();
        let fields = request_fields(path);
        let refs: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let first = encoder.encode(refs.clone());
        let second = encoder.encode(refs);
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let data = frame(0x0, END_STREAM, 1, &[0, 0, 0, 0, 0]);
        let mut input = PREFACE.to_vec();
        input.extend(&settings);
        input.extend(frame(HEADERS, END_HEADERS, 1, &first));
        input.extend(&data);
        // The second request padded, with a priority field, and split by CONTINUATION.
        let mut padded = vec![3u8, 0, 0, 0, 0, 16];
        padded.extend_from_slice(&second[..4]);
        padded.extend_from_slice(&[0, 0, 0]);
        input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 3, &padded));
        input.extend(frame(CONTINUATION, END_HEADERS, 3, &second[4..]));

        let out = rewrite(input).await.unwrap();
        assert_eq!(&out[..24], PREFACE);
        let frames = frames(&out[24..]);
        assert_eq!(frames.len(), 4, "{frames:?}");
        assert_eq!(frames[0].0.kind, 0x4);
        assert_eq!(frames[0].1, settings[9..]);
        assert_eq!(frames[2].1, data[9..]);
        let mut server = Decoder::new();
        for (i, stream, end_stream) in [(1, 1, 0), (3, 3, END_STREAM)] {
            let (header, block) = &frames[i];
            assert_eq!(header.kind, HEADERS);
            assert_eq!(header.stream, stream);
            assert_eq!(header.flags, END_HEADERS | end_stream);
            let decoded = server.decode(block).unwrap();
            assert_eq!(decoded, request_fields(AUTHORITY));
        }
    }

    #[tokio::test]
    async fn a_large_block_is_split_into_continuation_frames() {
        let mut fields = request_fields("x");
        fields.push((b"x-big".to_vec(), vec![b'a'; 40_000]));
        let mut input = PREFACE.to_vec();
        let block = encode(fields.clone());
        for (i, chunk) in block.chunks(MAX_FRAME).enumerate() {
            let last = (i + 1) * MAX_FRAME >= block.len();
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            input.extend(frame(kind, if last { END_HEADERS } else { 0 }, 1, chunk));
        }
        let out = rewrite(input).await.unwrap();
        let frames = frames(&out[24..]);
        assert!(frames.len() >= 3, "{}", frames.len());
        assert!(frames.iter().all(|(h, _)| h.length <= MAX_FRAME));
        let whole: Vec<u8> = frames.iter().flat_map(|(_, p)| p.clone()).collect();
        fields[3].1 = AUTHORITY.as_bytes().to_vec();
        assert_eq!(Decoder::new().decode(&whole).unwrap(), fields);
    }

    #[tokio::test]
    async fn broken_input_is_refused_with_the_reason() {
        assert!(matches!(
            rewrite(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()).await,
            Err(ShimError::Preface)
        ));
        let mut big = PREFACE.to_vec();
        big.extend(frame(0x0, 0, 1, &vec![0; MAX_FRAME + 1]));
        assert!(matches!(
            rewrite(big).await,
            Err(ShimError::FrameTooLarge(16_385))
        ));
        let mut interrupted = PREFACE.to_vec();
        interrupted.extend(frame(HEADERS, 0, 1, &encode(request_fields("x"))[..3]));
        interrupted.extend(frame(0x0, 0, 1, b"data"));
        assert!(matches!(
            rewrite(interrupted).await,
            Err(ShimError::Interrupted)
        ));
        let mut bad_pad = PREFACE.to_vec();
        bad_pad.extend(frame(HEADERS, PADDED | END_HEADERS, 1, &[200, 1, 2]));
        assert!(matches!(rewrite(bad_pad).await, Err(ShimError::Malformed)));
        let mut bad_hpack = PREFACE.to_vec();
        bad_hpack.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0xff, 0xff]));
        assert!(matches!(rewrite(bad_hpack).await, Err(ShimError::Hpack(_))));
    }

    #[test]
    fn integers_use_the_prefix_then_seven_bit_groups() {
        // RFC 7541 C.1: 10 in a 5-bit prefix, 1337 in a 5-bit prefix.
        let mut out = Vec::new();
        integer(&mut out, 10, 5, 0);
        assert_eq!(out, [10]);
        out.clear();
        integer(&mut out, 1337, 5, 0);
        assert_eq!(out, [31, 154, 10]);
        out.clear();
        integer(&mut out, 127, 7, 0);
        assert_eq!(out, [127, 0]);
    }
}
