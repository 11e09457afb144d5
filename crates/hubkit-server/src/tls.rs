//! TLS set-up: a self-signed certificate generated on first start, or PEM files from the
//! operator, served with rustls on the ring provider.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hubkit_config::TlsConfig;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Folder inside the data directory that contains the generated certificate and key.
pub const TLS_FOLDER: &str = "tls";

/// A ready TLS server configuration and the facts the start-up log prints.
pub struct TlsSetup {
    /// The rustls configuration, with ALPN `h2` and `http/1.1`.
    pub config: Arc<ServerConfig>,
    /// SHA-256 fingerprint of the leaf certificate, as colon-separated uppercase hex.
    pub fingerprint: String,
    /// The certificate file in use.
    pub cert_path: PathBuf,
    /// Whether the certificate was generated during this call.
    pub generated: bool,
}

/// Error returned when TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file cannot be read or written.
    #[error("failed to access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A PEM file does not contain the expected certificate chain or key.
    #[error("{path} is not a valid PEM {kind}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// `certificate chain` or `private key`.
        kind: &'static str,
        /// The reason.
        reason: String,
    },
    /// Only one of the generated certificate and key exists.
    #[error(
        "found {present} but not {missing}; delete the other file too so a new pair is generated"
    )]
    HalfPair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The certificate could not be generated.
    #[error("failed to generate a self-signed certificate: {0}")]
    Generate(String),
    /// rustls rejected the certificate and key.
    #[error("certificate {cert} and key {key} do not form a valid TLS identity: {reason}")]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

/// Builds the TLS configuration, or returns `None` when TLS is off.
///
/// In self-signed mode the certificate and key live in `<data_dir>/tls/`; they are
/// generated on first start (the key with mode 0600) and reused afterwards.
///
/// # Errors
///
/// Fails when files cannot be read or written, hold no valid PEM, or do not match.
pub fn setup(
    tls: &TlsConfig,
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<Option<TlsSetup>, TlsError> {
    match tls {
        TlsConfig::Off => Ok(None),
        TlsConfig::Files { cert, key } => load(cert, key, false).map(Some),
        TlsConfig::SelfSigned { hostnames } => {
            let folder = data_dir.join(TLS_FOLDER);
            let cert = folder.join("cert.pem");
            let key = folder.join("key.pem");
            let generated = ensure_self_signed(&cert, &key, hostnames, listen)?;
            load(&cert, &key, generated).map(Some)
        }
    }
}

fn ensure_self_signed(
    cert: &Path,
    key: &Path,
    hostnames: &[String],
    listen: SocketAddr,
) -> Result<bool, TlsError> {
    match (cert.exists(), key.exists()) {
        (true, true) => return Ok(false),
        (true, false) => {
            return Err(TlsError::HalfPair {
                present: cert.to_owned(),
                missing: key.to_owned(),
            });
        }
        (false, true) => {
            return Err(TlsError::HalfPair {
                present: key.to_owned(),
                missing: cert.to_owned(),
            });
        }
        (false, false) => {}
    }
    let names = subject_alt_names(hostnames, listen);
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|err| TlsError::Generate(err.to_string()))?;
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    crate::fsutil::write_private_file(key, certified.signing_key.serialize_pem().as_bytes())
        .map_err(io_err(key))?;
    fs::write(cert, certified.cert.pem()).map_err(io_err(cert))?;
    Ok(true)
}

/// Names the generated certificate is valid for: localhost, the loopback addresses, the
/// machine's host name, the listen address when it is a specific one, and configured names.
fn subject_alt_names(hostnames: &[String], listen: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
        }
    }
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(hostnames.iter().cloned());
    names.sort();
    names.dedup();
    names
}

fn load(cert: &Path, key: &Path, generated: bool) -> Result<TlsSetup, TlsError> {
    let chain = read_chain(cert)?;
    let private_key = read_key(key)?;
    let fingerprint = fingerprint(&chain[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let identity_err = |reason: String| TlsError::Identity {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| identity_err(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|err| identity_err(err.to_string()))?;
    // http/1.0 is listed so clients that offer only it (curl --http1.0) can connect; such
    // connections are served by the HTTP/1 code path like http/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), b"http/1.0".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        fingerprint,
        cert_path: cert.to_owned(),
        generated,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let pem_err = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        kind: "certificate chain",
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_err(err.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err("no CERTIFICATE block found".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| TlsError::Pem {
        path: path.to_owned(),
        kind: "private key",
        reason: err.to_string(),
    })
}

/// Returns the SHA-256 fingerprint of a DER certificate as `AB:CD:...`, the form browsers
/// and `openssl x509 -fingerprint -sha256` print.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen() -> SocketAddr {
        "127.0.0.1:0".parse().expect("address")
    }

    #[test]
    fn self_signed_is_generated_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = TlsConfig::SelfSigned {
            hostnames: vec!["hub.local".into()],
        };
        let first = setup(&tls, dir.path(), listen())
            .expect("setup")
            .expect("tls on");
        assert!(first.generated);
        let key = dir.path().join("tls/key.pem");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(&key).expect("metadata").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let second = setup(&tls, dir.path(), listen())
            .expect("setup")
            .expect("tls on");
        assert!(!second.generated);
        assert_eq!(second.fingerprint, first.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
    }

    #[test]
    fn half_pair_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = TlsConfig::SelfSigned { hostnames: vec![] };
        setup(&tls, dir.path(), listen()).expect("setup");
        fs::remove_file(dir.path().join("tls/key.pem")).expect("remove");
        let err = setup(&tls, dir.path(), listen()).err().expect("half pair");
        assert!(matches!(err, TlsError::HalfPair { .. }));
    }

    #[test]
    fn garbage_pem_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        fs::write(&cert, "not a certificate").expect("write");
        fs::write(&key, "not a key").expect("write");
        let tls = TlsConfig::Files { cert, key };
        let err = setup(&tls, dir.path(), listen()).err().expect("bad pem");
        assert!(matches!(err, TlsError::Pem { .. }), "{err}");
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = TlsConfig::Files {
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("key.pem"),
        };
        let err = setup(&tls, dir.path(), listen()).err().expect("missing");
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    #[test]
    fn off_means_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            setup(&TlsConfig::Off, dir.path(), listen())
                .expect("setup")
                .is_none()
        );
    }
}
