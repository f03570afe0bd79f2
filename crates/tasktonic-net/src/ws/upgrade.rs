//! A server session's upgrade (RFC 6455 §4.2): the request's checks, the `101`, and the
//! switch of the connection from HTTP to WebSocket at that message boundary.

use bytes::{Bytes, BytesMut};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use tasktonic_core::Ctx;
use tungstenite::protocol::Role;

use super::protocol::{WsProtocol, WsSettings};
use super::{Ws, WsEvents, WsInfo};
use crate::http::head::{connection_lists, field_lists, put_headers};
use crate::http::{HttpHandler, Responder};

/// A `Sec-WebSocket-Key`: the base64 form of 16 bytes (24 characters, two of padding).
fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn refusal(status: StatusCode, why: &str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(format!("{why}\n")));
    *r.status_mut() = status;
    if status == StatusCode::UPGRADE_REQUIRED {
        r.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        r.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    r
}

/// The request's key, if it is a valid opening handshake; else the refusal to send.
fn check(request: &Request<Bytes>) -> Result<&[u8], Response<Bytes>> {
    if request.method() != Method::GET || request.version() < Version::HTTP_11 {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "a WebSocket handshake is a GET in HTTP/1.1",
        ));
    }
    if !field_lists(request.headers(), &UPGRADE, b"websocket")
        || !connection_lists(request.headers(), b"upgrade")
    {
        return Err(refusal(
            StatusCode::UPGRADE_REQUIRED,
            "this resource speaks WebSocket only",
        ));
    }
    if request
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(refusal(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported Sec-WebSocket-Version (13 is)",
        ));
    }
    match request.headers().get(SEC_WEBSOCKET_KEY) {
        Some(key) if valid_key(key.as_bytes()) => Ok(key.as_bytes()),
        _ => Err(refusal(
            StatusCode::BAD_REQUEST,
            "a missing or malformed Sec-WebSocket-Key",
        )),
    }
}

/// The route of a WebSocket path ([`HttpServer::websocket`](crate::http::HttpServer::websocket)):
/// check the handshake, ask the base, answer `101` and switch; the base's `on_ws_open`
/// follows at once.
pub(crate) fn upgrade_route<B: HttpHandler + WsEvents>(
    base: &mut B,
    ctx: &mut Ctx<B>,
    request: Request<Bytes>,
    res: Responder,
) {
    let key = match check(&request) {
        Ok(key) => key,
        Err(refused) => {
            log::info!(
                "{}: websocket handshake refused: {}",
                res.session(),
                refused.status()
            );
            res.send(refused).ok();
            return;
        }
    };
    let accept = match base.on_ws_upgrade(ctx, &request) {
        Ok(accept) => accept,
        Err(refused) => {
            res.send(refused).ok();
            return;
        }
    };
    let offered = request.headers().get(SEC_WEBSOCKET_PROTOCOL);
    let protocol = accept.protocol.clone().filter(|p| {
        offered
            .and_then(|v| v.to_str().ok())
            .is_some_and(|list| list.split(',').any(|o| o.trim() == p))
    });
    if accept.protocol.is_some() && protocol.is_none() {
        log::debug!(
            "{}: the accepted subprotocol {:?} was not offered; none is sent",
            res.session(),
            accept.protocol
        );
    }
    let mut head = BytesMut::with_capacity(192);
    head.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    head.extend_from_slice(tungstenite::handshake::derive_accept_key(key).as_bytes());
    head.extend_from_slice(b"\r\n");
    if let Some(p) = &protocol {
        head.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        head.extend_from_slice(p.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    put_headers(&mut head, &accept.headers);
    head.extend_from_slice(b"\r\n");
    let config = accept.config.unwrap_or_default();
    let tuning = config.clone();
    let settings = WsSettings::new(config, None);
    let session = res.session();
    let switched = res.switch_to(
        WsProtocol::new(settings, Role::Server),
        &ctx.handle(),
        head.freeze(),
        move |tcp| tuning.tune(tcp),
    );
    match switched {
        Ok(conn) => {
            let info = WsInfo {
                uri: request.uri().clone(),
                headers: request.headers().clone(),
                protocol,
            };
            base.on_ws_open(ctx, &Ws::new(conn), &info);
        }
        Err(e) => log::warn!("{session}: the websocket upgrade failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ!="));
        assert!(!valid_key(b""));
    }

    #[test]
    fn handshake_checks() {
        let good = || {
            Request::get("/ws")
                .header("Host", "x")
                .header("Upgrade", "WebSocket")
                .header("Connection", "keep-alive, Upgrade")
                .header("Sec-WebSocket-Version", "13")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        };
        let req = good().body(Bytes::new()).expect("a request");
        assert!(check(&req).is_ok());
        let req = good()
            .header("Sec-WebSocket-Version", "8")
            .body(Bytes::new())
            .expect("a request");
        // Two version fields: the first (13) is read; a lone 8 is refused.
        assert!(check(&req).is_ok());
        let mut req = good().body(Bytes::new()).expect("a request");
        req.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(
            check(&req).map(|_| ()).unwrap_err().status(),
            StatusCode::UPGRADE_REQUIRED
        );
        let mut req = good().body(Bytes::new()).expect("a request");
        req.headers_mut().remove(UPGRADE);
        assert_eq!(
            check(&req).map(|_| ()).unwrap_err().status(),
            StatusCode::UPGRADE_REQUIRED
        );
        let mut req = good().body(Bytes::new()).expect("a request");
        req.headers_mut().remove(SEC_WEBSOCKET_KEY);
        assert_eq!(
            check(&req).map(|_| ()).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
