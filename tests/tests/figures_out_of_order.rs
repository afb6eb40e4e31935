//! A case whose events are stamped out of log order (a clock stepped back, two service nodes
//! with skewed clocks): the figures projection must still give what the archive fold gives for
//! a period that ends between two of them.
//!
//! Two of such a case's `figure_states` rows are both valid at (position, 15 March): the first
//! (its validity ends at the next row's stamp, 20 March) and the third (stamped 10 March, the
//! fold after all three events). Read from them, the case counted as owned — ownership 1/1 for
//! 思明区 over 1–15 March where the archive fold, which leaves out the event stamped 20 March,
//! has 0/1. Such (`irregular`) cases are now folded from their archived events on every route.

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;
use zhzj_tests::figures_check::{
    assert_projection_matches_archive, assert_siming_agenda_matches_archive,
};
use zhzj_tests::{DbKind, TestApp, register_case, spawn_app, wait_caught_up};

fn set(app: &TestApp, month: u32, day: u32) {
    if let Some(time) = Utc.with_ymd_and_hms(2026, month, day, 2, 0, 0).single() {
        app.services.clock.set(time);
    }
}

#[tokio::test]
async fn a_state_change_stamped_before_the_one_logged_before_it() -> anyhow::Result<()> {
    stamped_out_of_order(DbKind::Sqlite).await
}

#[tokio::test]
async fn the_same_on_postgres() -> anyhow::Result<()> {
    stamped_out_of_order(DbKind::Postgres).await
}

async fn stamped_out_of_order(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    set(&app, 3, 1);
    let case = app.command(serde_json::to_value(register_case(1))?).await?;
    // Logged second, stamped 20 March: the case becomes owned.
    set(&app, 3, 20);
    app.command(json!({"type": "assign_leader", "case_id": case, "leader_id": "ldr-siming-1"}))
        .await?;
    // Logged third, stamped 10 March: its lead unit changes.
    set(&app, 3, 10);
    app.command(json!({"type": "set_responsible_units", "case_id": case, "lead_unit_id": "xm-dept-zjj", "assisting_unit_ids": []}))
        .await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default();
    // Ends between the third event's stamp and the second's.
    let periods = [(day(3, 1), day(3, 15)), (day(3, 1), day(4, 1))];
    assert_projection_matches_archive(&app.projecting.store, &periods).await?;
    app.stop().await
}

/// The same for a meeting's agenda: a case given to one leader (logged second, stamped 20
/// March) and then to another (logged third, stamped 10 March). Read as a regular case, two of
/// its agenda rows would both be valid at a meeting on 15 March — the registration's (its
/// validity ends at the next row's stamp) and the reassignment's — and it would be listed twice;
/// the archive fold has it once, owned by the second leader since 10 March. Such cases are
/// folded from the archive for the agenda too.
#[tokio::test]
async fn an_agenda_over_a_case_stamped_out_of_order() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    set(&app, 3, 1);
    // A new petition: its notice of acceptance is due within 15 days, so every row of it can
    // be listed.
    let mut registration = serde_json::to_value(register_case(1))?;
    registration["list_source"] = json!("new_petition");
    let case = app.command(registration).await?;
    set(&app, 3, 20);
    app.command(json!({"type": "assign_leader", "case_id": case, "leader_id": "ldr-siming-1"}))
        .await?;
    set(&app, 3, 10);
    app.command(
        json!({"type": "assign_leader", "case_id": case, "leader_id": "ldr-siming-2",
        "reason": "工作调整"}),
    )
    .await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let held_ats: Vec<_> = (2..40)
        .filter_map(|day| {
            Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0)
                .single()
                .map(|t| t + chrono::Duration::days(day))
        })
        .collect();
    assert_siming_agenda_matches_archive(&app.projecting.store, &held_ats, 0).await?;
    app.stop().await
}
