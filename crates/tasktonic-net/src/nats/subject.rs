//! Subject names: tokens separated by `.`, no whitespace; `*` (one token) and `>` (the
//! rest, last only) are wildcards, allowed when subscribing only.

use super::NatsError;

fn check(subject: &str, wildcards: bool) -> Result<(), NatsError> {
    let bad = |why: &str| Err(NatsError::Subject(format!("{subject:?}: {why}")));
    if subject.is_empty() {
        return bad("empty");
    }
    if subject.len() > super::wire::MAX_CONTROL_LINE / 2 {
        return bad("too long");
    }
    let mut tokens = subject.split('.').peekable();
    while let Some(t) = tokens.next() {
        let last = tokens.peek().is_none();
        if t.is_empty() {
            return bad("an empty token");
        }
        if t.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return bad("whitespace or a control character");
        }
        let wild = t == "*" || t == ">";
        if !wildcards && (t.contains('*') || t.contains('>')) {
            return bad("a wildcard where none is allowed");
        }
        if wildcards && !wild && (t.contains('*') || t.contains('>')) {
            return bad("a wildcard inside a token");
        }
        if t == ">" && !last {
            return bad("`>` before the last token");
        }
    }
    Ok(())
}

/// A subject to publish to (no wildcards).
pub(crate) fn check_publish(subject: &str) -> Result<(), NatsError> {
    check(subject, false)
}

/// A subject to subscribe to (wildcards allowed).
pub(crate) fn check_subscribe(subject: &str) -> Result<(), NatsError> {
    check(subject, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        for ok in ["a", "a.b.c", "_INBOX.x.1", "tt.svc.counter"] {
            assert!(check_publish(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", ".a", "a.", "a b", "a.*", "a.>", "a\tb", "a\r\n"] {
            assert!(check_publish(bad).is_err(), "{bad:?}");
        }
        for ok in ["a.*", "a.>", "*.b.*", ">"] {
            assert!(check_subscribe(ok).is_ok(), "{ok}");
        }
        for bad in ["a.>.b", "a*", "a.b*", "a.>x"] {
            assert!(check_subscribe(bad).is_err(), "{bad:?}");
        }
    }
}
