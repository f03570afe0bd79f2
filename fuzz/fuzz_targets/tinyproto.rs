//! `tasktonic_net::fuzzing::tinyproto`: fed whole and in pieces, the same outcome, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tasktonic_net::fuzzing::tinyproto(data);
});
