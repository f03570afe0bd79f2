//! `tasktonic_net::fuzzing::tls_records`: a TLS session in memory, the client's records fed
//! to the server in pieces, maybe with a byte flipped: no panic, never plaintext that was not
//! sent.
#![no_main]

use std::sync::OnceLock;

use tasktonic_net::fuzzing::{TlsPair, tls_records};
use tasktonic_net::transport::{Tls, TlsAcceptor, TlsConnector};

fn pair() -> &'static TlsPair {
    static PAIR: OnceLock<TlsPair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("a certificate");
        let acceptor = TlsAcceptor::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
            .expect("an acceptor");
        let connector = TlsConnector::with_roots_pem(cert.pem().as_bytes()).expect("roots");
        TlsPair {
            server: Tls::server(&acceptor),
            client: Tls::client(&connector, "localhost").expect("a name"),
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tls_records(pair(), data);
});
