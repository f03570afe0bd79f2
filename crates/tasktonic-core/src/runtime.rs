//! The runtime of one app: its catalysts, ledger, services, settings, clock and failures.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::catalyst::{
    AnyCell, CatalystShared, Core, InfusionOutcome, Names, Parker, ThreadParker, Work,
};
use crate::cell::TonicCell;
use crate::clock::Clock;
use crate::handle::TonicShared;
use crate::id::readable_type_name;
use crate::infusion::SpawnSpec;
use crate::ledger::Ledger;
use crate::mailbox::Mailbox;
use crate::service::Services;
use crate::{Ctx, Failure, Handle, Settings, SpawnError, Tonic, TonicId, TonicRef};

pub(crate) struct Runtime {
    pub(crate) project: String,
    pub(crate) settings: Settings,
    pub(crate) ledger: Ledger,
    pub(crate) services: Mutex<Services>,
    pub(crate) clock: Arc<Clock>,
    pub(crate) main: Arc<CatalystShared>,
    catalysts: Mutex<HashMap<String, Arc<CatalystShared>>>,
    /// Every catalyst name resolves to `main` (the Distiller).
    single_catalyst: bool,
    live: AtomicUsize,
    stopped: AtomicBool,
    failures: Mutex<Vec<Failure>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Tonics without a base (top-level tonics and services), for `stop`.
    top: Mutex<Vec<TonicRef>>,
}

/// What a completed tonic leaves behind for the runtime to clean up.
pub(crate) struct Retirement {
    pub(crate) shared: Arc<TonicShared>,
    pub(crate) base: Option<TonicRef>,
    pub(crate) failure: Option<Failure>,
    pub(crate) services: Vec<TypeId>,
}

impl Runtime {
    pub(crate) fn new(
        project: String,
        settings: Settings,
        clock: Clock,
        main_parker: Box<dyn Parker>,
        single_catalyst: bool,
    ) -> Arc<Runtime> {
        Arc::new(Runtime {
            project,
            settings,
            ledger: Ledger::default(),
            services: Mutex::new(Services::default()),
            clock: Arc::new(clock),
            main: CatalystShared::new("main", true, main_parker),
            catalysts: Mutex::new(HashMap::new()),
            single_catalyst,
            live: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            top: Mutex::new(Vec::new()),
        })
    }

    /// The catalyst called `name`, created (with `parker`, or a thread parker) if new.
    pub(crate) fn catalyst(
        self: &Arc<Self>,
        name: &str,
        parker: impl FnOnce() -> Box<dyn Parker>,
    ) -> Arc<CatalystShared> {
        if self.single_catalyst || name == "main" {
            return self.main.clone();
        }
        self.catalysts
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| CatalystShared::new(name, false, parker()))
            .clone()
    }

    pub(crate) fn plain_catalyst(self: &Arc<Self>, name: &str) -> Arc<CatalystShared> {
        self.catalyst(name, || Box::new(ThreadParker::new()))
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Spawn a new top-level tonic (from the `App` or the Distiller): refused once the app is
    /// stopping. Infusions and services are not refused: a finishing tonic may still need them,
    /// and an infusion of a finishing base is finished at once.
    pub(crate) fn spawn_top<U: Tonic>(
        self: &Arc<Self>,
        spec: SpawnSpec<U>,
        default: &Arc<CatalystShared>,
    ) -> Result<Handle<U>, SpawnError<U>> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(SpawnError::Stopped(spec.tonic));
        }
        self.spawn(spec, None, default)
    }

    /// Spawn a tonic on `spec.catalyst` (or `default`), as an infusion of `base`.
    pub(crate) fn spawn<U: Tonic>(
        self: &Arc<Self>,
        spec: SpawnSpec<U>,
        base: Option<TonicRef>,
        default: &Arc<CatalystShared>,
    ) -> Result<Handle<U>, SpawnError<U>> {
        let catalyst = match &spec.catalyst {
            Some(name) => self.plain_catalyst(name),
            None => default.clone(),
        };
        let id = TonicId::next();
        let name: Arc<str> = match &spec.name {
            Some(n) => n.as_str().into(),
            None => {
                let auto = format!("{}{}", readable_type_name::<U>(), id);
                if self.ledger.is_taken(&auto) {
                    format!("{auto}{id}").into()
                } else {
                    auto.into()
                }
            }
        };
        let mailbox = spec
            .mailbox
            .map(|(cap, overflow)| Box::new(Mailbox::new(cap, overflow)));
        let inserted = self.ledger.insert_with(&name, || {
            let mut slots = catalyst.slots.lock();
            let slot = slots.reserve();
            let start_thread = !catalyst.is_main && !slots.running;
            if start_thread {
                slots.running = true;
            }
            drop(slots);
            self.live.fetch_add(1, Ordering::SeqCst);
            let shared = Arc::new(TonicShared::new(
                id,
                name.clone(),
                slot,
                catalyst.clone(),
                mailbox,
            ));
            (Handle::<U>::from_shared(shared), start_thread)
        });
        let Some((handle, start_thread)) = inserted else {
            return Err(SpawnError::NameTaken(name.to_string(), spec.tonic));
        };
        if base.is_none() {
            self.top.lock().push(handle.tonic_ref());
        }
        let shared = handle.shared.clone();
        let SpawnSpec { tonic, restart, .. } = spec;
        let runtime = self.clone();
        let build = Box::new(move |core: &std::rc::Rc<Core>| {
            let ctx = Ctx::new(core.clone(), runtime, shared, base, restart);
            Box::new(TonicCell::new(tonic, ctx)) as Box<dyn AnyCell>
        });
        let envelope = handle.shared.envelope("spawn", Work::Spawn(build));
        catalyst.deliver(envelope);
        if start_thread {
            self.start_thread(catalyst);
        }
        Ok(handle)
    }

    fn start_thread(self: &Arc<Self>, catalyst: Arc<CatalystShared>) {
        let (clock, names) = (self.clock.clone(), self.clone() as Arc<dyn Names>);
        let name = catalyst.name.to_string();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || Core::run_thread(catalyst, clock, names))
            .unwrap_or_else(|e| panic!("cannot start catalyst thread {name}: {e}"));
        let mut threads = self.threads.lock();
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }

    /// Clean up after a completed tonic: ledger, services, base, failures, live count.
    pub(crate) fn retire(&self, r: Retirement) {
        let id = r.shared.id;
        self.ledger.remove(id);
        let to_finish: Vec<TonicRef> = {
            let mut services = self.services.lock();
            services.forget(id);
            r.services
                .iter()
                .filter_map(|key| services.leave(*key, id))
                .collect()
        };
        for service in to_finish {
            // Not overtaking what its departed bases sent it (see `finish_after_arrived`).
            service.shared.finish_after_arrived();
        }
        let me = TonicRef { shared: r.shared };
        match (&r.base, r.failure) {
            (Some(base), failure) => {
                let outcome = match failure {
                    Some(f) => InfusionOutcome::Failed(Box::new(f)),
                    None => InfusionOutcome::Completed,
                };
                if !base.shared.push_infusion_event(&me.shared, outcome) {
                    log::debug!("base of {} {} completed first", me.id(), me.name());
                }
            }
            (None, Some(failure)) => self.report(failure),
            (None, None) => {}
        }
        if r.base.is_none() {
            self.top.lock().retain(|t| t.id() != id);
        }
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.main.notify();
        }
    }

    pub(crate) fn report(&self, failure: Failure) {
        log::error!("unhandled failure: {failure}");
        self.failures.lock().push(failure);
    }

    pub(crate) fn take_failures(&self) -> Vec<Failure> {
        std::mem::take(&mut *self.failures.lock())
    }

    /// Stop the app: no new tonics; every top-level tonic (and so everything) finishes.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Every tonic without a base is here, services included.
        let top: Vec<TonicRef> = self.top.lock().clone();
        for t in top {
            t.finish();
        }
    }

    pub(crate) fn join_threads(&self) {
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Names for Runtime {
    fn name_of(&self, id: TonicId) -> Option<String> {
        self.ledger.get(id).map(|t| t.name().to_string())
    }
}
