//! Test certificates and TLS clients, for the server's tests (in-process) and the binary's
//! (`hata-cli/tests` include this file by path, so the two crates share one copy).
//!
//! - [`TestCa`]: a certificate authority of the test's own (rcgen), and server certificates
//!   it signs for `127.0.0.1` and `localhost`, written as PEM files.
//! - [`TestCa::client`]: a reqwest client (rustls) that trusts only that CA.
//! - [`handshake`]: a rustls client connection, to see which certificate the server presents.
//! - [`openssl`]: the `openssl` command; under `CI=true` a missing one fails the test.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A certificate authority for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A server certificate and its key, as PEM.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's DER, to recognise it in a handshake.
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for `127.0.0.1` and `localhost` named `name` (its CN), with `serial`.
    pub fn server_cert(&self, name: &str, serial: u64) -> ServerCert {
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client that trusts this CA and nothing else, offering HTTP/2 and HTTP/1.1 by ALPN.
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().expect("TLS client")
    }

    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("CA certificate");
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
    }

    /// A rustls client configuration trusting this CA only.
    pub fn rustls_client(&self) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                rustls::pki_types::CertificateDer::from_pem_slice(self.pem.as_bytes())
                    .expect("CA DER"),
            )
            .expect("add the CA");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }
}

impl ServerCert {
    /// Writes `cert.pem` and `key.pem` into `dir` (replacing them: what a renewal does, in
    /// place), returning their paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert.pem");
        std::fs::write(&key, &self.key_pem).expect("write key.pem");
        (cert, key)
    }
}

/// A TLS connection to `addr` trusting `ca`: the stream and the server's certificate (DER).
pub async fn handshake(addr: SocketAddr, ca: &TestCa) -> (TlsStream<TcpStream>, Vec<u8>) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let stream = tokio_rustls::TlsConnector::from(ca.rustls_client())
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let presented = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.to_vec())
        .expect("the server presents a certificate");
    (stream, presented)
}

/// `openssl <args>` with stdin closed; `None` when the command is missing outside CI (under
/// `CI=true` that fails the test: `.ci/run` installs it). Awaited, not blocked on: the server
/// it talks to may run on the test's own (single-threaded) runtime.
pub async fn openssl(args: &[&str]) -> Option<std::process::Output> {
    let run = tokio::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match run {
        Ok(output) => Some(output),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: cannot run openssl: {e}");
            None
        }
        Err(e) => panic!("openssl is required under CI (.ci/run installs it): {e}"),
    }
}
