//! The timer half of [`Ctx`]: arming, cancelling, pausing, and what an expiry means.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use super::{Ctx, PendingAsk};
use crate::Tonic;
use crate::catalyst::Armed;
use crate::timer::{CatchUp, Period, Timer, TimerEvent, TimerId, TimerKind};

pub(crate) enum Purpose {
    Ask(u64),
    StateTimeout(u64),
    User(Timer),
}

/// One timer of a tonic. Kept small (72 bytes, its slot's generation included): with 1M live
/// timers, most of an arm's cost is touching fresh memory.
pub(crate) struct TimerEntry {
    /// Its node on the catalyst's heap (`Armed`, stored flat so that `generation` fills what would
    /// be its padding); `seq` is `None` while a user timer is paused.
    seq: Option<NonZeroU64>,
    index: u32,
    /// The table's generation for this slot (see `TimerTable`).
    generation: u32,
    /// Armed: the deadline, in ns since the clock's start. Paused: the time left, in ns.
    at: u64,
    purpose: Purpose,
}

impl TimerEntry {
    #[inline]
    fn new(armed: Option<Armed>, at: u64, purpose: Purpose) -> TimerEntry {
        let (index, seq) = armed.map_or((0, None), |a| {
            let (index, seq) = a.parts();
            (index, Some(seq))
        });
        TimerEntry {
            seq,
            index,
            generation: 0,
            at,
            purpose,
        }
    }

    /// Its node on the catalyst's heap; `None` while a user timer is paused.
    fn armed(&self) -> Option<Armed> {
        self.seq.map(|seq| Armed::from_parts(self.index, seq))
    }

    /// Set its heap node; returns the one it had.
    fn replace_armed(&mut self, armed: Option<Armed>) -> Option<Armed> {
        let old = self.armed();
        match armed {
            Some(a) => {
                let (index, seq) = a.parts();
                self.index = index;
                self.seq = Some(seq);
            }
            None => self.seq = None,
        }
        old
    }

    fn paused(&self) -> Option<Duration> {
        match self.seq {
            None => Some(Duration::from_nanos(self.at)),
            Some(_) => None,
        }
    }
}

/// A tonic's timers: a slab (new entries reuse recently freed, cache-hot slots) with keys that
/// carry a generation, so a stale key never reaches a newer timer in the same slot.
#[derive(Default)]
pub(crate) struct TimerTable {
    slots: slab::Slab<TimerEntry>,
    generation: u32,
}

impl TimerTable {
    pub(super) fn split(key: u64) -> (usize, u32) {
        ((key & 0xFFFF_FFFF) as usize, (key >> 32) as u32)
    }

    /// Insert the entry `make` builds from its key (known before the insert, so that the
    /// entry can be armed on the catalyst's heap first and stored once).
    pub(super) fn insert_with(&mut self, make: impl FnOnce(u64) -> TimerEntry) -> u64 {
        self.generation = self.generation.wrapping_add(1);
        let key = (u64::from(self.generation) << 32) | self.slots.vacant_key() as u64;
        let mut entry = make(key);
        entry.generation = self.generation;
        self.slots.insert(entry);
        key
    }

    pub(super) fn get(&self, key: &u64) -> Option<&TimerEntry> {
        let (i, g) = Self::split(*key);
        self.slots.get(i).filter(|e| e.generation == g)
    }

    pub(super) fn get_mut(&mut self, key: &u64) -> Option<&mut TimerEntry> {
        let (i, g) = Self::split(*key);
        self.slots.get_mut(i).filter(|e| e.generation == g)
    }

    pub(super) fn remove(&mut self, key: &u64) -> Option<TimerEntry> {
        let (i, g) = Self::split(*key);
        if self.slots.get(i).is_some_and(|e| e.generation == g) {
            return Some(self.slots.remove(i));
        }
        None
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &TimerEntry)> {
        self.slots
            .iter()
            .map(|(i, e)| ((u64::from(e.generation) << 32) | i as u64, e))
    }
}

/// What happens to a user timer after it fires.
enum Next {
    Remove,
    Keep,
    At(Instant),
    Schedule(crate::Schedule),
}

/// What a fired timer key turned out to be.
pub(crate) enum Fired<T: Tonic> {
    Nothing,
    AskTimeout(PendingAsk<T>),
    StateTimeout(T::State),
    User(TimerEvent),
}

impl<T: Tonic> Ctx<T> {
    pub(super) fn next_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// Arm a new timer entry; returns its key.
    pub(super) fn arm(&mut self, deadline: Instant, purpose: Purpose) -> u64 {
        let (core, shared) = (&self.core, &self.shared);
        self.timers.insert_with(|key| {
            let mut heap = core.timers.borrow_mut();
            // One conversion to ticks (an `Instant` subtraction costs ~80 instructions).
            let at = heap.ticks(deadline);
            TimerEntry::new(
                Some(heap.arm(at, shared.slot, shared.generation, key)),
                at,
                purpose,
            )
        })
    }

    /// A deadline as stored in an entry.
    fn ticks(&self, deadline: Instant) -> u64 {
        self.core.timers.borrow().ticks(deadline)
    }

    /// An entry's stored deadline as an instant.
    fn instant(&self, ticks: u64) -> Instant {
        self.core.timers.borrow().instant(ticks)
    }

    /// Put `key`'s deadline (in ticks) on the catalyst's heap.
    fn arm_heap(&self, key: u64, at: u64) -> Armed {
        self.core
            .timers
            .borrow_mut()
            .arm(at, self.shared.slot, self.shared.generation, key)
    }

    pub(super) fn rearm(&mut self, key: u64, deadline: Instant) {
        let at = self.ticks(deadline);
        let armed = self.arm_heap(key, at);
        if let Some(entry) = self.timers.get_mut(&key) {
            if let Some(old) = entry.replace_armed(Some(armed)) {
                self.core.timers.borrow_mut().cancel(old);
            }
            entry.at = at;
        }
    }

    pub(super) fn disarm(&mut self, key: u64) {
        if let Some(entry) = self.timers.get_mut(&key)
            && let Some(armed) = entry.replace_armed(None)
        {
            self.core.timers.borrow_mut().cancel(armed);
        }
    }

    pub(super) fn cancel_key(&mut self, key: u64) {
        self.disarm(key);
        self.timers.remove(&key);
    }

    /// The first expiry of a user timer, from `now`.
    pub(super) fn first_deadline(&self, timer: &Timer, now: Instant) -> Instant {
        match &timer.kind {
            TimerKind::Once(d) | TimerKind::Repeat(d) | TimerKind::Pausing(d) => now + d.get(),
            TimerKind::Scheduled(s) => self.scheduled_deadline(s, now),
        }
    }

    pub(super) fn scheduled_deadline(&self, schedule: &crate::Schedule, now: Instant) -> Instant {
        let wall = self.runtime.clock.wall(&schedule.zone());
        match schedule.next_after(&wall) {
            Some(next) => {
                let delta = next.timestamp().duration_since(wall.timestamp());
                now + Duration::try_from(delta).unwrap_or(Duration::ZERO)
            }
            None => {
                log::warn!("{}: schedule {schedule:?} has no next time", self.name());
                now + Duration::from_secs(86_400 * 365 * 100)
            }
        }
    }

    /// Arm a timer owned by this tonic; it fires as [`Tonic::on_timer`].
    pub fn timer(&mut self, timer: Timer) -> TimerId {
        let deadline = self.first_deadline(&timer, self.now());
        let key = self.arm(deadline, Purpose::User(timer));
        TimerId(key)
    }

    /// A live user timer's entry.
    fn user_entry(&self, id: TimerId) -> Option<&TimerEntry> {
        self.timers
            .get(&id.0)
            .filter(|e| matches!(e.purpose, Purpose::User(_)))
    }

    fn user_timer(&mut self, id: TimerId) -> Option<&mut Timer> {
        match self.timers.get_mut(&id.0) {
            Some(TimerEntry {
                purpose: Purpose::User(timer),
                ..
            }) => Some(timer),
            _ => None,
        }
    }

    /// Cancel a timer: it will not fire again, not even for an expiry already due. Returns false
    /// if it was not live (fired for the last time, or cancelled).
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        if self.user_entry(id).is_none() {
            return false;
        }
        self.cancel_key(id.0);
        true
    }

    /// Restart a timer from now with its full duration (a watchdog kick). Its old expiry never
    /// fires. Resumes a paused timer. Returns false if it was not live.
    pub fn restart_timer(&mut self, id: TimerId) -> bool {
        let now = self.now();
        let Some(timer) = self.user_timer(id) else {
            return false;
        };
        let timer = timer.clone();
        let deadline = self.first_deadline(&timer, now);
        self.rearm(id.0, deadline);
        true
    }

    /// Change the period (or delay) of a timer and restart it from now. Returns false if it was
    /// not live or is a scheduled timer.
    pub fn change_timer(&mut self, id: TimerId, period: Duration) -> bool {
        let Some(timer) = self.user_timer(id) else {
            return false;
        };
        match &mut timer.kind {
            TimerKind::Once(d) | TimerKind::Pausing(d) => *d = Period::new(period),
            TimerKind::Repeat(d) => *d = Period::new(period.max(Duration::from_micros(1))),
            TimerKind::Scheduled(_) => return false,
        }
        self.restart_timer(id)
    }

    /// Pause a timer, keeping its remaining time. Returns false if it was not running.
    pub fn pause_timer(&mut self, id: TimerId) -> bool {
        let now = self.now();
        let deadline = match self.user_entry(id) {
            Some(e) if e.seq.is_some() => self.instant(e.at),
            _ => return false,
        };
        self.disarm(id.0);
        if let Some(entry) = self.timers.get_mut(&id.0) {
            let left = deadline.saturating_duration_since(now);
            entry.at = crate::clock::nanos(left);
        }
        true
    }

    /// Resume a paused timer for its remaining time. Returns false if it was not paused.
    pub fn resume_timer(&mut self, id: TimerId) -> bool {
        let now = self.now();
        let Some(remaining) = self.user_entry(id).and_then(TimerEntry::paused) else {
            return false;
        };
        let Some(timer) = self.user_timer(id) else {
            return false;
        };
        let deadline = match &timer.kind {
            TimerKind::Scheduled(s) => {
                let s = s.clone();
                self.scheduled_deadline(&s, now)
            }
            _ => now + remaining,
        };
        self.rearm(id.0, deadline);
        true
    }

    /// Time left until the timer fires (its remaining time while paused); `None` if not live.
    pub fn timer_remaining(&self, id: TimerId) -> Option<Duration> {
        let entry = self.user_entry(id)?;
        Some(match entry.paused() {
            Some(left) => left,
            None => self.instant(entry.at).saturating_duration_since(self.now()),
        })
    }

    /// True while the timer is live (running or paused).
    pub fn is_timer_live(&self, id: TimerId) -> bool {
        self.user_entry(id).is_some()
    }

    /// A timer key came due: work out what it means and re-arm repeating timers.
    pub(crate) fn fire(&mut self, key: u64, now: Instant) -> Fired<T> {
        let epoch = self.core.timers.borrow().instant(0);
        let Some(entry) = self.timers.get_mut(&key) else {
            return Fired::Nothing;
        };
        // The heap entry is consumed; a stale expiry (re-armed since) is not ours.
        if entry.replace_armed(None).is_none() {
            return Fired::Nothing;
        }
        let expiry = epoch + Duration::from_nanos(entry.at);
        match &mut entry.purpose {
            Purpose::Ask(id) => {
                let id = *id;
                self.timers.remove(&key);
                match self.asks.remove(&id) {
                    Some(p) => Fired::AskTimeout(p),
                    None => Fired::Nothing,
                }
            }
            Purpose::StateTimeout(epoch) => {
                let epoch = *epoch;
                self.timers.remove(&key);
                match self.machine.timeout_fired(epoch) {
                    Some(state) => Fired::StateTimeout(state),
                    None => Fired::Nothing,
                }
            }
            Purpose::User(timer) => {
                let mut event = TimerEvent {
                    id: TimerId(key),
                    name: timer.event_name(),
                    marker: timer.marker,
                    missed: 0,
                };
                let next = match &timer.kind {
                    TimerKind::Once(_) => Next::Remove,
                    TimerKind::Pausing(period) => {
                        // Not armed: paused with a full period left.
                        entry.at = crate::clock::nanos(period.get());
                        Next::Keep
                    }
                    TimerKind::Repeat(period) => {
                        let period = period.get();
                        let mut next = expiry + period;
                        if timer.catch_up == CatchUp::Coalesce && next <= now {
                            let behind =
                                now.duration_since(expiry).as_nanos() / period.as_nanos().max(1);
                            event.missed = u64::try_from(behind).unwrap_or(u64::MAX);
                            let skip = u32::try_from(behind + 1).unwrap_or(u32::MAX);
                            next = expiry + period.saturating_mul(skip);
                        }
                        Next::At(next)
                    }
                    TimerKind::Scheduled(s) => Next::Schedule((**s).clone()),
                };
                match next {
                    Next::Remove => {
                        self.timers.remove(&key);
                    }
                    Next::Keep => {}
                    Next::At(deadline) => self.rearm(key, deadline),
                    Next::Schedule(s) => {
                        let deadline = self.scheduled_deadline(&s, now.max(expiry));
                        self.rearm(key, deadline);
                    }
                }
                Fired::User(event)
            }
        }
    }

    /// Enter `next` (see `Machine::enter`), cancelling the old state's timeout.
    pub(crate) fn enter_state(&mut self, next: T::State) {
        if let Some(key) = self.machine.enter(next) {
            self.cancel_key(key);
        }
    }

    /// A state change: cancel the state timeout, bump the epoch.
    pub(crate) fn state_changed(&mut self) {
        if let Some(key) = self.machine.new_epoch() {
            self.cancel_key(key);
        }
    }

    /// Cancel every user timer and the state timeout (finishing).
    pub(crate) fn cancel_user_timers(&mut self) {
        let keys: Vec<u64> = self
            .timers
            .iter()
            .filter(|(_, e)| !matches!(e.purpose, Purpose::Ask(_)))
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.cancel_key(key);
        }
        self.machine.forget_timeout();
    }

    /// Drop every timer and pending ask (completion or restart).
    pub(crate) fn clear_all(&mut self) {
        let keys: Vec<u64> = self.timers.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.cancel_key(key);
        }
        self.asks.clear();
        self.machine.forget_timeout();
    }
}
#[cfg(test)]
mod tests {
    /// With 1M live timers, fresh memory is most of an arm's cost (docs/PERFORMANCE.md): a
    /// timer's slot in its tonic's table stays at 72 bytes.
    #[test]
    fn timer_entries_stay_small() {
        assert!(
            size_of::<super::TimerEntry>() <= 72,
            "{}",
            size_of::<super::TimerEntry>()
        );
    }
}
