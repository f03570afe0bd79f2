//! The frame gate: hands the frame decoder (tungstenite's) the connection's bytes one frame
//! at a time, and knows where messages end.
//!
//! tungstenite reads from a stream into a buffer of its own, as much as it may. Fed from
//! the connection's read buffer that way, it would take bytes past the last message it
//! returned, and the connection — which decodes only while its own buffer holds bytes —
//! would leave them there until the peer sent more. The gate reads the frame headers as the
//! bytes pass and never hands over more than the rest of the current frame, so at every
//! frame boundary the decoder holds nothing and the rest waits, undecoded, in the
//! connection's buffer. It also tracks whether a fragmented message is open: a session at a
//! message boundary with nothing owed has no decoder state worth keeping, so the protocol
//! drops it while idle.

use std::io;

use bytes::{Buf, BytesMut};

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

#[derive(Debug, Default)]
pub(crate) struct FrameGate {
    /// The current frame's header bytes handed over so far (until it is complete).
    head: [u8; MAX_HEADER],
    head_len: usize,
    /// The header is complete: `left` payload bytes of the frame are still to hand over.
    in_payload: bool,
    left: u64,
    /// A data frame without FIN was handed over: a fragmented message is open.
    fragmented: bool,
}

/// The header's length, from its first two bytes.
fn header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

impl FrameGate {
    /// No frame is partly handed over and no fragmented message is open.
    pub(crate) fn at_message_boundary(&self) -> bool {
        self.head_len == 0 && !self.in_payload && !self.fragmented
    }

    /// Move bytes of the current frame from `src` into `buf`, stopping at the frame's end.
    /// `WouldBlock` when `src` is empty (the decoder then waits for the next read).
    pub(crate) fn read(&mut self, src: &mut BytesMut, buf: &mut [u8]) -> io::Result<usize> {
        if src.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut given = 0;
        while given < buf.len() && !src.is_empty() {
            if self.in_payload {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(src.len())
                    .min(buf.len() - given);
                buf[given..given + n].copy_from_slice(&src[..n]);
                src.advance(n);
                given += n;
                self.left -= n as u64;
                if self.left == 0 {
                    self.frame_done();
                    break;
                }
                continue;
            }
            let need = if self.head_len < 2 {
                2
            } else {
                header_len(self.head[1])
            };
            let n = (need - self.head_len).min(src.len()).min(buf.len() - given);
            buf[given..given + n].copy_from_slice(&src[..n]);
            self.head[self.head_len..self.head_len + n].copy_from_slice(&src[..n]);
            src.advance(n);
            given += n;
            self.head_len += n;
            if self.head_len >= 2 && self.head_len == header_len(self.head[1]) {
                self.left = self.payload_len();
                self.in_payload = true;
                if self.left == 0 {
                    self.frame_done();
                    break;
                }
            }
        }
        Ok(given)
    }

    fn payload_len(&self) -> u64 {
        match self.head[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            127 => {
                let mut b = [0; 8];
                b.copy_from_slice(&self.head[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        }
    }

    fn frame_done(&mut self) {
        let fin = self.head[0] & 0x80 != 0;
        let opcode = self.head[0] & 0x0F;
        if opcode < 8 {
            // A data frame (continuation, text, binary or reserved): FIN ends the message.
            self.fragmented = !fin;
        }
        self.head_len = 0;
        self.in_payload = false;
        self.left = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
        let mut v = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => v.push(m | u8::try_from(n).expect("small")),
            n if n <= 0xFFFF => {
                v.push(m | 126);
                v.extend_from_slice(&u16::try_from(n).expect("medium").to_be_bytes());
            }
            n => {
                v.push(m | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if mask {
            v.extend_from_slice(&[0; 4]);
        }
        v.extend_from_slice(payload);
        v
    }

    /// Drain `src` through the gate with reads of `chunk` bytes; returns the pieces.
    fn pieces(gate: &mut FrameGate, src: &mut BytesMut, chunk: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0; chunk];
        while let Ok(n) = gate.read(src, &mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[test]
    fn stops_at_every_frame_end() {
        for (len, mask) in [
            (0, false),
            (5, true),
            (125, false),
            (300, true),
            (70_000, false),
        ] {
            let a = frame(true, 2, &vec![7; len], mask);
            let b = frame(true, 1, b"next", mask);
            let mut src = BytesMut::from(&[a.clone(), b.clone()].concat()[..]);
            let mut gate = FrameGate::default();
            let mut got = Vec::new();
            let mut buf = vec![0; 1 << 20];
            // Exactly the first frame, then exactly the second.
            let n = gate.read(&mut src, &mut buf).expect("bytes");
            got.extend_from_slice(&buf[..n]);
            assert_eq!(got, a, "first frame of {len}");
            assert!(gate.at_message_boundary());
            let n = gate.read(&mut src, &mut buf).expect("bytes");
            assert_eq!(&buf[..n], &b[..]);
            assert!(src.is_empty());
        }
    }

    #[test]
    fn byte_by_byte_and_fragments() {
        let wire = [
            frame(false, 1, b"hel", true),
            frame(true, 9, b"ping", true),
            frame(true, 0, b"lo", true),
        ]
        .concat();
        let mut gate = FrameGate::default();
        let mut joined = Vec::new();
        let mut boundaries = Vec::new();
        for byte in &wire {
            let mut src = BytesMut::from(&[*byte][..]);
            for p in pieces(&mut gate, &mut src, 1) {
                joined.extend(p);
            }
            boundaries.push(gate.at_message_boundary());
        }
        assert_eq!(joined, wire);
        // Open from the first byte until the final continuation's last byte.
        assert!(boundaries[..wire.len() - 1].iter().all(|b| !b));
        assert!(boundaries[wire.len() - 1]);
    }
}
