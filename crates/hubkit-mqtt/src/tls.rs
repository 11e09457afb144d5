//! The rustls client configuration of an `mqtts://` broker.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::BrokerTls;

/// Builds the client configuration: the CA file's or the system's authorities, an
/// optional client certificate, and ring as the crypto provider. Action steps that call
/// HTTPS services use it too, so a CA file means the same for a broker and a service.
///
/// # Errors
///
/// Returns a message naming the file that cannot be read or the setting that fails.
pub fn client_config(settings: &BrokerTls) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("failed to set up TLS: {err}"))?;
    let builder = if settings.accept_invalid_certs {
        let verifier = AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    } else if let Some(ca_file) = &settings.ca_file {
        let verifier = PinningVerifier::new(ca_file, provider.clone())?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    } else {
        builder.with_root_certificates(root_store(None)?)
    };
    let config = match &settings.client_auth {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let chain = read_certificates(cert_file)?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|err| {
                format!(
                    "failed to read a private key from {}: {err}",
                    key_file.display()
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|err| {
                format!(
                    "client certificate {} is unusable: {err}",
                    cert_file.display()
                )
            })?
        }
    };
    Ok(Arc::new(config))
}

fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certificates(path)? {
                roots.add(cert).map_err(|err| {
                    format!("a certificate in {} is invalid: {err}", path.display())
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(error = %error, "failed to load some system CA certificates");
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "no system CA certificates found; set tls.ca_file for this broker".to_owned(),
                );
            }
        }
    }
    Ok(roots)
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("failed to read certificates from {}: {err}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} contains no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Verifies the server against the certificates of a CA file, and also accepts a server
/// certificate that is itself one of them. A self-signed certificate made with
/// `openssl req -x509` is marked as a CA, which webpki rejects as a server certificate
/// (`CaUsedAsEndEntity`); OpenSSL-based clients such as `mosquitto_sub --cafile` accept it,
/// and a user who put that exact certificate in the file trusts it.
#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl PinningVerifier {
    fn new(ca_file: &Path, provider: Arc<rustls::crypto::CryptoProvider>) -> Result<Self, String> {
        let pinned = read_certificates(ca_file)?;
        let roots = root_store(Some(ca_file))?;
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| format!("failed to use {} as CA file: {err}", ca_file.display()))?;
        Ok(PinningVerifier { inner, pinned })
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|pinned| pinned.as_ref() == end_entity.as_ref()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(rustls::Error::General(format!(
                "the broker's certificate is neither one of the certificates in ca_file nor \
                 signed by one of them ({err})"
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any server certificate but still checks the handshake signature, so the
/// server must hold the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Checks that the TLS settings can be used: the files exist and contain what they
/// should.
///
/// # Errors
///
/// Returns a message naming the file that cannot be read or the setting that fails.
pub fn check_tls(settings: &BrokerTls) -> Result<(), String> {
    client_config(settings).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed_ca(
        name: &str,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        CertificateDer<'static>,
    ) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, cert.pem()).expect("write");
        (dir, path, cert.der().clone())
    }

    #[test]
    fn pinned_self_signed_ca_is_accepted() {
        let (_dir, path, der) = self_signed_ca("broker.local");
        let provider = Arc::new(ring::default_provider());
        let verifier = PinningVerifier::new(&path, provider).expect("verifier");
        let name = ServerName::try_from("broker.local").expect("name");
        let now = UnixTime::now();
        assert!(
            verifier
                .verify_server_cert(&der, &[], &name, &[], now)
                .is_ok()
        );

        let (_other_dir, _other_path, other) = self_signed_ca("broker.local");
        let rejected = verifier
            .verify_server_cert(&other, &[], &name, &[], now)
            .expect_err("a different certificate is not trusted");
        assert!(
            rejected
                .to_string()
                .contains("neither one of the certificates in ca_file"),
            "{rejected}"
        );
    }

    #[test]
    fn unreadable_tls_files_are_named() {
        let missing = BrokerTls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..BrokerTls::default()
        };
        let err = check_tls(&missing).expect_err("missing file");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let err = check_tls(&BrokerTls {
            ca_file: Some(empty),
            ..BrokerTls::default()
        })
        .expect_err("empty file");
        assert!(err.contains("contains no PEM certificate"), "{err}");
    }
}
