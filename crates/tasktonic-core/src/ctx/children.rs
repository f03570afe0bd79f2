//! A tonic's live infusions: a list with O(1) removal.
//!
//! A server base can have 10,000 connection infusions; each one that completes is removed from
//! its base. A linear scan made a mass disconnect O(n²) (`Vec::retain` was the top user-space
//! symbol of the selector while 10,000 connections closed). Each infusion records its own
//! position in the list (a field of its shared state, so no map: every byte of it is paid per
//! connection), and removal swaps the last one into the gap.

use std::sync::atomic::Ordering;

use crate::TonicRef;
use crate::catalyst::Addressee;

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

    fn position(&self, child: &dyn Addressee) -> Option<usize> {
        let at = child.place().load(Ordering::Relaxed) as usize;
        self.list
            .get(at)
            .filter(|c| c.id() == child.id())
            .map(|_| at)
    }

    /// The infusion a work order names, if it is one of these.
    pub(crate) fn get(&self, child: &dyn Addressee) -> Option<&TonicRef> {
        self.position(child).map(|at| &self.list[at])
    }

    /// Remove `child` (the last one takes its place); `None` if it was not a child.
    pub(crate) fn remove(&mut self, child: &dyn Addressee) -> Option<TonicRef> {
        let at = self.position(child)?;
        let removed = self.list.swap_remove(at);
        if let Some(moved) = self.list.get(at) {
            Self::place(moved, at);
        }
        Some(removed)
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
