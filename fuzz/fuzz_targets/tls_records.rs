//! `tasktonic_net::fuzzing::tls_records`: a TLS session in memory, the client's records fed
//! to the server in pieces, maybe with a byte flipped: no panic, never plaintext that was not
//! sent.
#![no_main]

use std::sync::OnceLock;

use tasktonic_net::fuzzing::{TlsPair, tls_records};

fn pair() -> &'static TlsPair {
    static PAIR: OnceLock<TlsPair> = OnceLock::new();
    PAIR.get_or_init(TlsPair::generate)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tls_records(pair(), data);
});
