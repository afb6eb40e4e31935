//! The figures projection's running sums (`figure_sums`): what all cases contribute now, summed
//! by what they are counted as (district, town, lead unit, owned) and by day, so that a period's
//! figures are a read of a few rows per area and day instead of one per case and fact.
//!
//! The sums hold the log as applied: they answer "as of position P" only for the cases nothing
//! has happened to since P or since the period's end. The reader (`zhzj-figures`, `facts`)
//! takes those cases' own contributions out again and counts them one by one, as of P.
//!
//! Each case's contribution is kept in its fold ([`CaseSums`]); when a batch changes a case, the
//! difference between its contribution before and after is added to the sums. Moving a case to
//! another town or lead unit thus moves all its facts with it, so the sums always count a case
//! where it stands now.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::sqlbuild::{SqlValue, col, insert_rows};
use zhzj_store::Dialect;

use crate::figure_facts::{CaseFigureState, FactKind};

/// A kind of `figure_sums` row beside the facts' kinds (`crossed_off`, `rating`, …).
pub mod row_kind {
    /// One per case.
    pub const CASE: &str = "case";
    /// +1 on the day a case came to stand crossed off, −1 on the day it no longer did.
    pub const CROSSED_FLIP: &str = "crossed_flip";
    /// The notice of acceptance's deadline (its day) while it is owed.
    pub const ACCEPTANCE_CLOCK: &str = "acceptance_clock";
    /// The handling deadline (its day) while the handling runs.
    pub const HANDLING_CLOCK: &str = "handling_clock";
}

/// The DDL of `figure_sums` with the physical suffix `suffix`.
pub(crate) fn create_table(suffix: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE figure_sums{suffix} (
                kind        TEXT   NOT NULL,
                day         TEXT   NOT NULL,
                district_id TEXT   NOT NULL,
                town_id     TEXT   NOT NULL,
                lead_unit   TEXT   NOT NULL,
                owned       BIGINT NOT NULL,
                yes         BIGINT NOT NULL,
                flag        BIGINT NOT NULL,
                since       TEXT   NOT NULL,
                n           BIGINT NOT NULL
            )"
        ),
        format!(
            "CREATE UNIQUE INDEX figure_sums{suffix}_key ON figure_sums{suffix} \
             (kind, day, district_id, town_id, lead_unit, owned, yes, flag, since)"
        ),
    ]
}

/// One key of `figure_sums`: what a contribution is (`kind`, `yes`, `flag`), its day, the case's
/// district, town and lead unit (`""` for none), whether it is owned, and for a crossing off the
/// day of the case's crossing off before it (`since`, `""` for none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SumKey {
    /// The row's kind: a fact's kind or one of [`row_kind`].
    pub kind: String,
    /// Its day (`""` for a case).
    pub day: String,
    /// The case's district.
    pub district: String,
    /// Its town (`""` for none).
    pub town: String,
    /// Its lead unit (`""` for none).
    pub lead_unit: String,
    /// Whether a leader owns it.
    pub owned: bool,
    /// A fact's `yes` column.
    pub yes: bool,
    /// A fact's `flag` column.
    pub flag: bool,
    /// For a crossing off, the day of the previous one (`""` for none).
    pub since: String,
}

impl SumKey {
    /// Whether a row of this key counts in the period of days `first` (included) to `next`
    /// (excluded), for a case nothing has happened to since the period's end: a case always;
    /// a crossed-off flip when it happened before the period; a crossing off in the period when
    /// it is the case's first there; any other fact or a clock when its day is in the period.
    /// The reader's SQL selects the same rows (`facts::SUMS_IN_PERIOD`).
    pub fn counts_in(&self, first: &str, next: &str) -> bool {
        let in_period = self.day.as_str() >= first && self.day.as_str() < next;
        match self.kind.as_str() {
            row_kind::CASE => true,
            row_kind::CROSSED_FLIP => self.day.as_str() < first,
            "crossed_off" => in_period && self.since.as_str() < first,
            _ => in_period,
        }
    }
}

/// One fact as its case's contribution keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumFact {
    kind: String,
    yes: bool,
    flag: bool,
    day: NaiveDate,
    since: Option<NaiveDate>,
}

/// What a case contributes to the sums, kept in its fold: its facts, the days it came to stand
/// crossed off or stopped to, and whether its history can be summed at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSums {
    facts: Vec<SumFact>,
    flips: Vec<(NaiveDate, i64)>,
    last_crossed_off: Option<NaiveDate>,
    /// When the last event was recorded, in microseconds.
    last_recorded_at: i64,
    /// An event was recorded before the one before it (a clock set back): the days of the
    /// case's flips and crossings off may be out of order, so a reader counts it one by one.
    pub irregular: bool,
}

impl CaseSums {
    /// Notes an event recorded at `recorded_at` (microseconds) on `day`: the fact it counts as,
    /// and whether the case stands crossed off before (`was`) and after (`is`) it.
    pub fn note(
        &mut self,
        recorded_at: i64,
        day: NaiveDate,
        fact: Option<(FactKind, NaiveDate)>,
        was: bool,
        is: bool,
    ) {
        if recorded_at < self.last_recorded_at {
            self.irregular = true;
        }
        self.last_recorded_at = self.last_recorded_at.max(recorded_at);
        if let Some((kind, fact_day)) = fact {
            let (name, yes, flag) = kind.columns();
            let since = if kind == FactKind::CrossedOff {
                self.last_crossed_off.replace(fact_day)
            } else {
                None
            };
            self.facts.push(SumFact {
                kind: name.to_owned(),
                yes,
                flag,
                day: fact_day,
                since,
            });
        }
        if was != is {
            self.flips.push((day, if is { 1 } else { -1 }));
        }
    }

    /// When its last event was recorded (the latest of them), in microseconds.
    pub fn last_recorded_at(&self) -> i64 {
        self.last_recorded_at
    }

    /// The case's contribution when it stands as `state`: each key with its count.
    pub fn contribution(&self, state: &CaseFigureState) -> BTreeMap<SumKey, i64> {
        let key = |kind: &str, day: String, yes: bool, flag: bool, since: String| SumKey {
            kind: kind.to_owned(),
            day,
            district: state.district.clone(),
            town: state.town.clone().unwrap_or_default(),
            lead_unit: state.lead_unit.clone().unwrap_or_default(),
            owned: state.owned,
            yes,
            flag,
            since,
        };
        let mut sums = BTreeMap::new();
        let mut add = |k: SumKey, n: i64| *sums.entry(k).or_insert(0) += n;
        add(
            key(row_kind::CASE, String::new(), false, false, String::new()),
            1,
        );
        for fact in &self.facts {
            let since = fact.since.map(|d| d.to_string()).unwrap_or_default();
            add(
                key(&fact.kind, fact.day.to_string(), fact.yes, fact.flag, since),
                1,
            );
        }
        for (day, n) in &self.flips {
            let flip = key(
                row_kind::CROSSED_FLIP,
                day.to_string(),
                false,
                false,
                String::new(),
            );
            add(flip, *n);
        }
        let clocks = [
            (row_kind::ACCEPTANCE_CLOCK, state.acceptance_pending_until),
            (row_kind::HANDLING_CLOCK, state.handling_running_until),
        ];
        for (kind, until) in clocks {
            if let Some(day) = until {
                add(key(kind, day.to_string(), false, false, String::new()), 1);
            }
        }
        sums
    }
}

/// Adds `sign` times `contribution` into `into`.
pub(crate) fn accumulate(
    into: &mut BTreeMap<SumKey, i64>,
    contribution: BTreeMap<SumKey, i64>,
    sign: i64,
) {
    for (key, n) in contribution {
        *into.entry(key).or_insert(0) += sign * n;
    }
}

/// Adds the changes of a batch to `figure_sums{suffix}`.
pub(crate) async fn add_to_sums(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    suffix: &str,
    changes: BTreeMap<SumKey, i64>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<Vec<SqlValue>> = changes
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(key, n)| {
            vec![
                SqlValue::Text(key.kind),
                SqlValue::Text(key.day),
                SqlValue::Text(key.district),
                SqlValue::Text(key.town),
                SqlValue::Text(key.lead_unit),
                SqlValue::Int(i64::from(key.owned)),
                SqlValue::Int(i64::from(key.yes)),
                SqlValue::Int(i64::from(key.flag)),
                SqlValue::Text(key.since),
                SqlValue::Int(n),
            ]
        })
        .collect();
    insert_rows(
        conn,
        dialect,
        &format!("figure_sums{suffix}"),
        &[
            col("kind"),
            col("day"),
            col("district_id"),
            col("town_id"),
            col("lead_unit"),
            col("owned"),
            col("yes"),
            col("flag"),
            col("since"),
            col("n"),
        ],
        rows,
        &format!(
            "ON CONFLICT (kind, day, district_id, town_id, lead_unit, owned, yes, flag, since) \
             DO UPDATE SET n = figure_sums{suffix}.n + excluded.n"
        ),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).expect("a day of 2026")
    }

    fn counted(
        sums: &CaseSums,
        state: &CaseFigureState,
        kind: &str,
        first: &str,
        next: &str,
    ) -> i64 {
        sums.contribution(state)
            .into_iter()
            .filter(|(key, _)| key.kind == kind && key.counts_in(first, next))
            .map(|(_, n)| n)
            .sum()
    }

    #[test]
    fn a_case_crossed_off_twice_in_a_period_counts_once_and_stands_crossed_off_after() {
        let state = CaseFigureState {
            district: "d".into(),
            ..CaseFigureState::default()
        };
        let mut sums = CaseSums::default();
        sums.note(
            1,
            day(3, 10),
            Some((FactKind::CrossedOff, day(3, 10))),
            false,
            true,
        );
        sums.note(
            2,
            day(3, 20),
            Some((FactKind::Reopened, day(3, 20))),
            true,
            false,
        );
        sums.note(
            3,
            day(4, 2),
            Some((FactKind::CrossedOff, day(4, 2))),
            false,
            true,
        );
        assert!(!sums.irregular);
        // March–April: one case crossed off; April alone: one; March alone: one.
        for (first, next) in [
            ("2026-03-01", "2026-05-01"),
            ("2026-04-01", "2026-05-01"),
            ("2026-03-01", "2026-04-01"),
        ] {
            assert_eq!(
                counted(&sums, &state, "crossed_off", first, next),
                1,
                "{first}"
            );
        }
        // Standing crossed off at the start of April: no (reopened on 20 March); of May: yes.
        assert_eq!(
            counted(
                &sums,
                &state,
                row_kind::CROSSED_FLIP,
                "2026-04-01",
                "2026-05-01"
            ),
            0
        );
        assert_eq!(
            counted(
                &sums,
                &state,
                row_kind::CROSSED_FLIP,
                "2026-05-01",
                "2026-06-01"
            ),
            1
        );
        assert_eq!(
            counted(&sums, &state, row_kind::CASE, "2026-05-01", "2026-06-01"),
            1
        );
    }

    #[test]
    fn an_event_recorded_before_the_one_before_it_makes_the_case_irregular() {
        let mut sums = CaseSums::default();
        sums.note(10, day(3, 10), None, false, false);
        sums.note(5, day(3, 9), None, false, false);
        assert!(sums.irregular);
        assert_eq!(sums.last_recorded_at(), 10);
    }
}
