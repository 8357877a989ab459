//! Why a signed credential was refused.

/// Why a stream key or playback token did not verify. Deliberately coarse:
/// the caller logs it and refuses, and the client learns only "refused".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not of the form `STREAM.EXPIRY.SIG` with a decimal expiry and a
    /// 64-character lowercase hex signature.
    #[error("malformed credential")]
    Malformed,
    /// The signature does not match: wrong secret, tampered fields, or a
    /// credential of the other kind (key used as token or vice versa).
    #[error("bad signature")]
    BadSignature,
    /// Genuine but past its expiry (unix seconds).
    #[error("credential expired at {expired_at}")]
    Expired { expired_at: u64 },
    /// The stream name is not 1-64 characters of `[A-Za-z0-9_-]`.
    #[error("invalid stream name")]
    BadStreamName,
}
