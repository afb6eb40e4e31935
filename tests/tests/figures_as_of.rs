//! A figure as of a log position stays the same while the log grows: the running sums, the
//! touched cases taken out of them and those cases counted one by one must be read in one
//! snapshot (found from outside: the year's assessment at a fixed position changed in 3 % of the
//! reads while leader activities were being recorded).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;
use zhzj_deadlines::Limits;
use zhzj_figures::{Details, facts};
use zhzj_tests::{DbKind, register_case, spawn_app, wait_caught_up};

fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap_or_default()
}

#[tokio::test]
async fn the_year_as_of_a_position_does_not_move_while_activities_are_recorded()
-> anyhow::Result<()> {
    year_as_of_a_position_while_writing(DbKind::Sqlite).await
}

#[tokio::test]
async fn the_same_on_postgres() -> anyhow::Result<()> {
    year_as_of_a_position_while_writing(DbKind::Postgres).await
}

async fn year_as_of_a_position_while_writing(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    if let Some(time) = date(6, 1)
        .and_hms_opt(2, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t))
    {
        app.services.clock.set(time);
    }
    let mut cases = Vec::new();
    for n in 0..12 {
        let case_id = app.command(serde_json::to_value(register_case(n))?).await?;
        app.command(
            json!({"type": "assign_leader", "case_id": case_id, "leader_id": "ldr-siming-1"}),
        )
        .await?;
        cases.push(case_id);
    }
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let position = i64::try_from(app.log_position().await?)?;
    let store = app.projecting.store.clone();
    let (first, next) = (
        date(1, 1),
        NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default(),
    );
    let before = facts::from_projection(
        &store,
        first,
        next,
        position,
        &Details::None,
        &Limits::default(),
    )
    .await?;

    // Read again and again while activities are recorded on every case.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, store, before) = (Arc::clone(&stop), store.clone(), before.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while reads < 300 {
                let now = facts::from_projection(
                    &store,
                    first,
                    next,
                    position,
                    &Details::None,
                    &Limits::default(),
                )
                .await?;
                anyhow::ensure!(
                    (&now.districts, &now.towns, &now.departments, &now.counted)
                        == (
                            &before.districts,
                            &before.towns,
                            &before.departments,
                            &before.counted
                        ),
                    "read {reads} as of position {position} differs:\n{:?}\n{:?}",
                    now.districts,
                    before.districts
                );
                reads += 1;
            }
            stop.store(true, Ordering::Relaxed);
            anyhow::Ok(reads)
        })
    };
    let mut written = 0_usize;
    while !stop.load(Ordering::Relaxed) && !reader.is_finished() {
        let case_id = &cases[written % cases.len()];
        app.command(json!({"type": "record_activity", "case_id": case_id,
            "leader_id": "ldr-siming-1", "kind": "reception", "held_on": "2026-05-20",
            "summary": "接访"}))
            .await?;
        written += 1;
    }
    reader.await??;
    assert!(
        written > 20,
        "only {written} activities were recorded meanwhile"
    );
    // And the sums do see them at the latest position.
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let latest = i64::try_from(app.log_position().await?)?;
    let after = facts::from_projection(
        &store,
        first,
        next,
        latest,
        &Details::None,
        &Limits::default(),
    )
    .await?;
    assert_ne!(after.districts, before.districts);
    app.stop().await
}
