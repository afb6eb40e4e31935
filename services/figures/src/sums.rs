//! A period's figures from the figures projection's running sums (`figure_sums`): a few rows
//! per area and day, whatever the number of cases. The sums count every case as it stands now;
//! the cases something happened to after the log position asked for or after the period's end
//! (and the few whose clock went backwards) are taken out again and counted one by one as of
//! that position, so the answer is the archive computation's at the position.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use futures::TryStreamExt;
use sqlx::Row;
use zhzj_projector::figure_facts::{CaseFigureFold, FactKind};
use zhzj_projector::figure_sums::{SumKey, row_kind};
use zhzj_store::ReadStore;

use crate::FiguresError;
use crate::bulletin::{AreaTally, Unit, areas_of};
use crate::facts::{GroupSums, Window};

/// The cases something happened to after position `{position}` or from the moment `{end}` on
/// (microseconds), and those whose history cannot be summed.
pub(crate) fn touched_cases(position: &str, end: &str) -> String {
    format!(
        "SELECT case_id FROM figure_cases \
         WHERE last_position > {position} OR last_recorded_at >= {end} OR irregular = 1"
    )
}

/// The rows of `figure_sums` that count in a period, `$1` its first day and `$2` the next: the
/// same rows as [`SumKey::counts_in`].
const SUMS_IN_PERIOD: &str = "
SELECT kind, day, district_id, town_id, lead_unit, owned, yes, flag, since, n FROM figure_sums
WHERE kind = 'case'
   OR (kind = 'crossed_flip' AND day < $1)
   OR (kind = 'crossed_off' AND day >= $1 AND day < $2 AND since < $1)
   OR (kind IN ('reopened', 'petition', 'rating', 'activity', 'acceptance', 'completion',
                'acceptance_clock', 'handling_clock')
       AND day >= $1 AND day < $2)";

/// What the cases of one (district, town, lead unit, owned) add up to in a period.
#[derive(Debug, Default)]
struct GroupTally {
    cases: i64,
    crossed_at_start: i64,
    crossed: i64,
    acceptances: i64,
    acceptances_on_time: i64,
    completions: i64,
    completions_on_time: i64,
    acceptance_overdue: i64,
    handling_overdue: i64,
    relapses: i64,
    petitions: i64,
    rating_records: i64,
    rated: i64,
    satisfied: i64,
    activities: i64,
    /// Receptions by day.
    receptions: BTreeMap<NaiveDate, i64>,
}

impl GroupTally {
    /// Adds `n` rows of `key`, which counts in the period.
    fn add(&mut self, key: &SumKey, n: i64) -> Result<(), String> {
        match key.kind.as_str() {
            row_kind::CASE => self.cases += n,
            row_kind::CROSSED_FLIP => self.crossed_at_start += n,
            row_kind::ACCEPTANCE_CLOCK => self.acceptance_overdue += n,
            row_kind::HANDLING_CLOCK => self.handling_overdue += n,
            kind => match FactKind::from_columns(kind, key.yes, key.flag) {
                Some(FactKind::CrossedOff) => self.crossed += n,
                Some(FactKind::Reopened) => self.relapses += n,
                Some(FactKind::Petition) => self.petitions += n,
                Some(FactKind::Rating { rated, satisfied }) => {
                    self.rating_records += n;
                    self.rated += n * i64::from(rated);
                    self.satisfied += n * i64::from(satisfied);
                }
                Some(FactKind::Activity { reception }) => {
                    self.activities += n;
                    if reception {
                        let day = key
                            .day
                            .parse()
                            .map_err(|e| format!("day `{}`: {e}", key.day))?;
                        *self.receptions.entry(day).or_insert(0) += n;
                    }
                }
                Some(FactKind::Acceptance { on_time }) => {
                    self.acceptances += n;
                    self.acceptances_on_time += n * i64::from(on_time);
                }
                Some(FactKind::Completion { on_time }) => {
                    self.completions += n;
                    self.completions_on_time += n * i64::from(on_time);
                }
                None => return Err(format!("figure sum of unknown kind `{kind}`")),
            },
        }
        Ok(())
    }

    /// The sums as [`GroupSums`] of the group (`owned`).
    fn group_sums(&self, (district, town, lead, owned): &GroupKey) -> GroupSums {
        let on_list = self.cases - self.crossed_at_start;
        let if_owned = |n: i64| if *owned { n } else { 0 };
        GroupSums {
            district_id: district.clone(),
            town_id: (!town.is_empty()).then(|| town.clone()),
            lead_unit: (!lead.is_empty()).then(|| lead.clone()),
            on_list,
            owned_on_list: if_owned(on_list),
            crossed: self.crossed,
            owned_crossed: if_owned(self.crossed),
            acceptance_overdue: self.acceptance_overdue,
            handling_overdue: self.handling_overdue,
            relapses: self.relapses,
            petitions: self.petitions,
            rating_records: self.rating_records,
            rated: self.rated,
            satisfied: self.satisfied,
            activities: self.activities,
            acceptances: self.acceptances,
            acceptances_on_time: self.acceptances_on_time,
            completions: self.completions,
            completions_on_time: self.completions_on_time,
        }
    }
}

/// District, town, lead unit (`""` for none), owned.
type GroupKey = (String, String, String, bool);

fn group_of(key: &SumKey) -> GroupKey {
    (
        key.district.clone(),
        key.town.clone(),
        key.lead_unit.clone(),
        key.owned,
    )
}

/// What the running sums say of a period, less the touched cases' own contributions; and the
/// touched cases.
struct UntouchedSums {
    groups: HashMap<GroupKey, GroupTally>,
    touched: usize,
}

/// Reads the sums and takes the touched cases' contributions out, in the caller's snapshot of
/// the read store. None when more than `most_touched` cases were touched.
async fn untouched_sums(
    snapshot: &mut sqlx::AnyConnection,
    window: Window,
    most_touched: usize,
) -> Result<Option<UntouchedSums>, FiguresError> {
    let unreadable = |reason: String| FiguresError::Unreadable {
        position: window.position,
        reason,
    };
    let (first, next) = (window.first.to_string(), window.next.to_string());
    let touched: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(touched_cases("$1", "$2")))
        .bind(window.position)
        .bind(window.end)
        .fetch_all(&mut *snapshot)
        .await?;
    if touched.len() > most_touched {
        return Ok(None);
    }
    let mut groups: HashMap<GroupKey, GroupTally> = HashMap::new();
    let mut rows = sqlx::query(SUMS_IN_PERIOD)
        .bind(&first)
        .bind(&next)
        .fetch(&mut *snapshot);
    while let Some(row) = rows.try_next().await? {
        let key = SumKey {
            kind: row.try_get("kind")?,
            day: row.try_get("day")?,
            district: row.try_get("district_id")?,
            town: row.try_get("town_id")?,
            lead_unit: row.try_get("lead_unit")?,
            owned: row.try_get::<i64, _>("owned")? != 0,
            yes: row.try_get::<i64, _>("yes")? != 0,
            flag: row.try_get::<i64, _>("flag")? != 0,
            since: row.try_get("since")?,
        };
        let n: i64 = row.try_get("n")?;
        groups
            .entry(group_of(&key))
            .or_default()
            .add(&key, n)
            .map_err(unreadable)?;
    }
    drop(rows);
    for chunk in touched.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let mut select = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT fold FROM figure_cases WHERE case_id IN ({})",
            marks.join(", ")
        )));
        for case_id in chunk {
            select = select.bind(case_id);
        }
        for row in select.fetch_all(&mut *snapshot).await? {
            let text: String = row.try_get("fold")?;
            let fold: CaseFigureFold =
                serde_json::from_str(&text).map_err(|e| unreadable(format!("figure fold: {e}")))?;
            for (key, n) in fold.sums.contribution(&fold.state) {
                if key.counts_in(&first, &next) {
                    groups
                        .entry(group_of(&key))
                        .or_default()
                        .add(&key, -n)
                        .map_err(unreadable)?;
                }
            }
        }
    }
    Ok(Some(UntouchedSums {
        groups,
        touched: touched.len(),
    }))
}

/// The period's figures from the running sums, the touched cases counted one by one: None when
/// more than `most_touched` cases were touched (counting them one by one would cost more than
/// reading every case).
pub(crate) async fn summed(
    store: &ReadStore,
    units: &BTreeMap<String, Unit>,
    window: Window,
    most_touched: usize,
    limits: &zhzj_deadlines::Limits,
) -> Result<Option<AreaTally>, FiguresError> {
    // One snapshot for the sums, the touched cases taken out of them and the same cases
    // counted one by one: a case touched meanwhile must be in all three or in none.
    let mut snapshot = store.begin_snapshot().await?;
    let Some(untouched) = untouched_sums(&mut snapshot, window, most_touched).await? else {
        snapshot.commit().await?;
        return Ok(None);
    };
    let mut tally = if untouched.touched == 0 {
        AreaTally::default()
    } else {
        crate::facts::case_by_case(
            &mut snapshot,
            units,
            window,
            &crate::bulletin::Details::None,
            true,
            limits,
        )
        .await?
    };
    snapshot.commit().await?;
    for (group, sums) in &untouched.groups {
        if sums.cases == 0 {
            // Every case of the group was touched: the group is counted with them, or not.
            continue;
        }
        let group_sums = sums.group_sums(group);
        let noted = usize::try_from(group_sums.noted()).unwrap_or(0);
        let (district, town, lead, _) = group;
        let town = (!town.is_empty()).then_some(town.as_str());
        let lead = (!lead.is_empty()).then_some(lead.as_str());
        for area in areas_of(units, district, town, lead) {
            let counts = tally.by_area.entry(area.clone()).or_default();
            group_sums.add_to(counts);
            counts.reception_days.extend(
                sums.receptions
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(day, _)| *day),
            );
            *tally.counted.entry(area).or_default() += noted;
        }
    }
    Ok(Some(tally))
}
