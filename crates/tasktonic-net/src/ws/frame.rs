//! The frames the protocol handles itself: a server's data frame headers (written in one
//! piece), and the fast path of decoding — a whole, unfragmented text or binary frame at a
//! message boundary, cut from the connection's buffer and unmasked in place. Every other
//! frame is tungstenite's.

use bytes::BytesMut;
use tungstenite::Error as TError;
use tungstenite::protocol::Role;

use super::WsConfig;
use super::message::{Utf8Bytes, WsMessage};

/// A frame header without a mask (a server's), written in one piece.
pub(super) fn put_header(dst: &mut BytesMut, fin: bool, opcode: u8, len: usize) {
    let mut h = [0u8; 10];
    h[0] = if fin { 0x80 } else { 0 } | opcode;
    let n = if let Ok(small @ 0..126) = u8::try_from(len) {
        h[1] = small;
        2
    } else if let Ok(medium) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&medium.to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    dst.extend_from_slice(&h[..n]);
}

/// What the fast path made of the front of the buffer.
pub(super) enum Fast {
    /// A whole message, taken.
    Message(WsMessage),
    /// A message frame whose rest has not arrived: wait (nothing taken).
    Wait,
    /// Not a frame the fast path takes (a control frame, a fragment, an error, one over a
    /// limit): tungstenite's.
    No,
    /// A text message that is not UTF-8 (taken).
    BadText(TError),
}

/// XOR `data` with the 4-byte mask `key`, eight bytes at a time.
pub(super) fn unmask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The common case without tungstenite: a whole, unfragmented text or binary frame, with
/// no reserved bit, masked as the side requires, within the limits, at a message boundary.
/// Everything else goes to tungstenite, which enforces the rest of the protocol.
pub(super) fn fast_frame(role: Role, config: &WsConfig, src: &mut BytesMut) -> Fast {
    let [b0, b1, ..] = src[..] else {
        return Fast::Wait;
    };
    let opcode = b0 & 0x0F;
    let masked = b1 & 0x80 != 0;
    if b0 & 0xF0 != 0x80 || !(opcode == 1 || opcode == 2) || masked != (role == Role::Server) {
        return Fast::No;
    }
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header = 2 + ext + if masked { 4 } else { 0 };
    if src.len() < header {
        return Fast::Wait;
    }
    let len = match ext {
        2 => u64::from(u16::from_be_bytes([src[2], src[3]])),
        8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&src[2..10]);
            u64::from_be_bytes(b)
        }
        _ => u64::from(b1 & 0x7F),
    };
    let Ok(len) = usize::try_from(len) else {
        return Fast::No;
    };
    if len > config.max_frame || len > config.max_message {
        return Fast::No; // tungstenite refuses it (1009)
    }
    if src.len() < header + len {
        return Fast::Wait;
    }
    let mut frame = src.split_to(header + len);
    let key = masked.then(|| {
        [
            frame[header - 4],
            frame[header - 3],
            frame[header - 2],
            frame[header - 1],
        ]
    });
    let _ = frame.split_to(header);
    if let Some(key) = key {
        unmask(&mut frame, key);
    }
    let payload = frame.freeze();
    if opcode == 2 {
        return Fast::Message(WsMessage::Binary(payload));
    }
    match Utf8Bytes::try_from(payload) {
        Ok(text) => Fast::Message(WsMessage::Text(text)),
        Err(e) => Fast::BadText(TError::Utf8(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmask_matches_the_rfc() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for n in 0..40 {
            let plain: Vec<u8> = (0..n).map(|i: u32| (i * 13 + 5).to_le_bytes()[0]).collect();
            let mut data: Vec<u8> = plain
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            unmask(&mut data, key);
            assert_eq!(data, plain);
        }
    }

    #[test]
    fn the_fast_path_takes_only_whole_plain_messages() {
        let config = WsConfig::default();
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut src = BytesMut::from(&hello[..]);
        match fast_frame(Role::Server, &config, &mut src) {
            Fast::Message(m) => assert_eq!(m, WsMessage::from("Hello")),
            _ => panic!("not taken"),
        }
        assert!(src.is_empty());
        // Half of it: wait, take nothing.
        let mut src = BytesMut::from(&hello[..7]);
        assert!(matches!(
            fast_frame(Role::Server, &config, &mut src),
            Fast::Wait
        ));
        assert_eq!(src.len(), 7);
        // Unmasked to a server, a fragment, a ping, a reserved bit: tungstenite's.
        for frame in [
            &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'][..],
            &hello_with(0x01),
            &hello_with(0x89),
            &hello_with(0xC1),
        ] {
            let mut src = BytesMut::from(frame);
            assert!(matches!(
                fast_frame(Role::Server, &config, &mut src),
                Fast::No
            ));
            assert_eq!(src.len(), frame.len(), "nothing taken");
        }
        // The client side takes unmasked frames only.
        let mut src = BytesMut::from(&[0x82, 0x02, 1, 2][..]);
        match fast_frame(Role::Client, &config, &mut src) {
            Fast::Message(m) => assert_eq!(m, WsMessage::from(vec![1u8, 2])),
            _ => panic!("not taken"),
        }
        // Over the limit: tungstenite's (it answers 1009).
        let small = WsConfig::default().max_message(3);
        let mut src = BytesMut::from(&hello[..]);
        assert!(matches!(
            fast_frame(Role::Server, &small, &mut src),
            Fast::No
        ));
    }

    fn hello_with(b0: u8) -> Vec<u8> {
        let mut v = vec![
            b0, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        v[0] = b0;
        v
    }
}
