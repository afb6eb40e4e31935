//! Authenticated encryption of one value under one data key: AES-256-GCM (the default) or SM4-GCM
//! (国密, for deployments assessed on it), with a fresh 96-bit nonce per value and the record the
//! value belongs to as associated data, so that a ciphertext copied onto another petitioner or
//! field does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{PrivacyError, random_bytes};

/// SM4 in Galois/Counter Mode with a 96-bit nonce (GB/T 32907 block cipher, GCM as in RFC 8998).
type Sm4Gcm = AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

/// The cipher values are sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// AES-256-GCM.
    #[default]
    Aes256Gcm,
    /// SM4-GCM (国密 SM4, 128-bit key: the first half of the data key).
    Sm4Gcm,
}

impl Algorithm {
    /// The name in a sealed value and in settings.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes256gcm",
            Self::Sm4Gcm => "sm4gcm",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = PrivacyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "aes256gcm" => Ok(Self::Aes256Gcm),
            "sm4gcm" => Ok(Self::Sm4Gcm),
            _ => Err(PrivacyError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// A 256-bit data key: one per petitioner. Wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, PrivacyError> {
        Ok(Self(random_bytes()?))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes (to wrap it).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// SM4's 128-bit key: the first half of the data key.
    fn sm4_key(&self) -> [u8; 16] {
        let mut key = [0_u8; 16];
        key.copy_from_slice(&self.0[..16]);
        key
    }

    /// Seals `plaintext` bound to `context` (which record and field it belongs to).
    pub fn seal(
        &self,
        algorithm: Algorithm,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<String, PrivacyError> {
        let nonce: [u8; 12] = random_bytes()?;
        let payload = Payload {
            msg: plaintext,
            aad: context,
        };
        let sealed = match algorithm {
            Algorithm::Aes256Gcm => {
                Aes256Gcm::new((&self.0).into()).encrypt(&Nonce::from(nonce), payload)
            }
            Algorithm::Sm4Gcm => {
                Sm4Gcm::new(&self.sm4_key().into()).encrypt(&Nonce::from(nonce), payload)
            }
        }
        .map_err(|_| PrivacyError::Unauthentic)?;
        let mut bytes = Vec::with_capacity(12 + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "v1.{}.{}",
            algorithm.tag(),
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Opens a value [`DataKey::seal`] made with this key and the same `context`, whichever
    /// algorithm it names.
    pub fn open(&self, context: &[u8], sealed: &str) -> Result<Vec<u8>, PrivacyError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(tag), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(PrivacyError::Malformed("expected v1.<algorithm>.<base64>"));
        };
        let algorithm: Algorithm = tag.parse()?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| PrivacyError::Malformed("not base64"))?;
        if bytes.len() < 12 + 16 {
            return Err(PrivacyError::Malformed("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| PrivacyError::Malformed("too short"))?;
        let payload = Payload {
            msg: ciphertext,
            aad: context,
        };
        match algorithm {
            Algorithm::Aes256Gcm => {
                Aes256Gcm::new((&self.0).into()).decrypt(&Nonce::from(nonce), payload)
            }
            Algorithm::Sm4Gcm => {
                Sm4Gcm::new(&self.sm4_key().into()).decrypt(&Nonce::from(nonce), payload)
            }
        }
        .map_err(|_| PrivacyError::Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_round_trip_and_refuse_the_wrong_key_or_record()
    -> Result<(), Box<dyn std::error::Error>> {
        let key = DataKey::generate()?;
        let other = DataKey::generate()?;
        for algorithm in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
            let sealed = key.seal(
                algorithm,
                b"case-1/0/id_number",
                "350203199001010423".as_bytes(),
            )?;
            assert!(sealed.starts_with(&format!("v1.{}.", algorithm.tag())));
            assert!(!sealed.contains("350203199001010423"));
            assert_eq!(
                key.open(b"case-1/0/id_number", &sealed)?,
                b"350203199001010423"
            );
            assert!(matches!(
                other.open(b"case-1/0/id_number", &sealed),
                Err(PrivacyError::Unauthentic)
            ));
            assert!(matches!(
                key.open(b"case-2/0/id_number", &sealed),
                Err(PrivacyError::Unauthentic)
            ));
            // One altered character and it no longer opens.
            let mut altered = sealed.clone().into_bytes();
            let last = altered.len() - 2;
            altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
            assert!(
                key.open(b"case-1/0/id_number", &String::from_utf8(altered)?)
                    .is_err()
            );
        }
        // The same value twice seals differently (a fresh nonce each time).
        assert_ne!(
            key.seal(Algorithm::Aes256Gcm, b"c", b"x")?,
            key.seal(Algorithm::Aes256Gcm, b"c", b"x")?
        );
        Ok(())
    }

    #[test]
    fn sm4_gcm_matches_the_published_test_vector() -> Result<(), Box<dyn std::error::Error>> {
        // RFC 8998, appendix A.1 (SM4-GCM).
        let key = hex::decode("0123456789ABCDEFFEDCBA9876543210")?;
        let nonce = hex::decode("00001234567800000000ABCD")?;
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")?;
        let plaintext = hex::decode(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD\
             EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        )?;
        let key: [u8; 16] = key.as_slice().try_into()?;
        let nonce: [u8; 12] = nonce.as_slice().try_into()?;
        let sealed = Sm4Gcm::new(&key.into())
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| "sealing failed")?;
        let (ciphertext, tag) = sealed.split_at(plaintext.len());
        assert_eq!(
            hex::encode_upper(ciphertext),
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735\
             D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        );
        assert_eq!(hex::encode_upper(tag), "83DE3541E4C2B58177E065A9BF7B62EC");
        Ok(())
    }
}
