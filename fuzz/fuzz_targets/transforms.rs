//! `tasktonic_net::fuzzing::transforms`: fed whole and in pieces, the same outcome, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tasktonic_net::fuzzing::transforms(data);
});
