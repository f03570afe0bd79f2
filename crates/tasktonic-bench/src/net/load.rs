//! The load generator: drives any u32-framed echo server and verifies every echoed byte.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Payload byte `j` of message `seq` on connection `conn`: every echo is checked against it.
fn byte(conn: usize, seq: u64, j: usize) -> u8 {
    (seq.wrapping_mul(31) as usize ^ j.wrapping_mul(7) ^ conn) as u8
}

fn frame(conn: usize, seq: u64, size: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_be_bytes());
    out.extend((0..size).map(|j| byte(conn, seq, j)));
}

struct Client {
    stream: TcpStream,
    sent: u64,
    received: u64,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    out_at: usize,
}

/// Throughput: `conns` connections × `window` frames in flight × `size` bytes, `per_conn`
/// frames each. Returns the elapsed time for all echoes, or the first verification failure.
pub(crate) fn throughput(
    addr: SocketAddr,
    conns: usize,
    window: usize,
    size: usize,
    per_conn: u64,
) -> Result<Duration, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let std = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        std.set_nodelay(true).map_err(|e| e.to_string())?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut stream = TcpStream::from_std(std);
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        clients.push(Client {
            stream,
            sent: 0,
            received: 0,
            inbuf: Vec::with_capacity(64 * 1024),
            outbuf: Vec::new(),
            out_at: 0,
        });
    }
    let start = Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        while c.sent < per_conn && c.sent - c.received < window as u64 {
            frame(i, c.sent, size, &mut c.outbuf);
            c.sent += 1;
        }
        flush(c).map_err(|e| format!("write: {e}"))?;
    }
    let mut done = 0;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 256 * 1024];
    let deadline = start + Duration::from_secs(120);
    while done < conns {
        poll.poll(&mut events, Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        if Instant::now() > deadline {
            return Err("no completion within 120 s".into());
        }
        for event in events.iter() {
            let i = event.token().0;
            let c = &mut clients[i];
            if event.is_writable() {
                flush(c).map_err(|e| format!("write: {e}"))?;
            }
            if !event.is_readable() {
                continue;
            }
            loop {
                match c.stream.read(&mut scratch) {
                    Ok(0) => return Err(format!("connection {i} closed by the server")),
                    Ok(n) => c.inbuf.extend_from_slice(&scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            let before = c.received;
            let mut pos = 0;
            while c.inbuf.len() - pos >= 4 {
                let len = u32::from_be_bytes([
                    c.inbuf[pos],
                    c.inbuf[pos + 1],
                    c.inbuf[pos + 2],
                    c.inbuf[pos + 3],
                ]) as usize;
                if c.inbuf.len() - pos - 4 < len {
                    break;
                }
                if len != size {
                    return Err(format!("echo of size {len}, expected {size}"));
                }
                let payload = &c.inbuf[pos + 4..pos + 4 + len];
                let seq = c.received;
                if payload
                    .iter()
                    .enumerate()
                    .any(|(j, b)| *b != byte(i, seq, j))
                {
                    return Err(format!("echo {seq} on connection {i} differs"));
                }
                c.received += 1;
                pos += 4 + len;
            }
            c.inbuf.drain(..pos);
            if c.received > before {
                if c.received == per_conn {
                    done += 1;
                }
                while c.sent < per_conn && c.sent - c.received < window as u64 {
                    frame(i, c.sent, size, &mut c.outbuf);
                    c.sent += 1;
                }
                flush(c).map_err(|e| format!("write: {e}"))?;
            }
        }
    }
    Ok(start.elapsed())
}

fn flush(c: &mut Client) -> io::Result<()> {
    while c.out_at < c.outbuf.len() {
        match c.stream.write(&c.outbuf[c.out_at..]) {
            Ok(n) => c.out_at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    c.outbuf.clear();
    c.out_at = 0;
    Ok(())
}

/// Latency: one connection, one 64-byte frame in flight; round-trip times, sorted.
pub(crate) fn latency(addr: SocketAddr, samples: usize) -> Result<Vec<Duration>, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut back = vec![0u8; 68];
    let mut times = Vec::with_capacity(samples);
    for seq in 0..(samples + samples / 10) as u64 {
        out.clear();
        frame(0, seq, 64, &mut out);
        let start = Instant::now();
        s.write_all(&out).map_err(|e| format!("write: {e}"))?;
        s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
        let rt = start.elapsed();
        if back != out {
            return Err(format!("echo {seq} differs"));
        }
        if seq >= (samples / 10) as u64 {
            times.push(rt); // the first 10 % warm up
        }
    }
    times.sort();
    Ok(times)
}

/// N5: open `n` connections, echo once on each; then one more echo round on all.
/// Returns (time to establish and echo once on all, time for the second round), and calls
/// `idle` with every connection open and idle (to measure the server's memory).
pub(crate) fn many(
    addr: SocketAddr,
    n: usize,
    idle: impl FnOnce(),
) -> Result<(Duration, Duration), String> {
    let start = Instant::now();
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        let s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {i}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        socks.push(s);
    }
    let round = |socks: &mut Vec<std::net::TcpStream>, seq: u64| -> Result<(), String> {
        let mut out = Vec::new();
        for (i, s) in socks.iter_mut().enumerate() {
            out.clear();
            frame(i, seq, 16, &mut out);
            s.write_all(&out).map_err(|e| format!("write {i}: {e}"))?;
        }
        let mut back = [0u8; 20];
        for (i, s) in socks.iter_mut().enumerate() {
            s.read_exact(&mut back)
                .map_err(|e| format!("read {i}: {e}"))?;
            out.clear();
            frame(i, seq, 16, &mut out);
            if back[..] != out[..] {
                return Err(format!("echo on connection {i} differs"));
            }
        }
        Ok(())
    };
    round(&mut socks, 0)?;
    let established = start.elapsed();
    idle();
    let start = Instant::now();
    round(&mut socks, 1)?;
    Ok((established, start.elapsed()))
}
