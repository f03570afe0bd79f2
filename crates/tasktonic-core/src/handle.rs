//! [`Handle`]: how anything reaches a tonic of a known type (the untyped [`TonicRef`] is in
//! `address.rs`).

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::address::TonicShared;
use crate::catalyst::{SystemMsg, Work};
use crate::ctx::TonicCell;
use crate::mailbox::Mailbox;
use crate::{AskError, Ctx, Ledger, Lifecycle, Receive, SendError, Tonic, TonicId, TonicRef};

/// A typed, cloneable, `Send` address of a tonic: enqueue sparkles and messages from anywhere.
///
/// Sending never blocks and never runs the sparkle in the caller: it is queued and runs later on
/// the tonic's catalyst, in FIFO order with everything else this sender sent to this tonic.
/// Sending to a completed tonic hands the sparkle back in [`SendError::Completed`]. A sparkle that
/// is accepted but finds the tonic completed when its turn comes (the tonic finished in between)
/// is dropped with a warning that names it.
pub struct Handle<T> {
    pub(crate) shared: Arc<TonicShared>,
    _tonic: PhantomData<fn() -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle {
            shared: self.shared.clone(),
            _tonic: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({} {})", self.shared.id, self.shared.name)
    }
}

impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}

impl<T> Eq for Handle<T> {}

pub(crate) fn order<T: Tonic, F>(f: F) -> Work
where
    F: FnOnce(&mut T, &mut Ctx<T>) + Send + 'static,
{
    Work::Order(Box::new(move |any: &mut dyn Any| {
        if let Some(cell) = any.downcast_mut::<TonicCell<T>>() {
            cell.apply(f);
        }
    }))
}

impl<T: Tonic> Handle<T> {
    pub(crate) fn from_shared(shared: Arc<TonicShared>) -> Handle<T> {
        Handle {
            shared,
            _tonic: PhantomData,
        }
    }

    /// The tonic's id.
    pub fn id(&self) -> TonicId {
        self.shared.id
    }

    /// The tonic's name in the ledger.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where the tonic is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.shared.lifecycle()
    }

    /// True once the tonic has completed.
    pub fn is_completed(&self) -> bool {
        self.lifecycle() == Lifecycle::Completed
    }

    /// The type-erased reference (id, name, finish) to this tonic.
    pub fn tonic_ref(&self) -> TonicRef {
        TonicRef {
            shared: self.shared.clone(),
        }
    }

    /// Enqueue a sparkle: `f` runs later on the tonic's catalyst with the tonic and its context.
    ///
    /// # Errors
    ///
    /// [`SendError::Completed`] if the tonic has completed, [`SendError::Full`] if its bounded
    /// mailbox rejects it; both hand `f` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasktonic_core::{App, Ctx, Tonic};
    ///
    /// struct Worker;
    /// impl Tonic for Worker {
    ///     type State = ();
    /// }
    ///
    /// struct Boss;
    /// impl Tonic for Boss {
    ///     type State = ();
    ///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
    ///         let worker = ctx.spawn(Worker);
    ///         worker
    ///             .sparkle(|_w, wctx| {
    ///                 println!("{} is working", wctx.name());
    ///                 wctx.finish();
    ///             })
    ///             .ok();
    ///         ctx.finish(); // completes once the worker has completed
    ///     }
    /// }
    ///
    /// App::new("doc").tonic(Boss).run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sparkle<F>(&self, f: F) -> Result<(), SendError<F>>
    where
        F: FnOnce(&mut T, &mut Ctx<T>) + Send + 'static,
    {
        self.sparkle_named("sparkle", f)
    }

    /// [`sparkle`](Handle::sparkle) with a name, shown in logs and [`Distiller`](crate::Distiller) traces.
    ///
    /// # Errors
    ///
    /// As [`sparkle`](Handle::sparkle).
    pub fn sparkle_named<F>(&self, name: &'static str, f: F) -> Result<(), SendError<F>>
    where
        F: FnOnce(&mut T, &mut Ctx<T>) + Send + 'static,
    {
        self.shared.push_order(name, f, order::<T, F>)
    }

    /// Send a notification: a sparkle that only matters while the tonic lives (a wake-up, a
    /// "data ready" poke). Like [`sparkle_named`](Handle::sparkle_named), but if the tonic
    /// completes before it runs, it is dropped without the warning a lost sparkle gets.
    ///
    /// # Errors
    ///
    /// As [`sparkle`](Handle::sparkle).
    pub fn notify_named<F>(&self, name: &'static str, f: F) -> Result<(), SendError<F>>
    where
        F: FnOnce(&mut T, &mut Ctx<T>) + Send + 'static,
    {
        self.shared.push_order(name, f, |f| match order::<T, F>(f) {
            Work::Order(o) => Work::Notice(o),
            other => other,
        })
    }

    /// Send a typed message: [`Receive::receive`] runs as a sparkle named after `M`.
    ///
    /// # Errors
    ///
    /// As [`sparkle`](Handle::sparkle), handing `msg` back.
    pub fn send<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        M: Send + 'static,
        T: Receive<M>,
    {
        // Named with the full type name (a constant); shortened only where it is shown.
        self.shared
            .push_order(std::any::type_name::<M>(), msg, |msg| {
                order::<T, _>(move |t: &mut T, ctx: &mut Ctx<T>| t.receive(ctx, msg))
            })
    }

    /// Ask from a plain thread (a test, `main`): run `question` on the tonic and wait for the
    /// answer at most `timeout`.
    ///
    /// From inside a tonic prefer [`Ctx::ask`], which does not block the catalyst.
    ///
    /// # Errors
    ///
    /// [`AskError::WouldDeadlock`] at once when called on the tonic's own catalyst thread;
    /// [`AskError::NoAnswer`] if the tonic completed (or failed) before answering;
    /// [`AskError::Full`] if its bounded mailbox refused; [`AskError::Timeout`].
    pub fn ask_blocking<R, F>(&self, timeout: Duration, question: F) -> Result<R, AskError>
    where
        R: Send + 'static,
        F: FnOnce(&mut T, &mut Ctx<T>) -> R + Send + 'static,
    {
        if self.shared.catalyst.is_current_thread() {
            return Err(AskError::WouldDeadlock);
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.sparkle_named("ask", move |t, ctx| {
            let _ = tx.send(question(t, ctx));
        })?;
        // Called inside a sparkle on another catalyst: the question must leave before we block.
        crate::catalyst::flush_outbound();
        rx.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => AskError::Timeout,
            crossbeam_channel::RecvTimeoutError::Disconnected => AskError::NoAnswer,
        })
    }

    /// Ask the tonic to finish (as if it called [`Ctx::finish`]).
    ///
    /// # Errors
    ///
    /// [`SendError::Completed`] if it has already completed.
    pub fn finish(&self) -> Result<(), SendError<()>> {
        if self.shared.push_system("finish", SystemMsg::Finish) {
            Ok(())
        } else {
            Err(SendError::Completed(()))
        }
    }

    /// How many sparkles the bounded mailbox dropped under [`Overflow::DropOldest`](crate::Overflow::DropOldest).
    pub fn dropped(&self) -> u64 {
        self.shared.mailbox.as_deref().map_or(0, Mailbox::dropped)
    }
}

impl<T: Tonic> From<&Handle<T>> for TonicRef {
    fn from(h: &Handle<T>) -> TonicRef {
        h.tonic_ref()
    }
}

impl Ledger {
    /// The typed handle of the live tonic named `name`, if it is a `T`.
    pub fn lookup<T: Tonic>(&self, name: &str) -> Option<Handle<T>> {
        self.typed::<Handle<T>>(name)
    }
}
