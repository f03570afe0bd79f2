//! Identifiers of tonics and catalysts.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The identity of a tonic: unique in the process and never reused.
///
/// A `TonicId` stays valid as a name for the tonic after it completes (for example in an
/// [`on_infusion_completed`](crate::Tonic::on_infusion_completed) event), but no other tonic will
/// ever carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TonicId(u64);

impl TonicId {
    /// The id as a number (`#n` in log lines).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) fn next() -> TonicId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TonicId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn from_raw(raw: u64) -> Option<TonicId> {
        (raw != 0).then_some(TonicId(raw))
    }
}

impl fmt::Debug for TonicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for TonicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A type's (or sparkle's) name without its module path, generics kept: `a::b::Echo<u8>`
/// becomes `Echo<u8>`. A typed send names its envelope with the full `type_name` (free: a
/// constant); this short form is made only where a name is shown (a log line, a trace).
pub(crate) fn short_name(full: &'static str) -> &'static str {
    let head = full.split('<').next().unwrap_or(full);
    match head.rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

/// A type's name with every module path removed, generics included:
/// `a::Conn<b::Codec, c::Hub<b::Codec>>` becomes `Conn<Codec, Hub<Codec>>`.
pub(crate) fn readable_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let flush = |segment: &mut String, out: &mut String| {
        let name = segment.rsplit("::").next().unwrap_or("");
        out.push_str(name);
        segment.clear();
    };
    for c in full.chars() {
        if matches!(c, '<' | '>' | ',' | ' ' | '(' | ')' | '[' | ']' | '&' | ';') {
            flush(&mut segment, &mut out);
            out.push(c);
        } else {
            segment.push(c);
        }
    }
    flush(&mut segment, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo<T>(T);

    #[test]
    fn short_names_drop_the_path_but_keep_generics() {
        assert_eq!(short_name(std::any::type_name::<Echo<u8>>()), "Echo<u8>");
        assert_eq!(short_name(std::any::type_name::<u32>()), "u32");
        let _ = Echo(1u8).0;
    }

    #[test]
    fn readable_names_drop_paths_inside_generics_too() {
        assert_eq!(
            readable_type_name::<Echo<std::vec::Vec<u8>>>(),
            "Echo<Vec<u8>>"
        );
    }

    #[test]
    fn ids_are_unique_and_increasing() {
        let a = TonicId::next();
        let b = TonicId::next();
        assert!(b > a);
        assert_eq!(TonicId::from_raw(0), None);
    }
}
