//! The slot table: which tonic slots of a catalyst are in use, and their generations.

/// Slots are reserved by spawners on any thread (under the catalyst's lock) and released by the
/// catalyst when the tonic completes. A slot's generation changes on release, so a handle to the
/// old tonic can never reach a new one.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    generations: Vec<u32>,
    in_use: Vec<bool>,
    free: Vec<u32>,
    /// Tonics reserved or live on this catalyst.
    pub(crate) live: usize,
    /// A thread is running this catalyst.
    pub(crate) running: bool,
}

impl SlotTable {
    pub(crate) fn reserve(&mut self) -> (u32, u32) {
        self.live += 1;
        if let Some(slot) = self.free.pop() {
            self.in_use[slot as usize] = true;
            return (slot, self.generations[slot as usize]);
        }
        let slot = u32::try_from(self.generations.len()).expect("more than u32::MAX tonics");
        self.generations.push(0);
        self.in_use.push(true);
        (slot, 0)
    }

    pub(crate) fn release(&mut self, slot: u32) {
        let i = slot as usize;
        if self.in_use.get(i) == Some(&true) {
            self.in_use[i] = false;
            self.generations[i] = self.generations[i].wrapping_add(1);
            self.free.push(slot);
            self.live -= 1;
        }
    }

    /// True if `(slot, generation)` names a tonic that is reserved or live.
    pub(crate) fn is_current(&self, slot: u32, generation: u32) -> bool {
        let i = slot as usize;
        self.in_use.get(i) == Some(&true) && self.generations[i] == generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_slots_change_generation() {
        let mut t = SlotTable::default();
        let (a, ga) = t.reserve();
        assert!(t.is_current(a, ga));
        t.release(a);
        assert!(!t.is_current(a, ga));
        let (b, gb) = t.reserve();
        assert_eq!(a, b);
        assert_ne!(ga, gb);
        assert_eq!(t.live, 1);
        t.release(b);
        t.release(b);
        assert_eq!(t.live, 0);
    }
}
