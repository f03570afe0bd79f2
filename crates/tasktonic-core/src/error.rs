//! Errors of the runtime. Messaging errors hand the message back to the caller.

use std::error::Error;
use std::fmt;

use crate::TonicId;

/// A sparkle or message could not be enqueued; the value is handed back.
///
/// `Debug` does not require `T: Debug`, so any closure or message can travel in it.
pub enum SendError<T> {
    /// The tonic has completed: nothing will ever run for it again.
    Completed(T),
    /// The tonic's bounded mailbox is full and its policy is [`Overflow::Reject`](crate::Overflow::Reject).
    Full(T),
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Completed(v) | SendError::Full(v) => v,
        }
    }

    /// True if the tonic has completed (as opposed to a full mailbox).
    pub fn is_completed(&self) -> bool {
        matches!(self, SendError::Completed(_))
    }

    /// The same error with the value mapped (for wrappers that box or unbox it).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> SendError<U> {
        match self {
            SendError::Completed(v) => SendError::Completed(f(v)),
            SendError::Full(v) => SendError::Full(f(v)),
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Completed(_) => f.write_str("Completed(..)"),
            SendError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Completed(_) => f.write_str("sending to a completed tonic"),
            SendError::Full(_) => f.write_str("the tonic's mailbox is full"),
        }
    }
}

impl<T> Error for SendError<T> {}

/// A request–reply exchange ([`Ctx::ask`](crate::Ctx::ask), [`Handle::ask_blocking`](crate::Handle::ask_blocking)) got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AskError {
    /// No answer arrived within the timeout.
    Timeout,
    /// The asked tonic had completed, or completed (or failed) before answering.
    NoAnswer,
    /// The asked tonic's mailbox was full (bounded mailbox, [`Overflow::Reject`](crate::Overflow::Reject)).
    Full,
    /// A blocking ask from the asked tonic's own catalyst thread: it could never be answered.
    WouldDeadlock,
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AskError::Timeout => "no answer within the timeout",
            AskError::NoAnswer => "the asked tonic completed without answering",
            AskError::Full => "the asked tonic's mailbox is full",
            AskError::WouldDeadlock => {
                "a blocking ask on the asked tonic's own catalyst would deadlock"
            }
        })
    }
}

impl Error for AskError {}

impl<T> From<SendError<T>> for AskError {
    fn from(e: SendError<T>) -> AskError {
        match e {
            SendError::Completed(_) => AskError::NoAnswer,
            SendError::Full(_) => AskError::Full,
        }
    }
}

/// A tonic could not be spawned; the tonic is handed back.
pub enum SpawnError<T> {
    /// Another live tonic already has this name.
    NameTaken(String, T),
    /// The application is stopping and accepts no new top-level tonics.
    Stopped(T),
    /// Its catalyst had no thread and one could not be started (the OS refused one, or the
    /// catalyst's name cannot name a thread: it holds a NUL byte).
    NoThread(String, T),
    /// The [`Catalyst`](crate::Catalyst) it was to be placed on belongs to another app.
    OtherApp(String, T),
}

impl<T> SpawnError<T> {
    /// The tonic that was not spawned.
    pub fn into_inner(self) -> T {
        match self {
            SpawnError::NameTaken(_, t)
            | SpawnError::Stopped(t)
            | SpawnError::NoThread(_, t)
            | SpawnError::OtherApp(_, t) => t,
        }
    }
}

impl<T> fmt::Debug for SpawnError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NameTaken(n, _) => f.debug_tuple("NameTaken").field(n).finish(),
            SpawnError::Stopped(_) => f.write_str("Stopped(..)"),
            SpawnError::NoThread(why, _) => f.debug_tuple("NoThread").field(why).finish(),
            SpawnError::OtherApp(n, _) => f.debug_tuple("OtherApp").field(n).finish(),
        }
    }
}

impl<T> fmt::Display for SpawnError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NameTaken(n, _) => write!(f, "a tonic named {n:?} already exists"),
            SpawnError::Stopped(_) => f.write_str("the application has stopped"),
            SpawnError::NoThread(why, _) => write!(f, "no thread for its catalyst: {why}"),
            SpawnError::OtherApp(n, _) => write!(f, "catalyst {n:?} belongs to another app"),
        }
    }
}

impl<T> Error for SpawnError<T> {}

/// A catalyst with a parker of its own could not be opened
/// ([`extend::open_catalyst`](crate::extend::open_catalyst)).
pub enum OpenError<E> {
    /// Making its parker failed: nothing was registered under the name.
    Parker(E),
    /// A catalyst of that name exists with another kind of parker (a plain catalyst, or
    /// another extension's), or the name is `main`, or the app runs under the
    /// [`Distiller`](crate::Distiller), where every catalyst is its one.
    OtherKind(String),
}

impl<E: fmt::Debug> fmt::Debug for OpenError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Parker(e) => f.debug_tuple("Parker").field(e).finish(),
            OpenError::OtherKind(n) => f.debug_tuple("OtherKind").field(n).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for OpenError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Parker(e) => write!(f, "cannot make the catalyst's parker: {e}"),
            OpenError::OtherKind(n) => {
                write!(f, "catalyst {n:?} exists with another kind of parker")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> Error for OpenError<E> {}

/// A tonic failed: a sparkle or hook panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The failed tonic.
    pub tonic: TonicId,
    /// Its name in the ledger.
    pub name: String,
    /// The panic message (or a description of the payload).
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tonic {} {} failed: {}",
            self.tonic, self.name, self.message
        )
    }
}

impl Error for Failure {}

/// [`App::run`](crate::App::run) finished, but tonics failed and no base handled the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// The unhandled failures, in the order they were reported.
    pub failures: Vec<Failure>,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tonic(s) failed unhandled", self.failures.len())?;
        for failure in &self.failures {
            write!(f, "; {failure}")?;
        }
        Ok(())
    }
}

impl Error for RunError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.failures.first().map(|f| f as &(dyn Error + 'static))
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
