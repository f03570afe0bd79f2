//! Spawning tonics: the [`Infusion`] builder and the [`Restart`] policy.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::mailbox::Overflow;
use crate::place::Place;
use crate::{Catalyst, Ctx, Handle, SpawnError, Tonic};

/// Everything needed to spawn one tonic: what it is built from (`S`: the tonic, or a
/// function of its handle), and its options.
pub(crate) struct SpawnSpec<U: Tonic, S = U> {
    pub(crate) source: S,
    pub(crate) name: Option<String>,
    pub(crate) catalyst: Option<Place>,
    pub(crate) mailbox: Option<(usize, Overflow)>,
    pub(crate) restart: Option<Restart<U>>,
}

impl<U: Tonic, S: Source<U>> SpawnSpec<U, S> {
    pub(crate) fn new(source: S) -> SpawnSpec<U, S> {
        SpawnSpec {
            source,
            name: None,
            catalyst: None,
            mailbox: None,
            restart: None,
        }
    }
}

/// What an infusion is built from: the tonic itself, or — made by
/// [`Ctx::infusion_with`] — a function of the tonic's own handle ([`WithHandle`]).
pub trait Source<U> {
    /// Build the tonic, given the handle it will have.
    fn build(self, handle: &Handle<U>) -> U;
}

impl<U: Tonic> Source<U> for U {
    fn build(self, _handle: &Handle<U>) -> U {
        self
    }
}

/// A tonic built with its own handle (as actix's `Actor::create`), for a tonic that must hand
/// its address to others before it runs — a connection's handle to whoever sends through it.
/// Made by [`Ctx::infusion_with`].
pub struct WithHandle<F>(pub(crate) F);

impl<F> fmt::Debug for WithHandle<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WithHandle(..)")
    }
}

impl<U: Tonic, F: FnOnce(&Handle<U>) -> U> Source<U> for WithHandle<F> {
    fn build(self, handle: &Handle<U>) -> U {
        (self.0)(handle)
    }
}

/// One-for-one restart policy for an infusion: after a panic, the tonic is rebuilt by `factory`
/// in place (same id, same handle, queued sparkles kept), at most `max_restarts` times within
/// `within`; beyond that it fails as usual.
///
/// The failed instance's infusions are finished first, and the fresh instance starts (its
/// `on_start` runs) once they have all completed, so whatever they held — a child's name, a
/// listening port, a connection — is free again when it starts. Sparkles that arrive
/// meanwhile wait and run after `on_start`, in order (none runs inline; a bounded mailbox is
/// left undrained, so it keeps its bound). Asked to finish meanwhile, the fresh instance is
/// never started. The wait lasts as long as the old infusions take: a connection closes
/// gracefully, within its `close_linger`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasktonic_core::{Ctx, Restart, Tonic};
///
/// #[derive(Default)]
/// struct Flaky;
/// impl Tonic for Flaky {
///     type State = ();
/// }
///
/// struct Base;
/// impl Tonic for Base {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let _flaky = ctx
///             .infusion(Flaky)
///             .restart(Restart::new(Flaky::default).intensity(3, Duration::from_secs(10)))
///             .spawn();
///     }
/// }
/// ```
pub struct Restart<U> {
    pub(crate) factory: Box<dyn FnMut() -> U + Send>,
    max_restarts: usize,
    within: Duration,
    history: VecDeque<Instant>,
}

impl<U> fmt::Debug for Restart<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Restart")
            .field("max_restarts", &self.max_restarts)
            .field("within", &self.within)
            .field("restarts", &self.history.len())
            .finish()
    }
}

impl<U> Restart<U> {
    /// Restart with `factory`, at most 3 times within 5 seconds by default.
    pub fn new(factory: impl FnMut() -> U + Send + 'static) -> Restart<U> {
        Restart {
            factory: Box::new(factory),
            max_restarts: 3,
            within: Duration::from_secs(5),
            history: VecDeque::new(),
        }
    }

    /// At most `max_restarts` restarts within any `within` period.
    pub fn intensity(mut self, max_restarts: usize, within: Duration) -> Restart<U> {
        self.max_restarts = max_restarts;
        self.within = within;
        self
    }

    /// Record a restart at `now` if the intensity limit allows it.
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        while let Some(&first) = self.history.front() {
            if now.duration_since(first) >= self.within {
                self.history.pop_front();
            } else {
                break;
            }
        }
        if self.history.len() >= self.max_restarts {
            return false;
        }
        self.history.push_back(now);
        true
    }
}

/// A builder for an infusion (a child tonic) of the calling tonic: name, catalyst, mailbox,
/// restart policy. Made by [`Ctx::infusion`] (or [`Ctx::infusion_with`], `S` then being the
/// function that builds it); [`spawn`](Infusion::spawn) starts it.
pub struct Infusion<'a, T: Tonic, U: Tonic, S = U> {
    pub(crate) ctx: &'a mut Ctx<T>,
    pub(crate) spec: SpawnSpec<U, S>,
}

impl<T: Tonic, U: Tonic, S> fmt::Debug for Infusion<'_, T, U, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Infusion")
            .field("name", &self.spec.name)
            .field("catalyst", &self.spec.catalyst)
            .finish()
    }
}

impl<'a, T: Tonic, U: Tonic, S: Source<U>> Infusion<'a, T, U, S> {
    /// A unique name in the ledger (default: `Type#id`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = Some(name.into());
        self
    }

    /// Run it on the catalyst called `catalyst` (created and started on demand) instead of
    /// the base's.
    pub fn catalyst(mut self, catalyst: impl Into<String>) -> Self {
        self.spec.catalyst = Some(Place::Named(catalyst.into()));
        self
    }

    /// Run it on `catalyst` instead of the base's.
    pub fn on(mut self, catalyst: &Catalyst) -> Self {
        self.spec.catalyst = Some(Place::On(catalyst.clone()));
        self
    }

    /// Bound its mailbox to `capacity` queued sparkles, with an overflow policy.
    pub fn mailbox(mut self, capacity: usize, overflow: Overflow) -> Self {
        self.spec.mailbox = Some((capacity, overflow));
        self
    }

    /// Restart it after a panic, under this policy.
    pub fn restart(mut self, policy: Restart<U>) -> Self {
        self.spec.restart = Some(policy);
        self
    }

    /// Spawn it. It starts (runs `on_start`) on its catalyst before any sparkle sent to it.
    ///
    /// # Errors
    ///
    /// Each hands the tonic (or the function that would have built it) back:
    /// [`SpawnError::NameTaken`] if a live tonic has the name; [`SpawnError::NoThread`] if its
    /// catalyst has no thread and none can be started; [`SpawnError::OtherApp`] if the
    /// [`Catalyst`] given to [`on`](Infusion::on) belongs to another app. (Infusions are
    /// accepted while the app stops; one spawned by a finishing base is finished at once.)
    ///
    /// # Panics
    ///
    /// If the function given to [`Ctx::infusion_with`] panics (passed on; nothing of the
    /// infusion is left behind).
    pub fn spawn(self) -> Result<Handle<U>, SpawnError<S>> {
        self.ctx.spawn_spec(self.spec)
    }
}
