//! The life of a case after it is worked, through HTTP on real parts: classification, the
//! resolution claim and the review chain (district, then city) up to crossing off, sending back,
//! new petitions that reopen a crossed-off case (回潮), satisfaction — and every refusal on the
//! way, each of which appends nothing.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use serde_json::{Value, json};
use zhzj_cases::{CasesService, LifecycleSettings};
use zhzj_proto::events::ReviewLevel;
use zhzj_tests::{
    DbKind, TestApp, assign_leader, register_case, registration_json, request, row_column,
    spawn_app,
};

async fn case_view(app: &TestApp, token: &str, case: &str) -> anyhow::Result<Value> {
    Ok(app.get(token, case).await?.json)
}

#[tokio::test]
async fn a_case_is_claimed_reviewed_crossed_off_and_reopened() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let registered = app
        .expect(&token, "/cases", registration_json(1), 201)
        .await?;
    let case = format!(
        "/cases/{}",
        registered["aggregate_id"].as_str().unwrap_or("")
    );
    let t = token.as_str();
    let claim = json!({"ground": "settlement_agreement", "summary": "经约访调解，双方签订息诉罢访协议",
                       "evidence": ["息诉罢访协议 思明-2026-017", "约访笔录 2026-02-10"]});

    // Nothing to claim before a leader owns the case; nothing to rate before a reply.
    let refused = app
        .expect(t, &format!("{case}/claims"), claim.clone(), 422)
        .await?;
    assert_eq!(refused["error"]["field"], "command.case_id");
    let rating = json!({"rating": "satisfied", "rated_on": "2026-03-01", "rated_by": "电话回访"});
    app.expect(t, &format!("{case}/satisfaction"), rating.clone(), 409)
        .await?;
    app.expect(
        t,
        &format!("{case}/leader"),
        json!({"leader_id": "ldr-siming-1"}),
        200,
    )
    .await?;

    // Classification, and a reclassification that must say why.
    let classify = json!({"class": "reasonable", "category": "征地拆迁"});
    app.expect(t, &format!("{case}/classification"), classify.clone(), 200)
        .await?;
    let again = app
        .expect(
            t,
            &format!("{case}/classification"),
            json!({"class": "hardship", "category": "征地拆迁"}),
            422,
        )
        .await?;
    assert_eq!(again["error"]["field"], "command.reason");
    let unknown = app
        .expect(
            t,
            &format!("{case}/classification"),
            json!({"class": "hardship", "category": "外星人", "reason": "x"}),
            422,
        )
        .await?;
    assert_eq!(unknown["error"]["field"], "command.category");
    app.expect(
        t,
        &format!("{case}/classification"),
        json!({"class": "hardship", "category": "民政救助", "reason": "核实为生活困难"}),
        200,
    )
    .await?;

    // Claim 1: the city may not review before the district; sending back needs reasons.
    app.expect(t, &format!("{case}/claims"), claim.clone(), 201)
        .await?;
    app.expect(t, &format!("{case}/claims"), claim.clone(), 409)
        .await?;
    let review = format!("{case}/claims/review");
    // Reviews are the reviewers' (思明区联席办, then 市信访局), each at their own level only.
    let (qu_token, shi_token) = (
        app.login("shenhe-qu").await?,
        app.login("shenhe-shi").await?,
    );
    let (qu, shi) = (qu_token.as_str(), shi_token.as_str());
    app.expect(
        t,
        &review,
        json!({"level": "district", "accept": true}),
        403,
    )
    .await?;
    app.expect(qu, &review, json!({"level": "city", "accept": true}), 403)
        .await?;
    let wrong = app
        .expect(shi, &review, json!({"level": "city", "accept": true}), 422)
        .await?;
    assert_eq!(wrong["error"]["field"], "command.level");
    app.expect(
        qu,
        &review,
        json!({"level": "district", "accept": false}),
        422,
    )
    .await?;
    app.expect(
        qu,
        &review,
        json!({"level": "district", "accept": false, "reasons": "协议缺少签字页"}),
        200,
    )
    .await?;
    let view = case_view(&app, t, &case).await?;
    assert_eq!(view["status"], "in_progress");
    assert_eq!(view["claims"][0]["outcome"], "sent_back");

    // Claim 2 passes the district, then the city: crossed off.
    app.expect(t, &format!("{case}/claims"), claim.clone(), 201)
        .await?;
    app.expect(
        qu,
        &review,
        json!({"level": "district", "accept": true, "reasons": "同意"}),
        200,
    )
    .await?;
    let view = case_view(&app, t, &case).await?;
    assert_eq!(
        view["status"], "under_review",
        "one level accepted is not crossed off"
    );
    app.expect(
        qu,
        &review,
        json!({"level": "district", "accept": true}),
        422,
    )
    .await?;
    app.expect(shi, &review, json!({"level": "city", "accept": true}), 200)
        .await?;
    let view = case_view(&app, t, &case).await?;
    assert_eq!(view["status"], "crossed_off");
    assert_eq!(view["status_label"], "已销号");
    assert_eq!(view["class"], "hardship");
    assert_eq!(view["claims"][1]["outcome"], "crossed_off");
    assert_eq!(
        view["claims"][1]["reviews"].as_array().map(Vec::len),
        Some(2)
    );
    let crossed = app.get(t, "/checklist?status=crossed_off").await?;
    assert_eq!(crossed.json["total"], 1);

    // Nothing more to claim or review on a crossed-off case.
    app.expect(t, &format!("{case}/claims"), claim.clone(), 409)
        .await?;
    app.expect(shi, &review, json!({"level": "city", "accept": true}), 409)
        .await?;
    app.expect(t, &format!("{case}/satisfaction"), rating, 201)
        .await?;
    app.expect(
        t,
        &format!("{case}/satisfaction"),
        json!({"rating": "satisfied", "rated_on": "2099-01-01", "rated_by": "x"}),
        422,
    )
    .await?;

    // The petitioner comes back: a repeat petition reopens the case (回潮).
    let petition = json!({"received_on": "2026-02-27", "channel": "visit", "summary": "认为补偿款未按协议支付，再次来访"});
    app.expect(t, &format!("{case}/petitions"), petition.clone(), 201)
        .await?;
    let view = case_view(&app, t, &case).await?;
    assert_ne!(view["status"], "crossed_off");
    assert_eq!(view["repeat_count"], 1);
    assert_eq!(view["relapse_count"], 1);
    assert_eq!(view["satisfaction"], "satisfied");
    assert_eq!(view["petitions"][0]["reopened"], true);
    app.expect(t, &format!("{case}/petitions"), petition, 201)
        .await?;
    let view = case_view(&app, t, &case).await?;
    assert_eq!(
        (view["repeat_count"].clone(), view["relapse_count"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(
        view["petitions"][1]["reopened"], false,
        "an open case is not reopened"
    );
    // Reopened, it can be claimed again.
    app.expect(t, &format!("{case}/claims"), claim, 201).await?;
    app.stop().await
}

#[tokio::test]
async fn the_review_chain_is_configurable() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city_only = CasesService::new(
        app.services.log.clone(),
        Arc::new(app.services.clock.clone()),
    )
    .with_settings(LifecycleSettings {
        review_chain: vec![ReviewLevel::City],
        ..LifecycleSettings::default()
    });
    let send = |command| {
        let service = city_only.clone();
        async move { service.handle(request(command)).await }
    };
    let case_id: uuid::Uuid = app
        .services
        .ok(register_case(7))
        .await?
        .aggregate_id
        .parse()?;
    app.services
        .ok(assign_leader(case_id, "ldr-siming-1", None))
        .await?;
    use zhzj_proto::{
        Command, CommandReply,
        commands::{ClaimResolution, ReviewClaim},
        events::ResolutionGround,
    };
    let reply = send(Command::ClaimResolution(ClaimResolution {
        case_id,
        ground: ResolutionGround::Solved,
        summary: "已解决".into(),
        evidence: vec!["回访记录".into()],
    }))
    .await;
    assert!(matches!(reply, CommandReply::Ok(_)), "{reply:?}");
    let district = send(Command::ReviewClaim(ReviewClaim {
        case_id,
        level: ReviewLevel::District,
        accept: true,
        reasons: None,
    }))
    .await;
    assert!(
        matches!(district, CommandReply::Error(_)),
        "no district level in this chain"
    );
    let city = send(Command::ReviewClaim(ReviewClaim {
        case_id,
        level: ReviewLevel::City,
        accept: true,
        reasons: None,
    }))
    .await;
    let CommandReply::Ok(accepted) = city else {
        anyhow::bail!("city review refused: {city:?}");
    };
    let commit = app
        .services
        .log
        .load_last(zhzj_proto::AggregateType::Case, &case_id.to_string())
        .await?;
    let types: Vec<String> = commit
        .map(|c| {
            c.commit
                .events
                .iter()
                .map(|e| e.event_type.clone())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        types,
        ["ClaimAccepted", "CaseCrossedOff"],
        "at version {}",
        accepted.version
    );
    app.stop().await
}

#[tokio::test]
async fn leader_activities_feed_the_leader_view() -> anyhow::Result<()> {
    leader_view_on(DbKind::Sqlite).await
}

/// The leader view counts in SQL: the same figures on PostgreSQL.
#[tokio::test]
async fn leader_activities_feed_the_leader_view_postgres() -> anyhow::Result<()> {
    leader_view_on(DbKind::Postgres).await
}

async fn leader_view_on(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let token = app.login("xietiao").await?;
    let t = token.as_str();
    let mut cases = Vec::new();
    for n in 0..3 {
        let registered = app.expect(t, "/cases", registration_json(n), 201).await?;
        cases.push(format!(
            "/cases/{}",
            registered["aggregate_id"].as_str().unwrap_or("")
        ));
    }
    for case in &cases[..2] {
        app.expect(
            t,
            &format!("{case}/leader"),
            json!({"leader_id": "ldr-siming-1"}),
            200,
        )
        .await?;
    }
    let visit = json!({"kind": "home_visit", "held_on": "2026-02-20", "participants": ["张三", "社区书记"],
                       "summary": "下访当事人家中，听取诉求，当事人情绪稳定"});
    // The unowned case needs the leader named; dates cannot be in the future; leaders must exist.
    let unnamed = app
        .expect(t, &format!("{}/activities", cases[2]), visit.clone(), 422)
        .await?;
    assert_eq!(unnamed["error"]["field"], "command.leader_id");
    let mut future = visit.clone();
    future["held_on"] = json!("2026-03-09");
    app.expect(t, &format!("{}/activities", cases[0]), future, 422)
        .await?;
    let mut stranger = visit.clone();
    stranger["leader_id"] = json!("ldr-nobody");
    app.expect(t, &format!("{}/activities", cases[0]), stranger, 404)
        .await?;

    app.expect(t, &format!("{}/activities", cases[0]), visit.clone(), 201)
        .await?;
    let hearing = json!({"kind": "hearing", "held_on": "2026-02-25", "leader_id": "ldr-siming-2",
                             "summary": "组织听证，评议补偿标准"});
    app.expect(t, &format!("{}/activities", cases[0]), hearing.clone(), 201)
        .await?;
    let view = app.get(t, &cases[0]).await?.json;
    assert_eq!(view["activities"].as_array().map(Vec::len), Some(2));
    assert_eq!(view["activities"][0]["leader"]["name"], "李明");
    assert_eq!(view["activities"][1]["kind"], "hearing");

    // Today is 2026-03-02 on the test clock.
    let leaders = app.get(t, "/leaders?inactive_days=1").await?;
    assert_eq!(leaders.status, 200, "{leaders:?}");
    let find = |json: &Value, id: &str| {
        json["leaders"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["leader_id"] == id).cloned())
            .unwrap_or(Value::Null)
    };
    let li = find(&leaders.json, "ldr-siming-1");
    assert_eq!(li["owned_cases"], 2);
    assert_eq!(li["open_cases"], 2);
    assert_eq!(li["last_activity_on"], "2026-02-20");
    assert_eq!(li["activities_by_month"], json!({"2026-02": 1}));
    let first_case = cases[0].trim_start_matches("/cases/");
    assert_eq!(
        li["idle_cases"],
        json!([first_case]),
        "visited 10 days ago; the other case is new"
    );
    let wang = find(&leaders.json, "ldr-siming-2");
    assert_eq!(
        (
            wang["owned_cases"].clone(),
            wang["last_activity_on"].clone()
        ),
        (json!(0), json!("2026-02-25"))
    );
    let li = find(&app.get(t, "/leaders").await?.json, "ldr-siming-1");
    assert_eq!(li["idle_cases"], json!([]), "nothing idle for 30 days");
    assert_eq!(app.get(t, "/leaders?inactive_days=0").await?.status, 400);
    app.stop().await
}

#[tokio::test]
async fn the_checklist_shows_statutory_deadlines_and_filters_on_them() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let t = token.as_str();
    // Registered on 2026-03-02 (test clock): 60 days end on 2026-05-01, 劳动节, so the period
    // ends on the first working day after the holiday, 2026-05-06.
    let mut ids = Vec::new();
    for n in 0..2 {
        let registered = app.expect(t, "/cases", registration_json(n), 201).await?;
        ids.push(registered["aggregate_id"].as_str().unwrap_or("").to_owned());
    }
    let row = app.get(t, &format!("/cases/{}", ids[0])).await?.json;
    assert_eq!(row["next_deadline"], "2026-05-06");
    assert_eq!(row["days_left"], 65);
    assert_eq!(row["overdue"], false);

    // One extension of at most 30 days, with approval: counted from the original deadline.
    let extension = format!("/cases/{}/extension", ids[0]);
    app.expect(
        t,
        &extension,
        json!({"days": 31, "reason": "x", "approved_by": "y"}),
        422,
    )
    .await?;
    app.expect(
        t,
        &extension,
        json!({"days": 30, "reason": "需补充鉴定", "approved_by": "市信访局 王局长"}),
        200,
    )
    .await?;
    app.expect(
        t,
        &extension,
        json!({"days": 5, "reason": "再延", "approved_by": "y"}),
        409,
    )
    .await?;
    let row = app.get(t, &format!("/cases/{}", ids[0])).await?.json;
    assert_eq!(row["next_deadline"], "2026-06-05");

    // Ten weeks later the unextended case is overdue; a case registered then is not.
    app.services.clock.advance(chrono::Duration::days(70));
    let expired = app.get(t, "/checklist").await?;
    assert_eq!(
        expired.status, 401,
        "a 12-hour session does not last ten weeks"
    );
    let token = app.login("xietiao").await?;
    let t = token.as_str();
    let late = app.expect(t, "/cases", registration_json(9), 201).await?;
    let late = late["aggregate_id"].as_str().unwrap_or("").to_owned();
    let overdue = app.get(t, "/checklist?overdue=true").await?.json;
    assert_eq!(row_column(&overdue, "case_id"), [ids[1].clone()]);
    assert_eq!(
        overdue["rows"][0]["days_left"], -5,
        "due 2026-05-06, today 2026-05-11"
    );
    assert_eq!(overdue["rows"][0]["overdue"], true);
    let soon = app.get(t, "/checklist?due_within=30").await?.json;
    assert_eq!(
        row_column(&soon, "case_id"),
        [ids[0].clone()],
        "the extended case, due 2026-06-05"
    );
    let later = app.get(t, "/checklist?due_within=61").await?.json;
    assert_eq!(
        row_column(&later, "case_id"),
        [ids[0].clone(), late.clone()]
    );

    // A claim under review stops the clock.
    let case = format!("/cases/{}", ids[1]);
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
        json!({"ground": "solved", "summary": "已解决", "evidence": ["回访记录"]}),
        201,
    )
    .await?;
    let row = app.get(t, &case).await?.json;
    assert_eq!(
        (row["next_deadline"].clone(), row["overdue"].clone()),
        (Value::Null, json!(false))
    );
    assert!(
        row_column(
            &app.get(t, "/checklist?overdue=true").await?.json,
            "case_id",
        )
        .is_empty()
    );
    app.stop().await
}

#[tokio::test]
async fn registration_finds_possible_duplicates() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let t = token.as_str();
    let first = app.expect(t, "/cases", registration_json(1), 201).await?;
    let first_id = first["aggregate_id"].as_str().unwrap_or("").to_owned();
    let id_number = registration_json(1)["petitioners"][0]["id_number"]
        .as_str()
        .unwrap_or("")
        .to_owned();

    let by_id = app
        .get(t, &format!("/cases/duplicates?id_number={id_number}"))
        .await?;
    assert_eq!(by_id.status, 200, "{by_id:?}");
    assert_eq!(by_id.json["cases"][0]["case_id"], first_id);
    assert_eq!(by_id.json["cases"][0]["matched_by"], "id_number");
    assert_eq!(by_id.json["outside_your_area"], false);
    let by_name = app
        .get(
            t,
            "/cases/duplicates?name=张三&town=xm-siming-zhonghua&category=征地拆迁",
        )
        .await?;
    assert_eq!(by_name.json["cases"][0]["matched_by"], "name_town_category");
    let none = app
        .get(
            t,
            "/cases/duplicates?name=李四&town=xm-siming-zhonghua&category=征地拆迁",
        )
        .await?;
    assert_eq!(none.json, json!({"cases": [], "outside_your_area": false}));

    // Registering with the check on: the same person, town and category is refused with the
    // candidates, and nothing is appended; someone else goes through.
    let refused = app
        .expect(t, "/cases?check_duplicates=true", registration_json(2), 409)
        .await?;
    assert_eq!(refused["error"]["code"], "possible_duplicates");
    assert_eq!(refused["duplicates"][0]["case_id"], first_id);
    let mut other = registration_json(3);
    other["petitioners"][0]["name"] = json!("李四");
    app.expect(t, "/cases?check_duplicates=true", other, 201)
        .await?;
    // Without the check the coordinator may still register it (a different matter).
    app.expect(t, "/cases", registration_json(2), 201).await?;

    // Only cases the user may read are named; of the others, only that one exists. A leader,
    // who registers nothing, may not ask at all.
    let leader = app.login("liming").await?;
    let refused = app
        .get(&leader, &format!("/cases/duplicates?id_number={id_number}"))
        .await?;
    assert_eq!(refused.status, 403);
    let department = app.login("zhufang").await?;
    let hidden = app
        .get(
            &department,
            &format!("/cases/duplicates?id_number={id_number}"),
        )
        .await?;
    assert_eq!(hidden.json["cases"], json!([]));
    assert_eq!(hidden.json["outside_your_area"], true);
    app.stop().await
}
