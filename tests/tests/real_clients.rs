//! What clients no one here wrote found (issue 15), each kept as a test through HTTP: dates
//! outside the one date rule refused with the field named, exports that cope with any date the
//! store holds, a log position past the end refused, the checklist export counting days in
//! Beijing time, and every status the router answers, for every role, listed in the OpenAPI
//! document.

use std::collections::BTreeSet;

use anyhow::Context;
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_proto::AggregateType;
use zhzj_proto::subjects::aggregate_subject;
use zhzj_tests::{DbKind, TEST_ACCOUNTS, TestApp, registration_json, spawn_app};

/// Registers a case over HTTP as `token`; its id.
async fn register(app: &TestApp, token: &str, body: &Value) -> anyhow::Result<String> {
    let answer = app.post(token, "/cases", body).await?;
    anyhow::ensure!(answer.status == 201, "registration: {answer:?}");
    Ok(answer.json["aggregate_id"]
        .as_str()
        .context("no case id")?
        .to_owned())
}

/// A `GET`'s status and raw body.
async fn fetch(app: &TestApp, token: &str, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let response = app
        .http
        .get(app.api(path))
        .bearer_auth(token)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn dates_outside_the_rule_are_refused_naming_the_field() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    for (day, why) in [
        ("0001-01-01", "before 1949-10-01"),
        ("1899-01-01", "before 1949-10-01"),
        ("1949-09-30", "the day before the bound"),
        (
            "2026-03-03",
            "tomorrow (the test clock's today is 2026-03-02)",
        ),
    ] {
        let mut body = registration_json(1);
        body["first_filed_on"] = json!(day);
        let refused = app.expect(&token, "/cases", body, 422).await?;
        assert_eq!(
            refused["error"]["field"], "command.first_filed_on",
            "{day}: {why}"
        );
    }
    let mut body = registration_json(2);
    body["first_filed_on"] = json!("1949-10-01");
    let case_id = register(&app, &token, &body).await?;
    let measures = format!("/cases/{case_id}/measures");
    let refused = app
        .expect(
            &token,
            &measures,
            json!({"description": "约访信访人", "due_on": "9999-12-31"}),
            422,
        )
        .await?;
    assert_eq!(refused["error"]["field"], "command.due_on");
    let added = app
        .post(
            &token,
            &measures,
            &json!({"description": "约访信访人", "due_on": "2027-03-31"}),
        )
        .await?;
    assert_eq!(added.status, 201, "a due date a year ahead: {added:?}");

    // Query parameters follow the same rule, in every form of the answer.
    for path in [
        "/assessments",
        "/assessments/export.xlsx",
        "/assessments/export.csv",
    ] {
        let early = app
            .get(&token, &format!("{path}?from=1899-12-30&to=2026-12-31"))
            .await?;
        assert_eq!(early.status, 422, "{path}: {early:?}");
        assert_eq!(early.json["error"]["field"], "from", "{path}");
        let late = app
            .get(&token, &format!("{path}?from=2026-01-01&to=9999-12-31"))
            .await?;
        assert_eq!(late.status, 422, "{path}: {late:?}");
        assert_eq!(late.json["error"]["field"], "to", "{path}");
    }
    // A ledger is held to the same rule before anything is written.
    let ledger = "案件编号,信访人姓名,诉求,类别,区,信访渠道,首次信访日期,列入方式\r\n\
                  TZ-1,张三,补偿问题,征地拆迁,思明区,来访,2025-06-01,滚动排查\r\n\
                  TZ-2,李四,补偿问题,征地拆迁,思明区,来访,1899-12-30,滚动排查\r\n";
    let before = app.log_position().await?;
    let imported = app
        .send(
            app.http
                .post(app.api("/ledger/import.csv"))
                .bearer_auth(&token)
                .body(ledger),
        )
        .await?;
    assert_eq!(imported.status, 422, "{imported:?}");
    assert_eq!(
        (
            &imported.json["errors"][0]["row"],
            &imported.json["errors"][0]["column"]
        ),
        (&json!(3), &json!("首次信访日期")),
        "{imported:?}"
    );
    assert_eq!(app.log_position().await?, before, "not even the valid row");
    let early_bulletin = app.get(&token, "/bulletins/1899-12").await?;
    assert_eq!(early_bulletin.status, 404, "{early_bulletin:?}");
    app.stop().await
}

#[tokio::test]
async fn every_export_copes_with_any_date_the_store_holds() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let case_id = register(&app, &token, &registration_json(1)).await?;
    // A registration from before the date rule (an older version, a restored log): the
    // commit of a real one, re-addressed to a new case and dated in the year 1.
    let position = app.log_position().await?;
    let original = app.services.log.stream().get_raw_message(position).await?;
    let text = String::from_utf8(original.payload.to_vec())?;
    assert!(text.contains(&case_id) && text.contains("2025-06-01"));
    let old_case = uuid::Uuid::new_v4().to_string();
    let planted = text
        .replace(&case_id, &old_case)
        .replace("2025-06-01", "0001-01-01")
        .replace("XM-", "OLD-");
    let js = async_nats::jetstream::new(app.nats.connect().await?);
    let ack = js
        .publish(
            aggregate_subject(AggregateType::Case, &old_case),
            Bytes::from(planted),
        )
        .await?
        .await?;
    // A measure due in 9999, the other end of the range.
    let far = app
        .post(
            &token,
            &format!("/cases/{case_id}/measures"),
            &json!({"description": "约访信访人", "due_on": "2027-01-01"}),
        )
        .await?;
    assert_eq!(far.status, 201, "{far:?}");
    zhzj_tests::wait_caught_up(&app.services.log, &app.projecting.store).await?;
    assert!(ack.sequence > position);
    let shown = app.get(&token, &format!("/cases/{old_case}")).await?;
    assert_eq!(
        shown.status, 200,
        "the planted case is projected: {shown:?}"
    );
    for path in [
        "/ledger/export.xlsx",
        "/ledger/export.csv",
        "/checklist/export.xlsx",
        "/checklist/export.csv",
        "/assessments/export.xlsx?from=1949-10-01&to=2026-12-31",
    ] {
        let (status, body) = fetch(&app, &token, path).await?;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(!body.is_empty(), "{path}");
    }
    let (_, ledger) = fetch(&app, &token, "/ledger/export.csv").await?;
    assert!(
        String::from_utf8(ledger)?.contains("0001-01-01"),
        "the early date is exported as written"
    );
    app.stop().await
}

#[tokio::test]
async fn a_position_past_the_end_of_the_log_is_refused() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    register(&app, &token, &registration_json(1)).await?;
    zhzj_tests::wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let end = app.log_position().await?;
    let period = "from=2026-01-01&to=2026-12-31";
    for path in ["/assessments", "/assessments/export.xlsx"] {
        for position in [String::from("99999999"), (end + 1).to_string(), "-1".into()] {
            let answer = app
                .get(&token, &format!("{path}?{period}&position={position}"))
                .await?;
            assert_eq!(answer.status, 422, "{path} at {position}: {answer:?}");
            assert_eq!(answer.json["error"]["field"], "position");
        }
    }
    let (status, at_end) = fetch(
        &app,
        &token,
        &format!("/assessments/export.xlsx?{period}&position={end}"),
    )
    .await?;
    assert_eq!(status, 200);
    register(&app, &token, &registration_json(2)).await?;
    zhzj_tests::wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let (_, again) = fetch(
        &app,
        &token,
        &format!("/assessments/export.xlsx?{period}&position={end}"),
    )
    .await?;
    assert!(at_end == again, "the workbook at a position never changes");
    app.stop().await
}

#[tokio::test]
async fn the_checklist_export_counts_days_in_beijing_time() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    // 2026-03-01 18:30 UTC is 02:30 on 2 March in Beijing.
    let small_hours = Utc
        .with_ymd_and_hms(2026, 3, 1, 18, 30, 0)
        .single()
        .context("a time")?;
    app.services.clock.set(small_hours);
    register(&app, &token, &registration_json(1)).await?;
    let (status, csv) = fetch(&app, &token, "/checklist/export.csv").await?;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv)?;
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    let header: Vec<&str> = lines.next().context("a header")?.split(',').collect();
    let row: Vec<&str> = lines.next().context("a row")?.split(',').collect();
    for column in ["列入清单日期", "最近动态日期"] {
        let at = header
            .iter()
            .position(|h| *h == column)
            .context("the column")?;
        assert_eq!(row.get(at), Some(&"2026-03-02"), "{column}: {csv}");
    }
    app.stop().await
}

/// A value for each path parameter and required query parameter the document names.
fn concrete(path: &str, case_id: &str, meeting_id: &str) -> String {
    let path = path.replace("/api/v1", "");
    let path = if path.starts_with("/meetings/") {
        path.replace("{id}", meeting_id)
    } else {
        path.replace("{id}", case_id)
    };
    let path = path
        .replace("{measure_id}", "m1")
        .replace("{number}", "1")
        .replace("{quarter}", "2026-Q1")
        .replace("{month}", "2026-02");
    if path.starts_with("/assessments") {
        format!("{path}?from=2026-01-01&to=2026-12-31")
    } else if path.starts_with("/cases/duplicates") {
        format!("{path}?name=张三")
    } else {
        path
    }
}

#[tokio::test]
async fn every_status_the_router_answers_is_documented_for_every_role() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    let case_id = register(&app, &city, &registration_json(1)).await?;
    let meeting = app
        .post(&city, "/meetings", &json!({"unit_id": "xm-siming"}))
        .await?;
    assert_eq!(meeting.status, 201, "{meeting:?}");
    let meeting_id = meeting.json["aggregate_id"]
        .as_str()
        .context("meeting id")?
        .to_owned();
    let document = app.send(app.http.get(app.api("/openapi.json"))).await?;
    let paths = document.json["paths"]
        .as_object()
        .cloned()
        .context("paths")?;
    let mut tokens = vec![(String::from("(none)"), None)];
    for (username, ..) in TEST_ACCOUNTS {
        tokens.push(((*username).to_owned(), Some(app.login(username).await?)));
    }
    let mut undocumented = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, methods) in &paths {
        let url = app.api(&concrete(path, &case_id, &meeting_id));
        for (method, operation) in methods.as_object().context("methods")? {
            let documented: BTreeSet<String> = operation["responses"]
                .as_object()
                .context("responses")?
                .keys()
                .cloned()
                .collect();
            for (user, token) in &tokens {
                let request = match method.as_str() {
                    "get" => app.http.get(&url),
                    "post" => app.http.post(&url).json(&json!({})),
                    "delete" => app.http.delete(&url),
                    other => anyhow::bail!("unexpected method {other}"),
                };
                let request = match token {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                };
                let status = app.send(request).await?.status;
                seen.insert(status);
                if !documented.contains(&status.to_string()) {
                    undocumented.push(format!("{method} {path} as {user}: {status}"));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "answers the document does not list:\n{}",
        undocumented.join("\n")
    );
    // The sweep reached the interesting answers, so the comparison meant something.
    for status in [200, 401, 403, 404, 422] {
        assert!(seen.contains(&status), "{status} never answered: {seen:?}");
    }
    app.stop().await
}

#[tokio::test]
async fn names_are_stored_and_compared_in_one_normal_form() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let mut body = registration_json(1);
    body["petitioners"][0]["name"] = json!("庄　辉珠");
    let case_id = register(&app, &token, &body).await?;
    let shown = app
        .get(&token, &format!("/cases/{case_id}?reveal=personal"))
        .await?;
    assert_eq!(shown.json["petitioners"][0]["name"], "庄辉珠", "{shown:?}");
    for asked in ["庄辉珠", "庄 辉珠", "庄　辉珠"] {
        let found = app
            .get(
                &token,
                &format!(
                    "/cases/duplicates?name={asked}&town=xm-siming-zhonghua&category=征地拆迁"
                ),
            )
            .await?;
        assert_eq!(
            found.json["cases"][0]["case_id"],
            case_id.as_str(),
            "{asked}: {found:?}"
        );
    }
    app.stop().await
}

#[tokio::test]
async fn the_directory_moves_between_instances_and_grows_on_its_page() -> anyhow::Result<()> {
    let first = spawn_app(DbKind::Sqlite).await?;
    let admin = first.login("guanli").await?;
    // The administrator adds a town and its leader through the API the page uses.
    let town = json!({"unit_id": "xm-siming-lujiang", "parent_id": "xm-siming",
                      "name": "鹭江街道", "kind": "town"});
    let added = first.post(&admin, "/org/units", &town).await?;
    assert_eq!(added.status, 201, "{added:?}");
    let leader = json!({"leader_id": "ldr-lujiang-1", "unit_id": "xm-siming-lujiang",
                        "name": "陈晓东", "title": "街道党工委书记", "level": "town"});
    assert_eq!(
        first.post(&admin, "/org/leaders", &leader).await?.status,
        201
    );
    let coordinator = first.login("xietiao").await?;
    let refused = first
        .expect(
            &coordinator,
            "/org/units",
            json!({"unit_id": "xm-x", "parent_id": "xm", "name": "某区", "kind": "district"}),
            403,
        )
        .await?;
    assert_eq!(refused["error"]["code"], "forbidden");

    let file = first.get(&admin, "/org/file").await?;
    assert_eq!(file.status, 200);
    let units = file.json["units"].as_array().context("units")?;
    let position = |id: &str| units.iter().position(|u| u["unit_id"] == id);
    assert!(position("xm") < position("xm-siming"), "parents first");
    assert!(position("xm-siming") < position("xm-siming-lujiang"));

    // Another instance with an empty directory takes the file whole, and again adds nothing.
    let second = spawn_app(DbKind::Sqlite).await?;
    let second_admin = second.login("guanli").await?;
    let imported = second
        .post(&second_admin, "/org/import", &file.json)
        .await?;
    assert_eq!(imported.status, 200, "{imported:?}");
    assert_eq!(
        imported.json["added"], 2,
        "the seeded directory is already there"
    );
    let again = second
        .post(&second_admin, "/org/import", &file.json)
        .await?;
    assert_eq!(again.json["added"], 0, "{again:?}");
    assert_eq!(
        second.get(&second_admin, "/org/file").await?.json,
        file.json
    );

    // A file with one wrong entry writes nothing and names every problem.
    let mut bad = file.json.clone();
    bad["units"].as_array_mut().context("units")?.push(
        json!({"unit_id": "xm-new", "parent_id": "xm-nowhere", "name": "新区", "kind": "district"}),
    );
    bad["units"].as_array_mut().context("units")?.push(
        json!({"unit_id": "xm-ok", "parent_id": "xm", "name": "翔安新区", "kind": "district"}),
    );
    bad["leaders"][0]["name"] = json!("改了名字");
    let before = second.log_position().await?;
    let refused = second.post(&second_admin, "/org/import", &bad).await?;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(refused.json["problems"].as_array().map(Vec::len), Some(2));
    assert_eq!(second.log_position().await?, before, "nothing written");

    // The page lists the directory; the administrator's form adds to it.
    let cookie = format!("zhzj_session={admin}");
    let page = |app: &TestApp| {
        app.http
            .get(format!("{}/org", app.base))
            .header("cookie", cookie.clone())
            .send()
    };
    let html = page(&first).await?.text().await?;
    assert!(
        html.contains("鹭江街道") && html.contains("陈晓东"),
        "{html}"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the form's token")?
        .to_owned();
    let posted = first
        .http
        .post(format!("{}/org/units", first.base))
        .header("cookie", cookie.clone())
        .form(&[
            ("csrf", csrf.as_str()),
            ("parent_id", "xm-siming"),
            ("kind", "town"),
            ("name", "筼筜街道"),
            ("unit_id", "xm-siming-yundang"),
        ])
        .send()
        .await?;
    // Redirected back to the page, which lists the new town.
    assert_eq!(
        (posted.status().as_u16(), posted.url().path()),
        (200, "/org")
    );
    let after = posted.text().await?;
    assert!(after.contains("筼筜街道"), "{after}");
    second.stop().await?;
    first.stop().await
}

#[tokio::test]
async fn those_who_may_not_register_learn_nothing_of_duplicates() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let city = app.login("xietiao").await?;
    register(&app, &city, &registration_json(1)).await?;
    for user in ["chakan", "shenhe-shi"] {
        let token = app.login(user).await?;
        let refused = app
            .expect(
                &token,
                "/cases?check_duplicates=true",
                registration_json(1),
                403,
            )
            .await?;
        assert!(refused.get("duplicates").is_none(), "{user}: {refused}");
    }
    app.stop().await
}
