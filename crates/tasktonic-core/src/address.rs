//! The address of a tonic: [`TonicRef`], and the shared part every handle to one tonic points
//! to (its id, name, slot, catalyst, status and bounded mailbox). Above the catalyst (it
//! builds work orders and delivers them), below the host: nothing here knows a tonic's type.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use crate::catalyst::{
    Addressee, CatalystShared, Envelope, InfusionEvent, InfusionOutcome, InlineTarget, SystemMsg,
    Work, running,
};
use crate::mailbox::{Mailbox, Offer};
use crate::{Lifecycle, SendError, TonicId};

/// What every handle to one tonic shares.
pub(crate) struct TonicShared {
    pub(crate) id: TonicId,
    pub(crate) name: Arc<str>,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    pub(crate) catalyst: Arc<CatalystShared>,
    status: AtomicU8,
    /// Where it sits in its base's list of infusions (written and read only on the base's
    /// thread; see `ctx::children`).
    pub(crate) place: AtomicU32,
    /// Boxed: most tonics have none, and every tonic's shared state is paid per connection.
    pub(crate) mailbox: Option<Box<Mailbox>>,
}

impl TonicShared {
    pub(crate) fn new(
        id: TonicId,
        name: Arc<str>,
        (slot, generation): (u32, u32),
        catalyst: Arc<CatalystShared>,
        mailbox: Option<Box<Mailbox>>,
    ) -> TonicShared {
        TonicShared {
            id,
            name,
            slot,
            generation,
            catalyst,
            status: AtomicU8::new(Lifecycle::Starting as u8),
            place: AtomicU32::new(0),
            mailbox,
        }
    }

    #[inline]
    pub(crate) fn lifecycle(&self) -> Lifecycle {
        Lifecycle::from_u8(self.status.load(Ordering::Acquire))
    }

    pub(crate) fn set_lifecycle(&self, l: Lifecycle) {
        self.status.store(l as u8, Ordering::Release);
    }

    /// A work order for this tonic, from the tonic running on this thread (if any).
    #[inline]
    pub(crate) fn envelope(&self, name: &'static str, work: Work) -> Envelope {
        self.envelope_from(running(), name, work)
    }

    #[inline]
    fn envelope_from(&self, from: u64, name: &'static str, work: Work) -> Envelope {
        Envelope {
            slot: self.slot,
            generation: self.generation,
            from,
            name,
            work,
        }
    }

    /// Tell this tonic (a base) what became of its infusion `child`, in the child's name (so
    /// traces show who told it). False if it has completed.
    pub(crate) fn push_infusion_event(
        &self,
        child: &Arc<TonicShared>,
        outcome: InfusionOutcome,
    ) -> bool {
        let event = InfusionEvent {
            child: child.clone(),
            outcome,
        };
        let msg = SystemMsg::Infusion(Box::new(event));
        self.push_system_from(child.id.as_u64(), "infusion", msg)
    }

    /// Where a sparkle for it would run inline.
    pub(crate) fn inline_target(&self) -> InlineTarget {
        InlineTarget {
            catalyst: self.catalyst.id,
            slot: self.slot,
            generation: self.generation,
            bounded: self.mailbox.is_some(),
        }
    }

    /// Enqueue a user order built from `x` (through the bounded mailbox, if any).
    #[inline]
    pub(crate) fn push_order<X>(
        &self,
        name: &'static str,
        x: X,
        build: impl FnOnce(X) -> Work,
    ) -> Result<(), SendError<X>> {
        if self.lifecycle() == Lifecycle::Completed {
            return Err(SendError::Completed(x));
        }
        match &self.mailbox {
            None => {
                self.catalyst.deliver(self.envelope(name, build(x)));
                Ok(())
            }
            Some(mailbox) => match mailbox.offer(x, |x| self.envelope(name, build(x))) {
                Offer::Full(x) => Err(SendError::Full(x)),
                Offer::Queued => Ok(()),
                Offer::QueuedSchedule => {
                    self.push_system("drain", SystemMsg::Drain);
                    Ok(())
                }
            },
        }
    }

    /// Ask a service to finish because its last base left, after everything its bases sent
    /// it: queued behind all that other threads have handed to its catalyst (a catalyst hands
    /// over a tonic's sends before it publishes its completion; from the service's own thread
    /// a local push would run ahead of those), and put back behind anything still queued for
    /// it when its turn comes. False if it has completed.
    pub(crate) fn finish_after_arrived(&self) -> bool {
        if self.lifecycle() == Lifecycle::Completed {
            return false;
        }
        self.catalyst.deliver_behind_remote(
            self.envelope("finish", Work::System(SystemMsg::FinishWhenQuiet)),
        );
        true
    }

    /// Enqueue a system message (never refused by a mailbox). False if the tonic has completed.
    pub(crate) fn push_system(&self, name: &'static str, msg: SystemMsg) -> bool {
        self.push_system_from(running(), name, msg)
    }

    /// [`push_system`](TonicShared::push_system) in the name of the sender `from`.
    fn push_system_from(&self, from: u64, name: &'static str, msg: SystemMsg) -> bool {
        if self.lifecycle() == Lifecycle::Completed {
            return false;
        }
        self.catalyst
            .deliver(self.envelope_from(from, name, Work::System(msg)));
        true
    }
}

impl Addressee for TonicShared {
    fn id(&self) -> TonicId {
        self.id
    }
    fn place(&self) -> &AtomicU32 {
        &self.place
    }
}

/// A type-erased reference to a tonic: its id and name, its lifecycle, and `finish`.
#[derive(Clone)]
pub struct TonicRef {
    pub(crate) shared: Arc<TonicShared>,
}

impl TonicRef {
    /// The tonic's id.
    pub fn id(&self) -> TonicId {
        self.shared.id
    }

    /// The tonic's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where the tonic is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.shared.lifecycle()
    }

    /// The name of the catalyst it runs on.
    pub fn catalyst(&self) -> &str {
        &self.shared.catalyst.name
    }

    /// Ask it to finish (as [`Handle::finish`](crate::Handle::finish)).
    ///
    /// # Errors
    ///
    /// [`SendError::Completed`] if it has already completed.
    pub fn finish(&self) -> Result<(), SendError<()>> {
        if self.request_finish() {
            Ok(())
        } else {
            Err(SendError::Completed(()))
        }
    }

    /// Ask it to finish; false if it had already completed (for the runtime, which asks many).
    pub(crate) fn request_finish(&self) -> bool {
        self.shared.push_system("finish", SystemMsg::Finish)
    }
}

impl fmt::Debug for TonicRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TonicRef({} {})", self.shared.id, self.shared.name)
    }
}

impl PartialEq for TonicRef {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}

impl Eq for TonicRef {}
