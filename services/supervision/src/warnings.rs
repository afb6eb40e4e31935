//! Early warnings (预警): each pass reads the read views as they stand, finds every condition a
//! rule names — a case's statutory deadline near or missed, an owning leader idle, a crossed-off
//! case petitioned again (回潮), a town's repeat petitions surging, a supervision order's answer
//! near or past its due date — and records it in `warnings` under a key that names the condition
//! (rule, subject, due date …). A condition fires once: its key is inserted once. It clears when
//! a later pass no longer finds it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate};
use sqlx::Row;
use zhzj_store::{Dialect, ReadStore};

use crate::rules::WarningRules;

/// The rules, by code, with their names in the interface.
pub const RULES: [(&str, &str); 7] = [
    ("deadline_soon", "期限临近"),
    ("deadline_missed", "期限已过"),
    ("leader_idle", "包案领导未开展工作"),
    ("relapse", "销号后回潮"),
    ("town_surge", "重复信访激增"),
    ("order_due_soon", "督办即将逾期"),
    ("order_overdue", "督办逾期未反馈"),
];

/// The name of a rule in the interface.
pub fn rule_label(rule: &str) -> &'static str {
    RULES
        .iter()
        .find(|(code, _)| *code == rule)
        .map_or("预警", |(_, label)| label)
}

/// A condition found by a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Names the condition: the same condition has the same key in every pass.
    pub key: String,
    /// The rule's code.
    pub rule: &'static str,
    /// The case it is about.
    pub case_id: Option<String>,
    /// The supervision order it is about.
    pub order_id: Option<String>,
    /// The unit it concerns (the case's town or district, the order's addressee, the town).
    pub unit_id: Option<String>,
    /// The owning leader, for a case.
    pub leader_id: Option<String>,
    /// What it says (no personal data: case numbers, units, dates).
    pub title: String,
}

/// What one pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarningPass {
    /// Keys of the warnings that fired.
    pub fired: Vec<String>,
    /// Keys of the warnings that cleared.
    pub cleared: Vec<String>,
}

fn days_before(day: NaiveDate, days: u32) -> NaiveDate {
    day.checked_sub_days(Days::new(u64::from(days)))
        .unwrap_or(day)
}

fn days_after(day: NaiveDate, days: u32) -> NaiveDate {
    day.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(day)
}

/// `YYYY-MM` of the month `back` months before `day`'s.
fn month_before(day: NaiveDate, back: u32) -> String {
    let first = day.with_day(1).unwrap_or(day);
    let month = first
        .checked_sub_months(chrono::Months::new(back))
        .unwrap_or(first);
    format!("{:04}-{:02}", month.year(), month.month())
}

/// Every condition the rules find today.
pub async fn conditions(
    store: &ReadStore,
    rules: &WarningRules,
    today: NaiveDate,
) -> Result<Vec<Condition>, sqlx::Error> {
    let mut found = deadline_conditions(store, rules, today).await?;
    found.extend(idle_leader_conditions(store, rules, today).await?);
    found.extend(relapse_conditions(store).await?);
    found.extend(town_surges(store, rules, today).await?);
    found.extend(order_conditions(store, rules, today).await?);
    Ok(found)
}

/// Statutory deadlines: the next one of each open case, within the horizon or missed.
async fn deadline_conditions(
    store: &ReadStore,
    rules: &WarningRules,
    today: NaiveDate,
) -> Result<Vec<Condition>, sqlx::Error> {
    let pool = store.pool();
    let mut found = Vec::new();
    let today_text = today.to_string();
    let horizon = days_after(today, rules.deadline_within_days).to_string();
    for row in sqlx::query(
        "SELECT l.case_id, l.next_due_on, l.next_due_step, c.case_number, c.district_id, \
         c.town_id, c.leader_id FROM case_lifecycle l JOIN checklist_rows c ON c.case_id = l.case_id \
         WHERE l.next_due_on IS NOT NULL AND l.next_due_on <= $1 AND l.stage <> 'crossed_off'",
    )
    .bind(&horizon)
    .fetch_all(pool)
    .await?
    {
        let case_id: String = row.try_get("case_id")?;
        let due: String = row.try_get("next_due_on")?;
        let step: Option<String> = row.try_get("next_due_step")?;
        let step_label = step
            .as_deref()
            .and_then(|key| {
                zhzj_deadlines::StatutoryStep::ALL
                    .into_iter()
                    .find(|s| s.key() == key)
            })
            .map_or("法定期限", zhzj_deadlines::StatutoryStep::label);
        let number: String = row.try_get("case_number")?;
        let missed = due < today_text;
        let rule = if missed {
            "deadline_missed"
        } else {
            "deadline_soon"
        };
        found.push(Condition {
            key: format!(
                "{rule}:{case_id}:{}:{due}",
                step.as_deref().unwrap_or("")
            ),
            rule,
            unit_id: row
                .try_get::<Option<String>, _>("town_id")?
                .or(Some(row.try_get("district_id")?)),
            leader_id: row.try_get("leader_id")?,
            order_id: None,
            title: if missed {
                format!("案件 {number} 的{step_label}（{due}）已过")
            } else {
                format!("案件 {number} 的{step_label}将于 {due} 届满")
            },
            case_id: Some(case_id),
        });
    }
    Ok(found)
}

/// Owning leaders with no activity on an open case since the threshold (or ever, for a case
/// registered before it).
async fn idle_leader_conditions(
    store: &ReadStore,
    rules: &WarningRules,
    today: NaiveDate,
) -> Result<Vec<Condition>, sqlx::Error> {
    let pool = store.pool();
    let mut found = Vec::new();
    let idle_since = days_before(today, rules.leader_idle_days).to_string();
    for row in sqlx::query(
        "SELECT c.case_id, c.case_number, c.leader_id, c.leader_name, c.district_id, c.town_id, \
         c.registered_at, (SELECT MAX(a.held_on) FROM leader_activities a \
         WHERE a.case_id = c.case_id AND a.leader_id = c.leader_id) AS last_on \
         FROM checklist_rows c JOIN case_lifecycle l ON l.case_id = c.case_id \
         WHERE c.leader_id IS NOT NULL AND l.stage <> 'crossed_off'",
    )
    .fetch_all(pool)
    .await?
    {
        let registered: String = row.try_get("registered_at")?;
        let last = row
            .try_get::<Option<String>, _>("last_on")?
            .unwrap_or_else(|| registered.chars().take(10).collect());
        if last >= idle_since {
            continue;
        }
        let case_id: String = row.try_get("case_id")?;
        let leader_id: String = row.try_get("leader_id")?;
        let number: String = row.try_get("case_number")?;
        let name: Option<String> = row.try_get("leader_name")?;
        found.push(Condition {
            key: format!("leader_idle:{case_id}:{leader_id}"),
            rule: "leader_idle",
            unit_id: row
                .try_get::<Option<String>, _>("town_id")?
                .or(Some(row.try_get("district_id")?)),
            title: format!(
                "包案领导{}已 {} 日以上未就案件 {number} 开展工作（最近一次 {last}）",
                name.unwrap_or_default(),
                rules.leader_idle_days
            ),
            leader_id: Some(leader_id),
            order_id: None,
            case_id: Some(case_id),
        });
    }
    Ok(found)
}

/// Crossed-off cases petitioned again, until crossed off again.
async fn relapse_conditions(store: &ReadStore) -> Result<Vec<Condition>, sqlx::Error> {
    let pool = store.pool();
    let mut found = Vec::new();
    for row in sqlx::query(
        "SELECT c.case_id, c.case_number, c.district_id, c.town_id, c.leader_id, l.relapse_count \
         FROM case_lifecycle l JOIN checklist_rows c ON c.case_id = l.case_id \
         WHERE l.stage = 'reopened'",
    )
    .fetch_all(pool)
    .await?
    {
        let case_id: String = row.try_get("case_id")?;
        let number: String = row.try_get("case_number")?;
        let relapses: i64 = row.try_get("relapse_count")?;
        found.push(Condition {
            key: format!("relapse:{case_id}:{relapses}"),
            rule: "relapse",
            unit_id: row
                .try_get::<Option<String>, _>("town_id")?
                .or(Some(row.try_get("district_id")?)),
            leader_id: row.try_get("leader_id")?,
            order_id: None,
            title: format!("已销号案件 {number} 再次信访，案件回潮（第 {relapses} 次）"),
            case_id: Some(case_id),
        });
    }
    Ok(found)
}

/// Supervision orders: the answer due soon, or overdue.
async fn order_conditions(
    store: &ReadStore,
    rules: &WarningRules,
    today: NaiveDate,
) -> Result<Vec<Condition>, sqlx::Error> {
    let pool = store.pool();
    let mut found = Vec::new();
    let today_text = today.to_string();
    let order_horizon = days_after(today, rules.order_due_within_days).to_string();
    for row in sqlx::query(
        "SELECT order_id, issuer_unit_name, addressee_unit_id, addressee_unit_name, level, \
         answer_due_on FROM supervision_orders \
         WHERE status IN ('issued', 'acknowledged', 'sent_back') AND answer_due_on <= $1",
    )
    .bind(&order_horizon)
    .fetch_all(pool)
    .await?
    {
        let order_id: String = row.try_get("order_id")?;
        let due: String = row.try_get("answer_due_on")?;
        let level: String = row.try_get("level")?;
        let level = zhzj_proto::events::SupervisionLevel::parse(&level)
            .map_or("督办", zhzj_proto::events::SupervisionLevel::label);
        let issuer: String = row.try_get("issuer_unit_name")?;
        let addressee: String = row.try_get("addressee_unit_name")?;
        let overdue = due < today_text;
        let rule = if overdue {
            "order_overdue"
        } else {
            "order_due_soon"
        };
        found.push(Condition {
            key: format!("{rule}:{order_id}:{due}"),
            rule,
            unit_id: Some(row.try_get("addressee_unit_id")?),
            leader_id: None,
            case_id: None,
            title: if overdue {
                format!("{issuer}对{addressee}的{level}单反馈期限（{due}）已过，尚未办结反馈")
            } else {
                format!("{issuer}对{addressee}的{level}单将于 {due} 到期，尚未办结反馈")
            },
            order_id: Some(order_id),
        });
    }
    Ok(found)
}

/// Towns whose repeat petitions this month exceed the factor times the previous three months'
/// average (and the minimum count).
async fn town_surges(
    store: &ReadStore,
    rules: &WarningRules,
    today: NaiveDate,
) -> Result<Vec<Condition>, sqlx::Error> {
    let received = match store.dialect() {
        Dialect::Sqlite => "json_extract(e.data, '$.received_on')",
        Dialect::Postgres => "(e.data ->> 'received_on')",
    };
    let this_month = month_before(today, 0);
    let from = format!("{}-01", month_before(today, 3));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.town_id, MAX(c.town_name) AS town_name, SUBSTR({received}, 1, 7) AS month, \
         COUNT(*) AS petitions FROM event_archive e JOIN checklist_rows c \
         ON c.case_id = e.aggregate_id WHERE e.event_type = 'PetitionRecorded' \
         AND c.town_id IS NOT NULL AND {received} >= $1 AND {received} <= $2 \
         GROUP BY c.town_id, SUBSTR({received}, 1, 7)"
    )))
    .bind(&from)
    .bind(today.to_string())
    .fetch_all(store.pool())
    .await?;
    let mut by_town: BTreeMap<String, (String, BTreeMap<String, i64>)> = BTreeMap::new();
    for row in rows {
        let town: String = row.try_get("town_id")?;
        let name: Option<String> = row.try_get("town_name")?;
        let month: String = row.try_get("month")?;
        let petitions: i64 = row.try_get("petitions")?;
        by_town
            .entry(town)
            .or_insert_with(|| (name.unwrap_or_default(), BTreeMap::new()))
            .1
            .insert(month, petitions);
    }
    let earlier: Vec<String> = (1..=3).map(|back| month_before(today, back)).collect();
    let mut found = Vec::new();
    for (town, (name, months)) in by_town {
        let now = months.get(&this_month).copied().unwrap_or(0);
        let before: i64 = earlier.iter().filter_map(|m| months.get(m)).sum();
        let average = before as f64 / 3.0;
        let surging = now >= i64::from(rules.town_surge_min_petitions)
            && now as f64 > average * rules.town_surge_factor;
        if surging {
            found.push(Condition {
                key: format!("town_surge:{town}:{this_month}"),
                rule: "town_surge",
                title: format!(
                    "{name}本月（{this_month}）重复信访 {now} 件，超过前三个月月均 {average:.1} 件的 {} 倍",
                    rules.town_surge_factor
                ),
                unit_id: Some(town),
                case_id: None,
                order_id: None,
                leader_id: None,
            });
        }
    }
    Ok(found)
}

/// One pass: fires the conditions found that have not fired, clears the open warnings no longer
/// found, in one write transaction.
pub async fn run_pass(
    store: &ReadStore,
    rules: &WarningRules,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<WarningPass, sqlx::Error> {
    let today = zhzj_store::china_date(now);
    let found = conditions(store, rules, today).await?;
    let at = zhzj_store::sql::timestamp_text(now);
    let mut tx = store.begin_write().await?;
    let open: BTreeSet<String> =
        sqlx::query_scalar("SELECT warning_key FROM warnings WHERE cleared_at IS NULL")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let mut pass = WarningPass::default();
    let mut current = BTreeSet::new();
    for condition in found {
        current.insert(condition.key.clone());
        if open.contains(&condition.key) {
            continue;
        }
        let inserted = sqlx::query(
            "INSERT INTO warnings (warning_key, rule, case_id, order_id, unit_id, leader_id, \
             title, fired_at, notified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&condition.key)
        .bind(condition.rule)
        .bind(&condition.case_id)
        .bind(&condition.order_id)
        .bind(&condition.unit_id)
        .bind(&condition.leader_id)
        .bind(&condition.title)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() > 0 {
            pass.fired.push(condition.key);
        }
    }
    for key in open.difference(&current) {
        sqlx::query("UPDATE warnings SET cleared_at = $1 WHERE warning_key = $2")
            .bind(&at)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        pass.cleared.push(key.clone());
    }
    tx.commit().await?;
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_count_back_across_the_year() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 17).unwrap_or_default();
        assert_eq!(month_before(day, 0), "2026-02");
        assert_eq!(month_before(day, 3), "2025-11");
        assert_eq!(rule_label("relapse"), "销号后回潮");
    }
}
