//! What a selector thread keeps for all the connections it runs: scratch space for reads and
//! writes, and allocations kept from one batch to the next.
//!
//! # The contract
//!
//! A selector thread runs one connection's sparkle at a time, and a sparkle never hands
//! control to another connection's sparkle while it holds one of these (an inline sparkle of a
//! *base* may run inside a connection's, and may send to connections, so [`STAGED`] is the one
//! slot a base touches). Hence:
//!
//! - Each slot is borrowed only for the length of one call that does not re-enter the slot;
//!   a `RefCell` catches a violation as a panic, never as corruption.
//! - What a slot holds between calls is empty (a read or write scratch buffer's contents are
//!   meaningless after the call; a kept `Vec` is empty, with its room).
//! - [`STAGING`] is the id of the one connection whose base is handling a batch on this thread
//!   (0 between batches); while it is set, sends to that connection are collected in
//!   [`STAGED`] without a lock and handed to its outbox when the batch ends.
//! - Nothing here is per connection, so memory does not grow with the number of connections
//!   (`docs/PERFORMANCE.md`, idle connections): one read scratch (64 KiB), one write buffer (freed when a
//!   flush grew it past 1 MiB), one kept batch `Vec` and one kept staging `Vec` (at most
//!   [`KEEP_MAX`] entries each).
//! - The kept `Vec`s are type-erased (`Box<dyn Any>`, downcast to the connection's message
//!   type) and live in thread-locals without a destructor of their own: a thread-local with one
//!   costs a state check on every access (about 13 instructions a send on [`STAGED`]). A
//!   guard, touched whenever a slot gets a `Vec` ([`boxed`]), frees them when the thread ends.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::thread::LocalKey;

use bytes::BytesMut;

/// A kept `Vec<M>`, type-erased (`None` until first kept).
pub(crate) type Slot = ManuallyDrop<RefCell<Option<Box<dyn Any>>>>;

/// A kept `Vec` with more room than this is freed instead (after a burst).
pub(crate) const KEEP_MAX: usize = 1024;

/// One socket `read` reads at most this much, into [`READ_SCRATCH`].
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// The write buffer is not kept if a flush grew it past this (a huge message).
pub(crate) const WRITE_KEEP_MAX: usize = 1 << 20;

/// Where a flush encodes: the bytes, and where each message's bytes end.
#[derive(Default)]
pub(crate) struct WriteScratch {
    pub(crate) buf: BytesMut,
    pub(crate) ends: Vec<usize>,
}

thread_local! {
    /// The connection whose batch is being staged on this thread (its id; 0: none). A plain
    /// number with no destructor: `Conn::send` reads it with one load.
    pub(crate) static STAGING: Cell<u64> = const { Cell::new(0) };
    /// The sends a co-located base makes during a batch (see `Conn::staging`).
    pub(crate) static STAGED: Slot = const { ManuallyDrop::new(RefCell::new(None)) };
    /// The `Vec` a busy connection's next read delivers its messages in.
    pub(crate) static BATCH: Slot = const { ManuallyDrop::new(RefCell::new(None)) };
    /// Reads land here first; a connection keeps only what arrived (no zero-fill per read).
    pub(crate) static READ_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
    /// A flush encodes its batch here and writes from it.
    pub(crate) static WRITE_SCRATCH: RefCell<WriteScratch> = RefCell::new(WriteScratch::default());
    /// Touched whenever a slot gets a `Vec` (see [`boxed`]): frees them when the thread ends.
    static CLEANUP: Cleanup = const { Cleanup };
}

/// A handler's way back to its reading (it re-posts itself to its own tonic).
pub(crate) type Again = Box<dyn FnOnce()>;

thread_local! {
    /// This thread's parker is a selector's (set at its first poll).
    static SELECTOR_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Handlers that used up their read budget on this selector thread, to read again after
    /// the next poll, behind whatever that poll made ready (see [`after_next_poll`]). No
    /// destructor of its own (one load per poll); [`Cleanup`] frees it.
    static TURNS_TAKEN: ManuallyDrop<RefCell<Vec<Again>>> =
        const { ManuallyDrop::new(RefCell::new(Vec::new())) };
}

/// A handler used up its read budget: `again` runs after this selector's next poll has
/// posted the readiness it found, so that the others' reads come first (re-posted at once
/// on a thread that is not a selector's). Without this a budget's end only re-queued the
/// handler, and one turn of the catalyst could run it a couple of hundred times before
/// polling: a flooding peer kept the rest waiting.
pub(crate) fn after_next_poll(again: Again) {
    if !SELECTOR_THREAD.get() {
        return again();
    }
    CLEANUP.with(|_| {});
    TURNS_TAKEN.with(|t| t.borrow_mut().push(again));
}

/// The selector's parker, before it polls: the handlers waiting for their turn (run them
/// after the poll's readiness is posted; while there are any, the poll must not block).
pub(crate) fn take_turns() -> Vec<Again> {
    SELECTOR_THREAD.set(true);
    TURNS_TAKEN.with(|t| {
        let mut t = t.borrow_mut();
        if t.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut *t)
        }
    })
}

/// Frees this thread's kept `Vec`s when the thread ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The slots have no destructors: still there while other thread-locals are destroyed.
        for slot in [&STAGED, &BATCH] {
            drop(with(slot, Option::take));
        }
        drop(TURNS_TAKEN.with(|t| std::mem::take(&mut *t.borrow_mut())));
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
