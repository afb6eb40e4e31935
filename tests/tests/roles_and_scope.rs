//! Roles and scope, checked by the command service and in every read: a user acts and reads only
//! within their unit's subtree (a leader also on the cases they own); a case outside the scope
//! is 404 and counted nowhere; a forbidden write is 403; neither appends anything.

use serde_json::{Value, json};
use zhzj_proto::{Actor, Command, CommandReply, CommandRequest, ErrorKind, commands::AddUnit};
use zhzj_tests::{DbKind, TestApp, registration_json, spawn_app};

async fn status(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<u16> {
    let before = app.log_position().await?;
    let answer = match body {
        Some(body) => app.post(token, path, &body).await?,
        None => app.get(token, path).await?,
    };
    if answer.status >= 400 {
        assert_eq!(
            app.log_position().await?,
            before,
            "{path}: nothing appended"
        );
    }
    Ok(answer.status)
}

async fn total(app: &TestApp, token: &str) -> anyhow::Result<Value> {
    Ok(app.get(token, "/checklist").await?.json["total"].clone())
}

#[tokio::test]
async fn users_act_and_read_within_their_scope() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let town = app.login("zhonghua").await?; // coordinator of 中华街道
    let leader = app.login("liming").await?; // leader ldr-siming-1, no unit
    let viewer = app.login("chakan").await?;
    let reviewer = app.login("shenhe-qu").await?;
    let in_town = app.post(&city, "/cases", &registration_json(1)).await?;
    let mut district_only = registration_json(2);
    district_only.as_object_mut().map(|o| o.remove("town_id"));
    let outside = app.post(&city, "/cases", &district_only).await?;
    let a = format!(
        "/cases/{}",
        in_town.json["aggregate_id"].as_str().unwrap_or("")
    );
    let b = format!(
        "/cases/{}",
        outside.json["aggregate_id"].as_str().unwrap_or("")
    );
    let note = || Some(json!({"text": "记录"}));

    // The town coordinator: its own case only; the other is not found, not forbidden.
    assert_eq!(total(&app, &town).await?, 1);
    assert_eq!(status(&app, &town, &a, None).await?, 200);
    assert_eq!(status(&app, &town, &b, None).await?, 404);
    assert_eq!(
        status(&app, &town, &format!("{b}/events"), None).await?,
        404
    );
    assert_eq!(
        status(&app, &town, &format!("{b}/notes"), note()).await?,
        404
    );
    assert_eq!(
        status(&app, &town, &format!("{a}/notes"), note()).await?,
        201
    );
    assert_eq!(
        status(&app, &town, "/cases", Some(district_only.clone())).await?,
        403
    );
    assert_eq!(
        status(&app, &town, "/cases", Some(registration_json(3))).await?,
        201
    );
    let leaders = app.get(&town, "/leaders").await?.json;
    assert_eq!(
        leaders["leaders"],
        json!([]),
        "the district's leaders are above the town"
    );

    // A leader sees and works only the cases they own, and only as a leader may.
    assert_eq!(total(&app, &leader).await?, 0);
    assert_eq!(status(&app, &leader, &b, None).await?, 404);
    let owned = app
        .post(
            &city,
            &format!("{b}/leader"),
            &json!({"leader_id": "ldr-siming-1"}),
        )
        .await?;
    assert_eq!(owned.status, 200);
    assert_eq!(total(&app, &leader).await?, 1);
    let visit = json!({"kind": "home_visit", "held_on": "2026-03-01", "summary": "下访"});
    assert_eq!(
        status(
            &app,
            &leader,
            &format!("{b}/activities"),
            Some(visit.clone())
        )
        .await?,
        201
    );
    let classify = json!({"class": "reasonable", "category": "征地拆迁"});
    assert_eq!(
        status(
            &app,
            &leader,
            &format!("{b}/classification"),
            Some(classify.clone())
        )
        .await?,
        403
    );
    assert_eq!(
        status(&app, &leader, &format!("{a}/activities"), Some(visit)).await?,
        404
    );

    // A viewer reads everything in the city and writes nothing; a reviewer only reviews.
    assert_eq!(total(&app, &viewer).await?, 3);
    assert_eq!(
        status(&app, &viewer, &format!("{a}/notes"), note()).await?,
        403
    );
    assert_eq!(
        status(&app, &reviewer, &format!("{a}/notes"), note()).await?,
        403
    );
    assert_eq!(
        status(
            &app,
            &reviewer,
            &format!("{a}/classification"),
            Some(classify)
        )
        .await?,
        403
    );
    app.stop().await
}

#[tokio::test]
async fn only_the_city_administrator_keeps_the_directory() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let coordinator = Actor {
        user_id: "xietiao".into(),
        roles: vec!["coordinator".into()],
        unit_id: Some("xm".into()),
        leader_id: None,
    };
    let before = app.log_position().await?;
    let reply = app
        .services
        .cases
        .handle(CommandRequest {
            command_id: uuid::Uuid::new_v4(),
            correlation_id: None,
            causation_id: None,
            actor: coordinator,
            expected_version: None,
            unknown_outcome_retry: false,
            command: Command::AddUnit(AddUnit {
                unit_id: "xm-huli".into(),
                parent_id: Some("xm".into()),
                name: "湖里区".into(),
                kind: zhzj_proto::events::UnitKind::District,
            }),
        })
        .await;
    assert!(
        matches!(&reply, CommandReply::Error(e) if e.kind == ErrorKind::Forbidden),
        "{reply:?}"
    );
    assert_eq!(app.log_position().await?, before);
    app.stop().await
}

#[tokio::test]
async fn a_department_works_the_cases_it_is_responsible_for() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let department = app.login("zhufang").await?; // coordinator of 市住房局
    let registered = app.post(&city, "/cases", &registration_json(1)).await?;
    let case = format!(
        "/cases/{}",
        registered.json["aggregate_id"].as_str().unwrap_or("")
    );
    let measure = || Some(json!({"description": "核查产权登记"}));

    // Not yet responsible: the case does not exist for the department.
    assert_eq!(total(&app, &department).await?, 0);
    assert_eq!(status(&app, &department, &case, None).await?, 404);
    assert_eq!(
        status(&app, &department, &format!("{case}/measures"), measure()).await?,
        404
    );

    // Made the lead unit: it sees the case and works its measures, but does not steer the case.
    let units = json!({"lead_unit_id": "xm-dept-zjj", "assisting_unit_ids": []});
    assert_eq!(
        status(&app, &city, &format!("{case}/units"), Some(units)).await?,
        200
    );
    assert_eq!(total(&app, &department).await?, 1);
    assert_eq!(status(&app, &department, &case, None).await?, 200);
    assert_eq!(
        status(&app, &department, &format!("{case}/measures"), measure()).await?,
        201
    );
    let leader = Some(json!({"leader_id": "ldr-siming-1"}));
    assert_eq!(
        status(&app, &department, &format!("{case}/leader"), leader).await?,
        403
    );
    // The accused unit must not learn who petitions (条例 第30条): masked, and no unmasking.
    let view = app.get(&department, &case).await?.json;
    assert_eq!(view["petitioners"][0]["name"], "张*");
    assert_eq!(view["personal_data_unmasked"], false);
    assert_eq!(
        status(&app, &department, &format!("{case}?reveal=personal"), None).await?,
        403
    );
    app.stop().await
}

#[tokio::test]
async fn personal_data_is_masked_and_every_unmasked_read_is_logged() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let reviewer = app.login("shenhe-qu").await?;
    let viewer = app.login("chakan").await?;
    let registered = app.post(&city, "/cases", &registration_json(7)).await?;
    let case = format!(
        "/cases/{}",
        registered.json["aggregate_id"].as_str().unwrap_or("")
    );
    let reads = || async {
        anyhow::Ok(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM personal_data_reads")
                .fetch_one(app.projecting.store.pool())
                .await?,
        )
    };

    // By default everyone sees masked values, and nothing is logged.
    let masked = app.get(&city, &case).await?.json;
    let petitioner = &masked["petitioners"][0];
    assert_eq!(petitioner["name"], "张*");
    assert_eq!(petitioner["phone"], "138****0000");
    let id_number = petitioner["id_number"].as_str().unwrap_or("");
    assert!(
        id_number.contains("*******") && id_number.len() == 18,
        "{id_number}"
    );
    assert_eq!(reads().await?, 0);

    // The coordinator of the case's area may unmask; the read is logged with who and which case.
    let unmasked = app
        .get(&city, &format!("{case}?reveal=personal"))
        .await?
        .json;
    assert_eq!(unmasked["personal_data_unmasked"], true);
    assert_eq!(unmasked["petitioners"][0]["name"], "张三");
    assert_eq!(
        unmasked["petitioners"][0]["id_number"],
        zhzj_tests::synthetic_id_number(7)
    );
    let events = app
        .get(&city, &format!("{case}/events?reveal=personal"))
        .await?
        .json;
    assert_eq!(events[0]["data"]["petitioners"][0]["phone"], "13800000000");
    assert_eq!(reads().await?, 2);
    let (username, case_id): (String, String) =
        sqlx::query_as("SELECT username, case_id FROM personal_data_reads LIMIT 1")
            .fetch_one(app.projecting.store.pool())
            .await?;
    assert_eq!(
        (username.as_str(), format!("/cases/{case_id}")),
        ("xietiao", case.clone())
    );

    // A reviewer and a viewer read the case, masked, but may not unmask; a bad value is 400.
    for token in [&reviewer, &viewer] {
        assert_eq!(status(&app, token, &case, None).await?, 200);
        assert_eq!(
            status(&app, token, &format!("{case}?reveal=personal"), None).await?,
            403
        );
    }
    assert_eq!(
        status(&app, &city, &format!("{case}?reveal=all"), None).await?,
        400
    );
    assert_eq!(reads().await?, 2, "refused reads are not logged as reads");
    app.stop().await
}
