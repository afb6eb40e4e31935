//! Signs commits in batches: one Ed25519 signature over the Merkle root of the commits appended
//! together, each commit carrying its proof of membership (`zhzj_trust::chain::PROOF_HEADER`).
//!
//! A signature costs about 23 µs on the machines zhzj is measured on, more than the rest of a
//! command's work in the service (16–17 µs); signing every commit alone would cut the service's
//! throughput by half. Commits that reach the log while one batch is being signed wait for the
//! next, so under load a signature is shared by many commits, and a lone commit is signed alone
//! (with no proof) without waiting for company. Every commit still verifies on its own: its
//! digest and proof lead to the root its signature covers.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use zhzj_trust::chain::batch_root;
use zhzj_trust::{CommitDigest, CommitSigner};

/// Commits signed together at most.
const MAX_BATCH: usize = 256;

/// How a commit is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSignature {
    /// The signing key's id.
    pub key_id: String,
    /// The signature of the batch root, in hex.
    pub signature: String,
    /// The commit's proof of membership in the batch; empty when signed alone.
    pub proof: String,
}

type Job = (CommitDigest, oneshot::Sender<CommitSignature>);

/// A handle on the task that signs batches. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BatchSigner {
    signer: Arc<CommitSigner>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl BatchSigner {
    /// Starts the signing task on the current runtime.
    pub fn spawn(signer: Arc<CommitSigner>) -> Self {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let key = Arc::clone(&signer);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = queue.recv().await {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let digests: Vec<CommitDigest> = batch.iter().map(|(digest, _)| *digest).collect();
                let (root, proofs) = batch_root(&digests);
                let signature = key.sign(&root);
                for ((_, reply), proof) in batch.drain(..).zip(proofs) {
                    // An append that gave up waiting needs no answer.
                    let _ = reply.send(CommitSignature {
                        key_id: key.key_id().to_owned(),
                        signature: signature.clone(),
                        proof,
                    });
                }
            }
        });
        Self { signer, jobs }
    }

    /// The key it signs with.
    pub fn key(&self) -> &Arc<CommitSigner> {
        &self.signer
    }

    /// Signs a commit's digest, with whatever other commits are waiting.
    pub async fn sign(&self, digest: CommitDigest) -> CommitSignature {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send((digest, reply)).is_ok()
            && let Ok(signature) = answer.await
        {
            return signature;
        }
        // The task is gone (the runtime is shutting down): sign alone.
        CommitSignature {
            key_id: self.signer.key_id().to_owned(),
            signature: self.signer.sign(&digest),
            proof: String::new(),
        }
    }
}
