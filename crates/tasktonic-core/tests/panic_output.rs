//! A panic in a sparkle is said once: the runtime's failure line (with where it happened),
//! not also the default panic hook's message. Its own binary: it re-runs itself as a child
//! whose standard error it reads (the hook is process-wide).

use std::process::Command;

use tasktonic_core::{App, Ctx, Tonic};

struct Fragile;
impl Tonic for Fragile {
    type State = ();
    fn on_start(&mut self, _: &mut Ctx<Self>) {
        panic!("broken on purpose");
    }
}

#[test]
fn a_panic_in_a_sparkle_is_logged_once_with_its_place() {
    if std::env::var_os("TT_PANIC_CHILD").is_some() {
        let _ = App::new("panics").tonic(Fragile).run();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "a_panic_in_a_sparkle_is_logged_once_with_its_place",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TT_PANIC_CHILD", "1")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .output()
        .expect("the child ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("broken on purpose"))
        .collect();
    // The failure line, and the run's unhandled-failure report: the default hook's
    // "thread '…' panicked at …" is not among them.
    assert!(
        !stderr.contains("' panicked at"),
        "the default hook spoke too:\n{stderr}"
    );
    assert!(
        said.iter()
            .any(|l| l.contains("failed: broken on purpose (panicked at")
                && l.contains("panic_output.rs")),
        "no failure line with the panic's place:\n{stderr}"
    );
}
