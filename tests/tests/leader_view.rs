//! The leader view (领导包案) from its projection, checked against the event archive: for every
//! kind of reader (the city administrator, a city, town and department coordinator, a leader, a
//! reader) and several inactivity bounds, each listed leader's owned, open and idle cases and
//! activities per month must be what folding the archive over the cases that reader may read
//! gives — after every step of a scenario that assigns, reassigns, works, crosses off and
//! reopens cases in three places and hands one to a department.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use zhzj_figures::ArchivedEvent;
use zhzj_proto::{CaseEvent, DomainEvent};
use zhzj_tests::{DbKind, TestApp, on_both_databases, register_case, spawn_app, wait_caught_up};

/// Readers of every standing: (username, what their scope is).
const READERS: &[&str] = &[
    "guanli",   // the city administrator: every case
    "xietiao",  // a city coordinator: the whole area, and the city's responsible cases
    "zhonghua", // a town coordinator: the town, and cases the town is responsible for
    "zhufang",  // a department coordinator: only the cases the department is responsible for
    "liming",   // a leader: the cases they own
    "chakan",   // a reader of the city
];

/// One case as the archive tells it.
#[derive(Debug, Default)]
struct FoldedCase {
    registered: (String, String),
    registered_on: String,
    owner: Option<String>,
    open: bool,
    /// Each leader's activity days on the case.
    activities: BTreeMap<String, Vec<String>>,
}

/// Every case of the archive, folded.
async fn folded_cases(app: &TestApp) -> anyhow::Result<HashMap<String, FoldedCase>> {
    let store = &app.projecting.store;
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM event_archive")
        .fetch_one(store.pool())
        .await?;
    let mut cases: HashMap<String, FoldedCase> = HashMap::new();
    for archived in ArchivedEvent::read_up_to(store, &["case"], last).await? {
        let DomainEvent::Case(event) = &archived.event else {
            continue;
        };
        let case = cases.entry(archived.aggregate_id.clone()).or_default();
        match event {
            CaseEvent::Registered(_) => {
                case.registered = (
                    zhzj_store::sql::timestamp_text(archived.occurred_at),
                    archived.aggregate_id.clone(),
                );
                case.registered_on = archived.occurred_at.format("%Y-%m-%d").to_string();
                case.open = true;
            }
            CaseEvent::LeaderAssigned(e) => case.owner = Some(e.leader.id.clone()),
            CaseEvent::LeaderReassigned(e) => case.owner = Some(e.to.id.clone()),
            CaseEvent::CrossedOff(_) => case.open = false,
            CaseEvent::ResolutionClaimed(_)
            | CaseEvent::ClaimSentBack(_)
            | CaseEvent::Reopened(_) => case.open = true,
            CaseEvent::LeaderActivity(e) => case
                .activities
                .entry(e.leader.id.clone())
                .or_default()
                .push(e.held_on.to_string()),
            _ => {}
        }
    }
    Ok(cases)
}

/// The case ids `token`'s holder may read, from the checklist.
async fn readable(app: &TestApp, token: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for page in 1.. {
        let listing = app
            .get(token, &format!("/checklist?per_page=200&page={page}"))
            .await?;
        anyhow::ensure!(listing.status == 200, "{listing:?}");
        let rows = zhzj_tests::row_column(&listing.json, "case_id");
        if rows.is_empty() {
            break;
        }
        ids.extend(rows);
    }
    Ok(ids)
}

/// The leader view the archive gives for one leader over `cases`, as the API writes it.
fn expected(leader: &str, cases: &[&FoldedCase], cutoff: &str) -> Value {
    let owned: Vec<&&FoldedCase> = cases
        .iter()
        .filter(|c| c.owner.as_deref() == Some(leader))
        .collect();
    let mut by_month: BTreeMap<String, u32> = BTreeMap::new();
    let mut last: Option<String> = None;
    for day in cases
        .iter()
        .flat_map(|c| c.activities.get(leader))
        .flatten()
    {
        *by_month.entry(day[..7].to_owned()).or_default() += 1;
        if last.as_deref().is_none_or(|l| l < day.as_str()) {
            last = Some(day.clone());
        }
    }
    let mut idle: Vec<&&FoldedCase> = owned
        .iter()
        .copied()
        .filter(|c| c.open)
        .filter(|c| {
            let worked = c.activities.get(leader).and_then(|days| days.iter().max());
            worked.unwrap_or(&c.registered_on).as_str() < cutoff
        })
        .collect();
    idle.sort_by(|a, b| a.registered.cmp(&b.registered));
    let idle: Vec<String> = idle.iter().map(|c| c.registered.1.clone()).collect();
    json!({
        "owned_cases": owned.len(),
        "open_cases": owned.iter().filter(|c| c.open).count(),
        "last_activity_on": last,
        "activities_by_month": by_month,
        "idle_case_count": idle.len(),
        "idle_cases": idle.iter().take(20).collect::<Vec<_>>(),
        "all_idle_cases": idle,
    })
}

/// Every idle case of `leader` read page by page from `GET /leaders/{id}/idle_cases`, two a
/// page; checks each page's total.
async fn idle_pages(
    app: &TestApp,
    token: &str,
    leader: &str,
    days: u64,
) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    for page in 1.. {
        let answer = app
            .get(
                token,
                &format!(
                    "/leaders/{leader}/idle_cases?inactive_days={days}&page={page}&per_page=2"
                ),
            )
            .await?;
        anyhow::ensure!(answer.status == 200, "{answer:?}");
        let ids = answer.json["case_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if ids.is_empty() {
            break;
        }
        anyhow::ensure!(ids.len() <= 2, "{answer:?}");
        anyhow::ensure!(
            answer.json["total"].as_u64() >= Some(all.len() as u64 + ids.len() as u64),
            "{answer:?}"
        );
        all.extend(ids);
    }
    Ok(all)
}

/// Compares `/leaders` with the archive for every reader and several bounds; returns how many
/// leader figures were compared.
async fn assert_leader_view_matches_archive(app: &TestApp, step: &str) -> anyhow::Result<usize> {
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let cases = folded_cases(app).await?;
    let mut compared = 0;
    for reader in READERS {
        let token = app.login(reader).await?;
        let readable = readable(app, &token).await?;
        let theirs: Vec<&FoldedCase> = readable.iter().filter_map(|id| cases.get(id)).collect();
        anyhow::ensure!(theirs.len() == readable.len(), "{step}: a case missing");
        for days in [1, 10, 30] {
            let answer = app
                .get(&token, &format!("/leaders?inactive_days={days}"))
                .await?;
            anyhow::ensure!(answer.status == 200, "{step}: {answer:?}");
            let today = NaiveDate::parse_from_str(
                answer.json["today"].as_str().unwrap_or_default(),
                "%Y-%m-%d",
            )?;
            let cutoff = (today - chrono::Days::new(days)).to_string();
            for listed in answer.json["leaders"].as_array().into_iter().flatten() {
                let leader = listed["leader_id"].as_str().unwrap_or_default();
                let want = expected(leader, &theirs, &cutoff);
                for (field, value) in want.as_object().into_iter().flatten() {
                    if field == "all_idle_cases" {
                        let paged = idle_pages(app, &token, leader, days).await?;
                        assert_eq!(
                            &Value::Array(paged),
                            value,
                            "{step}: the idle cases of {leader} page by page for {reader}, inactive {days} days"
                        );
                        continue;
                    }
                    assert_eq!(
                        &listed[field], value,
                        "{step}: {field} of {leader} for {reader}, inactive {days} days"
                    );
                }
                compared += 1;
            }
        }
    }
    Ok(compared)
}

fn at(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Registers case `n` in a district and, when given, a town.
async fn register(app: &TestApp, n: u32, place: (&str, Option<&str>)) -> anyhow::Result<String> {
    let mut command = serde_json::to_value(register_case(n))?;
    command["district_id"] = json!(place.0);
    command["town_id"] = json!(place.1);
    app.command(command).await
}

async fn leader_view_scenario(kind: DbKind) -> anyhow::Result<()> {
    let app = spawn_app(kind).await?;
    app.services.clock.set(at(2));
    app.command(
        json!({"type": "add_unit", "unit_id": "xm-huli", "parent_id": "xm",
                       "name": "湖里区", "kind": "district"}),
    )
    .await?;
    app.command(
        json!({"type": "add_leader", "leader_id": "ldr-huli-1", "unit_id": "xm-huli",
                       "name": "陈刚", "title": "副区长", "level": "district"}),
    )
    .await?;
    let places = [
        ("xm-siming", Some("xm-siming-zhonghua")),
        ("xm-siming", None),
        ("xm-huli", None),
    ];
    let mut cases = Vec::new();
    for n in 0..9_u32 {
        app.services.clock.set(at(2 + n));
        cases.push(register(&app, n, places[n as usize % 3]).await?);
    }
    let mut compared = assert_leader_view_matches_archive(&app, "registered").await?;

    // Owners: 李明 the first four, 王芳 the next two, 陈刚 the 湖里 ones he is given.
    app.services.clock.set(at(12));
    for (i, case) in cases.iter().enumerate() {
        let leader = match i {
            0..=3 => "ldr-siming-1",
            4 | 5 => "ldr-siming-2",
            _ if i % 3 == 2 => "ldr-huli-1",
            _ => continue,
        };
        app.command(json!({"type": "assign_leader", "case_id": case, "leader_id": leader}))
            .await?;
    }
    // A 湖里 case the town is responsible for, and one the department is.
    app.command(json!({"type": "set_responsible_units", "case_id": cases[2],
                       "lead_unit_id": "xm-siming-zhonghua"}))
        .await?;
    app.command(json!({"type": "set_responsible_units", "case_id": cases[5],
                       "lead_unit_id": "xm-dept-zjj"}))
        .await?;
    compared += assert_leader_view_matches_archive(&app, "owned").await?;

    // Work in two months, by owners and by a leader who does not own the case.
    for (i, day, leader) in [
        (0, "2026-01-13", "ldr-siming-1"),
        (0, "2026-01-20", "ldr-siming-1"),
        (1, "2026-01-14", "ldr-siming-2"),
        (4, "2026-01-15", "ldr-siming-2"),
        (2, "2026-01-16", "ldr-huli-1"),
        (5, "2026-01-16", "ldr-siming-1"),
    ] {
        app.services.clock.set(at(21));
        app.command(
            json!({"type": "record_activity", "case_id": cases[i], "leader_id": leader,
                           "kind": "home_visit", "held_on": day, "summary": "下访当事人"}),
        )
        .await?;
    }
    compared += assert_leader_view_matches_archive(&app, "worked").await?;

    // A reassignment moves the counts and the idle day to the new owner; crossing off closes
    // a case; a new petition reopens it.
    app.services.clock.set(at(22));
    app.command(json!({"type": "assign_leader", "case_id": cases[1],
                       "leader_id": "ldr-siming-2", "reason": "工作调整"}))
        .await?;
    // Crossed off: one of 李明's, and a 湖里 case handed to 李明 first.
    app.command(json!({"type": "assign_leader", "case_id": cases[8],
                       "leader_id": "ldr-siming-1", "reason": "市级包案"}))
        .await?;
    for case in [&cases[3], &cases[8]] {
        app.claim_and_accept(case).await?;
    }
    compared += assert_leader_view_matches_archive(&app, "crossed off").await?;
    app.services.clock.set(at(28));
    app.command(json!({"type": "record_petition", "case_id": cases[8],
                       "received_on": "2026-01-27", "channel": "visit", "summary": "再次来访"}))
        .await?;
    compared += assert_leader_view_matches_archive(&app, "reopened").await?;
    assert!(compared > 100, "only {compared} leader figures compared");
    app.stop().await
}

on_both_databases!(leader_view_scenario);

/// A leader with more idle cases than the view lists: the view counts them all and lists the
/// first 20, the paged list has every one in the same order, the page says how many there are,
/// and a leader the reader does not see, or one that does not exist, is not found.
#[tokio::test]
async fn more_idle_cases_than_listed() -> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    app.services.clock.set(at(2));
    for n in 0..23_u32 {
        let case = register(&app, n, ("xm-siming", Some("xm-siming-zhonghua"))).await?;
        app.command(json!({"type": "assign_leader", "case_id": case, "leader_id": "ldr-siming-2"}))
            .await?;
    }
    app.services.clock.set(at(30));
    wait_caught_up(&app.services.log, &app.projecting.store).await?;
    let token = app.login("xietiao").await?;
    let view = app.get(&token, "/leaders?inactive_days=10").await?.json;
    let wang = view["leaders"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["leader_id"] == "ldr-siming-2").cloned())
        .unwrap_or(Value::Null);
    assert_eq!(wang["idle_case_count"], 23);
    let listed = wang["idle_cases"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 20, "the first 20 listed");
    let all = idle_pages(&app, &token, "ldr-siming-2", 10).await?;
    assert_eq!(all.len(), 23);
    assert_eq!(all[..20], listed[..], "in the same order");
    let page = app
        .get(
            &token,
            "/leaders/ldr-siming-2/idle_cases?inactive_days=10&page=2&per_page=20",
        )
        .await?;
    assert_eq!(
        (
            page.json["total"].clone(),
            page.json["case_ids"].as_array().map(Vec::len)
        ),
        (json!(23), Some(3))
    );
    let html = app
        .http
        .get(format!("{}/leaders?inactive_days=10", app.base))
        .header(reqwest::header::COOKIE, format!("zhzj_session={token}"))
        .send()
        .await?
        .text()
        .await?;
    assert!(html.contains("共 23 件"), "the page says how many");
    // 李明 is the leader-reader's own; 王芳 is not theirs to see.
    let leader = app.login("liming").await?;
    let hidden = app.get(&leader, "/leaders/ldr-siming-2/idle_cases").await?;
    assert_eq!(hidden.status, 404, "{hidden:?}");
    assert_eq!(
        app.get(&token, "/leaders/ldr-nobody/idle_cases")
            .await?
            .status,
        404
    );
    assert_eq!(
        app.get(&token, "/leaders/ldr-siming-2/idle_cases?per_page=0&x=1")
            .await?
            .status,
        400
    );
    app.stop().await
}
