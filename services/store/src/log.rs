//! The event log: one JetStream stream, one subject per aggregate, one message per command.
//!
//! Appends carry `Nats-Msg-Id` = command id (a retry lands once) and
//! `Nats-Expected-Last-Subject-Sequence` = the version the writer decided on (optimistic
//! concurrency). Loading an aggregate is one get of its subject's last message, whose header holds
//! a snapshot of the aggregate; replaying every commit is the fallback.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    self, ErrorCode,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    context::{Context, GetStreamErrorKind, PublishErrorKind},
    stream::{Config as StreamConfig, LastRawMessageErrorKind, StorageType, Stream},
};
use bytes::Bytes;
use futures::StreamExt;
use uuid::Uuid;
use zhzj_proto::{
    AggregateType, Commit,
    subjects::{EVENT_STREAM, EVENT_SUBJECTS, SNAPSHOT_HEADER, aggregate_subject},
};
use zhzj_trust::chain::{
    KEY_HEADER, PREVIOUS_HEADER, PROOF_HEADER, SIGNATURE_HEADER, stored_commit_digest,
};
use zhzj_trust::seal::SEAL_SUBJECT;
use zhzj_trust::{CommitDigest, CommitSigner, commit_digest};

/// How the stream is created.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Stream replicas: 1 on a single node, 3 on a cluster.
    pub replicas: usize,
    /// How long JetStream remembers message ids for de-duplication.
    pub duplicate_window: Duration,
    /// Whether this connection may create the stream or change its configuration (the admin
    /// credential, or a server without authentication). A role without it finds the stream
    /// as it needs it or stops with what to run.
    pub administer: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            administer: true,
        }
    }
}

/// What an operator runs to create or upgrade the stream with the admin credential.
const LOG_INIT_HINT: &str = "run `zhzj log init` with the admin credential (README, \"Security\")";

/// The log could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// JetStream did not answer or refused the request.
    #[error("JetStream is unavailable: {0}")]
    Unavailable(String),
    /// The stream exists but is set up differently from what zhzj needs.
    #[error("stream {EVENT_STREAM} exists with an unsuitable configuration: {0}")]
    Misconfigured(String),
}

/// The version an append expects the aggregate to be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The aggregate has no events yet.
    NoStream,
    /// The aggregate's last commit is at this stream sequence.
    Exactly(u64),
}

impl ExpectedVersion {
    /// The expected-last-subject-sequence header value.
    fn subject_sequence(self) -> u64 {
        match self {
            Self::NoStream => 0,
            Self::Exactly(version) => version,
        }
    }
}

/// One command's commit to append.
#[derive(Debug)]
pub struct AppendRequest<'a, D = serde_json::Value> {
    /// The aggregate's kind.
    pub aggregate_type: AggregateType,
    /// The aggregate's id.
    pub aggregate_id: &'a str,
    /// The version the decision was made on.
    pub expected: ExpectedVersion,
    /// The digest of the aggregate's commit at that version (None when it has none): the link
    /// of the hash chain this commit continues.
    pub previous: Option<CommitDigest>,
    /// The command id; JetStream de-duplicates on it.
    pub command_id: Uuid,
    /// The events.
    pub commit: &'a Commit<D>,
    /// The aggregate after them as the compact JSON of a [`Snapshot`], stored in the message
    /// header.
    pub snapshot_json: Option<String>,
}

/// A successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The commit is now in the log at this version.
    Committed {
        /// Stream sequence of the commit.
        version: u64,
        /// The commit's digest: the previous link of the aggregate's next commit.
        digest: CommitDigest,
    },
    /// The same command was committed before (a retry); this is its version.
    AlreadyCommitted {
        /// Stream sequence of the first commit.
        version: u64,
    },
}

impl AppendOutcome {
    /// The commit's version either way.
    pub fn version(self) -> u64 {
        match self {
            Self::Committed { version, .. } | Self::AlreadyCommitted { version } => version,
        }
    }
}

/// Why an append failed; nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer changed the aggregate after the decision was made.
    #[error("version conflict: the aggregate is at {current_version:?}")]
    Conflict {
        /// The aggregate's current version (None if it has no events).
        current_version: Option<u64>,
    },
    /// The commit is larger than the server accepts.
    #[error("commit of {bytes} bytes is larger than the server accepts")]
    TooLarge {
        /// Size of the encoded commit.
        bytes: usize,
    },
    /// The commit could not be encoded.
    #[error("commit cannot be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// The aggregate's last commit cannot be read ([`LoadError::Corrupt`]), so whether the
    /// command was committed before cannot be told; nothing was appended.
    #[error("the aggregate's history cannot be read: {0}")]
    CorruptHistory(LoadError),
    /// JetStream did not acknowledge; the append may or may not have happened, and a retry with
    /// the same command id is safe.
    #[error("JetStream did not acknowledge the append: {0}")]
    Unavailable(String),
}

/// Why an aggregate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// JetStream did not answer.
    #[error("JetStream is unavailable: {0}")]
    Unavailable(String),
    /// A stored message is not a readable commit.
    #[error("message {position} is not a readable commit: {reason}")]
    Corrupt {
        /// Its stream sequence.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// A commit as read back from the log.
#[derive(Debug, Clone)]
pub struct StoredCommit {
    /// Stream sequence (global position, and the aggregate's version after it).
    pub position: u64,
    /// Its digest in the aggregate's hash chain.
    pub digest: CommitDigest,
    /// The commit.
    pub commit: Commit,
    /// The snapshot header as stored: the compact JSON of a [`Snapshot`], parsed by whoever
    /// knows the state's type.
    pub snapshot_json: Option<String>,
}

impl StoredCommit {
    /// Decodes a message of `subject`: the payload is the commit, the header the snapshot.
    pub fn decode(
        position: u64,
        subject: &str,
        payload: &[u8],
        headers: Option<&async_nats::HeaderMap>,
    ) -> Result<Self, LoadError> {
        let digest = stored_commit_digest(subject, headers, SNAPSHOT_HEADER, payload);
        Self::decode_with_digest(position, digest, payload, headers)
    }

    /// [`StoredCommit::decode`] with the message's digest already computed.
    fn decode_with_digest(
        position: u64,
        digest: CommitDigest,
        payload: &[u8],
        headers: Option<&async_nats::HeaderMap>,
    ) -> Result<Self, LoadError> {
        let commit = serde_json::from_slice(payload).map_err(|e| LoadError::Corrupt {
            position,
            reason: e.to_string(),
        })?;
        let snapshot_json = headers
            .and_then(|h| h.get(SNAPSHOT_HEADER))
            .map(|value| value.as_str().to_owned());
        Ok(Self {
            position,
            digest,
            commit,
            snapshot_json,
        })
    }

    /// The id of the command that produced this commit.
    pub fn command_id(&self) -> Option<Uuid> {
        self.commit.events.first().map(|event| event.command_id)
    }
}

/// A message of an aggregate's subject, decoded or not.
#[derive(Debug)]
pub struct StoredMessage {
    /// Its stream sequence.
    pub position: u64,
    /// Its digest in the aggregate's hash chain (whether it can be read or not).
    pub digest: CommitDigest,
    /// The commit, or why it cannot be read ([`LoadError::Corrupt`]).
    pub commit: Result<StoredCommit, LoadError>,
}

/// Handle on the event stream.
#[derive(Debug, Clone)]
pub struct EventLog {
    // Behind `Arc`s: every command handler clones the log, and a stream handle carries the
    // stream's whole configuration.
    js: Arc<Context>,
    stream: Arc<Stream>,
    /// Signs each commit's digest; None for a log that only reads (and in old tests' writers,
    /// whose commits then verify as unchained).
    signer: Option<crate::signing::BatchSigner>,
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}

impl EventLog {
    /// Creates the stream (and the personal-data key bucket) if it is missing, or checks that the
    /// existing one fits.
    pub async fn open(client: async_nats::Client, config: &LogConfig) -> Result<Self, LogError> {
        if config.administer {
            // The key store of personal data lives beside the log and is made with it.
            crate::vault::create_bucket(client.clone(), config.replicas)
                .await
                .map_err(unavailable)?;
        }
        let js = jetstream::new(client);
        let stream = match js.get_stream(EVENT_STREAM).await {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(unavailable)?;
                check_stream_config(&info.config, config)?;
                upgrade_stream(&js, &info.config, config).await?;
                stream
            }
            Err(e) => match e.kind() {
                GetStreamErrorKind::JetStream(inner)
                    if inner.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    if !config.administer {
                        return Err(LogError::Misconfigured(format!(
                            "it does not exist and this credential may not create it; {LOG_INIT_HINT}"
                        )));
                    }
                    create_stream(&js, config).await?
                }
                _ => return Err(unavailable(e)),
            },
        };
        Ok(Self {
            js: Arc::new(js),
            stream: Arc::new(stream),
            signer: None,
        })
    }

    /// The stream as it is, whatever its configuration, for reading only (`zhzj verify` must
    /// read a log someone may have reconfigured).
    pub async fn open_existing(client: async_nats::Client) -> Result<Self, LogError> {
        let js = jetstream::new(client);
        let stream = js.get_stream(EVENT_STREAM).await.map_err(unavailable)?;
        Ok(Self {
            js: Arc::new(js),
            stream: Arc::new(stream),
            signer: None,
        })
    }

    /// This log, signing every commit it appends with `signer` (in batches, see
    /// [`crate::signing`]). Starts the signing task: call it inside the runtime.
    pub fn with_signer(mut self, signer: Arc<CommitSigner>) -> Self {
        self.signer = Some(crate::signing::BatchSigner::spawn(signer));
        self
    }

    /// The key of its appends' signatures, if any.
    pub fn signer(&self) -> Option<&Arc<CommitSigner>> {
        self.signer.as_ref().map(crate::signing::BatchSigner::key)
    }

    /// The JetStream context, for consumers.
    pub fn context(&self) -> &Context {
        &self.js
    }

    /// The stream handle.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Appends one commit, atomically, if the aggregate is still at the expected version.
    pub async fn append<D: serde::Serialize>(
        &self,
        request: AppendRequest<'_, D>,
    ) -> Result<AppendOutcome, AppendError> {
        let payload = Bytes::from(serde_json::to_vec(request.commit)?);
        let subject = aggregate_subject(request.aggregate_type, request.aggregate_id);
        let size = payload.len();
        let digest = commit_digest(
            &subject,
            request.previous.as_ref(),
            request.snapshot_json.as_deref().map(str::as_bytes),
            &payload,
        );
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(request.command_id.to_string())
            .expected_last_subject_sequence(request.expected.subject_sequence());
        if let Some(snapshot) = &request.snapshot_json {
            // Compact JSON has no line breaks, so it is a valid header value.
            publish = publish.header(SNAPSHOT_HEADER, snapshot.as_str());
        }
        if let Some(signer) = &self.signer {
            if let Some(previous) = &request.previous {
                publish = publish.header(PREVIOUS_HEADER, previous.to_hex().as_str());
            }
            let signed = signer.sign(digest).await;
            publish = publish
                .header(KEY_HEADER, signed.key_id.as_str())
                .header(SIGNATURE_HEADER, signed.signature.as_str());
            if !signed.proof.is_empty() {
                publish = publish.header(PROOF_HEADER, signed.proof.as_str());
            }
        }
        let ack = match self.js.send_publish(subject, publish).await {
            Ok(ack_future) => ack_future.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(ack) if ack.duplicate => Ok(AppendOutcome::AlreadyCommitted {
                version: ack.sequence,
            }),
            Ok(ack) => Ok(AppendOutcome::Committed {
                version: ack.sequence,
                digest,
            }),
            Err(e) => match e.kind() {
                PublishErrorKind::WrongLastSequence => {
                    // 2.10+ check the expected sequence before the message id, so a retry after a
                    // lost acknowledgement lands here rather than as a duplicate: look for the
                    // command in the aggregate's log before calling it a conflict.
                    let kind = request.aggregate_type;
                    let id = request.aggregate_id;
                    // A commit of this command, if any, came after the version it expected.
                    let after = request.expected.subject_sequence();
                    match self.find_command(kind, id, request.command_id, after).await {
                        Ok((Some(version), _)) => Ok(AppendOutcome::AlreadyCommitted { version }),
                        Ok((None, current_version)) => {
                            Err(AppendError::Conflict { current_version })
                        }
                        Err(e @ LoadError::Corrupt { .. }) => Err(AppendError::CorruptHistory(e)),
                        Err(e) => Err(AppendError::Unavailable(e.to_string())),
                    }
                }
                PublishErrorKind::MaxPayloadExceeded => Err(AppendError::TooLarge { bytes: size }),
                _ => Err(AppendError::Unavailable(e.to_string())),
            },
        }
    }

    /// Looks for the commit of `command_id` among an aggregate's commits after position `after`;
    /// returns its version if found, and the aggregate's current version.
    pub async fn find_command(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
        command_id: Uuid,
        after: u64,
    ) -> Result<(Option<u64>, Option<u64>), LoadError> {
        let Some(last) = self.load_last(aggregate_type, aggregate_id).await? else {
            return Ok((None, None));
        };
        if last.command_id() == Some(command_id) {
            return Ok((Some(last.position), Some(last.position)));
        }
        let later = self
            .read_aggregate_range(aggregate_type, aggregate_id, after + 1, last.position)
            .await?;
        let found = later
            .iter()
            .find(|stored| stored.command_id() == Some(command_id))
            .map(|stored| stored.position);
        Ok((found, Some(last.position)))
    }

    /// The last commit of an aggregate, or None if it has none. One request to the server.
    pub async fn load_last(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
    ) -> Result<Option<StoredCommit>, LoadError> {
        let subject = aggregate_subject(aggregate_type, aggregate_id);
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => StoredCommit::decode(
                message.sequence,
                &subject,
                &message.payload,
                Some(&message.headers),
            )
            .map(Some),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(LoadError::Unavailable(e.to_string())),
        }
    }

    /// Every commit of an aggregate up to `up_to` (inclusive), in order, by an ordered consumer.
    /// Slower than [`EventLog::load_last`]; for replays and audits.
    pub async fn read_aggregate(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
        up_to: u64,
    ) -> Result<Vec<StoredCommit>, LoadError> {
        self.read_aggregate_range(aggregate_type, aggregate_id, 1, up_to)
            .await
    }

    /// The commits of an aggregate at stream positions `from..=up_to`, in order.
    pub async fn read_aggregate_range(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
        from: u64,
        up_to: u64,
    ) -> Result<Vec<StoredCommit>, LoadError> {
        self.read_aggregate_messages(aggregate_type, aggregate_id, from, up_to)
            .await?
            .into_iter()
            .map(|message| message.commit)
            .collect()
    }

    /// The stream sequence of an aggregate's last message, read or not; None if it has none.
    pub async fn last_version(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
    ) -> Result<Option<u64>, LoadError> {
        let subject = aggregate_subject(aggregate_type, aggregate_id);
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Ok(Some(message.sequence)),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(LoadError::Unavailable(e.to_string())),
        }
    }

    /// Every message of an aggregate at positions `from..=up_to`, in order, each decoded or
    /// with the reason it cannot be: for replays that must step over commits an administrator
    /// skipped, and for finding the unreadable ones.
    pub async fn read_aggregate_messages(
        &self,
        aggregate_type: AggregateType,
        aggregate_id: &str,
        from: u64,
        up_to: u64,
    ) -> Result<Vec<StoredMessage>, LoadError> {
        if from > up_to {
            return Ok(Vec::new());
        }
        let subject = aggregate_subject(aggregate_type, aggregate_id);
        let consumer = self
            .stream
            .create_consumer(OrderedConfig {
                filter_subject: subject.clone(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| LoadError::Unavailable(e.to_string()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| LoadError::Unavailable(e.to_string()))?;
        let mut commits = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
            let message = match next {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => return Err(LoadError::Unavailable(e.to_string())),
                Ok(None) => break,
                Err(_) => return Err(LoadError::Unavailable("replay timed out".into())),
            };
            let position = message
                .info()
                .map_err(|e| LoadError::Unavailable(e.to_string()))?
                .stream_sequence;
            let headers = message.headers.as_ref();
            let digest = stored_commit_digest(&subject, headers, SNAPSHOT_HEADER, &message.payload);
            commits.push(StoredMessage {
                position,
                digest,
                commit: StoredCommit::decode_with_digest(
                    position,
                    digest,
                    &message.payload,
                    headers,
                ),
            });
            if position >= up_to {
                break;
            }
        }
        Ok(commits)
    }

    /// The stream's last sequence: the position of the newest commit.
    pub async fn last_position(&self) -> Result<u64, LogError> {
        let mut stream = Stream::clone(&self.stream);
        let info = stream.info().await.map_err(unavailable)?;
        Ok(info.state.last_sequence)
    }
}

async fn create_stream(js: &Context, config: &LogConfig) -> Result<Stream, LogError> {
    js.create_stream(StreamConfig {
        name: EVENT_STREAM.to_owned(),
        subjects: stream_subjects(),
        storage: StorageType::File,
        num_replicas: config.replicas,
        max_age: Duration::ZERO,
        duplicate_window: config.duplicate_window,
        // The log is never edited: JetStream refuses to delete a message or purge the stream,
        // whoever asks, and neither setting can be turned off again.
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    })
    .await
    .map_err(unavailable)
}

/// The stream's subjects: the aggregates' commits and the seals.
fn stream_subjects() -> Vec<String> {
    vec![EVENT_SUBJECTS.to_owned(), SEAL_SUBJECT.to_owned()]
}

/// A stream an earlier version created is brought up to date: it is switched to deny message
/// deletes and purges (JetStream lets a stream take these on, never give them up), and takes the
/// seals' subject.
async fn upgrade_stream(
    js: &Context,
    found: &StreamConfig,
    config: &LogConfig,
) -> Result<(), LogError> {
    let has_seals = found.subjects.iter().any(|s| s == SEAL_SUBJECT);
    if found.deny_delete && found.deny_purge && has_seals {
        return Ok(());
    }
    if !config.administer {
        return Err(LogError::Misconfigured(format!(
            "it was made by an earlier version (it allows deletes, or lacks the seals' subject); {LOG_INIT_HINT}"
        )));
    }
    let mut upgraded = found.clone();
    upgraded.deny_delete = true;
    upgraded.deny_purge = true;
    if !has_seals {
        upgraded.subjects.push(SEAL_SUBJECT.to_owned());
    }
    js.update_stream(&upgraded).await.map_err(unavailable)?;
    tracing::info!(
        stream = EVENT_STREAM,
        "the log now denies message deletes and purges, and takes seals"
    );
    Ok(())
}

fn check_stream_config(found: &StreamConfig, wanted: &LogConfig) -> Result<(), LogError> {
    if !found.subjects.iter().any(|s| s == EVENT_SUBJECTS) {
        return Err(LogError::Misconfigured(format!(
            "subjects are {:?}, expected {EVENT_SUBJECTS}",
            found.subjects
        )));
    }
    if found.storage != StorageType::File {
        return Err(LogError::Misconfigured("storage is not file".into()));
    }
    if found.max_age != Duration::ZERO || found.max_messages > 0 || found.max_bytes > 0 {
        return Err(LogError::Misconfigured(
            "the stream has an age, message or size limit; the log must keep everything".into(),
        ));
    }
    if found.num_replicas != wanted.replicas {
        return Err(LogError::Misconfigured(format!(
            "it has {} replica(s) but {} are configured; change one to match the other",
            found.num_replicas, wanted.replicas
        )));
    }
    Ok(())
}
