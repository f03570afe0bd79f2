//! Helpers shared by the integration tests: run an app on a thread and wait for it, bounded.
#![allow(dead_code, unreachable_pub)]

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use tasktonic_core::{App, RunError};

/// Generous: these bound a hang, they do not measure speed.
pub const LIMIT: Duration = Duration::from_secs(20);

pub struct AppThread {
    done: Receiver<Result<(), RunError>>,
    thread: JoinHandle<()>,
}

/// Run `app` on its own thread.
pub fn spawn_app(app: App) -> AppThread {
    let (tx, done) = bounded(1);
    let thread = std::thread::spawn(move || {
        let _ = tx.send(app.run());
    });
    AppThread { done, thread }
}

impl AppThread {
    /// Wait for `App::run` to return, failing the test if it does not within `LIMIT`.
    pub fn join(self) -> Result<(), RunError> {
        let result = self
            .done
            .recv_timeout(LIMIT)
            .expect("App::run did not return in time");
        self.thread.join().expect("app thread");
        result
    }
}

/// Run `app` and wait for it, bounded.
pub fn run_bounded(app: App) -> Result<(), RunError> {
    spawn_app(app).join()
}

/// A channel for tonics to report to the test.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    unbounded()
}

/// Receive one report, bounded.
pub fn recv<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(LIMIT).expect("no report in time")
}
