//! Verification of a whole log, message by message, in log order.
//!
//! [`Verifier`] is fed every message of the stream (position, subject, headers, payload) and
//! checks that positions are contiguous, that every commit after the first signed one carries a
//! trusted key's signature of its digest, that each commit names its aggregate's previous commit,
//! and that every seal states the log digest through its position. It stops at the first problem,
//! reads on a little to say what kind it is, and names the position and the aggregate.
//! Signatures are checked in batches (Ed25519 batch verification), which is what makes a
//! million events verify in seconds.

use std::collections::{BTreeMap, HashMap, HashSet};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::chain::{ChainHeaders, CommitDigest, root_from_proof, stored_commit_digest};
use crate::keys::{TrustedKeys, parse_signature};
use crate::seal::{LogCursor, SEAL_SUBJECT, SealBody, seal_digest};

/// How many signatures are checked together.
const SIGNATURE_BATCH: usize = 512;

/// How many messages after a broken chain are read to tell a reordering from a removal.
const LOOK_AHEAD: u64 = 100_000;

/// What was done to the log at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tampering {
    /// The position holds no message: one was deleted.
    Removed,
    /// The signature does not match the content: the message was altered, or forged.
    Altered,
    /// A commit without a signature after the chain began: inserted by someone without the key.
    Unsigned,
    /// Signed by a key that is not trusted: forged.
    UnknownKey,
    /// The commit names as previous one that comes later in the log: two commits were swapped.
    Reordered,
    /// The commit names a previous commit that is not its aggregate's last: one before it was
    /// removed, or it was inserted.
    ChainBroken,
    /// A seal states a digest the log does not have, or is not properly signed.
    BadSeal,
}

impl Tampering {
    /// A description for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Removed => "message removed (删除)",
            Self::Altered => "commit altered or forged: its signature does not match (篡改)",
            Self::Unsigned => "unsigned commit inserted after the chain began (插入)",
            Self::UnknownKey => "commit signed by an untrusted key (伪造)",
            Self::Reordered => "commits of one aggregate reordered (顺序被调换)",
            Self::ChainBroken => {
                "chain broken: an earlier commit of the aggregate was removed, or this one inserted (断链)"
            }
            Self::BadSeal => "seal does not match the log or is not properly signed (封印不符)",
        }
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Its log position.
    pub position: u64,
    /// The aggregate's subject, when known.
    pub aggregate: Option<String>,
    /// What was done.
    pub tampering: Tampering,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "position {}: {}",
            self.position,
            self.tampering.describe()
        )?;
        if let Some(aggregate) = &self.aggregate {
            let name = aggregate.strip_prefix("zhzj.ev.").unwrap_or(aggregate);
            write!(f, ", aggregate {name}")?;
        }
        Ok(())
    }
}

/// A seal that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSeal {
    /// The seal's own position.
    pub position: u64,
    /// The position it covers through.
    pub through: u64,
    /// The digest it states.
    pub log_digest: CommitDigest,
}

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLog {
    /// The last position read.
    pub through: u64,
    /// The log digest through it.
    pub log_digest: CommitDigest,
    /// The last seal.
    pub last_seal: Option<VerifiedSeal>,
    /// Seals checked.
    pub seals: u64,
    /// Signed commits checked.
    pub signed_commits: u64,
    /// The first signed commit; messages before it predate the chain ("unchained").
    pub chain_starts_at: Option<u64>,
    /// Commits before the chain began.
    pub unchained_commits: u64,
    /// The log digest through each position asked for with [`Verifier::digest_at`].
    pub digests_at: BTreeMap<u64, CommitDigest>,
}

struct PendingSignature {
    position: u64,
    subject: String,
    digest: CommitDigest,
    key: VerifyingKey,
    signature: Signature,
}

struct Break {
    position: u64,
    subject: String,
    named: CommitDigest,
    /// The first missing position before it, if any.
    gap: Option<u64>,
}

/// Verifies a log fed to it in order.
pub struct Verifier {
    keys: TrustedKeys,
    snapshot_header: String,
    cursor: LogCursor,
    heads: HashMap<String, CommitDigest>,
    pending: Vec<PendingSignature>,
    /// Batch roots whose signature was checked (or is pending): a batch's commits share one.
    signed_roots: HashSet<(CommitDigest, [u8; 64])>,
    /// Log digests wanted at positions (seals' and the caller's), filled as they pass.
    wanted: BTreeMap<u64, Option<CommitDigest>>,
    /// Seals waiting for their position's digest: (position, body, digest).
    last_seal: Option<VerifiedSeal>,
    seals: u64,
    signed_commits: u64,
    chain_starts_at: Option<u64>,
    unchained_commits: u64,
    /// The first missing position, not yet explained.
    gap: Option<u64>,
    broken: Option<Break>,
    finding: Option<Finding>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("position", &self.cursor.position)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier trusting `keys`; `snapshot_header` names the header commits keep their
    /// aggregate's snapshot in (part of each commit's digest).
    pub fn new(keys: TrustedKeys, snapshot_header: &str) -> Self {
        Self {
            keys,
            snapshot_header: snapshot_header.to_owned(),
            cursor: LogCursor::START,
            heads: HashMap::new(),
            pending: Vec::new(),
            signed_roots: HashSet::new(),
            wanted: BTreeMap::new(),
            last_seal: None,
            seals: 0,
            signed_commits: 0,
            chain_starts_at: None,
            unchained_commits: 0,
            gap: None,
            broken: None,
            finding: None,
        }
    }

    /// Asks for the log digest through `position` to be reported (and lets a seal through it be
    /// checked). Seals name positions before their own; call this with every seal's `through`
    /// before feeding the log (read the seals first: they are few).
    pub fn digest_at(&mut self, position: u64) {
        self.wanted.entry(position).or_insert(None);
    }

    /// Whether the verdict is known and more messages cannot change it.
    pub fn is_done(&self) -> bool {
        self.finding.is_some()
            || self
                .broken
                .as_ref()
                .is_some_and(|b| self.cursor.position > b.position + LOOK_AHEAD)
    }

    fn fill_wanted(&mut self, before: u64) {
        // Every wanted position below `before` not yet filled has the cursor's digest.
        let from = self.cursor.position;
        for (_, slot) in self.wanted.range_mut(from..before) {
            if slot.is_none() {
                *slot = Some(self.cursor.digest);
            }
        }
    }

    fn found(&mut self, position: u64, aggregate: Option<String>, tampering: Tampering) {
        if self.finding.is_none() {
            self.finding = Some(Finding {
                position,
                aggregate,
                tampering,
            });
        }
    }

    /// Checks the batched signatures; records the first bad one.
    fn flush_signatures(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let messages: Vec<&[u8]> = pending.iter().map(|p| &p.digest.0[..]).collect();
        let signatures: Vec<Signature> = pending.iter().map(|p| p.signature).collect();
        let keys: Vec<VerifyingKey> = pending.iter().map(|p| p.key).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return;
        }
        if let Some(bad) = pending
            .iter()
            .find(|p| p.key.verify_strict(&p.digest.0, &p.signature).is_err())
        {
            let (position, subject) = (bad.position, bad.subject.clone());
            self.found(position, Some(subject), Tampering::Altered);
        }
    }

    /// Feeds the next message of the log.
    pub fn feed(
        &mut self,
        position: u64,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
    ) {
        if self.is_done() {
            return;
        }
        if position <= self.cursor.position {
            return;
        }
        if position > self.cursor.position + 1 && self.gap.is_none() {
            self.gap = Some(self.cursor.position + 1);
        }
        self.fill_wanted(position);
        let digest = stored_commit_digest(subject, headers, &self.snapshot_header, payload);
        if subject == SEAL_SUBJECT {
            self.check_seal(position, headers, payload);
        } else {
            self.check_commit(position, subject, headers, &digest);
        }
        self.cursor.fold(position, &digest);
        if let Some(slot) = self.wanted.get_mut(&position) {
            *slot = Some(self.cursor.digest);
        }
        if self.pending.len() >= SIGNATURE_BATCH {
            self.flush_signatures();
        }
        if self.finding.is_none()
            && let Some(gap) = self.gap
            && self.broken.is_none()
            && self.cursor.position > gap + LOOK_AHEAD
        {
            self.flush_signatures();
            self.found(gap, None, Tampering::Removed);
        }
    }

    fn check_commit(
        &mut self,
        position: u64,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        digest: &CommitDigest,
    ) {
        let chain = ChainHeaders::read(headers);
        // A broken chain waits for the commit it names, which a reordering puts later.
        if let Some(broken) = &self.broken
            && broken.subject == subject
            && broken.named == *digest
        {
            let (at, subject) = (broken.position, broken.subject.clone());
            self.flush_signatures();
            self.found(at, Some(subject), Tampering::Reordered);
            return;
        }
        let named = chain.previous;
        let head = self.heads.insert(subject.to_owned(), *digest);
        if !chain.is_signed() {
            if self.chain_starts_at.is_some() {
                self.flush_signatures();
                self.found(position, Some(subject.to_owned()), Tampering::Unsigned);
            } else {
                self.unchained_commits += 1;
            }
            return;
        }
        self.chain_starts_at.get_or_insert(position);
        self.signed_commits += 1;
        let key = chain.key_id.as_deref().and_then(|id| self.keys.get(id));
        let signature = chain.signature.as_deref().and_then(parse_signature);
        // What was signed: the digest itself, or the root of its batch.
        let signed = match chain.proof.as_deref() {
            Some(proof) => root_from_proof(digest, proof),
            None => Some(*digest),
        };
        match (key, signature, signed) {
            (Some(key), Some(signature), Some(signed)) => {
                if self.signed_roots.insert((signed, signature.to_bytes())) {
                    self.pending.push(PendingSignature {
                        position,
                        subject: subject.to_owned(),
                        digest: signed,
                        key: *key,
                        signature,
                    });
                }
            }
            (None, _, _) => {
                self.flush_signatures();
                self.found(position, Some(subject.to_owned()), Tampering::UnknownKey);
                return;
            }
            (Some(_), _, _) => {
                self.flush_signatures();
                self.found(position, Some(subject.to_owned()), Tampering::Altered);
                return;
            }
        }
        if named != head && self.broken.is_none() {
            match named {
                // Names a commit not seen yet: perhaps reordered; read on.
                Some(named) => {
                    self.broken = Some(Break {
                        position,
                        subject: subject.to_owned(),
                        named,
                        gap: self.gap,
                    });
                }
                None => {
                    self.flush_signatures();
                    self.found(position, Some(subject.to_owned()), Tampering::ChainBroken);
                }
            }
        }
    }

    fn check_seal(
        &mut self,
        position: u64,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
    ) {
        let chain = ChainHeaders::read(headers);
        let signed = chain.key_id.as_deref().zip(chain.signature.as_deref());
        let body: Option<SealBody> = serde_json::from_slice(payload).ok();
        let verdict = match (signed, body) {
            (Some((key_id, signature)), Some(body))
                if body.through < position
                    && self.keys.verifies(key_id, &seal_digest(payload), signature) =>
            {
                let stated = CommitDigest::parse_hex(&body.log_digest);
                let actual = self.wanted.get(&body.through).copied().flatten();
                match (stated, actual) {
                    (Some(stated), Some(actual)) if stated == actual => Some(VerifiedSeal {
                        position,
                        through: body.through,
                        log_digest: stated,
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        match verdict {
            Some(seal) => {
                self.seals += 1;
                self.last_seal = Some(seal);
            }
            // A seal that disagrees with a log with a hole or a broken chain: those are the
            // news, and reading on names their aggregate.
            None if self.gap.is_some() || self.broken.is_some() => {}
            None => {
                self.flush_signatures();
                self.found(position, None, Tampering::BadSeal);
            }
        }
    }

    /// The verdict, once every message was fed.
    pub fn finish(mut self) -> Result<VerifiedLog, Finding> {
        self.flush_signatures();
        if let Some(finding) = self.finding {
            return Err(finding);
        }
        if let Some(broken) = self.broken {
            return Err(match broken.gap {
                Some(gap) => Finding {
                    position: gap,
                    aggregate: Some(broken.subject),
                    tampering: Tampering::Removed,
                },
                None => Finding {
                    position: broken.position,
                    aggregate: Some(broken.subject),
                    tampering: Tampering::ChainBroken,
                },
            });
        }
        if let Some(gap) = self.gap {
            return Err(Finding {
                position: gap,
                aggregate: None,
                tampering: Tampering::Removed,
            });
        }
        let through = self.cursor.position;
        self.fill_wanted(u64::MAX);
        let digests_at = self
            .wanted
            .into_iter()
            .filter_map(|(position, digest)| Some((position, digest?)))
            .filter(|(position, _)| *position <= through)
            .collect();
        Ok(VerifiedLog {
            through,
            log_digest: self.cursor.digest,
            last_seal: self.last_seal,
            seals: self.seals,
            signed_commits: self.signed_commits,
            chain_starts_at: self.chain_starts_at,
            unchained_commits: self.unchained_commits,
            digests_at,
        })
    }
}
