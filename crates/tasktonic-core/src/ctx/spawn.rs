//! Spawning: a tonic entered in the ledger, its cell built on its catalyst and started there.
//! (Generic over the tonic's type, so it lives with the cell it builds; what is not — names,
//! slots, threads — is the runtime's.)

use std::rc::Rc;
use std::sync::Arc;

use super::{Ctx, Source, SpawnSpec, TonicCell};
use crate::catalyst::{AnyCell, CatalystShared, Core, Work};
use crate::id::readable_type_name;
use crate::mailbox::Mailbox;
use crate::place::Place;
use crate::runtime::{Runtime, unfit_thread_name};
use crate::{Handle, SpawnError, Tonic, TonicId, TonicRef};

/// Spawn a new top-level tonic (from the `App` or the Distiller): refused once the app is
/// stopping. Infusions and services are not refused: a finishing tonic may still need them,
/// and an infusion of a finishing base is finished at once.
pub(crate) fn spawn_top<U: Tonic>(
    runtime: &Arc<Runtime>,
    spec: SpawnSpec<U>,
    default: &Arc<CatalystShared>,
) -> Result<Handle<U>, SpawnError<U>> {
    if runtime.is_stopped() {
        return Err(SpawnError::Stopped(spec.source));
    }
    spawn(runtime, spec, None, default)
}

/// Spawn a tonic on `spec.catalyst` (or `default`), as an infusion of `base`.
pub(crate) fn spawn<U: Tonic, S: Source<U>>(
    runtime: &Arc<Runtime>,
    spec: SpawnSpec<U, S>,
    base: Option<TonicRef>,
    default: &Arc<CatalystShared>,
) -> Result<Handle<U>, SpawnError<S>> {
    let catalyst = match &spec.catalyst {
        // Refused before anything is made for it.
        Some(Place::Named(name)) if let Some(e) = unfit_thread_name("catalyst", name) => {
            return Err(SpawnError::NoThread(e.to_string(), spec.source));
        }
        Some(Place::Named(name)) => runtime.plain_catalyst(name),
        Some(Place::On(catalyst)) if catalyst.shared.app != runtime.id => {
            return Err(SpawnError::OtherApp(
                catalyst.name().to_string(),
                spec.source,
            ));
        }
        Some(Place::On(catalyst)) => catalyst.shared.clone(),
        None => default.clone(),
    };
    let id = TonicId::next();
    let name: Arc<str> = match &spec.name {
        Some(n) => n.as_str().into(),
        None => {
            let auto = format!("{}{}", readable_type_name::<U>(), id);
            if runtime.ledger.is_taken(&auto) {
                format!("{auto}{id}").into()
            } else {
                auto.into()
            }
        }
    };
    let mailbox = spec
        .mailbox
        .map(|(cap, overflow)| Box::new(Mailbox::new(cap, overflow)));
    let registered = runtime.register(id, &name, &catalyst, mailbox, |shared| {
        Box::new(Handle::<U>::from_shared(shared.clone()))
    });
    let Some((shared, start_thread)) = registered else {
        return Err(SpawnError::NameTaken(name.to_string(), spec.source));
    };
    // Its catalyst's thread first (it waits for the reserved slot's spawn): if there can be
    // none, nothing of the tonic is left behind.
    if start_thread && let Err(e) = runtime.start_thread(&catalyst) {
        runtime.unregister(&shared, true);
        let why = format!("catalyst {}: {e}", catalyst.name);
        return Err(SpawnError::NoThread(why, spec.source));
    }
    let handle = Handle::<U>::from_shared(shared.clone());
    let SpawnSpec {
        source, restart, ..
    } = spec;
    // A constructor that panics (`infusion_with`) leaves nothing behind either.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.build(&handle)));
    let tonic = match built {
        Ok(tonic) => tonic,
        Err(payload) => {
            runtime.unregister(&shared, false);
            std::panic::resume_unwind(payload);
        }
    };
    if base.is_none() {
        runtime.add_top(handle.tonic_ref());
    }
    let app = runtime.clone();
    let build = Box::new(move |core: &Rc<Core>| {
        let ctx = Ctx::new(core.clone(), app, shared, base, restart);
        Box::new(TonicCell::new(tonic, ctx)) as Box<dyn AnyCell>
    });
    let envelope = handle.shared.envelope("spawn", Work::Spawn(build));
    catalyst.deliver(envelope);
    Ok(handle)
}
