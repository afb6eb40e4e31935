//! Accounts in the log and the audit trail: account creation, changes of rights, disabling,
//! password resets, logins, failed logins and lockouts are events of the account aggregate
//! (never a password or a hash); rights are read from their projection, not from the
//! credential table; the `auditor` reads the trail (with filters and an export) and administers
//! nothing; the administrator cannot read or erase it; the trail survives a rebuild of the
//! accounts view and a whole new read store projected from the log.

// Scenario tests read best as one story; the 120-line limit is for the code they test.
#![allow(clippy::too_many_lines)]

use serde_json::{Value, json};
use zhzj_projector::Projection;
use zhzj_proto::AggregateType;
use zhzj_tests::{DbKind, Projecting, TEST_PASSWORD, TestApp, TestDb, spawn_app, wait_caught_up};

const NEW_PASSWORD: &str = "Audit-first-7x";
const RESET_PASSWORD: &str = "Audit-reset-8y";

/// The event types of the trail, oldest first, of records about `username`.
async fn trail_of(app: &TestApp, auditor: &str, username: &str) -> anyhow::Result<Vec<Value>> {
    let page = app
        .get(auditor, &format!("/audit?username={username}&per_page=500"))
        .await?;
    assert_eq!(page.status, 200, "{page:?}");
    let mut records = page.json["records"].as_array().cloned().unwrap_or_default();
    records.reverse();
    Ok(records)
}

fn types(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["event_type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The whole account trail as stored, for comparing read stores.
async fn stored_trail(store: &zhzj_store::ReadStore) -> anyhow::Result<Vec<String>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT position, event_index, occurred_at, event_type, username, actor, \
         COALESCE(client_address, '') AS client_address, detail FROM account_audit \
         ORDER BY position, event_index",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(format!(
                "{}|{}|{}|{}|{}|{}|{}|{}",
                row.try_get::<i64, _>("position")?,
                row.try_get::<i64, _>("event_index")?,
                row.try_get::<String, _>("occurred_at")?,
                row.try_get::<String, _>("event_type")?,
                row.try_get::<String, _>("username")?,
                row.try_get::<String, _>("actor")?,
                row.try_get::<String, _>("client_address")?,
                row.try_get::<String, _>("detail")?,
            ))
        })
        .collect()
}

async fn stored_rights(store: &zhzj_store::ReadStore) -> anyhow::Result<Vec<String>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT username, roles, COALESCE(unit_id, '') AS unit_id, disabled FROM account_rights \
         ORDER BY username",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(format!(
                "{}|{}|{}|{}",
                row.try_get::<String, _>("username")?,
                row.try_get::<String, _>("roles")?,
                row.try_get::<String, _>("unit_id")?,
                row.try_get::<i64, _>("disabled")?,
            ))
        })
        .collect()
}

async fn login_as(app: &TestApp, username: &str, password: &str) -> anyhow::Result<u16> {
    Ok(app
        .send(
            app.http
                .post(app.api("/session"))
                .json(&json!({"username": username, "password": password})),
        )
        .await?
        .status)
}

async fn accounts_are_events_and_the_auditor_reads_them(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    let admin = app.login("guanli").await?;
    let auditor = app.login("shenji").await?;

    // The administrator creates, changes, disables, enables, resets and unlocks an account.
    let created = app
        .post(
            &admin,
            "/users",
            &json!({"username": "wang.li", "password": NEW_PASSWORD, "display_name": "王立",
                   "roles": ["viewer"], "unit_id": "xm-siming"}),
        )
        .await?;
    assert_eq!(created.status, 201, "{created:?}");
    let changed = app
        .post(
            &admin,
            "/users/wang.li/assignment",
            &json!({"roles": ["coordinator"], "unit_id": "xm-siming"}),
        )
        .await?;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(
        app.post(&admin, "/users/wang.li/disable", &json!({}))
            .await?
            .status,
        200
    );
    assert_eq!(
        login_as(&app, "wang.li", NEW_PASSWORD).await?,
        401,
        "disabled"
    );
    assert_eq!(
        app.post(&admin, "/users/wang.li/enable", &json!({}))
            .await?
            .status,
        200
    );
    assert_eq!(
        app.post(
            &admin,
            "/users/wang.li/password",
            &json!({"password": RESET_PASSWORD})
        )
        .await?
        .status,
        200
    );
    // The failed login while disabled counts: the fourth wrong password is the fifth failure
    // and locks; the attempt after it is refused unchecked and not recorded one by one.
    for _ in 0..5 {
        assert_eq!(login_as(&app, "wang.li", "Wrong-password-9").await?, 401);
    }
    assert_eq!(
        app.post(&admin, "/users/wang.li/unlock", &json!({}))
            .await?
            .status,
        200
    );
    assert_eq!(login_as(&app, "wang.li", RESET_PASSWORD).await?, 201);

    // The auditor sees each change and each login, with who did it (a login is recorded before
    // its session opens, and shows once the accounts view has applied it).
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let trail = trail_of(&app, &auditor, "wang.li").await?;
    let seen = types(&trail);
    let expected = [
        "AccountCreated",
        "AccountRightsChanged",
        "AccountDisabled",
        "LoginFailed",
        "AccountEnabled",
        "PasswordReset",
        "LoginFailed",
        "LoginFailed",
        "LoginFailed",
        "LoginFailed",
        "LoginLockedOut",
        "AccountUnlocked",
        "LoginSucceeded",
    ];
    assert_eq!(seen, expected, "{trail:#?}");
    for record in &trail {
        let administrative = matches!(record["category"].as_str(), Some("account"));
        if administrative {
            assert_eq!(record["actor"], "guanli", "{record}");
        }
        assert!(record["position"].as_i64().unwrap_or(0) > 0, "{record}");
    }
    assert_eq!(
        trail[1]["detail"],
        "变更权限：角色 查看人员；单位 xm-siming；领导 — → 角色 专班协调员；单位 xm-siming；领导 —"
    );
    assert_eq!(trail[3]["detail"], "登录失败：账号已停用");
    assert_eq!(trail[12]["client_address"], "127.0.0.1");
    assert!(
        trail[10]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("连续登录失败，锁定账号至"),
        "{}",
        trail[10]
    );
    // Filters: by kind, by day.
    let logins = app
        .get(&auditor, "/audit?category=login&username=wang.li")
        .await?;
    assert_eq!(
        types(logins.json["records"].as_array().map_or(&[][..], |v| v)),
        ["LoginSucceeded"]
    );
    let failures = app
        .get(&auditor, "/audit?category=login_failure&username=wang.li")
        .await?;
    assert_eq!(failures.json["total"], 6, "{failures:?}");
    let long_ago = app
        .get(&auditor, "/audit?username=wang.li&to=2000-01-01")
        .await?;
    assert_eq!(long_ago.json["total"], 0, "{long_ago:?}");
    let bad = app.get(&auditor, "/audit?category=everything").await?;
    assert_eq!(bad.status, 422, "{bad:?}");
    // The export holds the same records.
    let csv = app
        .download(&auditor, "/audit/export.csv?username=wang.li")
        .await?;
    let csv = String::from_utf8_lossy(&csv);
    assert_eq!(
        csv.lines().filter(|l| l.contains("wang.li")).count(),
        expected.len(),
        "{csv}"
    );
    assert!(
        csv.contains("登录成功") && csv.contains("管理员重置密码"),
        "{csv}"
    );

    // Separation of duties: the auditor administers nothing, the administrator reads no trail,
    // and nobody can erase it (no route writes it).
    let as_auditor = app
        .post(
            &auditor,
            "/users",
            &json!({"username": "sneaky", "password": NEW_PASSWORD, "display_name": "x",
                   "roles": ["admin"]}),
        )
        .await?;
    assert_eq!(as_auditor.status, 403, "{as_auditor:?}");
    assert_eq!(app.get(&admin, "/audit").await?.status, 403);
    // The auditor reads no case, whatever unit the account names, and writes nothing.
    let coordinator = app.login("xietiao").await?;
    let registered = app
        .post(&coordinator, "/cases", &zhzj_tests::registration_json(1))
        .await?;
    assert_eq!(registered.status, 201, "{registered:?}");
    assert_eq!(app.get(&coordinator, "/checklist").await?.json["total"], 1);
    let checklist = app.get(&auditor, "/checklist").await?;
    assert_eq!(checklist.status, 200, "{checklist:?}");
    assert_eq!(checklist.json["total"], 0, "{checklist:?}");
    let register = app
        .post(&auditor, "/cases", &zhzj_tests::registration_json(2))
        .await?;
    assert_eq!(register.status, 403, "{register:?}");
    let erase = app
        .send(app.http.delete(app.api("/audit")).bearer_auth(&admin))
        .await?;
    assert_eq!(erase.status, 405, "{erase:?}");

    // The log holds the account's events, and no password or hash anywhere in them.
    let stream_id = zhzj_proto::accounts::account_stream_id("wang.li");
    let log = &app.services.log;
    let commits = log
        .read_aggregate(
            AggregateType::Account,
            &stream_id,
            log.last_version(AggregateType::Account, &stream_id)
                .await?
                .unwrap_or(0),
        )
        .await?;
    assert_eq!(commits.len(), expected.len());
    let raw = format!("{commits:?}");
    for secret in [NEW_PASSWORD, RESET_PASSWORD, "Wrong-password-9", "$argon2"] {
        assert!(!raw.contains(secret), "{secret} is in the log");
    }

    // Rights come from the log's view: editing the credential table grants nothing.
    sqlx::query("UPDATE users SET roles = 'admin', unit_id = NULL WHERE username = 'chakan'")
        .execute(app.projecting.store.pool())
        .await?;
    let chakan = app.login("chakan").await?;
    let me = app.get(&chakan, "/session").await?;
    assert_eq!(me.json["roles"], json!(["viewer"]), "{me:?}");
    assert_eq!(me.json["unit_id"], "xm", "{me:?}");

    // The trail and the rights survive a rebuild of the accounts view ...
    let store = &app.projecting.store;
    // The logins just above are recorded before their sessions open; let the view apply them.
    wait_caught_up(&app.services.log, store).await?;
    let trail_before = stored_trail(store).await?;
    let rights_before = stored_rights(store).await?;
    assert!(trail_before.len() >= expected.len() + 3);
    zhzj_projector::rebuild(&app.services.log, store, Projection::ACCOUNTS).await?;
    assert_eq!(stored_trail(store).await?, trail_before);
    assert_eq!(stored_rights(store).await?, rights_before);
    assert_eq!(
        types(&trail_of(&app, &auditor, "wang.li").await?),
        expected,
        "after the rebuild"
    );
    // ... and a whole new read store projected from the log.
    let fresh = Projecting::start_on(&app.services.log, TestDb::create(kind).await?).await?;
    wait_caught_up(&app.services.log, &fresh.store).await?;
    assert_eq!(stored_trail(&fresh.store).await?, trail_before);
    assert_eq!(stored_rights(&fresh.store).await?, rights_before);
    fresh.stop().await?;
    let _ = TEST_PASSWORD;
    app.stop().await
}

/// Accounts made before the log recorded them are adopted: each gets an `AccountCreated`
/// (adopted), and its rights then come from the log.
#[tokio::test]
async fn accounts_made_before_the_log_are_adopted() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let store = &app.projecting.store;
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash, roles, unit_id, created_at, \
         must_change_password) VALUES ('laozhang', '老张', 'x', 'viewer', 'xm', \
         '2025-01-01T00:00:00Z', 0)",
    )
    .execute(store.pool())
    .await?;
    let adopted = app.accounts.adopt_unrecorded().await?;
    assert_eq!(adopted, 1);
    assert_eq!(app.accounts.adopt_unrecorded().await?, 0, "only once");
    let auditor = app.login("shenji").await?;
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let trail = trail_of(&app, &auditor, "laozhang").await?;
    assert_eq!(types(&trail), ["AccountCreated"]);
    assert!(
        trail[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("登记原有账号"),
        "{}",
        trail[0]
    );
    app.stop().await
}

/// On a fresh system the gateway may start before the projector has made the accounts view:
/// adopting then must wait for it, not fail once and give up until the next start (found by the
/// API fuzzing run's log: "no such table: account_rights").
#[tokio::test]
async fn adoption_at_start_waits_for_the_accounts_view() -> anyhow::Result<()> {
    let (nats, services) = zhzj_tests::seeded_stack().await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let client = nats.connect().await?;
    zhzj_tests::serve_cases(client.clone(), services.cases.clone(), shutdown.clone()).await?;
    let db = TestDb::create(DbKind::Sqlite).await?;
    let store = db.store().await?;
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash, roles, unit_id, created_at, \
         must_change_password) VALUES ('laozhang', '老张', 'x', 'viewer', 'xm', \
         '2025-01-01T00:00:00Z', 0)",
    )
    .execute(store.pool())
    .await?;
    let accounts = zhzj_gateway::Accounts::new(
        store.clone(),
        std::sync::Arc::new(zhzj_store::SystemClock),
        zhzj_gateway::AccountSettings::default(),
        zhzj_gateway::AccountJournal::new(client, store.clone()),
    );
    // A fresh system: the gateway saw an empty log, and no projection has started yet.
    let adopting = tokio::spawn({
        let (accounts, shutdown) = (accounts.clone(), shutdown.clone());
        async move { accounts.adopt_when_caught_up(0, shutdown).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let projecting = Projecting::start_on(&services.log, db).await?;
    let mut adopted = false;
    for _ in 0..100 {
        let found: Option<String> =
            sqlx::query_scalar("SELECT username FROM account_rights WHERE username = 'laozhang'")
                .fetch_optional(projecting.store.pool())
                .await
                .unwrap_or(None);
        if found.is_some() {
            adopted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        adopted,
        "the pending account was adopted once the view existed"
    );
    shutdown.cancel();
    adopting.await?;
    projecting.stop().await?;
    Ok(())
}

/// A login decides from one reading of the account: a login that read "no such account" just
/// before the accounts view showed the account, then "nothing to adopt" just after, was refused
/// as an unknown account (a CI run of the split-deployment outage test got 401 for the first
/// login of a valid account, adopted by the gateway at that moment). Here the account's row in
/// the view comes and goes many times a second, so every login reads across such a change: each
/// must sign in or be asked to come back, never be refused.
#[tokio::test]
async fn a_login_reading_across_the_accounts_view_catching_up_is_never_refused()
-> anyhow::Result<()> {
    const CLIENTS: usize = 4;
    let app = spawn_app(DbKind::Sqlite).await?;
    app.accounts
        .add_pending(&zhzj_gateway::NewUser {
            username: "laozhang".to_owned(),
            password: TEST_PASSWORD.to_owned(),
            display_name: "老张".to_owned(),
            roles: vec!["viewer".to_owned()],
            unit_id: Some("xm".to_owned()),
            leader_id: None,
            must_change_password: false,
        })
        .await?;
    assert_eq!(app.accounts.adopt_unrecorded().await?, 1);
    let store = app.projecting.store.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    // The view's row for the account (in the view's first generation), there one moment and not
    // the next.
    let flapping = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            while !stop.is_cancelled() {
                sqlx::query(
                    "UPDATE account_rights_g1 SET username = CASE username \
                     WHEN 'laozhang' THEN 'laozhang~' ELSE 'laozhang' END \
                     WHERE username IN ('laozhang', 'laozhang~')",
                )
                .execute(store.pool())
                .await?;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(())
        }
    });
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let accounts = app.accounts.clone();
        clients.spawn(async move {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
            let (mut signed_in, mut come_back) = (0, 0);
            while std::time::Instant::now() < until {
                match accounts.login("laozhang", TEST_PASSWORD, None).await {
                    Ok(zhzj_gateway::LoginOutcome::SignedIn(_)) => signed_in += 1,
                    Err(
                        zhzj_gateway::AccountError::NotReady | zhzj_gateway::AccountError::Busy,
                    ) => {
                        come_back += 1;
                    }
                    Ok(zhzj_gateway::LoginOutcome::Refused) => {
                        anyhow::bail!("a valid login was refused")
                    }
                    Ok(zhzj_gateway::LoginOutcome::Locked(_)) => {
                        anyhow::bail!("a valid login was locked out")
                    }
                    Err(e) => anyhow::bail!("a valid login failed: {e}"),
                }
            }
            Ok((signed_in, come_back))
        });
    }
    let mut answers = Vec::new();
    while let Some(client) = clients.join_next().await {
        answers.push(client?);
    }
    stop.cancel();
    flapping.await??;
    eprintln!("(signed in, asked to come back) per client: {answers:?}");
    let answers: Vec<(usize, usize)> = answers.into_iter().collect::<anyhow::Result<_>>()?;
    // Each client signed in; some logins read the row absent, so the flapping was seen.
    assert!(
        answers.iter().all(|&(signed_in, _)| signed_in > 0)
            && answers
                .iter()
                .map(|&(_, come_back)| come_back)
                .sum::<usize>()
                > 0,
        "(signed in, asked to come back) per client: {answers:?}"
    );
    app.stop().await
}

zhzj_tests::on_both_databases!(accounts_are_events_and_the_auditor_reads_them);
