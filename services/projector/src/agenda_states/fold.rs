//! What a case shows on a dispatch meeting's agenda, folded from its events: the one rule the
//! agenda projection stores and the archive computation in `zhzj-figures` draws with.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use zhzj_deadlines::Limits;
use zhzj_proto::CaseEvent;
use zhzj_proto::events::{CaseRegistered, LeaderRef, UnitRef};
use zhzj_store::china_date;

use crate::lifecycle::LifecycleRow;

/// What an agenda shows of a case at one moment: the inputs of its state sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgendaStanding {
    /// The next statutory deadline and its step's key, while a clock runs.
    pub due: Option<(NaiveDate, String)>,
    /// The owning leader's name.
    pub leader: Option<String>,
    /// For an owned case not crossed off: the day its owner last worked it (or, never having
    /// worked it, was given it) and whether that day is work (`true`) or the assignment.
    pub idle: Option<(NaiveDate, bool)>,
    /// The claim waiting for review: its number, since when, the levels it passed.
    pub claim: Option<(u32, NaiveDate, u32)>,
}

impl AgendaStanding {
    /// Whether any state section can list the case.
    pub fn listable(&self) -> bool {
        self.due.is_some() || self.idle.is_some() || self.claim.is_some()
    }
}

/// A case followed through its events as an agenda sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgendaCaseFold {
    /// 案件编号.
    pub case_number: String,
    /// 诉求.
    pub matter: String,
    /// Its district.
    pub district: UnitRef,
    /// Its town.
    pub town: Option<UnitRef>,
    /// Its owning leader.
    pub leader: Option<LeaderRef>,
    /// The day the owner was given it.
    pub leader_since: Option<NaiveDate>,
    /// Each leader's latest activity day (in key order: the stored fold is the same however
    /// the log was applied).
    pub activity: BTreeMap<String, NaiveDate>,
    /// Its lifecycle: the clocks and the stage.
    pub lifecycle: LifecycleRow,
    /// The claim under review: its number, since when, levels passed.
    pub open_claim: Option<(u32, NaiveDate, u32)>,
}

impl AgendaCaseFold {
    /// A case as its registration starts it (the registration itself is folded in after).
    pub fn registered(e: &CaseRegistered) -> Self {
        Self {
            case_number: e.case_number.clone(),
            matter: e.matter.clone(),
            district: e.district.clone(),
            town: e.town.clone(),
            leader: None,
            leader_since: None,
            activity: BTreeMap::new(),
            lifecycle: LifecycleRow::default(),
            open_claim: None,
        }
    }

    /// Folds one event of the case in.
    pub fn apply(&mut self, event: &CaseEvent, occurred_at: DateTime<Utc>, limits: &Limits) {
        let day = china_date(occurred_at);
        self.lifecycle.apply(event, occurred_at, limits);
        match event {
            CaseEvent::LeaderAssigned(e) => {
                self.leader = Some(e.leader.clone());
                self.leader_since = Some(day);
            }
            CaseEvent::LeaderReassigned(e) => {
                self.leader = Some(e.to.clone());
                self.leader_since = Some(day);
            }
            CaseEvent::LeaderActivity(e) => {
                let latest = self
                    .activity
                    .entry(e.leader.id.clone())
                    .or_insert(e.held_on);
                *latest = (*latest).max(e.held_on);
            }
            CaseEvent::ResolutionClaimed(e) => self.open_claim = Some((e.claim, day, 0)),
            CaseEvent::ClaimAccepted(_) => {
                if let Some(claim) = &mut self.open_claim {
                    claim.2 += 1;
                }
            }
            CaseEvent::ClaimSentBack(_) | CaseEvent::CrossedOff(_) => self.open_claim = None,
            _ => {}
        }
    }

    /// What an agenda shows of it now.
    pub fn standing(&self) -> AgendaStanding {
        let idle = self
            .leader
            .as_ref()
            .filter(|_| self.lifecycle.stage() != "crossed_off")
            .and_then(|leader| match self.activity.get(&leader.id) {
                Some(day) => Some((*day, true)),
                None => self.leader_since.map(|day| (day, false)),
            });
        AgendaStanding {
            due: self
                .lifecycle
                .next_due()
                .map(|(on, step)| (on, step.to_owned())),
            leader: self.leader.as_ref().map(|l| l.name.clone()),
            idle,
            claim: self.open_claim,
        }
    }

    /// Whether the case is in one of `units` (its district or town).
    pub fn in_scope(&self, units: &[String]) -> bool {
        units.contains(&self.district.id)
            || self.town.as_ref().is_some_and(|t| units.contains(&t.id))
    }
}

/// The flow section an event puts its case in, and what the row says: a registration
/// (`new_cases`), a crossing off (`crossed_off`), a relapse (`relapses`).
pub fn flow_of(event: &CaseEvent) -> Option<(&'static str, String)> {
    match event {
        CaseEvent::Registered(_) => Some(("new_cases", "列入清单".to_owned())),
        CaseEvent::CrossedOff(c) => Some((
            "crossed_off",
            format!("第{}次化解申请审核通过，销号", c.claim),
        )),
        CaseEvent::Reopened(r) => Some((
            "relapses",
            format!("销号后再次信访，第{}次回潮", r.relapse_count),
        )),
        _ => None,
    }
}
