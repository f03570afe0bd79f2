//! [`RunningApp`]: an app running on a thread of its own ([`App::spawn`](crate::App::spawn)).

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::Stopper;
use crate::runtime::Runtime;
use crate::{Handle, RunError, Tonic};

/// An app running on a thread of its own, made by [`App::spawn`](crate::App::spawn): reach its
/// tonics by name from a plain thread, stop it, wait for it with a bound.
///
/// Dropping it leaves the app running (its thread detached); [`stop`](RunningApp::stop) and a
/// join end it. Joining from inside the app (a tonic of it waiting for its own end) never
/// returns: stop it from there instead.
#[must_use = "dropping it detaches the app's thread: stop and join it"]
pub struct RunningApp {
    runtime: Arc<Runtime>,
    stopper: Stopper,
    done: Receiver<Result<(), RunError>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningApp")
            .field("project", &self.runtime.project)
            .finish_non_exhaustive()
    }
}

impl RunningApp {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        stopper: Stopper,
        done: Receiver<Result<(), RunError>>,
        thread: JoinHandle<()>,
    ) -> RunningApp {
        RunningApp {
            runtime,
            stopper,
            done,
            thread: Some(thread),
        }
    }

    /// The handle of the live tonic named `name`, if it is a `T` (a top-level tonic started
    /// with [`App::tonic_named`](crate::App::tonic_named), or any other by its name).
    pub fn lookup<T: Tonic>(&self, name: &str) -> Option<Handle<T>> {
        self.runtime.ledger.lookup::<T>(name)
    }

    /// A stopper for this app (to hand to another thread or a signal handler).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Ask the app to stop: every top-level tonic and service finishes.
    pub fn stop(&self) {
        self.stopper.stop();
    }

    /// Wait until the app has ended and return what [`App::run`](crate::App::run) returned.
    ///
    /// # Errors
    ///
    /// As [`App::run`](crate::App::run).
    ///
    /// # Panics
    ///
    /// If the app's thread panicked outside any tonic (a bug in the runtime): the panic is
    /// passed on.
    pub fn join(mut self) -> Result<(), RunError> {
        let result = self.done.recv();
        self.reap();
        result.unwrap_or_else(|_| unreachable!("the app's thread ended without its result"))
    }

    /// Wait at most `bound` for the app to end: `Ok` with what [`App::run`](crate::App::run)
    /// returned, or the running app back if it still runs (wait again, or stop it first).
    ///
    /// # Errors
    ///
    /// The app itself, still running after `bound`.
    ///
    /// # Panics
    ///
    /// As [`join`](RunningApp::join).
    pub fn join_timeout(mut self, bound: Duration) -> Result<Result<(), RunError>, RunningApp> {
        match self.done.recv_timeout(bound) {
            Ok(result) => {
                self.reap();
                Ok(result)
            }
            Err(RecvTimeoutError::Timeout) => Err(self),
            Err(RecvTimeoutError::Disconnected) => {
                self.reap();
                unreachable!("the app's thread ended without its result")
            }
        }
    }

    /// The app's thread has ended (or is about to): join it, passing on a panic.
    fn reap(&mut self) {
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}
