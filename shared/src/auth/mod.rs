//! Signed credentials: stream keys that authorise publishing, and playback
//! tokens that authorise viewing, both `STREAM.EXPIRY.SIG`.
//!
//! Why signed rather than looked up: the origin and every edge can check a
//! credential with only the shared secret, no database round trip on the hot
//! path, and an operator can mint keys offline (`livecdn key`). EXPIRY bounds
//! the damage of a leaked key.
//!
//! ```
//! use livecdn_shared::auth::{sign_key, verify_key, verify_token, KeyError};
//!
//! let key = sign_key(b"secret", "studio-1", 2_000_000_000);
//! assert_eq!(verify_key(b"secret", &key, 1_700_000_000).as_deref(), Ok("studio-1"));
//! // A stream key is not a playback token.
//! assert_eq!(verify_token(b"secret", &key, 1_700_000_000), Err(KeyError::BadSignature));
//! ```

mod cluster;
mod compare;
mod error;
mod signed;
mod stream_key;
mod token;

pub use cluster::{bearer, sign_cluster, verify_cluster};
pub use compare::same_secret;
pub use error::KeyError;
pub use stream_key::{sign_key, valid_stream_name, verify_key};
pub use token::{sign_token, verify_token};
