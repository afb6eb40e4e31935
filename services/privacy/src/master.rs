//! The master key: 32 bytes kept outside the log and the read store (a file readable only by the
//! service account, or an environment variable), which wraps every data key. Data keys are only
//! ever stored wrapped, each bound to its key id, so a copy of the key store without the master
//! key opens nothing.
//!
//! Rotation: with the old and the new master key, every wrapped data key is unwrapped and wrapped
//! again ([`MasterKey::rewrap`]); the sealed personal data itself does not change, so the log is
//! untouched and every signature still verifies. The wrapped value names the master key it was
//! made with, so a store half-way through a rotation is still readable with both keys at hand.

use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::PrivacyError;
use crate::cipher::{Algorithm, DataKey};

/// The key that wraps data keys.
pub struct MasterKey {
    key: DataKey,
    id: String,
    algorithm: Algorithm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A master key from 64 hex digits; data keys are wrapped with `algorithm`.
    pub fn from_hex(text: &str, algorithm: Algorithm) -> Result<Self, PrivacyError> {
        let text = Zeroizing::new(text.trim().to_owned());
        let bytes = Zeroizing::new(
            hex::decode(text.as_str()).map_err(|e| PrivacyError::BadMasterKey(e.to_string()))?,
        );
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| PrivacyError::BadMasterKey(format!("{} bytes", bytes.len())))?;
        let digest = Sha256::new()
            .chain_update(b"zhzj master key id\0")
            .chain_update(bytes)
            .finalize();
        Ok(Self {
            id: hex::encode(&digest[..4]),
            key: DataKey::from_bytes(bytes),
            algorithm,
        })
    }

    /// Reads the master key from `path` (64 hex digits).
    pub fn load(path: &Path, algorithm: Algorithm) -> Result<Self, PrivacyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            PrivacyError::MasterKeyFile {
                path: path.to_owned(),
                source,
            }
        })?);
        Self::from_hex(&text, algorithm)
    }

    /// A new random master key, as the 64 hex digits to keep in its file.
    pub fn generate_hex() -> Result<Zeroizing<String>, PrivacyError> {
        Ok(Zeroizing::new(hex::encode(DataKey::generate()?.as_bytes())))
    }

    /// The key's id: the first 4 bytes of a hash of it, to tell which master key wrapped what.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The algorithm data keys are wrapped, and personal data sealed, with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `data_key` wrapped for storage under `key_id`: `<master id>:v1.<algorithm>.<base64>`.
    pub fn wrap(&self, key_id: &str, data_key: &DataKey) -> Result<String, PrivacyError> {
        let sealed = self
            .key
            .seal(self.algorithm, key_id.as_bytes(), data_key.as_bytes())?;
        Ok(format!("{}:{sealed}", self.id))
    }

    /// The data key stored as `wrapped` under `key_id`; refused when another master key wrapped
    /// it, or it was stored under another id.
    pub fn unwrap(&self, key_id: &str, wrapped: &str) -> Result<DataKey, PrivacyError> {
        let Some((master_id, sealed)) = wrapped.split_once(':') else {
            return Err(PrivacyError::Malformed("expected <master id>:<sealed>"));
        };
        if master_id != self.id {
            return Err(PrivacyError::Unauthentic);
        }
        let bytes = Zeroizing::new(self.key.open(key_id.as_bytes(), sealed)?);
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| PrivacyError::Malformed("a data key is 32 bytes"))?;
        Ok(DataKey::from_bytes(bytes))
    }

    /// `wrapped` (made by `old`) wrapped again by `self`; one already made by `self` is
    /// returned as it is, so a rotation that stopped half-way can be run again.
    pub fn rewrap(&self, old: &Self, key_id: &str, wrapped: &str) -> Result<String, PrivacyError> {
        if wrapped.starts_with(&format!("{}:", self.id)) {
            self.unwrap(key_id, wrapped)?;
            return Ok(wrapped.to_owned());
        }
        self.wrap(key_id, &old.unwrap(key_id, wrapped)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_key_survives_rotation_and_opens_only_under_its_own_id()
    -> Result<(), Box<dyn std::error::Error>> {
        let old = MasterKey::from_hex(&MasterKey::generate_hex()?, Algorithm::Aes256Gcm)?;
        let new = MasterKey::from_hex(&MasterKey::generate_hex()?, Algorithm::Sm4Gcm)?;
        let data_key = DataKey::generate()?;
        let sealed = data_key.seal(Algorithm::Aes256Gcm, b"p1/name", "庄辉珠".as_bytes())?;

        let wrapped = old.wrap("p1", &data_key)?;
        assert!(wrapped.starts_with(&format!("{}:v1.aes256gcm.", old.id())));
        assert!(old.unwrap("p2", &wrapped).is_err(), "bound to its key id");
        assert!(new.unwrap("p1", &wrapped).is_err(), "another master key");

        let rotated = new.rewrap(&old, "p1", &wrapped)?;
        assert!(rotated.starts_with(&format!("{}:v1.sm4gcm.", new.id())));
        assert_eq!(
            new.rewrap(&old, "p1", &rotated)?,
            rotated,
            "run again: unchanged"
        );
        let reopened = new.unwrap("p1", &rotated)?;
        assert_eq!(reopened.open(b"p1/name", &sealed)?, "庄辉珠".as_bytes());
        assert!(
            old.unwrap("p1", &rotated).is_err(),
            "the old key is no longer needed"
        );
        Ok(())
    }

    #[test]
    fn a_bad_master_key_is_refused_with_what_is_wrong() {
        assert!(matches!(
            MasterKey::from_hex("abcd", Algorithm::Aes256Gcm),
            Err(PrivacyError::BadMasterKey(_))
        ));
        assert!(matches!(
            MasterKey::from_hex(&"zz".repeat(32), Algorithm::Aes256Gcm),
            Err(PrivacyError::BadMasterKey(_))
        ));
        assert!(matches!(
            MasterKey::load(Path::new("/nonexistent/master.key"), Algorithm::Aes256Gcm),
            Err(PrivacyError::MasterKeyFile { .. })
        ));
    }
}
