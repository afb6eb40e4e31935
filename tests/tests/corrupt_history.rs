//! An unreadable commit on a case's subject (a malformed message, an unknown event type) is a
//! clear, permanent fault — 500 `corrupt_history` naming the case and position, counted in
//! `/metrics`, failing `/readyz`'s history check — until an administrator skips it with
//! `skip_unreadable_commits`, recorded in the log; then the case is writable again.
//!
//! An outside drill found every write to such a case answered 503 "事件日志暂不可用，请重试" —
//! retry forever — with nothing in `/readyz` or `/metrics`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::{Value, json};
use zhzj_proto::{
    AggregateType, Command, CommandReply, ErrorKind, commands::SkipUnreadableCommits,
    subjects::aggregate_subject,
};
use zhzj_tests::{DbKind, TestApp, registration_json, request, spawn_app, test_actor};

/// Registers a case over HTTP; returns its id.
async fn register(app: &TestApp, token: &str, n: u32) -> anyhow::Result<String> {
    let answer = app.post(token, "/cases", &registration_json(n)).await?;
    assert_eq!(answer.status, 201, "{answer:?}");
    Ok(answer.json["aggregate_id"]
        .as_str()
        .context("no case id")?
        .to_owned())
}

/// Publishes `payload` straight onto a case's subject, as a stray writer would; its position.
async fn plant(app: &TestApp, case_id: &str, payload: Vec<u8>) -> anyhow::Result<u64> {
    let js = async_nats::jetstream::new(app.nats.connect().await?);
    let ack = js
        .publish(
            aggregate_subject(AggregateType::Case, case_id),
            Bytes::from(payload),
        )
        .await?
        .await?;
    Ok(ack.sequence)
}

async fn note(app: &TestApp, token: &str, case_id: &str) -> anyhow::Result<zhzj_tests::Answer> {
    app.post(
        token,
        &format!("/cases/{case_id}/notes"),
        &json!({"text": "已电话回访"}),
    )
    .await
}

/// Waits until `/readyz` answers `status`; its body.
async fn readyz(app: &TestApp, status: u16) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = app
            .send(app.http.get(format!("{}/readyz", app.base)))
            .await?;
        if answer.status == status {
            return Ok(answer.json);
        }
        if Instant::now() > deadline {
            bail!("/readyz stayed {}: {}", answer.status, answer.json);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn skip(case_id: &str, positions: Vec<u64>) -> Command {
    Command::SkipUnreadableCommits(SkipUnreadableCommits {
        case_id: case_id.parse().unwrap_or_default(),
        positions,
        reason: "测试：清除误写入的记录".into(),
    })
}

#[tokio::test]
async fn an_unreadable_commit_is_a_clear_permanent_fault_until_an_administrator_skips_it()
-> anyhow::Result<()> {
    let app = spawn_app(DbKind::Sqlite).await?;
    let token = app.login("xietiao").await?;
    let malformed_case = register(&app, &token, 1).await?;
    let unknown_case = register(&app, &token, 2).await?;
    assert_eq!(note(&app, &token, &malformed_case).await?.status, 201);
    readyz(&app, 200).await?;

    // A malformed message on one case, a commit with an event type nobody knows on the other.
    let malformed = plant(&app, &malformed_case, b"{not a commit".to_vec()).await?;
    let last = app
        .services
        .log
        .load_last(AggregateType::Case, &unknown_case)
        .await?
        .context("the case has a commit")?;
    let mut commit = serde_json::to_value(&last.commit)?;
    commit["events"][0]["event_type"] = json!("CaseTeleported");
    let unknown = plant(&app, &unknown_case, serde_json::to_vec(&commit)?).await?;

    for (case_id, position) in [(&malformed_case, malformed), (&unknown_case, unknown)] {
        let answer = note(&app, &token, case_id).await?;
        assert_eq!(answer.status, 500, "{answer:?}");
        assert_eq!(
            answer.json["error"]["code"], "corrupt_history",
            "{answer:?}"
        );
        let message = answer.json["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(case_id.as_str()) && message.contains(&position.to_string()),
            "the error names the case and the position: {message}"
        );
        assert!(
            answer.headers.get("retry-after").is_none(),
            "no retry helps: {answer:?}"
        );
    }
    let metrics = app
        .http
        .get(format!("{}/metrics", app.metrics_base))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("zhzj_corrupt_history_total"),
        "counted in /metrics"
    );
    // Once the projector has reached both, the history check names both.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = readyz(&app, 503).await?;
        let history = ready["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["name"] == "history"))
            .context("a history check")?
            .clone();
        let detail = history["detail"].as_str().unwrap_or("");
        if history["ok"] == false
            && detail.contains(&malformed.to_string())
            && detail.contains(&unknown.to_string())
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the history check does not name both positions: {ready}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only an administrator repairs, and must name every unreadable position.
    let mut by_coordinator = request(skip(&malformed_case, vec![malformed]));
    by_coordinator.actor.roles = vec!["coordinator".into()];
    let CommandReply::Error(refused) = app.services.cases.handle(by_coordinator).await else {
        bail!("a coordinator repaired a history");
    };
    assert_eq!(refused.kind, ErrorKind::Forbidden, "{refused:?}");
    let CommandReply::Error(refused) = app
        .services
        .cases
        .handle(request(skip(&malformed_case, vec![malformed - 1])))
        .await
    else {
        bail!("a readable position was skipped");
    };
    assert_eq!(refused.kind, ErrorKind::Invalid, "{refused:?}");
    for (case_id, position) in [(&malformed_case, malformed), (&unknown_case, unknown)] {
        let mut repair = request(skip(case_id, vec![position]));
        repair.actor = test_actor();
        let reply = app.services.cases.handle(repair).await;
        assert!(matches!(reply, CommandReply::Ok(_)), "{reply:?}");
    }

    // Writable again, healthy again, and the history says what happened.
    for case_id in [&malformed_case, &unknown_case] {
        let answer = note(&app, &token, case_id).await?;
        assert_eq!(answer.status, 201, "{answer:?}");
    }
    readyz(&app, 200).await?;
    let case = app.get(&token, &format!("/cases/{malformed_case}")).await?;
    assert_eq!(
        case.json["notes"].as_array().map_or(0, Vec::len),
        2,
        "{case:?}"
    );
    let repairs: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM event_archive WHERE event_type = 'UnreadableCommitsSkipped'",
    )
    .fetch_one(app.projecting.store.pool())
    .await?;
    assert_eq!(repairs, 2);
    // A replay from the log (as after a snapshot change) steps over the skipped commits.
    let last = app
        .services
        .log
        .last_version(AggregateType::Case, &malformed_case)
        .await?
        .context("a last version")?;
    let replayed = zhzj_cases::aggregate::replay::<zhzj_cases::case::CaseState>(
        &app.services.log,
        &malformed_case,
        last,
    )
    .await?;
    assert!(zhzj_cases::aggregate::Aggregate::exists(&replayed.state));
    app.stop().await
}
