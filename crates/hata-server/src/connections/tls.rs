//! TLS for the accept loop (`--tls-cert`, `--tls-key`): the certificate chain and private key
//! read from PEM files, the rustls configuration every handshake uses, and the reload of both
//! files without a restart. The handshake itself runs in each connection's task, in `serve`.
//!
//! - Protocols: TLS 1.3 and 1.2; rustls implements nothing older. Cipher suites: those of
//!   rustls's *ring* provider, all AEAD with ephemeral (EC)DHE key exchange (X25519, P-256,
//!   P-384): TLS 1.3 AES-256-GCM, AES-128-GCM and ChaCha20-Poly1305, and for TLS 1.2 the
//!   ECDHE-ECDSA and ECDHE-RSA suites with the same three ciphers. No CBC, RC4, 3DES, static
//!   RSA key exchange or SHA-1 suites exist in rustls at all.
//! - ALPN: `h2`, then `http/1.1` (hyper's `auto` builder serves either).
//! - Reload: every handshake takes the certificate from a swappable slot (`CurrentCert`), so
//!   a new certificate applies to connections made after the swap while open ones keep theirs.
//!   `Tls::spawn_reloader` rereads the files every few seconds and on SIGHUP; a reload that
//!   fails (a file unreadable, bad PEM, a key that does not match) keeps the certificate in use
//!   and logs an error.
//!
//! The slot is swapped, not the whole `ServerConfig`: the config (and its session cache) is
//! built once, and a connection reads the slot only while it handshakes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// How often the reloader looks at the files. Reading two small files is cheap; a certificate
/// renewed by a tool (certbot, cert-manager) is served within this long.
pub const RELOAD_POLL: Duration = Duration::from_secs(3);

/// ALPN protocols, in the server's order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where the certificate chain and its private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then the intermediates a client needs.
    pub cert: PathBuf,
    /// PEM: the private key of the first certificate (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
}

/// Which of the two files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        file: TlsFile,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} is not a valid PEM certificate chain: {detail}", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    #[error(
        "{} holds no usable private key ({detail}); expected PEM (PKCS#8, RSA or EC) with an \
         RSA, ECDSA P-256/P-384 or Ed25519 key",
        path.display()
    )]
    BadKey { path: PathBuf, detail: String },
    #[error(
        "the private key in {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// The protocol versions and the provider disagree: a bug, not a setting.
    #[error("the TLS configuration cannot be built: {0}")]
    Setup(rustls::Error),
}

impl TlsError {
    /// The file to fix; `None` for an error no file causes. A key that does not match its
    /// certificate is blamed on the key.
    pub fn file(&self) -> Option<TlsFile> {
        match self {
            TlsError::Read { file, .. } => Some(*file),
            TlsError::NoCertificate { .. } | TlsError::BadCertificate { .. } => Some(TlsFile::Cert),
            TlsError::BadKey { .. } | TlsError::KeyMismatch { .. } => Some(TlsFile::Key),
            TlsError::Setup(_) => None,
        }
    }
}

/// A TLS listener's configuration: what every handshake uses, with a certificate that can be
/// replaced while serving.
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
    config: Arc<rustls::ServerConfig>,
    /// The digest of the contents `load` read: where the reloader starts comparing.
    loaded: [u8; 32],
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads and checks both files: a certificate chain, a private key the provider can sign
    /// with, and that the key is the first certificate's.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = Contents::read(&files)?;
        let key = contents.certified_key(&files, &provider)?;
        let current = Arc::new(CurrentCert(ArcSwap::from_pointee(key)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Tls {
            files,
            provider,
            current,
            config: Arc::new(config),
            loaded: contents.digest(),
        })
    }

    /// Uses `contents`, if they hold a valid certificate and key, for every handshake from now
    /// on. On an error the certificate in use stays.
    fn install(&self, contents: &Contents) -> Result<(), TlsError> {
        let key = contents.certified_key(&self.files, &self.provider)?;
        self.current.0.store(Arc::new(key));
        Ok(())
    }

    /// The acceptor of one connection: cheap (an `Arc` clone).
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Starts rereading the files every `every` and on SIGHUP; stops when the returned guard
    /// is dropped.
    pub(crate) fn spawn_reloader(self: &Arc<Self>, every: Duration) -> Reloader {
        Reloader(tokio::spawn(reload_loop(self.clone(), every)))
    }
}

/// The reload task; aborted when dropped (when `serve` returns).
pub(crate) struct Reloader(tokio::task::JoinHandle<()>);

impl Drop for Reloader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Rereads the files every `every`, and at once on SIGHUP. A change of either file's contents
/// (whatever its mtime says: a Kubernetes secret is swapped through a symlink) is loaded. A
/// failure is logged once per change of the files, not on every poll, and so is a file that
/// cannot be read (e.g. for the moment between a tool's delete and write).
async fn reload_loop(tls: Arc<Tls>, every: Duration) {
    let mut hangups = hangups();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What was read last: the digest of the contents, or the read error's message.
    let mut last_seen: Result<[u8; 32], String> = Ok(tls.loaded);
    loop {
        let forced = tokio::select! {
            _ = ticks.tick() => false,
            () = next_hangup(&mut hangups) => true,
        };
        let files = tls.files.clone();
        let read = match tokio::task::spawn_blocking(move || Contents::read(&files)).await {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "TLS reload: reading the files failed");
                continue;
            }
        };
        let contents = match read {
            Ok(contents) => contents,
            Err(e) => {
                let message = e.to_string();
                if forced || last_seen.as_ref().err() != Some(&message) {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays");
                }
                last_seen = Err(message);
                continue;
            }
        };
        let digest = contents.digest();
        if !forced && last_seen.as_ref().ok() == Some(&digest) {
            continue;
        }
        last_seen = Ok(digest);
        match tls.install(&contents) {
            Ok(()) => tracing::info!(
                cert = %tls.files.cert.display(),
                key = %tls.files.key.display(),
                trigger = if forced { "SIGHUP" } else { "files changed" },
                "TLS certificate reloaded; new connections use it"
            ),
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays")
            }
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler: the TLS files are reloaded only when they change");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

/// The next SIGHUP; never, where there are none.
#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) {
    let received = match hangups {
        Some(signal) => signal.recv().await.is_some(),
        None => false,
    };
    if !received {
        // No handler, or its stream ended: never again.
        *hangups = None;
        std::future::pending::<()>().await;
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) {
    std::future::pending().await
}

/// The certificate every handshake gets; swapped whole by a reload.
#[derive(Debug)]
struct CurrentCert(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The two files as read.
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Contents {
    fn read(files: &TlsFiles) -> Result<Contents, TlsError> {
        let read = |file: TlsFile, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                file,
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(Contents {
            cert: read(TlsFile::Cert, &files.cert)?,
            key: read(TlsFile::Key, &files.key)?,
        })
    }

    /// Tells one pair of contents from another without keeping the key's bytes around.
    fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [&self.cert, &self.key] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    }

    fn certified_key(
        &self,
        files: &TlsFiles,
        provider: &CryptoProvider,
    ) -> Result<CertifiedKey, TlsError> {
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadCertificate {
                path: files.cert.clone(),
                detail: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: files.cert.clone(),
            });
        }
        let bad_key = |detail: String| TlsError::BadKey {
            path: files.key.clone(),
            detail,
        };
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| bad_key(e.to_string()))?;
        let signer = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| bad_key(e.to_string()))?;
        let certified = CertifiedKey::new(chain, signer);
        match certified.keys_match() {
            // `Unknown`: the provider cannot tell the key's public half; the handshake's
            // signature would fail instead.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            }),
            // The end-entity certificate did not parse.
            Err(e) => Err(TlsError::BadCertificate {
                path: files.cert.clone(),
                detail: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The module doc lists the suites and groups; this keeps it true when rustls changes its
    /// defaults.
    #[test]
    fn the_documented_suites_and_groups_are_the_ones_offered() {
        let provider = rustls::crypto::ring::default_provider();
        let suites: Vec<String> = provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            suites,
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ]
        );
        let groups: Vec<String> = provider
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        assert_eq!(groups, ["X25519", "secp256r1", "secp384r1"]);
    }
}
