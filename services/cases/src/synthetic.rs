//! A synthetic case history written straight into the stream, built exactly as the service builds
//! its commits (envelopes and snapshot headers) but without paying for the service: for the
//! catch-up benchmark and the tests that need a log of hundreds of thousands of commits.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use futures::{StreamExt, stream::FuturesUnordered};
use uuid::Uuid;
use zhzj_proto::{
    Actor, AggregateType, CaseEvent, Command, CommandRequest, DomainEvent, Snapshot,
    commands::RecordNote,
    events::{
        CaseRegistered, Channel, ListSource, MeasureAdded, MeasureCompleted, NoteRecorded,
        Petitioner, RecordedPetitioner, UnitRef,
    },
    subjects::{SNAPSHOT_HEADER, aggregate_subject},
};

use crate::aggregate::Aggregate;
use crate::case::{CaseState, measure_id};
use crate::service::build_commit;
use zhzj_trust::chain::{KEY_HEADER, PREVIOUS_HEADER, SIGNATURE_HEADER};

/// Publishes in flight at most. Well under the JetStream context's 5,000 acknowledgement
/// permits: two histories written at once on one connection each hold their own, and a writer
/// waiting for a permit while its own acknowledgements go unpolled would wait for ever.
const IN_FLIGHT: usize = 2_048;

/// Writing the history failed.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticHistoryError {
    /// A commit or snapshot could not be encoded.
    #[error("encoding a commit: {0}")]
    Encode(#[from] serde_json::Error),
    /// JetStream refused or did not acknowledge a publish.
    #[error("publishing a commit: {0}")]
    Publish(String),
}

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticHistory {
    /// Commits in all (one event each).
    pub commits: usize,
    /// Cases they are spread over, round robin: the first round registers them.
    pub cases: usize,
    /// Characters of each note's text (at least the usual short sentence), to make commits as
    /// large as a test needs.
    pub note_chars: usize,
    /// The first case's number in the id space (case `i` has id `first_case + i`), so that two
    /// histories can be written into one stream without colliding.
    pub first_case: u128,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct WrittenHistory {
    /// Wall time.
    pub elapsed: Duration,
    /// Each case's id and the stream sequence of its last commit.
    pub last_positions: Vec<(Uuid, u64)>,
}

/// Writes `history` into the stream behind `js`, unsigned (as a log older than the chain).
pub async fn write_history(
    js: &async_nats::jetstream::Context,
    history: SyntheticHistory,
) -> Result<WrittenHistory, SyntheticHistoryError> {
    write_signed_history(js, history, None).await
}

/// Writes `history` into the stream behind `js`; with a signer, each commit is chained to its
/// case's previous one and signed, as the service writes them.
pub async fn write_signed_history(
    js: &async_nats::jetstream::Context,
    history: SyntheticHistory,
    signer: Option<&zhzj_store::CommitSigner>,
) -> Result<WrittenHistory, SyntheticHistoryError> {
    let started = Instant::now();
    let cases = history.cases.max(1);
    let mut states: Vec<(Uuid, CaseState)> = (0..cases)
        .map(|i| {
            (
                Uuid::from_u128(history.first_case + i as u128 + 1),
                CaseState::default(),
            )
        })
        .collect();
    let mut last_positions = vec![0; cases];
    let mut heads: Vec<Option<zhzj_store::CommitDigest>> = vec![None; cases];
    let district = UnitRef {
        id: "xm-siming".into(),
        name: "思明区".into(),
    };
    let note = note_text(history.note_chars);
    let publish_error = |e: &dyn std::fmt::Display| SyntheticHistoryError::Publish(e.to_string());
    let mut in_flight = FuturesUnordered::new();
    let now = Utc::now();
    for n in 0..history.commits {
        let c = n % cases;
        let (case_id, state) = &mut states[c];
        let round = n / cases;
        let event = synthetic_event(c, round, state, &district, &note);
        let event = DomainEvent::Case(event);
        state.apply(&event);
        let request = note_request(*case_id);
        let snapshot = Snapshot {
            schema_version: CaseState::SNAPSHOT_VERSION,
            state: &*state,
        };
        let id = case_id.to_string();
        let commit = build_commit(&request, AggregateType::Case, &id, &[event], now)?;
        let (payload, snapshot) = (
            serde_json::to_vec(&commit)?,
            serde_json::to_string(&snapshot)?,
        );
        let subject = aggregate_subject(AggregateType::Case, &id);
        let mut publish = async_nats::jetstream::message::PublishMessage::build()
            .message_id(request.command_id.to_string())
            .header(SNAPSHOT_HEADER, snapshot.as_str());
        if let Some(signer) = signer {
            let previous = heads[c];
            let digest = zhzj_trust::commit_digest(
                &subject,
                previous.as_ref(),
                Some(snapshot.as_bytes()),
                &payload,
            );
            if let Some(previous) = previous {
                publish = publish.header(PREVIOUS_HEADER, previous.to_hex().as_str());
            }
            publish = publish
                .header(KEY_HEADER, signer.key_id())
                .header(SIGNATURE_HEADER, signer.sign(&digest).as_str());
            heads[c] = Some(digest);
        }
        let publish = publish.payload(Bytes::from(payload));
        let ack = js
            .send_publish(subject, publish)
            .await
            .map_err(|e| publish_error(&e))?
            .into_future();
        in_flight.push(async move { (c, ack.await) });
        while in_flight.len() >= IN_FLIGHT {
            if let Some((case, ack)) = in_flight.next().await {
                let sequence = ack.map_err(|e| publish_error(&e))?.sequence;
                last_positions[case] = last_positions[case].max(sequence);
            }
        }
    }
    while let Some((case, ack)) = in_flight.next().await {
        let sequence = ack.map_err(|e| publish_error(&e))?.sequence;
        last_positions[case] = last_positions[case].max(sequence);
    }
    Ok(WrittenHistory {
        elapsed: started.elapsed(),
        last_positions: states
            .iter()
            .map(|(id, _)| *id)
            .zip(last_positions)
            .collect(),
    })
}

/// The `round`th event of case `c`: its registration, then measures added and completed in
/// turn, and notes.
fn synthetic_event(
    c: usize,
    round: usize,
    state: &CaseState,
    district: &UnitRef,
    note: &str,
) -> CaseEvent {
    if round == 0 {
        CaseEvent::Registered(CaseRegistered {
            case_number: format!("BENCH-{c:07}"),
            petitioners: vec![RecordedPetitioner::Plain(Petitioner {
                name: "测试信访人".into(),
                id_number: None,
                phone: Some("13800000000".into()),
                address: Some("思明区某街道".into()),
            })],
            matter: "要求解决房屋征收补偿问题".into(),
            category: "征地拆迁".into(),
            district: district.clone(),
            town: None,
            channel: Channel::Visit,
            first_filed_on: NaiveDate::from_ymd_opt(2025, 1, 2).unwrap_or_default(),
            list_source: ListSource::Screening,
            group_size: 1,
        })
    } else if round % 3 == 1 {
        CaseEvent::MeasureAdded(MeasureAdded {
            measure_id: measure_id(state.measures_added + 1),
            description: "约谈信访人并制定化解方案".into(),
            due_on: None,
            responsible_unit: None,
        })
    } else if let Some(open) = (1..=state.measures_added)
        .find(|n| !state.measures_completed.contains(n))
        .filter(|_| round % 3 == 2)
    {
        CaseEvent::MeasureCompleted(MeasureCompleted {
            measure_id: measure_id(open),
            result: "已完成".into(),
        })
    } else {
        CaseEvent::NoteRecorded(NoteRecorded {
            text: note.to_owned(),
        })
    }
}

/// The request a synthetic commit is recorded under (a note by `bench`, as an administrator).
fn note_request(case_id: Uuid) -> CommandRequest {
    CommandRequest {
        command_id: Uuid::new_v4(),
        correlation_id: None,
        causation_id: None,
        actor: Actor {
            user_id: "bench".into(),
            roles: vec![zhzj_proto::accounts::Role::Admin.as_str().into()],
            unit_id: None,
            leader_id: None,
        },
        expected_version: None,
        unknown_outcome_retry: false,
        command: Command::RecordNote(RecordNote {
            case_id,
            text: String::new(),
        }),
    }
}

/// A note of about `chars` characters: the usual sentence, repeated.
fn note_text(chars: usize) -> String {
    const SENTENCE: &str = "已与信访人电话沟通，";
    let mut text = String::from("已与信访人电话沟通");
    while text.chars().count() < chars {
        text.push_str(SENTENCE);
    }
    text
}
