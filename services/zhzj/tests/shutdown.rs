//! Stopping `zhzj up` while HTTP writes are in flight: the gateway stops taking requests and
//! answers those it has while the command service and projector still run, so every write that
//! got a success answer is in the log, and the process exits cleanly.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Up, add_coordinator, login, register_over_http, zhzj};
use nix::sys::signal::Signal;
use serde_json::json;
use tokio::sync::Mutex;

#[tokio::test]
async fn stopping_with_writes_in_flight_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    add_coordinator(data, &[]).await?;
    let up = Up::start(data, &[]).await?;
    for command in [
        r#"{"type":"add_unit","unit_id":"xm","name":"厦门市","kind":"city"}"#,
        r#"{"type":"add_unit","unit_id":"xm-huli","parent_id":"xm","name":"湖里区","kind":"district"}"#,
    ] {
        let (ok, out) = zhzj(data, &["command", command]).await?;
        assert!(ok, "{out}");
    }
    let token = login(&up.http, "xietiao", common::COORDINATOR_PASSWORD).await?;
    let http = reqwest::Client::new();
    let mut cases = Vec::new();
    for n in 0..8 {
        let reply = register_over_http(&http, &up.http, &token, n).await?;
        cases.push(reply["aggregate_id"].as_str().unwrap_or("").to_owned());
    }

    // 32 clients write notes until the gateway stops answering.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for c in 0..32 {
        let (http, base, token) = (http.clone(), up.http.clone(), token.clone());
        let case_id = cases[c % cases.len()].clone();
        let acknowledged = acknowledged.clone();
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let sent = http
                    .post(format!("{base}/api/v1/cases/{case_id}/notes"))
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("客户端{c}第{i}条")}))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status() != 201 {
                    break;
                }
                let Ok(reply) = response.json::<serde_json::Value>().await else {
                    break;
                };
                let version = reply["version"].as_u64().unwrap_or(0);
                acknowledged.lock().await.push((case_id.clone(), version));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let in_flight_before = acknowledged.lock().await.len();
    up.stop_with(Signal::SIGTERM).await?;
    for client in clients {
        client.await?;
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        in_flight_before > 0 && !acknowledged.is_empty(),
        "writes were flowing when the signal came"
    );

    // Start again on the same data dir: every acknowledged write is in the log, on its case,
    // and the projections (resuming from their checkpoints) reach all of them.
    let up = Up::start(data, &[]).await?;
    let client = up.admin_client().await?;
    let log = zhzj_store::EventLog::open(client, &zhzj_store::LogConfig::default()).await?;
    for (case_id, version) in &acknowledged {
        let message = log.stream().get_raw_message(*version).await?;
        assert_eq!(
            message.subject.as_str(),
            format!("zhzj.ev.case.{case_id}"),
            "acknowledged version {version} is that case's commit"
        );
    }
    let token = login(&up.http, "xietiao", common::COORDINATOR_PASSWORD).await?;
    let mut notes = 0;
    for _ in 0..100 {
        notes = 0;
        for case_id in &cases {
            let case: serde_json::Value = http
                .get(format!("{}/api/v1/cases/{case_id}", up.http))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            notes += case["notes"].as_array().map_or(0, Vec::len);
        }
        if notes >= acknowledged.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        notes >= acknowledged.len(),
        "{notes} notes projected, {} acknowledged",
        acknowledged.len()
    );
    up.stop_with(Signal::SIGINT).await
}
