//! Keyed blind indexes: the duplicate check compares HMAC-SHA-256 values of a normalised ID number
//! (or of a normalised name with a town), never the plaintext. The key is a secret of its own,
//! stored wrapped by the master key like a data key, and kept across master-key rotations so that
//! indexes stay comparable; without it an index cannot be tested against guessed ID numbers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC an index keeps.
const INDEX_BYTES: usize = 16;

use crate::cipher::DataKey;

/// The key of the blind indexes.
#[derive(Debug, Clone)]
pub struct BlindIndexKey(DataKey);

impl BlindIndexKey {
    /// The index key from its (unwrapped) key.
    pub fn new(key: DataKey) -> Self {
        Self(key)
    }

    fn index(&self, domain: &str, value: &str) -> String {
        // A key of 32 bytes is always accepted by HMAC.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_bytes()) else {
            return String::new();
        };
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        // The first 128 bits, in 22 characters: safe against collisions among every petitioner a
        // province will ever hold, and a third of the whole MAC in hex (every registration
        // carries two indexes in the log).
        let mac = mac.finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&mac[..INDEX_BYTES])
    }

    /// The index of an ID number (trimmed, the check letter in upper case).
    pub fn id_number(&self, id_number: &str) -> String {
        self.index("id_number", &id_number.trim().to_ascii_uppercase())
    }

    /// The index of a name (already in its normal form) in a town.
    pub fn name_in_town(&self, normalized_name: &str, town_id: &str) -> String {
        self.index("name_town", &format!("{normalized_name}\0{town_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_the_same_value_only_and_depend_on_the_key()
    -> Result<(), Box<dyn std::error::Error>> {
        let key = BlindIndexKey::new(DataKey::generate()?);
        let id = "35020319900101042X";
        assert_eq!(key.id_number(id), key.id_number(" 35020319900101042x "));
        assert_ne!(key.id_number(id), key.id_number("350203199001010423"));
        assert_ne!(
            key.name_in_town("庄辉珠", "xm-siming-zhonghua"),
            key.name_in_town("庄辉珠", "xm-siming-lujiang")
        );
        assert_ne!(key.id_number(id), key.name_in_town(id, ""), "domains apart");
        let other = BlindIndexKey::new(DataKey::generate()?);
        assert_ne!(key.id_number(id), other.id_number(id));
        assert!(!key.id_number(id).contains("3502"));
        assert_eq!(key.id_number(id).len(), 22);
        Ok(())
    }
}
