//! How the edge trusts an origin's push certificate: by SPKI pin
//! (`upstream.push_spki`, base64 SHA-256 of the certificate's public key),
//! or not at all with `upstream.push_insecure`. Pins suit self-signed origin
//! certificates (no CA, no hostname), and the handshake signature is still
//! checked, so a pinned key cannot be impersonated.

use livecdn_shared::push::ALPN;
use livecdn_shared::tls::spki_sha256_base64;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
struct PinVerifier {
    pins: Vec<String>,
    insecure: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        let pin = spki_sha256_base64(end_entity)
            .map_err(|e| Error::General(format!("push certificate: {e}")))?;
        if self.pins.contains(&pin) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::General(format!(
                "push certificate pin {pin} is not in upstream.push_spki"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The QUIC client config for push connections.
pub fn client_config(pins: &[String], insecure: bool) -> Result<quinn::ClientConfig, String> {
    let provider = livecdn_shared::tls::crypto_provider();
    let verifier = Arc::new(PinVerifier {
        pins: pins.to_vec(),
        insecure,
        provider: provider.clone(),
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(Duration::from_secs(2)))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(64));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}
