//! The statutory procedure of the 《信访工作条例》 on real parts: the notice of acceptance, the
//! reply, first and second review (复查、复核) with a hearing, the conclusion (终结) — each clock on
//! the checklist with its real 2026 dates, every out-of-order or late step refused with nothing
//! appended; the bureau's internal limits recomputing the view; and deadlines in a year whose
//! holidays are not yet published flagged as estimates.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use serde_json::{Value, json};
use zhzj_deadlines::Limits;
use zhzj_projector::{Projection, ProjectorSettings, ensure_settings};
use zhzj_tests::{
    DbKind, TestDb, register_case, run_projections, seeded_stack, spawn_app, wait_caught_up,
};

fn step(step: &str, on: &str) -> Value {
    json!({"step": step, "on": on, "summary": format!("{step} 记录")})
}

/// The clock of `key` in a case view.
fn clock<'a>(view: &'a Value, key: &str) -> Option<&'a Value> {
    view["clocks"].as_array()?.iter().find(|c| c["step"] == key)
}

#[tokio::test]
async fn the_procedure_runs_its_clocks_in_order_up_to_the_conclusion() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let t = token.as_str();
    // A new petition, put on the list on Monday 2026-03-02 (the test clock).
    let mut body = zhzj_tests::registration_json(1);
    body["list_source"] = json!("new_petition");
    let registered = app.expect(t, "/cases", body, 201).await?;
    let case = format!(
        "/cases/{}",
        registered["aggregate_id"].as_str().unwrap_or("")
    );
    let procedure = format!("{case}/procedure");

    // The notice of acceptance is due first: 15 days, Tuesday 2026-03-17.
    let view = app.get(t, &case).await?.json;
    assert_eq!(view["next_deadline"], "2026-03-17");
    assert_eq!(view["next_deadline_step"], "acceptance_notice");
    assert_eq!(view["next_deadline_label"], "告知是否受理");
    assert_eq!(view["deadline_estimated"], false);
    assert_eq!(
        clock(&view, "handling").map(|c| c["due_on"].clone()),
        Some(json!("2026-05-06"))
    );

    // Out of order, in the future, with a field that does not belong: refused, nothing appended.
    app.expect(
        t,
        &procedure,
        step("first_review_requested", "2026-03-02"),
        409,
    )
    .await?;
    app.expect(
        t,
        &procedure,
        step("second_review_answered", "2026-03-02"),
        409,
    )
    .await?;
    app.expect(
        t,
        &procedure,
        step("acceptance_notified", "2026-03-03"),
        422,
    )
    .await?;
    let mut with_days = step("replied", "2026-03-02");
    with_days["hearing_days"] = json!(3);
    app.expect(t, &procedure, with_days, 422).await?;
    app.expect(
        t,
        &procedure,
        json!({"step": "replied", "on": "2026-03-02"}),
        422,
    )
    .await?;

    // Notified: the handling period (2026-05-06, past 劳动节) is what runs now.
    app.expect(
        t,
        &procedure,
        step("acceptance_notified", "2026-03-02"),
        201,
    )
    .await?;
    app.expect(
        t,
        &procedure,
        step("acceptance_notified", "2026-03-02"),
        409,
    )
    .await?;
    let view = app.get(t, &case).await?.json;
    assert_eq!(
        (
            view["next_deadline"].clone(),
            view["next_deadline_step"].clone()
        ),
        (json!("2026-05-06"), json!("handling"))
    );
    assert_eq!(
        clock(&view, "acceptance_notice").map(|c| c["state"].clone()),
        Some(json!("met"))
    );

    // The reply ends the handling: no clock of the bureau's runs, the petitioner has 30 days
    // (to Wednesday 2026-04-01) to ask for a first review.
    app.expect(t, &procedure, step("replied", "2026-03-02"), 201)
        .await?;
    let view = app.get(t, &case).await?.json;
    assert_eq!(view["next_deadline"], Value::Null);
    assert_eq!(
        clock(&view, "handling").map(|c| c["state"].clone()),
        Some(json!("met"))
    );
    let window = clock(&view, "first_review_request")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (window["due_on"].clone(), window["state"].clone()),
        (json!("2026-04-01"), json!("petitioner"))
    );

    // 复查: asked for and answered within 30 days each.
    app.expect(
        t,
        &procedure,
        step("first_review_requested", "2026-03-02"),
        201,
    )
    .await?;
    let view = app.get(t, &case).await?.json;
    assert_eq!(
        (
            view["next_deadline"].clone(),
            view["next_deadline_step"].clone()
        ),
        (json!("2026-04-01"), json!("first_review_answer"))
    );
    app.expect(
        t,
        &procedure,
        step("first_review_answered", "2026-03-02"),
        201,
    )
    .await?;
    let view = app.get(t, &case).await?.json;
    assert_eq!(view["next_deadline"], Value::Null);
    assert_eq!(
        clock(&view, "second_review_request").map(|c| c["due_on"].clone()),
        Some(json!("2026-04-01"))
    );

    // 复核 with a hearing of 10 days, not counted: 2026-04-01 + 10 = Saturday 04-11, so Monday
    // 2026-04-13.
    app.expect(
        t,
        &procedure,
        step("second_review_requested", "2026-03-02"),
        201,
    )
    .await?;
    let mut hearing = step("hearing_held", "2026-03-02");
    app.expect(t, &procedure, hearing.clone(), 422).await?;
    hearing["hearing_days"] = json!(10);
    app.expect(t, &procedure, hearing, 201).await?;
    let view = app.get(t, &case).await?.json;
    assert_eq!(
        (
            view["next_deadline"].clone(),
            view["next_deadline_step"].clone()
        ),
        (json!("2026-04-13"), json!("second_review_answer"))
    );
    assert_eq!(view["procedure"].as_array().map(Vec::len), Some(6));
    assert_eq!(view["procedure"][5]["label"], "听证");

    // The answer concludes the matter (终结): nothing further is recorded in the procedure.
    app.expect(
        t,
        &procedure,
        step("second_review_answered", "2026-03-02"),
        201,
    )
    .await?;
    app.expect(t, &procedure, step("replied", "2026-03-02"), 409)
        .await?;
    let view = app.get(t, &case).await?.json;
    assert_eq!(view["next_deadline"], Value::Null);

    // Crossed off, then the petitioner comes back on the same facts: the petition counts as a
    // repeat petition, but a concluded matter is not accepted again — no relapse, no reopening.
    app.expect(
        t,
        &format!("{case}/leader"),
        json!({"leader_id": "ldr-siming-1"}),
        200,
    )
    .await?;
    app.expect(
        t,
        &format!("{case}/claims"),
        json!({"ground": "legally_concluded", "summary": "复核终结", "evidence": ["复核意见书"]}),
        201,
    )
    .await?;
    for level in ["district", "city"] {
        let reviewer = app
            .login(if level == "district" {
                "shenhe-qu"
            } else {
                "shenhe-shi"
            })
            .await?;
        app.expect(
            &reviewer,
            &format!("{case}/claims/review"),
            json!({"level": level, "accept": true}),
            200,
        )
        .await?;
    }
    let before = app.get(t, &case).await?.json["version"]
        .as_u64()
        .unwrap_or(0);
    let petition =
        json!({"received_on": "2026-03-02", "channel": "visit", "summary": "同一事实再次来访"});
    let reply = app
        .expect(t, &format!("{case}/petitions"), petition, 201)
        .await?;
    assert_eq!(
        reply["version"],
        before + 1,
        "one event, no reopening: {reply}"
    );
    let view = app.get(t, &case).await?.json;
    assert_eq!(
        (
            view["status"].clone(),
            view["repeat_count"].clone(),
            view["relapse_count"].clone()
        ),
        (json!("crossed_off"), json!(1), json!(0))
    );
    app.stop().await
}

#[tokio::test]
async fn a_late_request_for_review_is_refused_and_late_years_are_estimates() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let registered = app
        .expect(&token, "/cases", zhzj_tests::registration_json(1), 201)
        .await?;
    let case = format!(
        "/cases/{}",
        registered["aggregate_id"].as_str().unwrap_or("")
    );
    let procedure = format!("{case}/procedure");
    // Found by screening: no notice of acceptance is owed, handling runs first.
    let view = app.get(&token, &case).await?.json;
    assert_eq!(view["next_deadline_step"], "handling");
    assert!(clock(&view, "acceptance_notice").is_none(), "{view}");
    app.expect(&token, &procedure, step("replied", "2026-03-02"), 201)
        .await?;

    // 40 days on, the petitioner's 30 days (to 2026-04-01) are over.
    app.services.clock.advance(chrono::Duration::days(40));
    let token = app.login("xietiao").await?;
    let late = app
        .expect(
            &token,
            &procedure,
            step("first_review_requested", "2026-04-02"),
            422,
        )
        .await?;
    assert_eq!(late["error"]["field"], "command.on", "{late}");
    app.expect(
        &token,
        &procedure,
        step("first_review_requested", "2026-04-01"),
        201,
    )
    .await?;

    // Registered in December 2026, the case's handling ends in 2027, whose holidays are not yet
    // published: the deadline is flagged as an estimate.
    app.services.clock.advance(chrono::Duration::days(240));
    let token = app.login("xietiao").await?;
    let registered = app
        .expect(&token, "/cases", zhzj_tests::registration_json(2), 201)
        .await?;
    let view = app
        .get(
            &token,
            &format!(
                "/cases/{}",
                registered["aggregate_id"].as_str().unwrap_or("")
            ),
        )
        .await?
        .json;
    assert!(
        view["next_deadline"]
            .as_str()
            .is_some_and(|d| d.starts_with("2027-")),
        "{view}"
    );
    assert_eq!(view["deadline_estimated"], true);
    assert_eq!(
        clock(&view, "handling").map(|c| c["estimated"].clone()),
        Some(json!(true))
    );
    app.stop().await
}

/// The handling deadline the lifecycle view holds for every case, in case order.
async fn handling_deadlines(store: &zhzj_store::ReadStore) -> anyhow::Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT handling_due_on FROM case_lifecycle ORDER BY case_id")
            .fetch_all(store.pool())
            .await?,
    )
}

/// The live generation of a projection.
async fn generation_of(
    log: &zhzj_store::EventLog,
    store: &zhzj_store::ReadStore,
    name: &str,
) -> anyhow::Result<Option<i64>> {
    let status = zhzj_projector::status(log, store).await?;
    Ok(status.iter().find(|s| s.name == name).map(|s| s.generation))
}

#[tokio::test]
async fn internal_limits_recompute_the_view_when_the_projector_starts() -> anyhow::Result<()> {
    let (_nats, services) = seeded_stack().await?;
    for n in 0..3 {
        services.ok(register_case(n)).await?;
    }
    let db = TestDb::create(DbKind::Sqlite).await?;
    let store = db.store().await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let tasks = run_projections(services.log.clone(), store.clone(), shutdown.clone());
    wait_caught_up(&services.log, &store).await?;
    shutdown.cancel();
    for task in tasks {
        task.await?;
    }
    // Statutory: 60 days from 2026-03-02 is 劳动节, so 2026-05-06.
    assert_eq!(handling_deadlines(&store).await?, vec!["2026-05-06"; 3]);

    // The bureau works to 45 days: 2026-04-16. Restarting the projector with the new limits
    // rebuilds the view; starting again with the same limits leaves it alone.
    let settings = Arc::new(ProjectorSettings {
        limits: Limits::parse("handling=45, acceptance_notice=10")?,
    });
    let before = generation_of(&services.log, &store, "lifecycle").await?;
    ensure_settings(&services.log, &store, Projection::LIFECYCLE, &settings).await?;
    assert_eq!(handling_deadlines(&store).await?, vec!["2026-04-16"; 3]);
    let rebuilt = generation_of(&services.log, &store, "lifecycle").await?;
    assert_ne!(before, rebuilt, "rebuilt into a new generation");
    ensure_settings(&services.log, &store, Projection::LIFECYCLE, &settings).await?;
    assert_eq!(
        generation_of(&services.log, &store, "lifecycle").await?,
        rebuilt,
        "same settings: no rebuild"
    );
    // The checklist did not depend on the limits and was left alone.
    ensure_settings(&services.log, &store, Projection::CHECKLIST, &settings).await?;
    let checklist = zhzj_projector::status(&services.log, &store).await?;
    assert_eq!(
        checklist
            .iter()
            .find(|s| s.name == "checklist")
            .map(|s| s.generation),
        Some(1)
    );

    // A limit longer than the law's, or one that is the petitioner's, is refused.
    assert!(Limits::parse("handling=61").is_err());
    assert!(Limits::parse("first_review_request=20").is_err());
    Ok(())
}
