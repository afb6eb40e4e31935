//! Supervision orders (督办单) on real parts: the city issues an order to a department about a
//! case; the department signs for it and reports progress but does not answer by the due date;
//! the escalation clock, on the injected clock, escalates it on the configured day (and only
//! once); the department answers, the city sends the answer back, the department answers again
//! and the city accepts. Every refusal appends nothing; the history is in the log, step by step.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_supervision::{EscalationClock, SupervisionRules};
use zhzj_tests::{DbKind, TestApp, registration_json, spawn_app, wait_caught_up};

/// Sets the clock to 10:00 China time on a day of March 2026 (sessions older than that have
/// expired: log in again with [`Tokens::of`]).
fn set_day(app: &TestApp, day: u32) -> anyhow::Result<()> {
    let time = Utc
        .with_ymd_and_hms(2026, 3, day, 2, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such time"))?;
    app.services.clock.set(time);
    Ok(())
}

/// Sessions of the city's coordinator, 市住房局's, 中华街道's and a viewer.
struct Tokens {
    city: String,
    department: String,
    town: String,
    viewer: String,
}

impl Tokens {
    /// Sets the clock to `day` and logs everyone in.
    async fn of(app: &TestApp, day: u32) -> anyhow::Result<Self> {
        set_day(app, day)?;
        Ok(Self {
            city: app.login("xietiao").await?,
            department: app.login("zhufang").await?,
            town: app.login("zhonghua").await?,
            viewer: app.login("chakan").await?,
        })
    }
}

fn march(day: u32) -> String {
    NaiveDate::from_ymd_opt(2026, 3, day)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// The escalation clock of the test: the bureau's rules as a file would give them, reading the
/// test's clock.
async fn escalation_clock(app: &TestApp) -> anyhow::Result<EscalationClock> {
    let rules = SupervisionRules::parse(
        r#"
        [[escalation]]
        from = "催办"
        to = "督办"
        overdue_days = 2
        answer_within_days = 5

        [[escalation]]
        from = "督办"
        to = "挂牌督办"
        overdue_days = 1
        answer_within_days = 3
        "#,
    )?;
    Ok(EscalationClock::new(
        app.nats.connect().await?,
        app.projecting.store.clone(),
        Arc::new(app.services.clock.clone()),
        Arc::new(rules),
    ))
}

/// The event types of an order's history, in order.
fn history(view: &Value) -> Vec<String> {
    view["history"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| s["event_type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn order_workflow_escalates_and_closes(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let Tokens {
        city,
        department,
        town,
        viewer,
    } = Tokens::of(&app, 2).await?;
    let case = app
        .expect(&city, "/cases", registration_json(1), 201)
        .await?;
    let case_id = case["aggregate_id"].as_str().unwrap_or_default().to_owned();

    // Refusals first: each is answered with its reason and appends nothing.
    let order_body = json!({
        "addressee_unit_id": "xm-dept-zjj",
        "level": "reminder",
        "case_ids": [case_id],
        "matter": "请于3月6日前约访信访人（身份证350203199001010423），落实补偿方案",
        "answer_due_on": march(6),
        "responsible": "市住房局张科长",
    });
    let mut past = order_body.clone();
    past["answer_due_on"] = json!(march(1));
    app.expect(&city, "/supervision-orders", past, 422).await?;
    let mut upwards = order_body.clone();
    upwards["addressee_unit_id"] = json!("xm");
    app.expect(&city, "/supervision-orders", upwards, 422)
        .await?;
    // A department does not order a district (it is not above it); a town does not issue in
    // the city's name; a viewer writes nothing.
    let mut by_department = order_body.clone();
    by_department["addressee_unit_id"] = json!("xm-siming");
    app.expect(&department, "/supervision-orders", by_department, 422)
        .await?;
    let mut in_city_name = order_body.clone();
    in_city_name["issuer_unit_id"] = json!("xm");
    app.expect(&town, "/supervision-orders", in_city_name, 403)
        .await?;
    app.expect(&viewer, "/supervision-orders", order_body.clone(), 403)
        .await?;
    let mut unknown_case = order_body.clone();
    unknown_case["case_ids"] = json!([uuid::Uuid::new_v4()]);
    app.expect(&city, "/supervision-orders", unknown_case, 404)
        .await?;

    // Issued on 3-02 as a reminder (催办), the answer due 3-06.
    let issued = app
        .expect(&city, "/supervision-orders", order_body, 201)
        .await?;
    let order_id = issued["aggregate_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/supervision-orders/{order_id}");
    let view = app.get(&department, &path).await?;
    assert_eq!(view.status, 200, "{view:?}");
    let order = &view.json["order"];
    assert_eq!(order["status"], "issued");
    assert_eq!(order["status_label"], "待签收");
    assert_eq!(order["level_label"], "催办");
    assert_eq!(order["addressee"]["name"], "市住房局");
    assert_eq!(view.json["case_ids"], json!([case_id]));
    let matter = order["matter"].as_str().unwrap_or_default();
    assert!(
        !matter.contains("350203199001010423") && matter.contains("约访信访人"),
        "the ID number typed into the matter is masked: {matter}"
    );
    // A town outside both ends does not see it at all.
    assert_eq!(app.get(&town, &path).await?.status, 404);
    app.expect(&town, &format!("{path}/acknowledge"), json!({}), 404)
        .await?;
    // The issuer is not the addressee: it does not sign for it; nobody works it unsigned.
    app.expect(&city, &format!("{path}/acknowledge"), json!({}), 403)
        .await?;
    app.expect(
        &department,
        &format!("{path}/answer"),
        json!({"text": "已办", "evidence": ["x"]}),
        409,
    )
    .await?;

    // 3-03: signed for, progress reported.
    let Tokens { department, .. } = Tokens::of(&app, 3).await?;
    app.expect(&department, &format!("{path}/acknowledge"), json!({}), 200)
        .await?;
    app.expect(&department, &format!("{path}/acknowledge"), json!({}), 409)
        .await?;
    app.expect(
        &department,
        &format!("{path}/progress"),
        json!({"text": "已电话联系信访人，约定3月9日面谈"}),
        200,
    )
    .await?;

    // Due 3-06, rule: 2 days overdue. Nothing escalates on 3-06 or 3-07; on 3-08 it does.
    let clock = escalation_clock(&app).await?;
    for day in [6, 7] {
        set_day(&app, day)?;
        let pass = clock.run_once().await?;
        assert!(pass.escalated.is_empty(), "3-{day:02}: {pass:?}");
    }
    let Tokens { city, .. } = Tokens::of(&app, 7).await?;
    let listed = app
        .get(&city, "/supervision-orders?overdue=true&status=open")
        .await?;
    assert_eq!(
        listed.json.as_array().map(Vec::len),
        Some(1),
        "overdue from 3-07 on: {:?}",
        listed.json
    );
    let Tokens { city, .. } = Tokens::of(&app, 8).await?;
    let pass = clock.run_once().await?;
    assert_eq!(pass.escalated, vec![order_id.clone()]);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    // Fires once: a second pass that day (or a second clock) escalates nothing more.
    let again = clock.run_once().await?;
    assert!(
        again.escalated.is_empty() && again.refused.is_empty(),
        "{again:?}"
    );
    let view = app.get(&city, &path).await?;
    let order = &view.json["order"];
    assert_eq!(order["level"], "order");
    assert_eq!(order["level_label"], "督办");
    assert_eq!(order["escalations"], 1);
    assert_eq!(order["answer_due_on"], march(13), "3-08 + 5 days");
    assert_eq!(order["first_due_on"], march(6));
    assert_eq!(order["overdue"], false);
    let escalation = view.json["history"]
        .as_array()
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s["event_type"] == "SupervisionOrderEscalated")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(escalation["actor_id"], "system:supervision");
    assert_eq!(escalation["data"]["missed_due_on"], march(6));
    assert_eq!(
        escalation["data"]["rule"],
        "催办逾期2日未办结反馈，升级为督办，限5日内反馈"
    );
    // Nobody but the system escalates.
    let forged = app
        .command(
            json!({"type": "escalate_supervision_order", "order_id": order_id,
            "from": "order", "to": "listed", "answer_due_on": march(20), "rule": "x"}),
        )
        .await;
    assert!(
        forged.is_err(),
        "not overdue: refused even for the administrator"
    );

    // 3-10: answered (on time for the new due date); 3-11: sent back with a new due date.
    let Tokens { department, .. } = Tokens::of(&app, 10).await?;
    let answer =
        json!({"text": "已面谈，达成补偿协议", "evidence": ["补偿协议（编号ZJ-2026-031）"]});
    app.expect(&department, &format!("{path}/answer"), answer.clone(), 200)
        .await?;
    app.expect(&department, &format!("{path}/answer"), answer.clone(), 409)
        .await?;
    let Tokens {
        city, department, ..
    } = Tokens::of(&app, 11).await?;
    app.expect(
        &department,
        &format!("{path}/review"),
        json!({"accept": true}),
        403,
    )
    .await?;
    app.expect(
        &city,
        &format!("{path}/review"),
        json!({"accept": false, "reasons": "协议未附签字页"}),
        422,
    )
    .await?;
    app.expect(
        &city,
        &format!("{path}/review"),
        json!({"accept": false, "reasons": "协议未附签字页", "answer_due_on": march(16)}),
        200,
    )
    .await?;
    let order = app.get(&department, &path).await?.json["order"].clone();
    assert_eq!(order["status"], "sent_back");
    assert_eq!(order["answer_due_on"], march(16));
    assert_eq!(order["answered_on_time"], true);

    // 3-13: answered again and accepted.
    let Tokens {
        city, department, ..
    } = Tokens::of(&app, 13).await?;
    app.expect(
        &department,
        &format!("{path}/answer"),
        json!({"text": "已补齐签字页", "evidence": ["补偿协议签字页"]}),
        200,
    )
    .await?;
    app.expect(
        &city,
        &format!("{path}/review"),
        json!({"accept": true, "opinion": "同意办结"}),
        200,
    )
    .await?;
    let view = app.get(&city, &path).await?;
    let order = &view.json["order"];
    assert_eq!(order["status_label"], "已办结");
    assert_eq!(order["accepted_on"], march(13));
    assert_eq!(order["answers"], 2);
    assert_eq!(
        history(&view.json),
        [
            "SupervisionOrderIssued",
            "SupervisionOrderAcknowledged",
            "SupervisionProgressReported",
            "SupervisionOrderEscalated",
            "SupervisionOrderAnswered",
            "SupervisionAnswerSentBack",
            "SupervisionOrderAnswered",
            "SupervisionAnswerAccepted",
        ]
    );
    // A closed order never escalates.
    let Tokens {
        city,
        department,
        town,
        ..
    } = Tokens::of(&app, 31).await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    assert_eq!(clock.run_once().await?, Default::default());

    // The case's orders, and the lists' filters.
    let of_case = app
        .get(&city, &format!("/supervision-orders?case_id={case_id}"))
        .await?;
    assert_eq!(of_case.json.as_array().map(Vec::len), Some(1));
    let open = app
        .get(&department, "/supervision-orders?status=open")
        .await?;
    assert_eq!(open.json, json!([]));
    assert_eq!(
        app.get(&city, "/supervision-orders?status=bogus")
            .await?
            .status,
        400
    );
    assert_eq!(
        app.get(&town, "/supervision-orders").await?.json,
        json!([]),
        "a town sees no order between the city and a department"
    );
    app.stop().await
}

#[tokio::test]
async fn an_order_is_signed_for_escalated_on_the_configured_day_sent_back_and_accepted_on_sqlite()
-> anyhow::Result<()> {
    order_workflow_escalates_and_closes(DbKind::Sqlite).await
}

#[tokio::test]
async fn an_order_is_signed_for_escalated_on_the_configured_day_sent_back_and_accepted_on_postgres()
-> anyhow::Result<()> {
    order_workflow_escalates_and_closes(DbKind::Postgres).await
}

/// An order at 督办 escalates to 挂牌督办 by the second rule, and no further: the last level has
/// no rule, so it stays overdue on the list.
#[tokio::test]
async fn a_listed_order_is_the_last_level() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = Tokens::of(&app, 2).await?.city;
    let issued = app
        .expect(
            &city,
            "/supervision-orders",
            json!({"addressee_unit_id": "xm-siming-zhonghua", "level": "order",
                   "matter": "排查辖区内重复信访隐患并报送清单", "answer_due_on": march(4),
                   "responsible": "中华街道王主任"}),
            201,
        )
        .await?;
    let order_id = issued["aggregate_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let clock = escalation_clock(&app).await?;
    let city = Tokens::of(&app, 5).await?.city;
    assert_eq!(clock.run_once().await?.escalated, vec![order_id.clone()]);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let order = app
        .get(&city, &format!("/supervision-orders/{order_id}"))
        .await?
        .json["order"]
        .clone();
    assert_eq!(order["level_label"], "挂牌督办");
    assert_eq!(order["answer_due_on"], march(8));
    let Tokens { city, town, .. } = Tokens::of(&app, 20).await?;
    assert!(clock.run_once().await?.escalated.is_empty());
    let overdue = app
        .get(&city, "/supervision-orders?overdue=true&level=listed")
        .await?;
    assert_eq!(overdue.json.as_array().map(Vec::len), Some(1));
    // The town it went to sees it and may sign for it.
    app.expect(
        &town,
        &format!("/supervision-orders/{order_id}/acknowledge"),
        json!({}),
        200,
    )
    .await?;
    app.stop().await
}
