//! tinyproto 3.0 on the wire: a half-duplex protocol with a go-ahead per message.
//!
//! Both ends send one `0xFF` when the connection opens and expect one back (a full server
//! sends `0xFE` instead, then closes). Then per message the sender writes its size (u32 big
//! endian, at most `0xF0FFFFFF`, so that a size never starts with a status byte), the receiver
//! answers one status byte — `0xFF` go on, `0x00` too large — and on `0xFF` the sender writes
//! the payload (nothing for size 0).
//!
//! [`TinyProto`] speaks it as a [`Protocol`](crate::protocol::Protocol) on any connection
//! (plain or TLS, server or client), without tinyproto's defects: no thread per connection and
//! nothing ever blocks (the go-ahead is awaited by the connection's state machine, and the
//! messages sent meanwhile wait in its queue); a message waiting for its go-ahead when the
//! connection is lost is handed back; EOF inside a message is
//! [`CodecError::Truncated`](crate::codec::CodecError::Truncated), never a message; the full
//! server's refusal is the byte `0xFE`; and both ends starting a message at the same moment —
//! which fails both tinyproto ends — is resolved: the server yields to the client (it answers
//! the client's size with its go-ahead, and the client answers the server's size once its own
//! message is through). See `docs/interop.md` ("tinyproto 3.0").

mod protocol;

pub use self::protocol::{MSG_MAX_SIZE, TinyProto};
