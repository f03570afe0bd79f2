//! A tonic and its context as the catalyst holds them: where sparkles actually run.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::catalyst::{
    After, AnyCell, Envelope, InfusionEvent, InfusionOutcome, Order, SystemMsg, Work, set_running,
};
use crate::ctx::Fired;
use crate::error::panic_message;
use crate::id::short_name;
use crate::runtime::Retirement;
use crate::state::Step;
use crate::trace::TraceEntry;
use crate::{AskError, Ctx, Failure, FailureAction, Lifecycle, Tonic, TonicId, TonicRef};

pub(crate) struct TonicCell<T: Tonic> {
    tonic: T,
    ctx: Ctx<T>,
    /// Restarted in place, the fresh instance waits for its predecessor's infusions to
    /// complete before it starts (see [`TonicCell::restart`]).
    restarting: Option<Box<Restarting>>,
}

/// A restart waiting for what the failed instance held to let go.
struct Restarting {
    /// The ids of the failed instance's infusions, finished, not yet completed.
    leaving: Vec<TonicId>,
    /// Work that came meanwhile, run in order once the fresh instance has started (its
    /// bounded mailbox, if any, is not drained meanwhile: it keeps its bound).
    held: VecDeque<(Work, u64, &'static str)>,
    /// Asked to finish meanwhile: the fresh instance is never started.
    finish: bool,
}

impl<T: Tonic> TonicCell<T> {
    pub(crate) fn new(tonic: T, ctx: Ctx<T>) -> TonicCell<T> {
        TonicCell {
            tonic,
            ctx,
            restarting: None,
        }
    }

    /// Run a user sparkle (called from inside the type-erased order).
    pub(crate) fn apply<F: FnOnce(&mut T, &mut Ctx<T>)>(&mut self, f: F) {
        f(&mut self.tonic, &mut self.ctx);
    }

    /// True while a restart waits for the failed instance's infusions: nothing runs on the
    /// fresh instance before its `on_start`, so an inline sparkle must be queued instead.
    pub(crate) fn is_restarting(&self) -> bool {
        self.restarting.is_some()
    }

    /// Run `f` as a sparkle taken inline (see `Handle::sparkle_inline`): as [`AnyCell::run`]
    /// runs an order — a panic fails the tonic, transitions and finishing settle after.
    pub(crate) fn run_inline(&mut self, f: impl FnOnce(&mut T, &mut Ctx<T>)) -> After {
        let previous = set_running(self.ctx.id().as_u64());
        self.guarded(f);
        self.sparkle_done(previous)
    }

    /// After a sparkle: settle (unless nothing waits), and give the log back the tonic that
    /// was current before it.
    #[inline]
    fn sparkle_done(&mut self, previous: u64) -> After {
        let after = if self.ctx.is_settled() {
            After::Alive
        } else {
            self.settle()
        };
        set_running(previous);
        after
    }

    /// Look at the tonic between sparkles (the Distiller's inspect and probes).
    pub(crate) fn peek<R>(&mut self, f: impl FnOnce(&mut T, &mut Ctx<T>) -> R) -> R {
        f(&mut self.tonic, &mut self.ctx)
    }

    /// Run `f` on the tonic, turning a panic into a failure. True if it returned normally.
    fn guarded(&mut self, f: impl FnOnce(&mut T, &mut Ctx<T>)) -> bool {
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut self.tonic, &mut self.ctx)));
        match result {
            Ok(()) => true,
            Err(payload) => {
                self.failed(panic_message(&*payload));
                false
            }
        }
    }

    /// [`AnyCell::run`] under the Distiller's tracer: records the sparkle and the states.
    #[inline(never)]
    fn run_traced(&mut self, work: Work, from: u64, name: &'static str) -> After {
        let previous = set_running(self.ctx.id().as_u64());
        let after = if self.restarting.is_some() {
            // Held work is traced when it runs, each replayed sparkle on its own.
            self.while_restarting(work, from, name, true)
        } else {
            let state_before = format!("{:?}", self.ctx.machine.state());
            self.execute(work);
            let after = self.settle();
            self.record(name, from, state_before);
            after
        };
        set_running(previous);
        after
    }

    /// One trace entry: a sparkle that ran, and the states around it.
    fn record(&mut self, name: &'static str, from: u64, state_before: String) {
        let entry = TraceEntry {
            at: self.ctx.core.clock.elapsed(),
            tonic: self.ctx.id(),
            tonic_name: self.ctx.name().to_string(),
            sparkle: short_name(name),
            from: TonicId::from_raw(from),
            state_before,
            state_after: format!("{:?}", self.ctx.machine.state()),
            lifecycle: self.ctx.life.lifecycle(),
        };
        if let Some(tracer) = self.ctx.core.tracer.borrow_mut().as_mut() {
            tracer.record(entry);
        }
    }

    /// Run a sparkle; a panic fails the tonic.
    #[inline(always)]
    fn order(&mut self, order: Order) {
        let result = catch_unwind(AssertUnwindSafe(|| order(self as &mut dyn Any)));
        if let Err(payload) = result {
            self.failed(panic_message(&*payload));
        }
    }

    #[inline(never)]
    fn execute(&mut self, work: Work) {
        match work {
            Work::Start => {
                self.guarded(|t, ctx| t.on_start(ctx));
                if self.ctx.life.lifecycle() == Lifecycle::Starting {
                    self.set_lifecycle(Lifecycle::Sparkling);
                }
            }
            Work::Order(order) | Work::Notice(order) => self.order(order),
            Work::System(SystemMsg::Finish) => self.ctx.life.request_finish(),
            Work::System(SystemMsg::FinishWhenQuiet) => {
                let shared = &self.ctx.shared;
                if self.ctx.core.has_queued_for(shared.slot, shared.generation) {
                    // Behind what waits for it (sent before, but queued after: a spawn's
                    // early arrivals are placed first; the local queue runs before remote).
                    let env = shared.envelope("finish", Work::System(SystemMsg::FinishWhenQuiet));
                    self.ctx.core.push_local(env);
                } else {
                    self.ctx.life.request_finish();
                }
            }
            Work::System(SystemMsg::Infusion(event)) => self.infusion_event(*event),
            Work::Timer(key) => self.timer_fired(key),
            Work::System(SystemMsg::Drain) | Work::Spawn(_) => {}
        }
    }

    fn timer_fired(&mut self, key: u64) {
        let now = self.ctx.now();
        match self.ctx.fire(key, now) {
            Fired::Nothing => {}
            Fired::AskTimeout(pending) => {
                self.guarded(|t, ctx| (pending.answer)(t, ctx, Err(AskError::Timeout)));
            }
            Fired::StateTimeout(state) => {
                self.guarded(|t, ctx| t.on_state_timeout(ctx, &state));
            }
            Fired::User(event) => {
                self.guarded(|t, ctx| t.on_timer(ctx, &event));
            }
        }
    }

    fn infusion_event(&mut self, InfusionEvent { child, outcome }: InfusionEvent) {
        if self.ctx.children.get(&*child).is_none() {
            log::debug!("event from a former infusion {} ignored", child.id());
            return;
        }
        match outcome {
            InfusionOutcome::Restarted(failure) => {
                self.guarded(|t, ctx| t.on_infusion_restarted(ctx, &failure));
            }
            InfusionOutcome::Completed => {
                if let Some(infusion) = self.ctx.children.remove(&*child) {
                    self.guarded(|t, ctx| t.on_infusion_completed(ctx, &infusion));
                }
            }
            InfusionOutcome::Failed(failure) => {
                self.ctx.children.remove(&*child);
                let mut action = FailureAction::Report;
                self.guarded(|t, ctx| action = t.on_infusion_failed(ctx, &failure));
                match action {
                    FailureAction::Handled => {}
                    FailureAction::Report => self.ctx.runtime.report(*failure),
                    FailureAction::Escalate => self.failed(format!(
                        "infusion {} {} failed: {}",
                        failure.tonic, failure.name, failure.message
                    )),
                }
            }
        }
    }

    /// A panic (or an escalated failure): restart if the policy allows, else finish as failed.
    fn failed(&mut self, message: String) {
        let failure = Failure {
            tonic: self.ctx.id(),
            name: self.ctx.name().to_string(),
            message,
        };
        match crate::logging::take_panic_location(failure.tonic.as_u64(), &failure.message) {
            Some(at) => log::error!("{failure} (panicked at {at})"),
            None => log::error!("{failure}"),
        }
        let now = self.ctx.now();
        let restart = self.ctx.life.lifecycle() < Lifecycle::Finishing
            && self.ctx.restart.as_mut().is_some_and(|r| r.admit(now));
        if restart && self.restart(&failure) {
            return;
        }
        // A failed tonic cannot be trusted to release what it held back.
        self.ctx.life.fail(failure);
    }

    /// Rebuild the tonic in place. False if the factory panicked.
    fn restart(&mut self, failure: &Failure) -> bool {
        let Some(policy) = self.ctx.restart.as_mut() else {
            return false;
        };
        let fresh = catch_unwind(AssertUnwindSafe(|| (policy.factory)()));
        let fresh = match fresh {
            Ok(fresh) => fresh,
            Err(payload) => {
                let message = panic_message(&*payload);
                let at = crate::logging::take_panic_location(self.ctx.id().as_u64(), &message);
                log::error!(
                    "{}: restart factory panicked: {message}{}",
                    self.ctx.name(),
                    at.map(|at| format!(" (panicked at {at})"))
                        .unwrap_or_default()
                );
                return false;
            }
        };
        log::warn!(
            "{} {} restarted after: {}",
            self.ctx.id(),
            self.ctx.name(),
            failure.message
        );
        self.tonic = fresh;
        self.ctx.clear_all();
        self.ctx.life.drop_holds();
        let name = self.ctx.name().to_string();
        self.ctx.machine.drop_postponed(&name);
        self.ctx.machine = crate::state::Machine::new();
        let leaving = self.ctx.children.take();
        for child in &leaving {
            child.request_finish();
        }
        if let Some(base) = &self.ctx.base {
            base.shared.push_infusion_event(
                &self.ctx.shared,
                InfusionOutcome::Restarted(Box::new(failure.clone())),
            );
        }
        let mut leaving: Vec<TonicId> = leaving.iter().map(TonicRef::id).collect();
        let (mut held, mut finish) = (VecDeque::new(), false);
        if let Some(earlier) = self.restarting.take() {
            // An earlier restart still waits: what it waited for is still leaving.
            leaving.extend(earlier.leaving);
            (held, finish) = (earlier.held, earlier.finish);
        }
        if leaving.is_empty() && held.is_empty() && !finish {
            self.guarded(|t, ctx| t.on_start(ctx));
        } else {
            // The fresh instance starts once the old one's infusions have completed: what
            // they held (a listening port, a tonic name, a peer's connection) is free by then.
            // Work that comes meanwhile waits for it, in order.
            self.restarting = Some(Box::new(Restarting {
                leaving,
                held,
                finish,
            }));
        }
        true
    }

    /// Asked to finish while a restart waited: the fresh instance is never started (nor its
    /// hooks run); once the old infusions have completed it completes, and what was held is
    /// dropped as sparkles for a completed tonic are, with a warning.
    fn complete_unstarted(&mut self, held: VecDeque<(Work, u64, &'static str)>) -> After {
        for (work, _, name) in held {
            if let Work::Order(_) = work {
                log::warn!(
                    "sparkle {} dropped: its tonic finished before it restarted",
                    short_name(name)
                );
            }
        }
        self.wind_up();
        After::Completed
    }

    /// While a restart waits: hold `work`, or count an old infusion's end; after the last one,
    /// start the fresh instance and run what was held, each as its own sparkle (and, under the
    /// Distiller's tracer, `traced`, each with its own trace entry).
    #[inline(never)]
    fn while_restarting(
        &mut self,
        work: Work,
        from: u64,
        name: &'static str,
        traced: bool,
    ) -> After {
        let Some(waiting) = self.restarting.as_mut() else {
            self.execute(work);
            return self.settle();
        };
        let leaving = match &work {
            Work::System(SystemMsg::Infusion(event)) => {
                let id = event.child.id();
                waiting
                    .leaving
                    .iter()
                    .position(|c| *c == id)
                    .map(|i| (i, &event.outcome))
            }
            _ => None,
        };
        let Some((i, outcome)) = leaving else {
            if matches!(work, Work::System(SystemMsg::Finish)) {
                waiting.finish = true;
            } else {
                waiting.held.push_back((work, from, name));
            }
            return After::Alive;
        };
        if matches!(outcome, InfusionOutcome::Restarted(_)) {
            return After::Alive; // still going: its end comes later
        }
        waiting.leaving.swap_remove(i);
        if !waiting.leaving.is_empty() {
            return After::Alive;
        }
        let Some(Restarting {
            mut held, finish, ..
        }) = self.restarting.take().map(|r| *r)
        else {
            return After::Alive;
        };
        if finish {
            return self.complete_unstarted(held);
        }
        let state_before = traced.then(|| format!("{:?}", self.ctx.machine.state()));
        self.guarded(|t, ctx| t.on_start(ctx));
        let mut after = self.settle();
        if let Some(before) = state_before {
            self.record(name, from, before);
        }
        if self.ctx.shared.mailbox.is_some() {
            // Its bounded mailbox was left alone while it waited: drain it again.
            self.ctx.shared.push_system("drain", SystemMsg::Drain);
        }
        while let Some((work, from, name)) = held.pop_front() {
            if let Some(again) = self.restarting.as_mut() {
                // Failed again and waits again: the rest waits with it, in order.
                again.held.push_back((work, from, name));
                continue;
            }
            if matches!(after, After::Completed) {
                log::warn!(
                    "{}: {} sparkle(s) held over its restart dropped: it completed",
                    self.ctx.name(),
                    held.len() + 1
                );
                break;
            }
            if matches!(work, Work::System(SystemMsg::FinishWhenQuiet)) && !held.is_empty() {
                // Quiet means after everything queued for it, and the held rest is.
                held.push_back((work, from, name));
                continue;
            }
            let state_before = traced.then(|| format!("{:?}", self.ctx.machine.state()));
            // (It runs as this tonic already: `run` set it running.)
            self.execute(work);
            after = self.settle();
            if let Some(before) = state_before {
                self.record(name, from, before);
            }
        }
        after
    }

    fn set_lifecycle(&mut self, l: Lifecycle) {
        self.ctx.life.set(l);
        self.ctx.shared.set_lifecycle(l);
    }

    /// Run queued transitions and re-delivered postponed work; then finishing. Runs right after
    /// every sparkle, before the catalyst picks the next one.
    #[inline(never)]
    fn settle(&mut self) -> After {
        loop {
            match self.ctx.machine.next_step() {
                Some(Step::Stop(state)) => {
                    self.guarded(|t, ctx| t.on_exit(ctx, &state));
                    self.ctx.machine.stopped_now();
                    self.ctx.state_changed();
                    let name = self.ctx.name().to_string();
                    self.ctx.machine.drop_postponed(&name);
                    continue;
                }
                Some(Step::Go(next, forced)) => {
                    self.transition(next, forced);
                    continue;
                }
                Some(Step::Replay(postponed)) => {
                    self.guarded(|t, ctx| (postponed.run)(t, ctx));
                    continue;
                }
                None => {}
            }
            if self.ctx.life.should_begin_finishing() {
                self.begin_finishing();
                continue;
            }
            break;
        }
        if self.ctx.life.can_complete(self.ctx.children.is_empty()) {
            self.complete();
            return After::Completed;
        }
        After::Alive
    }

    fn transition(&mut self, next: T::State, forced: bool) {
        if self.ctx.machine.is_stopped() {
            log::warn!(
                "{}: to_state({next:?}) ignored: the state machine is stopped",
                self.ctx.name()
            );
            return;
        }
        if !forced && next == *self.ctx.machine.state() {
            return;
        }
        let old = self.ctx.machine.state().clone();
        self.guarded(|t, ctx| t.on_exit(ctx, &old));
        // Postponed work comes back first, in order, ahead of what replay still held.
        self.ctx.enter_state(next.clone());
        self.guarded(|t, ctx| t.on_enter(ctx, &next));
    }

    fn begin_finishing(&mut self) {
        self.set_lifecycle(Lifecycle::Finishing);
        // Timers of the sparkling life end here; timers armed while finishing (a close linger,
        // a flush deadline) run until completion.
        self.ctx.cancel_user_timers();
        self.guarded(|t, ctx| t.on_finishing(ctx));
        for child in self.ctx.children.as_slice() {
            child.request_finish();
        }
    }

    fn complete(&mut self) {
        self.guarded(|t, ctx| t.on_finished(ctx));
        self.wind_up();
    }

    /// Completed: no timer, ask or postponed sparkle outlives it.
    fn wind_up(&mut self) {
        self.set_lifecycle(Lifecycle::Completed);
        self.ctx.clear_all();
        let name = self.ctx.name().to_string();
        self.ctx.machine.drop_postponed(&name);
    }
}

impl<T: Tonic> AnyCell for TonicCell<T> {
    fn run(&mut self, work: Work, from: u64, name: &'static str) -> After {
        if self.ctx.core.tracer.borrow().is_some() {
            return self.run_traced(work, from, name);
        }
        // The hot path (every sparkle): kept small; everything rarer is out of line.
        let previous = set_running(self.ctx.id().as_u64());
        if self.restarting.is_some() {
            let after = self.while_restarting(work, from, name, false);
            set_running(previous);
            return after;
        }
        match work {
            Work::Order(order) | Work::Notice(order) => self.order(order),
            work => self.execute(work),
        }
        self.sparkle_done(previous)
    }

    fn next_queued(&mut self) -> Option<Envelope> {
        if self.restarting.is_some() {
            return None; // it waits in the mailbox, which keeps its bound
        }
        self.ctx.shared.mailbox.as_ref()?.take()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn retire(self: Box<Self>) {
        let TonicCell { tonic, mut ctx, .. } = *self;
        let runtime = ctx.runtime.clone();
        let retirement = Retirement {
            shared: ctx.shared.clone(),
            base: ctx.base.take(),
            failure: ctx.life.take_failure(),
            services: std::mem::take(&mut ctx.services),
        };
        drop(tonic);
        drop(ctx);
        if let Some(mailbox) = &retirement.shared.mailbox {
            for env in mailbox.take_all() {
                if let Work::Order(_) = env.work {
                    log::warn!(
                        "sparkle {} dropped: its tonic has completed",
                        short_name(env.name)
                    );
                }
            }
        }
        runtime.retire(retirement);
    }
}
