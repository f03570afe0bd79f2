//! Framing over real sockets: whole messages whatever the segmentation, zero-length and
//! maximum-size frames, oversized announcements, malformed MessagePack, lines.

mod util;

use std::io::Write;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tasktonic_net::codec::{LengthDelimited, Lines, MsgPack};
use tasktonic_net::tcp::{OnMalformed, TcpConfig, TcpServer};
use util::*;

#[test]
fn one_byte_at_a_time_and_many_frames_per_write_give_the_same_messages() {
    let server = u32_echo();
    let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) * 7]).collect();
    let wire: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();

    // Byte by byte: every header is split across reads.
    let mut a = connect(server.addr);
    for b in &wire {
        a.write_all(std::slice::from_ref(b)).expect("write");
        a.flush().expect("flush");
    }
    // All at once: many frames per read.
    let mut b = connect(server.addr);
    write_all(&mut b, &wire);
    for s in [&mut a, &mut b] {
        for p in &payloads {
            assert_eq!(&read_frame(s), p);
        }
    }
    drop((a, b));
    server.stop().expect("clean stop");
}

#[test]
fn zero_length_frames_round_trip() {
    let server = u32_echo();
    let mut c = connect(server.addr);
    write_all(&mut c, &[frame(b""), frame(b"x"), frame(b"")].concat());
    assert_eq!(read_frame(&mut c), b"");
    assert_eq!(read_frame(&mut c), b"x");
    assert_eq!(read_frame(&mut c), b"");
    drop(c);
    server.stop().expect("clean stop");
}

#[test]
fn a_frame_at_the_maximum_passes_and_one_above_closes_only_that_connection() {
    let server = serve(
        TcpServer::bind(local(), LengthDelimited::new().max_frame(1024)),
        true,
    );
    let mut bystander = connect(server.addr);
    let mut c = connect(server.addr);
    write_all(&mut c, &frame(&[7; 1024]));
    assert_eq!(read_frame(&mut c), vec![7; 1024]);
    // Announce 1025 bytes (and send only a few): the server must not wait for or allocate them.
    write_all(&mut c, &[&1025u32.to_be_bytes()[..], b"abc"].concat());
    assert!(read_to_eof(&mut c).is_empty(), "closed without a reply");
    let ev = server.until(|e| matches!(e, Ev::Disconnected(..)));
    match ev {
        Ev::Disconnected(_, why, unsent) => {
            assert!(why.contains("1025") && why.contains("1024"), "{why}");
            assert_eq!(unsent, 0);
        }
        _ => unreachable!(),
    }
    // The other connection is unaffected.
    write_all(&mut bystander, &frame(b"still here"));
    assert_eq!(read_frame(&mut bystander), b"still here");
    drop((c, bystander));
    server.stop().expect("clean stop");
}

#[test]
fn one_mebibyte_frames_round_trip() {
    let server = u32_echo();
    let mut c = connect(server.addr);
    let payloads: Vec<Vec<u8>> = (0..4u32)
        .map(|i| {
            (0..1 << 20)
                .map(|j: u32| (j.wrapping_mul(31) ^ i).to_le_bytes()[0])
                .collect()
        })
        .collect();
    let writer = {
        let mut w = c.try_clone().expect("clone");
        let wire: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        std::thread::spawn(move || write_all(&mut w, &wire))
    };
    for p in &payloads {
        assert!(
            read_frame(&mut c) == *p,
            "a 1 MiB frame came back different"
        );
    }
    writer.join().expect("writer");
    drop(c);
    server.stop().expect("clean stop");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    from: String,
    n: u32,
}

#[test]
fn malformed_messagepack_is_reported_and_skipped_or_closes_by_policy() {
    for policy in [OnMalformed::Skip, OnMalformed::Close] {
        let config = TcpConfig {
            on_malformed: policy,
            ..TcpConfig::default()
        };
        let server = serve(
            TcpServer::bind(local(), MsgPack::<Note>::new()).config(config),
            true,
        );
        let mut c = connect(server.addr);
        let good = rmp_frame(&Note {
            from: "a".into(),
            n: 1,
        });
        write_all(&mut c, &[frame(&[0xc1, 0xc1]), good.clone()].concat());
        assert!(matches!(
            server.until(|e| matches!(e, Ev::Codec(..))),
            Ev::Codec(..)
        ));
        match policy {
            OnMalformed::Skip => {
                assert_eq!(
                    read_frame(&mut c),
                    good[4..].to_vec(),
                    "the next frame is echoed"
                );
            }
            OnMalformed::Close => {
                assert!(read_to_eof(&mut c).is_empty());
                assert!(matches!(
                    server.until(|e| matches!(e, Ev::Disconnected(..))),
                    Ev::Disconnected(..)
                ));
            }
        }
        drop(c);
        server.stop().expect("clean stop");
    }
}

fn rmp_frame(n: &Note) -> Vec<u8> {
    frame(&rmp_serde::to_vec_named(n).expect("encodable"))
}

#[test]
fn lines_and_overlong_lines() {
    let server = serve(TcpServer::bind(local(), Lines::with_max_len(16)), true);
    let mut c = connect(server.addr);
    write_all(&mut c, b"hello\r\nwor");
    write_all(&mut c, b"ld\n");
    let mut reader = std::io::BufReader::new(c.try_clone().expect("clone"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).expect("line");
    assert_eq!(line, "hello\n");
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).expect("line");
    assert_eq!(line, "world\n");
    write_all(&mut c, &[b'x'; 64]);
    line.clear();
    assert_eq!(
        std::io::BufRead::read_line(&mut reader, &mut line).expect("eof"),
        0,
        "closed"
    );
    drop((c, reader));
    server.stop().expect("clean stop");
    let _ = Bytes::new();
}

/// Answers every message with three: `m1`, one too big for the codec, `m3`.
struct Expander {
    server: Option<TcpServer<LengthDelimited>>,
    out: crossbeam_channel::Sender<String>,
    addr: crossbeam_channel::Sender<(std::net::SocketAddr, tasktonic_core::Handle<Expander>)>,
}

impl tasktonic_core::Tonic for Expander {
    type State = ();
    fn on_start(&mut self, ctx: &mut tasktonic_core::Ctx<Self>) {
        start_and_report(self.server.take(), ctx, &self.addr);
    }
}

impl tasktonic_net::tcp::TcpEvents<Bytes> for Expander {
    fn on_message(
        &mut self,
        _: &mut tasktonic_core::Ctx<Self>,
        conn: &tasktonic_net::tcp::Conn<Bytes>,
        msg: Bytes,
    ) {
        for part in [b"1".to_vec(), vec![b'!'; 64], b"3".to_vec()] {
            let mut m = msg.to_vec();
            m.extend_from_slice(&part);
            conn.send(Bytes::from(m)).expect("accepted");
        }
    }
    fn on_unencodable(
        &mut self,
        _: &mut tasktonic_core::Ctx<Self>,
        _: &tasktonic_net::tcp::Conn<Bytes>,
        msg: Bytes,
        error: &tasktonic_net::codec::CodecError,
    ) {
        self.out
            .send(format!("unencodable {} bytes: {error}", msg.len()))
            .ok();
    }
}

#[test]
fn an_unencodable_message_is_handed_back_and_the_ones_around_it_are_written_in_order() {
    let (out, events) = crossbeam_channel::unbounded();
    let (addr_tx, addr) = crossbeam_channel::unbounded();
    let server = run_app(
        tasktonic_core::App::new("expander").tonic(Expander {
            server: Some(TcpServer::bind(
                local(),
                LengthDelimited::new().max_frame(16),
            )),
            out,
            addr: addr_tx,
        }),
        addr,
        events,
    );
    let mut s = connect(server.addr);
    write_all(&mut s, &[frame(b"a"), frame(b"b")].concat());
    assert_eq!(read_frame(&mut s), b"a1");
    assert_eq!(read_frame(&mut s), b"a3");
    assert_eq!(read_frame(&mut s), b"b1");
    assert_eq!(read_frame(&mut s), b"b3");
    for _ in 0..2 {
        let e = server.next();
        assert!(e.starts_with("unencodable 65 bytes"), "{e}");
    }
    drop(s);
    server.stop().expect("clean stop");
}

/// Frames of 1 KiB and more are written straight from the messages (vectored writes), smaller
/// ones copied; when the socket takes only part of a batch, the rest waits in the connection.
/// Here the client reads nothing until it has sent everything, so the server's writes must
/// come up short (18 MB does not fit the socket buffers); every byte must still come back,
/// in order.
#[test]
fn mixed_frames_come_back_byte_for_byte_through_short_vectored_writes() {
    const SIZES: [usize; 8] = [1, 100, 1023, 1024, 1025, 4096, 20_000, 65_536];
    const FRAMES: usize = 1_600;
    let payload = |i: usize| -> Vec<u8> {
        (0..SIZES[i % SIZES.len()])
            .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)).to_le_bytes()[0])
            .collect()
    };
    let server = u32_echo();
    let mut c = connect(server.addr);
    let wire: Vec<u8> = (0..FRAMES).flat_map(|i| frame(&payload(i))).collect();
    let mut w = c.try_clone().expect("clone");
    std::thread::spawn(move || write_all(&mut w, &wire))
        .join()
        .expect("everything sent before any echo is read");
    for i in 0..FRAMES {
        assert!(
            read_frame(&mut c) == payload(i),
            "frame {i} came back different"
        );
    }
    drop(c);
    server.stop().expect("clean stop");
}
