//! The quarterly push on hard cases (季攻坚) on real parts: launching it (and every refusal),
//! its progress per area and per case through the quarter, and the final result at the
//! quarter's end, which later events do not change.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use calamine::{Data, Reader, Xlsx};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_tests::figures_check::assert_push_matches_archive;
use zhzj_tests::{DbKind, TestApp, register_case, spawn_app, wait_caught_up};

fn set(app: &TestApp, month: u32, day: u32) {
    if let Some(time) = Utc.with_ymd_and_hms(2026, month, day, 2, 0, 0).single() {
        app.services.clock.set(time);
    }
}

/// `(resolved, hard cases, target count, met)` of an area.
fn area(push: &Value, name: &str) -> (i64, i64, i64, bool) {
    let found = push["areas"]
        .as_array()
        .and_then(|areas| areas.iter().find(|a| a["name"] == name))
        .cloned()
        .unwrap_or_default();
    (
        found["resolved"]["numerator"].as_i64().unwrap_or(-1),
        found["resolved"]["denominator"].as_i64().unwrap_or(-1),
        found["target_count"].as_i64().unwrap_or(-1),
        found["met"].as_bool().unwrap_or(false),
    )
}

fn statuses(push: &Value) -> Vec<String> {
    push["cases"]
        .as_array()
        .map(|cases| {
            cases
                .iter()
                .filter_map(|c| c["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_quarter_of_push_on_hard_cases() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    app.command(json!({"type": "add_unit", "unit_id": "xm-huli", "parent_id": "xm", "name": "湖里区", "kind": "district"})).await?;
    let mut cases = Vec::new();
    for n in 1..=4 {
        let mut command = serde_json::to_value(register_case(n))?;
        if n == 4 {
            command["district_id"] = json!("xm-huli");
            command["town_id"] = Value::Null;
        }
        cases.push(app.command(command).await?);
    }
    let (s1, s2, s3, h1) = (&cases[0], &cases[1], &cases[2], &cases[3]);
    app.command(json!({"type": "set_responsible_units", "case_id": s3, "lead_unit_id": "xm-dept-zjj", "assisting_unit_ids": []})).await?;

    // 30 March: the city launches the second quarter's push.
    set(&app, 3, 30);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let city = app.login("xietiao").await?;
    let targets = json!([
        {"unit_id": "xm-siming", "cases": 2},
        {"unit_id": "xm-huli", "rate_percent": 100},
        {"unit_id": "xm-dept-zjj", "rate_percent": 50},
    ]);
    let launch = json!({"quarter": "2026-Q2", "case_ids": cases, "targets": targets});
    let refused = |body: Value| {
        let (app, city) = (&app, city.clone());
        async move {
            let before = app.log_position().await?;
            let answer = app.post(&city, "/pushes", &body).await?;
            assert_eq!(
                app.log_position().await?,
                before,
                "{body}: nothing appended"
            );
            anyhow::Ok(answer.status)
        }
    };
    let town = app.login("zhonghua").await?;
    assert_eq!(app.post(&town, "/pushes", &launch).await?.status, 403);
    let mut bad = launch.clone();
    bad["quarter"] = json!("2025-Q4");
    assert_eq!(refused(bad).await?, 422, "a quarter already over");
    let mut bad = launch.clone();
    bad["targets"][0]["rate_percent"] = json!(50);
    assert_eq!(refused(bad).await?, 422, "both a count and a rate");
    let mut bad = launch.clone();
    bad["targets"][0]["unit_id"] = json!("xm");
    assert_eq!(refused(bad).await?, 422, "a target on the city");
    let mut bad = launch.clone();
    bad["case_ids"][1] = json!("00000000-0000-4000-8000-000000000000");
    assert_eq!(refused(bad).await?, 404, "an unknown case");
    let mut bad = launch.clone();
    bad["case_ids"][1] = json!(s1);
    assert_eq!(refused(bad).await?, 422, "a case listed twice");
    let launched = app.post(&city, "/pushes", &launch).await?;
    assert_eq!(launched.status, 201);
    // Where the new push is, as 201 says: its own page, not a case's.
    assert_eq!(
        launched
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/api/v1/pushes/2026-Q2"),
        "{launched:?}"
    );
    assert_eq!(refused(launch.clone()).await?, 409);

    let push = app.get(&city, "/pushes/2026-Q2").await?.json;
    assert_eq!(push["title"], "2026年第二季度积案攻坚");
    assert_eq!(push["final_result"], false);
    assert_eq!(area(&push, "思明区"), (0, 3, 2, false));
    assert_eq!(statuses(&push), ["in_progress"; 4]);

    // April: S1 and S3 crossed off, S3 then reopened; May: H1 crossed off; July: S2, too late.
    set(&app, 4, 10);
    app.cross_off(s1).await?;
    set(&app, 4, 15);
    app.cross_off(s3).await?;
    set(&app, 4, 20);
    app.command(json!({"type": "record_petition", "case_id": s3, "received_on": "2026-04-20", "channel": "phone", "summary": "再次来电"})).await?;
    set(&app, 5, 10);
    app.cross_off(h1).await?;

    set(&app, 6, 30);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let city = app.login("xietiao").await?;
    let during = app.get(&city, "/pushes/2026-Q2").await?.json;
    assert_eq!(
        statuses(&during),
        ["resolved", "in_progress", "relapsed", "resolved"]
    );
    assert_eq!(area(&during, "思明区"), (1, 3, 2, false));
    assert_eq!(area(&during, "湖里区"), (1, 1, 1, true));
    // 50% of one case asks for one.
    assert_eq!(area(&during, "市住房局"), (0, 1, 1, false));
    assert_eq!(during["total"], json!({"numerator": 2, "denominator": 4}));

    set(&app, 7, 2);
    app.cross_off(s2).await?;
    set(&app, 7, 5);
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let city = app.login("xietiao").await?;
    let result = app.get(&city, "/pushes/2026-Q2").await?.json;
    assert_eq!(result["final_result"], true);
    assert_eq!(statuses(&result), statuses(&during), "July does not count");
    assert_eq!(result["areas"], during["areas"]);

    let response = app
        .http
        .get(app.api("/pushes/2026-Q2/export.xlsx"))
        .bearer_auth(&city)
        .send()
        .await?;
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(response.bytes().await?.to_vec()))?;
    let areas = book.worksheet_range("区域进度")?;
    assert_eq!(
        areas.get_value((1, 0)),
        Some(&Data::String("思明区".into()))
    );
    assert_eq!(areas.get_value((1, 1)), Some(&Data::Float(3.0)));
    assert_eq!(areas.get_value((1, 2)), Some(&Data::Float(1.0)));
    assert_eq!(areas.get_value((1, 7)), Some(&Data::String("否".into())));
    assert_eq!(areas.get_value((2, 7)), Some(&Data::String("是".into())));
    assert_eq!(app.get(&city, "/pushes").await?.json[0]["cases"], 4);
    assert_eq!(app.get(&city, "/pushes/2026-Q3").await?.status, 404);

    // Everyone sees every area's figures, but only their own hard cases: the town its three,
    // the housing bureau the one it is responsible for; 湖里区's case is named to neither.
    let case_ids = |push: &Value| -> Vec<String> {
        push["cases"]
            .as_array()
            .map(|cases| {
                cases
                    .iter()
                    .filter_map(|c| c["case_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let town = app.login("zhonghua").await?;
    let seen_by_town = app.get(&town, "/pushes/2026-Q2").await?.json;
    assert_eq!(
        case_ids(&seen_by_town),
        [s1.clone(), s2.clone(), s3.clone()]
    );
    assert_eq!(seen_by_town["areas"], result["areas"]);
    assert_eq!(seen_by_town["total"], result["total"]);
    let department = app.login("zhufang").await?;
    let seen_by_department = app.get(&department, "/pushes/2026-Q2").await?.json;
    assert_eq!(case_ids(&seen_by_department), std::slice::from_ref(s3));
    let numbers: Vec<String> = result["cases"]
        .as_array()
        .map(|cases| {
            cases
                .iter()
                .filter_map(|c| c["case_number"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let csv = app
        .http
        .get(app.api("/pushes/2026-Q2/export.csv?part=cases"))
        .bearer_auth(&department)
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(
        numbers.iter().filter(|n| csv.contains(n.as_str())).count(),
        1,
        "the department's export names its own case only: {csv}"
    );

    // Read from the hard cases alone, the progress is the whole archive's at every position.
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let nows: Vec<_> = [(4, 20), (7, 5)]
        .into_iter()
        .filter_map(|(month, day)| Utc.with_ymd_and_hms(2026, month, day, 2, 0, 0).single())
        .collect();
    let launched = assert_push_matches_archive(&app.projecting.store, "2026-Q2", &nows).await?;
    assert!(launched > 0, "the comparison never found the push launched");
    app.stop().await
}
