//! The demo's tests: the data replays through the real rules, and its figures are what it promises.

use std::collections::{HashMap, HashSet};

use chrono::TimeZone;
use zhzj_cases::LifecycleSettings;
use zhzj_cases::aggregate::Aggregate;
use zhzj_cases::campaign::BulletinState;
use zhzj_cases::case::{self as case_rules, CaseState, RegistrationPlace};
use zhzj_cases::directory::{LeaderState, UnitState};
use zhzj_cases::lifecycle as lifecycle_rules;
use zhzj_deadlines::Limits;
use zhzj_figures::ArchivedEvent;
use zhzj_figures::agenda::{AgendaRequest, agenda_from};
use zhzj_projector::lifecycle::LifecycleRow;
use zhzj_proto::events::UnitRef;
use zhzj_proto::ids::{is_valid_resident_id, is_valid_token_id};
use zhzj_proto::{CaseEvent, CommandError, DomainEvent};

use super::*;
use crate::{clock::*, tables::*};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;
use zhzj_proto::Command;
use zhzj_proto::events::*;

/// `h:min` on `y-m-d` in China.
fn china(y: i32, m: u32, d: u32, h: i64, min: i64) -> DateTime<Utc> {
    at_china_time(
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default(),
        h * 60 + min,
    )
}

/// The tester's morning (a Wednesday), the first minutes of a month, the middle of one, and
/// a Monday before the meeting.
fn sample_nows() -> [DateTime<Utc>; 4] {
    [
        china(2026, 12, 2, 10, 0),
        china(2027, 1, 1, 0, 5),
        china(2026, 7, 15, 15, 30),
        fixed_now(),
    ]
}

/// The directory as the service knows it, each unit and leader decided by its rules.
#[derive(Default)]
struct Directory {
    units: HashMap<String, UnitState>,
    leaders: HashMap<String, LeaderState>,
    /// The events with their times, for the agenda.
    events: Vec<(DateTime<Utc>, DomainEvent)>,
}

fn directory(data: &DemoData) -> Directory {
    let mut dir = Directory::default();
    for step in &data.directory {
        match &step.command {
            Command::AddUnit(c) => {
                let mut unit = dir.units.get(&c.unit_id).cloned().unwrap_or_default();
                let parent = c.parent_id.as_ref().map(|id| {
                    dir.units
                        .get(id)
                        .unwrap_or_else(|| panic!("{} before its parent", c.unit_id))
                });
                let events = zhzj_cases::directory::add_unit(&unit, c, parent)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", c.unit_id));
                for event in events {
                    let event = DomainEvent::Directory(event);
                    unit.apply(&event);
                    dir.events.push((step.at, event));
                }
                dir.units.insert(c.unit_id.clone(), unit);
            }
            Command::AddLeader(c) => {
                assert!(dir.units.contains_key(&c.unit_id), "{}", c.leader_id);
                let mut leader = dir.leaders.get(&c.leader_id).cloned().unwrap_or_default();
                let events = zhzj_cases::directory::add_leader(&leader, c)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", c.leader_id));
                for event in events {
                    leader.apply(&DomainEvent::Directory(event));
                }
                dir.leaders.insert(c.leader_id.clone(), leader);
            }
            other => panic!("unexpected directory command {other:?}"),
        }
    }
    dir
}

/// What the service decides on one step of a case, with its clock at the step's time.
fn decide(
    state: &CaseState,
    dir: &Directory,
    step: &DemoStep,
) -> Result<Vec<CaseEvent>, CommandError> {
    let settings = LifecycleSettings::default();
    let today = china_date(step.at);
    let unit = |id: &str| {
        dir.units
            .get(id)
            .ok_or_else(|| CommandError::not_found("unit_id", id.to_owned()))
    };
    let leader = |id: &str| {
        dir.leaders
            .get(id)
            .map(LeaderState::to_ref)
            .ok_or_else(|| CommandError::not_found("leader_id", id.to_owned()))
    };
    if !matches!(step.command, Command::RegisterCase(_)) && !state.exists() {
        return Err(CommandError::not_found("command.case_id", "no such case"));
    }
    match &step.command {
        Command::RegisterCase(c) => {
            let place = RegistrationPlace {
                district: unit(&c.district_id)?,
                town: c.town_id.as_deref().map(unit).transpose()?,
            };
            case_rules::register(state, c.case_id.unwrap_or_default(), c, place, today)
        }
        Command::AssignLeader(c) => case_rules::assign_leader(state, c, leader(&c.leader_id)?),
        Command::SetResponsibleUnits(c) => {
            let assisting = c
                .assisting_unit_ids
                .iter()
                .map(|id| unit(id).map(UnitState::to_ref))
                .collect::<Result<Vec<_>, _>>()?;
            case_rules::set_responsible_units(c, unit(&c.lead_unit_id)?.to_ref(), assisting)
        }
        Command::AddMeasure(c) => {
            let responsible = c
                .responsible_unit_id
                .as_deref()
                .map(|id| unit(id).map(UnitState::to_ref))
                .transpose()?;
            case_rules::add_measure(state, c, responsible, today)
        }
        Command::CompleteMeasure(c) => case_rules::complete_measure(state, c),
        Command::RecordNote(c) => case_rules::record_note(c),
        Command::RecordActivity(c) => {
            let named = c.leader_id.as_deref().map(leader).transpose()?;
            lifecycle_rules::record_activity(state, c, named, today)
        }
        Command::ClassifyCase(c) => lifecycle_rules::classify(state, c, &settings),
        Command::ClaimResolution(c) => lifecycle_rules::claim(state, c),
        Command::ReviewClaim(c) => lifecycle_rules::review(state, c, &settings),
        Command::RecordPetition(c) => lifecycle_rules::record_petition(state, c, today),
        Command::RateSatisfaction(c) => lifecycle_rules::rate(state, c, today),
        Command::RecordProcedureStep(c) => lifecycle_rules::record_procedure_step(state, c, today),
        other => panic!("unexpected case command {other:?}"),
    }
}

/// A case's history run through the service's decisions: its events with their times. Panics
/// on the first refusal.
fn replay(dir: &Directory, case: &DemoCase) -> Vec<(DateTime<Utc>, CaseEvent)> {
    let mut state = CaseState::default();
    let mut events = Vec::new();
    for step in &case.steps {
        let decided = decide(&state, dir, step).unwrap_or_else(|e| {
            panic!(
                "case {} refuses {} at {}: {e:?}\n{:?}",
                case.case_id,
                step.command.kind(),
                step.at,
                step.command
            )
        });
        for event in decided {
            state.apply(&DomainEvent::Case(event.clone()));
            events.push((step.at, event));
        }
    }
    events
}

/// Where the cases stand at `now` on the checklist.
#[derive(Debug, Default)]
struct Board {
    /// 已销号.
    crossed_off: usize,
    /// Open, a statutory clock running and more than the due-soon days left.
    on_time: usize,
    /// Open, its clock ending within the due-soon days (the agenda's 7日内到期案件).
    due_soon: usize,
    /// Open, past its deadline (the agenda's 超期案件).
    overdue: usize,
    /// Open, no clock running (replied with no review asked for, claim under review,
    /// concluded).
    no_clock: usize,
    /// Open, a resolution claim awaiting review (no clock runs meanwhile).
    under_review: usize,
    /// Reopened after crossing off (回潮).
    relapsed: usize,
}

impl Board {
    fn open(&self) -> usize {
        self.on_time + self.due_soon + self.overdue + self.no_clock
    }

    fn live(&self) -> usize {
        self.on_time + self.due_soon + self.overdue
    }
}

/// The board at `now`: each case's statutory clock as the projector's lifecycle view keeps
/// it, and the overdue and due-soon counts as a city meeting's agenda draws them.
fn board(data: &DemoData, now: DateTime<Utc>) -> Board {
    let dir = directory(data);
    let limits = Limits::statutory();
    let mut archive: Vec<ArchivedEvent> = Vec::new();
    let mut archived = |aggregate_type: &str, id: String, at, event| {
        let position = i64::try_from(archive.len()).unwrap_or(i64::MAX) + 1;
        archive.push(ArchivedEvent {
            position,
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: id,
            occurred_at: at,
            event,
        });
    };
    for (at, event) in &dir.events {
        if let DomainEvent::Directory(zhzj_proto::DirectoryEvent::UnitAdded(u)) = event {
            archived("unit", u.unit_id.clone(), *at, event.clone());
        }
    }
    let mut board = Board::default();
    let mut live = 0;
    for case in &data.cases {
        let mut row = LifecycleRow::default();
        for (at, event) in replay(&dir, case) {
            row.apply(&event, at, &limits);
            archived(
                "case",
                case.case_id.to_string(),
                at,
                DomainEvent::Case(event),
            );
        }
        match row.stage() {
            "reopened" => board.relapsed += 1,
            "under_review" => board.under_review += 1,
            _ => {}
        }
        if row.stage() == "crossed_off" {
            assert!(row.next_due().is_none(), "a crossed-off case runs a clock");
            board.crossed_off += 1;
        } else if row.next_due().is_some() {
            live += 1;
        } else {
            board.no_clock += 1;
        }
    }
    let agenda = agenda_from(
        &archive,
        &AgendaRequest {
            meeting_id: "xm-demo".to_owned(),
            title: "厦门市调度会".to_owned(),
            week: zhzj_cases::campaign::iso_week(china_date(now)),
            unit: UnitRef {
                id: CITY_ID.to_owned(),
                name: "厦门市".to_owned(),
            },
            held_at: now,
            as_of_position: i64::try_from(archive.len()).unwrap_or(i64::MAX),
            idle_days: 30,
            limits,
        },
    );
    let count = |key: &str| {
        agenda
            .sections
            .iter()
            .find(|s| s.key == key)
            .map_or(0, |s| s.rows.len())
    };
    board.overdue = count("overdue");
    board.due_soon = count("due_soon");
    board.on_time = live - board.overdue - board.due_soon;
    board
}

fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Every step of the directory and the cases, as `(command id, command)`.
fn all_commands(data: &DemoData) -> Vec<(Uuid, Command)> {
    data.directory
        .iter()
        .chain(data.cases.iter().flat_map(|case| &case.steps))
        .map(|step| (step.command_id, step.command.clone()))
        .collect()
}

#[test]
fn contents_do_not_depend_on_now() {
    let a = demo_data(fixed_now());
    let b = demo_data(fixed_now());
    assert_eq!(all_commands(&a), all_commands(&b));
    let later = demo_data(fixed_now() + TimeDelta::days(3));
    let ids = |d: &DemoData| d.cases.iter().map(|c| c.case_id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&later));
    assert_eq!(a.cases.len(), CASE_COUNT as usize);
    // At another time each case has the same plan, only cut elsewhere.
    let plan = |c: &DemoCase| {
        c.steps
            .iter()
            .map(|s| (s.command_id, s.command.kind()))
            .collect::<Vec<_>>()
    };
    for other in sample_nows().map(demo_data).iter().chain([&later]) {
        for (x, y) in a.cases.iter().zip(&other.cases) {
            let (x, y) = (plan(x), plan(y));
            assert!(x.starts_with(&y) || y.starts_with(&x), "{x:?}\n{y:?}");
        }
    }
}

#[test]
fn the_bulletins_of_the_last_two_complete_months_are_published() {
    for (now, months) in [
        (china(2026, 12, 2, 10, 0), ["2026-10", "2026-11"]),
        (china(2026, 12, 3, 8, 0), ["2026-10", "2026-11"]),
        (china(2026, 12, 3, 10, 0), ["2026-10", "2026-11"]),
        (china(2026, 12, 15, 14, 0), ["2026-10", "2026-11"]),
        (china(2027, 1, 1, 0, 5), ["2026-10", "2026-11"]),
        (china(2027, 1, 1, 0, 45), ["2026-11", "2026-12"]),
        (china(2026, 3, 1, 9, 0), ["2026-01", "2026-02"]),
        (fixed_now(), ["2026-01", "2026-02"]),
    ] {
        let data = demo_data(now);
        let published: Vec<(&str, DateTime<Utc>)> = data
            .campaign
            .iter()
            .filter_map(|step| match &step.command {
                Command::PublishBulletin(b) => Some((b.month.as_str(), step.at)),
                _ => None,
            })
            .collect();
        let names: Vec<&str> = published.iter().map(|(month, _)| *month).collect();
        assert_eq!(names, months, "at {now}");
        for (month, at) in published {
            assert!(at < now, "{month} published at {at}, after {now}");
            zhzj_cases::campaign::publish(&BulletinState::default(), month, at, 1)
                .unwrap_or_else(|e| panic!("{month} at {at}: {e:?}"));
        }
    }
}

/// The checklist at `now` as the product counts it: most cases run a clock, few are overdue.
/// (In the Spring Festival nothing falls due within seven days, since a deadline on a rest
/// day moves to the next working day; the sample nows are ordinary weeks.)
#[test]
fn the_board_looks_like_a_working_bureau() {
    for now in sample_nows() {
        let board = board(&demo_data(now), now);
        let (open, live) = (board.open(), board.live());
        let total = open + board.crossed_off;
        eprintln!("at {now}: {board:?}, open {open}, live {live}");
        assert_eq!(total, CASE_COUNT as usize);
        assert!(
            board.overdue * 4 <= open,
            "at most a quarter of the open cases overdue at {now}: {board:?}"
        );
        assert!(
            live * 2 >= total,
            "at least half the cases run a clock at {now}: {board:?}"
        );
        assert!(
            board.overdue * 20 >= open && board.due_soon * 20 >= open,
            "some cases overdue and some due soon at {now}: {board:?}"
        );
        assert!(
            board.crossed_off * 10 >= total && board.relapsed > 0 && board.under_review > 0,
            "some cases done, some back, some claims to review at {now}: {board:?}"
        );
    }
}

#[test]
fn directory_is_well_formed() {
    let data = demo_data(fixed_now());
    let mut units: HashMap<String, (Option<String>, UnitKind)> = HashMap::new();
    let mut leaders = HashSet::new();
    for step in &data.directory {
        match &step.command {
            Command::AddUnit(u) => {
                assert!(is_valid_token_id(&u.unit_id), "{}", u.unit_id);
                if let Some(parent) = &u.parent_id {
                    assert!(
                        units.contains_key(parent),
                        "{} before its parent",
                        u.unit_id
                    );
                }
                assert!(
                    units
                        .insert(u.unit_id.clone(), (u.parent_id.clone(), u.kind))
                        .is_none()
                );
            }
            Command::AddLeader(l) => {
                assert!(is_valid_token_id(&l.leader_id), "{}", l.leader_id);
                assert!(units.contains_key(&l.unit_id));
                assert!(leaders.insert(l.leader_id.clone()));
            }
            other => panic!("unexpected directory command {other:?}"),
        }
    }
    assert!(units.contains_key("xm-siming-zhonghua") && units.contains_key("xm-dept-zjj"));
}

#[test]
fn case_histories_pass_the_service_rules() {
    // Every step as the service decides it, its clock at the step's time, at several nows.
    for now in sample_nows() {
        let data = demo_data(now);
        let dir = directory(&data);
        for case in &data.cases {
            replay(&dir, case);
        }
    }
    let now = fixed_now();
    let data = demo_data(now);
    let mut units = HashMap::new();
    let mut leaders = HashSet::new();
    for step in &data.directory {
        match &step.command {
            Command::AddUnit(u) => {
                units.insert(u.unit_id.clone(), u.parent_id.clone());
            }
            Command::AddLeader(l) => {
                leaders.insert(l.leader_id.clone());
            }
            _ => {}
        }
    }
    for case in &data.cases {
        let Some(Command::RegisterCase(register)) = case.steps.first().map(|s| &s.command) else {
            panic!("case {} does not start with its registration", case.case_id);
        };
        assert_eq!(register.case_id, Some(case.case_id));
        let town = register.town_id.clone().unwrap_or_default();
        assert_eq!(units.get(&town), Some(&Some(register.district_id.clone())));
        for p in &register.petitioners {
            if let Some(id) = &p.id_number {
                assert!(is_valid_resident_id(id), "{id}");
            }
        }
        assert!(register.first_filed_on < china_date(case.steps[0].at));
        let (mut leader, mut added, mut completed) = (None::<String>, 0u32, HashSet::new());
        let mut previous = None;
        for step in &case.steps {
            assert!(step.at <= now - TimeDelta::hours(1));
            assert!(previous.is_none_or(|p| p < step.at));
            previous = Some(step.at);
            match &step.command {
                Command::RegisterCase(_) => {}
                Command::AssignLeader(a) => {
                    assert!(leaders.contains(&a.leader_id), "{}", a.leader_id);
                    if let Some(current) = &leader {
                        assert_ne!(current, &a.leader_id);
                        assert!(a.reason.is_some());
                    }
                    leader = Some(a.leader_id.clone());
                }
                Command::SetResponsibleUnits(s) => {
                    assert!(units.contains_key(&s.lead_unit_id));
                    let distinct: HashSet<_> = s.assisting_unit_ids.iter().collect();
                    assert_eq!(distinct.len(), s.assisting_unit_ids.len());
                    for id in &s.assisting_unit_ids {
                        assert!(units.contains_key(id) && *id != s.lead_unit_id);
                    }
                }
                Command::AddMeasure(_) => added += 1,
                Command::CompleteMeasure(c) => {
                    let number: u32 = c.measure_id[1..].parse().unwrap_or(0);
                    assert!((1..=added).contains(&number), "{}", c.measure_id);
                    assert!(completed.insert(number));
                }
                Command::RecordNote(_)
                | Command::ReviewClaim(_)
                | Command::RecordProcedureStep(_) => {}
                Command::ClassifyCase(c) => {
                    let settings = zhzj_cases::LifecycleSettings::default();
                    assert!(settings.categories.contains(&c.category), "{}", c.category);
                }
                // The service refuses these on a case nobody owns.
                Command::RecordActivity(_)
                | Command::ClaimResolution(_)
                | Command::RateSatisfaction(_)
                | Command::RecordPetition(_) => assert!(leader.is_some()),
                other => panic!("unexpected case command {other:?}"),
            }
        }
    }
}
