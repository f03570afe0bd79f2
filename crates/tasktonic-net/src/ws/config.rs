//! [`WsConfig`]: the limits and options of a WebSocket session.

use std::time::Duration;

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
    /// Send a ping when nothing was written for this long (a heartbeat that keeps NAT
    /// mappings and proxies open, and gives `idle_timeout` a pong to hear). Default: none.
    pub ping_interval: Option<Duration>,
    /// Close a session from which no byte (a message, a pong, anything) arrived for this
    /// long: a peer that vanished without a close. Default: none (a quiet session is not a
    /// dead one; pair it with `ping_interval`).
    pub idle_timeout: Option<Duration>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_message: 8 * 1024 * 1024,
            max_frame: 8 * 1024 * 1024,
            fragment_size: None,
            read_chunk: 16 * 1024,
            ping_interval: None,
            idle_timeout: None,
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

    /// Ping when nothing was written for `every` (`None`: never).
    pub fn ping_interval(mut self, every: Option<Duration>) -> Self {
        self.ping_interval = every.filter(|d| !d.is_zero());
        self
    }

    /// Close a session silent for `after` (`None`: never).
    pub fn idle_timeout(mut self, after: Option<Duration>) -> Self {
        self.idle_timeout = after.filter(|d| !d.is_zero());
        self
    }

    /// The connection's options for a session: its heartbeat and silence bound (an HTTP
    /// session's idle timeout, which counts whole requests, does not carry over).
    pub(crate) fn tune(&self, config: &mut crate::tcp::TcpConfig) {
        config.message_timeout = None;
        if self.idle_timeout.is_some() {
            config.recv_timeout = self.idle_timeout;
        }
        if self.ping_interval.is_some() {
            config.heartbeat = self.ping_interval;
        }
    }

    pub(crate) fn tungstenite(&self) -> tungstenite::protocol::WebSocketConfig {
        tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_chunk)
            .write_buffer_size(0)
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_frame))
    }
}
