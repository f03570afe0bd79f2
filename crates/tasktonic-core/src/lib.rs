//! The TaskTonic runtime: tonics (actors) on catalysts (threads), talking through sparkles.
//!
//! A [`Tonic`] is a plain struct with private state. It lives on a catalyst — one OS thread —
//! and is touched only by its own *sparkles*: work orders sent through a [`Handle`] and run one at
//! a time, to completion, in FIFO order per sender. Behaviour over time is a per-tonic state
//! machine (`type State`, [`Ctx::to_state`]) with [timers](Timer). Tonics spawn *infusions*
//! (children) and share *services* ([`Service`]); finishing a tonic finishes its infusions first.
//! A panic in a sparkle fails that tonic only. The [`App`] runs it all; the [`Distiller`] runs it
//! under a virtual clock for tests.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tasktonic_core::{App, Ctx, Handle, Receive, Tonic};
//!
//! struct Ponger;
//! impl Tonic for Ponger {
//!     type State = ();
//! }
//!
//! struct Ping(u32, Handle<Pinger>);
//! impl Receive<Ping> for Ponger {
//!     fn receive(&mut self, _ctx: &mut Ctx<Self>, Ping(n, back): Ping) {
//!         back.send(Pong(n)).ok();
//!     }
//! }
//!
//! struct Pinger {
//!     ponger: Option<Handle<Ponger>>,
//! }
//! struct Pong(u32);
//! impl Tonic for Pinger {
//!     type State = ();
//!     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
//!         let ponger = ctx.infusion(Ponger).catalyst("pong").spawn().expect("spawned");
//!         ponger.send(Ping(1, ctx.handle())).ok();
//!         self.ponger = Some(ponger);
//!     }
//! }
//! impl Receive<Pong> for Pinger {
//!     fn receive(&mut self, ctx: &mut Ctx<Self>, Pong(n): Pong) {
//!         if n < 3 {
//!             if let Some(p) = &self.ponger {
//!                 p.send(Ping(n + 1, ctx.handle())).ok();
//!             }
//!         } else {
//!             ctx.finish(); // finishes the ponger first
//!         }
//!     }
//! }
//!
//! App::new("ping-pong").tonic(Pinger { ponger: None }).run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod app;
mod catalyst;
mod clock;
mod ctx;
mod distiller;
mod error;
pub mod extend;
mod handle;
mod id;
mod ledger;
mod lifecycle;
pub mod logging;
mod mailbox;
mod place;
mod runtime;
mod service;
mod settings;
mod state;
mod timer;
mod tonic;
mod trace;

pub use crate::address::TonicRef;
pub use crate::app::RunningApp;
pub use crate::app::{App, Stopper};
pub use crate::ctx::Ctx;
pub use crate::ctx::{Infusion, Restart, Source, WithHandle};
pub use crate::distiller::{Contract, Distiller, Outcome, StopReason};
pub use crate::error::{AskError, Failure, RunError, SendError, SpawnError};
pub use crate::handle::Handle;
pub use crate::id::TonicId;
pub use crate::ledger::Ledger;
pub use crate::lifecycle::Lifecycle;
pub use crate::mailbox::Overflow;
pub use crate::place::Catalyst;
pub use crate::service::Service;
pub use crate::settings::Settings;
pub use crate::timer::{CatchUp, Schedule, Timer, TimerEvent, TimerId, Weekday};
pub use crate::tonic::{FailureAction, Receive, State, Tonic};
pub use crate::trace::{Trace, TraceEntry};

/// Re-export of `jiff`'s time zone, for [`Schedule::in_zone`].
pub use jiff::tz::TimeZone;

/// The names most programs need: `use tasktonic_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        App, AskError, Catalyst, CatchUp, Contract, Ctx, Distiller, Failure, FailureAction, Handle,
        Lifecycle, Overflow, Receive, Restart, Schedule, SendError, Service, StopReason, Stopper,
        Timer, TimerEvent, TimerId, Tonic, TonicId, TonicRef,
    };
}
