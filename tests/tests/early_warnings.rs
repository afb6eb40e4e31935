//! Early warnings (预警) on a scripted history: each condition fires once, on the day it starts,
//! and clears on the day it ends — a deadline near and then missed, a town's repeat petitions
//! surging in a month, a crossed-off case petitioned again, an owning leader idle for 30 days
//! until they act — with the open count a user sees, and the owning leader's inbox.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_supervision::{SupervisionRules, WarningPass, Watch};
use zhzj_tests::{DbKind, TestApp, registration_json, spawn_app, wait_caught_up};

/// Sets the clock to 10:00 China time on `month`-`day` 2026.
fn set_day(app: &TestApp, month: u32, day: u32) -> anyhow::Result<()> {
    let time = Utc
        .with_ymd_and_hms(2026, month, day, 2, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("no such time"))?;
    app.services.clock.set(time);
    Ok(())
}

/// The rules of a pass's keys, sorted.
fn rules(keys: &[String]) -> Vec<String> {
    let mut rules: Vec<String> = keys
        .iter()
        .map(|key| key.split(':').next().unwrap_or("").to_owned())
        .collect();
    rules.sort();
    rules
}

/// A warnings pass on `month`-`day`, the views caught up first; returns the rules that fired
/// and cleared.
async fn pass_on(
    app: &TestApp,
    watch: &Watch,
    month: u32,
    day: u32,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    set_day(app, month, day)?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let WarningPass { fired, cleared } = watch.warnings().await?;
    Ok((rules(&fired), rules(&cleared)))
}

/// The watch of `app` on its injected clock, with the rules in `rules`.
async fn watch_with(app: &TestApp, rules: &str) -> anyhow::Result<Watch> {
    Ok(Watch::new(
        app.nats.connect().await?,
        app.projecting.store.clone(),
        Arc::new(app.services.clock.clone()),
        Arc::new(SupervisionRules::parse(rules)?),
    ))
}

async fn open_warnings(app: &TestApp, user: &str) -> anyhow::Result<Value> {
    let token = app.login(user).await?;
    Ok(app.get(&token, "/warnings").await?.json)
}

async fn register(app: &TestApp, n: u32, source: &str) -> anyhow::Result<String> {
    let mut body = registration_json(n);
    body["list_source"] = json!(source);
    body["first_filed_on"] = json!("2026-03-01");
    let command = json!({"type": "register_case"});
    let mut command = command;
    for (key, value) in body.as_object().cloned().unwrap_or_default() {
        command[key] = value;
    }
    app.command(command).await
}

async fn petition(app: &TestApp, case_id: &str, on: &str) -> anyhow::Result<String> {
    app.command(
        json!({"type": "record_petition", "case_id": case_id, "received_on": on,
        "channel": "visit", "summary": "再次来访"}),
    )
    .await
}

#[tokio::test]
async fn warnings_fire_once_and_clear_on_a_scripted_history() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let watch = watch_with(
        &app,
        "[warnings]\ndeadline_within_days = 3\nleader_idle_days = 30\n\
         town_surge_factor = 1.5\ntown_surge_min_petitions = 3\n",
    )
    .await?;
    // 3-02: a new petition (its notice of acceptance due 3-17), a screened case owned by 李明,
    // and a case crossed off the same day.
    set_day(&app, 3, 2)?;
    let new_case = register(&app, 1, "new_petition").await?;
    let owned = register(&app, 2, "screening").await?;
    app.command(json!({"type": "assign_leader", "case_id": owned, "leader_id": "ldr-siming-1"}))
        .await?;
    let crossed = register(&app, 3, "screening").await?;
    app.cross_off(&crossed).await?;
    let quiet = pass_on(&app, &watch, 3, 2).await?;
    assert_eq!(
        quiet,
        (vec![], vec![]),
        "nothing to warn of on the first day"
    );

    // 3-10: three repeat petitions in 中华街道 this month (none in the three before), one of
    // them on the crossed-off case: a surge, and a relapse.
    set_day(&app, 3, 10)?;
    petition(&app, &new_case, "2026-03-05").await?;
    petition(&app, &new_case, "2026-03-09").await?;
    petition(&app, &crossed, "2026-03-10").await?;
    assert_eq!(
        pass_on(&app, &watch, 3, 10).await?,
        (vec!["relapse".into(), "town_surge".into()], vec![])
    );
    assert_eq!(open_warnings(&app, "zhonghua").await?["open_count"], 2);

    // 3-14: the notice of acceptance is due within three days; a second pass fires nothing.
    assert_eq!(
        pass_on(&app, &watch, 3, 14).await?,
        (vec!["deadline_soon".into()], vec![])
    );
    assert_eq!(pass_on(&app, &watch, 3, 14).await?, (vec![], vec![]));
    let listed = open_warnings(&app, "zhonghua").await?;
    assert_eq!(listed["open_count"], 3);
    let soon = listed["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|w| w["rule"] == "deadline_soon"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(soon["rule_label"], "期限临近");
    assert_eq!(soon["case_id"], json!(new_case));
    assert!(
        soon["title"]
            .as_str()
            .unwrap_or("")
            .contains("告知是否受理将于 2026-03-17 届满"),
        "{soon}"
    );

    // 3-18: missed; the warning that it was near clears.
    assert_eq!(
        pass_on(&app, &watch, 3, 18).await?,
        (vec!["deadline_missed".into()], vec!["deadline_soon".into()])
    );

    // 4-02: April has no repeat petitions yet: the surge clears. 李明 has done nothing on his
    // two open cases (the reopened one too) for 30 days. The petition that reopened the crossed-off
    // case on 3-10 owed its own notice of acceptance by 3-25: missed too.
    assert_eq!(
        pass_on(&app, &watch, 4, 2).await?,
        (
            vec![
                "deadline_missed".into(),
                "leader_idle".into(),
                "leader_idle".into()
            ],
            vec!["town_surge".into()]
        )
    );
    // The leader hears of it in the inbox of his bound account.
    watch.notifier().run_once().await?;
    let liming = app.login("liming").await?;
    let inbox = app.get(&liming, "/inbox").await?.json;
    let idle: Vec<&Value> = inbox["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| {
                    m["title"]
                        .as_str()
                        .is_some_and(|t| t.contains("包案领导未开展工作"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(idle.len(), 2, "{inbox}");
    // And his digest of the day (the digest hour, 8:00, has passed) counts the open warnings on
    // his cases, by rule: the reopened case's relapse and missed notice, and both idle cases.
    let digest = inbox["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["kind"] == "digest"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(digest["title"], "【每日摘要】2026-04-02");
    assert_eq!(
        digest["body"],
        "2026-04-02 每日摘要：您包案的案件有未解除预警 4 条（期限已过 1 条，包案领导未开展工作 2 条，销号后回潮 1 条）。"
    );
    // He receives the petitioner: that case's warning clears; the other stays.
    app.command(
        json!({"type": "record_activity", "case_id": owned, "leader_id": "ldr-siming-1",
        "kind": "reception", "held_on": "2026-04-02", "summary": "接访"}),
    )
    .await?;
    assert_eq!(
        pass_on(&app, &watch, 4, 2).await?,
        (vec![], vec!["leader_idle".into()])
    );
    let listed = open_warnings(&app, "zhonghua").await?;
    assert_eq!(
        listed["open_count"], 4,
        "the relapse, two missed deadlines, one idle leader"
    );
    let token = app.login("zhonghua").await?;
    let cleared = app
        .get(&token, "/warnings?state=cleared&rule=leader_idle")
        .await?
        .json;
    assert_eq!(cleared["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(cleared["rows"][0]["case_id"], json!(owned));
    assert_eq!(
        app.get(&token, "/warnings?rule=nonsense").await?.status,
        400
    );
    // Paged; and every page's header counts the same open warnings (counted in SQL).
    let paged = app.get(&token, "/warnings?per_page=1&page=2").await?.json;
    assert_eq!(
        (
            paged["total"].clone(),
            paged["rows"].as_array().map(Vec::len)
        ),
        (json!(4), Some(1))
    );
    let html = app
        .http
        .get(format!("{}/checklist", app.base))
        .header("cookie", format!("zhzj_session={token}"))
        .send()
        .await?
        .text()
        .await?;
    assert!(html.contains("预警 4</a>"), "the header's count: {html}");
    // A district's neighbour (the city's department) sees none of 中华街道's warnings.
    assert_eq!(open_warnings(&app, "zhufang").await?["open_count"], 0);
    app.stop().await
}

/// The inbox titles of `user`.
async fn inbox_titles(app: &TestApp, user: &str) -> anyhow::Result<Vec<String>> {
    let token = app.login(user).await?;
    let inbox = app.get(&token, "/inbox").await?.json;
    Ok(inbox["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["title"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn many_warnings_of_one_rule_reach_a_user_as_one_message() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let watch = watch_with(
        &app,
        "[warnings]\nleader_idle_days = 30\n[notify]\ndigest_hour = 23\n",
    )
    .await?;
    // Six cases of 中华街道 owned by 李明, none worked on for 30 days: on the first pass after,
    // six warnings of one rule fire at once (as they do by the thousand when the watch first
    // runs over a long-kept checklist).
    set_day(&app, 3, 2)?;
    // 思明区's coordinator: the district task force hears of its towns' cases too.
    let admin = app.login("guanli").await?;
    let created = app
        .post(
            &admin,
            "/users",
            &json!({"username": "siming", "password": zhzj_tests::TEST_PASSWORD,
                    "display_name": "思明区专班", "roles": ["coordinator"], "unit_id": "xm-siming"}),
        )
        .await?;
    assert_eq!(created.status, 201, "{created:?}");
    for n in 1..=6 {
        let case_id = register(&app, n, "screening").await?;
        app.command(
            json!({"type": "assign_leader", "case_id": case_id, "leader_id": "ldr-siming-1"}),
        )
        .await?;
    }
    let (fired, _) = pass_on(&app, &watch, 4, 2).await?;
    assert_eq!(fired, vec!["leader_idle".to_owned(); 6]);
    let pass = watch.notifier().run_once().await?;
    // One message each for the town's and the district's coordinators and the leader, not six.
    assert_eq!(pass.messages, 3, "{pass:?}");
    for user in ["zhonghua", "siming", "liming"] {
        // (The new account must change its password before it may read its inbox: read the
        // store.)
        let titles: Vec<String> = if user == "siming" {
            sqlx::query_scalar("SELECT title FROM inbox_messages WHERE username = $1")
                .bind(user)
                .fetch_all(app.projecting.store.pool())
                .await?
        } else {
            inbox_titles(&app, user).await?
        };
        assert_eq!(titles.len(), 1, "{user}: {titles:?}");
        assert!(
            titles[0].contains("包案领导未开展工作") && titles[0].contains("新增 6 条"),
            "{user}: {titles:?}"
        );
    }
    // Each warning is still listed, and notified once: the next pass sends nothing.
    assert_eq!(open_warnings(&app, "zhonghua").await?["open_count"], 6);
    assert_eq!(watch.notifier().run_once().await?.messages, 0);
    // The page lists them with a unit filter and a pager.
    let html = |path: &'static str| {
        let app = &app;
        async move {
            let token = app.login("zhonghua").await?;
            anyhow::Ok(
                app.http
                    .get(format!("{}{path}", app.base))
                    .header("cookie", format!("zhzj_session={token}"))
                    .send()
                    .await?
                    .text()
                    .await?,
            )
        }
    };
    let listed = html("/warnings").await?;
    assert!(listed.contains("第 1 / 1 页，共 6 条"), "{listed}");
    assert!(
        listed.contains("<option value=\"xm-siming-zhonghua\""),
        "the town is a filter: {listed}"
    );
    let filtered = html("/warnings?unit_id=xm-siming-zhonghua&rule=leader_idle").await?;
    assert!(filtered.contains("共 6 条"), "{filtered}");
    // A district's filter takes in its towns.
    let district = html("/warnings?unit_id=xm-siming").await?;
    assert!(district.contains("共 6 条"), "{district}");
    let none = html("/warnings?rule=relapse").await?;
    assert!(
        none.contains("共 0 条") && none.contains("没有预警"),
        "{none}"
    );
    let second = html("/warnings?rule=leader_idle&page=2").await?;
    assert!(
        second.contains("href=\"/warnings?rule=leader_idle&#38;page=1\" rel=\"prev\""),
        "{second}"
    );

    // The list pages without overflowing on an absurd page number.
    let token = app.login("zhonghua").await?;
    let far = app
        .get(&token, "/warnings?page=4294967295&per_page=500")
        .await?;
    assert_eq!(far.status, 200);
    assert_eq!(
        (
            far.json["total"].clone(),
            far.json["rows"].as_array().map(Vec::len)
        ),
        (json!(6), Some(0))
    );
    app.stop().await
}
