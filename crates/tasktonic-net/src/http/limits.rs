//! [`HttpLimits`]: how much of a peer's message is read before it is refused.

use std::time::Duration;

/// Limits on what a peer may send, and for how long a session may idle. A message over a
/// limit is answered (by a server: 431 for a head, 413 for a body) and the connection closes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpLimits {
    /// The largest head (start line and header fields, CRLFs included). Default 16 KiB.
    pub max_head: usize,
    /// The most header fields in a head. Default 100.
    pub max_headers: usize,
    /// The largest body, however it is framed. Default 8 MiB.
    pub max_body: usize,
    /// No complete message from the peer for this long and the session closes (a server:
    /// an idle keep-alive session, or a peer that trickles a head: slowloris). Time in which
    /// a request is being answered does not count. Default 60 s.
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head: 16 * 1024,
            max_headers: 100,
            max_body: 8 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl HttpLimits {
    /// The largest head.
    pub fn max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes.max(64);
        self
    }

    /// The most header fields.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n.max(1);
        self
    }

    /// The largest body.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
}
