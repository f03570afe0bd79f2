//! [`Ctx`]: what a running tonic can do — send, spawn, ask, change state, arm timers, finish.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::address::TonicShared;
use crate::catalyst::Core;
use crate::ledger::Ledger;
use crate::runtime::Runtime;
use crate::state::{Machine, Postponed};

mod cell;
mod children;
mod infusion;
mod life;
mod spawn;
mod timers;

pub(crate) use self::cell::TonicCell;
pub(crate) use self::infusion::SpawnSpec;
pub use self::infusion::{Infusion, Restart, Source, WithHandle};
pub(crate) use self::spawn::{spawn, spawn_top};

use self::children::Children;
use self::life::Life;
pub(crate) use self::timers::Fired;
use self::timers::{Purpose, TimerTable};
use crate::{
    AskError, Catalyst, Handle, Lifecycle, Receive, Settings, SpawnError, Tonic, TonicId, TonicRef,
};

type Answer<T> = Box<dyn FnOnce(&mut T, &mut Ctx<T>, Result<Box<dyn Any + Send>, AskError>)>;

pub(crate) struct PendingAsk<T: Tonic> {
    timer: u64,
    pub(crate) answer: Answer<T>,
}

/// Keys here are our own sequence numbers, not attacker-chosen: a multiplicative hash is
/// enough and much cheaper than SipHash on the timer hot path.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type KeyHash = std::hash::BuildHasherDefault<KeyHasher>;

/// The context of a running tonic, passed to every sparkle and hook.
///
/// It is the tonic's only door to the runtime: its identity, its base and infusions, spawning,
/// services, request–reply, the state machine, timers, and finishing. It lives on the tonic's
/// catalyst thread and is never shared.
pub struct Ctx<T: Tonic> {
    core: Rc<Core>,
    runtime: Arc<Runtime>,
    shared: Arc<TonicShared>,
    base: Option<TonicRef>,
    children: Children,
    life: Life,
    // The rare parts are boxed: every tonic (every connection) carries a `Ctx`.
    services: Vec<TypeId>,
    restart: Option<Box<Restart<T>>>,
    machine: Machine<T>,
    asks: HashMap<u64, PendingAsk<T>, KeyHash>,
    timers: TimerTable,
    next_key: u64,
}

impl<T: Tonic> fmt::Debug for Ctx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("lifecycle", &self.life.lifecycle())
            .field("state", self.machine.state())
            .finish()
    }
}

impl<T: Tonic> Ctx<T> {
    pub(crate) fn new(
        core: Rc<Core>,
        runtime: Arc<Runtime>,
        shared: Arc<TonicShared>,
        base: Option<TonicRef>,
        restart: Option<Restart<T>>,
    ) -> Ctx<T> {
        Ctx {
            core,
            runtime,
            shared,
            base,
            children: Children::default(),
            life: Life::new(),
            services: Vec::new(),
            restart: restart.map(Box::new),
            machine: Machine::new(),
            asks: HashMap::default(),
            timers: TimerTable::default(),
            next_key: 0,
        }
    }

    // ----- identity -------------------------------------------------------------------------

    /// This tonic's id.
    pub fn id(&self) -> TonicId {
        self.shared.id
    }

    /// This tonic's name in the ledger.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// A handle to this tonic, to give to others.
    pub fn handle(&self) -> Handle<T> {
        Handle::from_shared(self.shared.clone())
    }

    /// The type-erased reference to this tonic.
    pub fn tonic_ref(&self) -> TonicRef {
        TonicRef {
            shared: self.shared.clone(),
        }
    }

    /// The base (parent) that spawned this tonic; `None` for top-level tonics and services.
    pub fn base(&self) -> Option<&TonicRef> {
        self.base.as_ref()
    }

    /// The live infusions (children) of this tonic, in no particular order.
    pub fn infusions(&self) -> &[TonicRef] {
        self.children.as_slice()
    }

    /// Where this tonic is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.life.lifecycle()
    }

    /// The name of the catalyst this tonic runs on.
    pub fn catalyst(&self) -> &str {
        &self.core.shared.name
    }

    /// The app's runtime (for the layers above the host: services, extension points).
    pub(crate) fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// This tonic is a base of the service `key` (left when it completes).
    pub(crate) fn note_service(&mut self, key: TypeId) {
        if !self.services.contains(&key) {
            self.services.push(key);
        }
    }

    /// This tonic is no longer a base of the service `key`.
    pub(crate) fn forget_service(&mut self, key: TypeId) {
        self.services.retain(|k| *k != key);
    }

    /// The catalyst this tonic runs on, to place infusions beside it
    /// ([`Infusion::on`](crate::Infusion::on)).
    pub fn this_catalyst(&self) -> Catalyst {
        Catalyst {
            shared: self.core.shared.clone(),
        }
    }

    /// The catalyst called `name`, created (a plain one, its thread started with its first
    /// tonic) if there is none; under the [`Distiller`](crate::Distiller), its one catalyst.
    pub fn catalyst_named(&mut self, name: &str) -> Catalyst {
        Catalyst {
            shared: self.runtime.plain_catalyst(name),
        }
    }

    /// The project name given to the [`App`](crate::App).
    pub fn project(&self) -> &str {
        &self.runtime.project
    }

    /// The app's settings.
    pub fn settings(&self) -> &Settings {
        &self.runtime.settings
    }

    /// The ledger of live tonics.
    pub fn ledger(&self) -> &Ledger {
        &self.runtime.ledger
    }

    /// The runtime's current time (virtual under the [`Distiller`](crate::Distiller)).
    pub fn now(&self) -> Instant {
        self.core.now()
    }

    // ----- spawning and lifecycle ----------------------------------------------------------

    /// Spawn `tonic` as an infusion of this one, on this catalyst, with an automatic name.
    ///
    /// It starts before any sparkle sent to it runs. When this tonic finishes, the infusion is
    /// finished first.
    pub fn spawn<U: Tonic>(&mut self, tonic: U) -> Handle<U> {
        match self.spawn_spec(SpawnSpec::new(tonic)) {
            Ok(handle) => handle,
            // Automatic names cannot collide and infusions are accepted while stopping.
            Err(e) => unreachable!("spawning an unnamed infusion failed: {e}"),
        }
    }

    /// A builder to spawn `tonic` as an infusion with a name, catalyst, mailbox or restart policy.
    pub fn infusion<U: Tonic>(&mut self, tonic: U) -> Infusion<'_, T, U> {
        Infusion {
            ctx: self,
            spec: SpawnSpec::new(tonic),
        }
    }

    /// A builder like [`infusion`](Ctx::infusion) for a tonic that `make` builds once its
    /// handle exists, and gets it (as actix's `Actor::create`): for a tonic that hands its
    /// own address to others before it runs. `make` runs at once in [`spawn`](Infusion::spawn),
    /// on this thread, and only if the spawn succeeds.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasktonic_core::{App, Ctx, Handle, Tonic};
    ///
    /// struct Echo {
    ///     me: Handle<Echo>,
    /// }
    /// impl Tonic for Echo {
    ///     type State = ();
    ///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
    ///         assert_eq!(self.me.id(), ctx.id());
    ///         ctx.finish();
    ///     }
    /// }
    ///
    /// struct Base;
    /// impl Tonic for Base {
    ///     type State = ();
    ///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
    ///         let echo = ctx
    ///             .infusion_with(|me: &Handle<Echo>| Echo { me: me.clone() })
    ///             .spawn()
    ///             .expect("spawned");
    ///         assert_eq!(echo.name(), ctx.infusions()[0].name());
    ///         ctx.finish();
    ///     }
    /// }
    /// App::new("doc").tonic(Base).run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn infusion_with<U, F>(&mut self, make: F) -> Infusion<'_, T, U, WithHandle<F>>
    where
        U: Tonic,
        F: FnOnce(&Handle<U>) -> U,
    {
        Infusion {
            ctx: self,
            spec: SpawnSpec::new(WithHandle(make)),
        }
    }

    pub(crate) fn spawn_spec<U: Tonic, S: Source<U>>(
        &mut self,
        spec: SpawnSpec<U, S>,
    ) -> Result<Handle<U>, SpawnError<S>> {
        let handle = spawn(
            &self.runtime,
            spec,
            Some(self.tonic_ref()),
            &self.core.shared,
        )?;
        let child = handle.tonic_ref();
        if self.life.lifecycle() >= Lifecycle::Finishing {
            child.request_finish();
        }
        self.children.push(child);
        Ok(handle)
    }

    /// True when nothing waits to be settled after a sparkle: no transition, stop, replay,
    /// finish request or finishing in progress (then the catalyst skips `settle`).
    #[inline]
    pub(crate) fn is_settled(&self) -> bool {
        self.machine.is_settled() && self.life.is_settled()
    }

    /// Finish this tonic after the current sparkle: its infusions finish first, then it
    /// completes (see [`Lifecycle`]).
    pub fn finish(&mut self) {
        self.life.request_finish();
    }

    /// Keep this tonic from completing, even once its infusions are gone, until
    /// [`allow_completion`](Ctx::allow_completion) is called as many times. For tonics that must
    /// finish work of their own first — a connection flushing its socket on close. Sparkles and
    /// timers keep running while it waits.
    pub fn delay_completion(&mut self) {
        self.life.hold();
    }

    /// Release one [`delay_completion`](Ctx::delay_completion).
    pub fn allow_completion(&mut self) {
        self.life.release();
    }

    /// Stop the whole application: every top-level tonic and service is asked to finish, and
    /// [`App::run`](crate::App::run) returns once all have completed.
    pub fn stop_app(&mut self) {
        self.runtime.stop();
    }

    // ----- request–reply ----------------------------------------------------------------------

    /// Ask `target` a question: `question` runs as a sparkle on the target, and its result comes
    /// back to this tonic as a sparkle running `answer` — or `Err` when no answer can come
    /// ([`AskError::NoAnswer`], [`AskError::Full`]) or none came within `timeout`
    /// ([`AskError::Timeout`]). `answer` runs exactly once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasktonic_core::{App, Ctx, Tonic};
    ///
    /// struct Oracle;
    /// impl Tonic for Oracle {
    ///     type State = ();
    /// }
    ///
    /// struct Asker;
    /// impl Tonic for Asker {
    ///     type State = ();
    ///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
    ///         let oracle = ctx.infusion(Oracle).catalyst("oracle").spawn().expect("spawned");
    ///         ctx.ask(&oracle, Duration::from_secs(5), |_o, _| 42, |_me, ctx, answer| {
    ///             assert_eq!(answer, Ok(42));
    ///             ctx.finish();
    ///         });
    ///     }
    /// }
    /// App::new("doc").tonic(Asker).run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ask<U, R, Q, A>(&mut self, target: &Handle<U>, timeout: Duration, question: Q, answer: A)
    where
        U: Tonic,
        R: Send + 'static,
        Q: FnOnce(&mut U, &mut Ctx<U>) -> R + Send + 'static,
        A: FnOnce(&mut T, &mut Ctx<T>, Result<R, AskError>) + 'static,
    {
        let id = self.next_key();
        let deadline = self.now() + timeout;
        let timer = self.arm(deadline, Purpose::Ask(id));
        let answer: Answer<T> = Box::new(move |t, ctx, result| {
            let result = result.and_then(|b| {
                b.downcast::<R>()
                    .map(|r| *r)
                    .map_err(|_| AskError::NoAnswer)
            });
            answer(t, ctx, result);
        });
        self.asks.insert(id, PendingAsk { timer, answer });
        let guard = AnswerGuard {
            asker: Some(self.handle()),
            id,
        };
        let sent = target.sparkle_named("ask", move |u, uctx| {
            let mut guard = guard;
            let r = question(u, uctx);
            if let Some(asker) = guard.asker.take() {
                let _ = asker.sparkle_named("answer", move |t, ctx| {
                    ctx.answer_ask(t, id, Ok(Box::new(r)));
                });
            }
        });
        if let Err(e) = sent {
            // The closure (and its guard) came back: the guard answers NoAnswer when dropped, but
            // a full mailbox deserves its own error.
            if matches!(e, crate::SendError::Full(_)) {
                let _ = self.handle().sparkle_named("answer", move |t, ctx| {
                    ctx.answer_ask(t, id, Err(AskError::Full));
                });
            }
            drop(e);
        }
    }

    /// Deliver an ask's result, once.
    pub(crate) fn answer_ask(
        &mut self,
        t: &mut T,
        id: u64,
        result: Result<Box<dyn Any + Send>, AskError>,
    ) {
        if let Some(pending) = self.asks.remove(&id) {
            self.cancel_key(pending.timer);
            (pending.answer)(t, self, result);
        }
    }

    // ----- state machine ---------------------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> &T::State {
        self.machine.state()
    }

    /// Go to `state` right after this sparkle: `on_exit(old)`, then `on_enter(new)`, before any
    /// other queued sparkle. Going to the current state does nothing (see
    /// [`reenter_state`](Ctx::reenter_state)). If called twice in one sparkle, the last wins.
    pub fn to_state(&mut self, state: T::State) {
        self.machine.go(state, false);
    }

    /// Exit and re-enter the current state (TaskTonic's `force_reenter`): cancels a state
    /// timeout and re-delivers postponed sparkles like any transition.
    pub fn reenter_state(&mut self) {
        let state = self.machine.take_next_or_current();
        self.machine.go(state, true);
    }

    /// Stop the state machine after this sparkle: `on_exit` of the current state runs, and
    /// later `to_state` calls are ignored (logged). Postponed sparkles are dropped (logged).
    pub fn stop_machine(&mut self) {
        self.machine.request_stop();
    }

    /// True once the state machine was stopped.
    pub fn is_machine_stopped(&self) -> bool {
        self.machine.is_stopped()
    }

    /// Fire [`Tonic::on_state_timeout`] after `after`, unless the state changes first.
    /// Replaces an earlier state timeout of the same state.
    pub fn state_timeout(&mut self, after: Duration) {
        let deadline = self.now() + after;
        let key = self.arm(deadline, Purpose::StateTimeout(self.machine.epoch()));
        if let Some(earlier) = self.machine.set_timeout(key) {
            self.cancel_key(earlier);
        }
    }

    /// Postpone work until the next state change: `run` is re-delivered, in order with other
    /// postponed work, right after the next transition (before any queued sparkle), as Erlang's
    /// `gen_statem` does. If the tonic finishes first, it is dropped with a log line naming it.
    ///
    /// A sparkle that wants to postpone itself passes its own work again:
    /// `ctx.postpone("Job", move |t, ctx| t.handle_job(ctx, job))`.
    pub fn postpone(
        &mut self,
        name: &'static str,
        run: impl FnOnce(&mut T, &mut Ctx<T>) + 'static,
    ) {
        self.machine.postpone(Postponed {
            name,
            run: Box::new(run),
        });
    }

    /// Postpone a typed message: [`Receive::receive`] gets it again after the next state change.
    pub fn postpone_message<M>(&mut self, msg: M)
    where
        M: Send + 'static,
        T: Receive<M>,
    {
        // Named with the full type name (a constant); shortened where it is shown.
        self.postpone(std::any::type_name::<M>(), move |t, ctx| {
            t.receive(ctx, msg)
        });
    }

    /// How many sparkles are postponed.
    pub fn postponed(&self) -> usize {
        self.machine.postponed_len()
    }
}

/// Sent inside an ask: if the question is dropped unanswered (the target completed or
/// panicked), the asker learns at once instead of waiting for the timeout.
struct AnswerGuard<T: Tonic> {
    asker: Option<Handle<T>>,
    id: u64,
}

impl<T: Tonic> Drop for AnswerGuard<T> {
    fn drop(&mut self) {
        if let Some(asker) = self.asker.take() {
            let id = self.id;
            let _ = asker.sparkle_named("answer", move |t, ctx| {
                ctx.answer_ask(t, id, Err(AskError::NoAnswer));
            });
        }
    }
}
