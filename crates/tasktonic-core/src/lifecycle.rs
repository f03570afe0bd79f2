//! [`Lifecycle`]: where a tonic is in its life (base layer: imports nothing).

/// Where a tonic is in its life: starting → sparkling → finishing → completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// Spawned; `on_start` has not run yet.
    Starting,
    /// Running sparkles.
    Sparkling,
    /// `finish()` was called (or it failed): its infusions are finishing.
    Finishing,
    /// Gone: nothing will run for it again.
    Completed,
}

impl Lifecycle {
    pub(crate) fn from_u8(v: u8) -> Lifecycle {
        match v {
            0 => Lifecycle::Starting,
            1 => Lifecycle::Sparkling,
            2 => Lifecycle::Finishing,
            _ => Lifecycle::Completed,
        }
    }
}
