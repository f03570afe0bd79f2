//! The [`Distiller`]: a deterministic test harness with a virtual clock and a sparkle trace.

use std::any::Any;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::catalyst::{Core, EnterGuard, ThreadParker, enter};
use crate::clock::{Clock, VirtualClock};
use crate::ctx::TonicCell;
use crate::ctx::{SpawnSpec, spawn_top};
use crate::id::short_name;
use crate::runtime::Runtime;
use crate::trace::{Trace, TraceEntry, Tracer};
use crate::{Ctx, Failure, Handle, Settings, Tonic, TonicId};

type Probe = Box<dyn FnMut(&Core) -> bool>;

enum Stop {
    Sparkles(usize),
    State(TonicId, String),
    Sparkle(Option<TonicId>, &'static str),
    Probe(Probe),
}

/// When a [`Distiller::run`] stops. Conditions are checked after every sparkle; the first that
/// holds wins. Without any, the run goes on until nothing is left to do.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasktonic_core::Contract;
///
/// let contract = Contract::new().sparkles(1_000).timeout(Duration::from_secs(60));
/// # let _ = contract;
/// ```
pub struct Contract {
    stops: Vec<Stop>,
    timeout: Duration,
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("conditions", &self.stops.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for Contract {
    fn default() -> Self {
        Contract::new()
    }
}

impl Contract {
    /// No conditions; a virtual-time limit of one day.
    pub fn new() -> Contract {
        Contract {
            stops: Vec::new(),
            timeout: Duration::from_secs(86_400),
        }
    }

    /// Stop after `n` sparkles in this run.
    pub fn sparkles(mut self, n: usize) -> Contract {
        self.stops.push(Stop::Sparkles(n));
        self
    }

    /// Stop when `tonic` is in `state` after a sparkle.
    pub fn state<T: Tonic>(mut self, tonic: &Handle<T>, state: T::State) -> Contract {
        self.stops
            .push(Stop::State(tonic.id(), format!("{state:?}")));
        self
    }

    /// Stop after a sparkle named `name` ran (on any tonic). Names are compared as traces
    /// show them, without a module path (`"billing::Invoice"` and `"Invoice"` alike).
    pub fn sparkle(mut self, name: &'static str) -> Contract {
        self.stops.push(Stop::Sparkle(None, short_name(name)));
        self
    }

    /// Stop after a sparkle named `name` ran on `tonic` (compared as
    /// [`sparkle`](Contract::sparkle) compares).
    pub fn sparkle_on<T: Tonic>(mut self, tonic: &Handle<T>, name: &'static str) -> Contract {
        self.stops
            .push(Stop::Sparkle(Some(tonic.id()), short_name(name)));
        self
    }

    /// Stop when `probe` returns true for `tonic` (checked after every sparkle).
    pub fn probe<T: Tonic>(
        mut self,
        tonic: &Handle<T>,
        mut probe: impl FnMut(&T, &T::State) -> bool + 'static,
    ) -> Contract {
        let handle = tonic.clone();
        self.stops.push(Stop::Probe(Box::new(move |core: &Core| {
            core.inspect(
                (handle.shared.slot, handle.shared.generation),
                &mut |any: &mut dyn Any| {
                    any.downcast_mut::<TonicCell<T>>()
                        .is_some_and(|cell| cell.peek(|t, ctx| probe(t, ctx.state())))
                },
            )
            .unwrap_or(false)
        })));
        self
    }

    /// Stop when virtual time has advanced `limit` in this run (default: one day).
    pub fn timeout(mut self, limit: Duration) -> Contract {
        self.timeout = limit;
        self
    }
}

/// Why a [`Distiller::run`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The sparkle count was reached.
    Sparkles,
    /// The tonic reached the state.
    State(TonicId),
    /// The named sparkle ran.
    Sparkle(&'static str),
    /// The probe (by its index among the contract's probes) returned true.
    Probe(usize),
    /// The virtual-time limit passed.
    Timeout,
    /// Every tonic completed.
    Completed,
    /// Nothing left to do (no queued work, no timer) but tonics are live.
    Idle,
}

/// The result of a [`Distiller::run`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Why it stopped.
    pub reason: StopReason,
    /// The sparkles this run executed.
    pub trace: Trace,
    /// Failures no base handled, so far.
    pub failures: Vec<Failure>,
}

/// Runs tonics on the test thread under a virtual clock: timers fire in order with no real
/// waiting, so a test of a 30-second retry policy takes microseconds. Every catalyst name maps
/// to the one Distiller catalyst, so a run is deterministic. Every sparkle is traced.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasktonic_core::{Contract, Ctx, Distiller, StopReason, Timer, TimerEvent, Tonic};
///
/// #[derive(Default)]
/// struct Retry {
///     attempts: u32,
/// }
/// impl Tonic for Retry {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         ctx.timer(Timer::repeat(Duration::from_secs(30)).named("retry"));
///     }
///     fn on_timer(&mut self, ctx: &mut Ctx<Self>, _: &TimerEvent) {
///         self.attempts += 1;
///         if self.attempts == 5 {
///             ctx.finish();
///         }
///     }
/// }
///
/// let mut d = Distiller::new();
/// let retry = d.spawn(Retry::default());
/// let outcome = d.run(Contract::new());
/// assert_eq!(outcome.reason, StopReason::Completed);
/// assert_eq!(d.elapsed(), Duration::from_secs(150));
/// # let _ = retry;
/// ```
pub struct Distiller {
    runtime: Arc<Runtime>,
    core: Rc<Core>,
    _guard: EnterGuard,
}

impl fmt::Debug for Distiller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Distiller")
            .field("elapsed", &self.elapsed())
            .field("live", &self.runtime.live())
            .finish()
    }
}

impl Default for Distiller {
    fn default() -> Self {
        Distiller::new()
    }
}

impl Distiller {
    /// A Distiller whose virtual wall clock starts now.
    pub fn new() -> Distiller {
        Distiller::starting_at(Timestamp::now(), Settings::default())
    }

    /// A Distiller whose virtual wall clock starts at `wall` (for scheduled timers), with settings.
    pub fn starting_at(wall: Timestamp, settings: Settings) -> Distiller {
        let clock = Clock::Virtual(VirtualClock::new(wall));
        let runtime = Runtime::new(
            "distiller".into(),
            settings,
            clock,
            Box::new(ThreadParker::new()),
            true,
        );
        let core = Core::new(
            runtime.main.clone(),
            runtime.clock.clone(),
            runtime.clone() as Arc<dyn crate::catalyst::Names>,
        );
        *core.tracer.borrow_mut() = Some(Tracer::default());
        let guard = enter(core.clone());
        Distiller {
            runtime,
            core,
            _guard: guard,
        }
    }

    /// Spawn a top-level tonic.
    ///
    /// # Panics
    ///
    /// If the Distiller was stopped (it accepts no new top-level tonics then).
    pub fn spawn<T: Tonic>(&mut self, tonic: T) -> Handle<T> {
        self.spawn_spec(SpawnSpec::new(tonic))
    }

    /// Spawn a top-level tonic under `name`.
    ///
    /// # Panics
    ///
    /// If a live tonic already has the name, or the Distiller was stopped.
    pub fn spawn_named<T: Tonic>(&mut self, name: &str, tonic: T) -> Handle<T> {
        let mut spec = SpawnSpec::new(tonic);
        spec.name = Some(name.to_string());
        self.spawn_spec(spec)
    }

    fn spawn_spec<T: Tonic>(&mut self, spec: SpawnSpec<T>) -> Handle<T> {
        let main = self.runtime.main.clone();
        match spawn_top(&self.runtime, spec, &main) {
            Ok(h) => h,
            Err(e) => panic!("Distiller::spawn: {e}"),
        }
    }

    /// Virtual time since the Distiller started.
    pub fn elapsed(&self) -> Duration {
        self.runtime.clock.elapsed()
    }

    /// Look at a live tonic between runs: `f` gets the tonic and its context.
    pub fn inspect<T: Tonic, R>(
        &self,
        tonic: &Handle<T>,
        f: impl FnOnce(&mut T, &mut Ctx<T>) -> R,
    ) -> Option<R> {
        let mut f = Some(f);
        let mut out = None;
        self.core.inspect(
            (tonic.shared.slot, tonic.shared.generation),
            &mut |any: &mut dyn Any| {
                if let (Some(cell), Some(f)) = (any.downcast_mut::<TonicCell<T>>(), f.take()) {
                    out = Some(cell.peek(f));
                }
                true
            },
        );
        out
    }

    /// Move virtual time forward by `d` without running anything, as if the catalyst had been
    /// stalled (a long sparkle, a paused process). Timers that came due fire on the next run,
    /// late, under their catch-up policy.
    pub fn stall(&mut self, d: Duration) {
        let target = self.core.now() + d;
        self.advance_to(target);
    }

    /// Stop the app (finish all top-level tonics), as [`Ctx::stop_app`] does.
    pub fn stop(&mut self) {
        self.runtime.stop();
    }

    /// Run until the contract's first condition holds.
    pub fn run(&mut self, mut contract: Contract) -> Outcome {
        let start_entries = self.trace_len();
        let limit = self.core.now() + contract.timeout;
        let reason = loop {
            let before = self.trace_len();
            if !self.core.step() {
                // Nothing runnable now: move virtual time to the next timer.
                match self.core.next_deadline() {
                    Some(deadline) if deadline <= limit => {
                        self.advance_to(deadline);
                        continue;
                    }
                    Some(_) => {
                        self.advance_to(limit);
                        break StopReason::Timeout;
                    }
                    None if self.runtime.live() == 0 => break StopReason::Completed,
                    None => break StopReason::Idle,
                }
            }
            let new_entries: Vec<TraceEntry> = self.entries_since(before);
            if let Some(reason) = self.check(&mut contract, start_entries, &new_entries) {
                break reason;
            }
        };
        let entries = self.entries_since(start_entries);
        Outcome {
            reason,
            trace: Trace { entries },
            failures: self.runtime.take_failures(),
        }
    }

    fn advance_to(&self, t: std::time::Instant) {
        if let Clock::Virtual(v) = &*self.runtime.clock {
            v.advance_to(t);
        }
    }

    fn trace_len(&self) -> usize {
        self.core
            .tracer
            .borrow()
            .as_ref()
            .map_or(0, |t| t.entries.len())
    }

    fn entries_since(&self, from: usize) -> Vec<TraceEntry> {
        self.core
            .tracer
            .borrow()
            .as_ref()
            .map(|t| t.entries[from..].to_vec())
            .unwrap_or_default()
    }

    fn check(
        &self,
        contract: &mut Contract,
        start: usize,
        new: &[TraceEntry],
    ) -> Option<StopReason> {
        let ran = self.trace_len() - start;
        let mut probe_index = 0;
        for stop in &mut contract.stops {
            match stop {
                Stop::Sparkles(n) if ran >= *n => return Some(StopReason::Sparkles),
                Stop::Sparkles(_) => {}
                Stop::State(id, state) => {
                    if new
                        .iter()
                        .any(|e| e.tonic == *id && &e.state_after == state)
                    {
                        return Some(StopReason::State(*id));
                    }
                }
                Stop::Sparkle(on, name) => {
                    if new
                        .iter()
                        .any(|e| e.sparkle == *name && on.is_none_or(|id| id == e.tonic))
                    {
                        return Some(StopReason::Sparkle(name));
                    }
                }
                Stop::Probe(probe) => {
                    if probe(&self.core) {
                        return Some(StopReason::Probe(probe_index));
                    }
                    probe_index += 1;
                }
            }
        }
        None
    }

    /// The whole trace since the Distiller started.
    pub fn trace(&self) -> Trace {
        Trace {
            entries: self.entries_since(0),
        }
    }
}

impl Drop for Distiller {
    fn drop(&mut self) {
        self.core.clear();
    }
}
