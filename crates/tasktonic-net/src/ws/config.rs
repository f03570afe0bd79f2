//! [`WsConfig`]: the limits and options of a WebSocket session.

/// Limits and options of WebSocket sessions (server and client alike).
///
/// A frame or message over its limit is refused with close code 1009 (message too big) and
/// the session closes; nothing of it is kept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// The largest message, however it is fragmented. Default 8 MiB.
    pub max_message: usize,
    /// The largest single frame. Default 8 MiB.
    pub max_frame: usize,
    /// Messages longer than this are sent as fragments of at most this many bytes (a
    /// continuation frame per piece); `None` (the default) sends every message as one frame.
    pub fragment_size: Option<usize>,
    /// How much of a frame is copied into the frame decoder at a time while a session is
    /// reading (it holds no read buffer while idle). Default 16 KiB.
    pub read_chunk: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_message: 8 * 1024 * 1024,
            max_frame: 8 * 1024 * 1024,
            fragment_size: None,
            read_chunk: 16 * 1024,
        }
    }
}

impl WsConfig {
    /// The largest message.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// The largest frame.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Send messages longer than `bytes` in fragments of `bytes` (at least 1).
    pub fn fragment_size(mut self, bytes: Option<usize>) -> Self {
        self.fragment_size = bytes.map(|b| b.max(1));
        self
    }

    /// How much is copied into the frame decoder at a time (at least 1 KiB).
    pub fn read_chunk(mut self, bytes: usize) -> Self {
        self.read_chunk = bytes.max(1024);
        self
    }

    pub(crate) fn tungstenite(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_chunk)
            .write_buffer_size(0)
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_frame))
    }
}
