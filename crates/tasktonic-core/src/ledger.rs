//! The [`Ledger`]: every live tonic by id and by name.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::{TonicId, TonicRef};

struct Entry {
    tonic: TonicRef,
    /// The typed `Handle<T>`, for look-ups by type.
    handle: Box<dyn Any + Send + Sync>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<TonicId, Entry>,
    by_name: HashMap<Arc<str>, TonicId>,
}

/// The registry of live tonics: id and name → handle. Names are unique among live tonics; a
/// tonic leaves the ledger when it completes, and its id is never given to another.
///
/// # Examples
///
/// ```
/// use tasktonic_core::{App, Ctx, Tonic};
///
/// struct Lookup;
/// impl Tonic for Lookup {
///     type State = ();
///     fn on_start(&mut self, ctx: &mut Ctx<Self>) {
///         let me = ctx.ledger().lookup::<Lookup>(ctx.name()).expect("in the ledger");
///         assert_eq!(me.id(), ctx.id());
///         ctx.finish();
///     }
/// }
/// App::new("doc").tonic(Lookup).run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Ledger {
    inner: RwLock<Inner>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger").field("len", &self.len()).finish()
    }
}

impl Ledger {
    /// Insert under a unique name; `make` builds the entry (the tonic, its typed handle for
    /// look-ups by type, and what the caller wants back) only if the name is free.
    pub(crate) fn insert_with<R>(
        &self,
        name: &Arc<str>,
        make: impl FnOnce() -> (TonicRef, Box<dyn Any + Send + Sync>, R),
    ) -> Option<R> {
        let mut inner = self.inner.write();
        if inner.by_name.contains_key(name) {
            return None;
        }
        let (tonic, handle, extra) = make();
        let id = tonic.id();
        inner.by_name.insert(name.clone(), id);
        inner.by_id.insert(id, Entry { tonic, handle });
        Some(extra)
    }

    pub(crate) fn remove(&self, id: TonicId) {
        let mut inner = self.inner.write();
        if let Some(entry) = inner.by_id.remove(&id) {
            inner.by_name.remove(entry.tonic.name());
        }
    }

    pub(crate) fn is_taken(&self, name: &str) -> bool {
        self.inner.read().by_name.contains_key(name)
    }

    /// The typed handle stored for the live tonic named `name`, if it is an `H` (the public,
    /// typed form is [`Ledger::lookup`], beside `Handle`).
    pub(crate) fn typed<H: Any + Clone>(&self, name: &str) -> Option<H> {
        let inner = self.inner.read();
        let id = inner.by_name.get(name)?;
        inner.by_id.get(id)?.handle.downcast_ref::<H>().cloned()
    }

    /// The live tonic named `name`.
    pub fn by_name(&self, name: &str) -> Option<TonicRef> {
        let inner = self.inner.read();
        let id = inner.by_name.get(name)?;
        inner.by_id.get(id).map(|e| e.tonic.clone())
    }

    /// The live tonic with this id.
    pub fn get(&self, id: TonicId) -> Option<TonicRef> {
        self.inner.read().by_id.get(&id).map(|e| e.tonic.clone())
    }

    /// How many tonics are live.
    pub fn len(&self) -> usize {
        self.inner.read().by_id.len()
    }

    /// True when no tonic is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of all live tonics, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .read()
            .by_name
            .keys()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        names
    }
}
