//! TLS helpers shared by the edge listeners, the origin push port and the
//! test harness: a self-signed certificate for development, the SPKI pin that
//! chromium accepts for it, and a rustls [`ServerConfig`] built from PEM.
//!
//! No sockets here, and one file helper ([`read_pem_pair`], with
//! [`configured_or_self_signed`] on top) so that every listener loads its
//! certificate the same way. The one clock read is in [`self_signed`], a
//! development convenience; [`self_signed_at`] takes the time as an argument.
//!
//! Why ring explicitly: the workspace builds exactly one rustls with exactly
//! one crypto provider (DEPENDENCIES.md). Relying on the process-wide default
//! provider would panic at run time if a second provider ever got linked in,
//! so every config here names `ring` itself.

use crate::bytes_reader::{ReadError, Reader};
use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a generated certificate is valid. Chromium refuses
/// `--ignore-certificate-errors-spki-list` pins for certificates valid longer
/// than 14 days, so this stays under that, backdating included.
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);

/// How far `not_before` is backdated, to tolerate clock skew between the
/// machine that made the certificate and the client.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Why a TLS helper failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rcgen could not build or sign the certificate (bad SAN, key error).
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM text held no `CERTIFICATE` section.
    #[error("no certificate found in PEM")]
    NoCertificate,
    /// The PEM text held no private key section (PKCS#8, PKCS#1 or SEC1).
    #[error("no private key found in PEM")]
    NoPrivateKey,
    /// The PEM text was not valid PEM (bad base64, unterminated section).
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// A certificate's DER did not have the X.509 shape expected.
    #[error("malformed certificate DER: {0}")]
    Der(&'static str),
    /// A DER length ran past the end of its input.
    #[error("truncated certificate DER: {0}")]
    DerTruncated(#[from] ReadError),
    /// rustls refused the key, the certificate or the protocol versions.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// A configured PEM file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The cryptography every TLS and QUIC endpoint of the project uses.
///
/// aws-lc-rs rather than ring: AES-128-GCM sealing, the bulk of a TLS or
/// QUIC response's cost, measures 1.2x (1452-byte QUIC packets) to 1.5x
/// (16 KiB TLS records) faster on the x86-64 machines this runs on
/// (`cargo bench --bench crypto_providers`).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a PEM certificate chain and its private key from files.
pub fn read_pem_pair(cert: &Path, key: &Path) -> Result<(String, String), TlsError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok((read(cert)?, read(key)?))
}

/// The configured certificate and key (both files, or neither), or else a
/// fresh self-signed certificate for `names`: `(cert_pem, key_pem,
/// self_signed)`.
pub fn configured_or_self_signed(
    cert: Option<&Path>,
    key: Option<&Path>,
    names: &[&str],
) -> Result<(String, String, bool), TlsError> {
    match (cert, key) {
        (Some(c), Some(k)) => read_pem_pair(c, k).map(|(c, k)| (c, k, false)),
        _ => self_signed(names).map(|made| (made.cert_pem, made.key_pem, true)),
    }
}

/// A certificate and its private key, in both PEM (for files and logs) and
/// DER (for rustls and pinning).
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    /// PKCS#8 private key. Secret: never logged (see the `Debug` impl).
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8 private key, DER. Secret.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_der_len", &self.cert_der.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Generates a self-signed ECDSA P-256 certificate valid from an hour ago for
/// [`SELF_SIGNED_VALIDITY`], for `names` plus `localhost` and `127.0.0.1`.
///
/// Reads the wall clock once; use [`self_signed_at`] where time is injected.
pub fn self_signed(names: &[&str]) -> Result<CertifiedKey, TlsError> {
    self_signed_at(names, SystemTime::now())
}

/// [`self_signed`] with the current time passed in. Entries of `names` that
/// parse as IP addresses become IP SANs, the rest DNS SANs.
pub fn self_signed_at(names: &[&str], now: SystemTime) -> Result<CertifiedKey, TlsError> {
    let mut sans: Vec<String> = Vec::with_capacity(names.len() + 2);
    for name in names
        .iter()
        .copied()
        .chain(["localhost", "127.0.0.1"].iter().copied())
    {
        if !sans.iter().any(|s| s == name) {
            sans.push(name.to_string());
        }
    }
    let mut params = rcgen::CertificateParams::new(sans)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "livecdn self-signed");
    params.distinguished_name = dn;
    // A time before the epoch is a broken clock: fall back to the epoch and
    // let the validity check of the client report it.
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let not_before = since_epoch.saturating_sub(BACKDATE);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + not_before;
    params.not_after = epoch + not_before + SELF_SIGNED_VALIDITY;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    })
}

/// Base64 (standard alphabet, padded) of the SHA-256 of the certificate's
/// DER SubjectPublicKeyInfo: the value chromium's
/// `--ignore-certificate-errors-spki-list` expects.
pub fn spki_sha256_base64(cert_der: &[u8]) -> Result<String, TlsError> {
    let spki = subject_public_key_info(cert_der)?;
    Ok(base64_encode(&Sha256::digest(&spki)))
}

/// Extracts the DER SubjectPublicKeyInfo (tag and length included) from an
/// X.509 certificate, with a bounds-checked walk:
/// `Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version OPTIONAL, serial,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, .. }, .. }`.
pub fn subject_public_key_info(cert_der: &[u8]) -> Result<Bytes, TlsError> {
    let mut outer = Reader::new(Bytes::copy_from_slice(cert_der));
    let mut cert = der_enter(&mut outer, TAG_SEQUENCE, "certificate is not a SEQUENCE")?;
    let mut tbs = der_enter(&mut cert, TAG_SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    if tbs.peek_u8()? == TAG_VERSION {
        der_tlv(&mut tbs)?;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        der_tlv(&mut tbs)?;
    }
    let (tag, spki) = der_tlv(&mut tbs)?;
    if tag != TAG_SEQUENCE {
        return Err(TlsError::Der("subjectPublicKeyInfo is not a SEQUENCE"));
    }
    Ok(spki)
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xa0;

/// Reads one TLV and returns its contents as a reader, if the tag matches.
fn der_enter(r: &mut Reader, tag: u8, what: &'static str) -> Result<Reader, TlsError> {
    if r.u8()? != tag {
        return Err(TlsError::Der(what));
    }
    let len = der_len(r)?;
    Ok(r.sub(len)?)
}

/// Reads one TLV; returns its tag and its whole encoding (header included),
/// which is what a hash over a DER structure covers.
fn der_tlv(r: &mut Reader) -> Result<(u8, Bytes), TlsError> {
    let mut whole = r.clone();
    let before = r.remaining();
    let tag = r.u8()?;
    if tag & 0x1f == 0x1f {
        return Err(TlsError::Der("multi-byte tags are not used in X.509"));
    }
    let len = der_len(r)?;
    r.skip(len)?;
    let consumed = before - r.remaining();
    Ok((tag, whole.take(consumed)?))
}

/// Definite DER length: short form, or long form of at most 4 bytes.
fn der_len(r: &mut Reader) -> Result<usize, TlsError> {
    let first = r.u8()?;
    if first < 0x80 {
        return Ok(usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Err(TlsError::Der("indefinite or oversized length"));
    }
    let mut len = 0usize;
    for _ in 0..n {
        len = (len << 8) | usize::from(r.u8()?);
    }
    Ok(len)
}

/// Standard padded base64 (RFC 4648 section 4). Small enough to own rather
/// than add a crate for one 32-byte digest.
fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 0x3f) as usize;
                out.push(char::from(ALPHABET[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// DER of the first certificate in a PEM chain (the leaf), e.g. to pin
/// its public key.
pub fn first_certificate_der(cert_pem: &str) -> Result<Vec<u8>, TlsError> {
    CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .ok_or(TlsError::NoCertificate)?
        .map(|c| c.as_ref().to_vec())
        .map_err(pem_error)
}

/// Builds a rustls server config (ring provider, TLS 1.2 and 1.3, no client
/// auth) from a PEM certificate chain and a PEM private key, advertising
/// `alpn` in order of preference (for example `[b"h2", b"http/1.1"]`, or
/// `[b"h3"]` for QUIC).
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        other => pem_error(other),
    })?;
    let provider = crypto_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn pem_error(e: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem(e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64_encode(input), want);
        }
    }

    #[test]
    fn generated_cert_parses_and_has_expected_sans() {
        let ck = self_signed(&["edge.example"]).unwrap();
        assert!(ck.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(ck.key_pem.contains("PRIVATE KEY"));
        let from_pem = CertificateDer::from_pem_slice(ck.cert_pem.as_bytes()).unwrap();
        assert_eq!(from_pem.as_ref(), &ck.cert_der[..]);
        let spki = subject_public_key_info(&ck.cert_der).unwrap();
        // Independent check: the SPKI rcgen computes from the key itself.
        let key = rcgen::KeyPair::from_pem(&ck.key_pem).unwrap();
        assert_eq!(&spki[..], &key.subject_public_key_info()[..]);
        // The SANs are in the DER as IA5 strings / a 4-byte IP.
        let der = &ck.cert_der;
        for needle in [&b"edge.example"[..], b"localhost", &[127, 0, 0, 1]] {
            assert!(der.windows(needle.len()).any(|w| w == needle));
        }
    }

    #[test]
    fn spki_hash_is_stable_and_44_chars() {
        let ck = self_signed(&[]).unwrap();
        let a = spki_sha256_base64(&ck.cert_der).unwrap();
        let b = spki_sha256_base64(&ck.cert_der).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 44);
        assert!(a.ends_with('='));
        let other = self_signed(&[]).unwrap();
        assert_ne!(a, spki_sha256_base64(&other.cert_der).unwrap());
    }

    #[test]
    fn spki_walk_rejects_garbage_without_panicking() {
        let ck = self_signed(&[]).unwrap();
        for len in 0..ck.cert_der.len() {
            assert!(spki_sha256_base64(&ck.cert_der[..len]).is_err());
        }
        assert!(spki_sha256_base64(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(spki_sha256_base64(&[0x04, 0x00]).is_err());
    }

    #[test]
    fn validity_is_thirteen_days_from_an_hour_before_now() {
        // 1_800_000_000 is 2027-01-15T08:00:00Z.
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ck = self_signed_at(&[], now).unwrap();
        let der = &ck.cert_der;
        for utc_time in [b"270115070000Z", b"270128070000Z"] {
            assert!(der.windows(utc_time.len()).any(|w| w == utc_time));
        }
        assert!(SELF_SIGNED_VALIDITY + BACKDATE <= Duration::from_secs(14 * 24 * 3600));
    }

    #[test]
    fn server_config_builds_for_tcp_and_quic_alpn() {
        let ck = self_signed(&[]).unwrap();
        let tcp = server_config(&ck.cert_pem, &ck.key_pem, &[b"h2", b"http/1.1"]).unwrap();
        assert_eq!(
            tcp.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let quic = server_config(&ck.cert_pem, &ck.key_pem, &[b"h3"]).unwrap();
        assert_eq!(quic.alpn_protocols, vec![b"h3".to_vec()]);
    }

    #[test]
    fn server_config_reports_missing_pem_sections() {
        let ck = self_signed(&[]).unwrap();
        assert!(matches!(
            server_config("", &ck.key_pem, &[]),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            server_config(&ck.cert_pem, &ck.cert_pem, &[]),
            Err(TlsError::NoPrivateKey)
        ));
    }
}
