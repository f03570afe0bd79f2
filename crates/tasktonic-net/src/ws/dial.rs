//! A client's opening handshake (RFC 6455 §4.1): the request with a fresh key, and the
//! checks of the server's `101`.

use bytes::BytesMut;
use http::StatusCode;
use http::header::{
    SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
};

use super::WsInfo;
use super::protocol::DialSpec;
use crate::codec::CodecError;
use crate::http::HttpLimits;
use crate::http::head::{connection_lists, head_end, parse_response, put_headers};

/// The largest handshake response a client reads.
const MAX_HANDSHAKE: usize = 16 * 1024;

/// A client connection waiting for the server's `101`.
pub(super) struct Dialling {
    pub(super) key: String,
    /// Bytes of the buffer searched for the head's end already.
    pub(super) scanned: usize,
}

impl Dialling {
    /// The request that opens the session.
    pub(super) fn put_request(&mut self, spec: &DialSpec, dst: &mut BytesMut) {
        self.key = tungstenite::handshake::client::generate_key();
        let target = spec.uri.path_and_query().map_or("/", |p| p.as_str());
        dst.extend_from_slice(b"GET ");
        dst.extend_from_slice(target.as_bytes());
        dst.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        dst.extend_from_slice(spec.host.as_bytes());
        dst.extend_from_slice(
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
        );
        dst.extend_from_slice(self.key.as_bytes());
        dst.extend_from_slice(b"\r\n");
        if !spec.protocols.is_empty() {
            dst.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            dst.extend_from_slice(spec.protocols.join(", ").as_bytes());
            dst.extend_from_slice(b"\r\n");
        }
        put_headers(dst, &spec.headers);
        dst.extend_from_slice(b"\r\n");
    }

    /// The server's answer, once whole: the session's description, or why it is refused.
    pub(super) fn read_response(
        &mut self,
        spec: &DialSpec,
        src: &mut BytesMut,
    ) -> Result<Option<WsInfo>, CodecError> {
        let Some(end) = head_end(src, self.scanned) else {
            if src.len() > MAX_HANDSHAKE {
                return Err(CodecError::FrameTooLarge {
                    len: src.len() as u64,
                    max: MAX_HANDSHAKE,
                });
            }
            self.scanned = src.len();
            return Ok(None);
        };
        let head = src.split_to(end).freeze();
        let response = parse_response(&head, &HttpLimits::default())
            .map_err(|e| CodecError::malformed("the handshake's response", e))?;
        let refuse = |why: String| {
            Err(CodecError::malformed_msg(format!(
                "websocket handshake: {why}"
            )))
        };
        if response.status != StatusCode::SWITCHING_PROTOCOLS {
            return refuse(format!(
                "the server answered {} instead of 101 Switching Protocols",
                response.status
            ));
        }
        let headers = response.headers;
        let upgrade = headers
            .get(UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        if !upgrade || !connection_lists(&headers, b"upgrade") {
            return refuse("the 101 lacks `Upgrade: websocket` / `Connection: Upgrade`".into());
        }
        let expected = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        if headers
            .get(SEC_WEBSOCKET_ACCEPT)
            .map(http::HeaderValue::as_bytes)
            != Some(expected.as_bytes())
        {
            return refuse("Sec-WebSocket-Accept does not match the key".into());
        }
        if headers.contains_key(SEC_WEBSOCKET_EXTENSIONS) {
            return refuse("the server chose an extension that was not offered".into());
        }
        let protocol = match headers.get(SEC_WEBSOCKET_PROTOCOL) {
            None => None,
            Some(v) => {
                let chosen = v.to_str().unwrap_or_default().trim().to_string();
                if !spec.protocols.contains(&chosen) {
                    return refuse(format!(
                        "the server chose the subprotocol {chosen:?}, not offered"
                    ));
                }
                Some(chosen)
            }
        };
        Ok(Some(WsInfo {
            uri: spec.uri.clone(),
            headers,
            protocol,
        }))
    }
}
