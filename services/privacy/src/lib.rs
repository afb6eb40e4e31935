//! Petitioners' personal data at rest (PIPL; GB/T 22239 level 3 expects 国密 to be selectable).
//!
//! The pieces, each small enough to check by eye:
//! - [`cipher`]: authenticated encryption of one value under one data key, AES-256-GCM by default
//!   or SM4-GCM, as a self-describing text (`v1.aes256gcm.<base64>`) that names its algorithm so
//!   that both can be read side by side after a switch;
//! - [`master`]: the master key, read from a file or the environment, that wraps every data key
//!   (a data key is stored only wrapped), and its rotation;
//! - [`blind`]: keyed blind indexes (HMAC-SHA-256) of an ID number and of a name in a town, so
//!   that the duplicate check compares indexes, never plaintext.
//!
//! Crypto-shredding follows from the shape: a petitioner's fields are sealed under their own data
//! key, so destroying that key (the wrapped copy in the key store) leaves ciphertext nobody can
//! open, while the append-only log and its signatures stay as they are.

pub mod blind;
pub mod cipher;
pub mod master;

pub use blind::BlindIndexKey;
pub use cipher::{Algorithm, DataKey};
pub use master::MasterKey;

/// Everything that can go wrong sealing or opening personal data.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The operating system gave no random bytes.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// A sealed value is not in the `v1.<algorithm>.<base64>` form.
    #[error("not a sealed value: {0}")]
    Malformed(&'static str),
    /// The algorithm named is not one this build knows.
    #[error("unknown algorithm `{0}` (aes-256-gcm or sm4-gcm)")]
    UnknownAlgorithm(String),
    /// Authentication failed: the wrong key, the wrong context, or altered bytes.
    #[error("the value does not open with this key (wrong key, wrong record, or altered)")]
    Unauthentic,
    /// A master key file or value is not 64 hex digits.
    #[error("a master key is 32 bytes written as 64 hex digits: {0}")]
    BadMasterKey(String),
    /// The master key file could not be read or written.
    #[error("master key file {path}: {source}")]
    MasterKeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A random identifier: 96 bits from the operating system in 16 base64url characters (short,
/// because key ids travel in every sealed registration).
pub fn random_id() -> Result<String, PrivacyError> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<12>()?))
}

/// `len` random bytes from the operating system.
fn random_bytes<const N: usize>() -> Result<[u8; N], PrivacyError> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes).map_err(|e| PrivacyError::Random(e.to_string()))?;
    Ok(bytes)
}
