//! Seals: signed statements of the log's digest through a position.
//!
//! The log digest through position N chains the digest of every message up to N in log order
//! ([`crate::chain::log_digest`]), so one value commits to the whole history before it. A seal is
//! a message on [`SEAL_SUBJECT`] of the same stream saying "the digest through N is D", signed by
//! a command service. Exports that state a log position state the digest there too, so a printed
//! figure can be checked against the log years later (`zhzj verify --at N`).

use serde::{Deserialize, Serialize};

use crate::chain::{CommitDigest, KEY_HEADER, SIGNATURE_HEADER, commit_digest, log_digest};

/// The subject seals are appended on, in the log's stream.
pub const SEAL_SUBJECT: &str = "zhzj.seal";

/// The subject on which the command services answer "seal through this position" requests.
pub const SEAL_REQUESTS: &str = "zhzj.cmd.seal";

/// What a seal says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealBody {
    /// The last log position it covers.
    pub through: u64,
    /// The log digest through that position, in hex.
    pub log_digest: String,
    /// When it was made (RFC 3339).
    pub sealed_at: String,
    /// Why: `interval`, `bulletin`, `export`, `request`.
    pub reason: String,
}

/// A request on [`SEAL_REQUESTS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealRequest {
    /// The position to seal through; the log's last position when absent.
    pub through: Option<u64>,
    /// Why (recorded in the seal).
    pub reason: String,
}

/// The answer to a [`SealRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SealReply {
    /// The log's digest through the position, and the seal that states it.
    Sealed {
        /// The position covered.
        through: u64,
        /// The log digest through it, in hex.
        log_digest: String,
        /// The stream position of the seal stating it.
        seal_position: u64,
    },
    /// It could not be sealed.
    Failed {
        /// Why.
        reason: String,
    },
}

/// The digest a seal's signature covers.
pub fn seal_digest(payload: &[u8]) -> CommitDigest {
    commit_digest(SEAL_SUBJECT, None, None, payload)
}

/// The headers of a new seal message: the key and its signature.
pub fn seal_headers(signer: &crate::CommitSigner, payload: &[u8]) -> Vec<(&'static str, String)> {
    let digest = seal_digest(payload);
    vec![
        (KEY_HEADER, signer.key_id().to_owned()),
        (SIGNATURE_HEADER, signer.sign(&digest)),
    ]
}

/// The running digest of a log read in order from some known point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    /// The last position folded in (0 before the first message).
    pub position: u64,
    /// The log digest through it.
    pub digest: CommitDigest,
}

impl LogCursor {
    /// Before the first message.
    pub const START: Self = Self {
        position: 0,
        digest: CommitDigest::ZERO,
    };

    /// Folds in the message at `position` (which must be after the cursor).
    pub fn fold(&mut self, position: u64, message: &CommitDigest) {
        self.digest = log_digest(&self.digest, position, message);
        self.position = position;
    }
}
