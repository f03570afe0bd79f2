//! Time as the runtime sees it: real, or virtual under the [`Distiller`](crate::Distiller).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::{Timestamp, Zoned, tz::TimeZone};

/// `d` in whole nanoseconds, saturating (u64 ns reach 584 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The runtime's clock.
#[derive(Debug)]
pub(crate) enum Clock {
    Real { start: Instant },
    Virtual(VirtualClock),
}

/// A clock that only moves when the Distiller advances it.
#[derive(Debug)]
pub(crate) struct VirtualClock {
    start: Instant,
    wall_start: Timestamp,
    elapsed_ns: AtomicU64,
}

impl VirtualClock {
    pub(crate) fn new(wall_start: Timestamp) -> VirtualClock {
        VirtualClock {
            start: Instant::now(),
            wall_start,
            elapsed_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_ns.load(Ordering::Acquire))
    }

    /// Move the clock forward to `t` (never backwards).
    pub(crate) fn advance_to(&self, t: Instant) {
        let ns = nanos(t.saturating_duration_since(self.start));
        self.elapsed_ns.fetch_max(ns, Ordering::AcqRel);
    }
}

impl Clock {
    /// When the clock started: no deadline lies before it.
    pub(crate) fn start(&self) -> Instant {
        match self {
            Clock::Real { start } => *start,
            Clock::Virtual(v) => v.start,
        }
    }

    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Real { .. } => Instant::now(),
            Clock::Virtual(v) => v.start + v.elapsed(),
        }
    }

    pub(crate) fn real() -> Clock {
        Clock::Real {
            start: Instant::now(),
        }
    }

    /// Time since the runtime started (virtual time under the Distiller).
    pub(crate) fn elapsed(&self) -> Duration {
        match self {
            Clock::Real { start } => start.elapsed(),
            Clock::Virtual(v) => v.elapsed(),
        }
    }

    /// Local wall-clock time in `tz` (virtual: the start time plus virtual elapsed time).
    pub(crate) fn wall(&self, tz: &TimeZone) -> Zoned {
        let ts = match self {
            Clock::Real { .. } => Timestamp::now(),
            Clock::Virtual(v) => {
                let elapsed = jiff::SignedDuration::try_from(v.elapsed())
                    .unwrap_or(jiff::SignedDuration::MAX);
                v.wall_start.saturating_add(elapsed).unwrap_or(v.wall_start)
            }
        };
        ts.to_zoned(tz.clone())
    }
}
