//! Allocations a selector thread keeps from one batch to the next, so that a busy connection
//! does not allocate and free them per read (N1, N3 in `docs/PERFORMANCE.md`): the `Vec` that
//! collects a co-located base's replies ([`STAGED`]) and the `Vec` a read's messages are
//! delivered in ([`BATCH`]). One of each per thread, whatever the number of connections: a
//! thread handles one batch at a time.
//!
//! Each is a type-erased `Vec<M>` in a thread-local without a destructor of its own (a
//! thread-local with one costs a state check on every access, ~13 instructions a send on
//! [`STAGED`]); a guard touched whenever a slot gets a `Vec` frees them when the thread ends.

use std::any::Any;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::thread::LocalKey;

/// A kept `Vec<M>`, type-erased (`None` until first kept).
pub(crate) type Slot = ManuallyDrop<RefCell<Option<Box<dyn Any>>>>;

/// A kept `Vec` with more room than this is freed instead (after a burst).
pub(crate) const KEEP_MAX: usize = 1024;

thread_local! {
    /// The sends a co-located base makes during a batch (see `Conn::staging`).
    pub(crate) static STAGED: Slot = const { ManuallyDrop::new(RefCell::new(None)) };
    /// The `Vec` a busy connection's next read delivers its messages in.
    pub(crate) static BATCH: Slot = const { ManuallyDrop::new(RefCell::new(None)) };
    /// Touched whenever a slot gets a `Vec` (see [`boxed`]): frees them when the thread ends.
    static CLEANUP: Cleanup = const { Cleanup };
}

/// Frees this thread's kept `Vec`s when the thread ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The slots have no destructors: still there while other thread-locals are destroyed.
        for slot in [&STAGED, &BATCH] {
            drop(with(slot, Option::take));
        }
    }
}

/// `vec`, boxed for a slot, and the slots' cleanup when this thread ends.
pub(crate) fn boxed<M: 'static>(vec: Vec<M>) -> Box<dyn Any> {
    CLEANUP.with(|_| {});
    Box::new(vec)
}

/// Run `f` on this thread's `slot`.
#[inline]
pub(crate) fn with<R>(
    slot: &'static LocalKey<Slot>,
    f: impl FnOnce(&mut Option<Box<dyn Any>>) -> R,
) -> R {
    slot.with(|kept| f(&mut kept.borrow_mut()))
}

/// The `Vec<M>` kept in `slot` (empty, with its room), or a new one.
pub(crate) fn take<M: 'static>(slot: &'static LocalKey<Slot>) -> Vec<M> {
    with(slot, |kept| {
        kept.as_mut()
            .and_then(|v| v.downcast_mut::<Vec<M>>())
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

/// Keep `vec` (emptied) in `slot` for the next batch, unless the slot holds one as roomy or
/// `vec` has no room or too much.
pub(crate) fn keep<M: 'static>(slot: &'static LocalKey<Slot>, vec: Vec<M>) {
    if vec.capacity() == 0 || vec.capacity() > KEEP_MAX || !vec.is_empty() {
        return;
    }
    with(slot, |kept| {
        match kept.as_mut().and_then(|v| v.downcast_mut::<Vec<M>>()) {
            Some(old) if old.capacity() >= vec.capacity() => {}
            Some(old) => *old = vec,
            None => *kept = Some(boxed(vec)),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its drops.
    struct Dropper(Arc<AtomicUsize>);

    impl Drop for Dropper {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn what_a_thread_keeps_is_dropped_when_it_ends() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (a, b) = (drops.clone(), drops.clone());
        std::thread::spawn(move || {
            let staged = boxed(vec![Dropper(a)]);
            with(&STAGED, |s| *s = Some(staged));
            let batch = boxed(vec![Dropper(b)]);
            with(&BATCH, |s| *s = Some(batch));
        })
        .join()
        .expect("thread ran");
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_kept_vec_comes_back_with_its_room() {
        assert!(take::<u32>(&BATCH).capacity() == 0, "nothing kept yet");
        keep(&BATCH, Vec::<u32>::with_capacity(16));
        let v = take::<u32>(&BATCH);
        assert!(v.capacity() >= 16);
        // Taken: the next take starts over; a Vec of another type does not match.
        assert_eq!(take::<u32>(&BATCH).capacity(), 0);
        keep(&BATCH, v);
        assert_eq!(take::<u64>(&BATCH).capacity(), 0);
        // Too roomy or not empty: not kept.
        keep(&BATCH, Vec::<u8>::with_capacity(KEEP_MAX + 1));
        keep(&BATCH, vec![1u8]);
        assert_eq!(take::<u8>(&BATCH).capacity(), 0);
    }
}
