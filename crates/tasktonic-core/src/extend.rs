//! For extension authors: what another event loop or a protocol crate needs from the
//! runtime, kept out of the everyday API (`tasktonic-net` is built on exactly this).
//!
//! - [`Parker`], [`Unpark`], [`ThreadParker`]: how an idle catalyst waits, pluggable; a
//!   networking crate parks in its poller.
//! - [`open_catalyst`]: a catalyst with a parker of its own, and the state the parker shares
//!   with its maker, typed (no downcast at the caller; a parker that cannot be made leaves
//!   nothing behind).
//! - [`SparkleInline`]: run a sparkle now, inside the calling one, when that cannot be told
//!   apart from queueing it.
//! - [`Ctx::infusion_with`](crate::Ctx::infusion_with) (in the everyday API, but made for
//!   this): a tonic built with its own handle, as actix's `Actor::create`.

use std::sync::Arc;

pub use crate::catalyst::{Parker, ThreadParker, Unpark};
use crate::ctx::TonicCell;
pub use crate::error::OpenError;
use crate::{Catalyst, Ctx, Handle, Tonic};

/// Open the catalyst `name` whose parker shares an `S` with the code that made it (a poller's
/// registry and waker), and return the catalyst (to place tonics on) and that `S`. `make` builds the parker and the `S` only if the
/// catalyst does not exist yet; if it fails, nothing is registered under the name (a later
/// call may try again). `make` runs while the app's table of catalysts is locked: keep it
/// short (make a poller, not a connection).
///
/// # Errors
///
/// [`OpenError::Parker`] with `make`'s error; [`OpenError::OtherKind`] if the catalyst exists
/// with another kind of parker (a plain catalyst, another extension's), or is `main`, or the
/// app runs under the [`Distiller`](crate::Distiller) (every catalyst is its one).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tasktonic_core::extend::{Parker, ThreadParker, Unpark, open_catalyst};
/// use tasktonic_core::{App, Ctx, Tonic};
///
/// /// A parker that counts its parks (what a poller would share: its registry, its waker).
/// struct Counting(ThreadParker, Arc<std::sync::atomic::AtomicU64>);
/// impl Parker for Counting {
///     fn park(&mut self, timeout: Option<Duration>) {
///         self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.0.park(timeout);
///     }
///     fn unparker(&self) -> Arc<dyn Unpark> {
///         self.0.unparker()
///     }
/// }
///
/// struct Opener;
/// impl Tonic for Opener {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let (_counting, parks) = open_catalyst(ctx, "counting", || {
///             let parks = Arc::new(std::sync::atomic::AtomicU64::new(0));
///             let parker = Counting(ThreadParker::new(), parks.clone());
///             Ok::<_, std::io::Error>((Box::new(parker) as Box<dyn Parker>, parks))
///         })
///         .expect("opened");
///         // Opened again: the same state, typed; `make` is not called.
///         let again = open_catalyst(ctx, "counting", || -> Result<_, std::io::Error> {
///             unreachable!("it exists")
///         });
///         assert!(Arc::ptr_eq(&parks, &again.expect("the same kind").1));
///         ctx.finish();
///     }
/// }
/// App::new("doc").tonic(Opener).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_catalyst<T: Tonic, S: Send + Sync + 'static, E>(
    ctx: &mut Ctx<T>,
    name: &str,
    make: impl FnOnce() -> Result<(Box<dyn Parker>, Arc<S>), E>,
) -> Result<(Catalyst, Arc<S>), OpenError<E>> {
    ctx.runtime().catalyst_with(name, make)
}

/// Sparkles run inline: see [`sparkle_inline`](SparkleInline::sparkle_inline).
pub trait SparkleInline<T: Tonic> {
    /// Run a sparkle on this tonic *now*, inside the calling sparkle, if that cannot be told
    /// apart from queueing it; otherwise hand `x` back, for the caller to send as usual.
    ///
    /// It runs inline only when called inside a sparkle (or hook, or timer event) on the
    /// tonic's own catalyst, the tonic is not running (nor waiting for an inline sparkle it
    /// started to return),
    /// has no bounded mailbox, and nothing sent to it from this catalyst is still queued. Then
    /// it is an ordinary sparkle in every respect but its timing: it runs alone on the tonic,
    /// to the end, after everything this sender sent it before; a panic in it fails (or
    /// restarts) that tonic, not the caller; its state transitions and finishing settle
    /// before this returns. What it saves is the queue round trip and the closure's
    /// allocation: a co-located connection hands a read's messages to its base this way, and
    /// writes the replies in the same turn (`docs/PERFORMANCE.md`, request–response latency).
    ///
    /// A selector's readiness callback may call it too (the catalyst's parker polls as a
    /// sparkle would run). Inline sparkles nest at most two deep (readiness → connection →
    /// base); never inline in a [`Distiller`](crate::Distiller) (each step runs exactly one
    /// sparkle) or while sparkles are traced.
    ///
    /// # Errors
    ///
    /// Hands `x` back when the sparkle cannot run inline (`f` is dropped unrun).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasktonic_core::extend::SparkleInline;
    /// use tasktonic_core::{App, Ctx, Tonic};
    ///
    /// struct Counter(u64);
    /// impl Tonic for Counter {
    ///     type State = ();
    /// }
    ///
    /// struct Feeder;
    /// impl Tonic for Feeder {
    ///     type State = ();
    ///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
    ///         let counter = ctx.spawn(Counter(0));
    ///         ctx.handle()
    ///             .sparkle(move |_f, ctx| {
    ///                 let add = |c: &mut Counter, _: &mut Ctx<Counter>, n: u64| c.0 += n;
    ///                 // Inline if possible, queued otherwise: the counter sees 5 either way.
    ///                 if let Err(n) = counter.sparkle_inline(5, add) {
    ///                     counter.sparkle(move |c, cctx| add(c, cctx, n)).ok();
    ///                 }
    ///                 counter
    ///                     .sparkle(|c, cctx| {
    ///                         assert_eq!(c.0, 5);
    ///                         cctx.finish();
    ///                     })
    ///                     .ok();
    ///                 ctx.finish();
    ///             })
    ///             .ok();
    ///     }
    /// }
    ///
    /// App::new("doc").tonic(Feeder).run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn sparkle_inline<X>(&self, x: X, f: impl FnOnce(&mut T, &mut Ctx<T>, X)) -> Result<(), X>;
}

impl<T: Tonic> SparkleInline<T> for Handle<T> {
    fn sparkle_inline<X>(&self, x: X, f: impl FnOnce(&mut T, &mut Ctx<T>, X)) -> Result<(), X> {
        let Some(core) = crate::catalyst::current_core() else {
            return Err(x);
        };
        let target = self.shared.inline_target();
        let Some(mut cell) = core.take_for_inline(target) else {
            return Err(x);
        };
        let after = match cell.as_any_mut().downcast_mut::<TonicCell<T>>() {
            // Restarted, it waits for its `on_start`: nothing may run ahead of what waits.
            Some(typed) if !typed.is_restarting() => typed.run_inline(|t, ctx| f(t, ctx, x)),
            _ => {
                // (A handle always names a tonic of its type; kept total all the same.)
                core.put_back_inline(target, cell, crate::catalyst::After::Alive);
                return Err(x);
            }
        };
        core.put_back_inline(target, cell, after);
        Ok(())
    }
}
