//! A protocol that speaks for itself: it greets the peer when the connection opens, answers
//! `PING` without the base (with an empty outbox), and closes on `BYE` after replying; the
//! base sees only the other lines. Over real loopback sockets.

mod util;

use bytes::{Buf, BytesMut};
use tasktonic_net::codec::CodecError;
use tasktonic_net::protocol::{Protocol, ProtocolIo};
use tasktonic_net::tcp::TcpServer;
use util::{Ev, connect, local, read_to_eof, serve, write_all};

/// Lines, with `PING` and `BYE` handled by the protocol itself.
#[derive(Clone, Default)]
struct Chatty;

impl Protocol for Chatty {
    type Message = String;

    fn decode_each<F>(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        io: &mut ProtocolIo<'_>,
        mut each: F,
    ) -> Result<usize, CodecError>
    where
        F: FnMut(String),
    {
        let mut n = 0;
        while n < max {
            let Some(end) = src.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = String::from_utf8(src[..end].to_vec())
                .map_err(|e| CodecError::malformed("line", e));
            src.advance(end + 1);
            match line?.as_str() {
                "PING" => io.reply(b"PONG\n"),
                "BYE" => {
                    io.reply(b"BYE\n");
                    io.close();
                    break;
                }
                other => {
                    each(other.to_string());
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    fn decode_eof(
        &mut self,
        src: &mut BytesMut,
        _io: &mut ProtocolIo<'_>,
    ) -> Result<Option<String>, CodecError> {
        if src.is_empty() {
            Ok(None)
        } else {
            Err(CodecError::Truncated {
                buffered: src.len(),
            })
        }
    }

    fn encode_vectored<'a>(
        &mut self,
        item: &'a String,
        dst: &mut BytesMut,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        dst.extend_from_slice(item.as_bytes());
        dst.extend_from_slice(b"\n");
        Ok(None)
    }

    fn on_open(&mut self, io: &mut ProtocolIo<'_>) {
        io.reply(b"HELLO\n");
    }
}

fn read_line(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut line = Vec::new();
    let mut b = [0u8];
    while b[0] != b'\n' {
        s.read_exact(&mut b).expect("a byte");
        line.push(b[0]);
    }
    String::from_utf8(line).expect("utf-8")
}

#[test]
fn a_protocol_greets_answers_and_closes_by_itself() {
    // The base does not echo: whatever comes back was written by the protocol.
    let server = serve(TcpServer::bind(local(), Chatty), false);
    let mut s = connect(server.addr);
    assert_eq!(read_line(&mut s), "HELLO\n");
    write_all(&mut s, b"PING\nfirst\nPING\n");
    assert_eq!(read_line(&mut s), "PONG\n");
    assert_eq!(read_line(&mut s), "PONG\n");
    let id = match server.until(|e| matches!(e, Ev::Message(..))) {
        Ev::Message(id, m) => {
            assert_eq!(m, "first", "PING never reaches the base");
            id
        }
        _ => unreachable!(),
    };
    write_all(&mut s, b"BYE\nnever delivered\n");
    assert_eq!(read_to_eof(&mut s), b"BYE\n");
    // The close completes when we close too (else the server lingers for us).
    drop(s);
    match server.until(|e| matches!(e, Ev::Message(..) | Ev::Disconnected(..))) {
        Ev::Disconnected(d, why, 0) => {
            assert_eq!(d, id);
            assert_eq!(why, "closed by the peer");
        }
        other => panic!("{other:?}"),
    }
    server.stop().expect("stopped");
}
