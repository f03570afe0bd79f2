//! Message transforms (tinyproto's plugins) over real sockets: compression and a checksum
//! chained over length-prefixed frames and over tinyproto; a corrupted message and a
//! decompression bomb are codec errors.

mod util;

use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use flate2::Compression;
use flate2::write::DeflateEncoder;
use tasktonic_core::{App, Ctx, Tonic};
use tasktonic_net::codec::{LengthDelimited, MsgPack};
use tasktonic_net::protocol::Protocol;
use tasktonic_net::tcp::{Conn, TcpClient, TcpEvents, TcpServer};
use tasktonic_net::tinyproto::TinyProto;
use tasktonic_net::transform::{Crc32, Deflate, Transform, Transformed};
use util::{Ev, LIMIT, connect, frame, local, read_frame, serve, write_all};

fn chain<P: Protocol<Message = Bytes>>(inner: P) -> Transformed<P> {
    Transformed::new(inner)
        .with(Deflate::new(6, 1 << 20))
        .with(Crc32)
}

fn messages() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"hello"),
        Bytes::new(),
        Bytes::from("compressible ".repeat(5000)),
        Bytes::from(
            (0..70_000u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<_>>(),
        ),
    ]
}

/// Dials with its protocol and reports what arrives.
struct Dialer<P> {
    addr: SocketAddr,
    protocol: Option<P>,
    out: Sender<Bytes>,
    conn: Sender<Conn<Bytes>>,
}

impl<P: Protocol<Message = Bytes> + Clone> Tonic for Dialer<P> {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(p) = self.protocol.take() {
            // Re-sending: what is sent before the connection is up waits for it.
            let conn = TcpClient::new(self.addr, p)
                .resend(true)
                .start(ctx)
                .expect("started");
            self.conn.send(conn).ok();
        }
    }
}

impl<P: Protocol<Message = Bytes> + Clone> TcpEvents<Bytes> for Dialer<P> {
    fn on_message(&mut self, _: &mut Ctx<Self>, _: &Conn<Bytes>, msg: Bytes) {
        self.out.send(msg).ok();
    }
}

/// Our client sends `messages()` through the chain to an echo server with the same chain;
/// every echo comes back as it was sent.
fn round_trip<P>(server_protocol: P, client_protocol: P)
where
    P: Protocol<Message = Bytes> + Clone,
{
    let server = serve(TcpServer::bind(local(), server_protocol), true);
    let (out, echoes) = unbounded();
    let (conn_tx, conn_rx) = unbounded();
    let app = App::new("transform-client").tonic(Dialer {
        addr: server.addr,
        protocol: Some(client_protocol),
        out,
        conn: conn_tx,
    });
    let stopper = app.stopper();
    let client = std::thread::spawn(move || app.run());
    let conn = conn_rx.recv_timeout(LIMIT).expect("dialling");
    for m in messages() {
        conn.send(m).expect("queued");
    }
    for m in messages() {
        let got = echoes.recv_timeout(LIMIT).expect("an echo in time");
        assert_eq!(got, m);
    }
    // On the server, the messages arrived as they were sent, not compressed.
    for m in messages() {
        let got = server.until(|e| matches!(e, Ev::Message(..)));
        assert!(matches!(got, Ev::Message(_, ref b) if *b == m));
    }
    stopper.stop();
    client.join().expect("client thread").expect("client ran");
    server.stop().expect("server stopped");
}

#[test]
fn compression_and_checksum_round_trip_over_length_prefixed_frames() {
    round_trip(chain(LengthDelimited::new()), chain(LengthDelimited::new()));
}

#[test]
fn compression_and_checksum_round_trip_over_tinyproto() {
    round_trip(chain(TinyProto::server()), chain(TinyProto::client()));
}

#[test]
fn a_corrupted_message_is_a_codec_error() {
    let server = serve(
        TcpServer::bind(local(), chain(LengthDelimited::new())),
        true,
    );
    let mut s = connect(server.addr);
    let good = Crc32
        .on_send(
            Deflate::new(6, 1024)
                .on_send(Bytes::from_static(b"payload"))
                .expect("deflated"),
        )
        .expect("summed");
    let mut bad = good.to_vec();
    bad[1] ^= 0x40;
    write_all(&mut s, &frame(&bad));
    let e = server.until(|e| matches!(e, Ev::Codec(..) | Ev::Message(..)));
    assert!(
        matches!(&e, Ev::Codec(_, why) if why.contains("crc32: corrupted message")),
        "{e:?}"
    );
    drop(s);
    server.stop().expect("stopped");
}

#[test]
fn a_decompression_bomb_is_refused_without_inflating_it() {
    let server = serve(
        TcpServer::bind(local(), chain(LengthDelimited::new())),
        true,
    );
    // 64 MiB of zeros deflate to ~64 KiB; the server takes at most 1 MiB inflated.
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&zeros).expect("deflate");
    }
    let bomb = Crc32
        .on_send(Bytes::from(enc.finish().expect("deflated")))
        .expect("summed");
    assert!(bomb.len() < 1 << 17, "{}", bomb.len());
    let mut s = connect(server.addr);
    write_all(&mut s, &frame(&bomb));
    let e = server.until(|e| matches!(e, Ev::Codec(..) | Ev::Message(..)));
    assert!(
        matches!(&e, Ev::Codec(_, why) if why.contains("exceeds the maximum of 1048576")),
        "{e:?}"
    );
    drop(s);
    server.stop().expect("stopped");
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Reading {
    sensor: String,
    values: Vec<f64>,
}

#[test]
fn typed_messages_go_through_the_chain_too() {
    let server = serve(
        TcpServer::bind(
            local(),
            MsgPack::<Reading>::over(chain(LengthDelimited::new())),
        ),
        true,
    );
    let reading = Reading {
        sensor: "kitchen".into(),
        values: vec![21.5; 2_000],
    };
    // On the wire: the MessagePack map, deflated, checksummed, in a u32 frame.
    let wire = |r: &Reading| {
        let packed = Bytes::from(rmp_serde::to_vec_named(r).expect("packed"));
        let sent = Crc32
            .on_send(Deflate::new(6, 1 << 20).on_send(packed).expect("deflated"))
            .expect("summed");
        frame(&sent)
    };
    let mut s = connect(server.addr);
    // A heartbeat (an empty frame) first: skipped, not a message.
    write_all(&mut s, &[frame(b""), wire(&reading)].concat());
    let got = server.until(|e| matches!(e, Ev::Message(..) | Ev::Codec(..)));
    assert!(
        matches!(&got, Ev::Message(_, r) if *r == reading),
        "{got:?}"
    );
    // The echo, read back through the chain.
    let echo = read_frame(&mut s);
    let plain = Deflate::new(6, 1 << 20)
        .on_receive(Crc32.on_receive(Bytes::from(echo)).expect("checksum"))
        .expect("inflated");
    let back: Reading = rmp_serde::from_slice(&plain).expect("a reading");
    assert_eq!(back, reading);
    // A message that passes the chain but is not a Reading is a MessagePack error.
    let not_a_reading = Crc32
        .on_send(
            Deflate::new(6, 1 << 20)
                .on_send(Bytes::from(rmp_serde::to_vec(&"text").expect("packed")))
                .expect("deflated"),
        )
        .expect("summed");
    write_all(&mut s, &frame(&not_a_reading));
    let e = server.until(|e| matches!(e, Ev::Message(..) | Ev::Codec(..)));
    assert!(
        matches!(&e, Ev::Codec(_, why) if why.contains("MessagePack")),
        "{e:?}"
    );
    drop(s);
    server.stop().expect("stopped");
}
