//! A tonic's live infusions: a list with O(1) removal.
//!
//! A server base can have 10,000 connection infusions; each one that completes is removed from
//! its base. A linear scan made a mass disconnect O(n²) (`Vec::retain` was the top user-space
//! symbol of the selector while 10,000 connections closed). Each infusion records its own
//! position in the list (a field of its shared state, so no map: every byte of it is paid per
//! connection), and removal swaps the last one into the gap.

use std::sync::atomic::Ordering;

use crate::TonicRef;

#[derive(Default)]
pub(crate) struct Children {
    list: Vec<TonicRef>,
}

impl Children {
    pub(crate) fn push(&mut self, child: TonicRef) {
        Self::place(&child, self.list.len());
        self.list.push(child);
    }

    /// Only the base's thread touches a child's position (Relaxed is enough).
    fn place(child: &TonicRef, at: usize) {
        let at = u32::try_from(at).expect("fewer than 2^32 infusions");
        child.shared.place.store(at, Ordering::Relaxed);
    }

    fn position(&self, child: &TonicRef) -> Option<usize> {
        let at = child.shared.place.load(Ordering::Relaxed) as usize;
        self.list
            .get(at)
            .filter(|c| c.id() == child.id())
            .map(|_| at)
    }

    pub(crate) fn contains(&self, child: &TonicRef) -> bool {
        self.position(child).is_some()
    }

    /// Remove `child` (the last one takes its place); false if it was not a child.
    pub(crate) fn remove(&mut self, child: &TonicRef) -> bool {
        let Some(at) = self.position(child) else {
            return false;
        };
        self.list.swap_remove(at);
        if let Some(moved) = self.list.get(at) {
            Self::place(moved, at);
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
        std::mem::take(&mut self.list)
    }
}
