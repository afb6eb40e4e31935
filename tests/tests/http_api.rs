//! The HTTP API end to end, on real parts (nats-server, the cases service on NATS, projections on
//! SQLite or PostgreSQL, the gateway on a free port): the whole flow of a case, every error
//! status, `Idempotency-Key` retries, `If-Match`, read-your-writes under load, the OpenAPI
//! document, health, readiness and metrics.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use serde_json::{Value, json};
use uuid::Uuid;
use zhzj_tests::{
    DbKind, TEST_BODY_LIMIT, TestApp, registration_json, row_column, spawn_app, spawn_app_with,
};

/// Registers case `n` and returns its id and version.
async fn register(app: &TestApp, token: &str, n: u32) -> anyhow::Result<(String, u64)> {
    let answer = app.post(token, "/cases", &registration_json(n)).await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    let id = answer.json["aggregate_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let version = answer.json["version"].as_u64().unwrap_or(0);
    Ok((id, version))
}

async fn whole_flow_through_http(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let token = app.login("xietiao").await?;

    let answer = app.post(&token, "/cases", &registration_json(1)).await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    let case_id = answer.json["aggregate_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        answer.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api/v1/cases/{case_id}").as_str())
    );
    assert_eq!(answer.etag(), answer.json["version"].as_u64());
    assert_eq!(answer.json["visible"], true);

    let case = format!("/cases/{case_id}");
    let steps = [
        (
            format!("{case}/leader"),
            json!({"leader_id": "ldr-siming-1"}),
            200,
        ),
        (
            format!("{case}/units"),
            json!({"lead_unit_id": "xm-siming-zhonghua", "assisting_unit_ids": ["xm-dept-zjj"], "handler": "陈科长"}),
            200,
        ),
        (
            format!("{case}/measures"),
            json!({"description": "包案领导约访当事人", "due_on": "2026-04-01", "responsible_unit_id": "xm-dept-zjj"}),
            201,
        ),
        (
            format!("{case}/measures/m1/complete"),
            json!({"result": "已约访，当事人接受调解"}),
            200,
        ),
        (
            format!("{case}/notes"),
            json!({"text": "已下访当事人家中，情绪稳定"}),
            201,
        ),
    ];
    let mut version = 0;
    for (path, body, status) in steps {
        let answer = app.post(&token, &path, &body).await?;
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        let next = answer.json["version"].as_u64().unwrap_or(0);
        assert!(next > version, "versions grow");
        version = next;
    }

    let shown = app.get(&token, &case).await?;
    assert_eq!(shown.status, 200, "{shown:?}");
    assert_eq!(shown.etag(), Some(version));
    let view = &shown.json;
    assert_eq!(view["leader"]["name"], "李明");
    assert_eq!(view["lead_unit"]["name"], "中华街道");
    assert_eq!(view["assisting_units"], "市住房局");
    assert_eq!(view["handler"], "陈科长");
    assert_eq!(view["measures_total"], 1);
    assert_eq!(view["measures_done"], 1);
    assert_eq!(view["status"], "measures_done");
    assert_eq!(view["status_label"], "措施已落实");
    assert_eq!(view["measures"][0]["measure_id"], "m1");
    assert_eq!(view["measures"][0]["responsible_unit"], "市住房局");
    assert_eq!(view["measures"][0]["result"], "已约访，当事人接受调解");
    assert_eq!(view["notes"][0]["text"], "已下访当事人家中，情绪稳定");
    assert_eq!(view["notes"][0]["by"], "xietiao");
    let id_number = view["petitioners"][0]["id_number"].as_str().unwrap_or("");
    assert!(
        id_number.contains('*') && id_number.len() == 18,
        "ID numbers are masked: {id_number}"
    );

    let events = app.get(&token, &format!("{case}/events")).await?;
    assert_eq!(events.status, 200);
    let types: Vec<&str> = events
        .json
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["event_type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        types,
        [
            "CaseRegistered",
            "LeaderAssigned",
            "ResponsibleUnitsSet",
            "MeasureAdded",
            "MeasureCompleted",
            "NoteRecorded"
        ]
    );
    assert!(
        events
            .json
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["actor_id"] == "xietiao"),
        "every event carries the signed-in user as its actor"
    );

    // A second case, registered later, so the filters have something to leave out.
    app.services.clock.advance(chrono::Duration::minutes(5));
    let (other, _) = register(&app, &token, 2).await?;
    let page = app.get(&token, "/checklist").await?;
    assert_eq!(page.json["total"], 2);
    for (query, expected) in [
        (
            "?district=xm-siming",
            vec![case_id.as_str(), other.as_str()],
        ),
        (
            "?town=xm-siming-zhonghua",
            vec![case_id.as_str(), other.as_str()],
        ),
        ("?leader=ldr-siming-1", vec![case_id.as_str()]),
        ("?status=measures_done", vec![case_id.as_str()]),
        ("?status=unassigned", vec![other.as_str()]),
        ("?q=%232", vec![other.as_str()]),
        ("?q=李明", vec![case_id.as_str()]),
        ("?district=xm-huli", vec![]),
        ("?per_page=1&page=2", vec![other.as_str()]),
    ] {
        let page = app.get(&token, &format!("/checklist{query}")).await?;
        assert_eq!(page.status, 200, "{query}: {page:?}");
        assert_eq!(row_column(&page.json, "case_id"), expected, "{query}");
    }

    let org = app.get(&token, "/org").await?;
    assert_eq!(org.status, 200);
    let units: Vec<&str> = org.json["units"]
        .as_array()
        .map(|u| u.iter().filter_map(|u| u["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(units.contains(&"中华街道"), "{units:?}");
    assert_eq!(org.json["leaders"][0]["name"], "李明");

    // Logging out ends the session.
    let out = app
        .send(app.http.delete(app.api("/session")).bearer_auth(&token))
        .await?;
    assert_eq!(out.status, 204);
    assert_eq!(app.get(&token, "/checklist").await?.status, 401);
    app.stop().await
}

#[tokio::test]
async fn every_error_status_is_answered_in_json_and_appends_nothing() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let viewer = app.login("chakan").await?;
    let (case_id, version) = register(&app, &token, 1).await?;
    let note = json!({"text": "记录"});
    let unknown = Uuid::new_v4();
    let oversize = json!({"text": "长".repeat(TEST_BODY_LIMIT)});
    let mut missing_matter = registration_json(2);
    missing_matter.as_object_mut().map(|o| o.remove("matter"));
    let mut bad_id_number = registration_json(3);
    bad_id_number["petitioners"][0]["id_number"] = json!("350203199001011235");
    let mut explicit = registration_json(4);
    explicit["case_id"] = json!(case_id);

    let mut before = app.log_position().await?;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str, Option<&str>)> = vec![
        (
            "no session",
            app.http.get(app.api("/checklist")),
            401,
            "unauthenticated",
            None,
        ),
        (
            "a made-up token",
            app.http.get(app.api("/checklist")).bearer_auth("0123abcd"),
            401,
            "unauthenticated",
            None,
        ),
        (
            "a wrong password",
            app.http
                .post(app.api("/session"))
                .json(&json!({"username": "xietiao", "password": "wrong-password"})),
            401,
            "unauthenticated",
            None,
        ),
        (
            "a write without a session",
            app.http.post(app.api("/cases")).json(&registration_json(5)),
            401,
            "unauthenticated",
            None,
        ),
        (
            "malformed JSON",
            app.http
                .post(app.api("/cases"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{\"matter\": "),
            400,
            "bad_request",
            None,
        ),
        (
            "an unknown status filter",
            app.http
                .get(app.api("/checklist?status=finished"))
                .bearer_auth(&token),
            400,
            "bad_request",
            Some("status"),
        ),
        (
            "a malformed If-Match",
            app.http
                .post(app.api(&format!("/cases/{case_id}/notes")))
                .bearer_auth(&token)
                .header("if-match", "yesterday")
                .json(&note),
            400,
            "bad_request",
            Some("If-Match"),
        ),
        (
            "a read-only account writing",
            app.http
                .post(app.api("/cases"))
                .bearer_auth(&viewer)
                .json(&registration_json(6)),
            403,
            "forbidden",
            None,
        ),
        (
            "an unknown case",
            app.http
                .get(app.api(&format!("/cases/{unknown}")))
                .bearer_auth(&token),
            404,
            "not_found",
            None,
        ),
        (
            "a note on an unknown case",
            app.http
                .post(app.api(&format!("/cases/{unknown}/notes")))
                .bearer_auth(&token)
                .json(&note),
            404,
            "not_found",
            None,
        ),
        (
            "an unknown measure",
            app.http
                .post(app.api(&format!("/cases/{case_id}/measures/m9/complete")))
                .bearer_auth(&token)
                .json(&json!({"result": "x"})),
            404,
            "not_found",
            None,
        ),
        (
            "an unknown route",
            app.http.get(app.api("/nothing-here")).bearer_auth(&token),
            404,
            "not_found",
            None,
        ),
        (
            "registering a case id twice",
            app.http
                .post(app.api("/cases"))
                .bearer_auth(&token)
                .json(&explicit),
            409,
            "conflict",
            None,
        ),
        (
            "a stale If-Match",
            app.http
                .post(app.api(&format!("/cases/{case_id}/notes")))
                .bearer_auth(&token)
                .header("if-match", format!("\"{}\"", version - 1))
                .json(&note),
            412,
            "precondition_failed",
            None,
        ),
        (
            "an oversize body",
            app.http
                .post(app.api(&format!("/cases/{case_id}/notes")))
                .bearer_auth(&token)
                .json(&oversize),
            413,
            "too_large",
            None,
        ),
        (
            "a missing field",
            app.http
                .post(app.api("/cases"))
                .bearer_auth(&token)
                .json(&missing_matter),
            422,
            "invalid",
            None,
        ),
        (
            "an ID number with a wrong check digit",
            app.http
                .post(app.api("/cases"))
                .bearer_auth(&token)
                .json(&bad_id_number),
            422,
            "invalid",
            Some("command.petitioners[0].id_number"),
        ),
        (
            "an unknown field",
            app.http
                .post(app.api(&format!("/cases/{case_id}/notes")))
                .bearer_auth(&token)
                .json(&json!({"text": "x", "colour": "red"})),
            422,
            "invalid",
            None,
        ),
    ];
    for (what, request, status, code, field) in cases {
        // A failed login is itself recorded: one `LoginFailed` in the log, nothing else.
        before += u64::from(what == "a wrong password");
        let answer = app.send(request).await?;
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        assert_eq!(answer.error_code(), code, "{what}: {answer:?}");
        assert!(
            answer.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: a message for a person"
        );
        if let Some(field) = field {
            assert_eq!(answer.json["error"]["field"], field, "{what}");
        }
        if status == 412 {
            assert_eq!(answer.json["error"]["current_version"], version, "{what}");
            assert_eq!(
                answer.etag(),
                Some(version),
                "{what}: ETag is the current version"
            );
        }
        assert_eq!(
            app.log_position().await?,
            before,
            "{what}: nothing appended"
        );
    }
    // The missing field is named.
    let answer = app.post(&token, "/cases", &missing_matter).await?;
    assert!(
        answer.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("matter")),
        "{answer:?}"
    );
    // A fresh If-Match goes through.
    let answer = app
        .send(
            app.http
                .post(app.api(&format!("/cases/{case_id}/notes")))
                .bearer_auth(&token)
                .header("if-match", format!("\"{version}\""))
                .json(&note),
        )
        .await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    app.stop().await
}

/// An outside drill killed the gateway after a note was committed but before its answer was
/// kept, and retried with the same key 125 s later: past JetStream's two-minute de-duplication
/// window, the note was appended a second time. Here the window is one second and the retry
/// comes after two.
#[tokio::test]
async fn an_idempotency_key_retry_after_a_lost_answer_lands_once_at_any_age() -> anyhow::Result<()>
{
    let config = zhzj_store::LogConfig {
        duplicate_window: std::time::Duration::from_secs(1),
        ..zhzj_store::LogConfig::default()
    };
    let app = spawn_app_with(DbKind::Sqlite, &config).await?;
    let token = app.login("xietiao").await?;
    let (case_id, _) = register(&app, &token, 1).await?;
    let note = |key: &'static str| {
        app.http
            .post(app.api(&format!("/cases/{case_id}/notes")))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"text": "已电话回访"}))
    };
    let first = app.send(note("late-note")).await?;
    assert_eq!(first.status, 201, "{first:?}");
    // What a gateway killed between the commit and keeping the answer leaves: the key claimed,
    // no answer.
    sqlx::query(
        "UPDATE idempotency_keys SET status = NULL, response_body = NULL WHERE idem_key = $1",
    )
    .bind("late-note")
    .execute(app.projecting.store.pool())
    .await?;
    // Others write on the case meanwhile, more than the service remembers of recent commands.
    for n in 0..zhzj_cases::aggregate::RECENT_COMMANDS_KEPT {
        let other = app
            .post(
                &token,
                &format!("/cases/{case_id}/notes"),
                &json!({"text": format!("其他人的记录 {n}")}),
            )
            .await?;
        assert_eq!(other.status, 201, "{other:?}");
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let before = app.log_position().await?;
    let retry = app.send(note("late-note")).await?;
    assert_eq!(retry.status, 201, "{retry:?}");
    assert_eq!(
        retry.json["version"], first.json["version"],
        "the retry is answered with the first commit"
    );
    assert_eq!(app.log_position().await?, before, "nothing appended");
    let case = app.get(&token, &format!("/cases/{case_id}")).await?;
    let notes = case.json["notes"].as_array().map_or(0, Vec::len);
    assert_eq!(
        notes,
        1 + zhzj_cases::aggregate::RECENT_COMMANDS_KEPT,
        "{case:?}"
    );
    // The kept answer is the first one, and a third attempt replays it.
    let third = app.send(note("late-note")).await?;
    assert_eq!(third.json["version"], first.json["version"]);
    app.stop().await
}

#[tokio::test]
async fn an_idempotency_key_retry_gets_the_first_answer_and_appends_once() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let with_key = |key: &str, body: &Value| {
        app.http
            .post(app.api("/cases"))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(body)
    };
    let first = app.send(with_key("reg-1", &registration_json(1))).await?;
    assert_eq!(first.status, 201, "{first:?}");
    let after_first = app.log_position().await?;
    let again = app.send(with_key("reg-1", &registration_json(1))).await?;
    assert_eq!(again.status, 201);
    assert_eq!(again.json, first.json, "the same answer");
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(app.log_position().await?, after_first, "nothing appended");

    // The key with another request is refused.
    let reused = app.send(with_key("reg-1", &registration_json(2))).await?;
    assert_eq!(reused.status, 422, "{reused:?}");
    assert_eq!(reused.json["error"]["field"], "Idempotency-Key");

    // Many concurrent retries of one note: one commit, one answer.
    let case_id = first.json["aggregate_id"].as_str().unwrap_or("").to_owned();
    let before = app.log_position().await?;
    let retries = (0..8).map(|_| {
        app.send(
            app.http
                .post(app.api(&format!("/cases/{case_id}/notes")))
                .bearer_auth(&token)
                .header("idempotency-key", "note-1")
                .json(&json!({"text": "已电话回访"})),
        )
    });
    let answers = futures::future::try_join_all(retries).await?;
    for answer in &answers {
        assert_eq!(answer.status, 201, "{answer:?}");
        assert_eq!(answer.json, answers[0].json);
    }
    assert_eq!(app.log_position().await?, before + 1, "one commit");
    let shown = app.get(&token, &format!("/cases/{case_id}")).await?;
    assert_eq!(shown.json["notes"].as_array().map(Vec::len), Some(1));
    app.stop().await
}

#[tokio::test]
async fn a_read_right_after_a_write_shows_it_under_concurrent_load() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let mut cases = Vec::new();
    for n in 0..16 {
        cases.push(register(&app, &token, n).await?.0);
    }
    let app = &app;
    let clients = cases.iter().map(|case_id| {
        let token = token.clone();
        async move {
            for i in 0..10 {
                let wrote = app
                    .post(
                        &token,
                        &format!("/cases/{case_id}/notes"),
                        &json!({"text": format!("第{i}次记录")}),
                    )
                    .await?;
                assert_eq!(wrote.status, 201, "{wrote:?}");
                assert_eq!(wrote.json["visible"], true);
                let version = wrote.json["version"].as_u64().unwrap_or(u64::MAX);
                let read = app.get(&token, &format!("/cases/{case_id}")).await?;
                assert!(read.etag() >= Some(version), "{read:?} after {version}");
                assert_eq!(
                    read.json["notes"].as_array().map(Vec::len),
                    Some(i + 1),
                    "the note just written is there"
                );
                let events = app.get(&token, &format!("/cases/{case_id}/events")).await?;
                assert_eq!(events.etag(), Some(version), "and in the history");
            }
            anyhow::Ok(())
        }
    });
    futures::future::try_join_all(clients).await?;
    Ok(())
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes_that_exist() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let (case_id, _) = register(&app, &token, 1).await?;
    let document = app.send(app.http.get(app.api("/openapi.json"))).await?;
    assert_eq!(document.status, 200, "served without a session");
    assert_eq!(document.json["openapi"], "3.1.0");
    let schemas = &document.json["components"]["schemas"];
    for name in [
        "RegisterCase",
        "Petitioner",
        "WriteReply",
        "ErrorBody",
        "CaseView",
    ] {
        assert!(schemas.get(name).is_some(), "schema {name}");
    }
    let mut paths: Vec<(String, serde_json::Value)> = document.json["paths"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    assert!(paths.len() >= 9, "{paths:?}");
    // Logging out last, so that every other operation is asked with a live session.
    paths.sort_by_key(|(path, _)| path == "/api/v1/session");
    // Every operation, asked by users of every kind of standing — no session, a reader, the
    // auditor, a leader, a coordinator — answers only statuses its operation documents (the
    // refusals too: 401, 403).
    let mut undocumented = Vec::new();
    for user in [
        None,
        Some("chakan"),
        Some("shenji"),
        Some("liming"),
        Some("xietiao"),
    ] {
        let token = match user {
            Some(username) => Some(app.login(username).await?),
            None => None,
        };
        for (path, methods) in &paths {
            let concrete = path
                .replace("{id}", &case_id)
                .replace("{measure_id}", "m1")
                .replace("/api/v1", "");
            let operations = methods
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            // Plainly, and with an unknown query parameter (refused before anything else):
            // whatever the answer, the document names it.
            for (method, query) in operations
                .iter()
                .flat_map(|m| [(m, ""), (m, "?x-unknown-parameter=42")])
            {
                let url = app.api(&format!("{concrete}{query}"));
                let request = match method.as_str() {
                    "get" => app.http.get(url),
                    "post" => app.http.post(url).json(&json!({})),
                    "delete" => app.http.delete(url),
                    other => panic!("unexpected method {other}"),
                };
                let request = match &token {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                };
                let answer = app.send(request).await?;
                assert_ne!(answer.status, 405, "{method} {path} is routed");
                assert_ne!(
                    answer.json["error"]["message"], "没有这个接口",
                    "{method} {path} is routed"
                );
                if methods[method.as_str()]["responses"]
                    .get(answer.status.to_string())
                    .is_none()
                {
                    undocumented.push(format!(
                        "{method} {path}{query} as {}: {} {}",
                        user.unwrap_or("nobody"),
                        answer.status,
                        answer.json["error"]["code"]
                    ));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "answers the document does not name:\n{}",
        undocumented.join("\n")
    );
    app.stop().await
}

/// What axum answers by itself — a path segment that is not UTF-8, a method the route does not
/// take — was English plain text or an empty body; the API answers JSON errors in Chinese, and
/// nothing is written.
#[tokio::test]
async fn malformed_paths_and_wrong_methods_get_json_errors() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let (case_id, version) = register(&app, &token, 1).await?;
    let not_utf8 = app
        .send(
            app.http
                .post(app.api("/cases/%FF%FE/notes"))
                .bearer_auth(&token)
                .json(&json!({"text": "不会写入"})),
        )
        .await?;
    assert_eq!(not_utf8.status, 400, "{not_utf8:?}");
    assert_eq!(
        not_utf8.json["error"]["code"], "bad_request",
        "{not_utf8:?}"
    );
    let message = not_utf8.json["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("路径参数有误"), "{message}");
    let wrong_method = app
        .send(
            app.http
                .get(app.api(&format!("/cases/{case_id}/notes")))
                .bearer_auth(&token),
        )
        .await?;
    assert_eq!(wrong_method.status, 405, "{wrong_method:?}");
    assert_eq!(wrong_method.json["error"]["code"], "method_not_allowed");
    assert!(
        wrong_method.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("不支持 GET")),
        "{wrong_method:?}"
    );
    assert_eq!(
        wrong_method
            .headers
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("POST"),
        "the methods it takes are named"
    );
    let case = app.get(&token, &format!("/cases/{case_id}")).await?;
    assert_eq!(case.etag(), Some(version), "nothing was written");
    app.stop().await
}

/// A query parameter an operation does not take was silently ignored where the handler reads no
/// query: `GET /ledger/export.csv?unit_id=xm-huli` by a 思明区 coordinator answered the whole of
/// 思明区's ledger, names and ID numbers, as if filtered. Every operation now refuses parameters
/// its OpenAPI description does not name, and still takes those it does.
#[tokio::test]
async fn query_parameters_an_operation_does_not_take_are_refused() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let (case_id, version) = register(&app, &token, 1).await?;
    for path in [
        "/ledger/export.csv?unit_id=xm-huli",
        "/org/file?format=csv",
        "/meetings?week=2026w10",
        "/checklist?unit=xm-siming&colour=red",
    ] {
        let answer = app.get(&token, path).await?;
        assert_eq!(answer.status, 400, "{path}: {answer:?}");
        assert_eq!(answer.json["error"]["code"], "bad_request", "{path}");
        let message = answer.json["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("查询参数"), "{path}: {message}");
    }
    let note = app
        .post(
            &token,
            &format!("/cases/{case_id}/notes?urgent=1"),
            &json!({"text": "不会写入"}),
        )
        .await?;
    assert_eq!(note.status, 400, "{note:?}");
    assert_eq!(note.json["error"]["field"], "urgent");
    let case = app.get(&token, &format!("/cases/{case_id}")).await?;
    assert_eq!(case.etag(), Some(version), "nothing was written");
    // The parameters an operation documents still work.
    for path in [
        "/checklist?unit=xm-siming&page=1",
        "/ledger/export.csv",
        "/leaders?inactive_days=30",
    ] {
        let answer = app.get(&token, path).await?;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
    app.stop().await
}

#[tokio::test]
async fn health_readiness_and_metrics() -> anyhow::Result<()> {
    let mut app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    register(&app, &token, 1).await?;
    let health = app
        .send(app.http.get(format!("{}/healthz", app.base)))
        .await?;
    assert_eq!(health.status, 200);
    // The address itself leads a browser to the login page, which links the API's description.
    let index = app.http.get(&app.base).send().await?.text().await?;
    assert!(
        index.contains("治重化积")
            && index.contains("登录")
            && index.contains("/api/v1/openapi.json"),
        "{index}"
    );
    let ready = app
        .send(app.http.get(format!("{}/readyz", app.base)))
        .await?;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json["ready"], true);

    let metrics = app
        .http
        .get(format!("{}/metrics", app.metrics_base))
        .send()
        .await?
        .text()
        .await?;
    for expected in [
        "zhzj_commands_total{type=\"register_case\",outcome=\"accepted\"}",
        "zhzj_commands_handled_total{type=\"register_case\",outcome=\"accepted\"}",
        "zhzj_append_seconds",
        "zhzj_command_seconds",
        // One write's stages (BENCHMARKS.md, "Where one write's time goes").
        "zhzj_command_handle_seconds",
        "zhzj_read_your_writes_seconds",
        "zhzj_projection_delivery_seconds{projection=\"checklist\"",
        "zhzj_projection_apply_seconds{projection=\"archive\"",
        "zhzj_projection_commit_seconds{projection=\"lifecycle\"",
        "zhzj_projection_lag{projection=\"checklist\"} 0",
        "zhzj_projection_dead_letters{projection=\"archive\"} 0",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }

    // Without NATS the gateway is alive but not ready, and writes are answered 503.
    app.nats.kill().await?;
    let ready = app
        .send(app.http.get(format!("{}/readyz", app.base)))
        .await?;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(ready.json["ready"], false);
    let health = app
        .send(app.http.get(format!("{}/healthz", app.base)))
        .await?;
    assert_eq!(health.status, 200);
    let write = app.post(&token, "/cases", &registration_json(2)).await?;
    assert_eq!(write.status, 503, "{write:?}");
    assert_eq!(write.error_code(), "unavailable");
    Ok(())
}

/// A case whose archived history holds an unreadable event (a damaged read store) is answered
/// as a corrupt history naming the event's position, by the JSON API and by the page; before,
/// the event's data became `null` and the case was shown as if nothing were wrong. The same
/// holds for data that is JSON but not the event's shape (a note without its text): the case
/// view decodes every event, and before it showed such a note as an empty one.
#[tokio::test]
async fn an_unreadable_archived_event_is_an_error_naming_its_position() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let damages = [
        ("not JSON", r#"{"text": "已电"#),
        ("not a note", r#"{"txt": "已电话回访"}"#),
        ("a number for the text", r#"{"text": 42}"#),
    ];
    for (n, (damage, data)) in (1..).zip(damages) {
        let (case_id, _) = register(&app, &token, n).await?;
        let noted = app
            .post(
                &token,
                &format!("/cases/{case_id}/notes"),
                &json!({"text": "已电话回访"}),
            )
            .await?;
        assert_eq!(noted.status, 201, "{noted:?}");
        zhzj_tests::wait_caught_up(&app.services.log, &app.projecting.store).await?;
        let pool = app.projecting.store.pool();
        let table: String = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'event_archive_g%'",
        )
        .fetch_one(pool)
        .await?;
        // The table name comes from the store's own catalogue.
        let position: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET data = $2 \
             WHERE aggregate_id = $1 AND event_type = 'NoteRecorded' RETURNING position"
        )))
        .bind(&case_id)
        .bind(data)
        .fetch_one(pool)
        .await?;

        for path in [
            format!("/cases/{case_id}"),
            format!("/cases/{case_id}/events"),
        ] {
            let shown = app.get(&token, &path).await?;
            assert_eq!(shown.status, 500, "{damage}: {path}: {shown:?}");
            assert_eq!(
                shown.json["error"]["code"], "corrupt_history",
                "{damage}: {path}"
            );
            let message = shown.json["error"]["message"].as_str().unwrap_or("");
            assert!(
                message.contains(&format!("第 {position} 号")),
                "{damage}: {path}: the message names the position {position}: {message}"
            );
        }
        let page = app
            .send(
                app.http
                    .get(format!("{}/cases/{case_id}", app.base))
                    .header(reqwest::header::COOKIE, format!("zhzj_session={token}")),
            )
            .await?;
        assert_eq!(page.status, 500, "{damage}: {page:?}");
    }
    app.stop().await
}

zhzj_tests::on_both_databases!(whole_flow_through_http);
