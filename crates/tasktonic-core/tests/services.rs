//! Services: one instance under concurrent first use, finished with its last base.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use crossbeam_channel::Sender;
use tasktonic_core::{App, Ctx, Lifecycle, Service, Tonic, TonicId, TonicRef};
use util::{channel, recv, run_bounded};

static CREATED: AtomicUsize = AtomicUsize::new(0);

struct Registry {
    users: usize,
}

impl Tonic for Registry {
    type State = ();
    fn on_finished(&mut self, _ctx: &mut Ctx<Self>) {
        assert_eq!(self.users, 2);
    }
}

impl Service for Registry {
    fn create() -> Self {
        CREATED.fetch_add(1, Ordering::SeqCst);
        Registry { users: 0 }
    }
}

struct User {
    barrier: Arc<Barrier>,
    out: Sender<(TonicId, String)>,
}

impl Tonic for User {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        // Both users ask for the service at the same moment, from two catalysts.
        self.barrier.wait();
        let registry = ctx.service::<Registry>();
        registry
            .sparkle(|r, _| r.users += 1)
            .expect("service alive");
        self.out
            .send((registry.id(), registry.name().to_string()))
            .expect("test alive");
        // Neither leaves before both are bases (else the first to leave would finish it).
        self.barrier.wait();
        ctx.finish();
    }
}

struct Root {
    barrier: Arc<Barrier>,
    out: Sender<(TonicId, String)>,
    service: Sender<TonicRef>,
}

impl Tonic for Root {
    type State = ();
    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        for catalyst in ["left", "right"] {
            let user = User {
                barrier: self.barrier.clone(),
                out: self.out.clone(),
            };
            ctx.infusion(user)
                .catalyst(catalyst)
                .spawn()
                .expect("spawn");
        }
    }
    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, _: &TonicRef) {
        if ctx.infusions().is_empty() {
            if let Some(s) = ctx.ledger().by_name("Registry") {
                self.service.send(s).ok();
            }
            ctx.finish();
        }
    }
}

#[test]
fn one_instance_under_concurrent_first_use_and_finished_with_its_last_base() {
    let (tx, rx) = channel();
    let (stx, srx) = channel();
    run_bounded(App::new("t").tonic(Root {
        barrier: Arc::new(Barrier::new(2)),
        out: tx,
        service: stx,
    }))
    .expect("clean run: the service finished when its bases left");
    let a = recv(&rx);
    let b = recv(&rx);
    assert_eq!(a, b, "both users got the same service");
    assert_eq!(a.1, "Registry");
    assert_eq!(CREATED.load(Ordering::SeqCst), 1);
    // If it was still in the ledger when the root looked, it has completed by now.
    if let Ok(service) = srx.try_recv() {
        assert_eq!(service.lifecycle(), Lifecycle::Completed);
    }
}

struct Cache;
impl Tonic for Cache {
    type State = ();
}
impl Service for Cache {
    fn create() -> Self {
        Cache
    }
    fn catalyst() -> Option<String> {
        Some("cache".into())
    }
}

#[test]
fn release_service_finishes_it_while_the_base_lives_on() {
    struct Leaver {
        out: Sender<Lifecycle>,
    }
    impl Tonic for Leaver {
        type State = ();
        fn on_start(&mut self, ctx: &mut Ctx<Self>) {
            let cache = ctx.service::<Cache>();
            assert_eq!(cache.tonic_ref().catalyst(), "cache");
            ctx.release_service::<Cache>();
            // The cache finishes on its own; ask it something to see it go.
            let out = self.out.clone();
            let me = ctx.handle();
            std::thread::spawn(move || {
                let r = cache.ask_blocking(util::LIMIT, |_, ctx| ctx.lifecycle());
                // Either it answered while finishing, or it had already completed.
                let seen = r.unwrap_or(Lifecycle::Completed);
                out.send(seen).ok();
                me.finish().ok();
            });
        }
    }
    let (tx, rx) = channel();
    run_bounded(App::new("t").tonic(Leaver { out: tx })).expect("clean run");
    let seen = recv(&rx);
    assert!(seen >= Lifecycle::Sparkling);
}
