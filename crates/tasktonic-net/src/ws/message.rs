//! [`WsMessage`]: a whole WebSocket message, text or binary; [`WsClose`]: a close frame's
//! code and reason.

use std::fmt;

use bytes::Bytes;

pub use tungstenite::Utf8Bytes;
pub use tungstenite::protocol::frame::coding::CloseCode;

/// One whole WebSocket message (never a fragment: fragments are joined before delivery and
/// split on sending as [`WsConfig::fragment_size`](super::WsConfig::fragment_size) says).
///
/// Text is valid UTF-8 (checked on receipt, guaranteed by the type on sending). Both kinds
/// share their buffer when cloned.
#[derive(Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl WsMessage {
    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            WsMessage::Text(t) => t.as_bytes(),
            WsMessage::Binary(b) => b,
        }
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            WsMessage::Text(t) => Some(t.as_str()),
            WsMessage::Binary(_) => None,
        }
    }

    /// True for a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, WsMessage::Text(_))
    }
}

impl fmt::Debug for WsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsMessage::Text(t) if t.len() <= 64 => write!(f, "Text({:?})", t.as_str()),
            WsMessage::Text(t) => write!(f, "Text({} bytes)", t.len()),
            WsMessage::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl From<String> for WsMessage {
    fn from(s: String) -> Self {
        WsMessage::Text(s.into())
    }
}

impl From<&str> for WsMessage {
    fn from(s: &str) -> Self {
        WsMessage::Text(s.into())
    }
}

impl From<Utf8Bytes> for WsMessage {
    fn from(s: Utf8Bytes) -> Self {
        WsMessage::Text(s)
    }
}

impl From<Bytes> for WsMessage {
    fn from(b: Bytes) -> Self {
        WsMessage::Binary(b)
    }
}

impl From<Vec<u8>> for WsMessage {
    fn from(b: Vec<u8>) -> Self {
        WsMessage::Binary(b.into())
    }
}

impl From<&[u8]> for WsMessage {
    fn from(b: &[u8]) -> Self {
        WsMessage::Binary(Bytes::copy_from_slice(b))
    }
}

/// A close frame: why a session ends, in the protocol's terms (RFC 6455 §7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsClose {
    /// The status code (1000 normal, 1001 going away, 1002 protocol error, 1007 invalid
    /// data, 1009 too big, 1011 server error, …).
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8 (longer reasons are cut at a character
    /// boundary when sent).
    pub reason: String,
}

impl WsClose {
    /// A close frame with `code` and `reason`.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> WsClose {
        WsClose {
            code: code.into(),
            reason: reason.into(),
        }
    }

    /// 1000, normal closure, without a reason.
    pub fn normal() -> WsClose {
        WsClose::new(CloseCode::Normal, "")
    }

    pub(crate) fn frame(&self) -> tungstenite::protocol::CloseFrame {
        let mut end = self.reason.len().min(123);
        while !self.reason.is_char_boundary(end) {
            end -= 1;
        }
        let code = if self.code.is_allowed() {
            self.code
        } else {
            log::warn!(
                "close code {} may not be sent; 1000 is",
                u16::from(self.code)
            );
            CloseCode::Normal
        };
        tungstenite::protocol::CloseFrame {
            code,
            reason: Utf8Bytes::from(self.reason[..end].to_string()),
        }
    }

    pub(crate) fn from_frame(frame: tungstenite::protocol::CloseFrame) -> WsClose {
        WsClose {
            code: frame.code,
            reason: frame.reason.as_str().to_string(),
        }
    }
}

impl fmt::Display for WsClose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(self.code))?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}
