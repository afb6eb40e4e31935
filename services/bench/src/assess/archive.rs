//! The synthetic year `zhzj bench assess` measures: a directory of districts, towns and leaders,
//! cases with twenty events each (registered, worked, claimed, crossed off, petitioned again …),
//! a quarter's push and a meeting, written straight into the archive and the figures projection.

use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use std::sync::Arc;
use uuid::Uuid;
use zhzj_deadlines::Limits;
use zhzj_projector::ARCHIVE_COLUMNS as COLUMNS;
use zhzj_projector::sqlbuild::{SqlValue, insert_rows};

use zhzj_projector::projection::ReadCommit;
use zhzj_projector::{Projection, ProjectorSettings};
use zhzj_proto::envelope::{Actor, AggregateType, EventEnvelope};
use zhzj_proto::events::{
    ActivityKind, CaseCrossedOff, CaseRegistered, Channel, ClaimAccepted, LeaderActivityRecorded,
    LeaderAdded, LeaderAssigned, LeaderLevel, LeaderRef, ListSource, MeasureAdded,
    MeasureCompleted, NoteRecorded, PetitionRecorded, Petitioner, ProcedureStep,
    ProcedureStepRecorded, ResolutionClaimed, ResolutionGround, ResponsibleUnitsSet, ReviewLevel,
    Satisfaction, SatisfactionRated, UnitAdded, UnitKind, UnitRef,
};
use zhzj_proto::events::{MeetingHeld, PushLaunched, PushTarget};
use zhzj_proto::{CampaignEvent, CaseEvent, DirectoryEvent, DomainEvent};
use zhzj_store::ReadStore;

use super::meeting_held_at;

/// The views the leader view reads (its own, the directory's for the leaders' names, and the
/// checklist and lifecycle views the old computation, the baseline, counted from).
const LEADER_VIEW_PROJECTIONS: [Projection; 4] = [
    Projection::ORG,
    Projection::CHECKLIST,
    Projection::LIFECYCLE,
    Projection::LEADERS,
];

/// Writes the directory, `cases` cases with their histories and the push and meeting into the
/// archive and the projections of `store`; returns the last position and the districts.
pub(super) async fn write(
    store: &ReadStore,
    cases: usize,
) -> anyhow::Result<(i64, Vec<BenchDistrict>)> {
    for projection in [Projection::ARCHIVE, Projection::FIGURES, Projection::AGENDA]
        .into_iter()
        .chain(LEADER_VIEW_PROJECTIONS)
    {
        zhzj_projector::checkpoint::initialise(store, projection).await?;
    }
    let mut writer = Writer::new(None);
    let (districts, department) = write_directory(&mut writer)?;
    let started = Instant::now();
    for n in 0..cases {
        let id = case_uuid(n).to_string();
        for (version, (at, event)) in (1_i64..).zip(case_events(n, &districts, &department)) {
            writer.push("case", &id, version, at, &DomainEvent::Case(event))?;
        }
        if writer.rows.len() >= 100_000 {
            writer.flush(store).await?;
        }
    }
    write_push_and_meeting(&mut writer, cases, &districts)?;
    writer.flush(store).await?;
    let events = writer.position;
    let total = started.elapsed();
    println!(
        "wrote {cases} cases, {events} events into a SQLite archive, the figures, agenda and leader view's projections in {:.1} s, of which the figures projection {:.1} s ({:.0} events/s), the agenda projection {:.1} s ({:.0} events/s), the leader view's {:.1} s ({:.0} events/s)",
        total.as_secs_f64(),
        writer.projecting.as_secs_f64(),
        events as f64 / writer.projecting.as_secs_f64(),
        writer.agenda.as_secs_f64(),
        events as f64 / writer.agenda.as_secs_f64(),
        writer.leaders.as_secs_f64(),
        events as f64 / writer.leaders.as_secs_f64()
    );
    Ok((events, districts))
}

/// Appends one archive row per event (each its own commit) to `rows`.
struct Writer {
    position: i64,
    rows: Vec<Vec<SqlValue>>,
    /// The same events as commits, for the figures projection.
    commits: Vec<ReadCommit>,
    /// Time spent applying them to the figures projection.
    projecting: std::time::Duration,
    /// Time spent applying them to the agenda projection.
    agenda: std::time::Duration,
    /// Time spent applying them to the leader view's projection.
    leaders: std::time::Duration,
    /// Only the events before this moment, into the leader view's projections alone (no
    /// archive, no figures): the log as it stood then.
    before: Option<chrono::DateTime<Utc>>,
}

impl Writer {
    fn new(before: Option<chrono::DateTime<Utc>>) -> Self {
        Self {
            position: 0,
            rows: Vec::new(),
            commits: Vec::new(),
            projecting: std::time::Duration::ZERO,
            agenda: std::time::Duration::ZERO,
            leaders: std::time::Duration::ZERO,
            before,
        }
    }

    fn push(
        &mut self,
        kind: &str,
        id: &str,
        version: i64,
        at: chrono::DateTime<Utc>,
        event: &DomainEvent,
    ) -> anyhow::Result<()> {
        let (event_type, schema_version, data) = event.encode()?;
        self.position += 1;
        // Every event is a commit, as the log has it, so the projection's checkpoint follows.
        if let Some(aggregate_type) = AggregateType::parse(kind) {
            let commit = ReadCommit {
                position: u64::try_from(self.position)?,
                envelopes: vec![EventEnvelope {
                    event_id: Uuid::new_v4(),
                    aggregate_type,
                    aggregate_id: id.to_owned(),
                    event_type: event_type.to_owned(),
                    schema_version,
                    occurred_at: at,
                    actor: Actor {
                        user_id: "bench".into(),
                        roles: Vec::new(),
                        unit_id: None,
                        leader_id: None,
                    },
                    command_id: Uuid::new_v4(),
                    correlation_id: Uuid::new_v4(),
                    causation_id: Uuid::new_v4(),
                    data: data.clone(),
                }],
                events: vec![event.clone()],
            };
            if self.before.is_none_or(|before| at < before) {
                self.commits.push(commit);
            }
        }
        if self.before.is_some() {
            return Ok(());
        }
        self.rows.push(vec![
            SqlValue::Int(self.position),
            SqlValue::Int(0),
            SqlValue::Text(kind.to_owned()),
            SqlValue::Text(id.to_owned()),
            SqlValue::Int(version),
            SqlValue::Text(Uuid::new_v4().to_string()),
            SqlValue::Text(event_type.to_owned()),
            SqlValue::Int(i64::from(schema_version)),
            SqlValue::Text(zhzj_store::sql::timestamp_text(at)),
            SqlValue::Text("bench".into()),
            SqlValue::Text(r#"{"user_id":"bench"}"#.into()),
            SqlValue::Text(Uuid::new_v4().to_string()),
            SqlValue::Text(Uuid::new_v4().to_string()),
            SqlValue::Text(Uuid::new_v4().to_string()),
            SqlValue::Text(data.get().to_owned()),
        ]);
        Ok(())
    }

    async fn flush(&mut self, store: &ReadStore) -> anyhow::Result<()> {
        if self.rows.is_empty() && self.commits.is_empty() {
            return Ok(());
        }
        let mut tx = store.begin_write().await?;
        for chunk in std::mem::take(&mut self.rows).chunks(2_000) {
            insert_rows(
                &mut tx,
                store.dialect(),
                "event_archive_g1",
                &COLUMNS,
                chunk.to_vec(),
                "",
            )
            .await?;
        }
        tx.commit().await?;
        let started = Instant::now();
        let settings = Arc::new(ProjectorSettings {
            limits: Limits::statutory(),
        });
        let commits = std::mem::take(&mut self.commits);
        if self.before.is_none() {
            for batch in commits.chunks(zhzj_projector::runner::BATCH) {
                Projection::FIGURES
                    .apply_offline(store, batch, Arc::clone(&settings))
                    .await?;
            }
        }
        self.projecting += started.elapsed();
        if self.before.is_none() {
            let started = Instant::now();
            for batch in commits.chunks(zhzj_projector::runner::BATCH) {
                Projection::AGENDA
                    .apply_offline(store, batch, Arc::clone(&settings))
                    .await?;
            }
            self.agenda += started.elapsed();
        }
        for batch in commits.chunks(zhzj_projector::runner::BATCH) {
            for projection in LEADER_VIEW_PROJECTIONS {
                let started = Instant::now();
                projection
                    .apply_offline(store, batch, Arc::clone(&settings))
                    .await?;
                if projection == Projection::LEADERS {
                    self.leaders += started.elapsed();
                }
            }
        }
        Ok(())
    }
}

/// The later events of generated case `n` (registered at `start`): the leader's work, the
/// procedure, the claim and its review, crossing off, satisfaction and a new petition.
fn later_events(
    n: usize,
    leader: &LeaderRef,
    start: chrono::DateTime<Utc>,
) -> Vec<(chrono::DateTime<Utc>, CaseEvent)> {
    let day = |d: i64| start + Duration::days(d);
    let date = |d: i64| day(d).date_naive();
    let new_petition = n.is_multiple_of(3);
    let mut events = Vec::new();
    for (k, kind) in [
        ActivityKind::Reception,
        ActivityKind::HomeVisit,
        ActivityKind::Reception,
        ActivityKind::InvitedTalk,
    ]
    .into_iter()
    .enumerate()
    {
        let k = i64::try_from(k).unwrap_or(0);
        events.push((
            day(5 + 10 * k),
            CaseEvent::LeaderActivity(LeaderActivityRecorded {
                leader: leader.clone(),
                kind,
                held_on: date(5 + 10 * k),
                participants: vec!["信访人".into()],
                summary: "听取诉求".into(),
            }),
        ));
    }
    events.push((
        day(10),
        if new_petition {
            CaseEvent::ProcedureStep(ProcedureStepRecorded {
                step: ProcedureStep::AcceptanceNotified,
                on: date(10),
                summary: "告知".into(),
                hearing_days: 0,
            })
        } else {
            CaseEvent::NoteRecorded(NoteRecorded {
                text: "已约谈".into(),
            })
        },
    ));
    events.push((
        day(45),
        CaseEvent::ProcedureStep(ProcedureStepRecorded {
            step: ProcedureStep::Replied,
            on: date(45),
            summary: "答复".into(),
            hearing_days: 0,
        }),
    ));
    events.push((
        day(50),
        CaseEvent::ResolutionClaimed(ResolutionClaimed {
            claim: 1,
            ground: ResolutionGround::Solved,
            summary: "已化解".into(),
            evidence: vec!["回访记录".into()],
        }),
    ));
    events.push((
        day(55),
        CaseEvent::ClaimAccepted(ClaimAccepted {
            claim: 1,
            level: ReviewLevel::District,
            opinion: None,
        }),
    ));
    events.push((
        day(60),
        CaseEvent::ClaimAccepted(ClaimAccepted {
            claim: 1,
            level: ReviewLevel::City,
            opinion: None,
        }),
    ));
    events.push((day(60), CaseEvent::CrossedOff(CaseCrossedOff { claim: 1 })));
    events.push((
        day(62),
        CaseEvent::SatisfactionRated(SatisfactionRated {
            rating: if n.is_multiple_of(4) {
                Satisfaction::BasicallySatisfied
            } else {
                Satisfaction::Satisfied
            },
            rated_on: date(62),
            rated_by: "回访".into(),
        }),
    ));
    events.push((
        day(80),
        CaseEvent::PetitionRecorded(PetitionRecorded {
            received_on: date(80),
            channel: Channel::Phone,
            summary: "再次来电".into(),
            repeat_count: 1,
        }),
    ));
    events
}

/// The events of one generated case: 20 of them, in a year.
fn case_events(
    n: usize,
    districts: &[BenchDistrict],
    department: &UnitRef,
) -> Vec<(chrono::DateTime<Utc>, CaseEvent)> {
    let (district, town, leader) = &districts[n % districts.len()];
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 1, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
        + Duration::hours(i64::try_from(n % 6_000).unwrap_or(0));
    let day = |d: i64| start + Duration::days(d);
    let new_petition = n.is_multiple_of(3);
    let mut events = vec![
        (
            day(0),
            CaseEvent::Registered(CaseRegistered {
                case_number: format!("BENCH-{n:06}"),
                // Written straight into the archive, as registrations before encryption were.
                petitioners: vec![zhzj_proto::events::RecordedPetitioner::Plain(Petitioner {
                    name: format!("信访人{n}"),
                    id_number: None,
                    phone: Some("13800000000".into()),
                    address: None,
                })],
                matter: format!("要求解决征收补偿问题（第{n}件）"),
                category: "征地拆迁".into(),
                district: district.clone(),
                town: Some(town.clone()),
                channel: Channel::Visit,
                first_filed_on: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default(),
                list_source: if new_petition {
                    ListSource::NewPetition
                } else {
                    ListSource::Screening
                },
                group_size: 1,
            }),
        ),
        (
            day(1),
            CaseEvent::LeaderAssigned(LeaderAssigned {
                leader: leader.clone(),
                reason: None,
            }),
        ),
        (
            day(1),
            CaseEvent::ResponsibleUnitsSet(ResponsibleUnitsSet {
                lead: if n.is_multiple_of(5) {
                    department.clone()
                } else {
                    town.clone()
                },
                assisting: Vec::new(),
                handler: None,
            }),
        ),
    ];
    for m in 1..=3_u32 {
        events.push((
            day(2),
            CaseEvent::MeasureAdded(MeasureAdded {
                measure_id: format!("m{m}"),
                description: "核查补偿标准".into(),
                due_on: None,
                responsible_unit: None,
            }),
        ));
    }
    for m in 1..=2_u32 {
        events.push((
            day(20),
            CaseEvent::MeasureCompleted(MeasureCompleted {
                measure_id: format!("m{m}"),
                result: "已落实".into(),
            }),
        ));
    }
    events.extend(later_events(n, leader, start));
    // In the order they happened, as a log has them.
    events.sort_by_key(|(at, _)| *at);
    events
}

/// A generated district: the district, its town, its leader.
pub(super) type BenchDistrict = (UnitRef, UnitRef, LeaderRef);

/// The generated districts: six, with a town and a leader each.
pub(super) fn bench_districts() -> Vec<BenchDistrict> {
    let unit = |id: &str, name: &str| UnitRef {
        id: id.into(),
        name: name.into(),
    };
    ["思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let id = format!("xm-d{i}");
            (
                unit(&id, name),
                unit(&format!("xm-d{i}-t"), &format!("{name}某街道")),
                LeaderRef {
                    id: format!("ldr-{i}"),
                    name: format!("领导{i}"),
                    title: "副区长".into(),
                    unit_id: id,
                },
            )
        })
        .collect()
}

/// Writes the directory: the city, [`bench_districts`], a department; the districts, and the
/// department.
fn write_directory(writer: &mut Writer) -> anyhow::Result<(Vec<BenchDistrict>, UnitRef)> {
    let at = Utc
        .with_ymd_and_hms(2025, 12, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let add_unit = |writer: &mut Writer, unit: &UnitRef, parent: Option<&str>, kind: UnitKind| {
        writer.push(
            "unit",
            &unit.id,
            1,
            at,
            &DomainEvent::Directory(DirectoryEvent::UnitAdded(UnitAdded {
                unit_id: unit.id.clone(),
                parent_id: parent.map(str::to_owned),
                name: unit.name.clone(),
                kind,
            })),
        )
    };
    let city = UnitRef {
        id: "xm".into(),
        name: "厦门市".into(),
    };
    let department = UnitRef {
        id: "xm-dept".into(),
        name: "市住房局".into(),
    };
    add_unit(writer, &city, None, UnitKind::City)?;
    add_unit(writer, &department, Some("xm"), UnitKind::Department)?;
    let districts = bench_districts();
    for (district, town, leader) in &districts {
        add_unit(writer, district, Some("xm"), UnitKind::District)?;
        add_unit(writer, town, Some(&district.id), UnitKind::Town)?;
        writer.push(
            "leader",
            &leader.id,
            1,
            at,
            &DomainEvent::Directory(DirectoryEvent::LeaderAdded(LeaderAdded {
                leader_id: leader.id.clone(),
                unit_id: district.id.clone(),
                name: leader.name.clone(),
                title: leader.title.clone(),
                level: LeaderLevel::District,
            })),
        )?;
    }
    Ok((districts, department))
}

/// The leader view's projections of `store` as the log of [`write`] stood at `before` (every
/// case's events before it, the same histories), for the leader view with cases open.
pub(super) async fn write_leader_views_before(
    store: &ReadStore,
    cases: usize,
    before: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    for projection in LEADER_VIEW_PROJECTIONS {
        zhzj_projector::checkpoint::initialise(store, projection).await?;
    }
    let mut writer = Writer::new(Some(before));
    let (districts, department) = write_directory(&mut writer)?;
    for n in 0..cases {
        let id = case_uuid(n).to_string();
        for (version, (at, event)) in (1_i64..).zip(case_events(n, &districts, &department)) {
            writer.push("case", &id, version, at, &DomainEvent::Case(event))?;
        }
        if writer.commits.len() >= 100_000 {
            writer.flush(store).await?;
        }
    }
    writer.flush(store).await
}

/// Every this-many-th case is a hard case of the fourth quarter's push.
const HARD_CASE_EVERY: usize = 200;

fn case_uuid(n: usize) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("bench-{n}").as_bytes())
}

/// The fourth quarter's push (every [`HARD_CASE_EVERY`]-th case, half of each district's to
/// resolve) launched on 30 September, and the city's dispatch meeting of 10 December.
fn write_push_and_meeting(
    writer: &mut Writer,
    cases: usize,
    districts: &[BenchDistrict],
) -> anyhow::Result<()> {
    let launched_at = Utc
        .with_ymd_and_hms(2026, 9, 30, 2, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    writer.push(
        "push",
        "push-2026-Q4",
        1,
        launched_at,
        &DomainEvent::Campaign(CampaignEvent::PushLaunched(PushLaunched {
            quarter: "2026-Q4".into(),
            title: "第四季度攻坚".into(),
            case_ids: (0..cases).step_by(HARD_CASE_EVERY).map(case_uuid).collect(),
            targets: districts
                .iter()
                .map(|(district, _, _)| PushTarget {
                    unit: district.clone(),
                    cases: None,
                    rate_percent: Some(50),
                })
                .collect(),
        })),
    )?;
    let held_at = meeting_held_at();
    writer.push(
        "meeting",
        "meeting-2026-W50",
        1,
        held_at,
        &DomainEvent::Campaign(CampaignEvent::MeetingHeld(MeetingHeld {
            unit: UnitRef {
                id: "xm".into(),
                name: "厦门市".into(),
            },
            week: "2026-W50".into(),
            held_at,
            as_of_position: u64::try_from(writer.position)?,
            title: "第50周调度会".into(),
        })),
    )
}
