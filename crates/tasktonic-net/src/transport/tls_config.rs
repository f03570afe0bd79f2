//! TLS settings: [`TlsAcceptor`] (the server side: certificate chain and key),
//! [`TlsConnector`] (the client side: whom to trust), and [`Tls`] (one side of one
//! connection's session, as a server or a client for a name).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use super::TlsError;

/// The crypto provider every config here is built with: ring (chosen explicitly, so a
/// build that also links aws-lc-rs through another crate still works). rustls 0.23.48
/// deprecated it for lacking post-quantum key exchange; it stays the default here because
/// aws-lc-rs builds far slower (`docs/tls.md`), and a config built with another provider
/// can be used through `from_rustls`.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of TLS: a certificate chain and its private key (cheap to clone; one
/// shared rustls `ServerConfig`).
///
/// # Examples
///
/// ```no_run
/// use tasktonic_net::transport::TlsAcceptor;
///
/// let acceptor = TlsAcceptor::from_pem_files("cert.pem", "key.pem")?.alpn(&[b"http/1.1"]);
/// # Ok::<(), tasktonic_net::transport::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    pub(crate) config: Arc<ServerConfig>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn", &self.config.alpn_protocols)
            .finish()
    }
}

impl TlsAcceptor {
    /// From PEM files: the certificate chain (leaf first) and the private key (PKCS#8,
    /// PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// [`TlsError::Config`]: a file cannot be read, holds no certificate or key, or the key
    /// does not match the certificate.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsAcceptor, TlsError> {
        let (cert_path, key_path) = (cert_chain.as_ref(), key.as_ref());
        let chain = CertificateDer::pem_file_iter(cert_path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::config(format!("certificates in {}", cert_path.display()), e))?;
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| TlsError::config(format!("private key in {}", key_path.display()), e))?;
        TlsAcceptor::from_der(chain, key)
    }

    /// From PEM text in memory: the certificate chain and the private key.
    ///
    /// # Errors
    ///
    /// As [`from_pem_files`](TlsAcceptor::from_pem_files).
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsAcceptor, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::config("certificates (PEM)", e))?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| TlsError::config("private key (PEM)", e))?;
        TlsAcceptor::from_der(chain, key)
    }

    /// From DER: the certificate chain (leaf first) and the private key.
    ///
    /// # Errors
    ///
    /// [`TlsError::Config`]: no certificate, or the key does not fit it.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsAcceptor, TlsError> {
        if chain.is_empty() {
            return Err(TlsError::config_msg("no certificate in the chain"));
        }
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::config("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::config("certificate and key", e))?;
        Ok(TlsAcceptor {
            config: Arc::new(config),
        })
    }

    /// From a rustls `ServerConfig` you built (client certificates, session storage, …).
    pub fn from_rustls(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor { config }
    }

    /// The rustls config behind it.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// ALPN protocols the server accepts, in its order of preference (a client that offers
    /// ALPN and shares none of them is refused).
    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsAcceptor {
        Arc::make_mut(&mut self.config).alpn_protocols =
            protocols.iter().map(|p| p.to_vec()).collect();
        self
    }
}

/// The client side of TLS: whom to trust. The server's certificate is verified against the
/// roots and the name given to [`Tls::client`], by default; turning that off is
/// [`dangerous_accept_any_certificate`](TlsConnector::dangerous_accept_any_certificate).
///
/// # Examples
///
/// ```no_run
/// use tasktonic_net::transport::{Tls, TlsConnector};
///
/// let connector = TlsConnector::with_roots_pem_file("ca.pem")?;
/// let tls = Tls::client(&connector, "localhost")?;
/// # Ok::<(), tasktonic_net::transport::TlsError>(())
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    pub(crate) config: Arc<ClientConfig>,
    verifies: bool,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("verifies", &self.verifies)
            .field("alpn", &self.config.alpn_protocols)
            .finish()
    }
}

impl TlsConnector {
    /// Trust the roots in `roots`.
    ///
    /// # Errors
    ///
    /// [`TlsError::Config`] if `roots` is empty.
    pub fn with_roots(roots: RootCertStore) -> Result<TlsConnector, TlsError> {
        if roots.is_empty() {
            return Err(TlsError::config_msg("no trusted root certificate"));
        }
        Ok(TlsConnector::verifying(roots))
    }

    /// Trust the public web's certificate authorities (the Mozilla set bundled by the
    /// `webpki-roots` crate).
    ///
    /// # Panics
    ///
    /// Only if the ring provider stopped supporting TLS 1.2 and 1.3 (it cannot: the versions
    /// are part of the provider).
    pub fn with_web_roots() -> TlsConnector {
        TlsConnector::verifying(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
    }

    fn verifying(roots: RootCertStore) -> TlsConnector {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable_versions())
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector {
            config: Arc::new(config),
            verifies: true,
        }
    }

    /// Trust the CA certificates in a PEM file (a private CA, or a self-signed server).
    ///
    /// # Errors
    ///
    /// [`TlsError::Config`]: unreadable, no certificate, or one that is not a valid root.
    pub fn with_roots_pem_file(path: impl AsRef<Path>) -> Result<TlsConnector, TlsError> {
        let path = path.as_ref();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::config(format!("certificates in {}", path.display()), e))?;
        if certs.is_empty() {
            return Err(TlsError::config_msg(format!(
                "no certificate in {}",
                path.display()
            )));
        }
        TlsConnector::with_root_certs(certs)
    }

    /// Trust the CA certificates in PEM text.
    ///
    /// # Errors
    ///
    /// As [`with_roots_pem_file`](TlsConnector::with_roots_pem_file).
    pub fn with_roots_pem(pem: &[u8]) -> Result<TlsConnector, TlsError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::config("root certificates (PEM)", e))?;
        TlsConnector::with_root_certs(certs)
    }

    fn with_root_certs(certs: Vec<CertificateDer<'static>>) -> Result<TlsConnector, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| TlsError::config("root certificate", e))?;
        }
        TlsConnector::with_roots(roots)
    }

    /// **Dangerous**: accept any server certificate, for any name. The connection is
    /// encrypted but not authenticated: anyone on the path can read and change it. For tests
    /// against throw-away certificates only; every connection made with it logs a warning.
    ///
    /// # Panics
    ///
    /// As [`with_web_roots`](TlsConnector::with_web_roots).
    pub fn dangerous_accept_any_certificate() -> TlsConnector {
        TlsConnector::unverified()
    }

    fn unverified() -> TlsConnector {
        let provider = provider();
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable_versions())
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
            .with_no_client_auth();
        TlsConnector {
            config: Arc::new(config),
            verifies: false,
        }
    }

    /// From a rustls `ClientConfig` you built (client certificates, a custom verifier, …).
    /// Its verifier is trusted as it is: [`verifies`](TlsConnector::verifies) reports true.
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            verifies: true,
        }
    }

    /// The rustls config behind it.
    pub fn rustls_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// ALPN protocols to offer, in order of preference.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsConnector {
        Arc::make_mut(&mut self.config).alpn_protocols =
            protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Send the server name (SNI) in the handshake (on by default; never for an IP address).
    pub fn sni(mut self, on: bool) -> TlsConnector {
        Arc::make_mut(&mut self.config).enable_sni = on;
        self
    }

    /// False if built with [`dangerous_accept_any_certificate`](TlsConnector::dangerous_accept_any_certificate).
    pub fn verifies(&self) -> bool {
        self.verifies
    }
}

/// The ring provider supports the safe default versions (TLS 1.2 and 1.3); this cannot be
/// reached.
fn unreachable_versions<T>() -> T {
    panic!("the ring provider supports TLS 1.2 and 1.3")
}

/// Accepts any certificate, but still checks the handshake signatures with it (so the
/// session is at least bound to the certificate the server presented).
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One side of one connection's TLS session: a server with an acceptor, or a client of
/// a named server with a connector. Given to [`TcpServer::tls`](crate::tcp::TcpServer::tls),
/// [`TcpClient::tls`](crate::tcp::TcpClient::tls) or
/// [`Conn::upgrade_tls`](crate::tcp::Conn::upgrade_tls).
#[derive(Clone, Debug)]
pub enum Tls {
    /// The server side.
    Server(TlsAcceptor),
    /// The client side, verifying the server's certificate for `name` (unless the connector
    /// accepts any certificate).
    Client {
        /// Whom to trust.
        connector: TlsConnector,
        /// The server's name (DNS name or IP address), checked against its certificate and
        /// sent as SNI.
        name: ServerName<'static>,
    },
}

impl Tls {
    /// The server side of a session.
    pub fn server(acceptor: &TlsAcceptor) -> Tls {
        Tls::Server(acceptor.clone())
    }

    /// The client side of a session with the server called `name` (a DNS name, or an IP
    /// address written out).
    ///
    /// # Errors
    ///
    /// [`TlsError::Config`] if `name` is neither a valid DNS name nor an IP address.
    pub fn client(connector: &TlsConnector, name: &str) -> Result<Tls, TlsError> {
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| TlsError::config(format!("server name {name:?}"), e))?;
        Ok(Tls::Client {
            connector: connector.clone(),
            name,
        })
    }
}
