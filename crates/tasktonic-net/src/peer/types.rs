//! [`MsgTypes`]: names for message types (socktools' `MsgtypeStrMixin`).

use std::collections::HashMap;
use std::sync::Arc;

/// A name-to-number table for message types, shared by the senders and handlers of a node.
///
/// # Examples
///
/// ```
/// use tasktonic_net::peer::MsgTypes;
///
/// let types = MsgTypes::new().with("chat", 1).with("ping", 2);
/// assert_eq!(types.id("chat"), Some(1));
/// assert_eq!(types.name(2).as_deref(), Some("ping"));
/// assert_eq!(types.id("nope"), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MsgTypes {
    by_name: HashMap<Arc<str>, u32>,
    by_id: HashMap<u32, Arc<str>>,
}

impl MsgTypes {
    /// An empty table.
    pub fn new() -> MsgTypes {
        MsgTypes::default()
    }

    /// Name type `id` (a name or an id given again replaces the earlier pairing).
    pub fn with(mut self, name: &str, id: u32) -> MsgTypes {
        let name: Arc<str> = Arc::from(name);
        if let Some(old) = self.by_id.insert(id, name.clone()) {
            self.by_name.remove(&old);
        }
        if let Some(old) = self.by_name.insert(name, id) {
            if old != id {
                self.by_id.remove(&old);
            }
        }
        self
    }

    /// The id of `name`.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// The name of `id`.
    pub fn name(&self, id: u32) -> Option<Arc<str>> {
        self.by_id.get(&id).cloned()
    }
}
