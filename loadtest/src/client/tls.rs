//! rustls client configuration (ring provider): trusted roots from a PEM
//! file, or with `--insecure` a verifier that accepts any certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::ClientError;

/// Where trust comes from.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Accept any certificate (self-signed test servers). Signatures on the
    /// handshake are still checked, so the peer must hold the key it shows.
    Insecure,
    /// Trust only the certificates in this PEM file.
    CaFile(std::path::PathBuf),
}

/// A rustls client config offering `alpn`.
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<ClientConfig, ClientError> {
    let provider = livecdn_shared::tls::crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ClientError::Tls)?;
    let mut config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth(),
        Trust::CaFile(path) => builder
            .with_root_certificates(roots(path)?)
            .with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, ClientError> {
    let ca = |reason: String| ClientError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca(e.to_string()))? {
        let cert = cert.map_err(|e| ca(e.to_string()))?;
        store.add(cert).map_err(|e| ca(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(ca("no certificates in the file".into()));
    }
    Ok(store)
}

/// Accepts any server certificate; only built when `--insecure` is given.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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
