//! `zhzj bench assess`: the year-end assessment of a year with many cases — by default 100,000
//! cases and 2,000,000 events written straight into a SQLite event archive and applied to the
//! figures projection — and the month's bulletin draft, timed with each one's peak memory,
//! beside a baseline measured in the same run: the same assessment folded from the archive, as
//! it was computed before the figures projection.

use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use std::sync::Arc;
use uuid::Uuid;
use zhzj_deadlines::Limits;
use zhzj_figures::{Details, assessment};
use zhzj_projector::ARCHIVE_COLUMNS as COLUMNS;
use zhzj_projector::sqlbuild::{SqlValue, insert_rows};

use zhzj_projector::projection::ReadCommit;
use zhzj_projector::{Projection, ProjectorSettings, checkpoint};
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

/// The peak resident memory of this process so far, in MiB (Linux `VmHWM`).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Resets the peak resident memory this process reports (Linux `clear_refs` 5), so that each
/// measure's peak is its own.
fn reset_peak() {
    // Without the right (an unusual kernel), the peaks are cumulative: larger, never smaller.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
    {
        let _ = std::io::Write::write_all(&mut file, b"5");
    }
}

/// Appends one archive row per event (each its own commit) to `rows`.
struct Writer {
    position: i64,
    rows: Vec<Vec<SqlValue>>,
    /// The same events as commits, for the figures projection.
    commits: Vec<ReadCommit>,
    /// Time spent applying them to the figures projection.
    projecting: std::time::Duration,
}

impl Writer {
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
            self.commits.push(ReadCommit {
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
            });
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
        if self.rows.is_empty() {
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
        for batch in std::mem::take(&mut self.commits).chunks(zhzj_projector::runner::BATCH) {
            Projection::FIGURES
                .apply_offline(store, batch, Arc::clone(&settings))
                .await?;
        }
        self.projecting += started.elapsed();
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
type BenchDistrict = (UnitRef, UnitRef, LeaderRef);

/// Writes the directory: the city, six districts with a town and a leader each, a department;
/// the districts, and the department.
fn write_directory(writer: &mut Writer) -> anyhow::Result<(Vec<BenchDistrict>, UnitRef)> {
    let unit = |id: &str, name: &str| UnitRef {
        id: id.into(),
        name: name.into(),
    };
    let at = Utc
        .with_ymd_and_hms(2025, 12, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let add_unit =
        |writer: &mut Writer, id: &str, parent: Option<&str>, name: &str, kind: UnitKind| {
            writer.push(
                "unit",
                id,
                1,
                at,
                &DomainEvent::Directory(DirectoryEvent::UnitAdded(UnitAdded {
                    unit_id: id.into(),
                    parent_id: parent.map(str::to_owned),
                    name: name.into(),
                    kind,
                })),
            )
        };
    add_unit(writer, "xm", None, "厦门市", UnitKind::City)?;
    add_unit(
        writer,
        "xm-dept",
        Some("xm"),
        "市住房局",
        UnitKind::Department,
    )?;
    let mut districts = Vec::new();
    for (i, name) in ["思明区", "湖里区", "集美区", "海沧区", "同安区", "翔安区"]
        .iter()
        .enumerate()
    {
        let id = format!("xm-d{i}");
        let town = format!("xm-d{i}-t");
        add_unit(writer, &id, Some("xm"), name, UnitKind::District)?;
        add_unit(
            writer,
            &town,
            Some(&id),
            &format!("{name}某街道"),
            UnitKind::Town,
        )?;
        let leader = LeaderRef {
            id: format!("ldr-{i}"),
            name: format!("领导{i}"),
            title: "副区长".into(),
            unit_id: id.clone(),
        };
        writer.push(
            "leader",
            &leader.id,
            1,
            at,
            &DomainEvent::Directory(DirectoryEvent::LeaderAdded(LeaderAdded {
                leader_id: leader.id.clone(),
                unit_id: id.clone(),
                name: leader.name.clone(),
                title: leader.title.clone(),
                level: LeaderLevel::District,
            })),
        )?;
        districts.push((
            unit(&id, name),
            unit(&town, &format!("{name}某街道")),
            leader,
        ));
    }
    let department = unit("xm-dept", "市住房局");
    Ok((districts, department))
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

/// 09:00 China time on a day of 2026.
fn china_morning(month: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, 1, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn meeting_held_at() -> chrono::DateTime<Utc> {
    china_morning(12, 10)
}

/// The push's progress read from its hard cases (p50 of 5) beside the fold of the whole
/// archive it replaced, and the agenda of a city meeting in December (the year's cases all
/// crossed off) and in June (a quarter of them open).
async fn push_and_agenda_measures(
    store: &ReadStore,
    position: i64,
    districts: &[BenchDistrict],
    limits: &Limits,
) -> anyhow::Result<()> {
    let quarter = (
        zhzj_store::china_midnight(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default()),
        zhzj_store::china_midnight(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default()),
    );
    let now = meeting_held_at();
    let mut push_ms = Vec::new();
    reset_peak();
    let mut progress = None;
    for _ in 0..5 {
        let started = Instant::now();
        progress =
            zhzj_figures::push_progress_at(store, "2026-Q4", quarter.0, quarter.1, now, position)
                .await?;
        push_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    push_ms.sort_by(f64::total_cmp);
    let progress = progress.ok_or_else(|| anyhow::anyhow!("the push was not found"))?;
    println!(
        "push progress of 2026-Q4 ({} hard cases, {} resolved), read from its hard cases: p50 {:.1} ms (of 5), peak memory {:.0} MiB",
        progress.total.denominator,
        progress.total.numerator,
        push_ms[2],
        peak_mib()
    );
    reset_peak();
    let started = Instant::now();
    let events =
        zhzj_figures::ArchivedEvent::read_up_to(store, &["case", "push"], position).await?;
    let folded = zhzj_figures::push_progress_from(&events, "2026-Q4", quarter.0, quarter.1, now)
        .map(|p| zhzj_figures::PushProgress {
            as_of_position: position,
            ..p
        });
    println!(
        "baseline  the same progress folded from the archive ({} events): {:.2} s, peak memory {:.0} MiB",
        events.len(),
        started.elapsed().as_secs_f64(),
        peak_mib()
    );
    drop(events);
    anyhow::ensure!(
        folded.as_ref() == Some(&progress),
        "the push's progress from its hard cases differs from the archive's"
    );
    for (held_at, when) in [(now, "10 December"), (china_morning(6, 10), "10 June")] {
        time_agenda(store, position, held_at, when, districts.len(), limits).await?;
    }
    Ok(())
}

/// Times the agenda of a city meeting held at `held_at` as of `position`: drawn from the cases
/// the figures projection names (p50 of 5) beside the fold of the whole archive, and checks
/// both give the same agenda.
async fn time_agenda(
    store: &ReadStore,
    position: i64,
    held_at: chrono::DateTime<Utc>,
    when: &str,
    districts: usize,
    limits: &Limits,
) -> anyhow::Result<()> {
    let request = zhzj_figures::AgendaRequest {
        meeting_id: "meeting-bench".into(),
        title: "调度会".into(),
        week: "2026-W00".into(),
        unit: UnitRef {
            id: "xm".into(),
            name: "厦门市".into(),
        },
        held_at,
        as_of_position: position,
        idle_days: 30,
        limits: limits.clone(),
    };
    let mut agenda_ms = Vec::new();
    reset_peak();
    let mut agenda = None;
    for _ in 0..5 {
        let started = Instant::now();
        agenda = Some(zhzj_figures::agenda_from_projection(store, &request).await?);
        agenda_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    agenda_ms.sort_by(f64::total_cmp);
    let agenda = agenda.ok_or_else(|| anyhow::anyhow!("no agenda was drawn"))?;
    let rows: usize = agenda.sections.iter().map(|s| s.rows.len()).sum();
    println!(
        "agenda of a city meeting on {when} ({rows} rows over {districts} districts), from the cases the figures projection names: p50 {:.1} ms (of 5), peak memory {:.0} MiB",
        agenda_ms[2],
        peak_mib()
    );
    reset_peak();
    let started = Instant::now();
    let folded = zhzj_figures::agenda_from_archive(store, &request).await?;
    println!(
        "baseline  the same agenda folded from the archive: {:.2} s, peak memory {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_mib()
    );
    anyhow::ensure!(
        folded == agenda,
        "the agenda from the projection's cases differs from the archive's"
    );
    Ok(())
}

/// Times the bulletin of `month` as of `position` from the figures projection: p50 of 5.
async fn time_bulletin(
    store: &ReadStore,
    month: &str,
    position: i64,
    limits: &Limits,
    what: &str,
) -> anyhow::Result<()> {
    let mut bulletin_ms = Vec::new();
    reset_peak();
    for _ in 0..5 {
        let started = Instant::now();
        zhzj_figures::bulletin(store, month, position, None, limits).await?;
        bulletin_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    bulletin_ms.sort_by(f64::total_cmp);
    println!(
        "bulletin of {month} {what}: p50 {:.0} ms (of 5), peak memory {:.0} MiB",
        bulletin_ms[2],
        peak_mib()
    );
    Ok(())
}

/// The bulletins and an assessment as of earlier positions or of earlier periods, where the
/// cases touched since are counted one by one beside the running sums (or, past a limit, every
/// case is read).
async fn as_of_measures(
    store: &ReadStore,
    scheme: &assessment::Scheme,
    events: i64,
    limits: &Limits,
) -> anyhow::Result<()> {
    time_bulletin(
        store,
        "2026-12",
        events,
        limits,
        "(draft, from the running sums)",
    )
    .await?;
    let touched_after = |moment: chrono::DateTime<Utc>| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM figure_cases WHERE last_recorded_at >= $1",
        )
        .bind(moment.timestamp_micros())
        .fetch_one(store.pool())
    };
    let november =
        zhzj_store::china_midnight(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default());
    let touched = touched_after(november).await?;
    time_bulletin(
        store,
        "2026-10",
        events,
        limits,
        &format!("({touched} cases touched since its end, counted one by one)"),
    )
    .await?;
    let middle = events / 2;
    let (from, to) = (
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
    );
    reset_peak();
    let started = Instant::now();
    assessment::assess(
        store,
        scheme,
        UnitKind::District,
        from..=to,
        middle,
        limits,
        &Details::None,
    )
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "assessment of 2026 as of position {middle} (half the cases touched since: every case read): {:.2} s, peak memory {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_mib()
    );
    Ok(())
}

/// Runs the benchmark.
pub async fn run(cases: usize, keep_in: Option<&std::path::Path>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = match keep_in {
        Some(kept) => {
            std::fs::create_dir_all(kept)?;
            let file = kept.join("bench.sqlite");
            anyhow::ensure!(!file.exists(), "{} exists already", file.display());
            file
        }
        None => dir.path().join("bench.sqlite"),
    };
    let url = zhzj_store::sql::sqlite_url(&file);
    let store = ReadStore::connect(&url).await?;
    checkpoint::initialise(&store, Projection::ARCHIVE).await?;
    checkpoint::initialise(&store, Projection::FIGURES).await?;
    let mut writer = Writer {
        position: 0,
        rows: Vec::new(),
        commits: Vec::new(),
        projecting: std::time::Duration::ZERO,
    };
    let (districts, department) = write_directory(&mut writer)?;
    let started = Instant::now();
    for n in 0..cases {
        let id = case_uuid(n).to_string();
        for (version, (at, event)) in (1_i64..).zip(case_events(n, &districts, &department)) {
            writer.push("case", &id, version, at, &DomainEvent::Case(event))?;
        }
        if writer.rows.len() >= 100_000 {
            writer.flush(&store).await?;
        }
    }
    write_push_and_meeting(&mut writer, cases, &districts)?;
    writer.flush(&store).await?;
    let events = writer.position;
    let total = started.elapsed();
    println!(
        "wrote {cases} cases, {events} events into a SQLite archive and the figures projection in {:.1} s, of which the figures projection {:.1} s ({:.0} events/s)",
        total.as_secs_f64(),
        writer.projecting.as_secs_f64(),
        events as f64 / writer.projecting.as_secs_f64()
    );
    let (from, to) = (
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
    );
    let scheme = assessment::parse_scheme(assessment::DEFAULT_SCHEME)?;
    let limits = Limits::statutory();

    // From the figures projection, each measure with the peak memory reset before it.
    let assess = |details: Details| {
        let (store, scheme, limits) = (&store, &scheme, &limits);
        async move {
            assessment::assess(
                store,
                scheme,
                UnitKind::District,
                from..=to,
                events,
                limits,
                &details,
            )
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))
        }
    };
    reset_peak();
    let started = Instant::now();
    let result = assess(Details::None).await?;
    let projected = started.elapsed();
    println!(
        "assessment of {} districts over 2026 from the figures projection: {:.2} s, peak memory {:.0} MiB",
        result.units.len(),
        projected.as_secs_f64(),
        peak_mib()
    );
    reset_peak();
    let started = Instant::now();
    let listed = assess(Details::All).await?;
    let computed = started.elapsed();
    let tables = listed.tables(&scheme);
    let tabled = started.elapsed();
    let detail_rows: usize = tables
        .iter()
        .filter(|t| t.name.starts_with("明细"))
        .map(|t| t.rows.len())
        .sum();
    let bytes = zhzj_export::to_xlsx(&tables, listed.created())?;
    println!(
        "XLSX export with its 明细 ({detail_rows} detail rows, {:.1} MiB), computed and written: {:.2} s (counted cases listed {:.2} s, tables {:.2} s, workbook {:.2} s), peak memory {:.0} MiB",
        bytes.len() as f64 / 1_048_576.0,
        started.elapsed().as_secs_f64(),
        computed.as_secs_f64(),
        (tabled - computed).as_secs_f64(),
        (started.elapsed() - tabled).as_secs_f64(),
        peak_mib()
    );
    drop((tables, bytes, listed));
    as_of_measures(&store, &scheme, events, &limits).await?;
    push_and_agenda_measures(&store, events, &districts, &limits).await?;

    // Baseline in the same run: the same assessment folded from the archive, as before.
    reset_peak();
    let started = Instant::now();
    let read = zhzj_figures::ArchivedEvent::read_up_to(&store, &["case", "unit"], events).await?;
    let read_count = read.len();
    let archive = assessment::assess_events(
        &read,
        &scheme,
        UnitKind::District,
        from,
        to,
        events,
        &limits,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let folded = started.elapsed();
    println!(
        "baseline  the same assessment folded from the archive ({read_count} events read and decoded): {:.2} s, peak memory {:.0} MiB; the projection takes {:.3}× its time",
        folded.as_secs_f64(),
        peak_mib(),
        projected.as_secs_f64() / folded.as_secs_f64()
    );
    drop(read);
    anyhow::ensure!(
        archive
            .units
            .iter()
            .map(|u| (&u.figures, u.counted_cases))
            .eq(result.units.iter().map(|u| (&u.figures, u.counted_cases))),
        "the projection's figures differ from the archive's"
    );
    store.close().await;
    Ok(())
}
