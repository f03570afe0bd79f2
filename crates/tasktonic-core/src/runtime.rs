//! The runtime of one app: its catalysts, ledger, services, settings, clock and failures.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::address::TonicShared;
use crate::catalyst::{CatalystShared, Core, InfusionOutcome, Names, Parker, ThreadParker};
use crate::clock::Clock;
use crate::error::OpenError;
use crate::ledger::Ledger;
use crate::mailbox::Mailbox;
use crate::{Catalyst, Failure, Settings, TonicId, TonicRef};

pub(crate) struct Runtime {
    /// Unique in the process: which app a catalyst belongs to.
    pub(crate) id: u64,
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
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        Arc::new(Runtime {
            id,
            project,
            settings,
            ledger: Ledger::default(),
            services: Mutex::new(Services::default()),
            clock: Arc::new(clock),
            main: CatalystShared::new(id, "main", true, main_parker),
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
            .or_insert_with(|| CatalystShared::new(self.id, name, false, parker()))
            .clone()
    }

    /// The catalyst called `name` whose parker shares an `S` with its maker; `make` builds both
    /// if the catalyst is new (nothing is registered if it fails).
    pub(crate) fn catalyst_with<S: Send + Sync + 'static, E>(
        self: &Arc<Self>,
        name: &str,
        make: impl FnOnce() -> Result<(Box<dyn Parker>, Arc<S>), E>,
    ) -> Result<(Catalyst, Arc<S>), OpenError<E>> {
        if self.single_catalyst || name == "main" {
            return Err(OpenError::OtherKind(name.to_string()));
        }
        let mut catalysts = self.catalysts.lock();
        if let Some(catalyst) = catalysts.get(name) {
            let shared = catalyst
                .extension
                .clone()
                .and_then(|e| e.downcast::<S>().ok())
                .ok_or_else(|| OpenError::OtherKind(name.to_string()))?;
            let catalyst = Catalyst {
                shared: catalyst.clone(),
            };
            return Ok((catalyst, shared));
        }
        let (parker, shared) = make().map_err(OpenError::Parker)?;
        let extension = shared.clone() as Arc<dyn Any + Send + Sync>;
        let catalyst =
            CatalystShared::with_extension(self.id, name, false, parker, Some(extension));
        catalysts.insert(name.to_string(), catalyst.clone());
        Ok((Catalyst { shared: catalyst }, shared))
    }

    pub(crate) fn plain_catalyst(self: &Arc<Self>, name: &str) -> Arc<CatalystShared> {
        self.catalyst(name, || Box::new(ThreadParker::new()))
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// True once the app stops: no new top-level tonics.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Enter a new tonic under `name` in the ledger (with `handle`, its typed handle, for
    /// look-ups by type) and reserve its slot on `catalyst`: its shared part, and whether the
    /// catalyst's thread must be started for it. `None` if a live tonic has the name.
    pub(crate) fn register(
        &self,
        id: TonicId,
        name: &Arc<str>,
        catalyst: &Arc<CatalystShared>,
        mailbox: Option<Box<Mailbox>>,
        handle: impl FnOnce(&Arc<TonicShared>) -> Box<dyn Any + Send + Sync>,
    ) -> Option<(Arc<TonicShared>, bool)> {
        self.ledger.insert_with(name, || {
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
            let typed = handle(&shared);
            (
                TonicRef {
                    shared: shared.clone(),
                },
                typed,
                (shared, start_thread),
            )
        })
    }

    /// A tonic without a base (a top-level tonic or a service): finished when the app stops.
    pub(crate) fn add_top(&self, tonic: TonicRef) {
        self.top.lock().push(tonic);
    }

    /// Start the thread of `catalyst` (a tonic was reserved a slot on it while it had none;
    /// the thread waits for it).
    pub(crate) fn start_thread(self: &Arc<Self>, catalyst: &Arc<CatalystShared>) -> io::Result<()> {
        let name = catalyst.name.to_string();
        if let Some(e) = unfit_thread_name("catalyst", &name) {
            return Err(e);
        }
        let (clock, names) = (self.clock.clone(), self.clone() as Arc<dyn Names>);
        let on_thread = catalyst.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || Core::run_thread(on_thread, clock, names))?;
        let mut threads = self.threads.lock();
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
        Ok(())
    }

    /// Undo [`register`](Runtime::register) for a tonic that was never placed: out of the
    /// ledger, its slot free again. `thread_failed`: its catalyst's thread, which this spawn
    /// was to start, could not start — if another spawn reserved a slot meanwhile (counting
    /// on that thread), it is tried once more for them, else the catalyst stays without one.
    pub(crate) fn unregister(self: &Arc<Self>, shared: &TonicShared, thread_failed: bool) {
        self.ledger.remove(shared.id);
        let others = {
            let mut slots = shared.catalyst.slots.lock();
            slots.release(shared.slot);
            if thread_failed && slots.live == 0 {
                slots.running = false;
            }
            thread_failed && slots.live > 0
        };
        if others && let Err(e) = self.start_thread(&shared.catalyst) {
            log::error!(
                "catalyst {}: tonics placed on it have no thread, which cannot start: {e}",
                shared.catalyst.name
            );
        }
        // A thread started for this slot waits for it: let it see that it is free (and end,
        // if it hosts nothing else).
        shared.catalyst.notify();
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.main.notify();
        }
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
            t.request_finish();
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

/// A live service: its typed handle (a `Handle<S>`), the tonic, and its bases.
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

/// Why `name` cannot name a thread, if it cannot: std panics on a NUL byte (a thread's name is
/// a C string). `what` says whose name it is, for the error.
pub(crate) fn unfit_thread_name(what: &str, name: &str) -> Option<io::Error> {
    name.contains('\0').then(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} name {name:?} holds a NUL byte"),
        )
    })
}
