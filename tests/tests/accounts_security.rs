//! Accounts and sessions as a level-3 system is assessed (GB/T 22239-2019): failed logins lock an
//! account and a client address, a locked login answers as a wrong password with `Retry-After`,
//! an administrator unlocks; password rules and the first-login change; user administration with
//! roles and units checked; idle sessions end; cookie writes need the CSRF token; answers are not
//! cached; the session cookie is `Secure` behind https; `/metrics` is apart and its labels bounded.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use chrono::Duration;
use reqwest::header;
use serde_json::{Value, json};
use zhzj_store::LogConfig;
use zhzj_tests::{
    DbKind, TEST_PASSWORD, TestApp, registration_json, spawn_app, spawn_app_configured,
    test_gateway_config,
};

/// Tries to log in; the whole answer.
async fn try_login(
    app: &TestApp,
    username: &str,
    password: &str,
) -> anyhow::Result<zhzj_tests::Answer> {
    app.send(
        app.http
            .post(app.api("/session"))
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

async fn lockout_and_unlock(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let admin = app.login("guanli").await?;
    // Four wrong passwords are wrong passwords; the fifth locks.
    for attempt in 1..=4 {
        let refused = try_login(&app, "xietiao", "Wrong-password-1").await?;
        assert_eq!(refused.status, 401, "attempt {attempt}: {refused:?}");
        assert!(
            refused.headers.get(header::RETRY_AFTER).is_none(),
            "{refused:?}"
        );
    }
    let locked = try_login(&app, "xietiao", "Wrong-password-1").await?;
    assert_eq!(locked.status, 401, "{locked:?}");
    assert_eq!(locked.json["error"]["message"], "用户名或密码错误");
    let retry_after: i64 = locked
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        (800..=900).contains(&retry_after),
        "15 minutes: {retry_after}"
    );
    // Now even the right password is refused, the same way.
    let right = try_login(&app, "xietiao", TEST_PASSWORD).await?;
    assert_eq!(right.status, 401, "{right:?}");
    assert!(right.headers.get(header::RETRY_AFTER).is_some());
    // Another account is not affected.
    assert_eq!(
        try_login(&app, "zhonghua", TEST_PASSWORD).await?.status,
        201
    );
    // An unknown name locks the same way: a lockout does not tell which names exist.
    for _ in 0..5 {
        try_login(&app, "no-such-user", "Wrong-password-1").await?;
    }
    let unknown = try_login(&app, "no-such-user", "Wrong-password-1").await?;
    assert!(
        unknown.headers.get(header::RETRY_AFTER).is_some(),
        "{unknown:?}"
    );

    // The administrator sees the lock and lifts it.
    let users = app.get(&admin, "/users").await?;
    assert_eq!(users.status, 200, "{users:?}");
    let listed = users.json.as_array().cloned().unwrap_or_default();
    let xietiao = listed
        .iter()
        .find(|u| u["username"] == "xietiao")
        .cloned()
        .unwrap_or(Value::Null);
    assert!(xietiao["locked_until"].is_string(), "{xietiao}");
    let unlocked = app
        .post(&admin, "/users/xietiao/unlock", &json!({}))
        .await?;
    assert_eq!(unlocked.status, 200, "{unlocked:?}");
    assert_eq!(try_login(&app, "xietiao", TEST_PASSWORD).await?.status, 201);
    // Only an administrator unlocks.
    let coordinator = app.login("zhonghua").await?;
    let forbidden = app
        .post(&coordinator, "/users/xietiao/unlock", &json!({}))
        .await?;
    assert_eq!(forbidden.status, 403, "{forbidden:?}");

    // The lock ends by itself after the window.
    for _ in 0..5 {
        try_login(&app, "shenhe-qu", "Wrong-password-1").await?;
    }
    assert_eq!(
        try_login(&app, "shenhe-qu", TEST_PASSWORD).await?.status,
        401
    );
    app.services.clock.advance(Duration::minutes(16));
    assert_eq!(
        try_login(&app, "shenhe-qu", TEST_PASSWORD).await?.status,
        201
    );
    app.stop().await
}

#[tokio::test]
async fn failed_logins_lock_an_account_until_the_window_ends_or_an_administrator_unlocks_sqlite()
-> anyhow::Result<()> {
    lockout_and_unlock(DbKind::Sqlite).await
}

#[tokio::test]
async fn failed_logins_lock_an_account_until_the_window_ends_or_an_administrator_unlocks_postgres()
-> anyhow::Result<()> {
    lockout_and_unlock(DbKind::Postgres).await
}

#[tokio::test]
async fn failed_logins_from_one_address_lock_the_address_whatever_the_names() -> anyhow::Result<()>
{
    let mut config = test_gateway_config();
    config.accounts.lockout.max_failures_per_address = 8;
    let app = spawn_app_configured(DbKind::Sqlite, &LogConfig::default(), config).await?;
    // Eight names, one wrong password each: no account reaches its limit, the address does.
    for n in 0..8 {
        let refused = try_login(&app, &format!("guess-{n}"), "Wrong-password-1").await?;
        assert_eq!(refused.status, 401);
    }
    let locked = try_login(&app, "xietiao", TEST_PASSWORD).await?;
    assert_eq!(locked.status, 401, "{locked:?}");
    assert!(
        locked.headers.get(header::RETRY_AFTER).is_some(),
        "{locked:?}"
    );
    app.stop().await
}

#[tokio::test]
async fn accounts_are_administered_with_password_rules_and_a_first_login_change()
-> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let admin = app.login("guanli").await?;
    let new_user = |password: &str, roles: Value, unit: &str| {
        json!({"username": "siming-new", "password": password, "display_name": "新用户",
               "roles": roles, "unit_id": unit})
    };
    // Weak passwords, unknown roles and units are refused with a reason, and nothing is made.
    for (body, field, reason) in [
        (
            new_user("11111111", json!(["coordinator"]), "xm-siming"),
            "password",
            "至少 10 个字符",
        ),
        (
            new_user("passwordpassword", json!(["coordinator"]), "xm-siming"),
            "password",
            "至少 3 类",
        ),
        (
            new_user("Siming-new-2026", json!(["coordinator"]), "xm-siming"),
            "password",
            "不能包含用户名",
        ),
        (
            new_user("Xiamen-2026-ok", json!(["admn"]), "xm-siming"),
            "roles",
            "没有角色",
        ),
        (
            new_user("Xiamen-2026-ok", json!(["coordinator"]), "no-such-unit"),
            "unit",
            "没有单位",
        ),
    ] {
        let refused = app.post(&admin, "/users", &body).await?;
        assert_eq!(refused.status, 422, "{body}: {refused:?}");
        assert_eq!(refused.json["error"]["field"], field, "{refused:?}");
        let message = refused.json["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(reason), "{message}");
    }
    let listed = app.get(&admin, "/users").await?.json;
    assert!(
        !listed.to_string().contains("siming-new"),
        "nothing was created: {listed}"
    );
    // Only an administrator administers.
    let coordinator = app.login("xietiao").await?;
    let forbidden = app
        .post(
            &coordinator,
            "/users",
            &new_user("Xiamen-2026-ok", json!(["admin"]), "xm"),
        )
        .await?;
    assert_eq!(forbidden.status, 403, "{forbidden:?}");
    assert_eq!(app.get(&coordinator, "/users").await?.status, 403);

    // A new account must change its password before anything else.
    let made = app
        .post(
            &admin,
            "/users",
            &new_user("Xiamen-2026-ok", json!(["coordinator"]), "xm-siming"),
        )
        .await?;
    assert_eq!(made.status, 201, "{made:?}");
    let first = try_login(&app, "siming-new", "Xiamen-2026-ok").await?;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.json["user"]["must_change_password"], true);
    let token = first.json["token"].as_str().unwrap_or("").to_owned();
    let blocked = app.get(&token, "/checklist").await?;
    assert_eq!(blocked.status, 403, "{blocked:?}");
    let same = app
        .post(
            &token,
            "/session/password",
            &json!({"current_password": "Xiamen-2026-ok", "new_password": "Xiamen-2026-ok"}),
        )
        .await?;
    assert_eq!(same.status, 422, "{same:?}");
    let wrong = app
        .post(
            &token,
            "/session/password",
            &json!({"current_password": "nope", "new_password": "Gulangyu-2027!"}),
        )
        .await?;
    assert_eq!(wrong.status, 422, "{wrong:?}");
    assert_eq!(wrong.json["error"]["field"], "current_password");
    let changed = app
        .post(
            &token,
            "/session/password",
            &json!({"current_password": "Xiamen-2026-ok", "new_password": "Gulangyu-2027!"}),
        )
        .await?;
    assert_eq!(changed.status, 204, "{changed:?}");
    assert_eq!(app.get(&token, "/checklist").await?.status, 200);

    // Its role and unit change (checked), it is disabled (its session ends), enabled, reset.
    let moved = app
        .post(
            &admin,
            "/users/siming-new/assignment",
            &json!({"roles": ["viewer"], "unit_id": "xm-dept-zjj"}),
        )
        .await?;
    assert_eq!(moved.status, 200, "{moved:?}");
    let me = app.get(&token, "/session").await?;
    assert_eq!(me.json["roles"], json!(["viewer"]), "{me:?}");
    assert_eq!(me.json["unit_id"], "xm-dept-zjj");
    let bad_move = app
        .post(
            &admin,
            "/users/siming-new/assignment",
            &json!({"roles": ["supreme"]}),
        )
        .await?;
    assert_eq!(bad_move.status, 422, "{bad_move:?}");
    assert_eq!(
        app.post(&admin, "/users/siming-new/disable", &json!({}))
            .await?
            .status,
        200
    );
    assert_eq!(
        app.get(&token, "/checklist").await?.status,
        401,
        "its session ended"
    );
    assert_eq!(
        try_login(&app, "siming-new", "Gulangyu-2027!")
            .await?
            .status,
        401
    );
    assert_eq!(
        app.post(&admin, "/users/siming-new/enable", &json!({}))
            .await?
            .status,
        200
    );
    assert_eq!(
        try_login(&app, "siming-new", "Gulangyu-2027!")
            .await?
            .status,
        201
    );
    let reset = app
        .post(
            &admin,
            "/users/siming-new/password",
            &json!({"password": "Jimei-reset-2027"}),
        )
        .await?;
    assert_eq!(reset.status, 200, "{reset:?}");
    let after_reset = try_login(&app, "siming-new", "Jimei-reset-2027").await?;
    assert_eq!(after_reset.json["user"]["must_change_password"], true);
    let ended = app
        .send(
            app.http
                .delete(app.api("/users/siming-new/sessions"))
                .bearer_auth(&admin),
        )
        .await?;
    assert_eq!(ended.status, 200, "{ended:?}");
    let after_token = after_reset.json["token"].as_str().unwrap_or("");
    assert_eq!(app.get(after_token, "/session").await?.status, 401);
    // The administrator cannot disable themselves.
    assert_eq!(
        app.post(&admin, "/users/guanli/disable", &json!({}))
            .await?
            .status,
        422
    );
    app.stop().await
}

#[tokio::test]
async fn a_session_unused_longer_than_the_idle_timeout_ends() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    app.services.clock.advance(Duration::minutes(20));
    assert_eq!(
        app.get(&token, "/session").await?.status,
        200,
        "used within 30 minutes"
    );
    app.services.clock.advance(Duration::minutes(20));
    assert_eq!(
        app.get(&token, "/session").await?.status,
        200,
        "20 minutes after its last use"
    );
    app.services.clock.advance(Duration::minutes(31));
    assert_eq!(
        app.get(&token, "/session").await?.status,
        401,
        "idle 31 minutes"
    );
    app.stop().await
}

#[tokio::test]
async fn writes_by_cookie_need_the_csrf_token_and_answers_are_not_cached() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let login = try_login(&app, "xietiao", TEST_PASSWORD).await?;
    let token = login.json["token"].as_str().unwrap_or("").to_owned();
    let csrf = login.json["csrf_token"].as_str().unwrap_or("").to_owned();
    assert_eq!(csrf.len(), 32, "{login:?}");
    let cookie = format!("zhzj_session={token}");
    // What the outside test did: a cross-site form's text/plain body with only the cookie.
    let before = app.log_position().await?;
    let csv = "案件编号,信访人姓名\nXF-1,张三\n";
    let forged = app
        .send(
            app.http
                .post(app.api("/ledger/import.csv"))
                .header(header::COOKIE, cookie.clone())
                .header(header::CONTENT_TYPE, "text/plain")
                .body(csv),
        )
        .await?;
    assert_eq!(forged.status, 403, "{forged:?}");
    let forged_json = app
        .send(
            app.http
                .post(app.api("/cases"))
                .header(header::COOKIE, cookie.clone())
                .json(&registration_json(1)),
        )
        .await?;
    assert_eq!(forged_json.status, 403, "{forged_json:?}");
    assert_eq!(app.log_position().await?, before, "nothing written");
    // With the token the cookie writes; the bearer token needs none; reads need none.
    let with_token = app
        .send(
            app.http
                .post(app.api("/cases"))
                .header(header::COOKIE, cookie.clone())
                .header("x-csrf-token", csrf.as_str())
                .json(&registration_json(1)),
        )
        .await?;
    assert_eq!(with_token.status, 201, "{with_token:?}");
    let case_id = with_token.json["aggregate_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        app.post(&token, "/cases", &registration_json(2))
            .await?
            .status,
        201
    );
    let read = app
        .send(
            app.http
                .get(app.api("/session"))
                .header(header::COOKIE, cookie.clone()),
        )
        .await?;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok()),
        Some(csrf.as_str())
    );
    // Answers with personal data, exports and pages are not kept by any cache.
    let admin = app.login("guanli").await?;
    for path in [
        format!("/cases/{case_id}?reveal=personal"),
        format!("/cases/{case_id}/events"),
        "/ledger/export.csv".to_owned(),
        "/checklist".to_owned(),
    ] {
        let answer = app.get(&admin, &path).await?;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(
            answer
                .headers
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
    }
    // Plain http: no Secure flag (a browser would drop the cookie).
    let set_cookie = login
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    app.stop().await
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() -> anyhow::Result<()> {
    let mut config = test_gateway_config();
    config.public_https = true;
    let app = spawn_app_configured(DbKind::Sqlite, &LogConfig::default(), config).await?;
    let login = try_login(&app, "xietiao", TEST_PASSWORD).await?;
    let set_cookie = login
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        set_cookie.contains("; Secure") && set_cookie.contains("HttpOnly"),
        "{set_cookie}"
    );
    app.stop().await
}

#[tokio::test]
async fn metrics_are_apart_from_the_application_and_their_labels_bounded() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let on_app = app.http.get(format!("{}/metrics", app.base)).send().await?;
    assert_eq!(on_app.status(), 404, "not on the application's listener");
    let metrics = |app: &TestApp| {
        let url = format!("{}/metrics", app.metrics_base);
        let http = app.http.clone();
        async move { anyhow::Ok(http.get(url).send().await?.text().await?) }
    };
    for n in 0..20 {
        app.http
            .get(format!("{}/random-{n}", app.base))
            .send()
            .await?;
    }
    let before = metrics(&app).await?;
    for n in 0..300 {
        app.http
            .get(format!(
                "{}/no/such/path/{n}-{}",
                app.base,
                uuid::Uuid::new_v4()
            ))
            .send()
            .await?;
        app.http
            .get(format!("{}/api/v1/no-such-{n}", app.base))
            .send()
            .await?;
    }
    let after = metrics(&app).await?;
    assert!(
        after.lines().count() <= before.lines().count() + 4,
        "300 unknown paths add no series: {} lines before, {} after",
        before.lines().count(),
        after.lines().count()
    );
    assert!(!after.contains("no-such"), "no raw path as a label");
    assert!(after.contains("route=\"unmatched\""), "{after}");
    app.stop().await
}
