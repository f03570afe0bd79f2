//! The [`Tonic`] trait: an actor's lifecycle hooks and events, all with default bodies.

use std::fmt::Debug;

use crate::{Ctx, Failure, TimerEvent, TonicRef};

/// The state type of a tonic's state machine: a plain enum, or `()` for none.
///
/// Implemented for every type with the listed traits; the machine starts in `Default::default()`.
pub trait State: Clone + PartialEq + Debug + Default + Send + 'static {}

impl<S: Clone + PartialEq + Debug + Default + Send + 'static> State for S {}

/// What a base does about a failed infusion; returned by [`Tonic::on_infusion_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// The base dealt with it: nothing more happens.
    Handled,
    /// Record the failure: [`App::run`](crate::App::run) returns it in its error. The base goes on.
    Report,
    /// The base fails as well, and its own base is told in turn.
    Escalate,
}

/// An actor: private state, touched only by its own sparkles, one at a time, on its catalyst.
///
/// Every method has a default body ("subclass style"): implement only the events you need.
/// All hooks run on the tonic's catalyst thread, like any sparkle, and may use the [`Ctx`] to
/// send, spawn, change state, arm timers or finish.
///
/// # Lifecycle
///
/// - **Starting**: the tonic is in the ledger and can receive sparkles; `on_start` runs first,
///   before any sparkle sent to it (even ones sent before it was placed on its catalyst).
/// - **Sparkling**: sparkles run one at a time, in FIFO order per sender.
/// - **Finishing**: after [`Ctx::finish`] (or a failure), its timers are cancelled, then
///   `on_finishing` runs (timers armed from here on run), and its infusions are asked to finish. Sparkles sent to it still run, so events
///   from its infusions arrive.
/// - **Completed**: when its last infusion has completed, `on_finished` runs, the tonic leaves the
///   ledger and its base is told ([`on_infusion_completed`](Tonic::on_infusion_completed)).
///
/// # Examples
///
/// ```
/// use tasktonic_core::{App, Ctx, Tonic};
///
/// struct Greeter;
///
/// impl Tonic for Greeter {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         println!("hello from {}", ctx.name());
///         ctx.finish();
///     }
/// }
///
/// App::new("doc").tonic(Greeter).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(unused_variables)] // the defaults ignore their arguments
pub trait Tonic: Send + Sized + 'static {
    /// The state machine's state: a plain enum, or `()` for none.
    type State: State;

    /// The tonic was placed on its catalyst. Default: does nothing.
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {}

    /// Finishing has begun; its infusions are being finished. Default: does nothing.
    fn on_finishing(&mut self, ctx: &mut Ctx<Self>) {}

    /// The last hook: all infusions have completed. Default: does nothing.
    fn on_finished(&mut self, ctx: &mut Ctx<Self>) {}

    /// The state machine entered `state`. Default: does nothing.
    fn on_enter(&mut self, ctx: &mut Ctx<Self>, state: &Self::State) {}

    /// The state machine is leaving `state`. Default: does nothing.
    fn on_exit(&mut self, ctx: &mut Ctx<Self>, state: &Self::State) {}

    /// The timeout set by [`Ctx::state_timeout`] expired in `state`. Default: does nothing.
    fn on_state_timeout(&mut self, ctx: &mut Ctx<Self>, state: &Self::State) {}

    /// A timer armed by this tonic expired. Default: does nothing.
    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {}

    /// An infusion completed normally. Default: does nothing.
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, infusion: &TonicRef) {}

    /// An infusion failed (a panic) and will not be restarted. Default: [`FailureAction::Report`].
    fn on_infusion_failed(&mut self, ctx: &mut Ctx<Self>, failure: &Failure) -> FailureAction {
        FailureAction::Report
    }

    /// An infusion failed and was restarted by its restart policy. Default: does nothing.
    fn on_infusion_restarted(&mut self, ctx: &mut Ctx<Self>, failure: &Failure) {}
}

/// A typed message a tonic accepts through [`Handle::send`](crate::Handle::send).
///
/// The typed convenience over closures: `handle.send(Ping(3))` runs `receive` as a sparkle named
/// after the message type (`Ping`), which is what traces and logs show.
///
/// # Examples
///
/// ```
/// use tasktonic_core::{Ctx, Receive, Tonic};
///
/// struct Counter(u64);
/// struct Add(u64);
///
/// impl Tonic for Counter {
///     type State = ();
/// }
///
/// impl Receive<Add> for Counter {
///     fn receive(&mut self, _ctx: &mut Ctx<Self>, msg: Add) {
///         self.0 += msg.0;
///     }
/// }
/// ```
pub trait Receive<M: Send + 'static>: Tonic {
    /// Handle one message.
    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: M);
}
