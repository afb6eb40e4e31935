//! The commit signing key and the public keys a verifier trusts.
//!
//! Only the command services (`cases`, `campaign`) hold the signing key: it is separate from every
//! NATS credential, so even the holder of the stream's admin credential cannot append a commit
//! that verifies. The key is an Ed25519 seed in hex in a 0600 file; its public half goes into a
//! trusted-keys file, one key per line, that `zhzj verify` reads (old keys stay there after a
//! rotation, so commits they signed keep verifying).

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::chain::CommitDigest;

/// A key file could not be read, written or understood.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold what it should.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The operating system gave no randomness.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `text` to a new file readable by its owner only (0600), replacing any earlier one.
pub fn write_private_file(path: &Path, text: &str) -> Result<(), KeyError> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error(path))
}

/// The short id of a public key: the first 16 hex digits of its SHA-256.
fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Signs commits and seals.
pub struct CommitSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CommitSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret half.
        f.debug_struct("CommitSigner")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl CommitSigner {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// Reads a key file (64 hex digits).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|e| KeyError::Malformed {
            path: path.display().to_string(),
            reason: format!("not a signing key (64 hex digits): {e}"),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// Reads the key at `path`, or makes one there (0600) when there is none, and makes sure
    /// its public half is among the trusted keys in `trusted_path`.
    pub fn load_or_create(path: &Path, trusted_path: &Path) -> Result<Self, KeyError> {
        let signer = if path.exists() {
            Self::load(path)?
        } else {
            let signer = Self::generate()?;
            write_private_file(path, &format!("{}\n", hex::encode(signer.key.to_bytes())))?;
            tracing::info!(key = %signer.key_id, file = %path.display(), "made a new commit signing key");
            signer
        };
        signer.trust_in(trusted_path)?;
        Ok(signer)
    }

    /// Adds this key's public half to a trusted-keys file, unless it is there already.
    pub fn trust_in(&self, trusted_path: &Path) -> Result<(), KeyError> {
        let mut trusted = if trusted_path.exists() {
            std::fs::read_to_string(trusted_path).map_err(io_error(trusted_path))?
        } else {
            String::new()
        };
        let line = self.public_key_line();
        if trusted.lines().any(|l| l.trim() == line) {
            return Ok(());
        }
        if !trusted.is_empty() && !trusted.ends_with('\n') {
            trusted.push('\n');
        }
        trusted.push_str(&line);
        trusted.push('\n');
        write_private_file(trusted_path, &trusted)
    }

    /// The key's id, stored beside every signature so a verifier knows which key to use.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half as a line of a trusted-keys file.
    pub fn public_key_line(&self) -> String {
        format!(
            "ed25519 {}",
            hex::encode(self.key.verifying_key().as_bytes())
        )
    }

    /// The signature of a digest, in hex.
    pub fn sign(&self, digest: &CommitDigest) -> String {
        crate::chain::lower_hex(&self.key.sign(&digest.0).to_bytes())
    }

    /// The public keys that verify this signer's signatures.
    pub fn trusted(&self) -> TrustedKeys {
        let mut keys = TrustedKeys::default();
        keys.add(self.key.verifying_key());
        keys
    }
}

/// The public keys whose signatures a verifier accepts, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<String, VerifyingKey>,
}

impl TrustedKeys {
    /// Reads a trusted-keys file: lines `ed25519 <64 hex digits>`, blank lines and `#` comments
    /// allowed.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let mut keys = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |reason: &str| KeyError::Malformed {
                path: path.display().to_string(),
                reason: format!("line {}: {reason}", n + 1),
            };
            let hex_key = line
                .strip_prefix("ed25519 ")
                .ok_or_else(|| malformed("expected `ed25519 <public key in hex>`"))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hex_key.split_whitespace().next().unwrap_or(""), &mut bytes)
                .map_err(|_| malformed("the public key is not 64 hex digits"))?;
            let key =
                VerifyingKey::from_bytes(&bytes).map_err(|_| malformed("not an Ed25519 key"))?;
            keys.add(key);
        }
        if keys.keys.is_empty() {
            return Err(KeyError::Malformed {
                path: path.display().to_string(),
                reason: "names no key".into(),
            });
        }
        Ok(keys)
    }

    fn add(&mut self, key: VerifyingKey) {
        self.keys.insert(key_id(&key), key);
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this id.
    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    /// Whether `signature` (hex) is the named key's signature of `digest`.
    pub fn verifies(&self, key_id: &str, digest: &CommitDigest, signature: &str) -> bool {
        let (Some(key), Some(signature)) = (self.get(key_id), parse_signature(signature)) else {
            return false;
        };
        key.verify_strict(&digest.0, &signature).is_ok()
    }
}

/// A signature from its hex form.
pub fn parse_signature(text: &str) -> Option<Signature> {
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
    Some(Signature::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_key_signs_what_its_public_half_verifies_and_nothing_else() -> Result<(), KeyError> {
        let dir = tempfile::tempdir().map_err(|e| KeyError::Random(e.to_string()))?;
        let (key_path, trusted_path) = (dir.path().join("k"), dir.path().join("k.pub"));
        let signer = CommitSigner::load_or_create(&key_path, &trusted_path)?;
        let again = CommitSigner::load_or_create(&key_path, &trusted_path)?;
        assert_eq!(signer.key_id(), again.key_id(), "stable across restarts");
        let mode = std::fs::metadata(&key_path)
            .map_err(io_error(&key_path))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let trusted = TrustedKeys::load(&trusted_path)?;
        assert_eq!(trusted.len(), 1, "written once");
        let digest = CommitDigest([3; 32]);
        let signature = signer.sign(&digest);
        assert!(trusted.verifies(signer.key_id(), &digest, &signature));
        assert!(!trusted.verifies(signer.key_id(), &CommitDigest([4; 32]), &signature));
        let other = CommitSigner::generate()?;
        assert!(!trusted.verifies(other.key_id(), &digest, &other.sign(&digest)));
        assert!(!trusted.verifies(signer.key_id(), &digest, "00"));
        Ok(())
    }
}
