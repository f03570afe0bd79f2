//! How an idle catalyst waits: the pluggable [`Parker`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Wakes a parked catalyst from any thread.
pub trait Unpark: Send + Sync + 'static {
    /// Wake the catalyst if it is parked, or make its next park return at once.
    fn unpark(&self);
}

/// How an idle catalyst waits for work: blocks until unparked or until the timeout passes.
///
/// The plain catalyst parks its thread ([`ThreadParker`]); the networking crate's selector parks
/// in `mio::Poll::poll`, woken by a `mio::Waker`. The catalyst loop is the same for both.
///
/// A parker runs on its catalyst's thread only. `poll` lets it do its own work (such as handling
/// socket readiness) once per busy turn of the loop without blocking.
pub trait Parker: Send + 'static {
    /// Block until [`Unpark::unpark`] is called or `timeout` passes (`None`: no limit).
    /// Spurious returns are allowed.
    fn park(&mut self, timeout: Option<Duration>);

    /// Called once per busy turn: do pending work without blocking. Default: nothing.
    fn poll(&mut self) {}

    /// The handle other threads use to wake this parker.
    fn unparker(&self) -> Arc<dyn Unpark>;

    /// Spin (and yield) for a few microseconds before parking, in case work arrives from another
    /// thread: a wake-up from a real park costs several microseconds. Default: true.
    fn spin_before_park(&self) -> bool {
        true
    }
}

/// The plain parker: parks the catalyst's thread.
pub struct ThreadParker {
    parker: crossbeam_utils::sync::Parker,
    unparker: Arc<ThreadUnparker>,
}

struct ThreadUnparker(crossbeam_utils::sync::Unparker);

impl Unpark for ThreadUnparker {
    fn unpark(&self) {
        self.0.unpark();
    }
}

impl ThreadParker {
    /// A new parker.
    pub fn new() -> ThreadParker {
        let parker = crossbeam_utils::sync::Parker::new();
        let unparker = Arc::new(ThreadUnparker(parker.unparker().clone()));
        ThreadParker { parker, unparker }
    }
}

impl Default for ThreadParker {
    fn default() -> Self {
        ThreadParker::new()
    }
}

impl fmt::Debug for ThreadParker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThreadParker")
    }
}

impl Parker for ThreadParker {
    fn park(&mut self, timeout: Option<Duration>) {
        match timeout {
            Some(t) => self.parker.park_timeout(t),
            None => self.parker.park(),
        }
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.unparker.clone()
    }
}
