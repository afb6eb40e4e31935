//! The leader view (`GET /leaders`) at the benchmark's scale, from its projection (p50 of 5),
//! for the city administrator and a district coordinator, beside the same figures counted case
//! by case from the checklist, the lifecycle view and every activity as the view did before.

use std::time::Instant;

use chrono::NaiveDate;
use sqlx::Row;
use zhzj_gateway::scope::Scope;
use zhzj_store::ReadStore;

use super::BenchDistrict;

/// Owned, open and idle cases and activities summed over every leader (the idle cases counted,
/// not only those listed).
#[derive(Debug, PartialEq, Eq)]
struct Totals {
    owned: usize,
    open: usize,
    idle: usize,
    activities: u64,
}

/// The view of `scope` (p50 of 5, in ms) and its totals.
async fn timed_view(
    inactive_days: u32,
    store: &ReadStore,
    scope: &Scope,
    today: NaiveDate,
) -> anyhow::Result<(f64, Totals, usize)> {
    let mut ms = Vec::new();
    let mut view = None;
    for _ in 0..5 {
        let started = Instant::now();
        view = Some(
            zhzj_gateway::leader_view(store.pool(), scope, today, inactive_days)
                .await
                .map_err(|e| anyhow::anyhow!("leader view: {e:?}"))?,
        );
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let view = view.ok_or_else(|| anyhow::anyhow!("no view"))?;
    let totals = Totals {
        owned: view.leaders.iter().map(|l| l.owned_cases).sum(),
        open: view.leaders.iter().map(|l| l.open_cases).sum(),
        idle: view.leaders.iter().map(|l| l.idle_case_count).sum(),
        activities: view
            .leaders
            .iter()
            .flat_map(|l| l.activities_by_month.values())
            .map(|n| u64::from(*n))
            .sum(),
    };
    Ok((ms[2], totals, view.leaders.len()))
}

/// The city administrator's figures counted as the view did before its projection: every case
/// of the checklist joined to its lifecycle, each open one's last activity looked up, every
/// activity counted per leader and day.
async fn counted_case_by_case(store: &ReadStore, cutoff: &str) -> anyhow::Result<Totals> {
    let open = "COALESCE(l.stage, 'open') <> 'crossed_off'";
    let owned = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS owned, COALESCE(SUM(CASE WHEN {open} THEN 1 ELSE 0 END), 0) AS open \
         FROM checklist_rows c LEFT JOIN case_lifecycle l ON l.case_id = c.case_id \
         WHERE c.leader_id IS NOT NULL"
    )))
    .fetch_one(store.pool())
    .await?;
    let idle: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT c.case_id FROM checklist_rows c LEFT JOIN case_lifecycle l ON l.case_id = c.case_id \
         WHERE c.leader_id IS NOT NULL AND {open} \
         AND COALESCE((SELECT MAX(a.held_on) FROM leader_activities a \
                       WHERE a.leader_id = c.leader_id AND a.case_id = c.case_id), \
                      substr(c.registered_at, 1, 10)) < $1 \
         ORDER BY c.registered_at, c.case_id"
    )))
    .bind(cutoff)
    .fetch_all(store.pool())
    .await?;
    let mut activities = 0_u64;
    for row in sqlx::query(
        "SELECT a.leader_id, a.held_on, COUNT(*) AS activities \
         FROM leader_activities a GROUP BY a.leader_id, a.held_on",
    )
    .fetch_all(store.pool())
    .await?
    {
        activities += u64::try_from(row.try_get::<i64, _>("activities")?).unwrap_or(0);
    }
    Ok(Totals {
        owned: usize::try_from(owned.try_get::<i64, _>("owned")?).unwrap_or(0),
        open: usize::try_from(owned.try_get::<i64, _>("open")?).unwrap_or(0),
        idle: idle.len(),
        activities,
    })
}

/// Prints the measures; fails unless the projection's figures are those counted case by case.
pub(super) async fn measure(
    store: &ReadStore,
    districts: &[BenchDistrict],
    today: Option<NaiveDate>,
    inactive_days: u32,
) -> anyhow::Result<()> {
    let today = today.unwrap_or_default();
    let (city_ms, totals, leaders) = timed_view(inactive_days, store, &Scope::All, today).await?;
    println!(
        "leader view on {today}, idle {inactive_days} days, of the city administrator ({leaders} leaders, {} owned cases, {} open, {} idle, {} activities), from its projection: p50 {city_ms:.1} ms (of 5)",
        totals.owned, totals.open, totals.idle, totals.activities
    );
    if let Some((district, town, _)) = districts.first() {
        let scope = Scope::Within {
            units: vec![district.id.clone(), town.id.clone()],
            leader_id: None,
            responsible_unit: Some(district.id.clone()),
        };
        let (ms, district_totals, leaders) =
            timed_view(inactive_days, store, &scope, today).await?;
        println!(
            "leader view on {today} of {}'s coordinator ({leaders} leaders, {} owned cases, {} idle): p50 {ms:.1} ms (of 5)",
            district.name, district_totals.owned, district_totals.idle
        );
    }
    let cutoff = (today - chrono::Days::new(u64::from(inactive_days))).to_string();
    let started = Instant::now();
    let counted = counted_case_by_case(store, &cutoff).await?;
    println!(
        "baseline  the city administrator's figures on {today} counted case by case (checklist, lifecycle, every activity): {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    anyhow::ensure!(
        counted == totals,
        "the leader view's projection gives {totals:?}, counting case by case {counted:?}"
    );
    Ok(())
}

/// The leader view with a quarter of the cases open: the same histories as they stood on
/// 10 June, in the leader view's projections of a second store in `dir`, idle for 3 days or
/// more.
pub(super) async fn measure_on_10_june(
    dir: &std::path::Path,
    cases: usize,
    districts: &[BenchDistrict],
) -> anyhow::Result<()> {
    let june = ReadStore::connect(&zhzj_store::sql::sqlite_url(&dir.join("june.sqlite"))).await?;
    super::archive::write_leader_views_before(&june, cases, super::china_morning(6, 10)).await?;
    measure(&june, districts, NaiveDate::from_ymd_opt(2026, 6, 10), 3).await
}
