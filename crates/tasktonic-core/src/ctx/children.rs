//! A tonic's live infusions: a list with O(1) removal by id.
//!
//! A server base can have 10,000 connection infusions; each one that completes is removed from
//! its base. A linear scan made a mass disconnect O(n²) (`Vec::retain` was the top user-space
//! symbol of the selector while 10,000 connections closed).

use std::collections::HashMap;

use crate::{TonicId, TonicRef};

#[derive(Default)]
pub(crate) struct Children {
    list: Vec<TonicRef>,
    /// Where each id sits in `list`.
    at: HashMap<TonicId, usize>,
}

impl Children {
    pub(crate) fn push(&mut self, child: TonicRef) {
        self.at.insert(child.id(), self.list.len());
        self.list.push(child);
    }

    pub(crate) fn contains(&self, id: TonicId) -> bool {
        self.at.contains_key(&id)
    }

    /// Remove `id` (the last child takes its place); false if it was not a child.
    pub(crate) fn remove(&mut self, id: TonicId) -> bool {
        let Some(i) = self.at.remove(&id) else {
            return false;
        };
        self.list.swap_remove(i);
        if let Some(moved) = self.list.get(i) {
            self.at.insert(moved.id(), i);
        }
        true
    }

    pub(crate) fn as_slice(&self) -> &[TonicRef] {
        &self.list
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Take them all out.
    pub(crate) fn take(&mut self) -> Vec<TonicRef> {
        self.at.clear();
        std::mem::take(&mut self.list)
    }
}
