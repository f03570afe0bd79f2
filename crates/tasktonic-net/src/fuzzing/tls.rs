//! TLS records fed in any split: a client and a server session in memory, the client's
//! records reaching the server in pieces, possibly with one byte flipped.

use bytes::BytesMut;

use super::Splits;
use crate::transport::{Tls, TlsAcceptor, TlsConnector, TlsError, TlsStream};

/// The two ends' settings: a server's, and a client's that trusts its certificate.
#[derive(Debug, Clone)]
pub struct TlsPair {
    /// The server side.
    pub server: Tls,
    /// The client side.
    pub client: Tls,
}

impl TlsPair {
    /// A server with a fresh self-signed certificate for `localhost`, and a client that
    /// trusts it.
    ///
    /// # Panics
    ///
    /// If the certificate cannot be made (it always can).
    pub fn generate() -> TlsPair {
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
    }
}

/// Feed `from`'s records to `to` in pieces; the plaintext goes to `plain`.
fn deliver(
    from: &mut TlsStream,
    to: &mut TlsStream,
    plain: &mut BytesMut,
    pieces: &mut Splits,
    flip: Option<(usize, u8)>,
) -> Result<bool, TlsError> {
    let mut records = Vec::new();
    from.write_records(&mut records);
    if let Some((at, mask)) = flip
        && !records.is_empty()
    {
        let at = at % records.len();
        records[at] ^= mask;
    }
    let mut fed = 0;
    let mut closed = false;
    while fed < records.len() {
        let n = pieces.next_len().min(records.len() - fed);
        closed = to.feed(&records[fed..fed + n], plain)?;
        fed += n;
    }
    Ok(closed)
}

/// The input: a split seed (2 bytes), a byte position and a mask (3 bytes: the mask 0 flips
/// nothing), then the plaintext the client sends. The handshake's records, and then the
/// plaintext's and `close_notify`, reach the other side in pieces. Whatever the input, no
/// panic; the server never delivers plaintext the client did not send (only a prefix of it);
/// unflipped, it delivers all of it and sees `close_notify`.
pub fn tls_records(pair: &TlsPair, data: &[u8]) {
    let [a, b, p1, p2, mask, plaintext @ ..] = data else {
        return;
    };
    let mut pieces = Splits::new(u16::from_be_bytes([*a, *b]));
    let flip = (*mask != 0).then_some((usize::from(u16::from_be_bytes([*p1, *p2])), *mask));
    let (Ok(mut server), Ok(mut client)) =
        (TlsStream::new(&pair.server), TlsStream::new(&pair.client))
    else {
        panic!("the pair's settings make sessions");
    };
    let mut scratch = BytesMut::new();
    // The handshake, unflipped, in pieces both ways (a few round trips at most).
    for _ in 0..8 {
        if !client.handshaking() && !server.handshaking() && !client.wants_write() {
            break;
        }
        deliver(&mut client, &mut server, &mut scratch, &mut pieces, None)
            .expect("a clean handshake's records, in any split");
        deliver(&mut server, &mut client, &mut scratch, &mut pieces, None)
            .expect("a clean handshake's records, in any split");
    }
    assert!(
        !client.handshaking() && !server.handshaking(),
        "handshake done"
    );
    assert!(scratch.is_empty(), "no plaintext during the handshake");
    client.write_plain(plaintext).expect("plaintext queued");
    client.close_notify();
    let mut plain = BytesMut::new();
    let got = deliver(&mut client, &mut server, &mut plain, &mut pieces, flip);
    assert!(
        plaintext.starts_with(&plain),
        "the server delivered plaintext the client did not send"
    );
    if flip.is_none() {
        assert_eq!(got.ok(), Some(true), "close_notify seen");
        assert_eq!(&plain[..], plaintext);
    }
}
