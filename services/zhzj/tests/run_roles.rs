//! The command services as a distributed deployment runs them: `zhzj run cases` and
//! `zhzj run campaign`, each a process of its own on a single-threaded runtime, against a real
//! nats-server. They answer commands sent concurrently from another process, refuse a command
//! meant for the other service, and on SIGTERM answer what they hold and exit cleanly.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::future::join_all;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use zhzj_proto::subjects::{CAMPAIGN_COMMANDS, CASES_COMMANDS};
use zhzj_tests::NatsServer;

/// A command request as a client sends it, by an administrator.
fn request(command: Value) -> Bytes {
    let body = json!({
        "command_id": uuid::Uuid::new_v4(),
        "actor": {"user_id": "admin-1", "roles": ["admin"]},
        "command": command,
    });
    Bytes::from(body.to_string())
}

async fn send(client: &async_nats::Client, subject: &str, command: Value) -> anyhow::Result<Value> {
    let reply = client
        .request(subject.to_owned(), request(command))
        .await
        .context("no reply")?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

/// Starts `zhzj run <role>` and waits until it answers on its subject.
async fn run_role(
    client: &async_nats::Client,
    nats: &NatsServer,
    data: &std::path::Path,
    role: &str,
    subject: &str,
) -> anyhow::Result<Child> {
    let child = Command::new(env!("CARGO_BIN_EXE_zhzj"))
        .args(["run", role, "--nats-url", &nats.url()])
        .arg("--nats-credentials")
        .arg(nats.credentials_dir()?)
        .env("ZHZJ_DATA_DIR", data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..100 {
        if let Ok(Ok(reply)) = tokio::time::timeout(
            Duration::from_millis(500),
            client.request(subject.to_owned(), Bytes::from_static(b"{}")),
        )
        .await
        {
            // The probe is not a command: the service answers it with an error naming a field.
            let answer: Value = serde_json::from_slice(&reply.payload)?;
            assert!(answer.get("error").is_some(), "{answer}");
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("`zhzj run {role}` did not answer on {subject}")
}

async fn stop(mut child: Child) -> anyhow::Result<std::process::ExitStatus> {
    let pid = Pid::from_raw(i32::try_from(child.id().context("already gone")?)?);
    kill(pid, Signal::SIGTERM)?;
    Ok(tokio::time::timeout(Duration::from_secs(20), child.wait()).await??)
}

#[tokio::test]
async fn command_services_run_as_processes_answer_concurrent_commands_and_stop_cleanly()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    nats.init_log().await?;
    let client = nats.connect().await?;
    let dir = tempfile::tempdir()?;
    let cases = run_role(&client, &nats, dir.path(), "cases", CASES_COMMANDS).await?;
    let campaign = run_role(&client, &nats, dir.path(), "campaign", CAMPAIGN_COMMANDS).await?;

    for command in [
        json!({"type": "add_unit", "unit_id": "xm", "name": "厦门市", "kind": "city"}),
        json!({"type": "add_unit", "unit_id": "xm-siming", "parent_id": "xm", "name": "思明区", "kind": "district"}),
    ] {
        let answer = send(&client, CASES_COMMANDS, command).await?;
        assert!(answer.get("ok").is_some(), "{answer}");
    }
    let registered = send(
        &client,
        CASES_COMMANDS,
        json!({
            "type": "register_case",
            "petitioners": [{"name": "王五"}],
            "matter": "要求解决拖欠工资问题",
            "category": "劳动社保",
            "district_id": "xm-siming",
            "channel": "visit",
            "first_filed_on": "2025-01-02",
            "list_source": "screening",
        }),
    )
    .await?;
    // A version is the case's last position in the log: two directory events came first.
    let registered_at = registered["ok"]["version"].as_u64().context("no version")?;
    assert_eq!(registered_at, 3, "{registered}");
    let case_id = registered["ok"]["aggregate_id"]
        .as_str()
        .context("no case id")?
        .to_owned();

    // Sixty notes on one case at once: the one thread decides them in turn, losing races to its
    // own earlier appends and deciding again, so each lands exactly once.
    let notes = join_all((0..60).map(|n| {
        let (client, case_id) = (client.clone(), case_id.clone());
        async move {
            send(
                &client,
                CASES_COMMANDS,
                json!({"type": "record_note", "case_id": case_id, "text": format!("第{n}次电话回访")}),
            )
            .await
        }
    }))
    .await;
    let mut versions = Vec::new();
    for answer in notes {
        let answer = answer?;
        versions.push(answer["ok"]["version"].as_u64().context("no version")?);
    }
    versions.sort_unstable();
    assert_eq!(versions, (4..=63).collect::<Vec<u64>>());

    // The campaign service answers its own commands and refuses the cases service's.
    let meeting = send(
        &client,
        CAMPAIGN_COMMANDS,
        json!({"type": "hold_meeting", "unit_id": "xm-siming"}),
    )
    .await?;
    assert!(meeting.get("ok").is_some(), "{meeting}");
    let misrouted = send(
        &client,
        CAMPAIGN_COMMANDS,
        json!({"type": "record_note", "case_id": case_id, "text": "发错了服务"}),
    )
    .await?;
    assert_eq!(misrouted["error"]["field"], "command.type", "{misrouted}");

    assert!(
        stop(cases).await?.success(),
        "`zhzj run cases` did not exit cleanly"
    );
    assert!(
        stop(campaign).await?.success(),
        "`zhzj run campaign` did not exit cleanly"
    );
    // Stopped, nobody answers any more.
    let after = client
        .request(
            CASES_COMMANDS.to_owned(),
            request(json!({"type": "add_unit"})),
        )
        .await;
    assert!(after.is_err(), "a stopped service still answered");
    Ok(())
}
