//! Seals on the log and the verification of the whole log, over JetStream.
//!
//! [`Sealer`] (run by the command services, which hold the signing key) appends a signed seal
//! stating the log digest through a position: at intervals, after a bulletin is published, and
//! when the gateway asks before an export. [`verify_log`] reads every message of the stream and
//! hands it to [`zhzj_trust::verify::Verifier`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    stream::LastRawMessageErrorKind,
};
use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use zhzj_proto::subjects::SNAPSHOT_HEADER;
use zhzj_trust::seal::{LogCursor, SEAL_SUBJECT, SealBody, SealReply, seal_headers};
use zhzj_trust::verify::{Finding, VerifiedLog, Verifier};
use zhzj_trust::{CommitDigest, CommitSigner, TrustedKeys};

use crate::log::{EventLog, LogError};

/// How long reading the log may wait for the next message before it gives up.
const READ_PATIENCE: Duration = Duration::from_secs(10);

/// A seal could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The position is beyond the log's end.
    #[error("position {asked} is beyond the log's last position {last}")]
    BeyondEnd {
        /// The position asked for.
        asked: u64,
        /// The log's last position.
        last: u64,
    },
    /// JetStream did not answer.
    #[error(transparent)]
    Log(#[from] LogError),
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}

/// One message as read from the stream.
struct RawMessage {
    position: u64,
    subject: String,
    headers: Option<async_nats::HeaderMap>,
    payload: Bytes,
}

/// Reads the stream's messages at positions `from..=to` (all subjects, or one subject), in
/// order, up to the end of the stream.
struct MessageReader {
    messages: Option<async_nats::jetstream::consumer::pull::Ordered>,
    to: u64,
    done: bool,
}

impl MessageReader {
    async fn open(
        log: &EventLog,
        filter: Option<&str>,
        from: u64,
        to: u64,
    ) -> Result<Self, LogError> {
        let last = log.last_position().await?;
        let to = to.min(last);
        if from > to {
            return Ok(Self {
                messages: None,
                to,
                done: true,
            });
        }
        let consumer = log
            .stream()
            .create_consumer(OrderedConfig {
                filter_subject: filter.unwrap_or_default().to_owned(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        Ok(Self {
            messages: Some(messages),
            to,
            done: false,
        })
    }

    async fn next(&mut self) -> Result<Option<RawMessage>, LogError> {
        let Some(messages) = self.messages.as_mut().filter(|_| !self.done) else {
            return Ok(None);
        };
        let message = match tokio::time::timeout(READ_PATIENCE, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(unavailable(e)),
            Ok(None) => return Ok(None),
            Err(_) => return Err(unavailable("reading the log timed out")),
        };
        let info = message.info().map_err(unavailable)?;
        let (position, pending) = (info.stream_sequence, info.pending);
        if position > self.to {
            self.done = true;
            return Ok(None);
        }
        self.done = pending == 0 || position >= self.to;
        let message = message.split().0;
        Ok(Some(RawMessage {
            position,
            subject: message.subject.to_string(),
            headers: message.headers,
            payload: message.payload,
        }))
    }
}

/// Every seal in the log: (position, body), in order.
async fn read_seals(log: &EventLog) -> Result<Vec<(u64, SealBody)>, LogError> {
    let last_seal = match log
        .stream()
        .get_last_raw_message_by_subject(SEAL_SUBJECT)
        .await
    {
        Ok(message) => message.sequence,
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => return Ok(vec![]),
        Err(e) => return Err(unavailable(e)),
    };
    let mut seals = Vec::new();
    let mut reader = MessageReader::open(log, Some(SEAL_SUBJECT), 1, last_seal).await?;
    while let Some(message) = reader.next().await? {
        if let Ok(body) = serde_json::from_slice::<SealBody>(&message.payload) {
            seals.push((message.position, body));
        }
    }
    Ok(seals)
}

/// What a sealer knows: the seals in the log and where it has read to.
#[derive(Debug, Default)]
struct SealerState {
    loaded: bool,
    /// Seals by the position they cover: (digest, seal position).
    known: BTreeMap<u64, (CommitDigest, u64)>,
    /// The furthest point read.
    cursor: Option<LogCursor>,
}

/// Appends seals. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sealer {
    log: EventLog,
    signer: Arc<CommitSigner>,
    state: Arc<tokio::sync::Mutex<SealerState>>,
}

impl Sealer {
    /// A sealer appending to `log`, signing with `signer`.
    pub fn new(log: EventLog, signer: Arc<CommitSigner>) -> Self {
        Self {
            log,
            signer,
            state: Arc::default(),
        }
    }

    /// The log digest through `through` (the log's last position when None), and the position
    /// of a seal stating it, appended now unless the log holds one already.
    pub async fn seal(&self, through: Option<u64>, reason: &str) -> Result<SealReply, SealError> {
        let mut state = self.state.lock().await;
        if !state.loaded {
            for (position, body) in read_seals(&self.log).await? {
                if let Some(digest) = CommitDigest::parse_hex(&body.log_digest) {
                    state.known.insert(body.through, (digest, position));
                }
            }
            state.loaded = true;
        }
        let last = self.log.last_position().await?;
        let through = through.unwrap_or(last);
        if through > last {
            return Err(SealError::BeyondEnd {
                asked: through,
                last,
            });
        }
        if let Some((digest, seal_position)) = state.known.get(&through) {
            return Ok(SealReply::Sealed {
                through,
                log_digest: digest.to_hex(),
                seal_position: *seal_position,
            });
        }
        // Start from the nearest point at or before `through` whose digest is known.
        let mut start = state.known.range(..=through).next_back().map_or(
            LogCursor::START,
            |(position, (digest, _))| LogCursor {
                position: *position,
                digest: *digest,
            },
        );
        if let Some(cursor) = state.cursor
            && cursor.position <= through
            && cursor.position > start.position
        {
            start = cursor;
        }
        let mut cursor = start;
        let mut reader = MessageReader::open(&self.log, None, start.position + 1, through).await?;
        while let Some(message) = reader.next().await? {
            let digest = zhzj_trust::chain::stored_commit_digest(
                &message.subject,
                message.headers.as_ref(),
                SNAPSHOT_HEADER,
                &message.payload,
            );
            cursor.fold(message.position, &digest);
        }
        // Positions after the last message read up to `through` hold nothing.
        cursor.position = through;
        if state.cursor.is_none_or(|c| c.position < through) {
            state.cursor = Some(cursor);
        }
        let body = SealBody {
            through,
            log_digest: cursor.digest.to_hex(),
            sealed_at: chrono::Utc::now().to_rfc3339(),
            reason: reason.to_owned(),
        };
        let payload = serde_json::to_vec(&body).map_err(unavailable)?;
        let mut publish = jetstream::message::PublishMessage::build()
            .message_id(format!("seal-{through}-{}", cursor.digest.short()));
        for (name, value) in seal_headers(&self.signer, &payload) {
            publish = publish.header(name, value.as_str());
        }
        let ack = self
            .log
            .context()
            .send_publish(SEAL_SUBJECT, publish.payload(Bytes::from(payload)))
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        state.known.insert(through, (cursor.digest, ack.sequence));
        tracing::info!(through, seal = ack.sequence, digest = %cursor.digest.short(), reason, "log sealed");
        Ok(SealReply::Sealed {
            through,
            log_digest: cursor.digest.to_hex(),
            seal_position: ack.sequence,
        })
    }

    /// Seals the log every `interval` while it grows, until `shutdown`.
    pub async fn run_interval(self, interval: Duration, shutdown: CancellationToken) {
        let mut sealed_through = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let last = match self.log.last_position().await {
                Ok(last) => last,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot seal the log now");
                    continue;
                }
            };
            if last <= sealed_through {
                continue;
            }
            match self.seal(Some(last), "interval").await {
                // The seal itself is a message: the next seal is due once others follow it.
                Ok(SealReply::Sealed { seal_position, .. }) => sealed_through = seal_position,
                Ok(SealReply::Failed { reason }) => tracing::warn!(%reason, "sealing failed"),
                Err(e) => tracing::warn!(error = %e, "sealing failed"),
            }
        }
    }
}

/// Reads the whole log as [`verify_log`] does, checking nothing: the reference its speed is
/// measured against. Returns how many messages it read.
pub async fn count_messages(log: &EventLog) -> Result<u64, LogError> {
    let last = log.last_position().await?;
    let mut reader = MessageReader::open(log, None, 1, last).await?;
    let mut count = 0;
    while let Some(message) = reader.next().await? {
        count += 1;
        std::hint::black_box(&message.payload);
    }
    Ok(count)
}

/// Reads the whole log and verifies it with `keys`; also reports the log digest through each
/// position of `at`. `Ok(Err(finding))` names the first message that was tampered with.
pub async fn verify_log(
    log: &EventLog,
    keys: TrustedKeys,
    at: &[u64],
) -> Result<Result<VerifiedLog, Finding>, LogError> {
    let mut verifier = Verifier::new(keys, SNAPSHOT_HEADER);
    for (_, seal) in read_seals(log).await? {
        verifier.digest_at(seal.through);
    }
    for position in at {
        verifier.digest_at(*position);
    }
    let last = log.last_position().await?;
    // Reading (network) and checking (hashing, signatures) run side by side.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<RawMessage>>(16);
    let checker = tokio::task::spawn_blocking(move || {
        while let Some(batch) = receiver.blocking_recv() {
            for message in batch {
                verifier.feed(
                    message.position,
                    &message.subject,
                    message.headers.as_ref(),
                    &message.payload,
                );
            }
            if verifier.is_done() {
                break;
            }
        }
        verifier.finish()
    });
    let mut reader = MessageReader::open(log, None, 1, last).await?;
    let mut batch = Vec::with_capacity(1024);
    while let Some(message) = reader.next().await? {
        batch.push(message);
        if batch.len() >= 1024 {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(1024));
            if sender.send(full).await.is_err() {
                // The checker has its verdict.
                break;
            }
        }
    }
    if !batch.is_empty() {
        let _ = sender.send(batch).await;
    }
    drop(sender);
    checker.await.map_err(unavailable)
}
