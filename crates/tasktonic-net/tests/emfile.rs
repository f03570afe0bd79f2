//! Out of descriptors (`EMFILE`) under a flood of 100 clients: the listener backs off and
//! retries instead of spinning on a readable listening socket, and serves them all when
//! descriptors are free again. Its own test binary: it exhausts the whole process's
//! descriptors.

mod util;

use std::fs::File;
use std::time::Duration;

use util::*;

#[test]
fn out_of_descriptors_the_listener_backs_off_and_recovers() {
    // A soft limit low enough to reach quickly (the hard one stays).
    let pid = std::process::id().to_string();
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=256:"])
        .status();
    if !lowered.is_ok_and(|s| s.success()) {
        assert!(std::env::var_os("CI").is_none(), "prlimit is needed in CI");
        eprintln!("SKIPPED: cannot lower the descriptor limit (prlimit)");
        return;
    }
    let cpu = Cpu::open();
    let tcp_table = File::open("/proc/net/tcp").expect("/proc/net/tcp");
    let server = u32_echo();
    // A flood of 100 clients, their sockets made while descriptors are left (each connected
    // only once the process has none: the listener must not take them first).
    const FLOOD: usize = 100;
    let sockets: Vec<_> = (0..FLOOD)
        .map(|_| {
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("a socket")
        })
        .collect();
    // Take every descriptor left: the listener's accepts then have none.
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) if e.raw_os_error() == Some(24) => break, // EMFILE
            Err(e) => panic!("{e}"),
        }
    }
    let mut clients: Vec<std::net::TcpStream> = sockets
        .into_iter()
        .map(|s| {
            s.connect(&server.addr.into()).expect("connected");
            s.set_read_timeout(Some(LIMIT)).expect("timeout");
            s.into()
        })
        .collect();
    // All 100 wait in the listener's accept queue, which it cannot take from.
    assert_eq!(accept_queue(&tcp_table, server.addr), FLOOD as u64);
    // The listener is readable and every accept fails: with the back-off it sleeps between
    // tries; a busy loop would use a whole core (100 ticks a second).
    let ticks = cpu.ticks_over(Duration::from_secs(1));
    assert!(
        ticks <= 20,
        "{ticks} ticks in a second while out of descriptors"
    );
    // Descriptors back: the next try accepts, and every client is served.
    drop(files);
    for (i, c) in clients.iter_mut().enumerate() {
        write_all(c, &frame(format!("served at last {i}").as_bytes()));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(read_frame(c), format!("served at last {i}").as_bytes());
    }
    drop(clients);
    server.stop().expect("stopped");
}
