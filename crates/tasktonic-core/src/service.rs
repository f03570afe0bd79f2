//! Services: named singleton tonics shared by their bases.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};

use crate::id::readable_type_name;
use crate::{Tonic, TonicId, TonicRef};

/// A named singleton tonic, created on first use by [`Ctx::service`](crate::Ctx::service).
///
/// Every tonic that asks for it becomes one of its *bases*; when its last base completes (or
/// calls [`Ctx::release_service`](crate::Ctx::release_service)), the service finishes.
///
/// # Examples
///
/// ```
/// use tasktonic_core::{App, Ctx, Service, Tonic};
///
/// #[derive(Default)]
/// struct Clock {
///     ticks: u64,
/// }
/// impl Tonic for Clock {
///     type State = ();
/// }
/// impl Service for Clock {
///     fn create() -> Self {
///         Clock::default()
///     }
/// }
///
/// struct User;
/// impl Tonic for User {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let clock = ctx.service::<Clock>();
///         clock.sparkle(|c, _| c.ticks += 1).ok();
///         ctx.finish(); // the last base leaves: the service finishes too
///     }
/// }
/// App::new("doc").tonic(User).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Service: Tonic {
    /// Build the instance (on first use).
    fn create() -> Self;

    /// Its name in the ledger. Default: the type's short name.
    fn service_name() -> String {
        readable_type_name::<Self>()
    }

    /// The catalyst it runs on. Default: `None`, the catalyst of the first tonic that asks.
    fn catalyst() -> Option<String> {
        None
    }
}

pub(crate) struct ServiceEntry {
    pub(crate) handle: Box<dyn Any + Send>,
    pub(crate) tonic: TonicRef,
    pub(crate) bases: HashSet<TonicId>,
}

/// The services of one runtime, by type.
#[derive(Default)]
pub(crate) struct Services {
    pub(crate) entries: HashMap<TypeId, ServiceEntry>,
}

impl Services {
    /// `base` leaves the service `key`: returns the service to finish if it has no base left.
    pub(crate) fn leave(&mut self, key: TypeId, base: TonicId) -> Option<TonicRef> {
        let entry = self.entries.get_mut(&key)?;
        entry.bases.remove(&base);
        if entry.bases.is_empty() {
            return self.entries.remove(&key).map(|e| e.tonic);
        }
        None
    }

    /// The service tonic `id` completed: forget it.
    pub(crate) fn forget(&mut self, id: TonicId) {
        self.entries.retain(|_, e| e.tonic.id() != id);
    }
}
