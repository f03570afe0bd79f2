//! Entry points for fuzzing (`fuzz/`, cargo-fuzz, feature `fuzzing`) and for the property
//! tests that run the same targets on stable in `cargo test`.
//!
//! Every target takes arbitrary bytes. The first bytes choose the decoder's options and a
//! seed for how the rest is split into reads; the rest is fed to the decoder twice — whole,
//! and in those pieces — as a connection would. Besides never panicking (and, under the
//! fuzzer's allocation limit, never allocating without bound), both runs must agree exactly:
//! the same messages, the same bytes sent back to the peer, the same error. A decoder whose
//! output depends on how TCP happened to cut the stream is broken, whatever the input.
//!
//! Not part of the API: hidden from the docs, and only built for tests and the fuzzer.

use std::fmt::Debug;

use bytes::BytesMut;

use crate::codec::{LengthDelimited, Lines, MsgPack, Utf8Text};
use crate::protocol::{Protocol, ProtocolIo};

#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
pub use self::tls::{TlsPair, tls_records};

/// Chunk sizes, from a seed: mostly small (1–16 bytes, where boundaries bite), sometimes
/// large.
#[derive(Debug, Clone)]
pub struct Splits {
    state: u32,
}

impl Splits {
    /// Sizes made from `seed`.
    pub fn new(seed: u16) -> Splits {
        Splits {
            state: u32::from(seed) | 1,
        }
    }

    /// The next piece's size (at least 1).
    pub fn next_len(&mut self) -> usize {
        // xorshift32: cheap, and any seed gives a long sequence.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let r = self.state as usize;
        if r % 8 == 0 { 1 + r % 4096 } else { 1 + r % 16 }
    }
}

/// What a decoder made of a stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Each message, as `Debug` shows it.
    pub messages: Vec<String>,
    /// What the protocol wrote back to the peer.
    pub replies: Vec<u8>,
    /// How it ended: `eof`, `eof: <error>`, `error: <error>`, `close`, `pause`.
    pub end: String,
}

/// Feed `data` to `protocol` in pieces of `pieces` sizes (all of it at once when `None`),
/// decoding after each as a connection does (at most 16 messages per call); at the end, the
/// end of the stream. `skip`: a skippable error is skipped (`OnMalformed::Skip`; the HTTP
/// and WebSocket protocols always close instead).
pub fn run<P: Protocol>(protocol: P, data: &[u8], pieces: Option<Splits>, skip: bool) -> Outcome
where
    P::Message: Debug,
{
    run_showing(protocol, data, pieces, skip, |m| format!("{m:?}"))
}

/// [`run`], each message shown by `show`.
pub fn run_showing<P: Protocol>(
    mut protocol: P,
    data: &[u8],
    mut pieces: Option<Splits>,
    skip: bool,
    show: impl Fn(&P::Message) -> String,
) -> Outcome {
    let mut src = BytesMut::new();
    let mut replies = BytesMut::new();
    let mut messages = Vec::new();
    {
        let mut io = ProtocolIo::new(&mut replies);
        protocol.on_open(&mut io);
    }
    let mut fed = 0;
    while fed < data.len() {
        let n = match pieces.as_mut() {
            Some(p) => p.next_len().min(data.len() - fed),
            None => data.len(),
        };
        src.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        // Every pass consumes bytes or hands messages over; more passes than bytes is a
        // decoder that spins (a connection's thread would, too).
        let mut passes = 0;
        loop {
            passes += 1;
            assert!(
                passes <= data.len() + 64,
                "the decoder makes no progress: {data:02x?}"
            );
            let before = src.len();
            let mut io = ProtocolIo::new(&mut replies);
            let got = protocol.decode_each(&mut src, 16, &mut io, |m| {
                messages.push(show(&m));
            });
            let (close, pause) = (io.wants_close(), io.wants_pause());
            let handed = match got {
                Err(e) if skip && e.is_skippable() => 1,
                Err(e) => return outcome(messages, &replies, format!("error: {}", describe(&e))),
                Ok(n) => n,
            };
            if close {
                return outcome(messages, &replies, "close".into());
            }
            if pause {
                return outcome(messages, &replies, "pause".into());
            }
            if src.len() == before && handed == 0 {
                break;
            }
        }
    }
    let mut io = ProtocolIo::new(&mut replies);
    let end = match protocol.decode_eof(&mut src, &mut io) {
        Ok(Some(m)) => {
            messages.push(show(&m));
            "eof".to_string()
        }
        Ok(None) => "eof".to_string(),
        Err(e) => format!("eof: {}", describe(&e)),
    };
    outcome(messages, &replies, end)
}

/// An error as outcomes compare it: a line's or a chunk's observed length depends on how
/// much had arrived when it passed the maximum, so only the maximum counts.
fn describe(e: &crate::codec::CodecError) -> String {
    match e {
        crate::codec::CodecError::FrameTooLarge { max, .. } => {
            format!("a frame over the maximum of {max}")
        }
        other => other.to_string(),
    }
}

fn outcome(messages: Vec<String>, replies: &BytesMut, end: String) -> Outcome {
    Outcome {
        messages,
        replies: without_dates(replies),
        end,
    }
}

/// The replies with every `date: <IMF-fixdate>` field's value blanked: the whole run and
/// the split run may straddle a second, and the clock is not what they compare (a 10-minute
/// fuzz run found exactly that: two 400 answers a second apart).
fn without_dates(replies: &[u8]) -> Vec<u8> {
    const FIELD: &[u8] = b"\r\ndate: ";
    const VALUE: usize = "Sun, 06 Nov 1994 08:49:37 GMT".len();
    let mut out = Vec::with_capacity(replies.len());
    let mut rest = replies;
    while let Some(at) = rest.windows(FIELD.len()).position(|w| w == FIELD) {
        let value = at + FIELD.len();
        if rest.len() < value + VALUE {
            break;
        }
        out.extend_from_slice(&rest[..value]);
        out.extend_from_slice(&[b'-'; VALUE]);
        rest = &rest[value + VALUE..];
    }
    out.extend_from_slice(rest);
    out
}

/// Run `make()`'s protocol over `data` whole and in pieces from `seed`; panic if the two
/// disagree.
pub fn same_either_way<P: Protocol>(
    make: impl Fn() -> P,
    data: &[u8],
    seed: u16,
    skip: bool,
) -> Outcome
where
    P::Message: Debug,
{
    let whole = run(make(), data, None, skip);
    let split = run(make(), data, Some(Splits::new(seed)), skip);
    assert_eq!(
        whole,
        split,
        "fed whole and in pieces (seed {seed}), {} bytes: {data:02x?}",
        data.len()
    );
    whole
}

/// Split a target's input: the option byte, the split seed, the stream.
fn header(data: &[u8]) -> Option<(u8, u16, &[u8])> {
    match data {
        [option, a, b, rest @ ..] => Some((*option, u16::from_be_bytes([*a, *b]), rest)),
        _ => None,
    }
}

/// Length-prefixed frames: every header width and byte order, a small maximum.
pub fn length_delimited(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let width = [1, 2, 4, 8][usize::from(option & 3)];
    let endian = if option & 4 == 0 {
        crate::codec::Endian::Big
    } else {
        crate::codec::Endian::Little
    };
    let max = if option & 8 == 0 { 300 } else { 1 << 16 };
    same_either_way(
        || {
            LengthDelimited::new()
                .header_len(width)
                .endian(endian)
                .max_frame(max)
        },
        stream,
        seed,
        true,
    );
}

/// Lines, with a small maximum line length.
pub fn lines(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let max = 1 + usize::from(option) * 4;
    same_either_way(|| Lines::with_max_len(max), stream, seed, true);
}

/// UTF-8 text chunks (a character split across reads must come out whole).
pub fn utf8(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let max = 4 + usize::from(option) * 16;
    // Chunks are cut where reads end, but what comes out is the same text, in order, with
    // the same end; and it is exactly the stream's valid UTF-8.
    let split = run_showing(
        Utf8Text::with_max_frame(max),
        stream,
        Some(Splits::new(seed)),
        true,
        String::clone,
    );
    let whole = run_showing(
        Utf8Text::with_max_frame(max),
        stream,
        None,
        true,
        String::clone,
    );
    assert_eq!(
        split.messages.concat(),
        whole.messages.concat(),
        "{stream:02x?}"
    );
    assert_eq!(split.end, whole.end, "{stream:02x?}");
    let valid: String = String::from_utf8_lossy(stream)
        .chars()
        .filter(|c| *c != char::REPLACEMENT_CHARACTER)
        .collect();
    if !stream.windows(3).any(|w| w == "\u{fffd}".as_bytes()) {
        assert_eq!(whole.messages.concat(), valid, "{stream:02x?}");
    }
}

/// MessagePack values in u32 frames.
pub fn msgpack(data: &[u8]) {
    let Some((_, seed, stream)) = header(data) else {
        return;
    };
    same_either_way(MsgPack::<serde_json::Value>::new, stream, seed, true);
}

/// tinyproto 3.0: a server (option bit 0 clear) or a client end, with a small maximum; the
/// stream is the peer's handshake byte, sizes, status bytes and payloads.
pub fn tinyproto(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let max = 16 + usize::from(option >> 1) * 16;
    same_either_way(
        || {
            let p = if option & 1 == 0 {
                crate::tinyproto::TinyProto::server()
            } else {
                crate::tinyproto::TinyProto::client()
            };
            p.max_size(max)
        },
        stream,
        seed,
        true,
    );
}

/// HTTP/1.1 requests as a server reads them (heads, fixed and chunked bodies, pipelining).
pub fn http_request(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let limits = small_limits(option);
    same_either_way(
        || crate::http::fuzz_server_protocol(limits.clone()),
        stream,
        seed,
        false,
    );
}

/// HTTP/1.1 responses as a client reads them, to `GET`s and `HEAD`s (the option byte's bits).
pub fn http_response(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let limits = small_limits(option);
    same_either_way(
        || crate::http::fuzz_client_protocol(limits.clone(), option),
        stream,
        seed,
        false,
    );
}

/// A chunked body (with trailers) on its own.
pub fn chunked(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let max = 16 + usize::from(option) * 64;
    let whole = crate::http::fuzz_chunked(stream, max, None);
    let split = crate::http::fuzz_chunked(stream, max, Some(Splits::new(seed)));
    assert_eq!(
        whole, split,
        "chunked, whole and split (seed {seed}): {stream:02x?}"
    );
}

/// WebSocket frames as a server reads them (masked), or — option bit 0 — a client's handshake
/// answer and then frames (unmasked).
pub fn ws_frames(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    if option & 1 == 0 {
        same_either_way(|| crate::ws::fuzz_protocol(option), stream, seed, false);
        return;
    }
    // A client masks what it sends with fresh random keys: its replies differ in their
    // bytes, not in their frames' sizes.
    let whole = run(crate::ws::fuzz_protocol(option), stream, None, false);
    let split = run(
        crate::ws::fuzz_protocol(option),
        stream,
        Some(Splits::new(seed)),
        false,
    );
    assert_eq!(
        (&whole.messages, whole.replies.len(), &whole.end),
        (&split.messages, split.replies.len(), &split.end),
        "a client fed whole and in pieces (seed {seed}): {stream:02x?}"
    );
}

/// NATS server operations as our client reads them (`INFO`, `MSG`, `HMSG`, `PING`, `PONG`,
/// `+OK`, `-ERR`), every field of a message compared.
pub fn nats(data: &[u8]) -> Option<Outcome> {
    let (_, seed, stream) = header(data)?;
    let show = crate::nats::fuzz_show;
    let whole = run_showing(crate::nats::fuzz_protocol(), stream, None, false, show);
    let split = run_showing(
        crate::nats::fuzz_protocol(),
        stream,
        Some(Splits::new(seed)),
        false,
        show,
    );
    assert_eq!(
        whole, split,
        "nats, whole and in pieces (seed {seed}): {stream:02x?}"
    );
    Some(whole)
}

/// Message transforms as a receiver undoes them (a CRC-32 check, then inflating to at most
/// 4 KiB) over u32 frames; with option bit 0, MessagePack values carried through them.
pub fn transforms(data: &[u8]) {
    let Some((option, seed, stream)) = header(data) else {
        return;
    };
    let chain = || {
        crate::transform::Transformed::new(LengthDelimited::new().max_frame(8192))
            .with(crate::transform::Deflate::new(6, 4096))
            .with(crate::transform::Crc32)
    };
    if option & 1 == 0 {
        same_either_way(chain, stream, seed, true);
    } else {
        same_either_way(
            || MsgPack::<serde_json::Value>::over(chain()),
            stream,
            seed,
            true,
        );
    }
}

fn small_limits(option: u8) -> crate::http::HttpLimits {
    crate::http::HttpLimits {
        max_head: 64 + usize::from(option >> 2) * 32,
        max_headers: 8,
        max_body: 1024,
        ..crate::http::HttpLimits::default()
    }
}

#[cfg(test)]
mod tests;
