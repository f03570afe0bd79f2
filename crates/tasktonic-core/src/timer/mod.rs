//! Timers: single-shot, repeating, pausing and scheduled in local time.
//!
//! A timer belongs to the tonic that armed it ([`Ctx::timer`](crate::Ctx::timer)); its expiry
//! runs as a sparkle, [`Tonic::on_timer`](crate::Tonic::on_timer), on that tonic's catalyst.
//! Timers die with their tonic. A cancelled or restarted timer never fires for its old expiry.

mod schedule;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use self::schedule::Schedule;
pub use jiff::civil::Weekday;

/// Identifies a timer of one tonic (unique per catalyst).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({})", self.0)
    }
}

/// One expiry, as passed to [`Tonic::on_timer`](crate::Tonic::on_timer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerEvent {
    /// The timer that fired.
    pub id: TimerId,
    /// Its name (default: `"timer"`).
    pub name: Arc<str>,
    /// The marker it was armed with.
    pub marker: u64,
    /// Repeating timers under [`CatchUp::Coalesce`]: how many periods were skipped because the
    /// catalyst was late (0 when on time).
    pub missed: u64,
}

/// What a repeating timer does after a stall longer than its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Fire once and report the skipped periods in [`TimerEvent::missed`]; the next expiry stays
    /// on the original grid.
    #[default]
    Coalesce,
    /// Fire once for every missed expiry, back to back (TaskTonic's behaviour).
    Burst,
}

/// A timer's delay or period in whole nanoseconds: 8 bytes where a `Duration` takes 16 (with
/// 1M live timers, touching fresh memory is most of an arm's cost). Longer than ~584 years
/// saturates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period(u64);

impl Period {
    pub(crate) fn new(d: Duration) -> Period {
        Period(crate::clock::nanos(d))
    }

    pub(crate) fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum TimerKind {
    Once(Period),
    Repeat(Period),
    Pausing(Period),
    // Boxed: keeps every timer entry small (1M live timers).
    Scheduled(Box<Schedule>),
}

/// A timer to arm with [`Ctx::timer`](crate::Ctx::timer).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasktonic_core::{App, Ctx, Timer, TimerEvent, Tonic};
///
/// struct Ticker {
///     ticks: u32,
/// }
/// impl Tonic for Ticker {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         ctx.timer(Timer::repeat(Duration::from_millis(1)).named("tick"));
///     }
///     fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
///         assert_eq!(&*timer.name, "tick");
///         self.ticks += 1;
///         if self.ticks == 3 {
///             ctx.finish(); // cancels the timer
///         }
///     }
/// }
/// App::new("doc").tonic(Ticker { ticks: 0 }).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Timer {
    pub(crate) kind: TimerKind,
    /// `None`: the default name, `"timer"` (no reference count to touch when a timer is armed
    /// or dropped: two locked instructions per timer).
    pub(crate) name: Option<Arc<str>>,
    pub(crate) marker: u64,
    pub(crate) catch_up: CatchUp,
}

impl Timer {
    fn new(kind: TimerKind) -> Timer {
        Timer {
            kind,
            name: None,
            marker: 0,
            catch_up: CatchUp::default(),
        }
    }

    /// The name its events carry.
    pub(crate) fn event_name(&self) -> Arc<str> {
        static DEFAULT_NAME: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        match &self.name {
            Some(name) => name.clone(),
            None => DEFAULT_NAME.get_or_init(|| "timer".into()).clone(),
        }
    }

    /// Fire once, `after` from now.
    pub fn once(after: Duration) -> Timer {
        Timer::new(TimerKind::Once(Period::new(after)))
    }

    /// Fire every `period`, drift-free: each expiry is the previous expiry plus `period`.
    /// A zero period is raised to 1 µs.
    pub fn repeat(period: Duration) -> Timer {
        Timer::new(TimerKind::Repeat(Period::new(
            period.max(Duration::from_micros(1)),
        )))
    }

    /// Fire after `period`, then pause; [`Ctx::resume_timer`](crate::Ctx::resume_timer) re-arms it
    /// for another `period`.
    pub fn pausing(period: Duration) -> Timer {
        Timer::new(TimerKind::Pausing(Period::new(period)))
    }

    /// Fire at the local times of a [`Schedule`].
    pub fn scheduled(schedule: Schedule) -> Timer {
        Timer::new(TimerKind::Scheduled(Box::new(schedule)))
    }

    /// Name it (shown in [`TimerEvent::name`] and logs).
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Timer {
        self.name = Some(name.into());
        self
    }

    /// Attach a marker, returned in every [`TimerEvent`].
    pub fn marker(mut self, marker: u64) -> Timer {
        self.marker = marker;
        self
    }

    /// Choose the catch-up policy of a repeating timer.
    pub fn catch_up(mut self, policy: CatchUp) -> Timer {
        self.catch_up = policy;
        self
    }
}
