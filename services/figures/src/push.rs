//! The progress of a quarterly push on hard cases (季攻坚), drawn from the event archive: per
//! hard case, whether it was resolved in the quarter (crossed off in it and not reopened since),
//! and per area (district, town or department, as the push's targets name them) the resolved
//! count against the target. During the quarter it is progress as of now; from the quarter's
//! end it is the final result, counting only what happened in the quarter.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use zhzj_export::{Cell, Table};
use zhzj_proto::events::{
    CaseCrossedOff, CaseRegistered, CaseReopened, EventData, LeaderAssigned, LeaderReassigned,
    PushLaunched, ResponsibleUnitsSet,
};
use zhzj_proto::{CampaignEvent, CaseEvent, DomainEvent};
use zhzj_store::{ReadStore, china_date};

use crate::FiguresError;
use crate::archive::{ArchivedEvent, events_of, events_up_to};
use crate::bulletin::Ratio;

/// One hard case's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PushCaseProgress {
    /// Case id.
    pub case_id: String,
    /// 案件编号.
    pub case_number: String,
    /// 诉求.
    pub matter: String,
    /// 区.
    pub district: String,
    /// 镇街.
    pub town: Option<String>,
    /// 责任单位 (主办).
    pub lead_unit: Option<String>,
    /// 包案领导.
    pub leader: Option<String>,
    /// `resolved` (crossed off in the quarter), `relapsed` (crossed off, then reopened) or
    /// `in_progress`.
    pub status: String,
    /// 已化解, 回潮 or 攻坚中.
    pub status_label: String,
    /// When it was crossed off in the quarter.
    pub crossed_off_on: Option<NaiveDate>,
}

/// One area's progress against its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PushAreaProgress {
    /// Unit id.
    pub unit_id: String,
    /// Its name.
    pub name: String,
    /// Resolved hard cases ÷ the area's hard cases.
    pub resolved: Ratio,
    /// The target as a number of cases, if so set.
    pub target_cases: Option<u32>,
    /// The target as a rate, if so set.
    pub target_rate_percent: Option<u32>,
    /// The cases the target asks for (a rate made a count, rounded up).
    pub target_count: i64,
    /// Whether the target is met.
    pub met: bool,
}

/// A push's progress, or its final result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PushProgress {
    /// `2026-Q2`.
    pub quarter: String,
    /// Its title.
    pub title: String,
    /// The time the progress is counted at (now, or the quarter's end).
    pub as_of: DateTime<Utc>,
    /// The log position the figures were counted at (0 when counted from events given).
    pub as_of_position: i64,
    /// Whether the quarter is over: this is the final result.
    pub final_result: bool,
    /// All hard cases resolved ÷ all hard cases.
    pub total: Ratio,
    /// Per area, in the order of the targets.
    pub areas: Vec<PushAreaProgress>,
    /// Per hard case, in the order of the push.
    pub cases: Vec<PushCaseProgress>,
}

/// A hard case followed through the quarter.
#[derive(Debug, Default, Clone)]
struct Track {
    case_number: String,
    matter: String,
    district: (String, String),
    town: Option<(String, String)>,
    lead_unit: Option<(String, String)>,
    leader: Option<String>,
    crossed_off_on: Option<NaiveDate>,
    reopened_after: bool,
}

/// The progress of `quarter`'s push at `now`, as of the archive's last position; none if no
/// push was launched for it.
pub async fn push_progress(
    store: &ReadStore,
    quarter: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<PushProgress>, FiguresError> {
    let position: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM event_archive")
        .fetch_one(store.pool())
        .await?;
    push_progress_at(store, quarter, start, end, now, position.unwrap_or(0)).await
}

/// [`push_progress`] as of log `position`. Only the pushes and the push's hard cases are read
/// (by the archive's index on the aggregate), so the cost follows the hard cases, not the
/// archive; a test compares it with [`push_progress_from`] over the whole archive.
pub async fn push_progress_at(
    store: &ReadStore,
    quarter: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    position: i64,
) -> Result<Option<PushProgress>, FiguresError> {
    let mut events = events_up_to(store, &["push"], position).await?;
    let Some(launched) = launched(&events, quarter) else {
        return Ok(None);
    };
    let hard: Vec<String> = launched.case_ids.iter().map(ToString::to_string).collect();
    events.extend(events_of(store, "case", &hard, &Track::FOLLOWED, position).await?);
    Ok(
        push_progress_from(&events, quarter, start, end, now).map(|progress| PushProgress {
            as_of_position: position,
            ..progress
        }),
    )
}

/// The push launched for `quarter` among `events`.
fn launched(events: &[ArchivedEvent], quarter: &str) -> Option<PushLaunched> {
    events.iter().find_map(|e| match &e.event {
        DomainEvent::Campaign(CampaignEvent::PushLaunched(p)) if p.quarter == quarter => {
            Some(p.clone())
        }
        _ => None,
    })
}

impl Track {
    /// The case events [`Track::follow`] reads.
    const FOLLOWED: [&'static str; 6] = [
        CaseRegistered::EVENT_TYPE,
        ResponsibleUnitsSet::EVENT_TYPE,
        LeaderAssigned::EVENT_TYPE,
        LeaderReassigned::EVENT_TYPE,
        CaseCrossedOff::EVENT_TYPE,
        CaseReopened::EVENT_TYPE,
    ];

    /// Folds one event of the hard case into its track; a crossing off counts from the quarter's
    /// `start`.
    fn follow(&mut self, event: &CaseEvent, occurred_at: DateTime<Utc>, start: DateTime<Utc>) {
        match event {
            CaseEvent::Registered(e) => {
                self.case_number.clone_from(&e.case_number);
                self.matter.clone_from(&e.matter);
                self.district = (e.district.id.clone(), e.district.name.clone());
                self.town = e.town.as_ref().map(|t| (t.id.clone(), t.name.clone()));
            }
            CaseEvent::ResponsibleUnitsSet(e) => {
                self.lead_unit = Some((e.lead.id.clone(), e.lead.name.clone()));
            }
            CaseEvent::LeaderAssigned(e) => self.leader = Some(e.leader.name.clone()),
            CaseEvent::LeaderReassigned(e) => self.leader = Some(e.to.name.clone()),
            CaseEvent::CrossedOff(_) if occurred_at >= start => {
                self.crossed_off_on = Some(china_date(occurred_at));
                self.reopened_after = false;
            }
            CaseEvent::Reopened(_) if self.crossed_off_on.is_some() => {
                self.reopened_after = true;
            }
            _ => {}
        }
    }
}

/// [`push_progress`] over events already read.
pub fn push_progress_from(
    events: &[ArchivedEvent],
    quarter: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<PushProgress> {
    let launched = launched(events, quarter)?;
    let at = now.min(end);
    let hard: HashMap<String, usize> = launched
        .case_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), i))
        .collect();
    let mut tracks: Vec<Track> = vec![Track::default(); launched.case_ids.len()];
    for archived in events.iter().filter(|e| e.occurred_at < at) {
        let (Some(index), DomainEvent::Case(event)) =
            (hard.get(&archived.aggregate_id), &archived.event)
        else {
            continue;
        };
        let Some(track) = tracks.get_mut(*index) else {
            continue;
        };
        track.follow(event, archived.occurred_at, start);
    }
    let resolved = |t: &Track| t.crossed_off_on.is_some() && !t.reopened_after;
    let cases: Vec<PushCaseProgress> = launched
        .case_ids
        .iter()
        .zip(&tracks)
        .map(|(id, t)| {
            let (status, label) = match (t.crossed_off_on.is_some(), t.reopened_after) {
                (true, false) => ("resolved", "已化解"),
                (true, true) => ("relapsed", "回潮"),
                _ => ("in_progress", "攻坚中"),
            };
            PushCaseProgress {
                case_id: id.to_string(),
                case_number: t.case_number.clone(),
                matter: t.matter.clone(),
                district: t.district.1.clone(),
                town: t.town.as_ref().map(|u| u.1.clone()),
                lead_unit: t.lead_unit.as_ref().map(|u| u.1.clone()),
                leader: t.leader.clone(),
                status: status.to_owned(),
                status_label: label.to_owned(),
                crossed_off_on: t.crossed_off_on,
            }
        })
        .collect();
    let areas = launched
        .targets
        .iter()
        .map(|target| {
            let id = &target.unit.id;
            let mine: Vec<&Track> = tracks
                .iter()
                .filter(|t| {
                    &t.district.0 == id
                        || t.town.as_ref().is_some_and(|u| &u.0 == id)
                        || t.lead_unit.as_ref().is_some_and(|u| &u.0 == id)
                })
                .collect();
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            let ratio = Ratio {
                numerator: count(mine.iter().filter(|t| resolved(t)).count()),
                denominator: count(mine.len()),
            };
            let target_count = match (target.cases, target.rate_percent) {
                (Some(n), _) => i64::from(n),
                (None, Some(rate)) => (ratio.denominator * i64::from(rate) + 99) / 100,
                (None, None) => 0,
            };
            PushAreaProgress {
                unit_id: id.clone(),
                name: target.unit.name.clone(),
                resolved: ratio,
                target_cases: target.cases,
                target_rate_percent: target.rate_percent,
                target_count,
                met: ratio.numerator >= target_count,
            }
        })
        .collect();
    let total = Ratio {
        numerator: i64::try_from(tracks.iter().filter(|t| resolved(t)).count()).unwrap_or(0),
        denominator: i64::try_from(tracks.len()).unwrap_or(0),
    };
    Some(PushProgress {
        quarter: launched.quarter,
        title: launched.title,
        as_of: at,
        as_of_position: 0,
        final_result: now >= end,
        total,
        areas,
        cases,
    })
}

impl PushProgress {
    /// The push as spreadsheet tables: areas against targets, and the hard cases.
    pub fn tables(&self) -> Vec<Table> {
        let percent = |r: Ratio| r.percent().map_or(Cell::Empty, Cell::Number);
        let yes_no = |b: bool| Cell::from(if b { "是" } else { "否" });
        vec![
            Table {
                name: "区域进度".into(),
                headers: [
                    "区域",
                    "攻坚案件数",
                    "已化解",
                    "化解率(%)",
                    "目标件数",
                    "目标化解率(%)",
                    "目标应化解",
                    "是否达标",
                ]
                .map(str::to_owned)
                .to_vec(),
                rows: self
                    .areas
                    .iter()
                    .map(|a| {
                        vec![
                            Cell::from(a.name.clone()),
                            Cell::Int(a.resolved.denominator),
                            Cell::Int(a.resolved.numerator),
                            percent(a.resolved),
                            a.target_cases
                                .map_or(Cell::Empty, |n| Cell::Int(i64::from(n))),
                            a.target_rate_percent
                                .map_or(Cell::Empty, |n| Cell::Int(i64::from(n))),
                            Cell::Int(a.target_count),
                            yes_no(a.met),
                        ]
                    })
                    .collect(),
            },
            Table {
                name: "攻坚案件".into(),
                headers: [
                    "案件编号",
                    "诉求",
                    "区",
                    "镇街",
                    "责任单位",
                    "包案领导",
                    "进度",
                    "销号日期",
                ]
                .map(str::to_owned)
                .to_vec(),
                rows: self
                    .cases
                    .iter()
                    .map(|c| {
                        vec![
                            Cell::from(c.case_number.clone()),
                            Cell::from(c.matter.clone()),
                            Cell::from(c.district.clone()),
                            Cell::from(c.town.clone()),
                            Cell::from(c.lead_unit.clone()),
                            Cell::from(c.leader.clone()),
                            Cell::from(c.status_label.clone()),
                            Cell::from(c.crossed_off_on),
                        ]
                    })
                    .collect(),
            },
        ]
    }
}
