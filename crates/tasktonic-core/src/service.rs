//! Services: named singleton tonics shared by their bases.

use std::any::TypeId;

use crate::ctx::{SpawnSpec, spawn};
use crate::id::readable_type_name;
use crate::runtime::ServiceEntry;
use crate::{Ctx, Handle, Lifecycle, SpawnError, Tonic};

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

/// Services as a tonic uses them (here, beside the trait; the registry is the runtime's).
impl<T: Tonic> Ctx<T> {
    /// The service `S`, created on first use; this tonic becomes one of its bases.
    ///
    /// Concurrent first use from several catalysts creates exactly one instance.
    ///
    /// # Panics
    ///
    /// If the service's own catalyst ([`Service::catalyst`]) has no thread and none can be
    /// started (the OS refuses one, or the name holds a NUL byte).
    pub fn service<S: Service>(&mut self) -> Handle<S> {
        let key = TypeId::of::<S>();
        let me = self.id();
        let runtime = self.runtime().clone();
        let mut services = runtime.services.lock();
        if let Some(entry) = services.entries.get_mut(&key)
            && entry.tonic.lifecycle() < Lifecycle::Finishing
            && let Some(handle) = entry.handle.downcast_ref::<Handle<S>>()
        {
            entry.bases.insert(me);
            let handle = handle.clone();
            drop(services);
            self.note_service(key);
            return handle;
        }
        let catalyst = match S::catalyst() {
            Some(name) => runtime.plain_catalyst(&name),
            None => self.this_catalyst().shared,
        };
        let mut spec = SpawnSpec::new(S::create());
        spec.name = Some(S::service_name());
        let handle = match spawn(&runtime, spec, None, &catalyst) {
            Ok(h) => h,
            // An earlier instance is still finishing under the name: use an automatic one.
            Err(SpawnError::NameTaken(_, service)) => {
                match spawn(&runtime, SpawnSpec::new(service), None, &catalyst) {
                    Ok(h) => h,
                    Err(e) => panic!("service {}: {e}", S::service_name()),
                }
            }
            Err(e) => panic!("service {}: {e}", S::service_name()),
        };
        services.entries.insert(
            key,
            ServiceEntry {
                handle: Box::new(handle.clone()),
                tonic: handle.tonic_ref(),
                bases: std::iter::once(me).collect(),
            },
        );
        drop(services);
        self.note_service(key);
        handle
    }

    /// Stop being a base of service `S`; it finishes if this was its last base.
    pub fn release_service<S: Service>(&mut self) {
        let key = TypeId::of::<S>();
        self.forget_service(key);
        let done = self.runtime().services.lock().leave(key, self.id());
        if let Some(service) = done {
            service.request_finish();
        }
    }
}
