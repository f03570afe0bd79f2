//! UDP sockets over real sockets on 127.0.0.1 (port 0): echo with the sender's address, empty
//! and largest datagrams, the codecs and bad input, send failures handed back, broadcast,
//! multicast, closing (what was never sent comes back), back-pressure, and order.

mod util;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdp};

use bytes::Bytes;
use crossbeam_channel::{Sender, bounded};
use serde::{Deserialize, Serialize};
use tasktonic_core::{App, Ctx, Tonic};
use tasktonic_net::udp::{
    MAX_DATAGRAM_V4, MsgPackDatagrams, RawDatagrams, UdpConfig, UdpEvents, UdpSendError, UdpSocket,
    Utf8Datagrams,
};
use util::LIMIT;
use util::udp::{UdpApp, UdpEv, hold, hold_selector, peer, recv, udp_app};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

fn raw_echo(colocated: bool) -> UdpApp<RawDatagrams> {
    udp_app(
        UdpSocket::bind(local(), RawDatagrams::new()),
        true,
        colocated,
    )
}

fn echo_round_trip(colocated: bool) {
    let server = raw_echo(colocated);
    assert_ne!(server.addr().port(), 0, "the bound port is reported");
    assert_eq!(server.next(), UdpEv::Bound(server.addr()));
    let client = peer();
    client.send_to(b"ping", server.addr()).expect("send");
    assert_eq!(recv(&client), (b"ping".to_vec(), server.addr()));
    let from = client.local_addr().expect("addr");
    assert_eq!(
        server.next(),
        UdpEv::Datagram(Bytes::from_static(b"ping"), from)
    );
    server.app.stop().expect("clean stop");
}

#[test]
fn an_echo_comes_back_and_the_base_learns_the_senders_address() {
    echo_round_trip(false);
}

#[test]
fn a_co_located_base_echoes_too() {
    echo_round_trip(true);
}

#[test]
fn an_empty_datagram_is_delivered_and_echoed() {
    let server = raw_echo(false);
    let client = peer();
    client.send_to(b"", server.addr()).expect("send");
    assert_eq!(recv(&client), (Vec::new(), server.addr()));
    let from = client.local_addr().expect("addr");
    assert_eq!(
        server.next_after_bound(),
        UdpEv::Datagram(Bytes::new(), from)
    );
    server.app.stop().expect("clean stop");
}

#[test]
fn the_largest_ipv4_datagram_goes_both_ways_whole() {
    let server = raw_echo(false);
    let client = peer();
    let big: Vec<u8> = (0..=250u8).cycle().take(MAX_DATAGRAM_V4).collect();
    client.send_to(&big, server.addr()).expect("send");
    let (echo, _) = recv(&client);
    assert_eq!(echo.len(), MAX_DATAGRAM_V4);
    assert!(echo == big, "the echo differs");
    match server.next_after_bound() {
        UdpEv::Datagram(msg, _) => assert_eq!(msg.len(), MAX_DATAGRAM_V4),
        other => panic!("{other:?}"),
    }
    server.app.stop().expect("clean stop");
}

#[test]
fn text_datagrams_decode_and_invalid_utf8_is_reported_without_harm() {
    let server = udp_app(UdpSocket::bind(local(), Utf8Datagrams::new()), true, false);
    let client = peer();
    let from = client.local_addr().expect("addr");
    client
        .send_to("héllo".as_bytes(), server.addr())
        .expect("send");
    assert_eq!(recv(&client).0, "héllo".as_bytes());
    client
        .send_to(b"bad \xff\xfe", server.addr())
        .expect("send");
    client.send_to(b"after", server.addr()).expect("send");
    assert_eq!(recv(&client).0, b"after", "the bad datagram is not echoed");
    assert_eq!(
        server.next_after_bound(),
        UdpEv::Datagram("héllo".into(), from)
    );
    match server.next() {
        UdpEv::DecodeError(f, e) => {
            assert_eq!(f, from);
            assert!(e.contains("invalid UTF-8"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.next(), UdpEv::Datagram("after".into(), from));
    server.app.stop().expect("clean stop");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    celsius: f32,
    seq: u64,
}

#[test]
fn msgpack_datagrams_decode_and_malformed_ones_are_reported_without_harm() {
    let server = udp_app(
        UdpSocket::bind(local(), MsgPackDatagrams::<Reading>::new()),
        true,
        false,
    );
    let client = peer();
    let from = client.local_addr().expect("addr");
    let reading = Reading {
        sensor: "attic".into(),
        celsius: 21.5,
        seq: 1,
    };
    let wire = rmp_serde::to_vec_named(&reading).expect("encodable");
    for bad in [
        &b"\xc1"[..],
        &wire[..wire.len() - 1],
        b"",
        b"\x93\x01\x02\x03",
    ] {
        client.send_to(bad, server.addr()).expect("send");
    }
    client.send_to(&wire, server.addr()).expect("send");
    let echo = recv(&client).0;
    let decoded: Reading = rmp_serde::from_slice(&echo).expect("an echoed Reading");
    assert_eq!(decoded, reading);
    for _ in 0..4 {
        match server.next_after_bound() {
            UdpEv::DecodeError(f, e) => {
                assert_eq!(f, from);
                assert!(e.contains("malformed"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.next(), UdpEv::Datagram(reading, from));
    server.app.stop().expect("clean stop");
}

#[test]
fn a_datagram_above_the_codecs_maximum_is_a_decode_error() {
    let server = udp_app(
        UdpSocket::bind(local(), RawDatagrams::with_max(8)),
        true,
        false,
    );
    let client = peer();
    client.send_to(b"123456789", server.addr()).expect("send");
    client.send_to(b"12345678", server.addr()).expect("send");
    assert_eq!(recv(&client).0, b"12345678");
    match server.next_after_bound() {
        UdpEv::DecodeError(_, e) => assert!(e.contains("exceeds the maximum of 8"), "{e}"),
        other => panic!("{other:?}"),
    }
    server.app.stop().expect("clean stop");
}

#[test]
fn a_send_that_fails_comes_back_with_its_datagram_and_the_socket_goes_on() {
    let server = udp_app(UdpSocket::bind(local(), RawDatagrams::new()), false, false);
    let client = peer();
    let to = client.local_addr().expect("addr");
    // Too large for the codec (and for IPv4): refused before the system sees it.
    let big = Bytes::from(vec![7u8; MAX_DATAGRAM_V4 + 1]);
    server.udp.send_to(big.clone(), to).expect("accepted");
    // Port 0 is no destination: the system refuses.
    let nowhere: SocketAddr = "127.0.0.1:0".parse().expect("address");
    server
        .udp
        .send_to(Bytes::from_static(b"lost?"), nowhere)
        .expect("accepted");
    server
        .udp
        .send_to(Bytes::from_static(b"fine"), to)
        .expect("accepted");
    assert_eq!(recv(&client), (b"fine".to_vec(), server.addr()));
    match server.next_after_bound() {
        UdpEv::SendFailed(msg, t, e) => {
            assert_eq!((msg, t), (big, to));
            assert!(e.contains("exceeds the maximum"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match server.next() {
        UdpEv::SendFailed(msg, t, e) => {
            assert_eq!((msg, t), (Bytes::from_static(b"lost?"), nowhere));
            assert!(e.starts_with("send failed"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.udp.queued(), 0);
    server.app.stop().expect("clean stop");
}

#[test]
fn broadcast_needs_the_flag_and_then_reaches_a_listener() {
    let sender = udp_app(UdpSocket::bind(local(), RawDatagrams::new()), false, false);
    // Broadcast reaches sockets bound to the wildcard address, not to 127.0.0.1.
    let listener = StdUdp::bind("0.0.0.0:0").expect("bind");
    listener.set_read_timeout(Some(LIMIT)).expect("timeout");
    let port = listener.local_addr().expect("addr").port();
    let to = SocketAddr::from((Ipv4Addr::new(127, 255, 255, 255), port));
    assert!(!sender.udp.broadcast().expect("readable option"));
    sender
        .udp
        .send_to(Bytes::from_static(b"denied"), to)
        .expect("accepted");
    match sender.next_after_bound() {
        UdpEv::SendFailed(msg, _, e) => {
            assert_eq!(msg, Bytes::from_static(b"denied"));
            assert!(e.contains("ermission denied"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    sender.udp.set_broadcast(true).expect("broadcast on");
    assert!(sender.udp.broadcast().expect("readable option"));
    sender
        .udp
        .send_to(Bytes::from_static(b"to all"), to)
        .expect("accepted");
    assert_eq!(recv(&listener), (b"to all".to_vec(), sender.addr()));
    sender.app.stop().expect("clean stop");
}

#[test]
fn the_broadcast_flag_can_be_set_from_the_start() {
    let sender = udp_app(
        UdpSocket::bind(local(), RawDatagrams::new()).broadcast(true),
        false,
        false,
    );
    assert!(sender.udp.broadcast().expect("readable option"));
    sender.app.stop().expect("clean stop");
}

/// What reached the group's member, or why the send failed: whichever comes first.
fn multicast_outcome(
    member: &UdpApp<RawDatagrams>,
    sender: &UdpApp<RawDatagrams>,
) -> Result<(Bytes, SocketAddr), String> {
    assert!(matches!(member.next(), UdpEv::Bound(_)));
    assert!(matches!(sender.next(), UdpEv::Bound(_)));
    crossbeam_channel::select! {
        recv(member.app.events) -> e => match e {
            Ok(UdpEv::Datagram(msg, from)) => Ok((msg, from)),
            other => panic!("{other:?}"),
        },
        recv(sender.app.events) -> e => match e {
            Ok(UdpEv::SendFailed(_, to, e)) => Err(format!("sending to {to}: {e}")),
            other => panic!("{other:?}"),
        },
        default(LIMIT) => panic!("the group's datagram neither arrived nor failed in time"),
    }
}

#[test]
fn multicast_v4_is_received_after_joining_on_loopback_and_left_after_leaving() {
    // Multicast reaches sockets bound to the wildcard address (or the group's).
    let wildcard: SocketAddr = "0.0.0.0:0".parse().expect("address");
    let member = udp_app(UdpSocket::bind(wildcard, RawDatagrams::new()), false, false);
    let group = Ipv4Addr::new(239, 255, 84, 84);
    let lo = Ipv4Addr::LOCALHOST;
    if let Err(e) = member.udp.join_multicast_v4(group, lo) {
        eprintln!("SKIPPED multicast_v4: this host does not let us join {group} on {lo}: {e}");
        return;
    }
    let sender = udp_app(UdpSocket::bind(local(), RawDatagrams::new()), false, false);
    sender
        .udp
        .set_multicast_interface_v4(lo)
        .expect("interface");
    sender.udp.set_multicast_loop_v4(true).expect("loop");
    sender.udp.set_multicast_ttl_v4(1).expect("ttl");
    let to = SocketAddr::from((group, member.addr().port()));
    sender
        .udp
        .send_to(Bytes::from_static(b"to the group"), to)
        .expect("accepted");
    match multicast_outcome(&member, &sender) {
        Ok((msg, from)) => {
            assert_eq!(msg, Bytes::from_static(b"to the group"));
            assert_eq!(from, sender.addr());
        }
        Err(e) => eprintln!("SKIPPED multicast_v4 delivery: this host refused it: {e}"),
    }
    member.udp.leave_multicast_v4(group, lo).expect("left");
    assert!(
        member.udp.leave_multicast_v4(group, lo).is_err(),
        "no longer a member: leaving again is refused"
    );
    sender.app.stop().expect("clean stop");
    member.app.stop().expect("clean stop");
}

#[test]
fn multicast_v6_is_received_after_joining_and_left_after_leaving() {
    // Linux's loopback interface carries no IPv6 multicast: interface 0 lets the system
    // choose, and multicast loop brings the datagram back to this host.
    let wildcard: SocketAddr = "[::]:0".parse().expect("address");
    if let Err(e) = StdUdp::bind(wildcard) {
        eprintln!("SKIPPED multicast_v6: this host has no IPv6: {e}");
        return;
    }
    let member = udp_app(UdpSocket::bind(wildcard, RawDatagrams::new()), false, false);
    let group: Ipv6Addr = "ff15::7a57".parse().expect("a transient site-local group");
    if let Err(e) = member.udp.join_multicast_v6(group, 0) {
        eprintln!("SKIPPED multicast_v6: this host does not let us join {group}: {e}");
        return;
    }
    let sender = udp_app(UdpSocket::bind(wildcard, RawDatagrams::new()), false, false);
    sender.udp.set_multicast_loop_v6(true).expect("loop");
    sender.udp.set_multicast_interface_v6(0).expect("interface");
    let to = SocketAddr::from((group, member.addr().port()));
    sender
        .udp
        .send_to(Bytes::from_static(b"v6 group"), to)
        .expect("accepted");
    match multicast_outcome(&member, &sender) {
        Ok((msg, from)) => {
            assert_eq!(msg, Bytes::from_static(b"v6 group"));
            assert_eq!(from.port(), sender.addr().port());
        }
        Err(e) => eprintln!("SKIPPED multicast_v6 delivery: this host refused it: {e}"),
    }
    member.udp.leave_multicast_v6(group, 0).expect("left");
    assert!(member.udp.leave_multicast_v6(group, 0).is_err());
    sender.app.stop().expect("clean stop");
    member.app.stop().expect("clean stop");
}

#[test]
fn abort_hands_back_every_datagram_not_yet_sent() {
    let sock = udp_app(UdpSocket::bind(local(), RawDatagrams::new()), false, false);
    let to = peer().local_addr().expect("addr");
    // While the selector is held, what is sent waits in the queue.
    let gate = hold_selector(&sock.app.hub);
    sock.udp
        .send_to(Bytes::from_static(b"a"), to)
        .expect("accepted");
    sock.udp
        .send_to(Bytes::from_static(b"b"), to)
        .expect("accepted");
    sock.udp.abort();
    assert!(sock.udp.is_closed());
    match sock.udp.send_to(Bytes::from_static(b"late"), to) {
        Err(UdpSendError::Closed(msg)) => assert_eq!(msg, Bytes::from_static(b"late")),
        other => panic!("{other:?}"),
    }
    drop(gate);
    assert_eq!(
        sock.next_after_bound(),
        UdpEv::Closed(vec![
            (Bytes::from_static(b"a"), to),
            (Bytes::from_static(b"b"), to)
        ])
    );
    assert_eq!(sock.udp.queued(), 0);
    sock.app.stop().expect("clean stop");
}

#[test]
fn close_sends_what_was_accepted_then_refuses_and_releases_the_port() {
    let sock = udp_app(UdpSocket::bind(local(), RawDatagrams::new()), false, false);
    let client = peer();
    let to = client.local_addr().expect("addr");
    let gate = hold_selector(&sock.app.hub);
    for msg in [&b"one"[..], b"two", b"three"] {
        sock.udp
            .send_to(Bytes::copy_from_slice(msg), to)
            .expect("accepted");
    }
    sock.udp.close();
    match sock.udp.send_to(Bytes::from_static(b"late"), to) {
        Err(UdpSendError::Closed(msg)) => assert_eq!(msg, Bytes::from_static(b"late")),
        other => panic!("{other:?}"),
    }
    drop(gate);
    for msg in [&b"one"[..], b"two", b"three"] {
        assert_eq!(recv(&client), (msg.to_vec(), sock.addr()));
    }
    assert_eq!(sock.next_after_bound(), UdpEv::Closed(Vec::new()));
    // The port is free again.
    StdUdp::bind(sock.addr()).expect("the closed socket's port can be bound again");
    assert!(
        sock.udp.set_broadcast(true).is_err(),
        "options need an open socket"
    );
    sock.app.stop().expect("clean stop");
}

#[test]
fn finishing_the_base_closes_the_socket() {
    let sock = raw_echo(false);
    let addr = sock.addr();
    assert_eq!(sock.next(), UdpEv::Bound(addr));
    sock.app.hub.finish().expect("alive");
    assert_eq!(sock.next(), UdpEv::Closed(Vec::new()));
    assert!(sock.udp.is_closed());
    sock.app.join().expect("the app ends with its last tonic");
    StdUdp::bind(addr).expect("the port is free again");
}

#[test]
fn a_full_send_queue_refuses_with_the_datagram_then_tells_when_it_drained() {
    let config = UdpConfig {
        send_queue: 4,
        low_watermark: 1,
        ..UdpConfig::default()
    };
    let sock = udp_app(
        UdpSocket::bind(local(), RawDatagrams::new()).config(config),
        false,
        false,
    );
    let client = peer();
    let to = client.local_addr().expect("addr");
    let gate = hold_selector(&sock.app.hub);
    for i in 0..4u8 {
        sock.udp
            .send_to(Bytes::from(vec![i]), to)
            .expect("accepted");
    }
    assert_eq!(sock.udp.queued(), 4);
    match sock.udp.send_to(Bytes::from_static(b"five"), to) {
        Err(UdpSendError::Backpressure(msg)) => assert_eq!(msg, Bytes::from_static(b"five")),
        other => panic!("{other:?}"),
    }
    drop(gate);
    for i in 0..4u8 {
        assert_eq!(recv(&client).0, vec![i]);
    }
    assert_eq!(sock.next_after_bound(), UdpEv::Writable);
    sock.udp
        .send_to(Bytes::from_static(b"five"), to)
        .expect("accepted again");
    assert_eq!(recv(&client).0, b"five");
    sock.app.stop().expect("clean stop");
}

/// Datagram `i`: its number, then filler.
fn numbered(i: u32, size: usize) -> Vec<u8> {
    let mut v = i.to_be_bytes().to_vec();
    v.resize(size, b'x');
    v
}

/// Send `total` numbered datagrams to `server`, at most `window` unanswered, and check that
/// every echo comes back, in order.
fn flood_echo(server: &UdpApp<RawDatagrams>, total: u32, window: u32) {
    let client = peer();
    let mut sent = 0;
    for got in 0..total {
        while sent < total && sent - got < window {
            client
                .send_to(&numbered(sent, 100), server.addr())
                .expect("send");
            sent += 1;
        }
        assert_eq!(recv(&client).0, numbered(got, 100), "echo {got}");
    }
    let from = client.local_addr().expect("addr");
    for i in 0..total {
        assert_eq!(
            server.next_after_bound(),
            UdpEv::Datagram(Bytes::from(numbered(i, 100)), from),
            "datagram {i}"
        );
    }
}

#[test]
fn many_datagrams_arrive_in_order_and_none_is_lost_on_loopback() {
    let server = raw_echo(false);
    flood_echo(&server, 2_000, 32);
    server.app.stop().expect("clean stop");
}

#[test]
fn many_datagrams_arrive_in_order_co_located() {
    let server = raw_echo(true);
    flood_echo(&server, 2_000, 32);
    server.app.stop().expect("clean stop");
}

#[test]
fn a_slow_base_stops_the_reading_at_its_window_and_loses_nothing() {
    let config = UdpConfig {
        inbound_window: 4,
        read_budget: 2,
        ..UdpConfig::default()
    };
    let server = udp_app(
        UdpSocket::bind(local(), RawDatagrams::new()).config(config),
        false,
        false,
    );
    assert!(matches!(server.next(), UdpEv::Bound(_)));
    let client = peer();
    // The base is busy: the socket reads up to its window, then waits for it.
    let gate = hold(&server.app.hub);
    for i in 0..20 {
        client
            .send_to(&numbered(i, 16), server.addr())
            .expect("send");
    }
    drop(gate);
    for i in 0..20 {
        match server.next() {
            UdpEv::Datagram(msg, _) => assert_eq!(msg, numbered(i, 16), "datagram {i}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(server.udp.unconsumed() <= 4);
    server.app.stop().expect("clean stop");
}

#[test]
fn ipv6_loopback_echo() {
    let addr: SocketAddr = "[::1]:0".parse().expect("address");
    let Ok(client) = StdUdp::bind(addr) else {
        eprintln!("SKIPPED ipv6_loopback_echo: this host has no IPv6 loopback");
        return;
    };
    client.set_read_timeout(Some(LIMIT)).expect("timeout");
    let server = udp_app(UdpSocket::bind(addr, RawDatagrams::new()), true, false);
    client.send_to(b"six", server.addr()).expect("send");
    let mut buf = [0u8; 16];
    let (n, from) = client.recv_from(&mut buf).expect("an echo in time");
    assert_eq!((&buf[..n], from), (&b"six"[..], server.addr()));
    server.app.stop().expect("clean stop");
}

#[test]
fn reuse_address_lets_two_sockets_share_a_port() {
    let wildcard: SocketAddr = "0.0.0.0:0".parse().expect("address");
    let first = udp_app(
        UdpSocket::bind(wildcard, RawDatagrams::new()).reuse_address(true),
        false,
        false,
    );
    let shared = first.addr();
    let second = udp_app(
        UdpSocket::bind(shared, RawDatagrams::new()).reuse_address(true),
        false,
        false,
    );
    assert_eq!(second.addr(), shared);
    assert!(
        StdUdp::bind(shared).is_err(),
        "without SO_REUSEADDR the port is taken"
    );
    second.app.stop().expect("clean stop");
    first.app.stop().expect("clean stop");
}

/// Starts a socket on `addr` and reports what `start` returned.
struct TryBind(SocketAddr, Sender<std::io::Result<SocketAddr>>);

impl Tonic for TryBind {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let started = UdpSocket::bind(self.0, RawDatagrams::new()).start(ctx);
        self.1.send(started.map(|udp| udp.local_addr())).ok();
        ctx.finish();
    }
}

impl UdpEvents<Bytes> for TryBind {}

#[test]
fn a_bind_error_is_returned_by_start() {
    let taken = peer();
    let addr = taken.local_addr().expect("addr");
    let (tx, rx) = bounded(1);
    App::new("bind-error")
        .tonic(TryBind(addr, tx))
        .run()
        .expect("the app ends");
    let e = rx
        .recv_timeout(LIMIT)
        .expect("reported")
        .expect_err("in use");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
}
