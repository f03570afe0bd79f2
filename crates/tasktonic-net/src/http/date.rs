//! The `Date` header's value, formatted once a second per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

thread_local! {
    /// (the second it was formatted for, the value).
    static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// Append `date: <now>\r\n` to `dst`.
pub(crate) fn put_date(dst: &mut BytesMut) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != secs || cell.1.is_empty() {
            *cell = (secs, httpdate::fmt_http_date(now));
        }
        dst.extend_from_slice(b"date: ");
        dst.extend_from_slice(cell.1.as_bytes());
        dst.extend_from_slice(b"\r\n");
    });
}
