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
