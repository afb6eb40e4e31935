//! The hash chain of commits: what a commit's digest covers and the headers that carry the chain.
//!
//! A commit's digest covers its subject (so a commit copied onto another case does not verify),
//! the digest of the aggregate's previous commit (so removing, inserting or reordering commits
//! of one aggregate breaks the chain), the snapshot header (which the command services load
//! state from) and the payload. The command service signs the digest; the stream stores the
//! previous digest, the key id and the signature as message headers beside the commit.

use sha2::{Digest as _, Sha256};

/// Header naming the digest of the aggregate's previous commit (absent on its first commit).
pub const PREVIOUS_HEADER: &str = "Zhzj-Prev";
/// Header naming the signing key (see [`crate::CommitSigner::key_id`]).
pub const KEY_HEADER: &str = "Zhzj-Key";
/// Header holding the Ed25519 signature, in hex: of the commit's digest, or of the root of the
/// batch of commits signed together ([`PROOF_HEADER`]).
pub const SIGNATURE_HEADER: &str = "Zhzj-Sig";
/// Header proving the commit's digest is a leaf of the signed batch root: the sibling digests
/// from the leaf up, each `L<hex>` (sibling on the left) or `R<hex>`, comma-separated. Absent
/// when the commit was signed alone.
pub const PROOF_HEADER: &str = "Zhzj-Proof";

/// A SHA-256 digest: of one commit, or of the log up to a position.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitDigest(pub [u8; 32]);

impl CommitDigest {
    /// The all-zero digest: the log digest before the first message.
    pub const ZERO: Self = Self([0; 32]);

    /// Lower-case hex, as headers, seals and exports print it.
    pub fn to_hex(&self) -> String {
        lower_hex(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn parse_hex(text: &str) -> Option<Self> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The first 16 hex digits: enough to compare a printed digest by eye.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl std::fmt::Display for CommitDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for CommitDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommitDigest({})", self.short())
    }
}

/// Lower-case hex of up to 64 bytes, without `hex::encode`'s char-by-char collect (a measurable
/// part of the command service's time: every commit carries three such values).
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut buffer = [0u8; 128];
    let length = bytes.len().min(64) * 2;
    match hex::encode_to_slice(&bytes[..length / 2], &mut buffer[..length]) {
        Ok(()) if length == bytes.len() * 2 => std::str::from_utf8(&buffer[..length])
            .map_or_else(|_| hex::encode(bytes), str::to_owned),
        _ => hex::encode(bytes),
    }
}

fn framed(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// The digest of one commit as stored on `subject`, after `previous` (the digest of the
/// aggregate's previous commit, None for its first).
pub fn commit_digest(
    subject: &str,
    previous: Option<&CommitDigest>,
    snapshot: Option<&[u8]>,
    payload: &[u8],
) -> CommitDigest {
    let mut hasher = Sha256::new();
    hasher.update(b"zhzj-commit-v1\0");
    framed(&mut hasher, subject.as_bytes());
    match previous {
        Some(previous) => {
            hasher.update([1]);
            hasher.update(previous.0);
        }
        None => hasher.update([0]),
    }
    match snapshot {
        Some(snapshot) => {
            hasher.update([1]);
            framed(&mut hasher, snapshot);
        }
        None => hasher.update([0]),
    }
    framed(&mut hasher, payload);
    CommitDigest(hasher.finalize().into())
}

/// The digest of the log through `position`, given the digest through the position before and
/// the digest of the message at `position`: a running chain over every message in log order,
/// so one value commits to the whole history up to a position (and a removed, inserted or
/// reordered message anywhere changes it).
pub fn log_digest(before: &CommitDigest, position: u64, message: &CommitDigest) -> CommitDigest {
    let mut hasher = Sha256::new();
    hasher.update(b"zhzj-log-v1\0");
    hasher.update(before.0);
    hasher.update(position.to_be_bytes());
    hasher.update(message.0);
    CommitDigest(hasher.finalize().into())
}

fn node(left: &CommitDigest, right: &CommitDigest) -> CommitDigest {
    let mut hasher = Sha256::new();
    hasher.update(b"zhzj-batch-v1\0");
    hasher.update(left.0);
    hasher.update(right.0);
    CommitDigest(hasher.finalize().into())
}

/// The root of a batch of digests signed together, and each leaf's proof ([`PROOF_HEADER`]):
/// a Merkle tree whose odd last node at a level rises unpaired. One digest is its own root with
/// an empty proof.
pub fn batch_root(leaves: &[CommitDigest]) -> (CommitDigest, Vec<String>) {
    let mut proofs = vec![Vec::<String>::new(); leaves.len()];
    // Which leaves sit under each node of the current level.
    let mut level: Vec<(CommitDigest, Vec<usize>)> = leaves
        .iter()
        .enumerate()
        .map(|(i, digest)| (*digest, vec![i]))
        .collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut pairs = level.into_iter();
        while let Some((left, left_leaves)) = pairs.next() {
            match pairs.next() {
                Some((right, right_leaves)) => {
                    let (to_right, to_left) = (
                        format!("R{}", right.to_hex()),
                        format!("L{}", left.to_hex()),
                    );
                    for leaf in &left_leaves {
                        proofs[*leaf].push(to_right.clone());
                    }
                    for leaf in &right_leaves {
                        proofs[*leaf].push(to_left.clone());
                    }
                    let mut under = left_leaves;
                    under.extend(right_leaves);
                    next.push((node(&left, &right), under));
                }
                None => next.push((left, left_leaves)),
            }
        }
        level = next;
    }
    let root = level.first().map_or(CommitDigest::ZERO, |(root, _)| *root);
    (root, proofs.into_iter().map(|p| p.join(",")).collect())
}

/// The batch root a commit's digest and proof lead to; None when the proof is malformed.
pub fn root_from_proof(leaf: &CommitDigest, proof: &str) -> Option<CommitDigest> {
    let mut digest = *leaf;
    for step in proof.split(',').filter(|s| !s.is_empty()) {
        let (side, sibling) = step.split_at_checked(1)?;
        let sibling = CommitDigest::parse_hex(sibling)?;
        digest = match side {
            "L" => node(&sibling, &digest),
            "R" => node(&digest, &sibling),
            _ => return None,
        };
    }
    Some(digest)
}

/// The chain headers of a stored message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainHeaders {
    /// [`PREVIOUS_HEADER`], parsed (None when absent or not a digest).
    pub previous: Option<CommitDigest>,
    /// [`KEY_HEADER`].
    pub key_id: Option<String>,
    /// [`SIGNATURE_HEADER`], as stored.
    pub signature: Option<String>,
    /// [`PROOF_HEADER`], as stored.
    pub proof: Option<String>,
}

impl ChainHeaders {
    /// Reads the chain headers of a message.
    pub fn read(headers: Option<&async_nats::HeaderMap>) -> Self {
        let Some(headers) = headers else {
            return Self::default();
        };
        let text = |name: &str| headers.get(name).map(|value| value.as_str().to_owned());
        Self {
            previous: text(PREVIOUS_HEADER).and_then(|t| CommitDigest::parse_hex(&t)),
            key_id: text(KEY_HEADER),
            signature: text(SIGNATURE_HEADER),
            proof: text(PROOF_HEADER),
        }
    }

    /// Whether the message carries a signature at all (commits before the chain do not).
    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }
}

/// The digest of a stored message, from what the stream holds: for a commit its chain digest,
/// for a seal (no previous link, no snapshot) the digest its signature covers.
pub fn stored_commit_digest(
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    snapshot_header: &str,
    payload: &[u8],
) -> CommitDigest {
    let chain = ChainHeaders::read(headers);
    let snapshot = headers.and_then(|h| h.get(snapshot_header));
    commit_digest(
        subject,
        chain.previous.as_ref(),
        snapshot.map(|value| value.as_str().as_bytes()),
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_commit_changes_its_digest() {
        let base = commit_digest("zhzj.ev.case.a", None, Some(b"{}"), b"{\"x\":1}");
        let previous = CommitDigest([7; 32]);
        let variants = [
            commit_digest("zhzj.ev.case.b", None, Some(b"{}"), b"{\"x\":1}"),
            commit_digest("zhzj.ev.case.a", Some(&previous), Some(b"{}"), b"{\"x\":1}"),
            commit_digest("zhzj.ev.case.a", None, None, b"{\"x\":1}"),
            commit_digest("zhzj.ev.case.a", None, Some(b"{ }"), b"{\"x\":1}"),
            commit_digest("zhzj.ev.case.a", None, Some(b"{}"), b"{\"x\":2}"),
        ];
        for variant in variants {
            assert_ne!(variant, base);
        }
        assert_eq!(
            base,
            commit_digest("zhzj.ev.case.a", None, Some(b"{}"), b"{\"x\":1}")
        );
        assert_eq!(CommitDigest::parse_hex(&base.to_hex()), Some(base));
        assert_eq!(CommitDigest::parse_hex("zz"), None);
    }

    #[test]
    fn every_leaf_of_a_batch_proves_the_same_root() {
        for size in 1..=9u8 {
            let leaves: Vec<CommitDigest> = (0..size).map(|i| CommitDigest([i; 32])).collect();
            let (root, proofs) = batch_root(&leaves);
            for (leaf, proof) in leaves.iter().zip(&proofs) {
                assert_eq!(root_from_proof(leaf, proof), Some(root), "size {size}");
            }
            if size > 1 {
                // Another leaf, or a leaf with another's proof, does not lead there.
                assert_ne!(
                    root_from_proof(&CommitDigest([99; 32]), &proofs[0]),
                    Some(root)
                );
                assert_ne!(root_from_proof(&leaves[0], &proofs[1]), Some(root));
            }
        }
        assert_eq!(root_from_proof(&CommitDigest::ZERO, "X00"), None);
    }

    #[test]
    fn the_log_digest_depends_on_order_and_position() {
        let (a, b) = (CommitDigest([1; 32]), CommitDigest([2; 32]));
        let ab = log_digest(&log_digest(&CommitDigest::ZERO, 1, &a), 2, &b);
        let ba = log_digest(&log_digest(&CommitDigest::ZERO, 1, &b), 2, &a);
        let gap = log_digest(&log_digest(&CommitDigest::ZERO, 1, &a), 3, &b);
        assert_ne!(ab, ba);
        assert_ne!(ab, gap);
    }
}
