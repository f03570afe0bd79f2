//! [`Catalyst`]: a catalyst as the API hands it out, typed, so that placing a tonic on it
//! does not name it again (a misspelt name would start a thread of its own). Names stay, for
//! logs and look-up.

use std::fmt;
use std::sync::Arc;

use crate::catalyst::CatalystShared;

/// A catalyst — a thread that runs tonics — to place infusions on
/// ([`Infusion::on`](crate::Infusion::on)). Got from [`Ctx::this_catalyst`](crate::Ctx::this_catalyst)
/// or [`Ctx::catalyst_named`](crate::Ctx::catalyst_named); cheap to clone, `Send` and `Sync`.
///
/// # Examples
///
/// ```
/// use tasktonic_core::{App, Ctx, Tonic};
///
/// struct Worker;
/// impl Tonic for Worker {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         assert_eq!(ctx.catalyst(), "workers");
///         ctx.finish();
///     }
/// }
///
/// struct Boss;
/// impl Tonic for Boss {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let workers = ctx.catalyst_named("workers");
///         for _ in 0..3 {
///             ctx.infusion(Worker).on(&workers).spawn().expect("spawned");
///         }
///         ctx.finish(); // completes once the workers have
///     }
/// }
/// App::new("doc").tonic(Boss).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Catalyst {
    pub(crate) shared: Arc<CatalystShared>,
}

impl Catalyst {
    /// Its name (for logs, and to look it up again).
    pub fn name(&self) -> &str {
        &self.shared.name
    }
}

impl fmt::Debug for Catalyst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Catalyst({})", self.shared.name)
    }
}

impl PartialEq for Catalyst {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for Catalyst {}

/// Where an infusion is placed: a catalyst by name (created on first use), or one already
/// in hand.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    Named(String),
    On(Catalyst),
}
