//! Out of descriptors (`EMFILE`): the listener backs off and retries instead of spinning on
//! a readable listening socket, and recovers when descriptors are free again. Its own test
//! binary: it exhausts the whole process's descriptors.

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
    let server = u32_echo();
    // Take every descriptor left, then give one back for our client's socket: the
    // listener's accept then has none.
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) if e.raw_os_error() == Some(24) => break, // EMFILE
            Err(e) => panic!("{e}"),
        }
    }
    drop(files.pop());
    let mut c = connect(server.addr);
    // The listener is readable and every accept fails: with the back-off it sleeps between
    // tries; a busy loop would use a whole core (100 ticks a second).
    let ticks = cpu.ticks_over(Duration::from_secs(1));
    assert!(
        ticks <= 20,
        "{ticks} ticks in a second while out of descriptors"
    );
    // Descriptors back: the next try accepts, and the client is served.
    drop(files);
    write_all(&mut c, &frame(b"served at last"));
    assert_eq!(read_frame(&mut c), b"served at last");
    server.stop().expect("stopped");
}
